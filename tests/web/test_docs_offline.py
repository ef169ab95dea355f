"""Everything works offline: the API's documentation pages and the operator pages reference
no asset outside the app, and the documentation's scripts and styles are served by it."""

from __future__ import annotations

import datetime as dt
import re

from backend.api import docs as api_docs
from backend.api.policy import app_routes
from backend.billing import repository as billing_repo
from backend.billing import service as billing_service
from backend.db import make_sessionmaker, transaction
from tests.web.conftest import login

_URL = re.compile(r"""(?:src|href|url)\s*[=(]\s*["']?\s*((?:https?:)?//[^"' )>]+)""", re.I)
_ASSET = re.compile(r"""(?:src|href)=["']([^"']+)["']""", re.I)


def external_references(html: str) -> list[str]:
    """Every URL the page would load or link to off the app (absolute http(s) or
    protocol-relative)."""
    return _URL.findall(html)


def test_the_url_finder_finds_what_a_cdn_page_loads():
    page = (
        '<link href="https://cdn.jsdelivr.net/x.css"><script src="//unpkg.com/y.js"></script>'
        "<style>@import url(http://fonts.example/z)</style>"
        '<a href="/ops/">local</a><svg xmlns="http://www.w3.org/2000/svg"></svg>'
    )
    assert external_references(page) == [
        "https://cdn.jsdelivr.net/x.css",
        "//unpkg.com/y.js",
        "http://fonts.example/z",
    ]


async def test_swagger_and_redoc_load_only_the_apps_own_assets(client):
    for path in ("/docs", "/redoc"):
        page = await client.get(path)
        assert page.status_code == 200, path
        assert external_references(page.text) == [], path
        assets = [a for a in _ASSET.findall(page.text) if a.startswith(api_docs.ASSETS_PATH)]
        assert assets, f"{path} loads no served asset"
        for asset in assets:
            served = await client.get(asset)
            assert served.status_code == 200, asset
            assert len(served.content) > 1000, asset
            name = asset.rsplit("/", 1)[1]
            assert served.headers["content-type"].startswith(api_docs.ASSETS[name])
    swagger = (await client.get("/docs")).text
    assert "swagger-ui-bundle.js" in swagger
    assert "redoc.standalone.js" in (await client.get("/redoc")).text
    assert (await client.get("/openapi.json")).status_code == 200
    assert (await client.get("/docs/oauth2-redirect")).status_code == 200


async def test_an_unknown_asset_is_not_found(client):
    response = await client.get(f"{api_docs.ASSETS_PATH}/..%2Fcore.py")
    assert response.status_code == 404
    assert (await client.get(f"{api_docs.ASSETS_PATH}/evil.js")).status_code == 404


async def test_no_operator_page_references_anything_off_the_app(client, app, engine, riders, clock):
    """Every GET page under /ops (found from the app's routes, path parameters filled from
    the riders' data) loads nothing from outside the app."""
    passenger_id = riders[0].passenger_id
    with transaction(make_sessionmaker(engine)) as session:
        invoices = billing_service.close_month(session, "2026-11", clock())
        trip_id = billing_repo.passenger_trips(
            session, passenger_id, dt.date(2026, 11, 1), dt.date(2026, 11, 30)
        )[0].trip_id
    invoice_id = next(i.invoice_id for i in invoices if i.passenger_id == passenger_id)
    values = {"trip_id": trip_id, "passenger_id": passenger_id, "invoice_id": str(invoice_id)}
    login_page = await client.get("/ops/login")
    assert external_references(login_page.text) == []
    await login(client, engine, "viewer")
    checked = ["/ops/login"]
    for route in app_routes(app):
        path = route.path
        if route.method != "GET" or not path.startswith("/ops/") or path == "/ops/login":
            continue
        for name in re.findall(r"{(\w+)}", path):
            assert name in values, f"{path}: give {name!r} a value here"
            path = path.replace("{" + name + "}", values[name])
        response = await client.get(path)
        assert response.status_code == 200, path
        assert external_references(response.text) == [], path
        checked.append(path)
    assert len(checked) >= 15
