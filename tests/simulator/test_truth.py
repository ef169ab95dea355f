from __future__ import annotations

import itertools
import json
from collections import defaultdict

import pytest

from simulator.day import ground_truth
from simulator.population import BYSTANDER_KINDS, EpisodeKind, Role
from simulator.truth import GroundTruth, GroundTruthError


@pytest.fixture(scope="module")
def truth(small_plan):
    return ground_truth(small_plan)


def test_trips_are_consistent_with_the_timetable(small_plan, network, truth):
    journeys = {j.journey_id: j for v in small_plan.vehicles for j in v.journeys}
    assert truth.trips
    for t in truth.trips:
        assert t.board_time < t.alight_time
        assert t.board_stop_id in network.stops
        assert t.alight_stop_id in network.stops
        j = journeys[t.journey_id]
        assert j.vehicle_id == t.vehicle_id
        assert j.line == t.line
        b, a = j.call_index(t.board_stop_id), j.call_index(t.alight_stop_id)
        assert b < a
        assert j.calls[b].doors_open_ms <= t.board_time <= j.calls[b].doors_closed_ms
        assert j.calls[a].doors_open_ms <= t.alight_time <= j.calls[a].doors_closed_ms
        assert t.rider_category in {"adult", "child"}


def test_no_person_in_two_vehicles_at_once(truth, small_plan):
    by_person = defaultdict(list)
    for t in truth.trips:
        by_person[t.person_id].append(t)
    for trips in by_person.values():
        trips.sort(key=lambda t: t.board_time)
        for a, b in itertools.pairwise(trips):
            assert b.board_time > a.alight_time
    inside = defaultdict(list)
    for eps in small_plan.episodes.values():
        for ep in eps:
            if ep.kind is EpisodeKind.RIDE:
                inside[ep.person_id].append((ep.start_ms, ep.end_ms))
    for spans in inside.values():
        spans.sort()
        for (_, e0), (s1, _) in itertools.pairwise(spans):
            assert s1 >= e0


def test_only_passengers_ride_and_bystanders_are_heard(truth, small_plan, network):
    roles = {p.person_id: p.role for p in small_plan.persons}
    assert {roles[t.person_id] for t in truth.trips} == {Role.PASSENGER}
    assert truth.bystander_encounters
    kinds = {e.kind for e in truth.bystander_encounters}
    assert kinds <= {k.value for k in BYSTANDER_KINDS}
    assert {"stop_wait", "walk_past", "alongside"} <= kinds
    for e in truth.bystander_encounters:
        assert e.stop_id in network.stops
        riding = [
            t
            for t in truth.trips
            if t.person_id == e.person_id
            and t.vehicle_id == e.vehicle_id
            and t.board_time <= e.t <= t.alight_time
        ]
        assert not riding


def test_most_passengers_ride_twice(truth, small_plan):
    counts = defaultdict(int)
    for t in truth.trips:
        counts[t.person_id] += 1
    passengers = [p for p in small_plan.persons if p.role is Role.PASSENGER]
    assert sum(1 for p in passengers if counts[p.person_id] == 2) > len(passengers) / 2


def test_json_round_trip(truth, tmp_path, small_plan):
    ids = {p.person_id: f"dev-{p.person_id}" for p in small_plan.persons}
    with_ids = ground_truth(small_plan, ids)
    assert with_ids.trips[0].device_id == f"dev-{with_ids.trips[0].person_id}"
    path = tmp_path / "truth.json"
    with_ids.save(path)
    doc = json.loads(path.read_text("utf-8"))
    assert doc["version"] == 1
    assert GroundTruth.load(path) == with_ids


def test_wrong_version_refused(truth):
    doc = truth.to_json() | {"version": 2}
    with pytest.raises(GroundTruthError, match="version: expected 1, got 2"):
        GroundTruth.from_json(doc)
