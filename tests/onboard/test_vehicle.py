"""Vehicle sources run beside the agent: pushed events, the HTTP feed, a crashing source."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from onboard import agent as agent_module
from onboard import wire
from onboard.agent import Agent, AgentConfig
from onboard.feed import VehicleFeedServer
from onboard.health import HealthSnapshot
from onboard.outbox import Outbox
from onboard.scanner import FakeScanner
from onboard.uploader import Uploader
from onboard.vehicle import EventSink, PushSource
from tests.onboard.conftest import SECRET, T0, UNIT, VEHICLE, FakeBackend
from tests.onboard.test_watchdog import until

STOP = "de:05978:2001"


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


class CrashOnce:
    """A source that fails on its first run and emits one event on its second."""

    name = "crash-once"

    def __init__(self) -> None:
        self.runs = 0

    async def run(self, emit: EventSink) -> None:
        self.runs += 1
        if self.runs == 1:
            raise RuntimeError("serial port vanished")
        emit(wire.DoorsClosedEvent(t=wall_ms()))
        await asyncio.Event().wait()


async def test_sources_feed_the_agent_while_it_runs(tmp_path, monkeypatch):
    monkeypatch.setattr(agent_module, "SOURCE_RESTART_DELAY_S", 0.0)
    backend = FakeBackend()
    push = PushSource()
    push.push(wire.JourneyEvent(t=wall_ms(), line="R81", journey_id="R81-0600", direction=0))
    feed = VehicleFeedServer(wall_ms, "127.0.0.1", 0)
    crashing = CrashOnce()
    snapshots: list[HealthSnapshot] = []
    client = httpx.AsyncClient(transport=httpx.MockTransport(backend.handler))
    outbox = Outbox(tmp_path / "outbox.sqlite3", VEHICLE, UNIT, "boot-1")
    uploader = Uploader(client, "http://bibo.test", VEHICLE, SECRET, wall_ms)
    agent = Agent(AgentConfig(VEHICLE, UNIT), outbox, uploader, wall_ms)
    stop = asyncio.Event()
    async with client:
        task = asyncio.create_task(
            agent.run(
                FakeScanner(),
                stop,
                sources=[push, feed, crashing],
                on_health=snapshots.append,
                tick_interval_s=0.001,
            )
        )
        await feed.ready.wait()
        push.push(wire.ArrivalEvent(t=wall_ms(), stop_id=STOP))
        async with httpx.AsyncClient() as local:
            r = await local.post(
                f"http://127.0.0.1:{feed.bound_port}/v1/events",
                json={"version": 1, "type": "doors_open", "door": 1},
            )
        assert r.status_code == 202
        await until(lambda: crashing.runs == 2 and agent.stats.events == 4)
        stop.set()
        await task
    outbox.close()

    types = sorted(e.type for b in backend.batches() for e in b.events)
    assert types == ["arrival", "doors_closed", "doors_open", "journey"]
    assert snapshots
    assert snapshots[-1].sources["vehicle-feed"]["events"] == 1
    assert snapshots[-1].outbox.pending_batches == 0


async def test_push_source_forwards_only_while_running():
    source = PushSource()
    got: list[wire.Event] = []
    source.push(wire.DoorsOpenEvent(t=T0 + 1))
    task = asyncio.create_task(source.run(got.append))
    await asyncio.sleep(0)
    source.push(wire.DoorsClosedEvent(t=T0 + 2))
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    source.push(wire.DoorsOpenEvent(t=T0 + 3))

    assert [e.t for e in got] == [T0 + 1, T0 + 2]
