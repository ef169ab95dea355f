"""Database engine, sessions and schema migrations (Alembic, run programmatically), and the
Core helpers the repositories share (``AlreadyExistsError``, ``core_connection``,
``dialect_insert``, ``insert_rows``): only repository modules call those."""

from __future__ import annotations

import enum
import functools
import os
import re
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import closing, contextmanager
from importlib import resources
from pathlib import Path
from typing import Any, Final

from alembic import command
from alembic.config import Config
from sqlalchemy import (
    Engine,
    create_engine,
    event,
    insert,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import NullPool

from backend import models

SQLITE_BUSY_TIMEOUT_MS = 30_000
"""The demo's server and CLI share one SQLite file; writers wait instead of failing."""

DATABASE_CHECK_CONNECT_TIMEOUT_S: Final = 5
"""How long the up-front check waits for PostgreSQL to accept a connection (libpq takes whole
seconds): a server on the network answers in milliseconds, and a person who mistyped the
host should hear so at once, not after the operating system's two-minute TCP time-out."""

SUPPORTED_DATABASES: Final = "sqlite:///PATH or postgresql://USER@HOST[:PORT]/DATABASE"
"""What a database URL may look like (the drivers bibo installs: sqlite3 and psycopg 3)."""


def normalize_url(url: str) -> str:
    """Use psycopg 3 for PostgreSQL URLs that name no driver (``postgresql://``)."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.close()


def make_engine(url: str) -> Engine:
    """The engine for ``url``. Statement parameters are never put into error messages (they
    hold tokens, secrets' hashes and other personal data, and errors end up in logs and on
    the operations page)."""
    url = normalize_url(url)
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False}, hide_parameters=True)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, hide_parameters=True)


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session whose work is committed on success and rolled back on any error."""
    with factory() as session, session.begin():
        yield session


def alembic_config() -> Config:
    cfg = Config()
    location = resources.files("backend") / "migrations"
    cfg.set_main_option("script_location", str(location))
    return cfg


def upgrade(engine: Engine) -> None:
    """Bring the schema to the newest migration."""
    cfg = alembic_config()
    with engine.begin() as connection:
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, "head")


# --- checking a database URL before any work ---------------------------------------------


class DatabaseUrlReason(enum.Enum):
    """Why a database URL cannot be used."""

    MALFORMED = "malformed"
    """Not a URL SQLAlchemy can read."""
    UNSUPPORTED = "unsupported"
    """A database or driver bibo does not support."""
    UNUSABLE_FILE = "unusable_file"
    """A SQLite path that cannot be opened for writing (missing directory, permissions)."""
    UNREACHABLE = "unreachable"
    """No PostgreSQL server answered (refused, unknown host, time-out)."""
    REFUSED = "refused"
    """The server answered but refused the connection (unknown database, role, password)."""


class DatabaseUrlError(ValueError):
    """A database URL that cannot be used; ``str()`` is one line naming the problem.

    The message never contains the URL's password.
    """

    def __init__(self, reason: DatabaseUrlReason, message: str) -> None:
        super().__init__(message)
        self.reason = reason


_PASSWORD_IN_URL = re.compile(r"(://[^:/@\s]*:)\S*@")
"""The password of ``scheme://user:password@host``, up to the last ``@`` (an unencoded ``@``
in a password is a common mistake; masking too much is harmless)."""


