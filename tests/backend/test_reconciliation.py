"""The pure trip reconstruction on small, hand-built journeys."""

import dataclasses
import itertools
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backend.const import (
    CLOSE_AFTER_SILENCE_MS,
    DEFAULT_TX_POWER_DBM,
    DOORS_CLOSE_BEFORE_DEPARTURE_MS,
    FAR_STRETCH_MS,
    LEVEL_MARGIN_DB,
    LEVEL_POOL_JOURNEYS,
    MIN_WINDOWS_FOR_PATH_LOSS,
    PATH_LOSS_BOUNDARY_DB,
    SCANNER_RESTART_MS,
    SILENCE_GAP_FACTOR,
)
from backend.trips import reconciliation
from backend.trips.reconciliation import (
    EventRecord,
    Evidence,
    LevelModel,
    Levels,
    StopIndex,
    VehicleObservations,
    conflict_losers,
    journeys_from_events,
    learn_levels,
    reconcile,
    reconcile_journeys,
    reconcile_vehicle,
    stretch_evidence,
    stretches,
    with_levels,
)
from backend.trips.stops import stop_index
from fare_engine.geo import METRES_PER_DEGREE
from onboard.const import ADAPTER_POWER_CYCLE_S, SCANNER_WATCHDOG_TIMEOUT_S, TICK_INTERVAL_S

STOPS = ["de:05974:1001", "de:05974:1002", "de:05974:1003", "de:05974:1004"]
T0 = 1_795_420_000_000
DWELL, DRIVE = 30_000, 120_000
RIDER_PL, OUTSIDE_PL = 62.0, 82.0  # path loss (dB) inside / outside; RSSI = -8 dBm - this


def arrival(k: int) -> int:
    return T0 + k * (DWELL + DRIVE)


def departure(k: int) -> int:
    return arrival(k) + DWELL


def journey_events(journey_id: str = "R61-1", stops=STOPS) -> list[EventRecord]:
    """Four stops: dwell 30 s, drive 120 s between stops."""
    events = [EventRecord(T0 - 60_000, "journey", None, "R61", journey_id, 0)]
    for k, stop in enumerate(stops):
        events.append(EventRecord(arrival(k), "arrival", stop))
        events.append(EventRecord(departure(k), "departure", stop))
    return events


def heard(device: int, start: int, end: int, every_ms: int = 1000, pl: float = RIDER_PL):
    rng = np.random.default_rng(device * 7919 + start % 1000)
    return [(t, device, pl + rng.normal(0, 3)) for t in range(start, end, every_ms)]


def observations(vehicle_id: str, rows, data_end: int | None = None) -> VehicleObservations:
    rows = sorted(rows)
    return VehicleObservations(
        vehicle_id,
        np.array([r[0] for r in rows], dtype=np.int64),
        np.array([r[1] for r in rows], dtype=np.int32),
        DEFAULT_TX_POWER_DBM - np.array([r[2] for r in rows], dtype=np.float64),
        np.full(len(rows), np.nan),
        1000,
        data_end if data_end is not None else arrival(len(STOPS)),
    )


DEVICES = ["dev_a", "dev_b", "dev_c", "dev_d", "dev_e", "dev_f", "dev_g"]
CROWD = ("dev_e", "dev_f", "dev_g")


def crowd(start: int = T0, end: int | None = None):
    """Three riders on board all the way: the bus's riders, from whom the model learns what
    a rider sounds like on this bus (devices 4-6)."""
    end = end if end is not None else arrival(len(STOPS) - 1)
    return [row for d in (4, 5, 6) for row in heard(d, start, end)]


def one_bus(rows, data_end=None, events=None):
    """The trips of devices 0-3 on one bus that also carries the crowd."""
    events = [e for e in events or journey_events() if data_end is None or e.t <= data_end]
    trips = reconcile(
        {"RLG-1": events},
        [observations("RLG-1", rows + crowd(end=data_end), data_end)],
        DEVICES,
    )
    return [t for t in trips if t.device_id not in CROWD]


def test_journeys_are_cut_from_events():
    (journey,) = journeys_from_events("RLG-1", journey_events())
    assert [v.stop_id for v in journey.visits] == STOPS
    assert journey.visits[0].arrival == T0
    assert journey.visits[0].departure == T0 + DWELL
    assert journey.line == "R61"
    assert not journey.complete


def test_duplicated_events_do_not_change_journeys():
    events = journey_events()
    assert journeys_from_events("RLG-1", events + events[::-1]) == journeys_from_events(
        "RLG-1", events
    )


def test_rider_from_second_to_fourth_stop():
    # Waits at stop 2 (heard during the dwell), rides two stretches, leaves at stop 4.
    (trip,) = one_bus(heard(0, arrival(1), arrival(3) + 5_000))
    assert (trip.board_stop_id, trip.alight_stop_id) == (STOPS[1], STOPS[3])
    assert trip.board_time == departure(1)
    assert trip.alight_time == arrival(3)
    assert trip.confidence > 0.95
    assert trip.status == "closed"


def test_a_rider_with_a_weak_phone_heard_one_window_in_four_still_rides():
    (trip,) = one_bus(heard(0, arrival(0), arrival(2), every_ms=4000))
    assert (trip.board_stop_id, trip.alight_stop_id) == (STOPS[0], STOPS[2])


def test_person_heard_only_while_the_bus_dwells_is_not_a_rider():
    assert one_bus(heard(0, arrival(1), departure(1), pl=70)) == []


def test_car_alongside_for_part_of_a_stretch_is_not_a_rider():
    # Loud, but only during 35 s of a 120 s stretch (a car next to the bus at a light).
    assert one_bus(heard(0, departure(1) + 40_000, departure(1) + 75_000, pl=70)) == []


def test_bike_alongside_a_whole_stretch_is_not_a_rider():
    # Close and heard throughout one stretch, but never while the bus stood at a stop.
    rows = heard(0, departure(1) + 1_000, arrival(2) - 1_000, pl=60)
    assert one_bus(rows) == []


def test_car_trailing_the_bus_for_several_stops_is_not_a_rider():
    # Heard throughout three stretches, but from outside, through the bus body and its own:
    # far more than LEVEL_MARGIN_DB below the riders on board.
    far_below = RIDER_PL + LEVEL_MARGIN_DB + 12
    rows = heard(1, departure(0), arrival(3), every_ms=2000, pl=far_below)
    assert one_bus(rows) == []


def test_a_bus_without_riders_to_read_levels_against_charges_no_car_on_its_level_alone():
    # Nobody on board yet whose level could calibrate the bus (no reference): a car that
    # fell in behind it as it pulled away from the first stop, heard through every stretch
    # and, by the absolute path loss, as near as a rider, is not charged; a rider who came
    # in through the doors there at the same level is.
    car = heard(0, departure(0) + 1_000, arrival(3), pl=RIDER_PL + 8)
    rider = heard(1, arrival(0), arrival(3), pl=RIDER_PL + 8)
    absolute = dataclasses.replace(LevelModel(), relative=False, riders=False)
    obs = observations("RLG-1", car + rider)
    (journey,) = journeys_from_events("RLG-1", journey_events())
    evidence = stretch_evidence(journey, obs, stretches(journey, obs.data_end_ms), LevelModel())
    assert np.isnan(learn_levels([evidence], LevelModel().level_quantile).reference)
    for model in (LevelModel(), dataclasses.replace(LevelModel(), riders=True)):
        trips = reconcile_vehicle(
            journey_events(), observations("RLG-1", car + rider), DEVICES, model
        )
        assert [(t.device_id, t.board_stop_id) for t in trips] == [("dev_b", STOPS[0])], model
    # The absolute path loss alone would charge the car.
    trips = reconcile_vehicle(journey_events(), observations("RLG-1", car), DEVICES, absolute)
    assert [t.device_id for t in trips] == ["dev_a"]


def test_without_a_reference_the_path_loss_speaks_for_a_device_from_where_it_came_in():
    # Device 0 came in through the doors at the second stop, device 1 was heard alongside
    # the first stretch and at that stop (a car), device 2 is a phone that only heard the
    # bus's beacon: without a reference only device 0's path loss counts for "in", and only
    # from the stop it came in at; what counts against counts for every device.
    n = 3
    level_llr = np.array([[2.0, 3.0, -1.0], [2.0, 3.0, 3.0], [2.0, 2.0, 2.0]])
    evidence = Evidence(
        np.arange(n, dtype=np.int32),
        level_llr.copy(),
        np.array([[False, True, False], [False, True, False], [False, False, False]]),
        np.array([[False, False, False], [False, True, True], [False, False, False]]),
        np.zeros((n, 3)),
        level_llr,
        np.full((n, 3), np.nan),
        np.zeros((n, 3), dtype=bool),
        by_bus=np.array([True, True, False]),
    )
    for model in (LevelModel(), dataclasses.replace(LevelModel(), riders=True)):
        decided = with_levels(evidence, Levels(float("nan"), 0.0, 0.0, 0), model)
        np.testing.assert_array_equal(
            decided.llr, [[0.0, 3.0, -1.0], [0.0, 0.0, 0.0], [2.0, 2.0, 2.0]]
        )
        assert dict(decided.terms)["bus_levels"][0, 0] == -2.0
    absolute = dataclasses.replace(LevelModel(), relative=False)
    assert with_levels(evidence, Levels(float("nan"), 0.0, 0.0, 0), absolute) is evidence


def test_a_rider_heard_poorly_for_a_stretch_stays_one_ride():
    # Six stops; heard well on the first two stretches and the last two, and only in a
    # quarter of the middle stretch (a crowd around the phone). Nobody gets off a bus and
    # on again further along: one ride from the first stop to the last.
    stops = [f"de:05974:10{k:02d}" for k in range(1, 7)]
    events = journey_events(stops=stops)
    rows = (
        heard(0, arrival(0), departure(2))
        + heard(0, departure(2) + 60_000, departure(2) + 90_000, every_ms=3000, pl=74)
        + heard(0, arrival(3), arrival(5))
    )
    trips = reconcile(
        {"RLG-1": events},
        [
            VehicleObservations(
                "RLG-1",
                np.array([r[0] for r in sorted(rows)], dtype=np.int64),
                np.zeros(len(rows), dtype=np.int32),
                DEFAULT_TX_POWER_DBM - np.array([r[2] for r in sorted(rows)], dtype=np.float64),
                np.full(len(rows), np.nan),
                1000,
                arrival(6),
            )
        ],
        ["dev_a"],
    )
    assert [(t.board_stop_id, t.alight_stop_id) for t in trips] == [(stops[0], stops[5])]


