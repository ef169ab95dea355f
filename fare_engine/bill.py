"""The bill: which product covers which trip, what it costs and what was saved."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict


class BillProduct(BaseModel):
    """One bought product; `valid_from`/`valid_to` are UTC epoch ms, `valid_to` exclusive."""

    model_config = ConfigDict(frozen=True)

    product: str
    name: str
    level: str | None
    rider_category: str
    price_cents: int
    valid_from: int
    valid_to: int
    covers: list[int]
    """Indexes into the caller's trip list, in boarding order."""
    provenance: str


class BilledTrip(BaseModel):
    """A trip as billed: its own single-ticket level and the product that covers it."""

    model_config = ConfigDict(frozen=True)

    index: int
    board_stop_id: str
    board_stop_name: str
    alight_stop_id: str
    alight_stop_name: str
    board_time: int
    alight_time: int
    rider_category: str
    level: str
    covered_by: int
    """Index into `Bill.products`."""


class Bill(BaseModel):
    """The best price for one passenger's trips; amounts in integer cents."""

    model_config = ConfigDict(frozen=True)

    version: int = 1
    tariff_id: str
    currency: str
    timezone: str
    total_cents: int
    singles_total_cents: int
    """What the cheapest combination of single tickets alone would cost."""
    saving_cents: int
    products: list[BillProduct]
    trips: list[BilledTrip]

    def to_json(self) -> str:
        return self.model_dump_json(indent=2)

    def to_text(self) -> str:
        """A readable explanation, one block per product, times in local time."""
        tz = ZoneInfo(self.timezone)
        lines = [f"Bill ({self.tariff_id}), {len(self.trips)} trips"]
        if not self.products:
            lines.append("No trips, nothing to pay.")
        for k, prod in enumerate(self.products):
            level = f" Preisstufe {prod.level}" if prod.level else ""
            lines.append(
                f"{k + 1}. {prod.name}{level} ({prod.rider_category}) "
                f"{format_cents(prod.price_cents)}, valid {_local(prod.valid_from, tz)} – "
                f"{_local(prod.valid_to, tz)}"
            )
            for trip in (t for t in self.trips if t.covered_by == k):
                lines.append(
                    f"     trip {trip.index}: {_local(trip.board_time, tz)} "
                    f"{trip.board_stop_name} → {trip.alight_stop_name} "
                    f"(level {trip.level})"
                )
        lines.append(f"Total: {format_cents(self.total_cents)}")
        lines.append(f"Single tickets alone: {format_cents(self.singles_total_cents)}")
        if self.saving_cents:
            lines.append(f"You save: {format_cents(self.saving_cents)}")
        return "\n".join(lines) + "\n"


def format_cents(cents: int) -> str:
    """Cents as German-style euros, e.g. 310 -> '3,10 €'."""
    return f"{cents // 100},{cents % 100:02d} €"


def _local(at_ms: int, tz: ZoneInfo) -> str:
    return dt.datetime.fromtimestamp(at_ms / 1000, tz=tz).strftime("%a %d.%m.%Y %H:%M")
