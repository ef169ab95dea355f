"""Who is near which bus when: riders' episodes and every kind of bystander.

An *episode* is a span during which one phone is near one bus's receiver, with the
geometry the radio model needs (a distance path over time, where the phone is). An
*encounter* is the truth about a non-rider being near a bus: the people the backend
must not charge for that bus.

Bystander kinds: people lingering at a stop who do not board (``stop_wait``); people at a
hub waiting for another bus (``hub_wait``, also every passenger waiting at a stop while
another bus calls); pedestrians walking past (``walk_past``); cars and cyclists alongside
at lights and in slow traffic (``alongside_car``, ``alongside_bike``); a car trailing the
bus for several stops (``trailing_car``); the riders of a second bus standing beside this
one (``bus_beside``) or of a bunched bus of the same line right behind (``bunched``).
"""

from __future__ import annotations

import bisect
import enum
import zlib
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from simulator.const import (
    ALONGSIDE_DRIFT_M,
    ALONGSIDE_LATERAL_MAX_M,
    ALONGSIDE_LATERAL_MIN_M,
    ALONGSIDE_MAX_MS,
    ALONGSIDE_MIN_MS,
    APPROACH_MS,
    BAY_SEPARATION_MAX_M,
    BAY_SEPARATION_MIN_M,
    BUS_HALF_LENGTH_M,
    BYSTANDER_EPISODES_MAX,
    DOOR_DISTANCE_M,
    HUB_WAIT_MAX_MS,
    HUB_WAIT_MIN_MS,
    LEAVE_TAIL_MS,
    PATH_SAMPLE_MS,
    PROXIMITY_M,
    PROXIMITY_MIN_MS,
    PROXIMITY_STEP_MS,
    QUEUE_SEPARATION_MAX_M,
    QUEUE_SEPARATION_MIN_M,
    STOP_WAIT_DISTANCE_MAX_M,
    STOP_WAIT_DISTANCE_MIN_M,
    STOP_WAIT_MAX_MS,
    STOP_WAIT_MIN_MS,
    TRAILING_GAP_MAX_M,
    TRAILING_GAP_MIN_M,
    TRAILING_STOPS_MAX,
    TRAILING_STOPS_MIN,
    WALK_PAST_CLOSEST_MAX_M,
    WALK_PAST_CLOSEST_MIN_M,
    WALK_PAST_HALF_MS,
    WALK_SPEED_MPS,
)
from simulator.network import Network
from simulator.population import CallRef, Person, PlannedTrip, Role, TimetableIndex
from simulator.radio import Carry, Placement
from simulator.timetable import Journey, Track, Vehicle, urban_share, vehicle_track


class EpisodeKind(enum.StrEnum):
    """Why a phone is near a vehicle."""

    WAIT_BOARD = "wait_board"
    RIDE = "ride"
    LEAVE = "leave"
    STOP_WAIT = "stop_wait"
    HUB_WAIT = "hub_wait"
    WALK_PAST = "walk_past"
    ALONGSIDE_CAR = "alongside_car"
    ALONGSIDE_BIKE = "alongside_bike"
    TRAILING_CAR = "trailing_car"
    BUS_BESIDE = "bus_beside"
    BUNCHED = "bunched"


RIDER_KINDS: frozenset[EpisodeKind] = frozenset(
    {EpisodeKind.WAIT_BOARD, EpisodeKind.RIDE, EpisodeKind.LEAVE}
)
BYSTANDER_KINDS: frozenset[EpisodeKind] = frozenset(set(EpisodeKind) - RIDER_KINDS)
"""Episode kinds of someone who is not riding the receiving vehicle."""

MOVING_KINDS: frozenset[EpisodeKind] = frozenset(
    {
        EpisodeKind.WALK_PAST,
        EpisodeKind.LEAVE,
        EpisodeKind.ALONGSIDE_CAR,
        EpisodeKind.ALONGSIDE_BIKE,
        EpisodeKind.TRAILING_CAR,
        EpisodeKind.WAIT_BOARD,
    }
)
"""Kinds whose phone moves relative to the receiver: their shadowing decorrelates fast."""