def test_short_silence_does_not_split_a_ride():
    rows = heard(0, arrival(0), departure(1) + 30_000) + heard(0, departure(1) + 80_000, arrival(3))
    trips = one_bus(rows)
    assert [(t.board_stop_id, t.alight_stop_id) for t in trips] == [(STOPS[0], STOPS[3])]


def test_a_ride_under_way_is_open_and_closes_after_silence():
    rows = heard(0, arrival(0), departure(1) + 50_000)
    (riding,) = one_bus(rows, data_end=departure(1) + 50_000)
    assert riding.status == "open"
    assert riding.alight_known_at is None

    # The rider left at stop 2: unheard while the bus stands there and after it leaves.
    # Silence counts from the departure: the be-out is known 45 s after the bus left.
    rows = heard(0, arrival(0), arrival(1) + 4_000)
    (trip,) = one_bus(rows, data_end=departure(1) + CLOSE_AFTER_SILENCE_MS - 1_000)
    assert trip.status == "open"
    (trip,) = one_bus(rows, data_end=departure(1) + CLOSE_AFTER_SILENCE_MS)
    assert trip.status == "closed"
    assert trip.alight_stop_id == STOPS[1]
    assert trip.alight_known_at == departure(1) + CLOSE_AFTER_SILENCE_MS


def test_device_heard_by_two_buses_is_assigned_to_the_stronger_evidence():
    # Bus 1 carries the rider; bus 2 of the same line follows closely and hears it weakly
    # (far below its own riders). Each bus carries a crowd of its own.
    far_below = RIDER_PL + LEVEL_MARGIN_DB + 12
    bus1 = heard(0, arrival(0), arrival(3)) + crowd()
    bus2 = heard(0, arrival(0) + 20_000, arrival(3) + 20_000, every_ms=3000, pl=far_below)
    bus2 += [(t + 20_000, d + 1 if d < 6 else 1, pl) for t, d, pl in crowd()]
    trips = reconcile(
        {"RLG-1": journey_events(), "RLG-2": journey_events("R61-2")},
        [observations("RLG-1", bus1), observations("RLG-2", bus2)],
        DEVICES,
    )
    assert [t.vehicle_id for t in trips if t.device_id == "dev_a"] == ["RLG-1"]


def test_conflicts_do_not_depend_on_order():
    bus1 = heard(0, arrival(0), arrival(3))
    bus2 = heard(0, arrival(0), arrival(3), every_ms=2000)
    args = (
        {"RLG-1": journey_events(), "RLG-2": journey_events("R61-2")},
        [observations("RLG-1", bus1), observations("RLG-2", bus2)],
        ["dev_a"],
    )
    trips = reconcile(*args)
    assert len(trips) == 1
    all_trips = [
        t
        for obs in args[1]
        for t in reconcile({obs.vehicle_id: args[0][obs.vehicle_id]}, [obs], ["dev_a"])
    ]
    assert conflict_losers(all_trips) == conflict_losers(all_trips[::-1])


def test_trip_ids_are_deterministic():
    rows = heard(0, arrival(0), arrival(3))
    assert [t.trip_id for t in one_bus(rows)] == [t.trip_id for t in one_bus(rows[::-1])]


def test_a_change_of_bus_at_a_hub_continues_the_journey():
    from backend.trips.reconciliation import DetectedTrip, transfer_chains

    def trip(tid, device, vehicle, board_stop, board, alight_stop, alight):
        return DetectedTrip(
            tid,
            device,
            vehicle,
            "j",
            "L",
            board_stop,
            board,
            alight_stop,
            alight,
            confidence=1.0,
            stops_travelled=3,
            score=10.0,
            status="closed",
            alight_known_at=alight,
        )

    minute = 60_000
    trips = [
        trip("a1", "d1", "V1", "s1", 0, "hub-bay-1", 20 * minute),
        trip("a2", "d1", "V2", "hub-bay-2", 28 * minute, "s9", 50 * minute),  # change at hub
        trip("a3", "d1", "V3", "s9", 200 * minute, "s1", 220 * minute),  # much later: new
        trip("b1", "d2", "V2", "hub-bay-2", 28 * minute, "s9", 50 * minute),  # other device
    ]
    hub = {"hub-bay-1", "hub-bay-2"}

    def walkable(a, b):
        return a == b or {a, b} <= hub

    chains = transfer_chains(trips, walkable)
    assert chains == {"a1": "a1", "a2": "a1", "a3": "a3", "b1": "b1"}


def test_only_journeys_not_settled_before_new_data_are_rebuilt():
    from backend.trips.reconciliation import rebuild_from

    first = journey_events("R61-1")
    later = T0 + 20 * 60_000
    second = [
        EventRecord(e.t + later - T0, e.type, e.stop_id, e.line, "R61-2" if e.journey_id else None)
        for e in first
    ]
    journeys = journeys_from_events("RLG-1", first + second)
    start_2 = journeys[1].visits[0].arrival
    assert rebuild_from(journeys, 0) == 0  # everything
    # New data in the second journey: the first one stands.
    assert rebuild_from(journeys, start_2 + 60_000) == start_2
    # Late data from the first journey: both are rebuilt.
    assert rebuild_from(journeys, departure(1)) == arrival(0)
    # Between the journeys: the first one's end was not known before the new data.
    assert rebuild_from(journeys, start_2 - 1_000) == arrival(0)
    # The newest journey is always rebuilt: nothing says yet that it is over.
    only_first = journeys_from_events("RLG-1", first)
    assert rebuild_from(only_first, departure(3) + 600_000) == arrival(0)


def test_a_rebuild_reads_the_journeys_that_calibrate_the_rebuilt_ones():
    from backend.trips.reconciliation import LevelModel, rebuild_plan

    day = []
    for k in range(5):
        day += [
            EventRecord(e.t + k * 20 * 60_000, e.type, e.stop_id, e.line, e.journey_id and f"J{k}")
            for e in journey_events("R61")
        ]
    journeys = journeys_from_events("RLG-1", day)
    assert len(journeys) == 5
    newest = journeys[4].visits[0].arrival
    since = newest + 60_000
    absolute = rebuild_plan(journeys, since, LevelModel(relative=False))
    assert (absolute.first, absolute.context_from) == (4, 4)
    assert absolute.start == absolute.read_from == newest
    relative = rebuild_plan(journeys, since, LevelModel(relative=True))
    assert (relative.first, relative.context_from) == (4, 4 - LEVEL_POOL_JOURNEYS)
    assert relative.start == newest
    assert relative.read_from == journeys[4 - LEVEL_POOL_JOURNEYS].visits[0].arrival
    assert rebuild_plan(journeys, 0, LevelModel(relative=True)).read_from == 0


def test_a_car_trailing_the_bus_into_a_stop_does_not_board_there():
    # Joins the bus on the road after stop 1, heard along the rest of that stretch, at stop 2
    # while the bus stood there, and on to stop 4, as loud as a rider with a weak phone:
    # it travelled with the bus; nobody waiting at stop 2 is heard like that. A rider who
    # waited at stop 2 (heard only as the bus came in) rides.
    car = heard(1, departure(0) + 30_000, arrival(3), every_ms=2000, pl=77)
    rider = heard(0, arrival(1) - 5_000, arrival(3))
    trips = one_bus(car + rider)
    assert ("dev_a", STOPS[1], STOPS[3]) in [
        (t.device_id, t.board_stop_id, t.alight_stop_id) for t in trips
    ]
    # Only 15 dB below the riders the level does not rule the car out as a whole (it may
    # count from the stop before, LEVEL_MARGIN_DB); it never boards at stop 2.
    assert [t for t in trips if t.device_id == "dev_b" and t.board_stop_id == STOPS[1]] == []


def test_a_journey_without_its_journey_event_is_cut_at_the_turn():
    # The second journey's event is lost: the bus departs the terminus and arrives there
    # again for the way back. Two journeys, the second inferred with the first's line.
    back = [
        EventRecord(e.t + 20 * 60_000, e.type, e.stop_id)
        for e in journey_events(stops=STOPS[::-1])
        if e.type != "journey"
    ]
    first, second = journeys_from_events("RLG-1", journey_events() + back)
    assert [v.stop_id for v in second.visits] == STOPS[::-1]
    assert first.complete
    assert not first.inferred
    assert second.inferred
    assert second.line == "R61"
    assert second.journey_id == f"~{back[0].t}"


def test_the_first_journey_of_the_day_without_its_event_still_counts():
    events = [e for e in journey_events() if e.type != "journey"]
    (journey,) = journeys_from_events("RLG-1", events)
    assert [v.stop_id for v in journey.visits] == STOPS
    assert journey.inferred


def test_a_call_without_stop_events_is_derived_from_gnss():
    # Stop 3's arrival and departure events are lost. The AVL reports every 10 s while
    # moving and pauses while the bus stands: the pause begins and ends beside stop 3.
    positions = {STOPS[k]: (51.57 + 0.01 * k, 8.10) for k in range(len(STOPS))}
    stops = StopIndex((s, lat, lon) for s, (lat, lon) in positions.items())
    lost = STOPS[2]
    events = [e for e in journey_events() if e.stop_id != lost]
    lat, lon = positions[lost]
    before, after = arrival(2) - 5_000, departure(2) + 5_000
    # The bus reaches the stop at its arrival and leaves at its departure; the last fix
    # before is 5 s out, the first after 5 s on (40 m at 8 m/s).
    events += _fixes(lat, lon, before - 60_000, before + 1, at=arrival(2))
    events += _fixes(lat, lon, after, after + 60_000, at=departure(2))
    (without,) = journeys_from_events("RLG-1", events)
    assert [v.stop_id for v in without.visits] == [STOPS[0], STOPS[1], STOPS[3]]
    (journey,) = journeys_from_events("RLG-1", events, stops)
    assert [v.stop_id for v in journey.visits] == STOPS
    derived = journey.visits[2]
    assert derived.derived
    # When it stood there: the fixes around the pause, less the driving they were away.
    assert abs(derived.arrival - arrival(2)) <= 1_000
    assert abs(derived.departure - departure(2)) <= 1_000
    # A rider boarding at the lost stop is boarded there (two riders on all the way).
    rows = heard(0, arrival(2), arrival(3) + 5_000)
    riders = rows + heard(1, arrival(0), arrival(3)) + heard(2, arrival(0), arrival(3))
    trips = reconcile_vehicle(
        events, observations("RLG-1", riders), ["dev_a", "dev_b", "dev_c"], stops=stops
    )
    (mine,) = [t for t in trips if t.device_id == "dev_a"]
    assert (mine.board_stop_id, mine.alight_stop_id) == (lost, STOPS[3])


