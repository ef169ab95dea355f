"""Reconciliation work units: claimed once, leased, and shared by parallel workers."""

from __future__ import annotations

import base64
import datetime as dt
import threading

import pytest
from sqlalchemy import delete, select

from backend import models
from backend.billing import repository as billing_repo
from backend.db import make_sessionmaker, transaction
from backend.ingest import service as ingest_service
from backend.models import DAY_UNIT
from backend.passengers import service as passengers_service
from backend.timeutil import service_day_of
from backend.trips import repository as trips_repo
from backend.trips import service as trips_service
from tests.backend.conftest import Vehicle, post_batch
from tests.backend.synth import Rider, journey_batches

T0 = 1_795_420_000_000
DAY = service_day_of(T0)
VEHICLES = [f"RLG-{n}" for n in range(4701, 4709)]
T_EARLY, T_LATE = T0 + 60_000, T0 + 3_600_000


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@pytest.fixture
async def loaded(engine, client):
    """Eight buses of one day, each with riders; everything uploaded, nothing reconciled."""
    sessions = make_sessionmaker(engine)
    with transaction(sessions) as session:
        secrets = {v: ingest_service.register_vehicle(session, v) for v in VEHICLES}
        devices = [
            passengers_service.register_device(
                session, passengers_service.register_passenger(session, "adult").passenger_id
            )
            for _ in range(12)
        ]
    keys = [base64.b64decode(d.device_key_b64) for d in devices]
    for n, vehicle_id in enumerate(VEHICLES):
        stops = [f"de:05978:2{n}{k:02d}" for k in range(6)]
        riders = [Rider(keys[(n + i) % 12], i % 3, 3 + i % 3) for i in range(3)]
        for body in journey_batches(vehicle_id, f"S20-{n}", stops, T0 + n * 3_600_000, riders):
            response = await post_batch(client, Vehicle(vehicle_id, secrets[vehicle_id]), body)
            assert response.status_code == 200
    return sessions


def snapshot(sessions):
    with sessions() as session:
        return sorted(
            (t.trip_id, t.device_id, t.board_stop_id, t.alight_stop_id, t.conflict_lost)
            for t in session.scalars(select(models.Trip).where(models.Trip.service_day == DAY))
        )


def test_a_unit_is_clean_after_its_work_and_dirty_again_on_new_data(engine, loaded):
    sessions = loaded
    done = trips_service.work_until_idle(sessions, trips_service.ResolverCache(), utc_now)
    assert {w.unit.vehicle_id for w in done} == {*VEHICLES, DAY_UNIT}
    with sessions() as session:
        assert trips_repo.dirty_units(session) == []
    with transaction(sessions) as session:
        trips_repo.mark_dirty(session, {(DAY, VEHICLES[0])}, utc_now())
    with sessions() as session:
        # Uploads dirty only their vehicle's unit; its reconciliation dirties the day's.
        assert trips_repo.dirty_units(session) == [(DAY, VEHICLES[0])]
    done = trips_service.work_until_idle(sessions, trips_service.ResolverCache(), utc_now)
    assert [w.unit.vehicle_id for w in done] == [VEHICLES[0], DAY_UNIT]


def test_the_unit_whose_data_waits_longest_is_claimed_first(engine):
    # Under load every bus uploads again before its unit is done: a claim order by vehicle id
    # would serve the first buses over and over and starve the last.
    sessions = make_sessionmaker(engine)
    now = utc_now()
    with transaction(sessions) as session:
        trips_repo.mark_dirty(session, {(DAY, "A-1")}, now, since=T_LATE)
        trips_repo.mark_dirty(session, {(DAY, "Z-9")}, now, since=T_EARLY)
        trips_repo.mark_dirty(session, {(DAY, DAY_UNIT)}, now, since=0)
    order = []
    for _ in range(3):
        with transaction(sessions) as session:
            unit = trips_repo.claim_unit(session, now, dt.timedelta(minutes=5))
            assert unit is not None
            order.append(unit.vehicle_id)
    assert order == ["Z-9", "A-1", DAY_UNIT]


