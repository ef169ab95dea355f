"""Exact best price over single tickets (with changes of vehicle) and calendar-month tickets.

A dynamic programme over the trips in boarding order: every product covers a
run of consecutive trips (a single ticket a transfer chain, a month ticket any
run inside its calendar month), so the cheapest cover of trips [0, i) extends
by one product at a time. Rolling 24 h / 7 / 30 day tickets and eezy are further
transition kinds in `_transitions`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from fare_engine.bill import Bill, BilledTrip, BillProduct
from fare_engine.const import MS_PER_MINUTE
from fare_engine.model import CalendarMonthProduct, LevelSpec, PriceEntry, SingleProduct
from fare_engine.tariff import Tariff
from fare_engine.trips import Trip, check_trips


@dataclass(frozen=True, slots=True)
class _Choice:
    """Buy `product` for trips `first`..`last` (positions in boarding order)."""

    first: int
    last: int
    product: SingleProduct | CalendarMonthProduct
    level: LevelSpec | None
    price: PriceEntry
    valid_from: int
    valid_to: int


def best_price(trips: Sequence[Trip], tariff: Tariff) -> Bill:
    """The cheapest valid set of products covering every trip exactly once."""
    order = check_trips(trips, tariff)
    ordered = [trips[k] for k in order]
    best = _solve(ordered, tariff, with_passes=True)
    singles_only = _solve(ordered, tariff, with_passes=False)
    total = sum(c.price.cents for c in best)
    singles_total = sum(c.price.cents for c in singles_only)
    products: list[BillProduct] = []
    covered_by: dict[int, int] = {}
    for n, choice in enumerate(best):
        covers = order[choice.first : choice.last + 1]
        for k in covers:
            covered_by[k] = n
        products.append(
            BillProduct(
                product=choice.product.id,
                name=choice.product.name,
                level=choice.level.code if choice.level else None,
                rider_category=ordered[choice.first].rider_category,
                price_cents=choice.price.cents,
                valid_from=choice.valid_from,
                valid_to=choice.valid_to,
                covers=covers,
                provenance=choice.price.provenance_text(),
            )
        )
    billed = [
        BilledTrip(
            index=k,
            board_stop_id=t.board_stop_id,
            board_stop_name=tariff.stop_name(t.board_stop_id),
            alight_stop_id=t.alight_stop_id,
            alight_stop_name=tariff.stop_name(t.alight_stop_id),
            board_time=t.board_time,
            alight_time=t.alight_time,
            rider_category=t.rider_category,
            level=tariff.level_between(t.board_stop_id, t.alight_stop_id).code,
            covered_by=covered_by[k],
        )
        for k, t in ((k, trips[k]) for k in order)
    ]
    return Bill(
        tariff_id=tariff.tariff_id,
        currency=tariff.currency,
        timezone=tariff.spec.timezone,
        total_cents=total,
        singles_total_cents=singles_total,
        saving_cents=singles_total - total,
        products=products,
        trips=billed,
    )


def _solve(trips: Sequence[Trip], tariff: Tariff, *, with_passes: bool) -> list[_Choice]:
    """Cheapest cover of trips (in boarding order); ties keep the earlier-found choice."""
    n = len(trips)
    cost: list[int | None] = [0] + [None] * n
    back: list[_Choice | None] = [None] * (n + 1)
    for i in range(n):
        base = cost[i]
        if base is None:
            continue
        for choice in _transitions(trips, i, tariff, with_passes=with_passes):
            candidate = base + choice.price.cents
            current = cost[choice.last + 1]
            if current is None or candidate < current:
                cost[choice.last + 1] = candidate
                back[choice.last + 1] = choice
    chosen: list[_Choice] = []
    end = n
    while end > 0:
        step = back[end]
        if step is None:  # every trip has a single ticket, so this cannot happen
            raise LookupError(f"no product covers trip position {end - 1}")
        chosen.append(step)
        end = step.first
    return chosen[::-1]


def _transitions(
    trips: Sequence[Trip], i: int, tariff: Tariff, *, with_passes: bool
) -> Iterator[_Choice]:
    yield from _single_choices(trips, i, tariff)
    if with_passes:
        for product in tariff.calendar_month_products():
            yield from _calendar_month_choices(trips, i, tariff, product)


def _single_choices(trips: Sequence[Trip], i: int, tariff: Tariff) -> Iterator[_Choice]:
    product = tariff.single_product()
    start = trips[i]
    for level in tariff.levels_by_rank():
        price = tariff.price(product, level.code, start.rider_category)
        if price is None:
            continue
        valid_to = start.board_time + level.validity_minutes * MS_PER_MINUTE
        for last in _chain(trips, i, level, valid_to, tariff, product.allow_return_trip):
            yield _Choice(i, last, product, level, price, start.board_time, valid_to)


def _chain(
    trips: Sequence[Trip],
    i: int,
    level: LevelSpec,
    valid_to: int,
    tariff: Tariff,
    allow_return_trip: bool,
) -> Iterator[int]:
    """Positions of the last trip a ticket of `level` bought for trip `i` can cover."""
    start = trips[i]

    def within_level(board: str, alight: str) -> bool:
        return tariff.level_between(board, alight).rank <= level.rank

    if not within_level(start.board_stop_id, start.alight_stop_id):
        return
    yield i
    visited = {start.board_stop_id, start.alight_stop_id}
    for j in range(i + 1, len(trips)):
        trip, prev = trips[j], trips[j - 1]
        if not (
            _boards_within_validity(trip, valid_to)
            and _continues_from(trip, prev)
            and trip.rider_category == start.rider_category
            and within_level(trip.board_stop_id, trip.alight_stop_id)
            and within_level(start.board_stop_id, trip.alight_stop_id)
            and (allow_return_trip or trip.alight_stop_id not in visited)
        ):
            return
        visited.add(trip.alight_stop_id)
        yield j


def _boards_within_validity(trip: Trip, valid_to: int) -> bool:
    return trip.board_time < valid_to


def _continues_from(trip: Trip, prev: Trip) -> bool:
    return trip.board_stop_id == prev.alight_stop_id


def _calendar_month_choices(
    trips: Sequence[Trip], i: int, tariff: Tariff, product: CalendarMonthProduct
) -> Iterator[_Choice]:
    price = tariff.price(product, None, trips[i].rider_category)
    if price is None:
        return
    month_start, month_end = _month_bounds(trips[i].board_time, tariff.tz)
    for j in range(i, len(trips)):
        if trips[j].board_time >= month_end:
            return
        yield _Choice(i, j, product, None, price, month_start, month_end)


def _month_bounds(at_ms: int, tz: ZoneInfo) -> tuple[int, int]:
    """[first instant, first instant of next month) of the local calendar month, epoch ms."""
    local = dt.datetime.fromtimestamp(at_ms / 1000, tz=tz)
    start = dt.datetime(local.year, local.month, 1, tzinfo=tz)
    nxt = dt.datetime(local.year + (local.month == 12), local.month % 12 + 1, 1, tzinfo=tz)
    return int(start.timestamp()) * 1000, int(nxt.timestamp()) * 1000
