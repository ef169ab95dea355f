"""Migrations upgrade a database created by the previous release, data included."""

from __future__ import annotations

import datetime as dt

import pytest
from alembic import command
from sqlalchemy import inspect, text

from backend.db import alembic_config, make_engine


def migrate(engine, revision: str, down: bool = False) -> None:
    cfg = alembic_config()
    with engine.begin() as connection:
        cfg.attributes["connection"] = connection
        (command.downgrade if down else command.upgrade)(cfg, revision)


def vehicle_with_a_batch(conn, now: dt.datetime) -> int:
    """Vehicle V1 and one batch of it, as any release's schema holds them; the batch id."""
    conn.execute(
        text("INSERT INTO vehicles (vehicle_id, secret, created_at) VALUES ('V1', :s, :n)"),
        {"s": b"x" * 32, "n": now},
    )
    conn.execute(
        text(
            "INSERT INTO batches (vehicle_id, unit_id, boot_id, seq, fingerprint, sent_at, "
            "window_ms, n_events, n_sightings, received_at) "
            "VALUES ('V1', 'u', 'b', 1, :f, 1, 1000, 0, 3, :n)"
        ),
        {"f": b"f" * 32, "n": now},
    )
    return int(conn.execute(text("SELECT batch_id FROM batches")).scalar_one())


@pytest.fixture
def fresh_engine(database_url):
    engine = make_engine(database_url)
    migrate(engine, "base", down=True)
    yield engine
    migrate(engine, "head")
    engine.dispose()


def test_release_0001_database_upgrades_with_its_sightings(fresh_engine):
    engine = fresh_engine
    migrate(engine, "0001")
    now = dt.datetime(2026, 11, 20, tzinfo=dt.UTC)
    with engine.begin() as conn:
        batch_id = vehicle_with_a_batch(conn, now)
        for t in (3000, 1000, 2000):
            conn.execute(
                text(
                    "INSERT INTO sightings (batch_id, vehicle_id, service_day, t, token, rssi, "
                    "n, tx) VALUES (:b, 'V1', :d, :t, :tok, -60, 1, -8)"
                ),
                {"b": batch_id, "d": dt.date(2026, 11, 20), "t": t, "tok": bytes(16)},
            )
        conn.execute(
            text(
                "INSERT INTO reconcile_units (service_day, dirty, data_received_at) "
                "VALUES (:d, TRUE, :n)"
            ),
            {"d": dt.date(2026, 11, 20), "n": now},
        )

    migrate(engine, "head")

    with engine.connect() as conn:
        rows = conn.execute(text("SELECT k, t FROM sightings ORDER BY k")).all()
        assert [tuple(r) for r in rows] == [(0, 3000), (1, 1000), (2, 2000)]
        units = conn.execute(text("SELECT vehicle_id, dirty FROM work_units")).all()
        assert [(u[0], bool(u[1])) for u in units] == [("V1", True)]
    columns = {c["name"] for c in inspect(engine).get_columns("trips")}
    assert {"status", "alight_known_at", "conflict_lost", "score"} <= columns
    assert "reconcile_units" not in inspect(engine).get_table_names()


def test_downgrade_and_upgrade_again(fresh_engine):
    migrate(fresh_engine, "head")
    migrate(fresh_engine, "0001", down=True)
    assert "reconcile_units" in inspect(fresh_engine).get_table_names()
    migrate(fresh_engine, "head")
    assert "work_units" in inspect(fresh_engine).get_table_names()


def test_release_0003_database_upgrades_with_its_work_units(fresh_engine):
    engine = fresh_engine
    migrate(engine, "0003")
    now = dt.datetime(2026, 11, 20, tzinfo=dt.UTC)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO work_units (service_day, vehicle_id, dirty, generation, "
                "data_received_at) VALUES (:d, 'V1', TRUE, 7, :n)"
            ),
            {"d": dt.date(2026, 11, 20), "n": now},
        )

    migrate(engine, "head")

    with engine.connect() as conn:
        units = conn.execute(
            text("SELECT vehicle_id, generation, sealed_until, dirty_from FROM work_units")
        ).all()
    assert [tuple(u) for u in units] == [("V1", 7, None, None)]


def test_release_0004_database_gets_retention_marks_from_its_data(fresh_engine):
    """A database that ran retention before 0005 knew no marks: 0005 reads them off the data,
    so days whose sightings are gone (and months whose trips are) are final at once."""
    engine = fresh_engine
    migrate(engine, "0004")
    now = dt.datetime(2026, 11, 25, tzinfo=dt.UTC)
    with engine.begin() as conn:
        batch_id = vehicle_with_a_batch(conn, now)
        conn.execute(
            text(
                "INSERT INTO sightings (service_day, batch_id, k, vehicle_id, t, token, rssi, "
                "n, tx) VALUES (:d, :b, 0, 'V1', 1, :tok, -60, 1, -8)"
            ),
            {"d": dt.date(2026, 11, 20), "b": batch_id, "tok": bytes(16)},
        )
        for n, day in enumerate((dt.date(2026, 11, 2), dt.date(2026, 11, 20))):
            conn.execute(
                text(
                    "INSERT INTO trips (trip_id, service_day, device_id, passenger_id, "
                    "vehicle_id, journey_id, line, board_stop_id, board_time, alight_stop_id, "
                    "alight_time, confidence, score, status, conflict_lost, created_at) VALUES "
                    "(:id, :d, 'dev', 'pas', 'V1', 'J', 'L', 's1', 1, 's2', 2, 1.0, 1.0, "
                    "'closed', FALSE, :n)"
                ),
                {"id": f"trp_{n}", "d": day, "n": now},
            )
        conn.execute(
            text(
                "INSERT INTO ledger_entries (passenger_id, month, kind, amount_cents, "
                "explanation, created_at) VALUES ('pas', '2026-09', 'charge', 100, '{}', :n)"
            ),
            {"n": now},
        )

    migrate(engine, "head")

    with engine.connect() as conn:
        marks = dict(conn.execute(text("SELECT kind, purged_before FROM retention_marks")).all())
    marks = {k: dt.date.fromisoformat(str(v)) for k, v in marks.items()}
    assert marks == {"sightings": dt.date(2026, 11, 20), "trips": dt.date(2026, 11, 2)}


def test_a_new_database_has_no_retention_marks(fresh_engine):
    migrate(fresh_engine, "head")
    with fresh_engine.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM retention_marks")).scalar() == 0
