"""Operations of a service day: vehicle blocks, journeys with traffic, dwell, doors, delays.

All times are UTC epoch milliseconds; the timetable is planned in Europe/Berlin local time.
Run times vary with the time of day (rush hours slow town segments most), red lights, the
driver, and rare incidents; a late bus stays late and only catches up at hubs (timing
points) and in its layover. Hubs hold buses for timed transfers, and at the first stop the
bus stands with open doors for minutes. In the school peaks, reinforcement buses follow a
regular journey closely (bunching). Stops nobody uses are run through (``finalize_calls``).
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt

from simulator.const import (
    CONVOY_GAP_MAX_S,
    CONVOY_GAP_MIN_S,
    CONVOY_PEAK_WINDOW,
    DEFAULT_SERVICE_END,
    DEFAULT_SERVICE_START,
    DOOR_DELAY_MAX_MS,
    DOOR_DELAY_MIN_MS,
    DWELL_MAX_MS,
    DWELL_MIN_MS,
    FLEET_NUMBER_MAX,
    FLEET_NUMBER_MIN,
    HEADWAY_ROUNDING_MIN,
    HUB_DWELL_MAX_MS,
    HUB_DWELL_MIN_MS,
    INCIDENT_MAX_MS,
    INCIDENT_MIN_MS,
    INCIDENT_PROB,
    LOCAL_TZ,
    MIN_LAYOVER_MS,
    PASS_THROUGH_DWELL_MS,
    PASS_THROUGH_PROB,
    PEAK_AFTERNOON_MIN,
    PEAK_MORNING_MIN,
    PEAK_SLOWDOWN_RURAL,
    PEAK_SLOWDOWN_URBAN,
    PEAK_WIDTH_MIN,
    ROAD_FACTOR,
    RUN_TIME_SLACK,
    RURAL_SEGMENT_M,
    RURAL_SPEED_MPS,
    SPEED_SIGMA,
    TERMINUS_STAND_MAX_MS,
    TERMINUS_STAND_MIN_MS,
    TRAFFIC_LIGHT_MAX_MS,
    TRAFFIC_LIGHT_MIN_MS,
    TRAFFIC_LIGHT_PROB_URBAN,
    URBAN_SPEED_MPS,
)
from simulator.network import Line, Network, project_m, stop_distance_m

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class StopCall:
    """A journey's call at a stop (epoch ms).

    Served: ``arrival ≤ doors_open < doors_closed ≤ departure``. Run through (nobody got
    on or off at a request stop): ``doors_open_ms`` and ``doors_closed_ms`` are ``None``.
    """

    stop_id: str
    arrival_ms: int
    doors_open_ms: int | None
    doors_closed_ms: int | None
    departure_ms: int

    @property
    def served(self) -> bool:
        """Whether the doors opened at this call."""
        return self.doors_open_ms is not None

    @property
    def doors(self) -> tuple[int, int]:
        """(doors open, doors closed) in epoch ms; ValueError for a run-through call."""
        if self.doors_open_ms is None or self.doors_closed_ms is None:
            raise ValueError(f"call at {self.stop_id} was run through: no doors")
        return self.doors_open_ms, self.doors_closed_ms


@dataclass(frozen=True, slots=True)
class Segment:
    """Running between two calls: road length (m) and an optional red light.

    With a light the bus stands from ``light_stop_ms`` to ``light_go_ms`` at the fraction
    ``light_at`` (0..1) of the way.
    """

    road_m: float
    light_at: float = 0.0
    light_stop_ms: int | None = None
    light_go_ms: int | None = None


@dataclass(frozen=True, slots=True)
class Journey:
    """One trip of a vehicle from one terminus to the other.

    ``journey_id`` is ``<line>-<HHMM of the scheduled departure, local>-<direction>``, with a
    ``-V<n>`` suffix for a reinforcement bus following journey ``leader``. ``segments[k]``
    runs from ``calls[k]`` to ``calls[k+1]``.
    """

    journey_id: str
    line: str
    direction: int
    vehicle_id: str
    scheduled_departure_ms: int
    calls: tuple[StopCall, ...]
    segments: tuple[Segment, ...]
    leader: str | None = None

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
    """What to operate: service hours (local), the fleet and its disturbances.

    ``lines`` restricts service to those line ids (default: all). ``headway_min`` fixes the
    headway per direction in minutes, otherwise each line gets the shortest clock-face
    headway its buses can keep. ``convoys`` is the number of reinforcement buses, each
    following one regular peak journey closely. ``incident_prob`` is per journey.
    """

    service_start: dt.time = DEFAULT_SERVICE_START
    service_end: dt.time = DEFAULT_SERVICE_END
    headway_min: int | None = None
    lines: tuple[str, ...] | None = None
    convoys: int = 0
    incident_prob: float = INCIDENT_PROB


def local_to_epoch_ms(day: dt.date, t: dt.time) -> int:
    """Epoch ms of local (Europe/Berlin) wall time ``t`` on ``day``."""
    return int(dt.datetime.combine(day, t, tzinfo=LOCAL_TZ).timestamp() * 1000)


def local_hhmm(epoch_ms: int) -> str:
    """``HHMM`` of an epoch ms instant in local time."""
    return dt.datetime.fromtimestamp(epoch_ms / 1000, tz=LOCAL_TZ).strftime("%H%M")


def local_minutes(epoch_ms: int, midnight_ms: int) -> float:
    """Minutes after local midnight (``midnight_ms``) of an instant; DST days are off by
    up to an hour after 02:00, which the traffic model tolerates."""
    return (epoch_ms - midnight_ms) / 60_000


def segment_lengths_m(network: Network, line: Line) -> list[float]:
    """Road length (m) of each segment of ``line`` in direction 0."""
    stops = [network.stop(s) for s in line.stops]
    return [stop_distance_m(a, b) * ROAD_FACTOR for a, b in itertools.pairwise(stops)]


def urban_share(road_m: float) -> float:
    """How much of a segment runs in town (1 for short hops, 0 from RURAL_SEGMENT_M)."""
    return 1.0 - min(1.0, road_m / RURAL_SEGMENT_M)


def nominal_speed_mps(road_m: float) -> float:
    """Mean running speed (m/s) of a segment off-peak: blends town and overland speed."""
    return RURAL_SPEED_MPS + (URBAN_SPEED_MPS - RURAL_SPEED_MPS) * urban_share(road_m)


def peak_intensity(minutes: float) -> float:
    """Rush-hour intensity 0..1 at a local time of day (minutes after midnight)."""
    return max(
        math.exp(-0.5 * ((minutes - m) / PEAK_WIDTH_MIN) ** 2)
        for m in (PEAK_MORNING_MIN, PEAK_AFTERNOON_MIN)
    )


def traffic_factor(road_m: float, minutes: float) -> float:
    """Share of the off-peak speed a bus reaches on this segment at this time of day."""
    share = urban_share(road_m)
    slowdown = PEAK_SLOWDOWN_RURAL + (PEAK_SLOWDOWN_URBAN - PEAK_SLOWDOWN_RURAL) * share
    return 1.0 - slowdown * peak_intensity(minutes)


def nominal_run_ms(network: Network, line: Line) -> int:
    """Nominal one-way time (ms) of a line: off-peak running plus mean dwells and stand."""
    running = sum(d / nominal_speed_mps(d) for d in segment_lengths_m(network, line)) * 1000
    dwells = len(line.stops) * (DWELL_MIN_MS + DWELL_MAX_MS) / 2
    hubs = sum(1 for s in line.stops[1:-1] if network.is_hub(s))
    hub_extra = hubs * (
        (HUB_DWELL_MIN_MS + HUB_DWELL_MAX_MS) / 2 - (DWELL_MIN_MS + DWELL_MAX_MS) / 2
    )
    stand = (TERMINUS_STAND_MIN_MS + TERMINUS_STAND_MAX_MS) / 2
    return int(running + dwells + hub_extra + stand)


def buses_per_line(
    network: Network, buses: int, lines: Sequence[str] | None = None
) -> dict[str, int]:
    """Share ``buses`` among ``lines`` (default all, in file order).

    With fewer buses than lines the first lines get one each; otherwise every line gets
    one and the rest go in proportion to the line's round-trip time (largest remainder),
    so long lines are not served less often than short ones.
    """
    if buses < 0:
        raise ValueError(f"buses: expected >= 0, got {buses}")
    ids = list(lines) if lines is not None else [ln.line for ln in network.lines]
    counts = dict.fromkeys(ids, 0)
    if buses <= len(ids):
        for ln in ids[:buses]:
            counts[ln] = 1
        return counts
    weights = np.array([nominal_run_ms(network, network.line(ln)) for ln in ids], dtype=float)
    extra = buses - len(ids)
    raw = weights / weights.sum() * extra
    base = np.floor(raw).astype(int)
    order = np.argsort(-(raw - base), kind="stable")
    for k in order[: extra - int(base.sum())]:
        base[k] += 1
    for ln, b in zip(ids, base, strict=True):
        counts[ln] = 1 + int(b)
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


def _int(rng: np.random.Generator, lo: int, hi: int) -> int:
    return int(rng.integers(lo, hi + 1))


def _doors(rng: np.random.Generator, arrival: int, departure: int) -> tuple[int, int]:
    """Door open/close instants inside [arrival, departure], open strictly before close."""
    span = departure - arrival
    open_delay = min(_int(rng, DOOR_DELAY_MIN_MS, DOOR_DELAY_MAX_MS), span // 3)
    close_lead = min(_int(rng, DOOR_DELAY_MIN_MS, DOOR_DELAY_MAX_MS), span // 3)
    return arrival + max(1, open_delay), departure - max(1, close_lead)


@dataclass(frozen=True, slots=True)
class _RunContext:
    network: Network
    midnight_ms: int
    incident_prob: float


def _run_journey(
    rng: np.random.Generator,
    ctx: _RunContext,
    line: Line,
    direction: int,
    vehicle_id: str,
    scheduled_departure_ms: int,
    earliest_arrival_ms: int,
) -> Journey:
    network = ctx.network
    stop_ids = line.stops if direction == 0 else tuple(reversed(line.stops))
    lengths = segment_lengths_m(network, line)
    if direction == 1:
        lengths = lengths[::-1]
    stand = _int(rng, TERMINUS_STAND_MIN_MS, TERMINUS_STAND_MAX_MS)
    arrival = max(scheduled_departure_ms - stand, earliest_arrival_ms)
    departure = max(arrival + DWELL_MIN_MS, scheduled_departure_ms)
    calls = [StopCall(stop_ids[0], arrival, *_doors(rng, arrival, departure), departure)]
    segments: list[Segment] = []
    incident_at = int(rng.integers(len(lengths))) if rng.random() < ctx.incident_prob else -1
    scheduled = scheduled_departure_ms
    for k, road in enumerate(lengths):
        minutes = local_minutes(departure, ctx.midnight_ms)
        speed = nominal_speed_mps(road) * traffic_factor(road, minutes)
        speed *= float(rng.lognormal(0.0, SPEED_SIGMA))
        run = round(road / speed * 1000)
        scheduled += round(road / nominal_speed_mps(road) * 1000)
        if k == incident_at:
            run += _int(rng, INCIDENT_MIN_MS, INCIDENT_MAX_MS)
        seg = Segment(road)
        if rng.random() < TRAFFIC_LIGHT_PROB_URBAN * urban_share(road):
            at = float(rng.uniform(0.3, 0.9))
            wait = _int(rng, TRAFFIC_LIGHT_MIN_MS, TRAFFIC_LIGHT_MAX_MS)
            stop_ms = departure + round(run * at)
            seg = Segment(road, at, stop_ms, stop_ms + wait)
            run += wait
        segments.append(seg)
        arrival = departure + run
        last = k + 1 == len(lengths)
        hub = network.is_hub(stop_ids[k + 1]) and not last
        lo, hi = (HUB_DWELL_MIN_MS, HUB_DWELL_MAX_MS) if hub else (DWELL_MIN_MS, DWELL_MAX_MS)
        dwell = _int(rng, lo, hi)
        scheduled += (lo + hi) // 2
        departure = arrival + dwell
        if hub:
            # A timing point: an early bus waits for its scheduled time.
            departure = max(departure, scheduled)
        calls.append(
            StopCall(stop_ids[k + 1], arrival, *_doors(rng, arrival, departure), departure)
        )
    return Journey(
        journey_id=f"{line.line}-{local_hhmm(scheduled_departure_ms)}-{direction}",
        line=line.line,
        direction=direction,
        vehicle_id=vehicle_id,
        scheduled_departure_ms=scheduled_departure_ms,
        calls=tuple(calls),
        segments=tuple(segments),
    )


def _follow(rng: np.random.Generator, leader: Journey, vehicle_id: str, n: int) -> Journey:
    """A reinforcement journey a few seconds behind ``leader`` through every stop."""
    calls: list[StopCall] = []
    segments: list[Segment] = []
    gap = float(rng.uniform(CONVOY_GAP_MIN_S, CONVOY_GAP_MAX_S))
    prev_departure = -1
    for k, c in enumerate(leader.calls):
        gap = float(np.clip(gap + rng.normal(0.0, 3.0), CONVOY_GAP_MIN_S, CONVOY_GAP_MAX_S))
        g = round(gap * 1000)
        arrival = max(c.arrival_ms + g, prev_departure + 1000)
        departure = max(c.departure_ms + g // 2, arrival + DWELL_MIN_MS // 2)
        calls.append(StopCall(c.stop_id, arrival, *_doors(rng, arrival, departure), departure))
        prev_departure = departure
        if k < len(leader.segments):
            s = leader.segments[k]
            if s.light_stop_ms is not None and s.light_go_ms is not None:
                stop_ms = max(s.light_stop_ms + g, departure + 1)
                s = Segment(s.road_m, s.light_at, stop_ms, max(stop_ms + 1, s.light_go_ms + g))
            segments.append(s)
    # Keep segment lights inside their segment after the shifts.
    fixed: list[Segment] = []
    for k, s in enumerate(segments):
        if s.light_stop_ms is not None and s.light_go_ms is not None:
            lo, hi = calls[k].departure_ms, calls[k + 1].arrival_ms
            if not lo < s.light_stop_ms < s.light_go_ms < hi:
                s = Segment(s.road_m)
        fixed.append(s)
    return Journey(
        journey_id=f"{leader.journey_id}-V{n}",
        line=leader.line,
        direction=leader.direction,
        vehicle_id=vehicle_id,
        scheduled_departure_ms=leader.scheduled_departure_ms,
        calls=tuple(calls),
        segments=tuple(fixed),
        leader=leader.journey_id,
    )


def build_timetable(
    network: Network,
    service_day: dt.date,
    buses: int,
    rng: np.random.Generator,
    config: TimetableConfig | None = None,
) -> tuple[Vehicle, ...]:
    """Plan every served line's blocks for ``service_day`` with ``buses`` regular buses.

    Bus ``b`` of a line with ``n`` buses and headway ``h`` leaves the first terminus at
    ``start + b·h + m·n·h`` and the other terminus half a cycle later, as long as the
    scheduled departure is not after ``service_end``. Reinforcement buses come on top.
    """
    cfg = config or TimetableConfig()
    start = local_to_epoch_ms(service_day, cfg.service_start)
    end = local_to_epoch_ms(service_day, cfg.service_end)
    if end <= start:
        raise ValueError(f"service_end: {cfg.service_end} is not after {cfg.service_start}")
    midnight = local_to_epoch_ms(service_day, dt.time(0, 0))
    ctx = _RunContext(network, midnight, cfg.incident_prob)
    served = cfg.lines if cfg.lines is not None else tuple(ln.line for ln in network.lines)
    counts = buses_per_line(network, buses, served)
    vehicles: list[Vehicle] = []
    used_numbers: set[tuple[str, int]] = set()

    def fleet_numbers(operator: str, n: int) -> list[int]:
        base = int(rng.integers(FLEET_NUMBER_MIN, FLEET_NUMBER_MAX - n))
        while any((operator, base + b) in used_numbers for b in range(n)):
            base = int(rng.integers(FLEET_NUMBER_MIN, FLEET_NUMBER_MAX - n))
        used_numbers.update((operator, base + b) for b in range(n))
        return [base + b for b in range(n)]

    for line_id in served:
        line = network.line(line_id)
        n = counts[line_id]
        if n == 0:
            continue
        headway = line_headway_ms(network, line, n, cfg.headway_min)
        cycle = n * headway
        half = (cycle // 2 // 60_000) * 60_000
        for b, number in enumerate(fleet_numbers(line.operator, n)):
            vehicle_id = f"{line.operator}-{number}"
            journeys: list[Journey] = []
            earliest = 0
            dep0 = start + b * headway
            while dep0 <= end:
                for direction, sched in ((0, dep0), (1, dep0 + half)):
                    if sched > end:
                        break
                    j = _run_journey(rng, ctx, line, direction, vehicle_id, sched, earliest)
                    journeys.append(j)
                    earliest = j.end_ms + MIN_LAYOVER_MS
                dep0 += cycle
            if journeys:  # a bus whose first departure is after service_end stays home
                vehicles.append(Vehicle(vehicle_id, line.line, line.operator, tuple(journeys)))
    vehicles.extend(_convoys(rng, network, vehicles, cfg.convoys, midnight, fleet_numbers))
    return tuple(vehicles)


def _convoys(
    rng: np.random.Generator,
    network: Network,
    regular: Sequence[Vehicle],
    n: int,
    midnight_ms: int,
    fleet_numbers: Callable[[str, int], list[int]],
) -> list[Vehicle]:
    """``n`` reinforcement buses, each following a distinct regular peak journey."""
    if n <= 0:
        return []
    candidates = [
        j
        for v in regular
        for j in v.journeys
        if any(
            lo <= local_minutes(j.scheduled_departure_ms, midnight_ms) <= hi
            for lo, hi in CONVOY_PEAK_WINDOW
        )
    ]
    if not candidates:
        return []
    picks = rng.choice(len(candidates), size=min(n, len(candidates)), replace=False)
    out: list[Vehicle] = []
    for k, idx in enumerate(sorted(int(i) for i in picks)):
        leader = candidates[idx]
        operator = network.line(leader.line).operator
        (number,) = fleet_numbers(operator, 1)
        vid = f"{operator}-{number}"
        out.append(Vehicle(vid, leader.line, operator, (_follow(rng, leader, vid, k + 1),)))
    return out


def finalize_calls(
    vehicles: Sequence[Vehicle],
    used: Collection[tuple[str, int]],
    rng: np.random.Generator,
) -> tuple[Vehicle, ...]:
    """Run through unused intermediate stops (request stops) with PASS_THROUGH_PROB.

    ``used`` holds ``(journey_id, call index)`` of calls where somebody boards or alights;
    first and last calls are always served. A run-through call keeps the middle of its
    dwell: arrival and departure close in around it and the doors stay shut.
    """
    out: list[Vehicle] = []
    for v in vehicles:
        journeys: list[Journey] = []
        for j in v.journeys:
            calls = list(j.calls)
            for k in range(1, len(calls) - 1):
                if (j.journey_id, k) in used or rng.random() >= PASS_THROUGH_PROB:
                    continue
                c = calls[k]
                mid = (c.arrival_ms + c.departure_ms) // 2
                half = PASS_THROUGH_DWELL_MS // 2
                calls[k] = StopCall(c.stop_id, mid - half, None, None, mid + half)
            journeys.append(replace(j, calls=tuple(calls)))
        out.append(replace(v, journeys=tuple(journeys)))
    return tuple(out)


# --- where a bus is -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Track:
    """A vehicle's position over its service: knots (epoch ms, x m, y m), linear between.

    Before the first and after the last knot the bus is out of service (in the depot).
    """

    t: IntArray
    x: FloatArray
    y: FloatArray

    def at(self, t_ms: IntArray) -> tuple[FloatArray, FloatArray, npt.NDArray[np.bool_]]:
        """Positions at ``t_ms`` and whether the bus is in service then."""
        tf = t_ms.astype(np.float64)
        kt = self.t.astype(np.float64)
        x = np.interp(tf, kt, self.x)
        y = np.interp(tf, kt, self.y)
        active = (t_ms >= self.t[0]) & (t_ms <= self.t[-1])
        return x, y, active


def journey_knots(network: Network, journey: Journey) -> list[tuple[int, float, float]]:
    """Knots (epoch ms, x, y) of one journey, lights included."""
    pts = [
        project_m(network.stop(c.stop_id).lat, network.stop(c.stop_id).lon) for c in journey.calls
    ]
    knots: list[tuple[int, float, float]] = []
    for k, c in enumerate(journey.calls):
        x, y = pts[k]
        knots.append((c.arrival_ms, x, y))
        knots.append((c.departure_ms, x, y))
        if k < len(journey.segments):
            s = journey.segments[k]
            if s.light_stop_ms is not None and s.light_go_ms is not None:
                (x1, y1) = pts[k + 1]
                lx, ly = x + (x1 - x) * s.light_at, y + (y1 - y) * s.light_at
                knots.append((s.light_stop_ms, lx, ly))
                knots.append((s.light_go_ms, lx, ly))
    return knots


def vehicle_track(network: Network, vehicle: Vehicle) -> Track:
    """The vehicle's track over its whole block (layovers stand at the terminus)."""
    knots = [k for j in vehicle.journeys for k in journey_knots(network, j)]
    t = np.array([k[0] for k in knots], dtype=np.int64)
    order = np.argsort(t, kind="stable")
    return Track(
        t[order],
        np.array([k[1] for k in knots], dtype=np.float64)[order],
        np.array([k[2] for k in knots], dtype=np.float64)[order],
    )


def door_boundaries(vehicle: Vehicle) -> IntArray:
    """Sorted [open, closed, open, closed, …] instants (ms) of all the vehicle's served stops.

    ``np.searchsorted(b, t, side="right") % 2 == 1`` tells whether the doors are open at t.
    """
    out = [
        x
        for j in vehicle.journeys
        for c in j.calls
        if c.doors_open_ms is not None and c.doors_closed_ms is not None
        for x in (c.doors_open_ms, c.doors_closed_ms)
    ]
    return np.asarray(out, dtype=np.int64)


def doors_open_at(boundaries: IntArray, t_ms: IntArray) -> npt.NDArray[np.bool_]:
    """Whether the doors are open at each instant, from :func:`door_boundaries`."""
    return np.asarray((np.searchsorted(boundaries, t_ms, side="right") % 2) == 1, dtype=np.bool_)
