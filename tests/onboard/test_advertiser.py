"""The bus beacon: rotation on the agent's clock, retries, the watchdog, metrics, and the agent
scanning and advertising together, all through ``FakeAdvertiser`` on injected clocks."""

from __future__ import annotations

import asyncio
import logging
import uuid

import httpx
import pytest
from prometheus_client import generate_latest

from onboard import wire
from onboard.advertiser import (
    AdvertiserError,
    AdvertiserErrorReason,
    FakeAdvertiser,
    classify_dbus_error,
)
from onboard.agent import Agent, AgentConfig
from onboard.beacon import OUTCOMES, BeaconConfig, BeaconKeeper
from onboard.cli import _build_parser, _options
from onboard.const import BEACON_MEASURED_POWER_DBM
from onboard.health import HealthSnapshot
from onboard.metrics import make_registry
from onboard.outbox import Outbox
from onboard.scanner import FakeScanner
from onboard.uploader import Uploader
from onboard.watchdog import BeaconWatchdog
from tests.onboard.conftest import SECRET, T0, UNIT, VEHICLE, Clock, FakeBackend, advert, token
from tests.onboard.test_metrics import samples, snapshot
from tests.onboard.test_watchdog import Monotonic, until

INTERVAL_MS = wire.TOKEN_INTERVAL_S * 1000
I0 = wire.interval_of(T0)
BOUNDARY = (I0 + 1) * INTERVAL_MS
"""The first interval boundary after ``T0`` (UTC epoch ms)."""


def expected(interval: int) -> wire.IBeacon:
    """The beacon docs/contracts.md (Bus beacon) prescribes for ``SECRET`` in ``interval``."""
    major, minor = wire.beacon_for_interval(wire.beacon_key(SECRET), interval)
    return wire.IBeacon(
        proximity_uuid=wire.DEFAULT_PROXIMITY_UUID,
        major=major,
        minor=minor,
        measured_power=BEACON_MEASURED_POWER_DBM,
    )


def keeper(clock: Clock, **kwargs) -> tuple[BeaconKeeper, FakeAdvertiser]:
    fake = FakeAdvertiser(clock)
    return BeaconKeeper(fake, SECRET, rng=lambda: 1.0, **kwargs), fake


# --- rotation --------------------------------------------------------------------------------


async def test_the_beacon_rotates_at_each_interval_boundary_of_the_clock(clock):
    beacon, fake = keeper(clock)
    start = BOUNDARY - 5_000
    mono = 0.0
    # One keep per second of the clock, across two boundaries.
    for clock.now in range(start, BOUNDARY + INTERVAL_MS + 5_000, 1000):
        await beacon.keep(clock.now, mono)
        mono += 1.0

    assert fake.advertised == [
        (start, expected(I0)),
        (BOUNDARY, expected(I0 + 1)),
        (BOUNDARY + INTERVAL_MS, expected(I0 + 2)),
    ]
    assert len({(b.major, b.minor) for _, b in fake.advertised}) == 3
    assert fake.current == expected(I0 + 2)
    health = beacon.health(mono)
    assert (health.advertising, health.interval, health.down_s) == (True, I0 + 2, 0.0)
    assert health.registrations["ok"] == 3


async def test_the_last_millisecond_of_an_interval_keeps_the_old_ids(clock):
    beacon, fake = keeper(clock)

    for clock.now, mono in ((BOUNDARY - 1, 0.0), (BOUNDARY - 1, 0.5), (BOUNDARY, 1.0)):
        await beacon.keep(clock.now, mono)

    assert fake.advertised == [(BOUNDARY - 1, expected(I0)), (BOUNDARY, expected(I0 + 1))]


async def test_the_configured_region_and_power_are_advertised(clock):
    region = uuid.UUID("6e400001-b5a3-f393-e0a9-e50e24dcca9e")
    fake = FakeAdvertiser(clock)
    beacon = BeaconKeeper(fake, SECRET, BeaconConfig(region, -65))

    await beacon.keep(T0, 0.0)

    [(_, advertised)] = fake.advertised
    data = wire.encode_ibeacon(advertised)
    assert wire.decode_ibeacon(data) == expected(I0).model_copy(
        update={"proximity_uuid": region, "measured_power": -65}
    )


def test_a_measured_power_outside_a_signed_byte_is_refused():
    with pytest.raises(ValueError, match="measured_power_dbm"):
        BeaconConfig(measured_power_dbm=-129)


# --- failures, backoff, recovery ------------------------------------------------------------


