"""A work unit that fails is retried with a growing back-off a bounded number of times, then
parked with its error visible to operators (API, page, metric); one bad unit never stops
the others, and an operator's reconcile of the day gives it a fresh start (issue 11)."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from backend import models
from backend.const import MAX_UNIT_ATTEMPTS, UNIT_RETRY_BACKOFF
from backend.db import make_sessionmaker, transaction
from backend.trips import repository as trips_repo
from backend.trips import service as trips_service
from tests.web.conftest import Clock

DAY = dt.date(2026, 11, 23)
START = dt.datetime(2026, 11, 23, 12, tzinfo=dt.UTC)


@pytest.fixture
def poisoned(monkeypatch):
    """Vehicle BAD's rebuild fails as a poisoned unit would (the error of issue 11's
    January-1970 sighting); every other vehicle's works."""
    real = trips_service.reconcile_vehicle_day

    def rebuild(session, day, vehicle_id, resolvers, since=0, own=False):
        if vehicle_id == "BAD":
            raise OverflowError("date value out of range")
        return real(session, day, vehicle_id, resolvers, since, own)

    monkeypatch.setattr(trips_service, "reconcile_vehicle_day", rebuild)


def unit(session, vehicle_id: str) -> models.WorkUnit:
    w = models.WorkUnit
    return session.scalars(select(w).where(w.service_day == DAY, w.vehicle_id == vehicle_id)).one()


def test_failing_unit_backs_off_parks_and_never_blocks_the_others(engine, poisoned):
    sessions = make_sessionmaker(engine)
    resolvers = trips_service.ResolverCache()
    clock = Clock(START)
    with transaction(sessions) as session:
        trips_repo.mark_dirty(session, {(DAY, "BAD"), (DAY, "GOOD")}, START)

    done = trips_service.work_until_idle(sessions, resolvers, clock)
    by_vehicle = {w.unit.vehicle_id: w for w in done}
    assert by_vehicle["BAD"].error == "OverflowError: date value out of range"
    assert by_vehicle["GOOD"].error is None  # the other unit went on
    assert by_vehicle[models.DAY_UNIT].error is None

    waits = []
    for attempt in range(1, MAX_UNIT_ATTEMPTS + 1):
        with sessions() as session:
            bad = unit(session, "BAD")
            assert bad.attempts == attempt
            assert bad.parked is (attempt == MAX_UNIT_ATTEMPTS)
            assert bad.last_error == "OverflowError: date value out of range"
            lease = (
                bad.lease_until.replace(tzinfo=dt.UTC)
                if bad.lease_until.tzinfo is None
                else bad.lease_until
            )
        waits.append(lease - clock.now)
        # Not retried before its back-off has passed...
        assert trips_service.work_once(sessions, resolvers, clock) is None
        clock.now = lease + dt.timedelta(seconds=1)
        if attempt < MAX_UNIT_ATTEMPTS:
            # ...and retried once it has.
            again = trips_service.work_once(sessions, resolvers, clock)
            assert again is not None
            assert again.unit.vehicle_id == "BAD"
    # The back-off doubles from one failure to the next.
    assert waits == [UNIT_RETRY_BACKOFF * 2**k for k in range(MAX_UNIT_ATTEMPTS)]

    # Parked: no worker takes it, however long one waits; it is reported.
    clock.now += dt.timedelta(days=1)
    assert trips_service.work_until_idle(sessions, resolvers, clock) == []
    with sessions() as session:
        troubled = trips_repo.troubled_units(session)
        assert [(u.vehicle_id, u.parked, u.attempts) for u in troubled] == [
            ("BAD", True, MAX_UNIT_ATTEMPTS)
        ]
        counts = trips_repo.operations_counts(session)
        assert (counts.parked_units, counts.failing_units) == (1, 0)


def test_operator_reconcile_gives_a_parked_unit_a_fresh_start(engine, poisoned, monkeypatch):
    sessions = make_sessionmaker(engine)
    resolvers = trips_service.ResolverCache()
    clock = Clock(START)
    with transaction(sessions) as session:
        trips_repo.mark_dirty(session, {(DAY, "BAD")}, START)
        session.execute(
            models.WorkUnit.__table__.update().values(attempts=MAX_UNIT_ATTEMPTS, parked=True)
        )
    assert trips_service.work_until_idle(sessions, resolvers, clock) == []
    # The cause is mended (a fixed release); the operator reconciles the day.
    monkeypatch.setattr(
        trips_service,
        "reconcile_vehicle_day",
        lambda *a, **k: trips_service.VehicleDayResult(0, 0, 0),
    )
    trips_service.reconcile_day(sessions, DAY, resolvers, clock)
    with sessions() as session:
        bad = unit(session, "BAD")
        assert (bad.parked, bad.attempts, bad.dirty) == (False, 0, False)


