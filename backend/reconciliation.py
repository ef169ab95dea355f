"""Trip reconstruction from vehicle events and resolved sightings: pure functions, no I/O.

First version (DESIGN §5 describes where it goes next): a device is on board for the stretch
between two stops when it is heard in enough of that stretch's windows while the bus moves.
People at a stop are heard only while the bus dwells, so they never ride a stretch.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from backend.const import MAX_SEGMENT_GAP, MIN_SEGMENT_PRESENCE


@dataclass(frozen=True, slots=True)
class EventRecord:
    """A stored vehicle event (the wire event flattened); ``t`` in UTC epoch ms."""

    t: int
    type: str
    stop_id: str | None = None
    line: str | None = None
    journey_id: str | None = None
    direction: int | None = None


@dataclass(frozen=True, slots=True)
class StopVisit:
    stop_id: str
    arrival: int
    departure: int


@dataclass(frozen=True, slots=True)
class Journey:
    vehicle_id: str
    journey_id: str
    line: str
    direction: int
    visits: tuple[StopVisit, ...]


@dataclass(frozen=True, slots=True)
class VehicleObservations:
    """One vehicle's resolved sightings, sorted by time: window start (ms) and device index."""

    vehicle_id: str
    t: npt.NDArray[np.int64]
    device: npt.NDArray[np.int32]
    window_ms: int


@dataclass(frozen=True, slots=True)
class DetectedTrip:
    trip_id: str
    device_id: str
    vehicle_id: str
    journey_id: str
    line: str
    board_stop_id: str
    board_time: int
    alight_stop_id: str
    alight_time: int
    confidence: float


def journeys_from_events(vehicle_id: str, events: Iterable[EventRecord]) -> list[Journey]:
    """Cut a vehicle's event stream into journeys with their stop visits.

    A ``journey`` event starts a journey; an ``arrival`` opens a stop visit and the matching
    ``departure`` closes it. A visit never departed (the terminus) ends at its arrival.
    """
    journeys: list[Journey] = []
    current: EventRecord | None = None
    visits: list[StopVisit] = []
    open_stop: tuple[str, int] | None = None

    def close() -> None:
        nonlocal open_stop
        if open_stop is not None:
            visits.append(StopVisit(open_stop[0], open_stop[1], open_stop[1]))
            open_stop = None
        if current is not None and len(visits) >= 2:
            journeys.append(
                Journey(
                    vehicle_id=vehicle_id,
                    journey_id=current.journey_id or "",
                    line=current.line or "",
                    direction=current.direction or 0,
                    visits=tuple(visits),
                )
            )
        visits.clear()

    for event in sorted(events, key=lambda e: e.t):
        if event.type == "journey":
            close()
            current = event
        elif current is None or event.stop_id is None:
            continue
        elif event.type == "arrival":
            if open_stop is not None:
                visits.append(StopVisit(open_stop[0], open_stop[1], open_stop[1]))
            open_stop = (event.stop_id, event.t)
        elif event.type == "departure":
            if open_stop is not None and open_stop[0] == event.stop_id:
                visits.append(StopVisit(event.stop_id, open_stop[1], event.t))
            else:
                visits.append(StopVisit(event.stop_id, event.t, event.t))
            open_stop = None
    close()
    return journeys


def segment_presence(
    journey: Journey, obs: VehicleObservations, n_devices: int
) -> npt.NDArray[np.float64]:
    """Share of each between-stops segment's windows in which each device was heard.

    Shape ``(n_devices, n_segments)``; segment k runs from the departure at visit k to the
    arrival at visit k+1.
    """
    starts = np.array([v.departure for v in journey.visits[:-1]], dtype=np.int64)
    ends = np.array([v.arrival for v in journey.visits[1:]], dtype=np.int64)
    n_windows = np.maximum(1, np.ceil((ends - starts) / obs.window_ms))
    presence = np.zeros((n_devices, len(starts)), dtype=np.float64)
    lo, hi = np.searchsorted(obs.t, [starts[0], ends[-1]])
    t, device = obs.t[lo:hi], obs.device[lo:hi]
    seg = np.searchsorted(starts, t, side="right") - 1
    inside = (seg >= 0) & (t < ends[np.clip(seg, 0, None)])
    if not inside.any():
        return presence
    # A device may show two tokens in one window near an interval boundary: count windows.
    keys = np.unique(np.stack([device[inside], seg[inside], t[inside]]), axis=1)
    np.add.at(presence, (keys[0], keys[1]), 1.0)
    return np.asarray(np.minimum(presence / n_windows, 1.0), dtype=np.float64)


