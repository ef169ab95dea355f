"""The operator pages under ``/ops``: thin routes over the same services as the JSON API
(``backend/operators/endpoints.py``); POSTs redirect back (post/redirect/get) with a flash
message that carries the re-bill result."""

from __future__ import annotations

import datetime as dt
import logging
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Annotated, Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from backend import models
from backend.api.deps import SessionDep
from backend.api.schemas import MONTH_PATTERN, TEXT_PATTERN, DbId, PassengerId, TripId
from backend.billing import apportionment
from backend.billing import service as billing_service
from backend.billing.presentation import ENTITLEMENT_LABELS
from backend.billing.rendering import render_invoice
from backend.const import LOW_CONFIDENCE, SERVICE_DAY_TZ
from backend.operators import evidence as operators_evidence
from backend.operators import pages
from backend.operators import service as operators_service
from backend.operators.web import charts
from backend.operators.web.auth import (
    CSRF_FIELD,
    CsrfChecked,
    LoginFailedError,
    LoginThrottledError,
    PageError,
    ThrottleScope,
    WebOperator,
    attempt_login,
    can,
    client_address,
    csrf_token,
    end_session,
    has_session,
    now,
    safe_next,
    signed_in_operator,
    start_session,
)
from backend.operators.web.const import (
    CONFIDENCE_BINS,
    CSV_MAX_ROWS,
    DAILY_CHART_WIDTH_PX,
    DASHBOARD_DAYS,
    DEFAULT_PAGE_SIZE,
    PAGE_SIZES,
)
from backend.passengers import entitlements as entitlements_service
from backend.passengers.disputes import (
    DisputeError,
    DisputeErrorReason,
    Rebilled,
    Resolution,
    check_changes,
    correct_trip,
    require_trip,
    resolve_dispute,
)
from backend.templating import environment, euros
from backend.timeutil import service_day_of
from onboard.wire import IDENTIFIER_MAX_CHARS

log = logging.getLogger(__name__)

router = APIRouter(prefix="/ops", include_in_schema=False)

