"""The agent and a clock that is not set: nothing with an unknown time is kept, nothing is
sealed with one, and what has a valid time waits in the outbox until the clock is set."""

from __future__ import annotations

import logging

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from onboard import wire
from onboard.agent import Agent, AgentConfig
from onboard.const import MAX_WINDOW_MS
from onboard.outbox import Outbox
from onboard.uploader import Uploader
from tests.onboard.conftest import SECRET, T0, UNIT, VEHICLE, Clock, FakeBackend, advert, token

RTC_NEVER_SET = 5_000
"""A unit that booted without a real-time clock: a few seconds after 1970-01-01."""

YEAR_10000_MS = 253_402_300_800_000


def make_agent(clock: Clock, client: httpx.AsyncClient | None = None) -> Agent:
    client = client or httpx.AsyncClient(transport=httpx.MockTransport(FakeBackend().handler))
    outbox = Outbox(":memory:", VEHICLE, UNIT, "boot-1")
    uploader = Uploader(client, "http://bibo.test", VEHICLE, SECRET, clock)
    return Agent(AgentConfig(VEHICLE, UNIT, heartbeat=True), outbox, uploader, clock)


def batches(agent: Agent) -> list[wire.Batch]:
    return [wire.Batch.model_validate_json(b.body) for b in agent.outbox.pending()]


def test_with_the_clock_not_set_adverts_are_dropped_and_nothing_is_sealed(caplog):
    clock = Clock(RTC_NEVER_SET)
    agent = make_agent(clock)

    with caplog.at_level(logging.WARNING, logger="onboard.agent"):
        for _ in range(3):
            agent.on_advertisement(*advert(token(1)))
            clock.now += 1000
            assert agent.record() == 0

    assert agent.stats.clock_invalid == 3
    assert agent.stats.adverts_windowed == 0
    assert agent.stats.seals_deferred == 3
    assert agent.outbox.pending_count() == 0
    assert agent.health().adverts["clock_invalid"] == 3
    [line] = [r.getMessage() for r in caplog.records]
    assert "the clock reads epoch ms 5000" in line
    assert "not set" in line


def test_what_has_a_valid_time_waits_for_the_clock_and_is_sealed_once_it_is_set(caplog):
    clock = Clock(T0)
    agent = make_agent(clock)
    agent.on_advertisement(*advert(token(1)))  # heard while the clock was fine
    clock.now = RTC_NEVER_SET  # the clock is lost (e.g. a bad NTP step)
    agent.on_event(wire.ArrivalEvent(t=T0 + 500, stop_id="de:05974:1001"))  # carries its time
    agent.on_advertisement(*advert(token(2)))  # unknown time: dropped

    with caplog.at_level(logging.WARNING, logger="onboard.agent"):
        assert agent.record() == 0
        health = agent.outbox.health(T0)
        assert (health.unbatched_sightings, health.unbatched_events) == (1, 1)  # durable

        clock.now = T0 + 20_000
        assert agent.record() == 1

    [batch] = batches(agent)
    assert batch.sent_at == T0 + 20_000
    assert batch.sightings.token == [token(1).hex()]
    assert [e.type for e in batch.events] == ["arrival"]
    assert agent.stats.clock_invalid == 1
    lost, regained = (r.getMessage() for r in caplog.records)
    assert "not set" in lost
    assert "set again" in regained
    assert "1 adverts were dropped" in regained


async def test_drain_with_the_clock_not_set_keeps_the_data_for_the_next_start(tmp_path):
    backend = FakeBackend()
    path = tmp_path / "outbox.sqlite3"
    clock = Clock(T0)
    async with httpx.AsyncClient(transport=httpx.MockTransport(backend.handler)) as client:
        with Outbox(path, VEHICLE, UNIT, "boot-1") as outbox:
            uploader = Uploader(client, "http://bibo.test", VEHICLE, SECRET, clock)
            agent = Agent(AgentConfig(VEHICLE, UNIT), outbox, uploader, clock)
            agent.on_advertisement(*advert(token(1)))
            clock.now = RTC_NEVER_SET
            await agent.drain()
            assert backend.stored == {}
            assert outbox.health(T0).unbatched_sightings == 1

        clock.now = T0 + 60_000  # the next start, with GNSS time
        with Outbox(path, VEHICLE, UNIT, "boot-2") as outbox:
            uploader = Uploader(client, "http://bibo.test", VEHICLE, SECRET, clock)
            agent = Agent(AgentConfig(VEHICLE, UNIT), outbox, uploader, clock)
            await agent.drain()

    assert [row[1] for row in backend.sighting_rows()] == [token(1).hex()]


def test_a_window_no_batch_could_carry_is_refused_by_the_config():
    AgentConfig(VEHICLE, UNIT, window_ms=MAX_WINDOW_MS)
    with pytest.raises(ValueError, match="window_ms"):
        AgentConfig(VEHICLE, UNIT, window_ms=MAX_WINDOW_MS + 1)


clock_values = st.one_of(
    st.integers(0, YEAR_10000_MS),
    st.sampled_from([RTC_NEVER_SET, wire.EARLIEST_EPOCH_MS - 1, wire.EARLIEST_EPOCH_MS, T0]),
    st.sampled_from([wire.LATEST_EPOCH_MS, wire.LATEST_EPOCH_MS + 1]),
)
steps = st.lists(
    st.tuples(clock_values, st.integers(0, 3), st.integers(0, 2), st.booleans()), max_size=25
)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=steps)
def test_whatever_the_clock_reads_every_sealed_batch_is_valid_and_nothing_raises(steps):
    """Each step sets the clock, hears some phones, maybe queues an event and records."""
    clock = Clock(T0)
    agent = make_agent(clock)
    heard_with_valid_clock = 0
    for now, phones, event, record in steps:
        clock.now = now
        for phone in range(phones):
            agent.on_advertisement(*advert(token(phone)))
            heard_with_valid_clock += wire.EARLIEST_EPOCH_MS <= now <= wire.LATEST_EPOCH_MS
        if event and wire.EARLIEST_EPOCH_MS <= now <= wire.LATEST_EPOCH_MS:
            agent.on_event(wire.DoorsOpenEvent(t=now))
        if record:
            agent.record()
    clock.now = YEAR_10000_MS  # not set: every open window is persisted as it is
    agent.record()
    clock.now = wire.LATEST_EPOCH_MS
    agent.record()
    while agent.outbox.seal(clock.now, 1000) is not None:
        pass

    sealed = batches(agent)  # each parsed by the wire format, as the backend will
    s = agent.stats
    assert s.adverts_windowed + s.clock_invalid + s.late_adverts == s.adverts_seen
    assert s.adverts_windowed + s.late_adverts == heard_with_valid_clock
    assert sum(sum(b.sightings.n) for b in sealed) == s.adverts_windowed
    health = agent.outbox.health(T0)
    assert health.refused_sightings == health.refused_events == health.quarantined_rows == 0
    agent.outbox.close()
