"""Soak: the region's live load through a production-like deployment, for minutes on end.

    .venv/bin/python benchmarks/soak.py [--buses 660] [--minutes 10] [--speedup 2]

The deployment is the one docs/operations.md describes (Production-like deployment): two
``bibo serve`` processes on two loopback ports, two ``bibo worker`` processes, a fresh
PostgreSQL database (``BIBO_BENCH_POSTGRES_URL``'s server; dropped at the end), vehicles and
devices registered with the ``bibo`` command line. The load is the ``region-day`` scenario
(fleet and people scaled so that ``--buses`` buses are on the road through the whole
window), recorded with the fast recorder into a temporary directory. From 07:30 local time,
the morning peak, each bus's uploads go out when the bus seals them (every 10 s of
simulated time) at ``--speedup`` times real time, alternately to the two servers, gzip and
signed by the onboard agent's own uploader over a connection of the bus's own (the agent's
HTTP client: a bus keeps its connection between uploads, and no bus waits for another's
turn); a bus sends a failed upload again after the agent's back-off before its next one, as
the agent does. The buses' data before 07:30 is not sent: the backend meets them under way.

A progress line comes every 30 s; at the end the run drains the workers' backlog and prints:

- **uploads/s** offered (due by the buses' clocks) and held (stored by the backend);
- **upload timing**: how late each upload was sent after it was due (the load generator's
  own lateness) and how long the servers took to answer each send, p50/p95/p99;
- **ingest backlog**: uploads due but not stored yet, work units waiting for a worker and
  ``bibo_reconciliation_lag_seconds`` scraped from ``/metrics``, per minute and as means
  over the first and the last quarter of the run;
- **be-out latency** p50/p95/p99 over the true rides that alighted in the window (boarded
  in it, phone heard at the alighting, at least ``LATENCY_HORIZON_S`` of data played after
  the bus left the stop): from the bus leaving the true alighting stop to the seal of the
  first upload whose data closes the trip, in simulated time (the bus's clock, the same in
  production), plus from when that upload was due to when the backend first stored the
  trip closed at that stop, in wall time (``trips.created_at`` of the first closed version,
  found by polling the trips table every ``TRIPS_POLL_S``). The backend's part is taken
  as measured, not scaled: in production it would carry ``1/speedup`` of this load. The
  reading that scales it by the speed-up too is printed beside. Rides never shown closed
  at the true stop are missed detections, counted apart;
- **database growth** per bus-hour of simulated service (``pg_database_size``), and the
  sightings a bus stores a minute;
- **errors**: uploads answered other than 2xx or not at all, work units that failed,
  processes that exited;
- the CPU each part used, and whether each goal of issue 13 is met: 0 errors, be-out p99
  at most 120 s, no backlog growth. Exit code 0 when all are met, 1 otherwise.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, this folder is first on sys.path, and benchmarks/onboard.py would shadow
# the onboard package.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).parent]

import argparse  # noqa: E402
import asyncio  # noqa: E402
import bisect  # noqa: E402
import contextlib  # noqa: E402
import dataclasses  # noqa: E402
import datetime as dt  # noqa: E402
import gzip  # noqa: E402
import itertools  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import os  # noqa: E402
import random  # noqa: E402
import re  # noqa: E402
import secrets  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections import Counter  # noqa: E402
from collections.abc import Iterator, Mapping, Sequence  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402

import httpx  # noqa: E402
import numpy as np  # noqa: E402
import uvloop  # noqa: E402
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402
from sqlalchemy import Engine, create_engine, func, select, text  # noqa: E402

from backend.db import make_engine  # noqa: E402
from backend.models import Trip, WorkUnit  # noqa: E402
from backend.timeutil import service_day_of  # noqa: E402
from onboard.const import GZIP_LEVEL, UPLOAD_INTERVAL_MS  # noqa: E402
from onboard.timing import backoff_ms  # noqa: E402
from onboard.uploader import Uploader, UploadStatus, make_client  # noqa: E402
from simulator.backend_proc import (  # noqa: E402
    add_vehicles,
    backend_server,
    bibo,
    free_port,
)
from simulator.const import LATENCY_HORIZON_S, LOCAL_TZ  # noqa: E402
from simulator.day import DayPlan, plan_day  # noqa: E402
from simulator.network import load_network  # noqa: E402
from simulator.recording import Recording, write_recording  # noqa: E402
from simulator.scenarios import scenario  # noqa: E402
from simulator.scoring import alight_observable, detectable  # noqa: E402
from simulator.timetable import local_to_epoch_ms  # noqa: E402
from simulator.truth import GroundTruth, TruthTrip  # noqa: E402

ADMIN_URL = os.environ.get(
    "BIBO_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
REGION_BUSES = 660
"""The region's fleet (issue 13): 660 buses, an upload each every 10 s."""
DEFAULT_SPEEDUP = 2.0
"""Simulated seconds per wall second: 10 minutes play 20 minutes of the morning peak, at
twice the region's upload rate (132 uploads/s instead of 66), a margin over the live load.
``--speedup 1`` is the region's own rate."""
PLAY_FROM = dt.time(7, 30)
"""The morning peak; every regular bus of the region day has left the depot by then (the
region day's latest first departure is about 07:30)."""
SERVICE_AFTER = dt.timedelta(minutes=30)
"""Departures planned past the window, so that buses are on the road through all of it."""
ON_THE_ROAD_SHARE = 0.75
"""First guess at the share of a planned fleet on the road through the window (the region
day has 511 of 660 buses out from 07:30 for 20 minutes); the fleet is scaled up until
enough are."""
DEVICES_PER_IMPORT = 5_000
"""Devices per ``bibo devices import``: the region's 75,000 devices in files of this size
keep each import's transaction short."""
SERVERS = 2
WORKERS = 2
TRIPS_POLL_S = 2.0
"""How often the trips table is read for newly closed trips: the error of a be-out's
first-closed time when a worker rewrites the trip again within this."""
SAMPLE_S = 10.0
PROGRESS_S = 30.0
DRAIN_TIMEOUT_S = 300.0
"""How long the workers get after the run to finish what is waiting."""
GOAL_ERRORS = 0
GOAL_BEOUT_P99_S = 120.0
UPLOAD_BACKLOG_GROWTH = 0.05
"""No ingest backlog growth: the uploads waiting grow by at most this share of the buses
from the first to the last quarter of the run."""
LAG_GROWTH_S = 15.0
"""No reconciliation backlog growth: the reconciliation lag grows by at most this (three
worker polls) from the first to the last quarter of the run."""
_SENT_AT = re.compile(rb'"sent_at":(\d+)')
_WINDOW_MS = re.compile(rb'"window_ms":(\d+)')


