"""Every HTML page bibo serves, checked by axe-core in Debian's Chromium: no serious or
critical WCAG 2.1 A/AA violation, at 360 px and at 1280 px.

The pages are found from the application's own routes (every GET route under ``/ops``,
``/app`` and ``/inspect`` that answers HTML), so a new page is checked without anyone
remembering to add it here; a path parameter this module cannot fill fails the test and
names the parameter. The data is the operator browser test's (``test_browser.prepared``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from backend.api.app import create_app
from backend.api.policy import app_routes
from backend.billing import repository as billing_repo
from backend.db import make_engine, transaction
from backend.settings import Settings
from tests.web import test_browser as world
from tests.web.axe import blocking_violations, describe
from tests.web.conftest import PASSWORD
from tests.web.test_app_browser import TOKEN, known_token
from tests.web.test_browser import AGENT, ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, OCTOBER, Prepared

prepared = world.prepared
server = world.server
"""The operator browser test's fixtures: its database and ``bibo serve`` on it."""

AREAS = ("/ops", "/app", "/inspect")
"""Where bibo serves pages people read (the JSON API is not a page)."""
NOT_PAGES = (".csv", ".css", ".js", ".json", ".png", ".svg", ".webmanifest", "/logout")
"""Route suffixes that answer something other than a page."""
WIDTHS = (360, 1280)


def _app_routes(database_url: str) -> FastAPI:
    engine = make_engine(database_url)
    settings = Settings(
        database_url=database_url, reconcile_in_background=False, environment="development"
    )
    return create_app(settings=settings, engine=engine, migrate=False)


def _page_paths(prepared: Prepared, server: str) -> list[str]:
    """The GET page routes under ``AREAS`` with their path parameters filled in."""
    app = _app_routes(prepared.database_url)
    with transaction(app.state.sessions) as session:
        invoice = billing_repo.latest_invoice(session, prepared.passenger_id, OCTOBER)
    assert invoice is not None
    link = httpx.post(
        f"{server}/v1/passengers/{prepared.passenger_id}/invoices/{invoice.invoice_id}/link",
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    link.raise_for_status()
    values = {
        "trip_id": prepared.low_trip_id,
        "passenger_id": prepared.passenger_id,
        "month": OCTOBER,
        "invoice_id": str(invoice.invoice_id),
        "token": link.json()["url"].rsplit("/", 1)[1],
    }
    paths: list[str] = []
    for route in app_routes(app):
        path = route.path
        if route.method != "GET" or not path.startswith(AREAS) or path.endswith(NOT_PAGES):
            continue
        if "/static/" in path:
            continue
        for name in re.findall(r"{(\w+)(?::\w+)?}", path):
            if name not in values:
                pytest.fail(f"{path}: no value for the path parameter {name!r}; add one here")
            path = re.sub(r"{" + name + r"(?::\w+)?}", values[name], path)
        paths.append(path)
    return sorted(set(paths))


@pytest.fixture
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


def _log_in(page: Any, server: str, passenger_id: str) -> None:
    """An operator on /ops (a session cookie) and rider A in /app (its token in the page's
    storage), so every page shows what its users see."""
    page.goto(f"{server}/ops/login")
    page.get_by_label("Operator name").fill(AGENT)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{server}/ops/")
    page.goto(f"{server}/app/start")
    page.get_by_label("Fahrgast-Nummer").fill(passenger_id)
    page.get_by_label("Zugangsschlüssel").fill(TOKEN)
    page.get_by_role("button", name="Anmelden").click()
    page.locator("#flash").filter(has_text="Angemeldet.").wait_for()


def test_every_page_has_no_serious_accessibility_violation(
    server: str, prepared: Prepared, browser: Any
) -> None:
    known_token(prepared)
    paths = _page_paths(prepared, server)
    assert f"/ops/trips/{prepared.low_trip_id}" in paths  # the discovery found the pages
    assert all(any(p.startswith(area) for p in paths) for area in AREAS), paths
    out = ARTIFACTS / "accessibility"
    out.mkdir(parents=True, exist_ok=True)
    failures: list[str] = []
    for width in WIDTHS:
        # axe-core is injected as a script: the pages' CSP (rightly) refuses that.
        page = browser.new_page(viewport={"width": width, "height": 800}, bypass_csp=True)
        page.set_default_timeout(15_000)
        _log_in(page, server, prepared.passenger_id)
        for path in paths:
            response = page.goto(f"{server}{path}")
            assert response is not None
            if response.status >= 400 or "html" not in response.headers.get("content-type", ""):
                failures.append(f"{path} at {width} px: HTTP {response.status}")
                continue
            page.locator("h1").first.wait_for()
            page.wait_for_timeout(300)  # /app's script fills the page (its event stream stays open)
            found = blocking_violations(page)
            if found:
                name = path.strip("/").replace("/", "_") or "root"
                page.screenshot(path=str(Path(out, f"{name}-{width}.png")), full_page=True)
                failures.append(f"{path} at {width} px:\n{describe(found)}")
        page.close()
    assert not failures, "\n\n".join(failures)