@dataclass(frozen=True, slots=True)
class Episode:
    """A span [start_ms, end_ms) during which a phone is near one vehicle's receiver.

    The distance (m) at time t is ``np.interp(t, path_t, path_d)`` (with ``offset_m``).
    ``carry`` overrides the phone's carry position (a driver's phone sits in a holder);
    ``other_vehicle_id`` is the bus the phone is in for BUS_BESIDE/BUNCHED.
    """

    person_id: str
    vehicle_id: str
    kind: EpisodeKind
    start_ms: int
    end_ms: int
    placement: Placement
    path_t: tuple[int, ...]
    path_d: tuple[float, ...]
    carry: Carry | None = None
    other_vehicle_id: str | None = None
    offset_m: float = 0.0
    """A fixed offset (m) at right angles to the path (a rider's seat in the other bus)."""

    def distance_at(self, t_ms: npt.NDArray[np.int64]) -> npt.NDArray[np.float64]:
        """Distance (m) of the phone to the receiver at ``t_ms`` (epoch ms)."""
        d = np.interp(
            t_ms.astype(np.float64),
            np.asarray(self.path_t, dtype=np.float64),
            np.asarray(self.path_d, dtype=np.float64),
        )
        return np.hypot(d, self.offset_m) if self.offset_m else d


def still(
    person_id: str,
    vehicle_id: str,
    kind: EpisodeKind,
    start: int,
    end: int,
    placement: Placement,
    distance_m: float,
) -> Episode:
    """An episode at a constant distance (m)."""
    return Episode(person_id, vehicle_id, kind, start, end, placement, (start,), (distance_m,))


@dataclass(frozen=True, slots=True)
class Encounter:
    """A non-rider near a vehicle: who, which bus and journey, near which stop, when.

    ``stop_id`` is the stop the bus stands at or last left; ``t``..``t_end`` epoch ms.
    ``journey_id`` is empty when the bus was between journeys (layover).
    """

    person_id: str
    vehicle_id: str
    journey_id: str
    stop_id: str
    t: int
    t_end: int
    kind: str


def _overlap(a0: int, a1: int, b0: int, b1: int) -> tuple[int, int] | None:
    lo, hi = max(a0, b0), min(a1, b1)
    return (lo, hi) if lo < hi else None


def _choice(rng: np.random.Generator, n: int) -> int:
    return int(rng.integers(n))


# --- riders -----------------------------------------------------------------------------


def rider_episodes(index: TimetableIndex, trip: PlannedTrip) -> list[Episode]:
    """Waiting at the door, riding, walking away: the rider's episodes on their own bus."""
    j = index.journeys[trip.journey_id]
    bc, ac = j.calls[trip.board_index], j.calls[trip.alight_index]
    pid, vid = trip.person_id, trip.vehicle_id
    eps = [
        still(
            pid,
            vid,
            EpisodeKind.RIDE,
            trip.board_time,
            trip.alight_time,
            Placement.INSIDE,
            trip.seat_distance_m,
        )
    ]
    wait = _overlap(bc.arrival_ms, trip.board_time, trip.at_stop_ms, trip.board_time)
    if wait:
        walk_from = max(wait[0], trip.board_time - APPROACH_MS)
        eps.append(
            Episode(
                pid,
                vid,
                EpisodeKind.WAIT_BOARD,
                *wait,
                Placement.OUTSIDE,
                (walk_from, trip.board_time),
                (trip.wait_distance_m, DOOR_DISTANCE_M),
            )
        )
    leave_end = min(ac.departure_ms + LEAVE_TAIL_MS, index.slot_end[j.journey_id])
    if trip.alight_time < leave_end:
        far = DOOR_DISTANCE_M + WALK_SPEED_MPS * (leave_end - trip.alight_time) / 1000
        eps.append(
            Episode(
                pid,
                vid,
                EpisodeKind.LEAVE,
                trip.alight_time,
                leave_end,
                Placement.OUTSIDE,
                (trip.alight_time, leave_end),
                (DOOR_DISTANCE_M, far),
            )
        )
    return eps


def _at_stop(
    index: TimetableIndex,
    person_id: str,
    stop_id: str,
    start: int,
    end: int,
    distance_m: float,
    kind: EpisodeKind,
    skip_journey: str | None,
) -> tuple[list[Episode], list[Encounter]]:
    """Someone standing at ``stop_id`` during [start, end): an episode per bus calling."""
    eps: list[Episode] = []
    encs: list[Encounter] = []
    for ref in index.calls_at(stop_id, start, end):
        c = ref.call
        if ref.journey.journey_id == skip_journey:
            continue
        span = _overlap(start, end, c.arrival_ms, c.departure_ms)
        if span is None:
            continue
        eps.append(still(person_id, ref.vehicle_id, kind, *span, Placement.OUTSIDE, distance_m))
        encs.append(
            Encounter(person_id, ref.vehicle_id, ref.journey.journey_id, stop_id, *span, kind.value)
        )
    return eps, encs


