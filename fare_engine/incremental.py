"""The running best price of one passenger as trips arrive (the app's running total).

Adding a trip never lowers the best price: every product stays valid when a trip
is taken away from it. So when the current best cover already has a pass whose
window and scope include the new trip, the best price is unchanged and nothing
needs solving. Otherwise the period is re-solved, with the old total as a lower
bound and "old cover + the new trip's cheapest single fare" as an upper bound.

One exception: a ride uploaded late that a later ride continues (`joins_previous`).
eezy prices the joined journey start to end, which can cost less than the later
rides alone (out north, then on east: the check-in pays the straight line from the
start). Only a joined check-in's *first* rides are guaranteed to cost no more (see
`instance._Builder._joined_runs`), so such an add may lower the total; it is
re-solved with no lower bound and no pass shortcut. Rides added in boarding order
never hit this.

With parties (`Trip.party`) the cover is over seats (`pricing.party_seats`); the account
keeps each bought product's rides (boarding positions) and whose seats it pays for. A
ride with a party is re-solved (with the old total as a lower bound: a ride more, with
its party, never lowers the price). A ride without one is the rider's seat alone, so a
pass of the cover bought for the rider (not a party ticket) whose window and scope
include it absorbs it as above: the old cover plus that seat is a cover at the old
total, and no cover of more seats is cheaper. A run of any person spanning the new ride
makes it re-solve, as without parties.

Per-ride tariff facts are cached across calls, so a re-solve only redoes the
passenger-specific part.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass

from fare_engine.bill import Bill
from fare_engine.instance import INF, Cand
from fare_engine.offers import view_of
from fare_engine.periods import covers
from fare_engine.pricing import SolveMethod, default_tariffs, price_ordered
from fare_engine.tariff import Tariff
from fare_engine.trips import Trip, TripSortKey, check_no_overlap, check_trip, trip_sort_key


@dataclass(slots=True)
class _Group:
    """A product of the current best cover, the trips (boarding positions) it covers, its window."""

    cand: Cand
    positions: list[int]
    """The rides (boarding positions) it pays seats on."""
    valid_from: int
    valid_to: int
    person: int = 0
    """Whose seats it pays for (0 = the rider's), -1 for a party ticket."""


class PricingAccount:
    """One passenger's trips in a billing period (e.g. the running month) and their best price.

    `add(trip)` returns the new running total in cents; `bill()` the full bill.
    Trips may arrive in any order (a late upload is fine); the result is the same
    as `best_price_multi` over all trips.
    """

    def __init__(
        self, tariffs: Sequence[Tariff] | None = None, *, method: SolveMethod = "auto"
    ) -> None:
        self.tariffs = list(tariffs) if tariffs is not None else default_tariffs()
        self.method: SolveMethod = method
        self._trips: list[Trip] = []
        """In arrival order: the bill's trip indexes refer to this order."""
        self._order: list[int] = []
        """Arrival indexes in boarding order."""
        self._keys: list[TripSortKey] = []
        self._groups: list[_Group] = []
        self._total = 0
        self._bill: Bill | None = None
        self.fast_adds = 0
        """Trips absorbed by a pass of the current best cover without re-solving."""
        self.resolves = 0
        self._party = False
        """Has some trip a party? (then a re-solve gets no upper bound)"""

    @property
    def trips(self) -> list[Trip]:
        return list(self._trips)

    @property
    def total_cents(self) -> int:
        return self._total

    def add(self, trip: Trip) -> int:
        """Add one trip; the new best total in cents. Refuses a bad trip (FareInputError)."""
        index = len(self._trips)
        check_trip(trip, self.tariffs[0], index)
        key = trip_sort_key(trip)
        pos = bisect_left(self._keys, key)
        if pos > 0:
            check_no_overlap(self._trips[self._order[pos - 1]], self._order[pos - 1], trip, index)
        if pos < len(self._order):
            nxt = self._order[pos]
            check_no_overlap(trip, index, self._trips[nxt], nxt)
        self._party = self._party or trip.party is not None
        inside_chain = self._inside_chain(pos)
        # A later ride continuing this one: the total may go down (module doc).
        continued = pos < len(self._order) and self._trips[self._order[pos]].joins_previous
        absorbing = (
            None
            if inside_chain or continued or trip.party is not None
            else self._absorbing_pass(trip)
        )
        self._trips.append(trip)
        self._keys.insert(pos, key)
        self._order.insert(pos, index)
        self._bill = None
        for group in self._groups:
            group.positions = [p + (p >= pos) for p in group.positions]
        if absorbing is not None:
            absorbing.positions.append(pos)
            absorbing.positions.sort()
            self.fast_adds += 1
            return self._total
        upper = None if inside_chain or self._party else self._total + self._cheapest_single(trip)
        self._resolve(lower=None if continued else self._total, upper=upper)
        return self._total

    def bill(self) -> Bill:
        """The full bill for all trips so far."""
        if self._bill is None:
            self._resolve(lower=self._total, upper=self._total)
        assert self._bill is not None
        return self._bill

    # --- internals -----------------------------------------------------------------
    def _resolve(self, lower: int | None, upper: int | None) -> None:
        ordered = [self._trips[k] for k in self._order]
        priced = price_ordered(
            ordered, list(self._order), self.tariffs, self.method,
            lower_bound=lower, upper_bound=upper,
        )  # fmt: skip
        self._bill = priced.bill
        self._total = priced.bill.total_cents
        rides, persons = priced.instance.rides, priced.instance.persons
        self._groups = []
        for (cand, seats), product in zip(priced.groups, priced.bill.products, strict=True):
            whose = {persons[k] for k in seats}
            person = persons[seats[0]] if len(whose) == 1 and not cand.group else -1
            positions = sorted({rides[k] for k in seats})
            self._groups.append(
                _Group(cand, positions, product.valid_from, product.valid_to, person)
            )
        self.resolves += 1

    def _absorbing_pass(self, trip: Trip) -> _Group | None:
        """A pass of the current best cover that includes this trip at no extra cost."""
        for group in self._groups:
            if group.cand.last < 0 and group.person == 0 and self._pass_covers(group, trip):
                return group
        return None

    def _pass_covers(self, group: _Group, trip: Trip) -> bool:
        offer = group.cand.offer
        if offer.rider != trip.rider_category or offer.period is None:
            return False
        view = view_of(offer.tariff)
        if not view.covers_time(trip.board_time):
            return False
        facts = view.ride(trip)
        if facts is None or not view.may_cap(offer.caps, facts):
            return False
        if offer.scope_areas is not None and (
            facts.zone is None or not facts.zone.areas <= offer.scope_areas
        ):
            return False
        return covers(
            offer.period, group.valid_from, group.valid_to, trip.board_time, trip.alight_time
        )

    def _inside_chain(self, pos: int) -> bool:
        """Would a trip at boarding position `pos` split a run (an EinzelTicket with changes,
        a joined eezy check-in) covering several trips?"""
        return any(
            g.cand.last >= 0 and g.positions[0] < pos <= g.positions[-1] for g in self._groups
        )

    def _cheapest_single(self, trip: Trip) -> int:
        best = INF
        for tariff in self.tariffs:
            view = view_of(tariff)
            facts = view.ride(trip) if view.covers_time(trip.board_time) else None
            if facts is not None:
                best = min([best, *(fare.cents for fare in facts.singles)])
        return best
