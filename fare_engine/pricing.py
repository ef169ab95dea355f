"""The exact best price of one passenger's trips over one or more tariffs, as a `Bill`.

`best_price(trips, tariff)` prices with one tariff (the backend's original call);
`best_price_multi(trips, tariffs)` mixes the products of several, e.g. Ruhr-Lippe
(EinzelTicket, Kurzstrecke, TagesTicket24, 7/30TageTicket, Deutschlandticket) with
eezy Westfalen (distance fares under a rolling 24 h and a calendar-month cap).
The first tariff checks the trips (stops, rider, validity).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from operator import lt
from typing import Any, Literal

from fare_engine.bill import Bill
from fare_engine.const import DEFAULT_TARIFF_IDS, DP_LABEL_BUDGET
from fare_engine.errors import FareInputError, FareInputReason
from fare_engine.instance import INF, Cand, Instance, build_instance
from fare_engine.offers import view_of
from fare_engine.periods import window
from fare_engine.solve import Solution, scopes_nested, solve_dp, solve_milp, solve_singles
from fare_engine.tariff import Tariff, load_tariff
from fare_engine.trips import Trip, check_trips

SolveMethod = Literal["auto", "dp", "milp", "plain_milp"]


def default_tariffs() -> list[Tariff]:
    """The tariffs a bibo passenger is billed over: Ruhr-Lippe 2026 and eezy Westfalen 2026."""
    return [load_tariff(t) for t in DEFAULT_TARIFF_IDS]


def best_price(trips: Sequence[Trip], tariff: Tariff) -> Bill:
    """The cheapest valid set of products of `tariff` covering every trip exactly once."""
    return best_price_multi(trips, [tariff])


def best_price_multi(
    trips: Sequence[Trip],
    tariffs: Sequence[Tariff] | None = None,
    *,
    method: SolveMethod = "auto",
) -> Bill:
    """The cheapest valid mix of the products of `tariffs` (default: `default_tariffs()`).

    `method`: "auto" runs the DP and falls back to the integer programme when the
    DP's state budget is exceeded; "dp" / "milp" force one (both exact);
    "plain_milp" solves the unpruned integer programme (the benchmark's baseline).
    """
    tariffs = list(tariffs) if tariffs is not None else default_tariffs()
    if not tariffs:
        raise ValueError("best_price_multi needs at least one tariff")
    order = check_trips(trips, tariffs[0])
    return price_ordered(list(map(trips.__getitem__, order)), order, tariffs, method).bill


@dataclass(frozen=True, slots=True)
class Priced:
    """A bill with the instance and solution it came from (for incremental re-pricing)."""

    bill: Bill
    instance: Instance
    solution: Solution
    groups: list[tuple[Cand, list[int]]]
    """Each bought product with the trip positions it covers (a partition)."""


def price_ordered(
    ordered: list[Trip],
    order: list[int],
    tariffs: list[Tariff],
    method: SolveMethod,
    *,
    lower_bound: int | None = None,
    upper_bound: int | None = None,
) -> Priced:
    """Price checked trips already in boarding order (`order[k]` = caller's index of the
    k-th). `lower_bound` / `upper_bound` are totals known to be reachable from below /
    above (incremental re-pricing); they only speed the search up."""
    views = [view_of(t) for t in tariffs]
    seats, persons, rides, labels = party_seats(ordered)
    inst = build_instance(seats, views, prune=method != "plain_milp", persons=persons, rides=rides)
    if max(inst.min_single, default=0) >= INF:  # (a seat no product covers: the first)
        for i, cheapest in enumerate(inst.min_single):
            if cheapest >= INF:
                raise FareInputError(
                    FareInputReason.NO_PRODUCT,
                    "rider_category" if persons[i] == 0 else f"party.{seats[i].rider_category}",
                    seats[i].rider_category,
                    f"a ride {[t.tariff_id for t in tariffs]} sell a ticket for",
                    order[rides[i]],
                )
    singles = solve_singles(inst)
    solution = _solve(inst, method, singles, lower_bound, upper_bound)
    groups = partition(inst, solution.chosen)
    bill = make_bill(inst, order, groups, singles.cost, solution, tariffs, labels)
    return Priced(bill, inst, solution, groups)


RIDER = "rider"
"""The person label of the passenger's own seat on the bill."""


def party_seats(ordered: list[Trip]) -> tuple[list[Trip], list[int], list[int], list[str]]:
    """The seats of trips in boarding order: (seat trips, person of each seat, ride of each
    seat, person labels), ride by ride: the rider's seat, then each companion's
    (category and number, e.g. "child 2": the second child on every ride that has two or
    more), a trip of their rider category, `joins_previous` only where they were on the
    previous ride too. A bicycle is a seat like a person of category `bike`. Without
    parties: the trips themselves, all the rider's."""
    n = len(ordered)
    if not any(t.party for t in ordered):
        return ordered, [0] * n, list(range(n)), [RIDER]
    companions: set[tuple[str, int]] = set()
    nobody: dict[str, int] = {}  # (shared by the rides without companions; only read)
    counts = [dict(t.party) if t.party else nobody for t in ordered]
    for party in counts:
        for category, count in party.items():
            companions.update((category, k) for k in range(1, count + 1))
    keys = sorted(companions)
    seats: list[Trip] = []
    persons: list[int] = []
    rides: list[int] = []
    for r, t in enumerate(ordered):
        seats.append(t)
        persons.append(0)
        rides.append(r)
        # Companions of one category and presence on the previous ride ride the same seat
        # trip (trips are frozen): one copy each.
        if not counts[r]:
            continue
        copies: dict[tuple[str, bool], Trip] = {}
        for person, (category, k) in enumerate(keys, start=1):
            if counts[r].get(category, 0) < k:
                continue
            joins = t.joins_previous and r > 0 and counts[r - 1].get(category, 0) >= k
            seat = copies.get((category, joins))
            if seat is None:
                seat = t.model_copy(
                    update={"rider_category": category, "party": None, "joins_previous": joins}
                )
                copies[(category, joins)] = seat
            seats.append(seat)
            persons.append(person)
            rides.append(r)
    return seats, persons, rides, [RIDER, *(f"{c} {k}" for c, k in keys)]


def _solve(
    inst: Instance,
    method: SolveMethod,
    singles: Solution,
    lower_bound: int | None,
    upper_bound: int | None,
) -> Solution:
    if method in ("milp", "plain_milp"):
        return solve_milp(inst, method)
    if lower_bound is not None and singles.cost <= lower_bound:
        return singles  # nothing can be cheaper than a known lower bound
    budget = None if method == "dp" else DP_LABEL_BUDGET
    bound = singles.cost if upper_bound is None else min(singles.cost, upper_bound)
    solution = solve_dp(inst, budget=budget, upper_bound=bound)
    if solution is None:
        return solve_milp(inst, "milp")
    return solution


def partition(inst: Instance, chosen: Sequence[Cand]) -> list[tuple[Cand, list[int]]]:
    """Turn a cover into a partition: runs first, then each remaining trip goes to the
    first pass covering it; products left with no trip are dropped.

    A run lying inside another chosen run is dropped. Of two overlapping runs the later
    one keeps its trips and the earlier one keeps its first trips, up to the later one's
    first trip: a prefix of a run is still a valid run. An EinzelTicket covers any first
    rides of its chain for its price; a joined eezy check-in cut to its first rides is
    the check-in of those rides, offered at no more (the rule in
    `instance._Builder._joined_runs`), and is re-priced here so the bill shows what that
    check-in costs. (Keeping the later run's suffix instead would be right for an
    EinzelTicket but not for a check-in: its last rides alone may cost more.) Both
    solvers return covers that may hold overlapping runs (the DP buys a joined check-in
    at a trip paid for already, the integer programme whatever is cheapest); the
    partition never costs more than the cover, so for a cheapest cover it costs the same.
    """
    owner = [-1] * inst.n
    groups: list[tuple[Cand, list[int]]] = []
    seats_of, where = inst.lines, inst.where
    by_person: dict[int, list[Cand]] = {}
    for cand in (c for c in chosen if c.last >= 0):
        by_person.setdefault(inst.persons[cand.first], []).append(cand)
    for person, cands in by_person.items():
        line = seats_of[person]
        runs: list[Cand] = []
        for cand in sorted(cands, key=lambda c: (where[c.first], -where[c.last])):
            if not runs or where[cand.last] > where[runs[-1].last]:
                runs.append(cand)  # (else it lies inside the run before it)
        for k, cand in enumerate(runs):
            last = where[cand.last]
            if k + 1 < len(runs):
                last = min(last, where[runs[k + 1].first] - 1)
            if last < where[cand.last]:
                cand = _first_rides(inst, cand, line[where[cand.first] : last + 1])
            positions = line[where[cand.first] : last + 1]
            groups.append((cand, positions))
            for p in positions:
                owner[p] = len(groups) - 1
    for cand in (c for c in chosen if c.last < 0):
        positions = []
        m = cand.mask
        while m:
            low = m & -m
            k = low.bit_length() - 1
            m ^= low
            if owner[k] == -1:
                owner[k] = len(groups)
                positions.append(k)
        if positions:
            groups.append((cand, positions))
    if -1 in owner:
        raise LookupError(f"trip position {owner.index(-1)} is not covered")
    rides, persons = inst.rides, inst.persons
    groups.sort(
        key=lambda g: (min(map(rides.__getitem__, g[1])), g[0].last < 0, persons[g[1][0]], g[1][0])
    )
    return groups


def _first_rides(inst: Instance, run: Cand, positions: list[int]) -> Cand:
    """The product `run` becomes when it keeps only its first seats `positions` (one
    person's, in order): an EinzelTicket stays what it is; an eezy check-in is the
    check-in of those rides (see `partition`)."""
    mask = sum(1 << k for k in positions)
    last = positions[-1]
    offer = run.offer
    if offer.kind != "distance":
        return Cand(mask, run.price, run.first, last, offer)
    view = view_of(offer.tariff)
    product = next(p for p in view.distance if p.id == offer.product_id)
    fare = view.journey_fare(product, [inst.trips[k] for k in positions])
    if fare is None:
        raise LookupError(f"no {product.id} fare for trips {run.first}..{last}")
    return Cand(mask, fare.cents, run.first, last, fare.offer)


def make_bill(
    inst: Instance,
    order: list[int],
    groups: list[tuple[Cand, list[int]]],
    singles_total: int,
    solution: Solution,
    tariffs: list[Tariff],
    labels: Sequence[str] = (RIDER,),
) -> Bill:
    """The bill for a partition of the seats into bought products (without parties the
    seats are the trips): `covers` are the caller's indexes of the trips a product pays
    for, `seats` who on each of them."""
    products: list[dict[str, Any]] = []
    covered_by = [0] * inst.n
    rides, persons, trips, min_single = inst.rides, inst.persons, inst.trips, inst.min_single
    boards = inst.boards
    trip_of = [order[r] for r in rides]
    """The caller's index of each seat's trip."""
    person_of = [labels[p] for p in persons]
    # Seats are numbered ride by ride and person by person (`party_seats`): then the order
    # by (ride, person) is the seats' own.
    by_seat = list(zip(rides, persons, strict=True))
    seat_order = all(map(lt, by_seat, by_seat[1:]))
    for n, (cand, positions) in enumerate(groups):
        offer = cand.offer
        if len(positions) == 1:  # (most products: a single journey)
            first = last = trips[positions[0]]
            by_ride = positions
        else:
            first = trips[min(positions, key=boards.__getitem__)]
            last = trips[max(positions, key=boards.__getitem__)]
            if seat_order:
                by_ride = sorted(positions)
            else:
                by_ride = sorted(positions, key=lambda k: (rides[k], persons[k]))
        valid_from, valid_to = _validity(cand, first.board_time, last)
        for k in positions:
            covered_by[k] = n
        covers = [trip_of[k] for k in by_ride]
        if cand.group:  # (a party ticket: a trip once for all its seats; others have one)
            covers = list(dict.fromkeys(covers))
        products.append(
            {
                **offer.bill_fields,
                "price_cents": cand.price,
                "valid_from": valid_from,
                "valid_to": valid_to,
                "covers": covers,
                "seats": [{"trip": trip_of[k], "person": person_of[k]} for k in by_ride],
                "singles_cents": sum([min_single[k] for k in positions]),
            }
        )
    primary = tariffs[0]
    name = primary.stop_names
    n_rides = len(order)
    if n_rides == inst.n:  # nobody rode along: each seat is a ride, the rider's
        seat_trips, seat_levels, seat_singles = trips, inst.levels, inst.single_offer
        seat_covered, alone = covered_by, min_single
        riding = [[person_of[k]] for k in range(n_rides)]
    else:
        rider_seats = inst.lines.get(0, [])
        alone = [0] * n_rides
        riding = [[] for _ in range(n_rides)]
        for r, cents, who in zip(rides, min_single, person_of, strict=True):
            alone[r] += cents
            riding[r].append(who)
        seat_trips = [trips[k] for k in rider_seats]
        seat_levels = [inst.levels[k] for k in rider_seats]
        seat_singles = [inst.single_offer[k] for k in rider_seats]
        seat_covered = [covered_by[k] for k in rider_seats]
    billed = [
        {
            "index": order[k],
            "board_stop_id": trip.board_stop_id,
            "board_stop_name": name[trip.board_stop_id],
            "alight_stop_id": trip.alight_stop_id,
            "alight_stop_name": name[trip.alight_stop_id],
            "board_time": trip.board_time,
            "alight_time": trip.alight_time,
            "rider_category": trip.rider_category,
            "level": level,
            "single_cents": single_cents,
            "single_product": single.label if single else "",
            "covered_by": by,
            "persons": who,
        }
        for k, (trip, level, single_cents, single, by, who) in enumerate(
            zip(
                seat_trips, seat_levels, alone, seat_singles, seat_covered, riding,
                strict=True,
            )
        )
    ]  # fmt: skip
    total = sum(p["price_cents"] for p in products)
    # One validation of plain data is much faster than building each model in Python.
    return Bill.model_validate(
        {
            "tariff_id": primary.tariff_id,
            "tariff_ids": [t.tariff_id for t in tariffs],
            "currency": primary.currency,
            "timezone": primary.spec.timezone,
            "total_cents": total,
            "singles_total_cents": singles_total,
            "saving_cents": singles_total - total,
            "method": solution.method,
            "scopes_nested": scopes_nested(inst),
            "products": products,
            "trips": billed,
        }
    )


def _validity(cand: Cand, first_board: int, last_trip: Trip) -> tuple[int, int]:
    offer = cand.offer
    if offer.kind == "distance":  # valid while checked in; [from, to) holds each boarding
        return first_board, max(last_trip.alight_time, last_trip.board_time + 1)
    if offer.span_ms is not None:  # (a single ticket's validity, a rolling window)
        return first_board, first_board + offer.span_ms
    assert offer.period is not None
    # Rolling windows and free-start days begin with the first trip the product ends up
    # covering: a later start than the one it was bought at only moves the end later.
    return window(offer.period, offer.tariff.tz, first_board)
