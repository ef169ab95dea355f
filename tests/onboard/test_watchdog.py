"""The scanner watchdog: pure escalation rules, and the agent restarting a stalled scanner."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import httpx
import pytest

from onboard.agent import Agent, AgentConfig
from onboard.outbox import Outbox
from onboard.scanner import AdvertCallback, FakeScanner, ScannerError, ScannerErrorReason
from onboard.uploader import Uploader
from onboard.watchdog import ScannerWatchdog, WatchdogAction
from tests.onboard.conftest import SECRET, UNIT, VEHICLE, FakeBackend, advert, token

NONE, RESTART, RESET = WatchdogAction.NONE, WatchdogAction.RESTART, WatchdogAction.RESET_ADAPTER


def test_silence_for_the_timeout_restarts_and_activity_resets_the_clock():
    dog = ScannerWatchdog(timeout_s=90)
    dog.started(0.0, 0)

    assert dog.check(89.9, 0) is NONE
    assert dog.check(60.0, 5) is NONE  # adverts arrived: silence is measured from here
    assert dog.check(149.0, 5) is NONE
    assert dog.check(150.0, 5) is RESTART


def test_continued_silence_doubles_the_timeout_up_to_the_cap_and_an_advert_resets_it():
    dog = ScannerWatchdog(timeout_s=90, max_timeout_s=300)
    dog.started(0.0, 0)
    t, actions = 0.0, []
    for _ in range(5):
        t += dog.current_timeout_s
        actions.append((t, dog.check(t, 0)))
        dog.started(t, 0)

    assert actions == [
        (90, RESTART),
        (270, RESTART),
        (570, RESTART),
        (870, RESTART),
        (1170, RESTART),
    ]
    assert dog.check(1171.0, 1) is NONE
    assert dog.current_timeout_s == 90
    assert dog.silent_restarts == 0


def test_every_nth_silent_restart_resets_the_adapter():
    dog = ScannerWatchdog(timeout_s=10, reset_adapter_after=2, max_timeout_s=10)
    dog.started(0.0, 0)

    assert [dog.check(10.0 * k, 0) for k in range(1, 5)] == [RESTART, RESET, RESTART, RESET]


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [({"timeout_s": 0}, "timeout_s"), ({"reset_adapter_after": -1}, "reset_adapter_after")],
)
def test_watchdog_refuses_nonsense(kwargs, name):
    with pytest.raises(ValueError, match=name):
        ScannerWatchdog(**kwargs)


# --- the agent's run loop with a stalling scanner -----------------------------------------


class Monotonic:
    """A monotonic clock (s) moved by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


async def until(predicate: Callable[[], bool]) -> None:
    """Yield to the agent's tasks until ``predicate`` holds (bounded, no timing assumption)."""
    for _ in range(2000):
        if predicate():
            return
        await asyncio.sleep(0.001)
    raise AssertionError("condition not reached")


class FlakyStartScanner(FakeScanner):
    """Fails to start on the given start numbers (1 = the first start)."""

    def __init__(self, failing: set[int]) -> None:
        super().__init__()
        self.failing = failing
        self.attempts = 0

    async def start(self, callback: AdvertCallback) -> None:
        self.attempts += 1
        if self.attempts in self.failing:
            raise ScannerError(ScannerErrorReason.BLUETOOTH_UNAVAILABLE, "hci0 went away")
        await super().start(callback)


async def drive_stall(tmp_path, scanner: FakeScanner, config: AgentConfig, silences: int):
    backend = FakeBackend()
    mono = Monotonic()
    client = httpx.AsyncClient(transport=httpx.MockTransport(backend.handler))
    outbox = Outbox(tmp_path / "outbox.sqlite3", VEHICLE, UNIT, "boot-1")
    uploader = Uploader(client, "http://bibo.test", VEHICLE, SECRET, wall_ms)
    agent = Agent(config, outbox, uploader, wall_ms, monotonic=mono)
    stop = asyncio.Event()
    async with client:
        task = asyncio.create_task(agent.run(scanner, stop, tick_interval_s=0.001))
        await scanner.wait_started()
        assert scanner.emit(*advert(token(1)))
        await until(lambda: agent.stats.adverts_windowed == 1)
        await until(
            lambda: agent._watchdog.silent_restarts == 0 and agent._watchdog._last_count == 1
        )

        scanner.stall()
        assert not scanner.emit(*advert(token(2))), "lost in the stall"
        for _ in range(silences):
            before = agent.stats.scanner_restarts
            mono.now += agent._watchdog.current_timeout_s + 1
            await until(lambda before=before: agent.stats.scanner_restarts == before + 1)

        assert scanner.emit(*advert(token(3)))
        stop.set()
        await task
    outbox.close()
    heard = {row[1] for row in backend.sighting_rows()}
    return agent, heard


async def test_a_stalled_scanner_is_restarted_and_later_adverts_are_recorded(tmp_path):
    scanner = FakeScanner()
    agent, heard = await drive_stall(tmp_path, scanner, AgentConfig(VEHICLE, UNIT), silences=1)

    assert heard == {token(1).hex(), token(3).hex()}
    assert agent.stats.scanner_restarts == 1
    assert scanner.starts == 2
    assert scanner.adapter_resets == 0


async def test_the_adapter_is_reset_when_configured(tmp_path):
    scanner = FakeScanner()
    config = AgentConfig(VEHICLE, UNIT, reset_adapter_after=1)
    agent, heard = await drive_stall(tmp_path, scanner, config, silences=1)

    assert heard == {token(1).hex(), token(3).hex()}
    assert scanner.adapter_resets == 1
    assert agent.stats.adapter_resets == 1


async def test_a_failed_restart_is_retried_by_the_next_watchdog_round(tmp_path):
    scanner = FlakyStartScanner(failing={2})
    agent, heard = await drive_stall(tmp_path, scanner, AgentConfig(VEHICLE, UNIT), silences=2)

    assert agent.stats.scanner_start_failures == 1
    assert agent.stats.scanner_restarts == 2
    assert heard == {token(1).hex(), token(3).hex()}
