"""Bad input is refused with an error naming the trip, the field, the value and what was
expected: unknown stop, a trip ending before it starts, overlapping trips of one rider."""

from __future__ import annotations

import pytest

from fare_engine import FareInputError, FareInputReason, PricingAccount, Trip, best_price_multi
from tests.fare_engine.conftest import KAMEN_BF, LIPPSTADT_BF, SOEST_BF, SOEST_MARKT, UNNA_BF, trip


def _trips() -> list[Trip]:
    return [
        trip(UNNA_BF, KAMEN_BF, "2026-05-04 08:00"),
        trip(SOEST_BF, SOEST_MARKT, "2026-05-02 09:00", minutes=5),
        trip(SOEST_MARKT, LIPPSTADT_BF, "2026-05-02 09:30", minutes=40),
    ]


@pytest.mark.parametrize(
    ("index", "changes", "reason", "field"),
    [
        pytest.param(
            2,
            {"alight_stop_id": "de:05974:9999"},
            FareInputReason.UNKNOWN_STOP,
            "alight_stop_id",
            id="unknown stop",
        ),
        pytest.param(
            1,
            {"farthest_stop_id": "de:05974:9999"},
            FareInputReason.UNKNOWN_STOP,
            "farthest_stop_id",
            id="unknown farthest stop",
        ),
        pytest.param(
            0,
            {"rider_category": "senior"},
            FareInputReason.UNKNOWN_RIDER_CATEGORY,
            "rider_category",
            id="unknown rider",
        ),
        pytest.param(
            0,
            {"alight_time": 0},
            FareInputReason.ALIGHT_BEFORE_BOARD,
            "alight_time",
            id="trip ending before it starts",
        ),
        pytest.param(
            1,
            {"board_time": 1_600_000_000_000, "alight_time": 1_600_000_600_000},
            FareInputReason.OUTSIDE_TARIFF_VALIDITY,
            "board_time",
            id="outside tariff validity",
        ),
    ],
)
def test_bad_trip_names_index_and_field(bibo_tariffs, index, changes, reason, field):
    trips = _trips()
    trips[index] = trips[index].model_copy(update=changes)
    with pytest.raises(FareInputError) as info:
        best_price_multi(trips, bibo_tariffs)
    assert (info.value.trip_index, info.value.reason, info.value.field) == (index, reason, field)
    assert str(info.value).startswith(f"trip {index}: {field}=")


def test_overlapping_trips_of_one_rider_name_the_later_trip(bibo_tariffs):
    trips = [
        trip(SOEST_BF, LIPPSTADT_BF, "2026-05-02 09:00", minutes=40),
        trip(UNNA_BF, KAMEN_BF, "2026-05-02 09:30"),
    ]
    with pytest.raises(FareInputError) as info:
        best_price_multi(trips, bibo_tariffs)
    assert info.value.reason is FareInputReason.OVERLAPPING_TRIPS
    assert info.value.trip_index == 1
    assert "of trip 0" in str(info.value)


def test_the_running_total_refuses_an_overlapping_trip_and_keeps_its_state(bibo_tariffs):
    account = PricingAccount(bibo_tariffs)
    account.add(trip(SOEST_BF, LIPPSTADT_BF, "2026-05-02 09:00", minutes=40))
    with pytest.raises(FareInputError) as info:
        account.add(trip(UNNA_BF, KAMEN_BF, "2026-05-02 09:30"))
    assert info.value.reason is FareInputReason.OVERLAPPING_TRIPS
    assert (len(account.trips), account.total_cents) == (1, 620)


def test_negative_stop_count_is_refused_by_the_trip_model():
    with pytest.raises(ValueError, match="stops_travelled"):
        trip(SOEST_BF, SOEST_MARKT, "2026-05-02 09:00", stops_travelled=-1)
