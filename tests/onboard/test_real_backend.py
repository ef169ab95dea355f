"""The agent against the real backend app (in-process over httpx.ASGITransport, SQLite in
tmp_path), through a link that fails 30 % of requests: nothing lost, nothing duplicated."""

from __future__ import annotations

import random
import sqlite3
import time
from collections import defaultdict

import httpx
import pytest

from onboard import wire
from onboard.agent import Agent, AgentConfig
from onboard.outbox import Outbox
from onboard.uploader import Uploader
from tests.onboard.conftest import NEEDS_SERVER, T0, UNIT, VEHICLE, Clock, advert, token

pytest.importorskip("fastapi", reason=NEEDS_SERVER)
pytest.importorskip("sqlalchemy", reason=NEEDS_SERVER)

from backend.api.app import create_app
from backend.db import make_engine, make_sessionmaker, transaction, upgrade
from backend.ingest import service as ingest_service
from backend.settings import Settings


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


class FlakyLink(httpx.AsyncBaseTransport):
    """Fails ``rate`` of requests: refused, 503 (not stored), or stored with the answer lost."""

    def __init__(self, inner: httpx.AsyncBaseTransport, rate: float, seed: int) -> None:
        self.inner = inner
        self.rate = rate
        self.rng = random.Random(seed)
        self.failures = {"refused": 0, "503": 0, "answer_lost": 0}

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        roll = self.rng.random()
        if roll < self.rate / 3:
            self.failures["refused"] += 1
            raise httpx.ConnectError("connection refused", request=request)
        if roll < 2 * self.rate / 3:
            self.failures["503"] += 1
            return httpx.Response(503, json={"detail": "overloaded"})
        response = await self.inner.handle_async_request(request)
        if roll < self.rate:
            await response.aread()
            self.failures["answer_lost"] += 1
            raise httpx.ReadTimeout("answer lost", request=request)
        return response


@pytest.fixture
def backend_app(tmp_path):
    url = f"sqlite:///{tmp_path}/bibo.sqlite3"
    engine = make_engine(url)
    upgrade(engine)
    with transaction(make_sessionmaker(engine)) as session:
        secret = ingest_service.register_vehicle(session, VEHICLE)
    app = create_app(
        settings=Settings(database_url=url, reconcile_in_background=False),
        engine=engine,
        migrate=False,
    )
    yield app, secret, tmp_path / "bibo.sqlite3"
    engine.dispose()


def backend_sightings(db_path) -> list[tuple[int, str, int, int, int | None]]:
    db = sqlite3.connect(db_path)
    try:
        rows = db.execute(
            "SELECT t, token, rssi, n, tx FROM sightings WHERE vehicle_id = ?", (VEHICLE,)
        ).fetchall()
    finally:
        db.close()
    return [(t, bytes(tok).hex(), rssi, n, tx) for t, tok, rssi, n, tx in rows]


async def test_a_backend_failing_30_percent_gets_everything_exactly_once(tmp_path, backend_app):
    app, secret, db_path = backend_app
    link = FlakyLink(httpx.ASGITransport(app=app), rate=0.3, seed=3)
    clock = Clock(T0)
    feed = random.Random(9)
    heard: dict[tuple[int, str], list[int]] = defaultdict(list)
    events = 0
    async with httpx.AsyncClient(transport=link) as client:
        outbox = Outbox(tmp_path / "outbox.sqlite3", VEHICLE, UNIT, "boot-1")
        uploader = Uploader(client, "http://bibo.test", VEHICLE, secret, wall_ms)
        agent = Agent(AgentConfig(VEHICLE, UNIT), outbox, uploader, clock, rng=feed.random)
        for ms in range(T0, T0 + 240_000, 250):  # four minutes, 12 phones, a tick every 0.5 s
            clock.now = ms
            for p in range(12):
                if feed.random() < 0.3:
                    rssi = feed.randint(-100, -40)
                    agent.on_advertisement(*advert(token(p), rssi=rssi))
                    heard[(ms - ms % 1000, token(p).hex())].append(rssi)
            if ms % 500 == 0:
                if ms % 5000 == 0:
                    agent.on_event(wire.DoorsOpenEvent(t=ms))
                    events += 1
                await agent.tick()
        for _ in range(2000):
            if outbox.pending_count() == 0:
                break
            clock.now += 500
            await agent.tick()
        await agent.drain()
        assert outbox.pending_count() == 0
        outbox.close()

    assert all(count > 0 for count in link.failures.values()), link.failures
    rows = backend_sightings(db_path)
    keys = [(t, tok) for t, tok, _, _, _ in rows]
    assert len(keys) == len(set(keys)), "a sighting was stored twice"
    expected = {key: (max(v), len(v)) for key, v in heard.items()}
    assert {(t, tok): (rssi, n) for t, tok, rssi, n, _ in rows} == expected
    db = sqlite3.connect(db_path)
    try:
        (stored_events,) = db.execute(
            "SELECT COUNT(*) FROM vehicle_events WHERE vehicle_id = ?", (VEHICLE,)
        ).fetchone()
    finally:
        db.close()
    assert stored_events == events
