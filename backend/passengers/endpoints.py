"""The passenger's API: registration (sign-up, devices), own trips, live status, running
best price, invoices, disputes, entitlements (tickets held elsewhere), data export and
account deletion. Every route after sign-up
is scoped to the caller's own passenger id."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, Request, Response, status
from fastapi.responses import HTMLResponse

from backend import models
from backend.api.deps import CurrentPassenger, OwnPassenger, SessionDep
from backend.api.schemas import MONTH_PATTERN, DbId, PassengerId, TripId, errors
from backend.billing import service as billing_service
from backend.billing.presentation import ENTITLEMENT_LABELS
from backend.billing.rendering import render_invoice
from backend.passengers import companions as companions_service
from backend.passengers import disputes as disputes_service
from backend.passengers import entitlements as entitlements_service
from backend.passengers import service as passengers_service
from backend.passengers.disputes import DisputeError, DisputeErrorReason, open_dispute
from backend.passengers.schemas import (
    BalanceOut,
    CompanionsIn,
    CompanionsOut,
    DeviceOut,
    DisputeIn,
    DisputeOut,
    EntitlementChangeOut,
    EntitlementIn,
    EntitlementOut,
    InvoiceOut,
    PassengerIn,
    PassengerOut,
    PassengerTripOut,
    RebilledMonthOut,
    StatusOut,
)
from backend.timeutil import service_day_of

router = APIRouter(prefix="/v1/passengers", tags=["passenger"], responses=errors(400, 422))
OWN = errors(401, 404, 409)
"""What a route on the passenger's own data may answer besides a bad request."""


@router.post(
    "",
    response_model=PassengerOut,
    status_code=status.HTTP_201_CREATED,
    responses=errors(429),
)
def create_passenger(body: PassengerIn, request: Request, session: SessionDep) -> PassengerOut:
    client = request.client.host if request.client else "unknown"
    if (wait := request.app.state.signup_limiter.allow(client)) > 0:
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            detail=f"too many sign-ups from this address; retry in {wait:.0f} s",
            headers={"Retry-After": str(max(1, math.ceil(wait)))},
        )
    passenger = passengers_service.register_passenger(session, body.rider_category)
    return PassengerOut(passenger_id=passenger.passenger_id, token=passenger.token)


@router.post(
    "/{passenger_id}/devices",
    response_model=DeviceOut,
    status_code=status.HTTP_201_CREATED,
    responses=errors(401, 404),
)
def create_device(
    passenger_id: PassengerId, session: SessionDep, me: CurrentPassenger
) -> DeviceOut:
    if me.passenger_id != passenger_id:
        # Same answer as for a passenger that does not exist: ids are not probeable.
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="passenger not found")
    device = passengers_service.register_device(session, passenger_id)
    return DeviceOut(device_id=device.device_id, device_key=device.device_key_b64)


Month = Annotated[str | None, Query(pattern=MONTH_PATTERN, description="YYYY-MM; default now")]
Lang = Annotated[
    Literal["de", "en"], Query(description="language of the texts a rider reads (de default)")
]


def _now(request: Request) -> dt.datetime:
    now: dt.datetime = request.app.state.clock()
    return now


def _month(request: Request, month: str | None) -> str:
    return month or billing_service.month_of_ms(int(_now(request).timestamp() * 1000))


def _stop_names(request: Request) -> dict[str, str]:
    return {s.stop_id: s.name for s in request.app.state.tariff.stops()}


@router.get("/{passenger_id}/trips", response_model=list[PassengerTripOut], responses=OWN)
def my_trips(
    request: Request, session: SessionDep, me: OwnPassenger, month: Month = None
) -> list[PassengerTripOut]:
    start, end = billing_service.month_bounds(_month(request, month))
    names = _stop_names(request)
    return [
        PassengerTripOut(
            **{k: v for k, v in t.as_dict().items() if k in PassengerTripOut.model_fields},
            board_stop_name=names.get(t.board_stop_id),
            alight_stop_name=names.get(t.alight_stop_id),
        )
        for t in billing_service.trips_boarding(session, me.passenger_id, end, start)
    ]


