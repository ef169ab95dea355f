from __future__ import annotations

import json

import numpy as np

from backend.trips.reconciliation import EventRecord
from backend.trips.resolution import TokenResolver
from onboard import wire
from simulator.baseline import VehicleRecord, naive_trips, read_vehicle
from simulator.offline import vehicle_data

S = [f"de:05974:{n}" for n in range(1001, 1005)]
T0 = 1_780_000_000_000


def _events():
    ev = [{"t": T0, "type": "journey", "line": "R61", "journey_id": "R61-0700-0", "direction": 0}]
    for k, sid in enumerate(S):
        a = T0 + k * 120_000
        ev += [
            {"t": a, "type": "arrival", "stop_id": sid},
            {"t": a + 2000, "type": "doors_open"},
            {"t": a + 18_000, "type": "doors_closed"},
            {"t": a + 20_000, "type": "departure", "stop_id": sid},
        ]
    return ev


def _event_records(events):
    return [
        EventRecord(e["t"], e["type"], e.get("stop_id"), e.get("line"), e.get("journey_id"))
        for e in events
    ]


def _record(rows):
    t = np.array([r[0] for r in rows], dtype=np.int64)
    return VehicleRecord(
        "RLG-1",
        np.array([T0], dtype=np.int64),
        t,
        np.array([r[1] for r in rows], dtype=np.int64),
        np.array([r[2] for r in rows], dtype=np.int64),
        np.zeros(len(rows), dtype=np.int64),
        _event_records(_events()),
    )


def test_journeys_are_cut_as_the_backend_cuts_them():
    (j,) = _record([]).journeys()
    assert j.journey_id == "R61-0700-0"
    assert [v.stop_id for v in j.visits] == S
    assert j.visits[1].arrival == T0 + 120_000
    assert j.visits[1].departure == T0 + 140_000


def test_naive_rider_from_first_to_last_strong_window():
    # Device 0 heard strongly from the first dwell into the third segment: boards at S0,
    # alights at S3 (last heard while moving towards it). Device 1 is weak; device 2 short.
    rows = [(T0 + 5000 + 1000 * k, 0, -70) for k in range(300)]
    rows += [(T0 + 1000 * k, 1, -97) for k in range(300)]
    rows += [(T0 + 1000 * k, 2, -60) for k in range(20)]
    rows.sort()
    trips = naive_trips(_record(rows), ["d0", "d1", "d2"], threshold_dbm=-90, min_windows=50)
    assert len(trips) == 1
    (t,) = trips
    assert (t.device_id, t.board_stop_id, t.alight_stop_id) == ("d0", S[0], S[3])
    assert t.board_time == T0 + 20_000
    assert t.alight_time == T0 + 360_000


def test_naive_alight_at_the_stop_being_visited():
    rows = [(T0 + 125_000 + 1000 * k, 0, -60) for k in range(130)]  # S1 dwell .. S2 dwell
    (t,) = naive_trips(_record(rows), ["d0"], threshold_dbm=-90, min_windows=50)
    assert (t.board_stop_id, t.alight_stop_id) == (S[1], S[2])


def test_read_vehicle_resolves_tokens_of_neighbouring_intervals():
    key = bytes(range(32))
    i = wire.interval_of(T0)
    body = {
        "version": 1,
        "vehicle_id": "RLG-1",
        "unit_id": "u",
        "boot_id": "b",
        "seq": 0,
        "sent_at": T0 + 10_000,
        "window_ms": 1000,
        "events": _events()[:2],
        "sightings": {
            "t": [T0 + 2000, T0 + 1000],
            "token": [wire.token_for_interval(key, i + 1).hex(), "00" * 16],
            "rssi": [-60, -70],
            "n": [1, 2],
            "tx": [-8, None],
        },
    }
    resolver = TokenResolver([("d0", key)])
    rec = read_vehicle(vehicle_data("RLG-1", [json.dumps(body).encode()]), resolver)
    assert rec.t.tolist() == [T0 + 1000, T0 + 2000]
    assert rec.device.tolist() == [-1, 0]
    assert rec.sent_at.tolist() == [T0 + 10_000]
    assert [e.type for e in rec.events] == ["journey", "arrival"]