# --- the load ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Region:
    """The recorded window: its buses and where their data is."""

    recording: Recording
    plan: DayPlan
    vehicle_ids: list[str]
    start_ms: int
    end_ms: int

    @property
    def bus_hours(self) -> float:
        return len(self.vehicle_ids) * (self.end_ms - self.start_ms) / 3_600_000


def plan_region(day: dt.date, buses: int, start_ms: int, end_ms: int) -> tuple[DayPlan, list[str]]:
    """The region day on ``day`` with its fleet and people scaled so that at least ``buses``
    buses run from before ``start_ms`` to after ``end_ms``; ``buses`` of those, drawn with
    the scenario's seed."""
    s = scenario("region-day")
    base = s.config
    local_end = dt.datetime.fromtimestamp(end_ms / 1000, LOCAL_TZ) + SERVICE_AFTER
    network = load_network()
    scale = buses / (ON_THE_ROAD_SHARE * (base.buses + base.convoys))
    while True:
        config = dataclasses.replace(
            base,
            service_day=day,
            service_end=local_end.time().replace(second=0, microsecond=0),
            buses=max(1, round(base.buses * scale)),
            convoys=round(base.convoys * scale),
            passengers=round(base.passengers * scale),
            bystanders=round(base.bystanders * scale),
        )
        plan = plan_day(network, config, s.seed)
        out = sorted(
            v.vehicle_id
            for v in plan.vehicles
            if v.journeys[0].start_ms <= start_ms and v.journeys[-1].end_ms >= end_ms
        )
        if len(out) >= buses:
            return plan, random.Random(s.seed).sample(out, buses)
        scale *= 1.1 * buses / max(1, len(out))


@dataclass
class Bus:
    """One bus's uploads in the window: (sent_at, window_ms, gzip body) in upload order."""

    vehicle_id: str
    secret: bytes
    batches: list[tuple[int, int, bytes]]


