"""The operator pages find a vehicle's trips, and vehicle ids by their beginning, through
``ix_trips_vehicle_board`` on SQLite and PostgreSQL; and the prefix search gives exactly the
ids that start with the text, whatever characters they hold."""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import event, text
from sqlalchemy.engine import Engine

from backend import models
from backend.db import make_sessionmaker, transaction
from backend.operators import repository as operators_repo
from backend.timeutil import service_day_of

T0 = 1_795_420_000_000

VEHICLE_IDS = (
    "RLG-4711",
    "RLG-4712",
    "RLG-47",
    "RLG_47",
    "RLG%47",
    "rlg-4711",
    "VKU-0815",
    "VKU-0815-Ä",
    "VKU-0815-\U0010ffff",
    "VKU-0815-\ud7ff",
    "VKU-0815-\ue000",
    "Zug 12",
)
"""Ids whose beginnings test the edges: LIKE wildcards, case, a code point before the
surrogates and one after them, the last code point."""


def _trip(k: int, vehicle_id: str) -> models.Trip:
    board = T0 + k * 60_000
    return models.Trip(
        trip_id=f"trp_{k:06d}",
        service_day=service_day_of(board),
        device_id=f"dev_{k % 7}",
        passenger_id=f"pas_{k % 7}",
        vehicle_id=vehicle_id,
        journey_id="J1",
        line="R61",
        board_stop_id="de:05974:1001",
        board_time=board,
        alight_stop_id="de:05974:1002",
        alight_time=board + 300_000,
        confidence=0.99,
    )


FLEET = 300
"""Other vehicles with trips: enough rows that reading a whole index costs a planner more
than finding one vehicle's few (a handful of rows makes every plan equally cheap)."""


@pytest.fixture
def trips(engine: Engine) -> Engine:
    n = 4 * len(VEHICLE_IDS)
    with transaction(make_sessionmaker(engine)) as session:
        session.add_all(_trip(k, VEHICLE_IDS[k % len(VEHICLE_IDS)]) for k in range(n))
        session.add_all(_trip(n + k, f"ZZ-{k % FLEET:04d}") for k in range(10 * FLEET))
    return engine


def prefixes() -> list[str]:
    """Every beginning of every id, and random texts over the ids' characters."""
    out = {v[:k] for v in VEHICLE_IDS for k in range(1, len(v) + 1)}
    alphabet = sorted(set("".join(VEHICLE_IDS)))
    rng = random.Random(16)
    out.update("".join(rng.choices(alphabet, k=rng.randint(1, 6))) for _ in range(100))
    return sorted(out)


def test_a_prefix_finds_exactly_the_vehicle_ids_it_starts(trips: Engine) -> None:
    with make_sessionmaker(trips)() as session:
        for prefix in prefixes():
            found = operators_repo.ids_starting_with(session, "vehicle", prefix, 100)
            fleet = {f"ZZ-{k:04d}" for k in range(FLEET)}
            expected = sorted(v for v in {*VEHICLE_IDS, *fleet} if v.startswith(prefix))[:100]
            assert found == expected, prefix


@contextmanager
def statements(engine: Engine) -> Iterator[list[tuple[str, Any]]]:
    """The SQL statements (with their parameters) run on ``engine`` meanwhile."""
    seen: list[tuple[str, Any]] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        seen.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def plan(engine: Engine, statement: str, parameters: Any) -> str:
    """The database's plan of ``statement``; on PostgreSQL with the table analysed and
    sequential scans priced out, so a few rows in a test table show which index the planner
    would use on many."""
    with engine.connect() as conn:
        raw = conn.connection.dbapi_connection
        assert raw is not None
        cursor = raw.cursor()
        if engine.dialect.name == "sqlite":
            cursor.execute("EXPLAIN QUERY PLAN " + statement, parameters)
            return "\n".join(str(row[-1]) for row in cursor.fetchall())
        cursor.execute("ANALYZE trips")
        cursor.execute("SET enable_seqscan = off")
        cursor.execute("EXPLAIN " + statement, parameters)
        out = "\n".join(str(row[0]) for row in cursor.fetchall())
        cursor.execute("RESET enable_seqscan")
        return out


def test_a_vehicles_trips_and_the_vehicle_search_use_the_index(trips: Engine) -> None:
    sessions = make_sessionmaker(trips)
    with sessions() as session, statements(trips) as seen:
        listed = operators_repo.trips_matching(
            session, operators_repo.TripQuery(vehicle_id="RLG-4711"), 0, 20
        )
        assert listed
        assert all(t.vehicle_id == "RLG-4711" for t in listed)
        assert [t.board_time for t in listed] == sorted(
            (t.board_time for t in listed), reverse=True
        )
        assert operators_repo.ids_starting_with(session, "vehicle", "RLG-47", 10) == [
            "RLG-47",
            "RLG-4711",
            "RLG-4712",
        ]
    on_trips = [(s, p) for s, p in seen if "FROM trips" in s and "vehicle_id" in s]
    assert len(on_trips) == 2, seen
    for statement, parameters in on_trips:
        assert "ix_trips_vehicle_board" in plan(trips, statement, parameters), statement


def test_the_index_is_in_the_migrated_schema(engine: Engine) -> None:
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            names = conn.execute(
                text("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'trips'")
            ).scalars()
        else:
            # The schema drift check compares no operator classes: the migration must give
            # the one the model names (LIKE 'x%' uses no other index in a non-C collation).
            defs = dict(
                conn.execute(
                    text("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'trips'")
                ).all()
            )
            assert "vehicle_id varchar_pattern_ops" in defs["ix_trips_vehicle_board"]
            names = defs.keys()
        assert "ix_trips_vehicle_board" in set(names)
