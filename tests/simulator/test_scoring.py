from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from simulator.scoring import ScoredTrip, score
from simulator.sweep import HEARD_BUCKETS, NO_DEVICE, heard_bucket
from simulator.truth import GroundTruth, TruthEncounter, TruthTrip

A, B, C, D = "de:05974:1001", "de:05974:1002", "de:05974:1003", "de:05974:1004"
MIN = 60_000


def _truth(silent_from=None):
    trips = [
        TruthTrip("p1", "RLG-1", "R61-0700-0", "R61", A, 0, C, 10 * MIN, "adult"),
        TruthTrip("p1", "RLG-1", "R61-1600-1", "R61", C, 540 * MIN, A, 550 * MIN, "adult"),
        TruthTrip(
            "p2", "RLG-2", "R61-0800-0", "R61", B, 60 * MIN, D, 75 * MIN, "child",
            phone_silent_from=silent_from,
        ),
    ]  # fmt: skip
    encs = [
        TruthEncounter("p3", "RLG-1", B, 3 * MIN, "stop_wait", t_end=4 * MIN),
        TruthEncounter("p3", "RLG-2", B, 62 * MIN, "trailing_car", t_end=70 * MIN),
    ]
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
    return ScoredTrip(**fields)


def _all(truth):
    return [_detect(t, "d1" if t.person_id == "p1" else "d2") for t in truth.trips]


def test_perfect_detection():
    truth = _truth()
    s = score(truth, _all(truth), DEVICES)
    assert s.f1 == 1.0
    assert s.precision == s.recall == 1.0
    assert s.board_stop_accuracy == s.alight_stop_accuracy == 1.0
    assert s.bystanders_charged == 0
    assert s.per_1000_encounters == 0.0
    assert s.as_dict()["matched"] == 3
    assert "matched_pairs" not in s.as_dict()
    assert "charged_trips" not in s.as_dict()
    assert s.matched_pairs == ((0, 0), (1, 1), (2, 2))


def test_bystander_trip_is_counted_and_attributed_to_its_encounter():
    truth = _truth()
    detected = [*_all(truth), ScoredTrip("d3", "RLG-2", "R61-0800-0", B, 63 * MIN, D, 71 * MIN)]
    s = score(truth, detected, DEVICES)
    assert s.bystanders_charged == 1
    assert s.bystanders_by_kind == {"trailing_car": 1}
    assert s.charged_trips == ((3, "trailing_car"),)  # the detection's index, its kind
    assert s.encounters_by_kind == {"stop_wait": 1, "trailing_car": 1}
    assert s.per_1000_encounters == 500.0
    assert s.false_positives == 1
    assert s.precision == pytest.approx(3 / 4)
    assert s.recall == 1.0


def test_rider_on_wrong_vehicle_is_a_bystander_charge():
    truth = _truth()
    s = score(truth, [_detect(truth.trips[0], "d1", vehicle_id="RLG-2")], DEVICES)
    assert s.matched == 0
    assert s.bystanders_charged == 1
    assert s.bystanders_by_kind == {"none": 1}
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


def test_rides_silent_from_boarding_are_undetectable_not_missed():
    truth = _truth(silent_from=60 * MIN)
    s = score(truth, _all(truth)[:2], DEVICES)
    assert s.undetectable == 1
    assert s.truth_trips == 2
    assert s.recall == 1.0
    # A detection of the undetectable ride is neither a match nor a bystander charge.
    s = score(truth, _all(truth), DEVICES)
    assert s.bystanders_charged == 0
    assert s.split_or_duplicate == 1
    # Silent only from mid-ride: still in the truth.
    assert score(_truth(silent_from=65 * MIN), _all(truth)[:2], DEVICES).missed == 1


def test_unknown_device_and_empty_cases():
    truth = _truth()
    s = score(truth, [_detect(truth.trips[0], "nobody")], DEVICES)
    assert s.unknown_devices == 1
    assert s.bystanders_charged == 1
    empty = score(GroundTruth(dt.date(2026, 6, 3), 1), [], {})
    assert empty.f1 == 1.0
    assert empty.board_stop_accuracy is None
    assert empty.per_1000_encounters is None
    assert score(truth, [], DEVICES).f1 == 0.0


def test_an_alighting_the_phone_was_silent_for_is_left_out_of_the_alighting_accuracy():
    # p2's phone fell silent at minute 65 and stayed silent past the alighting at D at 75:
    # the ride can only end where the phone was last heard (C).
    truth = _truth(silent_from=65 * MIN)
    detected = _all(truth)
    detected[2] = _detect(truth.trips[2], "d2", alight_stop_id=C, alight_time=70 * MIN)
    s = score(truth, detected, DEVICES)
    assert s.matched == 3
    assert s.alight_unobservable == 1
    assert s.alight_stop_accuracy == 1.0
    assert s.alight_stop_accuracy_all == pytest.approx(2 / 3)


def test_a_phone_back_before_the_alighting_is_scored():
    truth = _truth(silent_from=62 * MIN)
    trips = list(truth.trips)
    trips[2] = dataclasses.replace(trips[2], phone_silent_until=70 * MIN)
    truth = dataclasses.replace(truth, trips=trips)
    detected = _all(truth)
    detected[2] = _detect(truth.trips[2], "d2", alight_stop_id=C, alight_time=70 * MIN)
    s = score(truth, detected, DEVICES)
    assert s.alight_unobservable == 0
    assert s.alight_stop_accuracy == pytest.approx(2 / 3)


def test_audibility_buckets_have_edges_where_their_labels_say():
    labels = [label for _, label in HEARD_BUCKETS]
    assert heard_bucket(None) == NO_DEVICE
    assert heard_bucket(0.0) == labels[0]
    assert heard_bucket(0.001) == heard_bucket(0.0499) == labels[1]
    assert heard_bucket(0.05) == heard_bucket(0.1999) == labels[2]
    assert heard_bucket(0.2) == heard_bucket(1.0) == labels[3]
