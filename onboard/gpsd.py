"""GNSS positions from gpsd: a client of gpsd's JSON protocol over TCP (default port 2947).

The client sends ``?WATCH={"enable":true,"json":true}`` and reads one JSON report per
line. Each ``TPV`` report with a 2D or 3D fix (``mode`` >= 2) becomes a ``position`` event
stamped with the agent's clock at receipt (the clock the sightings use; gpsd's own
``time`` is kept only to report how far the unit's clock is off GNSS time). At most one
position per ``GPSD_MIN_INTERVAL_MS`` is emitted. Lost connections are re-established with
backoff; malformed lines are counted and skipped. See https://gpsd.io/gpsd_json.html.
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
    gnss_clock_offset_ms: int | None = None
    """GNSS time minus the agent's clock at the last fix with a time, in ms."""


def position_from_tpv(report: dict[str, Any], now_ms: int) -> wire.PositionEvent | None:
    """A position event at ``now_ms`` (epoch ms) from one TPV report; ``None`` without a fix.

    Raises ``ValueError`` if the report claims a fix but its coordinates are unusable.
    """
    mode = report.get("mode")
    if not isinstance(mode, int) or mode < 2:
        return None
    lat, lon = _finite(report.get("lat")), _finite(report.get("lon"))
    if lat is None or lon is None:
        raise ValueError(
            f"TPV with mode {mode} but lat={report.get('lat')!r}, lon={report.get('lon')!r}"
        )
    speed = _finite(report.get("speed"))
    return wire.PositionEvent(
        t=now_ms,
        lat=round(lat, POSITION_DECIMALS),
        lon=round(lon, POSITION_DECIMALS),
        speed_mps=round(speed, 2) if speed is not None and speed >= 0 else None,
    )


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
        except ValueError:
            self.stats.malformed += 1
            return
        if not isinstance(report, dict) or report.get("class") != "TPV":
            return
        self.stats.reports += 1
        now = self._clock()
        try:
            event = position_from_tpv(report, now)
        except ValueError:
            self.stats.malformed += 1
            return
        if event is None:
            self.stats.no_fix += 1
            return
        gnss = gnss_time_ms(report)
        if gnss is not None:
            self.stats.gnss_clock_offset_ms = gnss - now
        if self._last_emit_ms is not None and 0 <= now - self._last_emit_ms < self._min_interval_ms:
            return
        self._last_emit_ms = now
        self.stats.positions += 1
        emit(event)
