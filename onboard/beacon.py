"""The bus beacon (docs/contracts.md, Bus beacon): what to advertise now, and keeping it so.

``BeaconKeeper`` advertises the iBeacon of the current token interval through a
``BeaconAdvertiser`` and registers it again at every interval boundary, so the ids rotate
every 10 minutes and only the backend, which holds the vehicle secret too, can map them to
the bus. BlueZ refusing or dropping the beacon is retried with backoff and never raised;
``BeaconWatchdog`` flags an outage that lasts. Neither the vehicle secret nor the beacon key
is ever logged, and the ids are not either (a log would map them to the bus).
"""

from __future__ import annotations

import logging
import random
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from onboard import wire
from onboard.advertiser import AdvertiserError, AdvertiserErrorReason, BeaconAdvertiser
from onboard.const import (
    BEACON_DOWN_ALERT_S,
    BEACON_MEASURED_POWER_DBM,
    BEACON_RETRY_BASE_MS,
    BEACON_RETRY_CAP_MS,
)
from onboard.timing import backoff_ms
from onboard.watchdog import BeaconWatchdog

_log = logging.getLogger(__name__)

OK = "ok"
ERROR = "error"
"""A registration that raised something other than ``AdvertiserError`` (a bug)."""
OUTCOMES = (OK, *(reason.value for reason in AdvertiserErrorReason), ERROR)
"""Every outcome of a registration attempt, as counted in ``BeaconHealth.registrations``."""


@dataclass(frozen=True, slots=True)
class BeaconConfig:
    """The deployment's beacon region and the unit's calibrated power.

    ``measured_power_dbm`` is the RSSI (dBm) a phone sees at 1 m, a signed byte.
    """

    proximity_uuid: uuid.UUID = wire.DEFAULT_PROXIMITY_UUID
    measured_power_dbm: int = BEACON_MEASURED_POWER_DBM

    def __post_init__(self) -> None:
        if not -128 <= self.measured_power_dbm <= 127:
            raise ValueError(
                f"measured_power_dbm: expected -128..127 dBm, got {self.measured_power_dbm}"
            )


@dataclass(frozen=True, slots=True)
class BeaconHealth:
    """The beacon's state for metrics.

    ``interval`` is the token interval advertised (``None`` while down); ``registrations``
    counts attempts by outcome (``OUTCOMES``); ``releases`` counts times BlueZ dropped a
    registered beacon on its own; ``down_s`` is how long it has been down (s);
    ``down_too_long`` is the watchdog's flag.
    """

    advertising: bool
    interval: int | None
    registrations: Mapping[str, int]
    releases: int
    down_s: float
    down_too_long: bool


