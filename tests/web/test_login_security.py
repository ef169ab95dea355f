"""Operator login that holds: one password check per attempt whether the name exists or not,
a back-off per (name, address) and per address instead of a lock-out anyone can trigger,
server-side sessions that logging out ends, and ``Secure`` cookies over HTTPS."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
from sqlalchemy import delete, func, select

from backend import models
from backend.db import make_sessionmaker, transaction
from backend.operators import service as operators_service
from backend.operators.web import auth
from backend.operators.web.auth import (
    LoginFailedError,
    LoginThrottledError,
    ThrottleScope,
    attempt_login,
    throttle_key,
)
from backend.operators.web.const import (
    LOGIN_BACKOFF_BASE,
    LOGIN_BACKOFF_CAP,
    LOGIN_FAILURE_MEMORY,
    LOGIN_FREE_FAILURES,
    LOGIN_FREE_FAILURES_PER_ADDRESS,
    SESSION_COOKIE,
    SESSION_MAX_AGE_S,
)
from tests.web.conftest import PASSWORD, add_operator, csrf_of, login

T0 = dt.datetime(2026, 12, 2, 12, tzinfo=dt.UTC)
ATTACKER, OWNER = "203.0.113.66", "198.51.100.7"


@asynccontextmanager
async def visitor(app, address: str, scheme: str = "http") -> AsyncIterator[httpx.AsyncClient]:
    """A browser at ``address`` (what the server sees as the client's address)."""
    transport = httpx.ASGITransport(app=app, client=(address, 50_000))
    async with httpx.AsyncClient(transport=transport, base_url=f"{scheme}://bibo.test") as c:
        yield c


async def try_login(
    client: httpx.AsyncClient, name: str, password: str, **headers: str
) -> httpx.Response:
    client.cookies.clear()  # a fresh login form each time
    form = await client.get("/ops/login")
    return await client.post(
        "/ops/login",
        data={"name": name, "password": password, "csrf_token": csrf_of(form.text)},
        headers=headers,
    )


def attempt(engine, name: str, password: str, address: str, now: dt.datetime):
    """One login attempt in its own transaction: the operator, or the refusal (an
    exception instance)."""
    sessions = make_sessionmaker(engine)
    with transaction(sessions) as session:
        try:
            return attempt_login(sessions, session, name, password, address, now)
        except (LoginFailedError, LoginThrottledError) as exc:
            return exc


def session_id_of(cookie: str) -> str:
    """The session id inside the signed cookie (payload.timestamp.signature)."""
    sid: str = json.loads(base64.b64decode(cookie.split(".")[0]))["sid"]
    return sid


def session_rows(engine) -> list[models.OperatorSession]:
    with make_sessionmaker(engine)() as session:
        return list(session.scalars(select(models.OperatorSession)))


# --- one password check on every attempt ----------------------------------------------------


async def test_every_attempt_checks_exactly_one_password_hash(client, engine, clock, monkeypatch):
    """Known name or not, with or without a password, right or wrong: the same work, so the
    answer's timing tells nothing about which names exist."""
    name = add_operator(engine, "agent")
    with transaction(make_sessionmaker(engine)) as session:
        operators_service.register_operator(session, "api only", "agent")  # no password: API token
    calls: list[str] = []
    real = auth.check_password

    def counted(password: str, stored: str | None) -> bool:
        calls.append(password)
        return real(password, stored)

    monkeypatch.setattr(auth, "check_password", counted)
    cases = [
        ("nobody at all", "wrong password", 401),
        (name, "wrong password", 401),
        ("api only", "wrong password", 401),
        (name, PASSWORD, 303),
    ]
    for who, password, status in cases:
        calls.clear()
        response = await try_login(client, who, password)
        assert response.status_code == status, who
        assert len(calls) == 1, f"{who!r}: {len(calls)} password checks"

    for _ in range(LOGIN_FREE_FAILURES):
        await try_login(client, "nobody at all", "guess")
    calls.clear()
    assert (await try_login(client, "nobody at all", "guess")).status_code == 429
    assert calls == []  # a throttled attempt checks nothing


# --- back-off per (name, address) and per address -------------------------------------------


async def test_an_attackers_failures_do_not_stop_the_owner_elsewhere(app, engine, clock):
    name = add_operator(engine, "admin", "Leitstelle Soest")
    async with visitor(app, ATTACKER) as attacker, visitor(app, OWNER) as owner:
        for _ in range(LOGIN_FREE_FAILURES):
            # Pretending to come from the owner's address changes nothing.
            r = await try_login(attacker, name, "guess guess", **{"X-Forwarded-For": OWNER})
            assert r.status_code == 401
        assert (await try_login(attacker, name, "guess guess")).status_code == 429
        assert (await try_login(attacker, name, PASSWORD)).status_code == 429

        assert (await try_login(owner, name, PASSWORD)).status_code == 303
        assert (await owner.get("/ops/")).status_code == 200
    with make_sessionmaker(engine)() as session:
        addresses = session.scalars(select(models.LoginAttempt.address)).all()
    assert addresses == [ATTACKER] * LOGIN_FREE_FAILURES


def test_the_back_off_doubles_with_every_further_failure(engine):
    name = add_operator(engine, "agent")
    now = T0
    for _ in range(LOGIN_FREE_FAILURES):
        assert isinstance(attempt(engine, name, "guess", ATTACKER, now), LoginFailedError)
    waits = []
    for _ in range(6):
        refused = attempt(engine, name, PASSWORD, ATTACKER, now)
        assert isinstance(refused, LoginThrottledError)
        assert refused.scope is ThrottleScope.NAME
        waits.append(refused.wait)
        early = attempt(engine, name, PASSWORD, ATTACKER, now + refused.wait / 2)
        assert isinstance(early, LoginThrottledError)
        now += refused.wait
        assert isinstance(attempt(engine, name, "guess", ATTACKER, now), LoginFailedError)
    assert waits == [min(LOGIN_BACKOFF_BASE * 2**k, LOGIN_BACKOFF_CAP) for k in range(6)]
    assert waits[-1] == LOGIN_BACKOFF_CAP

    # The owner elsewhere is not slowed down, and a quiet spell forgives the attacker too.
    assert isinstance(attempt(engine, name, PASSWORD, OWNER, now), models.Operator)
    later = now + LOGIN_FAILURE_MEMORY
    assert isinstance(attempt(engine, name, PASSWORD, ATTACKER, later), models.Operator)


def test_a_success_clears_the_failures_of_its_name_from_its_address(engine):
    name = add_operator(engine, "agent")
    for address in (ATTACKER, OWNER):
        for _ in range(LOGIN_FREE_FAILURES - 1):
            assert isinstance(attempt(engine, name, "typo", address, T0), LoginFailedError)
    assert isinstance(attempt(engine, name, PASSWORD, OWNER, T0), models.Operator)
    # The owner's slate is clean again: as many free failures as before...
    for _ in range(LOGIN_FREE_FAILURES):
        assert isinstance(attempt(engine, name, "typo", OWNER, T0), LoginFailedError)
    assert isinstance(attempt(engine, name, PASSWORD, OWNER, T0), LoginThrottledError)
    # ...while the other address's failures still count.
    assert isinstance(attempt(engine, name, "typo", ATTACKER, T0), LoginFailedError)
    assert isinstance(attempt(engine, name, PASSWORD, ATTACKER, T0), LoginThrottledError)


def test_trying_many_names_from_one_address_backs_off_that_address(engine):
    name = add_operator(engine, "agent")
    for k in range(LOGIN_FREE_FAILURES_PER_ADDRESS):
        assert isinstance(attempt(engine, f"guess {k}", "x", ATTACKER, T0), LoginFailedError)
    refused = attempt(engine, name, PASSWORD, ATTACKER, T0)
    assert isinstance(refused, LoginThrottledError)
    assert refused.scope is ThrottleScope.ADDRESS
    assert refused.wait == LOGIN_BACKOFF_BASE
    assert isinstance(attempt(engine, name, PASSWORD, OWNER, T0), models.Operator)
    later = T0 + LOGIN_BACKOFF_BASE
    assert isinstance(attempt(engine, name, PASSWORD, ATTACKER, later), models.Operator)


async def test_the_address_throttle_says_so(app, engine, clock):
    async with visitor(app, ATTACKER) as attacker:
        for k in range(LOGIN_FREE_FAILURES_PER_ADDRESS):
            assert (await try_login(attacker, f"guess {k}", "x")).status_code == 401
        refused = await try_login(attacker, "someone else", "x")
    assert refused.status_code == 429
    assert "Too many failed logins from your address" in refused.text
    assert refused.headers["retry-after"] == str(int(LOGIN_BACKOFF_BASE.total_seconds()))


def test_old_attempts_without_an_address_count_for_nothing(engine):
    name = add_operator(engine, "agent")
    with transaction(make_sessionmaker(engine)) as session:
        session.add_all(
            models.LoginAttempt(name=throttle_key(name), attempted_at=T0, address=None)
            for _ in range(3 * LOGIN_FREE_FAILURES_PER_ADDRESS)
        )
    assert isinstance(attempt(engine, name, "typo", ATTACKER, T0), LoginFailedError)
    assert isinstance(attempt(engine, name, PASSWORD, ATTACKER, T0), models.Operator)
    # They age out with everything else.
    later = T0 + LOGIN_FAILURE_MEMORY + dt.timedelta(seconds=1)
    assert isinstance(attempt(engine, name, "typo", ATTACKER, later), LoginFailedError)
    with make_sessionmaker(engine)() as session:
        left = session.scalar(select(func.count()).select_from(models.LoginAttempt))
    assert left == 1


# --- server-side sessions -------------------------------------------------------------------


async def test_a_cookie_copied_before_logout_is_refused_after_it(client, engine, riders, clock):
    csrf = await login(client, engine, "agent")
    copied = client.cookies[SESSION_COOKIE]
    assert (await client.post("/ops/logout", data={"csrf_token": csrf})).status_code == 303

    client.cookies.clear()
    client.cookies.set(SESSION_COOKIE, copied, domain="bibo.test", path="/ops")
    replayed = await client.get("/ops/")
    assert replayed.status_code == 303
    assert replayed.headers["location"].startswith("/ops/login")
    client.cookies.set(SESSION_COOKIE, copied, domain="bibo.test", path="/ops")
    post = await client.post(
        "/ops/disputes/1/resolve", data={"csrf_token": csrf, "action": "reject"}
    )
    assert post.status_code == 303
    assert post.headers["location"].startswith("/ops/login")
    assert session_rows(engine) == []


async def test_the_server_keeps_only_the_session_ids_hash(client, engine, clock):
    await login(client, engine, "viewer")
    sid = session_id_of(client.cookies[SESSION_COOKIE])
    (row,) = session_rows(engine)
    assert row.session_sha256 == hashlib.sha256(sid.encode()).digest()
    assert sid.encode() not in row.session_sha256
    expires = row.expires_at.replace(tzinfo=row.expires_at.tzinfo or dt.UTC)
    assert expires == clock.now + dt.timedelta(seconds=SESSION_MAX_AGE_S)


async def test_logging_in_again_replaces_the_session(client, engine, clock):
    csrf = await login(client, engine, "viewer")
    old = client.cookies[SESSION_COOKIE]
    again = await client.post(
        "/ops/login", data={"name": "viewer web", "password": PASSWORD, "csrf_token": csrf}
    )
    assert again.status_code == 303
    assert session_id_of(client.cookies[SESSION_COOKIE]) != session_id_of(old)
    assert len(session_rows(engine)) == 1  # the old one is gone: no session fixation
    assert (await client.get("/ops/")).status_code == 200
    client.cookies.set(SESSION_COOKIE, old, domain="bibo.test", path="/ops")
    assert (await client.get("/ops/")).status_code == 303


async def test_a_session_ends_after_its_max_age_and_is_pruned(client, engine, clock):
    await login(client, engine, "viewer")
    clock.now += dt.timedelta(seconds=SESSION_MAX_AGE_S)
    assert (await client.get("/ops/")).status_code == 303
    assert len(session_rows(engine)) == 1  # expired, deleted at the next login
    client.cookies.clear()
    form = await client.get("/ops/login")
    await client.post(
        "/ops/login",
        data={"name": "viewer web", "password": PASSWORD, "csrf_token": csrf_of(form.text)},
    )
    (row,) = session_rows(engine)
    expires = row.expires_at.replace(tzinfo=row.expires_at.tzinfo or dt.UTC)
    assert expires > clock.now


async def test_deleting_an_operator_ends_their_sessions(client, engine, clock):
    await login(client, engine, "admin")
    with transaction(make_sessionmaker(engine)) as session:
        session.execute(delete(models.Operator).where(models.Operator.name == "admin web"))
    assert session_rows(engine) == []
    assert (await client.get("/ops/")).status_code == 303


# --- Secure cookies over HTTPS --------------------------------------------------------------


@pytest.mark.parametrize(("scheme", "secure"), [("https", True), ("http", False)])
async def test_the_session_cookie_is_secure_over_https(app, engine, clock, scheme, secure):
    name = add_operator(engine, "viewer")
    async with visitor(app, OWNER, scheme) as browser:
        form = await browser.get("/ops/login")
        response = await browser.post(
            "/ops/login",
            data={"name": name, "password": PASSWORD, "csrf_token": csrf_of(form.text)},
        )
        assert response.status_code == 303
        cookies = [*form.headers.get_list("set-cookie"), *response.headers.get_list("set-cookie")]
        assert len(cookies) == 2
        for cookie in cookies:
            assert cookie.startswith(f"{SESSION_COOKIE}=")
            assert ("; secure" in cookie.lower()) is secure
            assert "httponly" in cookie.lower()
        assert (await browser.get("/ops/")).status_code == 200


@pytest.mark.parametrize(
    ("host", "key"),
    [
        ("203.0.113.7", "203.0.113.7"),
        ("::ffff:203.0.113.7", "203.0.113.7"),
        ("2001:db8:1:2:aaaa:bbbb:cccc:dddd", "2001:db8:1:2::/64"),
        ("2001:db8:1:2::1", "2001:db8:1:2::/64"),
        ("2001:db8:1:3::1", "2001:db8:1:3::/64"),
        (None, auth.throttle_address(None)),
        ("testclient", "testclient"),
    ],
)
def test_the_throttle_counts_an_ipv6_subscriber_by_its_network(host, key):
    assert auth.throttle_address(host) == key


def test_guesses_from_one_ipv6_network_are_throttled_together(engine):
    name = add_operator(engine, "admin")
    now = dt.datetime(2026, 12, 2, 12, tzinfo=dt.UTC)
    for k in range(LOGIN_FREE_FAILURES):
        address = auth.throttle_address(f"2001:db8:7:7::{k + 1:x}")
        assert isinstance(attempt(engine, name, "guess", address, now), LoginFailedError)
    fresh = auth.throttle_address("2001:db8:7:7:ffff:ffff:ffff:ffff")
    assert isinstance(attempt(engine, name, PASSWORD, fresh, now), LoginThrottledError)


def test_parallel_guesses_see_each_other(engine, monkeypatch):
    """Attempts that overlap (each still checking its password when the next starts) are
    throttled like a series: each is stored before its password is checked."""
    name = add_operator(engine, "admin")
    now = dt.datetime(2026, 12, 2, 12, tzinfo=dt.UTC)
    real = auth.check_password
    outcomes: list[object] = []

    def slow_check(password, stored):
        # While this attempt is checking, the next one arrives.
        if len(outcomes) < 2 * LOGIN_FREE_FAILURES:
            outcomes.append(attempt(engine, name, "guess", "198.51.100.9", now))
        return real(password, stored)

    monkeypatch.setattr(auth, "check_password", slow_check)
    outcomes.insert(0, attempt(engine, name, "guess", "198.51.100.9", now))
    throttled = [o for o in outcomes if isinstance(o, LoginThrottledError)]
    failed = [o for o in outcomes if isinstance(o, LoginFailedError)]
    assert len(failed) == LOGIN_FREE_FAILURES
    assert len(throttled) == len(outcomes) - LOGIN_FREE_FAILURES
