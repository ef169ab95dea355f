"""A passenger's trip as the fare engine sees it, and the checks on a list of them."""

from __future__ import annotations

import datetime as dt
import itertools
import operator
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Final

from pydantic import BaseModel, ConfigDict, Field, field_validator

from fare_engine.errors import FareInputError, FareInputReason
from fare_engine.model import Mode
from fare_engine.tariff import Tariff

BIKE: Final = "bike"
"""The party key (and tariff rider category) of a bicycle taken along."""
MAX_PARTY_PEOPLE: Final = 9
"""Most companions (people, the rider not counted) on one ride: a party of ten."""
MAX_PARTY_BIKES: Final = 5

Party = tuple[tuple[str, int], ...]
"""Companions by category, sorted: ((rider category or "bike", count), ...)."""


class Trip(BaseModel):
    """One ride: stops are DHIDs, times UTC epoch ms, `rider_category` a tariff rider id.

    Optional facts the reconciliation may know:
    - `stops_travelled`: how many stops after the boarding stop the rider alighted
      (1 = the next stop), from the positions in the vehicle journey's stop
      sequence. Needed for the Kurzstrecke (boarding stop + up to 4 further
      stops); None means unknown, and the Kurzstrecke is then not offered.
    - `mode`: the vehicle (bibo only sees buses, hence the default).
    - `farthest_stop_id`: for a ride that turns back (a round trip), the stop of
      the ride farthest in a straight line from the boarding stop; eezy splits
      the trip there, zone tariffs price both legs.
    - `joins_previous`: this ride continues the journey of the rider's previous
      ride (the one boarding just before it): a change of vehicle under the
      backend's transfer rule. eezy prices such a journey as one check-in, start
      to end (the rule in `fare_engine.instance`); the separate fares stay
      options. Ignored on the first ride and after a ride of another rider
      category. The caller passes the previous ride too (the backend bills
      whole chains): without it the flag would join this ride to another one.
    - `party`: who rode along, as counts by tariff rider category plus `bike`, e.g.
      ``{"adult": 1, "child": 3, "bike": 1}`` (stored as sorted pairs); None = the rider
      alone. Every person and bicycle needs a valid product on the ride. Companions are
      told apart by category and number: the second child on one ride is the second
      child on every ride of the list (`pricing` gives each a seat of their own). At most
      `MAX_PARTY_PEOPLE` people and `MAX_PARTY_BIKES` bicycles (`check_trip`).
    """

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    board_stop_id: str
    alight_stop_id: str
    board_time: int
    alight_time: int
    rider_category: str
    stops_travelled: Annotated[int, Field(ge=0)] | None = None
    mode: Mode = "bus"
    farthest_stop_id: str | None = None
    joins_previous: bool = False
    party: Party | None = None

    @field_validator("party", mode="before")
    @classmethod
    def _party_pairs(cls, value: Any) -> Any:
        """A mapping or pairs -> sorted pairs without zero counts; None if nobody."""
        if value is None:
            return None
        pairs = value.items() if isinstance(value, Mapping) else value
        out = tuple(sorted((k, n) for k, n in (tuple(p) for p in pairs) if n != 0))
        return out or None


def check_stop(tariff: Tariff, stop_id: str, field: str, trip_index: int | None) -> None:
    if not tariff.has_stop(stop_id):
        raise FareInputError(
            FareInputReason.UNKNOWN_STOP,
            field,
            stop_id,
            f"a stop id of tariff {tariff.tariff_id}",
            trip_index,
        )


def check_rider(tariff: Tariff, rider: str, field: str, trip_index: int | None) -> None:
    if not tariff.has_rider(rider):
        raise FareInputError(
            FareInputReason.UNKNOWN_RIDER_CATEGORY,
            field,
            rider,
            f"one of {tariff.rider_ids()}",
            trip_index,
        )


def check_in_validity(tariff: Tariff, at_ms: int, field: str, trip_index: int | None) -> None:
    start, end = tariff.validity_ms()
    if not start <= at_ms < end:
        raise FareInputError(
            FareInputReason.OUTSIDE_TARIFF_VALIDITY,
            field,
            at_ms,
            f"a time from {tariff.spec.valid_from} to {tariff.spec.valid_to} "
            f"({tariff.spec.timezone}), when tariff {tariff.tariff_id} is valid; "
            f"got {_iso(at_ms)}",
            trip_index,
        )


def _iso(at_ms: int) -> str:
    return dt.datetime.fromtimestamp(at_ms / 1000, tz=dt.UTC).isoformat()


