"""A brute-force best price for small instances (<= 8 trips), written independently of the
engine's search: every subset of trips is checked against every product by the tariff's
rules as stated, then the cheapest partition of the trips into such blocks is found by
enumeration over subsets (3^n). Only the per-ride facts (a ride's price level, its
Einzel and distance fares) and straight-line distances come from the engine; they have
golden tests of their own. A joined eezy check-in (rides with `joins_previous`) is priced
here from the rule's words (docs/tariff-sources.md, "eezy").

Parties (`Trip.party`) are priced here per person: every person and bicycle of a ride
is a seat (a companion is known by category and number on every ride); a block of one
person's seats takes that person's products as above, a block of several persons' seats
only a party ticket (`PassProduct.group`): a one-person ticket whose holder is in the
block and whose other persons are at most `free_count` of the free categories riding
on the holder's rides, or a ticket for up to `persons` people of its categories.
Rider categories with `prices_as` are resolved here from the file's words.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Sequence
from dataclasses import dataclass

from fare_engine import Tariff, Trip
from fare_engine.geo import distance_m, started_km
from fare_engine.model import (
    CalendarMonthProduct,
    DistanceProduct,
    PassProduct,
    PeriodKind,
    PeriodSpec,
    Relation,
    SingleProduct,
)
from fare_engine.offers import MONTH_PERIOD, view_of
from fare_engine.trips import trip_sort_key

MAX_TRIPS = 8


@dataclass(frozen=True)
class Option:
    """One product that can cover a block of trips."""

    tariff_id: str
    product: str
    level: str | None
    cents: int


def sorted_trips(trips: Sequence[Trip]) -> list[Trip]:
    return sorted(trips, key=trip_sort_key)


def positions(trips: Sequence[Trip]) -> list[int]:
    """Each trip's position in `sorted_trips(trips)` (equal trips keep the caller's order,
    as in the engine, so that two equal rides map to two positions)."""
    order = sorted(range(len(trips)), key=lambda k: trip_sort_key(trips[k]))
    where = [0] * len(trips)
    for position, k in enumerate(order):
        where[k] = position
    return where


def seats(trips: Sequence[Trip]) -> tuple[list[Trip], list[int]]:
    """Every person's seats, person by person (the rider first), each in boarding order,
    and the person of each seat. A companion rides on as one check-in only if they were
    on the rider's previous ride too."""
    ordered = sorted_trips(trips)
    out, who = list(ordered), [0] * len(ordered)
    companions = sorted({(c, k) for t in ordered for c, n in (t.party or ()) for k in range(n)})
    for person, (category, k) in enumerate(companions, start=1):
        before = False
        for t in ordered:
            here = dict(t.party or ()).get(category, 0) > k
            if here:
                seat = t.model_copy(
                    update={
                        "rider_category": category,
                        "party": None,
                        "joins_previous": t.joins_previous and before,
                    }
                )
                out.append(seat)
                who.append(person)
            before = here
    return out, who


def best_total(trips: Sequence[Trip], tariffs: Sequence[Tariff]) -> int:
    """The minimum over all partitions of the seats into blocks each covered by one product."""
    ordered, who = seats(trips)
    n = len(ordered)
    assert n <= MAX_TRIPS
    cost = [
        min((o.cents for o in seat_options(ordered, who, mask, tariffs)), default=None)
        for mask in range(1 << n)
    ]
    full = (1 << n) - 1
    best: list[int | None] = [None] * (1 << n)
    best[0] = 0
    for s in range(1, full + 1):
        low = s & -s
        rest = s ^ low
        sub = rest
        found: int | None = None
        while True:
            block = sub | low
            c = cost[block]
            prev = best[s ^ block]
            if c is not None and prev is not None and (found is None or c + prev < found):
                found = c + prev
            if sub == 0:
                break
            sub = (sub - 1) & rest
        best[s] = found
    total = best[full]
    assert total is not None, "some trip cannot be covered"
    return total


def seat_options(
    ordered: list[Trip], who: list[int], mask: int, tariffs: Sequence[Tariff]
) -> list[Option]:
    """Products for a block of seats (`who`: the person of each seat): one person's
    products, or a party ticket."""
    persons = {who[k] for k in range(len(ordered)) if mask >> k & 1}
    if len(persons) <= 1:
        return options(ordered, mask, tariffs)
    block = [ordered[k] for k in range(len(ordered)) if mask >> k & 1]
    by_person: dict[int, list[Trip]] = {}
    for k in range(len(ordered)):
        if mask >> k & 1:
            by_person.setdefault(who[k], []).append(ordered[k])
    found: list[Option] = []
    for tariff in tariffs:
        start, end = tariff.validity_ms()
        if not all(start <= t.board_time < end for t in block):
            continue
        for product in tariff.spec.products:
            if not isinstance(product, PassProduct) or product.group is None:
                continue
            group = product.group
            priced = {
                p: _priced_as(tariff, product, ts[0].rider_category) for p, ts in by_person.items()
            }
            if group.persons > 1:
                allowed = product.riders or list(priced.values())
                if len(persons) <= group.persons and all(r in allowed for r in priced.values()):
                    rider = next(iter(priced.values()))
                    found += _passes(tariff, product, block, rider)
                continue
            for holder in set(who):
                # The holder rides along on the others' rides (their own seats there may
                # be paid by another ticket of theirs).
                times = {t.board_time for k, t in enumerate(ordered) if who[k] == holder}
                category = next(t.rider_category for k, t in enumerate(ordered) if who[k] == holder)
                others = [p for p in by_person if p != holder]
                if len(others) > group.free_count:
                    continue
                if not all(priced[p] in group.free_riders for p in others):
                    continue
                if not all(t.board_time in times for p in others for t in by_person[p]):
                    continue
                found += _passes(tariff, product, block, _priced_as(tariff, product, category))
    return found


