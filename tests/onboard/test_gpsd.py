"""GNSS from gpsd: the JSON protocol against a fake gpsd on loopback."""

from __future__ import annotations

import asyncio
import json
import logging
import math
import socket

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from onboard import wire
from onboard.gpsd import WATCH_COMMAND, GpsdSource, gnss_time_ms, position_from_tpv
from tests.onboard.conftest import T0, Clock

VERSION = {"class": "VERSION", "release": "3.25", "proto_major": 3, "proto_minor": 15}
FIX_TIME = "2026-11-21T06:46:40.000Z"


def tpv(mode: int, **fields) -> dict:
    return {"class": "TPV", "device": "/dev/ttyACM0", "mode": mode, **fields}


def line(obj) -> bytes:
    return (json.dumps(obj) if not isinstance(obj, str) else obj).encode() + b"\n"


class FakeGpsd:
    """Speaks enough of gpsd: VERSION on connect, reports after ?WATCH, then hangs up."""

    def __init__(self, sessions: list[list[object]]) -> None:
        self.sessions = sessions
        self.watches: list[bytes] = []
        self.go = [asyncio.Event() for _ in sessions]
        self.go[0].set()
        self.server: asyncio.Server | None = None
        self.closing = asyncio.Event()
        self.handlers: set[asyncio.Task[None]] = set()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.handlers.add(task)
        index = len(self.watches)
        writer.write(line(VERSION))
        self.watches.append(await reader.readline())
        if index < len(self.sessions):
            await self.go[index].wait()
            for item in self.sessions[index]:
                writer.write(line(item))
            await writer.drain()
        else:
            # Past the scripted sessions the connection stays open until the test ends, so
            # the client is not reconnecting (a connection half open) when it is cancelled.
            await self.closing.wait()
        writer.close()
        await writer.wait_closed()

    async def __aenter__(self) -> int:
        self.server = await asyncio.start_server(self.handle, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    async def __aexit__(self, *exc) -> None:
        assert self.server is not None
        self.closing.set()
        self.server.close()
        # Every connection's handler finishes (its transport closed) before the loop ends.
        await asyncio.gather(*self.handlers, return_exceptions=True)
        await self.server.wait_closed()


async def no_wait(seconds: float) -> None:
    await asyncio.sleep(0)


async def collect(source: GpsdSource, count: int) -> tuple[list[wire.Event], asyncio.Task[None]]:
    events: list[wire.Event] = []
    task = asyncio.create_task(source.run(events.append))
    for _ in range(2000):
        if len(events) >= count:
            break
        await asyncio.sleep(0.001)
    return events, task


async def stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # A client cancelled while connecting or closing has closed its transport, but the
    # transport lets go of its socket in a callback on the loop: let it run before the
    # test's loop ends, or the socket is reported unclosed in whichever test collects it.
    for _ in range(3):
        await asyncio.sleep(0)


async def test_tpv_reports_become_positions_and_the_client_reconnects(clock: Clock):
    session_1 = [
        {"class": "DEVICES", "devices": []},
        {"class": "WATCH", "enable": True, "json": True},
        tpv(3, lat=51.5711234567, lon=8.1057, speed=8.3449, time=FIX_TIME),
        tpv(1, time=FIX_TIME),
        "{not json",
        tpv(3, lat=51.5712, lon=8.1058, speed=8.3),  # within 1 s of the last: skipped
        {"class": "SKY", "satellites": []},
    ]
    session_2 = [tpv(2, lat=51.6, lon=8.2)]
    gpsd = FakeGpsd([session_1, session_2])
    async with gpsd as port:
        source = GpsdSource(clock, "127.0.0.1", port, sleep=no_wait)
        events, task = await collect(source, 1)
        clock.now += 1000
        gpsd.go[1].set()
        for _ in range(2000):
            if len(events) >= 2:
                break
            await asyncio.sleep(0.001)
        await stop(task)

    assert events == [
        wire.PositionEvent(t=T0, lat=51.571123, lon=8.1057, speed_mps=8.34),
        wire.PositionEvent(t=T0 + 1000, lat=51.6, lon=8.2, speed_mps=None),
    ]
    assert gpsd.watches[:2] == [WATCH_COMMAND, WATCH_COMMAND]
    s = source.stats
    assert (s.positions, s.no_fix, s.malformed) == (2, 1, 1)
    assert s.connects >= 2
    assert s.gnss_clock_offset_ms == gnss_time_ms({"time": FIX_TIME}) - T0


async def test_an_unreachable_gpsd_is_retried_with_backoff(clock: Clock):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    waits: list[float] = []
    retried = asyncio.Event()

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        if len(waits) >= 3:
            retried.set()
        await asyncio.sleep(0)

    source = GpsdSource(clock, "127.0.0.1", port, sleep=sleep, rng=lambda: 1.0)
    task = asyncio.create_task(source.run(lambda e: None))
    await retried.wait()
    await stop(task)

    assert waits[:3] == [1.0, 2.0, 4.0]
    assert source.stats.connects == 0


@pytest.mark.parametrize(
    ("report", "expected"),
    [
        (tpv(0), None),
        (tpv(1, lat=1.0, lon=2.0), None),
        ({"class": "TPV"}, None),
        (tpv(3, lat=51.0, lon=8.0, speed=-1.0), wire.PositionEvent(t=T0, lat=51.0, lon=8.0)),
        (
            tpv(3, lat=51, lon=8, speed=0),
            wire.PositionEvent(t=T0, lat=51.0, lon=8.0, speed_mps=0.0),
        ),
    ],
)
def test_position_from_tpv(report, expected):
    assert position_from_tpv(report, T0) == expected


@pytest.mark.parametrize(
    "report",
    [
        tpv(2, lat=None, lon=8.0),
        tpv(3, lat=float("nan"), lon=8.0),
        tpv(3, lat=91.0, lon=8.0),
        tpv(2, lat=True, lon=8.0),
    ],
)
def test_a_fix_without_usable_coordinates_is_malformed(report):
    with pytest.raises(ValueError, match="lat"):
        position_from_tpv(report, T0)


@pytest.mark.parametrize("value", [None, 5, "yesterday", "2026-11-21T06:46:40"])
def test_gnss_time_without_a_zone_or_unparsable_is_none(value):
    assert gnss_time_ms({"time": value}) is None


# --- values the upload format cannot carry ------------------------------------------------


@pytest.mark.parametrize("speed", [1e308, math.inf, -math.inf, math.nan, 70.01, -0.5, "fast"])
def test_a_speed_glitch_keeps_the_position_and_drops_only_the_speed(speed):
    assert position_from_tpv(tpv(3, lat=51.5, lon=8.1, speed=speed), T0) == wire.PositionEvent(
        t=T0, lat=51.5, lon=8.1, speed_mps=None
    )


def test_the_fastest_speed_the_wire_format_takes_is_kept():
    event = position_from_tpv(tpv(3, lat=51.5, lon=8.1, speed=wire.MAX_SPEED_MPS), T0)

    assert event is not None
    assert event.speed_mps == wire.MAX_SPEED_MPS


@pytest.mark.parametrize(
    ("lat", "lon"),
    [(math.inf, 8.1), (51.5, -math.inf), (math.nan, 8.1), (51.5, 180.5), (-90.01, 8.1)],
)
def test_a_position_that_is_not_finite_or_out_of_range_drops_the_fix(lat, lon):
    with pytest.raises(ValueError, match="expected finite degrees"):
        position_from_tpv(tpv(3, lat=lat, lon=lon), T0)


def test_speed_glitches_and_a_clock_not_set_are_counted_and_logged_once(caplog):
    clock = Clock(5_000)  # a unit whose real-time clock was never set
    source = GpsdSource(clock)
    events: list[wire.Event] = []
    fix = tpv(3, lat=51.5, lon=8.1, speed=1e308, time=FIX_TIME)

    with caplog.at_level(logging.WARNING, logger="onboard.gpsd"):
        source.handle_line(line(fix), events.append)
        source.handle_line(line(fix), events.append)
        assert events == []
        assert source.stats.clock_invalid == 2
        assert source.stats.gnss_clock_offset_ms == gnss_time_ms(fix) - 5_000  # still shown
        clock.now = T0
        source.handle_line(line(fix), events.append)
        clock.now += 1000
        source.handle_line(line(fix), events.append)

    assert events == [
        wire.PositionEvent(t=T0, lat=51.5, lon=8.1),
        wire.PositionEvent(t=T0 + 1000, lat=51.5, lon=8.1),
    ]
    assert (source.stats.speed_dropped, source.stats.malformed) == (2, 0)
    clock_line, speed_line = (r.getMessage() for r in caplog.records)
    assert "clock reads epoch ms 5000" in clock_line
    assert "gpsd speed 1e+308 m/s is not within 0..70.0" in speed_line


def test_json_nested_too_deep_is_a_malformed_line(clock):
    source = GpsdSource(clock)

    source.handle_line(b"[" * 100_000, lambda e: None)

    assert source.stats.malformed == 1


json_numbers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-(10**20), 10**20),
    st.sampled_from([None, True, "51.5", 90, -180, 70, 1e308]),
)


@settings(max_examples=100, deadline=None)
@given(
    mode=st.sampled_from([0, 1, 2, 3, None, "3"]),
    lat=json_numbers,
    lon=json_numbers,
    speed=json_numbers,
    now=st.one_of(st.integers(0, 253_402_300_800_000), st.just(T0)),
)
def test_whatever_gpsd_reports_an_emitted_position_is_valid(mode, lat, lon, speed, now):
    report = {"class": "TPV", "mode": mode, "lat": lat, "lon": lon, "speed": speed}
    events: list[wire.Event] = []
    source = GpsdSource(Clock(now))

    source.handle_line(json.dumps(report).encode(), events.append)  # never raises

    for event in events:
        wire.PositionEvent.model_validate(event.model_dump())
    s = source.stats
    assert s.positions + s.no_fix + s.malformed + s.clock_invalid == s.reports == 1
