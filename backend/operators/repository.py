"""SQL of the operators' side: operators and their web sessions and login throttle, the
dispute queue, a trip's review (device key, sightings and events around it, corrections and
disputes) and the pages' aggregates (dashboard, trip lists across days, a journey's stops).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import ColumnElement, and_, case, delete, func, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from backend import models


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


def operator_names(session: Session, operator_ids: Sequence[int]) -> dict[int, str]:
    """The names of the operators with these ids that exist, by id (one query for all)."""
    if not operator_ids:
        return {}
    o = models.Operator
    rows = session.execute(select(o.operator_id, o.name).where(o.operator_id.in_(operator_ids)))
    return {operator_id: name for operator_id, name in rows}


@dataclass(frozen=True)
class SightingPoint:
    """One sighting: UTC epoch ms, RSSI (dBm) and how many adverts the window heard (n)."""

    t: int
    rssi: int
    n: int


@dataclass(frozen=True)
class EventPoint:
    """One vehicle event: UTC epoch ms, its type and its stop (if any)."""

    t: int
    type: str
    stop_id: str | None


def device_key(session: Session, device_id: str) -> bytes | None:
    """The key of the device with this id, if it is (still) registered."""
    d = models.Device
    return session.scalar(select(d.device_key).where(d.device_id == device_id))


def sightings_between(
    session: Session,
    vehicle_id: str,
    days: Sequence[dt.date],
    start: int,
    end: int,
    tokens: Sequence[bytes],
) -> list[SightingPoint]:
    """The vehicle's sightings of these tokens on these service days in ``[start, end]``,
    by time."""
    s = models.Sighting
    rows = session.execute(
        select(s.t, s.rssi, s.n)
        .where(
            s.vehicle_id == vehicle_id,
            s.service_day.in_(days),
            s.t >= start,
            s.t <= end,
            s.token.in_(tokens),
        )
        .order_by(s.t)
    ).all()
    return [SightingPoint(t, rssi, n) for t, rssi, n in rows]


def phone_points_between(
    session: Session, device_id: str, vehicle_id: str, start: int, end: int
) -> tuple[list[SightingPoint], list[EventPoint]]:
    """What the device's phone heard of the vehicle's beacon in ``[start, end]`` and its
    region enter/exit events then, each by time."""
    b, r = models.BeaconSighting, models.PhoneRegionEvent
    beacons = session.execute(
        select(b.t, b.rssi, b.n)
        .where(b.device_id == device_id, b.vehicle_id == vehicle_id, b.t >= start, b.t <= end)
        .order_by(b.t)
    ).all()
    regions = session.execute(
        select(r.t, r.type).where(r.device_id == device_id, r.t >= start, r.t <= end).order_by(r.t)
    ).all()
    return (
        [SightingPoint(t, rssi, n) for t, rssi, n in beacons],
        [EventPoint(t, kind, None) for t, kind in regions],
    )


def stop_and_door_events(
    session: Session, vehicle_id: str, start: int, end: int
) -> list[EventPoint]:
    """The vehicle's arrivals, departures and door events in ``[start, end]``, in order."""
    e = models.VehicleEvent
    rows = session.execute(
        select(e.t, e.type, e.stop_id)
        .where(
            e.vehicle_id == vehicle_id,
            e.t >= start,
            e.t <= end,
            e.type.in_(("arrival", "departure", "doors_open", "doors_closed")),
        )
        .order_by(e.t, e.event_id)
    ).all()
    return [EventPoint(t, type_, stop_id) for t, type_, stop_id in rows]


def trip_corrections(session: Session, trip_id: str) -> list[models.TripCorrection]:
    """The trip's corrections, oldest first."""
    c = models.TripCorrection
    return list(session.scalars(select(c).where(c.trip_id == trip_id).order_by(c.correction_id)))


def trips_per_day(session: Session, first: dt.date, last: dt.date) -> dict[dt.date, int]:
    """Billed trips (conflict losers left out) per service day in ``[first, last]``."""
    t = models.Trip
    rows = session.execute(
        select(t.service_day, func.count())
        .where(t.service_day >= first, t.service_day <= last, t.conflict_lost.is_(False))
        .group_by(t.service_day)
    )
    return {day: int(count) for day, count in rows}