def _priced_as(tariff: Tariff, product: object, rider: str) -> str:
    """The category `rider` buys `product` as: itself where the product names it, else its
    `prices_as` (the file's words)."""
    if isinstance(product, DistanceProduct):
        named = {s.rider for s in product.rider_percent}
    else:
        assert isinstance(product, SingleProduct | PassProduct | CalendarMonthProduct)
        named = set(product.riders or []) | {p.rider for p in product.prices if p.rider}
    spec = next(r for r in tariff.spec.riders if r.id == rider)
    return rider if rider in named or spec.prices_as is None else spec.prices_as


def options(ordered: list[Trip], mask: int, tariffs: Sequence[Tariff]) -> list[Option]:
    """Every product that may cover exactly the trips in `mask` (positions in boarding order)."""
    if mask == 0:
        return []
    block = [k for k in range(len(ordered)) if mask >> k & 1]
    trips = [ordered[k] for k in block]
    found: list[Option] = []
    for tariff in tariffs:
        view = view_of(tariff)
        start, end = tariff.validity_ms()
        if not all(start <= t.board_time < end for t in trips):
            continue
        facts = [view.ride(t) for t in trips]
        if any(f is None for f in facts):
            continue
        if len({t.rider_category for t in trips}) != 1:
            continue
        rider = trips[0].rider_category
        if len(trips) == 1:
            for fare in facts[0].singles:  # type: ignore[union-attr]
                level = fare.level.code if fare.level else None
                found.append(Option(tariff.tariff_id, fare.product.id, level, fare.cents))
        consecutive = block == list(range(block[0], block[-1] + 1))
        for product in tariff.spec.products:
            if isinstance(product, SingleProduct) and len(trips) > 1 and consecutive:
                found += _einzel_chain(tariff, product, trips, rider)
            elif isinstance(product, PassProduct | CalendarMonthProduct):
                if isinstance(product, PassProduct) and product.group and product.group.persons > 1:
                    continue  # a ticket for several persons is bought for a party
                found += _passes(tariff, product, trips, _priced_as(tariff, product, rider))
            elif isinstance(product, DistanceProduct) and len(trips) > 1 and consecutive:
                singles = [f.distance_cents.get(product.id) for f in facts]  # type: ignore[union-attr]
                found += _check_in(
                    tariff, product, trips, _priced_as(tariff, product, rider), singles
                )
    return found


def _check_in(
    tariff: Tariff,
    product: DistanceProduct,
    trips: list[Trip],
    rider: str,
    singles: list[int | None],
) -> list[Option]:
    """One eezy check-in over rides joined by changes: offered while no ride makes the
    check-in cheaper than the one without it (the first ride alone: its own fare)."""
    if product.check_in_across_changes is None or not all(t.joins_previous for t in trips[1:]):
        return []
    if any(c is None for c in singles):
        return []
    previous = singles[0]
    assert previous is not None
    for end in range(2, len(trips) + 1):
        cents = _journey_cents(tariff, product, trips[:end], rider)
        if cents < previous:
            return []
        previous = cents
    return [Option(tariff.tariff_id, product.id, None, previous)]


def _journey_cents(tariff: Tariff, product: DistanceProduct, trips: list[Trip], rider: str) -> int:
    """From the first boarding stop to the last alighting stop; if some stop of the journey
    is farther from the start than the end is, split at the (first) farthest one."""

    def metres(a: str, b: str) -> float:
        sa, sb = tariff.stop(a), tariff.stop(b)
        return distance_m(sa.lat, sa.lon, sb.lat, sb.lon)

    start, end = trips[0].board_stop_id, trips[-1].alight_stop_id
    far = max((s for t in trips for s in _points(t)), key=lambda s: metres(start, s))
    legs = [(start, end)]
    if product.split_round_trips is not None and metres(start, far) > metres(start, end):
        legs = [(start, far), (far, end)]
    percent = next(p.percent for p in product.rider_percent if p.rider == rider)
    total = 0
    for a, b in legs:
        if a == b and product.same_stop_free is not None:
            continue
        adult = product.base.cents + product.per_started_km.cents * started_km(metres(a, b))
        total += (adult * percent + 50) // 100
    return total


