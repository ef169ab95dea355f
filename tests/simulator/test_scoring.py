from __future__ import annotations

import datetime as dt

import pytest

from simulator.scoring import DetectedTrip, score
from simulator.truth import GroundTruth, TruthEncounter, TruthTrip

A, B, C, D = "de:05974:1001", "de:05974:1002", "de:05974:1003", "de:05974:1004"
MIN = 60_000


def _truth():
    trips = [
        TruthTrip("p1", "RLG-1", "R61-0700-0", "R61", A, 0, C, 10 * MIN, "adult"),
        TruthTrip("p1", "RLG-1", "R61-1600-1", "R61", C, 540 * MIN, A, 550 * MIN, "adult"),
        TruthTrip("p2", "RLG-2", "R61-0800-0", "R61", B, 60 * MIN, D, 75 * MIN, "child"),
    ]
    encs = [TruthEncounter("p3", "RLG-1", B, 3 * MIN, "stop_wait")]
    return GroundTruth(dt.date(2026, 6, 3), 1, trips, encs)


DEVICES = {"d1": "p1", "d2": "p2", "d3": "p3"}


def _detect(t, device, **change):
    fields = {
        "device_id": device,
        "vehicle_id": t.vehicle_id,
        "journey_id": t.journey_id,
        "board_stop_id": t.board_stop_id,
        "board_time": t.board_time,
        "alight_stop_id": t.alight_stop_id,
        "alight_time": t.alight_time,
    } | change
    return DetectedTrip(**fields)


def test_perfect_detection():
    truth = _truth()
    detected = [_detect(t, "d1" if t.person_id == "p1" else "d2") for t in truth.trips]
    s = score(truth, detected, DEVICES)
    assert s.f1 == 1.0
    assert s.precision == s.recall == 1.0
    assert s.board_stop_accuracy == s.alight_stop_accuracy == 1.0
    assert s.bystanders_charged == 0
    assert s.as_dict()["matched"] == 3


def test_bystander_trip_is_counted():
    truth = _truth()
    detected = [_detect(t, "d1" if t.person_id == "p1" else "d2") for t in truth.trips]
    detected.append(DetectedTrip("d3", "RLG-1", "R61-0700-0", B, 2 * MIN, C, 10 * MIN))
    s = score(truth, detected, DEVICES)
    assert s.bystanders_charged == 1
    assert s.false_positives == 1
    assert s.precision == pytest.approx(3 / 4)
    assert s.recall == 1.0


def test_rider_on_wrong_vehicle_is_a_bystander_charge():
    truth = _truth()
    detected = [_detect(truth.trips[0], "d1", vehicle_id="RLG-2")]
    s = score(truth, detected, DEVICES)
    assert s.matched == 0
    assert s.bystanders_charged == 1
    assert s.missed == 3


def test_wrong_alight_stop_counted():
    truth = _truth()
    detected = [
        _detect(truth.trips[0], "d1", alight_stop_id=D, alight_time=12 * MIN),
        _detect(truth.trips[2], "d2"),
    ]
    s = score(truth, detected, DEVICES)
    assert s.matched == 2
    assert s.alight_stop_correct == 1
    assert s.alight_stop_accuracy == 0.5
    assert s.board_stop_accuracy == 1.0
    assert s.recall == pytest.approx(2 / 3)
    assert s.f1 == pytest.approx(2 * 1.0 * (2 / 3) / (1.0 + 2 / 3))


def test_one_to_one_split_trip():
    truth = _truth()
    t = truth.trips[0]
    detected = [
        _detect(t, "d1", alight_stop_id=B, alight_time=4 * MIN),
        _detect(t, "d1", board_stop_id=B, board_time=4 * MIN),
    ]
    s = score(truth, detected, DEVICES)
    assert s.matched == 1
    assert s.split_or_duplicate == 1
    assert s.bystanders_charged == 0


def test_unknown_device_and_empty_cases():
    truth = _truth()
    s = score(truth, [_detect(truth.trips[0], "nobody")], DEVICES)
    assert s.unknown_devices == 1
    assert s.bystanders_charged == 1
    empty = score(GroundTruth(dt.date(2026, 6, 3), 1), [], {})
    assert empty.f1 == 1.0
    assert empty.board_stop_accuracy is None
    assert score(truth, [], DEVICES).f1 == 0.0