async def test_a_refused_beacon_is_retried_with_backoff_and_recovers(clock):
    beacon, fake = keeper(clock)
    fake.fail(AdvertiserErrorReason.NOT_PERMITTED)
    attempts_at: list[float] = []
    mono = 0.0
    while mono <= 200:
        before = fake.attempts
        await beacon.keep(T0, mono)
        if fake.attempts > before:
            attempts_at.append(mono)
        mono += 0.5

    # rng 1.0: no jitter; 1 s doubling, capped at 60 s.
    assert attempts_at == [0, 1, 3, 7, 15, 31, 63, 123, 183]
    assert not beacon.health(mono).advertising

    fake.recover()
    mono = 243.0
    await beacon.keep(T0, mono)

    assert fake.current == expected(I0)
    health = beacon.health(mono)
    assert health.advertising
    assert health.registrations["not_permitted"] == 9
    assert health.registrations["ok"] == 1
    assert set(health.registrations) == set(OUTCOMES)


async def test_after_recovery_the_backoff_starts_again_from_one_second(clock):
    beacon, fake = keeper(clock)
    fake.fail(AdvertiserErrorReason.TIMEOUT)
    await beacon.keep(T0, 0.0)
    await beacon.keep(T0, 1.0)
    fake.recover()
    await beacon.keep(T0, 3.0)
    fake.fail(AdvertiserErrorReason.TIMEOUT)
    fake.release()

    await beacon.keep(T0, 4.0)
    await beacon.keep(T0, 4.9)
    await beacon.keep(T0, 5.0)

    assert fake.attempts == 5  # 0, 1, 3 (ok), 4 (released: at once), 5 (1 s later)


async def test_an_unexpected_error_never_reaches_the_agent(clock, caplog):
    class Broken(FakeAdvertiser):
        async def start(self, beacon: wire.IBeacon) -> None:
            raise RuntimeError("a bug")

    beacon = BeaconKeeper(Broken(clock), SECRET)

    await beacon.keep(T0, 0.0)

    assert beacon.health(0.0).registrations["error"] == 1
    assert "failed unexpectedly" in caplog.text


async def test_a_beacon_bluez_released_is_registered_again_at_once(clock):
    beacon, fake = keeper(clock)
    await beacon.keep(T0, 0.0)

    fake.release()
    await beacon.keep(T0 + 1000, 1.0)

    assert [b for _, b in fake.advertised] == [expected(I0), expected(I0)]
    assert beacon.health(1.0).releases == 1


async def test_an_adapter_reset_registers_again(clock):
    beacon, fake = keeper(clock)
    await beacon.keep(T0, 0.0)

    beacon.adapter_reset()
    await beacon.keep(T0 + 1000, 1.0)

    assert fake.attempts == 2
    assert fake.active


async def test_nothing_is_advertised_while_the_clock_is_not_set(clock):
    beacon, fake = keeper(clock)
    await beacon.keep(T0, 0.0)

    await beacon.keep(0, 1.0)  # the clock jumped to 1970: no RTC, no NTP yet
    await beacon.keep(0, 2.0)

    assert not fake.active
    assert fake.stops == 1
    assert not beacon.health(2.0).advertising

    await beacon.keep(T0 + 3000, 3.0)
    assert fake.current == expected(I0)


async def test_close_withdraws_the_beacon(clock):
    beacon, fake = keeper(clock)
    await beacon.keep(T0, 0.0)

    await beacon.close()

    assert not fake.active
    assert not beacon.health(0.0).advertising


async def test_neither_secret_nor_key_nor_ids_are_logged(clock, caplog):
    caplog.set_level(logging.DEBUG)
    beacon, fake = keeper(clock)
    fake.fail(AdvertiserErrorReason.FAILED)
    await beacon.keep(T0, 0.0)
    fake.recover()
    await beacon.keep(T0, 1.0)
    fake.release()
    await beacon.keep(BOUNDARY, 2.0)

    text = caplog.text + repr(beacon)
    key = wire.beacon_key(SECRET)
    for secret in (SECRET.hex(), key.hex(), repr(SECRET), repr(key)):
        assert secret not in text
    for _, advertised in fake.advertised:
        assert wire.encode_ibeacon(advertised)[18:22].hex() not in text
        for message in caplog.messages:
            assert str(advertised.major) not in message
            assert str(advertised.minor) not in message
    assert "advertising the bus beacon" in caplog.text


