"""The bus agent: adverts and vehicle events in, windowed into the outbox, uploaded in batches.

All data time comes from the injected ``clock`` (UTC epoch ms), so the simulator can drive
the agent step by step: set the clock, feed adverts and events, ``await tick()``, and
``await drain()`` at the end. ``run`` is the production loop: it records every tick,
uploads in its own task (a slow backend never delays writing what was heard), supervises
the scanner with a watchdog, runs the vehicle sources and, when given one, keeps the bus
beacon advertised beside the scanning (``onboard/beacon.py``).

Sending is paced twice: after a failure, by the retry backoff; always, by a minimum gap of
``1 / max_batches_per_s`` between sends, so catching up after an outage never floods the
backend. While sends fail, batches are sealed every ``offline_seal_interval_ms`` instead
of every ``upload_interval_ms``, so the backlog is a few large batches, not thousands.

Data is stamped and sealed only while the clock is set (see ``Agent.record``), so nothing the
agent takes in can make a sealed batch invalid and stop the unit from uploading.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import math
import random
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from onboard import wire
from onboard.beacon import BeaconKeeper
from onboard.const import (
    BACKOFF_CAP_MS,
    DRAIN_MAX_ATTEMPTS,
    MAX_BATCH_SIGHTINGS,
    MAX_BATCHES_PER_S,
    MAX_OPEN_ROWS,
    MAX_SENDS_PER_TICK,
    MAX_WINDOW_MS,
    OFFLINE_SEAL_INTERVAL_MS,
    RSSI_MAX_DBM,
    RSSI_MIN_DBM,
    SCANNER_WATCHDOG_TIMEOUT_S,
    SOURCE_RESTART_DELAY_S,
    TICK_INTERVAL_S,
    TX_POWER_MAX_DBM,
    TX_POWER_MIN_DBM,
    UPLOAD_INTERVAL_MS,
    WINDOW_MS,
)
from onboard.health import HealthSnapshot
from onboard.outbox import Outbox, OutboxError, SealedBatch
from onboard.scanner import AdvertisementData, BLEDevice, Scanner, ScannerError
from onboard.timing import SendSpacing, backoff_ms
from onboard.uploader import Uploader, UploadStatus
from onboard.vehicle import VehicleSource
from onboard.watchdog import ScannerWatchdog, WatchdogAction
from onboard.windowing import AddResult, SightingRow, Windower

_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class AgentConfig:
    """What the agent is, how it cuts time and how hard it may push the backend.

    ``window_ms``, ``upload_interval_ms`` and ``offline_seal_interval_ms`` in ms;
    ``service_uuid`` is the 128-bit UUID whose service data carries the bibo payload
    (normalised to lower case). ``heartbeat`` seals an empty batch when an upload interval
    passed with nothing heard, so the backend hears from the bus every interval.
    ``watchdog_timeout_s`` is the advert silence (s) after which ``run`` restarts the
    scanner; after ``reset_adapter_after`` silent restarts in a row (0: never) it also
    power-cycles the adapter.
    """

    vehicle_id: str
    unit_id: str
    window_ms: int = WINDOW_MS
    upload_interval_ms: int = UPLOAD_INTERVAL_MS
    service_uuid: str = wire.SERVICE_UUID
    max_batches_per_s: float = MAX_BATCHES_PER_S
    offline_seal_interval_ms: int = OFFLINE_SEAL_INTERVAL_MS
    heartbeat: bool = False
    max_open_rows: int = MAX_OPEN_ROWS
    watchdog_timeout_s: float = SCANNER_WATCHDOG_TIMEOUT_S
    reset_adapter_after: int = 0

    def __post_init__(self) -> None:
        try:
            canonical = str(uuid.UUID(self.service_uuid))
        except ValueError:
            raise ValueError(
                f"service_uuid: expected a 128-bit UUID such as {wire.SERVICE_UUID!r}, "
                f"got {self.service_uuid!r}"
            ) from None
        object.__setattr__(self, "service_uuid", canonical)
        if not 0 < self.window_ms <= MAX_WINDOW_MS:
            raise ValueError(f"window_ms: expected 1..{MAX_WINDOW_MS} ms, got {self.window_ms}")
        if self.upload_interval_ms < 0:
            raise ValueError(f"upload_interval_ms: expected >= 0 ms, got {self.upload_interval_ms}")
        if self.offline_seal_interval_ms < 0:
            raise ValueError(
                f"offline_seal_interval_ms: expected >= 0 ms, got {self.offline_seal_interval_ms}"
            )
        if not (self.max_batches_per_s > 0 and math.isfinite(self.max_batches_per_s)):
            raise ValueError(
                f"max_batches_per_s: expected a positive rate, got {self.max_batches_per_s}"
            )
        if self.max_open_rows <= 0:
            raise ValueError(f"max_open_rows: expected > 0, got {self.max_open_rows}")
        if not self.watchdog_timeout_s > 0:
            raise ValueError(f"watchdog_timeout_s: expected > 0 s, got {self.watchdog_timeout_s}")
        if self.reset_adapter_after < 0:
            raise ValueError(
                f"reset_adapter_after: expected >= 0 restarts, got {self.reset_adapter_after}"
            )


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
    clock_invalid: int = 0
    """Adverts dropped because the clock was outside 2020..2100 (not set): their time is unknown."""
    window_full: int = 0
    """Adverts refused because windowing memory was full (``max_open_rows``)."""
    advert_errors: int = 0
    """Adverts whose handling raised (a bug or a broken stack); counted, never propagated."""
    events: int = 0
    windows: int = 0
    """Closed windows flushed into the outbox."""
    sighting_rows: int = 0
    rows_lost: int = 0
    """Flushed rows the outbox could not store (disk failure)."""
    batches_sealed: int = 0
    seals_deferred: int = 0
    """Seals that were due but waited because the clock was not set."""
    batches_delivered: int = 0
    batches_quarantined: int = 0
    send_failures: int = 0
    scanner_restarts: int = 0
    adapter_resets: int = 0
    scanner_start_failures: int = 0


@dataclass(frozen=True, slots=True)
class TickResult:
    """What one ``tick`` (or ``drain``) did."""

    sealed: int = 0
    delivered: int = 0
    retried: int = 0
    quarantined: int = 0


class Agent:
    """Turns adverts and vehicle events into delivered batches.

    ``clock`` returns the data time (UTC epoch ms) used for windows, sealing, backoff and
    send pacing; ``rng`` returns floats in [0, 1) for backoff jitter; ``sleep`` (seconds) is
    awaited only inside ``drain``; ``monotonic`` (seconds) times the scanner watchdog.
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
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.outbox = outbox
        self.uploader = uploader
        self._clock = clock
        self._rng = rng
        self._sleep = sleep
        self._monotonic = monotonic
        self._windower = Windower(config.window_ms, config.max_open_rows)
        self._events: list[wire.Event] = []
        self._last_seal_ms: int | None = None
        self._unsealed_rows = 0
        self._failures = 0
        """Consecutive failed sends; drives the backoff and offline sealing."""
        self._retry_at_ms: int | None = None
        """No send before this data time (epoch ms) after a failure."""
        self._spacing = SendSpacing(config.max_batches_per_s)
        self._watchdog = ScannerWatchdog(config.watchdog_timeout_s, config.reset_adapter_after)
        self._sealed = asyncio.Event()
        self._sources: Sequence[VehicleSource] = ()
        self._beacon: BeaconKeeper | None = None
        self._rate_mark: tuple[float, int] | None = None
        self._advert_error_logged = False
        self._clock_was_set = True
        """Whether the clock was within 2020..2100 when last looked at (logs each change)."""
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
        now = self._clock()
        if not wire.EARLIEST_EPOCH_MS <= now <= wire.LATEST_EPOCH_MS:
            self.stats.clock_invalid += 1
            if self._clock_was_set:
                self._clock_is_set(now)  # logs the change
            return
        result = self._windower.add_checked(now, payload.token, adv.rssi, tx)
        if result is AddResult.ADDED:
            self.stats.adverts_windowed += 1
        elif result is AddResult.LATE:
            self.stats.late_adverts += 1
        else:
            self.stats.window_full += 1

    def on_advertisement_safe(self, device: BLEDevice, adv: AdvertisementData) -> None:
        """``on_advertisement`` for a scanner callback: any error is counted, never raised."""
        try:
            self.on_advertisement(device, adv)
        except Exception:
            self.stats.advert_errors += 1
            if not self._advert_error_logged:
                self._advert_error_logged = True
                _log.exception("an advert could not be handled (counted; logged only once)")

    def on_event(self, event: wire.Event) -> None:
        """Queue one vehicle event; it reaches the outbox at the next ``tick``/``record``."""
        self._events.append(event)
        self.stats.events += 1

    # --- periodic work ---------------------------------------------------------------------

    def record(self) -> int:
        """Persist closed windows and queued events, and seal if due; returns batches sealed.

        The clock rule: data is stamped and sealed only with a clock inside the wire format's
        ``wire.EARLIEST_EPOCH_MS``..``wire.LATEST_EPOCH_MS`` (2020..2100), because the backend
        refuses any other time. While the clock is outside (a unit whose real-time clock was
        never set, before GNSS or NTP), adverts are dropped as they arrive and counted in
        ``stats.clock_invalid``: their time is unknown, and a row with an invalid time is never
        kept. What already has a valid time (windows heard before the clock was lost, events
        carrying their own time) is persisted, every window at once, but not sealed, since a
        batch's ``sent_at`` is the clock: it waits in the outbox, durable, and the first
        ``record`` with the clock set seals it. Losing and regaining the clock is logged once
        each; sending already sealed batches goes on meanwhile.

        Never sends and never sleeps. Raises ``OutboxError`` if the outbox cannot write.
        """
        now = self._clock()
        if not self._clock_is_set(now):
            # No advert joins a window while the clock is not set, so every window is closed.
            self._persist(self._windower.flush_all())
            if self._seal_due(now):
                self.stats.seals_deferred += 1
            return 0
        self._persist(self._windower.flush(now))
        if self._seal_due(now):
            return self._seal_all(now, heartbeat=self.config.heartbeat and self._failures == 0)
        return 0

    async def tick(self) -> TickResult:
        """``record``, then send pending batches if neither backoff nor pacing forbids it.

        Sends oldest first until one needs a retry (then backs off on the data clock), at
        most ``MAX_SENDS_PER_TICK`` per call, each at least ``1 / max_batches_per_s`` after
        the previous on the data clock. Never sleeps.
        """
        sealed = self.record()
        result = await self._send_due(MAX_SENDS_PER_TICK)
        return dataclasses.replace(result, sealed=sealed)

    async def drain(self) -> None:
        """Persist everything, seal, and send until nothing is pending or attempts run out.

        Sends are paced by ``sleep`` (``1 / max_batches_per_s`` s between two sends) and
        rounds are separated by ``backoff_ms`` (via ``sleep``), at most
        ``DRAIN_MAX_ATTEMPTS`` rounds; what is still pending then stays in the outbox. Seals
        only with the clock set (see ``record``): otherwise the unbatched data stays too.
        """
        now = self._clock()
        self._persist(self._windower.flush_all())
        if self._clock_is_set(now):
            self._seal_all(now, heartbeat=False)
        else:
            _log.warning(
                "drain: the clock is not set, so nothing more is sealed; the unbatched rows and"
                " events stay in the outbox and are sealed once it is"
            )
        for attempt in range(1, DRAIN_MAX_ATTEMPTS + 1):
            await self._send_paced()
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

    async def run(
        self,
        scanner: Scanner,
        stop: asyncio.Event,
        *,
        sources: Sequence[VehicleSource] = (),
        beacon: BeaconKeeper | None = None,
        on_health: Callable[[HealthSnapshot], None] | None = None,
        tick_interval_s: float = TICK_INTERVAL_S,
    ) -> None:
        """The production loop until ``stop``: scan, record every tick, upload, watch, drain.

        ``sources`` run as tasks feeding ``on_event`` (restarted if they fail); ``beacon``,
        if given, is kept advertised on the same adapter, by the data clock, in a task of
        its own; ``on_health`` receives a ``HealthSnapshot`` every tick. The scanner is
        stopped before draining, so no advert arrives after the last flush; the beacon is
        withdrawn with it. Raises ``ScannerError`` only if scanning cannot start at all.
        """
        self._sources = sources
        self._beacon = beacon
        await scanner.start(self.on_advertisement_safe)
        self._watchdog.started(self._monotonic(), self._adverts_total())
        tasks = [asyncio.create_task(self._upload_loop(tick_interval_s), name="upload")]
        tasks += [
            asyncio.create_task(self._run_source(source), name=source.name) for source in sources
        ]
        if beacon is not None:
            tasks.append(
                asyncio.create_task(self._beacon_loop(beacon, tick_interval_s), name="beacon")
            )
        try:
            while not stop.is_set():
                try:
                    self.record()
                except OutboxError as exc:
                    _log.error("recording failed, will retry next tick: %s", exc)
                await self._supervise_scanner(scanner)
                if on_health is not None:
                    try:
                        on_health(self.health())
                    except OutboxError as exc:
                        _log.error("health snapshot failed: %s", exc)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), tick_interval_s)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await scanner.stop()
            if beacon is not None:
                await beacon.close()
        await self.drain()
        if on_health is not None:
            on_health(self.health())

    # --- health ----------------------------------------------------------------------------

    def health(self) -> HealthSnapshot:
        """A snapshot for metrics; ``adverts_per_s`` is the rate since the previous call."""
        now = self._clock()
        mono = self._monotonic()
        total = self._adverts_total()
        rate = 0.0
        if self._rate_mark is not None and mono > self._rate_mark[0]:
            rate = (total - self._rate_mark[1]) / (mono - self._rate_mark[0])
        self._rate_mark = (mono, total)
        s = self.stats
        adverts = {
            "windowed": s.adverts_windowed,
            "ignored": s.adverts_ignored,
            "rssi_out_of_range": s.rssi_out_of_range,
            "late": s.late_adverts,
            "clock_invalid": s.clock_invalid,
            "window_full": s.window_full,
            "error": s.advert_errors,
        }
        for reason, count in s.malformed.items():
            adverts[f"malformed_{reason.value}"] = count
        sources: dict[str, dict[str, int]] = {}
        for source in self._sources:
            counters = getattr(source, "stats", None)
            if dataclasses.is_dataclass(counters) and not isinstance(counters, type):
                values = dataclasses.asdict(counters)
                sources[source.name] = {
                    k: v
                    for k, v in values.items()
                    if isinstance(v, int) and not isinstance(v, bool)
                }
        return HealthSnapshot(
            t_ms=now,
            adverts=adverts,
            adverts_per_s=rate,
            open_rows=self._windower.open_rows,
            events=s.events,
            outbox=self.outbox.health(now),
            uploads={
                "delivered": s.batches_delivered,
                "retry": s.send_failures,
                "quarantined": s.batches_quarantined,
            },
            last_upload_ms=self.uploader.last_success_ms,
            clock_offset_ms=self.uploader.clock_offset_ms,
            scanner_restarts=s.scanner_restarts,
            adapter_resets=s.adapter_resets,
            sources=sources,
            beacon=None if self._beacon is None else self._beacon.health(mono),
        )

    # --- internals: recording ------------------------------------------------------------

    def _adverts_total(self) -> int:
        return self.stats.adverts_seen + self.stats.adverts_ignored

    def _clock_is_set(self, now: int) -> bool:
        """Whether ``now`` (epoch ms) can stamp and seal data (see ``record``); logs changes."""
        is_set = wire.EARLIEST_EPOCH_MS <= now <= wire.LATEST_EPOCH_MS
        if is_set != self._clock_was_set:
            self._clock_was_set = is_set
            if is_set:
                _log.warning(
                    "the clock is set again (epoch ms %d): recording and sealing resume;"
                    " %d adverts were dropped while it was not",
                    now,
                    self.stats.clock_invalid,
                )
            else:
                _log.warning(
                    "the clock reads epoch ms %d, outside %d..%d (2020-01-01..2100-01-01): it is"
                    " not set (no real-time clock, no GNSS or NTP yet); adverts are dropped and"
                    " nothing is sealed until it is",
                    now,
                    wire.EARLIEST_EPOCH_MS,
                    wire.LATEST_EPOCH_MS,
                )
        return is_set

    def _persist(self, rows: list[SightingRow]) -> None:
        """Write flushed rows and queued events to the outbox, in one transaction.

        If the write fails the events stay queued for the next try; the rows are lost
        (counted in ``rows_lost``): holding them would only grow memory on a failing disk. A
        row or event the backend would refuse is dropped by the outbox (counted there).
        """
        if not rows and not self._events:
            return
        try:
            report = self.outbox.add(rows, self._events)
        except OutboxError:
            self.stats.rows_lost += len(rows)
            raise
        self._events = []
        if report.sightings:
            self.stats.sighting_rows += report.sightings
            self.stats.windows += len({r.t for r in rows})
            self._unsealed_rows += report.sightings

    def _seal_due(self, now: int) -> bool:
        if self._last_seal_ms is None:
            return True
        elapsed = now - self._last_seal_ms
        if elapsed < 0:
            # A clock stepped backwards must not stall sealing until it catches up again.
            return True
        interval = self.config.upload_interval_ms
        if self._failures > 0:
            interval = max(interval, self.config.offline_seal_interval_ms)
        return elapsed >= interval or self._unsealed_rows >= MAX_BATCH_SIGHTINGS

    def _seal_all(self, now: int, *, heartbeat: bool) -> int:
        """Seal everything unbatched (several batches if over the row limits)."""
        self._last_seal_ms = now
        self._unsealed_rows = 0
        sealed = 0
        while self.outbox.seal(now, self.config.window_ms) is not None:
            sealed += 1
        if sealed == 0 and heartbeat:
            self.outbox.seal(now, self.config.window_ms, allow_empty=True)
            sealed = 1
        self.stats.batches_sealed += sealed
        if sealed:
            self._sealed.set()
        return sealed

    # --- internals: sending ----------------------------------------------------------------

    def _send_delay_ms(self, now: int) -> float:
        """How long (data-clock ms) until a send is allowed; 0 if now."""
        delay = 0.0
        if self._retry_at_ms is not None:
            if self._retry_at_ms - now > BACKOFF_CAP_MS:
                # The clock stepped backwards past the backoff: do not wait for it to catch up.
                self._retry_at_ms = now
            delay = max(delay, self._retry_at_ms - now)
        if not self._spacing.ready(now):
            ready_at = self._spacing.ready_at()
            if ready_at is not None:
                delay = max(delay, ready_at - now)
        return delay

    async def _send_due(self, limit: int) -> TickResult:
        """Send pending batches oldest first while backoff and pacing allow (tick mode)."""
        delivered = quarantined = 0
        for _ in range(limit):
            if self._send_delay_ms(self._clock()) > 0:
                break
            batches = self.outbox.pending(1)
            if not batches:
                break
            status = await self._send(batches[0])
            if status is UploadStatus.DELIVERED:
                delivered += 1
            elif status is UploadStatus.QUARANTINE:
                quarantined += 1
            else:
                return TickResult(delivered=delivered, retried=1, quarantined=quarantined)
        return TickResult(delivered=delivered, quarantined=quarantined)

    async def _send_paced(self) -> None:
        """Send every pending batch, ``sleep``-paced, until one needs a retry (drain mode)."""
        first = True
        while batches := self.outbox.pending(1):
            if not first:
                await self._sleep(self._spacing.gap_ms / 1000)
            first = False
            if await self._send(batches[0]) is UploadStatus.RETRY:
                return

    async def _upload_loop(self, tick_interval_s: float) -> None:
        """Send whenever something is pending and backoff and pacing allow (run mode).

        Nothing ends this loop but cancellation: an outbox error or a bug in one send is
        logged and the loop carries on after a tick, since a dead upload task would
        silently fill the disk.
        """
        while True:
            delay_ms = self._send_delay_ms(self._clock())
            if delay_ms > 0:
                await asyncio.sleep(delay_ms / 1000)
                continue
            try:
                batches = self.outbox.pending(1)
                if batches:
                    await self._send(batches[0])
                    continue
            except OutboxError as exc:
                _log.error("outbox error while uploading, will retry: %s", exc)
                await asyncio.sleep(tick_interval_s)
                continue
            except Exception:
                _log.exception("upload failed unexpectedly, will retry")
                await asyncio.sleep(tick_interval_s)
                continue
            self._sealed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._sealed.wait(), tick_interval_s)

    async def _send(self, batch: SealedBatch) -> UploadStatus:
        """Send one batch and settle it in the outbox; returns what happened."""
        if batch.vehicle_id != self.uploader.vehicle_id:
            # Sealed before the unit moved to another bus; we cannot sign for that vehicle.
            self.outbox.quarantine(
                batch.seq,
                f"sealed for vehicle {batch.vehicle_id!r}, unit is now "
                f"{self.uploader.vehicle_id!r}",
            )
            self.stats.batches_quarantined += 1
            return UploadStatus.QUARANTINE
        if not batch.offered:
            self.outbox.mark_offered(batch.seq)
        self._spacing.sent(self._clock())
        outcome = await self.uploader.send_stored(batch.stored, batch.encoding)
        if outcome.status is UploadStatus.DELIVERED:
            self.outbox.mark_delivered(batch.seq, self._clock())
            self.stats.batches_delivered += 1
            self._failures = 0
            self._retry_at_ms = None
        elif outcome.status is UploadStatus.QUARANTINE:
            self.outbox.quarantine(batch.seq, outcome.detail)
            self.stats.batches_quarantined += 1
        else:
            self.outbox.record_failure(batch.seq, outcome.detail)
            self._failures += 1
            wait = backoff_ms(self._failures, self._rng())
            if outcome.retry_after_ms is not None:
                # The server knows its load better than our backoff; within our cap.
                wait = max(wait, min(outcome.retry_after_ms, BACKOFF_CAP_MS))
            self._retry_at_ms = self._clock() + wait
            self.stats.send_failures += 1
        return outcome.status

    # --- internals: scanner and sources --------------------------------------------------

    async def _supervise_scanner(self, scanner: Scanner) -> None:
        """Restart a silent scanner (and reset its adapter) as the watchdog decides."""
        silence_s = self._watchdog.current_timeout_s
        action = self._watchdog.check(self._monotonic(), self._adverts_total())
        if action is WatchdogAction.NONE:
            return
        self.stats.scanner_restarts += 1
        _log.warning(
            "no advert for %.0f s: restarting the scanner%s (restart %d in a row)",
            silence_s,
            " and power-cycling the adapter" if action is WatchdogAction.RESET_ADAPTER else "",
            self._watchdog.silent_restarts,
        )
        await scanner.stop()
        if action is WatchdogAction.RESET_ADAPTER:
            self.stats.adapter_resets += 1
            try:
                await scanner.reset_adapter()
            except ScannerError as exc:
                _log.error("adapter reset failed: %s", exc)
            if self._beacon is not None:
                # Powering the adapter off drops its advertisements too.
                self._beacon.adapter_reset()
        try:
            await scanner.start(self.on_advertisement_safe)
        except ScannerError as exc:
            self.stats.scanner_start_failures += 1
            _log.error("scanner restart failed, the watchdog will try again: %s", exc)
        self._watchdog.started(self._monotonic(), self._adverts_total())

    async def _beacon_loop(self, beacon: BeaconKeeper, tick_interval_s: float) -> None:
        """Keep the beacon advertised every tick; a task of its own, so a BlueZ that answers
        slowly never delays recording (``keep`` never raises)."""
        while True:
            await beacon.keep(self._clock(), self._monotonic())
            await asyncio.sleep(tick_interval_s)

    async def _run_source(self, source: VehicleSource) -> None:
        """Run one vehicle source, starting it again if it ends or fails."""
        while True:
            try:
                await source.run(self.on_event)
                _log.warning("vehicle source %s ended; starting it again", source.name)
            except Exception:
                _log.exception(
                    "vehicle source %s failed; starting it again in %.0f s",
                    source.name,
                    SOURCE_RESTART_DELAY_S,
                )
            await asyncio.sleep(SOURCE_RESTART_DELAY_S)
