"""SQL for housekeeping: the PostgreSQL partitions of ``sightings`` and the retention
deletes. Partition names come from ``backend.maintenance.partition_name`` only, never
from input."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import delete, text
from sqlalchemy.orm import Session

from backend import models


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
