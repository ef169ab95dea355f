"""What each tariff offers for one trip, independent of the passenger's other trips.

A `TariffView` is built once per tariff and caches, per distinct ride (stops,
rider, stops travelled, mode), the facts pricing needs: the Tarifgebiete it
touches and its price level, its single-journey fares (EinzelTicket levels,
Kurzstrecke, eezy) and the scopes a pass may have to contain it; and the fare of
one eezy check-in over several rides joined by changes of vehicle.
"""

from __future__ import annotations

import datetime as dt
import itertools
import weakref
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Literal

from fare_engine.const import MS_PER_MINUTE
from fare_engine.geo import distance_m, started_km
from fare_engine.model import (
    CalendarMonthProduct,
    DistanceProduct,
    LevelSpec,
    PassProduct,
    PeriodKind,
    PeriodSpec,
    PriceEntry,
    Provenance,
    Relation,
    SingleProduct,
)
from fare_engine.money import format_cents
from fare_engine.periods import after_last_day, first_day, local_ms
from fare_engine.tariff import Tariff
from fare_engine.trips import Trip

MONTH_PERIOD = PeriodSpec(
    kind=PeriodKind.MONTH,
    assumed="a calendar_month product is valid from the 1st 00:00 to the next 1st 00:00",
)
"""The period of the version-1 `calendar_month` kind (Deutschlandticket)."""

RideKey = tuple[str, str, str | None, str, int | None, str]


_RIDE_KEY = attrgetter(
    "board_stop_id",
    "alight_stop_id",
    "farthest_stop_id",
    "rider_category",
    "stops_travelled",
    "mode",
)


def ride_key(trip: Trip) -> RideKey:
    """What a trip's own prices depend on (not its time): stops, rider, stops travelled,
    mode."""
    key: RideKey = _RIDE_KEY(trip)
    return key


def ride_keys(trips: Iterable[Trip]) -> list[RideKey]:
    """`ride_key` of each trip (one C-level getter over all of them)."""
    return list(map(_RIDE_KEY, trips))


OfferKind = Literal["single", "distance", "pass"]


@dataclass(frozen=True, slots=True)
class Offer:
    """What a candidate product buys, in the words the bill prints (independent of time)."""

    tariff: Tariff
    product_id: str
    product_name: str
    kind: OfferKind
    level: str | None
    scope: str | None
    rider: str
    entry: Provenance
    period: PeriodSpec | None
    detail: str | None
    scope_areas: frozenset[str] | None = None
    caps: str | None = None
    bill_fields: dict[str, str | None] = field(init=False, repr=False, compare=False)
    """The keys of `bill.BillProduct` that depend on the offer alone, as the bill shows them
    (a dict to copy, never to change). Worked out once here: an offer is made once per
    ride, option or check-in and cached, while a bill shows it for every product."""
    label: str = field(init=False, repr=False, compare=False)
    """Product name with its level, e.g. "EinzelTicket 4" (worked out once, as
    `bill_fields`: the bill shows each trip's cheapest single)."""
    span_ms: int | None = field(init=False, repr=False, compare=False)
    """How long it is valid from its first boarding, where that is fixed: an EinzelTicket
    (its level's validity), a rolling pass; None for others (`pricing._validity`)."""

    def __post_init__(self) -> None:
        detail = self.detail
        if self.kind == "pass" and self.period is not None:
            detail = pass_detail(self.period.kind, self.period.trips_must_end_inside)
        fields = {
            "product": self.product_id,
            "name": self.product_name,
            "tariff_id": self.tariff.tariff_id,
            "kind": self.kind,
            "level": self.level,
            "scope": self.scope,
            "rider_category": self.rider,
            "detail": detail,
            "provenance": self.entry.provenance_text(),
        }
        # (A frozen dataclass sets a field it derives itself through object.__setattr__.)
        object.__setattr__(self, "bill_fields", fields)
        label = f"{self.product_name} {self.level}" if self.level else self.product_name
        object.__setattr__(self, "label", label)
        span: int | None = None
        period = self.period
        if self.kind == "single" and self.level is not None:
            span = self.tariff.level(self.level).validity_minutes * MS_PER_MINUTE
        elif self.kind == "pass" and period is not None and period.kind is PeriodKind.ROLLING:
            span = (period.minutes or 0) * MS_PER_MINUTE
        object.__setattr__(self, "span_ms", span)


