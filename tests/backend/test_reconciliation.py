"""The pure trip reconstruction on small, hand-built days."""

import numpy as np

from backend.reconciliation import (
    EventRecord,
    VehicleObservations,
    journeys_from_events,
    reconcile,
)

STOPS = ["de:05974:1001", "de:05974:1002", "de:05974:1003", "de:05974:1004"]
T0 = 1_795_420_000_000


def journey_events(start: int, journey_id: str = "R61-1") -> list[EventRecord]:
    """Four stops: dwell 30 s, drive 120 s between stops."""
    events = [EventRecord(start - 60_000, "journey", None, "R61", journey_id, 0)]
    t = start
    for stop in STOPS:
        events.append(EventRecord(t, "arrival", stop))
        events.append(EventRecord(t + 30_000, "departure", stop))
        t += 150_000
    return events


def heard(device: int, start: int, end: int, every_ms: int = 1000):
    return [(t, device) for t in range(start, end, every_ms)]


def observations(vehicle_id: str, rows) -> VehicleObservations:
    rows = sorted(rows)
    return VehicleObservations(
        vehicle_id,
        np.array([r[0] for r in rows], dtype=np.int64),
        np.array([r[1] for r in rows], dtype=np.int32),
        1000,
    )


def test_journeys_are_cut_from_events():
    (journey,) = journeys_from_events("RLG-1", journey_events(T0))
    assert [v.stop_id for v in journey.visits] == STOPS
    assert journey.visits[0].arrival == T0
    assert journey.visits[0].departure == T0 + 30_000
    assert journey.line == "R61"


def test_rider_from_second_to_fourth_stop():
    # Boards during the dwell at stop 2, rides two stretches, alights at stop 4.
    rows = heard(0, T0 + 150_000, T0 + 450_000 + 10_000)
    trips = reconcile({"RLG-1": journey_events(T0)}, [observations("RLG-1", rows)], ["dev"])
    assert len(trips) == 1
    trip = trips[0]
    assert (trip.board_stop_id, trip.alight_stop_id) == (STOPS[1], STOPS[3])
    assert trip.board_time == T0 + 180_000
    assert trip.alight_time == T0 + 450_000
    assert trip.confidence > 0.9


def test_person_heard_only_while_the_bus_dwells_is_not_a_rider():
    rows = heard(0, T0 + 150_000, T0 + 180_000)  # the whole dwell at stop 2, nothing after
    assert reconcile({"RLG-1": journey_events(T0)}, [observations("RLG-1", rows)], ["d"]) == []


def test_weak_brief_contact_while_moving_is_not_a_rider():
    # A car alongside for 10 s of a 120 s stretch.
    rows = heard(0, T0 + 60_000, T0 + 70_000)
    assert reconcile({"RLG-1": journey_events(T0)}, [observations("RLG-1", rows)], ["d"]) == []


def test_short_gap_does_not_split_a_ride():
    rows = heard(0, T0, T0 + 180_000) + heard(0, T0 + 330_000, T0 + 450_000)
    trips = reconcile({"RLG-1": journey_events(T0)}, [observations("RLG-1", rows)], ["d"])
    assert [(t.board_stop_id, t.alight_stop_id) for t in trips] == [(STOPS[0], STOPS[3])]


def test_device_heard_by_two_buses_is_assigned_to_the_stronger_evidence():
    # Bus 1 carries the rider all the way; bus 2 hears it on one stretch only partly.
    bus1 = heard(0, T0, T0 + 450_000)
    bus2 = heard(0, T0 + 180_000, T0 + 230_000)
    trips = reconcile(
        {"RLG-1": journey_events(T0), "RLG-2": journey_events(T0, "R61-2")},
        [observations("RLG-1", bus1), observations("RLG-2", bus2)],
        ["d"],
    )
    assert [t.vehicle_id for t in trips] == ["RLG-1"]


def test_trip_ids_are_deterministic():
    rows = heard(0, T0, T0 + 450_000)
    args = ({"RLG-1": journey_events(T0)}, [observations("RLG-1", rows)], ["d"])
    assert [t.trip_id for t in reconcile(*args)] == [t.trip_id for t in reconcile(*args)]