def test_a_pause_far_from_any_stop_is_not_a_call():
    stops = StopIndex([(STOPS[0], 51.0, 8.0)])
    events = [
        *journey_events(),
        EventRecord(arrival(1) + 40000, "position", lat=51.5, lon=8.5, speed_mps=5.0),
        EventRecord(arrival(1) + 90000, "position", lat=51.5, lon=8.5, speed_mps=5.0),
    ]
    (journey,) = journeys_from_events("RLG-1", events, stops)
    assert [v.stop_id for v in journey.visits] == STOPS


RELATIVE = LevelModel(relative=True, margin_db=24.0)
ABSOLUTE = LevelModel(relative=False)


def _trips(rows, model):
    obs = observations("RLG-1", rows)
    journeys = journeys_from_events("RLG-1", journey_events())
    return {t.device_id for t in reconcile_journeys(journeys, obs, DEVICES, model)}


def test_a_quiet_rider_is_excused_by_the_bus_s_own_riders():
    # A phone in a bag, 22 dB quieter than the bus's riders: the absolute path loss alone
    # says "outside"; its level against the riders heard on this bus says it is a rider.
    # A device 40 dB below them (heard on and off) is not excused.
    quiet = heard(0, arrival(0), arrival(3), pl=RIDER_PL + 22)
    far = heard(1, departure(0), arrival(3), every_ms=2000, pl=RIDER_PL + 40)
    rows = crowd() + quiet + far
    assert "dev_a" not in _trips(rows, ABSOLUTE)
    assert _trips(rows, RELATIVE) == {"dev_a", *CROWD}


def test_cars_trailing_a_bus_nobody_rides_set_no_reference():
    # A bus nobody rides, followed by cars heard throughout: none came in through its doors,
    # so none calibrates it, and their level excuses nobody.
    cars = [row for d in range(4) for row in heard(d, departure(0), arrival(3), pl=86.0)]
    obs = observations("RLG-1", cars)
    (journey,) = journeys_from_events("RLG-1", journey_events())
    evidence = stretch_evidence(journey, obs, stretches(journey, obs.data_end_ms), RELATIVE)
    assert not evidence.confident.any()
    assert np.isnan(learn_levels([evidence], RELATIVE.level_quantile).reference)
    assert _trips(cars, RELATIVE) == _trips(cars, ABSOLUTE) == set()


def test_the_bus_s_riders_veto_a_tx_byte_read_on_the_wrong_convention():
    # A car behind the bus, 30 dB below its riders, whose phone advertises a calibrated RSSI
    # at 1 m (-59) where bibo reads a transmit power: its path loss looks like a rider's.
    # Without the veto the path loss carries it aboard; with it the riders' level says no.
    rows = crowd() + heard(1, departure(0), arrival(3), pl=RIDER_PL + 30)
    obs = observations("RLG-1", rows)
    tx = np.where(obs.device == 1, -59.0, np.nan)
    obs = VehicleObservations(
        obs.vehicle_id, obs.t, obs.device, obs.rssi, tx, obs.window_ms, obs.data_end_ms
    )
    journeys = journeys_from_events("RLG-1", journey_events())

    def riders(veto: bool) -> set[str]:
        model = LevelModel(relative=True, margin_db=24.0, level_veto=veto)
        return {t.device_id for t in reconcile_journeys(journeys, obs, DEVICES, model)}

    assert riders(veto=False) == {"dev_b", *CROWD}
    assert riders(veto=True) == set(CROWD)


def test_a_device_as_loud_as_the_bus_s_riders_keeps_what_its_path_loss_says():
    # The veto bites only below the riders: a phone as loud as them keeps its short path
    # loss's nats in full, one far below them none of them (the default relative model).
    model = LevelModel(relative=True)
    # Device 1: 30 dB below them, its tx byte a calibrated RSSI read as a transmit power.
    far = heard(1, arrival(1), arrival(3), pl=RIDER_PL + 30)
    obs = observations("RLG-1", crowd() + heard(0, arrival(1), arrival(3)) + far)
    tx = np.where(obs.device == 1, -59.0, np.nan)
    obs = VehicleObservations(
        obs.vehicle_id, obs.t, obs.device, obs.rssi, tx, obs.window_ms, obs.data_end_ms
    )
    (journey,) = journeys_from_events("RLG-1", journey_events())
    evidence = stretch_evidence(journey, obs, stretches(journey, obs.data_end_ms), model)
    leveled = with_levels(evidence, learn_levels([evidence], model.level_quantile), model)
    terms = dict(leveled.terms)
    rider, far = (int(np.flatnonzero(evidence.devices == d)[0]) for d in (0, 1))
    assert (terms["path_loss"][rider, 1:3] > 0).all()
    assert (terms["bus_levels"][rider, 1:3] == 0).all()
    assert (terms["path_loss"][far, 1:3] > 0).all()
    assert (terms["path_loss"][far, 1:3] + terms["bus_levels"][far, 1:3] <= 0).all()


RIDERS = LevelModel(relative=False, riders=True, rider_margin_db=13.5)


@pytest.mark.parametrize("gain_db", [-12.0, -6.0, 0.0, 6.0, 12.0])
def test_the_riders_model_hears_a_deaf_bus_and_a_loud_one_alike(gain_db):
    # A quiet rider (10 dB below the bus's riders, boarding at stop 1) and a car trailing the
    # bus from stop 0 (20 dB below them, heard at the stops it waited behind the bus at):
    # whatever the bus's receiver gain, the riders model charges the rider and not the car,
    # since it reads both against the riders heard on this bus. The absolute path loss
    # misses the rider on a deaf bus and charges the car on a loud one.
    rows = (
        crowd()
        + heard(0, arrival(1), arrival(3), pl=RIDER_PL + 10)
        + heard(1, departure(0), arrival(3), pl=RIDER_PL + 20)
    )
    louder = [(t, d, pl - gain_db) for t, d, pl in rows]
    assert _trips(louder, RIDERS) == {"dev_a", *CROWD}
    absolute = _trips(louder, ABSOLUTE)
    if gain_db <= -12:
        assert "dev_a" not in absolute
    if gain_db >= 12:
        assert "dev_b" in absolute


def test_a_car_trailing_the_bus_does_not_set_its_riders_level():
    # Only those who came in through the doors calibrate the bus: cars heard through every
    # stretch, but along the way to each stop, are not its riders, however many.
    cars = [row for d in range(4) for row in heard(d, departure(0), arrival(3), pl=RIDER_PL + 20)]
    obs = observations("RLG-1", crowd() + cars)
    (journey,) = journeys_from_events("RLG-1", journey_events())
    evidence = stretch_evidence(journey, obs, stretches(journey, obs.data_end_ms), RIDERS)
    levels = learn_levels([evidence], RIDERS.level_quantile)
    assert set(evidence.devices[evidence.confident.any(axis=1)].tolist()) == {4, 5, 6}
    assert levels.reference == pytest.approx(DEFAULT_TX_POWER_DBM - RIDER_PL, abs=1.5)
    assert _trips(crowd() + cars, RIDERS) == set(CROWD)


def _evidence(rows, tx):
    obs = observations("RLG-1", rows)
    obs = VehicleObservations(
        obs.vehicle_id,
        obs.t,
        obs.device,
        obs.rssi,
        np.array([tx[d] for d in obs.device], dtype=np.float64),
        obs.window_ms,
        obs.data_end_ms,
    )
    (journey,) = journeys_from_events("RLG-1", journey_events())
    return stretch_evidence(journey, obs, stretches(journey, obs.data_end_ms), RELATIVE)


def test_the_tx_weight_is_learnt_from_the_riders():
    # Eight riders whose level follows their advertised tx one for one, and eight whose tx
    # says nothing about it (random): the first weigh tx fully, the second hardly.
    rng = np.random.default_rng(7)
    radiated = rng.uniform(-12, 4, size=8)
    rows_true, rows_noise = [], []
    for d in range(8):
        rows_true += heard(d, arrival(0), arrival(3), pl=RIDER_PL - radiated[d])
        rows_noise += heard(d, arrival(0), arrival(3), pl=RIDER_PL)
    follows = learn_levels([_evidence(rows_true, dict(enumerate(radiated)))], 0.75)
    noise = dict(enumerate(rng.uniform(-30, 10, size=8)))
    garbage = learn_levels([_evidence(rows_noise, noise)] * 6, 0.75)
    assert follows.tx_weight > 0.95
    assert garbage.tx_weight < 0.5
    assert follows.riders == 8 * 2  # each beyond doubt from its second stretch on


@pytest.mark.parametrize("model", [RELATIVE, RIDERS], ids=["relative", "riders"])
def test_a_rebuild_with_context_decides_as_the_whole_day(model):
    # Three journeys; rebuilding the last with the two before as context gives exactly the
    # trips a rebuild of the whole day gives for it.
    events, rows = [], []
    for n in range(3):
        shift = n * 20 * 60_000
        events += [
            EventRecord(
                e.t + shift, e.type, e.stop_id, e.line, f"R61-{n}" if e.journey_id else None
            )
            for e in journey_events()
        ]
        rows += [(t + shift, d, pl) for t, d, pl in heard(n % 3, arrival(0), arrival(3))]
        rows += [(t + shift, d, pl) for t, d, pl in heard(3, arrival(1), arrival(3), pl=70.0)]
    obs = observations("RLG-1", rows, data_end=arrival(3) + 2 * 20 * 60_000 + 60_000)
    journeys = journeys_from_events("RLG-1", events)
    ids = ["dev_a", "dev_b", "dev_c", "dev_d"]
    whole = reconcile_journeys(journeys, obs, ids, model)
    last = reconcile_journeys(journeys, obs, ids, model, context=2)
    assert last == [t for t in whole if t.journey_id == "R61-2"]
    assert last


