"""The agent driven step by step on a simulated clock, with a fake scanner and MockTransport."""

from __future__ import annotations

import asyncio
import random
from collections import defaultdict
from pathlib import Path

import httpx
import pytest

from onboard import wire
from onboard.agent import Agent, AgentConfig, TickResult
from onboard.const import DRAIN_MAX_ATTEMPTS
from onboard.outbox import Outbox
from onboard.scanner import FakeScanner, make_advertisement
from onboard.uploader import Uploader, backoff_ms
from onboard.windowing import SightingRow
from tests.onboard.conftest import SECRET, T0, UNIT, VEHICLE, Clock, FakeBackend, advert, token

OTHER_UUID = "0000feaa-0000-1000-8000-00805f9b34fb"


class Sleeps:
    """Records drain's waits instead of sleeping."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def build(
    tmp_path: Path,
    clock: Clock,
    backend: FakeBackend,
    *,
    boot: str = "boot-1",
    rng_seed: int = 0,
    sleep: Sleeps | None = None,
) -> tuple[Agent, httpx.AsyncClient]:
    client = httpx.AsyncClient(transport=httpx.MockTransport(backend.handler))
    outbox = Outbox(tmp_path / "outbox.sqlite3", VEHICLE, UNIT, boot)
    uploader = Uploader(client, "http://bibo.test", VEHICLE, SECRET, clock)
    agent = Agent(
        AgentConfig(VEHICLE, UNIT),
        outbox,
        uploader,
        clock,
        rng=random.Random(rng_seed).random,
        sleep=sleep or Sleeps(),
    )
    return agent, client


@pytest.fixture
def backend():
    return FakeBackend()


@pytest.fixture
async def agent(tmp_path, clock, backend):
    agent, client = build(tmp_path, clock, backend)
    async with client:
        yield agent
    agent.outbox.close()


def test_adverts_without_our_service_data_are_ignored_and_counted(agent):
    device, adv = make_advertisement(
        address="AA:AA:AA:AA:AA:AA", service_data={OTHER_UUID: b"\x01" * 18}, rssi=-50
    )
    agent.on_advertisement(device, adv)
    agent.on_advertisement(*make_advertisement(address="AA", service_data={}, rssi=-50))

    assert agent.stats.adverts_ignored == 2
    assert agent.stats.adverts_seen == 0
    assert agent.stats.adverts_windowed == 0


def test_malformed_payloads_are_counted_by_reason_and_never_raise(agent):
    for data in (b"", b"\x01" * 17, b"\x02" + token(1) + b"\x00", b"\x01" * 19):
        agent.on_advertisement(
            *make_advertisement(address="AA", service_data={wire.SERVICE_UUID: data}, rssi=-50)
        )

    assert agent.stats.malformed == {
        wire.PayloadError.WRONG_LENGTH: 3,
        wire.PayloadError.UNKNOWN_VERSION: 1,
    }
    assert agent.stats.adverts_windowed == 0


def test_service_uuid_is_matched_case_insensitively():
    config = AgentConfig(VEHICLE, UNIT, service_uuid=wire.SERVICE_UUID.upper())

    assert config.service_uuid == wire.SERVICE_UUID
    with pytest.raises(ValueError, match="service_uuid"):
        AgentConfig(VEHICLE, UNIT, service_uuid="ffb1x")


async def test_unusable_rssi_is_dropped_and_unknown_tx_power_becomes_null(agent, backend):
    agent.on_advertisement(*advert(token(1), rssi=127))
    agent.on_advertisement(*advert(token(1), rssi=-60, tx=-128))
    await agent.drain()

    assert agent.stats.rssi_out_of_range == 1
    assert agent.stats.tx_out_of_range == 1
    assert [row[2:] for row in backend.sighting_rows()] == [(-60, 1, None)]


async def test_an_advert_after_its_window_was_flushed_is_counted_as_late(agent, clock):
    clock.now = T0 + 1500
    await agent.tick()
    clock.now = T0 + 200  # the clock stepped back into a flushed window

    agent.on_advertisement(*advert(token(1)))

    assert agent.stats.late_adverts == 1


async def test_fake_scanner_drives_the_agent_through_a_tick(agent, clock, backend):
    scanner = FakeScanner()
    await scanner.start(agent.on_advertisement)
    for i, rssi in enumerate((-70, -58, -66)):
        clock.now = T0 + 100 * i
        scanner.emit(*advert(token(1), rssi=rssi))
    scanner.emit(*advert(token(2), rssi=-90, tx=-12))
    agent.on_event(wire.DoorsOpenEvent(t=T0 + 50))

    clock.now = T0 + 1000
    result = await agent.tick()

    assert result == TickResult(sealed=1, delivered=1)
    [batch] = backend.batches()
    s = batch.sightings
    got = {tok: (rssi, n, tx) for tok, rssi, n, tx in zip(s.token, s.rssi, s.n, s.tx, strict=True)}
    assert got == {token(1).hex(): (-58, 3, -8), token(2).hex(): (-90, 1, -12)}
    assert set(batch.sightings.t) == {T0}
    assert [e.type for e in batch.events] == ["doors_open"]
    assert agent.outbox.pending_count() == 0
    assert agent.stats.batches_delivered == 1


async def test_batches_are_sealed_once_per_upload_interval(agent, clock, backend):
    await agent.tick()  # the first tick starts the interval
    sealed = []
    for step in range(1, 41):
        clock.now = T0 + step * 500
        agent.on_advertisement(*advert(token(1)))
        sealed.append((await agent.tick()).sealed)

    assert sum(sealed) == 2  # at T0+10 s and T0+20 s
    assert sealed[19] == 1
    assert sealed[39] == 1


async def test_retry_backs_off_on_the_data_clock(tmp_path, clock):
    backend = FakeBackend(fail_rate=1.0)
    agent, client = build(tmp_path, clock, backend, rng_seed=3)
    async with client:
        agent.on_advertisement(*advert(token(1)))
        clock.now += 1000
        first = await agent.tick()
        assert first.retried == 1
        requests = backend.requests

        wait = backoff_ms(1, random.Random(3).random())
        clock.now += wait - 1
        assert await agent.tick() == TickResult()
        assert backend.requests == requests

        backend.fail_rate = 0.0
        clock.now += 1
        assert (await agent.tick()).delivered == 1
    assert agent.outbox.pending_count() == 0
    agent.outbox.close()


async def test_a_quarantined_batch_does_not_block_the_next(agent, clock, backend):
    for i in range(3):
        agent.outbox.add_sightings([SightingRow(t=T0, token=token(i), rssi=-60, n=1, tx=None)])
        agent.outbox.seal(T0 + i, 1000)
    backend.stored[(VEHICLE, "boot-1", 1)] = b"{}"  # same identity, other body: 422

    results = []
    for _ in range(3):  # one send per tick: the send gap (0.5 s) is longer than a frozen tick
        results.append(await agent.tick())
        clock.now += 1000

    assert [(r.delivered, r.quarantined) for r in results] == [(1, 0), (0, 1), (1, 0)]
    assert agent.outbox.quarantined_count() == 1
    assert agent.stats.batches_quarantined == 1


async def test_drain_sends_open_windows_and_retries_a_bounded_number_of_times(tmp_path, clock):
    backend = FakeBackend(fail_rate=1.0)
    sleeps = Sleeps()
    agent, client = build(tmp_path, clock, backend, sleep=sleeps)
    async with client:
        agent.on_advertisement(*advert(token(1)))
        await agent.drain()
        assert agent.outbox.pending_count() == 1
        assert len(sleeps.waits) == DRAIN_MAX_ATTEMPTS - 1

        backend.fail_rate = 0.0
        await agent.drain()
    assert agent.outbox.pending_count() == 0
    assert len(backend.sighting_rows()) == 1
    agent.outbox.close()


async def test_run_scans_until_stopped_then_drains(agent, clock, backend):
    scanner = FakeScanner()
    stop = asyncio.Event()
    task = asyncio.create_task(agent.run(scanner, stop))
    await scanner.wait_started()

    scanner.emit(*advert(token(7), rssi=-64))
    stop.set()
    await task

    assert not scanner.started
    assert [row[1:4] for row in backend.sighting_rows()] == [(token(7).hex(), -64, 1)]


async def test_every_sighting_is_delivered_exactly_once_through_a_flaky_link_and_a_restart(
    tmp_path, clock
):
    """30 % of requests fail (refused, 500, or stored with the answer lost); the unit restarts
    half-way. The backend must end up with each (window, token) exactly once, as heard."""
    backend = FakeBackend(fail_rate=0.3, seed=42)
    feed = random.Random(7)
    expected: dict[tuple[int, str], tuple[int, int]] = {}
    heard: dict[tuple[int, str], list[int]] = defaultdict(list)

    async def ride(agent, start_ms: int, seconds: int) -> None:
        for ms in range(start_ms, start_ms + seconds * 1000, 100):
            clock.now = ms
            for p in range(12):
                if feed.random() < 0.25:
                    rssi = feed.randint(-100, -40)
                    agent.on_advertisement(*advert(token(p), rssi=rssi))
                    heard[(ms - ms % 1000, token(p).hex())].append(rssi)
            if ms % 500 == 0:
                agent.on_event(wire.PositionEvent(t=ms, lat=51.57, lon=8.1, speed_mps=8.0))
                await agent.tick()

    agent, client = build(tmp_path, clock, backend, boot="boot-1", rng_seed=1)
    async with client:
        await ride(agent, T0, 120)
        clock.now += 1000
        await agent.tick()  # all windows closed and on disk: the restart loses nothing
    agent.outbox.close()

    agent2, client2 = build(tmp_path, clock, backend, boot="boot-2", rng_seed=2)
    async with client2:
        await ride(agent2, clock.now - clock.now % 1000 + 1000, 120)
        for _ in range(200):  # keep ticking on the simulated clock until the queue is empty
            if agent2.outbox.pending_count() == 0:
                break
            clock.now += 1000
            await agent2.tick()
        await agent2.drain()
    assert agent2.outbox.pending_count() == 0
    agent2.outbox.close()

    for key, rssis in heard.items():
        expected[key] = (max(rssis), len(rssis))
    rows = backend.sighting_rows()
    delivered = [(t, tok) for t, tok, _, _, _ in rows]
    assert len(delivered) == len(set(delivered)), "a sighting row was stored twice"
    assert {(t, tok): (rssi, n) for t, tok, rssi, n, _ in rows} == expected
    assert backend.duplicates > 0, "the test should exercise lost answers"
    assert {b.boot_id for b in backend.batches()} == {"boot-1", "boot-2"}
    assert agent.stats.send_failures + agent2.stats.send_failures > 0
    assert len(rows) > 1000
    events = [e.t for b in backend.batches() for e in b.events]
    assert len(events) == len(set(events)) == 480


def build_with(tmp_path, clock, backend, config: AgentConfig, sleep=None):
    client = httpx.AsyncClient(transport=httpx.MockTransport(backend.handler))
    outbox = Outbox(tmp_path / "outbox.sqlite3", VEHICLE, UNIT, "boot-1")
    uploader = Uploader(client, "http://bibo.test", VEHICLE, SECRET, clock)
    agent = Agent(
        config, outbox, uploader, clock, rng=random.Random(0).random, sleep=sleep or Sleeps()
    )
    return agent, client


def seal_batches(agent: Agent, count: int) -> None:
    for i in range(count):
        agent.outbox.add_sightings([SightingRow(t=T0, token=token(i), rssi=-60, n=1, tx=None)])
        agent.outbox.seal(T0, 1000)


async def test_sends_keep_the_configured_gap_on_the_data_clock(tmp_path, clock):
    backend = FakeBackend(clock=clock)
    agent, client = build_with(tmp_path, clock, backend, AgentConfig(VEHICLE, UNIT))
    async with client:
        seal_batches(agent, 4)
        assert (await agent.tick()).delivered == 1
        assert (await agent.tick()).delivered == 0  # same instant: the gap is 500 ms
        clock.now += 499
        assert (await agent.tick()).delivered == 0
        clock.now += 1
        assert (await agent.tick()).delivered == 1
    gaps = [b - a for a, b in zip(backend.request_times, backend.request_times[1:], strict=False)]
    assert gaps == [500]
    agent.outbox.close()


async def test_drain_paces_its_sends_with_sleep(tmp_path, clock):
    backend = FakeBackend()
    sleeps = Sleeps()
    config = AgentConfig(VEHICLE, UNIT, max_batches_per_s=4)
    agent, client = build_with(tmp_path, clock, backend, config, sleep=sleeps)
    async with client:
        seal_batches(agent, 3)
        await agent.drain()
    assert len(backend.stored) == 3
    assert sleeps.waits == [0.25, 0.25]
    agent.outbox.close()


async def test_while_sends_fail_batches_are_sealed_rarely(tmp_path, clock):
    backend = FakeBackend(down=True)
    agent, client = build_with(tmp_path, clock, backend, AgentConfig(VEHICLE, UNIT))
    async with client:
        for second in range(0, 1200, 5):  # 20 minutes offline, an advert and a tick every 5 s
            clock.now = T0 + second * 1000
            agent.on_advertisement(*advert(token(1)))
            await agent.tick()
        offline_batches = agent.outbox.pending_count()
        backend.down = False
        for _ in range(600):
            clock.now += 1000
            await agent.tick()
            if agent.outbox.pending_count() == 0:
                break
    # Sealed at 10 s (whose send fails), then every 5 minutes (310, 610, 910 s), not every 10 s.
    assert offline_batches == 4
    assert agent.outbox.pending_count() == 0
    assert len(backend.sighting_rows()) == 240
    agent.outbox.close()


async def test_heartbeat_seals_an_empty_batch_when_nothing_was_heard(tmp_path, clock):
    backend = FakeBackend()
    config = AgentConfig(VEHICLE, UNIT, heartbeat=True)
    agent, client = build_with(tmp_path, clock, backend, config)
    async with client:
        for _ in range(31):
            await agent.tick()
            clock.now += 1000
    batches = backend.batches()
    assert len(batches) == 4  # at 0, 10, 20 and 30 s
    assert all(len(b.sightings) == 0 and not b.events for b in batches)
    agent.outbox.close()


async def test_windowing_memory_full_refuses_new_rows_and_counts_them(tmp_path, clock, backend):
    agent, client = build_with(
        tmp_path, clock, backend, AgentConfig(VEHICLE, UNIT, max_open_rows=2)
    )
    async with client:
        for i in range(3):
            agent.on_advertisement(*advert(token(i)))
        agent.on_advertisement(*advert(token(0)))  # an existing row still counts
        assert agent.stats.window_full == 1
        assert agent.stats.adverts_windowed == 3
    agent.outbox.close()


def test_an_advert_that_breaks_the_handler_is_counted_not_raised(agent):
    device, adv = advert(token(1))
    agent.on_advertisement_safe(device, adv._replace(service_data=None))
    agent.on_advertisement_safe(device, adv)

    assert agent.stats.advert_errors == 1
    assert agent.stats.adverts_windowed == 1


async def test_health_snapshot_counts_adverts_and_outbox(agent, clock):
    agent.on_advertisement(*advert(token(1)))
    agent.on_advertisement(*make_advertisement(address="AA", service_data={}, rssi=-50))
    agent.on_advertisement(
        *make_advertisement(address="AA", service_data={wire.SERVICE_UUID: b"\x01"}, rssi=-50)
    )
    clock.now += 1000
    agent.record()

    health = agent.health()

    assert health.adverts["windowed"] == 1
    assert health.adverts["ignored"] == 1
    assert health.adverts["malformed_wrong_length"] == 1
    assert health.outbox.pending_batches == 1
    assert health.outbox.oldest_unsent_age_ms == 0
    assert health.last_upload_ms is None


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("max_batches_per_s", 0.0),
        ("max_batches_per_s", float("inf")),
        ("offline_seal_interval_ms", -1),
        ("max_open_rows", 0),
        ("watchdog_timeout_s", 0.0),
        ("reset_adapter_after", -1),
    ],
)
def test_config_refuses_nonsense_naming_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        AgentConfig(VEHICLE, UNIT, **{field: value})


async def test_at_the_disk_cap_sightings_are_dropped_counted_and_events_still_arrive(
    tmp_path, clock
):
    backend = FakeBackend(down=True)
    client = httpx.AsyncClient(transport=httpx.MockTransport(backend.handler))
    outbox = Outbox(tmp_path / "outbox.sqlite3", VEHICLE, UNIT, "boot-1", max_bytes=150_000)
    uploader = Uploader(client, "http://bibo.test", VEHICLE, SECRET, clock)
    agent = Agent(AgentConfig(VEHICLE, UNIT), outbox, uploader, clock, sleep=Sleeps())
    crowd = random.Random(4)
    async with client:
        for second in range(120):  # two minutes offline in a crowd of fresh tokens
            clock.now = T0 + second * 1000
            for _ in range(100):
                agent.on_advertisement(*advert(crowd.randbytes(16), rssi=-70))
            agent.on_event(wire.PositionEvent(t=clock.now, lat=51.5, lon=8.0))
            await agent.tick()
        health = agent.health()
        backend.down = False
        await agent.drain()
    outbox.close()

    assert health.outbox.dropped_sightings > 0
    assert health.outbox.used_bytes <= 150_000
    delivered = len(backend.sighting_rows())
    assert delivered + health.outbox.dropped_sightings == agent.stats.sighting_rows
    assert len([e for b in backend.batches() for e in b.events]) == 120


async def test_the_agent_waits_as_long_as_the_server_asks(tmp_path, clock):
    requests = []

    def busy(request: httpx.Request) -> httpx.Response:
        requests.append(clock.now)
        return httpx.Response(429, headers={"Retry-After": "60"})

    client = httpx.AsyncClient(transport=httpx.MockTransport(busy))
    outbox = Outbox(tmp_path / "outbox.sqlite3", VEHICLE, UNIT, "boot-1")
    uploader = Uploader(client, "http://bibo.test", VEHICLE, SECRET, clock)
    agent = Agent(AgentConfig(VEHICLE, UNIT), outbox, uploader, clock, rng=lambda: 0.0)
    async with client:
        seal_batches(agent, 1)
        for _ in range(70):
            await agent.tick()
            clock.now += 1000
    outbox.close()
    assert [t - T0 for t in requests] == [0, 60_000]


@pytest.mark.parametrize("unknown", [-128, 127])
async def test_both_unknown_tx_bytes_are_uploaded_as_null(agent, backend, unknown):
    """0x80 is BLE's "unknown"; 0x7F is what phones send for it (docs/contracts.md, BLE payload)."""
    agent.on_advertisement(*advert(token(1), rssi=-60, tx=unknown))
    agent.on_advertisement(*advert(token(2), rssi=-61, tx=126))
    await agent.drain()
    assert sorted(row[2:] for row in backend.sighting_rows()) == [(-61, 1, 126), (-60, 1, None)]
