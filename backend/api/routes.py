"""HTTP routes (DESIGN §4). Thin: parse, authorize, call a service, shape the answer."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Header, HTTPException, Path, Query, Request, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from backend import repository, services
from backend.api.deps import CurrentOperator, CurrentPassenger, SessionDep
from backend.api.schemas import (
    ChargeOut,
    DeviceOut,
    PassengerIn,
    PassengerOut,
    ReconcileOut,
    StopOut,
    TripOut,
)
from backend.ingest import IngestError, ingest
from onboard import wire

router = APIRouter(prefix="/v1")

ServiceDay = Annotated[dt.date, Query(description="service day YYYY-MM-DD (03:00-03:00 local)")]


@router.get("/health")
def health() -> dict[str, str]:
    """Liveness for load balancers and the demo's start-up wait."""
    return {"status": "ok"}


@router.get("/stops", response_model=list[StopOut])
def list_stops(request: Request, _operator: CurrentOperator) -> list[StopOut]:
    return [
        StopOut(stop_id=s.stop_id, name=s.name, lat=s.lat, lon=s.lon)
        for s in request.app.state.tariff.stops()
    ]


@router.post("/passengers", response_model=PassengerOut, status_code=status.HTTP_201_CREATED)
def create_passenger(body: PassengerIn, session: SessionDep) -> PassengerOut:
    passenger = services.register_passenger(session, body.rider_category)
    return PassengerOut(passenger_id=passenger.passenger_id, token=passenger.token)


@router.post(
    "/passengers/{passenger_id}/devices",
    response_model=DeviceOut,
    status_code=status.HTTP_201_CREATED,
)
def create_device(passenger_id: str, session: SessionDep, me: CurrentPassenger) -> DeviceOut:
    if me.passenger_id != passenger_id:
        # Same answer as for a passenger that does not exist: ids are not probeable.
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="passenger not found")
    device = services.register_device(session, passenger_id)
    return DeviceOut(device_id=device.device_id, device_key=device.device_key_b64)


@router.post(
    "/vehicles/{vehicle_id}/batches",
    response_model=wire.BatchAccepted,
    responses={401: {}, 413: {}, 422: {}},
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": wire.Batch.model_json_schema()}},
        }
    },
)
async def upload_batch(
    request: Request,
    vehicle_id: Annotated[str, Path(max_length=64)],
    x_bibo_timestamp: Annotated[str | None, Header()] = None,
    x_bibo_signature: Annotated[str | None, Header()] = None,
) -> wire.BatchAccepted | JSONResponse:
    raw = await request.body()
    headers = {k.lower(): v for k, v in request.headers.items()}
    factory = request.app.state.sessions
    clock = request.app.state.clock

    def work() -> wire.BatchAccepted:
        with factory() as session, session.begin():
            return ingest(session, vehicle_id, headers, raw, clock())

    try:
        return await run_in_threadpool(work)
    except IngestError as exc:
        return JSONResponse(status_code=exc.status, content={"detail": exc.detail})


@router.get("/trips", response_model=list[TripOut])
def list_trips(
    session: SessionDep, _operator: CurrentOperator, service_day: ServiceDay
) -> list[TripOut]:
    return [TripOut.model_validate(t) for t in repository.day_trips(session, service_day)]


@router.post("/reconcile", response_model=ReconcileOut)
def reconcile_now(
    request: Request, _operator: CurrentOperator, service_day: ServiceDay
) -> ReconcileOut:
    state = request.app.state
    summary = services.reconcile_day(state.sessions, service_day, state.resolvers, state.clock)
    return ReconcileOut(**summary.__dict__)


@router.get("/charges", response_model=list[ChargeOut])
def list_charges(
    request: Request, session: SessionDep, _operator: CurrentOperator, service_day: ServiceDay
) -> list[ChargeOut]:
    return [
        ChargeOut(
            passenger_id=c.passenger_id,
            trips=c.trips,
            total_cents=c.bill.total_cents if c.bill else None,
            singles_total_cents=c.bill.singles_total_cents if c.bill else None,
            error=c.error,
        )
        for c in services.day_charges(session, service_day, request.app.state.tariff)
    ]
