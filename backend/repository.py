"""SQL of ingest, trips, work units, billing and the registries; the other domains' SQL is in
``backend.repositories``. Functions take a session and never commit: the caller's request or
job boundary does."""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, case, delete, func, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from backend import models
from backend.reconciliation import DetectedTrip, EventRecord


class AlreadyExistsError(Exception):
    """The row to create exists already (the message names it)."""


def _core(session: Session) -> Connection:
    """The session's connection, for a Core statement without the ORM's per-statement work
    (the hot ingest path); what the session holds pending is flushed first, as it would be."""
    session.flush()
    return session.connection()


# --- vehicles, operators, passengers, devices --------------------------------------------


def add_vehicle(session: Session, vehicle_id: str, secret: bytes) -> None:
    if session.get(models.Vehicle, vehicle_id) is not None:
        raise AlreadyExistsError(f"vehicle {vehicle_id!r} is already registered")
    session.add(models.Vehicle(vehicle_id=vehicle_id, secret=secret))


def vehicle_secret(session: Session, vehicle_id: str) -> bytes | None:
    return session.scalar(
        select(models.Vehicle.secret).where(models.Vehicle.vehicle_id == vehicle_id)
    )


def add_operator(
    session: Session,
    name: str,
    token_sha256: bytes,
    role: str = "admin",
    password_hash: str | None = None,
) -> int:
    operator = models.Operator(
        name=name, token_sha256=token_sha256, role=role, password_hash=password_hash
    )
    session.add(operator)
    session.flush()
    return operator.operator_id


def operator_by_name(session: Session, name: str) -> models.Operator | None:
    """The operator who logs in with this name (one with a password)."""
    o = models.Operator
    return session.scalar(
        select(o).where(o.name == name, o.password_hash.is_not(None)).order_by(o.operator_id)
    )


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


def device_registry_version(session: Session) -> tuple[int, str | None]:
    """Changes whenever a device is added or removed (count and newest id)."""
    count, newest = session.execute(select(func.count(), func.max(models.Device.device_id))).one()
    return int(count), newest


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
    stmt = _insert_batch_stmt(session.get_bind().dialect.name)
    batch_id: int | None = _core(session).scalar(stmt, values)
    return batch_id


@functools.cache
def _insert_batch_stmt(dialect: str) -> Any:
    # Built once with the values as parameters, so SQLAlchemy compiles it once (hot path).
    return (
        _dialect_insert(dialect)(models.Batch)
        .on_conflict_do_nothing(index_elements=["vehicle_id", "boot_id", "seq"])
        .returning(models.Batch.batch_id)
    )


def batch_fingerprint(session: Session, vehicle_id: str, boot_id: str, seq: int) -> bytes | None:
    return session.scalar(
        select(models.Batch.fingerprint).where(
            models.Batch.vehicle_id == vehicle_id,
            models.Batch.boot_id == boot_id,
            models.Batch.seq == seq,
        )
    )


def insert_rows(session: Session, model: type[models.Base], rows: Sequence[dict[str, Any]]) -> None:
    """Plain INSERT of many rows, on the session's connection (no ORM bookkeeping: the rows
    are not loaded as objects, and the ingest path saves the ORM's per-statement cost)."""
    if rows:
        _core(session).execute(insert(model), list(rows))


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


# --- work units -----------------------------------------------------------------------------


def _dialect_insert(dialect: str) -> Any:
    """``INSERT`` with ``ON CONFLICT`` for the dialect (PostgreSQL's or SQLite's)."""
    return postgresql.insert if dialect == "postgresql" else sqlite.insert


def mark_dirty(
    session: Session,
    units: set[tuple[dt.date, str]],
    now: dt.datetime,
    sealed_until: int | None = None,
    since: int = 0,
) -> None:
    """Mark units ``(service_day, vehicle_id)`` dirty (``DAY_UNIT`` for a day's conflicts)
    from data time ``since`` on (0: the whole day; an earlier pending time is kept), and move
    their ``sealed_until`` on to ``sealed_until`` if that is newer.

    Ingest marks only its vehicle's unit, so concurrent uploads never wait on one shared
    row; reconciling a vehicle unit marks its day's conflict unit (``services.run_unit``).
    """
    if not units:
        return
    _core(session).execute(
        _mark_dirty_stmt(session.get_bind().dialect.name),
        [
            {
                "service_day": day,
                "vehicle_id": vehicle,
                "dirty": True,
                "generation": 1,
                "data_received_at": now,
                "sealed_until": sealed_until,
                "dirty_from": since,
            }
            for day, vehicle in sorted(units)
        ],
    )


