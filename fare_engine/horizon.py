"""How far apart two trips may board and still be paid by one product: the billing horizon.

A bill over trips that fall apart at a gap at least this long is the sum of the bills of
the two sides, because no product's window (or EinzelTicket validity) spans the gap. The
backend uses it to bill months one after another exactly: a month's charge is the best
price of the trips since the last such gap through the month, minus the same before it.
"""

from __future__ import annotations

from collections.abc import Sequence

from fare_engine.const import MS_PER_MINUTE
from fare_engine.model import PeriodKind, PeriodSpec
from fare_engine.tariff import Tariff

_DAY_MS = 24 * 60 * MS_PER_MINUTE
_DST_MS = 60 * MS_PER_MINUTE
"""A local day (and so a week or month window) is an hour longer on the autumn change."""


def _period_ms(period: PeriodSpec) -> int:
    if period.kind is PeriodKind.ROLLING:
        assert period.minutes is not None
        return period.minutes * MS_PER_MINUTE
    if period.kind is PeriodKind.DAYS:
        assert period.days is not None
        return period.days * _DAY_MS + _DST_MS
    if period.kind is PeriodKind.WEEK:
        return 7 * _DAY_MS + _DST_MS
    return 31 * _DAY_MS + _DST_MS  # the longest calendar month


def longest_validity_ms(tariffs: Sequence[Tariff]) -> int:
    """The longest time any product of ``tariffs`` covers, from first boarding to last
    boarding (passes and caps by their window, EinzelTickets by their validity, the
    ``calendar_month`` kind as a month). Distance fares are one ride each, or one check-in
    over rides the caller joined with ``joins_previous``: the caller never splits such a
    journey."""
    longest = 0
    for tariff in tariffs:
        for level in tariff.levels_by_rank():
            longest = max(longest, level.validity_minutes * MS_PER_MINUTE)
        for product in tariff.pass_products():
            longest = max(longest, _period_ms(product.period))
        if tariff.calendar_month_products():
            longest = max(longest, 31 * _DAY_MS + _DST_MS)
    return longest
