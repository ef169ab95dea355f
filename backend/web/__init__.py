"""The operator web pages (server-rendered). ``install`` adds them to the FastAPI app.

Server-rendered Jinja2 with charts drawn as inline SVG in Python: no JavaScript toolchain to
install or audit, the same services as the JSON API, and pages that print.
"""

from __future__ import annotations

from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from starlette.middleware.sessions import SessionMiddleware

from backend.settings import Settings
from backend.web.auth import LoginRequiredError, PageError
from backend.web.const import SESSION_COOKIE, SESSION_MAX_AGE_S
from backend.web.routes import error_page, router


async def _page_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, PageError)
    return error_page(request, exc)


async def _login_required(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, LoginRequiredError)
    return RedirectResponse(f"/ops/login?next={quote(exc.next_path, safe='/')}", 303)


def install(app: FastAPI, settings: Settings, *, https_only: bool | None = None) -> None:
    """Mount the operator pages and what they need (signed session cookies) on ``app``.

    The session cookie is ``Secure`` in production (``https_only`` overrides), ``HttpOnly``,
    ``SameSite=Lax`` and scoped to ``/ops``.
    """
    if settings.secret_key is None:  # the settings refuse this outside development
        raise ValueError("BIBO_SECRET_KEY: needed to sign operator sessions")
    app.add_middleware(
        SessionMiddleware,
        secret_key=settings.secret_key,
        session_cookie=SESSION_COOKIE,
        max_age=SESSION_MAX_AGE_S,
        path="/ops",
        same_site="lax",
        https_only=settings.environment == "production" if https_only is None else https_only,
    )
    app.add_exception_handler(PageError, _page_error)
    app.add_exception_handler(LoginRequiredError, _login_required)
    app.include_router(router)
