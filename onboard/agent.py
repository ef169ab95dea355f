"""The bus agent: adverts and vehicle events in, windowed into the outbox, uploaded in batches.

All time comes from the injected ``clock`` (the data time, UTC epoch ms), so the simulator
can drive the agent step by step: set the clock, feed adverts and events, ``await tick()``,
and ``await drain()`` at the end. Nothing here sleeps except ``run`` and ``drain``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from onboard import wire
from onboard.const import (
    BACKOFF_CAP_MS,
    DRAIN_MAX_ATTEMPTS,
    MAX_SENDS_PER_TICK,
    RSSI_MAX_DBM,
    RSSI_MIN_DBM,
    TICK_INTERVAL_S,
    TX_POWER_MAX_DBM,
    TX_POWER_MIN_DBM,
    UPLOAD_INTERVAL_MS,
    WINDOW_MS,
)
from onboard.outbox import Outbox
from onboard.scanner import AdvertisementData, BLEDevice, Scanner
from onboard.uploader import Uploader, UploadStatus, backoff_ms
from onboard.windowing import SightingRow, Windower

_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class AgentConfig:
    """What the agent is and how it cuts time.

    ``window_ms`` and ``upload_interval_ms`` in ms; ``service_uuid`` is the 128-bit UUID
    whose service data carries the bibo payload (normalised to lower case).
    """

    vehicle_id: str
    unit_id: str
    window_ms: int = WINDOW_MS
    upload_interval_ms: int = UPLOAD_INTERVAL_MS
    service_uuid: str = wire.SERVICE_UUID

    def __post_init__(self) -> None:
        try:
            canonical = str(uuid.UUID(self.service_uuid))
        except ValueError:
            raise ValueError(
                f"service_uuid: expected a 128-bit UUID such as {wire.SERVICE_UUID!r}, "
                f"got {self.service_uuid!r}"
            ) from None
        object.__setattr__(self, "service_uuid", canonical)
        if self.window_ms <= 0:
            raise ValueError(f"window_ms: expected > 0 ms, got {self.window_ms}")
        if self.upload_interval_ms < 0:
            raise ValueError(f"upload_interval_ms: expected >= 0 ms, got {self.upload_interval_ms}")


@dataclass(slots=True)
class AgentStats:
    """Counters since the agent started (not persisted)."""

    adverts_seen: int = 0
    """Adverts carrying our service UUID's service data (well-formed or not)."""
    adverts_ignored: int = 0
    """Adverts without service data for our UUID (other devices)."""
    adverts_windowed: int = 0
    malformed: dict[wire.PayloadError, int] = field(
        default_factory=lambda: dict.fromkeys(wire.PayloadError, 0)
    )
    rssi_out_of_range: int = 0
    """Adverts dropped because the stack reported no usable RSSI (e.g. BlueZ's 127)."""
    tx_out_of_range: int = 0
    """Payloads whose tx power the wire format cannot carry (-128); stored with tx null."""
    late_adverts: int = 0
    """Adverts for a window already flushed (clock stepped back); dropped."""
    events: int = 0
    windows: int = 0
    """Closed windows flushed into the outbox."""
    sighting_rows: int = 0
    batches_sealed: int = 0
    batches_delivered: int = 0
    batches_quarantined: int = 0
    send_failures: int = 0


@dataclass(frozen=True, slots=True)
class TickResult:
    """What one ``tick`` (or ``drain``) did."""

    sealed: int = 0
    delivered: int = 0
    retried: int = 0
    quarantined: int = 0


