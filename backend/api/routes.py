"""HTTP routes (docs/contracts.md: Vehicle upload, Registration, Trip export). Thin: parse,
authorize, call a service, shape the answer."""

from __future__ import annotations

import math
from typing import Annotated

from fastapi import APIRouter, Header, HTTPException, Path, Request, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from starlette.requests import ClientDisconnect

from backend import repository, services
from backend.api.deps import CurrentOperator, CurrentPassenger, ServiceDay, SessionDep
from backend.api.schemas import (
    ChargeOut,
    DeviceOut,
    PassengerId,
    PassengerIn,
    PassengerOut,
    ReconcileOut,
    StopOut,
    TripOut,
    errors,
)
from backend.const import MAX_UPLOAD_BYTES
from backend.ingest import IngestError, ingest
from onboard import wire

router = APIRouter(prefix="/v1", responses=errors(400, 422))
OPERATOR_ERRORS = errors(401)


@router.get("/health")
def health() -> dict[str, str]:
    """Liveness for load balancers and the demo's start-up wait."""
    return {"status": "ok"}


@router.get("/stops", response_model=list[StopOut], responses=OPERATOR_ERRORS)
def list_stops(request: Request, _operator: CurrentOperator) -> list[StopOut]:
    return [
        StopOut(stop_id=s.stop_id, name=s.name, lat=s.lat, lon=s.lon)
        for s in request.app.state.tariff.stops()
    ]


@router.post(
    "/passengers",
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
    passenger = services.register_passenger(session, body.rider_category)
    return PassengerOut(passenger_id=passenger.passenger_id, token=passenger.token)


@router.post(
    "/passengers/{passenger_id}/devices",
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
    device = services.register_device(session, passenger_id)
    return DeviceOut(device_id=device.device_id, device_key=device.device_key_b64)


@router.post(
    "/vehicles/{vehicle_id}/batches",
    response_model=wire.BatchAccepted,
    responses=errors(401, 413, 429),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": wire.Batch.model_json_schema()}},
        }
    },
)
async def upload_batch(
    request: Request,
    vehicle_id: Annotated[
        str,
        Path(
            min_length=1,
            max_length=wire.IDENTIFIER_MAX_CHARS,
            pattern=wire.IDENTIFIER_PATTERN,
            description="the vehicle's id, as in the body",
        ),
    ],
    x_bibo_timestamp: Annotated[str | None, Header()] = None,
    x_bibo_signature: Annotated[str | None, Header()] = None,
) -> wire.BatchAccepted | JSONResponse:
    state = request.app.state
    metrics = state.metrics
    raw = await _read_limited(request)
    if raw is None:
        metrics.batches.labels("too_large").inc()
        return JSONResponse(
            status_code=status.HTTP_413_CONTENT_TOO_LARGE,
            content={"detail": f"upload exceeds {MAX_UPLOAD_BYTES} bytes as sent"},
        )
    headers = {k.lower(): v for k, v in request.headers.items()}

    def work() -> wire.BatchAccepted:
        with state.sessions() as session, session.begin():
            return ingest(
                session,
                vehicle_id,
                headers,
                raw,
                state.clock(),
                state.vehicle_secrets,
                state.vehicle_limiter,
                state.resend_limiter,
            )

    try:
        accepted = await run_in_threadpool(work)
    except IngestError as exc:
        metrics.batches.labels(exc.reason.value).inc()
        extra = {}
        if exc.retry_after_s is not None:
            extra["Retry-After"] = str(max(1, math.ceil(exc.retry_after_s)))
        return JSONResponse(status_code=exc.status, content={"detail": exc.detail}, headers=extra)
    metrics.batches.labels("duplicate" if accepted.duplicate else "new").inc()
    metrics.sightings.inc(accepted.inserted)
    return accepted


async def _read_limited(request: Request) -> bytes | None:
    """The raw body, or None once it grows past ``MAX_UPLOAD_BYTES`` (read no further)."""
    declared = request.headers.get("content-length", "")
    # ASCII digits only: str.isdigit() also takes "²", which int() refuses.
    if declared.isascii() and declared.isdigit() and int(declared) > MAX_UPLOAD_BYTES:
        return None
    chunks, size = [], 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > MAX_UPLOAD_BYTES:
                return None
            chunks.append(chunk)
    except ClientDisconnect:
        # The unit went away mid-upload (power cut, lost link); it will resend the batch.
        raise HTTPException(status.HTTP_400_BAD_REQUEST, detail="client disconnected") from None
    return b"".join(chunks)


@router.get("/trips", response_model=list[TripOut], responses=OPERATOR_ERRORS)
def list_trips(
    session: SessionDep, _operator: CurrentOperator, service_day: ServiceDay
) -> list[TripOut]:
    return [TripOut.model_validate(t) for t in repository.day_trips(session, service_day)]


@router.post("/reconcile", response_model=ReconcileOut, responses=OPERATOR_ERRORS)
def reconcile_now(
    request: Request, _operator: CurrentOperator, service_day: ServiceDay
) -> ReconcileOut:
    state = request.app.state
    summary = services.reconcile_day(state.sessions, service_day, state.resolvers, state.clock)
    return ReconcileOut(**summary.__dict__)


@router.get("/charges", response_model=list[ChargeOut], responses=OPERATOR_ERRORS)
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
        for c in services.day_charges(session, service_day)
    ]
