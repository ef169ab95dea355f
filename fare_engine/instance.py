"""One passenger's pricing problem: every candidate product as a bitmask of the trips it covers.

Trips are numbered 0..n-1 in boarding order. A candidate is generated *at* the
trip it is bought for (its first trip) and covers a set of trips from there on:
- a single-journey product (EinzelTicket chain with changes, Kurzstrecke, eezy
  fare, one eezy check-in over rides joined by changes) covers a run i..j of
  consecutive trips;
- a pass or cap covers every trip of the same rider inside its window and scope.
  Rolling windows start at trip i, N-day passes on trip i's day, weeks and
  months are fixed; for every later trip that is the widest window containing
  trip i, so no other start needs to be considered.

A party (`Trip.party`) is priced as *seats*: each person (and bicycle) of a ride is a
trip of its own rider category, numbered ride by ride (the rider's seat, then the
companions'), so boarding times stay in order and every window is a run of positions.
Runs and passes never mix persons: a run is a person's consecutive seats (a mask of
their positions, `_Builder.run_mask`), a pass covers one person's seats. Tickets for a party
(`PassProduct.group`: a TagesTicket24 with up to 3 children free, a 5-person
TagesTicket24) are *party candidates* (`Cand.group`): for every ride a window may
start at, every scope of that ride and every maximal choice of persons (a holder and
up to 3 of the children riding with them; up to 5 people), the seats of those persons
on the rides inside window and scope. Any party ticket a rider could buy covers a
subset of one of them for the same price, so they contain an optimal choice; the DP
may buy them whether or not their first seat is paid already (`solve.solve_dp`).

Every product's set of valid trips is closed under removing trips (hereditary),
so "cover every trip at least once" and "cover every trip exactly once" have the
same minimum; solvers may therefore work with covers and the bill turns the
cover into a partition. For a joined eezy check-in this holds for its first
rides (a prefix of the run) by the rule in `_Builder._joined_runs`: that is what
both the partition (`pricing.partition`) and the month-by-month billing need,
since a month's trips before some time are a prefix of the trips after it.
"""

from __future__ import annotations

import datetime as dt
import itertools
from bisect import bisect_left, bisect_right
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import accumulate, repeat
from operator import attrgetter, itemgetter, le, lshift, mul
from typing import Any

from fare_engine.const import MS_PER_MINUTE
from fare_engine.model import DistanceProduct, LevelSpec, PassProduct, PeriodKind, PeriodSpec
from fare_engine.offers import (
    Offer,
    PassOption,
    PassShape,
    RideFacts,
    RideKey,
    SingleFare,
    TariffView,
    ZoneRide,
    chain_valid_to,
    ride_keys,
    ride_points,
    ride_rows,
)
from fare_engine.periods import service_date, window
from fare_engine.trips import Trip

_BIT_BYTES = bytes.maketrans(b"01", b"\0\1")
"""Turns the digits of `bin()` into bytes 0 and 1."""

INF = 10**15
"""Price of something that cannot be bought (larger than any sum of real prices)."""


@dataclass(slots=True)
class Cand:
    """A candidate product: covers the trips in `mask` (bit k = trip k) for `price` cents."""

    mask: int
    price: int
    first: int
    last: int
    """Last trip of a run; -1 for a pass."""
    offer: Offer
    group: bool = False
    """A ticket covering several persons' seats (a party candidate, see the module doc)."""

    @property
    def joined(self) -> bool:
        """One eezy check-in over several rides. Unlike every other product, its last
        rides alone may cost more than the whole journey (the check-in pays the straight
        line from the start), so a cheapest cover may buy it although its first ride is
        paid for already (see `solve.solve_dp`)."""
        return self.offer.kind == "distance" and self.last > self.first


@dataclass(slots=True)
class Instance:
    """The candidates of one passenger's trips, by the trip they are bought at."""

    trips: list[Trip]
    cands: list[list[Cand]]
    min_single: list[int]
    """Cheapest single-journey price of each trip alone (INF if none)."""
    single_offer: list[Offer | None]
    scope_masks: list[int]
    """Trip sets of the pass scopes that occur (for the nesting check)."""
    levels: list[str | None]
    """Each trip's own price level in the first tariff (None outside zones)."""
    persons: list[int]
    """The person of each seat (0 = the rider); all 0 without parties."""
    rides: list[int]
    """The ride (boarding position of the rider's trip) of each seat."""
    boards: list[int]
    """Each seat's boarding time."""
    lines: dict[int, list[int]]
    """Each person's seat positions, in boarding order."""
    where: list[int]
    """Each seat's place among its person's seats (in `lines`)."""
    special: set[int]
    """The seats whose candidates may include a party ticket or a joined check-in
    (`Cand.group`, `Cand.joined`), which the DP buys differently; no other seat's do."""

    @property
    def n(self) -> int:
        return len(self.trips)

    def all_cands(self) -> list[Cand]:
        return [c for row in self.cands for c in row]


def build_instance(
    trips: Sequence[Trip],
    views: Sequence[TariffView],
    *,
    prune: bool = True,
    persons: Sequence[int] | None = None,
    rides: Sequence[int] | None = None,
) -> Instance:
    """Candidates for trips already in boarding order (seats: person by person, each
    person's in boarding order; `persons[k]` the person of seat k, `rides[k]` its ride's
    boarding position, the rider's seats being rides 0..r-1).

    `prune=False` keeps every candidate (each EinzelTicket level separately, every
    pass product and scope, no dominance or usefulness filter): the plain
    formulation the benchmark compares against. Pruning only drops a candidate
    when another choice is never dearer and covers at least the same trips.
    """
    n = len(trips)
    return _Builder(
        list(trips),
        list(views),
        prune,
        [0] * n if persons is None else list(persons),
        list(range(n)) if rides is None else list(rides),
    ).build()


_GroupKey = tuple[int, int, str | None, frozenset[str] | None, str, int]


