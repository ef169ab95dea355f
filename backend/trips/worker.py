"""``bibo worker``: a reconciliation worker process. Several may run against one PostgreSQL
database; they share the work through leased, ``SKIP LOCKED``-claimed work units.

Each worker (and ``bibo serve`` without workers) also runs the hourly ``maintain``: what is
pending for days about to lose their sightings, retention, PostgreSQL partitions, re-billing
the days that ended and closing the previous month."""

from __future__ import annotations

import datetime as dt
import logging
import signal
import threading
import time
from types import FrameType

from sqlalchemy.orm import Session, sessionmaker

import fare_engine
from backend.billing import service as billing_service
from backend.const import MAINTENANCE_INTERVAL_S, RECONCILE_INTERVAL_S
from backend.db import transaction
from backend.maintenance.service import apply_retention, ensure_partitions, retention_cutoff
from backend.notifications import service as notifications_service
from backend.notifications.push import push_sender
from backend.settings import Settings
from backend.timeutil import service_day_of
from backend.trips import repository as trips_repo
from backend.trips import service as trips_service

log = logging.getLogger(__name__)


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def maintain(sessions: sessionmaker[Session], settings: Settings, now: dt.datetime) -> None:
    """Hourly housekeeping: retention, partitions, billing of ended days and months."""
    today = service_day_of(int(now.timestamp() * 1000))
    cutoff = retention_cutoff(today, settings.sightings_retention_days)
    with sessions() as session:
        pending = sorted({day for day, _ in trips_repo.dirty_units(session) if day < cutoff})
    if pending:
        # Data that arrived for a day about to lose its sightings is reconciled first: once
        # they are gone, the day's trips are final.
        resolvers = trips_service.ResolverCache()
        for day in pending:
            trips_service.work_until_idle(sessions, resolvers, lambda: now, day=day)
    with transaction(sessions) as session:
        result = apply_retention(
            session,
            today,
            settings.sightings_retention_days,
            settings.trips_retention_days,
            now,
        )
        ensure_partitions(session, today)
    with transaction(sessions) as session:
        rebilled = billing_service.rebill_closed_days(session, now)
    # The month before the newest closed day has ended: close it (idempotent, so hourly
    # runs issue invoices once, and again only when a correction changed a bill).
    closed = billing_service.last_closed_day(now)
    previous_month = billing_service.month_of(closed.replace(day=1) - dt.timedelta(days=1))
    with transaction(sessions) as session:
        final = billing_service.month_is_final(session, previous_month)
        invoices = [] if final else billing_service.close_month(session, previous_month, now)
    log.info(
        "billing: %d passengers re-billed, %d invoices for %s",
        sum(r.changed for r in rebilled),
        len(invoices),
        previous_month,
    )
    log.info(
        "retention: %d sightings, %d partitions and %d phone sightings before %s removed",
        result.sightings_deleted,
        result.partitions_dropped,
        result.phone_sightings_deleted,
        result.sightings_before,
    )


def run_worker(
    sessions: sessionmaker[Session],
    settings: Settings,
    poll_s: float | None = None,
    once: bool = False,
    stop: threading.Event | None = None,
) -> int:
    """Work until stopped (SIGTERM/SIGINT finish the current unit first) or, with ``once``,
    until nothing is left. Returns the process exit code."""
    stop = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():

        def _stop(_signum: int, _frame: FrameType | None) -> None:
            stop.set()

        signal.signal(signal.SIGTERM, _stop)
        signal.signal(signal.SIGINT, _stop)
    resolvers = trips_service.ResolverCache()
    stop_names = {s.stop_id: s.name for s in fare_engine.load_tariff().stops()}
    sender = push_sender(settings)
    next_maintenance = 0.0
    while not stop.is_set():
        try:
            if time.monotonic() >= next_maintenance:
                maintain(sessions, settings, _utc_now())
                next_maintenance = time.monotonic() + MAINTENANCE_INTERVAL_S
            while not stop.is_set():
                done = trips_service.work_once(sessions, resolvers, _utc_now)
                if done is None:
                    break
                if done.error is None:
                    log.info("reconciled %s %s", done.unit.service_day, done.unit.vehicle_id)
            notifications_service.drain(sessions, _utc_now(), stop_names, sender)
        except Exception:
            # The database went away (a restart, a failover): wait and try again; the units
            # claimed meanwhile are taken over when their leases run out.
            if once:
                raise
            log.exception("worker round failed; trying again")
        if once:
            break
        stop.wait(RECONCILE_INTERVAL_S if poll_s is None else poll_s)
    return 0
