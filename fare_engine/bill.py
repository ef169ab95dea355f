"""The bill: which product covers which trip, what it costs and what was saved."""

from __future__ import annotations

import datetime as dt
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict

from fare_engine.money import format_cents

BILL_VERSION = 3
"""Version 2 added tariff_ids, kind/scope/detail/singles_cents per product, the
single price per trip, the solver method; version 3 parties: `seats` per product and
`persons` per trip. Earlier keys are unchanged."""


class BillSeat(BaseModel):
    """Who a product pays for on one trip: `person` "rider" (the passenger), or a
    companion by category and number ("adult 1", "child 2", "bike 1")."""

    model_config = ConfigDict(frozen=True)

    trip: int
    person: str


class BillProduct(BaseModel):
    """One bought product; `valid_from`/`valid_to` are UTC epoch ms, `valid_to` exclusive."""

    model_config = ConfigDict(frozen=True)

    product: str
    name: str
    tariff_id: str
    kind: Literal["single", "distance", "pass"]
    """single: an EinzelTicket (with changes); distance: one eezy-style check-in (one ride,
    or rides joined by changes of vehicle); pass: a ticket or cap valid for every trip in
    its window and scope."""
    level: str | None
    scope: str | None
    """Where a pass is valid (e.g. "Kreis Soest", "Bad Sassendorf + Soest"); None = everywhere."""
    rider_category: str
    price_cents: int
    valid_from: int
    valid_to: int
    covers: list[int]
    """Indexes into the caller's trip list, in boarding order (each once)."""
    seats: list[BillSeat] = []
    """Who the product pays for on each of those trips (by trip, then person): the rider,
    a companion or a bicycle of the trip's `party`. A TagesTicket24 with children free
    or a 5-person ticket has several seats on one trip; without parties one seat per
    trip, the rider's."""
    singles_cents: int
    """What the covered trips would cost one by one, each on its cheapest single fare."""
    detail: str | None
    provenance: str


class BilledTrip(BaseModel):
    """A trip as billed: its own level, its cheapest single fare, the product covering it."""

    model_config = ConfigDict(frozen=True)

    index: int
    board_stop_id: str
    board_stop_name: str
    alight_stop_id: str
    alight_stop_name: str
    board_time: int
    alight_time: int
    rider_category: str
    level: str | None
    single_cents: int
    single_product: str
    covered_by: int
    """Index into `Bill.products`: the product paying for the rider's own seat."""
    persons: list[str] = ["rider"]
    """Who rode (the rider, then the party); `single_cents` is the whole party's."""


class Bill(BaseModel):
    """The best price for one passenger's trips; amounts in integer cents."""

    model_config = ConfigDict(frozen=True)

    version: int = BILL_VERSION
    tariff_id: str
    """The first (checking) tariff; all tariffs priced with are in `tariff_ids`."""
    tariff_ids: list[str]
    currency: str
    timezone: str
    total_cents: int
    singles_total_cents: int
    """What single-journey fares alone would cost: the cheapest mix of EinzelTickets (with
    changes) and uncapped distance fares (eezy check-ins, joined ones too), no passes and
    no caps."""
    saving_cents: int
    method: str
    """How the optimum was found: "dp", "milp" (fall-back) or "plain_milp"."""
    scopes_nested: bool
    products: list[BillProduct]
    trips: list[BilledTrip]

    def to_json(self) -> str:
        return self.model_dump_json(indent=2)

    def to_text(self) -> str:
        """A readable explanation, one block per product, times in local time."""
        tz = ZoneInfo(self.timezone)
        money = self._money
        lines = [f"Bill ({' + '.join(self.tariff_ids)}), {len(self.trips)} trips"]
        if not self.products:
            lines.append("No trips, nothing to pay.")
        by_index = {t.index: t for t in self.trips}
        for k, prod in enumerate(self.products):
            level = f" Preisstufe {prod.level}" if prod.level else ""
            scope = f", valid in {prod.scope}" if prod.scope else ""
            lines.append(
                f"{k + 1}. {prod.name}{level} ({prod.rider_category}) "
                f"{money(prod.price_cents)}{scope}, {_local(prod.valid_from, tz)} – "
                f"{_local(prod.valid_to, tz)}"
            )
            if prod.detail:
                lines.append(f"     {prod.detail}")
            for index in prod.covers:
                trip = by_index[index]
                level_text = f", level {trip.level}" if trip.level else ""
                who = [s.person for s in prod.seats if s.trip == index]
                who_text = f" for {', '.join(who)}" if who != ["rider"] and who else ""
                lines.append(
                    f"     trip {trip.index}: {_local(trip.board_time, tz)} "
                    f"{trip.board_stop_name} → {trip.alight_stop_name}"
                    f" (alone: {money(trip.single_cents)}{level_text}){who_text}"
                )
            if prod.kind == "pass":
                lines.append(
                    f"     these {len(prod.covers)} trips one by one: {money(prod.singles_cents)}"
                )
        lines.append(f"Total: {money(self.total_cents)}")
        lines.append(f"Single tickets alone: {money(self.singles_total_cents)}")
        if self.saving_cents:
            lines.append(f"You save: {money(self.saving_cents)}")
        return "\n".join(lines) + "\n"

    def _money(self, cents: int) -> str:
        return format_cents(cents, self.currency)


def _local(at_ms: int, tz: ZoneInfo) -> str:
    return dt.datetime.fromtimestamp(at_ms / 1000, tz=tz).strftime("%a %d.%m.%Y %H:%M")


__all__ = ["Bill", "BillProduct", "BillSeat", "BilledTrip", "format_cents"]
