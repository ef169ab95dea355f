"""The operations page: work that needs an operator's eye — reconciliation units that failed
(waiting to retry, or parked), and late data for service days past retention (kept and
reported, never used to rewrite billed history)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from backend.api.deps import SessionDep
from backend.const import MAX_UNIT_ATTEMPTS
from backend.operators import service as operators_service
from backend.operators.web.auth import WebOperator
from backend.operators.web.routes import render

router = APIRouter(prefix="/ops", include_in_schema=False)


@router.get("/operations")
def operations(request: Request, session: SessionDep, operator: WebOperator) -> HTMLResponse:
    work = operators_service.operations(session)
    return render(
        request,
        "operations.html",
        operator,
        units=work.units,
        late=work.late,
        purged_before=work.purged_before,
        max_attempts=MAX_UNIT_ATTEMPTS,
    )