class BeaconKeeper:
    """Keeps the bus's iBeacon advertised with the current interval's ids, whatever BlueZ does.

    The agent calls ``keep`` about once a second with its data clock (UTC epoch ms, the clock
    the tokens are cut by) and monotonic time (s). The beacon is (re)registered when the
    interval changes, when BlueZ dropped it, or when a failed attempt's backoff
    (``BEACON_RETRY_BASE_MS`` doubling to ``BEACON_RETRY_CAP_MS``, jittered by ``rng``)
    has passed. While the clock is not set (outside 2020..2100) nothing is advertised: the
    ids of a wrong interval would map to no bus.
    """

    def __init__(
        self,
        advertiser: BeaconAdvertiser,
        vehicle_secret: bytes,
        config: BeaconConfig | None = None,
        *,
        rng: Callable[[], float] = random.random,
        down_alert_s: float = BEACON_DOWN_ALERT_S,
    ) -> None:
        self._advertiser = advertiser
        self._key = wire.beacon_key(vehicle_secret)
        self.config = config or BeaconConfig()
        self._rng = rng
        self._watchdog = BeaconWatchdog(down_alert_s)
        self._interval: int | None = None
        """The interval whose beacon BlueZ holds, ``None`` if none."""
        self._failures = 0
        """Failed attempts in a row; drives the backoff."""
        self._retry_at_s: float | None = None
        self._last_reason: str | None = None
        self._clock_was_set = True
        self._registrations = dict.fromkeys(OUTCOMES, 0)
        self._releases = 0

    def __repr__(self) -> str:  # keep the key out of any accidental log line
        return f"BeaconKeeper(interval={self._interval}, config={self.config!r})"

    def beacon_for(self, interval: int) -> wire.IBeacon:
        """The iBeacon the bus advertises in token ``interval``."""
        major, minor = wire.beacon_for_interval(self._key, interval)
        return wire.IBeacon(
            proximity_uuid=self.config.proximity_uuid,
            major=major,
            minor=minor,
            measured_power=self.config.measured_power_dbm,
        )

    async def keep(self, now_ms: int, mono_s: float) -> None:
        """Advertise the beacon of ``now_ms``'s interval if it is not; never raises."""
        await self._keep(now_ms, mono_s)
        if self._watchdog.check(mono_s, self._interval is not None):
            _log.error(
                "the bus beacon has been down for %.0f s (%s); iPhones cannot see this bus",
                self._watchdog.down_for_s(mono_s),
                self._last_reason or "not advertised yet",
            )

    def adapter_reset(self) -> None:
        """The adapter was power-cycled: register again at the next ``keep``."""
        self._interval = None
        self._retry_at_s = None

    async def close(self) -> None:
        """Stop advertising (the agent is shutting down)."""
        self._interval = None
        await self._advertiser.stop()

    def health(self, mono_s: float) -> BeaconHealth:
        """The state at monotonic time ``mono_s`` (s)."""
        return BeaconHealth(
            advertising=self._interval is not None,
            interval=self._interval,
            registrations=dict(self._registrations),
            releases=self._releases,
            down_s=self._watchdog.down_for_s(mono_s),
            down_too_long=self._watchdog.flagged,
        )

    async def _keep(self, now_ms: int, mono_s: float) -> None:
        if not wire.EARLIEST_EPOCH_MS <= now_ms <= wire.LATEST_EPOCH_MS:
            if self._clock_was_set:
                self._clock_was_set = False
                self._last_reason = "the clock is not set"
                _log.warning("not advertising the bus beacon while the clock is not set")
                self._interval = None
                await self._advertiser.stop()
            return
        self._clock_was_set = True
        if self._interval is not None and not self._advertiser.active:
            self._releases += 1
            self._interval = None
            self._retry_at_s = None
            _log.warning("the bus beacon was withdrawn by BlueZ; registering it again")
        interval = wire.interval_of(now_ms)
        if interval == self._interval:
            return
        if self._retry_at_s is not None and mono_s < self._retry_at_s:
            return
        try:
            await self._advertiser.start(self.beacon_for(interval))
        except AdvertiserError as exc:
            self._failed(exc.reason.value, str(exc), mono_s)
        except Exception as exc:
            # A bug must not stop the agent from recording: counted, logged, retried.
            _log.exception("advertising the bus beacon failed unexpectedly")
            self._failed(ERROR, repr(exc), mono_s)
        else:
            self._registrations[OK] += 1
            if self._interval is None:
                _log.info(
                    "advertising the bus beacon (interval %d, region %s)",
                    interval,
                    self.config.proximity_uuid,
                )
            self._interval = interval
            self._failures = 0
            self._retry_at_s = None
            self._last_reason = None

    def _failed(self, outcome: str, detail: str, mono_s: float) -> None:
        self._registrations[outcome] += 1
        self._interval = None
        self._failures += 1
        wait_ms = backoff_ms(
            self._failures, self._rng(), base_ms=BEACON_RETRY_BASE_MS, cap_ms=BEACON_RETRY_CAP_MS
        )
        self._retry_at_s = mono_s + wait_ms / 1000
        # One warning per kind of failure; repeats of the same go to debug.
        level = logging.DEBUG if outcome == self._last_reason else logging.WARNING
        _log.log(
            level,
            "cannot advertise the bus beacon (%s); retrying in %.0f s (attempt %d)",
            detail,
            wait_ms / 1000,
            self._failures,
        )
        self._last_reason = outcome