class _Builder:
    def __init__(
        self,
        trips: list[Trip],
        views: list[TariffView],
        prune: bool,
        persons: list[int],
        ride_of: list[int],
    ) -> None:
        self.trips = trips
        self.views = views
        self.prune = prune
        self.n = len(trips)
        self.persons = persons
        self.ride_of = ride_of
        self.party = bool(persons) and max(persons) > 0
        self.lines: dict[int, list[int]] = {}
        """Each person's seats, in boarding order (`Instance.lines`)."""
        # next_seat: the position of the same person's next seat (n if none); prev_seat: of
        # the previous one (-1 if none); where: each seat's place among its person's seats.
        if self.party:
            self.next_seat = [self.n] * self.n
            self.prev_seat = [-1] * self.n
            self.where = [0] * self.n
            for k, person in enumerate(persons):
                line = self.lines.get(person)
                if line is None:
                    line = self.lines[person] = []
                else:
                    self.next_seat[line[-1]] = k
                    self.prev_seat[k] = line[-1]
                self.where[k] = len(line)
                line.append(k)
        else:  # (the rider alone: each seat follows the one before)
            self.next_seat = list(range(1, self.n + 1))
            self.prev_seat = list(range(-1, self.n - 1))
            self.where = list(range(self.n))
            if self.n:
                self.lines[0] = list(range(self.n))
        self.boards = list(map(attrgetter("board_time"), trips))
        self.alights = list(map(attrgetter("alight_time"), trips))
        self.facts: list[list[RideFacts | None]] = []
        self.touched: list[frozenset[str]] = []
        self.rides: list[dict[tuple[int, int], list[Any]]] = []
        """Per tariff: the distinct rides of each person as [facts, a trip, mask of the
        trips riding it] (a pass covers one person's trips)."""
        boards = self.boards
        earliest, latest = (min(boards), max(boards)) if boards else (0, 0)
        if boards and all(v.valid_from <= earliest and latest < v.valid_to for v in views):
            cheapest = self._known_rides(trips, views, persons)
        else:
            cheapest = self._rides_one_by_one(trips, views, persons)
        self.cheapest = cheapest
        self.alone: list[tuple[int, Offer] | None] = [
            None if c is None else (c.cents, c.offer) for c in cheapest
        ]
        """The cheapest product for each trip alone: its cheapest single fare, or for a
        trip no single ticket is sold for (a bicycle in the WestfalenTarif) the cheapest
        pass for that ride alone (bought as a one-trip run)."""
        for j, c in enumerate(cheapest):
            if c is None:
                self.alone[j] = self._cheapest_pass_alone(j)
        self.min_single = [INF if a is None else a[0] for a in self.alone]
        self.single_offer: list[Offer | None] = [None if a is None else a[1] for a in self.alone]
        self.joining = any(p.check_in_across_changes is not None for v in views for p in v.distance)
        """Does some tariff price rides joined by changes as one check-in?"""
        self.scope_masks: list[int] = []
        self.special: set[int] = set()
        """The seats given a party ticket or a joined check-in (`Instance.special`)."""
        self._ride_totals: dict[int, int] = {}
        self._days: dict[tuple[str, dt.time], list[tuple[int, int, dt.date]]] = {}
        self._his_cache: dict[tuple[int, int], tuple[list[int], bool]] = {}
        self._ordered: dict[int, bool] = {}
        self._prefixes: dict[int, list[int]] = {}

    def _known_rides(
        self, trips: list[Trip], views: list[TariffView], persons: list[int]
    ) -> list[SingleFare | None]:
        """`facts`, `rides` and `touched` when every trip lies in every tariff's validity:
        a ride's facts then depend on its `ride_key` alone, so each key is looked up once
        (a month repeats a few rides), and each person's trips of one key are one ride in
        every tariff that knows it. Returns each trip's cheapest single fare."""
        known = ride_rows(views)  # (kept from call to call, as the views' own facts are)
        per_trip: list[list[RideFacts | None]] = []
        cheapest: list[SingleFare | None] = []
        by_person: dict[tuple[int, RideKey], list[Any]] = {}  # -> [facts per tariff, trip, mask]
        for j, (t, key) in enumerate(zip(trips, ride_keys(trips), strict=True)):
            found = known.get(key)
            if found is None:
                row = [v.ride(t, key) for v in views]
                best: SingleFare | None = None
                for f in row:  # the first tariff's fare wins a tie, as one by one
                    fare = None if f is None else f.cheapest
                    if fare is not None and (best is None or fare.cents < best.cents):
                        best = fare
                found = known[key] = (row, best)
            per_trip.append(found[0])
            cheapest.append(found[1])
            ride = by_person.get((persons[j], key))
            if ride is None:
                by_person[(persons[j], key)] = [found[0], t, 1 << j]
            else:
                ride[2] |= 1 << j
        for v in range(len(views)):
            self.facts.append(list(map(itemgetter(v), per_trip)))
            rides: dict[tuple[int, int], list[Any]] = {}
            areas: set[str] = set()
            for (person, _), (row, t, mask) in by_person.items():
                f = row[v]
                if f is None:
                    continue
                rides[(person, id(f))] = [f, t, mask]
                if f.zone is not None:
                    areas |= f.zone.areas
            self.rides.append(rides)
            self.touched.append(frozenset(areas))
        return cheapest

    def _rides_one_by_one(
        self, trips: list[Trip], views: list[TariffView], persons: list[int]
    ) -> list[SingleFare | None]:
        """`facts`, `rides` and `touched` trip by trip, each tariff only inside its
        validity. Returns each trip's cheapest single fare."""
        keys = ride_keys(trips)
        cheapest: list[SingleFare | None] = [None] * self.n
        for v in views:
            lo, hi = v.valid_from, v.valid_to
            row: list[RideFacts | None] = []
            rides: dict[tuple[int, int], list[Any]] = {}
            areas: set[str] = set()
            for j, (t, key) in enumerate(zip(trips, keys, strict=True)):
                f = v.ride(t, key) if lo <= t.board_time < hi else None
                row.append(f)
                if f is None:
                    continue
                ride = rides.get((persons[j], id(f)))
                if ride is None:
                    rides[(persons[j], id(f))] = [f, t, 1 << j]
                    if f.zone is not None:
                        areas |= f.zone.areas
                else:
                    ride[2] |= 1 << j
                best = cheapest[j]
                if f.cheapest is not None and (best is None or f.cheapest.cents < best.cents):
                    cheapest[j] = f.cheapest
            self.facts.append(row)
            self.rides.append(rides)
            self.touched.append(frozenset(areas))
        return cheapest

    def _cheapest_pass_alone(self, j: int) -> tuple[int, Offer] | None:
        best: tuple[int, Offer] | None = None
        for v, view in enumerate(self.views):
            facts = self.facts[v][j]
            if facts is None:
                continue
            for opt in view.pass_options(self.trips[j], facts):
                if opt.caps is None and (best is None or opt.cents < best[0]):
                    best = (opt.cents, opt.offer)
        return best

    def build(self) -> Instance:
        cands: list[list[Cand]] = []
        boards, alone, n = self.boards, self.alone, self.n
        reach = max(v.max_chain_ms for v in self.views)
        for i in range(n):
            best = alone[i]
            nxt = self.next_seat[i]
            if self.prune and (
                nxt == n or (boards[nxt] - boards[i] >= reach and not self._joins(nxt))
            ):
                # No ticket reaches the next trip: the cheapest single fare is all there is.
                cands.append([] if best is None else [Cand(1 << i, best[0], i, i, best[1])])
            else:
                runs = self._runs_at(i)
                cands.append(self._pruned_runs(i, runs) if self.prune else runs)
        for i, passes in self._passes().items():
            cands[i] += passes
        levels = [f.zone.level.code if f and f.zone else None for f in self.facts[0]]
        return Instance(
            self.trips, cands, self.min_single, self.single_offer, self.scope_masks, levels,
            self.persons, self.ride_of, self.boards, self.lines, self.where, self.special,
        )  # fmt: skip

    # --- single journeys and EinzelTicket chains ------------------------------------
    def _runs_at(self, i: int) -> list[Cand]:
        bit = 1 << i
        best = self.alone[i]
        out: list[Cand] = []
        if best is not None and (self.prune or self.cheapest[i] is None):
            out.append(Cand(bit, best[0], i, i, best[1]))
        joins_next = self._joins(self.next_seat[i])  # (one check-in may go on to it)
        for v, view in enumerate(self.views):
            facts = self.facts[v][i]
            if facts is None:
                continue
            if not self.prune:
                for fare in facts.distance_fares:
                    out.append(Cand(bit, fare.cents, i, i, fare.offer))
            for fare in facts.distance_fares if joins_next else ():
                product = fare.product
                assert isinstance(product, DistanceProduct)
                if product.check_in_across_changes is not None:
                    joined = self._joined_runs(v, view, i, product, fare.cents)
                    if joined:
                        self.special.add(i)
                        out += joined
            walk = self._walk(v, view, i) if facts.single_zone_levels else []
            if self.prune:
                if walk:
                    out += self._longest_chains(i, facts.single_zone_levels, walk)
                continue
            for fare in facts.single_zone_levels:
                assert fare.level is not None
                for last in self._chain(i, fare.level, walk):
                    out.append(Cand(self.run_mask(i, last), fare.cents, i, last, fare.offer))
        return out

    def _longest_chains(
        self, i: int, fares: list[SingleFare], walk: list[tuple[int, int]]
    ) -> list[Cand]:
        """The longest chain of each EinzelTicket level bought for trip i that reaches past
        it: the longest covers the shorter ones for the same price, and the chain of trip
        i alone is its single fare. (`_chain`'s last trip, without the list.) A chain no
        cheaper than one made before it to the same last trip is left out: `_pruned_runs`
        keeps the first of the cheapest runs to each last trip."""
        out: list[Cand] = []
        made: dict[int, int] = {}  # last trip -> price of the first chain made to it
        boards = self.boards
        for fare in fares:
            level = fare.level
            assert level is not None
            if level.max_further_stops is not None or not level.changes:
                continue
            valid_to = chain_valid_to(level, boards[i])
            rank = level.rank
            last = i
            for j, need in walk:
                if need > rank or boards[j] >= valid_to:
                    break
                last = j
            if last == i or made.get(last, INF) <= fare.cents:
                continue
            made[last] = fare.cents
            out.append(Cand(self.run_mask(i, last), fare.cents, i, last, fare.offer))
        return out

    def run_mask(self, i: int, last: int) -> int:
        """The seats of a run from seat i to seat `last` of the same person."""
        if not self.party:
            return (1 << (last + 1)) - (1 << i)
        mask, k = 0, i
        while k <= last:
            mask |= 1 << k
            k = self.next_seat[k]
        return mask

    def seats_after(self, i: int) -> Iterator[int]:
        """The same person's later seats, in boarding order."""
        k = self.next_seat[i]
        while k < self.n:
            yield k
            k = self.next_seat[k]

    def _joins(self, k: int) -> bool:
        """Does seat k continue the journey of the same person's previous seat (a change of
        vehicle, same rider category) in a tariff that prices such a journey as one
        check-in?"""
        if not (self.joining and 0 < k < self.n):
            return False
        before = self.prev_seat[k]
        trips = self.trips
        return (
            before >= 0
            and trips[k].joins_previous
            and trips[k].rider_category == trips[before].rider_category
        )

    def _joined_runs(
        self, v: int, view: TariffView, i: int, product: DistanceProduct, ride_cents: int
    ) -> list[Cand]:
        """One check-in of `product` (eezy) over trips i..j joined by changes of vehicle,
        for every j > i that may end it; `ride_cents` is trip i's own fare.

        eezy prices a journey while the rider stays checked in: base + rate per started
        straight-line km from the first boarding stop to the last alighting stop, or, if
        some stop of the journey (a ride's boarding, farthest or alighting stop) is
        farther from the start than the end is, split at the farthest one into two
        legs, as a round trip is.

        That price can fall when the journey is extended (out far, then on to a stop
        nearer the start than the turning point: one leg instead of two). Offering it
        then would let an added later ride lower the best price, and the backend bills
        a month as best(trips through the month) minus best(trips before it), which
        must never be negative; and the partition of a cover cuts a run to its first
        rides (`pricing.partition`). So the run stops at the first ride whose check-in
        would cost less than the check-in without it (trip i alone: its own fare):
        every offered run's first rides are an offered run at no more, and every
        offered run i..j costs at least as much as i..j-1. The separate fares remain
        options, so the rider pays at most what the rides cost one by one.
        """
        out: list[Cand] = []
        trips = self.trips
        start = trips[i].board_stop_id
        far = view.farthest(start, ride_points(trips[i]), (start, 0.0))
        rider = trips[i].rider_category
        previous = ride_cents
        for j in self.seats_after(i):
            facts = self.facts[v][j]
            if not self._joins(j) or facts is None or product.id not in facts.distance_cents:
                break
            far = view.farthest(start, ride_points(trips[j]), far)
            end = trips[j].alight_stop_id
            fare = view.check_in_fare(
                product, rider, start, end, view.journey_turn(start, end, far)
            )
            if fare is None or fare.cents < previous:
                break
            out.append(Cand(self.run_mask(i, j), fare.cents, i, j, fare.offer))
            previous = fare.cents
        return out

    def _walk(self, v: int, view: TariffView, i: int) -> list[tuple[int, int]]:
        """The trips after i an EinzelTicket bought for trip i could reach, each with the
        rank the ticket needs to cover the journey up to it.

        bibo's rule for changes of vehicle: the ticket covers the next trips in a row
        while they board within its validity (from the first boarding), have the same
        rider, stay within its level from every earlier boarding stop to every later
        stop (and each ride within its level), and (unless the product allows return
        trips) never come back to a stop the journey already visited.
        """
        first = self.trips[i]
        boards = self.boards
        limit = boards[i] + view.max_chain_ms
        nxt = self.next_seat[i]
        if nxt >= self.n or boards[nxt] >= limit:
            return []
        assert view.single is not None
        returns = view.single.allow_return_trip
        rank, ranks = view.rank_between, view.ranks
        zone = self._zone(v, i)
        n, next_seat = self.n, self.next_seat
        # The rank needed from every earlier boarding area to every later area: a set of
        # each (repeats change no maximum).
        boarded = {zone.areas_in_order[0]}
        visited = set(zone.points)
        need = zone.level.rank
        rider = first.rider_category
        trips, facts_of = self.trips, self.facts[v]
        walk: list[tuple[int, int]] = []
        j = nxt
        while j < n:  # (the same person's later seats)
            trip = trips[j]
            facts = facts_of[j]
            if (
                boards[j] >= limit
                or facts is None
                or facts.zone is None
                or trip.rider_category != rider
                or (not returns and trip.alight_stop_id in visited)
            ):
                break
            there = facts.zone
            need = max(need, there.level.rank)
            for q in there.areas:
                for b in boarded:
                    step = ranks.get((b, q))
                    if step is None:
                        step = rank(b, q)
                    if step > need:
                        need = step
            walk.append((j, need))
            boarded.add(there.areas_in_order[0])
            visited.update(there.points)
            j = next_seat[j]
        return walk

    def _chain(self, i: int, level: LevelSpec, walk: list[tuple[int, int]]) -> list[int]:
        """Last trips an EinzelTicket of `level` bought for trip i can cover (i itself first)."""
        lasts = [i]
        if level.max_further_stops is not None or not level.changes:
            return lasts
        valid_to = chain_valid_to(level, self.boards[i])
        for j, need in walk:
            if need > level.rank or self.boards[j] >= valid_to:
                break
            lasts.append(j)
        return lasts

    def _zone(self, v: int, i: int) -> ZoneRide:
        facts = self.facts[v][i]
        assert facts is not None
        assert facts.zone is not None
        return facts.zone

    def _pruned_runs(self, i: int, runs: list[Cand]) -> list[Cand]:
        """Cheapest run per last trip; drop runs no cheaper than longer ones or than singles."""
        best: dict[int, Cand] = {}
        for c in runs:
            old = best.get(c.last)
            if old is None or c.price < old.price:
                best[c.last] = c
        kept: list[Cand] = []
        cheapest_longer = INF
        for last in sorted(best, reverse=True):
            c = best[last]
            if c.price >= cheapest_longer:
                continue
            if last > i and c.price >= self._run_singles(i, last):
                continue
            kept.append(c)
            cheapest_longer = c.price
        return kept

    def _run_singles(self, i: int, last: int) -> int:
        if not self.party:
            return sum(self.min_single[i : last + 1])
        total, k = 0, i
        while k <= last:
            total += self.min_single[k]
            k = self.next_seat[k]
        return total

    # --- passes and caps ------------------------------------------------------------
    def _passes(self) -> dict[int, list[Cand]]:
        """Pass candidates per trip, generated per group of equal (tariff, period, caps,
        scope, rider, price). A ride is offered a group's pass exactly when it lies in the
        group's scope, so the group's trips are the union of the rides offered it."""
        # [option, mask, total, person] per (tariff, person, option group), in the order
        # first met; looked up by option group in one dict per tariff and person.
        groups: list[list[Any]] = []
        prune = self.prune
        for v, view in enumerate(self.views):
            touched = self.touched[v]
            # A person's rides whose options have the same shape join the same groups (the
            # filter below sees the same options, and `touched` is the passenger's): their
            # masks and single prices are summed first, and the options looked at once, for
            # the first of them. A group is first met at the first ride of its shape, so
            # the groups keep the order in which ride by ride would meet them.
            kinds: dict[tuple[int, PassShape], list[Any]] = {}
            for (person, _), (facts, trip, ride_mask) in self.rides[v].items():
                key = (person, view.pass_shape(trip, facts))
                ride_total = self._ride_total(ride_mask)
                kind = kinds.get(key)
                if kind is None:
                    kinds[key] = [person, facts, trip, ride_mask, ride_total]
                else:
                    kind[3] |= ride_mask
                    kind[4] += ride_total
            of_person: dict[int, dict[int, list[Any]]] = {}
            for person, facts, trip, ride_mask, ride_total in kinds.values():
                mine = of_person.get(person)
                if mine is None:
                    mine = of_person[person] = {}
                untouched_seen: set[tuple[str, str | None]] | None = None  # (made when needed)
                for opt in view.pass_options(trip, facts):
                    if opt.via is not None and prune and opt.via not in touched:
                        # Every such pair covers just this town's rides: one stands for all.
                        marker = (opt.offer.product_id, opt.offer.level)
                        if untouched_seen is None:
                            untouched_seen = set()
                        elif marker in untouched_seen:
                            continue
                        untouched_seen.add(marker)
                    group = mine.get(opt.group)
                    if group is None:
                        mine[opt.group] = group = [opt, ride_mask, ride_total, person]
                        groups.append(group)
                    else:
                        group[1] |= ride_mask
                        group[2] += ride_total
        scoped: list[_Scoped] = []
        for opt, smask, total, person in groups:
            self.scope_masks.append(smask)
            if prune and opt.cents >= total:
                continue  # all its trips one by one cost no more than the pass
            scoped.append((opt, smask, person))
        if prune:
            scoped = _drop_dominated_groups(scoped)
        rows: dict[int, list[Cand]] = defaultdict(list)  # (only the trips with passes)
        view_of_tariff = {id(view.tariff): view for view in self.views}  # (whose option)
        for opt, smask, _person in scoped:
            view = view_of_tariff[id(opt.offer.tariff)]
            self._group_candidates(view, opt, smask, self._prefix(smask), rows)
        if self.party:
            self._party_candidates(rows)
        if prune:
            return {i: _drop_dominated(row) if len(row) > 1 else row for i, row in rows.items()}
        return rows

    def _group_candidates(
        self,
        view: TariffView,
        opt: PassOption,
        smask: int,
        prefix: list[int],
        rows: dict[int, list[Cand]],
    ) -> None:
        his, ordered = self._his(view, opt.period)
        price = opt.cents
        offer = opt.offer
        prune = self.prune
        useless_hi = -1
        m = smask
        while m:
            low = m & -m
            i = low.bit_length() - 1
            hi = his[i]
            if hi <= i or hi == useless_hi:
                m ^= low
                continue  # (a later start with the same end covers less: useless too)
            if prune and price >= prefix[hi] - prefix[i]:
                # Paying these trips one by one is never dearer, nor for a later start with
                # the same end: where the ends are in order, those are the trips up to the
                # first one whose end is later, all skipped at once.
                useless_hi = hi
                m = m & (-1 << bisect_right(his, hi, i)) if ordered else m ^ low
                continue
            rows[i].append(Cand(((1 << hi) - low) & smask, price, i, -1, offer))
            m ^= low

    def _party_candidates(self, rows: dict[int, list[Cand]]) -> None:
        """Party tickets (`PassProduct.group`) as candidates over several persons' seats
        (module doc). For every ride r as the window's first ride, every scope the ride
        offers, and every maximal choice of persons, the candidate covers those persons'
        seats on the rides inside window and scope: a one-person ticket its holder's
        seats and those of up to `free_count` free companions on the rides they share
        with the holder; a ticket for several persons up to `persons` people's seats.

        Only windows holding a *key ride* of the product are looked at (`_key_rides`):
        without one, every choice of persons above is one person alone, and nothing is
        generated for it (a one-person ticket is the ordinary pass, see `_passes`)."""
        ms = self.min_single
        seat_at: list[dict[int, int]] = []  # ride -> person -> seat position
        ride_cents: list[int] = []  # ride -> its seats' single prices
        for k, (r, person) in enumerate(zip(self.ride_of, self.persons, strict=True)):
            if r == len(seat_at):
                seat_at.append({})
                ride_cents.append(0)
            seat_at[r][person] = k
            ride_cents[r] += ms[k]
        party_rides = [r for r, here in enumerate(seat_at) if len(here) > 1]
        if not party_rides:
            return
        n_rides = len(seat_at)
        rider_seat = [here[0] for here in seat_at]
        boards = [self.boards[k] for k in rider_seat]
        categories = list(map(attrgetter("rider_category"), self.trips))
        rider_prefix = [0, *accumulate(map(ms.__getitem__, rider_seat))]
        # The rider's seats on rides 0..q-1 as a bitmask (their bits are distinct: a sum).
        rider_bits = [0, *accumulate(map(lshift, repeat(1), rider_seat))]
        seat_prefix = [0, *accumulate(ride_cents)]
        # The rides each person is on, as a bitmask of rides (the rider is on all of them):
        # window, scope and persons then meet by `&` instead of ride by ride.
        on_rides = {0: (1 << n_rides) - 1}
        for r in party_rides:
            for p in seat_at[r]:
                if p:
                    on_rides[p] = on_rides.get(p, 0) | 1 << r
        companions = {r: [(p, ms[k]) for p, k in seat_at[r].items() if p != 0] for r in party_rides}
        """Per party ride: each companion and the single price of their seat."""
        # A window takes each person's category from its last ride (`_PartyWindow`): a
        # rider whose category changes from ride to ride gets every party ride as a key.
        uniform = len({categories[k] for k in rider_seat}) == 1
        kinds = set(categories)
        seen: set[tuple[int, int]] = set()
        seats_of: dict[tuple[int, int], tuple[int, int]] = {}  # (`_PartyWindow._seats`)
        for v, view in enumerate(self.views):
            if not view.group_passes:
                continue
            facts_of = self.facts[v]
            ride_facts = [facts_of[k] for k in rider_seat]
            in_scope: dict[frozenset[str] | None, int] = {}  # scope -> rides in it (bitmask)
            by_facts: dict[int, list[Any]] = {}  # id(facts) -> [facts, rides], on first use
            for product in view.group_passes:
                free, sold = self._roles(view, product, categories, kinds)
                keys = party_rides
                if uniform:
                    keys = self._key_rides(product, party_rides, seat_at, free, sold)
                if not keys:
                    continue
                period = product.period
                ends_of = self.alights if period.trips_must_end_inside else self.boards
                ends = [ends_of[k] for k in rider_seat]
                ends_in_order = all(map(le, ends, ends[1:]))
                span = (
                    (period.minutes or 0) * MS_PER_MINUTE
                    if period.kind is PeriodKind.ROLLING
                    else None
                )
                leveled = any(price.level is not None for price in product.prices)
                windows = _PartyWindow(
                    self, product, view, seat_at, on_rides, companions, ride_facts, by_facts,
                    in_scope, free, sold, categories, rider_prefix, rider_bits, rows, seen,
                    seats_of,
                )  # fmt: skip
                last_window: tuple[int, object] = (-1, None)
                kp = 0
                r = 0
                while r < n_rides:
                    while kp < len(keys) and keys[kp] < r:
                        kp += 1
                    if kp == len(keys):
                        break  # no key ride from here on
                    key = keys[kp]
                    if span is not None:
                        # Every window starting at a ride that boards `span` or more before
                        # the key ride ends stops before it (the test below): skip them all.
                        first = bisect_right(boards, ends[key] - span, r)
                        if first > r:
                            r = first
                            continue
                    facts = ride_facts[r]
                    r += 1
                    if facts is None:
                        continue
                    start = r - 1
                    if span is not None:
                        end = boards[start] + span
                    else:
                        end = window(period, view.tariff.tz, boards[start])[1]
                    if ends[key] >= end:
                        continue  # the window stops before its first key ride
                    if ends_in_order:  # (the first ride from `start` on ending at `end` or later)
                        q = bisect_left(ends, end, start)
                    else:
                        q = start
                        while q < n_rides and ends[q] < end:
                            q += 1
                    if q <= key:
                        continue
                    # The options of a ride depend on its areas alone (`group_options`): a
                    # window ending at the same ride as the last one looked at, starting on
                    # a ride of the same areas, has a subset of its rides, the same persons'
                    # last seats and the same options, so each candidate it would make is a
                    # subset of one made there at the same price.
                    areas = facts.zone.areas if leveled and facts.zone is not None else None
                    if self.prune and last_window == (q, areas):
                        continue
                    last_window = (q, areas)
                    cheapest = view.cheapest_group(product, facts) if self.prune else None
                    if self.prune and (INF if cheapest is None else cheapest) >= (
                        seat_prefix[q] - seat_prefix[start]
                    ):
                        # Each candidate there covers seats of the window only: when they
                        # cost no more one by one, none is worth buying.
                        continue
                    party_in = party_rides[
                        bisect_left(party_rides, start) : bisect_left(party_rides, q)
                    ]
                    windows.candidates(facts, start, q, party_in)

    @staticmethod
    def _roles(
        view: TariffView, product: PassProduct, categories: list[str], kinds: set[str]
    ) -> tuple[list[bool], list[bool]]:
        """For each seat (of category `categories[k]`, all of them in `kinds`): does its
        person ride free with a holder of a `product` ticket (priced as a free rider), and
        may they buy it (one person) or be one of its persons? Looked up once per category."""
        group = product.group
        assert group is not None
        pricing = view.tariff.pricing_rider
        sold = product.riders
        free_of: dict[str, bool] = {}
        sold_of: dict[str, bool] = {}
        for category in kinds:
            priced = pricing(product.id, category)
            free_of[category] = priced in group.free_riders
            sold_of[category] = sold is None or priced in sold
        free = list(map(free_of.__getitem__, categories))
        return free, list(map(sold_of.__getitem__, categories))

    @staticmethod
    def _key_rides(
        product: PassProduct,
        party_rides: list[int],
        seat_at: list[dict[int, int]],
        free: list[bool],
        sold: list[bool],
    ) -> list[int]:
        """The rides on which a party ticket of `product` covers two persons: a holder it is
        sold to with a free companion (`persons = 1`), or a companion the ticket is sold to
        (`persons > 1`, the rider being the other person or not). A candidate of
        `_PartyWindow` covering seats of several persons needs one in its window: a free
        companion is picked only on a ride shared with the holder, and without an eligible
        companion the rider is the only eligible person (then nothing is generated).
        `free`, `sold`: each seat's role (`_roles`)."""
        group = product.group
        assert group is not None
        out: list[int] = []
        for r in party_rides:
            here = seat_at[r]
            if group.persons == 1:
                free_here = [p for p, k in here.items() if free[k]]
                if any(sold[k] and any(f != h for f in free_here) for h, k in here.items()):
                    out.append(r)
            elif any(p != 0 and sold[k] for p, k in here.items()):
                out.append(r)
        return out

    def _his(self, view: TariffView, period: PeriodSpec) -> tuple[list[int], bool]:
        """For each trip i: one past the last trip a pass of `period` bought at i may cover;
        and whether those are in order (never less than the one before)."""
        key = (id(view), id(period))
        found = self._his_cache.get(key)
        if found is not None:
            return found
        ends = self.alights if period.trips_must_end_inside else self.boards
        if period.kind is PeriodKind.ROLLING:
            span = (period.minutes or 0) * MS_PER_MINUTE
            his = [bisect_left(ends, board + span, i) for i, board in enumerate(self.boards)]
        else:
            # Trips in ends order (as checked trips are) share one search per service day:
            # the first trip at or after the window's end from trip i on is the one from
            # the day's first trip on, or trip i itself.
            in_order = self._in_order(ends)
            his = []
            known = view.windows_of(period)
            for first, stop, day in self._service_days(view, period.day_starts_at):
                end = (known.get(day) or view.calendar_window(period, day))[1]
                if in_order:
                    h = bisect_left(ends, end, first)
                    if h >= stop:  # (the usual case: the window outlasts the day's trips)
                        his += [h] * (stop - first)
                    else:
                        his += [h if h > i else i for i in range(first, stop)]
                else:
                    his += [bisect_left(ends, end, i) for i in range(first, stop)]
        found = self._his_cache[key] = (his, all(map(le, his, his[1:])))
        return found

    def _in_order(self, times: list[int]) -> bool:
        """Are `times` (the boarding or the alighting times) in order? Once per list."""
        found = self._ordered.get(id(times))
        if found is None:
            found = self._ordered[id(times)] = all(map(le, times, times[1:]))
        return found

    def _service_days(self, view: TariffView, start: dt.time) -> list[tuple[int, int, dt.date]]:
        """The trips in runs of one service day (days beginning at `start`): (first trip,
        one past the last, day), from each trip's local time in the tariff's zone."""
        key = (str(view.tariff.tz), start)
        found = self._days.get(key)
        if found is None:
            tz = view.tariff.tz
            found = []
            first, last_day, last_board = 0, dt.date.min, None
            for i, board in enumerate(self.boards):
                if board == last_board:
                    continue  # (a party's seats share their ride's time)
                last_board = board
                day = service_date(board, tz, start)
                if day != last_day:
                    if i:
                        found.append((first, i, last_day))
                    first, last_day = i, day
            if self.n:
                found.append((first, self.n, last_day))
            self._days[key] = found
        return found

    def _ride_total(self, ride_mask: int) -> int:
        total = self._ride_totals.get(ride_mask)
        if total is None:
            total = 0
            m = ride_mask
            while m:
                low = m & -m
                total += self.min_single[low.bit_length() - 1]
                m ^= low
            self._ride_totals[ride_mask] = total
        return total

    def _prefix(self, mask: int) -> list[int]:
        """Prefix sums of the single prices of the trips in `mask` (by boarding position).
        Once per mask: passes of several products often have the same trips."""
        found = self._prefixes.get(mask)
        if found is None:
            # The mask's bits as bytes 0/1, lowest first, weigh each price (no Python loop).
            bits = bin(mask)[:1:-1].encode().translate(_BIT_BYTES).ljust(self.n, b"\0")
            found = self._prefixes[mask] = [0, *accumulate(map(mul, self.min_single, bits))]
        return found


