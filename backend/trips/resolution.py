"""Token resolution: which registered device advertised a 10-minute token (docs/contracts.md,
Token resolution); and beacon resolution: which vehicle advertised the beacon id a phone
heard (docs/contracts.md, Bus beacon).

Only the backend holds the device keys and vehicle secrets, so only here can tokens be
linked to a device and beacon ids to a vehicle. The ids of every device or vehicle are
computed per interval on demand and kept for a few intervals, so incremental work does not
recompute a whole day's ids on every upload.
"""

from __future__ import annotations

import itertools
from collections import OrderedDict
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from backend.const import (
    BEACON_CACHE_INTERVALS,
    BEACON_RESOLUTION_INTERVALS,
    TOKEN_CACHE_INTERVALS,
    TOKEN_RESOLUTION_INTERVALS,
    TX_UNKNOWN,
)
from backend.trips.reconciliation import VehicleObservations
from onboard.wire import (
    TOKEN_INTERVAL_S,
    beacon_for_interval,
    beacon_key,
    interval_of,
    token_for_interval,
)

INTERVAL_MS = TOKEN_INTERVAL_S * 1000
UNRESOLVED = -1
_DEVICE_BITS = 24
"""A cached token's device index takes the low bits of its entry (16.7 million devices)."""
_DEVICE_MASK = (1 << _DEVICE_BITS) - 1


class TokenResolver:
    """Maps (token, time) to an index into ``devices`` (a sequence of ``(device_id, key)``).

    A token resolves only when its interval is one of the sighting's own interval and its
    neighbours: phone clocks are off by up to 60 s, so near a boundary either token is heard.
    """

    def __init__(
        self, devices: Sequence[tuple[str, bytes]], cache_intervals: int = TOKEN_CACHE_INTERVALS
    ) -> None:
        if len(devices) > _DEVICE_MASK:
            raise ValueError(f"devices: at most {_DEVICE_MASK:,} resolve at once")
        self.device_ids = [device_id for device_id, _ in devices]
        self._keys = [key for _, key in devices]
        self._cache: OrderedDict[int, list[bytes]] = OrderedDict()
        self._cache_size = cache_intervals
        self._known: dict[bytes, int] = {}
        """Every cached token -> its interval << ``_DEVICE_BITS`` | its device index."""

    def tokens_of(self, interval: int) -> dict[bytes, int]:
        """Every device's token for ``interval`` -> device index (cached, LRU)."""
        self._ensure(interval)
        return {token: self._known[token] & _DEVICE_MASK for token in self._cache[interval]}

    def _ensure(self, interval: int) -> None:
        if interval in self._cache:
            self._cache.move_to_end(interval)
            return
        tokens = [token_for_interval(key, interval) for key in self._keys]
        for i, token in enumerate(tokens):
            self._known[token] = interval << _DEVICE_BITS | i
        self._cache[interval] = tokens
        while len(self._cache) > self._cache_size:
            _, old = self._cache.popitem(last=False)
            for token in old:
                self._known.pop(token, None)

    def resolve(
        self, t_ms: npt.NDArray[np.int64], tokens: Sequence[bytes]
    ) -> npt.NDArray[np.int32]:
        """Device index per sighting, or ``UNRESOLVED`` (a stranger, or a token out of time).

        One dict lookup per sighting; rows best come sorted by time, so the intervals'
        tokens are computed in order.
        """
        n = len(tokens)
        out = np.full(n, UNRESOLVED, dtype=np.int32)
        if n == 0:
            return out
        own = np.asarray(t_ms, dtype=np.int64) // INTERVAL_MS
        in_order = bool((own[1:] >= own[:-1]).all())
        order = np.arange(n) if in_order else np.argsort(own, kind="stable")
        bounds = np.flatnonzero(np.r_[True, np.diff(own[order]) != 0, True])
        lo_gap, hi_gap = min(TOKEN_RESOLUTION_INTERVALS), max(TOKEN_RESOLUTION_INTERVALS)
        # Interval by interval, so only the neighbouring intervals must be in the cache.
        for a, b in itertools.pairwise(bounds.tolist()):
            rows = order[a:b]
            interval = int(own[rows[0]])
            for d in TOKEN_RESOLUTION_INTERVALS:
                self._ensure(interval + d)
            # One dict lookup per sighting (-1: a stranger's token), the rest in numpy.
            batch = tokens[a:b] if in_order else [tokens[r] for r in rows.tolist()]
            hits = np.fromiter(
                map(self._known.get, batch, itertools.repeat(-1)),
                dtype=np.int64,
                count=len(rows),
            )
            gap = (hits >> _DEVICE_BITS) - interval
            ok = (hits >= 0) & (gap >= lo_gap) & (gap <= hi_gap)
            out[rows[ok]] = (hits[ok] & _DEVICE_MASK).astype(np.int32)
        return out


