"""Pure windowing of advertisements into per-token sighting rows (one row per token and window).

Only windows that are still open are held in memory; a closed window is flushed once and
forgotten, and adverts arriving for an already flushed window are refused (and counted by
the caller) rather than emitted as a second row for the same window. Memory is bounded by
``max_open_rows`` (window, token) rows: beyond it a *new* row is refused, existing rows
still count their adverts.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from onboard.const import MAX_OPEN_ROWS, WINDOW_MS


@dataclass(frozen=True, slots=True)
class SightingRow:
    """Token ``token`` heard ``n`` times in the window starting at ``t``.

    ``t`` in UTC epoch ms (window start), ``rssi`` the strongest RSSI in dBm, ``tx`` the
    last advertised calibrated tx power in dBm at 1 m, or ``None`` if never advertised.
    """

    t: int
    token: bytes
    rssi: int
    n: int
    tx: int | None


@dataclass(slots=True)
class _Accumulator:
    rssi: int
    n: int
    tx: int | None


class AddResult(enum.Enum):
    """What ``Windower.add`` did with one advert."""

    ADDED = "added"
    LATE = "late"
    """Its window was already flushed."""
    FULL = "full"
    """It would open a new row beyond ``max_open_rows``."""


class Windower:
    """Accumulates adverts into fixed windows of ``window_ms`` ms aligned to the epoch."""

    def __init__(self, window_ms: int = WINDOW_MS, max_open_rows: int = MAX_OPEN_ROWS) -> None:
        if window_ms <= 0:
            raise ValueError(f"window_ms: expected a positive number of ms, got {window_ms}")
        if max_open_rows <= 0:
            raise ValueError(f"max_open_rows: expected a positive count, got {max_open_rows}")
        self.window_ms = window_ms
        self.max_open_rows = max_open_rows
        self._windows: dict[int, dict[bytes, _Accumulator]] = {}
        self._open_rows = 0
        self._flushed_until = 0
        """Every window ending at or before this epoch ms has been flushed."""

    @property
    def open_windows(self) -> int:
        """Number of windows held in memory."""
        return len(self._windows)

    @property
    def open_rows(self) -> int:
        """Number of (window, token) rows held in memory."""
        return self._open_rows

    def window_start(self, t_ms: int) -> int:
        """Start (epoch ms) of the window containing ``t_ms``."""
        return t_ms - t_ms % self.window_ms

    def add(self, t_ms: int, token: bytes, rssi: int, tx: int | None) -> bool:
        """Count one advert heard at ``t_ms`` (epoch ms) with ``rssi`` dBm and tx power ``tx``.

        Returns ``False`` (and drops the advert) if its window was already flushed, which
        happens only when the clock steps backwards or a callback arrives very late, or if
        the row is new and memory is full; ``add_checked`` says which.
        """
        return self.add_checked(t_ms, token, rssi, tx) is AddResult.ADDED

    def add_checked(self, t_ms: int, token: bytes, rssi: int, tx: int | None) -> AddResult:
        """``add``, saying why an advert was refused."""
        start = t_ms - t_ms % self.window_ms
        window = self._windows.get(start)
        if window is None:
            if start + self.window_ms <= self._flushed_until:
                return AddResult.LATE
            if self._open_rows >= self.max_open_rows:
                return AddResult.FULL
            window = self._windows[start] = {}
        acc = window.get(token)
        if acc is None:
            if self._open_rows >= self.max_open_rows:
                return AddResult.FULL
            window[token] = _Accumulator(rssi=rssi, n=1, tx=tx)
            self._open_rows += 1
            return AddResult.ADDED
        acc.n += 1
        if rssi > acc.rssi:
            acc.rssi = rssi
        if tx is not None:
            acc.tx = tx
        return AddResult.ADDED

    def flush(self, now_ms: int) -> list[SightingRow]:
        """Return and forget every window closed at ``now_ms`` (start + window_ms <= now_ms).

        Rows are sorted by ``(t, token)``.
        """
        self._flushed_until = max(self._flushed_until, now_ms)
        closed = sorted(s for s in self._windows if s + self.window_ms <= now_ms)
        return self._take(closed)

    def flush_all(self) -> list[SightingRow]:
        """Return and forget every window, open or not (at shutdown), sorted by ``(t, token)``."""
        starts = sorted(self._windows)
        if starts:
            self._flushed_until = max(self._flushed_until, starts[-1] + self.window_ms)
        return self._take(starts)

    def _take(self, starts: list[int]) -> list[SightingRow]:
        rows: list[SightingRow] = []
        for start in starts:
            window = self._windows.pop(start)
            self._open_rows -= len(window)
            rows.extend(
                SightingRow(t=start, token=token, rssi=acc.rssi, n=acc.n, tx=acc.tx)
                for token, acc in sorted(window.items())
            )
        return rows
