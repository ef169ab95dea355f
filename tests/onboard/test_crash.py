"""SIGKILL the agent at random moments 200 times against the real backend: every sighting
the outbox had committed arrives exactly once.

The backend runs as its own process (``bibo serve`` on loopback, SQLite in tmp_path, its
real per-vehicle upload limit included); the agent processes are forked by
``crash_harness`` and killed mid-flight, taking turns among four buses; an SQLite trigger
in each outbox records every committed sighting row. At the end the backend's
``sightings`` table must hold exactly that multiset, bus by bus.
"""

from __future__ import annotations

import collections
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.onboard.conftest import NEEDS_SERVER

pytest.importorskip("fastapi", reason=NEEDS_SERVER)
pytest.importorskip("sqlalchemy", reason=NEEDS_SERVER)

from backend.db import make_engine, make_sessionmaker, transaction, upgrade
from backend.ingest import service as ingest_service
from simulator.backend_proc import backend_server, free_port

ROOT = Path(__file__).resolve().parents[2]
KILLS = 200
VEHICLES = [f"RLG-47{n}" for n in range(11, 15)]


@pytest.fixture
def server(tmp_path):
    db_path = tmp_path / "bibo.sqlite3"
    url = f"sqlite:///{db_path}"
    engine = make_engine(url)
    upgrade(engine)
    with transaction(make_sessionmaker(engine)) as session:
        secrets = {v: ingest_service.register_vehicle(session, v) for v in VEHICLES}
    engine.dispose()
    env = {**os.environ, "BIBO_DATABASE_URL": url, "BIBO_RECONCILE_IN_BACKGROUND": "false"}
    with backend_server(env, free_port(), tmp_path / "server.log") as base:
        yield base, secrets, db_path


def rows(db_path: Path, sql: str, *params: object) -> collections.Counter:
    db = sqlite3.connect(db_path)
    try:
        return collections.Counter(
            (t, bytes(tok), rssi, n, tx) for t, tok, rssi, n, tx in db.execute(sql, params)
        )
    finally:
        db.close()


@pytest.mark.slow
def test_sigkill_at_random_moments_loses_and_duplicates_nothing(tmp_path, server):
    base, secrets, db_path = server
    answers = tmp_path / "answers.log"
    vehicle_args = [
        arg for v, secret in secrets.items() for arg in ("--vehicle", f"{v}={secret.hex()}")
    ]

    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.onboard.crash_harness",
            "--backend",
            base,
            *vehicle_args,
            "--outbox-dir",
            str(tmp_path),
            "--answers-log",
            str(answers),
            "--kills",
            str(KILLS),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout)

    assert summary == {"kills": KILLS, "exited_early": 0, "pending_left": 0}
    total = 0
    for vehicle in VEHICLES:
        outbox = tmp_path / f"outbox-{vehicle}.sqlite3"
        committed = rows(outbox, "SELECT t, token, rssi, n, tx FROM audit_sightings")
        stored = rows(
            db_path, "SELECT t, token, rssi, n, tx FROM sightings WHERE vehicle_id = ?", vehicle
        )
        assert max(stored.values()) == 1, f"{vehicle}: a sighting arrived twice"
        assert stored == committed, vehicle
        total += sum(committed.values())
        box = sqlite3.connect(outbox)
        try:
            assert box.execute("SELECT COUNT(*) FROM sightings").fetchone() == (0,)
            assert box.execute("SELECT COUNT(*) FROM batches").fetchone() == (0,)
        finally:
            box.close()
    assert total > 1000, "the kills should land after real work"
    server = sqlite3.connect(db_path)
    try:
        (boots,) = server.execute("SELECT COUNT(DISTINCT boot_id) FROM batches").fetchone()
    finally:
        server.close()
    assert boots > KILLS // 4, "many killed agents should have delivered batches"
    answered = collections.Counter(answers.read_text().split())
    assert answered["dup"] >= 1, f"no kill hit 'stored but not yet forgotten': {answered}"