def test_a_first_arrival_a_moment_before_its_journey_event_belongs_to_that_journey():
    # Stop events run a few seconds early: the arrival at the first stop comes just before
    # the journey event. Boarders there board the new journey at that stop.
    events = journey_events()
    first = next(e for e in events if e.type == "journey")
    shifted = [
        EventRecord(arrival(0) + 1_000, "journey", None, "R61", "R61-1", 0) if e is first else e
        for e in events
    ]
    (journey,) = journeys_from_events("RLG-1", shifted)
    assert journey.visits[0] == journeys_from_events("RLG-1", events)[0].visits[0]
    # And when the call was the previous journey's last (its departure came late), the
    # new journey's own arrival there starts it, not an inferred journey.
    back = [
        EventRecord(e.t + 20 * 60_000, e.type, e.stop_id, e.line, "R61-2" if e.journey_id else None)
        for e in journey_events(stops=STOPS[::-1])
    ]
    late = [
        EventRecord(back[0].t + 5_000, e.type, e.stop_id)
        if e.type == "departure" and e.stop_id == STOPS[-1]
        else e
        for e in journey_events()
    ]
    journeys = journeys_from_events("RLG-1", late + back)
    assert [j.journey_id for j in journeys] == ["R61-1", "R61-2"]
    assert [v.stop_id for v in journeys[1].visits] == STOPS[::-1]


# --- the be-out is not decided while the bus stands (flip-flops, issue 12) ------------------

POSITIONS = {STOPS[k]: (51.57 + 0.01 * k, 8.10) for k in range(len(STOPS))}


def _fixes(
    lat: float,
    lon: float,
    start: int,
    end: int,
    speed: float = 8.0,
    at: int | None = None,
    south: bool = False,
):
    """An AVL's fixes every 10 s from ``start`` to ``end``, of a bus driving north (or
    ``south``) at ``speed`` that passes (``lat``, ``lon``) at ``at`` (default ``start``)."""
    passing = start if at is None else at
    heading = -1.0 if south else 1.0
    return [
        EventRecord(
            t,
            "position",
            lat=lat + heading * speed * (t - passing) / 1000 / METRES_PER_DEGREE,
            lon=lon,
            speed_mps=speed,
        )
        for t in range(start, end, 10_000)
    ]


def _stop_index() -> StopIndex:
    return StopIndex((s, lat, lon) for s, (lat, lon) in POSITIONS.items())


def test_a_rider_is_not_closed_while_the_bus_stands_at_the_stop():
    # The bus has stood at stop 3 for longer than the silence rule, its departure not yet
    # sent. A rider heard there all along may stay on, so the trip stays open; once the
    # bus leaves (and the rider rides on) it ends further on, never at stop 3.
    standing = departure(2) + 2 * CLOSE_AFTER_SILENCE_MS
    events = [e for e in journey_events() if e.t <= arrival(2)]
    events += [EventRecord(standing, "departure", STOPS[2])]
    rows = heard(0, arrival(0), standing - 1_000)
    (open_trip,) = one_bus(rows, data_end=standing - 1_000, events=events)
    assert (open_trip.alight_stop_id, open_trip.status) == (STOPS[2], "open")
    later = [*events, EventRecord(standing + DRIVE, "arrival", STOPS[3])]
    rows = heard(0, arrival(0), standing + DRIVE)
    data_end = standing + DRIVE + 5_000
    (trip,) = one_bus(rows, data_end=data_end, events=later)
    assert trip.alight_stop_id == STOPS[3]


def test_a_rider_the_standing_bus_stops_hearing_has_walked_away():
    # Heard about every second on the way in, then not at all from the arrival at stop 3
    # while the bus still stands there and hears its other riders: off the bus once a phone
    # heard that often would have been silent that long (CLOSE_AFTER_SILENCE_MS at least),
    # without waiting for the departure.
    events = [e for e in journey_events() if e.t <= arrival(2)]
    rows = heard(0, arrival(0), arrival(2))
    soon = arrival(2) + CLOSE_AFTER_SILENCE_MS - 5_000
    (trip,) = one_bus(rows, data_end=soon, events=events)
    assert (trip.alight_stop_id, trip.status) == (STOPS[2], "open")
    later = arrival(2) + CLOSE_AFTER_SILENCE_MS + 5_000
    (trip,) = one_bus(rows, data_end=later, events=events)
    assert (trip.alight_stop_id, trip.status) == (STOPS[2], "closed")
    # A phone heard rarely on the way in (one window in 30) may just be quiet: it waits.
    rare = heard(0, arrival(0), arrival(2), every_ms=30_000)
    (trip,) = one_bus(rare, data_end=later, events=events)
    assert trip.status == "open"
    # A bus that heard nobody at all since (its scanner may have stopped) says nothing
    # until the onboard agent would have restarted a stalled scanner and heard the rider
    # again (the last riders off at a terminus, the bus laying over).
    alone = [
        *heard(0, arrival(0), arrival(2)),
        *[row for d in (4, 5, 6) for row in heard(d, T0, arrival(2))],
    ]
    for data_end, status in (
        (later, "open"),
        (later + SCANNER_RESTART_MS - 10_000, "open"),
        (later + SCANNER_RESTART_MS, "closed"),
    ):
        trips = reconcile({"RLG-1": events}, [observations("RLG-1", alone, data_end)], DEVICES)
        (trip,) = [t for t in trips if t.device_id == "dev_a"]
        assert (trip.alight_stop_id, trip.status) == (STOPS[2], status), data_end - later


def test_the_scanner_restart_the_backend_waits_out_is_the_onboard_agents():
    # walked_away's wait for a silent bus rests on the agent's watchdog: restart after
    # SCANNER_WATCHDOG_TIMEOUT_S without an advert, checked every tick, with an adapter
    # power cycle at worst. A longer watchdog would let a stall pass for a walk-away.
    agent_restart_s = SCANNER_WATCHDOG_TIMEOUT_S + TICK_INTERVAL_S + ADAPTER_POWER_CYCLE_S
    assert agent_restart_s * 1000 <= SCANNER_RESTART_MS


@pytest.mark.parametrize("early_ms", [4_000, 8_000, 12_000])
def test_a_departure_sent_early_does_not_keep_the_rider_on_board(early_ms):
    # Stop 2's departure event comes ``early_ms`` before the bus really leaves (events are
    # early or late by up to 15 s), so the loud seconds of a rider still stepping off fall
    # into the stretch after it. Their level speaks for those seconds only: the rider is off
    # at stop 2 within twice the silence an on-time event needs, and never moved on to
    # stop 3 (before, the level held the stretch "in" until the bus got there).
    events = [
        replace(e, t=e.t - early_ms) if (e.type, e.stop_id) == ("departure", STOPS[1]) else e
        for e in journey_events()
    ]
    rows = heard(0, departure(0) - 20_000, departure(1) - 1_000)
    for since in (2 * CLOSE_AFTER_SILENCE_MS, DRIVE):
        (trip,) = one_bus(rows, data_end=departure(1) + since, events=events)
        assert (trip.alight_stop_id, trip.status) == (STOPS[1], "closed"), since


def test_a_level_heard_early_in_a_stretch_speaks_for_the_parts_up_to_it():
    # The same loud phone heard through the first quarter of a stretch, through half of it,
    # and through all of it: the path loss's nats grow with the share of the stretch it
    # reaches into, and a phone heard throughout gets all of them.
    (journey,) = journeys_from_events("RLG-1", journey_events())
    parts = stretches(journey, arrival(3))
    said = []
    for share in (0.25, 0.5, 1.0):
        end = departure(1) + int(share * DRIVE) - 1_000
        obs = observations("RLG-1", heard(0, departure(1), end, pl=RIDER_PL - 20), arrival(3))
        evidence = stretch_evidence(journey, obs, parts, LevelModel(relative=False, riders=False))
        said.append(dict(evidence.terms)["path_loss"][0, 1])
    assert 0 < said[0] < said[1] < said[2]
    assert said[0] == pytest.approx(said[2] / 4)


def test_a_level_read_from_fewer_windows_weighs_in_proportion_to_them():
    # The same loud phone heard in 1, 2, 3 and 5 windows, all in the stretch's last part:
    # the path loss's nats grow with the windows up to MIN_WINDOWS_FOR_PATH_LOSS, then hold;
    # a quiet phone heard once loses a share of its nats likewise.
    (journey,) = journeys_from_events("RLG-1", journey_events())
    parts = stretches(journey, arrival(3))
    model = LevelModel(relative=False, riders=False)

    def said(windows: int, pl: float) -> float:
        last = arrival(2) - 1_000
        rows = [(last - 2_000 * i, 0, pl) for i in range(windows)]
        evidence = stretch_evidence(journey, observations("RLG-1", rows, arrival(3)), parts, model)
        return float(dict(evidence.terms)["path_loss"][0, 1])

    full = said(MIN_WINDOWS_FOR_PATH_LOSS, RIDER_PL)
    assert full > 0
    assert said(1, RIDER_PL) == pytest.approx(full / MIN_WINDOWS_FOR_PATH_LOSS)
    assert said(2, RIDER_PL) == pytest.approx(2 * full / MIN_WINDOWS_FOR_PATH_LOSS)
    assert said(5, RIDER_PL) == pytest.approx(full)
    assert said(1, OUTSIDE_PL) == pytest.approx(said(3, OUTSIDE_PL) / MIN_WINDOWS_FOR_PATH_LOSS)
    assert said(1, OUTSIDE_PL) < 0


def test_a_rider_heard_at_the_stop_and_twice_after_it_shows_on_board_within_seconds():
    # Heard waiting at stop 2, then in two windows of the first 20 s after the bus left
    # (a sparse scanner): the be-in shows on that data, before a third window is heard.
    data_end = departure(1) + 20_000
    rows = [
        *heard(0, arrival(1), departure(1) - 10_000, every_ms=5_000),
        (departure(1) + 8_000, 0, RIDER_PL),
        (departure(1) + 18_000, 0, RIDER_PL),
    ]
    (trip,) = one_bus(rows, data_end=data_end)
    assert (trip.board_stop_id, trip.status) == (STOPS[1], "open")
    # Heard only once so far, nothing is shown yet.
    assert one_bus(rows[:-1], data_end=departure(1) + 10_000) == []


def test_a_phone_heard_rarely_on_the_way_waits_longer_for_its_be_out():
    # Two riders get off at stop 2. One was heard every second on the way, the other once
    # every ten seconds (a phone that advertises slowly, a scanner that listens briefly):
    # a silence of 50 s after the bus left says the first is off, not the second, whom
    # the bus would not hear for that long one time in two hundred; 70 s says both are.
    # The silence needed is the phone's own (STANDING_SILENCE_PROB at its rate).
    for every_ms, open_at in ((1_000, 30_000), (10_000, 50_000)):
        rows = heard(0, departure(0) - 20_000, arrival(1) + 5_000, every_ms=every_ms)
        (trip,) = one_bus(rows, data_end=departure(1) + open_at)
        assert (trip.alight_stop_id, trip.status) == (STOPS[1], "open"), every_ms
        (trip,) = one_bus(rows, data_end=departure(1) + 70_000)
        assert (trip.alight_stop_id, trip.status) == (STOPS[1], "closed"), every_ms
    rows = heard(0, departure(0) - 20_000, arrival(1) + 5_000)
    (trip,) = one_bus(rows, data_end=departure(1) + CLOSE_AFTER_SILENCE_MS + 5_000)
    assert trip.status == "closed"