async def test_fake_advertiser_records_and_fails_on_request(clock):
    fake = FakeAdvertiser(clock)
    fake.fail(AdvertiserErrorReason.BLUETOOTH_UNAVAILABLE)

    with pytest.raises(AdvertiserError) as info:
        await fake.start(expected(I0))

    assert info.value.reason is AdvertiserErrorReason.BLUETOOTH_UNAVAILABLE
    assert (fake.attempts, fake.advertised, fake.active) == (1, [], False)


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("org.freedesktop.DBus.Error.ServiceUnknown", AdvertiserErrorReason.BLUETOOTH_UNAVAILABLE),
        ("org.freedesktop.DBus.Error.UnknownObject", AdvertiserErrorReason.BLUETOOTH_UNAVAILABLE),
        ("org.freedesktop.DBus.Error.UnknownMethod", AdvertiserErrorReason.NOT_SUPPORTED),
        ("org.freedesktop.DBus.Error.AccessDenied", AdvertiserErrorReason.NOT_PERMITTED),
        ("org.bluez.Error.NotPermitted", AdvertiserErrorReason.NOT_PERMITTED),
        ("org.bluez.Error.InvalidArguments", AdvertiserErrorReason.REFUSED),
        ("org.freedesktop.DBus.Error.NoReply", AdvertiserErrorReason.TIMEOUT),
        ("org.bluez.Error.Failed", AdvertiserErrorReason.FAILED),
        ("com.example.Unheard", AdvertiserErrorReason.FAILED),
    ],
)
def test_dbus_errors_are_classified(name, reason):
    assert classify_dbus_error(name) is reason


# --- watchdog and metrics --------------------------------------------------------------------


def test_the_watchdog_flags_an_outage_once_when_it_lasts():
    dog = BeaconWatchdog(alert_after_s=120)

    assert [dog.check(t, up=False) for t in (10.0, 129.9, 130.0, 200.0)] == [
        False,
        False,
        True,
        False,
    ]
    assert dog.flagged
    assert dog.down_for_s(200.0) == 190.0
    assert dog.check(201.0, up=True) is False
    assert (dog.flagged, dog.down_for_s(300.0)) == (False, 0.0)
    assert dog.check(400.0, up=False) is False  # a new outage counts from here


def test_the_watchdog_refuses_nonsense():
    with pytest.raises(ValueError, match="alert_after_s"):
        BeaconWatchdog(alert_after_s=0)


async def test_a_beacon_down_too_long_is_flagged_and_logged_once(clock, caplog):
    beacon, fake = keeper(clock, down_alert_s=120)
    fake.fail(AdvertiserErrorReason.NOT_SUPPORTED)
    for mono in range(0, 300, 1):
        await beacon.keep(T0, float(mono))

    health = beacon.health(299.0)
    assert health.down_too_long
    assert health.down_s == 299.0
    flagged = [r for r in caplog.records if "has been down for" in r.getMessage()]
    assert len(flagged) == 1
    assert flagged[0].levelno == logging.ERROR
    assert "not_supported" in flagged[0].getMessage()

    fake.recover()
    await beacon.keep(T0, 303.0)
    assert not beacon.health(303.0).down_too_long


async def test_beacon_health_is_exported_as_metrics(clock):
    beacon, fake = keeper(clock)
    fake.fail(AdvertiserErrorReason.NOT_PERMITTED)
    await beacon.keep(T0, 0.0)
    fake.recover()
    await beacon.keep(T0, 1.0)
    registry, collector = make_registry()

    collector.update(snapshot(beacon=beacon.health(1.0)))
    got = samples(generate_latest(registry).decode())

    registrations = "bibo_onboard_beacon_registrations_total"
    assert got[(registrations, (("outcome", "ok"),))] == 1
    assert got[(registrations, (("outcome", "not_permitted"),))] == 1
    assert got[(registrations, (("outcome", "timeout"),))] == 0
    assert got[("bibo_onboard_beacon_advertising", ())] == 1
    assert got[("bibo_onboard_beacon_interval", ())] == I0
    assert got[("bibo_onboard_beacon_down_seconds", ())] == 0
    assert got[("bibo_onboard_beacon_down_too_long", ())] == 0
    assert got[("bibo_onboard_beacon_releases_total", ())] == 0


def test_a_unit_without_the_beacon_exports_no_beacon_metrics():
    registry, collector = make_registry()
    collector.update(snapshot())

    assert b"bibo_onboard_beacon" not in generate_latest(registry)


# --- the agent scanning and advertising together ---------------------------------------------


