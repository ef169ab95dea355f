"""SQL for disputes and corrections: look up a trip or a dispute, find and add disputes."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session

from backend import models


def dispute(session: Session, dispute_id: int) -> models.Dispute | None:
    """The dispute with this id, if any."""
    return session.get(models.Dispute, dispute_id)


def open_dispute_of_trip(session: Session, trip_id: str) -> models.Dispute | None:
    """The trip's open dispute, if it has one."""
    d = models.Dispute
    return session.scalar(select(d).where(d.trip_id == trip_id, d.status == "open"))


def add_dispute(
    session: Session, trip_id: str, passenger_id: str, reason: str, now: dt.datetime
) -> models.Dispute:
    """Store a new open dispute and return it with its id assigned."""
    row = models.Dispute(
        trip_id=trip_id, passenger_id=passenger_id, reason=reason, status="open", created_at=now
    )
    session.add(row)
    session.flush()
    return row
