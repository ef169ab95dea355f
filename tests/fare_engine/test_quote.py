"""Single-ticket quotes: level, price and validity of one journey."""

from __future__ import annotations

import pytest

from fare_engine import FareInputError, FareInputReason, quote
from tests.fare_engine.conftest import LIPPSTADT_BF, SOEST_BF, SOEST_MARKT, UNNA_BF, at


@pytest.mark.parametrize(
    ("to_stop", "rider", "level", "cents", "minutes"),
    [
        (SOEST_MARKT, "adult", "A", 310, 90),
        (LIPPSTADT_BF, "adult", "4", 620, 120),
        (LIPPSTADT_BF, "child", "4", 370, 120),
        (UNNA_BF, "adult", "5", 800, 180),
        (UNNA_BF, "infant", "5", 0, 180),
    ],
)
def test_quote(tariff, to_stop, rider, level, cents, minutes):
    now = at("2026-03-02 07:00")
    q = quote(tariff, SOEST_BF, to_stop, now, rider)
    assert (q.level, q.price_cents, q.validity_minutes) == (level, cents, minutes)
    assert (q.valid_from, q.valid_to) == (now, now + minutes * 60_000)
    assert q.provenance


def test_quote_refuses_unknown_stop_by_field(tariff):
    with pytest.raises(FareInputError) as info:
        quote(tariff, "de:00000:1", SOEST_BF, at("2026-03-02 07:00"), "adult")
    assert (info.value.reason, info.value.field, info.value.trip_index) == (
        FareInputReason.UNKNOWN_STOP,
        "from_stop",
        None,
    )
