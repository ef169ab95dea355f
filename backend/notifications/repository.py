"""The SQL of notifications: the queue (insert once, claim, settle), the event stream's
reads, and push subscriptions."""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, delete, or_, select, update
from sqlalchemy.orm import Session

from backend import models
from backend.db import core_connection, dialect_insert


@dataclass(frozen=True)
class RecentTrip:
    """What the queue's rules read of a stored trip (times UTC epoch ms)."""

    passenger_id: str
    trip_id: str
    status: str
    confidence: float
    board_time: int
    alight_time: int
    conflict_lost: bool


def recent_vehicle_trips(
    session: Session, day: dt.date, vehicle_id: str, since_ms: int
) -> list[RecentTrip]:
    """The vehicle-day's trips boarded or alighted at ``since_ms`` (UTC epoch ms) or later."""
    t = models.Trip
    rows = core_connection(session).execute(
        select(
            t.passenger_id,
            t.trip_id,
            t.status,
            t.confidence,
            t.board_time,
            t.alight_time,
            t.conflict_lost,
        ).where(
            t.service_day == day,
            t.vehicle_id == vehicle_id,
            or_(t.board_time >= since_ms, t.alight_time >= since_ms),
        )
    )
    return [RecentTrip(*row) for row in rows]


def enqueue(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Queue notifications; one already stored for its (passenger, trip, kind) is left as
    it is (``ON CONFLICT DO NOTHING``): the at-most-once of notifications."""
    if not rows:
        return
    dialect = session.get_bind().dialect.name
    core_connection(session).execute(
        _enqueue_stmt(dialect), [dict(r, status="queued", pushed=0) for r in rows]
    )


@functools.cache
def _enqueue_stmt(dialect: str) -> Any:
    # One statement with the rows as parameters (executemany), compiled once: it runs on
    # every reconciled unit.
    n = models.Notification
    return (
        dialect_insert(dialect)(n)
        .values(
            passenger_id=bindparam("passenger_id"),
            trip_id=bindparam("trip_id"),
            kind=bindparam("kind"),
            status=bindparam("status"),
            pushed=bindparam("pushed"),
        )
        .on_conflict_do_nothing(index_elements=["passenger_id", "trip_id", "kind"])
    )


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


def count_delivery(session: Session, notification_id: int) -> None:
    """Count one more push of the notification that a push service accepted."""
    n = models.Notification
    session.execute(
        update(n).where(n.notification_id == notification_id).values(pushed=n.pushed + 1)
    )


def schedule_retry(
    session: Session,
    notification_id: int,
    subscription_id: int,
    attempts: int,
    next_at: dt.datetime,
) -> None:
    """Post the notification to the subscription again at ``next_at`` (``attempts`` posts
    so far); replaces a retry stored for the pair."""
    r = models.PushRetry
    session.execute(
        delete(r).where(r.notification_id == notification_id, r.subscription_id == subscription_id)
    )
    session.add(
        r(
            notification_id=notification_id,
            subscription_id=subscription_id,
            attempts=attempts,
            next_at=next_at,
        )
    )
    session.flush()


def drop_retry(session: Session, notification_id: int, subscription_id: int) -> None:
    r = models.PushRetry
    session.execute(
        delete(r).where(r.notification_id == notification_id, r.subscription_id == subscription_id)
    )


@dataclass(frozen=True, slots=True)
class DueRetry:
    """A retry a drain has taken, with what it posts (None: the notification or the
    subscription is gone, or the notification is no longer ``ready``)."""

    notification_id: int
    subscription_id: int
    attempts: int
    payload: str | None
    ready_at: dt.datetime | None
    """Aware UTC (SQLite gives naive UTC back; it is made aware here)."""
    subscription: models.PushSubscription | None


def claim_due_retries(
    session: Session, now: dt.datetime, lease_until: dt.datetime, limit: int
) -> list[DueRetry]:
    """Up to ``limit`` retries due at ``now``, oldest first, hidden from other drains until
    ``lease_until`` (rows another drain holds are skipped on PostgreSQL)."""
    r, n, s = models.PushRetry, models.Notification, models.PushSubscription
    due = list(
        session.execute(
            select(r.notification_id, r.subscription_id, r.attempts)
            .where(r.next_at <= now)
            .order_by(r.next_at, r.notification_id, r.subscription_id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        ).all()
    )
    if not due:
        return []
    for row in due:
        session.execute(
            update(r)
            .where(
                r.notification_id == row.notification_id,
                r.subscription_id == row.subscription_id,
            )
            .values(next_at=lease_until)
        )
    notifications = {
        x.notification_id: x
        for x in session.scalars(
            select(n).where(
                n.notification_id.in_({row.notification_id for row in due}), n.status == "ready"
            )
        )
    }
    subscriptions = {
        x.subscription_id: x
        for x in session.scalars(
            select(s).where(s.subscription_id.in_({row.subscription_id for row in due}))
        )
    }
    out = []
    for row in due:
        note = notifications.get(row.notification_id)
        out.append(
            DueRetry(
                row.notification_id,
                row.subscription_id,
                row.attempts,
                note.payload if note is not None else None,
                _aware(note.ready_at) if note is not None else None,
                subscriptions.get(row.subscription_id),
            )
        )
    return out


def _aware(at: dt.datetime | None) -> dt.datetime | None:
    return at.replace(tzinfo=dt.UTC) if at is not None and at.tzinfo is None else at


def _delete_retries_of_subscriptions(session: Session, subscription_ids: Sequence[int]) -> None:
    if subscription_ids:
        r = models.PushRetry
        session.execute(delete(r).where(r.subscription_id.in_(list(subscription_ids))))


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
    delete_subscription(session, endpoint)
    s = models.PushSubscription
    session.add(s(passenger_id=passenger_id, endpoint=endpoint, p256dh=p256dh, auth=auth))
    session.flush()


def delete_subscription(session: Session, endpoint: str) -> None:
    """Forget a subscription and the retries waiting for it."""
    s = models.PushSubscription
    ids = list(session.scalars(select(s.subscription_id).where(s.endpoint == endpoint)))
    _delete_retries_of_subscriptions(session, ids)
    session.execute(delete(s).where(s.endpoint == endpoint))


def delete_passenger_subscriptions(session: Session, passenger_id: str) -> int:
    """Forget the passenger's subscriptions and the retries waiting for them."""
    s = models.PushSubscription
    ids = list(session.scalars(select(s.subscription_id).where(s.passenger_id == passenger_id)))
    _delete_retries_of_subscriptions(session, ids)
    result = session.execute(delete(s).where(s.passenger_id == passenger_id))
    return int(getattr(result, "rowcount", 0) or 0)


def delete_passenger_rows(session: Session, passenger_id: str) -> None:
    """Account deletion: the passenger's notifications and subscriptions."""
    delete_passenger_subscriptions(session, passenger_id)
    n = models.Notification
    session.execute(delete(n).where(n.passenger_id == passenger_id))
