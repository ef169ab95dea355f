from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
from collections import Counter, defaultdict

import numpy as np

from simulator.const import CLOCK_SKEW_MAX_MS, PHONE_MODELS
from simulator.day import plan_day
from simulator.population import Pattern, Role, make_persons, make_phone, plan_outages
from simulator.radio import Carry
from tests.simulator.conftest import SMALL_DAY


def test_phones_span_the_models_intervals_carries_and_clocks():
    rng = np.random.default_rng(4)
    phones = [make_phone(rng) for _ in range(3000)]
    real = np.array([p.tx_1m_dbm for p in phones])
    assert real.max() - real.min() > 16  # model-dependent power, about ±10 dB
    assert {p.model for p in phones} == {m[0] for m in PHONE_MODELS}
    intervals = {p.adv_interval_ms for p in phones}
    assert min(intervals) == 100
    assert max(intervals) == 1000
    assert len(intervals) >= 6
    assert {p.carry for p in phones} == {Carry.HAND, Carry.POCKET, Carry.BAG}
    skews = np.array([p.clock_skew_ms for p in phones])
    assert np.abs(skews).max() <= CLOCK_SKEW_MAX_MS
    assert np.abs(skews).max() > 30_000
    # Some models mis-report their power: advertised and real differ by model.
    bias = defaultdict(list)
    for p in phones:
        bias[p.model].append(p.tx_1m_dbm - p.tx_power_dbm)
    means = [np.mean(v) for v in bias.values()]
    assert max(means) - min(means) > 8


def test_persons_have_patterns_categories_and_bystander_kinds():
    rng = np.random.default_rng(1)
    persons = make_persons(rng, 2000, 300, (("stop_wait", 1.0), ("trailing_car", 1.0)))
    riders = [p for p in persons if p.role is Role.PASSENGER]
    assert len(riders) == 2000
    patterns = Counter(p.pattern for p in riders)
    assert set(patterns) == set(Pattern) - {Pattern.NONE}
    pupils = [p for p in riders if p.pattern is Pattern.PUPIL]
    assert sum(p.rider_category == "child" for p in pupils) > 0.6 * len(pupils)
    kinds = Counter(p.bystander_kind for p in persons if p.role is Role.BYSTANDER)
    assert set(kinds) == {"stop_wait", "trailing_car"}
    assert len({p.person_id for p in persons}) == len(persons)


def test_itineraries_return_transfer_and_hop(network):
    cfg = dataclasses.replace(
        SMALL_DAY, passengers=300, bystanders=0, service_start=dt.time(6), service_end=dt.time(20)
    )
    plan = plan_day(network, cfg, seed=3)
    by_person = defaultdict(list)
    for t in plan.trips:
        by_person[t.person_id].append(t)
    returns = transfers = hops = 0
    for trips in by_person.values():
        trips.sort(key=lambda t: t.board_time)
        outings = defaultdict(list)
        for t in trips:
            outings[t.outing].append(t)
        for legs in outings.values():
            for a, b in itertools.pairwise(legs):
                # A transfer: the next ride starts where the last one ended, at a stop both
                # lines serve, after a walk.
                transfers += 1
                assert b.part == a.part + 1
                assert b.board_stop_id == a.alight_stop_id
                assert {a.line, b.line} <= set(network.lines_at(a.alight_stop_id))
                assert b.board_time > a.alight_time
        if 0 in outings and 1 in outings:
            out, back = outings[0], outings[1]
            if back[-1].alight_stop_id == out[0].board_stop_id:
                returns += 1
        for t in trips:
            line = network.line(t.line)
            if abs(line.stops.index(t.board_stop_id) - line.stops.index(t.alight_stop_id)) == 1:
                hops += 1
    assert returns > 0
    assert transfers > 0
    assert hops > 0


def test_outages_start_mid_ride(small_plan):
    rides = defaultdict(list)
    for t in small_plan.trips:
        rides[t.person_id].append(t)
    outages = plan_outages(np.random.default_rng(0), small_plan.trips, 2**50, prob=1.0)
    assert len(outages) == len(rides)
    for o in outages:
        assert any(t.board_time < o.start_ms < t.alight_time for t in rides[o.person_id])
        assert o.end_ms > o.start_ms
