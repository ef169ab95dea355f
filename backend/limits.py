"""Rate limits: token buckets per key (a vehicle, a client address), in process memory.

Each API process limits on its own; behind a load balancer with N processes a key gets at
most N times the rate, which is enough to stop a runaway unit or a sign-up flood. (A shared
limit would need a shared store, which bibo does not have beyond PostgreSQL.)
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from backend.const import RATE_LIMIT_KEYS


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """``rate`` requests per second sustained, bursts of up to ``burst``.

    ``clock`` returns seconds (monotonic). ``allow(key)`` takes one token and returns 0 when
    the request may go ahead, else the seconds to wait (for a ``Retry-After`` header). Where
    only some requests cost (an upload answered as a duplicate does not), ``wait_time(key)``
    asks without taking and ``take(key)`` charges the request once it turned out to cost.
    """

    def __init__(self, rate: float, burst: float, clock: Callable[[], float]) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError(f"rate must be > 0 and burst >= 1, got {rate}, {burst}")
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()
        self._lock = threading.Lock()

    def allow(self, key: str) -> float:
        with self._lock:
            bucket = self._refilled(key)
            if bucket.tokens >= 1:
                bucket.tokens -= 1
                return 0.0
            return self._wait(bucket)

    def wait_time(self, key: str) -> float:
        """Seconds until ``key`` has a token (0: now), taking none."""
        with self._lock:
            return self._wait(self._refilled(key))

    def take(self, key: str) -> None:
        """Charge one token. Requests that passed ``wait_time`` together may all take one,
        leaving the bucket below zero: later requests then wait for the whole debt."""
        with self._lock:
            self._refilled(key).tokens -= 1

    def _refilled(self, key: str) -> _Bucket:
        now = self._clock()
        bucket = self._buckets.pop(key, None) or _Bucket(self.burst, now)
        bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self.rate)
        bucket.updated = now
        self._buckets[key] = bucket
        while len(self._buckets) > RATE_LIMIT_KEYS:
            self._buckets.popitem(last=False)  # forget the least recently seen key
        return bucket

    def _wait(self, bucket: _Bucket) -> float:
        return 0.0 if bucket.tokens >= 1 else (1 - bucket.tokens) / self.rate
