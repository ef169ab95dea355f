"""The passenger web app's pages (issue 16 item 3): each renders in German (default) and
English, fits a 360 px screen (the viewport meta), loads nothing from another origin, names
its language, has one h1 and a label for every field; the PWA's manifest, service worker and
icon are served."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser

import pytest

from backend.app_web.routes import PAGES_BY_PATH
from backend.app_web.texts import PAGES, SCRIPT

PAGE_PATHS = sorted(PAGES_BY_PATH)
ASSETS = ("/app/static/app.js", "/app/static/app.css", "/app/static/icon.svg", "/app/sw.js")
EXTERNAL = re.compile(r"(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}", re.IGNORECASE)


class Page(HTMLParser):
    """What the checks look at in a page."""

    def __init__(self) -> None:
        super().__init__()
        self.lang: str | None = None
        self.h1 = 0
        self.viewport: str | None = None
        self.fields: list[dict[str, str | None]] = []
        self.labels: set[str] = set()
        self.urls: list[str] = []
        self.inline_scripts: list[str] = []
        self._script: dict[str, str | None] | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "html":
            self.lang = a.get("lang")
        if tag == "h1":
            self.h1 += 1
        if tag == "meta" and a.get("name") == "viewport":
            self.viewport = a.get("content")
        if tag in ("input", "select", "textarea") and a.get("type") != "hidden":
            self.fields.append(a)
        if tag == "label" and a.get("for"):
            self.labels.add(a["for"] or "")
        for key in ("src", "href", "action"):
            if a.get(key):
                self.urls.append(a[key] or "")
        if tag == "script":
            self._script = a

    def handle_data(self, data):
        if self._script is not None and not self._script.get("src") and data.strip():
            self.inline_scripts.append(self._script.get("type") or "text/javascript")

    def handle_endtag(self, tag):
        if tag == "script":
            self._script = None


def parse(html: str) -> Page:
    page = Page()
    page.feed(html)
    return page


@pytest.mark.parametrize("lang", ["de", "en"])
@pytest.mark.parametrize("path", PAGE_PATHS)
async def test_every_page_renders_in_both_languages(client, path, lang):
    params = {} if lang == "de" else {"lang": lang}
    response = await client.get(path, params=params)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/html")
    page = parse(response.text)
    assert page.lang == lang
    assert page.h1 == 1
    assert page.viewport == "width=device-width, initial-scale=1"
    title_key = PAGES_BY_PATH[path][1]
    assert f"<h1>{PAGES[lang][title_key]}</h1>" in response.text
    # Every field has a label pointing at it (screen readers name it).
    for field in page.fields:
        assert field.get("id") in page.labels, (path, field)
    # Only the JSON data block is inline; it is not run (CSP: script-src 'self').
    assert page.inline_scripts == ["application/json"]
    assert "script-src 'self'" in response.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    # Nothing from another origin, in the page or its URLs.
    assert not EXTERNAL.search(response.text), EXTERNAL.search(response.text)
    assert all(u.startswith(("/", "#")) or u.startswith("?") for u in page.urls), page.urls
    # The other language is one link away, marked with its language.
    other = "en" if lang == "de" else "de"
    assert f'hreflang="{other}"' in response.text
    texts = json.loads(re.search(r'id="bibo-texts">(.*?)</script>', response.text).group(1))
    assert texts == SCRIPT[lang]


async def test_an_unknown_language_is_refused(client):
    assert (await client.get("/app/", params={"lang": "fr"})).status_code == 422


async def test_the_assets_are_served_and_load_nothing_from_elsewhere(client):
    for path in ASSETS:
        response = await client.get(path)
        assert response.status_code == 200, path
        assert response.headers["x-content-type-options"] == "nosniff"
        assert not EXTERNAL.search(response.text.replace("http://www.w3.org/2000/svg", "")), path
    assert (
        (await client.get("/app/static/app.js"))
        .headers["content-type"]
        .startswith("text/javascript")
    )
    assert (
        (await client.get("/app/static/icon.svg"))
        .headers["content-type"]
        .startswith("image/svg+xml")
    )
    worker = await client.get("/app/sw.js")
    assert worker.headers["service-worker-allowed"] == "/app/"
    script = (await client.get("/app/static/app.js")).text
    # Server data is written as text, never parsed as HTML.
    assert "innerHTML" not in script
    assert "insertAdjacentHTML" not in script


@pytest.mark.parametrize("lang", ["de", "en"])
async def test_the_manifest_makes_the_app_installable(client, lang):
    response = await client.get("/app/manifest.webmanifest", params={"lang": lang})
    assert response.headers["content-type"].startswith("application/manifest+json")
    manifest = response.json()
    assert manifest["lang"] == lang
    assert manifest["name"] == PAGES[lang]["app"]
    assert manifest["scope"] == "/app/"
    assert manifest["start_url"].startswith("/app/")
    assert manifest["display"] == "standalone"
    assert {i["type"] for i in manifest["icons"]} == {"image/svg+xml"}
    assert {i.get("purpose", "any") for i in manifest["icons"]} == {"any", "maskable"}
    for icon in manifest["icons"]:
        assert (await client.get(icon["src"])).status_code == 200


async def test_the_status_page_has_a_place_for_the_ticket_and_live_regions(client):
    html = (await client.get("/app/")).text
    assert 'id="ticket"' in html
    assert 'id="live"' in html
    assert html.count('aria-live="polite"') >= 3
    assert 'class="skip" href="#main"' in html
    assert 'aria-current="page"' in html


async def test_the_month_page_takes_a_month(client):
    assert (await client.get("/app/month", params={"month": "2026-11"})).status_code == 200
    assert (await client.get("/app/month", params={"month": "11/2026"})).status_code == 422
    assert (await client.get("/app/", params={"month": "2026-11"})).status_code == 422