class _PartyWindow:
    """The party candidates of one party ticket product, window by window (the body of
    `_Builder._party_candidates`). What depends on the product alone is worked out once:
    whether each seat's person rides free or may hold the ticket (`_Builder._roles`);
    rides are bitmasks (`on_rides`, the rides of each scope), so window, scope and persons
    meet by `&`."""

    def __init__(
        self,
        builder: _Builder,
        product: PassProduct,
        view: TariffView,
        seat_at: list[dict[int, int]],
        on_rides: dict[int, int],
        companions: dict[int, list[tuple[int, int]]],
        ride_facts: list[RideFacts | None],
        by_facts: dict[int, list[Any]],
        in_scope: dict[frozenset[str] | None, int],
        free: list[bool],
        sold: list[bool],
        categories: list[str],
        rider_prefix: list[int],
        rider_bits: list[int],
        rows: dict[int, list[Cand]],
        seen: set[tuple[int, int]],
        seats_of: dict[tuple[int, int], tuple[int, int]],
    ) -> None:
        group = product.group
        assert group is not None
        self.group = group
        self.product = product
        self.view = view
        self.prune = builder.prune
        self.ms = builder.min_single
        self.seat_at = seat_at
        self.on_rides = on_rides
        self.ride_facts = ride_facts
        self.by_facts = by_facts
        self.in_scope = in_scope
        self.categories = categories
        self.rider_prefix = rider_prefix
        self.rider_bits = rider_bits
        self.rows = rows
        self.seen = seen
        self.special = builder.special
        self.companions = companions
        self.free = free
        """Does each seat's person ride free with a holder (priced as a free rider)?"""
        self.sold = sold
        """May each seat's person buy the ticket (one person) or be one of its persons?"""
        self.seats_of = seats_of
        """`_seats` of each person and rides looked at (windows overlap, the products share
        their windows: most come back)."""
        self.options: dict[tuple[int, str | None], list[tuple[PassOption, str | None]]] = {}
        """`TariffView.group_options` of this product by ride facts (id) and rider."""

    def candidates(self, facts: RideFacts, r: int, q_end: int, party_in: list[int]) -> None:
        """The candidates for a window over rides r..q_end-1 (`party_in`: those of them with
        companions; only there ride persons other than the rider, whose seat is on every
        ride): for each choice of persons (`_choice`), in the order of `people`."""
        seat_at, ms, prune = self.seat_at, self.ms, self.prune
        # Each person's category is the one of their last seat in the window.
        last_seat: dict[int, int] = {}
        for q in party_in:
            last_seat.update(seat_at[q])
        last_seat[0] = seat_at[q_end - 1][0]
        people = sorted(last_seat)
        rider_cents = self.rider_prefix[q_end] - self.rider_prefix[r]
        if self.group.persons > 1:
            eligible = tuple(p for p in people if self.sold[last_seat[p]])
            if len(eligible) < 2:
                return
            options = self._options(facts, None)
            if not options:
                return
            most = INF
            if prune:
                # Every candidate below covers at most these seats: an option costing as
                # much as they do one by one is not worth buying.
                members = set(eligible)
                most = rider_cents if 0 in members else 0
                for q in party_in:
                    for p, cents in self.companions[q]:
                        if p in members:
                            most += cents
            self._choice(-1, eligible, options, most, r, q_end)
            return
        # One holder with free companions: each person the ticket is sold to, in turn.
        free = tuple(p for p in people if self.free[last_seat[p]])
        if not free:
            return
        if prune:
            # What the free persons' seats cost on each party ride (the rider's too, if
            # free): a holder's candidates cover at most those, on the rides the holder
            # takes, and the holder's own (`most` below).
            free_set = set(free)
            rider_free = 0 in free_set
            free_on: list[tuple[dict[int, int], int]] = []  # (seats, their cost) per ride
            for q in party_in:
                here = seat_at[q]
                cents_here = ms[here[0]] if rider_free else 0
                for p, cents in self.companions[q]:
                    if p in free_set:
                        cents_here += cents
                free_on.append((here, cents_here))
        for holder in people:
            if not self.sold[last_seat[holder]] or (len(free) == 1 and free[0] == holder):
                continue  # (not sold to them, or no companion to take along)
            options = self._options(facts, self.categories[last_seat[holder]])
            if not options:
                continue
            most = INF
            if prune:
                # (The rider rides every ride, companions only the party rides; the free
                # persons' seats as above, the holder's own if not free.)
                if holder == 0:
                    most = rider_cents
                    for q in party_in:
                        for p, cents in self.companions[q]:
                            if p in free_set:
                                most += cents
                else:
                    most = 0
                    own = holder not in free_set
                    for here, cents_here in free_on:
                        if holder in here:
                            most += (cents_here + ms[here[holder]]) if own else cents_here
                if options[0][0].cents >= most:
                    continue  # (no option is worth buying: the usual case for a companion)
            self._choice(holder, tuple(p for p in free if p != holder), options, most, r, q_end)

    def _options(self, facts: RideFacts, rider: str | None) -> list[tuple[PassOption, str | None]]:
        """`TariffView.group_options` of this product, looked up once per (ride facts, holder
        category) and shared by every window of the builder."""
        key = (id(facts), rider)
        found = self.options.get(key)
        if found is None:
            found = self.options[key] = self.view.group_options(self.product, facts, rider)
        return found

    def _choice(
        self,
        holder: int,
        others: tuple[int, ...],
        options: list[tuple[PassOption, str | None]],
        most: int,
        r: int,
        q_end: int,
    ) -> None:
        """The candidates of one choice of persons in the window r..q_end-1: `holder` (-1 for
        a ticket for several persons) and the `others` it may take along; `options` its
        prices and scopes (cheapest first), `most` what its seats cost one by one."""
        group, on_rides, rows, seen = self.group, self.on_rides, self.rows, self.seen
        window = (1 << q_end) - (1 << r)
        taken: list[tuple[int, int]] = []  # (price, rides bitmask) of the options used
        for opt, _level in options:  # (cheapest first)
            if opt.cents >= most:
                break  # (this and every dearer option)
            in_scope = self.in_scope.get(opt.scope_areas)
            if in_scope is None:
                in_scope = self._scope_rides(opt.scope_areas)
            rides_bits = in_scope & window
            if any(
                bits & rides_bits == rides_bits
                and (self.prune or (bits == rides_bits and cents == opt.cents))
                for cents, bits in taken
            ):
                # A cheaper (or equal) option of this choice has all these rides in
                # scope: each candidate below is a subset of one of its candidates
                # (without pruning: only the same price and rides, the same candidates).
                continue
            taken.append((opt.cents, rides_bits))
            if holder >= 0:
                shared = rides_bits & on_rides[holder]
                base, base_cents = self._seats(holder, shared, r, q_end)
                size = group.free_count
            else:
                shared, base, base_cents, size = rides_bits, 0, 0, group.persons
            pick = [p for p in others if on_rides[p] & shared]
            if not pick:
                continue
            subsets = [tuple(pick)] if len(pick) <= size else itertools.combinations(pick, size)
            for chosen in subsets:
                # (Different persons' seats: the mask's single prices add up.)
                mask, singles = base, base_cents
                for p in chosen:
                    seats, cents = self._seats(p, on_rides[p] & shared, r, q_end)
                    mask |= seats
                    singles += cents
                if mask.bit_count() < 2 or (mask, opt.cents) in seen:
                    continue
                seen.add((mask, opt.cents))
                if self.prune and opt.cents >= singles:
                    continue
                first = (mask & -mask).bit_length() - 1
                rows[first].append(Cand(mask, opt.cents, first, -1, opt.offer, group=True))
                self.special.add(first)

    def _seats(self, p: int, rides: int, r: int, q_end: int) -> tuple[int, int]:
        """Person p's seats on `rides` (a bitmask of rides inside the window r..q_end-1) as
        a bitmask, and what they cost one by one."""
        if p == 0 and rides == (1 << q_end) - (1 << r):
            # The rider is on every ride: their seats of the whole window by prefix sums.
            return (
                self.rider_bits[q_end] - self.rider_bits[r],
                self.rider_prefix[q_end] - self.rider_prefix[r],
            )
        found = self.seats_of.get((p, rides))
        if found is None:
            seat_at, ms = self.seat_at, self.ms
            seats = cents = 0
            m = rides
            while m:  # (`_bits`, inline)
                low = m & -m
                k = seat_at[low.bit_length() - 1][p]
                seats |= 1 << k
                cents += ms[k]
                m ^= low
            found = self.seats_of[(p, rides)] = (seats, cents)
        return found

    def _scope_rides(self, scope: frozenset[str] | None) -> int:
        """The rides (bitmask) a ticket valid in `scope` may cover: those the tariff knows,
        inside the scope (None = everywhere it prices). Once per tariff and scope; rides of
        the same facts are looked at together (`by_facts`, filled on first use)."""
        by_facts = self.by_facts
        if not by_facts:
            for q, ride in enumerate(self.ride_facts):
                if ride is not None:
                    entry = by_facts.get(id(ride))
                    if entry is None:
                        by_facts[id(ride)] = [ride, 1 << q]
                    else:
                        entry[1] |= 1 << q
        found = 0
        for ride, rides in by_facts.values():
            if scope is None or (ride.zone is not None and ride.zone.areas <= scope):
                found |= rides
        self.in_scope[scope] = found
        return found


