"""The radio's watchdogs: when a silent scanner is restarted or its adapter reset, and when a
beacon that stays down is flagged.

Pure: ``check`` takes the monotonic time (s) and the running count of adverts received, and
returns what to do. BlueZ can stop delivering advertisements without any error; the only
symptom is silence. After ``timeout_s`` of silence the scanner is restarted; if silence goes
on, each further restart waits twice as long (up to ``max_timeout_s``) so an empty bus at
night does not churn the radio, and after ``reset_adapter_after`` restarts in a row without
an advert (0: never) the adapter is power-cycled instead.

The beacon is retried by ``onboard/beacon.py`` on its own; ``BeaconWatchdog`` only says when
it has been down so long that a person should know (iPhones cannot see the bus meanwhile).
"""

from __future__ import annotations

import enum

from onboard.const import (
    BEACON_DOWN_ALERT_S,
    SCANNER_WATCHDOG_MAX_TIMEOUT_S,
    SCANNER_WATCHDOG_TIMEOUT_S,
)


class WatchdogAction(enum.Enum):
    """What the agent should do with its scanner now."""

    NONE = "none"
    RESTART = "restart"
    RESET_ADAPTER = "reset_adapter"
    """Stop, power-cycle the adapter, start."""


class ScannerWatchdog:
    """Tracks advert activity and escalates silence into restarts and adapter resets."""

    def __init__(
        self,
        timeout_s: float = SCANNER_WATCHDOG_TIMEOUT_S,
        reset_adapter_after: int = 0,
        max_timeout_s: float = SCANNER_WATCHDOG_MAX_TIMEOUT_S,
    ) -> None:
        if not timeout_s > 0:
            raise ValueError(f"timeout_s: expected a positive number of seconds, got {timeout_s}")
        if reset_adapter_after < 0:
            raise ValueError(f"reset_adapter_after: expected >= 0, got {reset_adapter_after}")
        self.timeout_s = timeout_s
        self.max_timeout_s = max(max_timeout_s, timeout_s)
        self.reset_adapter_after = reset_adapter_after
        self._current_timeout_s = timeout_s
        self._last_activity_s: float | None = None
        self._last_count = -1
        self.silent_restarts = 0
        """Restarts since the last advert."""

    @property
    def current_timeout_s(self) -> float:
        """Silence (s) that triggers the next action."""
        return self._current_timeout_s

    def started(self, now_s: float, adverts_total: int) -> None:
        """The scanner (re)started at ``now_s``: silence is measured from here."""
        self._last_activity_s = now_s
        self._last_count = adverts_total

    def check(self, now_s: float, adverts_total: int) -> WatchdogAction:
        """What to do at monotonic time ``now_s`` (s), given ``adverts_total`` received so far."""
        if self._last_activity_s is None or adverts_total != self._last_count:
            if self._last_activity_s is not None and self.silent_restarts:
                self.silent_restarts = 0
                self._current_timeout_s = self.timeout_s
            self._last_activity_s = now_s
            self._last_count = adverts_total
            return WatchdogAction.NONE
        if now_s - self._last_activity_s < self._current_timeout_s:
            return WatchdogAction.NONE
        self.silent_restarts += 1
        self._current_timeout_s = min(self._current_timeout_s * 2, self.max_timeout_s)
        self._last_activity_s = now_s
        if self.reset_adapter_after and self.silent_restarts % self.reset_adapter_after == 0:
            return WatchdogAction.RESET_ADAPTER
        return WatchdogAction.RESTART


class BeaconWatchdog:
    """Flags a beacon that has been down (not advertised) for ``alert_after_s`` or more.

    ``check`` takes the monotonic time (s) and whether the beacon is up now; it returns True
    once per outage, when the outage reaches ``alert_after_s``. Down is measured from the
    first ``check`` that saw it down, so a beacon never up counts from the first check.
    """

    def __init__(self, alert_after_s: float = BEACON_DOWN_ALERT_S) -> None:
        if not alert_after_s > 0:
            raise ValueError(
                f"alert_after_s: expected a positive number of seconds, got {alert_after_s}"
            )
        self.alert_after_s = alert_after_s
        self._down_since_s: float | None = None
        self.flagged = False
        """Whether the current outage has been flagged (it lasts ``alert_after_s`` or more)."""

    def down_for_s(self, now_s: float) -> float:
        """Seconds the beacon has been down at ``now_s``; 0 while it is up."""
        return 0.0 if self._down_since_s is None else max(0.0, now_s - self._down_since_s)

    def check(self, now_s: float, up: bool) -> bool:
        """Whether to flag the outage now (True once per outage)."""
        if up:
            self._down_since_s = None
            self.flagged = False
            return False
        if self._down_since_s is None:
            self._down_since_s = now_s
        if self.flagged or self.down_for_s(now_s) < self.alert_after_s:
            return False
        self.flagged = True
        return True