def _runs(on: npt.NDArray[np.bool_]) -> list[tuple[int, int]]:
    """Maximal runs ``(first, last)`` of on-board segments, bridging short unheard gaps."""
    idx = np.flatnonzero(on)
    if idx.size == 0:
        return []
    runs: list[tuple[int, int]] = []
    first = last = int(idx[0])
    for k in idx[1:]:
        if k - last - 1 <= MAX_SEGMENT_GAP:
            last = int(k)
        else:
            runs.append((first, last))
            first = last = int(k)
    runs.append((first, last))
    return runs


def trip_id(vehicle_id: str, journey_id: str, device_id: str, board_time: int) -> str:
    """Deterministic, so re-reconciling the same data yields the same ids."""
    digest = hashlib.sha256(f"{vehicle_id}|{journey_id}|{device_id}|{board_time}".encode())
    return "trp_" + digest.hexdigest()[:20]


def reconcile_vehicle(
    journeys: Sequence[Journey],
    obs: VehicleObservations,
    device_ids: Sequence[str],
) -> list[DetectedTrip]:
    """The trips ridden on one vehicle, from its journeys and resolved sightings."""
    trips: list[DetectedTrip] = []
    for journey in journeys:
        presence = segment_presence(journey, obs, len(device_ids))
        on_board = presence >= MIN_SEGMENT_PRESENCE
        for device in np.flatnonzero(on_board.any(axis=1)):
            for first, last in _runs(on_board[device]):
                board, alight = journey.visits[first], journey.visits[last + 1]
                device_id = device_ids[int(device)]
                trips.append(
                    DetectedTrip(
                        trip_id=trip_id(
                            obs.vehicle_id, journey.journey_id, device_id, board.departure
                        ),
                        device_id=device_id,
                        vehicle_id=obs.vehicle_id,
                        journey_id=journey.journey_id,
                        line=journey.line,
                        board_stop_id=board.stop_id,
                        board_time=board.departure,
                        alight_stop_id=alight.stop_id,
                        alight_time=alight.arrival,
                        confidence=round(float(presence[device, first : last + 1].mean()), 4),
                    )
                )
    return trips


def resolve_conflicts(trips: Iterable[DetectedTrip]) -> list[DetectedTrip]:
    """A device rides one vehicle at a time: of overlapping trips keep the more confident."""
    by_device: dict[str, list[DetectedTrip]] = defaultdict(list)
    for trip in trips:
        by_device[trip.device_id].append(trip)
    kept: list[DetectedTrip] = []
    for device_trips in by_device.values():
        chosen: list[DetectedTrip] = []
        for trip in sorted(device_trips, key=lambda t: (-t.confidence, t.board_time, t.trip_id)):
            if all(
                trip.alight_time <= other.board_time or trip.board_time >= other.alight_time
                for other in chosen
            ):
                chosen.append(trip)
        kept.extend(chosen)
    return sorted(kept, key=lambda t: (t.board_time, t.vehicle_id, t.device_id))


def reconcile(
    events_by_vehicle: dict[str, list[EventRecord]],
    observations: Sequence[VehicleObservations],
    device_ids: Sequence[str],
) -> list[DetectedTrip]:
    """All trips of a service day across vehicles, conflicts resolved."""
    trips: list[DetectedTrip] = []
    for obs in observations:
        journeys = journeys_from_events(obs.vehicle_id, events_by_vehicle.get(obs.vehicle_id, []))
        trips.extend(reconcile_vehicle(journeys, obs, device_ids))
    return resolve_conflicts(trips)