def _bits(mask: int) -> list[int]:
    """The positions of the bits set in `mask`, lowest first."""
    out: list[int] = []
    while mask:
        low = mask & -mask
        out.append(low.bit_length() - 1)
        mask ^= low
    return out


_Scoped = tuple[PassOption, int, int]
"""A pass group: option, the trips (one person's) it may cover, the person."""


def _drop_dominated_groups(groups: list[_Scoped]) -> list[_Scoped]:
    """Drop a whole group when another group with an equal period (same time zone) and
    rider has a superset of its trips for no more money: at every trip its candidate is
    then covered by the other group's candidate."""
    groups.sort(key=lambda g: (g[0].cents, -g[1].bit_count()))
    kept: dict[tuple[tuple[object, ...], int], list[int]] = {}  # -> the trips of those kept
    out: list[_Scoped] = []
    for g in groups:
        opt, smask, person = g
        masks = kept.get((opt.kind_key, person))
        if masks is None:
            kept[(opt.kind_key, person)] = [smask]
        elif has_superset(masks, smask):
            continue
        else:
            masks.append(smask)
        out.append(g)
    return out


def _drop_dominated(cands: list[Cand]) -> list[Cand]:
    """Drop a pass if another covers a superset of its trips for no more money."""
    if len(cands) <= 1:
        return cands
    cands.sort(key=lambda c: (c.price, -c.mask.bit_count()))
    kept: list[Cand] = []
    masks: list[int] = []  # (of `kept`)
    reach = 0  # (their union: a mask with a bit outside it has no superset among them)
    for c in cands:
        mask = c.mask
        if reach & mask == mask and has_superset(masks, mask):
            continue
        kept.append(c)
        masks.append(mask)
        reach |= mask
    return kept


def has_superset(masks: list[int], mask: int) -> bool:
    """Does some mask of `masks` have every bit of `mask`? (A loop, not `any()` over a
    generator: this is the solver's innermost check, and the loop is the faster.)"""
    for other in masks:  # noqa: SIM110
        if other & mask == mask:
            return True
    return False