@functools.cache
def _mark_dirty_stmt(dialect: str) -> Any:
    # Built once with the values as parameters, so SQLAlchemy compiles it once (hot path).
    w = models.WorkUnit
    stmt = _dialect_insert(dialect)(w)
    new = stmt.excluded
    return stmt.on_conflict_do_update(
        index_elements=["service_day", "vehicle_id"],
        set_={
            "dirty": True,
            "generation": w.generation + 1,
            "data_received_at": new.data_received_at,
            "sealed_until": _later_sealed(new.sealed_until),
            "dirty_from": _pending_from(new.dirty_from),
        },
    )


def _later_sealed(value: Any) -> Any:
    """``work_units.sealed_until`` moved on to ``value`` if that is later (NULL: no news)."""
    w = models.WorkUnit
    return case(
        (or_(w.sealed_until.is_(None), w.sealed_until < value), value), else_=w.sealed_until
    )


def _pending_from(value: Any) -> Any:
    """``work_units.dirty_from`` after new data from ``value`` on: ``value`` for a clean unit,
    else the earlier of the two (a dirty unit without one, made before 0004, keeps NULL,
    which the worker reads as the whole day)."""
    w = models.WorkUnit
    return case((w.dirty.is_(False), value), (w.dirty_from > value, value), else_=w.dirty_from)


def note_heartbeat(
    session: Session, day: dt.date, vehicle_id: str, sealed_until: int, now: dt.datetime
) -> None:
    """An upload without data: the vehicle's data of ``day`` is complete up to
    ``sealed_until``. Its unit is marked dirty only while a trip on it is open (a be-out
    may now be decided); a unit that does not exist has nothing to decide."""
    w, t = models.WorkUnit, models.Trip
    unit = (w.service_day == day, w.vehicle_id == vehicle_id)
    connection = _core(session)
    connection.execute(update(w).where(*unit).values(sealed_until=_later_sealed(sealed_until)))
    open_trip = (
        select(t.trip_id)
        .where(t.service_day == day, t.vehicle_id == vehicle_id, t.status == "open")
        .exists()
    )
    connection.execute(
        update(w)
        .where(*unit, open_trip)
        .values(
            dirty=True,
            generation=w.generation + 1,
            data_received_at=now,
            dirty_from=_pending_from(sealed_until),
        )
    )


@dataclass(frozen=True)
class ClaimedUnit:
    service_day: dt.date
    vehicle_id: str
    generation: int
    dirty_from: int = 0
    """Data time from which the unit changed (0: the whole day)."""


def claim_unit(
    session: Session, now: dt.datetime, lease: dt.timedelta, day: dt.date | None = None
) -> ClaimedUnit | None:
    """Take one dirty unit whose lease is free; vehicle units before their day's conflicts.

    On PostgreSQL concurrent workers skip each other's locked rows (``SKIP LOCKED``); the
    lease keeps the unit theirs after this transaction commits.
    """
    w = models.WorkUnit
    stmt = (
        select(w.service_day, w.vehicle_id, w.generation, w.dirty_from)
        .where(
            w.dirty.is_(True),
            w.parked.is_(False),
            or_(w.lease_until.is_(None), w.lease_until < now),
        )
        .order_by(w.service_day, (w.vehicle_id == models.DAY_UNIT), w.vehicle_id)
        .limit(1)
    )
    if day is not None:
        stmt = stmt.where(w.service_day == day)
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True)
    row = session.execute(stmt).first()
    if row is None:
        return None
    session.execute(
        update(w)
        .where(w.service_day == row.service_day, w.vehicle_id == row.vehicle_id)
        .values(lease_until=now + lease)
    )
    return ClaimedUnit(row.service_day, row.vehicle_id, row.generation, row.dirty_from or 0)


