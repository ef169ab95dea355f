"""Finding things on the operator pages: the search box (passenger, device, trip and vehicle
ids, exact or by prefix), the passenger list and one passenger on one page, and detection
quality per line and vehicle over a period."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from backend.api.deps import SessionDep
from backend.api.schemas import PassengerId
from backend.billing.presentation import ENTITLEMENT_LABELS
from backend.const import LOW_CONFIDENCE
from backend.operators import pages
from backend.operators.web.auth import PageError, WebOperator
from backend.operators.web.const import (
    DEFAULT_PAGE_SIZE,
    QUALITY_DAYS,
    SEARCH_LIMIT,
)
from backend.operators.web.routes import (
    identifier,
    page_links,
    parse_day,
    parse_paging,
    render,
    stop_names,
    today,
)

router = APIRouter(prefix="/ops", include_in_schema=False)

QUALITY_MAX_DAYS = 366
"""The longest period the quality view sums over (a year): longer asks scan too much."""


@router.get("/search")
def search(
    request: Request, session: SessionDep, operator: WebOperator, q: str = ""
) -> HTMLResponse:
    text = identifier("q", q) or ""
    hits = pages.search(session, text, SEARCH_LIMIT) if text else []
    return render(
        request,
        "search.html",
        operator,
        q=text,
        hits=hits,
        limit=SEARCH_LIMIT,
        kinds=pages.SEARCH_KINDS,
    )


@router.get("/passengers")
def passenger_list(
    request: Request, session: SessionDep, operator: WebOperator, page: str = "1", size: str = ""
) -> HTMLResponse:
    found = pages.passenger_page(session, parse_paging(page, size))
    return render(
        request,
        "passengers.html",
        operator,
        rows=found.items,
        page=found,
        links=page_links(request, found),
    )


@router.get("/passengers/{passenger_id}")
def passenger(
    passenger_id: PassengerId,
    request: Request,
    session: SessionDep,
    operator: WebOperator,
    page: str = "1",
    size: str = "",
) -> HTMLResponse:
    found = pages.passenger_overview(
        session, passenger_id, parse_paging(page, size), pages.Paging(1, DEFAULT_PAGE_SIZE)
    )
    if found is None:
        raise PageError(404, "No such passenger", f"Passenger {passenger_id!r} is not known.")
    return render(
        request,
        "passenger.html",
        operator,
        p=found,
        page=found.trips,
        links=page_links(request, found.trips),
        names=stop_names(request),
        labels=ENTITLEMENT_LABELS,
        low_threshold=LOW_CONFIDENCE,
    )


def _period(request: Request, from_: str, to: str) -> tuple[dt.date, dt.date]:
    last = parse_day("to", to.strip()) or today(request)
    first = parse_day("from", from_.strip()) or last - dt.timedelta(days=QUALITY_DAYS - 1)
    if first > last:
        raise PageError(422, "Bad period", f"from: {first} is after to: {last}.")
    if (last - first).days >= QUALITY_MAX_DAYS:
        raise PageError(
            422, "Bad period", f"from, to: at most {QUALITY_MAX_DAYS} days, got {first} to {last}."
        )
    return first, last


@router.get("/quality")
def quality(
    request: Request,
    session: SessionDep,
    operator: WebOperator,
    from_: Annotated[str, Query(alias="from")] = "",
    to: str = "",
) -> Response:
    first, last = _period(request, from_, to)
    return render(
        request,
        "quality.html",
        operator,
        first=first,
        last=last,
        figures=pages.quality(session, first, last, LOW_CONFIDENCE),
        low_threshold=LOW_CONFIDENCE,
    )
