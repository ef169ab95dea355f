"""The single-ticket price of one journey ("Start + Ziel = Ticket")."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from fare_engine.const import MS_PER_MINUTE
from fare_engine.errors import FareInputError, FareInputReason
from fare_engine.tariff import Tariff
from fare_engine.trips import check_in_validity, check_rider, check_stop


class Quote(BaseModel):
    """A single ticket for one journey: level, price in cents and validity (UTC epoch ms)."""

    model_config = ConfigDict(frozen=True)

    tariff_id: str
    product: str
    from_stop_id: str
    to_stop_id: str
    rider_category: str
    level: str
    price_cents: int
    validity_minutes: int
    valid_from: int
    valid_to: int
    provenance: str


def quote(tariff: Tariff, from_stop: str, to_stop: str, at_ms: int, rider: str) -> Quote:
    """Price a single ticket from `from_stop` to `to_stop` bought at `at_ms` (epoch ms)."""
    check_stop(tariff, from_stop, "from_stop", None)
    check_stop(tariff, to_stop, "to_stop", None)
    check_rider(tariff, rider, "rider", None)
    check_in_validity(tariff, at_ms, "at", None)
    product = tariff.single_product()
    level = tariff.level_between(from_stop, to_stop)
    entry = tariff.price(product, level.code, rider)
    if entry is None:
        raise FareInputError(
            FareInputReason.UNKNOWN_RIDER_CATEGORY,
            "rider",
            rider,
            f"a rider category that can buy {product.name}",
        )
    return Quote(
        tariff_id=tariff.tariff_id,
        product=product.id,
        from_stop_id=from_stop,
        to_stop_id=to_stop,
        rider_category=rider,
        level=level.code,
        price_cents=entry.cents,
        validity_minutes=level.validity_minutes,
        valid_from=at_ms,
        valid_to=at_ms + level.validity_minutes * MS_PER_MINUTE,
        provenance=entry.provenance_text(),
    )
