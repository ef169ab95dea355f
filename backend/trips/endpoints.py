"""Operators' view of detection: the stops, a day's trips (docs/contracts.md: Trip export)
and reconciliation on demand."""

from __future__ import annotations

from fastapi import APIRouter, Request

from backend.api.deps import CurrentOperator, ServiceDay, SessionDep
from backend.api.schemas import errors
from backend.trips import service as trips_service
from backend.trips.schemas import ReconcileOut, StopOut, TripOut

router = APIRouter(prefix="/v1", tags=["operator"], responses=errors(400, 401, 422))


@router.get("/stops", response_model=list[StopOut])
def list_stops(request: Request, _operator: CurrentOperator) -> list[StopOut]:
    return [
        StopOut(stop_id=s.stop_id, name=s.name, lat=s.lat, lon=s.lon)
        for s in request.app.state.tariff.stops()
    ]


@router.get("/trips", response_model=list[TripOut])
def list_trips(
    session: SessionDep, _operator: CurrentOperator, service_day: ServiceDay
) -> list[TripOut]:
    return [TripOut.model_validate(t) for t in trips_service.day_trips(session, service_day)]


@router.post("/reconcile", response_model=ReconcileOut)
def reconcile_now(
    request: Request, _operator: CurrentOperator, service_day: ServiceDay
) -> ReconcileOut:
    state = request.app.state
    summary = trips_service.reconcile_day(state.sessions, service_day, state.resolvers, state.clock)
    return ReconcileOut(**summary.__dict__)
