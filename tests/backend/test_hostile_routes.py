"""Every route of the app, API and operator pages, walked with hostile path parameters,
query parameters and text fields, on SQLite and PostgreSQL: never a server error (issue 11).

Generated from the app's routes, so a new route is walked too; a route with a request body
must have a valid skeleton below (the test says so when one is missing), so that each hostile
text field reaches the route's own code rather than failing on a missing sibling field.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest
from fastapi.params import Form

from backend.api import policy
from tests.web.conftest import login

HOSTILE_TEXT = (
    "\x00",
    "a\x00b",
    "\x1b[31m",
    "x" * 300,
    "²",
    "٢٠٢٦-١١",
    "２０２６",
    "\u202e\u200d",
    "😀",
    "../../etc/passwd",
    "'; DROP TABLE trips; --",
    "<script>alert(1)</script>",
)
HOSTILE_NUMBERS = ("9223372036854775808", "-9223372036854775809", "1" + "0" * 30, "-1", "0")
HOSTILE = HOSTILE_TEXT + HOSTILE_NUMBERS

VALID_QUERY = {"service_day": "2026-11-04", "month": "2026-11", "status": "open"}

# A valid body per route that takes one; each string field is replaced by hostile text in turn.
BODY_SKELETONS: dict[tuple[str, str], dict[str, Any]] = {
    ("POST", "/v1/passengers"): {"rider_category": "adult"},
    ("POST", "/v1/trips/{trip_id}/corrections"): {"reason": "left earlier", "cancelled": True},
    ("POST", "/v1/disputes/{dispute_id}/resolve"): {"action": "reject", "note": "checked"},
    ("POST", "/v1/passengers/{passenger_id}/trips/{trip_id}/disputes"): {
        "reason": "I was not on that bus"
    },
    ("POST", "/v1/passengers/{passenger_id}/entitlements"): {
        "kind": "jobticket",
        "valid_from": "2026-11-01",
        "valid_to": "2026-11-30",
        "scope_areas": ["43100"],
        "evidence_ref": "JobTicket 12345",
    },
    ("POST", "/v1/entitlements/{entitlement_id}/decide"): {"decision": "verify", "note": "seen"},
    ("PUT", "/v1/passengers/{passenger_id}/trips/{trip_id}/companions"): {"child": 2, "bike": 1},
    ("POST", "/v1/passengers/{passenger_id}/push-subscriptions"): {
        "endpoint": "https://fcm.googleapis.com/fcm/send/abc123",
        "keys": {"p256dh": "B" + "A" * 86, "auth": "c2VjcmV0LWF1dGg"},
    },
    ("POST", "/v1/inspect/verify"): {"payload": "QkkB", "vehicle_id": "RLG-4711"},
}
# Signed uploads have their own hostile-input suites (test_hostile_input.py,
# test_phone_hostile_input.py).
WALKED_ELSEWHERE = {
    ("POST", "/v1/vehicles/{vehicle_id}/batches"),
    ("POST", "/v1/devices/{device_id}/sightings"),
}


def _path_params(path: str) -> list[str]:
    return [part[1:-1] for part in path.split("/") if part.startswith("{")]


def _fill(path: str, values: dict[str, str]) -> str:
    for name, value in values.items():
        path = path.replace("{" + name + "}", quote(value, safe=""))
    return path


def _form_fields(route: policy.AppRoute) -> list[str]:
    return [p.alias for p in route.dependant.body_params if isinstance(p.field_info, Form)]


def _json_body(route: policy.AppRoute) -> bool:
    return any(not isinstance(p.field_info, Form) for p in route.dependant.body_params)


@pytest.fixture
async def callers(client, engine, operators, riders):
    """Credentials for every kind of route: an admin's token and web session, a rider."""
    csrf = await login(client, engine, "admin")
    rider = riders[0]
    trips = await client.get(
        f"/v1/passengers/{rider.passenger_id}/trips",
        params={"month": "2026-11"},
        headers=rider.auth,
    )
    return {
        "admin": {"Authorization": f"Bearer {operators['admin']}"},
        "rider": rider,
        "csrf": csrf,
        "trip_id": trips.json()[0]["trip_id"],
    }


async def test_no_hostile_parameter_or_field_causes_a_server_error(client, app, callers):
    valid_path = {
        "trip_id": callers["trip_id"],
        "passenger_id": callers["rider"].passenger_id,
        "dispute_id": "1",
        "invoice_id": "1",
        "entitlement_id": "1",
        "vehicle_id": "RLG-4711",
        "name": "swagger-ui.css",
        "token": "not-a-signed-link",
    }
    failures: list[str] = []
    walked = 0

    async def send(route: policy.AppRoute, path: dict[str, str], **kw: Any) -> None:
        nonlocal walked
        headers = dict(callers["admin"])
        if route.path.startswith("/v1/passengers/"):
            headers = callers["rider"].auth
        data = kw.pop("data", None)
        if route.method != "GET" and route.path.startswith("/ops/"):
            data = {"csrf_token": callers["csrf"], **(data or {})}
        response = await client.request(
            route.method, _fill(route.path, path), headers=headers, data=data, **kw
        )
        walked += 1
        if response.status_code >= 500:
            failures.append(f"{route.method} {route.path} {path} {kw} {data}: {response.text}")

    routes = [
        r
        for r in policy.app_routes(app)
        if r.dependant is not None and r.key not in WALKED_ELSEWHERE
    ]
    # Logging out ends the session the pages are walked with: last.
    routes.sort(key=lambda r: r.key == ("POST", "/ops/logout"))
    assert len(routes) > 40
    for route in routes:
        names = _path_params(route.path)
        defaults = {n: valid_path[n] for n in names}
        query = {p.alias for p in route.dependant.query_params}
        required_query = {k: v for k, v in VALID_QUERY.items() if k in query}
        body = BODY_SKELETONS.get(route.key)
        if _json_body(route):
            assert body is not None, f"{route.key}: add a valid body to BODY_SKELETONS"
        for value in HOSTILE:
            for name in names:
                await send(route, {**defaults, name: value}, params=required_query, json=body)
            for name in query:
                await send(route, defaults, params={**required_query, name: value}, json=body)
            for name in _form_fields(route):
                await send(route, defaults, params=required_query, data={name: value})
            for name, field in (body or {}).items():
                if isinstance(field, str):
                    await send(route, defaults, params=required_query, json={**body, name: value})
    assert failures == []
    assert walked > 1000
