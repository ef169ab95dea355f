"""Notifications as a service: the drain that turns queued notifications into messages (texts
in German and English, the month's price so far) and pushes them, the reads of the app's
event stream, and push subscriptions. Callers commit, except ``drain``, which runs its own
transactions (it is a background job)."""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from backend import models
from backend.billing import service as billing_service
from backend.db import transaction
from backend.notifications import repository as notifications_repo
from backend.notifications.const import (
    DRAIN_BATCH,
    PUSH_RETRY_DELAYS_S,
    PUSH_RETRY_LEASE_S,
    PUSH_TTL_S,
    SSE_BACKLOG,
)
from backend.notifications.push import PushOutcome, PushSender, Subscription, endpoint_allowed
from backend.notifications.queue import Kind
from backend.templating import euros, local_time

log = logging.getLogger(__name__)

MESSAGE_VERSION = 1
"""``version`` of the message JSON (stored, streamed and pushed)."""

_TEXTS: dict[str, dict[str, tuple[str, str]]] = {
    "de": {
        Kind.BE_IN: ("Eingecheckt", "Im Bus {line} ({vehicle}) seit {stop}, {time} Uhr."),
        Kind.BE_OUT: (
            "Ausgecheckt",
            "Ausgestiegen in {stop} um {time} Uhr. Bestpreis im Monat bisher: {price}.",
        ),
        Kind.STILL_ON_BOARD: (
            "Noch im Bus?",
            "Sind Sie noch im Bus {line} seit {stop}? Wir sind nicht sicher. Bitte prüfen Sie "
            "Ihre Fahrt in der App.",
        ),
    },
    "en": {
        Kind.BE_IN: ("Checked in", "On bus {line} ({vehicle}) since {stop}, {time}."),
        Kind.BE_OUT: (
            "Checked out",
            "Got off at {stop} at {time}. Best price this month so far: {price}.",
        ),
        Kind.STILL_ON_BOARD: (
            "Still on board?",
            "Are you still on bus {line} since {stop}? We are not sure. Please check your "
            "trip in the app.",
        ),
    },
}
"""Title and body of each kind, per language; what a rider reads is German by default."""


def _euros_en(cents: int) -> str:
    sign = "-" if cents < 0 else ""
    return f"{sign}€{abs(cents) // 100}.{abs(cents) % 100:02d}"


def message(
    notification_id: int,
    kind: Kind,
    trip: models.Trip,
    stop_names: Mapping[str, str],
    price_cents: int | None,
) -> dict[str, Any]:
    """The message of a notification (what is stored, streamed and pushed): the facts and
    the texts in both languages, the app picks the rider's."""
    closed = kind is Kind.BE_OUT
    stop_id = trip.alight_stop_id if closed else trip.board_stop_id
    at = trip.alight_time if closed else trip.board_time
    stop = stop_names.get(stop_id, stop_id)
    texts = {}
    for lang, table in _TEXTS.items():
        title, body = table[kind]
        price = "–" if price_cents is None else euros(price_cents)
        if lang == "en" and price_cents is not None:
            price = _euros_en(price_cents)
        texts[lang] = {
            "title": title,
            "body": body.format(
                line=trip.line,
                vehicle=trip.vehicle_id,
                stop=stop,
                time=local_time(at, "%H:%M"),
                price=price,
            ),
        }
    return {
        "version": MESSAGE_VERSION,
        "id": notification_id,
        "kind": kind.value,
        "trip_id": trip.trip_id,
        "line": trip.line,
        "vehicle_id": trip.vehicle_id,
        "stop_id": stop_id,
        "stop_name": stop_names.get(stop_id),
        "at": at,
        "price_cents": price_cents,
        "texts": texts,
    }


def _still_called_for(kind: Kind, trip: models.Trip | None) -> bool:
    """Whether the trip, as stored now, still calls for the queued notification (the day's
    conflicts were settled after it was queued; an open trip may have closed)."""
    if trip is None or trip.conflict_lost:
        return False
    return trip.status == "closed" if kind is Kind.BE_OUT else trip.status == "open"


@dataclass(frozen=True)
class DrainResult:
    ready: int = 0
    dropped: int = 0
    pushed: int = 0
    """Push deliveries the push services accepted (first posts and retries)."""
    retrying: int = 0
    """Posts the push services did not take yet, to be tried again."""
    given_up: int = 0
    """Retries given up (out of attempts, too old, or refused for good)."""


def _prepare(
    session: Session, n: models.Notification, stop_names: Mapping[str, str]
) -> dict[str, Any] | None:
    kind = Kind(n.kind)
    trip = notifications_repo.trip(session, n.trip_id)
    if trip is None or not _still_called_for(kind, trip):
        return None
    price = None
    if kind is Kind.BE_OUT:
        category = notifications_repo.passenger_category(session, n.passenger_id)
        if category is None:
            return None
        month = billing_service.month_of_ms(trip.board_time)
        price = billing_service.month_balance(session, n.passenger_id, category, month).total_cents
    return message(n.notification_id, kind, trip, stop_names, price)


def topic(notification_id: int) -> str:
    """The push topic of a notification (RFC 8030 §5.4: at most 32 base64url characters)."""
    return f"bibo-n{notification_id}"


def _retry_at(now: dt.datetime, attempts: int) -> dt.datetime | None:
    """When to post again after ``attempts`` posts the push service did not take, or None
    once ``PUSH_RETRY_DELAYS_S`` is used up."""
    if attempts > len(PUSH_RETRY_DELAYS_S):
        return None
    return now + dt.timedelta(seconds=PUSH_RETRY_DELAYS_S[attempts - 1])