PAGE_HEADERS = {
    # No script at all; inline SVG needs no style-src exception (presentation attributes).
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
INVOICE_HEADERS = PAGE_HEADERS | {
    # The shared invoice template carries its own <style> (it is also a stand-alone print).
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
    "frame-ancestors 'none'; base-uri 'none'",
}
_FLASH = "flash"
_TZ = ZoneInfo(SERVICE_DAY_TZ)


# --- rendering helpers ----------------------------------------------------------------------


def flash(request: Request, kind: str, text: str) -> None:
    """A message shown once, on the next page (kind: ``ok`` or ``error``)."""
    request.session[_FLASH] = [*request.session.get(_FLASH, []), [kind, text]]


def when(value: dt.datetime | None, fmt: str = "%d.%m.%Y %H:%M") -> str:
    """A bookkeeping timestamp (aware, or naive UTC from SQLite) in local time."""
    if value is None:
        return "–"
    t = value
    if t.tzinfo is None:
        t = t.replace(tzinfo=dt.UTC)
    return t.astimezone(_TZ).strftime(fmt)


def render(
    request: Request,
    template: str,
    operator: models.Operator | None,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
    **context: Any,
) -> HTMLResponse:
    html = (
        environment()
        .get_template(f"ops/{template}")
        .render(
            me=operator,
            can=(lambda role: operator is not None and can(operator, role)),
            csrf_field=CSRF_FIELD,
            csrf=csrf_token(request),
            flashes=request.session.pop(_FLASH, []),
            path=request.url.path,
            when=when,
            **context,
        )
    )
    return HTMLResponse(html, status_code, headers=PAGE_HEADERS | (headers or {}))


def error_page(request: Request, exc: PageError) -> HTMLResponse:
    return render(
        request,
        "error.html",
        None,
        exc.status_code,
        exc.headers,
        title=exc.title,
        message=exc.message,
        logged_in=has_session(request),
    )


def stop_names(request: Request) -> dict[str, str]:
    return {s.stop_id: s.name for s in request.app.state.tariff.stops()}


def _redirect(path: str) -> RedirectResponse:
    return RedirectResponse(path, status_code=303)


def today(request: Request) -> dt.date:
    return service_day_of(int(now(request).timestamp() * 1000))


def _duration(seconds: int) -> str:
    """``45 seconds``, ``2 minutes``: a wait in words, rounded up to whole minutes past one."""
    if seconds < 60:
        return f"{seconds} second{'s' if seconds != 1 else ''}"
    minutes = math.ceil(seconds / 60)
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


def _rebill_text(rebilled: Rebilled | None) -> str:
    if rebilled is None:
        return "Nothing to re-bill."
    text = f"Re-billed {rebilled.month}: new total {euros(rebilled.total_cents)}"
    if rebilled.invoice_version is not None:
        return f"{text}; invoice version {rebilled.invoice_version} issued."
    return f"{text} (month still open: no new invoice)."


# --- static ---------------------------------------------------------------------------------


@cache
def _stylesheet() -> str:
    return (resources.files("backend") / "templates" / "ops" / "ops.css").read_text("utf-8")


@router.get("/static/ops.css")
def stylesheet() -> Response:
    return Response(_stylesheet(), media_type="text/css", headers={"Cache-Control": "max-age=3600"})


# --- login ----------------------------------------------------------------------------------


@router.get("/login")
def login_page(
    request: Request,
    session: SessionDep,
    next_: Annotated[str, Query(alias="next")] = "/ops/",
) -> Response:
    if signed_in_operator(request, session) is None:
        return render(request, "login.html", None, next=safe_next(next_))
    return _redirect(safe_next(next_))


@router.post("/login", dependencies=[CsrfChecked])
def login(
    request: Request,
    session: SessionDep,
    name: Annotated[str, Form(max_length=200, pattern=TEXT_PATTERN)] = "",
    password: Annotated[str, Form(max_length=1000)] = "",
    next_: Annotated[str, Form(alias="next")] = "/ops/",
) -> Response:
    address = client_address(request)
    try:
        operator = attempt_login(
            request.app.state.sessions, session, name, password, address, now(request)
        )
    except LoginThrottledError as exc:
        seconds = max(1, math.ceil(exc.wait.total_seconds()))
        log.warning("web login for %r from %s throttled (%s)", name, address, exc.scope.value)
        whose = f"for {name!r} " if exc.scope is ThrottleScope.NAME else ""
        return render(
            request,
            "login.html",
            None,
            429,
            {"Retry-After": str(seconds)},
            next=safe_next(next_),
            name=name,
            error=f"Too many failed logins {whose}from your address. Try again in "
            f"{_duration(seconds)}, or ask an administrator.",
        )
    except LoginFailedError:
        log.warning("failed web login for %r from %s", name, address)
        return render(
            request,
            "login.html",
            None,
            401,
            next=safe_next(next_),
            name=name,
            error="Wrong operator name or password.",
        )
    start_session(request, session, operator, now(request))
    log.info("operator %s (%s) logged in", operator.operator_id, operator.role)
    return _redirect(safe_next(next_))


@router.post("/logout", dependencies=[CsrfChecked])
def logout(request: Request, session: SessionDep) -> Response:
    end_session(request, session)
    return _redirect("/ops/login")


# --- dashboard ------------------------------------------------------------------------------


def parse_day(field: str, text: str) -> dt.date | None:
    if not text:
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise PageError(
            422, "Bad filter", f"{field}: expected a date as YYYY-MM-DD, got {text!r}."
        ) from None


@router.get("/")
def dashboard(
    request: Request, session: SessionDep, operator: WebOperator, until: str = ""
) -> HTMLResponse:
    last = parse_day("until", until) or today(request)
    first = last - dt.timedelta(days=DASHBOARD_DAYS - 1)
    figures = pages.dashboard(session, first, last)
    per_day, newest = figures.per_day, figures.newest_day
    days = [first + dt.timedelta(days=k) for k in range(DASHBOARD_DAYS)]
    counts = charts.confidence_bins(figures.confidences, CONFIDENCE_BINS)
    previous_month = billing_service.month_of(today(request).replace(day=1) - dt.timedelta(days=1))
    return render(
        request,
        "dashboard.html",
        operator,
        first=first,
        last=last,
        earlier=first - dt.timedelta(days=1),
        later=last + dt.timedelta(days=DASHBOARD_DAYS) if last < today(request) else None,
        newest=newest if newest is not None and not first <= newest <= last else None,
        trips_total=sum(per_day.values()),
        low_confidence=sum(1 for c in figures.confidences if c < LOW_CONFIDENCE),
        low_threshold=LOW_CONFIDENCE,
        open_disputes=figures.open_disputes,
        revenue=figures.revenue,
        trips_chart=charts.bar_chart(
            [charts.Bar(f"{d:%d.%m}", per_day.get(d, 0)) for d in days],
            f"Trips per service day, {first} to {last}",
        ),
        confidence_chart=charts.bar_chart(
            [
                charts.Bar(
                    f"{k / CONFIDENCE_BINS:.1f}–{(k + 1) / CONFIDENCE_BINS:.1f}",
                    n,
                    warn=(k + 1) / CONFIDENCE_BINS <= LOW_CONFIDENCE,
                )
                for k, n in enumerate(counts)
            ],
            f"Detection confidence of the trips, {first} to {last}",
        ),
        revenue_chart=charts.bar_chart(
            [charts.Bar(m, cents) for m, cents in figures.revenue],
            "Billed revenue per month (ledger balance)",
            value_label=euros,
        ),
        close_month_default=previous_month,
        window_days=DASHBOARD_DAYS,
    )


@router.post("/billing/close-month", dependencies=[CsrfChecked])
def close_month(
    request: Request,
    session: SessionDep,
    operator: WebOperator,
    month: Annotated[str, Form(pattern=MONTH_PATTERN)],
) -> Response:
    try:
        invoices = billing_service.close_month(session, month, now(request))
    except ValueError as exc:
        raise PageError(409, "Month not closed", f"{exc}.") from None
    log.info("operator %s closed %s: %d invoices", operator.operator_id, month, len(invoices))
    flash(
        request,
        "ok",
        f"Closed {month}: {len(invoices)} new or changed invoice(s) "
        f"totalling {euros(sum(i.total_cents for i in invoices))}.",
    )
    return _redirect("/ops/")


# --- paging ---------------------------------------------------------------------------------


def parse_paging(page: str, size: str) -> pages.Paging:
    """``page`` (from 1) and ``size`` (one of ``PAGE_SIZES``) from the query; else a 422."""
    number = int(page) if re.fullmatch(r"[0-9]{1,9}", page.strip()) else 0
    if number < 1:
        raise PageError(422, "Bad page", f"page: expected a whole number from 1, got {page!r}.")
    rows = DEFAULT_PAGE_SIZE
    if size.strip():
        rows = int(size) if re.fullmatch(r"[0-9]{1,9}", size.strip()) else 0
    if rows not in PAGE_SIZES:
        raise PageError(
            422,
            "Bad page size",
            f"size: expected one of {', '.join(map(str, PAGE_SIZES))}, got {size!r}.",
        )
    return pages.Paging(number, rows)


@dataclass(frozen=True, slots=True)
class PageLinks:
    """Where the pager's links go: the same query with another page or page size."""

    previous: str | None
    next: str | None
    sizes: list[tuple[int, str | None]]
    """(size, link; None for the size shown)."""


def page_links(request: Request, page: pages.Page[Any]) -> PageLinks:
    query = {k: v for k, v in request.query_params.items() if k not in ("page", "size")}

    def link(number: int, size: int) -> str:
        return f"{request.url.path}?{urlencode(query | {'page': number, 'size': size})}"

    paging = page.paging
    return PageLinks(
        previous=link(paging.page - 1, paging.size) if paging.page > 1 else None,
        next=link(paging.page + 1, paging.size) if page.has_next else None,
        sizes=[(n, None if n == paging.size else link(1, n)) for n in PAGE_SIZES],
    )


# --- trips ----------------------------------------------------------------------------------


def identifier(field: str, value: str) -> str | None:
    """A filter's id (None if empty); a 422 for one no id can be."""
    if len(value) > IDENTIFIER_MAX_CHARS or not re.fullmatch(r"[^\x00-\x1f\x7f]*", value):
        raise PageError(
            422,
            "Bad filter",
            f"{field}: expected at most {IDENTIFIER_MAX_CHARS} printable characters.",
        )
    return value.strip() or None


@dataclass(frozen=True)
class TripFilters:
    day: dt.date | None
    line: str | None
    vehicle: str | None
    max_confidence: float | None
    sort: str
    passenger: str | None = None
    device: str | None = None

    @classmethod
    def parse(
        cls,
        day: str,
        line: str,
        vehicle: str,
        max_confidence: str,
        sort: str,
        passenger: str = "",
        device: str = "",
    ) -> TripFilters:
        limit = None
        if max_confidence.strip():
            try:
                limit = float(max_confidence)
            except ValueError:
                limit = math.nan
            if not 0 <= limit <= 1:
                raise PageError(
                    422,
                    "Bad filter",
                    f"max_confidence: expected a number from 0 to 1, got {max_confidence!r}.",
                )
        if sort not in ("time", "confidence"):
            raise PageError(
                422, "Bad filter", f"sort: expected 'time' or 'confidence', got {sort!r}."
            )
        ids = {
            field: identifier(field, value)
            for field, value in (
                ("line", line),
                ("vehicle", vehicle),
                ("passenger", passenger),
                ("device", device),
            )
        }
        day_ = parse_day("day", day.strip())
        return cls(
            day_,
            ids["line"],
            ids["vehicle"],
            limit,
            sort,
            ids["passenger"],
            ids["device"],
        )

    @property
    def query_of(self) -> pages.TripQuery:
        return pages.TripQuery(
            day=self.day,
            line=self.line,
            vehicle_id=self.vehicle,
            max_confidence=self.max_confidence,
            passenger_id=self.passenger,
            device_id=self.device,
            sort=self.sort,
        )

    def query(self) -> str:
        return urlencode(
            {
                "day": self.day.isoformat() if self.day else "",
                "line": self.line or "",
                "vehicle": self.vehicle or "",
                "max_confidence": "" if self.max_confidence is None else self.max_confidence,
                "sort": self.sort,
                "passenger": self.passenger or "",
                "device": self.device or "",
            }
        )


def trip_filters(
    day: str = "",
    line: str = "",
    vehicle: str = "",
    max_confidence: str = "",
    sort: str = "time",
    passenger: str = "",
    device: str = "",
) -> TripFilters:
    """The trip list's filters from the query string (the page and its CSV take the same)."""
    return TripFilters.parse(day, line, vehicle, max_confidence, sort, passenger, device)


TripFiltersDep = Annotated[TripFilters, Depends(trip_filters)]
"""Declared after the operator in a route, so a request is authorised before it is parsed."""


@router.get("/trips")
def trip_list(
    request: Request,
    session: SessionDep,
    operator: WebOperator,
    f: TripFiltersDep,
    page: str = "1",
    size: str = "",
) -> HTMLResponse:
    found = pages.trips_page(session, f.query_of, parse_paging(page, size))
    corrected, disputed = pages.trip_flags(session, found.items)
    return render(
        request,
        "trips.html",
        operator,
        f=f,
        rows=found.items,
        page=found,
        links=page_links(request, found),
        corrected=corrected,
        disputed=disputed,
        names=stop_names(request),
        low_threshold=LOW_CONFIDENCE,
        csv_max_rows=CSV_MAX_ROWS,
    )


def csv_response(text: str, filename: str) -> Response:
    return Response(
        text,
        media_type="text/csv",
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Cache-Control": "no-store",
        },
    )


