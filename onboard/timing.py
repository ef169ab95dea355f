"""Pure timing arithmetic of the agent: retry backoff, send-rate spacing, clock-offset estimate.

Nothing here reads a clock: every function and method takes the time it needs.
"""

from __future__ import annotations

import datetime as dt
import email.utils
from collections import deque
from dataclasses import dataclass

from onboard.const import BACKOFF_BASE_MS, BACKOFF_CAP_MS, BACKOFF_JITTER, CLOCK_OFFSET_SAMPLES


def backoff_ms(
    attempt: int,
    rng_value: float,
    *,
    base_ms: int = BACKOFF_BASE_MS,
    cap_ms: int = BACKOFF_CAP_MS,
) -> int:
    """Delay in ms before retry number ``attempt`` (1 = first retry) after failed sends.

    Exponential from ``base_ms``, capped at ``cap_ms`` (by default the upload's
    ``BACKOFF_BASE_MS`` and ``BACKOFF_CAP_MS``); the top ``BACKOFF_JITTER`` fraction is scaled
    by ``rng_value`` in [0, 1), so the result lies in ``[(1 - BACKOFF_JITTER) * d, d]`` for
    the un-jittered delay ``d``.
    """
    if attempt < 1:
        raise ValueError(f"attempt: expected >= 1, got {attempt}")
    if not 0.0 <= rng_value <= 1.0:
        raise ValueError(f"rng_value: expected a number in [0, 1], got {rng_value}")
    delay = base_ms
    for _ in range(attempt - 1):
        if delay >= cap_ms:
            break
        delay *= 2
    delay = min(delay, cap_ms)
    return int(delay * (1.0 - BACKOFF_JITTER + BACKOFF_JITTER * rng_value))


class SendSpacing:
    """At most ``max_per_s`` sends per second, as a minimum gap between two sends.

    A gap rather than a token bucket: the backend never sees a burst, however long the
    backlog, and "never more than the configured rate" holds for every pair of requests.
    Times are epoch ms of whatever clock the caller uses.
    """

    def __init__(self, max_per_s: float) -> None:
        if not max_per_s > 0:
            raise ValueError(f"max_per_s: expected a positive rate, got {max_per_s}")
        self.gap_ms = 1000.0 / max_per_s
        self._last_ms: int | None = None

    def ready_at(self) -> float | None:
        """Earliest time (ms) of the next send, ``None`` before the first."""
        return None if self._last_ms is None else self._last_ms + self.gap_ms

    def ready(self, now_ms: int) -> bool:
        """Whether a send at ``now_ms`` keeps the gap (a clock stepped back resets it)."""
        if self._last_ms is None or now_ms < self._last_ms:
            return True
        return now_ms - self._last_ms >= self.gap_ms

    def sent(self, now_ms: int) -> None:
        """Record a send at ``now_ms``."""
        self._last_ms = now_ms


def parse_http_date(value: str) -> int | None:
    """An HTTP ``Date`` header (RFC 9110 IMF-fixdate) as UTC epoch ms; ``None`` if unparsable."""
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if parsed.tzinfo is None:  # "-0000": UTC by RFC 5322
        parsed = parsed.replace(tzinfo=dt.UTC)
    return int(parsed.timestamp() * 1000)


@dataclass(frozen=True, slots=True)
class _Sample:
    lo: int
    hi: int


class ClockOffsetEstimator:
    """Estimates ``server clock - local wall clock`` (ms) from the HTTP ``Date`` of answers.

    The server wrote ``Date`` (whole seconds, truncated) at some instant between sending
    and receiving, so each answer bounds the offset to
    ``[date - received, date + 999 - sent]``. The estimate is the middle of the
    intersection of the last ``CLOCK_OFFSET_SAMPLES`` bounds; an empty intersection means
    one of the clocks stepped, and only the newest sample is kept.
    """

    def __init__(self, samples: int = CLOCK_OFFSET_SAMPLES) -> None:
        self._samples: deque[_Sample] = deque(maxlen=samples)
        self._bounds: tuple[int, int] | None = None

    @property
    def offset_ms(self) -> int | None:
        """Best estimate in ms (positive: the server is ahead), ``None`` before any answer."""
        if self._bounds is None:
            return None
        lo, hi = self._bounds
        return (lo + hi) // 2

    @property
    def uncertainty_ms(self) -> int | None:
        """Half the width of the interval the true offset lies in."""
        if self._bounds is None:
            return None
        lo, hi = self._bounds
        return (hi - lo + 1) // 2

    def observe(self, date_ms: int, sent_ms: int, received_ms: int) -> None:
        """One answer with ``Date`` = ``date_ms``, requested at ``sent_ms``, read at
        ``received_ms`` (both local wall clock, epoch ms)."""
        sample = _Sample(lo=date_ms - max(sent_ms, received_ms), hi=date_ms + 999 - sent_ms)
        self._samples.append(sample)
        lo = max(s.lo for s in self._samples)
        hi = min(s.hi for s in self._samples)
        if lo > hi:
            self._samples.clear()
            self._samples.append(sample)
            lo, hi = sample.lo, sample.hi
        self._bounds = (lo, hi)
