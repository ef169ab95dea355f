"""SQL of trips: the work units (dirty marks, claims with leases, failures and parking),
reconciliation's inputs (a vehicle-day's events and sightings) and outputs (its trips, the
day's settled trips), and the queue's health for operations and metrics.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import bindparam, case, delete, func, or_, select, update
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from backend import models
from backend.const import OWN_UNIT_HEAD_START_MS
from backend.db import core_connection, dialect_insert, insert_rows
from backend.trips.reconciliation import RECONCILED_EVENTS, DetectedTrip, EventRecord


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
    row; reconciling a vehicle unit marks its day's conflict unit (``trips.service.run_unit``).
    """
    if not units:
        return
    core_connection(session).execute(
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
    stmt = dialect_insert(dialect)(w)
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
    connection = core_connection(session)
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
    reconciled_by: str | None = None
    """The worker that last reconciled the unit (``WorkUnit.reconciled_by``)."""


def claim_unit(
    session: Session,
    now: dt.datetime,
    lease: dt.timedelta,
    day: dt.date | None = None,
    worker: str | None = None,
) -> ClaimedUnit | None:
    """Take one dirty unit whose lease is free; vehicle units before their day's conflicts,
    and among them the one whose waiting data is oldest (``dirty_from``): under load every
    bus uploads again before its unit is done, and an order by vehicle id alone served the
    same first buses over and over while the last ones' be-outs waited. A ``worker`` takes
    the units it reconciled last first, unless another's waits ``OWN_UNIT_HEAD_START_MS``
    longer: it holds their sightings (``trips.service.SightingsCache``).

    On PostgreSQL concurrent workers skip each other's locked rows (``SKIP LOCKED``); the
    lease keeps the unit theirs after this transaction commits.
    """
    w = models.WorkUnit
    waiting_from: ColumnElement[int] = func.coalesce(w.dirty_from, 0)
    if worker is not None:
        others = case((w.reconciled_by == worker, 0), else_=OWN_UNIT_HEAD_START_MS)
        waiting_from = waiting_from + others
    stmt = (
        select(w.service_day, w.vehicle_id, w.generation, w.dirty_from, w.reconciled_by)
        .where(
            w.dirty.is_(True),
            w.parked.is_(False),
            or_(w.lease_until.is_(None), w.lease_until < now),
        )
        .order_by(
            w.service_day,
            (w.vehicle_id == models.DAY_UNIT),
            waiting_from,
            w.vehicle_id,
        )
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
    return ClaimedUnit(
        row.service_day, row.vehicle_id, row.generation, row.dirty_from or 0, row.reconciled_by
    )


def complete_unit(
    session: Session, unit: ClaimedUnit, now: dt.datetime, worker: str | None = None
) -> bool:
    """Release the lease; the unit is clean unless new data arrived meanwhile (returns that).
    A clean unit records the ``worker`` that reconciled it."""
    w = models.WorkUnit
    where = (w.service_day == unit.service_day, w.vehicle_id == unit.vehicle_id)
    done = session.execute(
        update(w)
        .where(*where, w.generation == unit.generation)
        .values(
            dirty=False,
            lease_until=None,
            reconciled_at=now,
            reconciled_by=worker,
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


def unit_dirty_from(session: Session, day: dt.date, vehicle_id: str) -> int:
    """The unit's ``dirty_from`` as stored now (0: none, or the whole day)."""
    w = models.WorkUnit
    pending = session.scalar(
        select(w.dirty_from).where(w.service_day == day, w.vehicle_id == vehicle_id)
    )
    return pending or 0


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


def vehicle_day_events(session: Session, day: dt.date, vehicle_id: str) -> list[EventRecord]:
    """The vehicle's journey, stop, position and door events of the day, by time."""
    e = models.VehicleEvent
    rows = session.execute(
        select(e.t, e.type, e.stop_id, e.line, e.journey_id, e.direction, e.lat, e.lon, e.speed_mps)
        .where(e.service_day == day, e.vehicle_id == vehicle_id, e.type.in_(RECONCILED_EVENTS))
        .order_by(e.t, e.event_id)
    )
    return [EventRecord(*row) for row in rows]


def save_vehicle_day_data(session: Session, data: models.VehicleDayData) -> None:
    """Store what the vehicle sent on the day, replacing the previous count (one upsert: it
    runs on every rebuild)."""
    v = models.VehicleDayData
    key = ["service_day", "vehicle_id"]
    columns = [c.name for c in v.__table__.columns]
    stmt = dialect_insert(session.get_bind().dialect.name)(v).values(
        **{name: getattr(data, name) for name in columns}
    )
    counts = {name: stmt.excluded[name] for name in columns if name not in key}
    session.execute(stmt.on_conflict_do_update(index_elements=key, set_=counts))


@dataclass(frozen=True)
class SightingRows:
    """A vehicle's sightings of one day from some data time on, column by column, by time
    (then batch and place in it): window start (UTC epoch ms), token, RSSI and advertised tx
    (dBm; NaN where the phone gave none), and the window length of each one's batch (ms)."""

    t: npt.NDArray[np.int64]
    token: list[bytes]
    rssi: npt.NDArray[np.int16]
    tx: npt.NDArray[np.float32]
    window_ms: npt.NDArray[np.int32]


@dataclass(frozen=True)
class VehicleDayEnds:
    """How far a vehicle-day's data reaches (UTC epoch ms)."""

    seal_end: int
    """Its latest event, or the time up to which its uploads are complete if later
    (heartbeats, see ``sealed_until``): the newest data time but the sightings'."""
    data_end: int
    """Its last sighting's window end, or ``seal_end`` if later: the newest data time."""


def vehicle_day_ends(session: Session, day: dt.date, vehicle_id: str) -> VehicleDayEnds:
    """``VehicleDayEnds`` of a vehicle-day, in one round trip (every rebuild asks)."""
    e, w, s, b = models.VehicleEvent, models.WorkUnit, models.Sighting, models.Batch
    last_event = select(func.max(e.t)).where(e.service_day == day, e.vehicle_id == vehicle_id)
    sealed = select(w.sealed_until).where(w.service_day == day, w.vehicle_id == vehicle_id)
    last_window = (
        select(s.t + b.window_ms)
        .join(b, b.batch_id == s.batch_id)
        .where(s.service_day == day, s.vehicle_id == vehicle_id)
        .order_by(s.t.desc())
        .limit(1)
    )
    row = session.execute(
        select(
            last_event.scalar_subquery(), sealed.scalar_subquery(), last_window.scalar_subquery()
        )
    ).one()
    seal_end = max(row[0] or 0, row[1] or 0)
    return VehicleDayEnds(seal_end, max(seal_end, row[2] or 0))


def vehicle_day_sighting_rows(
    session: Session, day: dt.date, vehicle_id: str, since: int = 0
) -> SightingRows:
    """A vehicle's sightings of a service day from data time ``since`` on (0: all)."""
    s, b = models.Sighting, models.Batch
    mine = (s.service_day == day, s.vehicle_id == vehicle_id, s.t >= since)
    # Core, not the ORM: a rebuild reads a journey's sightings, and rows need no objects.
    connection = core_connection(session)
    rows = connection.execute(
        select(s.t, s.token, s.rssi, s.tx, s.batch_id).where(*mine).order_by(s.t, s.batch_id, s.k)
    ).all()
    windows: dict[int, int] = {}
    if rows:
        in_rows = b.batch_id.in_(select(s.batch_id).where(*mine))
        windows = dict(connection.execute(select(b.batch_id, b.window_ms).where(in_rows)).all())
    t, token, rssi, tx, batch = zip(*rows, strict=True) if rows else ((),) * 5
    return SightingRows(
        np.array(t, dtype=np.int64),
        list(token),
        np.array(rssi, dtype=np.int16),
        np.array(tx, dtype=np.float32),  # None -> NaN
        np.array([windows[k] for k in batch], dtype=np.int32),
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
    was known from then, whatever later uploads add. Written through Core: ``Trip`` objects
    the session holds are not updated (the rebuild's session holds none).
    """
    t = models.Trip
    mine = (t.service_day == day, t.vehicle_id == vehicle_id, t.board_time >= boarded_from)
    # Core, not the ORM: every rebuild replaces its trips, and no Trip object is loaded here.
    connection = core_connection(session)
    stored = connection.execute(
        select(t.trip_id, t.alight_known_at, t.alight_stop_id, t.status).where(*mine)
    ).all()
    known = {r.trip_id: r.alight_known_at for r in stored if r.status == "closed"}
    known_alight = {r.trip_id: r.alight_stop_id for r in stored}
    connection.execute(delete(t).where(*mine))
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


def trip(session: Session, trip_id: str) -> models.Trip | None:
    """The trip with this id, if any."""
    return session.get(models.Trip, trip_id)


def trips_by_id(session: Session, trip_ids: Sequence[str]) -> dict[str, models.Trip]:
    """The trips with these ids that exist, by id (one query for all)."""
    if not trip_ids:
        return {}
    t = models.Trip
    return {row.trip_id: row for row in session.scalars(select(t).where(t.trip_id.in_(trip_ids)))}


def oldest_waiting_data(session: Session) -> dt.datetime | None:
    """When the oldest data waiting for a worker arrived (parked units left out)."""
    w = models.WorkUnit
    return session.scalar(
        select(func.min(w.data_received_at)).where(w.dirty.is_(True), w.parked.is_(False))
    )
