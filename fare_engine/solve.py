"""Exact minimum-cost cover of one passenger's trips: a label DP, and an integer programme.

**DP.** Trips are taken in boarding order. A state after trip i is the set of
*later* trips already paid for by products bought so far (a bitmask) with the
cheapest cost of reaching it. At trip i a state either has it covered already,
or buys one candidate generated at i (see `instance`): since a pass's window is
the widest one containing trip i, and a run starts at its first trip, every
optimal cover is found this way. A product of a cover whose first trip is
paid for already by an earlier one can be replaced by the candidate generated
at its first trip not yet paid for, which covers the rest for no more (a pass's
widest window there, the EinzelTicket's chain from there) — except a joined
eezy check-in, whose last rides alone may cost more than the whole journey.
So a state that has trip i covered may still buy a joined check-in generated
at i (`Cand.joined`); the partition gives it its rides and cuts the earlier
product (`pricing.partition`). Party tickets (`Cand.group`: a TagesTicket24 with
children free, a 5-person TagesTicket24) cover several persons' seats; the
replacement argument does not hold for them, so at their first seat any subset of
them may be bought, paid seat or not. Since they are generated for every window start,
scope and maximal choice of persons (`instance`), every party ticket of a cover is
a subset of one of them at the same price, and the DP stays exact; the others keep
the argument above, as each covers one person's seats only and seats are numbered
person by person. A state is dropped when another covers a
superset of the later trips for no more money. This is exact for any scopes;
where scopes nest (town ⊂ Kreis ⊂ Ruhr-Lippe ⊂ everywhere, zones 1-2 ⊂ 1-3) few
states survive, where they cross (two overlapping pairs of neighbouring towns)
more may, so a label budget hands such an instance to the integer programme.

**Integer programme.** One binary variable per candidate, one "covered at least
once" row per trip, solved by HiGHS through `scipy.optimize.milp` with a zero
optimality gap. Costs are integer cents, so the optimum is exact.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, milp
from scipy.sparse import csc_array

from fare_engine.const import DP_LABEL_BUDGET, MILP_TIME_LIMIT_S
from fare_engine.instance import INF, Cand, Instance, has_superset

Method = Literal["dp", "milp", "plain_milp"]

_Back = tuple[Any, Cand] | None
"""A persistent list of the candidates bought on the way to a state (newest first)."""


@dataclass(frozen=True, slots=True)
class Solution:
    """A cheapest cover: the candidates bought (in buying order) and their total."""

    cost: int
    chosen: list[Cand]
    method: Method
    peak_states: int
    """Most DP states alive after one trip (0 for the integer programme)."""


class SolverError(RuntimeError):
    """The integer programme failed (time limit or solver status); never a partial bill."""


def solve_dp(
    inst: Instance,
    *,
    budget: int | None = DP_LABEL_BUDGET,
    upper_bound: int | None = None,
) -> Solution | None:
    """The exact cheapest cover, or None if more than `budget` states were needed.

    `upper_bound` (the cost of some known cover) prunes states that already cost more.
    """
    ub = upper_bound if upper_bound is not None else INF
    labels: dict[int, tuple[int, _Back]] = {0: (0, None)}
    peak = 1
    special = inst.special
    for i, row in enumerate(inst.cands):
        bit = 1 << i
        joined: list[Cand] = []
        if i in special:
            tickets = [c for c in row if c.group]
            if tickets:
                labels = _buy_party_tickets(labels, tickets, ub)
                row = [c for c in row if not c.group]
            # (`Cand.joined`, inline: a run of several trips, one eezy check-in)
            joined = [c for c in row if c.last > c.first and c.offer.kind == "distance"]
        if len(labels) == 1 and not joined:
            # (The most common steps, without the dicts below: one state, with this seat
            # paid already, or buying the one product there is.)
            ((mask, state),) = labels.items()
            if mask & bit:
                labels = {mask ^ bit: state}
                continue
            if len(row) == 1:
                cost, back = state
                c = row[0]
                new_cost = cost + c.price
                if new_cost > ub:
                    raise LookupError(f"no product covers trip position {i}")
                labels = {(mask | c.mask) ^ bit: (new_cost, (back, c))}
                continue
        nxt: dict[int, tuple[int, _Back]] = {}
        carried: dict[int, tuple[int, _Back]] = {}
        bought = False
        for mask, state in labels.items():
            if mask & bit:
                key = mask ^ bit
                old = nxt.get(key)
                if old is None:
                    nxt[key] = carried[key] = state
                elif state[0] < old[0]:
                    nxt[key] = state  # (placed where the product bought first put it)
                if not joined:
                    continue
                buy = joined
            else:
                buy = row
            cost, back = state
            for c in buy:
                new_cost = cost + c.price
                if new_cost > ub:
                    continue
                key = (mask | c.mask) ^ bit
                old = nxt.get(key)
                if old is None or new_cost < old[0]:
                    nxt[key] = (new_cost, (back, c))
                    bought = True
        # (Nothing bought: the states of the last step, this seat taken off, none beaten.)
        labels = _pareto(nxt, carried) if bought else nxt
        if len(labels) > peak:
            peak = len(labels)
            if budget is not None and peak > budget:
                return None
        if not labels:
            raise LookupError(f"no product covers trip position {i}")
    cost, back = labels[0]
    return Solution(cost, list(_unwind(back)), "dp", peak)


def _buy_party_tickets(
    labels: dict[int, tuple[int, _Back]], tickets: list[Cand], ub: int
) -> dict[int, tuple[int, _Back]]:
    """Every state with any subset of the party tickets generated at this seat bought,
    whether the seat is paid already or not (a party ticket's persons need not be the
    ones whose seats are paid: see `instance`).

    `labels` is a `_pareto` result (in cost order), so when a ticket makes no state
    cheaper it is kept as it is: `_pareto` would return the same states in the same order.
    Every state a ticket makes or makes cheaper covers the ticket's seats, which lets
    `_pareto` check it against the states that do (`common`) instead of all of them.
    """
    for c in tickets:
        grown = dict(labels)
        changed = False
        for mask, (cost, back) in labels.items():
            new_cost = cost + c.price
            if new_cost > ub:
                continue
            key = mask | c.mask
            old = grown.get(key)
            if old is None or new_cost < old[0]:
                grown[key] = (new_cost, (back, c))
                changed = True
        if changed:
            labels = _pareto(grown, labels, c.mask)
    return labels


def solve_singles(inst: Instance) -> Solution:
    """The cheapest cover by single-journey products alone (EinzelTicket chains, eezy
    fares): the bill's "single tickets alone". Per person (a party's seats: runs never
    mix persons), runs are intervals of the person's seats, so a 1-D DP suffices:
    best[k] = cheapest cover of their first k seats = min over runs from seat i to seat j
    with i < k <= j+1 of best[i] + price (a run may reach past k: its first trips alone
    cost no more, see `instance`)."""
    lines, where = inst.lines, inst.where
    total = 0
    chosen: list[Cand] = []
    for line in lines.values():
        n = len(line)
        best = [INF] * (n + 1)
        best[0] = 0
        back: list[tuple[int, Cand] | None] = [None] * (n + 1)
        for i in range(n):
            base = best[i]
            if base >= INF:
                continue
            for c in inst.cands[line[i]]:
                if c.last < 0:
                    continue
                cost = base + c.price
                for k in range(i + 1, where[c.last] + 2):
                    if cost < best[k]:
                        best[k] = cost
                        back[k] = (i, c)
        if best[n] >= INF:
            raise LookupError("some trip has no single-journey product")
        mine: list[Cand] = []
        k = n
        while k > 0:
            step = back[k]
            assert step is not None
            k, cand = step
            mine.append(cand)
        chosen += reversed(mine)
        total += best[n]
    chosen.sort(key=lambda c: c.first)
    return Solution(total, chosen, "dp", 0)


def _pareto(
    states: dict[int, tuple[int, _Back]],
    settled: dict[int, tuple[int, _Back]],
    common: int = 0,
) -> dict[int, tuple[int, _Back]]:
    """Keep the states no other state beats (cheaper or equal, covering a superset): a
    state is dropped when one before it in (cost, insertion) order covers a superset.

    `settled` holds states of `states` already checked against each other, in an order
    that agrees with this one: a previous result (or its states with a bit every one of
    them had taken away, which keeps every subset relation among them), each still at the
    value it had there. Such a state can then only be beaten by one that is not settled
    (a state beaten by a dropped one is beaten by whatever dropped that one, which comes
    before both), so the quadratic check runs only against those; the result is the
    same as checking against every state kept.

    `common`: bits every state that is not settled covers (a party ticket's seats, see
    `_buy_party_tickets`). Only a state covering them can beat such a state, so it is
    checked against those alone. And a state none of whose possible beaters has all its
    bits between them (`reach`, the union of their masks) is kept without the loop: the
    loops decide the same, they just skip comparisons that cannot succeed.
    """
    if len(states) <= 1:
        return states
    if len(states) == 2:  # (the most common case after one state, without the sort)
        (a, value_a), (b, value_b) = states.items()
        if value_b[0] < value_a[0]:
            a, value_a, b, value_b = b, value_b, a, value_a
        if a & b == b and not (settled.get(a) is value_a and settled.get(b) is value_b):
            return {a: value_a}
        return {a: value_a, b: value_b}
    items = sorted(states.items(), key=_cost)
    kept: dict[int, tuple[int, _Back]] = {}
    fresh: list[int] = []  # the masks kept that are not settled (each covers `common`)
    covering: list[int] = []  # the masks kept that cover `common` (fresh ones among them)
    fresh_reach = reach = 0  # the union of `fresh`, of `covering`
    for mask, value in items:
        if settled.get(mask) is value:
            if fresh_reach & mask == mask and has_superset(fresh, mask):
                continue
            kept[mask] = value
            if mask & common == common:
                covering.append(mask)
                reach |= mask
        else:
            if reach & mask == mask and has_superset(covering, mask):
                continue
            kept[mask] = value
            fresh.append(mask)
            fresh_reach |= mask
            covering.append(mask)
            reach |= mask
    return kept


def _cost(item: tuple[int, tuple[int, _Back]]) -> int:
    return item[1][0]


def _unwind(back: _Back) -> Iterator[Cand]:
    chosen: list[Cand] = []
    while back is not None:
        back, cand = back
        chosen.append(cand)
    return reversed(chosen)


def solve_milp(inst: Instance, method: Method = "milp") -> Solution:
    """The exact cheapest cover by integer programming over all candidates of `inst`."""
    cands = inst.all_cands()
    if inst.n == 0:
        return Solution(0, [], method, 0)
    rows: list[int] = []
    cols: list[int] = []
    for k, c in enumerate(cands):
        m = c.mask
        while m:
            low = m & -m
            rows.append(low.bit_length() - 1)
            cols.append(k)
            m ^= low
    matrix = csc_array(
        (np.ones(len(rows)), (np.array(rows), np.array(cols))), shape=(inst.n, len(cands))
    )
    prices = np.array([c.price for c in cands], dtype=float)
    result = milp(
        c=prices,
        constraints=LinearConstraint(matrix, lb=np.ones(inst.n), ub=np.full(inst.n, np.inf)),
        integrality=np.ones(len(cands)),
        bounds=Bounds(0, 1),
        options={"mip_rel_gap": 0.0, "time_limit": MILP_TIME_LIMIT_S, "presolve": True},
    )
    if result.status != 0 or result.x is None:
        raise SolverError(f"integer programme failed: status {result.status}: {result.message}")
    chosen = [cands[k] for k in np.flatnonzero(result.x > 0.5)]
    covered = 0
    for c in chosen:
        covered |= c.mask
    if covered != (1 << inst.n) - 1:
        raise SolverError("integer programme returned a cover that misses a trip")
    chosen.sort(key=lambda c: (c.first, c.last < 0))
    return Solution(sum(c.price for c in chosen), chosen, method, 0)


def scopes_nested(inst: Instance) -> bool:
    """True if the trip sets of all pass scopes form a laminar family (nested or disjoint)."""
    masks = sorted(set(inst.scope_masks), key=int.bit_count)
    for k, a in enumerate(masks):
        for b in masks[k + 1 :]:
            common = a & b
            if common and common != a:
                return False
    return True
