"""SQL of ingest: vehicles and their secrets, batches, sightings (row by row or by
PostgreSQL ``COPY``) and the late data kept for service days past retention. Like every
repository, functions take a session and never commit: the caller's request or job
boundary does.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from backend import models
from backend.db import AlreadyExistsError, insert_once, insert_rows


def add_vehicles(
    session: Session, secrets: Mapping[str, bytes], company: str | None = None
) -> None:
    """Add vehicles (their secrets by id) run by ``company``; AlreadyExistsError naming the
    first id registered already (none is added then)."""
    v = models.Vehicle
    known = session.scalars(
        select(v.vehicle_id).where(v.vehicle_id.in_(list(secrets))).order_by(v.vehicle_id)
    ).first()
    if known is not None:
        raise AlreadyExistsError(f"vehicle {known!r} is already registered")
    session.add_all(
        v(vehicle_id=vehicle_id, secret=secret, company=company)
        for vehicle_id, secret in secrets.items()
    )


def set_vehicle_company(session: Session, vehicle_id: str, company: str | None) -> bool:
    """Set the transit company of a registered vehicle; False if there is no such vehicle."""
    vehicle = session.get(models.Vehicle, vehicle_id)
    if vehicle is None:
        return False
    vehicle.company = company
    session.flush()
    return True


def vehicle_secret(session: Session, vehicle_id: str) -> bytes | None:
    return session.scalar(
        select(models.Vehicle.secret).where(models.Vehicle.vehicle_id == vehicle_id)
    )


def vehicle_registry_version(session: Session) -> tuple[int, str | None]:
    """Changes whenever a vehicle is registered (count and greatest id; none is removed)."""
    v = models.Vehicle
    count, greatest = session.execute(select(func.count(), func.max(v.vehicle_id))).one()
    return int(count), greatest


def all_vehicle_secrets(session: Session) -> list[tuple[str, bytes]]:
    """``(vehicle_id, secret)`` of every registered vehicle, by id."""
    v = models.Vehicle
    rows = session.execute(select(v.vehicle_id, v.secret).order_by(v.vehicle_id))
    return [(vehicle_id, secret) for vehicle_id, secret in rows]


def insert_batch(session: Session, values: dict[str, Any]) -> int | None:
    """Insert a batch unless its identity exists: ``INSERT … ON CONFLICT DO NOTHING``.

    Returns the new batch id, or None when ``(vehicle_id, boot_id, seq)`` was stored before.
    """
    batch_id: int | None = insert_once(
        session, models.Batch, ("vehicle_id", "boot_id", "seq"), "batch_id", values
    )
    return batch_id


def batch_fingerprint(session: Session, vehicle_id: str, boot_id: str, seq: int) -> bytes | None:
    return session.scalar(
        select(models.Batch.fingerprint).where(
            models.Batch.vehicle_id == vehicle_id,
            models.Batch.boot_id == boot_id,
            models.Batch.seq == seq,
        )
    )


@dataclass(frozen=True)
class BatchSightings:
    """One batch's sightings, columnar as uploaded: row ``k`` of each column is sighting ``k``.

    ``token`` holds lowercase hex (validated by the wire model); ``service_day`` either one
    day for every row (the usual case) or one per row (a batch across the day boundary).
    """

    batch_id: int
    vehicle_id: str
    service_day: dt.date | Sequence[dt.date]
    t: Sequence[int]
    token: Sequence[str]
    rssi: Sequence[int]
    n: Sequence[int]
    tx: Sequence[int | None]

    def __len__(self) -> int:
        return len(self.t)


def sightings_copy_text(rows: BatchSightings) -> str:
    """The rows in COPY's text format, in ``SIGHTING_COLUMNS`` order.

    Vehicle ids are validated identifiers and tokens hex, so nothing needs escaping; the
    token goes in as bytea hex (``\\x…``), straight from the uploaded text.
    """
    tx: Sequence[int | str | None] = rows.tx
    if None in tx:
        tx = [_COPY_NULL if v is None else v for v in tx]
    columns = (rows.t, rows.token, rows.rssi, rows.n, tx)
    if isinstance(rows.service_day, dt.date):
        head = f"{rows.service_day}\t{rows.batch_id}\t"
        mid = f"\t{rows.vehicle_id}\t"
        return "".join(
            f"{head}{k}{mid}{t}\t\\\\x{token}\t{rssi}\t{n}\t{v}\n"
            for k, (t, token, rssi, n, v) in enumerate(zip(*columns, strict=True))
        )
    tail = f"\t{rows.batch_id}\t"
    mid = f"\t{rows.vehicle_id}\t"
    return "".join(
        f"{day}{tail}{k}{mid}{t}\t\\\\x{token}\t{rssi}\t{n}\t{v}\n"
        for k, (day, t, token, rssi, n, v) in enumerate(
            zip(rows.service_day, *columns, strict=True)
        )
    )


def copy_sightings_text(session: Session, text: str) -> None:
    """``COPY sightings FROM STDIN`` of rows rendered by ``sightings_copy_text`` (PostgreSQL)."""
    raw = session.connection().connection.driver_connection
    with raw.cursor() as cursor, cursor.copy(_COPY_SIGHTINGS) as copy:  # type: ignore[union-attr]
        copy.write(text)


def insert_sightings(session: Session, rows: BatchSightings) -> None:
    """Store one batch's sightings.

    On PostgreSQL through ``COPY … FROM STDIN`` with the rows rendered in one text buffer
    (the ingest fast path: one round trip, no per-row Python calls into the driver);
    elsewhere as one executemany.
    """
    if not len(rows):
        return
    if session.get_bind().dialect.name == "postgresql":
        copy_sightings_text(session, sightings_copy_text(rows))
        return
    days = rows.service_day
    if isinstance(days, dt.date):
        days = [days] * len(rows)
    session.execute(
        insert(models.Sighting),
        [
            {
                "service_day": day,
                "batch_id": rows.batch_id,
                "k": k,
                "vehicle_id": rows.vehicle_id,
                "t": t,
                "token": bytes.fromhex(token),
                "rssi": rssi,
                "n": n,
                "tx": tx,
            }
            for k, (day, t, token, rssi, n, tx) in enumerate(
                zip(days, rows.t, rows.token, rows.rssi, rows.n, rows.tx, strict=True)
            )
        ],
    )


SIGHTING_COLUMNS = ("service_day", "batch_id", "k", "vehicle_id", "t", "token", "rssi", "n", "tx")
_COPY_SIGHTINGS = f"COPY sightings ({', '.join(SIGHTING_COLUMNS)}) FROM STDIN"


_COPY_NULL = "\\N"


def add_late_data(
    session: Session, batch_id: int, vehicle_id: str, days: Sequence[dt.date], now: dt.datetime
) -> None:
    """Record that a batch brought data for final days (kept, reported, not reconciled)."""
    insert_rows(
        session,
        models.LateData,
        [
            {"batch_id": batch_id, "vehicle_id": vehicle_id, "service_day": d, "received_at": now}
            for d in sorted(set(days))
        ],
    )


@dataclass(frozen=True)
class LateDataRow:
    service_day: dt.date
    vehicle_id: str
    batches: int
    last_received_at: dt.datetime


def late_data(session: Session, limit: int) -> list[LateDataRow]:
    """Late data per (service day, vehicle), newest first."""
    d = models.LateData
    rows = session.execute(
        select(d.service_day, d.vehicle_id, func.count(), func.max(d.received_at))
        .group_by(d.service_day, d.vehicle_id)
        .order_by(func.max(d.received_at).desc(), d.service_day, d.vehicle_id)
        .limit(limit)
    )
    return [LateDataRow(*row) for row in rows]


def insert_events(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """A batch's vehicle events (one row each, as ``models.VehicleEvent`` columns)."""
    insert_rows(session, models.VehicleEvent, rows)
