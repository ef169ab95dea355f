"""What reconciliation queues: which notifications a vehicle-day's trips call for. Kept to
one read and one ``INSERT … ON CONFLICT DO NOTHING`` per reconciled unit, so reconciliation
does not wait for texts, prices or push services (the drain in ``service.py`` does those)."""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass

from sqlalchemy.orm import Session

from backend.const import LOW_CONFIDENCE
from backend.notifications import repository as notifications_repo
from backend.notifications.const import NOTIFY_MAX_AGE_MS


class Kind(enum.StrEnum):
    BE_IN = "be_in"
    """The rider is on board (an open trip): bus, line, boarding stop."""
    BE_OUT = "be_out"
    """The rider got off (a closed trip): stop and the month's price so far."""
    STILL_ON_BOARD = "still_on_board"
    """An open trip the model is unsure of: is the rider still on board?"""


@dataclass(frozen=True)
class TripState:
    """What the rules look at in a stored trip (times UTC epoch ms)."""

    status: str
    confidence: float
    board_time: int
    alight_time: int
    conflict_lost: bool = False


def kinds_for(trip: TripState, now_ms: int) -> list[Kind]:
    """The notifications a trip calls for at ``now_ms``: a be-in while it is open, a be-out
    once it is closed, "still on board?" while it is open with a confidence below
    ``LOW_CONFIDENCE``; none for a ride older than ``NOTIFY_MAX_AGE_MS`` or one that
    lost a conflict to a more likely trip on another vehicle."""
    if trip.conflict_lost:
        return []
    oldest = now_ms - NOTIFY_MAX_AGE_MS
    if trip.status == "open":
        if trip.board_time < oldest:
            return []
        kinds = [Kind.BE_IN]
        if trip.confidence < LOW_CONFIDENCE:
            kinds.append(Kind.STILL_ON_BOARD)
        return kinds
    return [Kind.BE_OUT] if trip.alight_time >= oldest else []


def enqueue_vehicle_day(session: Session, day: dt.date, vehicle_id: str, now: dt.datetime) -> int:
    """Queue what the vehicle-day's trips call for now (in the caller's transaction);
    returns the number of candidate notifications (stored ones are not stored again)."""
    now_ms = int(now.timestamp() * 1000)
    rows = [
        {"passenger_id": t.passenger_id, "trip_id": t.trip_id, "kind": kind.value}
        for t in notifications_repo.recent_vehicle_trips(
            session, day, vehicle_id, now_ms - NOTIFY_MAX_AGE_MS
        )
        for kind in kinds_for(
            TripState(t.status, t.confidence, t.board_time, t.alight_time, t.conflict_lost),
            now_ms,
        )
    ]
    notifications_repo.enqueue(session, rows)
    return len(rows)
