"""The fixed-lag be-out: the backend decides a rider's be-out on the data up to the trip's
``alight_known_at``, and that decision is the final one. `bibo evaluate` counts the be-out
latency from it, so this checks the premise on a simulated morning: for every closed trip
of the whole day, reconciling only the uploads the backend had once the data up to
``alight_known_at`` was in (the first upload sealed a window or more after it: the agent
seals the windows closed by then) gives the same trip, closed, alighting at the same stop,
decided on the same data. And the converse, the flip-flops of issue 12: a trip shown
closed at any seal of a paced replay is the final one."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from backend.trips.reconciliation import DetectedTrip
from backend.trips.resolution import TokenResolver
from onboard.const import UPLOAD_INTERVAL_MS
from simulator.const import GOAL_FLIP_FLOPS, IPHONE_SHARE, LATENCY_HORIZON_S, WORKER_PASS_S
from simulator.day import DayPlan, plan_day
from simulator.evaluation import person_of
from simulator.latency import (
    ADVERTISING,
    BEACON,
    latency_at,
    paced_latency,
    phone_uploads,
    shown_to_a_bystander,
)
from simulator.network import Network
from simulator.offline import DAY_INTERVALS, reconcile_one, vehicle_data
from simulator.recording import Recording, write_recording
from simulator.sweep import bibo_trips, recorded_vehicles
from simulator.truth import GroundTruth, TruthTrip
from tests.simulator.conftest import SMALL_DAY


def record(plan: DayPlan, out: Path, name: str) -> Recording:
    write_recording(
        plan,
        out,
        name=name,
        description="",
        radio_seed=3,
        recorder="fast",
        upload_interval_ms=UPLOAD_INTERVAL_MS,
    )
    return Recording.open(out)


@pytest.fixture(scope="module")
def recording(small_plan: DayPlan, tmp_path_factory: pytest.TempPathFactory) -> Recording:
    return record(small_plan, tmp_path_factory.mktemp("fixed-lag") / "morning", "fixed-lag")


def test_a_be_out_decided_on_partial_data_is_the_final_one(recording: Recording) -> None:
    resolver = TokenResolver(list(recording.device_keys().items()), cache_intervals=DAY_INTERVALS)
    checked = 0
    for entry in recording.vehicles:
        vid = entry["vehicle_id"]
        batches = list(recording.batches(vid))
        sealed = [json.loads(b)["sent_at"] - json.loads(b)["window_ms"] for b in batches]
        final, _ = reconcile_one(vehicle_data(vid, batches), resolver)
        for trip in final:
            assert trip.status == "closed", trip  # the day's data is complete
            assert trip.alight_known_at is not None
            # What the backend holds once the data up to alight_known_at is in.
            upto = next(i for i, s in enumerate(sealed) if s >= trip.alight_known_at)
            then, _ = reconcile_one(vehicle_data(vid, batches[: upto + 1]), resolver)
            same = [t for t in then if t.trip_id == trip.trip_id]
            assert len(same) == 1, (trip, then)
            assert same[0].status == "closed"
            assert same[0].alight_stop_id == trip.alight_stop_id
            assert same[0].alight_known_at == trip.alight_known_at
            checked += 1
    assert checked >= 50


def test_a_trip_shown_closed_is_not_withdrawn(recording: Recording, small_plan: DayPlan) -> None:
    # Every seal within the latency horizon of a departure some rider's boarding or
    # alighting follows, reconciled on the data the backend held then: a trip it showed
    # closed keeps its stops in the whole day's reconciliation (or it was a flip-flop).
    truth = GroundTruth.load(recording.path / "truth.json")
    person = {d["device_id"]: person_of(d["device_id"]) for d in recording.devices}
    detected = bibo_trips(recording, vehicles=recorded_vehicles(recording))
    counts = paced_latency(recording, small_plan, truth, detected, person)
    assert counts.closed_trips >= 50
    assert counts.flip_flops <= GOAL_FLIP_FLOPS * counts.closed_trips, counts.summary()
    assert len(counts.beout) >= 50
    # A ride not shown right within the horizon is infinite, never a larger finite figure
    # (the seals of a later departure may show it).
    longest = LATENCY_HORIZON_S + WORKER_PASS_S
    assert all(s <= longest or s == float("inf") for s in counts.bein + counts.beout)


@pytest.fixture(scope="module")
def iphone_plan(network: Network) -> DayPlan:
    return plan_day(network, dataclasses.replace(SMALL_DAY, iphone_share=IPHONE_SHARE), seed=11)


@pytest.fixture(scope="module")
def iphone_recording(iphone_plan: DayPlan, tmp_path_factory: pytest.TempPathFactory) -> Recording:
    out: Path = tmp_path_factory.mktemp("fixed-lag-iphones") / "morning"
    return record(iphone_plan, out, "fixed-lag-iphones")


def test_a_trip_of_an_iphone_shown_closed_is_not_withdrawn(
    iphone_plan: DayPlan, iphone_recording: Recording
) -> None:
    # The same with iPhones among the riders: a ride resting on a phone's batched uploads
    # is not shown off the bus before the phone has reported the stretch after the stop.
    recording = iphone_recording
    truth = GroundTruth.load(recording.path / "truth.json")
    person = {d["device_id"]: person_of(d["device_id"]) for d in recording.devices}
    detected = bibo_trips(recording, vehicles=recorded_vehicles(recording))
    counts = paced_latency(recording, iphone_plan, truth, detected, person)
    assert len(counts.beacon_beout) >= 15  # iPhone riders' be-outs were measured
    assert counts.flip_flops <= GOAL_FLIP_FLOPS * counts.closed_trips, counts.summary()
    # Every rider counts under one platform, and the iPhones' under the beacon one.
    summary = counts.summary()["platforms"]
    assert set(summary) == {ADVERTISING, BEACON}
    assert summary[ADVERTISING]["bein"]["rides"] + summary[BEACON]["bein"]["rides"] == len(
        counts.bein
    )
    # Named finer platforms are counted besides (as `bibo evaluate --worlds` names them).
    ranging = set(sorted(iphone_plan.iphones)[::2])
    finer = {p: [BEACON, "ranging" if p in ranging else "burst"] for p in iphone_plan.iphones}
    again = paced_latency(recording, iphone_plan, truth, detected, person, platforms=finer)
    assert sorted(again.beacon_bein) == sorted(counts.beacon_bein)
    assert len(again.platform_bein["ranging"]) + len(again.platform_bein["burst"]) == len(
        again.beacon_bein
    )
    assert ADVERTISING in again.platform_bein  # riders not named keep their default
    # Every trip shown to someone not riding counts under that person's platforms too.
    shown = again.platform_shown
    assert shown.get(ADVERTISING, 0) + shown.get(BEACON, 0) == again.bystanders_shown
    assert shown.get("ranging", 0) + shown.get("burst", 0) == shown.get(BEACON, 0)


def test_an_iphone_upload_counts_from_when_it_was_sent_in_true_time(
    iphone_plan: DayPlan, iphone_recording: Recording
) -> None:
    # sent_at is read on the phone's clock: the backend holds an upload from the true time
    # it was sent, clock_skew_ms earlier than a phone that runs ahead says.
    person = {d["device_id"]: person_of(d["device_id"]) for d in iphone_recording.devices}
    skew = {p.person_id: p.phone.clock_skew_ms for p in iphone_plan.persons}
    by_device = {d: skew[p] for d, p in person.items()}
    assert any(by_device[d] != 0 for d in iphone_recording.iphone_device_ids())
    said = sorted(
        (json.loads(b)["sent_at"] - by_device[json.loads(b)["device_id"]])
        for b in iphone_recording.phone_batches()
    )
    uploads = phone_uploads(iphone_recording, by_device)
    assert [sent for sent, _ in uploads] == said
    assert [sent for sent, _ in phone_uploads(iphone_recording, {})] != said


@pytest.mark.parametrize("shown_at_s", [0, 60, 170, 185, 600, None])
def test_a_ride_not_shown_within_the_horizon_is_infinite(shown_at_s: int | None) -> None:
    # The seals of every departure, 10 s apart, looked at in turn for one departing at
    # ``dep`` (not on a seal): its latency is final at the first seal that shows it within
    # the horizon, or infinite, and never a finite figure past the horizon.
    dep, horizon = 1_000_003_000, int(LATENCY_HORIZON_S * 1000)
    got = None
    for cut in range(1_000_000_000, dep + 30 * 60_000, 10_000):
        if cut < dep:
            continue
        shown = shown_at_s is not None and cut >= dep + shown_at_s * 1000
        got = latency_at(cut, dep, horizon, shown)
        if got is not None:
            break
    if shown_at_s is not None and shown_at_s <= LATENCY_HORIZON_S - 10:
        assert got is not None
        assert got <= shown_at_s + 10 + WORKER_PASS_S
    else:
        assert got == float("inf")


def test_a_trip_shown_on_a_bus_its_person_did_not_ride_then_is_shown_to_a_bystander():
    ride = TruthTrip("p1", "V1", "J1", "R1", "s1", 1_000_000, "s3", 1_400_000, "adult", "d1")
    rode = {("p1", "V1"): [ride]}
    person = {"d1": "p1", "d2": "p2"}

    def shown(device: str, vehicle: str, board: int, until: int) -> DetectedTrip:
        return DetectedTrip(
            "trp_x",
            device,
            vehicle,
            "J1",
            "R1",
            "s1",
            board,
            "s2",
            until,
            0.9,
            1,
            1.0,
            "open",
            None,
        )

    assert not shown_to_a_bystander(shown("d1", "V1", 1_000_000, 1_100_000), rode, person)
    # Held on board from before the ride began until into it: it overlaps, not a bystander.
    assert not shown_to_a_bystander(shown("d1", "V1", 900_000, 1_000_000), rode, person)
    assert shown_to_a_bystander(shown("d1", "V1", 1_500_000, 1_600_000), rode, person)
    assert shown_to_a_bystander(shown("d1", "V2", 1_000_000, 1_100_000), rode, person)
    assert shown_to_a_bystander(shown("d2", "V1", 1_000_000, 1_100_000), rode, person)
