"""SQL for housekeeping: the PostgreSQL partitions of ``sightings`` and the retention
deletes. Partition names come from ``backend.maintenance.service.partition_name`` only, never
from input.

Also the purge marks (how far retention has deleted) and the retention lock that ingest
and billing hold while they read or write a service day.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import delete, func, select, text, update
from sqlalchemy.orm import Session

from backend import models
from backend.db import dialect_insert

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
    stmt = dialect_insert(session.get_bind().dialect.name)(r).values(
        kind=kind, purged_before=before, updated_at=now
    )
    session.execute(
        stmt.on_conflict_do_update(
            index_elements=["kind"],
            set_={"purged_before": before, "updated_at": now},
            where=r.purged_before < before,
        )
    )


def sighting_partition_tables(session: Session) -> list[str]:
    """The names of the tables attached to ``sightings`` as partitions (PostgreSQL)."""
    rows = session.execute(
        text(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = 'sightings'"
        )
    )
    return [name for (name,) in rows]


def default_partition_has_day(session: Session, day: dt.date) -> bool:
    """Whether the default partition holds any sighting of this service day (PostgreSQL)."""
    row = session.execute(
        text("SELECT 1 FROM sightings_default WHERE service_day = :d LIMIT 1"), {"d": day}
    ).first()
    return bool(row)


def create_day_partition(session: Session, name: str, day: dt.date) -> None:
    """Create partition ``name`` of ``sightings`` for one service day (PostgreSQL)."""
    session.execute(
        text(
            f"CREATE TABLE {name} PARTITION OF sightings "
            f"FOR VALUES FROM ('{day.isoformat()}') "
            f"TO ('{(day + dt.timedelta(days=1)).isoformat()}')"
        )
    )


def drop_partition(session: Session, name: str) -> None:
    """Drop one partition of ``sightings`` with all its rows (PostgreSQL)."""
    session.execute(text(f"DROP TABLE {name}"))


def delete_sightings_before(session: Session, day: dt.date) -> int:
    """Delete the sightings of service days before ``day``; returns how many went."""
    s = models.Sighting
    result = session.execute(delete(s).where(s.service_day < day))
    return int(getattr(result, "rowcount", 0))


def delete_trips_before(session: Session, day: dt.date) -> int:
    """Delete the trips of service days before ``day``; returns how many went."""
    t = models.Trip
    result = session.execute(delete(t).where(t.service_day < day))
    return int(getattr(result, "rowcount", 0))