TripSortKey = tuple[int, int, str, str, str, str, int, str, bool, Party]


def trip_sort_key(trip: Trip) -> TripSortKey:
    """Boarding order; ties broken by content so the caller's order never matters."""
    return (
        trip.board_time,
        trip.alight_time,
        trip.board_stop_id,
        trip.alight_stop_id,
        trip.rider_category,
        trip.farthest_stop_id or "",
        -1 if trip.stops_travelled is None else trip.stops_travelled,
        trip.mode,
        trip.joins_previous,
        trip.party or (),
    )


def check_trip(trip: Trip, tariff: Tariff, i: int | None) -> None:
    """Refuse one bad trip, naming index and field."""
    check_rider(tariff, trip.rider_category, "rider_category", i)
    check_stop(tariff, trip.board_stop_id, "board_stop_id", i)
    check_stop(tariff, trip.alight_stop_id, "alight_stop_id", i)
    if trip.farthest_stop_id is not None:
        check_stop(tariff, trip.farthest_stop_id, "farthest_stop_id", i)
    if trip.alight_time < trip.board_time:
        raise FareInputError(
            FareInputReason.ALIGHT_BEFORE_BOARD,
            "alight_time",
            trip.alight_time,
            f">= board_time {trip.board_time}",
            i,
        )
    check_in_validity(tariff, trip.board_time, "board_time", i)
    if trip.party is not None:
        check_party(tariff, trip.party, i)


def check_party(tariff: Tariff, party: Party, i: int | None) -> None:
    """Refuse an unknown category, a negative count or a party too large, naming the field."""
    people = 0
    for category, count in party:
        # (The field's name is made for an error only: a party is checked on every ride.)
        if not tariff.has_rider(category):
            check_rider(tariff, category, f"party.{category}", i)
        if count < 0:
            raise FareInputError(FareInputReason.BAD_PARTY, f"party.{category}", count, ">= 0", i)
        if category == BIKE:
            if count > MAX_PARTY_BIKES:
                raise FareInputError(
                    FareInputReason.BAD_PARTY,
                    f"party.{category}",
                    count,
                    f"<= {MAX_PARTY_BIKES} bicycles",
                    i,
                )
        else:
            people += count
    if people > MAX_PARTY_PEOPLE:
        raise FareInputError(
            FareInputReason.BAD_PARTY,
            "party",
            people,
            f"<= {MAX_PARTY_PEOPLE} companions in all (the rider not counted)",
            i,
        )


def check_trips(trips: Sequence[Trip], tariff: Tariff) -> list[int]:
    """Refuse bad trips (naming index and field); return indexes in boarding order."""
    start, end = tariff.validity_ms()
    # (`has_rider`, `has_stop` as look-ups: the checks run for every trip.)
    riders, stops = frozenset(tariff.rider_ids()), tariff.stop_names
    for i, trip in enumerate(trips):
        # The usual trip passes these at once; any other goes through every check in
        # order, so a bad one is refused for the same field as one by one (a party last).
        if (
            not start <= trip.board_time < end
            or trip.alight_time < trip.board_time
            or trip.rider_category not in riders
            or trip.board_stop_id not in stops
            or trip.alight_stop_id not in stops
            or (trip.farthest_stop_id is not None and trip.farthest_stop_id not in stops)
        ):
            check_trip(trip, tariff, i)
        elif trip.party is not None:
            check_party(tariff, trip.party, i)
    boards = [t.board_time for t in trips]
    if all(map(operator.lt, boards, boards[1:])):
        order = list(range(len(trips)))  # in boarding order already (no tie to break)
    else:
        keys = [trip_sort_key(t) for t in trips]
        order = sorted(range(len(trips)), key=keys.__getitem__)
    for prev, cur in itertools.pairwise(order):
        if trips[cur].board_time < trips[prev].alight_time:
            check_no_overlap(trips[prev], prev, trips[cur], cur)
    return order


def check_no_overlap(prev: Trip, prev_index: int, cur: Trip, cur_index: int) -> None:
    """`cur` boards no earlier than `prev`; refuse it if it boards before `prev` ends."""
    if cur.board_time < prev.alight_time:
        raise FareInputError(
            FareInputReason.OVERLAPPING_TRIPS,
            "board_time",
            cur.board_time,
            f">= alight_time {prev.alight_time} of trip {prev_index} "
            "(one rider cannot ride twice at once)",
            cur_index,
        )