@router.get("/trips.csv")
def trips_csv(
    request: Request,
    session: SessionDep,
    _operator: WebOperator,
    f: TripFiltersDep,
) -> Response:
    rows = pages.trips_for_export(session, f.query_of, CSV_MAX_ROWS)
    return csv_response(
        operators_service.readable_trips_csv(rows, stop_names(request)),
        f"trips-{f.day or 'all'}.csv",
    )


def _trip_or_404(session: SessionDep, trip_id: TripId) -> models.Trip:
    try:
        return require_trip(session, trip_id)
    except DisputeError:
        raise PageError(
            404, "No such trip", f"Trip {trip_id!r} does not exist (any more)."
        ) from None


def _stop_choices(request: Request, journey: Sequence[str]) -> dict[str, Any]:
    names = stop_names(request)
    return {
        "journey_stops": [(s, names.get(s, s)) for s in journey],
        "all_stops": sorted(names.items(), key=lambda item: item[1]),
    }


@router.get("/trips/{trip_id}")
def trip_page(
    trip_id: TripId, request: Request, session: SessionDep, operator: WebOperator
) -> HTMLResponse:
    trip = _trip_or_404(session, trip_id)
    review = pages.trip_review(session, trip)
    names = stop_names(request)
    positions = {s.stop_id: s for s in request.app.state.tariff.stops()}
    journey = [
        charts.MapStop(stop_id, p.name, p.lat, p.lon)
        for stop_id in review.journey_stops
        if (p := positions.get(stop_id)) is not None
    ]
    return render(
        request,
        "trip.html",
        operator,
        trip=trip,
        detail=review.detail,
        fix=review.fix,
        names=names,
        plot=charts.trace_plot(review.trace, names),
        stops_map=charts.stops_map(
            journey,
            review.fix.board_stop_id or trip.board_stop_id if review.fix else trip.board_stop_id,
            review.fix.alight_stop_id or trip.alight_stop_id if review.fix else trip.alight_stop_id,
        ),
        fare=pages.trip_fare(session, trip),
        evidence=operators_evidence.trip_evidence(session, trip, request.app.state.resolvers),
        histories=pages.dispute_histories(session, review.detail.disputes),
        sightings=len(review.trace.t),
        operator_names=review.operator_names,
        low_threshold=LOW_CONFIDENCE,
        **_stop_choices(request, review.journey_stops),
    )