def complete_unit(session: Session, unit: ClaimedUnit, now: dt.datetime) -> bool:
    """Release the lease; the unit is clean unless new data arrived meanwhile (returns that)."""
    w = models.WorkUnit
    where = (w.service_day == unit.service_day, w.vehicle_id == unit.vehicle_id)
    done = session.execute(
        update(w)
        .where(*where, w.generation == unit.generation)
        .values(
            dirty=False,
            lease_until=None,
            reconciled_at=now,
            dirty_from=None,
            attempts=0,
            last_error=None,
        )
    )
    if getattr(done, "rowcount", 0) == 1:
        return True
    session.execute(update(w).where(*where).values(lease_until=None, attempts=0, last_error=None))
    return False


def fail_unit(
    session: Session,
    unit: ClaimedUnit,
    error: str,
    now: dt.datetime,
    backoff: dt.timedelta,
    park: bool,
) -> None:
    """Record a failed attempt at ``unit``: no worker takes it again before ``now + backoff``
    (the lease is the back-off), and a ``park``-ed unit is taken by none until an operator
    reconciles its day again."""
    w = models.WorkUnit
    where = (w.service_day == unit.service_day, w.vehicle_id == unit.vehicle_id)
    session.execute(
        update(w)
        .where(*where)
        .values(
            attempts=w.attempts + 1,
            last_error=error[:MAX_ERROR_CHARS],
            failed_at=now,
            lease_until=now + backoff,
            parked=park,
        )
    )


MAX_ERROR_CHARS = 2000
"""A unit's stored error is cut here: the type and message, never a whole traceback."""


def unit_attempts(session: Session, unit: ClaimedUnit) -> int:
    """Failed attempts at ``unit`` since it last succeeded."""
    w = models.WorkUnit
    return int(
        session.scalar(
            select(w.attempts).where(
                w.service_day == unit.service_day, w.vehicle_id == unit.vehicle_id
            )
        )
        or 0
    )


def unpark_day(session: Session, day: dt.date) -> int:
    """An operator reconciles ``day`` again: its parked and failing units start afresh (a
    parked unit at once; a failing one keeps its back-off, or the lease of a worker that is
    retrying it right now)."""
    w = models.WorkUnit
    parked = session.execute(
        update(w)
        .where(w.service_day == day, w.parked.is_(True))
        .values(parked=False, attempts=0, lease_until=None)
    )
    failing = session.execute(
        update(w).where(w.service_day == day, w.attempts > 0).values(attempts=0)
    )
    return int(getattr(parked, "rowcount", 0) or 0) + int(getattr(failing, "rowcount", 0) or 0)


def settle_final_units(session: Session, before: dt.date) -> list[tuple[dt.date, str]]:
    """Units of days before ``before`` (final now) that were dirty, failing or parked: made
    clean, as nothing may rebuild them. Returns which."""
    w = models.WorkUnit
    troubled = (w.service_day < before, or_(w.dirty.is_(True), w.parked.is_(True), w.attempts > 0))
    rows = [
        (day, vehicle)
        for day, vehicle in session.execute(
            select(w.service_day, w.vehicle_id)
            .where(*troubled)
            .order_by(w.service_day, w.vehicle_id)
        )
    ]
    if rows:
        session.execute(
            update(w)
            .where(*troubled)
            .values(dirty=False, parked=False, attempts=0, lease_until=None, dirty_from=None)
        )
    return rows


@dataclass(frozen=True)
class TroubledUnit:
    """A work unit that failed: for the operations page."""

    service_day: dt.date
    vehicle_id: str
    attempts: int
    parked: bool
    last_error: str | None
    failed_at: dt.datetime | None


def troubled_units(session: Session) -> list[TroubledUnit]:
    """Parked units, then units failing and waiting to retry; newest failure first."""
    w = models.WorkUnit
    rows = session.execute(
        select(w.service_day, w.vehicle_id, w.attempts, w.parked, w.last_error, w.failed_at)
        .where(or_(w.parked.is_(True), w.attempts > 0))
        .order_by(w.parked.desc(), w.failed_at.desc(), w.service_day, w.vehicle_id)
    )
    return [TroubledUnit(*row) for row in rows]


# --- retention marks and late data ----------------------------------------------------------

