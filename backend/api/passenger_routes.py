"""The passenger's API: own trips, live status, running best price, invoices, disputes,
data export and account deletion. Every route is scoped to the caller's own passenger id."""

from __future__ import annotations

import datetime as dt
import json
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request, Response, status
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, ConfigDict, Field

from backend import accounts, billing, models, repository
from backend.api.deps import OwnPassenger, SessionDep
from backend.api.rendering import render_invoice
from backend.api.schemas import MONTH_PATTERN, TEXT_PATTERN, DbId, TripId, errors
from backend.disputes import DisputeError, DisputeErrorReason, open_dispute
from backend.timeutil import service_day_of

router = APIRouter(
    prefix="/v1/passengers/{passenger_id}",
    tags=["passenger"],
    responses=errors(400, 401, 404, 409, 422),
)

Month = Annotated[str | None, Query(pattern=MONTH_PATTERN, description="YYYY-MM; default now")]


class PassengerTripOut(BaseModel):
    trip_id: str
    service_day: dt.date
    line: str
    vehicle_id: str
    board_stop_id: str
    board_stop_name: str | None
    board_time: int = Field(description="UTC epoch ms")
    alight_stop_id: str
    alight_stop_name: str | None
    alight_time: int = Field(description="UTC epoch ms")
    status: str
    corrected: bool


class StatusOut(BaseModel):
    state: str = Field(description="checked_in, checked_out or none")
    line: str | None
    vehicle_id: str | None
    stop_id: str | None
    stop_name: str | None
    at: int | None = Field(description="UTC epoch ms: boarding (checked in) or alighting")
    trip_id: str | None


class BalanceOut(BaseModel):
    month: str
    total_cents: int = Field(description="best price of the month so far, today included")
    singles_total_cents: int
    saving_cents: int
    billed_cents: int = Field(description="what the ledger holds (days closed so far)")
    trips: int
    explanation: str


class InvoiceOut(BaseModel):
    invoice_id: int
    month: str
    version: int
    total_cents: int
    created_at: dt.datetime


class DisputeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=3, max_length=1000, pattern=TEXT_PATTERN)


class DisputeOut(BaseModel):
    dispute_id: int
    trip_id: str
    status: str
    reason: str
    resolution: str | None
    created_at: dt.datetime


def _now(request: Request) -> dt.datetime:
    now: dt.datetime = request.app.state.clock()
    return now


def _month(request: Request, month: str | None) -> str:
    return month or billing.month_of(service_day_of(int(_now(request).timestamp() * 1000)))


def _stop_names(request: Request) -> dict[str, str]:
    return {s.stop_id: s.name for s in request.app.state.tariff.stops()}


@router.get("/trips", response_model=list[PassengerTripOut])
def my_trips(
    request: Request, session: SessionDep, me: OwnPassenger, month: Month = None
) -> list[PassengerTripOut]:
    first, last = billing.month_days(_month(request, month))
    names = _stop_names(request)
    return [
        PassengerTripOut(
            **{k: v for k, v in t.as_dict().items() if k in PassengerTripOut.model_fields},
            board_stop_name=names.get(t.board_stop_id),
            alight_stop_name=names.get(t.alight_stop_id),
        )
        for t in billing.effective_trips(session, me.passenger_id, first, last)
    ]


@router.get("/status", response_model=StatusOut)
def my_status(request: Request, session: SessionDep, me: OwnPassenger) -> StatusOut:
    today = service_day_of(int(_now(request).timestamp() * 1000))
    live = accounts.live_status(session, me.passenger_id, today)
    return StatusOut(
        **live.__dict__,
        stop_name=_stop_names(request).get(live.stop_id or ""),
    )


@router.get("/balance", response_model=BalanceOut)
def my_balance(
    request: Request, session: SessionDep, me: OwnPassenger, month: Month = None
) -> BalanceOut:
    month = _month(request, month)
    first, last = billing.month_days(month)
    trips = billing.effective_trips(session, me.passenger_id, first, last)
    bill = billing.price(trips, me.rider_category) if trips else None
    return BalanceOut(
        month=month,
        total_cents=bill.total_cents if bill else 0,
        singles_total_cents=bill.singles_total_cents if bill else 0,
        saving_cents=bill.saving_cents if bill else 0,
        billed_cents=repository.ledger_balance(session, me.passenger_id, month),
        trips=len(trips),
        explanation=bill.to_text() if bill else "No trips this month.",
    )


@router.get("/invoices", response_model=list[InvoiceOut])
def my_invoices(session: SessionDep, me: OwnPassenger) -> list[InvoiceOut]:
    return [
        InvoiceOut(
            invoice_id=i.invoice_id,
            month=i.month,
            version=i.version,
            total_cents=i.total_cents,
            created_at=i.created_at,
        )
        for i in repository.passenger_invoices(session, me.passenger_id)
    ]


InvoiceId = DbId


def _own_invoice(session: SessionDep, me: models.Passenger, invoice_id: int) -> models.Invoice:
    invoice = repository.invoice(session, invoice_id)
    if invoice is None or invoice.passenger_id != me.passenger_id:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="invoice not found")
    return invoice


@router.get("/invoices/{invoice_id}")
def my_invoice(invoice_id: InvoiceId, session: SessionDep, me: OwnPassenger) -> dict[str, Any]:
    invoice = _own_invoice(session, me, invoice_id)
    document: dict[str, Any] = json.loads(invoice.document)
    return document | {"invoice_id": invoice.invoice_id, "invoice_version": invoice.version}


@router.get("/invoices/{invoice_id}/html", response_class=HTMLResponse)
def my_invoice_html(
    invoice_id: InvoiceId, request: Request, session: SessionDep, me: OwnPassenger
) -> HTMLResponse:
    invoice = _own_invoice(session, me, invoice_id)
    return HTMLResponse(render_invoice(invoice, _stop_names(request)))


@router.post(
    "/trips/{trip_id}/disputes", response_model=DisputeOut, status_code=status.HTTP_201_CREATED
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


@router.get("/disputes", response_model=list[DisputeOut])
def my_disputes(session: SessionDep, me: OwnPassenger) -> list[DisputeOut]:
    return [
        DisputeOut.model_validate(d, from_attributes=True)
        for d in repository.passenger_disputes(session, me.passenger_id)
    ]


@router.get("/export")
def my_data(session: SessionDep, me: OwnPassenger) -> dict[str, Any]:
    return accounts.export(session, me.passenger_id)


@router.delete("", status_code=status.HTTP_204_NO_CONTENT)
def delete_me(session: SessionDep, me: OwnPassenger) -> Response:
    accounts.delete_account(session, me.passenger_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
