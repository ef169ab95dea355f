"""Disputes and corrections: a passenger contests a trip, an agent decides, billing follows.

Every decision that changes a trip is a ``TripCorrection``; the affected month is re-billed
at once (a reversal plus a new charge), and a month already invoiced gets its next invoice.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass

from sqlalchemy.orm import Session

from backend import models
from backend.billing import repository as billing_repo
from backend.billing import service as billing_service
from backend.passengers import repository as passengers_repo
from backend.trips import repository as trips_repo
from backend.trips.reconciliation import StopVisit, journeys_from_events


class DisputeErrorReason(enum.Enum):
    NOT_FOUND = "not_found"
    ALREADY_OPEN = "already_open"
    ALREADY_RESOLVED = "already_resolved"
    NOTHING_TO_CHANGE = "nothing_to_change"
    NOT_ON_JOURNEY = "not_on_journey"


class DisputeError(Exception):
    def __init__(self, reason: DisputeErrorReason, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class Resolution(enum.StrEnum):
    ACCEPT = "accept"
    """The trip was not ridden: it is cancelled."""
    ADJUST = "adjust"
    """The trip was ridden, but between other stops."""
    REJECT = "reject"


def require_trip(session: Session, trip_id: str) -> models.Trip:
    """The trip to correct; ``NOT_FOUND`` if there is none."""
    trip = trips_repo.trip(session, trip_id)
    if trip is None:
        raise DisputeError(DisputeErrorReason.NOT_FOUND, f"trip {trip_id!r} not found")
    return trip


def require_dispute(session: Session, dispute_id: int) -> models.Dispute:
    """The dispute to resolve; ``NOT_FOUND`` if there is none."""
    dispute = passengers_repo.dispute(session, dispute_id)
    if dispute is None:
        raise DisputeError(DisputeErrorReason.NOT_FOUND, f"dispute {dispute_id} not found")
    return dispute


def check_changes(
    *, board_stop_id: str | None, alight_stop_id: str | None, cancelled: bool
) -> None:
    """A correction must change something; ``NOTHING_TO_CHANGE`` if it names nothing."""
    if not cancelled and board_stop_id is None and alight_stop_id is None:
        raise DisputeError(
            DisputeErrorReason.NOTHING_TO_CHANGE,
            "a correction needs board_stop_id, alight_stop_id or cancelled",
        )


def open_dispute(
    session: Session, passenger_id: str, trip_id: str, reason: str, now: dt.datetime
) -> models.Dispute:
    """A passenger contests one of their own trips (another's looks like a missing trip)."""
    trip = trips_repo.trip(session, trip_id)
    if trip is None or trip.passenger_id != passenger_id:
        raise DisputeError(DisputeErrorReason.NOT_FOUND, f"trip {trip_id!r} not found")
    existing = passengers_repo.open_dispute_of_trip(session, trip_id)
    if existing is not None:
        raise DisputeError(
            DisputeErrorReason.ALREADY_OPEN,
            f"trip {trip_id!r} has an open dispute ({existing.dispute_id})",
        )
    return passengers_repo.add_dispute(session, trip_id, passenger_id, reason, now)


@dataclass(frozen=True)
class Rebilled:
    month: str
    total_cents: int
    invoice_version: int | None
    """Set when the month was already closed and a new invoice version was issued."""


@dataclass(frozen=True)
class Ride:
    """A corrected trip re-derived from its journey's stop events."""

    board_time: int
    """Departure from the boarding stop (its arrival if the departure event is missing)."""
    alight_time: int
    """Arrival at the alighting stop."""
    stops_travelled: int
    """Stops after the boarding stop up to the alighting stop (the Kurzstrecke counts them)."""


def _left(visit: StopVisit) -> int:
    return visit.departure if visit.departure is not None else visit.arrival


def rederive_ride(
    session: Session, trip: models.Trip, board_stop_id: str, alight_stop_id: str
) -> Ride | None:
    """The ride between the corrected stops on the trip's own journey, from the vehicle's
    stop events: times and stops travelled follow the stops (a shortened ride ends earlier
    and may become a Kurzstrecke). None when the journey's events are gone (retention);
    ``NOT_ON_JOURNEY`` when the journey does not call at the boarding stop, or not at the
    alighting stop after it."""
    events = trips_repo.vehicle_day_events(session, trip.service_day, trip.vehicle_id)
    journey = next(
        (
            j
            for j in journeys_from_events(trip.vehicle_id, events)
            if j.journey_id == trip.journey_id
        ),
        None,
    )
    if journey is None or not journey.visits:
        return None
    visits = journey.visits
    where = [k for k, v in enumerate(visits) if v.stop_id == trip.board_stop_id]
    origin = next(
        (k for k in where if _left(visits[k]) == trip.board_time), where[0] if where else 0
    )
    calls = [k for k, v in enumerate(visits) if v.stop_id == board_stop_id]
    if not calls:
        raise DisputeError(
            DisputeErrorReason.NOT_ON_JOURNEY,
            f"board_stop_id: journey {trip.journey_id!r} does not call at {board_stop_id!r}",
        )
    board = min(calls, key=lambda k: (abs(k - origin), k))
    after = [k for k, v in enumerate(visits) if k > board and v.stop_id == alight_stop_id]
    if not after:
        raise DisputeError(
            DisputeErrorReason.NOT_ON_JOURNEY,
            f"alight_stop_id: journey {trip.journey_id!r} does not call at {alight_stop_id!r} "
            f"after the boarding stop {board_stop_id!r}",
        )
    alight = next((k for k in after if visits[k].arrival == trip.alight_time), after[0])
    return Ride(_left(visits[board]), visits[alight].arrival, alight - board)


def correct_trip(
    session: Session,
    trip_id: str,
    operator_id: int,
    reason: str,
    now: dt.datetime,
    *,
    board_stop_id: str | None = None,
    alight_stop_id: str | None = None,
    cancelled: bool = False,
    dispute_id: int | None = None,
) -> Rebilled:
    """Record a correction and re-bill the passenger's month."""
    trip = require_trip(session, trip_id)
    check_changes(board_stop_id=board_stop_id, alight_stop_id=alight_stop_id, cancelled=cancelled)
    ride = None
    if not cancelled:
        ride = rederive_ride(
            session,
            trip,
            board_stop_id or trip.board_stop_id,
            alight_stop_id or trip.alight_stop_id,
        )
    billing_repo.add_correction(
        session,
        trip_id=trip_id,
        board_stop_id=board_stop_id,
        alight_stop_id=alight_stop_id,
        cancelled=cancelled,
        board_time=ride.board_time if ride else None,
        alight_time=ride.alight_time if ride else None,
        stops_travelled=ride.stops_travelled if ride else None,
        reason=reason,
        operator_id=operator_id,
        dispute_id=dispute_id,
        created_at=now,
    )
    return rebill_after_change(session, trip.passenger_id, trip.board_time, now)


def rebill_after_change(
    session: Session, passenger_id: str, board_time: int, now: dt.datetime
) -> Rebilled:
    """Re-bill the changed trip's month and the later ones; the trip's month's outcome."""
    month, total, invoice = billing_service.rebill_from(session, passenger_id, board_time, now)[0]
    return Rebilled(month, total, invoice.version if invoice else None)


def resolve_dispute(
    session: Session,
    dispute_id: int,
    operator_id: int,
    action: Resolution,
    note: str,
    now: dt.datetime,
    *,
    board_stop_id: str | None = None,
    alight_stop_id: str | None = None,
) -> tuple[models.Dispute, Rebilled | None]:
    dispute = require_dispute(session, dispute_id)
    if dispute.status != "open":
        raise DisputeError(
            DisputeErrorReason.ALREADY_RESOLVED,
            f"dispute {dispute_id} was already resolved ({dispute.status})",
        )
    rebilled = None
    if action is Resolution.ACCEPT:
        rebilled = correct_trip(
            session,
            dispute.trip_id,
            operator_id,
            note or dispute.reason,
            now,
            cancelled=True,
            dispute_id=dispute_id,
        )
    elif action is Resolution.ADJUST:
        rebilled = correct_trip(
            session,
            dispute.trip_id,
            operator_id,
            note or dispute.reason,
            now,
            board_stop_id=board_stop_id,
            alight_stop_id=alight_stop_id,
            dispute_id=dispute_id,
        )
    dispute.status = {"accept": "accepted", "adjust": "adjusted", "reject": "rejected"}[
        action.value
    ]
    dispute.resolution = note
    dispute.resolved_by = operator_id
    dispute.resolved_at = now
    return dispute, rebilled


def passenger_disputes(session: Session, passenger_id: str) -> list[models.Dispute]:
    return passengers_repo.passenger_disputes(session, passenger_id)


def dispute_queue(session: Session, status: str | None) -> list[models.Dispute]:
    """Disputes in ``status`` (every one for None), for the operators' queue."""
    return passengers_repo.disputes_in(session, status)