SIGHTINGS_MARK = "sightings"
TRIPS_MARK = "trips"


def purged_before(session: Session, kind: str = SIGHTINGS_MARK) -> dt.date | None:
    """Service days before this have lost their raw sightings (``kind="sightings"``) or their
    trips (``"trips"``) to retention; None when retention has removed nothing yet."""
    return session.scalar(
        select(models.RetentionMark.purged_before).where(models.RetentionMark.kind == kind)
    )


RETENTION_LOCK = 0x6B69626F_7265746E  # "bibo" "retn": one advisory lock key for retention
"""PostgreSQL advisory lock between retention (exclusive) and what reads the retention mark
to decide whether it may write a day's trips or mark it dirty (shared)."""


def hold_retention(session: Session, writing: bool = False) -> dt.date | None:
    """Until the caller's transaction ends, retention cannot move the mark under it: a
    rebuild that found its day not final stays right to the end of its transaction. Returns
    the mark (``purged_before`` of the sightings), read under the hold.

    PostgreSQL: a shared advisory lock (retention takes it exclusively), taken and the mark
    read in one round trip (every upload asks). SQLite has one writer at a time: a write
    first makes this transaction that writer, so retention (a writer) commits before it or
    after it, never in between (``writing``: this transaction has written already, so it
    is that writer).
    """
    r = models.RetentionMark
    mark = select(r.purged_before).where(r.kind == SIGHTINGS_MARK).scalar_subquery()
    if session.get_bind().dialect.name == "postgresql":
        row = session.execute(select(func.pg_advisory_xact_lock_shared(RETENTION_LOCK), mark)).one()
        purged: dt.date | None = row[1]
        return purged
    if not writing:
        session.execute(update(r).where(r.kind == SIGHTINGS_MARK).values(kind=r.kind))
    return session.scalar(select(mark))


def lock_retention(session: Session) -> None:
    """Retention's side of ``hold_retention``: wait for rebuilds and uploads under way."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(func.pg_advisory_xact_lock(RETENTION_LOCK)))


def advance_purge_mark(session: Session, kind: str, before: dt.date, now: dt.datetime) -> None:
    """Retention removed ``kind`` of the days before ``before``: move the mark on, never back."""
    r = models.RetentionMark
    stmt = _dialect_insert(session.get_bind().dialect.name)(r).values(
        kind=kind, purged_before=before, updated_at=now
    )
    session.execute(
        stmt.on_conflict_do_update(
            index_elements=["kind"],
            set_={"purged_before": before, "updated_at": now},
            where=r.purged_before < before,
        )
    )


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


@dataclass(frozen=True)
class OperationsCounts:
    parked_units: int
    failing_units: int
    late_batches: int


def operations_counts(session: Session) -> OperationsCounts:
    """What the metrics report about work that needs an operator's eye."""
    w = models.WorkUnit
    parked = session.scalar(select(func.count()).where(w.parked.is_(True)))
    failing = session.scalar(select(func.count()).where(w.parked.is_(False), w.attempts > 0))
    late = session.scalar(select(func.count(func.distinct(models.LateData.batch_id))))
    return OperationsCounts(int(parked or 0), int(failing or 0), int(late or 0))


def day_vehicles(session: Session, day: dt.date) -> list[str]:
    """Vehicles with sightings or events on a service day."""
    s, e = models.Sighting, models.VehicleEvent
    with_sightings = select(s.vehicle_id).where(s.service_day == day).distinct()
    with_events = select(e.vehicle_id).where(e.service_day == day).distinct()
    return sorted(set(session.scalars(with_sightings)) | set(session.scalars(with_events)))


def dirty_units(session: Session) -> list[tuple[dt.date, str]]:
    w = models.WorkUnit
    rows = session.execute(
        select(w.service_day, w.vehicle_id)
        .where(w.dirty.is_(True))
        .order_by(w.service_day, w.vehicle_id)
    )
    return [(day, vehicle) for day, vehicle in rows]


# --- reconciliation inputs and outputs ------------------------------------------------------


