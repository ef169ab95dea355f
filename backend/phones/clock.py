"""A phone's clock, read off the bus beacons it heard.

A phone stamps what it uploads with its own clock, which may run up to a minute off the
buses' (docs/contracts.md, Phone sightings upload); reconciliation compares those times
with the bus's stops to the second. The beacons say how far off it is: a bus advertises the
id of interval ``i`` exactly from ``i * BEACON_INTERVAL`` to ``(i + 1) * BEACON_INTERVAL`` on
its own clock, so a phone that heard that id in its second from ``t`` ran at least
``t - (i + 1) * BEACON_INTERVAL`` and at most ``t + 1 s - i * BEACON_INTERVAL`` ahead of the
bus then. One sighting far from a change of id bounds little; the seconds around one
(every ten minutes, while the phone is near any bus) pin the offset to about a second.

``narrowed`` keeps a device's bounds batch by batch, in the order the backend stores its
batches (the same in the backend and in the offline evaluation, so both read the same
times); ``offset_ms`` is the correction the batch's times get, in whole seconds: zero until
the sightings rule it out (a change of id heard), then where they pin it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from onboard import wire

BEACON_INTERVAL_MS: Final = wire.TOKEN_INTERVAL_S * 1000
"""A bus beacon's id changes this often (``wire.interval_of``, docs/contracts.md, Bus beacon)."""

PHONE_CLOCK_MAX_OFFSET_MS: Final = 60_000
"""Phone clocks are off by at most this (docs/contracts.md, Token resolution): sightings
that say more are a stray or replayed id, and bound nothing."""

CLOCK_BOUNDS_MAX_AGE_MS: Final = 24 * 3_600_000
"""Bounds learnt longer ago than this (on the phone's clock) are forgotten: a phone sets its
clock from the network now and then. Set by hand, not fitted."""


@dataclass(frozen=True, slots=True)
class ClockBounds:
    """The phone clock's offset (phone minus bus, ms) lies in ``(lo_ms, hi_ms)``, as learnt
    from the sightings up to phone time ``as_of_ms``."""

    lo_ms: int
    hi_ms: int
    as_of_ms: int

    @property
    def offset_ms(self) -> int:
        """The correction, in whole seconds (a row is a second): zero while the bounds allow
        it to within a second (a phone is taken to be right until its sightings say
        otherwise); else half a second (at most half the bounds) inside the bound nearest
        zero, the middle of the second a change of id pinned it to."""
        if self.lo_ms - 1000 < 0 < self.hi_ms + 1000:
            return 0
        inward = min(500, (self.hi_ms - self.lo_ms) // 2)
        near = self.lo_ms + inward if self.lo_ms >= 0 else self.hi_ms - inward
        seconds = (abs(near) + 500) // 1000  # to the nearest second, halves away from zero
        return seconds * 1000 if near > 0 else -seconds * 1000


def narrowed(
    before: ClockBounds | None, t: Sequence[int], intervals: Sequence[int | None]
) -> ClockBounds | None:
    """``before`` narrowed by a batch's sightings: second ``t[k]`` (phone clock) heard a beacon
    id of interval ``intervals[k]`` (None: it resolved to no vehicle, and says nothing).
    Bounds older than ``CLOCK_BOUNDS_MAX_AGE_MS``, or that the batch contradicts (the phone's
    clock was set since), give way to the batch's own."""
    lo, hi, last = -PHONE_CLOCK_MAX_OFFSET_MS - 1, PHONE_CLOCK_MAX_OFFSET_MS + 1, None
    for second, interval in zip(t, intervals, strict=True):
        if interval is None:
            continue
        lo = max(lo, second - (interval + 1) * BEACON_INTERVAL_MS)
        hi = min(hi, second + 1000 - interval * BEACON_INTERVAL_MS)
        last = second if last is None else max(last, second)
    if last is None:
        return before
    if hi - lo < 2:
        return before  # beyond any phone's clock, or contradicting itself: a stray id
    if before is not None and last - before.as_of_ms <= CLOCK_BOUNDS_MAX_AGE_MS:
        both_lo, both_hi = max(lo, before.lo_ms), min(hi, before.hi_ms)
        if both_hi - both_lo >= 2:
            return ClockBounds(both_lo, both_hi, max(last, before.as_of_ms))
    return ClockBounds(lo, hi, last)


def corrected(batch: wire.PhoneBatch, offset_ms: int) -> wire.PhoneBatch:
    """``batch`` with every time of its rows on the buses' clock: its phone's clock ran
    ``offset_ms`` ahead (``sent_at`` stays as the phone sent it)."""
    if not offset_ms:
        return batch
    b = batch.beacons
    return batch.model_copy(
        update={
            "beacons": b.model_copy(update={"t": [t - offset_ms for t in b.t]}),
            "regions": [e.model_copy(update={"t": e.t - offset_ms}) for e in batch.regions],
            "activity": [e.model_copy(update={"t": e.t - offset_ms}) for e in batch.activity],
        }
    )


def on_buses_clock(
    batch: wire.PhoneBatch, before: ClockBounds | None, intervals: Sequence[int | None]
) -> tuple[ClockBounds | None, wire.PhoneBatch]:
    """The device's bounds after ``batch`` (whose beacons heard the ids of ``intervals``,
    ``narrowed`` from ``before``) and the batch with its times corrected by them: what the
    backend stores, and what the offline evaluation reads, batch by batch."""
    bounds = narrowed(before, batch.beacons.t, intervals)
    return bounds, corrected(batch, 0 if bounds is None else bounds.offset_ms)