@router.get("/{passenger_id}/status", response_model=StatusOut, responses=OWN)
def my_status(request: Request, session: SessionDep, me: OwnPassenger) -> StatusOut:
    today = service_day_of(int(_now(request).timestamp() * 1000))
    live = passengers_service.live_status(session, me.passenger_id, today)
    return StatusOut(
        **live.__dict__,
        stop_name=_stop_names(request).get(live.stop_id or ""),
    )


@router.get("/{passenger_id}/balance", response_model=BalanceOut, responses=OWN)
def my_balance(
    request: Request, session: SessionDep, me: OwnPassenger, month: Month = None, lang: Lang = "de"
) -> BalanceOut:
    balance = billing_service.month_balance(
        session, me.passenger_id, me.rider_category, _month(request, month), lang
    )
    return BalanceOut(**dataclasses.asdict(balance))


@router.get("/{passenger_id}/invoices", response_model=list[InvoiceOut], responses=OWN)
def my_invoices(session: SessionDep, me: OwnPassenger) -> list[InvoiceOut]:
    return [
        InvoiceOut(
            invoice_id=i.invoice_id,
            month=i.month,
            version=i.version,
            total_cents=i.total_cents,
            created_at=i.created_at,
        )
        for i in billing_service.passenger_invoices(session, me.passenger_id)
    ]


InvoiceId = DbId


def _own_invoice(session: SessionDep, me: models.Passenger, invoice_id: int) -> models.Invoice:
    invoice = billing_service.own_invoice(session, me.passenger_id, invoice_id)
    if invoice is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="invoice not found")
    return invoice


@router.get("/{passenger_id}/invoices/{invoice_id}", responses=OWN)
def my_invoice(invoice_id: InvoiceId, session: SessionDep, me: OwnPassenger) -> dict[str, Any]:
    invoice = _own_invoice(session, me, invoice_id)
    document: dict[str, Any] = json.loads(invoice.document)
    return document | {"invoice_id": invoice.invoice_id, "invoice_version": invoice.version}


@router.get(
    "/{passenger_id}/invoices/{invoice_id}/html", response_class=HTMLResponse, responses=OWN
)
def my_invoice_html(
    invoice_id: InvoiceId,
    request: Request,
    session: SessionDep,
    me: OwnPassenger,
    lang: Lang = "de",
) -> HTMLResponse:
    invoice = _own_invoice(session, me, invoice_id)
    return HTMLResponse(render_invoice(invoice, _stop_names(request), lang))


@router.post(
    "/{passenger_id}/trips/{trip_id}/disputes",
    response_model=DisputeOut,
    status_code=status.HTTP_201_CREATED,
    responses=OWN,
)
def dispute_trip(
    trip_id: TripId, body: DisputeIn, request: Request, session: SessionDep, me: OwnPassenger
) -> DisputeOut:
    try:
        d = open_dispute(session, me.passenger_id, trip_id, body.reason, _now(request))
    except DisputeError as exc:
        code = 404 if exc.reason is DisputeErrorReason.NOT_FOUND else 409
        raise HTTPException(code, detail=str(exc)) from None
    return DisputeOut.model_validate(d, from_attributes=True)


@router.get("/{passenger_id}/disputes", response_model=list[DisputeOut], responses=OWN)
def my_disputes(session: SessionDep, me: OwnPassenger) -> list[DisputeOut]:
    return [
        DisputeOut.model_validate(d, from_attributes=True)
        for d in disputes_service.passenger_disputes(session, me.passenger_id)
    ]


@router.get("/{passenger_id}/export", responses=OWN)
def my_data(session: SessionDep, me: OwnPassenger) -> dict[str, Any]:
    return passengers_service.export(session, me.passenger_id)