def test_a_rider_heard_in_bursts_is_off_only_after_a_longer_silence_than_they_kept_on_board():
    # Heard every second, but silent for 40 s in the middle of the ride (a phone in a bag,
    # a crowd): a silence of 45 s after stop 2 is no evidence they got off, one half as
    # long again as their longest on the way (SILENCE_GAP_FACTOR) is.
    gap_ms = 40_000
    start = departure(0) + 30_000
    rows = [
        row
        for row in heard(0, departure(0) - 20_000, arrival(1) + 5_000)
        if not start <= row[0] < start + gap_ms
    ]
    waits = SILENCE_GAP_FACTOR * gap_ms
    (trip,) = one_bus(rows, data_end=departure(1) + int(waits) - 10_000)
    assert (trip.alight_stop_id, trip.status) == (STOPS[1], "open")
    (trip,) = one_bus(rows, data_end=departure(1) + int(waits) + 5_000)
    assert (trip.alight_stop_id, trip.status) == (STOPS[1], "closed")


def test_the_silence_before_a_be_out_runs_from_when_the_rider_was_last_heard():
    # Heard once more 30 s after the bus left stop 2: the silence that closes the ride
    # counts from then, not from the departure.
    heard_again = departure(1) + 30_000
    rows = heard(0, departure(0) - 20_000, arrival(1) + 5_000)
    rows += heard(0, heard_again, heard_again + 1_000)
    (trip,) = one_bus(rows, data_end=heard_again + CLOSE_AFTER_SILENCE_MS - 5_000)
    assert (trip.alight_stop_id, trip.status) == (STOPS[1], "open")
    (trip,) = one_bus(rows, data_end=heard_again + CLOSE_AFTER_SILENCE_MS + 10_000)
    assert (trip.alight_stop_id, trip.status) == (STOPS[1], "closed")


def test_a_lost_departure_is_derived_once_the_bus_is_away_from_the_stop():
    # Stop 2's departure never comes; two fixes in a row 400 m on put the bus on its way,
    # so the rider who stayed at stop 2 is closed there without waiting for stop 3.
    stops = _stop_index()
    lat, lon = POSITIONS[STOPS[1]]
    events = [e for e in journey_events() if e.t <= arrival(1)]
    events += _fixes(lat + 0.0036, lon, departure(1) + 10_000, departure(1) + 40_000)
    (journey,) = journeys_from_events("RLG-1", events, stops)
    last = journey.visits[-1]
    assert (last.stop_id, last.derived) == (STOPS[1], True)
    assert last.departure is not None
    assert arrival(1) <= last.departure <= departure(1) + 10_000
    # One far fix (an outlier) is not a departure.
    (journey,) = journeys_from_events("RLG-1", events[:-2], stops)
    assert journey.visits[-1].departure is None


def test_a_bus_standing_now_without_events_is_at_the_stop():
    # Stop 3's events are lost and the AVL pauses while the bus stands: with the data
    # running on past the last fix, the bus stands at stop 3 now (departure unknown).
    stops = _stop_index()
    lat, lon = POSITIONS[STOPS[2]]
    events = [e for e in journey_events() if e.t <= departure(1)]
    events += _fixes(lat, lon, arrival(2) - 60_000, arrival(2), at=arrival(2))
    last_fix = events[-1].t
    (journey,) = journeys_from_events("RLG-1", events, stops, data_end_ms=last_fix + 60_000)
    visit = journey.visits[-1]
    assert (visit.stop_id, visit.departure) == (STOPS[2], None)
    assert abs(visit.arrival - arrival(2)) <= 1_000  # the last fix, 80 m out at 8 m/s
    # Without the data end nothing says the bus is still there.
    (journey,) = journeys_from_events("RLG-1", events, stops)
    assert journey.visits[-1].stop_id == STOPS[1]


def test_moving_fixes_across_lost_calls_are_no_layover():
    # Several calls' events are lost, so 25 min pass between two calls, but the bus was
    # moving all along: the same journey, not a new inferred one.
    gap = 25 * 60_000
    events = journey_events()[:5]  # journey, stops 1 and 2 (departure at departure(1))
    events += _fixes(51.6, 8.1, departure(1) + 10_000, departure(1) + gap)
    events.append(EventRecord(departure(1) + gap + 5_000, "arrival", STOPS[3]))
    (journey,) = journeys_from_events("RLG-1", events)
    assert [v.stop_id for v in journey.visits] == [STOPS[0], STOPS[1], STOPS[3]]
    # Standing still over the same gap is a layover: the next call starts a journey.
    standing = [e for e in events if e.type != "position"]
    assert len(journeys_from_events("RLG-1", standing)) == 2


def test_an_arrival_logged_minutes_late_moves_to_when_the_bus_stopped():
    # The AVL paused beside stop 4 from arrival(3) on, but the arrival event came only
    # ten minutes later (logged as the layover ended): the bus arrived when it stopped.
    stops = _stop_index()
    lat, lon = POSITIONS[STOPS[3]]
    late = arrival(3) + 10 * 60_000
    events = [e for e in journey_events() if e.t <= departure(2)]
    events += _fixes(lat, lon, arrival(3) - 60_000, arrival(3), at=arrival(3))
    events += [
        EventRecord(late, "arrival", STOPS[3]),
        EventRecord(late + DWELL, "departure", STOPS[3]),
        *_fixes(lat, lon, late + DWELL + 5_000, late + DWELL + 30_000, at=late + DWELL),
    ]
    (journey,) = journeys_from_events("RLG-1", events, stops)
    assert journey.visits[-1].stop_id == STOPS[3]
    assert abs(journey.visits[-1].arrival - arrival(3)) <= 1_000


# --- calls derived from GNSS: short dwells, first calls, layovers ---------------------------

ALONG_M = 0.01 * METRES_PER_DEGREE
"""Metres between consecutive stops of ``POSITIONS`` (they lie on one meridian)."""


def _drive_fixes(
    start: int,
    end: int,
    stand: tuple[int, int] | None,
    speed: float,
    phase: int,
    noise_m: float,
    lost: frozenset[int],
    rng: np.random.Generator,
    road: float = 1.0,
):
    """An AVL's fixes every 10 s (offset ``phase``) of a bus driving north along
    ``POSITIONS`` at ``speed``, standing at stop 3 over ``stand`` (no fixes while it stands),
    with GNSS noise and the fixes ``lost`` (their index) missing. The AVL reports the speed
    along a road ``road`` times longer than the straight line the fixes lie on."""
    lat0, lon = POSITIONS[STOPS[2]]
    out = []
    for n, t in enumerate(range(start + phase, end, 10_000)):
        if n in lost:
            continue
        if stand is not None and stand[0] <= t <= stand[1]:
            continue
        # Metres past stop 3 (negative: before it).
        if stand is None:
            along = speed * (t - (start + end) / 2) / 1000
        elif t < stand[0]:
            along = speed * (t - stand[0]) / 1000
        else:
            along = speed * (t - stand[1]) / 1000
        north, east = along + rng.normal(0, noise_m), rng.normal(0, noise_m)
        out.append(
            EventRecord(
                t,
                "position",
                lat=lat0 + north / METRES_PER_DEGREE,
                lon=lon + east / METRES_PER_DEGREE / np.cos(np.radians(lat0)),
                speed_mps=round(road * speed + rng.normal(0, 0.3), 2),
            )
        )
    return out


def _journey_without(lost_stop: str, fixes) -> list[EventRecord]:
    return [e for e in journey_events() if e.stop_id != lost_stop] + fixes


@settings(max_examples=60, deadline=None)
@given(
    dwell=st.integers(12_000, 40_000),
    speed=st.floats(6.0, 12.0),
    phase=st.integers(0, 9_999),
    noise=st.floats(0.0, 3.0),
    road=st.floats(1.0, 1.4),
    seed=st.integers(0, 2**32 - 1),
)
def test_a_short_dwell_without_stop_events_is_derived(dwell, speed, phase, noise, road, seed):
    # Stop 3's events are lost and the bus stood there only 12-40 s: with fixes every 10 s
    # the pause in the fixes can be shorter than STANDING_GAP_MS, but the bus hardly moved
    # across it. The call is derived at stop 3, at about the time the bus stood there.
    stand = (arrival(2), arrival(2) + dwell)
    rng = np.random.default_rng(seed)
    # And one fix lost away from the stop (lost as the bus pulls in, the pause cannot be
    # told from one at a light a fix's way before the stop; see reconciliation._at_stop).
    near = {
        n
        for n, t in enumerate(range(departure(1) + phase, arrival(3), 10_000))
        if stand[0] - 20_000 <= t <= stand[1] + 20_000
    }
    lost = frozenset({int(rng.choice([n for n in range(40) if n not in near]))})
    fixes = _drive_fixes(departure(1), arrival(3), stand, speed, phase, noise, lost, rng, road)
    (journey,) = journeys_from_events("RLG-1", _journey_without(STOPS[2], fixes), _stop_index())
    assert [v.stop_id for v in journey.visits] == STOPS
    derived = journey.visits[2]
    assert derived.derived
    # GNSS noise of a few metres at 6-12 m/s is a few seconds either way. (Noisier fixes
    # can hide a 12 s dwell: at 6 m/s, 10 m of error is nearly two seconds of the 4 s margin
    # over MIN_STAND_MS; the drawn worlds' evaluation scores those.)
    assert abs(derived.arrival - stand[0]) <= 6_000
    assert derived.departure is not None
    assert abs(derived.departure - stand[1]) <= 6_000


