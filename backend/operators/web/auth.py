"""Operator login for the web pages: server-side sessions, a per-session CSRF token on every
POST, the route roles of ``backend/api/policy.py``, and the login throttle.

The session cookie (Starlette ``SessionMiddleware``, signed with ``BIBO_SECRET_KEY``) holds a
random session id and the CSRF token; the database keeps only the id's SHA-256
(``OperatorSession``), so logging out ends every copy of the cookie at once. The session and
its operator are loaded from the database on each request, so a changed role applies at once
and a deleted operator (its sessions go with it) is logged out.
"""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
import ipaddress
import secrets
from collections.abc import Callable, Sequence
from functools import cache
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session, sessionmaker

from backend import models
from backend.api import policy
from backend.api.deps import SessionDep
from backend.db import transaction
from backend.operators import repository as operators_repo
from backend.operators.web.const import (
    CSRF_TOKEN_BYTES,
    LOGIN_BACKOFF_BASE,
    LOGIN_BACKOFF_CAP,
    LOGIN_FAILURE_MEMORY,
    LOGIN_FREE_FAILURES,
    LOGIN_FREE_FAILURES_PER_ADDRESS,
    LOGIN_IPV6_PREFIX,
    SESSION_ID_BYTES,
    SESSION_MAX_AGE_S,
)
from backend.security import check_password, hash_password

CSRF_FIELD = "csrf_token"
_SESSION, _CSRF = "sid", "csrf"
_UNKNOWN_ADDRESS = "unknown"


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


@cache
def dummy_password_hash() -> str:
    """Checked when the name has no password (unknown, or an API-token-only operator), so
    every attempt costs one password check and takes as long, whether the name exists or not."""
    return hash_password(secrets.token_urlsafe(16))


def throttle_key(name: str) -> str:
    return name.strip().casefold()[:200]


def client_address(request: Request) -> str:
    """The address the request came from, as the server saw it: never a header the client
    chose (X-Forwarded-For); behind a proxy, uvicorn's ``--forwarded-allow-ips`` sets it.
    As the throttle counts it (``throttle_address``)."""
    host = request.client.host if request.client is not None else None
    return throttle_address(host)


def throttle_address(host: str | None) -> str:
    """The key the login throttle counts an address under: an IPv4 address as it is (also
    when it comes IPv4-mapped), an IPv6 address by its network (one subscriber holds a whole
    /64, so counting single addresses would give an attacker 2**64 fresh starts)."""
    try:
        ip = ipaddress.ip_address(host or "")
    except ValueError:
        return (host or _UNKNOWN_ADDRESS)[:64]
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/{LOGIN_IPV6_PREFIX}", strict=False))
    return str(ip)


def _aware(t: dt.datetime) -> dt.datetime:
    # SQLite hands timestamps back without their zone; they were written in UTC.
    return t if t.tzinfo is not None else t.replace(tzinfo=dt.UTC)


def backoff_wait(
    failures: Sequence[dt.datetime], free: int, now: dt.datetime
) -> dt.timedelta | None:
    """How long an attempt at ``now`` must still wait after these failures; None when it may
    go ahead. The first ``free`` failures cost nothing; from then on the attempt after the
    newest failure waits ``LOGIN_BACKOFF_BASE`` doubled for each failure beyond ``free``, at
    most ``LOGIN_BACKOFF_CAP``."""
    extra = len(failures) - free
    if extra < 0:
        return None
    # 2**32 times the base is far past any cap and far from timedelta's overflow.
    wait = min(LOGIN_BACKOFF_BASE * 2 ** min(extra, 32), LOGIN_BACKOFF_CAP)
    left = max(_aware(t) for t in failures) + wait - now
    return left if left > dt.timedelta(0) else None


class ThrottleScope(enum.Enum):
    """Which count made a login attempt wait."""

    NAME = "name"
    """Failures for this operator name from this address."""
    ADDRESS = "address"
    """Failures from this address, whatever the names."""


class LoginThrottledError(Exception):
    def __init__(self, scope: ThrottleScope, wait: dt.timedelta) -> None:
        super().__init__(f"{scope.value}: retry in {wait}")
        self.scope = scope
        self.wait = wait


class LoginFailedError(Exception):
    pass


def login_wait(
    session: Session, key: str, address: str, now: dt.datetime, exclude: int | None = None
) -> LoginThrottledError | None:
    """Why and how long an attempt for name ``key`` from ``address`` must wait (the longer of
    the two counts; attempt ``exclude``, the one asking, left out), or None."""
    since = now - LOGIN_FAILURE_MEMORY
    waits = [
        (scope, wait)
        for scope, wait in (
            (
                ThrottleScope.NAME,
                backoff_wait(
                    operators_repo.failed_logins_since(
                        session, since, address=address, name=key, exclude=exclude
                    ),
                    LOGIN_FREE_FAILURES,
                    now,
                ),
            ),
            (
                ThrottleScope.ADDRESS,
                backoff_wait(
                    operators_repo.failed_logins_since(
                        session, since, address=address, exclude=exclude
                    ),
                    LOGIN_FREE_FAILURES_PER_ADDRESS,
                    now,
                ),
            ),
        )
        if wait is not None
    ]
    if not waits:
        return None
    scope, wait = max(waits, key=lambda w: w[1])
    return LoginThrottledError(scope, wait)