def test_a_leased_unit_is_not_claimed_twice(engine, loaded):
    sessions = loaded
    now = utc_now()
    with transaction(sessions) as session:
        first = trips_repo.claim_unit(session, now, dt.timedelta(minutes=5))
    with transaction(sessions) as session:
        second = trips_repo.claim_unit(session, now, dt.timedelta(minutes=5))
    assert first is not None
    assert second is not None
    assert (first.service_day, first.vehicle_id) != (second.service_day, second.vehicle_id)
    # After the lease runs out, a crashed worker's unit is taken over.
    later = now + dt.timedelta(minutes=6)
    with transaction(sessions) as session:
        again = trips_repo.claim_unit(session, later, dt.timedelta(minutes=5))
    assert again is not None
    assert (again.service_day, again.vehicle_id) == (first.service_day, first.vehicle_id)


def test_new_data_during_work_keeps_the_unit_dirty(engine, loaded):
    sessions = loaded
    now = utc_now()
    with transaction(sessions) as session:
        unit = trips_repo.claim_unit(session, now, dt.timedelta(minutes=5))
    assert unit is not None
    with transaction(sessions) as session:
        trips_repo.mark_dirty(session, {(unit.service_day, unit.vehicle_id)}, now)
    with transaction(sessions) as session:
        assert trips_repo.complete_unit(session, unit, now) is False
    with sessions() as session:
        assert (unit.service_day, unit.vehicle_id) in trips_repo.dirty_units(session)


# FOR UPDATE SKIP LOCKED is PostgreSQL's; on SQLite one worker runs (one writer anyway).
@pytest.mark.parametrize(
    "database_url", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True
)
def test_two_parallel_workers_produce_what_one_produces(engine, loaded):
    sessions = loaded
    trips_service.work_until_idle(sessions, trips_service.ResolverCache(), utc_now)
    one_worker = snapshot(sessions)
    assert len(one_worker) == 3 * len(VEHICLES)

    with transaction(sessions) as session:
        session.execute(delete(models.Trip).where(models.Trip.service_day == DAY))
        trips_repo.mark_dirty(session, {(DAY, v) for v in VEHICLES}, utc_now())
    claimed: list[list[str]] = [[], []]
    barrier = threading.Barrier(2)

    def worker(i: int) -> None:
        barrier.wait()
        for done in trips_service.work_until_idle(sessions, trips_service.ResolverCache(), utc_now):
            claimed[i].append(done.unit.vehicle_id)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    vehicle_units = [v for c in claimed for v in c if v != DAY_UNIT]
    assert sorted(vehicle_units) == sorted(VEHICLES)  # each vehicle-day done exactly once
    assert snapshot(sessions) == one_worker


def test_hourly_maintenance_bills_ended_days_and_closes_the_last_month(engine, riders):
    from backend.settings import Settings
    from backend.trips.worker import maintain

    sessions = make_sessionmaker(engine)
    settings = Settings(database_url="sqlite://", reconcile_in_background=False)
    maintain(sessions, settings, dt.datetime(2026, 12, 3, 12, tzinfo=dt.UTC))
    with sessions() as session:
        for rider in riders:
            (invoice,) = billing_repo.passenger_invoices(session, rider.passenger_id)
            assert invoice.month == "2026-11"
            assert billing_repo.ledger_balance(session, rider.passenger_id, "2026-11") > 0
    maintain(sessions, settings, dt.datetime(2026, 12, 3, 13, tzinfo=dt.UTC))
    with sessions() as session:
        assert len(billing_repo.passenger_invoices(session, riders[0].passenger_id)) == 1


def test_the_resolver_sees_every_change_to_the_registered_devices(engine):
    """A device registered as another is deleted leaves the count (and, with random ids,
    often the newest id) as it was: the worker's resolver must be rebuilt all the same, or
    the new phone's rides go undetected until the process restarts."""
    from backend.passengers import repository as passengers_repo

    sessions = make_sessionmaker(engine)
    cache = trips_service.ResolverCache()

    def device_ids() -> list[str]:
        with transaction(sessions) as session:
            return list(cache.get(session)[0].device_ids)

    with transaction(sessions) as session:
        for passenger, device in (("pas_a", "dev_b"), ("pas_z", "dev_z")):
            passengers_repo.add_passenger(session, passenger, "adult", passenger.encode() * 8)
            passengers_repo.add_device(session, device, passenger, bytes(32))
    assert device_ids() == ["dev_b", "dev_z"]
    with transaction(sessions) as session:
        passengers_repo.delete_personal_rows(session, "pas_a")
        passengers_repo.add_device(session, "dev_c", "pas_z", bytes(32))
    assert device_ids() == ["dev_c", "dev_z"]
    with transaction(sessions) as session:
        passengers_repo.delete_personal_rows(session, "pas_z")
    assert device_ids() == []