@settings(max_examples=60, deadline=None)
@given(
    speed=st.floats(6.0, 12.0),
    phase=st.integers(0, 9_999),
    noise=st.floats(0.0, 8.0),
    lost=st.integers(0, 25),
    run=st.integers(1, 2),
    road=st.floats(1.0, 1.4),
    seed=st.integers(0, 2**32 - 1),
)
def test_a_bus_driving_past_a_stop_with_fixes_lost_makes_no_call(
    speed, phase, noise, lost, run, road, seed
):
    # The bus drives through stop 3 without stopping (no events there: it did not call), and
    # one or two fixes in a row are lost near it: a longer gap over a longer way, no call;
    # also where the AVL's speed is read along a road longer than the line between fixes.
    rng = np.random.default_rng(seed)
    fixes = _drive_fixes(
        departure(1),
        arrival(3),
        None,
        speed,
        phase,
        noise,
        frozenset(range(lost, lost + run)),
        rng,
        road,
    )
    (journey,) = journeys_from_events("RLG-1", _journey_without(STOPS[2], fixes), _stop_index())
    assert [v.stop_id for v in journey.visits] == [STOPS[0], STOPS[1], STOPS[3]]


def test_a_journeys_first_call_without_stop_events_is_derived_from_its_journey_event():
    # The bus's first journey of the day: it stands at stop 1 from the journey event on, and
    # the first call's events are lost. The AVL reports only once it moves: the first fix,
    # 40 m out, puts the departure 5 s before it.
    lat, lon = POSITIONS[STOPS[0]]
    events = [e for e in journey_events() if e.stop_id != STOPS[0]]
    events += _fixes(lat, lon, departure(0) + 5_000, arrival(1), at=departure(0))
    (journey,) = journeys_from_events("RLG-1", events, _stop_index())
    first = journey.visits[0]
    assert (first.stop_id, first.derived, first.arrival) == (STOPS[0], True, T0 - 60_000)
    assert first.departure is not None
    assert abs(first.departure - departure(0)) <= 1_000
    # A journey logged on the way to its first stop: the bus drives from the journey event
    # on (its first fix 5 s later, 120 m before stop 1, which it passes 20 s after the
    # event), so it did not stand there.
    logged = departure(0) - 20_000
    driving = [e for e in journey_events() if e.stop_id != STOPS[0] and e.type != "journey"]
    driving.append(EventRecord(logged, "journey", None, "R61", "R61-1", 0))
    driving += _fixes(lat, lon, logged + 5_000, arrival(1), at=departure(0))
    (journey,) = journeys_from_events("RLG-1", driving, _stop_index())
    assert journey.visits[0].stop_id == STOPS[1]
    # Without a journey event nothing says where the journey began.
    inferred = [e for e in events if e.type != "journey"]
    (journey,) = journeys_from_events("RLG-1", inferred, _stop_index())
    assert journey.visits[0].stop_id == STOPS[1]


def test_a_journey_whose_first_call_was_lost_shows_its_riders_once_the_bus_moves_off():
    # The same first call without stop events, seen live: 40 s after the bus left stop 1,
    # long before it reaches stop 2, the journey is there with stop 1 derived and left, and
    # a rider who boarded there rides the stretch under way (no waiting for stop 2's
    # arrival, the first event that names a stop).
    lat, lon = POSITIONS[STOPS[0]]
    now = departure(0) + 40_000
    events = [e for e in journey_events() if e.stop_id != STOPS[0] and e.t <= now]
    events += _fixes(lat, lon, departure(0) + 5_000, now, at=departure(0))
    (journey,) = journeys_from_events("RLG-1", events, _stop_index(), data_end_ms=now)
    (first,) = journey.visits
    assert (first.stop_id, first.derived) == (STOPS[0], True)
    assert first.departure is not None
    assert abs(first.departure - departure(0)) <= 1_000
    rows = heard(0, departure(0) - 20_000, now) + crowd(departure(0) - 20_000, now)
    trips = reconcile_journeys([journey], observations("RLG-1", rows, now), DEVICES)
    (trip,) = [t for t in trips if t.device_id == DEVICES[0]]
    assert (trip.board_stop_id, trip.status) == (STOPS[0], "open")
    # Before it moves, nothing says where it stands: no journey yet, and none made up.
    standing = [e for e in events if e.t < departure(0)]
    assert journeys_from_events("RLG-1", standing, _stop_index(), data_end_ms=now) == []


# A bus's AVL on its way into Soest 1001 (a drawn world's recording, times from the first
# fix): it halts at a light 120 m short of the stop, calls, stands there silent; the next
# journey's event is lost and its arrival is logged 8 minutes into the stand.
_HALT_FIXES = [
    (0, 51.57204, 8.109307, 6.35),
    (10, 51.571922, 8.108625, 6.52),
    (20, 51.571853, 8.108054, 6.56),
    (30, 51.571714, 8.107351, 6.18),
    (40, 51.571618, 8.106725, 7.01),
    (140, 51.571906, 8.106677, 5.53),
    (150, 51.572305, 8.106773, 6.06),
    (160, 51.57269, 8.106877, 6.33),
    (170, 51.573106, 8.107005, 6.06),
    (180, 51.57353, 8.107109, 6.28),
    (190, 51.573915, 8.107227, 6.07),
    (200, 51.574294, 8.107356, 5.95),
    (210, 51.57471, 8.107422, 5.79),
    (220, 51.575074, 8.107528, 6.33),
    (240, 51.575924, 8.107775, 6.28),
    (250, 51.576298, 8.107862, 5.84),
    (260, 51.576702, 8.10789, 6.12),
    (280, 51.576885, 8.107947, 0.0),
    (290, 51.576853, 8.108015, 0.15),
    (300, 51.577223, 8.10807, 5.94),
    (310, 51.577586, 8.108153, 6.2),
    (320, 51.577984, 8.108383, 0.33),
]
_HALT_CALLS = [
    (40_792, "arrival", "de:05974:1002"),
    (131_246, "departure", "de:05974:1002"),
    (319_574, "arrival", "de:05974:1001"),
    (337_440, "departure", "de:05974:1001"),
    (827_327, "arrival", "de:05974:1001"),
]


def test_no_stretch_runs_from_a_stop_to_itself():
    # The halt, the call and the stand are one call at 1001 however the spells are found,
    # never two calls in a row with a stretch between them that a rider (or a waiting
    # passenger) could ride from the stop to itself, shown closed and then withdrawn.
    events = [
        EventRecord(T0 + s * 1000, "position", lat=lat, lon=lon, speed_mps=v)
        for s, lat, lon, v in _HALT_FIXES
    ]
    events += [EventRecord(T0 + ms, kind, stop) for ms, kind, stop in _HALT_CALLS]
    journeys = journeys_from_events("RLG-1", events, stop_index(), data_end_ms=T0 + 1_020_000)
    for journey in journeys:
        stops = [v.stop_id for v in journey.visits]
        assert all(a != b for a, b in itertools.pairwise(stops)), journey.visits
    assert journeys[-1].visits[0].stop_id == "de:05974:1001"


def _terminus_day(layover_ms: int) -> tuple[list[EventRecord], int]:
    """The bus's journey to stop 4 (its terminus), a stand there of ``layover_ms`` and the
    way back to stop 1, with the way back's journey event and its first call's events lost;
    the AVL reports every 10 s while moving. Also when the bus left stop 4."""
    lat, lon = POSITIONS[STOPS[3]]
    leave = departure(3) + layover_ms
    back = [
        EventRecord(leave + DRIVE + (e.t - T0), e.type, e.stop_id)
        for e in journey_events(stops=STOPS[2::-1])
        if e.type in ("arrival", "departure")
    ]
    events = journey_events()
    events += _fixes(lat, lon, arrival(3) - 60_000, arrival(3), at=arrival(3))
    events += _fixes(lat, lon, leave + 5_000, back[0].t, at=leave, south=True)
    return events + back, leave


def test_a_layover_without_journey_event_starts_a_journey_at_the_terminus():
    # Its fixes say the bus stood at stop 4 for ten minutes: a new journey begins there,
    # with stop 4 as its first call (derived, left when the bus moved), and the way back is
    # not the first journey's.
    events, leave = _terminus_day(10 * 60_000)
    first, second = journeys_from_events("RLG-1", events, _stop_index())
    assert [v.stop_id for v in first.visits] == STOPS
    assert second.inferred
    assert [v.stop_id for v in second.visits] == [STOPS[3], *STOPS[2::-1]]
    assert second.visits[0].derived
    assert second.visits[0].departure is not None
    assert abs(second.visits[0].departure - leave) <= 1_000
    # A hold of three minutes at a call is no layover: one journey.
    events, _ = _terminus_day(3 * 60_000)
    (journey,) = journeys_from_events("RLG-1", events, _stop_index())
    assert [v.stop_id for v in journey.visits][:4] == STOPS


def test_a_journey_after_a_layover_begins_as_the_bus_moves_off():
    # The same day seen live, 40 s after the bus left the terminus and well before its next
    # call: the way back has begun, stop 4 (the layover) its first call, under the id the
    # whole day gives it, and a rider who boarded during the layover rides it.
    events, leave = _terminus_day(10 * 60_000)
    now = leave + 40_000
    live = [e for e in events if e.t <= now]
    first, second = journeys_from_events("RLG-1", live, _stop_index(), data_end_ms=now)
    assert first.complete
    assert second.inferred
    assert [v.stop_id for v in second.visits] == [STOPS[3]]
    assert second.visits[0].departure is not None
    assert abs(second.visits[0].departure - leave) <= 1_000
    _, whole = journeys_from_events("RLG-1", events, _stop_index())
    assert second.journey_id == whole.journey_id
    rows = heard(0, leave - 60_000, now) + crowd(leave - 60_000, now)
    trips = reconcile_journeys([first, second], observations("RLG-1", rows, now), DEVICES)
    (trip,) = [t for t in trips if t.device_id == DEVICES[0]]
    assert (trip.journey_id, trip.board_stop_id, trip.status) == (
        second.journey_id,
        STOPS[3],
        "open",
    )
    # Before it moves off, the bus may still be laying over: no journey yet.
    standing = [e for e in events if e.t < leave]
    assert len(journeys_from_events("RLG-1", standing, _stop_index(), data_end_ms=leave)) == 1