def window_batches(region: Region, secrets_by_id: Mapping[str, bytes]) -> list[Bus]:
    """Each bus's batches sealed in the window, gzip-compressed as the agent's outbox stores
    them (so compressing costs the load generator nothing during the run)."""
    buses = []
    for vid in region.vehicle_ids:
        batches = []
        for body in region.recording.batches(vid):
            sent_at = int(_match(_SENT_AT, body))
            if sent_at > region.end_ms:
                break
            if sent_at >= region.start_ms:
                window_ms = int(_match(_WINDOW_MS, body))
                batches.append((sent_at, window_ms, gzip.compress(body, GZIP_LEVEL, mtime=0)))
        buses.append(Bus(vid, secrets_by_id[vid], batches))
    return buses


def _match(pattern: re.Pattern[bytes], body: bytes) -> bytes:
    found = pattern.search(body)
    if found is None:
        raise ValueError(f"a recorded batch without {pattern.pattern!r}")
    return found.group(1)


# --- the deployment ------------------------------------------------------------------------


@contextlib.contextmanager
def fresh_database() -> Iterator[str]:
    """A PostgreSQL database of its own, dropped (connections and all) on exit."""
    admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"bibo_soak_{secrets.token_hex(4)}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def deployment_env(database_url: str) -> dict[str, str]:
    """What every backend process of the deployment gets: one database, one secret key,
    production mode, reconciliation left to the workers; the rate limits stay the defaults."""
    return {
        **os.environ,
        "BIBO_DATABASE_URL": database_url,
        "BIBO_ENVIRONMENT": "production",
        "BIBO_SECRET_KEY": secrets.token_urlsafe(32),
        "BIBO_RECONCILE_IN_BACKGROUND": "false",
    }


def import_devices(devices_file: Path, env: Mapping[str, str], workdir: Path) -> int:
    """``bibo devices import`` in files of ``DEVICES_PER_IMPORT`` devices; returns how many."""
    doc = json.loads(devices_file.read_text("utf-8"))
    devices = doc["devices"]
    for k in range(0, len(devices), DEVICES_PER_IMPORT):
        part = workdir / f"devices-{k}.json"
        part.write_text(json.dumps({**doc, "devices": devices[k : k + DEVICES_PER_IMPORT]}))
        bibo(["devices", "import", str(part)], env)
        part.unlink()
    return len(devices)