def mask_password(url: str) -> str:
    """``url`` with any password replaced by ``***`` (also if it does not parse)."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        parsed = None
    if parsed is None or "@" in (parsed.host or ""):
        return _PASSWORD_IN_URL.sub(r"\1***@", url)
    return parsed.render_as_string(hide_password=True)


def check_database_url(url: str, source: str = "BIBO_DATABASE_URL") -> None:
    """Refuse a database URL bibo cannot use, before any work is done with it.

    Parses ``url``, accepts only SQLite and PostgreSQL (psycopg 3), and tries the database:
    a SQLite file must open for writing (a missing one is created empty, as any command
    would), a PostgreSQL server must accept a connection within
    ``DATABASE_CHECK_CONNECT_TIMEOUT_S``. Raises DatabaseUrlError with a one-line message
    that starts with ``source`` (the setting the URL came from).
    """
    shown = mask_password(url)
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise DatabaseUrlError(
            DatabaseUrlReason.MALFORMED,
            f"{source}: {shown!r} is not a database URL; expected {SUPPORTED_DATABASES}",
        ) from None
    except ValueError:  # SQLAlchemy reads the port with int()
        raise DatabaseUrlError(
            DatabaseUrlReason.MALFORMED, f"{source}: {shown!r}: the port is not a number"
        ) from None
    if parsed.host is not None and "@" in parsed.host:
        raise DatabaseUrlError(
            DatabaseUrlReason.MALFORMED,
            f"{source}: {shown!r}: the user name or password "
            "holds an '@'; write it URL-encoded as %40",
        )
    backend, _, driver = parsed.drivername.partition("+")
    if backend == "sqlite" and driver in ("", "pysqlite"):
        _check_sqlite(parsed, source)
    elif backend in ("postgresql", "postgres") and driver in ("", "psycopg"):
        _check_postgresql(parsed, source)
    else:
        raise DatabaseUrlError(
            DatabaseUrlReason.UNSUPPORTED,
            f"{source}: {shown!r}: {parsed.drivername!r} is not supported; "
            f"expected {SUPPORTED_DATABASES}",
        )


def _check_sqlite(url: URL, source: str) -> None:
    database = url.database
    if not database or database == ":memory:" or url.query.get("uri"):
        return  # in memory, or a SQLite URI whose options sqlite3 itself will judge
    path = Path(database)

    def unusable(problem: str) -> DatabaseUrlError:
        return DatabaseUrlError(
            DatabaseUrlReason.UNUSABLE_FILE, f"{source}: SQLite file {database}: {problem}"
        )

    if path.is_dir():
        raise unusable("is a directory; expected the path of a database file")
    directory = path.parent
    if not path.exists():
        if not directory.is_dir():
            raise unusable(f"directory {directory} does not exist; create it or fix the path")
    elif not os.access(path, os.R_OK | os.W_OK):
        raise unusable("not readable and writable by this user")
    # SQLite writes its journal (-wal, -shm) next to the database file.
    if not os.access(directory, os.W_OK | os.X_OK):
        raise unusable(f"directory {directory} is not writable by this user")
    try:
        with closing(sqlite3.connect(path, timeout=SQLITE_BUSY_TIMEOUT_MS / 1000)) as db:
            db.execute("PRAGMA schema_version").fetchone()  # reads the header
    except sqlite3.Error as exc:
        raise unusable(f"cannot be opened: {exc}") from None


def _check_postgresql(url: URL, source: str) -> None:
    url = url.set(drivername="postgresql+psycopg")
    where = f"{url.host or 'localhost'}:{url.port or 5432}"
    if url.host is None and "host" in url.query:
        where = f"socket {url.query['host']}"
    engine = create_engine(
        url,
        poolclass=NullPool,
        connect_args={"connect_timeout": DATABASE_CHECK_CONNECT_TIMEOUT_S},
    )
    try:
        with engine.connect():
            pass
    except DBAPIError as exc:
        reason, message = _postgresql_problem(str(exc.orig), where)
        if url.password:
            message = message.replace(str(url.password), "***")
        raise DatabaseUrlError(reason, f"{source}: {message}") from None
    finally:
        engine.dispose()


def _postgresql_problem(error: str, where: str) -> tuple[DatabaseUrlReason, str]:
    """The reason and a one-line account of a failed PostgreSQL connection.

    psycopg passes on libpq's message text (its connection errors carry no SQLSTATE), so the
    cases a person can act on are told apart by their wording; anything else is shown as it is.
    """
    first = " ".join(error.split("\n", 1)[0].split())
    lowered = error.lower()
    if "fatal:" in lowered:
        detail = " ".join(
            error[lowered.index("fatal:") + len("fatal:") :].split("\n", 1)[0].split()
        )
        return DatabaseUrlReason.REFUSED, f"PostgreSQL at {where} refused the connection: {detail}"
    if "connection refused" in lowered:
        problem, hint = "connection refused", "; is the server running?"
    elif "timeout expired" in lowered or "timed out" in lowered:
        problem = f"no answer within {DATABASE_CHECK_CONNECT_TIMEOUT_S} s"
        hint = "; is the host reachable and the port right?"
    elif "resolve host" in lowered or "translate host name" in lowered:
        problem, hint = "unknown host name", "; check the host in the URL"
    elif "no such file or directory" in lowered:
        problem, hint = "no server socket there", "; is the server running?"
    else:
        problem, hint = first.rpartition(" failed: ")[2] or first, ""
    return (
        DatabaseUrlReason.UNREACHABLE,
        f"cannot connect to PostgreSQL at {where} ({problem}){hint}",
    )


class AlreadyExistsError(Exception):
    """The row to create exists already (the message names it)."""


def core_connection(session: Session) -> Connection:
    """The session's connection, for a Core statement without the ORM's per-statement work
    (the hot ingest path); what the session holds pending is flushed first, as it would be."""
    session.flush()
    return session.connection()


def dialect_insert(dialect: str) -> Any:
    """``INSERT`` with ``ON CONFLICT`` for the dialect (PostgreSQL's or SQLite's)."""
    return postgresql.insert if dialect == "postgresql" else sqlite.insert


def insert_once(
    session: Session,
    model: type[models.Base],
    identity: tuple[str, ...],
    key: str,
    values: dict[str, Any],
) -> Any:
    """Insert a row unless one with its ``identity`` columns exists:
    ``INSERT … ON CONFLICT (identity) DO NOTHING RETURNING key``. Returns the new row's
    ``key``, or None when the identity was stored before (idempotent uploads)."""
    stmt = _insert_once_stmt(session.get_bind().dialect.name, model, identity, key)
    return core_connection(session).scalar(stmt, values)


@functools.cache
def _insert_once_stmt(
    dialect: str, model: type[models.Base], identity: tuple[str, ...], key: str
) -> Any:
    # Built once with the values as parameters, so SQLAlchemy compiles it once (hot path).
    return (
        dialect_insert(dialect)(model)
        .on_conflict_do_nothing(index_elements=list(identity))
        .returning(getattr(model, key))
    )


def insert_rows(session: Session, model: type[models.Base], rows: Sequence[dict[str, Any]]) -> None:
    """Plain INSERT of many rows, on the session's connection (no ORM bookkeeping: the rows
    are not loaded as objects, and the ingest path saves the ORM's per-statement cost)."""
    if rows:
        core_connection(session).execute(insert(model), list(rows))
