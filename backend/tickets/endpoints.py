"""Routes of the inspection ticket: the rider's ticket (JSON and QR), and what inspectors
download (the public keys, the signed revocation list) or ask (a verdict, for a device that
cannot check Ed25519 itself)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter, FastAPI, HTTPException, Request, Response, status

from backend.api.deps import OwnPassenger, SessionDep
from backend.api.schemas import errors
from backend.const import TICKET_CODE_STEP_S
from backend.settings import Settings
from backend.tickets import codec, keys, qr, revocations
from backend.tickets import service as tickets_service
from backend.tickets.schemas import (
    KeysetOut,
    RevocationListOut,
    TicketOut,
    VerdictOut,
    VerifyIn,
)
from backend.tickets.service import IssuedTicket, TicketError, TicketErrorReason

passenger_router = APIRouter(prefix="/v1/passengers", tags=["passenger"], responses=errors(422))
inspect_router = APIRouter(prefix="/v1/inspect", tags=["inspect"], responses=errors(400, 422))
NO_KEYS: dict[int | str, dict[str, object]] = {
    503: errors(409)[409] | {"description": "no ticket keys configured on this server"}
}
OWN_TICKET = errors(401, 404, 409) | NO_KEYS
"""401 without a token, 404 for another passenger's id, 409 when not on board."""


def install(app: FastAPI, settings: Settings) -> None:
    """The process's ticket keys, and the routes (API and the ``/inspect`` page)."""
    from backend.tickets.pages import router as page_router  # it imports this module

    app.state.ticket_keys = keys.from_settings(
        settings.ticket_keys_file, settings.environment == "development"
    )
    for router in (passenger_router, inspect_router, page_router):
        app.include_router(router)


def _keyset(request: Request) -> keys.Keyset:
    keyset: keys.Keyset | None = request.app.state.ticket_keys
    if keyset is None:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            detail="no ticket keys configured (BIBO_TICKET_KEYS_FILE)",
        )
    return keyset


def _now(request: Request) -> dt.datetime:
    now: dt.datetime = request.app.state.clock()
    return now


def _issue(request: Request, session: SessionDep, me: OwnPassenger) -> IssuedTicket:
    try:
        return tickets_service.issue(
            session,
            me,
            request.app.state.ticket_keys,
            request.app.state.settings.secret_key or "",
            _now(request),
        )
    except TicketError as exc:
        code = (
            status.HTTP_409_CONFLICT
            if exc.reason is TicketErrorReason.NOT_ON_BOARD
            else status.HTTP_503_SERVICE_UNAVAILABLE
        )
        raise HTTPException(code, detail=str(exc)) from exc


NO_STORE = {"Cache-Control": "no-store"}


@passenger_router.get("/{passenger_id}/ticket", response_model=TicketOut, responses=OWN_TICKET)
def my_ticket(
    request: Request, session: SessionDep, me: OwnPassenger, response: Response
) -> TicketOut:
    """The ticket for the ride the passenger is on: fetch it again when ``refresh_at_s``
    has passed (the time code changes every 30 s)."""
    issued = _issue(request, session, me)
    now_s = _now(request).timestamp()
    t = issued.ticket
    stop_names = {s.stop_id: s.name for s in request.app.state.tariff.stops()}
    response.headers.update(NO_STORE)
    step = codec.step_of(now_s)
    return TicketOut(
        ticket_id=t.ticket_id.hex(),
        state="provisional" if t.provisional else "valid",
        payload=issued.payload_at(now_s),
        step=step,
        refresh_at_s=(step + 1) * TICKET_CODE_STEP_S,
        time_key=codec.b64url(issued.time_key),
        signed_ticket=codec.b64url(issued.signed_body),
        key_id=t.key_id,
        rider_category=t.rider_category,
        companions=dict(t.companions),
        vehicle_id=t.vehicle_id,
        board_stop_id=t.board_stop_id,
        board_stop_name=stop_names.get(t.board_stop_id),
        boarded_at=t.boarded_at * 1000,
        valid_until=t.valid_until * 1000,
        trip_id=issued.trip_id,
    )


@passenger_router.get(
    "/{passenger_id}/ticket.svg",
    response_class=Response,
    responses=OWN_TICKET | {200: {"content": {"image/svg+xml": {}}, "description": "the QR code"}},
)
def my_ticket_qr(request: Request, session: SessionDep, me: OwnPassenger) -> Response:
    """The ticket's QR code (SVG) for the current 30 s step; fetch it again after 30 s."""
    issued = _issue(request, session, me)
    svg = qr.svg(issued.payload_at(_now(request).timestamp()), "Fahrkarte / ticket")
    return Response(svg, media_type="image/svg+xml", headers=NO_STORE)


@inspect_router.get("/keys", response_model=KeysetOut, responses=NO_KEYS)
def public_keys(request: Request) -> dict[str, Any]:
    """The operator's public ticket keys by key id, with their retire times."""
    return keys.to_json(_keyset(request), private=False)


@inspect_router.get("/revocations", response_model=RevocationListOut, responses=NO_KEYS)
def revocation_list(request: Request, session: SessionDep) -> dict[str, Any]:
    """The signed list of unexpired tickets that no longer count; download it before a
    shift (it names random ticket ids only)."""
    return tickets_service.revocation_list(session, _keyset(request), _now(request))


def verdict_out(verdict: codec.Verdict) -> VerdictOut:
    t = verdict.ticket
    return VerdictOut(
        state=verdict.state.value,
        accepted=verdict.state.accepted,
        reason=verdict.reason,
        ticket=None
        if t is None
        else {
            "ticket_id": t.ticket_id.hex(),
            "key_id": t.key_id,
            "rider_ref": t.rider_ref.hex(),
            "rider_category": t.rider_category,
            "companions": dict(t.companions),
            "provisional": t.provisional,
            "vehicle_id": t.vehicle_id,
            "board_stop_id": t.board_stop_id,
            "issued_at_s": t.issued_at,
            "boarded_at_s": t.boarded_at,
            "valid_until_s": t.valid_until,
            "step": verdict.step,
        },
    )


def server_verdict(
    request: Request, session: SessionDep, payload: str, vehicle_id: str | None
) -> codec.Verdict:
    """The verdict with the server's keys and its current revocation list."""
    keyset = _keyset(request)
    now = _now(request)
    listed = tickets_service.revocation_list(session, keyset, now)
    revoked = revocations.read(listed, keyset.keys, now.timestamp()).ticket_ids()
    return codec.verify(payload, keyset.keys, now.timestamp(), vehicle_id, revoked)


@inspect_router.post("/verify", response_model=VerdictOut, responses=NO_KEYS)
def verify(body: VerifyIn, request: Request, session: SessionDep) -> VerdictOut:
    """The verdict on a scanned payload, checked here: for an inspection device that cannot
    check Ed25519 signatures itself (``/inspect`` checks them in the browser when it can)."""
    return verdict_out(server_verdict(request, session, body.payload, body.vehicle_id))
