"""Shared fixtures: a fresh database per test run on SQLite and on PostgreSQL.

PostgreSQL is expected at 127.0.0.1:5432 (user postgres, trust auth). Without it the
PostgreSQL variants skip with the reason, unless BIBO_REQUIRE_POSTGRES=1 (CI), where they fail.

The onboard tests also run in the onboard install profile alone (``bibo[onboard]``, see
``tests/install/check_onboard_profile.sh``): there the server's modules are absent and the
fixtures here, which only server tests use, are defined without them.
"""

from __future__ import annotations

import os
import secrets
import shutil
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from backend.cli import missing_module

SERVER_MISSING = missing_module("server")
"""A module of ``bibo[server]`` that is not installed (the onboard profile), else ``None``."""

if SERVER_MISSING is None:
    from fastapi import FastAPI
    from sqlalchemy import Engine, create_engine, text

    from backend.api.app import create_app
    from backend.db import make_engine, upgrade
    from backend.limits import RateLimiter
    from backend.models import Base
    from backend.settings import Settings

POSTGRES_ADMIN_URL = os.environ.get(
    "BIBO_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A PostgreSQL database created for this test run and dropped after it."""
    admin = create_engine(
        POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3}
    )
    name = f"bibo_test_{os.getpid()}_{secrets.token_hex(4)}"
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
            # Test data need not survive a power cut: skip the fsync per commit.
            conn.execute(text(f'ALTER DATABASE "{name}" SET synchronous_commit = off'))
    except Exception as exc:
        admin.dispose()
        reason = f"PostgreSQL not reachable at {POSTGRES_ADMIN_URL}: {type(exc).__name__}: {exc}"
        if os.environ.get("BIBO_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"BIBO_REQUIRE_POSTGRES=1 but {reason}")
        pytest.skip(reason)
    url = POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite database, copied for each test (migrating each time is slow)."""
    path = tmp_path_factory.mktemp("template") / "bibo.sqlite3"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    return path


@pytest.fixture(
    params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)],
)
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("db") / "bibo.sqlite3"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite:///{path}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """A migrated database, emptied after the test (a SQLite file is new for every test)."""
    engine = make_engine(database_url)
    upgrade(engine)
    try:
        yield engine
    finally:
        if engine.dialect.name == "postgresql":
            with engine.begin() as conn:
                # The ledger's append-only triggers would refuse the clean-up.
                conn.execute(text("SET LOCAL session_replication_role = replica"))
                for table in reversed(Base.metadata.sorted_tables):
                    conn.execute(table.delete())
                # Partitions a test made for its own days (maintenance creates them ahead)
                # would be taken for another test's.
                partitions = conn.execute(
                    text(
                        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = "
                        "i.inhrelid JOIN pg_class p ON p.oid = i.inhparent "
                        "WHERE p.relname = 'sightings' AND c.relname LIKE 'sightings_p%'"
                    )
                ).scalars()
                for name in list(partitions):
                    conn.execute(text(f'DROP TABLE "{name}"'))
        engine.dispose()


@pytest.fixture
def app(engine: Engine, database_url: str) -> FastAPI:
    settings = Settings(database_url=database_url, reconcile_in_background=False)
    app = create_app(settings=settings, engine=engine, migrate=False)
    # Tests upload whole days in a blink; the limits have tests of their own.
    app.state.vehicle_limiter = RateLimiter(1e9, 1e9, time.monotonic)
    app.state.signup_limiter = RateLimiter(1e9, 1e9, time.monotonic)
    app.state.resend_limiter = RateLimiter(1e9, 1e9, time.monotonic)
    app.state.phone_limiter = RateLimiter(1e9, 1e9, time.monotonic)
    app.state.phone_resend_limiter = RateLimiter(1e9, 1e9, time.monotonic)
    return app


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://bibo.test") as client:
        yield client
