"""Timetable of a service day: vehicles shuttling on their line in blocks of journeys.

All times are UTC epoch milliseconds; the timetable is planned in Europe/Berlin local time.
Run and dwell times are random (seeded) around a nominal schedule, so a bus can run late;
it then shortens its layover (never below the minimum) to catch up.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
from dataclasses import dataclass

import numpy as np

from simulator.const import (
    DEFAULT_SERVICE_END,
    DEFAULT_SERVICE_START,
    DOOR_DELAY_MAX_MS,
    DOOR_DELAY_MIN_MS,
    DWELL_MAX_MS,
    DWELL_MIN_MS,
    FLEET_NUMBER_MAX,
    FLEET_NUMBER_MIN,
    HEADWAY_ROUNDING_MIN,
    LOCAL_TZ,
    MIN_LAYOVER_MS,
    ROAD_FACTOR,
    RUN_TIME_SLACK,
    RURAL_SEGMENT_M,
    RURAL_SPEED_MPS,
    SERVICE_DAY_START,
    SPEED_SIGMA,
    URBAN_SPEED_MPS,
)
from simulator.network import Line, Network, stop_distance_m


@dataclass(frozen=True, slots=True)
class StopCall:
    """A journey's call at a stop (epoch ms): arrival ≤ doors open < doors closed ≤ departure."""

    stop_id: str
    arrival_ms: int
    doors_open_ms: int
    doors_closed_ms: int
    departure_ms: int


@dataclass(frozen=True, slots=True)
class Journey:
    """One trip of a vehicle from one terminus to the other.

    ``journey_id`` is ``<line>-<HHMM of the scheduled departure, local>-<direction>``.
    ``segment_speeds_mps[k]`` is the mean speed between ``calls[k]`` and ``calls[k+1]``.
    """

    journey_id: str
    line: str
    direction: int
    vehicle_id: str
    scheduled_departure_ms: int
    calls: tuple[StopCall, ...]
    segment_speeds_mps: tuple[float, ...]

    @property
    def start_ms(self) -> int:
        """When the journey starts: the arrival at its first stop (epoch ms)."""
        return self.calls[0].arrival_ms

    @property
    def end_ms(self) -> int:
        """When the journey ends: the departure from its last stop (epoch ms)."""
        return self.calls[-1].departure_ms

    def call_index(self, stop_id: str) -> int:
        """Position of ``stop_id`` in this journey (ValueError if not served)."""
        for k, call in enumerate(self.calls):
            if call.stop_id == stop_id:
                return k
        raise ValueError(f"journey {self.journey_id} does not serve stop {stop_id!r}")


@dataclass(frozen=True, slots=True)
class Vehicle:
    """A bus and its block: the journeys it runs in time order, all on one line."""

    vehicle_id: str
    line: str
    operator: str
    journeys: tuple[Journey, ...]


@dataclass(frozen=True, slots=True)
class TimetableConfig:
    """Service hours (local time) and an optional fixed headway in minutes per direction.

    Without ``headway_min`` each line's headway is the shortest clock-face headway its
    buses can keep.
    """

    service_start: dt.time = DEFAULT_SERVICE_START
    service_end: dt.time = DEFAULT_SERVICE_END
    headway_min: int | None = None


def local_to_epoch_ms(day: dt.date, t: dt.time) -> int:
    """Epoch ms of local (Europe/Berlin) wall time ``t`` on ``day``."""
    return int(dt.datetime.combine(day, t, tzinfo=LOCAL_TZ).timestamp() * 1000)


def service_day_bounds(day: dt.date) -> tuple[int, int]:
    """[start, end) of a service day in epoch ms: 03:00 local to 03:00 local the next day."""
    return (
        local_to_epoch_ms(day, SERVICE_DAY_START),
        local_to_epoch_ms(day + dt.timedelta(days=1), SERVICE_DAY_START),
    )


def local_hhmm(epoch_ms: int) -> str:
    """``HHMM`` of an epoch ms instant in local time."""
    return dt.datetime.fromtimestamp(epoch_ms / 1000, tz=LOCAL_TZ).strftime("%H%M")


def segment_lengths_m(network: Network, line: Line) -> list[float]:
    """Road length (m) of each segment of ``line`` in direction 0."""
    stops = [network.stop(s) for s in line.stops]
    return [stop_distance_m(a, b) * ROAD_FACTOR for a, b in itertools.pairwise(stops)]


def nominal_speed_mps(road_m: float) -> float:
    """Mean running speed (m/s) of a segment: blends town and overland speed by length."""
    share = min(1.0, road_m / RURAL_SEGMENT_M)
    return URBAN_SPEED_MPS + (RURAL_SPEED_MPS - URBAN_SPEED_MPS) * share


def nominal_run_ms(network: Network, line: Line) -> int:
    """Nominal one-way time (ms) of a line: running at nominal speeds plus mean dwells."""
    running = sum(d / nominal_speed_mps(d) for d in segment_lengths_m(network, line)) * 1000
    return int(running + len(line.stops) * (DWELL_MIN_MS + DWELL_MAX_MS) / 2)


