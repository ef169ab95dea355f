"""SQL of phone uploads: batches and their identity, a passenger's phone data (what the
export reads and erasure deletes) and the retention deletes."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, or_, select
from sqlalchemy.orm import Session

from backend import models
from backend.db import insert_once, insert_rows
from backend.phones.clock import ClockBounds
from backend.timeutil import service_day_bounds

PHONE_ROWS = (models.BeaconSighting, models.PhoneRegionEvent, models.PhoneActivityEvent)
"""The tables of a phone upload's rows, each keyed by its batch."""


def insert_batch(session: Session, values: dict[str, Any]) -> int | None:
    """Insert a phone batch unless ``(device_id, batch_id)`` was stored before (then None);
    returns the new row's ``phone_batch_id``."""
    phone_batch_id: int | None = insert_once(
        session, models.PhoneBatch, ("device_id", "batch_id"), "phone_batch_id", values
    )
    return phone_batch_id


def device_clock(session: Session, device_id: str) -> ClockBounds | None:
    """The device's clock bounds after its newest stored batch that had any (None: none
    had)."""
    b = models.PhoneBatch
    row = session.execute(
        select(b.clock_lo_ms, b.clock_hi_ms, b.clock_as_of_ms)
        .where(b.device_id == device_id, b.clock_lo_ms.is_not(None))
        .order_by(b.phone_batch_id.desc())
        .limit(1)
    ).first()
    if row is None:
        return None
    lo, hi, as_of = row
    if lo is None or hi is None or as_of is None:
        return None
    return ClockBounds(int(lo), int(hi), int(as_of))


def batch_fingerprint(session: Session, device_id: str, batch_id: str) -> bytes | None:
    b = models.PhoneBatch
    return session.scalar(
        select(b.fingerprint).where(b.device_id == device_id, b.batch_id == batch_id)
    )


@dataclass(frozen=True)
class PassengerPhoneData:
    """Everything stored from a passenger's phone uploads, each list by device and time."""

    batches: list[models.PhoneBatch]
    beacons: list[models.BeaconSighting]
    regions: list[models.PhoneRegionEvent]
    activity: list[models.PhoneActivityEvent]


def _passenger_devices(passenger_id: str) -> Any:
    d = models.Device
    return select(d.device_id).where(d.passenger_id == passenger_id)


def passenger_phone_data(session: Session, passenger_id: str) -> PassengerPhoneData:
    devices = _passenger_devices(passenger_id)
    b = models.PhoneBatch
    batches = session.scalars(
        select(b).where(b.device_id.in_(devices)).order_by(b.device_id, b.sent_at, b.batch_id)
    )

    def rows(model: Any) -> list[Any]:
        return list(
            session.scalars(
                select(model)
                .where(model.device_id.in_(devices))
                .order_by(model.device_id, model.t, model.phone_batch_id, model.k)
            )
        )

    return PassengerPhoneData(
        list(batches),
        rows(models.BeaconSighting),
        rows(models.PhoneRegionEvent),
        rows(models.PhoneActivityEvent),
    )


def delete_passenger_phone_data(session: Session, passenger_id: str) -> None:
    """Delete the rows and batches of every phone upload of the passenger's devices."""
    devices = _passenger_devices(passenger_id)
    for model in PHONE_ROWS:
        session.execute(delete(model).where(model.device_id.in_(devices)))
    session.execute(delete(models.PhoneBatch).where(models.PhoneBatch.device_id.in_(devices)))


def delete_phone_data_before(session: Session, day: dt.date, received_before: dt.datetime) -> int:
    """Delete phone rows of service days before ``day``, and the batches received before
    ``received_before`` with all their rows (whatever times a phone's clock gave them);
    returns how many beacon sightings went."""
    b = models.PhoneBatch
    old = select(b.phone_batch_id).where(b.received_at < received_before)

    def stale(model: Any) -> Any:
        return or_(model.service_day < day, model.phone_batch_id.in_(old))

    beacons = session.execute(delete(models.BeaconSighting).where(stale(models.BeaconSighting)))
    for model in (models.PhoneRegionEvent, models.PhoneActivityEvent):
        session.execute(delete(model).where(stale(model)))
    session.execute(delete(b).where(b.received_at < received_before))
    return int(getattr(beacons, "rowcount", 0))


