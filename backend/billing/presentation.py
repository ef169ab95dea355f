"""Bills people read: the fare engine's bill turned into what a rider sees, in German by
default or English.

- Products are named as the tariff names them: an EinzelTicket with its Preisstufe, a
  Kurzstrecke as Kurzstrecke, an eezy check-in as eezy, a pass with its Preisstufe and
  where it is valid. A price the tariff file marks as assumed (no published source found) is
  flagged (``assumed_price``), never explained with the tariff's internal notes.
- Each trip's "alone" price names its own cheapest ticket, and the "alone" prices add up to
  the line that sums them (``each_alone_cents``); "single tickets" (with changes of vehicle
  on one ticket) is a separate line, as it may be less than that sum.
- Times are local with their UTC offset, so the two 02:30 of the October night differ.
"""

from __future__ import annotations

import datetime as dt
import functools
from typing import Any, Literal
from zoneinfo import ZoneInfo

import fare_engine
from backend.const import SERVICE_DAY_TZ
from fare_engine.money import format_cents

Lang = Literal["de", "en"]
_TZ = ZoneInfo(SERVICE_DAY_TZ)

TEXT: dict[Lang, dict[str, str]] = {
    "de": {
        "invoice": "Rechnung",
        "version": "Version",
        "issued": "ausgestellt am",
        "passenger": "Fahrgast",
        "total": "Gesamtbetrag",
        "tickets": "Tickets",
        "product": "Ticket",
        "valid": "gültig",
        "trips": "Fahrten",
        "price": "Preis",
        "earlier_trips": "in Vormonaten",
        "credit": "Bereits in Vormonaten bezahlt",
        "trips_since": "Fahrten seit",
        "day": "Tag",
        "line": "Linie",
        "from": "von",
        "to": "nach",
        "times": "Zeiten",
        "alone": "einzeln",
        "corrected": "korrigiert",
        "cancelled": "storniert",
        "entitled": "Frei mit Ihrem Ticket",
        "each_alone": "Jede Fahrt einzeln",
        "singles": "Nur Einzeltickets (mit Umstiegen)",
        "saved": "gespart",
        "assumed": "Preis angenommen: keine veröffentlichte Preisangabe gefunden",
        "no_trips": "Keine Fahrten in diesem Monat.",
        "no_paid_trips": "Keine zu bezahlenden Fahrten in diesem Monat.",
        "free_with": "{n} Fahrt(en) frei mit Ihrem Ticket: {kind}",
        "earlier_paid": "{n} frühere Fahrt(en) dieser Rechnung wurden in Vormonaten "
        "berechnet: {paid}; in diesem Monat: {month}",
        "footer": "Der Gesamtbetrag ist der genaue Bestpreis über den WestfalenTarif, eezy "
        "und das Deutschlandticket für die Fahrten oben. Eine Fahrt stimmt nicht? "
        "Widersprechen Sie in der App.",
        "account_deleted": "Konto gelöscht: Fahrten und Tickets entfernt",
        "superseded": "Ersetzt durch Version {n}: diese Fassung gilt nicht mehr.",
    },
    "en": {
        "invoice": "Invoice",
        "version": "version",
        "issued": "issued",
        "passenger": "passenger",
        "total": "Total",
        "tickets": "Tickets",
        "product": "Ticket",
        "valid": "valid",
        "trips": "Trips",
        "price": "Price",
        "earlier_trips": "in earlier months",
        "credit": "Already paid in earlier months",
        "trips_since": "trips since",
        "day": "Day",
        "line": "Line",
        "from": "From",
        "to": "To",
        "times": "Times",
        "alone": "alone",
        "corrected": "corrected",
        "cancelled": "cancelled",
        "entitled": "Free with your ticket",
        "each_alone": "Each trip on its own ticket",
        "singles": "Single tickets only (with changes)",
        "saved": "saved",
        "assumed": "assumed price: no published price was found",
        "no_trips": "No trips this month.",
        "no_paid_trips": "No trips to pay this month.",
        "free_with": "{n} trip(s) free with your ticket: {kind}",
        "earlier_paid": "{n} earlier trip(s) of this bill were charged in earlier months: "
        "{paid}; this month: {month}",
        "footer": "The total is the exact best price over the WestfalenTarif, eezy and the "
        "Deutschlandticket for the trips above. A wrong trip? Dispute it in the app.",
        "account_deleted": "account deleted: trips and products removed",
        "superseded": "Superseded by version {n}: this version no longer applies.",
    },
}
"""Every text a rider reads on a bill, per language."""


ENTITLEMENT_LABELS = {
    "deutschlandticket": "Deutschlandticket",
    "jobticket": "JobTicket",
    "schoolticket": "SchülerTicket",
    "semesterticket": "Semesterticket",
    "sozialticket": "Sozialticket",
    "free_travel": "Schwerbehindertenausweis mit Wertmarke",
    "other": "Ticket",
    "sozial_eligibility": "Berechtigung Deutschlandticket Sozial",
    "job_eligibility": "Berechtigung Deutschlandticket Job",
}
"""How a bill names each kind of ticket held elsewhere (``passengers.schemas.EntitlementKind``)."""