@router.delete("/{passenger_id}", status_code=status.HTTP_204_NO_CONTENT, responses=OWN)
def delete_me(session: SessionDep, me: OwnPassenger) -> Response:
    passengers_service.delete_account(session, me.passenger_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


def entitlement_out(e: models.Entitlement) -> EntitlementOut:
    return EntitlementOut(
        entitlement_id=e.entitlement_id,
        kind=e.kind,
        label=ENTITLEMENT_LABELS.get(e.kind, e.kind),
        valid_from=e.valid_from,
        valid_to=e.valid_to,
        scope_areas=e.scope_areas.split(",") if e.scope_areas else None,
        evidence_ref=e.evidence_ref,
        status=e.status,
        note=e.note,
        created_at=e.created_at,
        decided_at=e.decided_at,
    )


def entitlement_change_out(
    e: models.Entitlement, rebilled: entitlements_service.Rebilled
) -> EntitlementChangeOut:
    return EntitlementChangeOut(
        entitlement=entitlement_out(e),
        rebilled=[
            RebilledMonthOut(month=m, total_cents=total, invoice_version=version)
            for m, total, version in rebilled.months
        ],
    )


def entitlement_error(exc: entitlements_service.EntitlementError) -> HTTPException:
    reason = entitlements_service.EntitlementErrorReason
    codes = {reason.NOT_FOUND: 404, reason.INVALID: 422, reason.ALREADY_DECIDED: 409}
    return HTTPException(codes[exc.reason], detail=str(exc))


@router.post(
    "/{passenger_id}/entitlements",
    response_model=EntitlementChangeOut,
    status_code=status.HTTP_201_CREATED,
    responses=OWN,
)
def add_entitlement(
    body: EntitlementIn, request: Request, session: SessionDep, me: OwnPassenger
) -> EntitlementChangeOut:
    """Register a ticket held elsewhere: the trips it covers cost nothing from now on (and
    months already billed are re-billed)."""
    try:
        entitlement, rebilled = entitlements_service.register(
            session,
            me.passenger_id,
            kind=body.kind,
            valid_from=body.valid_from,
            valid_to=body.valid_to,
            scope_areas=body.scope_areas,
            evidence_ref=body.evidence_ref,
            now=_now(request),
        )
    except entitlements_service.EntitlementError as exc:
        raise entitlement_error(exc) from None
    return entitlement_change_out(entitlement, rebilled)


@router.get("/{passenger_id}/entitlements", response_model=list[EntitlementOut], responses=OWN)
def my_entitlements(session: SessionDep, me: OwnPassenger) -> list[EntitlementOut]:
    return [
        entitlement_out(e)
        for e in entitlements_service.passenger_entitlements(session, me.passenger_id)
    ]


@router.post(
    "/{passenger_id}/entitlements/{entitlement_id}/withdraw",
    response_model=EntitlementChangeOut,
    responses=OWN,
)
def withdraw_entitlement(
    entitlement_id: DbId, request: Request, session: SessionDep, me: OwnPassenger
) -> EntitlementChangeOut:
    """The rider no longer holds the ticket: its trips are charged again."""
    try:
        entitlement, rebilled = entitlements_service.withdraw(
            session, me.passenger_id, entitlement_id, _now(request)
        )
    except entitlements_service.EntitlementError as exc:
        raise entitlement_error(exc) from None
    return entitlement_change_out(entitlement, rebilled)


@router.put(
    "/{passenger_id}/trips/{trip_id}/companions",
    response_model=CompanionsOut,
    responses=OWN,
)
def set_companions(
    trip_id: TripId, body: CompanionsIn, request: Request, session: SessionDep, me: OwnPassenger
) -> CompanionsOut:
    """Name who rode along (while riding or within a day after): the best price covers the
    whole party, and the month is re-billed."""
    party = body.model_dump()
    try:
        month, total = companions_service.set_party(
            session, me.passenger_id, trip_id, party, _now(request)
        )
    except companions_service.CompanionError as exc:
        reason = companions_service.CompanionErrorReason
        code = {reason.NOT_FOUND: 404, reason.INVALID: 422, reason.TOO_LATE: 409}[exc.reason]
        raise HTTPException(code, detail=str(exc)) from None
    return CompanionsOut(
        trip_id=trip_id,
        party={k: n for k, n in party.items() if n},
        month=month,
        total_cents=total,
    )