def attempt_login(
    sessions: sessionmaker[Session],
    session: Session,
    name: str,
    password: str,
    address: str,
    now: dt.datetime,
) -> models.Operator:
    """The operator with this name and password.

    Raises ``LoginThrottledError`` while this (name, address) or this address must wait (see
    ``backoff_wait``; the password is not checked then) and ``LoginFailedError`` otherwise.
    Every attempt that is not throttled checks exactly one password hash, whether the name
    exists or not.

    The attempt is stored as failed, and committed (``sessions``), before anything is
    checked: attempts made at the same moment see each other, so a wave of parallel guesses
    is throttled like a series. A success deletes it, and forgets the failures of its name
    from its address, in the caller's transaction (``session``).
    """
    key = throttle_key(name)
    with transaction(sessions) as own:
        operators_repo.prune_failed_logins(own, now - LOGIN_FAILURE_MEMORY)
        mine = operators_repo.add_failed_login(own, key, address, now)
    with transaction(sessions) as own:
        throttled = login_wait(own, key, address, now, exclude=mine)
        if throttled is not None:
            # A refused attempt checked nothing: it does not push the back-off further.
            operators_repo.delete_login_attempt(own, mine)
    if throttled is not None:
        raise throttled
    operator = operators_repo.operator_by_name(session, name.strip())
    stored = operator.password_hash if operator is not None else None
    # Exactly one check on every path: no short-circuit past it for an unknown name.
    matches = check_password(password, stored or dummy_password_hash())
    if operator is None or stored is None or not matches:
        raise LoginFailedError
    operators_repo.delete_login_attempt(session, mine)
    operators_repo.forget_failed_logins(session, key, address)
    return operator


def _session_digest(session_id: str) -> bytes:
    return hashlib.sha256(session_id.encode()).digest()


def start_session(
    request: Request, session: Session, operator: models.Operator, now: dt.datetime
) -> None:
    """A fresh session (new id, new CSRF token) for a logged-in operator: no session
    fixation. Expired sessions of anyone are deleted on the way."""
    end_session(request, session)
    operators_repo.prune_operator_sessions(session, now)
    session_id = secrets.token_urlsafe(SESSION_ID_BYTES)
    expires_at = now + dt.timedelta(seconds=SESSION_MAX_AGE_S)
    operators_repo.add_operator_session(
        session, _session_digest(session_id), operator.operator_id, now, expires_at
    )
    request.session[_SESSION] = session_id
    csrf_token(request)


def end_session(request: Request, session: Session) -> None:
    """Log out: the server forgets the session, so no copy of the cookie works any more."""
    session_id = request.session.get(_SESSION)
    if isinstance(session_id, str):
        operators_repo.end_operator_session(session, _session_digest(session_id))
    request.session.clear()


def has_session(request: Request) -> bool:
    """Whether the cookie names a session (valid or not: for links, never for access)."""
    return isinstance(request.session.get(_SESSION), str)


# --- the current operator and roles ---------------------------------------------------------


def _next_path(request: Request) -> str:
    query = f"?{request.url.query}" if request.url.query and request.method == "GET" else ""
    return request.url.path + query if request.method == "GET" else "/ops/"


def signed_in_operator(request: Request, session: Session) -> models.Operator | None:
    """The operator of the cookie's session, if the session exists on the server and has not
    expired (a session that does not is dropped from the cookie)."""
    session_id = request.session.get(_SESSION)
    if not isinstance(session_id, str):
        return None
    operator = operators_repo.session_operator(session, _session_digest(session_id), now(request))
    if operator is None:
        request.session.pop(_SESSION, None)
    return operator


def web_operator(request: Request, session: SessionDep) -> models.Operator:
    """The logged-in operator, if the route's role in ``backend/api/policy.py`` allows them:
    a redirect to the login page without a session, the error page (403) for a lower role."""
    operator = signed_in_operator(request, session)
    if operator is None:
        raise LoginRequiredError(_next_path(request))
    needed = policy.required_role(request)
    if not policy.allows(operator.role, needed):
        raise PageError(
            403,
            "Not allowed",
            f"This needs the {needed!r} role; you ({operator.name}) are {operator.role!r}. "
            "Ask an administrator if you need it.",
        )
    return operator


WebOperator = Annotated[models.Operator, Depends(web_operator)]
"""An operator allowed on this page; the role each page needs is in ``policy.py``."""


def can(operator: models.Operator, role: str) -> bool:
    """For the templates: whether to offer a form that needs ``role``."""
    return policy.allows(operator.role, role)


def safe_next(path: str | None) -> str:
    """Where to go after login: only a path of these pages (no open redirect)."""
    if path and path.startswith("/ops") and not path.startswith("//") and "\\" not in path:
        return path
    return "/ops/"
