"""The inspector's page ``/inspect``: paste (or type) a ticket's QR text and see the verdict.

The page carries the operator's public keys and the signed revocation list as of loading it;
its script (``templates/inspect/inspect.js``) then checks tickets in the browser with
WebCrypto Ed25519, offline. A browser without Ed25519 posts the form, and the server checks
(the page says which one did). German by default, English with ``?lang=en``.
"""

from __future__ import annotations

import datetime as dt
import json
from functools import cache
from importlib import resources
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, Response

from backend.api.deps import SessionDep
from backend.api.schemas import TEXT_PATTERN
from backend.const import SERVICE_DAY_TZ, TICKET_CODE_SKEW_S, TICKET_CODE_STEP_S
from backend.templating import environment
from backend.tickets import codec, keys, revocations
from backend.tickets import service as tickets_service
from backend.tickets.endpoints import server_verdict, verdict_out
from onboard.wire import IDENTIFIER_MAX_CHARS

router = APIRouter(prefix="/inspect", include_in_schema=False)
_TZ = ZoneInfo(SERVICE_DAY_TZ)

Lang = Literal["de", "en"]
PAGE_HEADERS = {
    # Its own script and style only; connect-src for the server check when WebCrypto has no
    # Ed25519. The keys and the revocation list come inside the page (a JSON data block).
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; "
    "base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}

TEXT: dict[Lang, dict[str, str]] = {
    "de": {
        "title": "Fahrkartenkontrolle",
        "intro": "QR-Code scannen oder seinen Text einfügen. Die Prüfung läuft in diesem "
        "Browser, ohne Netz, mit den Schlüsseln und der Sperrliste von unten.",
        "vehicle": "Fahrzeug, in dem Sie kontrollieren",
        "vehicle_hint": "leer lassen: Fahrzeug nicht prüfen",
        "payload": "Inhalt des QR-Codes",
        "check": "Prüfen",
        "verdict": "Ergebnis",
        "checked_here": "in diesem Browser geprüft (offline)",
        "checked_server": "auf dem Server geprüft",
        "keys_heading": "Schlüssel des Betreibers",
        "retires": "gilt bis",
        "never": "unbefristet",
        "revocations": "Sperrliste vom",
        "revoked_count": "gesperrte Fahrkarten",
        "valid": "Gültig",
        "provisional": "Gültig, vorläufig: Einstieg noch nicht sicher erkannt",
        "stale": "Code veraltet: Bildschirmfoto?",
        "wrong_vehicle": "Falsches Fahrzeug",
        "expired": "Abgelaufen",
        "revoked": "Gesperrt",
        "invalid": "Ungültig: keine echte Fahrkarte",
        "ticket_id": "Fahrkarten-Nr.",
        "rider_ref": "Fahrgast (Pseudonym)",
        "rider_category": "Fahrgastart",
        "companions": "Mitfahrende",
        "vehicle_id": "Fahrzeug",
        "board_stop": "Einstieg",
        "boarded_at": "Einstiegszeit",
        "valid_until": "gültig bis",
        "key_id": "Schlüssel",
        "reason": "Fehler",
        "none": "keine",
        "adult": "Erwachsene",
        "child": "Kind",
        "preschool": "Vorschulkind",
        "infant": "Kleinkind",
        "bike": "Fahrrad",
        "language": "English",
        "no_keys": "Keine Schlüssel eingerichtet: Fahrkarten können nicht geprüft werden.",
    },
    "en": {
        "title": "Ticket inspection",
        "intro": "Scan the QR code or paste its text. The check runs in this browser, "
        "offline, with the keys and revocation list shown below.",
        "vehicle": "Vehicle you are inspecting on",
        "vehicle_hint": "leave empty: vehicle not checked",
        "payload": "QR code content",
        "check": "Check",
        "verdict": "Result",
        "checked_here": "checked in this browser (offline)",
        "checked_server": "checked on the server",
        "keys_heading": "Operator keys",
        "retires": "valid until",
        "never": "no end",
        "revocations": "Revocation list of",
        "revoked_count": "revoked tickets",
        "valid": "Valid",
        "provisional": "Valid, provisional: be-in not yet certain",
        "stale": "Code out of date: a screenshot?",
        "wrong_vehicle": "Wrong vehicle",
        "expired": "Expired",
        "revoked": "Revoked",
        "invalid": "Invalid: not a genuine ticket",
        "ticket_id": "Ticket no.",
        "rider_ref": "Rider (pseudonym)",
        "rider_category": "Rider category",
        "companions": "Companions",
        "vehicle_id": "Vehicle",
        "board_stop": "Boarded at",
        "boarded_at": "Boarding time",
        "valid_until": "valid until",
        "key_id": "Key",
        "reason": "Error",
        "none": "none",
        "adult": "Adult",
        "child": "Child",
        "preschool": "Preschool child",
        "infant": "Infant",
        "bike": "Bicycle",
        "language": "Deutsch",
        "no_keys": "No keys configured: tickets cannot be checked.",
    },
}
STATIC = {"inspect.js": "text/javascript", "inspect.css": "text/css"}

LangQuery = Annotated[Lang, Query(description="language of the page (de default)")]
VehicleQuery = Annotated[
    str,
    Query(
        max_length=IDENTIFIER_MAX_CHARS,
        pattern=r"^[A-Za-z0-9_.:-]*$",
        description="the vehicle the inspector is on (empty: not checked)",
    ),
]


@cache
def _static(name: str) -> str:
    return (resources.files("backend") / "templates" / "inspect" / name).read_text("utf-8")


@router.get("/static/inspect.js")
def script() -> Response:
    return Response(_static("inspect.js"), media_type=STATIC["inspect.js"])


@router.get("/static/inspect.css")
def style() -> Response:
    return Response(_static("inspect.css"), media_type=STATIC["inspect.css"])


def _local(epoch_s: int) -> str:
    """UTC epoch s as local time, to the second (a time code's step matters)."""
    return dt.datetime.fromtimestamp(epoch_s, _TZ).strftime("%d.%m.%Y %H:%M:%S")


def _render(
    request: Request,
    session: SessionDep,
    lang: Lang,
    vehicle: str,
    payload: str = "",
    verdict: codec.Verdict | None = None,
) -> HTMLResponse:
    keyset: keys.Keyset | None = request.app.state.ticket_keys
    now: dt.datetime = request.app.state.clock()
    stops = {s.stop_id: s.name for s in request.app.state.tariff.stops()}
    data: dict[str, Any] = {
        "lang": lang,
        "text": TEXT[lang],
        "step_s": TICKET_CODE_STEP_S,
        "skew_s": TICKET_CODE_SKEW_S,
        "stops": stops,
        "keys": None,
        "revocations": None,
    }
    revoked_count = 0
    if keyset is not None:
        data["keys"] = keys.to_json(keyset, private=False)
        data["revocations"] = tickets_service.revocation_list(session, keyset, now)
        revoked_count = len(
            revocations.read(data["revocations"], keyset.keys, now.timestamp()).revoked
        )
    html = (
        environment()
        .get_template("inspect/page.html")
        .render(
            t=TEXT[lang],
            lang=lang,
            other_lang="en" if lang == "de" else "de",
            vehicle=vehicle,
            payload=payload,
            verdict=verdict_out(verdict) if verdict is not None else None,
            stop_name=stops.get(verdict.ticket.board_stop_id)
            if verdict is not None and verdict.ticket is not None
            else None,
            local=_local,
            key_list=sorted(keyset.keys.values(), key=lambda k: k.key_id) if keyset else [],
            list_issued=_local(int(now.timestamp())),
            revoked_count=revoked_count,
            data=json.dumps(data, ensure_ascii=True).replace("<", "\\u003c"),
        )
    )
    return HTMLResponse(html, headers=PAGE_HEADERS)


@router.get("", response_class=HTMLResponse)
def inspect_page(
    request: Request, session: SessionDep, lang: LangQuery = "de", vehicle: VehicleQuery = ""
) -> HTMLResponse:
    return _render(request, session, lang, vehicle)


@router.post("", response_class=HTMLResponse)
def inspect_submit(
    request: Request,
    session: SessionDep,
    payload: Annotated[str, Form(max_length=4000, pattern=TEXT_PATTERN)] = "",
    vehicle: Annotated[str, Form(max_length=IDENTIFIER_MAX_CHARS, pattern=TEXT_PATTERN)] = "",
    lang: LangQuery = "de",
) -> HTMLResponse:
    """The server's verdict, for a browser that cannot check Ed25519 (or runs no script)."""
    vehicle = vehicle.strip()
    verdict = None
    if payload.strip() and request.app.state.ticket_keys is not None:
        verdict = server_verdict(request, session, payload, vehicle or None)
    return _render(request, session, lang, vehicle, payload, verdict)
