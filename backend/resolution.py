"""Token resolution: which registered device advertised a 10-minute token (docs/contracts.md,
Token resolution).

Only the backend holds the device keys, so only here can tokens be linked to a device. The
token of every device is computed per interval on demand and kept for a few intervals, so
incremental reconciliation does not recompute a whole day's tokens on every upload.
"""

from __future__ import annotations

import itertools
from collections import OrderedDict
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from backend.const import TOKEN_CACHE_INTERVALS, TOKEN_RESOLUTION_INTERVALS
from onboard.wire import TOKEN_INTERVAL_S, token_for_interval

INTERVAL_MS = TOKEN_INTERVAL_S * 1000
UNRESOLVED = -1


class TokenResolver:
    """Maps (token, time) to an index into ``devices`` (a sequence of ``(device_id, key)``).

    A token resolves only when its interval is one of the sighting's own interval and its
    neighbours: phone clocks are off by up to 60 s, so near a boundary either token is heard.
    """

    def __init__(
        self, devices: Sequence[tuple[str, bytes]], cache_intervals: int = TOKEN_CACHE_INTERVALS
    ) -> None:
        self.device_ids = [device_id for device_id, _ in devices]
        self._keys = [key for _, key in devices]
        self._cache: OrderedDict[int, list[bytes]] = OrderedDict()
        self._cache_size = cache_intervals
        self._known: dict[bytes, tuple[int, int]] = {}
        """Every cached token -> (device index, interval)."""

    def tokens_of(self, interval: int) -> dict[bytes, int]:
        """Every device's token for ``interval`` -> device index (cached, LRU)."""
        self._ensure(interval)
        return {token: self._known[token][0] for token in self._cache[interval]}

    def _ensure(self, interval: int) -> None:
        if interval in self._cache:
            self._cache.move_to_end(interval)
            return
        tokens = [token_for_interval(key, interval) for key in self._keys]
        for i, token in enumerate(tokens):
            self._known[token] = (i, interval)
        self._cache[interval] = tokens
        while len(self._cache) > self._cache_size:
            _, old = self._cache.popitem(last=False)
            for token in old:
                self._known.pop(token, None)

    def resolve(
        self, t_ms: npt.NDArray[np.int64], tokens: Sequence[bytes]
    ) -> npt.NDArray[np.int32]:
        """Device index per sighting, or ``UNRESOLVED`` (a stranger, or a token out of time).

        Each distinct token is looked up once; rows best come sorted by time, so the
        intervals' tokens are computed in order.
        """
        n = len(tokens)
        out = np.full(n, UNRESOLVED, dtype=np.int32)
        if n == 0:
            return out
        own = (t_ms // INTERVAL_MS).astype(np.int64)
        packed = np.frombuffer(b"".join(tokens), dtype="S16")
        order = np.argsort(own, kind="stable")
        bounds = np.flatnonzero(np.r_[True, np.diff(own[order]) != 0, True])
        lo_gap, hi_gap = min(TOKEN_RESOLUTION_INTERVALS), max(TOKEN_RESOLUTION_INTERVALS)
        # Interval by interval, so only the neighbouring intervals must be in the cache.
        for a, b in itertools.pairwise(bounds):
            rows = order[a:b]
            interval = int(own[rows[0]])
            for d in TOKEN_RESOLUTION_INTERVALS:
                self._ensure(interval + d)
            unique, inverse = np.unique(packed[rows], return_inverse=True)
            found = np.full(len(unique), UNRESOLVED, dtype=np.int32)
            for u, token in enumerate(unique.tolist()):
                hit = self._known.get(token.ljust(16, b"\0"))
                if hit is not None and lo_gap <= hit[1] - interval <= hi_gap:
                    found[u] = hit[0]
            out[rows] = found[inverse]
        return out
        own = (t_ms // INTERVAL_MS).astype(np.int64)
        for interval in np.unique(own):
            for d in TOKEN_RESOLUTION_INTERVALS:
                self._ensure(int(interval) + d)
        unique, inverse = np.unique(
            np.frombuffer(b"".join(tokens), dtype="S16"), return_inverse=True
        )
        device = np.full(len(unique), UNRESOLVED, dtype=np.int32)
        interval = np.zeros(len(unique), dtype=np.int64)
        for u, token in enumerate(unique.tolist()):
            hit = self._known.get(token.ljust(16, b"\0"))
            if hit is not None:
                device[u], interval[u] = hit
        dev = device[inverse]
        gap = interval[inverse] - own
        in_time = (gap >= min(TOKEN_RESOLUTION_INTERVALS)) & (
            gap <= max(TOKEN_RESOLUTION_INTERVALS)
        )
        out[(dev != UNRESOLVED) & in_time] = dev[(dev != UNRESOLVED) & in_time]
        return out
