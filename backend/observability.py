"""Prometheus metrics and structured (JSON) logs with request ids.

Metrics live in one registry per app (tests build many apps). Counters are per process;
the reconciliation lag is read from the database at scrape time, so it is right whichever
process is scraped.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import json
import logging
import re
import secrets
import time
from typing import Any

from fastapi import FastAPI, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from backend.trips import repository as trips_repo

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")
_REQUEST_ID = re.compile(r"^[\w.-]{1,64}$")

log = logging.getLogger("bibo.http")


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "bibo_http_requests",
            "HTTP requests by route and status",
            ["route", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "bibo_http_request_seconds", "HTTP request duration", ["route"], registry=r
        )
        self.batches = Counter(
            "bibo_ingest_batches", "Uploaded batches by result", ["result"], registry=r
        )
        self.sightings = Counter(
            "bibo_ingest_sightings",
            "Rows stored from new vehicle batches (sightings and vehicle events)",
            registry=r,
        )
        self.phone_batches = Counter(
            "bibo_phone_batches", "Phone uploads by result", ["result"], registry=r
        )
        self.phone_rows = Counter(
            "bibo_phone_rows",
            "Beacon sightings, region and activity events stored from new phone uploads",
            registry=r,
        )
        self.units = Counter(
            "bibo_reconcile_units", "Reconciliation work units done", ["kind"], registry=r
        )
        self.confidence = Histogram(
            "bibo_trip_confidence",
            "Confidence of reconciled trips",
            buckets=(0.5, 0.8, 0.9, 0.95, 0.99, 0.999, 1.0),
            registry=r,
        )
        self.billing_runs = Counter(
            "bibo_billing_runs", "Billing runs by kind", ["kind"], registry=r
        )
        self.lag = Gauge(
            "bibo_reconciliation_lag_seconds",
            "Age of the oldest upload not yet reconciled (0 when all is done)",
            registry=r,
        )

        # From the database, so every process reports the same figure.
        self.parked = Gauge(
            "bibo_work_units_parked",
            "Reconciliation work units that failed too often and wait for an operator",
            registry=r,
        )
        self.failing = Gauge(
            "bibo_work_units_failing",
            "Reconciliation work units that failed and wait to be retried",
            registry=r,
        )
        self.late = Gauge(
            "bibo_late_data_batches",
            "Uploads with data for service days past retention (kept, not reconciled)",
            registry=r,
        )

    def scrape(self, lag_seconds: float, counts: trips_repo.OperationsCounts) -> bytes:
        self.lag.set(lag_seconds)
        self.parked.set(counts.parked_units)
        self.failing.set(counts.failing_units)
        self.late.set(counts.late_batches)
        return generate_latest(self.registry)


def operations_counts(app: FastAPI) -> trips_repo.OperationsCounts:
    with app.state.sessions() as session:
        return trips_repo.operations_counts(session)


def reconciliation_lag_seconds(app: FastAPI) -> float:
    """Age of the oldest data waiting for a worker (parked units wait for an operator and
    are reported on their own)."""
    with app.state.sessions() as session:
        oldest = trips_repo.oldest_waiting_data(session)
    if oldest is None:
        return 0.0
    if oldest.tzinfo is None:  # SQLite returns naive UTC
        oldest = oldest.replace(tzinfo=dt.UTC)
    now: dt.datetime = app.state.clock()
    lag: float = (now - oldest).total_seconds()
    return max(0.0, lag)


class JsonFormatter(logging.Formatter):
    """One JSON object per line, with the request id of the request being served."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
            "request_id": request_id_var.get(),
        }
        for key in ("method", "path", "status", "duration_ms", "vehicle_id"):
            if hasattr(record, key):
                entry[key] = getattr(record, key)
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(level: str = "info") -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())


class ObserveMiddleware:
    """Request id, access log line and metrics for every HTTP request (plain ASGI: it adds
    no task or stream per request, which Starlette's ``BaseHTTPMiddleware`` would)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = Headers(scope=scope).get("x-request-id", "")
        rid = incoming if _REQUEST_ID.match(incoming) else secrets.token_hex(8)
        token = request_id_var.set(rid)
        start = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableHeaders(scope=message).append("X-Request-ID", rid)
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - start
            # The router leaves the matched route in the scope: label by its template.
            template = getattr(scope.get("route"), "path", "unmatched")
            self.metrics.requests.labels(template, str(status)).inc()
            self.metrics.latency.labels(template).observe(elapsed)
            method = scope["method"]
            log.info(
                "%s %s %d",
                method,
                template,
                status,
                extra={
                    "method": method,
                    "path": template,
                    "status": status,
                    "duration_ms": round(elapsed * 1000, 1),
                },
            )
            request_id_var.reset(token)


def install(app: FastAPI) -> Metrics:
    """Request ids, access logs and metrics for every request; ``GET /metrics``."""
    metrics = Metrics()
    app.state.metrics = metrics

    app.add_middleware(ObserveMiddleware, metrics=metrics)

    @app.get("/metrics", include_in_schema=False)
    def prometheus_metrics() -> Response:
        return Response(
            metrics.scrape(reconciliation_lag_seconds(app), operations_counts(app)),
            media_type=CONTENT_TYPE_LATEST,
        )

    return metrics