def waiting_passengers(
    index: TimetableIndex, network: Network, trips: Sequence[PlannedTrip]
) -> tuple[list[Episode], list[Encounter]]:
    """Passengers waiting for their bus while other buses call (at hubs: transfers)."""
    eps: list[Episode] = []
    encs: list[Encounter] = []
    for trip in trips:
        kind = EpisodeKind.HUB_WAIT if network.is_hub(trip.board_stop_id) else EpisodeKind.STOP_WAIT
        e, n = _at_stop(
            index,
            trip.person_id,
            trip.board_stop_id,
            trip.at_stop_ms,
            trip.board_time,
            trip.wait_distance_m,
            kind,
            trip.journey_id,
        )
        eps.extend(e)
        encs.extend(n)
    return eps, encs


# --- bystanders ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _World:
    network: Network
    index: TimetableIndex
    hub_calls: Sequence[CallRef]


def _stand_intervals(journey: Journey) -> list[tuple[int, int]]:
    """When the bus stands still during a journey: stops and red lights (epoch ms)."""
    out = [(c.arrival_ms, c.departure_ms) for c in journey.calls]
    for s in journey.segments:
        if s.light_stop_ms is not None and s.light_go_ms is not None:
            out.append((s.light_stop_ms, s.light_go_ms))
    return sorted(out)


def _standing(
    intervals: Sequence[tuple[int, int]], t: npt.NDArray[np.int64]
) -> npt.NDArray[np.bool_]:
    starts = np.array([a for a, _ in intervals], dtype=np.int64)
    ends = np.array([b for _, b in intervals], dtype=np.int64)
    k = np.searchsorted(starts, t, side="right") - 1
    ok = k >= 0
    return np.asarray(ok & (t < ends[np.clip(k, 0, None)]), dtype=np.bool_)


def _grid(start: int, end: int, step: int = PATH_SAMPLE_MS) -> npt.NDArray[np.int64]:
    t = np.arange(start, end, step, dtype=np.int64)
    return np.append(t, end) if t.size == 0 or t[-1] != end else t


def _stop_wait(
    rng: np.random.Generator, w: _World, person: Person, hub: bool
) -> tuple[list[Episode], list[Encounter]]:
    calls = w.hub_calls if hub and w.hub_calls else w.index.all_calls
    ref = calls[_choice(rng, len(calls))]
    lo, hi = (HUB_WAIT_MIN_MS, HUB_WAIT_MAX_MS) if hub else (STOP_WAIT_MIN_MS, STOP_WAIT_MAX_MS)
    dur = int(rng.integers(lo, hi))
    start = ref.call.arrival_ms - int(rng.integers(0, dur))
    dist = float(rng.uniform(STOP_WAIT_DISTANCE_MIN_M, STOP_WAIT_DISTANCE_MAX_M))
    kind = EpisodeKind.HUB_WAIT if hub else EpisodeKind.STOP_WAIT
    return _at_stop(
        w.index, person.person_id, ref.call.stop_id, start, start + dur, dist, kind, None
    )


def _served_call(rng: np.random.Generator, w: _World) -> CallRef:
    calls = w.index.all_calls
    for _ in range(20):
        ref = calls[_choice(rng, len(calls))]
        if ref.call.served:
            return ref
    return ref


def _walk_past(
    rng: np.random.Generator, w: _World, person: Person
) -> tuple[list[Episode], list[Encounter]]:
    ref = _served_call(rng, w)
    c, j = ref.call, ref.journey
    tc = int(rng.integers(c.arrival_ms, c.departure_ms))
    start = max(tc - WALK_PAST_HALF_MS, j.start_ms)
    end = min(tc + WALK_PAST_HALF_MS, w.index.slot_end[j.journey_id])
    closest = float(rng.uniform(WALK_PAST_CLOSEST_MIN_M, WALK_PAST_CLOSEST_MAX_M))
    t = _grid(start, end)
    d = np.hypot(closest, WALK_SPEED_MPS * (t - tc) / 1000)
    ep = Episode(
        person.person_id,
        ref.vehicle_id,
        EpisodeKind.WALK_PAST,
        start,
        end,
        Placement.OUTSIDE,
        tuple(t.tolist()),
        tuple(np.round(d, 2).tolist()),
    )
    enc = Encounter(
        person.person_id,
        ref.vehicle_id,
        j.journey_id,
        c.stop_id,
        start,
        end,
        EpisodeKind.WALK_PAST.value,
    )
    return [ep], [enc]