def confidences(session: Session, first: dt.date, last: dt.date) -> list[float]:
    """The confidences of the billed trips of service days in ``[first, last]``."""
    t = models.Trip
    return list(
        session.scalars(
            select(t.confidence).where(
                t.service_day >= first, t.service_day <= last, t.conflict_lost.is_(False)
            )
        )
    )


def newest_trip_day(session: Session) -> dt.date | None:
    """The newest service day with a trip, if any."""
    return session.scalar(select(func.max(models.Trip.service_day)))


def open_disputes_count(session: Session) -> int:
    """How many disputes are open."""
    d = models.Dispute
    return int(session.scalar(select(func.count()).where(d.status == "open")) or 0)


def revenue_by_month(session: Session, months: int) -> list[tuple[str, int]]:
    """Ledger balance (charges minus reversals, cents) of the newest ``months`` billing months,
    oldest first."""
    e = models.LedgerEntry
    rows = session.execute(
        select(e.month, func.sum(e.amount_cents))
        .group_by(e.month)
        .order_by(e.month.desc())
        .limit(months)
    ).all()
    return [(month, int(total or 0)) for month, total in reversed(rows)]


def trip_flags(session: Session, trip_ids: Sequence[str]) -> tuple[set[str], set[str]]:
    """Of these trips: the ones corrected by an operator, and the ones with an open dispute."""
    if not trip_ids:
        return set(), set()
    c, d = models.TripCorrection, models.Dispute
    corrected = set(session.scalars(select(c.trip_id).where(c.trip_id.in_(trip_ids))))
    disputed = set(
        session.scalars(select(d.trip_id).where(d.trip_id.in_(trip_ids), d.status == "open"))
    )
    return corrected, disputed


def journey_stops(session: Session, trip: models.Trip) -> list[str]:
    """The stops the trip's journey called at, in order (each once): the choices for a
    corrected boarding or alighting stop."""
    return journey_stops_of(session, [trip])[trip.trip_id]


def journey_stops_of(session: Session, trips: Sequence[models.Trip]) -> dict[str, list[str]]:
    """``journey_stops`` of each trip, by trip id, with one query for all of them.

    A journey starts at its newest ``journey`` event at or before boarding (at boarding if
    there is none) and ends at the next ``journey`` event of another journey (if any)."""
    if not trips:
        return {}
    e = models.VehicleEvent
    rows = session.execute(
        select(e.vehicle_id, e.service_day, e.t, e.type, e.journey_id, e.stop_id)
        .where(
            e.vehicle_id.in_(sorted({t.vehicle_id for t in trips})),
            e.service_day.in_(sorted({t.service_day for t in trips})),
            e.type.in_(("journey", "arrival")),
        )
        .order_by(e.t, e.event_id)
    ).all()
    by_vehicle_day: dict[tuple[str, dt.date], list[tuple[int, str, str | None, str | None]]] = {}
    for vehicle_id, day, t, type_, journey_id, stop_id in rows:
        by_vehicle_day.setdefault((vehicle_id, day), []).append((t, type_, journey_id, stop_id))
    out: dict[str, list[str]] = {}
    for trip in trips:
        events = by_vehicle_day.get((trip.vehicle_id, trip.service_day), [])
        starts = [
            t
            for t, type_, journey_id, _ in events
            if type_ == "journey" and journey_id == trip.journey_id and t <= trip.board_time
        ]
        start = max(starts) if starts else trip.board_time
        ends = [
            t
            for t, type_, journey_id, _ in events
            if type_ == "journey"
            and t > start
            and journey_id is not None
            and journey_id != trip.journey_id
        ]
        end = min(ends) if ends else None
        stops: list[str] = []
        for t, type_, _, stop_id in events:
            if type_ != "arrival" or t < start or (end is not None and t >= end):
                continue
            if stop_id is not None and stop_id not in stops:
                stops.append(stop_id)
        out[trip.trip_id] = stops
    return out


def passenger_ledger_by_month(session: Session, passenger_id: str) -> list[tuple[str, int]]:
    """The passenger's ledger balance (cents) per billing month, oldest first."""
    e = models.LedgerEntry
    rows = session.execute(
        select(e.month, func.sum(e.amount_cents))
        .where(e.passenger_id == passenger_id)
        .group_by(e.month)
        .order_by(e.month)
    )
    return [(month, int(total or 0)) for month, total in rows]


