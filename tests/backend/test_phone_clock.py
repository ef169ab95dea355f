"""A phone's clock read off the bus beacons it heard (``backend.phones.clock``): a phone
that heard a bus's change of id knows, to about a second, how far its clock is off; one
that heard none is taken to be right."""

from __future__ import annotations

import pytest

from backend.phones.clock import (
    BEACON_INTERVAL_MS,
    CLOCK_BOUNDS_MAX_AGE_MS,
    ClockBounds,
    narrowed,
)
from onboard import wire

B = 2_950_000 * BEACON_INTERVAL_MS  # a change of beacon id on the buses' clock


def heard(skew_ms: int, start_ms: int, seconds: int) -> tuple[list[int], list[int | None]]:
    """The seconds a phone whose clock runs ``skew_ms`` ahead stamps (its clock) and the
    interval whose id it heard in each (the bus's clock), from true time ``start_ms``."""
    t, intervals = [], []
    for k in range(seconds):
        true = start_ms + k * 1000
        t.append(true + skew_ms)
        intervals.append(wire.interval_of(true))
    return t, intervals


@pytest.mark.parametrize("skew_ms", [-59_000, -22_500, -3_000, 0, 800, 7_000, 22_816, 59_900])
def test_a_change_of_id_pins_the_offset_to_a_second(skew_ms: int) -> None:
    t, intervals = heard(skew_ms, B - 70_000, 140)
    bounds = narrowed(None, t, intervals)
    assert bounds is not None
    assert bounds.lo_ms < skew_ms < bounds.hi_ms  # the truth is never ruled out
    assert abs(bounds.offset_ms - skew_ms) <= 1_000


@pytest.mark.parametrize("skew_ms", [-40_000, 0, 35_000])
def test_without_a_change_of_id_the_phone_is_taken_to_be_right(skew_ms: int) -> None:
    t, intervals = heard(skew_ms, B + 100_000, 200)  # far from any change
    bounds = narrowed(None, t, intervals)
    assert bounds is not None
    assert bounds.offset_ms == 0
    assert bounds.lo_ms < skew_ms < bounds.hi_ms


def test_bounds_carry_over_to_later_batches_and_narrow() -> None:
    skew = 18_000
    first = narrowed(None, *heard(skew, B - 5_000, 10))  # the change heard at its start
    assert first is not None
    later = narrowed(first, *heard(skew, B + 300_000, 30))  # nothing new in itself
    assert later is not None
    assert later.offset_ms == first.offset_ms
    closer = narrowed(later, *heard(skew, B + BEACON_INTERVAL_MS - 30_000, 60))
    assert closer is not None
    assert closer.hi_ms - closer.lo_ms <= later.hi_ms - later.lo_ms
    assert abs(closer.offset_ms - skew) <= 1_000


def test_a_clock_set_since_replaces_the_old_bounds() -> None:
    before = narrowed(None, *heard(30_000, B - 60_000, 120))
    assert before is not None
    assert abs(before.offset_ms - 30_000) <= 1_000
    after = narrowed(before, *heard(-5_000, B + BEACON_INTERVAL_MS - 30_000, 60))
    assert after is not None
    assert abs(after.offset_ms + 5_000) <= 1_000


def test_old_bounds_are_forgotten() -> None:
    old = ClockBounds(20_000, 21_000, B)
    t, intervals = heard(0, B + CLOCK_BOUNDS_MAX_AGE_MS + BEACON_INTERVAL_MS // 2, 10)
    bounds = narrowed(old, t, intervals)
    assert bounds is not None
    assert bounds.offset_ms == 0


def test_unresolved_sightings_and_stray_ids_bound_nothing() -> None:
    assert narrowed(None, [B, B + 1_000], [None, None]) is None
    known = ClockBounds(-1_000, 3_000, B)
    assert narrowed(known, [B + 5_000], [None]) == known
    # An id two intervals old is beyond any phone clock (at most 60 s off): ignored.
    assert narrowed(known, [B + 5_000], [wire.interval_of(B) - 2]) == known


@pytest.mark.parametrize(
    ("lo", "hi", "offset"),
    [
        (-60_001, 0, 0),  # a second heard on the edge of a change: within a row's second
        (-500, 1_500, 0),
        (21_816, 23_816, 22_000),
        (5_000, 60_001, 6_000),  # one-sided: half a second inside the bound nearest zero
        (-4_000, -2_000, -3_000),
    ],
)
def test_the_correction_is_whole_seconds_and_zero_within_a_second(
    lo: int, hi: int, offset: int
) -> None:
    assert ClockBounds(lo, hi, B).offset_ms == offset