def test_a_lost_database_connection_is_not_the_units_fault(engine, monkeypatch):
    sessions = make_sessionmaker(engine)
    with transaction(sessions) as session:
        trips_repo.mark_dirty(session, {(DAY, "V1")}, START)

    def lost(*_a, **_k):
        raise OperationalError(
            "SELECT 1", {}, Exception("server closed the connection"), connection_invalidated=True
        )

    monkeypatch.setattr(trips_service, "reconcile_vehicle_day", lost)
    with pytest.raises(OperationalError):
        trips_service.work_once(sessions, trips_service.ResolverCache(), Clock(START))
    with sessions() as session:
        assert unit(session, "V1").attempts == 0


async def test_operators_see_failing_units_in_the_api_the_page_and_the_metrics(
    client, app, engine, operators, poisoned
):
    sessions = make_sessionmaker(engine)
    with transaction(sessions) as session:
        trips_repo.mark_dirty(session, {(DAY, "BAD")}, START)
    trips_service.work_until_idle(sessions, trips_service.ResolverCache(), Clock(START))
    auth = {"Authorization": f"Bearer {operators['viewer']}"}
    report = (await client.get("/v1/operations", headers=auth)).json()
    assert [(u["vehicle_id"], u["attempts"], u["parked"]) for u in report["units"]] == [
        ("BAD", 1, False)
    ]
    assert "OverflowError" in report["units"][0]["last_error"]
    metrics = (await client.get("/metrics")).text
    assert "bibo_work_units_failing 1.0" in metrics
    assert "bibo_work_units_parked 0.0" in metrics


def test_a_deadlock_counts_against_the_unit_and_never_stops_the_worker(engine, monkeypatch):
    sessions = make_sessionmaker(engine)
    with transaction(sessions) as session:
        trips_repo.mark_dirty(session, {(DAY, "V1")}, START)

    def deadlock(*_a, **_k):
        raise OperationalError("UPDATE trips", {}, Exception("deadlock detected"))

    monkeypatch.setattr(trips_service, "reconcile_vehicle_day", deadlock)
    done = trips_service.work_once(sessions, trips_service.ResolverCache(), Clock(START))
    assert done is not None
    assert "deadlock detected" in done.error
    with sessions() as session:
        assert unit(session, "V1").attempts == 1


def test_retention_lets_go_of_units_of_days_it_makes_final(engine, poisoned):
    from backend.maintenance.service import apply_retention

    sessions = make_sessionmaker(engine)
    with transaction(sessions) as session:
        trips_repo.mark_dirty(session, {(DAY, "BAD"), (DAY, "LATE")}, START)
        session.execute(
            models.WorkUnit.__table__.update()
            .where(models.WorkUnit.vehicle_id == "BAD")
            .values(attempts=MAX_UNIT_ATTEMPTS, parked=True, last_error="OverflowError")
        )
    with transaction(sessions) as session:
        apply_retention(session, DAY + dt.timedelta(days=15), 14, 365, START)
    with sessions() as session:
        assert trips_repo.troubled_units(session) == []
        assert trips_repo.dirty_units(session) == []
        assert trips_repo.operations_counts(session).parked_units == 0


def test_an_operators_reconcile_leaves_a_unit_being_retried_to_its_worker(engine):
    sessions = make_sessionmaker(engine)
    lease = START + dt.timedelta(minutes=3)
    with transaction(sessions) as session:
        trips_repo.mark_dirty(session, {(DAY, "V1")}, START)
        session.execute(models.WorkUnit.__table__.update().values(attempts=2, lease_until=lease))
    with transaction(sessions) as session:
        trips_repo.unpark_day(session, DAY)
    with sessions() as session:
        v1 = unit(session, "V1")
        assert v1.attempts == 0
        assert v1.lease_until.replace(tzinfo=dt.UTC) == lease  # still its worker's