async def test_the_agent_scans_and_advertises_together_and_rotates_on_its_clock(tmp_path):
    clock = Clock(BOUNDARY - 2_000)
    mono = Monotonic()
    backend = FakeBackend()
    scanner = FakeScanner()
    advertiser = FakeAdvertiser(clock)
    beacon = BeaconKeeper(advertiser, SECRET)
    health: list[HealthSnapshot] = []
    outbox = Outbox(tmp_path / "outbox.sqlite3", VEHICLE, UNIT, "boot-1")
    async with httpx.AsyncClient(transport=httpx.MockTransport(backend.handler)) as client:
        uploader = Uploader(client, "http://bibo.test", VEHICLE, SECRET, clock)
        agent = Agent(AgentConfig(VEHICLE, UNIT), outbox, uploader, clock, monotonic=mono)
        stop = asyncio.Event()
        task = asyncio.create_task(
            agent.run(scanner, stop, beacon=beacon, on_health=health.append, tick_interval_s=0.001)
        )
        await scanner.wait_started()
        await until(lambda: len(advertiser.advertised) == 1)
        assert scanner.emit(*advert(token(1)))

        clock.now = BOUNDARY
        await until(lambda: len(advertiser.advertised) == 2)
        assert scanner.emit(*advert(token(2)))
        await until(lambda: health and health[-1].beacon and health[-1].beacon.interval == I0 + 1)

        stop.set()
        await task
    outbox.close()

    assert advertiser.advertised == [
        (BOUNDARY - 2_000, expected(I0)),
        (BOUNDARY, expected(I0 + 1)),
    ]
    assert agent.stats.adverts_windowed == 2
    assert {row[1] for row in backend.sighting_rows()} == {token(1).hex(), token(2).hex()}
    assert advertiser.stops == 1
    assert not advertiser.active
    assert health[-1].beacon is not None
    assert not health[-1].beacon.advertising


async def test_a_failing_beacon_never_stops_the_agent_recording(tmp_path):
    clock = Clock(T0)
    backend = FakeBackend()
    scanner = FakeScanner()
    advertiser = FakeAdvertiser(clock)
    advertiser.fail(AdvertiserErrorReason.BLUETOOTH_UNAVAILABLE)
    outbox = Outbox(tmp_path / "outbox.sqlite3", VEHICLE, UNIT, "boot-1")
    async with httpx.AsyncClient(transport=httpx.MockTransport(backend.handler)) as client:
        uploader = Uploader(client, "http://bibo.test", VEHICLE, SECRET, clock)
        agent = Agent(AgentConfig(VEHICLE, UNIT), outbox, uploader, clock, monotonic=Monotonic())
        stop = asyncio.Event()
        task = asyncio.create_task(
            agent.run(scanner, stop, beacon=BeaconKeeper(advertiser, SECRET), tick_interval_s=0.001)
        )
        await scanner.wait_started()
        await until(lambda: advertiser.attempts == 1)
        assert scanner.emit(*advert(token(1)))
        await until(lambda: agent.stats.adverts_windowed == 1)
        stop.set()
        await task
    outbox.close()

    assert {row[1] for row in backend.sighting_rows()} == {token(1).hex()}
    assert advertiser.advertised == []


async def test_the_scanner_watchdog_s_adapter_reset_registers_the_beacon_again(tmp_path):
    clock = Clock(T0)
    mono = Monotonic()
    scanner = FakeScanner()
    advertiser = FakeAdvertiser(clock)
    outbox = Outbox(tmp_path / "outbox.sqlite3", VEHICLE, UNIT, "boot-1")
    config = AgentConfig(VEHICLE, UNIT, reset_adapter_after=1)
    async with httpx.AsyncClient(transport=httpx.MockTransport(FakeBackend().handler)) as client:
        uploader = Uploader(client, "http://bibo.test", VEHICLE, SECRET, clock)
        agent = Agent(config, outbox, uploader, clock, monotonic=mono)
        stop = asyncio.Event()
        task = asyncio.create_task(
            agent.run(scanner, stop, beacon=BeaconKeeper(advertiser, SECRET), tick_interval_s=0.001)
        )
        await until(lambda: len(advertiser.advertised) == 1)

        mono.now += agent._watchdog.current_timeout_s + 1
        await until(lambda: scanner.adapter_resets == 1)
        await until(lambda: len(advertiser.advertised) == 2)
        stop.set()
        await task
    outbox.close()

    assert [b for _, b in advertiser.advertised] == [expected(I0), expected(I0)]


# --- the command line ------------------------------------------------------------------------


def test_beacon_options(tmp_path):
    secret = tmp_path / "secret"
    secret.write_text(SECRET.hex())
    base = ["run", "--vehicle", VEHICLE, "--backend", "http://b", "--secret-file", str(secret)]
    region = "6e400001-b5a3-f393-e0a9-e50e24dcca9e"

    off = _options(_build_parser().parse_args(base))
    on = _options(_build_parser().parse_args([*base, "--beacon"]))
    tuned = _options(
        _build_parser().parse_args(
            [*base, "--beacon", "--beacon-uuid", region, "--beacon-power", "-70"]
        )
    )

    assert off.beacon is None
    assert on.beacon == BeaconConfig(wire.DEFAULT_PROXIMITY_UUID, BEACON_MEASURED_POWER_DBM)
    assert tuned.beacon == BeaconConfig(uuid.UUID(region), -70)