@dataclass(frozen=True, slots=True)
class ZoneRide:
    """A ride in a zone tariff: Tarifgebiete touched, level, stops in ride order."""

    areas: frozenset[str]
    level: LevelSpec
    points: tuple[str, ...]
    areas_in_order: tuple[str, ...]
    """The Tarifgebiet of each of `points`."""


@dataclass(frozen=True, slots=True)
class SingleFare:
    """A single-journey price of one ride (one EinzelTicket level, or one eezy fare)."""

    product: SingleProduct | DistanceProduct
    level: LevelSpec | None
    cents: int
    entry: Provenance
    detail: str | None
    offer: Offer


@dataclass(frozen=True, slots=True)
class Scope:
    """Where a pass is valid: a set of Tarifgebiete (None = everywhere it prices)."""

    areas: frozenset[str] | None
    label: str | None


@dataclass(frozen=True, slots=True)
class PassOption:
    """One pass a ride could be covered by: product, price, period and scope."""

    cents: int
    period: PeriodSpec
    scope_areas: frozenset[str] | None
    caps: str | None
    via: str | None
    """For a pass of two neighbouring towns bought for a ride inside one: the other town."""
    offer: Offer
    group: int
    """Same number for the same (period, caps, scope, rider, price) within a tariff view."""
    kind_key: tuple[object, ...] = field(init=False, repr=False, compare=False)
    """Time zone, rider and period (by value): passes equal in it differ only in scope and
    price, so one covering another's trips for no more money makes it useless
    (`instance._drop_dominated_groups`)."""

    def __post_init__(self) -> None:
        p = self.period
        key = (
            str(self.offer.tariff.tz), self.offer.rider, p.kind, p.minutes, p.days,
            p.day_starts_at, p.week_starts_on, p.trips_must_end_inside,
        )  # fmt: skip
        object.__setattr__(self, "kind_key", key)


class PassShape:
    """What a ride's pass options look like to the search of pass groups (`instance`): the
    sequence of (group, via, product, level) of its options. One object per distinct
    sequence in a tariff view, so that rides of the same shape are told by identity."""

    __slots__ = ()


@dataclass(slots=True)
class RideFacts:
    """Everything a tariff says about one ride, independent of time and other rides."""

    zone: ZoneRide | None
    singles: list[SingleFare]
    single_zone_levels: list[SingleFare]
    """EinzelTicket levels (rank >= the ride's level, Kurzstrecke if it qualifies)."""
    distance_fares: list[SingleFare]
    distance_cents: dict[str, int] = field(default_factory=dict)
    """Distance product id -> fare (for caps: which trips a cap may cover)."""
    cheapest: SingleFare | None = None
    """The cheapest single-journey fare of the ride alone."""
    passes: list[PassOption] | None = None
    """Filled on first use (`TariffView.pass_options`)."""
    shape: PassShape | None = None
    """Filled on first use (`TariffView.pass_shape`)."""