def insert_beacon_sightings(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """A batch's beacon rows (``models.BeaconSighting`` columns, the vehicle resolved)."""
    insert_rows(session, models.BeaconSighting, rows)


def insert_events(
    session: Session,
    model: type[models.PhoneRegionEvent] | type[models.PhoneActivityEvent],
    rows: Sequence[dict[str, Any]],
) -> None:
    """A batch's region or activity events."""
    insert_rows(session, model, rows)


def vehicles_heard(
    session: Session, device_id: str, days: set[dt.date]
) -> set[tuple[dt.date, str]]:
    """The ``(service_day, vehicle_id)`` pairs whose beacon the device heard on ``days``."""
    if not days:
        return set()
    s = models.BeaconSighting
    rows = session.execute(
        select(s.service_day, s.vehicle_id)
        .where(s.device_id == device_id, s.service_day.in_(sorted(days)), s.vehicle_id.is_not(None))
        .distinct()
    )
    return {(day, vehicle) for day, vehicle in rows if vehicle is not None}


def last_enter_before(session: Session, device_id: str, t: int) -> int | None:
    """The time of the device's last region ``enter`` at or before ``t`` (None: none)."""
    e = models.PhoneRegionEvent
    last: int | None = session.scalar(
        select(func.max(e.t)).where(e.device_id == device_id, e.type == "enter", e.t <= t)
    )
    return last


@dataclass(frozen=True)
class VehicleDayPhoneRows:
    """What the phones that heard a vehicle on a service day reported that day: beacon rows
    ``(device_id, t, rssi, vehicle_id or None)`` (of any vehicle), region and activity
    events ``(device_id, t, type)``, each by device and time, and per device the newest
    ``sent_at`` of its uploads (``reported``)."""

    beacons: list[tuple[str, int, int, str | None]]
    regions: list[tuple[str, int, str]]
    activity: list[tuple[str, int, str]]
    reported: dict[str, int]


def vehicle_day_phone_rows(
    session: Session, day: dt.date, vehicle_id: str, since: int = 0
) -> VehicleDayPhoneRows:
    """The phone rows of ``day`` of every device that heard ``vehicle_id`` that day, from
    data time ``since`` on (0: all)."""
    s = models.BeaconSighting
    heard = (
        select(s.device_id)
        .where(s.service_day == day, s.vehicle_id == vehicle_id, s.t >= since)
        .distinct()
    )
    beacons = session.execute(
        select(s.device_id, s.t, s.rssi, s.vehicle_id)
        .where(s.service_day == day, s.device_id.in_(heard), s.t >= since)
        .order_by(s.device_id, s.t, s.phone_batch_id, s.k)
    ).all()
    if not beacons:
        return VehicleDayPhoneRows([], [], [], {})

    def events(model: Any) -> list[tuple[str, int, str]]:
        rows = session.execute(
            select(model.device_id, model.t, model.type)
            .where(model.service_day == day, model.device_id.in_(heard))
            .order_by(model.device_id, model.t, model.phone_batch_id, model.k)
        )
        return [(d, t, kind) for d, t, kind in rows]

    b = models.PhoneBatch
    reported = session.execute(
        select(b.device_id, func.max(b.sent_at - b.clock_offset_ms))
        .where(b.device_id.in_(heard), b.sent_at >= service_day_bounds(day)[0])
        .group_by(b.device_id)
    )
    return VehicleDayPhoneRows(
        [(d, t, rssi, v) for d, t, rssi, v in beacons],
        events(models.PhoneRegionEvent),
        events(models.PhoneActivityEvent),
        {d: int(t) for d, t in reported},
    )
