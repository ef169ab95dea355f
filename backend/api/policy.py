"""Who may call which route: the one table of operator roles, used by the JSON API (bearer
token, ``deps.current_operator``) and the web pages (session cookie, ``web.auth.web_operator``)
alike, and the routes that need no operator, each with its reason.

Every route the app answers is in exactly one of the two tables; ``check_routes`` (run when
the app is built) refuses an app with a route in neither, so a new route cannot be forgotten.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final

from fastapi import FastAPI, Request
from fastapi.routing import iter_route_contexts

from backend import models

Route = tuple[str, str]
"""(HTTP method, path template as the app answers it, e.g. ``/v1/trips/{trip_id}``)."""

READ_METHODS: Final = frozenset({"GET", "HEAD"})
"""Methods that change nothing; every other method of an operator route needs an agent."""

OPERATOR_ROUTES: Final[Mapping[Route, str]] = {
    # --- JSON API, bearer token ---
    ("GET", "/v1/stops"): "viewer",
    ("GET", "/v1/trips"): "viewer",
    ("GET", "/v1/charges"): "viewer",
    ("GET", "/v1/trips/{trip_id}"): "viewer",
    ("GET", "/v1/trips/{trip_id}/trace"): "viewer",
    ("GET", "/v1/trips.csv"): "viewer",
    ("GET", "/v1/disputes"): "viewer",
    ("GET", "/v1/operations"): "viewer",
    ("GET", "/v1/revenue"): "viewer",
    ("GET", "/v1/revenue.csv"): "viewer",
    ("POST", "/v1/reconcile"): "agent",  # rebuilds a day's trips (and so its bills)
    ("POST", "/v1/disputes/{dispute_id}/resolve"): "agent",
    ("POST", "/v1/trips/{trip_id}/corrections"): "agent",
    ("GET", "/v1/entitlements"): "viewer",
    ("POST", "/v1/entitlements/{entitlement_id}/decide"): "agent",  # revoking re-bills
    ("POST", "/v1/billing/close-month"): "admin",  # issues every passenger's invoice
    # --- web pages, session cookie ---
    ("GET", "/ops/"): "viewer",
    ("GET", "/ops/trips"): "viewer",
    ("GET", "/ops/trips.csv"): "viewer",
    ("GET", "/ops/trips/{trip_id}"): "viewer",
    ("GET", "/ops/disputes"): "viewer",
    ("GET", "/ops/passengers/{passenger_id}/invoices"): "viewer",
    ("GET", "/ops/passengers/{passenger_id}/invoices/{invoice_id}"): "viewer",
    ("GET", "/ops/operations"): "viewer",
    ("GET", "/ops/revenue"): "viewer",
    ("GET", "/ops/revenue.csv"): "viewer",
    ("GET", "/ops/revenue/daily.csv"): "viewer",
    ("GET", "/ops/search"): "viewer",
    ("GET", "/ops/passengers"): "viewer",
    ("GET", "/ops/passengers/{passenger_id}"): "viewer",
    ("GET", "/ops/quality"): "viewer",
    ("POST", "/ops/trips/{trip_id}/corrections"): "agent",
    ("POST", "/ops/disputes/{dispute_id}/resolve"): "agent",
    ("GET", "/ops/entitlements"): "viewer",
    ("POST", "/ops/entitlements/{entitlement_id}/decide"): "agent",
    ("POST", "/ops/billing/close-month"): "admin",
}
"""The minimum role of every route that needs a logged-in operator."""

NOT_OPERATOR_ROUTES: Final[Mapping[Route, str]] = {
    ("GET", "/openapi.json"): "public: the API's description",
    ("GET", "/docs"): "public: the API's documentation",
    ("GET", "/docs/oauth2-redirect"): "public: part of the API's documentation",
    ("GET", "/redoc"): "public: the API's documentation",
    ("GET", "/docs/assets/{name}"): "public: the documentation's scripts and styles",
    ("GET", "/metrics"): "public: Prometheus scrapes it (restrict it in the network)",
    ("GET", "/v1/health"): "public: load balancers ask it",
    ("POST", "/v1/passengers"): "public: passenger sign-up, limited per address",
    ("POST", "/v1/vehicles/{vehicle_id}/batches"): "vehicle: HMAC signature of the upload",
    ("POST", "/v1/devices/{device_id}/sightings"): (
        "device: HMAC signature of the upload with the device's upload key"
    ),
    ("POST", "/v1/passengers/{passenger_id}/devices"): "passenger token, own id only",
    ("GET", "/v1/passengers/{passenger_id}/trips"): "passenger token, own id only",
    ("GET", "/v1/passengers/{passenger_id}/status"): "passenger token, own id only",
    ("GET", "/v1/passengers/{passenger_id}/balance"): "passenger token, own id only",
    ("GET", "/v1/passengers/{passenger_id}/invoices"): "passenger token, own id only",
    ("GET", "/v1/passengers/{passenger_id}/invoices/{invoice_id}"): "passenger token, own id only",
    ("GET", "/v1/passengers/{passenger_id}/invoices/{invoice_id}/html"): (
        "passenger token, own id only"
    ),
    ("POST", "/v1/passengers/{passenger_id}/trips/{trip_id}/disputes"): (
        "passenger token, own id only"
    ),
    ("GET", "/v1/passengers/{passenger_id}/disputes"): "passenger token, own id only",
    ("GET", "/v1/passengers/{passenger_id}/export"): "passenger token, own id only",
    ("POST", "/v1/passengers/{passenger_id}/entitlements"): "passenger token, own id only",
    ("PUT", "/v1/passengers/{passenger_id}/trips/{trip_id}/companions"): (
        "passenger token, own id only"
    ),
    ("GET", "/v1/passengers/{passenger_id}/entitlements"): "passenger token, own id only",
    ("POST", "/v1/passengers/{passenger_id}/entitlements/{entitlement_id}/withdraw"): (
        "passenger token, own id only"
    ),
    ("DELETE", "/v1/passengers/{passenger_id}"): "passenger token, own id only",
    ("GET", "/v1/passengers/{passenger_id}/events"): "passenger token, own id only",
    ("POST", "/v1/passengers/{passenger_id}/push-subscriptions"): "passenger token, own id only",
    ("DELETE", "/v1/passengers/{passenger_id}/push-subscriptions"): (
        "passenger token, own id only"
    ),
    ("POST", "/v1/passengers/{passenger_id}/invoices/{invoice_id}/link"): (
        "passenger token, own id only"
    ),
    ("GET", "/app/"): "public: the web app's page (its data comes with the passenger token)",
    ("GET", "/app/start"): "public: the web app's sign-up and sign-in page",
    ("GET", "/app/month"): "public: the web app's page (data with the passenger token)",
    ("GET", "/app/invoices"): "public: the web app's page (data with the passenger token)",
    ("GET", "/app/disputes"): "public: the web app's page (data with the passenger token)",
    ("GET", "/app/tickets"): "public: the web app's page (data with the passenger token)",
    ("GET", "/app/account"): "public: the web app's page (data with the passenger token)",
    ("GET", "/app/static/app.js"): "public: the web app's script",
    ("GET", "/app/static/app.css"): "public: the web app's style sheet",
    ("GET", "/app/static/icon.svg"): "public: the web app's icon",
    ("GET", "/app/sw.js"): "public: the web app's service worker",
    ("GET", "/app/manifest.webmanifest"): "public: the web app's manifest",
    ("GET", "/app/invoices/open/{token}"): "signed invoice link, expires (app_web/links.py)",
    ("GET", "/ops/login"): "web login: the form",
    ("POST", "/ops/login"): "web login: checks the password (throttled, CSRF token)",
    ("POST", "/ops/logout"): "web login: ends whatever session the cookie names (CSRF token)",
    ("GET", "/ops/static/ops.css"): "public: the pages' style sheet",
    ("GET", "/v1/passengers/{passenger_id}/ticket"): "passenger token, own id only",
    ("GET", "/v1/passengers/{passenger_id}/ticket.svg"): "passenger token, own id only",
    ("GET", "/v1/inspect/keys"): "public: the operator's public ticket keys",
    ("GET", "/v1/inspect/revocations"): "public: signed list of random ticket ids",
    ("POST", "/v1/inspect/verify"): "public: checks a ticket anyone holding it could show",
    ("GET", "/inspect"): "public: the inspector's page (public keys, signed lists)",
    ("POST", "/inspect"): "public: the page's check on the server (changes nothing)",
    ("GET", "/inspect/static/inspect.js"): "public: the inspector page's script",
    ("GET", "/inspect/static/inspect.css"): "public: the inspector page's style sheet",
}
"""Every route that needs no operator, with how it is protected instead."""


class UnclassifiedRouteError(RuntimeError):
    """A route the policy does not cover (or covers wrongly): fix ``backend/api/policy.py``."""


def rank(role: str) -> int:
    return models.OPERATOR_ROLES.index(role)


def allows(role: str, minimum: str) -> bool:
    """Whether an operator with ``role`` may call a route that needs ``minimum``."""
    return rank(role) >= rank(minimum)


@dataclass(frozen=True)
class AppRoute:
    """One (method, path template) the app answers, and the route object behind it."""

    method: str
    path: str
    route: object
    dependant: Any

    @property
    def key(self) -> Route:
        return (self.method, self.path)


def app_routes(app: FastAPI) -> Iterator[AppRoute]:
    """Every (method, path template) ``app`` answers, with prefixes of included routers
    applied; HEAD where GET is answered too is GET's twin and left out."""
    for context in iter_route_contexts(app.routes):
        methods = set(context.methods or {"ANY"})  # a mount answers every method
        if "GET" in methods:
            methods.discard("HEAD")
        dependant = getattr(context, "dependant", None)
        for method in sorted(methods):
            yield AppRoute(method, context.path or "", context.original_route, dependant)


