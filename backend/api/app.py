"""The FastAPI application factory and the in-process background reconciliation."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress

from fastapi import Depends, FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from sqlalchemy import Engine
from starlette.routing import BaseRoute, Match

import fare_engine
from backend import observability
from backend.api import docs as api_docs
from backend.api.deps import no_unknown_query_parameters
from backend.api.health import router as health_router
from backend.app_web import install as install_app_web
from backend.billing.endpoints import router as billing_router
from backend.const import (
    MAINTENANCE_INTERVAL_S,
    RECONCILE_INTERVAL_S,
    RESEND_BURST,
    RESENDS_PER_S,
)
from backend.db import make_engine, make_sessionmaker, upgrade
from backend.ingest.endpoints import router as ingest_router
from backend.ingest.service import VehicleSecrets
from backend.limits import RateLimiter
from backend.notifications import service as notifications_service
from backend.notifications.endpoints import router as notifications_router
from backend.notifications.push import push_sender
from backend.operators.endpoints import operations_router
from backend.operators.endpoints import router as operator_router
from backend.operators.entitlement_endpoints import router as entitlement_router
from backend.operators.web import install as install_web
from backend.passengers.endpoints import router as passenger_router
from backend.phones.endpoints import router as phone_router
from backend.phones.service import BeaconResolvers
from backend.settings import Settings, get_settings
from backend.tickets.endpoints import install as install_tickets
from backend.trips import service as trips_service
from backend.trips.endpoints import router as trips_router
from backend.trips.worker import maintain

log = logging.getLogger(__name__)

Clock = Callable[[], dt.datetime]


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def reconcile_dirty_units(app: FastAPI) -> int:
    """Reconcile every vehicle-day (and day) that received data since it was last done."""
    state = app.state
    done = trips_service.work_until_idle(state.sessions, state.resolvers, state.clock)
    for work in done:
        if work.error is not None:
            kind = "parked" if work.parked else "failed"
        else:
            kind = "day" if work.result is None else "vehicle_day"
        state.metrics.units.labels(kind).inc()
        for confidence in work.result.confidences if work.result else ():
            state.metrics.confidence.observe(confidence)
    if done:
        log.info("reconciled %d units", len(done))
    return len(done)


async def _reconcile_loop(app: FastAPI) -> None:
    next_maintenance = 0.0
    while True:
        await asyncio.sleep(RECONCILE_INTERVAL_S)
        try:
            await run_in_threadpool(reconcile_dirty_units, app)
            state = app.state
            await run_in_threadpool(
                notifications_service.drain,
                state.sessions,
                state.clock(),
                state.stop_names,
                state.push_sender,
            )
            if time.monotonic() >= next_maintenance:
                # A single-node deployment has no separate ``bibo worker``: bill here.
                state = app.state
                await run_in_threadpool(maintain, state.sessions, state.settings, state.clock())
                state.metrics.billing_runs.labels("hourly").inc()
                next_maintenance = time.monotonic() + MAINTENANCE_INTERVAL_S
        except Exception:
            log.exception("background work failed; retrying next round")


async def _final_day(_request: Request, exc: Exception) -> Response:
    """A rebuild of a day past retention, by any route: refused, its trips are final."""
    return JSONResponse(status_code=409, content={"detail": str(exc)})


async def _method_not_allowed(request: Request, exc: Exception) -> Response:
    """405 with every method the path answers in ``Allow``: Starlette names only those of
    the first route matching the path, and a path may have several (GET and POST)."""
    allowed: set[str] = set()
    for route in request.app.router.routes:
        if isinstance(route, BaseRoute) and route.matches(request.scope)[0] is not Match.NONE:
            allowed |= getattr(route, "methods", None) or set()
    return JSONResponse(
        status_code=405,
        content={"detail": "Method Not Allowed"},
        headers={"Allow": ", ".join(sorted(allowed))},
    )


def create_app(
    settings: Settings | None = None,
    engine: Engine | None = None,
    clock: Clock = utc_now,
    migrate: bool = True,
) -> FastAPI:
    settings = settings or get_settings()
    engine = engine or make_engine(settings.database_url)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        task = None
        if settings.reconcile_in_background:
            task = asyncio.create_task(_reconcile_loop(app))
        yield
        if task is not None:
            task.cancel()
            with suppress(asyncio.CancelledError):
                await task

    if migrate:
        upgrade(engine)
    app = FastAPI(
        title="bibo",
        version="0.1.0",
        lifespan=lifespan,
        dependencies=[Depends(no_unknown_query_parameters)],
        # Served by backend/api/docs.py from installed assets instead of a CDN.
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.sessions = make_sessionmaker(engine)
    app.state.clock = clock
    app.state.resolvers = trips_service.ResolverCache()
    app.state.vehicle_limiter = RateLimiter(
        settings.vehicle_uploads_per_s, settings.vehicle_upload_burst, time.monotonic
    )
    app.state.resend_limiter = RateLimiter(RESENDS_PER_S, RESEND_BURST, time.monotonic)
    app.state.vehicle_secrets = VehicleSecrets()
    app.state.phone_limiter = RateLimiter(
        settings.phone_uploads_per_s, settings.phone_upload_burst, time.monotonic
    )
    app.state.phone_resend_limiter = RateLimiter(RESENDS_PER_S, RESEND_BURST, time.monotonic)
    app.state.beacon_resolvers = BeaconResolvers()
    app.state.signup_limiter = RateLimiter(
        settings.signups_per_s, settings.signup_burst, time.monotonic
    )
    observability.install(app)
    app.state.tariff = fare_engine.load_tariff()
    app.state.stop_names = {s.stop_id: s.name for s in app.state.tariff.stops()}
    app.state.push_sender = push_sender(settings)
    app.add_exception_handler(trips_service.FinalDayError, _final_day)
    app.add_exception_handler(405, _method_not_allowed)
    for domain_router in (
        health_router,
        ingest_router,
        phone_router,
        passenger_router,
        trips_router,
        billing_router,
        operator_router,
        operations_router,
        entitlement_router,
        notifications_router,
    ):
        app.include_router(domain_router)
    app.include_router(api_docs.router_for(app))
    install_app_web(app)
    install_tickets(app, settings)
    install_web(app, settings)
    return app
