"""Operator login for the web pages: signed session cookies, a per-session CSRF token on
every POST, roles, and the login throttle.

The session cookie (Starlette ``SessionMiddleware``, signed with ``BIBO_SECRET_KEY``) holds
the operator id, a fingerprint of the password hash (changing the password ends every
session) and the CSRF token. The operator is loaded from the database on each request, so a
changed role applies at once.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from collections.abc import Callable
from functools import cache
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from backend import models, repository
from backend.api.deps import SessionDep
from backend.security import check_password, hash_password
from backend.web import queries
from backend.web.const import CSRF_TOKEN_BYTES, LOGIN_MAX_FAILURES, LOGIN_WINDOW

CSRF_FIELD = "csrf_token"
_OPERATOR, _PASSWORD, _CSRF = "operator_id", "pw", "csrf"


class PageError(Exception):
    """Answered with the error page: a status code and a message an operator can act on."""

    def __init__(
        self, status_code: int, title: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.title = title
        self.message = message
        self.headers = headers or {}


class LoginRequiredError(Exception):
    """No (valid) session: answered with a redirect to the login page."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


def now(request: Request) -> dt.datetime:
    clock: Callable[[], dt.datetime] = request.app.state.clock
    return clock()


# --- CSRF -----------------------------------------------------------------------------------


def csrf_token(request: Request) -> str:
    """This session's anti-forgery token (created on first use)."""
    token = request.session.get(_CSRF)
    if not isinstance(token, str):
        token = secrets.token_urlsafe(CSRF_TOKEN_BYTES)
        request.session[_CSRF] = token
    return token


async def check_csrf(request: Request) -> None:
    """Every POST form carries the session's token; SameSite=Lax cookies are the first
    line, this is the second (and covers same-site attackers)."""
    form = await request.form()
    sent = form.get(CSRF_FIELD)
    expected = request.session.get(_CSRF)
    if not (
        isinstance(sent, str)
        and isinstance(expected, str)
        and secrets.compare_digest(sent.encode(), expected.encode())
    ):
        raise PageError(
            403,
            "Form expired",
            "The form's security token is missing or does not match this session (the "
            "session may have expired). Reload the page and submit it again.",
        )


CsrfChecked = Depends(check_csrf)


# --- login and the throttle -----------------------------------------------------------------


def _password_fingerprint(password_hash: str | None) -> str:
    return hashlib.sha256((password_hash or "").encode()).hexdigest()[:16]


@cache
def _dummy_hash() -> str:
    """Checked when the name is unknown, so the answer takes as long as for a known name."""
    return hash_password(secrets.token_urlsafe(16))


def throttle_key(name: str) -> str:
    return name.strip().casefold()[:200]


def _aware(t: dt.datetime) -> dt.datetime:
    # SQLite hands timestamps back without their zone; they were written in UTC.
    return t if t.tzinfo is not None else t.replace(tzinfo=dt.UTC)


def throttle_wait(failures: list[dt.datetime], now: dt.datetime) -> dt.timedelta | None:
    """How long ``now``'s login attempt must wait, given the failures inside the window
    (oldest first); None when it may go ahead."""
    if len(failures) < LOGIN_MAX_FAILURES:
        return None
    frees_at = _aware(failures[-LOGIN_MAX_FAILURES]) + LOGIN_WINDOW
    return max(frees_at - now, dt.timedelta(seconds=1))


class LoginThrottledError(Exception):
    def __init__(self, wait: dt.timedelta) -> None:
        super().__init__(f"retry in {wait}")
        self.wait = wait


class LoginFailedError(Exception):
    pass


def attempt_login(session: Session, name: str, password: str, now: dt.datetime) -> models.Operator:
    """The operator with this name and password; raises ``LoginThrottledError`` after
    ``LOGIN_MAX_FAILURES`` failures in ``LOGIN_WINDOW`` (without checking the password) and
    ``LoginFailedError`` otherwise. Failures are recorded in the caller's transaction."""
    key = throttle_key(name)
    since = now - LOGIN_WINDOW
    wait = throttle_wait(queries.failed_logins_since(session, key, since), now)
    if wait is not None:
        raise LoginThrottledError(wait)
    operator = repository.operator_by_name(session, name.strip())
    stored = operator.password_hash if operator is not None else _dummy_hash()
    if operator is None or not check_password(password, stored):
        queries.prune_failed_logins(session, since)
        queries.add_failed_login(session, key, now)
        raise LoginFailedError
    queries.forget_failed_logins(session, key)
    return operator


def start_session(request: Request, operator: models.Operator) -> None:
    """A fresh session (new CSRF token) for a logged-in operator: no session fixation."""
    request.session.clear()
    request.session[_OPERATOR] = operator.operator_id
    request.session[_PASSWORD] = _password_fingerprint(operator.password_hash)
    csrf_token(request)


def end_session(request: Request) -> None:
    request.session.clear()


# --- the current operator and roles ---------------------------------------------------------


def _next_path(request: Request) -> str:
    query = f"?{request.url.query}" if request.url.query and request.method == "GET" else ""
    return request.url.path + query if request.method == "GET" else "/ops/"


def web_operator(request: Request, session: SessionDep) -> models.Operator:
    operator_id = request.session.get(_OPERATOR)
    operator = session.get(models.Operator, operator_id) if isinstance(operator_id, int) else None
    if operator is None or request.session.get(_PASSWORD) != _password_fingerprint(
        operator.password_hash
    ):
        request.session.pop(_OPERATOR, None)
        raise LoginRequiredError(_next_path(request))
    return operator


WebOperator = Annotated[models.Operator, Depends(web_operator)]


def can(operator: models.Operator, role: str) -> bool:
    return models.OPERATOR_ROLES.index(operator.role) >= models.OPERATOR_ROLES.index(role)


def _require(role: str) -> Callable[[models.Operator], models.Operator]:
    def check(operator: WebOperator) -> models.Operator:
        if not can(operator, role):
            raise PageError(
                403,
                "Not allowed",
                f"This needs the {role!r} role; you ({operator.name}) are {operator.role!r}. "
                "Ask an administrator if you need it.",
            )
        return operator

    return check


WebAgent = Annotated[models.Operator, Depends(_require("agent"))]
WebAdmin = Annotated[models.Operator, Depends(_require("admin"))]


def safe_next(path: str | None) -> str:
    """Where to go after login: only a path of these pages (no open redirect)."""
    if path and path.startswith("/ops") and not path.startswith("//") and "\\" not in path:
        return path
    return "/ops/"