def test_calls_derived_after_a_layover_belong_to_the_journey_that_moved_off():
    # As _terminus_day, and the way back's call at stop 3 lost too (the fixes pause there).
    # Live, before and after the way back's first call with events (stop 2): its derived
    # calls are the way back's alone, never added to the journey that ended at the terminus
    # (a rider of the way back would be a rider of both).
    events, leave = _terminus_day(10 * 60_000)
    south = [e for e in events if e.type == "position" and e.t > leave]
    arrive3 = next(e.t for e in events if e.t > leave and e.type == "arrival")
    leave3 = arrive3 + DWELL
    lat, lon = POSITIONS[STOPS[2]]
    events = [e for e in events if e.t <= leave or e.type in ("arrival", "departure")]
    events = [e for e in events if not (e.t > leave and e.stop_id == STOPS[2])]
    events += [e for e in south if e.t < leave + DRIVE // 2]
    events += _fixes(lat, lon, leave + DRIVE // 2, arrive3 - 4_000, at=arrive3, south=True)
    events += _fixes(lat, lon, leave3 + 5_000, leave3 + DRIVE - 4_000, at=leave3, south=True)
    arrive2 = leave3 + DRIVE
    for now in (leave3 + 40_000, arrive2 + 5_000, arrive2 + DWELL + 40_000):
        live = [e for e in events if e.t <= now]
        first, second = journeys_from_events("RLG-1", live, _stop_index(), data_end_ms=now)
        assert [v.stop_id for v in first.visits] == STOPS, now - leave
        assert [v.stop_id for v in second.visits][:2] == [STOPS[3], STOPS[2]], now - leave


def test_a_device_heard_only_as_the_bus_pulls_out_did_not_board_there():
    # A device about as loud as the boundary between inside and outside, heard through
    # every stretch from stop 1 on: whether it boarded rests on whether it was heard at
    # stop 1 while the doors were open. Heard from 20 s before the departure, it was (a
    # rider); first heard 3 s before it, it came into range as the bus pulled out (a car
    # behind it) and is not taken for a rider.
    pl = PATH_LOSS_BOUNDARY_DB + 2.0
    assert DOORS_CLOSE_BEFORE_DEPARTURE_MS > 3_000
    for before, boards in ((20_000, True), (3_000, False)):
        rows = heard(0, departure(0) - before, arrival(3), pl=pl)
        trips = one_bus(rows)
        assert bool(trips) == boards, before
        if boards:
            assert [(t.board_stop_id, t.alight_stop_id) for t in trips] == [(STOPS[0], STOPS[3])]


# --- door events (issue 12: stop events early or late, door signals where a bus has them) ---

DOOR_OPEN_AFTER_ARRIVAL_MS, DOOR_CLOSE_BEFORE_DEPARTURE = 3_000, 4_000


def _door_events(stops: range | None = None) -> list[EventRecord]:
    """The doors open a moment after each arrival and close a moment before the departure
    (at every stop, or at ``stops``)."""
    out = []
    for k in stops if stops is not None else range(len(STOPS)):
        out.append(EventRecord(arrival(k) + DOOR_OPEN_AFTER_ARRIVAL_MS, "doors_open"))
        out.append(EventRecord(departure(k) - DOOR_CLOSE_BEFORE_DEPARTURE, "doors_closed"))
    return out


def _shifted(events: list[EventRecord], shift_ms: int) -> list[EventRecord]:
    """The stop events ``shift_ms`` late (negative: early), as an onboard computer's may be."""
    return [
        replace(e, t=e.t + shift_ms) if e.type in ("arrival", "departure") else e for e in events
    ]


@pytest.mark.parametrize("shift_ms", [-15_000, -6_000, 0, 9_000, 15_000])
def test_each_call_keeps_the_door_spell_of_its_stop_however_its_stop_events_are_shifted(shift_ms):
    events = _shifted(journey_events(), shift_ms) + _door_events()
    (journey,) = journeys_from_events("RLG-1", events)
    assert [v.doors for v in journey.visits] == [
        (arrival(k) + DOOR_OPEN_AFTER_ARRIVAL_MS, departure(k) - DOOR_CLOSE_BEFORE_DEPARTURE)
        for k in range(len(STOPS))
    ]


def test_doors_opened_twice_at_a_call_are_one_spell_and_a_stray_spell_belongs_to_no_call():
    reopened = [
        EventRecord(departure(1) - 3_000, "doors_open"),  # a late runner: opened again
        EventRecord(departure(1) - 1_000, "doors_closed"),
        EventRecord(arrival(2) - 60_000, "doors_open"),  # on the way: a minute from any call
        EventRecord(arrival(2) - 55_000, "doors_closed"),
    ]
    events = journey_events() + _door_events() + reopened
    (journey,) = journeys_from_events("RLG-1", events)
    assert journey.visits[1].doors == (
        arrival(1) + DOOR_OPEN_AFTER_ARRIVAL_MS,
        departure(1) - 1_000,
    )
    assert journey.visits[2].doors == (
        arrival(2) + DOOR_OPEN_AFTER_ARRIVAL_MS,
        departure(2) - DOOR_CLOSE_BEFORE_DEPARTURE,
    )


def test_a_bus_without_door_events_has_no_door_spells_and_one_open_now_has_no_end():
    (journey,) = journeys_from_events("RLG-1", journey_events())
    assert all(v.doors is None for v in journey.visits)
    standing = [e for e in journey_events() if e.t <= arrival(1) + 10_000]
    doors = [EventRecord(arrival(1) + DOOR_OPEN_AFTER_ARRIVAL_MS, "doors_open")]
    (journey,) = journeys_from_events("RLG-1", standing + _door_events(range(1)) + doors)
    assert journey.visits[1].doors == (arrival(1) + DOOR_OPEN_AFTER_ARRIVAL_MS, None)


def _heard_at_stop(events, rows) -> bool:
    (journey,) = journeys_from_events("RLG-1", events)
    obs = observations("RLG-1", rows)
    evidence = stretch_evidence(journey, obs, stretches(journey, obs.data_end_ms))
    (row,) = np.flatnonzero(evidence.devices == 0)
    return bool(evidence.heard_at_stop[row, 1])


def test_a_rider_stepping_in_after_an_early_departure_event_is_heard_through_the_doors():
    # Stop 2's stop events come 12 s early: the rider, heard from 8 s before the doors
    # close, steps in after the bus "left". The door events say the doors were open then;
    # without them the last seconds before a departure do not count as at the stop.
    events = _shifted(journey_events(), -12_000)
    rows = heard(0, departure(1) - DOOR_CLOSE_BEFORE_DEPARTURE - 8_000, arrival(3))
    assert _heard_at_stop(events + _door_events(), rows)
    assert not _heard_at_stop(events, rows)


def test_a_car_heard_only_after_the_doors_closed_is_not_heard_at_the_stop_through_them():
    # Stop events 12 s late: a car behind the bus, heard from the moment the doors closed,
    # falls in the stand by the stop events, but the doors were shut all that time.
    events = _shifted(journey_events(), 12_000)
    rows = heard(0, departure(1) - DOOR_CLOSE_BEFORE_DEPARTURE + 1_000, arrival(3), pl=OUTSIDE_PL)
    assert not _heard_at_stop(events + _door_events(), rows)
    assert _heard_at_stop(events, rows)


def _two_journeys(late_ms: int) -> list[EventRecord]:
    """R61-1 over the four stops, its last call's departure never sent (the next journey's
    event came while the bus stood at the terminus), then R61-2 back from there ten minutes
    later, its stop events ``late_ms`` late; doors at every call of both."""
    back = 10 * 60_000
    first = [e for e in journey_events("R61-1") if (e.type, e.stop_id) != ("departure", STOPS[-1])]
    second = [EventRecord(arrival(len(STOPS) - 1) + 5_000, "journey", None, "R61", "R61-2", 1)]
    for k, stop in enumerate(reversed(STOPS[:-1])):
        second.append(EventRecord(arrival(k + 1) + back + late_ms, "arrival", stop))
        second.append(EventRecord(departure(k + 1) + back + late_ms, "departure", stop))
    doors = _door_events()
    doors += [replace(e, t=e.t + back) for e in _door_events(range(1, len(STOPS)))]
    return first + second + doors


@pytest.mark.parametrize("late_ms", [0, 10_000])
def test_a_terminus_call_without_its_departure_keeps_only_its_own_door_spell(late_ms):
    one, two = journeys_from_events("RLG-1", _two_journeys(late_ms))
    assert one.visits[-1].departure is None
    assert one.visits[-1].doors == (
        arrival(3) + DOOR_OPEN_AFTER_ARRIVAL_MS,
        departure(3) - DOOR_CLOSE_BEFORE_DEPARTURE,
    )
    # The terminus call is also the next journey's first, with the same spell.
    back = 10 * 60_000
    assert [v.doors for v in two.visits] == [one.visits[-1].doors] + [
        (
            arrival(k) + back + DOOR_OPEN_AFTER_ARRIVAL_MS,
            departure(k) + back - DOOR_CLOSE_BEFORE_DEPARTURE,
        )
        for k in range(1, len(STOPS))
    ]


def test_a_lost_doors_closed_does_not_carry_a_spell_into_the_next_call():
    doors = [e for e in _door_events() if e.t != departure(1) - DOOR_CLOSE_BEFORE_DEPARTURE]
    (journey,) = journeys_from_events("RLG-1", journey_events() + doors)
    opened, closed = journey.visits[1].doors
    assert opened == arrival(1) + DOOR_OPEN_AFTER_ARRIVAL_MS
    assert closed is not None
    assert closed < arrival(2)


def test_a_rebuild_reads_the_sightings_of_doors_that_opened_before_the_arrival_event():
    # Stop events 12 s late: the doors of every call open before its arrival event. A rider
    # heard only through the doors at the first stop is on board whether the day is
    # reconciled whole or rebuilt from the plan's read_from on.
    from backend.trips.reconciliation import rebuild_plan

    events = _shifted(journey_events(), 12_000) + _door_events()
    journeys = journeys_from_events("RLG-1", events)
    plan = rebuild_plan(journeys, departure(0) + 1_000)
    assert plan.read_from <= arrival(0) + DOOR_OPEN_AFTER_ARRIVAL_MS
    rows = heard(0, arrival(0) + DOOR_OPEN_AFTER_ARRIVAL_MS, arrival(0) + 9_000)
    rows += heard(0, departure(0) + 12_000, arrival(2))
    full = observations("RLG-1", rows + crowd())
    cut = observations("RLG-1", [r for r in rows + crowd() if r[0] >= plan.read_from])
    whole = reconcile_journeys(journeys, full, DEVICES)
    rebuilt = reconcile_journeys(journeys[plan.context_from :], cut, DEVICES)
    assert [t for t in rebuilt if t.device_id == "dev_a"] == [
        t for t in whole if t.device_id == "dev_a"
    ]
    assert [t.board_stop_id for t in whole if t.device_id == "dev_a"] == [STOPS[0]]


def test_every_prefix_of_a_day_with_door_events_cuts_as_the_day_would():
    # Seen live: door events before any call (the doors opened as the bus stood at its first
    # stop before its stop events came), and every prefix after.
    events = sorted(_two_journeys(10_000), key=lambda e: e.t)
    whole = journeys_from_events("RLG-1", events)
    assert journeys_from_events("RLG-1", [e for e in events if e.type.startswith("doors")]) == []

    def calls(journey):
        return [(v.stop_id, v.arrival, v.departure) for v in journey.visits]

    for k in range(len(events) + 1):
        part = journeys_from_events("RLG-1", events[:k])
        settled = [j for j in part if j.complete]
        assert [calls(j) for j in settled] == [calls(j) for j in whole[: len(settled)]], k
        # A door spell seen so far is the day's, or the same one still open.
        for j, day in zip(part, whole, strict=False):
            for v, w in zip(j.visits, day.visits, strict=False):
                assert v.doors in (None, w.doors, (w.doors[0], None) if w.doors else None), k


# --- stand contrast: a trailing car closes up at the stops, a rider stays put ---------------


def _closing_up(device: int, pl_driving: float, pl_standing: float):
    """A device heard from the bus's stand at stop 0 to its arrival at stop 3: at
    ``pl_standing`` while the bus stands at a stop, ``pl_driving`` as it drives."""
    rows = heard(device, arrival(0) + 5_000, arrival(3), pl=pl_driving)
    standing = [(arrival(k), departure(k)) for k in range(len(STOPS))]
    return [
        (t, d, pl - pl_driving + pl_standing if any(a <= t < b for a, b in standing) else pl)
        for t, d, pl in rows
    ]


@pytest.mark.parametrize("gain_db", [-8.0, 0.0, 8.0])
def test_a_car_that_closes_up_at_every_stop_is_told_from_a_rider_who_stays_put(gain_db):
    # Both are heard all through, half a dB on the far side of the path-loss boundary
    # (the hearing pattern carries them aboard); the car, queued behind the bus, is 8 dB
    # louder whenever the bus stands. With the stand contrast the car is not charged and
    # the rider still is, whatever the bus's receiver gain (a difference of a device's own
    # levels).
    rows = crowd() + _closing_up(0, 77.0, 77.0) + _closing_up(1, 77.0, 69.0)
    rows = [(t, d, pl - gain_db) for t, d, pl in rows]
    plain = LevelModel(relative=False, boundary_db=76.5 - gain_db, contrast_slope_per_db=0.0)
    contrast = dataclasses.replace(plain, contrast_slope_per_db=1.0)
    assert _trips(rows, plain) == {"dev_a", "dev_b", *CROWD}
    assert _trips(rows, contrast) == {"dev_a", *CROWD}
    (journey,) = journeys_from_events("RLG-1", journey_events())
    obs = observations("RLG-1", rows)
    evidence = stretch_evidence(journey, obs, stretches(journey, obs.data_end_ms), contrast)
    against = dict(evidence.terms)["stand_contrast"]
    rider, car = (int(np.flatnonzero(evidence.devices == d)[0]) for d in (0, 1))
    assert (against[rider] == 0).all()
    # Against it on every stretch it was heard on (not the one after stop 3).
    assert (against[car][:3] == -contrast.contrast_max_llr).all()
    assert against[car][3] == 0


def test_a_device_heard_through_no_stop_has_no_stand_contrast():
    # Heard over one stretch only (no stop with a stretch heard all through on either
    # side): nothing to compare, nothing against it, however loud it was at the stops.
    rows = crowd() + [
        (t, 1, 62.0 if t < departure(1) else 72.0)
        for t in range(arrival(1) + 5_000, arrival(2), 1000)
    ]
    (journey,) = journeys_from_events("RLG-1", journey_events())
    obs = observations("RLG-1", rows)
    model = LevelModel(relative=False, contrast_slope_per_db=1.0)
    evidence = stretch_evidence(journey, obs, stretches(journey, obs.data_end_ms), model)
    assert (dict(evidence.terms)["stand_contrast"] == 0).all()


def test_a_rider_louder_where_they_boarded_is_not_taken_for_a_car():
    # Waiting right by the doors at stop 1, 10 dB louder than once inside; then steady
    # through stop 2. Where they boarded is not a stop they were heard all through (the
    # stretch before it was not), so only stop 2 compares, and it shows no contrast.
    standing = (arrival(1), departure(1))
    rows = crowd() + [
        (t, 0, 64.0 if standing[0] <= t < standing[1] else 74.0)
        for t in range(arrival(1) + 5_000, arrival(3), 1000)
    ]
    model = LevelModel(relative=False, contrast_slope_per_db=1.0)
    (journey,) = journeys_from_events("RLG-1", journey_events())
    obs = observations("RLG-1", rows)
    evidence = stretch_evidence(journey, obs, stretches(journey, obs.data_end_ms), model)
    rider = int(np.flatnonzero(evidence.devices == 0)[0])
    assert (dict(evidence.terms)["stand_contrast"][rider] == 0).all()
    (trip,) = [t for t in one_bus(rows[len(crowd()) :]) if t.device_id == "dev_a"]
    assert (trip.board_stop_id, trip.alight_stop_id) == (STOPS[1], STOPS[3])


# --- where the doors could not have opened, and boarding unheard ----------------------------


def run_through_events(stop: int = 1, stand_ms: int = 3_000) -> list[EventRecord]:
    """``journey_events`` with the bus running through stop ``stop``: it stands there
    ``stand_ms`` (nobody asked to get on or off), no door events anywhere."""
    events = []
    for e in journey_events():
        if e.stop_id == STOPS[stop] and e.type == "arrival":
            e = replace(e, t=arrival(stop) + DWELL // 2 - stand_ms // 2)
        elif e.stop_id == STOPS[stop] and e.type == "departure":
            e = replace(e, t=arrival(stop) + DWELL // 2 + stand_ms // 2)
        events.append(e)
    return events


def served_at(events: list[EventRecord], data_end: int = arrival(4)) -> list[bool]:
    (journey,) = journeys_from_events("RLG-1", events)
    parts = stretches(journey, data_end)
    evidence = stretch_evidence(journey, observations("RLG-1", crowd(), data_end), parts)
    assert evidence.served is not None
    return evidence.served.tolist()


def test_a_stop_the_bus_ran_through_is_not_served():
    # The stops before the three stretches (and the one under way after the last stop).
    assert served_at(run_through_events(1, 3_000)) == [True, False, True, True]
    stood = DOORS_CLOSE_BEFORE_DEPARTURE_MS + 1_000  # long enough for the doors to open
    assert served_at(run_through_events(1, stood)) == [True, True, True, True]


@pytest.mark.parametrize("lost", ["arrival", "departure"])
def test_a_call_with_one_of_its_stop_events_lost_is_served(lost):
    # The other event alone makes a call of no length: that says nothing about its doors.
    events = [e for e in journey_events() if not (e.stop_id == STOPS[2] and e.type == lost)]
    assert served_at(events)[:3] == [True, True, True]


def test_the_newest_call_is_served_however_short_its_stand():
    # A terminus whose departure event came three seconds after its arrival (some onboard
    # computers end the trip at once): its riders still get off there.
    events = run_through_events(3, 3_000)
    assert served_at(events, data_end=arrival(3) + 120_000)[-1] is True


def test_a_car_that_joined_where_the_bus_ran_through_a_stop_does_not_board_there():
    # Heard as loud as a rider from where the bus ran through the second stop on, through
    # the third (behind the bus while its doors were open) to the fourth: nobody got on at
    # the second, and at the third it came along the whole stretch before. A rider heard at
    # the first stop's open doors rode from there.
    through = arrival(1) + DWELL // 2 + 1_500
    car = heard(0, through, arrival(3))
    rider = heard(1, arrival(0) + 5_000, arrival(3))
    trips = reconcile(
        {"RLG-1": run_through_events(1)},
        [observations("RLG-1", car + rider + crowd())],
        DEVICES,
    )
    rides = [(t.device_id, t.board_stop_id) for t in trips if t.device_id not in CROWD]
    assert rides == [("dev_b", STOPS[0])]


def test_a_rider_does_not_get_off_where_the_bus_ran_through():
    # Heard on board from the first stop until the bus came into the third, which it ran
    # through, then never again: the ride ends at the fourth, where anybody could get off.
    llr = np.array([[6.0, 6.0, -3.0, -3.0]])
    at_stop = np.array([[True, False, False, False]])
    no = np.zeros_like(at_stop)
    path, _ = reconciliation.decode(llr, at_stop, no)
    assert path.tolist() == [[True, True, False, False]]
    served = np.array([True, True, False, True])
    path, _ = reconciliation.decode(llr, at_stop, no, served=served)
    assert path.tolist() == [[True, True, True, False]]


def test_a_car_that_came_from_the_far_end_of_a_stretch_does_not_board_at_its_stop():
    # A car falls in behind the bus where it runs through the second stop and is heard, as
    # near as a weak rider, along the rest of the journey, at the third stop too (behind the
    # bus while its doors were open): it got on nowhere. Told only that it came along the
    # stretch before the third stop, the chain lets it board there; told that it came from
    # that stretch's far end (a minute's drive away), it does not.
    llr = np.array([[-20.0, 5.0, 5.0, 5.0]])
    at_stop = np.array([[False, False, True, True]])
    alongside = np.array([[False, False, True, True]])
    served = np.array([True, False, True, True])
    path, _ = reconciliation.decode(llr, at_stop, alongside, served=served)
    assert path.tolist() == [[False, False, True, True]]
    path, _ = reconciliation.decode(llr, at_stop, alongside, served=served, alongside_far=alongside)
    assert not path.any()


def test_heard_from_the_far_end_of_a_long_stretch_is_nobody_waiting_at_its_stop():
    # Heard through every part of the 120 s drive to the second stop (FAR_STRETCH_MS or
    # more): it came with the bus. Someone waiting there is heard only as the bus came in.
    assert DRIVE >= FAR_STRETCH_MS
    car = heard(0, departure(0) + 500, arrival(3), every_ms=2000)
    waiting = heard(1, arrival(1) - 20_000, arrival(3))
    obs = observations("RLG-1", car + waiting + crowd())
    (journey,) = journeys_from_events("RLG-1", journey_events())
    evidence = stretch_evidence(journey, obs, stretches(journey, obs.data_end_ms), LevelModel())
    assert evidence.alongside_far is not None
    far = {int(d): evidence.alongside_far[r] for r, d in enumerate(evidence.devices)}
    assert far[0][1:3].tolist() == [True, True]
    assert not far[1][1]  # where it boarded (on board, it is heard along the stretches after)
