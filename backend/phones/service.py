"""The phone upload (docs/contracts.md, Phone sightings upload): signed with the device's
upload key, validated, every beacon resolved to its vehicle, stored once.

The path is the vehicle upload's (``backend.ingest.service.receive``): the same checks in
the same order, the same answers; only the body, its identity and its rows differ.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Sequence
from typing import Any

from sqlalchemy.orm import Session

from backend import models
from backend.const import MAX_EVENTS_PER_BATCH, MAX_SIGHTINGS_PER_BATCH
from backend.ingest import repository as ingest_repo
from backend.ingest.service import (
    Allowance,
    IngestErrorReason,
    UploadKind,
    check_rows,
    check_signer,
    field_error,
    fingerprint,
    receive,
    validate,
)
from backend.maintenance import repository as maintenance_repo
from backend.passengers import repository as passengers_repo
from backend.phones import clock
from backend.phones import repository as phones_repo
from backend.timeutil import service_days
from backend.trips import repository as trips_repo
from backend.trips.resolution import BeaconResolver
from onboard import wire


class DeviceUploadKeys:
    """Devices' upload keys (``wire.upload_key`` of the device key), read from the database
    for every request, so a device erased with its passenger's account signs nothing more,
    in any process, at once (``fresh`` changes nothing: every read is fresh)."""

    def get(self, session: Session, device_id: str, fresh: bool = False) -> bytes | None:
        key = passengers_repo.device_key(session, device_id)
        return None if key is None else wire.upload_key(key)


class BeaconResolvers:
    """One beacon resolver per process, rebuilt when a vehicle is registered. Resolving is
    serialised: the resolver's interval cache is shared by the request threads."""

    def __init__(self) -> None:
        self._version: tuple[int, str | None] | None = None
        self._resolver = BeaconResolver([])
        self._lock = threading.Lock()

    def resolve_intervals(
        self, session: Session, t: Sequence[int], major: Sequence[int], minor: Sequence[int]
    ) -> list[tuple[str | None, int | None]]:
        """The vehicle of every beacon sighting and the interval whose id it heard (see
        ``BeaconResolver.resolve_intervals``)."""
        version = ingest_repo.vehicle_registry_version(session)
        with self._lock:
            if version != self._version:
                self._resolver = BeaconResolver(ingest_repo.all_vehicle_secrets(session))
                self._version = version
            return self._resolver.resolve_intervals(t, major, minor)


def parse_phone_batch(body: bytes, path_device_id: str) -> wire.PhoneBatch:
    batch = validate(wire.PhoneBatch, body)
    check_rows(
        (
            ("beacons", len(batch.beacons), MAX_SIGHTINGS_PER_BATCH),
            ("regions", len(batch.regions), MAX_EVENTS_PER_BATCH),
            ("activity", len(batch.activity), MAX_EVENTS_PER_BATCH),
        )
    )
    check_signer("device_id", batch.device_id, path_device_id, "device")
    return batch


def stored_before(session: Session, batch: wire.PhoneBatch, digest: bytes) -> bool:
    """Whether this batch is stored already; the same identity with another body is refused."""
    stored = phones_repo.batch_fingerprint(session, batch.device_id, batch.batch_id)
    if stored is not None and stored != digest:
        raise field_error(
            IngestErrorReason.IDENTITY_CONFLICT,
            "batch_id",
            f"batch (device_id={batch.device_id!r}, batch_id={batch.batch_id!r}) was stored "
            "before with another body",
            "identity_conflict",
        )
    return stored is not None


def _days(times: list[int]) -> list[dt.date]:
    days = service_days(times)
    return [days] * len(times) if isinstance(days, dt.date) else days