def _town_segment(rng: np.random.Generator, w: _World) -> tuple[CallRef, int] | None:
    """A segment (call ref, segment index) in town, preferring ones with a red light."""
    calls = w.index.all_calls
    best: tuple[CallRef, int] | None = None
    for _ in range(30):
        ref = calls[_choice(rng, len(calls))]
        k = ref.index
        if k >= len(ref.journey.segments):
            continue
        seg = ref.journey.segments[k]
        if urban_share(seg.road_m) < 0.3:
            continue
        best = (ref, k)
        if seg.light_stop_ms is not None:
            return best
    return best


def _alongside(
    rng: np.random.Generator, w: _World, person: Person, bike: bool
) -> tuple[list[Episode], list[Encounter]]:
    found = _town_segment(rng, w)
    if found is None:
        return [], []
    ref, k = found
    j = ref.journey
    seg = j.segments[k]
    seg0, seg1 = j.calls[k].departure_ms, j.calls[k + 1].arrival_ms
    dur = min(int(rng.integers(ALONGSIDE_MIN_MS, ALONGSIDE_MAX_MS)), seg1 - seg0)
    if seg.light_stop_ms is not None and seg.light_go_ms is not None:
        centre = (seg.light_stop_ms + seg.light_go_ms) // 2
        start = int(np.clip(centre - dur // 2, seg0, max(seg0, seg1 - dur)))
    else:
        start = int(rng.integers(seg0, max(seg0 + 1, seg1 - dur)))
    end = start + dur
    lateral = float(rng.uniform(ALONGSIDE_LATERAL_MIN_M, ALONGSIDE_LATERAL_MAX_M))
    along0 = float(rng.uniform(-ALONGSIDE_DRIFT_M, ALONGSIDE_DRIFT_M))
    along1 = float(rng.uniform(-ALONGSIDE_DRIFT_M, ALONGSIDE_DRIFT_M))
    t = _grid(start, end)
    f = (t - start) / max(1, end - start)
    d = np.hypot(lateral, along0 + (along1 - along0) * f)
    kind = EpisodeKind.ALONGSIDE_BIKE if bike else EpisodeKind.ALONGSIDE_CAR
    ep = Episode(
        person.person_id,
        ref.vehicle_id,
        kind,
        start,
        end,
        Placement.OUTSIDE if bike else Placement.IN_CAR,
        tuple(t.tolist()),
        tuple(np.round(d, 2).tolist()),
        carry=None if bike else Carry.HOLDER,
    )
    enc = Encounter(
        person.person_id, ref.vehicle_id, j.journey_id, j.calls[k].stop_id, start, end, kind.value
    )
    return [ep], [enc]


def _trailing(
    rng: np.random.Generator, w: _World, person: Person
) -> tuple[list[Episode], list[Encounter]]:
    calls = w.index.all_calls
    ref = calls[_choice(rng, len(calls))]
    j = ref.journey
    n = int(rng.integers(TRAILING_STOPS_MIN, TRAILING_STOPS_MAX + 1))
    k0 = min(ref.index, max(0, len(j.calls) - 2))
    k1 = min(len(j.calls) - 1, k0 + n)
    start, end = j.calls[k0].departure_ms, j.calls[k1].arrival_ms
    if end <= start:
        return [], []
    t = _grid(start, end)
    standing = _standing(_stand_intervals(j), t)
    steps = rng.normal(0.0, 2.0, size=t.size).cumsum()
    gap = np.clip(
        float(rng.uniform(TRAILING_GAP_MIN_M, TRAILING_GAP_MAX_M)) + steps,
        TRAILING_GAP_MIN_M,
        TRAILING_GAP_MAX_M,
    )
    gap = np.where(standing, TRAILING_GAP_MIN_M + 0.2 * (gap - TRAILING_GAP_MIN_M), gap)
    d = BUS_HALF_LENGTH_M + gap
    ep = Episode(
        person.person_id,
        ref.vehicle_id,
        EpisodeKind.TRAILING_CAR,
        start,
        end,
        Placement.IN_CAR,
        tuple(t.tolist()),
        tuple(np.round(d, 2).tolist()),
        carry=Carry.HOLDER,
    )
    enc = Encounter(
        person.person_id,
        ref.vehicle_id,
        j.journey_id,
        j.calls[k0].stop_id,
        start,
        end,
        EpisodeKind.TRAILING_CAR.value,
    )
    return [ep], [enc]


_BystanderPlanner = Callable[
    [np.random.Generator, _World, Person], tuple[list[Episode], list[Encounter]]
]

_PLANNERS: Mapping[str, _BystanderPlanner] = {
    "stop_wait": lambda r, w, p: _stop_wait(r, w, p, hub=False),
    "hub_wait": lambda r, w, p: _stop_wait(r, w, p, hub=True),
    "walk_past": _walk_past,
    "alongside_car": lambda r, w, p: _alongside(r, w, p, bike=False),
    "alongside_bike": lambda r, w, p: _alongside(r, w, p, bike=True),
    "trailing_car": _trailing,
}
BYSTANDER_PERSON_KINDS: frozenset[str] = frozenset(_PLANNERS)
"""Kinds a bystander person can have (the bus-to-bus kinds come from riders)."""


# --- bus next to bus ----------------------------------------------------------------------


def _runs(mask: npt.NDArray[np.bool_]) -> list[tuple[int, int]]:
    """[first, last] index runs of True."""
    if not mask.any():
        return []
    idx = np.flatnonzero(mask)
    breaks = np.flatnonzero(np.diff(idx) > 1)
    starts = np.concatenate([[idx[0]], idx[breaks + 1]])
    ends = np.concatenate([idx[breaks], [idx[-1]]])
    return list(zip(starts.tolist(), ends.tolist(), strict=True))


def _journey_at(vehicle: Vehicle, t: int) -> Journey | None:
    for j in vehicle.journeys:
        if j.start_ms <= t <= j.end_ms:
            return j
    return None


def _stop_near(journey: Journey | None, t: int) -> str:
    if journey is None:
        return ""
    last = journey.calls[0].stop_id
    for c in journey.calls:
        if c.arrival_ms > t:
            break
        last = c.stop_id
    return last


class _Rides:
    """The rides on each vehicle, searchable by time."""

    def __init__(self, trips: Sequence[PlannedTrip]) -> None:
        by: dict[str, list[PlannedTrip]] = defaultdict(list)
        for t in trips:
            by[t.vehicle_id].append(t)
        self._by = {k: sorted(v, key=lambda t: t.board_time) for k, v in by.items()}
        self._boards = {k: [t.board_time for t in v] for k, v in self._by.items()}
        self._longest = max((t.alight_time - t.board_time for t in trips), default=0)

    def during(self, vehicle_id: str, start: int, end: int) -> list[PlannedTrip]:
        """Rides on the vehicle overlapping [start, end)."""
        boards = self._boards.get(vehicle_id, [])
        lo = bisect.bisect_left(boards, start - self._longest)
        hi = bisect.bisect_left(boards, end)
        return [t for t in self._by[vehicle_id][lo:hi] if t.alight_time > start] if boards else []


_COARSE_MS = 10_000
"""Coarse step (ms) of the bus-to-bus pre-filter."""

_COARSE_SLACK_M = 2 * 20.0 * _COARSE_MS / 1000
"""Two buses at most 20 m/s each can close this much (m) between coarse samples."""


def _close_pairs(
    tracks: Mapping[str, Track], vids: Sequence[str], lo: int, hi: int
) -> dict[tuple[int, int], npt.NDArray[np.int64]]:
    """Coarse steps at which two buses may be within PROXIMITY_M: {(i, j): steps}.

    One k-d tree per coarse step over the buses in service then; the pairs of all steps
    are grouped with numpy.
    """
    from scipy.spatial import cKDTree

    grid = np.arange(lo, hi + 1, _COARSE_MS, dtype=np.int64)
    xs = np.empty((len(vids), grid.size))
    ys = np.empty((len(vids), grid.size))
    active = np.empty((len(vids), grid.size), dtype=bool)
    for i, vid in enumerate(vids):
        tr = tracks[vid]
        xs[i], ys[i], active[i] = tr.at(grid)
        # A bus is close to its service span a little before and after it, too.
        active[i] |= (grid + _COARSE_MS >= tr.t[0]) & (grid - _COARSE_MS <= tr.t[-1])
    found: list[npt.NDArray[np.int64]] = []
    for k in range(grid.size):
        idx = np.flatnonzero(active[:, k])
        if idx.size < 2:
            continue
        tree = cKDTree(np.column_stack([xs[idx, k], ys[idx, k]]))
        ab = tree.query_pairs(PROXIMITY_M + _COARSE_SLACK_M, output_type="ndarray")
        if ab.size:
            i, j = idx[ab[:, 0]], idx[ab[:, 1]]
            found.append(np.stack([np.minimum(i, j), np.maximum(i, j), np.full(i.size, k)], 1))
    if not found:
        return {}
    allp = np.concatenate(found)
    allp = allp[np.lexsort((allp[:, 2], allp[:, 1], allp[:, 0]))]
    key = allp[:, 0] * len(vids) + allp[:, 1]
    cut = np.flatnonzero(np.diff(key)) + 1
    return {(int(g[0, 0]), int(g[0, 1])): g[:, 2].astype(np.int64) for g in np.split(allp, cut)}


def bus_to_bus(
    network: Network,
    vehicles: Sequence[Vehicle],
    trips: Sequence[PlannedTrip],
) -> tuple[list[Episode], list[Encounter]]:
    """Riders of one bus heard by another bus within PROXIMITY_M (beside at a hub, bunched).

    Positions come from the vehicles' tracks: a coarse one-minute scan finds the minutes
    two buses may be close, a PROXIMITY_STEP_MS scan inside them the exact spans. Two
    buses never share a spot, so their distance has a floor: a bay or queueing separation
    per pair.
    """
    if not vehicles:
        return [], []
    tracks = {v.vehicle_id: vehicle_track(network, v) for v in vehicles}
    vids = [v.vehicle_id for v in vehicles]
    day_lo = min(int(t.t[0]) for t in tracks.values()) // _COARSE_MS * _COARSE_MS
    day_hi = max(int(t.t[-1]) for t in tracks.values())
    rides = _Rides(trips)
    leaders = {j.journey_id: j.leader for v in vehicles for j in v.journeys if j.leader}
    eps: list[Episode] = []
    encs: list[Encounter] = []
    for (i, j), steps in sorted(_close_pairs(tracks, vids, day_lo, day_hi).items()):
        a, b = vehicles[i], vehicles[j]
        ta, tb = tracks[a.vehicle_id], tracks[b.vehicle_id]
        lo, hi = max(int(ta.t[0]), int(tb.t[0])), min(int(ta.t[-1]), int(tb.t[-1]))
        if hi <= lo:
            continue
        queue = _convoy(a, b, leaders)
        sep = _separation(a.vehicle_id, b.vehicle_id, queue)
        close = np.zeros(int(steps[-1]) + 1, dtype=bool)
        close[steps] = True
        for c0, c1 in _runs(close):
            f_lo = max(lo, day_lo + c0 * _COARSE_MS - _COARSE_MS)
            f_hi = min(hi, day_lo + c1 * _COARSE_MS + _COARSE_MS)
            if f_hi <= f_lo:
                continue
            grid = np.arange(f_lo, f_hi + 1, PROXIMITY_STEP_MS, dtype=np.int64)
            xa, ya, _ = ta.at(grid)
            xb, yb, _ = tb.at(grid)
            d = np.hypot(np.hypot(xa - xb, ya - yb), sep)
            for i0, i1 in _runs(d < PROXIMITY_M):
                if (i1 - i0) * PROXIMITY_STEP_MS < PROXIMITY_MIN_MS:
                    continue
                _pair_episodes(a, b, grid[i0 : i1 + 1], d[i0 : i1 + 1], rides, leaders, eps, encs)
    return eps, encs


def _convoy(a: Vehicle, b: Vehicle, leaders: Mapping[str, str | None]) -> bool:
    """Whether one of the two buses is a reinforcement bus following the other."""
    ja = {j.journey_id for j in a.journeys}
    jb = {j.journey_id for j in b.journeys}
    return any(leaders.get(x) in jb for x in ja) or any(leaders.get(x) in ja for x in jb)


def _separation(a: str, b: str, queue: bool) -> float:
    """The floor (m) of two buses' distance, fixed per pair: queued one behind the other
    (a convoy) or somewhere in the bays of a stop."""
    h = zlib.crc32(f"{min(a, b)}|{max(a, b)}".encode()) / 0xFFFFFFFF
    lo, hi = (
        (QUEUE_SEPARATION_MIN_M, QUEUE_SEPARATION_MAX_M)
        if queue
        else (BAY_SEPARATION_MIN_M, BAY_SEPARATION_MAX_M)
    )
    return lo + (hi - lo) * h


def _pair_episodes(
    a: Vehicle,
    b: Vehicle,
    path_t: npt.NDArray[np.int64],
    path_d: npt.NDArray[np.float64],
    rides: _Rides,
    leaders: Mapping[str, str | None],
    eps: list[Episode],
    encs: list[Encounter],
) -> None:
    """Episodes and encounters of both buses' riders while the two are close."""
    t0, t1 = int(path_t[0]), int(path_t[-1]) + PROXIMITY_STEP_MS
    times = tuple(path_t.tolist())
    dists = tuple(np.round(path_d, 2).tolist())
    for src, dst in ((b, a), (a, b)):
        dst_j = _journey_at(dst, t0)
        src_j = _journey_at(src, t0)
        bunched = (
            src.line == dst.line
            and src_j is not None
            and dst_j is not None
            and src_j.direction == dst_j.direction
            and (
                leaders.get(src_j.journey_id) == dst_j.journey_id
                or leaders.get(dst_j.journey_id) == src_j.journey_id
            )
        )
        kind = EpisodeKind.BUNCHED if bunched else EpisodeKind.BUS_BESIDE
        for trip in rides.during(src.vehicle_id, t0, t1):
            span = _overlap(t0, t1, trip.board_time, trip.alight_time)
            if span is None:
                continue
            eps.append(
                Episode(
                    trip.person_id,
                    dst.vehicle_id,
                    kind,
                    span[0],
                    span[1],
                    Placement.OTHER_BUS,
                    times,
                    dists,
                    other_vehicle_id=src.vehicle_id,
                    offset_m=trip.seat_distance_m,
                )
            )
            encs.append(
                Encounter(
                    trip.person_id,
                    dst.vehicle_id,
                    dst_j.journey_id if dst_j else "",
                    _stop_near(dst_j, span[0]) or _stop_near(src_j, span[0]),
                    span[0],
                    span[1],
                    kind.value,
                )
            )


def plan_episodes(
    rng: np.random.Generator,
    network: Network,
    vehicles: Sequence[Vehicle],
    persons: Sequence[Person],
    trips: Sequence[PlannedTrip],
) -> tuple[dict[str, tuple[Episode, ...]], tuple[Encounter, ...]]:
    """Every phone-near-vehicle episode (by vehicle id, sorted by start) and the encounters."""
    index = TimetableIndex(vehicles)
    hub_calls = [r for r in index.all_calls if network.is_hub(r.call.stop_id)]
    world = _World(network, index, hub_calls)
    episodes: list[Episode] = []
    encounters: list[Encounter] = []
    for trip in trips:
        episodes.extend(rider_episodes(index, trip))
    e, n = waiting_passengers(index, network, trips)
    episodes.extend(e)
    encounters.extend(n)
    if index.all_calls:
        for person in persons:
            if person.role is not Role.BYSTANDER or person.bystander_kind is None:
                continue
            planner = _PLANNERS[person.bystander_kind]
            for _ in range(int(rng.integers(1, BYSTANDER_EPISODES_MAX + 1))):
                e, n = planner(rng, world, person)
                episodes.extend(e)
                encounters.extend(n)
    e, n = bus_to_bus(network, vehicles, trips)
    episodes.extend(e)
    encounters.extend(n)

    by_vehicle: dict[str, list[Episode]] = {v.vehicle_id: [] for v in vehicles}
    for ep in episodes:
        if ep.start_ms < ep.end_ms:
            by_vehicle[ep.vehicle_id].append(ep)
    encounters.sort(key=lambda x: (x.t, x.vehicle_id, x.person_id, x.kind))
    return (
        {
            vid: tuple(sorted(eps, key=lambda x: (x.start_ms, x.person_id, x.kind)))
            for vid, eps in by_vehicle.items()
        },
        tuple(encounters),
    )
