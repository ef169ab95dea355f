"""What needs an operator's eye, as JSON: reconciliation units that failed (retrying or
parked) and late data for service days past retention (the web page ``/ops/operations``
shows the same)."""

from __future__ import annotations

import datetime as dt

from fastapi import APIRouter
from pydantic import BaseModel, Field

from backend import repository
from backend.api.deps import CurrentOperator, SessionDep
from backend.api.schemas import errors
from backend.web.const import LATE_DATA_ROWS

router = APIRouter(prefix="/v1", tags=["operator"], responses=errors(401))


class TroubledUnitOut(BaseModel):
    service_day: dt.date
    vehicle_id: str = Field(description="'*' is the day's cross-vehicle settling")
    attempts: int
    parked: bool = Field(description="failed too often; waits for POST /v1/reconcile")
    last_error: str | None
    failed_at: dt.datetime | None


class LateDataOut(BaseModel):
    service_day: dt.date
    vehicle_id: str
    batches: int
    last_received_at: dt.datetime


class OperationsOut(BaseModel):
    sightings_purged_before: dt.date | None = Field(
        description="service days before this are past retention: their trips are final"
    )
    units: list[TroubledUnitOut]
    late_data: list[LateDataOut]


@router.get("/operations", response_model=OperationsOut)
def operations(session: SessionDep, _operator: CurrentOperator) -> OperationsOut:
    return OperationsOut(
        sightings_purged_before=repository.purged_before(session),
        units=[
            TroubledUnitOut.model_validate(u, from_attributes=True)
            for u in repository.troubled_units(session)
        ],
        late_data=[
            LateDataOut.model_validate(r, from_attributes=True)
            for r in repository.late_data(session, LATE_DATA_ROWS)
        ],
    )
