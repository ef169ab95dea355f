"""Fixtures of the operator web pages: the backend's riders and vehicle, operators who log in
with a password, and a logged-in client helper."""

from __future__ import annotations

import datetime as dt
import re

import httpx
import pytest
from sqlalchemy import Engine

from backend.db import make_sessionmaker, transaction
from backend.operators import service as operators_service
from tests.backend.conftest import riders, vehicle  # noqa: F401 - fixtures used here too

PASSWORD = "correct horse battery staple"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    match = _CSRF.search(html)
    assert match, "no CSRF token in the page"
    return match.group(1)


def add_operator(engine: Engine, role: str, name: str | None = None) -> str:
    name = name or f"{role} web"
    with transaction(make_sessionmaker(engine)) as session:
        operators_service.register_operator(session, name, role, PASSWORD)
    return name


async def login(client: httpx.AsyncClient, engine: Engine, role: str) -> str:
    """Log a new operator with ``role`` in; returns the session's CSRF token."""
    name = add_operator(engine, role)
    form = await client.get("/ops/login")
    response = await client.post(
        "/ops/login",
        data={"name": name, "password": PASSWORD, "csrf_token": csrf_of(form.text)},
    )
    assert response.status_code == 303, response.text
    page = await client.get("/ops/")
    assert page.status_code == 200
    return csrf_of(page.text)


class Clock:
    """A settable clock for ``app.state.clock``."""

    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now


@pytest.fixture
def clock(app) -> Clock:
    c = Clock(dt.datetime(2026, 12, 2, 12, tzinfo=dt.UTC))
    app.state.clock = c
    return c
