"""The operator's API: review trips (with their RSSI trace), disputes, corrections,
operations, and the revenue per transit company.

Roles: a viewer reads; an agent also resolves disputes and corrects trips (the table is
``backend/api/policy.py``, which ``CurrentOperator`` applies; an admin closes months, in
``backend/billing/endpoints.py``). The operator web pages (``backend/operators/web``) use the
same services.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request, status
from fastapi.responses import Response
from pydantic import BaseModel, Field

from backend.api.deps import (
    CurrentOperator,
    ServiceDay,
    SessionDep,
)
from backend.api.schemas import MONTH_PATTERN, DbId, TripId, errors
from backend.billing import apportionment
from backend.billing.schemas import RebilledOut
from backend.operators import service as operators_service
from backend.operators.schemas import (
    AdjustIn,
    CancelIn,
    CompanyRevenueOut,
    DecideIn,
    DisputeRow,
    LateDataOut,
    OperationsOut,
    RestopIn,
    RevenueOut,
    TraceOut,
    TripDetailOut,
    TroubledUnitOut,
)
from backend.passengers import disputes as disputes_service
from backend.passengers.disputes import (
    DisputeError,
    DisputeErrorReason,
    Resolution,
    correct_trip,
    require_dispute,
    require_trip,
)
from backend.passengers.disputes import resolve_dispute as resolve
from backend.trips import service as trips_service
from onboard.wire import IDENTIFIER_MAX_CHARS
from onboard.wire import IDENTIFIER_PATTERN as ID_RULE

router = APIRouter(prefix="/v1", tags=["operator"], responses=errors(400, 401, 403, 404, 409, 422))
operations_router = APIRouter(prefix="/v1", tags=["operator"], responses=errors(401))
"""``GET /v1/operations`` and ``GET /v1/revenue``: reads open to every role, so they answer
none of the review routes' 403/404/409."""

Month = Annotated[str, Query(pattern=MONTH_PATTERN, description="billing month YYYY-MM")]


ResolveIn = Annotated[DecideIn | AdjustIn, Field(discriminator="action")]


CorrectionIn = CancelIn | RestopIn


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
    codes = {
        DisputeErrorReason.NOT_FOUND: 404,
        DisputeErrorReason.NOTHING_TO_CHANGE: 422,
        DisputeErrorReason.NOT_ON_JOURNEY: 422,
    }
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
        for d in disputes_service.dispute_queue(session, status_)
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


@router.get("/trips/{trip_id}", response_model=TripDetailOut)
def trip_detail(trip_id: TripId, session: SessionDep, _operator: CurrentOperator) -> TripDetailOut:
    detail = operators_service.trip_detail(session, trip_id)
    if detail is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"trip {trip_id!r} not found")
    return TripDetailOut.model_validate(detail)


@router.get("/trips/{trip_id}/trace", response_model=TraceOut)
def trip_trace(trip_id: TripId, session: SessionDep, _operator: CurrentOperator) -> TraceOut:
    """The device's RSSI trace on that vehicle around the trip, with the stop and door
    events and the inferred in-vehicle interval (for the review plot)."""
    trace = operators_service.trip_trace(session, trip_id)
    if trace is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"trip {trip_id!r} not found")
    return TraceOut.model_validate(trace)


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
    rows = operators_service.filter_trips(
        trips_service.day_trips(session, service_day), line, vehicle_id, max_confidence
    )
    return Response(
        operators_service.trips_csv(rows),
        media_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="trips-{service_day}.csv"'},
    )


@operations_router.get("/operations", response_model=OperationsOut)
def operations(session: SessionDep, _operator: CurrentOperator) -> OperationsOut:
    """Work that needs an operator's eye: failed or parked units, late data."""
    work = operators_service.operations(session)
    return OperationsOut(
        sightings_purged_before=work.purged_before,
        units=[TroubledUnitOut.model_validate(u, from_attributes=True) for u in work.units],
        late_data=[LateDataOut.model_validate(r, from_attributes=True) for r in work.late],
    )


def _revenue_out(report: apportionment.RevenueReport) -> RevenueOut:
    return RevenueOut(
        month=report.month,
        companies=[CompanyRevenueOut.model_validate(c) for c in report.companies],
        total_cents=report.total_cents,
        ledger_total_cents=report.ledger_total_cents,
        ledger_entries=report.ledger_entries,
        balanced=report.balanced,
    )


@operations_router.get("/revenue", response_model=RevenueOut, responses=errors(422))
def revenue(session: SessionDep, _operator: CurrentOperator, month: Month) -> RevenueOut:
    """A billing month's revenue per transit company (Einnahmeaufteilung): each company's
    shares of the month's charges and reversals, which add up to the ledger's total."""
    return _revenue_out(apportionment.revenue_report(session, month))


@operations_router.get(
    "/revenue.csv",
    response_class=Response,
    responses={
        200: {"content": {"text/csv": {}}, "description": "the revenue per company as CSV"},
        **errors(422),
    },
)
def revenue_csv(session: SessionDep, _operator: CurrentOperator, month: Month) -> Response:
    report = apportionment.revenue_report(session, month)
    return Response(
        operators_service.revenue_csv(report),
        media_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="revenue-{month}.csv"'},
    )