def _calls(dependant: Any) -> Iterator[Callable[..., Any]]:
    stack = [dependant] if dependant is not None else []
    while stack:
        node = stack.pop()
        if node.call is not None:
            yield node.call
        stack.extend(node.dependencies)


def problems(app: FastAPI, operator_dependencies: Collection[Callable[..., Any]]) -> list[str]:
    """What is wrong with ``app``'s routes against the policy, one line each (empty: all
    well). ``operator_dependencies`` are the dependencies that log an operator in and apply
    this policy; an operator route must use one, any other route none."""
    found: set[Route] = set()
    out: list[str] = []
    for r in app_routes(app):
        found.add(r.key)
        where = f"{r.method} {r.path}"
        role = OPERATOR_ROUTES.get(r.key)
        guarded = any(call in operator_dependencies for call in _calls(r.dependant))
        if role is None and r.key not in NOT_OPERATOR_ROUTES:
            out.append(
                f"{where}: not in backend/api/policy.py; add it to OPERATOR_ROUTES with the "
                "minimum role, or to NOT_OPERATOR_ROUTES with how it is protected instead"
            )
        elif role is not None and r.key in NOT_OPERATOR_ROUTES:
            out.append(f"{where}: in both OPERATOR_ROUTES and NOT_OPERATOR_ROUTES; keep one")
        elif role is not None and not guarded:
            out.append(
                f"{where}: OPERATOR_ROUTES says {role!r}, but the route logs no operator in; "
                "give it a CurrentOperator (API) or WebOperator (web pages) parameter"
            )
        elif role is None and guarded:
            out.append(
                f"{where}: NOT_OPERATOR_ROUTES lists it, but it asks for an operator login; "
                "move it to OPERATOR_ROUTES with the minimum role"
            )
        elif role is not None and r.method not in READ_METHODS and not allows(role, "agent"):
            out.append(f"{where}: changes state, so it needs at least 'agent', not {role!r}")
    for key in sorted((OPERATOR_ROUTES.keys() | NOT_OPERATOR_ROUTES.keys()) - found):
        out.append(f"{key[0]} {key[1]}: in backend/api/policy.py, but the app has no such route")
    return out


