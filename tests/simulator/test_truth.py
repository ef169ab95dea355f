"""Consistency of every scenario's truth: a phone is never in two vehicles at once,
boarding precedes alighting, every trip is on stops its vehicle served."""

from __future__ import annotations

import itertools
import json
from collections import defaultdict

import pytest

from simulator.bystanders import BYSTANDER_KINDS, EpisodeKind
from simulator.day import ground_truth, plan_day
from simulator.population import Role
from simulator.scenarios import library
from simulator.truth import GroundTruth, GroundTruthError

SCENARIOS = [s for s in library() if s.name != "ordinary-weekday"] + [
    s for s in library() if s.name == "ordinary-weekday"
]


@pytest.fixture(scope="module", params=[s.name for s in SCENARIOS])
def plan(request, network):
    s = next(x for x in SCENARIOS if x.name == request.param)
    return plan_day(network, s.config, s.seed)


def test_trips_are_on_stops_their_vehicle_served(plan, network):
    journeys = {j.journey_id: j for v in plan.vehicles for j in v.journeys}
    truth = ground_truth(plan)
    assert truth.trips
    for t in truth.trips:
        assert t.board_time < t.alight_time
        j = journeys[t.journey_id]
        assert j.vehicle_id == t.vehicle_id
        assert j.line == t.line
        b, a = j.call_index(t.board_stop_id), j.call_index(t.alight_stop_id)
        assert b < a
        bc, ac = j.calls[b], j.calls[a]
        assert bc.served
        assert ac.served
        assert bc.doors_open_ms <= t.board_time <= bc.doors_closed_ms
        assert ac.doors_open_ms <= t.alight_time <= ac.doors_closed_ms
        assert t.rider_category in {"adult", "child"}
        if t.phone_silent_from is not None:
            assert t.board_time <= t.phone_silent_from < t.alight_time


def test_no_phone_in_two_vehicles_at_once(plan):
    by_person = defaultdict(list)
    for t in plan.trips:
        by_person[t.person_id].append((t.board_time, t.alight_time))
    for spans in by_person.values():
        spans.sort()
        for (_, e0), (s1, _) in itertools.pairwise(spans):
            assert s1 > e0
    inside = defaultdict(list)
    for eps in plan.episodes.values():
        for ep in eps:
            if ep.kind is EpisodeKind.RIDE:
                inside[ep.person_id].append((ep.start_ms, ep.end_ms, ep.vehicle_id))
    for spans in inside.values():
        spans.sort()
        for (_, e0, _), (s1, _, _) in itertools.pairwise(spans):
            assert s1 >= e0


def test_bystanders_never_ride_and_encounters_are_not_rides(plan, network):
    roles = {p.person_id: p.role for p in plan.persons}
    truth = ground_truth(plan)
    assert {roles[t.person_id] for t in truth.trips} == {Role.PASSENGER}
    rides = defaultdict(list)
    for t in truth.trips:
        rides[(t.person_id, t.vehicle_id)].append(t)
    assert {e.kind for e in truth.bystander_encounters} <= {k.value for k in BYSTANDER_KINDS}
    for e in truth.bystander_encounters:
        assert e.stop_id in network.stops or e.stop_id == ""
        assert e.t <= e.t_end
        for t in rides.get((e.person_id, e.vehicle_id), []):
            assert not (t.board_time < e.t_end and e.t < t.alight_time), (e, t)
    for eps in plan.episodes.values():
        for ep in eps:
            assert ep.start_ms < ep.end_ms
            if ep.kind in BYSTANDER_KINDS:
                for t in rides.get((ep.person_id, ep.vehicle_id), []):
                    assert not (t.board_time < ep.end_ms and ep.start_ms < t.alight_time)


def test_each_case_scenario_has_its_bystanders(network):
    expected = {
        "stop-wait": "stop_wait",
        "hub-transfer": "hub_wait",
        "alongside": "alongside_car",
        "trailing-car": "trailing_car",
        "bus-beside": "bus_beside",
        "bunched": "bunched",
    }
    for s in library():
        if s.name not in expected:
            continue
        truth = ground_truth(plan_day(network, s.config, s.seed))
        kinds = {e.kind for e in truth.bystander_encounters}
        assert expected[s.name] in kinds, s.name
    mixed = next(s for s in library() if s.name == "ordinary-weekday")
    truth = ground_truth(plan_day(network, mixed.config, mixed.seed))
    assert {e.kind for e in truth.bystander_encounters} == {k.value for k in BYSTANDER_KINDS}


def test_json_round_trip(small_plan, tmp_path):
    ids = {p.person_id: f"dev-{p.person_id}" for p in small_plan.persons}
    with_ids = ground_truth(small_plan, ids)
    assert with_ids.trips[0].device_id == f"dev-{with_ids.trips[0].person_id}"
    path = tmp_path / "truth.json"
    with_ids.save(path)
    doc = json.loads(path.read_text("utf-8"))
    assert doc["version"] == 2
    assert GroundTruth.load(path) == with_ids


def test_wrong_version_refused(small_plan):
    doc = ground_truth(small_plan).to_json() | {"version": 1}
    with pytest.raises(GroundTruthError, match="version: expected 2, got 1"):
        GroundTruth.from_json(doc)