def vehicle_day_events(session: Session, day: dt.date, vehicle_id: str) -> list[EventRecord]:
    e = models.VehicleEvent
    rows = session.execute(
        select(e.t, e.type, e.stop_id, e.line, e.journey_id, e.direction, e.lat, e.lon, e.speed_mps)
        .where(
            e.service_day == day,
            e.vehicle_id == vehicle_id,
            e.type.in_(("journey", "arrival", "departure", "position")),
        )
        .order_by(e.t, e.event_id)
    )
    return [EventRecord(*row) for row in rows]


@dataclass(frozen=True)
class VehicleDaySightings:
    """A vehicle's sightings of one day, by time: window start (ms), token, RSSI and tx power
    (dBm), and the window length (ms); ``data_end_ms`` the newest data time uploaded, or
    the time up to which uploads are complete if later (heartbeats, see ``sealed_until``)."""

    t: list[int]
    token: list[bytes]
    rssi: list[int]
    tx: list[int | None]
    window_ms: int
    data_end_ms: int


def vehicle_day_sightings(
    session: Session, day: dt.date, vehicle_id: str, since: int = 0
) -> VehicleDaySightings:
    """A vehicle's sightings of a service day from data time ``since`` on (0: all)."""
    s, b, e = models.Sighting, models.Batch, models.VehicleEvent
    mine = (s.service_day == day, s.vehicle_id == vehicle_id, s.t >= since)
    rows = session.execute(
        select(s.t, s.token, s.rssi, s.tx).where(*mine).order_by(s.t, s.batch_id, s.k)
    ).all()
    window_ms = session.scalar(
        select(func.max(b.window_ms)).where(b.batch_id.in_(select(s.batch_id).where(*mine)))
    )
    last_event = session.scalar(
        select(func.max(e.t)).where(e.service_day == day, e.vehicle_id == vehicle_id)
    )
    w = models.WorkUnit
    sealed = session.scalar(
        select(w.sealed_until).where(w.service_day == day, w.vehicle_id == vehicle_id)
    )
    window = int(window_ms or 1000)
    ends = [last_event or 0, sealed or 0] + ([rows[-1][0] + window] if rows else [])
    return VehicleDaySightings(
        t=[r[0] for r in rows],
        token=[r[1] for r in rows],
        rssi=[r[2] for r in rows],
        tx=[r[3] for r in rows],
        window_ms=window,
        data_end_ms=max(ends),
    )


def replace_vehicle_trips(
    session: Session,
    day: dt.date,
    vehicle_id: str,
    trips: Sequence[DetectedTrip],
    passenger_of: dict[str, str],
    boarded_from: int = 0,
) -> None:
    """Store a vehicle-day's trips boarded from ``boarded_from`` on (0: all of them),
    replacing those stored; the day's conflict pass sets ``conflict_lost`` after.

    A trip already known with the same alighting keeps its ``alight_known_at``: the be-out
    was known from then, whatever later uploads add.
    """
    t = models.Trip
    mine = (t.service_day == day, t.vehicle_id == vehicle_id, t.board_time >= boarded_from)
    stored = session.execute(
        select(t.trip_id, t.alight_known_at, t.alight_stop_id, t.status).where(*mine)
    ).all()
    known = {r.trip_id: r.alight_known_at for r in stored if r.status == "closed"}
    known_alight = {r.trip_id: r.alight_stop_id for r in stored}
    session.execute(delete(t).where(*mine))
    rows = []
    for trip in trips:
        known_at = trip.alight_known_at
        earlier = known.get(trip.trip_id)
        if (
            earlier is not None
            and known_at is not None
            and known_alight.get(trip.trip_id) == trip.alight_stop_id
        ):
            known_at = min(known_at, earlier)
        rows.append(
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
                "stops_travelled": trip.stops_travelled,
                "score": trip.score,
                "status": trip.status,
                "alight_known_at": known_at,
                "conflict_lost": False,
            }
        )
    insert_rows(session, models.Trip, rows)


def day_trip_candidates(session: Session, day: dt.date) -> list[DetectedTrip]:
    t = models.Trip
    rows = session.scalars(select(t).where(t.service_day == day).order_by(t.trip_id))
    return [
        DetectedTrip(
            trip_id=r.trip_id,
            device_id=r.device_id,
            vehicle_id=r.vehicle_id,
            journey_id=r.journey_id,
            line=r.line,
            board_stop_id=r.board_stop_id,
            board_time=r.board_time,
            alight_stop_id=r.alight_stop_id,
            alight_time=r.alight_time,
            confidence=r.confidence,
            stops_travelled=r.stops_travelled or 0,
            score=r.score,
            status=r.status,
            alight_known_at=r.alight_known_at,
        )
        for r in rows
    ]