def _known_stop(request: Request, field: str, stop_id: str) -> str | None:
    stop_id = stop_id.strip()
    if not stop_id:
        return None
    if stop_id not in stop_names(request):
        raise PageError(422, "Unknown stop", f"{field}: no stop {stop_id!r} in the tariff.")
    return stop_id


def _dispute_error(exc: DisputeError) -> PageError:
    codes = {
        DisputeErrorReason.NOT_FOUND: 404,
        DisputeErrorReason.NOTHING_TO_CHANGE: 422,
        DisputeErrorReason.NOT_ON_JOURNEY: 422,
    }
    return PageError(codes.get(exc.reason, 409), "Not done", f"{exc}.")


@router.post("/trips/{trip_id}/corrections", dependencies=[CsrfChecked])
def correct(
    trip_id: TripId,
    request: Request,
    session: SessionDep,
    operator: WebOperator,
    reason: Annotated[str, Form(max_length=500, pattern=TEXT_PATTERN)] = "",
    board_stop_id: Annotated[str, Form()] = "",
    alight_stop_id: Annotated[str, Form()] = "",
    cancelled: Annotated[str, Form()] = "",
) -> Response:
    _trip_or_404(session, trip_id)
    reason = reason.strip()
    if not 3 <= len(reason) <= 500:
        raise PageError(
            422, "Reason needed", "reason: say in 3 to 500 characters why the trip is corrected."
        )
    board = _known_stop(request, "board_stop_id", board_stop_id)
    alight = _known_stop(request, "alight_stop_id", alight_stop_id)
    try:
        rebilled = correct_trip(
            session,
            trip_id,
            operator.operator_id,
            reason,
            now(request),
            board_stop_id=board,
            alight_stop_id=alight,
            cancelled=bool(cancelled),
        )
    except DisputeError as exc:
        raise _dispute_error(exc) from None
    log.info("operator %s corrected trip %s", operator.operator_id, trip_id)
    flash(request, "ok", f"Correction saved. {_rebill_text(rebilled)}")
    return _redirect(f"/ops/trips/{trip_id}")


