"""Recorded uploads reconciled in this process, without a database or server: what the
backend's workers do for a vehicle-day (resolve tokens, decode each journey), for the
reconciliation benchmark, the fixed-lag tests and analysis of a recording.

The backend reads the same columns from its ``sightings`` table
(``backend.trips.service.reconcile_vehicle_day``); here they come straight from the batch files.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Container, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from backend.phones.clock import ClockBounds, on_buses_clock
from backend.trips.reconciliation import (
    DEFAULT_LEVEL,
    RECONCILED_EVENTS,
    DetectedTrip,
    EventRecord,
    LevelModel,
    PhoneObservations,
    VehicleObservations,
    conflict_losers,
    phone_observations,
    reconcile_vehicle,
)
from backend.trips.resolution import BeaconResolver, TokenResolver, resolved_observations
from backend.trips.stops import stop_index
from onboard.wire import PhoneBatch

DAY_INTERVALS = 160
"""Token intervals a resolver keeps at once: a whole service day (144) and its neighbours."""


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
            if e["type"] in RECONCILED_EVENTS
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
    data: VehicleData,
    resolver: TokenResolver,
    level_model: LevelModel = DEFAULT_LEVEL,
    phones: PhoneRows | None = None,
) -> tuple[list[DetectedTrip], int]:
    """One vehicle-day's trips (before cross-vehicle conflicts) and how many sightings
    resolved to a known device; ``phones``: what phones heard of it."""
    obs, resolved = vehicle_observations(data, resolver, phones)
    trips = reconcile_vehicle(
        sorted_events(data), obs, resolver.device_ids, level_model, stop_index()
    )
    return trips, resolved


def vehicle_observations(
    data: VehicleData, resolver: TokenResolver, phones: PhoneRows | None = None
) -> tuple[VehicleObservations, int]:
    """``observations`` with what ``phones`` heard of the vehicle's beacon joined."""
    obs, resolved = observations(data, resolver)
    if phones is not None and phones.beacons:
        index = {device_id: i for i, device_id in enumerate(resolver.device_ids)}
        obs = dataclasses.replace(obs, phone=phones.observations(data.vehicle_id, index))
    return obs, resolved


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


@dataclass
class PhoneRows:
    """Phone uploads as the backend stores them: beacon rows ``(device_id, t, rssi,
    vehicle_id or None)``, region and activity events ``(device_id, t, type)``, and per
    device the newest ``sent_at`` of its uploads (``reported``)."""

    beacons: list[tuple[str, int, int, str | None]] = field(default_factory=list)
    regions: list[tuple[str, int, str]] = field(default_factory=list)
    activity: list[tuple[str, int, str]] = field(default_factory=list)
    reported: dict[str, int] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.beacons or self.regions or self.activity)

    def of_devices(self, devices: Container[str]) -> PhoneRows:
        """The rows of ``devices``."""
        return PhoneRows(
            [b for b in self.beacons if b[0] in devices],
            [r for r in self.regions if r[0] in devices],
            [a for a in self.activity if a[0] in devices],
            {d: t for d, t in self.reported.items() if d in devices},
        )

    def of_vehicle(self, vehicle_id: str) -> PhoneRows:
        """The rows of the phones that heard ``vehicle_id`` (all their rows)."""
        return self.of_devices({b[0] for b in self.beacons if b[3] == vehicle_id})

    def extend(self, other: PhoneRows) -> None:
        """Add the rows of later uploads."""
        self.beacons += other.beacons
        self.regions += other.regions
        self.activity += other.activity
        for device, t in other.reported.items():
            self.reported[device] = max(t, self.reported.get(device, t))

    def observations(
        self, vehicle_id: str, device_index: dict[str, int]
    ) -> PhoneObservations | None:
        """What these phones said of ``vehicle_id``, as the reconciliation reads it."""
        return phone_observations(
            vehicle_id, device_index, self.beacons, self.regions, self.activity, self.reported
        )


def phone_rows(
    bodies: Iterable[bytes],
    beacons: BeaconResolver,
    clocks: dict[str, ClockBounds | None] | None = None,
) -> PhoneRows:
    """Phone upload bodies (docs/contracts.md, Phone sightings upload) read and resolved as
    the backend stores them (a batch sent twice counts once), each phone's times on the
    buses' clock as its beacons so far tell it (``backend.phones.clock``; ``clocks`` keeps
    that per device from call to call, for bodies read one at a time in upload order)."""
    rows = PhoneRows()
    seen: set[tuple[str, str]] = set()
    clocks = {} if clocks is None else clocks
    for body in bodies:
        batch = PhoneBatch.model_validate_json(body)
        if (batch.device_id, batch.batch_id) in seen:
            continue
        seen.add((batch.device_id, batch.batch_id))
        b = batch.beacons
        resolved = beacons.resolve_intervals(b.t, b.major, b.minor)
        bounds, on_bus = on_buses_clock(
            batch, clocks.get(batch.device_id), [interval for _, interval in resolved]
        )
        clocks[batch.device_id] = bounds
        offset = 0 if bounds is None else bounds.offset_ms
        rows.extend(
            PhoneRows(
                [
                    (batch.device_id, t, rssi, v)
                    for t, rssi, (v, _) in zip(on_bus.beacons.t, b.rssi, resolved, strict=True)
                ],
                [(batch.device_id, e.t, e.type) for e in on_bus.regions],
                [(batch.device_id, e.t, e.type) for e in on_bus.activity],
                {batch.device_id: batch.sent_at - offset},
            )
        )
    return rows


def region_resolvers(
    devices: Sequence[tuple[str, bytes]],
    phone_bodies: Sequence[bytes] = (),
    vehicle_secrets: Mapping[str, bytes] | None = None,
) -> tuple[TokenResolver, PhoneRows]:
    """The day's token resolver and its phone uploads resolved to vehicles: ``phone_bodies``
    are phone uploads, whose beacons resolve with the ``vehicle_secrets`` they were derived
    from (required with them)."""
    resolver = TokenResolver(devices, cache_intervals=DAY_INTERVALS)
    if not phone_bodies:
        return resolver, PhoneRows()
    if vehicle_secrets is None:
        raise ValueError("vehicle_secrets: required to resolve the phones' beacons")
    beacons = BeaconResolver(sorted(vehicle_secrets.items()), cache_intervals=DAY_INTERVALS)
    return resolver, phone_rows(phone_bodies, beacons)


def reconcile_region(
    vehicles: Sequence[VehicleData],
    resolver: TokenResolver,
    phones: PhoneRows,
    level_model: LevelModel = DEFAULT_LEVEL,
) -> tuple[list[DetectedTrip], set[str], int]:
    """What the workers do for a day, in one process: resolve, reconcile, settle, with the
    day's resolvers (``region_resolvers``). Returns the trips, the ids of the cross-vehicle
    conflicts' losers and the sightings resolved."""
    trips: list[DetectedTrip] = []
    resolved = 0
    for data in vehicles:
        found, n = reconcile_one(data, resolver, level_model, phones.of_vehicle(data.vehicle_id))
        trips.extend(found)
        resolved += n
    return trips, conflict_losers(trips), resolved
