"""Recorded uploads reconciled in this process, without a database or server: what the
backend's workers do for a vehicle-day (resolve tokens, decode each journey), for the
reconciliation benchmark, the fixed-lag tests and analysis of a recording.

The backend reads the same columns from its ``sightings`` table
(``backend.trips.service.reconcile_vehicle_day``); here they come straight from the batch files.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence

import numpy as np

from backend.trips.reconciliation import (
    DEFAULT_LEVEL,
    DetectedTrip,
    EventRecord,
    LevelModel,
    VehicleObservations,
    conflict_losers,
    reconcile_vehicle,
)
from backend.trips.resolution import TokenResolver, resolved_observations
from backend.trips.stops import stop_index

DAY_INTERVALS = 160
"""Token intervals a resolver keeps at once: a whole service day (144) and its neighbours."""

_RECONCILED_EVENTS = frozenset({"journey", "arrival", "departure", "position"})


class VehicleData:
    """One bus's uploads as columns (window start ms, token hex, RSSI dBm, tx dBm or None,
    and which upload carried the row), its journey and stop events, the window length, each
    upload's seal time (``sent``), the newest one (``sent_at``) and the newest event's time
    (of any type: position fixes too, as the backend counts them)."""

    def __init__(self, vehicle_id: str) -> None:
        self.vehicle_id = vehicle_id
        self.t: list[int] = []
        self.token: list[str] = []
        self.rssi: list[int] = []
        self.tx: list[int | None] = []
        self.batch: list[int] = []
        self.sent: list[int] = []
        self.events: list[EventRecord] = []
        self.window_ms = 1000
        self.sent_at = 0
        self.last_event_t = 0


def vehicle_data(vehicle_id: str, batches: Iterable[bytes]) -> VehicleData:
    """The columns of ``batches`` (upload bodies as JSON), in upload order."""
    data = VehicleData(vehicle_id)
    for k, raw in enumerate(batches):
        batch = json.loads(raw)
        data.window_ms = batch["window_ms"]
        data.sent.append(batch["sent_at"])
        data.sent_at = max(data.sent_at, batch["sent_at"])
        s = batch["sightings"]
        data.batch += [k] * len(s["t"])
        data.t += s["t"]
        data.token += s["token"]
        data.rssi += s["rssi"]
        data.tx += s["tx"]
        data.last_event_t = max([data.last_event_t] + [e["t"] for e in batch["events"]])
        data.events += [
            EventRecord(
                e["t"],
                e["type"],
                e.get("stop_id"),
                e.get("line"),
                e.get("journey_id"),
                e.get("direction"),
                e.get("lat"),
                e.get("lon"),
                e.get("speed_mps"),
            )
            for e in batch["events"]
            if e["type"] in _RECONCILED_EVENTS
        ]
    return data


def observations(data: VehicleData, resolver: TokenResolver) -> tuple[VehicleObservations, int]:
    """The vehicle-day's resolved sightings as the backend reads them, and how many resolved."""
    order = np.argsort(np.asarray(data.t, dtype=np.int64), kind="stable")
    return resolved_observations(
        data.vehicle_id,
        np.asarray(data.t, dtype=np.int64)[order],
        [bytes.fromhex(data.token[i]) for i in order],
        [data.rssi[i] for i in order],
        [data.tx[i] for i in order],
        data.window_ms,
        data_end(data),
        resolver,
    )


def reconcile_one(
    data: VehicleData, resolver: TokenResolver, level_model: LevelModel = DEFAULT_LEVEL
) -> tuple[list[DetectedTrip], int]:
    """One vehicle-day's trips (before cross-vehicle conflicts) and how many sightings
    resolved to a known device."""
    obs, resolved = observations(data, resolver)
    trips = reconcile_vehicle(
        sorted_events(data), obs, resolver.device_ids, level_model, stop_index()
    )
    return trips, resolved


def sorted_events(data: VehicleData) -> list[EventRecord]:
    """As the backend reads them: events by time (stable, so upload order breaks ties)."""
    return sorted(data.events, key=lambda e: e.t)


def data_end(data: VehicleData) -> int:
    """As the backend counts it: the newest event, the end of the newest window or the
    newest seal less a window, whichever is latest."""
    return max(
        data.last_event_t,
        max(data.t) + data.window_ms if data.t else 0,
        data.sent_at - data.window_ms if data.sent_at else 0,
    )


def reconcile_region(
    vehicles: Sequence[VehicleData],
    devices: Sequence[tuple[str, bytes]],
    level_model: LevelModel = DEFAULT_LEVEL,
) -> tuple[list[DetectedTrip], set[str], int]:
    """What the workers do for a day, in one process: resolve, reconcile, settle. Returns
    the trips, the ids of the cross-vehicle conflicts' losers and the sightings resolved."""
    resolver = TokenResolver(devices, cache_intervals=DAY_INTERVALS)
    trips: list[DetectedTrip] = []
    resolved = 0
    for data in vehicles:
        found, n = reconcile_one(data, resolver, level_model)
        trips.extend(found)
        resolved += n
    return trips, conflict_losers(trips), resolved
