"""Validity windows of passes and caps: rolling, N days, calendar week, calendar month.

All windows are [start, end) in UTC epoch ms; day boundaries are the tariff's local
wall-clock `day_starts_at` (00:00 in Germany, 04:30 for London's caps).
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from fare_engine.const import MS_PER_MINUTE
from fare_engine.model import WEEKDAYS, PeriodKind, PeriodSpec


def service_date(at_ms: int, tz: ZoneInfo, day_starts_at: dt.time) -> dt.date:
    """The local day a moment belongs to when days begin at `day_starts_at`."""
    local = dt.datetime.fromtimestamp(at_ms / 1000, tz)  # (`tz` by position: faster)
    if local.time() < day_starts_at:
        return local.date() - dt.timedelta(days=1)
    return local.date()


def local_ms(day: dt.date, at: dt.time, tz: ZoneInfo) -> int:
    """Epoch ms of a local wall-clock moment."""
    return int(dt.datetime.combine(day, at, tz).timestamp()) * 1000


def first_day(period: PeriodSpec, day: dt.date) -> dt.date:
    """The first day of the calendar window containing `day` (or `day` itself)."""
    if period.kind is PeriodKind.WEEK:
        return day - dt.timedelta(days=(day.weekday() - WEEKDAYS.index(period.week_starts_on)) % 7)
    if period.kind is PeriodKind.MONTH:
        return day.replace(day=1)
    return day


def after_last_day(period: PeriodSpec, first: dt.date) -> dt.date:
    """The day after a calendar window starting on `first` ends."""
    if period.kind is PeriodKind.WEEK:
        return first + dt.timedelta(days=7)
    if period.kind is PeriodKind.MONTH:
        return dt.date(first.year + (first.month == 12), first.month % 12 + 1, 1)
    assert period.days is not None
    return first + dt.timedelta(days=period.days)


def window(period: PeriodSpec, tz: ZoneInfo, first_board_ms: int) -> tuple[int, int]:
    """The window of a pass whose first covered trip boards at `first_board_ms`.

    Rolling windows start at that boarding; N-day passes start on its day (the
    best free start day for every later trip); weeks and months are fixed.
    """
    if period.kind is PeriodKind.ROLLING:
        assert period.minutes is not None
        return first_board_ms, first_board_ms + period.minutes * MS_PER_MINUTE
    first = first_day(period, service_date(first_board_ms, tz, period.day_starts_at))
    return (
        local_ms(first, period.day_starts_at, tz),
        local_ms(after_last_day(period, first), period.day_starts_at, tz),
    )


def covers(period: PeriodSpec, start: int, end: int, board_ms: int, alight_ms: int) -> bool:
    """True if a trip boarding/alighting at these times lies inside the window."""
    if not start <= board_ms < end:
        return False
    return not period.trips_must_end_inside or alight_ms < end