class TariffView:
    """A tariff's products in the shape the best-price search needs; cached per ride."""

    def __init__(self, tariff: Tariff) -> None:
        self.tariff = tariff
        self.valid_from, self.valid_to = tariff.validity_ms()
        self.single = next(iter(tariff.single_products()), None)
        self.levels = tariff.levels_by_rank()
        self.distance = tariff.distance_products()
        self.passes: list[tuple[PassProduct | CalendarMonthProduct, PeriodSpec, str | None]] = [
            (p, p.period, p.caps)
            for p in tariff.pass_products()
            if p.group is None or p.group.persons == 1
        ]
        self.group_passes = [p for p in tariff.pass_products() if p.group is not None]
        """Passes that may cover a party (`instance._Builder._group_candidates`); those for
        several persons are offered only there."""
        self.passes += [(p, MONTH_PERIOD, None) for p in tariff.calendar_month_products()]
        self._rides: dict[RideKey, RideFacts | None] = {}
        self.ride_rows: dict[tuple[TariffView, ...], dict[RideKey, RideRow]] = {}
        """`ride_rows` of this tariff followed by others."""
        chaining = [
            lv.validity_minutes for lv in self.levels if lv.changes and lv.max_further_stops is None
        ]
        self.max_chain_ms = max(chaining, default=0) * MS_PER_MINUTE if self.single else 0
        """No EinzelTicket reaches a trip boarding this long after the first one."""
        self._groups: dict[tuple[int, str | None, frozenset[str] | None, str, int], int] = {}
        self._windows: dict[int, dict[dt.date, tuple[int, int]]] = {}
        self.ranks: dict[tuple[str, str], int] = {}
        """`rank_between` of the pairs of Tarifgebiete looked up so far (it fills it)."""
        self._area_scope_cache: dict[frozenset[str], Scope] = {}
        self._metres: dict[tuple[str, str], float] = {}
        self._check_ins: dict[tuple[str, str, str, str, str | None], SingleFare | None] = {}
        self._group_opts: dict[tuple[str, int, str | None], list[tuple[PassOption, str | None]]]
        self._group_opts = {}
        self._cheapest_groups: dict[tuple[str, int], int | None] = {}
        self._shapes: dict[tuple[tuple[int, str | None, str, str | None], ...], PassShape] = {}

    def rank_between(self, start_area: str, dest_area: str) -> int:
        """Rank of the price level between two Tarifgebiete (cached)."""
        key = (start_area, dest_area)
        rank = self.ranks.get(key)
        if rank is None:
            rank = self.tariff.level_between_areas(start_area, dest_area).rank
            self.ranks[key] = rank
        return rank

    def calendar_window(self, period: PeriodSpec, day: dt.date) -> tuple[int, int]:
        """[start, end) in epoch ms of the calendar window of `period` containing local `day`."""
        windows = self.windows_of(period)
        found = windows.get(day)
        if found is None:
            first = first_day(period, day)
            tz = self.tariff.tz
            found = (
                local_ms(first, period.day_starts_at, tz),
                local_ms(after_last_day(period, first), period.day_starts_at, tz),
            )
            windows[day] = found
        return found

    def windows_of(self, period: PeriodSpec) -> dict[dt.date, tuple[int, int]]:
        """The calendar windows of `period` worked out so far, by local day (filled by
        `calendar_window`; for a caller looking up many days)."""
        found = self._windows.get(id(period))
        if found is None:
            found = self._windows[id(period)] = {}
        return found

    def covers_time(self, board_ms: int) -> bool:
        return self.valid_from <= board_ms < self.valid_to

    def knows(self, trip: Trip) -> bool:
        t = self.tariff
        return (
            t.has_rider(trip.rider_category)
            and t.has_stop(trip.board_stop_id)
            and t.has_stop(trip.alight_stop_id)
            and (trip.farthest_stop_id is None or t.has_stop(trip.farthest_stop_id))
        )

    # --- one ride -------------------------------------------------------------------
    def ride(self, trip: Trip, key: RideKey | None = None) -> RideFacts | None:
        """The tariff's facts for a ride; None if the tariff does not know it.

        `key` is `ride_key(trip)` if the caller has it already."""
        if key is None:
            key = ride_key(trip)
        try:
            return self._rides[key]
        except KeyError:
            facts = self._build_ride(trip) if self.knows(trip) else None
            self._rides[key] = facts
            return facts

    def _build_ride(self, trip: Trip) -> RideFacts:
        zone = self._zone_ride(trip) if self.tariff.has_zones() else None
        rider = trip.rider_category
        levels: list[SingleFare] = []
        if self.single is not None and zone is not None:
            for level in self.levels:
                entry = self.tariff.price(self.single, level.code, rider)
                if entry is None or not _level_fits(level, zone, trip):
                    continue
                offer = Offer(
                    self.tariff, self.single.id, entry.name or self.single.name, "single",
                    level.code, None, rider, entry, None, None,
                )  # fmt: skip
                levels.append(SingleFare(self.single, level, entry.cents, entry, None, offer))
        fares: list[SingleFare] = []
        for product in self.distance:
            fare = self._distance_fare(product, trip)
            if fare is not None:
                fares.append(fare)
        distance = {f.product.id: f.cents for f in fares}
        singles = levels + fares
        cheapest = min(singles, key=lambda f: f.cents) if singles else None
        return RideFacts(zone, singles, levels, fares, distance, cheapest=cheapest)

    def _zone_ride(self, trip: Trip) -> ZoneRide:
        t = self.tariff
        middle = () if trip.farthest_stop_id is None else (trip.farthest_stop_id,)
        points: tuple[str, ...] = (trip.board_stop_id, *middle, trip.alight_stop_id)
        areas = [t.area_of_stop(s).code for s in points]
        level = max(
            (t.level_between_areas(a, b) for a, b in itertools.pairwise(areas)),
            key=lambda lv: lv.rank,
        )
        if len(areas) == 3:  # a round trip: also from start to end
            end_to_end = t.level_between_areas(areas[0], areas[2])
            level = max(level, end_to_end, key=lambda lv: lv.rank)
        return ZoneRide(frozenset(areas), level, points, tuple(areas))

    def _distance_fare(self, product: DistanceProduct, trip: Trip) -> SingleFare | None:
        percent = self.tariff.distance_percent(product, trip.rider_category)
        if percent is None:
            return None
        legs = [(trip.board_stop_id, trip.alight_stop_id)]
        far = trip.farthest_stop_id
        if (
            far is not None
            and product.split_round_trips is not None
            and far not in (trip.board_stop_id, trip.alight_stop_id)
        ):
            legs = [(trip.board_stop_id, far), (far, trip.alight_stop_id)]
        cents, detail = self._legs(product, percent, legs)
        offer = Offer(
            self.tariff, product.id, product.name, "distance", None, None,
            trip.rider_category, product.per_started_km, None, detail,
        )  # fmt: skip
        return SingleFare(product, None, cents, product.per_started_km, detail, offer)

    def _legs(
        self, product: DistanceProduct, percent: int, legs: list[tuple[str, str]]
    ) -> tuple[int, str]:
        """The fare of a check-in priced as these legs, and the words explaining it."""
        cents, parts = 0, []
        currency = self.tariff.currency
        for a, b in legs:
            if a == b and product.same_stop_free is not None:
                parts.append("same stop: free")
                continue
            metres = self.metres(a, b)
            km = started_km(metres)
            adult = product.base.cents + product.per_started_km.cents * km
            fare = (adult * percent + 50) // 100
            cents += fare
            text = (
                f"{metres / 1000:.1f} km → {km} started km: "
                f"{format_cents(product.base.cents, currency)}"
                f" + {km} × {format_cents(product.per_started_km.cents, currency)}"
            )
            if percent != 100:
                text += f", {percent} % = {format_cents(fare, currency)}"
            parts.append(text)
        return cents, "; ".join(parts)

    def metres(self, a: str, b: str) -> float:
        """Straight-line distance between two stops in metres (cached)."""
        key = (a, b)
        found = self._metres.get(key)
        if found is None:
            sa, sb = self.tariff.stop(a), self.tariff.stop(b)
            found = distance_m(sa.lat, sa.lon, sb.lat, sb.lon)
            self._metres[key] = found
        return found

    # --- journeys of several rides joined by changes (one eezy check-in) ---------------
    def farthest(
        self, start: str, points: Iterable[str], best: tuple[str, float]
    ) -> tuple[str, float]:
        """`best` (a stop and its distance from `start`) updated with `points`: the first
        stop in journey order farthest in a straight line from `start`."""
        stop, metres = best
        for point in points:
            d = self.metres(start, point)
            if d > metres:
                stop, metres = point, d
        return stop, metres

    def journey_turn(self, start: str, end: str, farthest: tuple[str, float]) -> str | None:
        """Where a journey from `start` to `end` turns back: its farthest stop, if that is
        farther from `start` than `end` is; None for a journey that does not turn back."""
        stop, metres = farthest
        return stop if metres > self.metres(start, end) else None

    def journey_fare(self, product: DistanceProduct, rides: Sequence[Trip]) -> SingleFare | None:
        """One check-in over `rides` (consecutive rides of one rider joined by changes), as
        eezy prices it: start to end, split where the journey turns back. One ride is
        priced as a single ride (`RideFacts.distance_fares`). None if the tariff has no
        fare for the rider (or does not know a ride)."""
        if len(rides) == 1:
            facts = self.ride(rides[0])
            if facts is None:
                return None
            return next((f for f in facts.distance_fares if f.product.id == product.id), None)
        if not all(self.knows(r) for r in rides):
            return None
        start, end = rides[0].board_stop_id, rides[-1].alight_stop_id
        far = (start, 0.0)
        for r in rides:
            far = self.farthest(start, ride_points(r), far)
        return self.check_in_fare(
            product, rides[0].rider_category, start, end, self.journey_turn(start, end, far)
        )

    def check_in_fare(
        self, product: DistanceProduct, rider: str, start: str, end: str, turn: str | None
    ) -> SingleFare | None:
        """The fare of one check-in of several rides from `start` to `end` that turns back
        at `turn` (None: does not turn back), cached. It is split there into two legs, as
        a round trip is (`split_round_trips`); each leg is base + rate per started km,
        times the rider's percentage, same stop free."""
        key = (product.id, rider, start, end, turn)
        if key in self._check_ins:
            return self._check_ins[key]
        percent = self.tariff.distance_percent(product, rider)
        fare: SingleFare | None = None
        if percent is not None:
            if product.split_round_trips is None:
                turn = None
            name = self.tariff.stop_name
            if turn is None:
                legs = [(start, end)]
                route = f"{name(start)} → {name(end)}"
            else:
                legs = [(start, turn), (turn, end)]
                route = f"{name(start)} → {name(turn)} (turns back) → {name(end)}"
            cents, legs_text = self._legs(product, percent, legs)
            detail = f"one check-in {route}: {legs_text}"
            offer = Offer(
                self.tariff, product.id, product.name, "distance", None, None, rider,
                product.per_started_km, None, detail,
            )  # fmt: skip
            fare = SingleFare(product, None, cents, product.per_started_km, detail, offer)
        self._check_ins[key] = fare
        return fare

    # --- passes -------------------------------------------------------------------
    def pass_options(self, trip: Trip, facts: RideFacts | None = None) -> list[PassOption]:
        """Every pass (product, price, scope) that may cover this ride (cached per ride).

        A pass for a pair of neighbouring towns bought for a ride inside one town
        carries the other town in `via`: it is only worth more than the one-town
        pass if some ride of the passenger reaches that town.
        """
        if facts is None:
            facts = self.ride(trip)
            if facts is None:
                return []
        if facts.passes is None:
            facts.passes = list(self._build_pass_options(trip, facts))
        return facts.passes

    def pass_shape(self, trip: Trip, facts: RideFacts) -> PassShape:
        """The shape of the ride's pass options (cached per ride; one object per shape)."""
        shape = facts.shape
        if shape is None:
            options = self.pass_options(trip, facts)
            key = tuple((o.group, o.via, o.offer.product_id, o.offer.level) for o in options)
            shape = self._shapes.get(key)
            if shape is None:
                shape = self._shapes[key] = PassShape()
            facts.shape = shape
        return shape

    def _build_pass_options(self, trip: Trip, facts: RideFacts) -> Iterator[PassOption]:
        rider = trip.rider_category
        for product, period, caps in self.passes:
            if not self.may_cap(caps, facts):
                continue
            if isinstance(product, PassProduct) and any(p.areas for p in product.prices):
                if facts.zone is None:
                    continue
                for zoned in self.tariff.area_prices(product, rider):
                    areas = frozenset(zoned.areas or ())
                    if facts.zone.areas <= areas:
                        scope = self._area_scope(areas)
                        yield self._option(product, period, None, zoned, scope, caps, None, rider)
                continue
            if any(p.level is not None for p in product.prices):
                if facts.zone is None:
                    continue
                for level in self.levels:
                    if level.pass_scope is None:
                        continue
                    by_level = self.tariff.price(product, level.code, rider)
                    if by_level is None:
                        continue
                    for scope, via in self._level_scopes(level.pass_scope, facts.zone):
                        yield self._option(
                            product, period, level.code, by_level, scope, caps, via, rider
                        )
                continue
            flat = self.tariff.price(product, None, rider)
            if flat is not None:
                yield self._option(
                    product, period, None, flat, Scope(None, None), caps, None, rider
                )

    def group_options(
        self, product: PassProduct, facts: RideFacts, rider: str | None
    ) -> list[tuple[PassOption, str | None]]:
        """The (price, scope) options of a party pass for a ride, with the level: a
        one-person ticket at `rider`'s price, a ticket for several persons (`rider` None)
        at its own price. Priced by level (scope of the relation) or flat. Cached, cheapest
        first (the search stops at the first one not worth buying)."""
        key = (product.id, id(facts), rider)
        found = self._group_opts.get(key)
        if found is None:
            found = sorted(self._build_group_options(product, facts, rider), key=_option_cents)
            self._group_opts[key] = found
        return found

    def cheapest_group(self, product: PassProduct, facts: RideFacts) -> int | None:
        """The least a party ticket of `product` bought at a ride of `facts` costs, whatever
        its holder's category (None if none is sold there). Cached."""
        key = (product.id, id(facts))
        if key in self._cheapest_groups:
            return self._cheapest_groups[key]
        group = product.group
        assert group is not None
        riders: list[str | None] = [None]
        if group.persons == 1:
            riders = [*self.tariff.rider_ids()]
        found = min(
            (o.cents for rider in riders for o, _ in self.group_options(product, facts, rider)),
            default=None,
        )
        self._cheapest_groups[key] = found
        return found

    def _build_group_options(
        self, product: PassProduct, facts: RideFacts, rider: str | None
    ) -> list[tuple[PassOption, str | None]]:
        out: list[tuple[PassOption, str | None]] = []
        buyer = rider if rider is not None else (product.riders or [""])[0]
        if any(p.level is not None for p in product.prices):
            if facts.zone is None:
                return out
            for level in self.levels:
                if level.pass_scope is None:
                    continue
                entry = self.tariff.price(product, level.code, buyer)
                if entry is None:
                    continue
                for scope, _via in self._level_scopes(level.pass_scope, facts.zone):
                    opt = self._option(
                        product, product.period, level.code, entry, scope, None, None,
                        rider or "party",
                    )  # fmt: skip
                    out.append((opt, level.code))
            return out
        entry = self.tariff.price(product, None, buyer)
        if entry is not None:
            opt = self._option(
                product, product.period, None, entry, Scope(None, None), None, None,
                rider or "party",
            )  # fmt: skip
            out.append((opt, None))
        return out

    def _option(
        self,
        product: PassProduct | CalendarMonthProduct,
        period: PeriodSpec,
        level: str | None,
        entry: PriceEntry,
        scope: Scope,
        caps: str | None,
        via: str | None,
        rider: str,
    ) -> PassOption:
        offer = Offer(
            self.tariff, product.id, entry.name or product.name, "pass", level, scope.label,
            rider, entry, period, None, scope.areas, caps,
        )  # fmt: skip
        key = (id(period), caps, scope.areas, rider, entry.cents)
        group = self._groups.setdefault(key, len(self._groups))
        return PassOption(entry.cents, period, scope.areas, caps, via, offer, group)

    def may_cap(self, caps: str | None, facts: RideFacts) -> bool:
        """May a pass capping product `caps` (None: not a cap) cover this ride?"""
        if caps is None:
            return True
        if self.single is not None and caps == self.single.id:
            return bool(facts.single_zone_levels)
        return caps in facts.distance_cents

    def _level_scopes(
        self, relation: Relation, zone: ZoneRide
    ) -> Iterator[tuple[Scope, str | None]]:
        t = self.tariff
        areas = zone.areas
        if relation is Relation.SAME_AREA:
            if len(areas) == 1:
                yield self._area_scope(areas), None
        elif relation is Relation.NEIGHBOURING_AREAS:
            if len(areas) == 2:
                a, b = sorted(areas)
                if t.are_neighbours(a, b):
                    yield self._area_scope(areas), None
            elif len(areas) == 1:
                (a,) = areas
                for n in t.neighbours_of(a):
                    yield self._area_scope(frozenset((a, n))), n
        else:
            kreis_or_teilraum = {
                (t.area(a).kreis if relation is Relation.SAME_KREIS else t.area(a).teilraum)
                for a in areas
            }
            if len(kreis_or_teilraum) == 1:
                (name,) = kreis_or_teilraum
                if name is not None:
                    scope_areas = (
                        t.areas_where(kreis=name)
                        if relation is Relation.SAME_KREIS
                        else t.areas_where(teilraum=name)
                    )
                    yield self._named_scope(scope_areas, name), None

    def _area_scope(self, areas: frozenset[str]) -> Scope:
        scope = self._area_scope_cache.get(areas)
        if scope is None:
            names = sorted(self.tariff.area(a).name for a in areas)
            scope = Scope(areas, " + ".join(names))
            self._area_scope_cache[areas] = scope
        return scope

    def _named_scope(self, areas: frozenset[str], name: str) -> Scope:
        scope = self._area_scope_cache.get(areas)
        if scope is None:
            scope = Scope(areas, name)
            self._area_scope_cache[areas] = scope
        return scope