def store_phone_batch(
    session: Session, batch: wire.PhoneBatch, now: dt.datetime, beacons: BeaconResolvers
) -> wire.BatchAccepted:
    """Store a phone batch once, each beacon with the vehicle it resolves to; a resend
    answers ``duplicate``, a different body under its identity is refused."""
    digest = fingerprint(batch)
    b = batch.beacons
    resolved = beacons.resolve_intervals(session, b.t, b.major, b.minor)
    vehicles = [vehicle for vehicle, _ in resolved]
    # The phone's clock, read off the beacons it heard so far: every time is stored on the
    # buses' clock (backend.phones.clock).
    bounds, on_bus = clock.on_buses_clock(
        batch,
        phones_repo.device_clock(session, batch.device_id),
        [interval for _, interval in resolved],
    )
    phone_batch_id = phones_repo.insert_batch(
        session,
        {
            "device_id": batch.device_id,
            "batch_id": batch.batch_id,
            "fingerprint": digest,
            "sent_at": batch.sent_at,
            "platform": batch.platform,
            "received_at": now,
            "clock_offset_ms": 0 if bounds is None else bounds.offset_ms,
            "clock_lo_ms": None if bounds is None else bounds.lo_ms,
            "clock_hi_ms": None if bounds is None else bounds.hi_ms,
            "clock_as_of_ms": None if bounds is None else bounds.as_of_ms,
        },
    )
    if phone_batch_id is None:
        stored_before(session, batch, digest)  # refuses another body under this identity
        return wire.BatchAccepted(inserted=0, duplicate=True)
    # Before any row that retention deletes is written (as for a vehicle upload).
    final = maintenance_repo.hold_retention(session, writing=True)
    batch = on_bus

    def row(k: int, day: dt.date, t: int) -> dict[str, Any]:
        return {
            "phone_batch_id": phone_batch_id,
            "k": k,
            "device_id": batch.device_id,
            "service_day": day,
            "t": t,
        }

    b = batch.beacons
    columns = zip(_days(b.t), b.t, b.major, b.minor, b.rssi, b.n, vehicles, strict=True)
    phones_repo.insert_beacon_sightings(
        session,
        [
            row(k, day, t) | {"major": hi, "minor": lo, "rssi": rssi, "n": n, "vehicle_id": v}
            for k, (day, t, hi, lo, rssi, n, v) in enumerate(columns)
        ],
    )

    def insert_events(
        model: type[models.PhoneRegionEvent] | type[models.PhoneActivityEvent],
        events: Sequence[wire.RegionEvent | wire.ActivityEvent],
    ) -> None:
        days = _days([e.t for e in events])
        phones_repo.insert_events(
            session,
            model,
            [
                row(k, day, e.t) | {"type": e.type}
                for k, (day, e) in enumerate(zip(days, events, strict=True))
            ],
        )

    insert_events(models.PhoneRegionEvent, batch.regions)
    insert_events(models.PhoneActivityEvent, batch.activity)
    mark_heard_vehicles(session, batch, now, final)
    return wire.BatchAccepted(
        inserted=len(b) + len(batch.regions) + len(batch.activity), duplicate=False
    )


def mark_heard_vehicles(
    session: Session, batch: wire.PhoneBatch, now: dt.datetime, final: dt.date | None
) -> None:
    """Mark for reconciliation the vehicle-days this phone heard on the batch's service
    days (those not yet ``final``, as for vehicle uploads): its beacons, region and activity
    events speak for each of them. They are rebuilt from the batch's earliest time, or from
    the phone's last region entry before it: an exit uploaded later ends the stay that
    entry began, and so a ride heard before the batch."""
    times = [*batch.beacons.t, *(e.t for e in batch.regions), *(e.t for e in batch.activity)]
    if not times:
        return
    days = {d for d in _days(times) if final is None or d >= final}
    units = phones_repo.vehicles_heard(session, batch.device_id, days)
    if not units:
        return
    since = min(times)
    entered = phones_repo.last_enter_before(session, batch.device_id, since)
    trips_repo.mark_dirty(session, units, now, since=min(since, entered or since))


_DEVICE_KEYS = DeviceUploadKeys()


def receive_phone_batch(
    session: Session,
    device_id: str,
    headers: dict[str, str],
    raw_body: bytes,
    now: dt.datetime,
    beacons: BeaconResolvers,
    allowance: Allowance | None = None,
    resends: Allowance | None = None,
) -> wire.BatchAccepted:
    """The phone upload of one request (``backend.ingest.service.receive``); the caller
    commits."""

    def store(session: Session, batch: wire.PhoneBatch, now: dt.datetime) -> wire.BatchAccepted:
        return store_phone_batch(session, batch, now, beacons)

    phone = UploadKind("device", parse_phone_batch, stored_before, store)
    return receive(
        session, phone, device_id, headers, raw_body, now, _DEVICE_KEYS, allowance, resends
    )


def passenger_export(session: Session, passenger_id: str) -> dict[str, list[dict[str, Any]]]:
    """The passenger's phone uploads and everything stored from them, for the export."""
    data = phones_repo.passenger_phone_data(session, passenger_id)
    return {
        "phone_uploads": [
            {
                "device_id": b.device_id,
                "batch_id": b.batch_id,
                "platform": b.platform,
                "sent_at": b.sent_at,
                "received_at": b.received_at.isoformat(),
            }
            for b in data.batches
        ],
        "beacon_sightings": [
            {
                "device_id": s.device_id,
                "t": s.t,
                "major": s.major,
                "minor": s.minor,
                "rssi": s.rssi,
                "n": s.n,
                "vehicle_id": s.vehicle_id,
            }
            for s in data.beacons
        ],
        "region_events": [
            {"device_id": e.device_id, "t": e.t, "type": e.type} for e in data.regions
        ],
        "activity_events": [
            {"device_id": e.device_id, "t": e.t, "type": e.type} for e in data.activity
        ],
    }
