"""SQL of the inspection tickets: issued tickets and what revokes them."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from backend import models
from backend.const import IN_LIST_CHUNK


def ticket_of_ride(
    session: Session, device_id: str, vehicle_id: str, journey_id: str
) -> models.Ticket | None:
    """The ticket already issued to this device on this vehicle journey, if any."""
    t = models.Ticket
    return session.scalar(
        select(t).where(
            t.device_id == device_id, t.vehicle_id == vehicle_id, t.journey_id == journey_id
        )
    )


def add_ticket(session: Session, ticket: models.Ticket) -> models.Ticket:
    session.add(ticket)
    session.flush()
    return ticket


def set_issue(session: Session, ticket_id: str, trip_id: str, valid_until: int) -> None:
    """Record the trip a ticket was last issued for and its valid-until (UTC epoch ms)."""
    t = models.Ticket
    session.execute(
        update(t).where(t.ticket_id == ticket_id).values(trip_id=trip_id, valid_until=valid_until)
    )


def revoke_passenger_tickets(session: Session, passenger_id: str, reason: str) -> None:
    """Revoke the passenger's tickets for good and forget whose they were (account deleted):
    only the ticket id and its valid-until stay, for the revocation list."""
    t = models.Ticket
    session.execute(
        update(t)
        .where(t.passenger_id == passenger_id)
        .values(
            revoked_reason=reason, passenger_id=None, device_id=None, trip_id=None, time_key=None
        )
    )


@dataclass(frozen=True)
class TicketState:
    """A ticket still valid at some time, with what might revoke it."""

    ticket_id: str
    valid_until: int
    revoked_reason: str | None
    trip_conflict_lost: bool | None
    """None: the trip is no longer stored."""
    device_present: bool
    cancelled: bool
    """The trip's newest correction cancels it."""
    ended_at: int | None = None
    """The alighting time (UTC epoch ms) of the ticket's trip once it is closed."""


def unexpired_tickets(session: Session, now_ms: int) -> list[TicketState]:
    """Every ticket valid at ``now_ms`` or later, with its trip's and device's state."""
    t, trip, dev = models.Ticket, models.Trip, models.Device
    rows = session.execute(
        select(
            t.ticket_id,
            t.valid_until,
            t.revoked_reason,
            t.trip_id,
            trip.conflict_lost,
            trip.status,
            trip.alight_time,
            dev.device_id,
        )
        .outerjoin(trip, trip.trip_id == t.trip_id)
        .outerjoin(dev, dev.device_id == t.device_id)
        .where(t.valid_until >= now_ms)
        .order_by(t.ticket_id)
    ).all()
    trip_ids = [r.trip_id for r in rows if r.trip_id is not None]
    cancelled = _cancelled_trips(session, trip_ids)
    return [
        TicketState(
            ticket_id=r.ticket_id,
            valid_until=r.valid_until,
            revoked_reason=r.revoked_reason,
            trip_conflict_lost=r.conflict_lost,
            device_present=r.device_id is not None,
            cancelled=r.trip_id in cancelled,
            ended_at=r.alight_time if r.status == "closed" else None,
        )
        for r in rows
    ]


def _cancelled_trips(session: Session, trip_ids: list[str]) -> set[str]:
    if not trip_ids:
        return set()
    c = models.TripCorrection
    newest: dict[str, bool] = {}
    for start in range(0, len(trip_ids), IN_LIST_CHUNK):
        rows = session.execute(
            select(c.trip_id, c.cancelled)
            .where(c.trip_id.in_(trip_ids[start : start + IN_LIST_CHUNK]))
            .order_by(c.trip_id, c.correction_id)
        )
        for trip_id, is_cancelled in rows:
            newest[trip_id] = is_cancelled  # the newest per trip wins
    return {trip_id for trip_id, is_cancelled in newest.items() if is_cancelled}


def delete_expired_before(session: Session, before_ms: int) -> int:
    """Delete tickets that expired before ``before_ms`` (UTC epoch ms): they name a device and
    a ride, and no inspector accepts them any more. Returns how many."""
    t = models.Ticket
    result = session.execute(delete(t).where(t.valid_until < before_ms))
    return int(getattr(result, "rowcount", 0) or 0)