def pass_detail(kind: PeriodKind, must_end_inside: bool) -> str:
    """What the bill says of a pass's window."""
    text = {
        PeriodKind.ROLLING: "valid from the first trip it covers",
        PeriodKind.DAYS: "valid from the start of the day of the first trip it covers",
        PeriodKind.WEEK: "valid for the calendar week",
        PeriodKind.MONTH: "valid for the calendar month",
    }[kind]
    if must_end_inside:
        text += "; trips must end inside"
    return text


def _option_cents(option: tuple[PassOption, str | None]) -> int:
    return option[0].cents


def ride_points(trip: Trip) -> tuple[str, ...]:
    """The stops a ride is known to reach, in ride order: boarding, farthest, alighting."""
    if trip.farthest_stop_id is None:
        return (trip.board_stop_id, trip.alight_stop_id)
    return (trip.board_stop_id, trip.farthest_stop_id, trip.alight_stop_id)


def _level_fits(level: LevelSpec, zone: ZoneRide, trip: Trip) -> bool:
    """May an EinzelTicket of `level` be bought for this ride on its own?"""
    if level.max_further_stops is not None:
        return (
            trip.stops_travelled is not None
            and trip.stops_travelled <= level.max_further_stops
            and (level.modes is None or trip.mode in level.modes)
        )
    return zone.level.rank <= level.rank