def local_iso(epoch_ms: int) -> str:
    """Local time with its UTC offset, e.g. ``2026-10-25T02:30:00+02:00``."""
    return dt.datetime.fromtimestamp(epoch_ms / 1000, tz=_TZ).isoformat(timespec="seconds")


def local_text(epoch_ms: int, with_date: bool = True) -> str:
    """``25.10.2026 02:30 (+02:00)``: the offset tells the two 02:30 of the autumn night apart."""
    moment = dt.datetime.fromtimestamp(epoch_ms / 1000, tz=_TZ)
    offset = moment.strftime("%z")
    clock = moment.strftime("%d.%m.%Y %H:%M" if with_date else "%H:%M")
    return f"{clock} ({offset[:3]}:{offset[3:]})"


@functools.cache
def _kurzstrecke_levels() -> frozenset[str]:
    tariff = fare_engine.default_tariffs()[0]
    return frozenset(lv.code for lv in tariff.levels_by_rank() if lv.max_further_stops is not None)


def product_label(name: str, kind: str, level: str | None, scope: str | None = None) -> str:
    """A product as the tariff names it: "EinzelTicket Preisstufe 4", "Kurzstrecke",
    "eezy Westfalen", "30TageTicket Preisstufe A – Unna"."""
    if level is not None and level in _kurzstrecke_levels():
        label = "Kurzstrecke" if kind == "single" else f"{name} Kurzstrecke"
    elif level is not None:
        label = f"{name} Preisstufe {level}"
    else:
        label = name
    return f"{label} – {scope}" if scope else label


@functools.cache
def _level_codes() -> frozenset[str]:
    return frozenset(lv.code for lv in fare_engine.default_tariffs()[0].levels_by_rank())


def _alone_label(trip: dict[str, Any]) -> str:
    """The trip's own cheapest ticket: the engine writes "EinzelTicket K" (product and
    level) or a product name (eezy)."""
    product = str(trip.get("single_product") or "")
    name, _, code = product.rpartition(" ")
    if name and code in _level_codes():
        return product_label(name, "single", code)
    return product


def passenger_bill(bill: dict[str, Any]) -> dict[str, Any]:
    """The fare engine's bill JSON as a rider may see it: labels, assumed-price flags and
    local times added; the tariff file's internal notes (``provenance``, the solver's
    ``method``) removed."""
    out = {k: v for k, v in bill.items() if k not in ("method", "scopes_nested")}
    products = []
    for p in bill.get("products", []):
        shown = {k: v for k, v in p.items() if k != "provenance"}
        shown["label"] = product_label(p["name"], p["kind"], p.get("level"), p.get("scope"))
        shown["assumed_price"] = str(p.get("provenance", "")).startswith("assumed")
        shown["valid_from_local"] = local_iso(p["valid_from"])
        shown["valid_to_local"] = local_iso(p["valid_to"])
        products.append(shown)
    out["products"] = products
    trips = []
    for t in bill.get("trips", []):
        shown = dict(t)
        shown["alone_label"] = _alone_label(t)
        shown["board_time_local"] = local_iso(t["board_time"])
        shown["alight_time_local"] = local_iso(t["alight_time"])
        trips.append(shown)
    out["trips"] = trips
    out["each_alone_cents"] = sum(t["single_cents"] for t in trips)
    return out


def explain(
    bill: dict[str, Any] | None,
    lang: Lang,
    *,
    free: dict[str, int] | None = None,
    earlier: tuple[int, int, int] | None = None,
) -> str:
    """The month so far as text: each ticket with its trips and their "alone" prices, the
    sums, trips free with a registered ticket (``free``: kind -> count) and what earlier
    months paid (``earlier``: trips, cents paid, this month's cents)."""
    words = TEXT[lang]
    lines: list[str] = []
    if bill is None or not bill.get("products"):
        lines.append(words["no_paid_trips"] if free else words["no_trips"])
    else:
        trips = bill["trips"]
        for n, p in enumerate(bill["products"], start=1):
            star = " *" if p["assumed_price"] else ""
            lines.append(
                f"{n}. {p['label']}: {format_cents(p['price_cents'])}{star}, {words['valid']} "
                f"{local_text(p['valid_from'])} – {local_text(p['valid_to'])}"
            )
            for k in p["covers"]:
                t = trips[k]
                lines.append(
                    f"   {local_text(t['board_time'])} {t['board_stop_name']} → "
                    f"{t['alight_stop_name']} ({words['alone']}: "
                    f"{t['alone_label']} {format_cents(t['single_cents'])})"
                )
        lines.append(f"{words['total']}: {format_cents(bill['total_cents'])}")
        lines.append(f"{words['each_alone']}: {format_cents(bill['each_alone_cents'])}")
        lines.append(f"{words['singles']}: {format_cents(bill['singles_total_cents'])}")
        if any(p["assumed_price"] for p in bill["products"]):
            lines.append(f"* {words['assumed']}")
    if earlier is not None:
        n, paid, month = earlier
        lines.append(
            words["earlier_paid"].format(n=n, paid=format_cents(paid), month=format_cents(month))
        )
    for kind, n in sorted((free or {}).items()):
        lines.append(words["free_with"].format(n=n, kind=ENTITLEMENT_LABELS.get(kind, kind)))
    return "\n".join(lines)