class Agent:
    """Turns adverts and vehicle events into delivered batches.

    ``clock`` returns the data time (UTC epoch ms) used for windows, sealing and backoff;
    ``rng`` returns floats in [0, 1) for backoff jitter; ``sleep`` (seconds) is awaited only
    between ``drain`` rounds.
    """

    def __init__(
        self,
        config: AgentConfig,
        outbox: Outbox,
        uploader: Uploader,
        clock: Callable[[], int],
        *,
        rng: Callable[[], float] = random.random,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.config = config
        self.outbox = outbox
        self.uploader = uploader
        self._clock = clock
        self._rng = rng
        self._sleep = sleep
        self._windower = Windower(config.window_ms)
        self._events: list[wire.Event] = []
        self._last_seal_ms: int | None = None
        self._failures = 0
        """Consecutive failed sends; drives the backoff."""
        self._retry_at_ms: int | None = None
        """No send before this data time (epoch ms) after a failure."""
        self.stats = AgentStats()

    # --- input (synchronous, cheap; called from the scanner callback) --------------------

    def on_advertisement(self, device: BLEDevice, adv: AdvertisementData) -> None:
        """Window one received advert; foreign or malformed adverts are only counted."""
        data = adv.service_data.get(self.config.service_uuid)
        if data is None:
            self.stats.adverts_ignored += 1
            return
        self.stats.adverts_seen += 1
        payload = wire.decode_payload(data)
        if isinstance(payload, wire.PayloadError):
            self.stats.malformed[payload] += 1
            return
        if not RSSI_MIN_DBM <= adv.rssi <= RSSI_MAX_DBM:
            self.stats.rssi_out_of_range += 1
            return
        tx: int | None = payload.tx_power
        if not TX_POWER_MIN_DBM <= payload.tx_power <= TX_POWER_MAX_DBM:
            self.stats.tx_out_of_range += 1
            tx = None
        if self._windower.add(self._clock(), payload.token, adv.rssi, tx):
            self.stats.adverts_windowed += 1
        else:
            self.stats.late_adverts += 1

    def on_event(self, event: wire.Event) -> None:
        """Queue one vehicle event; it reaches the outbox at the next ``tick``."""
        self._events.append(event)
        self.stats.events += 1

    # --- periodic work ---------------------------------------------------------------------

    async def tick(self) -> TickResult:
        """Persist closed windows and events, seal if due, send pending batches if not backing off.

        Sends oldest first until one needs a retry (then backs off on the data clock), at
        most ``MAX_SENDS_PER_TICK`` per call. Never sleeps.
        """
        now = self._clock()
        self._persist(self._windower.flush(now))
        sealed = 0
        if self._seal_due(now):
            sealed = self._seal_all(now)
        if self._backing_off(now):
            return TickResult(sealed=sealed)
        result = await self._send_pending(MAX_SENDS_PER_TICK)
        return TickResult(sealed, result.delivered, result.retried, result.quarantined)

    async def drain(self) -> None:
        """Persist everything, seal, and send until nothing is pending or attempts run out.

        Waits ``backoff_ms`` (real seconds, via ``sleep``) between rounds, at most
        ``DRAIN_MAX_ATTEMPTS`` rounds; what is still pending then stays in the outbox.
        """
        now = self._clock()
        self._persist(self._windower.flush_all())
        self._seal_all(now)
        for attempt in range(1, DRAIN_MAX_ATTEMPTS + 1):
            await self._send_pending(None)
            if self.outbox.pending_count() == 0:
                self._retry_at_ms = None
                return
            if attempt < DRAIN_MAX_ATTEMPTS:
                await self._sleep(backoff_ms(attempt, self._rng()) / 1000)
        _log.warning(
            "drain gave up after %d rounds; %d batches stay in the outbox",
            DRAIN_MAX_ATTEMPTS,
            self.outbox.pending_count(),
        )

    async def run(self, scanner: Scanner, stop: asyncio.Event) -> None:
        """The production loop: scan, tick every ``TICK_INTERVAL_S`` until ``stop``, drain.

        The scanner is stopped before draining, so no advert arrives after the last flush.
        """
        await scanner.start(self.on_advertisement)
        try:
            while not stop.is_set():
                await self.tick()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), TICK_INTERVAL_S)
        finally:
            await scanner.stop()
        await self.drain()

    # --- internals -----------------------------------------------------------------------

    def _persist(self, rows: list[SightingRow]) -> None:
        """Write flushed rows and queued events to the outbox."""
        if rows:
            self.outbox.add_sightings(rows)
            self.stats.sighting_rows += len(rows)
            self.stats.windows += len({r.t for r in rows})
        if self._events:
            self.outbox.add_events(self._events)
            self._events = []

    def _backing_off(self, now: int) -> bool:
        if self._retry_at_ms is None:
            return False
        if self._retry_at_ms - now > BACKOFF_CAP_MS:
            # The clock stepped backwards past the backoff: do not wait for it to catch up.
            self._retry_at_ms = now
        return now < self._retry_at_ms

    def _seal_due(self, now: int) -> bool:
        if self._last_seal_ms is None:
            return True
        elapsed = now - self._last_seal_ms
        # A clock stepped backwards must not stall sealing until it catches up again.
        return elapsed >= self.config.upload_interval_ms or elapsed < 0

    def _seal_all(self, now: int) -> int:
        """Seal everything unbatched (several batches if over the row limits)."""
        self._last_seal_ms = now
        sealed = 0
        while self.outbox.seal(now, self.config.window_ms) is not None:
            sealed += 1
        self.stats.batches_sealed += sealed
        return sealed

    async def _send_pending(self, limit: int | None) -> TickResult:
        """Send pending batches oldest first; stop at the first that needs a retry."""
        delivered = quarantined = 0
        for batch in self.outbox.pending(limit):
            if batch.vehicle_id != self.uploader.vehicle_id:
                # Sealed before the unit moved to another bus; we cannot sign for that vehicle.
                self.outbox.quarantine(
                    batch.seq,
                    f"sealed for vehicle {batch.vehicle_id!r}, unit is now "
                    f"{self.uploader.vehicle_id!r}",
                )
                quarantined += 1
                continue
            outcome = await self.uploader.send(batch.body)
            if outcome.status is UploadStatus.DELIVERED:
                self.outbox.mark_delivered(batch.seq)
                delivered += 1
                self._failures = 0
                self._retry_at_ms = None
            elif outcome.status is UploadStatus.QUARANTINE:
                self.outbox.quarantine(batch.seq, outcome.detail)
                quarantined += 1
            else:
                self.outbox.record_failure(batch.seq, outcome.detail)
                self._failures += 1
                self._retry_at_ms = self._clock() + backoff_ms(self._failures, self._rng())
                self.stats.send_failures += 1
                self.stats.batches_delivered += delivered
                self.stats.batches_quarantined += quarantined
                return TickResult(delivered=delivered, retried=1, quarantined=quarantined)
        self.stats.batches_delivered += delivered
        self.stats.batches_quarantined += quarantined
        return TickResult(delivered=delivered, quarantined=quarantined)