def failed_logins_since(
    session: Session,
    since: dt.datetime,
    *,
    address: str,
    name: str | None = None,
    exclude: int | None = None,
) -> list[dt.datetime]:
    """Times of the failed logins from ``address`` (for ``name`` only, if given) after
    ``since``, oldest first, leaving out attempt ``exclude``. Attempts stored before 0005
    have no address and never count."""
    a = models.LoginAttempt
    stmt = select(a.attempted_at).where(a.address == address, a.attempted_at > since)
    if name is not None:
        stmt = stmt.where(a.name == name)
    if exclude is not None:
        stmt = stmt.where(a.attempt_id != exclude)
    return list(session.scalars(stmt.order_by(a.attempted_at, a.attempt_id)))


def add_failed_login(session: Session, name: str, address: str, now: dt.datetime) -> int:
    """Store an attempt as failed (until it succeeds); returns its id."""
    attempt = models.LoginAttempt(name=name, address=address, attempted_at=now)
    session.add(attempt)
    session.flush()
    return attempt.attempt_id


def delete_login_attempt(session: Session, attempt_id: int) -> None:
    """Delete one stored login attempt."""
    a = models.LoginAttempt
    session.execute(delete(a).where(a.attempt_id == attempt_id))


def forget_failed_logins(session: Session, name: str, address: str) -> None:
    """A successful login wipes the failures for its name from its address (not those from
    elsewhere, nor the address's failures for other names)."""
    a = models.LoginAttempt
    session.execute(delete(a).where(a.name == name, a.address == address))


def prune_failed_logins(session: Session, before: dt.datetime) -> None:
    """Failures older than the memory count no more: the table holds one memory's worth,
    however many names are tried."""
    a = models.LoginAttempt
    session.execute(delete(a).where(a.attempted_at <= before))


def add_operator_session(
    session: Session, digest: bytes, operator_id: int, now: dt.datetime, expires_at: dt.datetime
) -> None:
    """Store a new web session of the operator."""
    session.add(
        models.OperatorSession(
            session_sha256=digest, operator_id=operator_id, created_at=now, expires_at=expires_at
        )
    )
    session.flush()


def session_operator(session: Session, digest: bytes, now: dt.datetime) -> models.Operator | None:
    """The operator of the unexpired web session with this id hash, if both still exist."""
    o, s = models.Operator, models.OperatorSession
    return session.scalar(
        select(o)
        .join(s, s.operator_id == o.operator_id)
        .where(s.session_sha256 == digest, s.expires_at > now)
    )


def end_operator_session(session: Session, digest: bytes) -> None:
    """Delete the web session with this id hash."""
    s = models.OperatorSession
    session.execute(delete(s).where(s.session_sha256 == digest))


def prune_operator_sessions(session: Session, now: dt.datetime) -> None:
    """Expired sessions are of no use to anyone: the table holds only live ones."""
    s = models.OperatorSession
    session.execute(delete(s).where(s.expires_at <= now))


# --- the pages' search, paged lists and quality figures --------------------------------------


@dataclass(frozen=True, slots=True)
class TripQuery:
    """Filters of the trip list (None: any). ``sort``: ``time`` (by boarding: oldest first
    within a day, newest first across days) or ``confidence`` (lowest first)."""

    day: dt.date | None = None
    line: str | None = None
    vehicle_id: str | None = None
    max_confidence: float | None = None
    passenger_id: str | None = None
    device_id: str | None = None
    sort: str = "time"


def trips_matching(
    session: Session, q: TripQuery, offset: int = 0, limit: int | None = None
) -> list[models.Trip]:
    """The billed trips (conflict losers left out) that match ``q``, in its order, from
    ``offset`` on (at most ``limit``)."""
    t = models.Trip
    stmt = select(t).where(t.conflict_lost.is_(False))
    if q.day is not None:
        stmt = stmt.where(t.service_day == q.day)
    if q.line is not None:
        stmt = stmt.where(t.line == q.line)
    if q.vehicle_id is not None:
        stmt = stmt.where(t.vehicle_id == q.vehicle_id)
    if q.max_confidence is not None:
        stmt = stmt.where(t.confidence <= q.max_confidence)
    if q.passenger_id is not None:
        stmt = stmt.where(t.passenger_id == q.passenger_id)
    if q.device_id is not None:
        stmt = stmt.where(t.device_id == q.device_id)
    if q.sort == "confidence":
        stmt = stmt.order_by(t.confidence, t.board_time, t.trip_id)
    elif q.day is not None:
        stmt = stmt.order_by(t.board_time, t.vehicle_id, t.device_id, t.trip_id)
    else:
        stmt = stmt.order_by(t.board_time.desc(), t.trip_id)
    return list(session.scalars(stmt.offset(offset).limit(limit)))


