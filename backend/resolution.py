"""Token resolution: which registered device advertised a 10-minute token (DESIGN §2).

Only the backend holds the device keys, so only here can tokens be linked to a device. The
token of every device is computed per interval on demand and kept for a few intervals, so
incremental reconciliation does not recompute a whole day's tokens on every upload.
"""

from __future__ import annotations

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
        self._cache: OrderedDict[int, dict[bytes, int]] = OrderedDict()
        self._cache_size = cache_intervals

    def tokens_of(self, interval: int) -> dict[bytes, int]:
        """Every device's token for ``interval`` (cached, least recently used dropped)."""
        table = self._cache.get(interval)
        if table is None:
            table = {token_for_interval(key, interval): i for i, key in enumerate(self._keys)}
            self._cache[interval] = table
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(interval)
        return table

    def resolve(
        self, t_ms: npt.NDArray[np.int64], tokens: Sequence[bytes]
    ) -> npt.NDArray[np.int32]:
        """Device index per sighting, or ``UNRESOLVED`` (a stranger, or a token out of time).

        Rows are best given sorted by time: intervals are then computed once each.
        """
        out = np.full(len(tokens), UNRESOLVED, dtype=np.int32)
        own = (t_ms // INTERVAL_MS).astype(np.int64)
        for interval in np.unique(own):
            rows = np.flatnonzero(own == interval)
            tables = [self.tokens_of(int(interval) + d) for d in TOKEN_RESOLUTION_INTERVALS]
            for row in rows:
                token = tokens[int(row)]
                for table in tables:
                    hit = table.get(token)
                    if hit is not None:
                        out[row] = hit
                        break
        return out