_SHARED = -1
"""A beacon id that two vehicles advertise in the same interval: it names neither."""
_UNKNOWN = -2
"""A beacon id no vehicle advertises in an interval."""


class BeaconResolver:
    """Maps a beacon a phone heard, ``(major, minor)`` at ``t``, to the vehicle that
    advertised it, from ``(vehicle_id, vehicle_secret)`` pairs (each vehicle's beacon key
    derives from its upload secret).

    A beacon resolves when it is a vehicle's id in the sighting's own interval or a
    neighbour (``BEACON_RESOLUTION_INTERVALS``). Ids are only 32 bits: where two vehicles
    advertised the same id in those intervals, the sighting resolves to neither rather than
    to the wrong bus.
    """

    def __init__(
        self, vehicles: Sequence[tuple[str, bytes]], cache_intervals: int = BEACON_CACHE_INTERVALS
    ) -> None:
        self.vehicle_ids = [vehicle_id for vehicle_id, _ in vehicles]
        self._keys = [beacon_key(secret) for _, secret in vehicles]
        self._cache: OrderedDict[int, dict[int, int]] = OrderedDict()
        self._cache_size = cache_intervals

    def ids_of(self, interval: int) -> dict[int, int]:
        """Every vehicle's beacon id in ``interval`` (``major << 16 | minor``) -> its vehicle
        index, or ``_SHARED`` (cached, LRU)."""
        ids = self._cache.get(interval)
        if ids is not None:
            self._cache.move_to_end(interval)
            return ids
        ids = {}
        for index, key in enumerate(self._keys):
            major, minor = beacon_for_interval(key, interval)
            beacon = major << 16 | minor
            ids[beacon] = _SHARED if beacon in ids else index
        self._cache[interval] = ids
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return ids

    def resolve(
        self, t_ms: Sequence[int], major: Sequence[int], minor: Sequence[int]
    ) -> list[str | None]:
        """The vehicle id per sighting (UTC epoch ms, beacon major and minor), or None (a
        foreign beacon, one out of its time, or an id two vehicles shared)."""
        return [vehicle for vehicle, _ in self.resolve_intervals(t_ms, major, minor)]

    def resolve_intervals(
        self, t_ms: Sequence[int], major: Sequence[int], minor: Sequence[int]
    ) -> list[tuple[str | None, int | None]]:
        """Per sighting, its vehicle (as ``resolve``) and the interval whose id it heard
        (None with no vehicle): what the phone's clock is read against
        (``backend.phones.clock``)."""
        out: list[tuple[str | None, int | None]] = []
        for t, hi, lo in zip(t_ms, major, minor, strict=True):
            beacon, own = hi << 16 | lo, interval_of(t)
            found: dict[int, int] = {}
            for d in BEACON_RESOLUTION_INTERVALS:
                index = self.ids_of(own + d).get(beacon, _UNKNOWN)
                if index != _UNKNOWN:
                    found.setdefault(index, own + d)
            if len(found) != 1 or _SHARED in found:
                out.append((None, None))
                continue
            ((index, interval),) = found.items()
            out.append((self.vehicle_ids[index], interval))
        return out


def advertised_tx(tx: Sequence[int | None] | npt.NDArray[np.floating]) -> npt.NDArray[np.float64]:
    """The advertised tx bytes as the reconciliation reads them (dBm; NaN where the phone
    gave none or said "unknown")."""
    tx_dbm = np.array(tx, dtype=np.float64)  # None -> NaN
    tx_dbm[np.isin(tx_dbm, tuple(TX_UNKNOWN))] = np.nan
    return tx_dbm


def resolved_observations(
    vehicle_id: str,
    t: npt.NDArray[np.int64],
    tokens: Sequence[bytes],
    rssi: Sequence[int],
    tx: Sequence[int | None],
    window_ms: int,
    data_end_ms: int,
    resolver: TokenResolver,
) -> tuple[VehicleObservations, int]:
    """A vehicle's sightings (``t`` sorted) as the reconciliation reads them: tokens resolved
    to devices (the unknown dropped), the RSSI as measured and the advertised tx as a hint
    (NaN where the phone gave none or said "unknown"). Also returns how many resolved."""
    device = resolver.resolve(t, tokens)
    known = device != UNRESOLVED
    tx_dbm = advertised_tx(tx)
    obs = VehicleObservations(
        vehicle_id,
        t[known],
        device[known],
        np.asarray(rssi, dtype=np.float64)[known],
        tx_dbm[known],
        window_ms,
        data_end_ms,
    )
    return obs, int(known.sum())
