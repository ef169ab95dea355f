"""Issuing inspection tickets to riders on board, and the signed revocation list.

A rider is on board when their newest billable trip is ``open`` (reconciliation keeps it
open while the data says they may still ride). The backend has no be-in at the stop itself:
a trip exists once the bus has left the boarding stop, so "provisional" here means the open
trip still rests on its first stretch, or its confidence is low (``provisional``).
"""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy.orm import Session

from backend import models
from backend.billing import service as billing_service
from backend.billing.service import EffectiveTrip
from backend.const import (
    TICKET_ENDED_GRACE,
    TICKET_FIRM_CONFIDENCE,
    TICKET_FIRM_STRETCHES,
    TICKET_RENEW_BEFORE,
    TICKET_VALIDITY,
)
from backend.tickets import codec, revocations
from backend.tickets import repository as tickets_repo
from backend.tickets.keys import Keyset, public_bytes
from backend.tickets.repository import TicketState
from backend.timeutil import service_day_of


class TicketErrorReason(enum.Enum):
    NOT_ON_BOARD = "not_on_board"
    NO_KEYS = "no_keys"


class TicketError(Exception):
    def __init__(self, reason: TicketErrorReason, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class IssuedTicket:
    """A ticket as handed to the phone: the signed body and the seed of the ticket's own key
    (the phone signs each 30 s time code with it)."""

    ticket: codec.Ticket
    signed_body: bytes
    time_key: bytes
    trip_id: str

    def payload_at(self, now_s: float) -> str:
        """The QR text at ``now_s`` (UTC epoch s): the signed body with that step's code."""
        key = Ed25519PrivateKey.from_private_bytes(self.time_key)
        step = codec.step_of(now_s)
        return codec.b64url(codec.frame(self.signed_body, key, self.ticket.ticket_id, step))


def provisional(trip: EffectiveTrip) -> bool:
    """An open trip whose be-in is not yet certain: only its first stretch so far, or a
    confidence below ``TICKET_FIRM_CONFIDENCE``."""
    stretches = trip.stops_travelled or 0
    return stretches < TICKET_FIRM_STRETCHES or trip.confidence < TICKET_FIRM_CONFIDENCE


def next_valid_until(current_ms: int | None, now_ms: int) -> int:
    """Valid-until (UTC epoch ms) after a fetch at ``now_ms``: moved on to a full validity
    once less than ``TICKET_RENEW_BEFORE`` is left, else unchanged."""
    renew_ms = int(TICKET_RENEW_BEFORE.total_seconds() * 1000)
    if current_ms is not None and current_ms - now_ms >= renew_ms:
        return current_ms
    return now_ms + int(TICKET_VALIDITY.total_seconds() * 1000)


def rider_ref(secret: str, passenger_id: str) -> bytes:
    """A pseudonym of the passenger, stable while the server's secret is (8 bytes): the back
    office can match two inspections of one rider, the QR does not show who they are."""
    mac = hmac.new(secret.encode(), b"bibo-rider/1\x00" + passenger_id.encode(), hashlib.sha256)
    return mac.digest()[: codec.RIDER_REF_BYTES]


def on_board(session: Session, passenger_id: str, now: dt.datetime) -> EffectiveTrip | None:
    """The passenger's open trip, if their newest trip of today and yesterday is open."""
    today = service_day_of(int(now.timestamp() * 1000))
    trips = billing_service.effective_trips(
        session, passenger_id, today - dt.timedelta(days=1), today
    )
    if not trips:
        return None
    last = max(trips, key=lambda t: (t.board_time, t.trip_id))
    return last if last.status == "open" else None


def issue(
    session: Session,
    passenger: models.Passenger,
    keyset: Keyset | None,
    rider_secret: str,
    now: dt.datetime,
) -> IssuedTicket:
    """The passenger's ticket for the ride they are on, signed now; the same ticket id and
    time key for the whole ride. Raises :class:`TicketError` when not on board."""
    if keyset is None or keyset.signing is None:
        raise TicketError(
            TicketErrorReason.NO_KEYS,
            "no ticket signing key configured (BIBO_TICKET_KEYS_FILE): tickets are not issued",
        )
    trip = on_board(session, passenger.passenger_id, now)
    if trip is None:
        raise TicketError(
            TicketErrorReason.NOT_ON_BOARD,
            "not on board: a ticket is issued while bibo holds you on a bus (an open trip)",
        )
    now_ms = int(now.timestamp() * 1000)
    row = tickets_repo.ticket_of_ride(session, trip.device_id, trip.vehicle_id, trip.journey_id)
    if row is None:
        row = tickets_repo.add_ticket(
            session,
            models.Ticket(
                ticket_id=secrets.token_hex(codec.TICKET_ID_BYTES),
                trip_id=trip.trip_id,
                passenger_id=passenger.passenger_id,
                device_id=trip.device_id,
                vehicle_id=trip.vehicle_id,
                journey_id=trip.journey_id,
                time_key=secrets.token_bytes(32),
                issued_at=now_ms,
                valid_until=next_valid_until(None, now_ms),
            ),
        )
    else:
        valid_until = next_valid_until(row.valid_until, now_ms)
        if (row.valid_until, row.trip_id) != (valid_until, trip.trip_id):
            tickets_repo.set_issue(session, row.ticket_id, trip.trip_id, valid_until)
            row.valid_until, row.trip_id = valid_until, trip.trip_id
    assert row.time_key is not None  # only an erased account's tickets have none
    key_id, issuer = keyset.signer()
    ticket = codec.Ticket(
        key_id=key_id,
        ticket_id=bytes.fromhex(row.ticket_id),
        rider_ref=rider_ref(rider_secret, passenger.passenger_id),
        rider_category=passenger.rider_category,
        provisional=provisional(trip),
        issued_at=row.issued_at // 1000,
        boarded_at=trip.board_time // 1000,
        valid_until=row.valid_until // 1000,
        vehicle_id=trip.vehicle_id,
        board_stop_id=trip.board_stop_id,
        companions=tuple(sorted((c, n) for c, n in trip.party if n > 0)),
        ticket_public_key=public_bytes(row.time_key),
    )
    signed = codec.sign_body(codec.encode_body(ticket), issuer)
    return IssuedTicket(ticket, signed, row.time_key, trip.trip_id)


def revocation_reason(state: TicketState, now_ms: int) -> str | None:
    """Why an unexpired ticket no longer counts at ``now_ms``, or None while it does."""
    if state.revoked_reason is not None:
        return state.revoked_reason
    if state.cancelled:
        return "trip_cancelled"
    if state.trip_conflict_lost:
        return "trip_conflict"
    if not state.device_present:
        return "device_removed"
    grace_ms = int(TICKET_ENDED_GRACE.total_seconds() * 1000)
    if state.ended_at is not None and now_ms >= state.ended_at + grace_ms:
        return "ride_ended"
    return None


def revocation_list(session: Session, keyset: Keyset, now: dt.datetime) -> dict[str, Any]:
    """The signed list of every unexpired ticket that no longer counts."""
    now_ms = int(now.timestamp() * 1000)
    revoked = [
        revocations.Revoked(bytes.fromhex(s.ticket_id), reason, s.valid_until // 1000)
        for s in tickets_repo.unexpired_tickets(session, now_ms)
        if (reason := revocation_reason(s, now_ms)) is not None
    ]
    key_id, key = keyset.signer()
    return revocations.sign(revoked, int(now.timestamp()), key_id, key)


def revoke_account(session: Session, passenger_id: str) -> None:
    """The passenger deleted their account: their tickets are revoked and no longer name
    them."""
    tickets_repo.revoke_passenger_tickets(session, passenger_id, "account_deleted")
