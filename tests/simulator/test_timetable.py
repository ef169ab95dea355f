from __future__ import annotations

import datetime as dt
import re

import numpy as np
import pytest

from simulator.const import MIN_LAYOVER_MS
from simulator.timetable import (
    TimetableConfig,
    build_timetable,
    buses_per_line,
    local_hhmm,
    service_day_bounds,
)

DAY = dt.date(2026, 6, 3)


def test_blocks_shuttle_with_layover(network):
    vehicles = build_timetable(network, DAY, 6, np.random.default_rng(1))
    assert len(vehicles) == 6
    ids = [j.journey_id for v in vehicles for j in v.journeys]
    assert len(ids) == len(set(ids))
    for v in vehicles:
        assert re.fullmatch(r"(RLG|VKU|BRS)-\d{4}", v.vehicle_id)
        line = network.line(v.line)
        for a, b in zip(v.journeys, v.journeys[1:], strict=False):
            assert b.direction != a.direction
            assert b.calls[0].stop_id == a.calls[-1].stop_id
            assert b.start_ms >= a.end_ms + MIN_LAYOVER_MS
        for j in v.journeys:
            assert re.fullmatch(rf"{v.line}-\d{{4}}-{j.direction}", j.journey_id)
            expected = line.stops if j.direction == 0 else tuple(reversed(line.stops))
            assert tuple(c.stop_id for c in j.calls) == expected
            for c in j.calls:
                assert c.arrival_ms < c.doors_open_ms < c.doors_closed_ms < c.departure_ms
                assert c.departure_ms - c.arrival_ms >= 15_000
            for c0, c1 in zip(j.calls, j.calls[1:], strict=False):
                assert c1.arrival_ms > c0.departure_ms


def test_service_hours_respected(network):
    vehicles = build_timetable(network, DAY, 6, np.random.default_rng(1))
    deps = sorted(local_hhmm(j.scheduled_departure_ms) for v in vehicles for j in v.journeys)
    assert deps[0] == "0530"
    assert deps[-1] <= "2130"
    start, end = service_day_bounds(DAY)
    assert all(start <= j.start_ms and j.end_ms < end for v in vehicles for j in v.journeys)


def test_service_day_is_03_to_03_berlin():
    start, end = service_day_bounds(dt.date(2026, 3, 28))  # clocks go forward at 02:00 on the 29th
    assert end - start == 23 * 3600_000
    start, end = service_day_bounds(DAY)
    assert end - start == 24 * 3600_000
    assert local_hhmm(start) == "0300"


def test_buses_round_robin(network):
    assert buses_per_line(network, 4) == {"R61": 2, "S20": 1, "R55": 1}
    assert buses_per_line(network, 1) == {"R61": 1, "S20": 0, "R55": 0}


def test_too_short_headway_names_the_field(network):
    with pytest.raises(ValueError, match="headway_min: 10 is too short for line R61"):
        build_timetable(network, DAY, 3, np.random.default_rng(1), TimetableConfig(headway_min=10))
