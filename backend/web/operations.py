"""The operations page: work that needs an operator's eye — reconciliation units that failed
(waiting to retry, or parked), and late data for service days past retention (kept and
reported, never used to rewrite billed history)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from backend import repository
from backend.api.deps import SessionDep
from backend.const import MAX_UNIT_ATTEMPTS
from backend.web.auth import WebOperator
from backend.web.const import LATE_DATA_ROWS
from backend.web.routes import render

router = APIRouter(prefix="/ops", include_in_schema=False)


@router.get("/operations")
def operations(request: Request, session: SessionDep, operator: WebOperator) -> HTMLResponse:
    return render(
        request,
        "operations.html",
        operator,
        units=repository.troubled_units(session),
        late=repository.late_data(session, LATE_DATA_ROWS),
        purged_before=repository.purged_before(session),
        max_attempts=MAX_UNIT_ATTEMPTS,
    )
