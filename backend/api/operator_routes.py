"""The operator's API: review trips (with their RSSI trace), disputes, corrections, billing.

Roles: a viewer reads; an agent also resolves disputes and corrects trips; an admin also
closes months (the table is ``backend/api/policy.py``, which ``CurrentOperator`` applies). The
operator web pages (``backend/web``) use the same services.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, Request, status
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from backend import billing, repository, reviews
from backend.api.deps import (
    CurrentOperator,
    ServiceDay,
    SessionDep,
)
from backend.api.schemas import MONTH_PATTERN, TEXT_PATTERN, DbId, TripId, errors
from backend.disputes import (
    DisputeError,
    DisputeErrorReason,
    Resolution,
    correct_trip,
    require_dispute,
    require_trip,
)
from backend.disputes import resolve_dispute as resolve
from onboard.wire import IDENTIFIER_MAX_CHARS, StopId
from onboard.wire import IDENTIFIER_PATTERN as ID_RULE

router = APIRouter(prefix="/v1", tags=["operator"], responses=errors(400, 401, 403, 404, 409, 422))

DisputeStatus = Annotated[
    str | None, Query(alias="status", pattern="^(open|accepted|adjusted|rejected)$")
]


class DisputeRow(BaseModel):
    dispute_id: int
    trip_id: str
    passenger_id: str
    status: str
    reason: str
    resolution: str | None
    created_at: dt.datetime
    resolved_at: dt.datetime | None


Note = Annotated[str, Field(max_length=1000, pattern=TEXT_PATTERN)]
Reason = Annotated[str, Field(min_length=3, max_length=500, pattern=TEXT_PATTERN)]
"""Operators' free text: within its column, line breaks and tabs but no other control
characters."""


class DecideIn(BaseModel):
    """Accept (the trip is cancelled) or reject a dispute."""

    model_config = ConfigDict(extra="forbid")

    action: Literal["accept", "reject"]
    note: Note = ""


class AdjustIn(BaseModel):
    """The trip was ridden, between these stops."""

    model_config = ConfigDict(extra="forbid")

    action: Literal["adjust"]
    note: Note = ""
    board_stop_id: StopId
    alight_stop_id: StopId


ResolveIn = Annotated[DecideIn | AdjustIn, Field(discriminator="action")]


class CancelIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Reason
    cancelled: Literal[True]


class RestopIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Reason
    board_stop_id: StopId
    alight_stop_id: StopId


CorrectionIn = CancelIn | RestopIn


class RebilledOut(BaseModel):
    month: str
    total_cents: int
    invoice_version: int | None


def _now(request: Request) -> dt.datetime:
    now: dt.datetime = request.app.state.clock()
    return now


def _named_stops(request: Request, body: BaseModel) -> tuple[str | None, str | None]:
    """The (boarding, alighting) stops a correction names, (None, None) for one that names
    none; a stop bibo does not know is refused, naming the field."""
    if not isinstance(body, AdjustIn | RestopIn):
        return None, None
    known = {s.stop_id for s in request.app.state.tariff.stops()}
    for field, stop_id in (
        ("board_stop_id", body.board_stop_id),
        ("alight_stop_id", body.alight_stop_id),
    ):
        if stop_id not in known:
            raise HTTPException(
                status.HTTP_422_UNPROCESSABLE_CONTENT,
                detail=[
                    {
                        "loc": ["body", field],
                        "msg": f"unknown stop {stop_id!r}",
                        "type": "value_error",
                    }
                ],
            )
    return body.board_stop_id, body.alight_stop_id


def _dispute_error(exc: DisputeError) -> HTTPException:
    codes = {DisputeErrorReason.NOT_FOUND: 404, DisputeErrorReason.NOTHING_TO_CHANGE: 422}
    return HTTPException(codes.get(exc.reason, 409), detail=str(exc))


@router.get("/disputes", response_model=list[DisputeRow])
def list_disputes(
    session: SessionDep,
    _operator: CurrentOperator,
    status_: Annotated[
        str | None, Query(alias="status", pattern="^(open|accepted|adjusted|rejected)$")
    ] = "open",
) -> list[DisputeRow]:
    return [
        DisputeRow.model_validate(d, from_attributes=True)
        for d in repository.disputes(session, status_)
    ]


@router.post("/disputes/{dispute_id}/resolve", response_model=DisputeRow)
def resolve_dispute(
    dispute_id: DbId,
    body: ResolveIn,
    request: Request,
    session: SessionDep,
    operator: CurrentOperator,
) -> DisputeRow:
    try:
        require_dispute(session, dispute_id)  # unknown dispute: 404 before the stops are checked
    except DisputeError as exc:
        raise _dispute_error(exc) from None
    board, alight = _named_stops(request, body)
    try:
        dispute, _ = resolve(
            session,
            dispute_id,
            operator.operator_id,
            Resolution(body.action),
            body.note,
            _now(request),
            board_stop_id=board,
            alight_stop_id=alight,
        )
    except DisputeError as exc:
        raise _dispute_error(exc) from None
    return DisputeRow.model_validate(dispute, from_attributes=True)


@router.post("/trips/{trip_id}/corrections", response_model=RebilledOut)
def correct(
    trip_id: TripId,
    body: CorrectionIn,
    request: Request,
    session: SessionDep,
    operator: CurrentOperator,
) -> RebilledOut:
    try:
        require_trip(session, trip_id)  # unknown trip: 404 before the stops are checked
    except DisputeError as exc:
        raise _dispute_error(exc) from None
    board, alight = _named_stops(request, body)
    try:
        rebilled = correct_trip(
            session,
            trip_id,
            operator.operator_id,
            body.reason,
            _now(request),
            board_stop_id=board,
            alight_stop_id=alight,
            cancelled=isinstance(body, CancelIn),
        )
    except DisputeError as exc:
        raise _dispute_error(exc) from None
    return RebilledOut(**rebilled.__dict__)


@router.get("/trips/{trip_id}")
def trip_detail(trip_id: TripId, session: SessionDep, _operator: CurrentOperator) -> dict[str, Any]:
    detail = reviews.trip_detail(session, trip_id)
    if detail is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"trip {trip_id!r} not found")
    return detail


@router.get("/trips/{trip_id}/trace")
def trip_trace(trip_id: TripId, session: SessionDep, _operator: CurrentOperator) -> dict[str, Any]:
    """The device's RSSI trace on that vehicle around the trip, with the stop and door
    events and the inferred in-vehicle interval (for the review plot)."""
    trace = reviews.trip_trace(session, trip_id)
    if trace is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"trip {trip_id!r} not found")
    return trace.as_dict()


@router.get(
    "/trips.csv",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}, "description": "the trips as CSV"}},
)
def trips_csv(
    session: SessionDep,
    _operator: CurrentOperator,
    service_day: ServiceDay,
    line: Annotated[str | None, Query(max_length=IDENTIFIER_MAX_CHARS, pattern=ID_RULE)] = None,
    vehicle_id: Annotated[
        str | None, Query(max_length=IDENTIFIER_MAX_CHARS, pattern=ID_RULE)
    ] = None,
    max_confidence: Annotated[float | None, Query(ge=0, le=1)] = None,
) -> Response:
    rows = reviews.filter_trips(
        repository.day_trips(session, service_day), line, vehicle_id, max_confidence
    )
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(reviews.CSV_COLUMNS)
    for t in rows:
        writer.writerow([getattr(t, c) for c in reviews.CSV_COLUMNS])
    return Response(
        buffer.getvalue(),
        media_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="trips-{service_day}.csv"'},
    )


@router.post("/billing/close-month", response_model=list[RebilledOut])
def close_month(
    request: Request,
    session: SessionDep,
    _operator: CurrentOperator,
    month: Annotated[str, Query(pattern=MONTH_PATTERN)],
) -> list[RebilledOut]:
    try:
        invoices = billing.close_month(session, month, _now(request))
    except ValueError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, detail=str(exc)) from None
    return [
        RebilledOut(month=i.month, total_cents=i.total_cents, invoice_version=i.version)
        for i in invoices
    ]
