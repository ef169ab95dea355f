"""The deployment as it runs in production (docs/operations.md, Production-like deployment):
``bibo serve`` and ``bibo worker`` as processes of their own on PostgreSQL, watched through
the Prometheus metrics a scraper reads; and the soak benchmark that drives load through it."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine, select

from backend.models import WorkUnit
from benchmarks.soak import Scraped, deployment_env, scrape, worker_process
from onboard import wire
from onboard.uploader import Uploader, UploadStatus
from simulator.backend_proc import backend_server, bibo, free_port, last_line
from tests.conftest import POSTGRES_ADMIN_URL

ROOT = Path(__file__).resolve().parents[2]
BATCHES_ROUTE = "/v1/vehicles/{vehicle_id}/batches"
RECONCILED_WITHIN_S = 60.0
"""Generous: a worker polls every 5 s; the test waits for the result, it does not time it."""

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


@pytest.fixture
def database_url(postgres_url: str) -> str:
    """PostgreSQL only, the production database; the shared ``engine`` fixture migrates it
    and empties it after the test."""
    return postgres_url


def signed_batch(vehicle_id: str) -> bytes:
    """A bus's upload ten minutes ago: a journey, a call at a stop, three sightings."""
    t0 = int(time.time() * 1000) - 600_000
    batch = wire.Batch.model_validate(
        {
            "version": 1,
            "vehicle_id": vehicle_id,
            "unit_id": "obu-4711-a",
            "boot_id": "deploy-test",
            "seq": 0,
            "sent_at": t0 + 30_000,
            "window_ms": 1000,
            "events": [
                {"t": t0, "type": "journey", "line": "R61", "journey_id": "R61-1", "direction": 0},
                {"t": t0 + 1000, "type": "arrival", "stop_id": "de:05974:1001"},
                {"t": t0 + 20_000, "type": "departure", "stop_id": "de:05974:1001"},
            ],
            "sightings": {
                "t": [t0 + 2000, t0 + 2000, t0 + 3000],
                "token": ["3f1c" + "0" * 28, "9a0b" + "1" * 28, "3f1c" + "0" * 28],
                "rssi": [-61, -83, -59],
                "n": [4, 1, 5],
                "tx": [-8, -12, None],
            },
        }
    )
    return batch.model_dump_json().encode()


def sample(metrics: Scraped, name: str, **labels: str) -> float:
    """The value of the sample ``name`` with ``labels`` (0 when the series has none yet)."""
    return sum(v for have, v in metrics.get(name, []) if labels.items() <= have.items())


async def upload_twice(url: str, vehicle_id: str, secret: bytes) -> list[wire.BatchAccepted]:
    """The same batch twice, as a bus resends one whose answer it missed."""
    body = signed_batch(vehicle_id)
    async with httpx.AsyncClient(timeout=30) as client:
        uploader = Uploader(client, url, vehicle_id, secret, lambda: int(time.time() * 1000))
        outcomes = [await uploader.send(body) for _ in range(2)]
    assert [o.status for o in outcomes] == [UploadStatus.DELIVERED] * 2, outcomes
    return [o.accepted for o in outcomes if o.accepted is not None]


def test_serve_and_worker_processes_report_through_prometheus(
    engine: Engine, database_url: str, tmp_path: Path
):
    env = deployment_env(database_url)
    vehicle_id = "RLG-4711"
    secret = bytes.fromhex(last_line(bibo(["vehicles", "add", vehicle_id], env)))
    with (
        backend_server(env, free_port(), tmp_path / "serve.log") as url,
        worker_process(env, tmp_path / "worker.log") as worker,
        httpx.Client(timeout=30) as client,
    ):
        before = scrape(client, url)

        accepted = asyncio.run(upload_twice(url, vehicle_id, secret))

        assert [a.duplicate for a in accepted] == [False, True]
        after = scrape(client, url)
        moved = [
            sample(after, name, **labels) - sample(before, name, **labels)
            for name, labels in [
                ("bibo_http_requests_total", {"route": BATCHES_ROUTE, "status": "200"}),
                ("bibo_http_request_seconds_count", {"route": BATCHES_ROUTE}),
                ("bibo_ingest_batches_total", {"result": "new"}),
                ("bibo_ingest_batches_total", {"result": "duplicate"}),
                ("bibo_ingest_sightings_total", {}),
            ]
        ]
        assert moved == [2, 2, 1, 1, accepted[0].inserted]  # the rows the answer counted
        # The server leaves reconciliation to the worker process: it reconciles the upload,
        # and the lag the server reports from the database goes back to 0.
        deadline = time.monotonic() + RECONCILED_WITHIN_S
        while True:
            with engine.connect() as conn:
                reconciled = conn.execute(
                    select(WorkUnit.reconciled_at).where(WorkUnit.vehicle_id == vehicle_id)
                ).scalar_one_or_none()
            lag = sample(scrape(client, url), "bibo_reconciliation_lag_seconds")
            if (reconciled is not None and lag == 0) or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert reconciled is not None, (tmp_path / "worker.log").read_text()
        assert lag == 0
        final = scrape(client, url)
        assert sample(final, "bibo_work_units_failing") == 0
        assert sample(final, "bibo_work_units_parked") == 0
        assert worker.poll() is None, (tmp_path / "worker.log").read_text()


@pytest.mark.usefixtures("postgres_url")  # skips (or fails in CI) without PostgreSQL
def test_soak_benchmark_runs_and_prints_every_figure():
    """Three buses for 15 s: the machinery, not the figures (those depend on the machine)."""
    done = subprocess.run(
        [sys.executable, "benchmarks/soak.py", "--buses", "3", "--minutes", "0.25"],
        cwd=ROOT,
        env={**os.environ, "BIBO_BENCH_POSTGRES_URL": POSTGRES_ADMIN_URL},
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )

    out = done.stdout
    assert done.returncode in (0, 1), out + done.stderr  # 1: a goal was missed
    for needle in (
        "soak: 3 buses uploading every 10 s",
        "setup ",
        "uploads/s        offered",
        "ingest backlog",
        "upload timing    sent after due p50 ",
        "answered after sent p50 ",
        "first/last quarter:",
        "be-out latency",
        "database growth",
        "a bus stores a minute",
        "CPU (cores)",
        "errors = 0: met",
        "be-out p99 <= 120 s:",
        "no backlog growth",
    ):
        assert needle in out, out
