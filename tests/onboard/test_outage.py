"""A 6-hour backend outage on an injected clock: nothing lost, nothing twice, catch-up paced.

The bus keeps hearing phones and reporting positions while the backend is unreachable for
six hours; when it comes back the agent catches up without ever sending faster than its
configured rate, and the backend ends up with every sighting and event exactly once.
"""

from __future__ import annotations

import itertools
import random
from collections import defaultdict

import httpx

from onboard import wire
from onboard.agent import Agent, AgentConfig
from onboard.const import BACKOFF_CAP_MS
from onboard.outbox import Outbox
from onboard.uploader import Uploader
from tests.onboard.conftest import SECRET, T0, UNIT, VEHICLE, Clock, FakeBackend, advert, token

HOUR_MS = 3_600_000
OUTAGE_START = T0 + 10 * 60_000
OUTAGE_END = OUTAGE_START + 6 * HOUR_MS
RATE = 2.0


async def test_six_hour_outage_loses_nothing_and_catches_up_at_the_configured_rate(tmp_path):
    clock = Clock(T0)
    backend = FakeBackend(clock=clock)
    client = httpx.AsyncClient(transport=httpx.MockTransport(backend.handler))
    outbox = Outbox(tmp_path / "outbox.sqlite3", VEHICLE, UNIT, "boot-1")
    uploader = Uploader(client, "http://bibo.test", VEHICLE, SECRET, clock)
    config = AgentConfig(VEHICLE, UNIT, max_batches_per_s=RATE)
    agent = Agent(config, outbox, uploader, clock, rng=random.Random(5).random)
    feed = random.Random(11)
    heard: dict[tuple[int, str], list[int]] = defaultdict(list)
    events = 0
    offline_sealed = 0

    async with client:
        # Drive the bus every 20 s of data time: 8 phones aboard, a position every minute.
        for ms in range(T0, OUTAGE_END + 60_000, 20_000):
            clock.now = ms
            backend.down = OUTAGE_START <= ms < OUTAGE_END
            for p in range(8):
                rssi = feed.randint(-95, -45)
                agent.on_advertisement(*advert(token(p), rssi=rssi))
                heard[(ms - ms % 1000, token(p).hex())].append(rssi)
            if ms % 60_000 == 0:
                agent.on_event(wire.PositionEvent(t=ms, lat=51.57, lon=8.1, speed_mps=7.5))
                events += 1
            result = await agent.tick()
            if backend.down:
                offline_sealed += result.sealed
        backlog = outbox.pending_count()

        # Back online: tick every 100 ms so the send rate, not the tick, is the limit.
        caught_up_at = None
        while clock.now < OUTAGE_END + BACKOFF_CAP_MS + 10 * 60_000:
            clock.now += 100
            await agent.tick()
            if outbox.pending_count() == 0:
                caught_up_at = clock.now
                break
        await agent.drain()

    outbox.close()
    assert caught_up_at is not None, "catch-up did not complete"
    assert backlog > 50, "the outage should have left a backlog to catch up"
    assert offline_sealed <= 6 * 12 + 2, "offline, batches are sealed every 5 minutes"

    times = backend.request_times
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert min(gaps) >= 1000 / RATE, "never faster than the configured rate"
    sent_after = [t for t in times if t >= OUTAGE_END]
    catch_up_ms = max(sent_after) - min(sent_after)
    assert len(sent_after) <= catch_up_ms * RATE / 1000 + 1

    rows = backend.sighting_rows()
    keys = [(t, tok) for t, tok, _, _, _ in rows]
    assert len(keys) == len(set(keys)), "a sighting arrived twice"
    expected = {key: (max(v), len(v)) for key, v in heard.items()}
    assert {(t, tok): (rssi, n) for t, tok, rssi, n, _ in rows} == expected
    stored_events = [e.t for b in backend.batches() for e in b.events]
    assert len(stored_events) == len(set(stored_events)) == events
