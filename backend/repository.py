"""All SQL of the backend. Functions take a session and never commit: the caller's request or
job boundary does."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from backend import models
from backend.reconciliation import DetectedTrip, EventRecord


class AlreadyExistsError(Exception):
    """The row to create exists already (the message names it)."""


# --- vehicles, operators, passengers, devices --------------------------------------------


def add_vehicle(session: Session, vehicle_id: str, secret: bytes) -> None:
    if session.get(models.Vehicle, vehicle_id) is not None:
        raise AlreadyExistsError(f"vehicle {vehicle_id!r} is already registered")
    session.add(models.Vehicle(vehicle_id=vehicle_id, secret=secret))


def vehicle_secret(session: Session, vehicle_id: str) -> bytes | None:
    return session.scalar(
        select(models.Vehicle.secret).where(models.Vehicle.vehicle_id == vehicle_id)
    )


def add_operator(session: Session, name: str, token_sha256: bytes) -> int:
    operator = models.Operator(name=name, token_sha256=token_sha256)
    session.add(operator)
    session.flush()
    return operator.operator_id


def operator_by_token(session: Session, token_sha256: bytes) -> models.Operator | None:
    return session.scalar(
        select(models.Operator).where(models.Operator.token_sha256 == token_sha256)
    )


def add_passenger(
    session: Session, passenger_id: str, rider_category: str, token_sha256: bytes
) -> None:
    session.add(
        models.Passenger(
            passenger_id=passenger_id, rider_category=rider_category, token_sha256=token_sha256
        )
    )
    session.flush()  # devices reference it; the ORM has no relationship to order the inserts


def passenger_by_token(session: Session, token_sha256: bytes) -> models.Passenger | None:
    return session.scalar(
        select(models.Passenger).where(models.Passenger.token_sha256 == token_sha256)
    )


def passenger_categories(session: Session, passenger_ids: Sequence[str]) -> dict[str, str]:
    rows = session.execute(
        select(models.Passenger.passenger_id, models.Passenger.rider_category).where(
            models.Passenger.passenger_id.in_(passenger_ids)
        )
    )
    return {passenger_id: category for passenger_id, category in rows}


def add_device(session: Session, device_id: str, passenger_id: str, device_key: bytes) -> None:
    session.add(
        models.Device(device_id=device_id, passenger_id=passenger_id, device_key=device_key)
    )


def all_devices(session: Session) -> list[tuple[str, bytes, str]]:
    """``(device_id, device_key, passenger_id)`` of every registered device, by id."""
    rows = session.execute(
        select(
            models.Device.device_id, models.Device.device_key, models.Device.passenger_id
        ).order_by(models.Device.device_id)
    )
    return [(device_id, key, passenger_id) for device_id, key, passenger_id in rows]


# --- batches ----------------------------------------------------------------------------


def insert_batch(session: Session, values: dict[str, Any]) -> int | None:
    """Insert a batch unless its identity exists: ``INSERT … ON CONFLICT DO NOTHING``.

    Returns the new batch id, or None when ``(vehicle_id, boot_id, seq)`` was stored before.
    """
    dialect = session.get_bind().dialect.name
    stmt = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(models.Batch)
    stmt = stmt.values(**values).on_conflict_do_nothing(
        index_elements=["vehicle_id", "boot_id", "seq"]
    )
    return session.scalar(stmt.returning(models.Batch.batch_id))


def batch_fingerprint(session: Session, vehicle_id: str, boot_id: str, seq: int) -> bytes | None:
    return session.scalar(
        select(models.Batch.fingerprint).where(
            models.Batch.vehicle_id == vehicle_id,
            models.Batch.boot_id == boot_id,
            models.Batch.seq == seq,
        )
    )


def insert_rows(session: Session, model: type[models.Base], rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        session.execute(insert(model), list(rows))


def mark_days_dirty(session: Session, days: set[dt.date], now: dt.datetime) -> None:
    for day in sorted(days):
        updated = session.execute(
            update(models.ReconcileUnit)
            .where(models.ReconcileUnit.service_day == day)
            .values(dirty=True, data_received_at=now)
        )
        if getattr(updated, "rowcount", 0) == 0:
            session.add(models.ReconcileUnit(service_day=day, dirty=True, data_received_at=now))


def dirty_days(session: Session) -> list[dt.date]:
    return list(
        session.scalars(
            select(models.ReconcileUnit.service_day)
            .where(models.ReconcileUnit.dirty.is_(True))
            .order_by(models.ReconcileUnit.service_day)
        )
    )


def mark_day_reconciled(session: Session, day: dt.date, now: dt.datetime) -> None:
    session.execute(
        update(models.ReconcileUnit)
        .where(models.ReconcileUnit.service_day == day)
        .values(dirty=False, reconciled_at=now)
    )


# --- reconciliation inputs and outputs ------------------------------------------------------


def day_events(session: Session, day: dt.date) -> dict[str, list[EventRecord]]:
    e = models.VehicleEvent
    rows = session.execute(
        select(e.vehicle_id, e.t, e.type, e.stop_id, e.line, e.journey_id, e.direction)
        .where(e.service_day == day, e.type.in_(("journey", "arrival", "departure")))
        .order_by(e.vehicle_id, e.t, e.event_id)
    )
    out: dict[str, list[EventRecord]] = defaultdict(list)
    for vehicle_id, t, type_, stop_id, line, journey_id, direction in rows:
        out[vehicle_id].append(EventRecord(t, type_, stop_id, line, journey_id, direction))
    return dict(out)


def day_sightings(session: Session, day: dt.date) -> dict[str, tuple[list[int], list[bytes], int]]:
    """Per vehicle: window starts (ms), tokens, and the window length (ms), sorted by time."""
    s, b = models.Sighting, models.Batch
    rows = session.execute(
        select(s.vehicle_id, s.t, s.token, b.window_ms)
        .join(b, b.batch_id == s.batch_id)
        .where(s.service_day == day)
        .order_by(s.vehicle_id, s.t, s.sighting_id)
    )
    out: dict[str, tuple[list[int], list[bytes], int]] = {}
    for vehicle_id, t, token, window_ms in rows:
        entry = out.setdefault(vehicle_id, ([], [], window_ms))
        entry[0].append(t)
        entry[1].append(token)
    return out


def replace_trips(
    session: Session, day: dt.date, trips: Sequence[DetectedTrip], passenger_of: dict[str, str]
) -> None:
    session.execute(delete(models.Trip).where(models.Trip.service_day == day))
    insert_rows(
        session,
        models.Trip,
        [
            {
                "trip_id": trip.trip_id,
                "service_day": day,
                "device_id": trip.device_id,
                "passenger_id": passenger_of[trip.device_id],
                "vehicle_id": trip.vehicle_id,
                "journey_id": trip.journey_id,
                "line": trip.line,
                "board_stop_id": trip.board_stop_id,
                "board_time": trip.board_time,
                "alight_stop_id": trip.alight_stop_id,
                "alight_time": trip.alight_time,
                "confidence": trip.confidence,
            }
            for trip in trips
        ],
    )


def day_trips(session: Session, day: dt.date) -> list[models.Trip]:
    return list(
        session.scalars(
            select(models.Trip)
            .where(models.Trip.service_day == day)
            .order_by(models.Trip.board_time, models.Trip.vehicle_id, models.Trip.device_id)
        )
    )


def count_rows(session: Session, model: type[models.Base]) -> int:
    return session.scalar(select(func.count()).select_from(model)) or 0