def _post(
    sessions: sessionmaker[Session],
    sender: PushSender,
    notification_id: int,
    subscription: models.PushSubscription,
    payload: str,
    attempts: int,
    now: dt.datetime,
    tally: Counter[str],
) -> None:
    """Post once (``attempts`` counts this post) and store what follows: delivered and
    counted, the subscription forgotten (gone), a retry scheduled, or given up (``tally``
    counts them by ``DrainResult`` field)."""
    outcome = sender(
        Subscription(subscription.endpoint, subscription.p256dh, subscription.auth),
        payload,
        topic(notification_id),
    )
    with transaction(sessions) as session:
        if outcome is PushOutcome.GONE:
            notifications_repo.delete_subscription(session, subscription.endpoint)
            return
        if outcome is PushOutcome.DELIVERED:
            notifications_repo.count_delivery(session, notification_id)
            tally["pushed"] += 1
        again = _retry_at(now, attempts) if outcome is PushOutcome.RETRY else None
        if again is not None:
            notifications_repo.schedule_retry(
                session, notification_id, subscription.subscription_id, attempts, again
            )
            tally["retrying"] += 1
        else:
            notifications_repo.drop_retry(session, notification_id, subscription.subscription_id)
            if outcome is not PushOutcome.DELIVERED and attempts > 1:
                tally["given_up"] += 1


def _retry_due(
    sessions: sessionmaker[Session], now: dt.datetime, sender: PushSender, tally: Counter[str]
) -> None:
    """Post the retries due at ``now`` (``DRAIN_BATCH`` at most); a notification no longer
    ready, or older than ``PUSH_TTL_S`` since it was first sent, is given up unposted."""
    lease = now + dt.timedelta(seconds=PUSH_RETRY_LEASE_S)
    with transaction(sessions) as session:
        due = notifications_repo.claim_due_retries(session, now, lease, DRAIN_BATCH)
    oldest = now - dt.timedelta(seconds=PUSH_TTL_S)
    for r in due:
        stale = r.ready_at is None or r.ready_at < oldest
        if r.payload is None or r.subscription is None or stale:
            with transaction(sessions) as session:
                notifications_repo.drop_retry(session, r.notification_id, r.subscription_id)
            tally["given_up"] += 1
            continue
        _post(
            sessions,
            sender,
            r.notification_id,
            r.subscription,
            r.payload,
            r.attempts + 1,
            now,
            tally,
        )


def drain(
    sessions: sessionmaker[Session],
    now: dt.datetime,
    stop_names: Mapping[str, str],
    sender: PushSender | None,
) -> DrainResult:
    """Prepare and send the queued notifications (``DRAIN_BATCH`` at most): each is claimed
    by one drain (``sending``), becomes ``ready`` with its message (or ``dropped``, when
    the trip no longer calls for it) and is pushed to each of the passenger's subscriptions.
    A push the push service did not take (no answer, 429, 5xx) is posted again after
    ``PUSH_RETRY_DELAYS_S``, under the notification's topic; one it accepted or refused for
    good is never posted again. Then the retries that are due are posted."""
    with transaction(sessions) as session:
        claimed = [
            (n.notification_id, n.passenger_id)
            for n in notifications_repo.claim_queued(session, DRAIN_BATCH)
        ]
    ready = dropped = 0
    tally: Counter[str] = Counter()
    for notification_id, passenger_id in claimed:
        with transaction(sessions) as session:
            n = notifications_repo.notification(session, notification_id)
            body = _prepare(session, n, stop_names) if n is not None else None
            payload = json.dumps(body, sort_keys=True) if body is not None else None
            notifications_repo.settle(
                session, notification_id, "ready" if body else "dropped", payload, now
            )
            subscriptions = notifications_repo.subscriptions(session, passenger_id)
        if payload is None:
            dropped += 1
            continue
        ready += 1
        if sender is None:
            continue
        for s in subscriptions:
            _post(sessions, sender, notification_id, s, payload, 1, now, tally)
    if sender is not None:
        _retry_due(sessions, now, sender, tally)
    result = DrainResult(ready, dropped, **tally)
    if claimed or tally:
        log.info(
            "notifications: %d ready, %d dropped, %d pushed, %d to retry, %d given up",
            result.ready,
            result.dropped,
            result.pushed,
            result.retrying,
            result.given_up,
        )
    return result


def stream_messages(
    session: Session, passenger_id: str, after_id: int | None
) -> list[tuple[int, str, str]]:
    """``(id, kind, message JSON)`` of the passenger's ready notifications after ``after_id``
    (None: the newest ``SSE_BACKLOG``), oldest first: what the event stream sends next."""
    return [
        (n.notification_id, n.kind, n.payload or "{}")
        for n in notifications_repo.ready_after(session, passenger_id, after_id, SSE_BACKLOG)
    ]


class SubscriptionRefusedError(ValueError):
    """A subscription endpoint that is no known push service (the message says which)."""


def subscribe(session: Session, passenger_id: str, endpoint: str, p256dh: str, auth: str) -> None:
    if not endpoint_allowed(endpoint):
        raise SubscriptionRefusedError(
            f"endpoint {endpoint[:100]!r}: expected an https URL of a known push service"
        )
    notifications_repo.put_subscription(session, passenger_id, endpoint, p256dh, auth)


def unsubscribe_all(session: Session, passenger_id: str) -> int:
    return notifications_repo.delete_passenger_subscriptions(session, passenger_id)
