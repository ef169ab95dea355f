"""API shapes of the inspection ticket (``backend/tickets/``); times are UTC epoch ms unless
named ``_s``."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from onboard.wire import Identifier


class TicketOut(BaseModel):
    """The rider's ticket for the ride they are on (``GET /v1/passengers/{id}/ticket``)."""

    ticket_id: str = Field(description="16 hex digits; the same for the whole ride")
    state: Literal["valid", "provisional"] = Field(
        description="provisional: the be-in is not yet certain (first stretch, or unsure)"
    )
    payload: str = Field(
        description="what the QR code holds (base64url; docs/inspection-ticket.md): the "
        "signed ticket with the time code of the current 30 s step"
    )
    step: int = Field(description="the 30 s step of the payload's time code (unix s / 30)")
    refresh_at_s: int = Field(description="UTC epoch s when the time code changes")
    time_key: str = Field(
        description="the ticket's own private key (Ed25519 seed, base64url): an app without "
        "network signs the next time codes with it; never show it in the QR"
    )
    signed_ticket: str = Field(
        description="the signed body without the time code (base64url): the QR payload is "
        "this, the step (u32) and the time code's signature"
    )
    key_id: str
    rider_category: str
    companions: dict[str, int]
    vehicle_id: str
    board_stop_id: str
    board_stop_name: str | None
    boarded_at: int
    valid_until: int
    trip_id: str


class PublicKeyOut(BaseModel):
    key_id: str
    public: str = Field(description="Ed25519 public key, 32 bytes as base64url")
    retire_at: int | None = Field(description="UTC epoch s from which it is refused; null: never")


class KeysetOut(BaseModel):
    """The operator's public ticket keys: what an inspector needs to verify offline."""

    version: Literal[1]
    keys: list[PublicKeyOut]


class RevocationListOut(BaseModel):
    """The signed revocation list (``backend/tickets/revocations.py`` has its format)."""

    version: Literal[1]
    key_id: str
    document: str
    signature: str


class VerifyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    payload: str = Field(max_length=4000, description="the QR code's text")
    vehicle_id: Identifier | None = Field(
        default=None, description="the vehicle the inspector is on (None: not checked)"
    )


class VerdictOut(BaseModel):
    state: Literal[
        "valid", "provisional", "stale", "wrong_vehicle", "expired", "revoked", "invalid"
    ]
    accepted: bool
    reason: str
    ticket: dict[str, object] | None