def buses_per_line(network: Network, buses: int) -> dict[str, int]:
    """Distribute ``buses`` round-robin over the lines in file order (a line may get 0)."""
    if buses < 0:
        raise ValueError(f"buses: expected >= 0, got {buses}")
    counts = {ln.line: 0 for ln in network.lines}
    for k in range(buses):
        counts[network.lines[k % len(network.lines)].line] += 1
    return counts


def line_headway_ms(network: Network, line: Line, n_buses: int, headway_min: int | None) -> int:
    """Headway (ms) per direction for ``n_buses`` shuttling on ``line``.

    A fixed ``headway_min`` must leave each bus enough time for a round trip with slack
    and layovers; otherwise ValueError says the minimum.
    """
    half_needed = nominal_run_ms(network, line) * (1 + RUN_TIME_SLACK) + MIN_LAYOVER_MS
    min_headway_min = math.ceil(2 * half_needed / n_buses / 60_000)
    if headway_min is None:
        r = HEADWAY_ROUNDING_MIN
        return math.ceil(min_headway_min / r) * r * 60_000
    if headway_min < min_headway_min:
        raise ValueError(
            f"headway_min: {headway_min} is too short for line {line.line} with "
            f"{n_buses} bus(es); expected >= {min_headway_min}"
        )
    return headway_min * 60_000


def _run_journey(
    rng: np.random.Generator,
    network: Network,
    line: Line,
    direction: int,
    vehicle_id: str,
    scheduled_departure_ms: int,
    earliest_arrival_ms: int,
) -> Journey:
    stop_ids = line.stops if direction == 0 else tuple(reversed(line.stops))
    lengths = segment_lengths_m(network, line)
    if direction == 1:
        lengths = lengths[::-1]
    calls: list[StopCall] = []
    speeds: list[float] = []
    first_dwell = int(rng.integers(DWELL_MIN_MS, DWELL_MAX_MS + 1))
    t = max(scheduled_departure_ms - first_dwell, earliest_arrival_ms)
    for k, stop_id in enumerate(stop_ids):
        dwell = first_dwell if k == 0 else int(rng.integers(DWELL_MIN_MS, DWELL_MAX_MS + 1))
        arrival = t
        departure = arrival + dwell
        if k == 0:
            departure = max(departure, scheduled_departure_ms)
        doors_open = arrival + int(rng.integers(DOOR_DELAY_MIN_MS, DOOR_DELAY_MAX_MS + 1))
        doors_closed = departure - int(rng.integers(DOOR_DELAY_MIN_MS, DOOR_DELAY_MAX_MS + 1))
        calls.append(StopCall(stop_id, arrival, doors_open, doors_closed, departure))
        if k < len(lengths):
            speed = nominal_speed_mps(lengths[k]) * float(rng.lognormal(0.0, SPEED_SIGMA))
            speeds.append(speed)
            t = departure + round(lengths[k] / speed * 1000)
    hhmm = local_hhmm(scheduled_departure_ms)
    return Journey(
        journey_id=f"{line.line}-{hhmm}-{direction}",
        line=line.line,
        direction=direction,
        vehicle_id=vehicle_id,
        scheduled_departure_ms=scheduled_departure_ms,
        calls=tuple(calls),
        segment_speeds_mps=tuple(speeds),
    )


def build_timetable(
    network: Network,
    service_day: dt.date,
    buses: int,
    rng: np.random.Generator,
    config: TimetableConfig | None = None,
) -> tuple[Vehicle, ...]:
    """Plan every line's blocks for ``service_day``; ``buses`` in total, shared round-robin.

    Bus ``b`` of a line with ``n`` buses and headway ``h`` leaves the first terminus at
    ``start + b·h + m·n·h`` and the other terminus half a cycle later, as long as the
    scheduled departure is not after ``service_end``.
    """
    cfg = config or TimetableConfig()
    start = local_to_epoch_ms(service_day, cfg.service_start)
    end = local_to_epoch_ms(service_day, cfg.service_end)
    if end <= start:
        raise ValueError(f"service_end: {cfg.service_end} is not after {cfg.service_start}")
    vehicles: list[Vehicle] = []
    used_numbers: set[tuple[str, int]] = set()
    for line in network.lines:
        n = buses_per_line(network, buses)[line.line]
        if n == 0:
            continue
        headway = line_headway_ms(network, line, n, cfg.headway_min)
        cycle = n * headway
        half = (cycle // 2 // 60_000) * 60_000
        base = int(rng.integers(FLEET_NUMBER_MIN, FLEET_NUMBER_MAX - n))
        while any((line.operator, base + b) in used_numbers for b in range(n)):
            base = int(rng.integers(FLEET_NUMBER_MIN, FLEET_NUMBER_MAX - n))
        for b in range(n):
            used_numbers.add((line.operator, base + b))
            vehicle_id = f"{line.operator}-{base + b}"
            journeys: list[Journey] = []
            earliest = 0
            dep0 = start + b * headway
            while dep0 <= end:
                for direction, sched in ((0, dep0), (1, dep0 + half)):
                    if sched > end:
                        break
                    j = _run_journey(rng, network, line, direction, vehicle_id, sched, earliest)
                    journeys.append(j)
                    earliest = j.end_ms + MIN_LAYOVER_MS
                dep0 += cycle
            vehicles.append(Vehicle(vehicle_id, line.line, line.operator, tuple(journeys)))
    return tuple(vehicles)