def _einzel_chain(
    tariff: Tariff, product: SingleProduct, trips: list[Trip], rider: str
) -> list[Option]:
    out = []
    points = [_points(t) for t in trips]
    for level in tariff.spec.levels:
        if not level.changes or level.max_further_stops is not None:
            continue
        price = tariff.price(product, level.code, rider)
        if price is None:
            continue
        limit = trips[0].board_time + level.validity_minutes * 60_000
        if any(t.board_time >= limit for t in trips):
            continue
        ok = True
        for k, t in enumerate(trips):
            if _ride_rank(tariff, points[k]) > level.rank:
                ok = False
            for earlier in range(k):
                board = trips[earlier].board_stop_id
                if any(tariff.level_between(board, q).rank > level.rank for q in points[k]):
                    ok = False
                if not product.allow_return_trip and t.alight_stop_id in points[earlier]:
                    ok = False
        if ok:
            out.append(Option(tariff.tariff_id, product.id, level.code, price.cents))
    return out


def _points(t: Trip) -> tuple[str, ...]:
    mid = (t.farthest_stop_id,) if t.farthest_stop_id else ()
    return (t.board_stop_id, *mid, t.alight_stop_id)


def _ride_rank(tariff: Tariff, points: tuple[str, ...]) -> int:
    ranks = [tariff.level_between(a, b).rank for a, b in itertools.pairwise(points)]
    ranks.append(tariff.level_between(points[0], points[-1]).rank)
    return max(ranks)


def _passes(
    tariff: Tariff, product: PassProduct | CalendarMonthProduct, trips: list[Trip], rider: str
) -> list[Option]:
    if product.riders is not None and rider not in product.riders:
        return []
    period = product.period if isinstance(product, PassProduct) else MONTH_PERIOD
    caps = product.caps if isinstance(product, PassProduct) else None
    if caps is not None and not all(_cappable(tariff, caps, t) for t in trips):
        return []
    start, end = _window(period, tariff, trips[0].board_time)
    for t in trips:
        if not start <= t.board_time < end:
            return []
        if period.trips_must_end_inside and not t.alight_time < end:
            return []
    areas = _areas(tariff, trips)
    out = []
    for entry in product.prices:
        if entry.rider not in (None, rider):
            continue
        if entry.areas is not None:
            ok = areas is not None and areas <= set(entry.areas)
        elif entry.level is not None:
            relation = tariff.level(entry.level).pass_scope
            ok = (
                areas is not None
                and relation is not None
                and _relation_holds(tariff, relation, areas)
            )
        else:
            ok = True
        if ok:
            out.append(Option(tariff.tariff_id, product.id, entry.level, entry.cents))
    return out


def _cappable(tariff: Tariff, caps: str, trip: Trip) -> bool:
    capped = next(p for p in tariff.spec.products if p.id == caps)
    if isinstance(capped, DistanceProduct):
        rider = _priced_as(tariff, capped, trip.rider_category)
        return any(s.rider == rider for s in capped.rider_percent)
    assert isinstance(capped, SingleProduct)
    return any(
        tariff.price(capped, level.code, trip.rider_category) is not None
        for level in tariff.spec.levels
    )


def _areas(tariff: Tariff, trips: list[Trip]) -> set[str] | None:
    if not tariff.has_zones():
        return None
    return {tariff.area_of_stop(s).code for t in trips for s in _points(t)}


def _relation_holds(tariff: Tariff, relation: Relation, areas: set[str]) -> bool:
    specs = [tariff.area(a) for a in areas]
    if relation is Relation.SAME_AREA:
        return len(areas) == 1
    if relation is Relation.NEIGHBOURING_AREAS:
        if len(areas) == 1:
            return bool(tariff.neighbours_of(next(iter(areas))))
        a, b = sorted(areas) if len(areas) == 2 else ("", "")
        return len(areas) == 2 and tariff.are_neighbours(a, b)
    if relation is Relation.SAME_KREIS:
        return specs[0].kreis is not None and all(s.kreis == specs[0].kreis for s in specs)
    return specs[0].teilraum is not None and all(s.teilraum == specs[0].teilraum for s in specs)


def _window(period: PeriodSpec, tariff: Tariff, first_board: int) -> tuple[int, int]:
    """The window of a pass first used at `first_board`, computed from the rule's words."""
    if period.kind is PeriodKind.ROLLING:
        assert period.minutes is not None
        return first_board, first_board + period.minutes * 60_000
    tz = tariff.tz
    local = dt.datetime.fromtimestamp(first_board / 1000, tz=tz)
    day = local.date() if local.time() >= period.day_starts_at else local.date() - dt.timedelta(1)
    if period.kind is PeriodKind.DAYS:
        assert period.days is not None
        first, last = day, day + dt.timedelta(days=period.days)
    elif period.kind is PeriodKind.WEEK:
        weekday = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
        back = (day.weekday() - weekday.index(period.week_starts_on)) % 7
        first = day - dt.timedelta(days=back)
        last = first + dt.timedelta(days=7)
    else:
        first = day.replace(day=1)
        last = (first + dt.timedelta(days=32)).replace(day=1)

    def at(d: dt.date) -> int:
        return int(dt.datetime.combine(d, period.day_starts_at, tzinfo=tz).timestamp() * 1000)

    return at(first), at(last)