def _prefix(column: InstrumentedAttribute[str], text: str, dialect: str) -> ColumnElement[bool]:
    """``column`` starts with ``text`` (LIKE with ``%``/``_`` escaped; callers re-check the
    case, since SQLite's LIKE ignores it). SQLite uses no index for a case-insensitive LIKE,
    so there the same prefix is also given as a range of code points, which its binary
    collation orders as the index does; PostgreSQL finds the prefix through an index with
    the pattern operator class (``ix_trips_vehicle_board``) or one in a C-collated
    database."""
    like = column.startswith(text, autoescape=True)
    if dialect != "sqlite" or not text:
        return like
    bounded = and_(like, column >= text)
    last = ord(text[-1])
    if last >= 0x10FFFF:
        return bounded
    after = last + 1 if not 0xD800 <= last + 1 <= 0xDFFF else 0xE000  # no surrogates
    return and_(bounded, column < text[:-1] + chr(after))


def ids_starting_with(session: Session, kind: str, text: str, limit: int) -> list[str]:
    """Up to ``limit`` ids of ``kind`` (``passenger``, ``device``, ``trip``, ``vehicle``)
    that start with ``text``, in order; a passenger or device is also found by the trips it
    left (an account deleted since keeps none, but a retention-kept trip names it)."""
    columns: tuple[InstrumentedAttribute[str], ...] = {
        "passenger": (models.Passenger.passenger_id, models.Trip.passenger_id),
        "device": (models.Device.device_id, models.Trip.device_id),
        "trip": (models.Trip.trip_id,),
        "vehicle": (models.Vehicle.vehicle_id, models.Trip.vehicle_id),
    }[kind]
    dialect = session.get_bind().dialect.name
    found: set[str] = set()
    for column in columns:
        rows = session.scalars(
            select(column)
            .where(_prefix(column, text, dialect))
            .distinct()
            .order_by(column)
            .limit(limit)
        )
        found.update(r for r in rows if r.startswith(text))
    return sorted(found)[:limit]


def passengers_page(session: Session, offset: int, limit: int) -> list[models.Passenger]:
    """Passengers, newest sign-up first."""
    p = models.Passenger
    return list(
        session.scalars(
            select(p).order_by(p.created_at.desc(), p.passenger_id).offset(offset).limit(limit)
        )
    )


def device_owners(session: Session, device_ids: Sequence[str]) -> dict[str, str]:
    """The passenger of each of these devices that is registered, by device id."""
    if not device_ids:
        return {}
    d = models.Device
    rows = session.execute(select(d.device_id, d.passenger_id).where(d.device_id.in_(device_ids)))
    return {device_id: passenger_id for device_id, passenger_id in rows}


def trip_counts(session: Session, passenger_ids: Sequence[str]) -> dict[str, int]:
    """Billed trips per passenger (of these), by passenger id."""
    if not passenger_ids:
        return {}
    t = models.Trip
    rows = session.execute(
        select(t.passenger_id, func.count())
        .where(t.passenger_id.in_(passenger_ids), t.conflict_lost.is_(False))
        .group_by(t.passenger_id)
    )
    return {pid: int(n) for pid, n in rows}


def disputes_page(
    session: Session, status: str | None, offset: int, limit: int, passenger_id: str | None = None
) -> list[models.Dispute]:
    """Disputes in ``status`` (any for None; of one passenger if given), oldest first."""
    d = models.Dispute
    stmt = select(d).order_by(d.created_at, d.dispute_id)
    if status is not None:
        stmt = stmt.where(d.status == status)
    if passenger_id is not None:
        stmt = stmt.where(d.passenger_id == passenger_id)
    return list(session.scalars(stmt.offset(offset).limit(limit)))


def entitlements_page(
    session: Session, status: str | None, offset: int, limit: int
) -> list[models.Entitlement]:
    """Entitlements in ``status`` (any for None), oldest first."""
    e = models.Entitlement
    stmt = select(e).order_by(e.entitlement_id)
    if status is not None:
        stmt = stmt.where(e.status == status)
    return list(session.scalars(stmt.offset(offset).limit(limit)))


