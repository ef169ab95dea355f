"""Every operator route × every role, generated from the app's own routes, against the one
policy table (``backend/api/policy.py``): a route nobody classified fails here (and stops the
app), and a route whose answer disagrees with its row fails with the route and the role named.

Allowed means "not refused": the requests carry placeholder ids and no body, so an allowed
role gets a 404 or 422 where a real request would get its 200.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack

import httpx
import pytest

from backend.api import policy
from backend.api.deps import CurrentOperator, current_operator
from backend.operators.web.auth import web_operator
from tests.web.conftest import csrf_of, login

ROLES = ("viewer", "agent", "admin")
"""Lowest first; written out here so the test does not trust ``models.OPERATOR_ROLES``."""
GUARDS = (current_operator, web_operator)
_PATH_PARAM = re.compile(r"\{[^}]+\}")


def _concrete(path: str) -> str:
    # "1" is a valid value for every path parameter (ids are text or positive integers).
    return _PATH_PARAM.sub("1", path)


def _allowed(role: str, needed: str) -> bool:
    return ROLES.index(role) >= ROLES.index(needed)


def _operator_routes(app, prefix: str) -> list[policy.AppRoute]:
    return [r for r in policy.app_routes(app) if r.path.startswith(prefix)]


def test_every_route_of_the_app_is_classified(app):
    assert policy.problems(app, GUARDS) == []
    for r in policy.app_routes(app):
        in_operator = r.key in policy.OPERATOR_ROUTES
        assert in_operator != (r.key in policy.NOT_OPERATOR_ROUTES), r.key
        if in_operator:
            assert r.path.startswith(("/v1/", "/ops/")), f"{r.key}: extend the matrix below"


def test_state_changing_operator_routes_need_at_least_an_agent():
    for (method, path), role in policy.OPERATOR_ROUTES.items():
        assert role in ROLES, (method, path)
        if method not in ("GET", "HEAD"):
            assert role in ("agent", "admin"), f"{method} {path} is open to {role!r}"


def test_the_named_exceptions():
    assert policy.OPERATOR_ROUTES[("POST", "/v1/reconcile")] == "agent"
    assert policy.OPERATOR_ROUTES[("POST", "/v1/billing/close-month")] == "admin"
    assert policy.OPERATOR_ROUTES[("POST", "/ops/billing/close-month")] == "admin"


async def test_a_forgotten_route_stops_the_app_and_fails_closed(app, operators):
    @app.post("/v1/forgotten")
    def forgotten(_operator: CurrentOperator) -> dict[str, str]:
        return {"done": "without any role check"}

    with pytest.raises(policy.UnclassifiedRouteError, match="POST /v1/forgotten: not in"):
        policy.check_routes(app, GUARDS)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://bibo.test") as client:
        r = await client.post(
            "/v1/forgotten", headers={"Authorization": f"Bearer {operators['admin']}"}
        )
    assert r.status_code == 500


def test_an_operator_route_without_a_login_is_refused(app, monkeypatch):
    @app.post("/v1/open-door")
    def open_door() -> None:
        return None

    monkeypatch.setitem(policy.OPERATOR_ROUTES, ("POST", "/v1/open-door"), "agent")
    assert policy.problems(app, GUARDS) == [
        "POST /v1/open-door: OPERATOR_ROUTES says 'agent', but the route logs no operator in; "
        "give it a CurrentOperator (API) or WebOperator (web pages) parameter"
    ]


async def test_every_api_route_answers_every_role_as_the_policy_says(app, client, operators):
    routes = [r for r in _operator_routes(app, "/v1/") if r.key in policy.OPERATOR_ROUTES]
    assert len(routes) >= 12
    wrong = []
    for r in routes:
        needed = policy.OPERATOR_ROUTES[r.key]
        for who in (None, *ROLES):
            headers = {} if who is None else {"Authorization": f"Bearer {operators[who]}"}
            body = {} if r.method == "GET" else {"json": {}}
            response = await client.request(r.method, _concrete(r.path), headers=headers, **body)
            got = response.status_code
            if who is None:
                ok, expected = got == 401, "401"
            elif _allowed(who, needed):
                ok, expected = got not in (401, 403), "allowed"
            else:
                ok, expected = got == 403 and needed in response.text, f"403 naming {needed!r}"
            if not ok:
                wrong.append(f"{r.method} {r.path} as {who}: expected {expected}, got {got}")
    assert wrong == []


@pytest.fixture
async def browsers(app, engine) -> AsyncIterator[dict[str | None, tuple[httpx.AsyncClient, str]]]:
    """A browser per role, logged in, and one not logged in (None); each with its session's
    CSRF token."""
    async with AsyncExitStack() as stack:
        out: dict[str | None, tuple[httpx.AsyncClient, str]] = {}
        for who in (None, *ROLES):
            client = await stack.enter_async_context(
                httpx.AsyncClient(
                    transport=httpx.ASGITransport(app=app), base_url="http://bibo.test"
                )
            )
            if who is None:
                csrf = csrf_of((await client.get("/ops/login")).text)
            else:
                csrf = await login(client, engine, who)
            out[who] = (client, csrf)
        yield out


def _to_login(response: httpx.Response) -> bool:
    return response.status_code == 303 and response.headers["location"].startswith("/ops/login")


async def test_every_page_answers_every_role_as_the_policy_says(app, browsers):
    routes = [r for r in _operator_routes(app, "/ops/") if r.key in policy.OPERATOR_ROUTES]
    assert len(routes) >= 11
    wrong = []
    for r in routes:
        needed = policy.OPERATOR_ROUTES[r.key]
        for who, (client, csrf) in browsers.items():
            body = {} if r.method == "GET" else {"data": {"csrf_token": csrf}}
            response = await client.request(r.method, _concrete(r.path), **body)
            got = response.status_code
            if who is None:
                ok, expected = _to_login(response), "redirect to the login"
            elif _allowed(who, needed):
                ok, expected = got not in (401, 403) and not _to_login(response), "allowed"
            else:
                ok = got == 403 and f"needs the &#39;{needed}&#39; role" in response.text
                expected = f"403 naming {needed!r}"
            if not ok:
                wrong.append(f"{r.method} {r.path} as {who}: expected {expected}, got {got}")
    assert wrong == []
