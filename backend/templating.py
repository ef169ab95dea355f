"""Server-rendered HTML (Jinja2): the environment over ``backend/templates`` that the printable
invoice (``backend/billing/rendering.py``) and the operator pages
(``backend/operators/web/``) render with, and its filters."""

from __future__ import annotations

import datetime as dt
from functools import cache
from zoneinfo import ZoneInfo

from jinja2 import Environment, PackageLoader, select_autoescape

from backend.const import SERVICE_DAY_TZ

_TZ = ZoneInfo(SERVICE_DAY_TZ)


def euros(cents: int | None) -> str:
    """``1234`` -> ``12,34 €`` (German notation)."""
    if cents is None:
        return "–"
    sign = "-" if cents < 0 else ""
    return f"{sign}{abs(cents) // 100},{abs(cents) % 100:02d} €"


def local_time(epoch_ms: int | None, fmt: str = "%d.%m.%Y %H:%M") -> str:
    """UTC epoch ms as local (German) time."""
    if epoch_ms is None:
        return "–"
    return dt.datetime.fromtimestamp(epoch_ms / 1000, tz=_TZ).strftime(fmt)


@cache
def environment() -> Environment:
    env = Environment(
        loader=PackageLoader("backend", "templates"),
        autoescape=select_autoescape(["html"]),
    )
    env.filters["euros"] = euros
    env.filters["local_time"] = local_time
    return env