# --- disputes -------------------------------------------------------------------------------

DISPUTE_STATUSES = ("open", "accepted", "adjusted", "rejected", "all")


def _status_filter(status: str, statuses: Sequence[str]) -> str | None:
    """A queue's status filter: None for ``all``; 422 naming the choices otherwise."""
    if status not in statuses:
        raise PageError(422, "Bad filter", f"status: expected one of {', '.join(statuses)}.")
    return None if status == "all" else status


@router.get("/disputes")
def dispute_queue(
    request: Request,
    session: SessionDep,
    operator: WebOperator,
    status: str = "open",
    page: str = "1",
    size: str = "",
) -> HTMLResponse:
    found = pages.dispute_page(
        session, _status_filter(status, DISPUTE_STATUSES), parse_paging(page, size)
    )
    rows = []
    histories = pages.dispute_histories(session, [q.dispute for q in found.items])
    for queued, history in zip(found.items, histories, strict=True):
        choices = _stop_choices(request, queued.journey_stops)
        if queued.journey_stops:
            # A passenger can only have left this bus at one of its stops; every tariff stop
            # (300+) in two lists per dispute would bloat the queue.
            choices["all_stops"] = []
        rows.append({"dispute": queued.dispute, "trip": queued.trip, "history": history, **choices})
    return render(
        request,
        "disputes.html",
        operator,
        rows=rows,
        page=found,
        links=page_links(request, found),
        status=status,
        statuses=DISPUTE_STATUSES,
        names=stop_names(request),
        low_threshold=LOW_CONFIDENCE,
    )


