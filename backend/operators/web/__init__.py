"""The operator web pages (server-rendered). ``install`` adds them to the FastAPI app.

Server-rendered Jinja2 with charts drawn as inline SVG in Python: no JavaScript toolchain to
install or audit, the same services as the JSON API, and pages that print.
"""

from __future__ import annotations

from typing import Literal
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from starlette.middleware.sessions import SessionMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from backend.api import policy
from backend.api.deps import current_operator
from backend.operators.web.auth import (
    LoginRequiredError,
    PageError,
    dummy_password_hash,
    web_operator,
)
from backend.operators.web.browse import router as browse_router
from backend.operators.web.const import SESSION_COOKIE, SESSION_MAX_AGE_S
from backend.operators.web.operations import router as operations_router
from backend.operators.web.routes import error_page, router
from backend.settings import Settings


async def _page_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, PageError)
    return error_page(request, exc)


async def _login_required(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, LoginRequiredError)
    return RedirectResponse(f"/ops/login?next={quote(exc.next_path, safe='/')}", 303)


class SchemeAwareSessions:
    """Starlette's ``SessionMiddleware``, with a ``Secure`` cookie on every answer to an HTTPS
    request (and on every answer if ``always_secure``). ``SessionMiddleware`` fixes the flag
    when it is built, so this keeps one of each and picks by the request's scheme, which
    uvicorn takes from X-Forwarded-Proto only for its trusted proxies."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        always_secure: bool,
        secret_key: str,
        session_cookie: str,
        max_age: int,
        path: str,
        same_site: Literal["lax", "strict", "none"],
    ) -> None:
        def build(https_only: bool) -> SessionMiddleware:
            return SessionMiddleware(
                app,
                secret_key=secret_key,
                session_cookie=session_cookie,
                max_age=max_age,
                path=path,
                same_site=same_site,
                https_only=https_only,
            )

        self._secure = build(https_only=True)
        self._plain = self._secure if always_secure else build(https_only=False)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        secure = scope.get("scheme") in ("https", "wss")
        await (self._secure if secure else self._plain)(scope, receive, send)


def install(app: FastAPI, settings: Settings, *, https_only: bool | None = None) -> None:
    """Mount the operator pages and what they need (signed session cookies) on ``app``, then
    check every route of ``app`` against the role policy (``backend/api/policy.py``).

    The session cookie is ``HttpOnly``, ``SameSite=Lax``, scoped to ``/ops``, and ``Secure``
    on answers to HTTPS requests, and on all answers in production (``https_only`` overrides:
    True always, False only over HTTPS).
    """
    if settings.secret_key is None:  # the settings refuse this outside development
        raise ValueError("BIBO_SECRET_KEY: needed to sign operator sessions")
    app.add_middleware(
        SchemeAwareSessions,
        always_secure=settings.environment == "production" if https_only is None else https_only,
        secret_key=settings.secret_key,
        session_cookie=SESSION_COOKIE,
        max_age=SESSION_MAX_AGE_S,
        path="/ops",
        same_site="lax",
    )
    app.add_exception_handler(PageError, _page_error)
    app.add_exception_handler(LoginRequiredError, _login_required)
    app.include_router(router)
    app.include_router(operations_router)
    app.include_router(browse_router)
    # Include further routers above: this checks the app as built so far.
    policy.check_routes(app, (current_operator, web_operator))
    dummy_password_hash()  # computed now, so the first login attempt takes no longer
