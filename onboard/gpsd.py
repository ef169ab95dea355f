"""GNSS positions from gpsd: a client of gpsd's JSON protocol over TCP (default port 2947).

The client sends ``?WATCH={"enable":true,"json":true}`` and reads one JSON report per
line. Each ``TPV`` report with a 2D or 3D fix (``mode`` >= 2) becomes a ``position`` event
stamped with the agent's clock at receipt (the clock the sightings use; gpsd's own
``time`` is kept only to report how far the unit's clock is off GNSS time). At most one
position per ``GPSD_MIN_INTERVAL_MS`` is emitted. Lost connections are re-established with
backoff; malformed lines are counted and skipped. See https://gpsd.io/gpsd_json.html.

Only what the upload format takes leaves this module: a fix whose position is not finite or
out of range is dropped; a speed that is negative, not finite or above
``wire.MAX_SPEED_MPS`` is a glitch that says nothing about the position, which is sent
without a speed; while the agent's clock is not set (before 2020) no position is emitted.
Each case is counted in ``GpsdStats`` and logged once per run of it.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
import math
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final

from onboard import wire
from onboard.const import (
    GPSD_DEFAULT_PORT,
    GPSD_MAX_LINE_BYTES,
    GPSD_MIN_INTERVAL_MS,
    GPSD_RECONNECT_MAX_S,
    POSITION_DECIMALS,
)
from onboard.timing import backoff_ms
from onboard.vehicle import EventSink

_log = logging.getLogger(__name__)

WATCH_COMMAND: Final = b'?WATCH={"enable":true,"json":true};\n'


@dataclass(slots=True)
class GpsdStats:
    """Counters since start (not persisted)."""

    connects: int = 0
    reports: int = 0
    positions: int = 0
    no_fix: int = 0
    malformed: int = 0
    """Lines that are not JSON, and fixes without a usable position."""
    speed_dropped: int = 0
    """Positions sent without a speed, as gpsd's was negative, not finite or above 70 m/s."""
    clock_invalid: int = 0
    """Fixes dropped because the agent's clock was outside 2020..2100 (not set)."""
    gnss_clock_offset_ms: int | None = None
    """GNSS time minus the agent's clock at the last fix with a time, in ms."""


def position_from_tpv(report: dict[str, Any], now_ms: int) -> wire.PositionEvent | None:
    """A position event at ``now_ms`` (epoch ms) from one TPV report; ``None`` without a fix.

    ``speed_mps`` is gpsd's speed over ground (m/s), or ``None`` if it is missing, negative,
    not finite or above ``wire.MAX_SPEED_MPS``: a speed glitch does not make the position
    wrong. Raises ``ValueError`` if the report claims a fix but its coordinates are not
    finite numbers within -90..90 and -180..180, or if ``now_ms`` is outside
    ``wire.EARLIEST_EPOCH_MS``..``wire.LATEST_EPOCH_MS`` (a clock not set).
    """
    mode = report.get("mode")
    if not isinstance(mode, int) or mode < 2:
        return None
    lat, lon = _finite(report.get("lat")), _finite(report.get("lon"))
    if lat is None or lon is None or not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise ValueError(
            f"TPV with mode {mode} but lat={report.get('lat')!r}, lon={report.get('lon')!r}:"
            " expected finite degrees within -90..90 and -180..180"
        )
    if not wire.EARLIEST_EPOCH_MS <= now_ms <= wire.LATEST_EPOCH_MS:
        raise ValueError(
            f"now_ms={now_ms}: expected UTC epoch ms {wire.EARLIEST_EPOCH_MS}.."
            f"{wire.LATEST_EPOCH_MS} (2020-01-01..2100-01-01); the clock is not set"
        )
    return wire.PositionEvent(
        t=now_ms,
        lat=round(lat, POSITION_DECIMALS),
        lon=round(lon, POSITION_DECIMALS),
        speed_mps=_speed(report.get("speed")),
    )


def _speed(value: object) -> float | None:
    """gpsd's speed (m/s) as the wire format takes it, or ``None`` if it is unusable."""
    speed = _finite(value)
    if speed is None:
        return None
    speed = round(speed, 2)
    return speed if 0 <= speed <= wire.MAX_SPEED_MPS else None


def gnss_time_ms(report: dict[str, Any]) -> int | None:
    """The TPV's ``time`` (ISO 8601 UTC) as epoch ms, ``None`` if absent or unparsable."""
    value = report.get("time")
    if not isinstance(value, str):
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return None
    return int(parsed.timestamp() * 1000)