def check_routes(app: FastAPI, operator_dependencies: Collection[Callable[..., Any]]) -> None:
    """Refuse an app whose routes the policy does not cover exactly (see ``problems``)."""
    found = problems(app, operator_dependencies)
    if found:
        raise UnclassifiedRouteError("route policy:\n  " + "\n  ".join(found))


def _route_paths(app: FastAPI, route: object) -> list[str]:
    """The path templates under which the app answers ``route`` (usually one; more if its
    router is included twice)."""
    index: dict[int, list[str]] | None = getattr(app.state, "policy_route_paths", None)
    if index is None or id(route) not in index:
        index = {}
        for r in app_routes(app):
            paths = index.setdefault(id(r.route), [])
            if r.path not in paths:
                paths.append(r.path)
        app.state.policy_route_paths = index
    return index.get(id(route), [])


def required_role(request: Request) -> str:
    """The minimum role for the route ``request`` matched. Fails closed: a route missing
    from ``OPERATOR_ROUTES`` raises (``check_routes`` keeps such an app from starting)."""
    method = "GET" if request.method == "HEAD" else request.method
    route = request.scope.get("route")
    roles = [OPERATOR_ROUTES.get((method, path)) for path in _route_paths(request.app, route)]
    known = [role for role in roles if role is not None]
    if not known or len(known) != len(roles):
        raise UnclassifiedRouteError(
            f"{method} {request.url.path}: asks for an operator but is not in OPERATOR_ROUTES"
        )
    return max(known, key=rank)