@router.post("/disputes/{dispute_id}/resolve", dependencies=[CsrfChecked])
def resolve(
    dispute_id: DbId,
    request: Request,
    session: SessionDep,
    operator: WebOperator,
    action: Annotated[str, Form()] = "",
    note: Annotated[str, Form(max_length=1000, pattern=TEXT_PATTERN)] = "",
    board_stop_id: Annotated[str, Form()] = "",
    alight_stop_id: Annotated[str, Form()] = "",
) -> Response:
    try:
        resolution = Resolution(action)
    except ValueError:
        raise PageError(
            422, "Bad action", f"action: expected accept, adjust or reject, got {action!r}."
        ) from None
    board = _known_stop(request, "board_stop_id", board_stop_id)
    alight = _known_stop(request, "alight_stop_id", alight_stop_id)
    if resolution is Resolution.ADJUST:
        try:
            check_changes(board_stop_id=board, alight_stop_id=alight, cancelled=False)
        except DisputeError:
            raise PageError(
                422, "Stop needed", "adjust: choose the boarding or the alighting stop (or both)."
            ) from None
    try:
        dispute, rebilled = resolve_dispute(
            session,
            dispute_id,
            operator.operator_id,
            resolution,
            note.strip(),
            now(request),
            board_stop_id=board if resolution is Resolution.ADJUST else None,
            alight_stop_id=alight if resolution is Resolution.ADJUST else None,
        )
    except DisputeError as exc:
        raise _dispute_error(exc) from None
    log.info("operator %s resolved dispute %s: %s", operator.operator_id, dispute_id, action)
    flash(request, "ok", f"Dispute {dispute_id} {dispute.status}. {_rebill_text(rebilled)}")
    return _redirect("/ops/disputes")


# --- entitlements (tickets held elsewhere) ----------------------------------------------------

ENTITLEMENT_STATUSES = ("pending", "verified", "revoked", "withdrawn", "all")


@router.get("/entitlements")
def entitlement_queue(
    request: Request,
    session: SessionDep,
    operator: WebOperator,
    status: str = "pending",
    page: str = "1",
    size: str = "",
) -> HTMLResponse:
    found = pages.entitlement_page(
        session, _status_filter(status, ENTITLEMENT_STATUSES), parse_paging(page, size)
    )
    return render(
        request,
        "entitlements.html",
        operator,
        rows=found.items,
        page=found,
        links=page_links(request, found),
        status=status,
        statuses=ENTITLEMENT_STATUSES,
        labels=ENTITLEMENT_LABELS,
    )


@router.post("/entitlements/{entitlement_id}/decide", dependencies=[CsrfChecked])
def decide_entitlement(
    entitlement_id: DbId,
    request: Request,
    session: SessionDep,
    operator: WebOperator,
    decision: Annotated[str, Form()] = "",
    note: Annotated[str, Form(max_length=500, pattern=TEXT_PATTERN)] = "",
) -> Response:
    try:
        chosen = entitlements_service.Decision(decision)
    except ValueError:
        raise PageError(
            422, "Bad decision", f"decision: expected verify or revoke, got {decision!r}."
        ) from None
    if len(note.strip()) < 3:
        raise PageError(422, "Note needed", "note: say what you checked (at least 3 characters).")
    try:
        entitlement, rebilled = entitlements_service.decide(
            session, entitlement_id, operator.operator_id, chosen, note.strip(), now(request)
        )
    except entitlements_service.EntitlementError as exc:
        reason = entitlements_service.EntitlementErrorReason
        code = {reason.NOT_FOUND: 404, reason.INVALID: 422, reason.ALREADY_DECIDED: 409}
        raise PageError(code[exc.reason], "Not possible", str(exc)) from None
    log.info(
        "operator %s %s entitlement %s", operator.operator_id, entitlement.status, entitlement_id
    )
    months = ", ".join(f"{m}: {euros(total)}" for m, total, _ in rebilled.months)
    flash(
        request,
        "ok",
        f"Entitlement {entitlement_id} {entitlement.status}."
        + (f" Re-billed {months}." if months else ""),
    )
    return _redirect("/ops/entitlements")


