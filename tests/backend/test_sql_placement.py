"""All SQL lives in repository modules (each domain's ``backend/<domain>/repository.py``):
services call them, and route modules call services only (no route module imports a
repository).

The test walks every ``backend/**/*.py`` with :mod:`ast` and names, as
``file:line``, each place outside a repository module that

* calls a SQL builder imported from SQLAlchemy (``select``, ``text``,
  ``insert``, ``update``, ``delete``), plainly or as ``sqlalchemy.select``;
* calls ``.execute``/``.scalars``/``.scalar``/``.get``/``.add``/``.add_all``/
  ``.delete``/``.merge``/``.flush``/``.query`` on a name that holds a database
  session (``session``, ``s``, ``db``).

Receivers are matched by name only, so ``request.session.get(...)`` (a
cookie dict), ``known.update(...)`` or ``router.delete(...)`` are not SQL.
"""

from __future__ import annotations

import ast
from pathlib import Path

BACKEND = Path(__file__).resolve().parents[2] / "backend"

SQL_BUILDERS = frozenset({"select", "text", "insert", "update", "delete"})
SESSION_NAMES = frozenset({"session", "s", "db"})
SESSION_METHODS = frozenset(
    {"execute", "scalars", "scalar", "get", "add", "add_all", "delete", "merge", "flush", "query"}
)

# Modules whose job is SQL.
REPOSITORY_MODULES = frozenset({"repository.py"})
"""Each domain's ``repository.py`` (``backend/<domain>/repository.py``)."""

# Explicit exemptions, each with its reason.
EXEMPT: dict[str, str] = {
    # The database layer itself: engine and session setup, SQLite pragmas, the
    # schema-version probe run before any repository can be used, and the Core helpers
    # the repositories share (which only repositories may call: DB_LAYER_HELPERS).
    "db.py": "database layer (engine, pragmas, migration bootstrap, repositories' helpers)",
}
DB_LAYER_HELPERS = frozenset({"insert_rows", "insert_once", "core_connection", "dialect_insert"})
"""``backend.db``'s statement helpers: SQL, wherever they are called from."""
EXEMPT_PACKAGES = {
    "migrations/": "Alembic migrations are schema DDL, not queries",
}


def _is_repository(rel: str) -> bool:
    return rel.rpartition("/")[2] in REPOSITORY_MODULES


def _is_exempt(rel: str) -> bool:
    return rel in EXEMPT or any(rel.startswith(p) for p in EXEMPT_PACKAGES)


def _sqlalchemy_builders(tree: ast.Module) -> tuple[set[str], set[str]]:
    """Local names bound to SQL builders, and local aliases of the sqlalchemy module."""
    names: set[str] = set()
    modules: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("sqlalchemy"):
            for alias in node.names:
                if alias.name in SQL_BUILDERS:
                    names.add(alias.asname or alias.name)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "sqlalchemy":
                    modules.add(alias.asname or alias.name)
    return names, modules


def sql_sites(source: str) -> list[tuple[int, str]]:
    """(line, what) for every SQL call in one module's source."""
    tree = ast.parse(source)
    builders, modules = _sqlalchemy_builders(tree)
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Name) and func.id in builders | DB_LAYER_HELPERS:
            found.append((node.lineno, f"{func.id}()"))
        elif isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
            receiver = func.value.id
            builder = receiver in modules and func.attr in SQL_BUILDERS
            session_call = receiver in SESSION_NAMES and func.attr in SESSION_METHODS
            if builder or session_call:
                found.append((node.lineno, f"{receiver}.{func.attr}()"))
    return sorted(found)


def violations(root: Path = BACKEND) -> list[str]:
    """file:line for each SQL call outside repositories and exemptions."""
    out: list[str] = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root).as_posix()
        if _is_repository(rel) or _is_exempt(rel):
            continue
        for line, what in sql_sites(path.read_text(encoding="utf-8")):
            out.append(f"backend/{rel}:{line}: {what}")
    return out


def test_all_sql_is_in_repository_modules() -> None:
    found = violations()
    assert not found, "SQL outside repository modules:\n" + "\n".join(found)


def test_the_detector_sees_sql_and_ignores_lookalikes() -> None:
    sql = (
        "from sqlalchemy import select as sel, delete\n"
        "import sqlalchemy as sa\n"
        "sel(X)\n"
        "delete(X)\n"
        "sa.text('x')\n"
        "session.get(X, 1)\n"
        "s.scalars(q)\n"
        "db.execute(q)\n"
        "session.add(x)\n"
        "session.flush()\n"
        "insert_rows(session, Model, rows)\n"
    )
    assert [line for line, _ in sql_sites(sql)] == [3, 4, 5, 6, 7, 8, 9, 10, 11]
    lookalikes = (
        "request.session.get('csrf')\n"
        "known.update(x)\n"
        "router.delete('')\n"
        "row.get('k')\n"
        "cursor.execute('PRAGMA x')\n"
        "text = 'hello'\n"
        "select(x)\n"  # not imported from sqlalchemy
    )
    assert sql_sites(lookalikes) == []


ROUTE_MODULES = ("endpoints.py", "web/routes.py", "web/operations.py")
"""Modules that declare routes: they call services, never a repository."""


def repository_imports(source: str) -> list[tuple[int, str]]:
    """(line, module) for every import of a ``repository`` module in one module's source."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("backend"):
            module = node.module or ""
            for alias in node.names:
                if module.endswith(".repository") or alias.name == "repository":
                    found.append((node.lineno, f"{module}.{alias.name}"))
        elif isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.endswith(".repository")]
    return found


def test_routes_call_services_not_repositories() -> None:
    found = [
        f"backend/{rel}:{line}: imports {module}"
        for path in sorted(BACKEND.rglob("*.py"))
        if (rel := path.relative_to(BACKEND).as_posix()).endswith(ROUTE_MODULES)
        for line, module in repository_imports(path.read_text(encoding="utf-8"))
    ]
    assert not found, "route modules reaching past their services:\n" + "\n".join(found)


def test_the_import_check_sees_every_spelling() -> None:
    source = (
        "from backend.trips import repository as trips_repo\n"
        "from backend.billing.repository import invoice\n"
        "import backend.ingest.repository\n"
        "from backend.trips import service\n"
        "from backend.trips.schemas import TripOut\n"
    )
    assert [line for line, _ in repository_imports(source)] == [1, 2, 3]
