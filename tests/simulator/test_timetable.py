from __future__ import annotations

import datetime as dt
import itertools
import re

import numpy as np
import pytest

from backend.timeutil import service_day_bounds
from simulator.const import (
    CONVOY_GAP_MAX_S,
    HUB_DWELL_MIN_MS,
    MIN_LAYOVER_MS,
    PASS_THROUGH_DWELL_MS,
)
from simulator.timetable import (
    TimetableConfig,
    build_timetable,
    buses_per_line,
    door_boundaries,
    doors_open_at,
    finalize_calls,
    local_hhmm,
    peak_intensity,
    traffic_factor,
    vehicle_track,
)

DAY = dt.date(2026, 6, 3)
LINES = ("R61", "C1", "C2", "R60")


@pytest.fixture(scope="module")
def vehicles(network):
    cfg = TimetableConfig(lines=LINES, convoys=2)
    return build_timetable(network, DAY, 6, np.random.default_rng(1), cfg)


def test_blocks_shuttle_with_layover(network, vehicles):
    regular = [v for v in vehicles if not v.journeys[0].leader]
    assert len(regular) == 6
    ids = [j.journey_id for v in vehicles for j in v.journeys]
    assert len(ids) == len(set(ids))
    for v in regular:
        assert re.fullmatch(r"(RLG|VKU|BRS)-\d{4}", v.vehicle_id)
        line = network.line(v.line)
        for a, b in itertools.pairwise(v.journeys):
            assert b.direction != a.direction
            assert b.calls[0].stop_id == a.calls[-1].stop_id
            assert b.start_ms >= a.end_ms + MIN_LAYOVER_MS
        for j in v.journeys:
            assert re.fullmatch(rf"{v.line}-\d{{4}}-{j.direction}", j.journey_id)
            expected = line.stops if j.direction == 0 else tuple(reversed(line.stops))
            assert tuple(c.stop_id for c in j.calls) == expected
            for c in j.calls:
                assert c.arrival_ms < c.doors_open_ms < c.doors_closed_ms < c.departure_ms
            for c0, c1 in itertools.pairwise(j.calls):
                assert c1.arrival_ms > c0.departure_ms


def test_service_hours_and_day_bounds(vehicles):
    deps = sorted(local_hhmm(j.scheduled_departure_ms) for v in vehicles for j in v.journeys)
    assert deps[0] == "0530"
    assert deps[-1] <= "2130"
    start, end = service_day_bounds(DAY)
    assert all(start <= j.start_ms and j.end_ms < end for v in vehicles for j in v.journeys)


def test_service_day_is_03_to_03_berlin():
    start, end = service_day_bounds(dt.date(2026, 3, 28))  # clocks go forward on the 29th
    assert end - start == 23 * 3600_000
    start, end = service_day_bounds(DAY)
    assert end - start == 24 * 3600_000
    assert local_hhmm(start) == "0300"


def test_traffic_is_slowest_in_the_rush_hours_and_in_town():
    assert peak_intensity(7 * 60 + 30) == pytest.approx(1.0)
    assert peak_intensity(12 * 60) < 0.2
    assert traffic_factor(500, 7 * 60 + 30) < traffic_factor(500, 11 * 60)
    assert traffic_factor(500, 7 * 60 + 30) < traffic_factor(8000, 7 * 60 + 30)


def test_run_times_vary_with_time_of_day(vehicles):
    """The same town segment takes longer in the morning peak than at midday."""
    peak, midday = [], []
    for v in vehicles:
        for j in v.journeys:
            if j.line != "C1" or j.leader:
                continue
            for k, seg in enumerate(j.segments):
                if seg.light_stop_ms is not None:
                    continue
                pace = (j.calls[k + 1].arrival_ms - j.calls[k].departure_ms) / seg.road_m
                hh = local_hhmm(j.calls[k].departure_ms)
                if "0700" <= hh <= "0800":
                    peak.append(pace)
                elif "1100" <= hh <= "1300":
                    midday.append(pace)
    assert np.mean(peak) > 1.15 * np.mean(midday)


def test_red_lights_lie_inside_their_segment_and_hubs_hold_buses(network, vehicles):
    lights = 0
    for v in vehicles:
        for j in v.journeys:
            for k, s in enumerate(j.segments):
                if s.light_stop_ms is not None:
                    lights += 1
                    assert j.calls[k].departure_ms < s.light_stop_ms < s.light_go_ms
                    assert s.light_go_ms < j.calls[k + 1].arrival_ms
            for c in j.calls[1:-1]:
                if network.is_hub(c.stop_id) and not j.leader:
                    assert c.departure_ms - c.arrival_ms >= HUB_DWELL_MIN_MS
    assert lights > 10


def test_reinforcement_buses_follow_their_leader_closely(vehicles):
    journeys = {j.journey_id: j for v in vehicles for j in v.journeys}
    followers = [j for v in vehicles for j in v.journeys if j.leader]
    assert len(followers) == 2
    for f in followers:
        lead = journeys[f.leader]
        assert f.journey_id.startswith(f"{lead.journey_id}-V")
        assert [c.stop_id for c in f.calls] == [c.stop_id for c in lead.calls]
        for cf, cl in zip(f.calls, lead.calls, strict=True):
            assert 0 < cf.arrival_ms - cl.arrival_ms <= CONVOY_GAP_MAX_S * 1000 + 60_000
            assert cf.departure_ms > cl.departure_ms


def test_finalize_runs_through_unused_stops_only(vehicles):
    j = vehicles[0].journeys[0]
    used = {(j.journey_id, 1), (j.journey_id, 2)}
    out = finalize_calls(vehicles, used, np.random.default_rng(0))
    calls = out[0].journeys[0].calls
    assert calls[0].served
    assert calls[-1].served
    assert calls[1].served
    assert calls[2].served
    through = [c for c in calls if not c.served]
    assert through
    for c in through:
        assert c.departure_ms - c.arrival_ms == PASS_THROUGH_DWELL_MS
    b = door_boundaries(out[0])
    assert (np.diff(b) > 0).all()
    assert doors_open_at(b, np.array([calls[0].doors_open_ms + 1]))[0]


def test_track_stands_at_stops_and_moves_between(network, vehicles):
    v = vehicles[0]
    tr = vehicle_track(network, v)
    j = v.journeys[0]
    c0, c1 = j.calls[0], j.calls[1]
    x, y, active = tr.at(np.array([c0.arrival_ms, c0.departure_ms, c1.arrival_ms], dtype=np.int64))
    assert active.all()
    assert x[0] == x[1]
    assert y[0] == y[1]
    assert (x[1], y[1]) != (x[2], y[2])
    _, _, before = tr.at(np.array([j.start_ms - 1], dtype=np.int64))
    assert not before[0]


def test_buses_shared_by_run_time(network):
    assert buses_per_line(network, 3, ("R61", "S20", "R55")) == {"R61": 1, "S20": 1, "R55": 1}
    assert buses_per_line(network, 2, ("R61", "S20", "R55")) == {"R61": 1, "S20": 1, "R55": 0}
    counts = buses_per_line(network, 40, ("R61", "C1", "R40"))
    assert sum(counts.values()) == 40
    assert counts["R40"] > counts["C1"]  # the long line needs more buses for the same headway


def test_too_short_headway_names_the_field(network):
    with pytest.raises(ValueError, match="headway_min: 10 is too short for line R61"):
        build_timetable(
            network,
            DAY,
            3,
            np.random.default_rng(1),
            TimetableConfig(headway_min=10, lines=("R61",)),
        )