# --- a passenger's invoices -----------------------------------------------------------------


@router.get("/passengers/{passenger_id}/invoices")
def invoices(
    passenger_id: PassengerId,
    request: Request,
    session: SessionDep,
    operator: WebOperator,
    page: str = "1",
    size: str = "",
) -> HTMLResponse:
    found = pages.passenger_invoices(session, passenger_id, parse_paging(page, size))
    if found is None:
        raise PageError(404, "No such passenger", f"Passenger {passenger_id!r} is not known.")
    listed = found.invoices
    return render(
        request,
        "invoices.html",
        operator,
        passenger_id=passenger_id,
        category=found.category,
        deleted=not found.exists,
        invoices=listed.items,
        page=listed,
        links=page_links(request, listed),
        ledger=found.ledger,
    )


@router.get("/passengers/{passenger_id}/invoices/{invoice_id}")
def invoice(
    passenger_id: PassengerId,
    invoice_id: DbId,
    request: Request,
    session: SessionDep,
    _operator: WebOperator,
) -> HTMLResponse:
    found = billing_service.own_invoice(session, passenger_id, invoice_id)
    if found is None:
        raise PageError(
            404, "No such invoice", f"Invoice {invoice_id} of {passenger_id} not found."
        )
    return HTMLResponse(render_invoice(found, stop_names(request)), headers=INVOICE_HEADERS)


# --- revenue per transit company ------------------------------------------------------------


def _parse_month(request: Request, text: str) -> str:
    """A billing month ``YYYY-MM`` (the current month if empty); else a 422 page."""
    text = text.strip()
    if not text:
        return billing_service.month_of(today(request))
    if not re.fullmatch(MONTH_PATTERN, text):
        raise PageError(422, "Bad month", f"month: expected YYYY-MM from 1970 on, got {text!r}.")
    return text


@router.get("/revenue")
def revenue(
    request: Request, session: SessionDep, operator: WebOperator, month: str = ""
) -> HTMLResponse:
    month = _parse_month(request, month)
    report = apportionment.revenue_report(session, month)
    first, last = billing_service.month_days(month)
    later = last + dt.timedelta(days=1)
    daily = pages.daily_postings(session, first, last, _TZ)
    return render(
        request,
        "revenue.html",
        operator,
        report=report,
        month=month,
        earlier=billing_service.month_of(first - dt.timedelta(days=1)),
        later=billing_service.month_of(later) if later <= today(request) else None,
        rule=apportionment.configured_rule(),
        min_ride_km=apportionment.MIN_RIDE_KM,
        daily=daily,
        daily_chart=charts.bar_chart(
            [charts.Bar(f"{d:%d}", cents, warn=cents < 0) for d, cents in daily],
            f"Net ledger postings per day, {month}",
            value_label=euros,
            width=DAILY_CHART_WIDTH_PX,
        ),
    )


@router.get("/revenue/daily.csv")
def daily_revenue_csv(
    request: Request, session: SessionDep, _operator: WebOperator, month: str = ""
) -> Response:
    month = _parse_month(request, month)
    first, last = billing_service.month_days(month)
    return csv_response(
        operators_service.daily_revenue_csv(pages.daily_postings(session, first, last, _TZ)),
        f"revenue-daily-{month}.csv",
    )


@router.get("/revenue.csv")
def revenue_csv(
    request: Request, session: SessionDep, _operator: WebOperator, month: str = ""
) -> Response:
    month = _parse_month(request, month)
    return Response(
        operators_service.revenue_csv(apportionment.revenue_report(session, month)),
        media_type="text/csv",
        headers={
            "Content-Disposition": f'attachment; filename="revenue-{month}.csv"',
            "Cache-Control": "no-store",
        },
    )