def invoices_page(
    session: Session, passenger_id: str, offset: int, limit: int
) -> list[models.Invoice]:
    """The passenger's invoices, newest month and version first."""
    i = models.Invoice
    return list(
        session.scalars(
            select(i)
            .where(i.passenger_id == passenger_id)
            .order_by(i.month.desc(), i.version.desc())
            .offset(offset)
            .limit(limit)
        )
    )


def dispute_corrections(
    session: Session, dispute_ids: Sequence[int]
) -> dict[int, list[models.TripCorrection]]:
    """The corrections that resolving these disputes made, by dispute id (oldest first)."""
    if not dispute_ids:
        return {}
    c = models.TripCorrection
    out: dict[int, list[models.TripCorrection]] = {}
    for row in session.scalars(
        select(c).where(c.dispute_id.in_(dispute_ids)).order_by(c.correction_id)
    ):
        if row.dispute_id is not None:
            out.setdefault(row.dispute_id, []).append(row)
    return out


@dataclass(frozen=True, slots=True)
class QualityRow:
    """Detection quality of one line or vehicle over a period."""

    key: str
    trips: int
    low_confidence: int
    """Trips below the threshold asked for."""
    disputes: int
    """Disputes opened on these trips (any status)."""
    corrected: int
    """Trips with at least one operator correction."""


def quality(
    session: Session, by: str, first: dt.date, last: dt.date, low_below: float
) -> list[QualityRow]:
    """Per ``by`` (``line`` or ``vehicle``): the billed trips of service days in
    ``[first, last]``, how many are below ``low_below`` confidence, the disputes opened on
    them and how many were corrected; one query, by key."""
    t, d, c = models.Trip, models.Dispute, models.TripCorrection
    key = {"line": t.line, "vehicle": t.vehicle_id}[by]
    disputes = select(d.trip_id, func.count().label("n")).group_by(d.trip_id).subquery()
    corrected = select(c.trip_id).distinct().subquery()
    rows = session.execute(
        select(
            key,
            func.count(),
            func.sum(case((t.confidence < low_below, 1), else_=0)),
            func.sum(func.coalesce(disputes.c.n, 0)),
            func.count(corrected.c.trip_id),
        )
        .outerjoin(disputes, disputes.c.trip_id == t.trip_id)
        .outerjoin(corrected, corrected.c.trip_id == t.trip_id)
        .where(t.service_day >= first, t.service_day <= last, t.conflict_lost.is_(False))
        .group_by(key)
        .order_by(key)
    )
    return [
        QualityRow(k, int(n), int(low or 0), int(disputed or 0), int(fixed or 0))
        for k, n, low, disputed, fixed in rows
    ]


@dataclass(frozen=True, slots=True)
class VehicleDataRow:
    """What one bus sent over a period (sums of ``models.VehicleDayData``)."""

    vehicle_id: str
    days: int
    journeys: int
    inferred_journeys: int
    """Journeys whose ``journey`` event never came (cut where the bus turned or laid over)."""
    calls: int
    derived_calls: int
    """Calls whose arrival and departure events never came, derived from GNSS."""
    fixes: int
    door_events: int


def vehicle_data(session: Session, first: dt.date, last: dt.date) -> list[VehicleDataRow]:
    """Per vehicle: what it sent on the service days in ``[first, last]``; one query."""
    v = models.VehicleDayData
    rows = session.execute(
        select(
            v.vehicle_id,
            func.count(),
            func.sum(v.journeys),
            func.sum(v.inferred_journeys),
            func.sum(v.calls),
            func.sum(v.derived_calls),
            func.sum(v.fixes),
            func.sum(v.door_events),
        )
        .where(v.service_day >= first, v.service_day <= last)
        .group_by(v.vehicle_id)
        .order_by(v.vehicle_id)
    )
    return [VehicleDataRow(str(k), *(int(x or 0) for x in rest)) for k, *rest in rows]


def ledger_postings(
    session: Session, since: dt.datetime, before: dt.datetime
) -> list[tuple[dt.datetime, int]]:
    """``(posted at, amount in cents)`` of the ledger entries posted in ``[since, before)``
    (the caller sums them per local day: a day's bounds in SQL differ per dialect)."""
    e = models.LedgerEntry
    rows = session.execute(
        select(e.created_at, e.amount_cents)
        .where(e.created_at >= since, e.created_at < before)
        .order_by(e.created_at)
    )
    return [(at, int(cents)) for at, cents in rows]