def day_trip_candidates_rows(session: Session, day: dt.date) -> list[models.Trip]:
    """Every stored trip of a day, conflict losers included (for review and tests)."""
    t = models.Trip
    return list(session.scalars(select(t).where(t.service_day == day).order_by(t.trip_id)))


def delete_day_trips(session: Session, day: dt.date) -> None:
    session.execute(delete(models.Trip).where(models.Trip.service_day == day))


def settle_trips(session: Session, day: dt.date, losers: set[str], chains: dict[str, str]) -> None:
    """Store the day-level decisions: conflict losers and journey chains (changed rows only)."""
    t = models.Trip
    rows = session.execute(
        select(t.trip_id, t.conflict_lost, t.chain_id).where(t.service_day == day)
    ).all()
    changes = [
        {"id": trip_id, "lost": trip_id in losers, "chain": chains.get(trip_id, trip_id)}
        for trip_id, lost, chain in rows
        if lost != (trip_id in losers) or chain != chains.get(trip_id, trip_id)
    ]
    if changes:
        table = models.Base.metadata.tables["trips"]
        session.connection().execute(
            update(table)
            .where(table.c.trip_id == bindparam("id"))
            .values(conflict_lost=bindparam("lost"), chain_id=bindparam("chain")),
            changes,
        )


def day_trips(session: Session, day: dt.date) -> list[models.Trip]:
    """The trips of a day that are billed: conflict losers left out."""
    return list(
        session.scalars(
            select(models.Trip)
            .where(models.Trip.service_day == day, models.Trip.conflict_lost.is_(False))
            .order_by(models.Trip.board_time, models.Trip.vehicle_id, models.Trip.device_id)
        )
    )


def count_rows(session: Session, model: type[models.Base]) -> int:
    return session.scalar(select(func.count()).select_from(model)) or 0


# --- billing, disputes, corrections ---------------------------------------------------------


def passenger_category(session: Session, passenger_id: str) -> str | None:
    return session.scalar(
        select(models.Passenger.rider_category).where(models.Passenger.passenger_id == passenger_id)
    )


def passenger_trips(
    session: Session, passenger_id: str, first_day: dt.date, last_day: dt.date
) -> list[models.Trip]:
    t = models.Trip
    return list(
        session.scalars(
            select(t)
            .where(
                t.passenger_id == passenger_id,
                t.service_day >= first_day,
                t.service_day <= last_day,
                t.conflict_lost.is_(False),
            )
            .order_by(t.board_time, t.trip_id)
        )
    )


def passengers_with_trips(session: Session, first_day: dt.date, last_day: dt.date) -> list[str]:
    t = models.Trip
    return list(
        session.scalars(
            select(t.passenger_id)
            .where(t.service_day >= first_day, t.service_day <= last_day)
            .distinct()
            .order_by(t.passenger_id)
        )
    )


def passengers_with_ledger(session: Session, month: str) -> list[str]:
    e = models.LedgerEntry
    return list(session.scalars(select(e.passenger_id).where(e.month == month).distinct()))


def latest_corrections(
    session: Session, trip_ids: Sequence[str]
) -> dict[str, models.TripCorrection]:
    if not trip_ids:
        return {}
    c = models.TripCorrection
    rows = session.scalars(
        select(c).where(c.trip_id.in_(trip_ids)).order_by(c.trip_id, c.correction_id)
    )
    return {row.trip_id: row for row in rows}  # the newest per trip wins


def add_correction(session: Session, **values: Any) -> models.TripCorrection:
    correction = models.TripCorrection(**values)
    session.add(correction)
    session.flush()
    return correction


