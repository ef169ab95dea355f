"""The single-journey price of one ride: EinzelTicket ("Start + Ziel = Ticket"), Kurzstrecke
or a distance fare (eezy), whichever the tariff sells and is cheapest."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from fare_engine.const import MS_PER_MINUTE
from fare_engine.errors import FareInputError, FareInputReason
from fare_engine.offers import view_of
from fare_engine.tariff import Tariff
from fare_engine.trips import Trip, check_in_validity, check_rider, check_stop


class Quote(BaseModel):
    """A single-journey fare: product, level, price in cents, validity (UTC epoch ms)."""

    model_config = ConfigDict(frozen=True)

    tariff_id: str
    product: str
    from_stop_id: str
    to_stop_id: str
    rider_category: str
    level: str | None
    price_cents: int
    validity_minutes: int | None
    valid_from: int
    valid_to: int | None
    detail: str | None
    provenance: str


def quote(
    tariff: Tariff,
    from_stop: str,
    to_stop: str,
    at_ms: int,
    rider: str,
    *,
    stops_travelled: int | None = None,
) -> Quote:
    """Price a single journey from `from_stop` to `to_stop` starting at `at_ms` (epoch ms).

    `stops_travelled` (stops after the boarding stop) lets a Kurzstrecke apply.
    """
    check_stop(tariff, from_stop, "from_stop", None)
    check_stop(tariff, to_stop, "to_stop", None)
    check_rider(tariff, rider, "rider", None)
    check_in_validity(tariff, at_ms, "at", None)
    ride = Trip(
        board_stop_id=from_stop,
        alight_stop_id=to_stop,
        board_time=at_ms,
        alight_time=at_ms,
        rider_category=rider,
        stops_travelled=stops_travelled,
    )
    facts = view_of(tariff).ride(ride)
    if facts is None or not facts.singles:
        raise FareInputError(
            FareInputReason.UNKNOWN_RIDER_CATEGORY,
            "rider",
            rider,
            f"a rider category that can buy a single journey in {tariff.tariff_id}",
        )
    fare = min(facts.singles, key=lambda f: f.cents)
    minutes = fare.level.validity_minutes if fare.level is not None else None
    return Quote(
        tariff_id=tariff.tariff_id,
        product=fare.product.id,
        from_stop_id=from_stop,
        to_stop_id=to_stop,
        rider_category=rider,
        level=fare.level.code if fare.level is not None else None,
        price_cents=fare.cents,
        validity_minutes=minutes,
        valid_from=at_ms,
        valid_to=at_ms + minutes * MS_PER_MINUTE if minutes is not None else None,
        detail=fare.detail,
        provenance=fare.entry.provenance_text(),
    )