@contextlib.contextmanager
def worker_process(env: Mapping[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """``bibo worker``; stopped with SIGTERM on exit (it finishes the unit in hand)."""
    with log.open("wb") as log_file:
        proc = subprocess.Popen(
            [sys.executable, "-m", "backend.cli", "worker"],
            env=dict(env),
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
        try:
            yield proc
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def cpu_seconds() -> dict[str, float]:
    """CPU seconds used so far by role: this process (the load), its ``bibo serve`` and
    ``bibo worker`` children, and every PostgreSQL process of the machine (Linux /proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    used = {"load generator": time.process_time()}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            raw = stat.read_text()
            comm = raw[raw.index("(") + 1 : raw.rindex(")")]
            fields = raw[raw.rindex(")") + 2 :].split()
            cpu = (int(fields[11]) + int(fields[12])) / tick
            role = ""
            if comm.startswith("postgres"):
                role = "PostgreSQL (whole server)"
            elif int(fields[1]) == os.getpid():
                argv = (stat.parent / "cmdline").read_bytes().split(b"\0")
                if b"serve" in argv:
                    role = f"bibo serve x{SERVERS}"
                elif b"worker" in argv:
                    role = f"bibo worker x{WORKERS}"
            if role:
                used[role] = used.get(role, 0.0) + cpu
    return used


# --- the run -------------------------------------------------------------------------------


@dataclass
class Sample:
    """One look at the backlogs."""

    at_s: float
    """Seconds since the play began."""
    due: int
    stored: int
    upload_backlog: int
    units_waiting: int
    lag_s: float


@dataclass
class FirstClosed:
    """A trip as first seen closed at a stop."""

    device_id: str
    vehicle_id: str
    board_time: int
    alight_time: int
    known_at: int
    created_at: float


@dataclass
class Run:
    """What the load generator and the observers counted."""

    wall0: float
    speedup: float
    start_ms: int
    end_ms: int
    due_at: list[float]
    """Every upload's due wall time, sorted."""
    stored: int = 0
    refused: int = 0
    stored_late: int = 0
    """Stored after the play's end (a bus was behind)."""
    errors: Counter[str] = field(default_factory=Counter)
    first_error: dict[str, str] = field(default_factory=dict)
    """Each kind of error's first detail (the server's ``detail`` or the network error)."""
    samples: list[Sample] = field(default_factory=list)
    sent_late_s: list[float] = field(default_factory=list)
    """Per upload: from when it was due to when its first send began (the load's lateness:
    an event loop busy elsewhere)."""
    answered_s: list[float] = field(default_factory=list)
    """Per send: from its start to the servers' answer (or to giving up on one)."""
    closed: dict[tuple[str, str], FirstClosed] = field(default_factory=dict)
    failed_units: set[tuple[dt.date, str]] = field(default_factory=set)

    def wall_of(self, t_ms: int) -> float:
        """When simulated time ``t_ms`` is due on the wall clock."""
        return self.wall0 + (t_ms - self.start_ms) / 1000 / self.speedup

    @property
    def play_s(self) -> float:
        """Wall seconds from the first upload due to the last."""
        return self.wall_of(self.end_ms) - self.wall0

    def sim_of(self, wall: float) -> int:
        return self.start_ms + round((wall - self.wall0) * self.speedup * 1000)

    def due(self, now: float) -> int:
        return bisect.bisect_right(self.due_at, now)


async def play_bus(
    bus: Bus,
    run: Run,
    urls: Sequence[str],
    turn: Iterator[int],
) -> None:
    """Upload the bus's batches when they are due, each until stored or refused, with the
    bus's own HTTP client; a failed upload is sent again after the agent's back-off."""
    async with make_client() as client:
        uploaders = [
            Uploader(client, url, bus.vehicle_id, bus.secret, lambda: int(time.time() * 1000))
            for url in urls
        ]
        rng = random.Random(bus.vehicle_id)
        for sent_at, _, body in bus.batches:
            await asyncio.sleep(max(0.0, run.wall_of(sent_at) - time.time()))
            for attempt in itertools.count(1):
                began = time.time()
                if attempt == 1:
                    run.sent_late_s.append(began - run.wall_of(sent_at))
                outcome = await uploaders[next(turn) % len(uploaders)].send_stored(body, "gzip")
                run.answered_s.append(time.time() - began)
                if outcome.status is UploadStatus.DELIVERED:
                    run.stored += 1
                    if time.time() > run.wall0 + run.play_s:
                        run.stored_late += 1
                    break
                kind = f"HTTP {outcome.http_status}" if outcome.http_status else "no answer"
                run.errors[kind] += 1
                run.first_error.setdefault(kind, outcome.detail)
                if outcome.status is UploadStatus.QUARANTINE:
                    run.refused += 1
                    break
                await asyncio.sleep(backoff_ms(attempt, rng.random()) / 1000)


def poll_closed(engine: Engine, run: Run, since: float) -> None:
    """Note every trip written closed since ``since`` (wall s) not seen closed at its
    alighting stop before, with the time the backend stored it."""
    t = Trip
    query = select(
        t.trip_id,
        t.device_id,
        t.vehicle_id,
        t.board_time,
        t.alight_time,
        t.alight_stop_id,
        t.alight_known_at,
        t.created_at,
    ).where(t.status == "closed", t.created_at >= dt.datetime.fromtimestamp(since, dt.UTC))
    with engine.connect() as conn:
        for r in conn.execute(query):
            key = (r.trip_id, r.alight_stop_id)
            created = r.created_at.timestamp()
            seen = run.closed.get(key)
            if seen is None or created < seen.created_at:
                run.closed[key] = FirstClosed(
                    r.device_id,
                    r.vehicle_id,
                    r.board_time,
                    r.alight_time,
                    r.alight_known_at,
                    created,
                )


def units_waiting(engine: Engine, run: Run) -> int:
    """Work units waiting for a worker; remembers every unit seen failing."""
    w = WorkUnit
    with engine.connect() as conn:
        waiting = conn.execute(select(func.count()).select_from(w).where(w.dirty)).scalar_one()
        failing = conn.execute(select(w.service_day, w.vehicle_id).where(w.attempts > 0))
        run.failed_units.update((r.service_day, r.vehicle_id) for r in failing)
    return int(waiting)


Scraped = dict[str, list[tuple[dict[str, str], float]]]
"""Prometheus samples by name: (labels, value) of each series."""


def scrape(client: httpx.Client, url: str) -> Scraped:
    """``GET /metrics``, parsed with prometheus_client's text parser."""
    response = client.get(f"{url}/metrics")
    response.raise_for_status()
    out: Scraped = {}
    for family in text_string_to_metric_families(response.text):
        for s in family.samples:
            out.setdefault(s.name, []).append((s.labels, s.value))
    return out


def database_bytes(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT pg_database_size(current_database())")).scalar_one())


def stored_sightings(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM sightings")).scalar_one())


async def observe(
    engine: Engine, run: Run, metrics: httpx.Client, url: str, until: asyncio.Event
) -> None:
    """Every ``TRIPS_POLL_S`` the newly closed trips, every ``SAMPLE_S`` a sample of the
    backlogs, every ``PROGRESS_S`` a progress line; until ``until`` is set."""
    last_poll = run.wall0
    last_sample = last_progress = time.time()
    while not until.is_set():
        now = time.time()
        # Trips are written with the worker's clock before its transaction commits: look a
        # little further back than the last poll.
        await asyncio.to_thread(poll_closed, engine, run, last_poll - 30)
        last_poll = now
        if now - last_sample >= SAMPLE_S:
            last_sample = now
            await asyncio.to_thread(take_sample, engine, run, metrics, url, now)
        if now - last_progress >= PROGRESS_S:
            last_progress = now
            print(progress(run, now), flush=True)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(until.wait(), TRIPS_POLL_S)


def take_sample(engine: Engine, run: Run, metrics: httpx.Client, url: str, now: float) -> None:
    """Note the backlogs at ``now``; the lag as the server reports it on ``/metrics``."""
    lag = scrape(metrics, url)["bibo_reconciliation_lag_seconds"][0][1]
    waiting = units_waiting(engine, run)
    # Due and stored counted at one moment (after the scrapes, which take a while): counted
    # apart, uploads stored meanwhile showed as a negative backlog.
    due, stored = run.due(time.time()), run.stored
    run.samples.append(
        Sample(now - run.wall0, due, stored, due - stored - run.refused, waiting, lag)
    )


def progress(run: Run, now: float) -> str:
    """The progress line: where the run is and its newest sample."""
    elapsed = now - run.wall0
    sim = dt.datetime.fromtimestamp(run.sim_of(now) / 1000, LOCAL_TZ)
    last = run.samples[-1] if run.samples else None
    waiting = f"{last.upload_backlog} uploads, {last.units_waiting} units" if last else "-"
    lag = f"{last.lag_s:.0f} s" if last else "-"
    return (
        f"[{int(elapsed) // 60:3d}:{int(elapsed) % 60:02d}] sim {sim:%H:%M:%S}  "
        f"stored {run.stored:,} ({run.stored / max(elapsed, 1e-9):.1f}/s)  "
        f"waiting {waiting}  lag {lag}  trips closed {len(run.closed):,}  "
        f"errors {_kinds(run.errors)}"
    )


def _kinds(errors: Counter[str]) -> str:
    """``0``, or the count and each kind's: ``5 (HTTP 503: 4, no answer: 1)``."""
    if not errors:
        return "0"
    kinds = ", ".join(f"{k}: {v}" for k, v in sorted(errors.items()))
    return f"{sum(errors.values())} ({kinds})"


async def soak(
    buses: list[Bus],
    urls: Sequence[str],
    engine: Engine,
    start_ms: int,
    end_ms: int,
    speedup: float,
) -> Run:
    """Play the buses' uploads from ``start_ms`` to ``end_ms``, then let the workers drain."""
    wall0 = time.time() + 1.0
    due_at = sorted(
        wall0 + (sent_at - start_ms) / 1000 / speedup for b in buses for sent_at, _, _ in b.batches
    )
    run = Run(wall0, speedup, start_ms, end_ms, due_at)
    done = asyncio.Event()
    with httpx.Client(timeout=30) as metrics:
        observer = asyncio.create_task(observe(engine, run, metrics, urls[0], done))
        turn = itertools.count()
        await asyncio.gather(*(play_bus(b, run, urls, turn) for b in buses))
        print(f"played; draining the workers' backlog (at most {DRAIN_TIMEOUT_S:.0f} s)")
        deadline = time.time() + DRAIN_TIMEOUT_S
        while time.time() < deadline:
            if await asyncio.to_thread(units_waiting, engine, run) == 0:
                break
            await asyncio.sleep(SAMPLE_S / 2)
        await asyncio.sleep(TRIPS_POLL_S)
        done.set()
        await observer
        await asyncio.to_thread(poll_closed, engine, run, run.wall0)
    return run


# --- the report ----------------------------------------------------------------------------


@dataclass(frozen=True)
class BeOut:
    """Be-out latencies (s) of the rides shown closed at the true stop, and the others."""

    latency: list[float]
    scaled: list[float]
    missed: int


def beout(region: Region, run: Run, buses: Sequence[Bus]) -> BeOut:
    """See the module docstring."""
    horizon = int(LATENCY_HORIZON_S * 1000)
    chosen = set(region.vehicle_ids)
    departures = {
        (v.vehicle_id, j.journey_id, c.stop_id): c.departure_ms
        for v in region.plan.vehicles
        if v.vehicle_id in chosen
        for j in v.journeys
        for c in j.calls
    }
    seals = {b.vehicle_id: [(s - w, s) for s, w, _ in b.batches] for b in buses}
    shown: dict[tuple[str, str, str], list[FirstClosed]] = {}
    for (_, stop), first in run.closed.items():
        shown.setdefault((first.device_id, first.vehicle_id, stop), []).append(first)
    truth = GroundTruth.load(region.recording.path / "truth.json")
    latency, scaled, missed = [], [], 0
    for ride in truth.trips:
        left = departures.get((ride.vehicle_id, ride.journey_id, ride.alight_stop_id))
        if left is None or ride.device_id is None or not _measured(ride, left, region, horizon):
            continue
        firsts = [
            f
            for f in shown.get((ride.device_id, ride.vehicle_id, ride.alight_stop_id), [])
            if f.alight_time >= ride.board_time and f.board_time <= ride.alight_time
        ]
        if not firsts:
            missed += 1
            continue
        first = min(firsts, key=lambda f: f.created_at)
        bus_seals = seals[ride.vehicle_id]
        # The first upload whose data reaches the moment the be-out was decided on.
        k = bisect.bisect_left(bus_seals, (first.known_at, 0))
        seal = bus_seals[min(k, len(bus_seals) - 1)][1]
        latency.append((seal - left) / 1000 + first.created_at - run.wall_of(seal))
        scaled.append((run.sim_of(first.created_at) - left) / 1000)
    return BeOut(latency, scaled, missed)


def _measured(ride: TruthTrip, left: int, region: Region, horizon: int) -> bool:
    """Whether the be-out of a ride on a bus of the region is measured (see the module
    docstring)."""
    return (
        ride.board_time >= region.start_ms
        and left + horizon <= region.end_ms
        and detectable(ride)
        and alight_observable(ride)
    )


def _pct(values: Sequence[float], decimals: int = 0) -> str:
    if not values:
        return "none"
    a = np.array(values)
    return "  ".join(
        f"p{q} {np.percentile(a, q, method='higher'):.{decimals}f} s" for q in (50, 95, 99)
    )


def _quarters(samples: Sequence[Sample], attr: str) -> tuple[float, float]:
    """Mean of a sampled figure over the first and the last quarter of the samples."""
    values = [float(getattr(s, attr)) for s in samples]
    n = max(1, len(values) // 4)
    return float(np.mean(values[:n])), float(np.mean(values[-n:]))


def report(
    region: Region,
    run: Run,
    buses: Sequence[Bus],
    grew_bytes: int,
    sightings: int,
    cpu: Mapping[str, float],
    cpu_s: float,
    load: tuple[float, float],
    exited: Sequence[str],
    server_errors: int,
) -> bool:
    """Print the figures and the goals; True when every goal is met."""
    play_s = run.play_s
    scheduled = len(run.due_at)
    in_play = run.stored - run.stored_late
    print("\nresults")
    print(
        f"  uploads/s        offered {scheduled / play_s:.1f}, held {in_play / play_s:.1f} "
        f"({in_play:,} of {scheduled:,} stored in time, {run.stored_late:,} after the run, "
        f"{run.refused} refused)"
    )
    play = [s for s in run.samples if s.at_s <= play_s]
    print("  ingest backlog   minute  uploads due  stored  waiting uploads  units  lag (s)")
    for minute, group in itertools.groupby(play, key=lambda s: int(s.at_s // 60)):
        g = list(group)
        print(
            f"                   {minute + 1:5d}  {g[-1].due:11,}  {g[-1].stored:6,}  "
            f"{np.mean([s.upload_backlog for s in g]):15.1f}  "
            f"{np.mean([s.units_waiting for s in g]):5.0f}  {np.mean([s.lag_s for s in g]):7.1f}"
        )
    print(
        f"  upload timing    sent after due {_pct(run.sent_late_s, 2)}; "
        f"answered after sent {_pct(run.answered_s, 2)}"
    )
    up0, up1 = _quarters(play, "upload_backlog")
    un0, un1 = _quarters(play, "units_waiting")
    lag0, lag1 = _quarters(play, "lag_s")
    print(
        f"  first/last quarter: waiting uploads {up0:.1f} -> {up1:.1f}, "
        f"waiting units {un0:.0f} -> {un1:.0f}, reconciliation lag {lag0:.1f} -> {lag1:.1f} s"
    )
    b = beout(region, run, buses)
    print(f"  be-out latency   {_pct(b.latency)}  ({len(b.latency):,} rides)")
    print(f"    backend's part scaled by {run.speedup:g} too: {_pct(b.scaled)}")
    print(f"    rides never shown closed at the true stop (missed detections): {b.missed:,}")
    print(
        f"  database growth  {grew_bytes / 1e6:,.1f} MB over {region.bus_hours:,.1f} bus-hours "
        f"= {grew_bytes / 1e6 / region.bus_hours:.2f} MB per bus-hour; "
        f"{sightings:,} sightings = {sightings / region.bus_hours / 60:,.0f} a bus stores a minute"
    )
    errors = sum(run.errors.values()) + len(run.failed_units) + len(exited)
    print(
        f"  errors           {errors} (uploads not stored at first: {_kinds(run.errors)}; "
        f"server-side "
        f"non-2xx in /metrics: {server_errors}; work units failed: {len(run.failed_units)}; "
        f"processes exited: {', '.join(exited) or 'none'})"
    )
    for kind, detail in sorted(run.first_error.items()):
        print(f"    first {kind}: {detail}")
    shares = ", ".join(f"{k} {v / cpu_s:.2f}" for k, v in sorted(cpu.items()))
    print(
        f"  CPU (cores)      {shares}; {sum(cpu.values()) / cpu_s:.2f} of {os.cpu_count()} "
        f"(play and drain); machine load average {load[0]:.1f} before, {load[1]:.1f} after"
    )
    p99 = float(np.percentile(b.latency, 99, method="higher")) if b.latency else float("inf")
    held = up1 - up0 <= UPLOAD_BACKLOG_GROWTH * len(buses) and lag1 - lag0 <= LAG_GROWTH_S
    goals = [
        (f"errors = {GOAL_ERRORS}", errors == GOAL_ERRORS),
        (f"be-out p99 <= {GOAL_BEOUT_P99_S:.0f} s", p99 <= GOAL_BEOUT_P99_S),
        (
            f"no backlog growth (waiting uploads +{UPLOAD_BACKLOG_GROWTH:.0%} of the buses, "
            f"lag +{LAG_GROWTH_S:.0f} s at most)",
            held,
        ),
    ]
    print("goals")
    for name, met in goals:
        print(f"  {name}: {'met' if met else 'NOT met'}")
    return all(met for _, met in goals)


def server_errors(urls: Sequence[str]) -> int:
    """Requests the servers answered other than 2xx, by their own metrics."""
    with httpx.Client(timeout=30) as client:
        return sum(
            int(value)
            for url in urls
            for labels, value in scrape(client, url)["bibo_http_requests_total"]
            if not labels["status"].startswith("2")
        )


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--buses", type=int, default=REGION_BUSES)
    parser.add_argument("--minutes", type=float, default=10.0, help="wall time of the load")
    parser.add_argument(
        "--speedup",
        type=float,
        default=DEFAULT_SPEEDUP,
        help="simulated seconds per wall second",
    )
    args = parser.parse_args(argv)
    # The agent's uploader warns of every refusal and clock offset; here they are counted
    # and reported at the end (a loaded load generator makes the offset look large).
    logging.getLogger("onboard.uploader").setLevel(logging.ERROR)
    now_ms = int(time.time() * 1000)
    # Today's service day: its sightings partition exists and retention keeps it open.
    day = service_day_of(now_ms)
    start_ms = local_to_epoch_ms(day, PLAY_FROM)
    end_ms = start_ms + round(args.minutes * 60_000 * args.speedup)
    print(
        f"soak: {args.buses} buses uploading every {UPLOAD_INTERVAL_MS // 1000} s, "
        f"{args.minutes:g} min of wall time at {args.speedup:g}x = "
        f"{args.buses * args.speedup * 1000 / UPLOAD_INTERVAL_MS:.0f} uploads/s, "
        f"simulated {day} {PLAY_FROM:%H:%M}-"
        f"{dt.datetime.fromtimestamp(end_ms / 1000, LOCAL_TZ):%H:%M:%S}; "
        f"{SERVERS} bibo serve + {WORKERS} bibo worker processes, PostgreSQL",
        flush=True,
    )
    setup: dict[str, float] = {}
    clock = time.monotonic()

    def step(name: str) -> None:
        nonlocal clock
        setup[name] = time.monotonic() - clock
        clock = time.monotonic()

    shm = Path("/dev/shm")
    with (
        tempfile.TemporaryDirectory(prefix="bibo-soak-", dir=shm if shm.is_dir() else None) as tmp,
        fresh_database() as database_url,
        contextlib.ExitStack() as stack,
    ):
        workdir = Path(tmp)
        plan, vehicle_ids = plan_region(day, args.buses, start_ms, end_ms)
        step("plan")
        s = scenario("region-day")
        write_recording(
            plan,
            workdir / "recording",
            name=s.name,
            description=s.description,
            radio_seed=s.radio_seed,
            recorder="fast",
            upload_interval_ms=UPLOAD_INTERVAL_MS,
            compress=True,
            vehicle_ids=vehicle_ids,
            jobs=os.cpu_count() or 1,
        )
        region = Region(Recording.open(workdir / "recording"), plan, vehicle_ids, start_ms, end_ms)
        step("record")
        env = deployment_env(database_url)
        secrets_by_id = add_vehicles(vehicle_ids, env)
        step(f"register {len(vehicle_ids)} vehicles")
        devices = import_devices(workdir / "recording" / "devices.json", env, workdir)
        step(f"import {devices:,} devices")
        buses = window_batches(region, secrets_by_id)
        step("read the window's uploads")
        urls = [
            stack.enter_context(backend_server(env, free_port(), workdir / f"serve-{k}.log"))
            for k in range(SERVERS)
        ]
        workers = [
            stack.enter_context(worker_process(env, workdir / f"worker-{k}.log"))
            for k in range(WORKERS)
        ]
        step("start the processes")
        print(
            "setup "
            + ", ".join(f"{name} {seconds:.0f} s" for name, seconds in setup.items())
            + f"; {sum(setup.values()) / 60:.1f} min in all",
            flush=True,
        )
        engine = make_engine(database_url)
        stack.callback(engine.dispose)
        size0 = database_bytes(engine)
        cpu0, cpu_wall, load0 = cpu_seconds(), time.time(), os.getloadavg()[0]
        run = uvloop.run(soak(buses, urls, engine, start_ms, end_ms, args.speedup))
        cpu1, cpu_s, load1 = cpu_seconds(), time.time() - cpu_wall, os.getloadavg()[0]
        grew = database_bytes(engine) - size0
        exited = [f"worker {k}" for k, w in enumerate(workers) if w.poll() is not None]
        met = report(
            region,
            run,
            buses,
            grew,
            stored_sightings(engine),
            {k: v - cpu0.get(k, 0.0) for k, v in cpu1.items()},
            cpu_s,
            (load0, load1),
            exited,
            server_errors(urls),
        )
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