def chain_valid_to(level: LevelSpec, first_board_ms: int) -> int:
    """End (exclusive) of an EinzelTicket's validity, in epoch ms."""
    return first_board_ms + level.validity_minutes * MS_PER_MINUTE


RideRow = tuple[list[RideFacts | None], SingleFare | None]
"""A ride's facts in each of several tariffs, and its cheapest single fare over them."""


def ride_rows(views: Sequence[TariffView]) -> dict[RideKey, RideRow]:
    """The `RideRow`s of rides priced over `views` (in this order), by ride key: filled by
    the caller (`instance._Builder._known_rides`), kept with the first view's per-ride
    caches (one dict per list of tariffs; bounded, like them, by the network)."""
    rows = views[0].ride_rows.get(tuple(views[1:]))
    if rows is None:
        rows = views[0].ride_rows[tuple(views[1:])] = {}
    return rows


_VIEWS: weakref.WeakKeyDictionary[Tariff, TariffView] = weakref.WeakKeyDictionary()


def view_of(tariff: Tariff) -> TariffView:
    """The pricing view of a tariff, one per `Tariff` object (its per-ride caches live as
    long as the tariff; they are bounded by stops x stops x riders of the network)."""
    view = _VIEWS.get(tariff)
    if view is None:
        view = TariffView(tariff)
        _VIEWS[tariff] = view
    return view
