"""Service days: 03:00-03:00 Europe/Berlin, mapped to and from UTC epoch milliseconds."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from backend.const import SERVICE_DAY_START_HOUR, SERVICE_DAY_TZ

_TZ = ZoneInfo(SERVICE_DAY_TZ)


def service_day_of(t_ms: int) -> dt.date:
    """The service day that contains the instant ``t_ms`` (UTC epoch ms)."""
    local = dt.datetime.fromtimestamp(t_ms / 1000, tz=_TZ)
    return (local - dt.timedelta(hours=SERVICE_DAY_START_HOUR)).date()


def service_day_bounds(day: dt.date) -> tuple[int, int]:
    """``[start, end)`` of a service day in UTC epoch ms (23 or 25 h on DST change days)."""
    start = dt.datetime.combine(day, dt.time(SERVICE_DAY_START_HOUR), tzinfo=_TZ)
    end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(SERVICE_DAY_START_HOUR), _TZ)
    return int(start.timestamp() * 1000), int(end.timestamp() * 1000)


def parse_day(text: str) -> dt.date:
    """``YYYY-MM-DD`` or a ValueError that says what was expected."""
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"expected a date as YYYY-MM-DD, got {text!r}") from None


def service_days(times: list[int]) -> dt.date | list[dt.date]:
    """The service day of every time: one day when all fall in it (nearly every batch)."""
    if not times:
        return []
    first = service_day_of(min(times))
    lo, hi = service_day_bounds(first)
    if max(times) < hi:
        return first
    days: list[dt.date] = []
    for t in times:
        if not lo <= t < hi:
            first = service_day_of(t)
            lo, hi = service_day_bounds(first)
        days.append(first)
    return days