def live_charges(session: Session, passenger_id: str, month: str) -> list[models.LedgerEntry]:
    """Charges of a month that no reversal cancels, oldest first."""
    e = models.LedgerEntry
    reversed_ids = select(e.reverses).where(
        e.passenger_id == passenger_id, e.month == month, e.reverses.is_not(None)
    )
    return list(
        session.scalars(
            select(e)
            .where(
                e.passenger_id == passenger_id,
                e.month == month,
                e.kind == "charge",
                e.entry_id.not_in(reversed_ids),
            )
            .order_by(e.entry_id)
        )
    )


def post_ledger_entry(
    session: Session,
    passenger_id: str,
    month: str,
    kind: str,
    amount_cents: int,
    explanation: str,
    now: dt.datetime,
    reverses: int | None = None,
) -> models.LedgerEntry:
    entry = models.LedgerEntry(
        passenger_id=passenger_id,
        month=month,
        kind=kind,
        amount_cents=amount_cents,
        reverses=reverses,
        explanation=explanation,
        created_at=now,
    )
    session.add(entry)
    session.flush()
    return entry


def ledger_balance(session: Session, passenger_id: str, month: str) -> int:
    e = models.LedgerEntry
    total = session.scalar(
        select(func.coalesce(func.sum(e.amount_cents), 0)).where(
            e.passenger_id == passenger_id, e.month == month
        )
    )
    return int(total or 0)


def ledger_entries(session: Session, passenger_id: str) -> list[models.LedgerEntry]:
    e = models.LedgerEntry
    return list(
        session.scalars(select(e).where(e.passenger_id == passenger_id).order_by(e.entry_id))
    )


def latest_invoice(session: Session, passenger_id: str, month: str) -> models.Invoice | None:
    i = models.Invoice
    return session.scalar(
        select(i)
        .where(i.passenger_id == passenger_id, i.month == month)
        .order_by(i.version.desc())
        .limit(1)
    )


def add_invoice(
    session: Session,
    passenger_id: str,
    month: str,
    version: int,
    total_cents: int,
    document: str,
    now: dt.datetime,
) -> models.Invoice:
    invoice = models.Invoice(
        passenger_id=passenger_id,
        month=month,
        version=version,
        total_cents=total_cents,
        document=document,
        created_at=now,
    )
    session.add(invoice)
    session.flush()
    return invoice


def passenger_invoices(session: Session, passenger_id: str) -> list[models.Invoice]:
    i = models.Invoice
    return list(
        session.scalars(
            select(i).where(i.passenger_id == passenger_id).order_by(i.month, i.version)
        )
    )


def passenger_disputes(session: Session, passenger_id: str) -> list[models.Dispute]:
    d = models.Dispute
    return list(
        session.scalars(select(d).where(d.passenger_id == passenger_id).order_by(d.dispute_id))
    )


def disputes(session: Session, status: str | None) -> list[models.Dispute]:
    d = models.Dispute
    stmt = select(d).order_by(d.created_at, d.dispute_id)
    if status is not None:
        stmt = stmt.where(d.status == status)
    return list(session.scalars(stmt))


def trip(session: Session, trip_id: str) -> models.Trip | None:
    """The trip with this id, if any."""
    return session.get(models.Trip, trip_id)


def trips_by_id(session: Session, trip_ids: Sequence[str]) -> dict[str, models.Trip]:
    """The trips with these ids that exist, by id (one query for all)."""
    if not trip_ids:
        return {}
    t = models.Trip
    return {row.trip_id: row for row in session.scalars(select(t).where(t.trip_id.in_(trip_ids)))}


def invoice(session: Session, invoice_id: int) -> models.Invoice | None:
    """The invoice with this id, if any."""
    return session.get(models.Invoice, invoice_id)


def operator_names(session: Session, operator_ids: Sequence[int]) -> dict[int, str]:
    """The names of the operators with these ids that exist, by id (one query for all)."""
    if not operator_ids:
        return {}
    o = models.Operator
    rows = session.execute(select(o.operator_id, o.name).where(o.operator_id.in_(operator_ids)))
    return {operator_id: name for operator_id, name in rows}


def oldest_waiting_data(session: Session) -> dt.datetime | None:
    """When the oldest data waiting for a worker arrived (parked units left out)."""
    w = models.WorkUnit
    return session.scalar(
        select(func.min(w.data_received_at)).where(w.dirty.is_(True), w.parked.is_(False))
    )
