"""Operators' billing: a day's charges and the month's close (final invoices)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request, status

from backend.api.deps import CurrentOperator, ServiceDay, SessionDep
from backend.api.schemas import MONTH_PATTERN, errors
from backend.billing import service as billing_service
from backend.billing.schemas import ChargeOut, RebilledOut

router = APIRouter(prefix="/v1", tags=["operator"], responses=errors(400, 401, 422))


@router.get("/charges", response_model=list[ChargeOut])
def list_charges(
    request: Request, session: SessionDep, _operator: CurrentOperator, service_day: ServiceDay
) -> list[ChargeOut]:
    return [
        ChargeOut(
            passenger_id=c.passenger_id,
            trips=c.trips,
            total_cents=c.total_cents,
            singles_total_cents=c.singles_total_cents,
            error=c.error,
        )
        for c in billing_service.day_charges(session, service_day)
    ]


@router.post("/billing/close-month", response_model=list[RebilledOut], responses=errors(403, 409))
def close_month(
    request: Request,
    session: SessionDep,
    _operator: CurrentOperator,
    month: Annotated[str, Query(pattern=MONTH_PATTERN)],
) -> list[RebilledOut]:
    now: dt.datetime = request.app.state.clock()
    try:
        invoices = billing_service.close_month(session, month, now)
    except ValueError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, detail=str(exc)) from None
    return [
        RebilledOut(month=i.month, total_cents=i.total_cents, invoice_version=i.version)
        for i in invoices
    ]
