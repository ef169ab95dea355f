"""The operator's side of entitlements (tickets riders hold elsewhere): the queue, and
verifying or revoking one against its evidence. A revocation re-bills the months the
entitlement touched. Roles in ``backend/api/policy.py``: a viewer reads, an agent decides.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from backend.api.deps import CurrentOperator, SessionDep
from backend.api.schemas import TEXT_PATTERN, DbId, errors
from backend.passengers import entitlements as entitlements_service
from backend.passengers.endpoints import (
    entitlement_change_out,
    entitlement_error,
    entitlement_out,
)
from backend.passengers.schemas import EntitlementChangeOut, EntitlementOut

router = APIRouter(prefix="/v1", tags=["operator"], responses=errors(400, 401, 403, 422))


class EntitlementDecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    decision: entitlements_service.Decision
    note: str = Field(min_length=3, max_length=500, pattern=TEXT_PATTERN)


class OperatorEntitlementOut(EntitlementOut):
    passenger_id: str
    decided_by: int | None


def _now(request: Request) -> dt.datetime:
    now: dt.datetime = request.app.state.clock()
    return now


@router.get("/entitlements", response_model=list[OperatorEntitlementOut])
def entitlement_queue(
    session: SessionDep,
    operator: CurrentOperator,
    status: Annotated[
        Literal["pending", "verified", "revoked", "withdrawn"] | None,
        Query(description="only entitlements in this state (default: all)"),
    ] = None,
) -> list[OperatorEntitlementOut]:
    return [
        OperatorEntitlementOut(
            **entitlement_out(e).model_dump(),
            passenger_id=e.passenger_id,
            decided_by=e.decided_by,
        )
        for e in entitlements_service.queue(session, status)
    ]


@router.post(
    "/entitlements/{entitlement_id}/decide",
    response_model=EntitlementChangeOut,
    responses=errors(404, 409),
)
def decide_entitlement(
    entitlement_id: DbId,
    body: EntitlementDecisionIn,
    request: Request,
    session: SessionDep,
    operator: CurrentOperator,
) -> EntitlementChangeOut:
    """Verify the ticket against its evidence, or revoke it (its trips are charged)."""
    try:
        entitlement, rebilled = entitlements_service.decide(
            session, entitlement_id, operator.operator_id, body.decision, body.note, _now(request)
        )
    except entitlements_service.EntitlementError as exc:
        raise entitlement_error(exc) from None
    return entitlement_change_out(entitlement, rebilled)