def _finite(value: object) -> float | None:
    """``value`` as a float if it is a finite JSON number, else ``None``."""
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


class GpsdSource:
    """A ``VehicleSource`` reading gpsd at ``host:port``; ``clock`` is the agent's (epoch ms)."""

    name = "gpsd"

    def __init__(
        self,
        clock: Callable[[], int],
        host: str = "127.0.0.1",
        port: int = GPSD_DEFAULT_PORT,
        *,
        min_interval_ms: int = GPSD_MIN_INTERVAL_MS,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.host = host
        self.port = port
        self._clock = clock
        self._min_interval_ms = min_interval_ms
        self._sleep = sleep
        self._rng = rng
        self._last_emit_ms: int | None = None
        self._speed_glitch_logged = False
        self._clock_invalid_logged = False
        self.stats = GpsdStats()

    async def run(self, emit: EventSink) -> None:
        """Read gpsd until cancelled, reconnecting with backoff when it goes away."""
        failures = 0
        while True:
            try:
                reader, writer = await asyncio.open_connection(
                    self.host, self.port, limit=GPSD_MAX_LINE_BYTES
                )
            except OSError as exc:
                failures += 1
                delay_s = min(backoff_ms(failures, self._rng()) / 1000, GPSD_RECONNECT_MAX_S)
                if failures == 1:
                    _log.warning("gpsd at %s:%d unreachable: %s", self.host, self.port, exc)
                await self._sleep(delay_s)
                continue
            failures = 0
            self.stats.connects += 1
            _log.info("connected to gpsd at %s:%d", self.host, self.port)
            try:
                writer.write(WATCH_COMMAND)
                await writer.drain()
                await self._read(reader, emit)
            except (OSError, ValueError) as exc:  # ValueError: a line over the limit
                _log.warning("gpsd connection lost: %s", exc)
            finally:
                writer.close()
                with contextlib.suppress(OSError):
                    await writer.wait_closed()
            failures += 1
            await self._sleep(min(backoff_ms(failures, self._rng()) / 1000, GPSD_RECONNECT_MAX_S))

    async def _read(self, reader: asyncio.StreamReader, emit: EventSink) -> None:
        while line := await reader.readline():
            self.handle_line(line, emit)
        _log.warning("gpsd closed the connection")

    def handle_line(self, line: bytes, emit: EventSink) -> None:
        """Process one line of gpsd output (public for tests)."""
        try:
            report = json.loads(line)
        except (ValueError, RecursionError):  # RecursionError: nesting deeper than json allows
            self.stats.malformed += 1
            return
        if not isinstance(report, dict) or report.get("class") != "TPV":
            return
        self.stats.reports += 1
        now = self._clock()
        clock_set = wire.EARLIEST_EPOCH_MS <= now <= wire.LATEST_EPOCH_MS
        try:
            # The fix is judged on its own (at a valid time); the clock is judged below.
            event = position_from_tpv(report, now if clock_set else wire.EARLIEST_EPOCH_MS)
        except ValueError as exc:
            self.stats.malformed += 1
            _log.debug("gpsd fix dropped: %s", exc)
            return
        if event is None:
            self.stats.no_fix += 1
            return
        gnss = gnss_time_ms(report)
        if gnss is not None:
            # Kept while the clock is not set too: it tells the operator how far off it is.
            self.stats.gnss_clock_offset_ms = gnss - now
        if not clock_set:
            self.stats.clock_invalid += 1
            if not self._clock_invalid_logged:
                self._clock_invalid_logged = True
                _log.warning(
                    "gpsd fixes dropped: the clock reads epoch ms %d, before 2020 or after 2100"
                    " (not set); GNSS time is %s (logged again after a fix with the clock set)",
                    now,
                    report.get("time"),
                )
            return
        self._clock_invalid_logged = False
        if self._last_emit_ms is not None and 0 <= now - self._last_emit_ms < self._min_interval_ms:
            return
        self._last_emit_ms = now
        self.stats.positions += 1
        self._note_speed(report, event)
        emit(event)

    def _note_speed(self, report: dict[str, Any], event: wire.PositionEvent) -> None:
        """Count (and log once per run of them) a speed gpsd sent but the event dropped."""
        if event.speed_mps is not None or report.get("speed") is None:
            self._speed_glitch_logged = False
            return
        self.stats.speed_dropped += 1
        if not self._speed_glitch_logged:
            self._speed_glitch_logged = True
            _log.warning(
                "gpsd speed %r m/s is not within 0..%s: positions are sent without a speed"
                " (logged again after a usable speed)",
                report.get("speed"),
                wire.MAX_SPEED_MPS,
            )
