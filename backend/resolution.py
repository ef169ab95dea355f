"""Token resolution: which registered device advertised a 10-minute token (DESIGN §2).

Only the backend holds the device keys, so only here can tokens be linked to a device.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from backend.const import TOKEN_RESOLUTION_INTERVALS
from onboard.wire import TOKEN_INTERVAL_S, token_for_interval

_INTERVAL_MS = TOKEN_INTERVAL_S * 1000
UNRESOLVED = -1


class TokenResolver:
    """Maps (token, time) to a device index for a range of token intervals.

    ``devices`` is a sequence of ``(device_id, device_key)``; resolution returns indexes into
    it. A token resolves only when its interval is within one of the sighting's own (phones'
    clocks are off by up to 60 s, so the neighbour intervals must be accepted).
    """

    def __init__(
        self, devices: Sequence[tuple[str, bytes]], first_interval: int, last_interval: int
    ) -> None:
        self.device_ids = [device_id for device_id, _ in devices]
        lo = first_interval + min(TOKEN_RESOLUTION_INTERVALS)
        hi = last_interval + max(TOKEN_RESOLUTION_INTERVALS)
        self._table: dict[bytes, tuple[int, int]] = {}
        for index, (_, key) in enumerate(devices):
            for interval in range(lo, hi + 1):
                self._table[token_for_interval(key, interval)] = (index, interval)

    @classmethod
    def for_span(
        cls, devices: Sequence[tuple[str, bytes]], start_ms: int, end_ms: int
    ) -> TokenResolver:
        """A resolver for sightings in ``[start_ms, end_ms)`` (UTC epoch ms)."""
        return cls(devices, start_ms // _INTERVAL_MS, (end_ms - 1) // _INTERVAL_MS)

    def resolve(
        self, t_ms: npt.NDArray[np.int64], tokens: Sequence[bytes]
    ) -> npt.NDArray[np.int32]:
        """Device index per sighting, or ``UNRESOLVED`` (a stranger, or a token out of time)."""
        out = np.full(len(tokens), UNRESOLVED, dtype=np.int32)
        own_interval = t_ms // _INTERVAL_MS
        for row, token in enumerate(tokens):
            hit = self._table.get(token)
            if hit is None:
                continue
            index, interval = hit
            if interval - int(own_interval[row]) in TOKEN_RESOLUTION_INTERVALS:
                out[row] = index
        return out
