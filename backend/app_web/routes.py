"""The pages of the passenger web app under ``/app``: HTML shells rendered in the rider's
language that ``app.js`` fills from the passenger API, the PWA's manifest, service worker and
icon, and the invoice opened by a signed link."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from backend.api.deps import SessionDep
from backend.api.schemas import MONTH_PATTERN
from backend.app_web import links
from backend.app_web import service as app_service
from backend.app_web.const import INVOICE_LINK_TTL_S, STATUS_REFRESH_S, TICKET_REFRESH_S
from backend.app_web.texts import PAGES, SCRIPT, Lang
from backend.billing.presentation import ENTITLEMENT_LABELS
from backend.billing.rendering import render_invoice
from backend.passengers.schemas import EntitlementKind
from backend.templating import environment

router = APIRouter(prefix="/app", include_in_schema=False)

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
    "connect-src 'self'; manifest-src 'self'; worker-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
PAGE_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-cache",
}
INVOICE_HEADERS = PAGE_HEADERS | {
    # The shared invoice template carries its own <style> (it is also a stand-alone print).
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
    "frame-ancestors 'none'; base-uri 'none'",
    # The token is in the URL: no referrer, no cache, no index.
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "X-Robots-Tag": "noindex",
}

PAGES_BY_PATH: dict[str, tuple[str, str]] = {
    "/app/": ("status", "status_title"),
    "/app/start": ("start", "start_title"),
    "/app/month": ("month", "month_title"),
    "/app/invoices": ("invoices", "invoices_title"),
    "/app/disputes": ("disputes", "disputes_title"),
    "/app/tickets": ("tickets", "tickets_title"),
    "/app/account": ("account", "account_title"),
}
"""Each page: its path, template (``templates/app/<name>.html``) and title text."""
NAV = ("status", "month", "invoices", "disputes", "tickets", "account")
LangQuery = Annotated[Lang, Query(description="language of the page (de default)")]


def _render(
    request: Request, template: str, lang: Lang, status_code: int = 200, **context: Any
) -> HTMLResponse:
    settings = request.app.state.settings
    html = (
        environment()
        .get_template(f"app/{template}.html")
        .render(
            t=PAGES[lang],
            lang=lang,
            other=("en" if lang == "de" else "de"),
            path=request.url.path,
            page=template,
            nav=[(name, path) for path, (name, _) in PAGES_BY_PATH.items() if name in NAV],
            script_texts=json.dumps(SCRIPT[lang], ensure_ascii=False).replace("<", "\\u003c"),
            vapid_public_key=settings.vapid_public_key or "",
            ticket_refresh_s=TICKET_REFRESH_S,
            status_refresh_s=STATUS_REFRESH_S,
            **context,
        )
    )
    return HTMLResponse(html, status_code, headers=PAGE_HEADERS)


def _page(path: str) -> Any:
    template, title = PAGES_BY_PATH[path]

    def page(request: Request, lang: LangQuery = "de") -> HTMLResponse:
        context: dict[str, Any] = {"title": PAGES[lang][title]}
        if template == "tickets":
            context["kinds"] = [(k, ENTITLEMENT_LABELS.get(k, k)) for k in _kinds()]
        return _render(request, template, lang, **context)

    def month_page(
        request: Request,
        lang: LangQuery = "de",
        month: Annotated[
            str | None, Query(pattern=MONTH_PATTERN, description="YYYY-MM; default now")
        ] = None,
    ) -> HTMLResponse:
        # The month is read by the script from the address; named here so it is allowed.
        return page(request, lang)

    chosen = month_page if template == "month" else page
    chosen.__name__ = f"app_{template}"
    return chosen


@cache
def _kinds() -> tuple[str, ...]:
    return tuple(EntitlementKind.__args__)  # type: ignore[attr-defined]


for _path in PAGES_BY_PATH:
    router.add_api_route(_path.removeprefix("/app"), _page(_path), methods=["GET"])


@cache
def _static(name: str) -> bytes:
    return resources.files("backend").joinpath("static", "app", name).read_bytes()


def _asset(name: str, media_type: str, **headers: str) -> Response:
    return Response(
        _static(name),
        media_type=media_type,
        headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "no-cache"} | headers,
    )


@router.get("/static/app.js")
def app_js() -> Response:
    return _asset("app.js", "text/javascript")


@router.get("/static/app.css")
def app_css() -> Response:
    return _asset("app.css", "text/css")


@router.get("/static/icon.svg")
def app_icon() -> Response:
    return _asset("icon.svg", "image/svg+xml")


@router.get("/sw.js")
def service_worker() -> Response:
    """The service worker, served from ``/app/`` so that its scope is the whole app."""
    return _asset("sw.js", "text/javascript", **{"Service-Worker-Allowed": "/app/"})


@router.get("/manifest.webmanifest")
def manifest(lang: LangQuery = "de") -> Response:
    t = PAGES[lang]
    body = {
        "name": t["app"],
        "short_name": "bibo",
        "lang": lang,
        "start_url": f"/app/?lang={lang}" if lang != "de" else "/app/",
        "scope": "/app/",
        "display": "standalone",
        "background_color": "#ffffff",
        "theme_color": "#0b4f8a",
        "icons": [
            {"src": "/app/static/icon.svg", "sizes": "any", "type": "image/svg+xml"},
            {
                "src": "/app/static/icon.svg",
                "sizes": "any",
                "type": "image/svg+xml",
                "purpose": "maskable",
            },
        ],
    }
    return Response(
        json.dumps(body, ensure_ascii=False),
        media_type="application/manifest+json",
        headers={"X-Content-Type-Options": "nosniff"},
    )


@router.get("/invoices/open/{token}")
def open_invoice(token: str, request: Request, session: SessionDep) -> HTMLResponse:
    """The printable invoice a signed link opens (``POST …/invoices/{id}/link``): no token
    needed, until the link expires."""
    secret: str = request.app.state.settings.secret_key
    try:
        linked = app_service.linked_invoice(session, secret, token, request.app.state.clock())
    except links.LinkError as exc:
        expired = exc.reason is links.LinkErrorReason.EXPIRED
        key = "invoice_expired" if expired else "invoice_invalid"
        lang: Lang = "de"
        return _render(
            request,
            "link_error",
            lang,
            410 if expired else 404,
            title=PAGES[lang][key],
            text=PAGES[lang][f"{key}_text"].format(minutes=INVOICE_LINK_TTL_S // 60),
        )
    names = {s.stop_id: s.name for s in request.app.state.tariff.stops()}
    html = render_invoice(linked.invoice, names, linked.lang, linked.superseded_by)
    return HTMLResponse(html, headers=INVOICE_HEADERS)
