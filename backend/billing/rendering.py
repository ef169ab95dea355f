"""Server-rendered HTML (Jinja2): the printable invoice, and the operator pages' templates."""

from __future__ import annotations

import datetime as dt
import json
from functools import cache
from zoneinfo import ZoneInfo

from jinja2 import Environment, PackageLoader, select_autoescape

from backend import models

_TZ = ZoneInfo("Europe/Berlin")


def euros(cents: int | None) -> str:
    """``1234`` -> ``12,34 €`` (German notation)."""
    if cents is None:
        return "–"
    sign = "-" if cents < 0 else ""
    return f"{sign}{abs(cents) // 100},{abs(cents) % 100:02d} €"


def local_time(epoch_ms: int | None, fmt: str = "%d.%m.%Y %H:%M") -> str:
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


def render_invoice(invoice: models.Invoice, stop_names: dict[str, str]) -> str:
    document = json.loads(invoice.document)
    return (
        environment()
        .get_template("invoice.html")
        .render(invoice=invoice, doc=document, stop_names=stop_names)
    )
