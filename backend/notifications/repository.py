"""The SQL of notifications: the queue (insert once, claim, settle), the event stream's
reads, and push subscriptions."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session

from backend import models
from backend.db import core_connection, dialect_insert


def recent_vehicle_trips(
    session: Session, day: dt.date, vehicle_id: str, since_ms: int
) -> list[models.Trip]:
    """The vehicle-day's trips boarded or alighted at ``since_ms`` (UTC epoch ms) or later."""
    t = models.Trip
    return list(
        session.scalars(
            select(t).where(
                t.service_day == day,
                t.vehicle_id == vehicle_id,
                or_(t.board_time >= since_ms, t.alight_time >= since_ms),
            )
        )
    )


def enqueue(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Queue notifications; one already stored for its (passenger, trip, kind) is left as
    it is (``ON CONFLICT DO NOTHING``): the at-most-once of notifications."""
    if not rows:
        return
    n = models.Notification
    stmt = (
        dialect_insert(session.get_bind().dialect.name)(n)
        .values([dict(r, status="queued", pushed=0) for r in rows])
        .on_conflict_do_nothing(index_elements=["passenger_id", "trip_id", "kind"])
    )
    core_connection(session).execute(stmt)


def claim_queued(session: Session, limit: int) -> list[models.Notification]:
    """Up to ``limit`` queued notifications, oldest first, marked ``sending`` for this caller
    only (rows another drain holds are skipped on PostgreSQL; SQLite has one writer)."""
    n = models.Notification
    ids = list(
        session.scalars(
            select(n.notification_id)
            .where(n.status == "queued")
            .order_by(n.notification_id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    )
    if not ids:
        return []
    session.execute(
        update(n).where(n.notification_id.in_(ids), n.status == "queued").values(status="sending")
    )
    return list(session.scalars(select(n).where(n.notification_id.in_(ids))))


def notification(session: Session, notification_id: int) -> models.Notification | None:
    return session.get(models.Notification, notification_id)


def trip(session: Session, trip_id: str) -> models.Trip | None:
    return session.get(models.Trip, trip_id)


def passenger_category(session: Session, passenger_id: str) -> str | None:
    return session.scalar(
        select(models.Passenger.rider_category).where(models.Passenger.passenger_id == passenger_id)
    )


def settle(
    session: Session, notification_id: int, status: str, payload: str | None, now: dt.datetime
) -> None:
    n = models.Notification
    session.execute(
        update(n)
        .where(n.notification_id == notification_id)
        .values(status=status, payload=payload, ready_at=now if status == "ready" else None)
    )


def count_pushed(session: Session, notification_id: int, pushed: int) -> None:
    n = models.Notification
    session.execute(update(n).where(n.notification_id == notification_id).values(pushed=pushed))


def ready_after(
    session: Session, passenger_id: str, after_id: int | None, backlog: int
) -> list[models.Notification]:
    """The passenger's ready notifications after ``after_id`` in order, or (None) the newest
    ``backlog`` of them."""
    n = models.Notification
    mine = (n.passenger_id == passenger_id, n.status == "ready")
    if after_id is None:
        newest = list(
            session.scalars(
                select(n).where(*mine).order_by(n.notification_id.desc()).limit(backlog)
            )
        )
        return newest[::-1]
    return list(
        session.scalars(
            select(n).where(*mine, n.notification_id > after_id).order_by(n.notification_id)
        )
    )


def passenger_notifications(session: Session, passenger_id: str) -> list[models.Notification]:
    n = models.Notification
    return list(
        session.scalars(select(n).where(n.passenger_id == passenger_id).order_by(n.notification_id))
    )


def subscriptions(session: Session, passenger_id: str) -> list[models.PushSubscription]:
    s = models.PushSubscription
    return list(
        session.scalars(select(s).where(s.passenger_id == passenger_id).order_by(s.subscription_id))
    )


def put_subscription(
    session: Session, passenger_id: str, endpoint: str, p256dh: str, auth: str
) -> None:
    """Store a browser's subscription; an endpoint stored before (the same browser, perhaps
    signed in as someone else since) is replaced."""
    s = models.PushSubscription
    session.execute(delete(s).where(s.endpoint == endpoint))
    session.add(s(passenger_id=passenger_id, endpoint=endpoint, p256dh=p256dh, auth=auth))
    session.flush()


def delete_subscription(session: Session, endpoint: str) -> None:
    s = models.PushSubscription
    session.execute(delete(s).where(s.endpoint == endpoint))


def delete_passenger_subscriptions(session: Session, passenger_id: str) -> int:
    s = models.PushSubscription
    result = session.execute(delete(s).where(s.passenger_id == passenger_id))
    return int(getattr(result, "rowcount", 0) or 0)


def delete_passenger_rows(session: Session, passenger_id: str) -> None:
    """Account deletion: the passenger's notifications and subscriptions."""
    delete_passenger_subscriptions(session, passenger_id)
    n = models.Notification
    session.execute(delete(n).where(n.passenger_id == passenger_id))
