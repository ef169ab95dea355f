"""A worker rebuilds a bus's next upload from the sightings it holds plus the new ones
(``trips.service.SightingsCache``): what it reads must be what a full read gives, whatever
the order uploads arrive in, and units go back to the worker that holds them."""

from __future__ import annotations

import datetime as dt
import random

import numpy as np
import pytest
from sqlalchemy import update

from backend import models
from backend.api.app import reconcile_dirty_units
from backend.const import WORK_LEASE
from backend.db import make_sessionmaker, transaction
from backend.ingest import service as ingest_service
from backend.timeutil import service_day_of
from backend.trips import repository as trips_repo
from backend.trips import service as trips_service
from tests.backend.conftest import Vehicle, post_batch, register_phone
from tests.backend.synth import DRIVE_MS, DWELL_MS, Rider, Waiting, journey_batches

STOPS = [f"de:05974:10{k:02d}" for k in range(1, 9)]
T0 = 1_795_420_000_000
DAY = service_day_of(T0)


@pytest.fixture
def keys(engine):
    return [register_phone(engine).device_key for _ in range(4)]


def two_journeys(keys):
    stranger = bytes(range(32))  # a phone bibo does not know: its tokens stay unresolved
    first = journey_batches(
        "RLG-4711",
        "R61-1",
        STOPS,
        T0,
        [Rider(keys[0], 0, 3), Rider(stranger, 1, 6), Rider(keys[2], 2, 7)],
        [Waiting(keys[3], 4)],
        chunk_ms=10_000,
    )
    t1 = T0 + len(STOPS) * (DWELL_MS + DRIVE_MS) + 300_000
    second = journey_batches(
        "RLG-4711",
        "R61-2",
        STOPS[::-1],
        t1,
        [Rider(keys[1], 1, 5), Rider(keys[0], 4, 7)],
        first_seq=first[-1]["seq"] + 1,
        chunk_ms=10_000,
    )
    return first + second


def late_and_repeated(batches, rng):
    """The uploads in the order a flaky link delivers them: most on time, some held back by
    up to a minute's worth of later ones, some sent twice."""
    order = sorted(
        range(len(batches)), key=lambda i: i + (rng.randint(1, 6) if rng.random() < 0.2 else 0)
    )
    again = rng.sample(range(len(batches)), 4)
    return [batches[i] for i in order] + [batches[i] for i in again]


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_the_held_sightings_are_what_a_full_read_gives(
    client, app, vehicle, engine, keys, monkeypatch, seed
):
    cache = app.state.resolvers.sightings
    real = trips_service.SightingsCache.read
    reads: list[tuple[int, int]] = []
    differ: list[str] = []

    def checked(self, session, day, vehicle_id, read_from, changed_from, resolver, version):
        held = real(self, session, day, vehicle_id, read_from, changed_from, resolver, version)
        full = real(
            trips_service.SightingsCache(),
            session,
            day,
            vehicle_id,
            read_from,
            0,
            resolver,
            version,
        )
        # (Raised in a worker, an assertion would only fail the unit: noted, checked below.)
        for name in ("t", "device", "rssi", "tx", "window_ms", "stranger_t", "stranger_window_ms"):
            if not np.array_equal(getattr(held, name), getattr(full, name), equal_nan=True):
                differ.append(name)
        seen, truth = held.observations(vehicle_id, 0), full.observations(vehicle_id, 0)
        if (seen.window_ms, seen.data_end_ms) != (truth.window_ms, truth.data_end_ms):
            differ.append("data end")
        reads.append((changed_from, full.rows))
        return held

    monkeypatch.setattr(trips_service.SightingsCache, "read", checked)
    for body in late_and_repeated(two_journeys(keys), random.Random(seed)):
        assert (await post_batch(client, vehicle, body)).status_code == 200
        reconcile_dirty_units(app)
        assert differ == []
    # Most rebuilds read from the upload's data on, and all of them far less than anew.
    assert sum(changed > 0 for changed, _ in reads) > len(reads) / 2
    assert cache.rows_read < sum(rows for _, rows in reads) / 3


async def test_a_worker_reads_everything_again_when_another_worker_did_the_unit_last(
    client, app, vehicle, engine, keys
):
    batches = two_journeys(keys)[:20]
    sessions = app.state.sessions
    mine, other = app.state.resolvers, trips_service.ResolverCache()
    for n, body in enumerate(batches):
        assert (await post_batch(client, vehicle, body)).status_code == 200
        worker = mine if n % 3 else other
        before = worker.sightings.rows_read
        trips_service.work_until_idle(sessions, worker, app.state.clock)
        with sessions() as session:
            stored = len(trips_repo.vehicle_day_sighting_rows(session, DAY, "RLG-4711").t)
        # After the other worker, everything (of the journey) again; after itself, the news.
        read = worker.sightings.rows_read - before
        assert read == stored if n % 3 != 2 else read < stored


def test_a_worker_claims_its_own_units_first_unless_another_waits_much_longer(engine):
    sessions = make_sessionmaker(engine)
    now = dt.datetime.now(dt.UTC)
    head_start = trips_repo.OWN_UNIT_HEAD_START_MS

    def waiting(a_from: int, b_from: int) -> None:
        with transaction(sessions) as session:
            for vehicle_id, since, owner in (("BUS-A", a_from, "one"), ("BUS-B", b_from, "two")):
                session.merge(
                    models.WorkUnit(
                        service_day=DAY,
                        vehicle_id=vehicle_id,
                        dirty=True,
                        generation=1,
                        dirty_from=since,
                        reconciled_by=owner,
                        data_received_at=now,
                    )
                )

    def first_claim(worker: str | None) -> str:
        with sessions() as session:
            unit = trips_repo.claim_unit(session, now, dt.timedelta(minutes=1), worker=worker)
            session.rollback()
            assert unit is not None
            return unit.vehicle_id

    waiting(T0 + head_start // 2, T0)  # BUS-B waits a little longer: each takes its own
    assert (first_claim("one"), first_claim("two")) == ("BUS-A", "BUS-B")
    assert first_claim(None) == "BUS-B"  # without a name, the oldest
    assert first_claim("three") == "BUS-B"  # a new worker: the oldest of the others'
    waiting(T0 + 2 * head_start, T0)  # BUS-B waits much longer: worker one takes it first
    assert (first_claim("one"), first_claim("two")) == ("BUS-B", "BUS-B")


async def test_a_worker_holds_its_row_budget_and_drops_the_least_recently_used(
    client, app, vehicle, engine, keys
):
    with transaction(app.state.sessions) as session:
        other = Vehicle("VKU-0815", ingest_service.register_vehicle(session, "VKU-0815"))
    for bus in (vehicle, other):
        for body in journey_batches(
            bus.vehicle_id, "R61-1", STOPS, T0, [Rider(keys[0], 0, 3)], chunk_ms=60_000
        ):
            assert (await post_batch(client, bus, body)).status_code == 200
    resolvers = trips_service.ResolverCache()
    later = T0 + 10**9
    with transaction(app.state.sessions) as session:  # as if claimed with nothing newer
        session.execute(update(models.WorkUnit).values(dirty_from=later))
    with app.state.sessions() as session:
        resolver, _ = resolvers.get(session)
        rows = len(trips_repo.vehicle_day_sighting_rows(session, DAY, "RLG-4711").t)
        cache = trips_service.SightingsCache(max_rows=rows + 1)

        def read(vehicle_id: str, changed_from: int) -> int:
            before = cache.rows_read
            cache.read(session, DAY, vehicle_id, 0, changed_from, resolver, resolvers.version)
            return cache.rows_read - before

        assert read("RLG-4711", 0) == rows
        assert read("RLG-4711", later) == 0  # held: nothing newer to read
        assert read("VKU-0815", 0) > 0  # over budget: RLG-4711's rows are dropped
        assert read("RLG-4711", later) == rows


async def test_an_upload_between_claim_and_read_with_earlier_data_is_not_missed(
    client, app, vehicle, engine, keys
):
    batches = two_journeys(keys)[:12]
    held_back, late = batches[5], batches[9]
    resolvers, sessions = app.state.resolvers, app.state.sessions
    for body in batches[:9]:
        if body is not held_back:
            assert (await post_batch(client, vehicle, body)).status_code == 200
    trips_service.work_until_idle(sessions, resolvers, app.state.clock)  # this worker's now
    assert (await post_batch(client, vehicle, late)).status_code == 200
    with transaction(sessions) as session:
        unit = trips_repo.claim_unit(
            session, app.state.clock(), WORK_LEASE, worker=resolvers.sightings.owner
        )
    assert unit is not None
    assert unit.reconciled_by == resolvers.sightings.owner
    # Claimed from the late upload's data on; now the held-back one comes, with earlier data.
    assert (await post_batch(client, vehicle, held_back)).status_code == 200
    with transaction(sessions) as session:
        trips_service.run_unit(session, unit, resolvers, app.state.clock())
    with sessions() as session:
        resolver, _ = resolvers.get(session)
        full = trips_service.SightingsCache().read(
            session, DAY, vehicle.vehicle_id, 0, 0, resolver, resolvers.version
        )
    held = resolvers.sightings.peek(DAY, vehicle.vehicle_id)
    assert held is not None
    assert held.rows == full.rows
    np.testing.assert_array_equal(held.t, full.t)
    np.testing.assert_array_equal(held.device, full.device)


async def test_readers_that_claim_no_unit_read_past_the_cache(client, app, vehicle, engine, keys):
    # The operator's trip evidence reads a vehicle-day while workers may rebuild it: what it
    # read must not replace what a worker holds.
    for body in two_journeys(keys)[:8]:
        assert (await post_batch(client, vehicle, body)).status_code == 200
    resolvers = app.state.resolvers
    with app.state.sessions() as session:
        resolver, _ = resolvers.get(session)
        before = resolvers.sightings.rows_read
        obs, stored, _ = trips_service.vehicle_day_observations(
            session, DAY, vehicle.vehicle_id, 0, resolvers, resolver
        )
    assert stored > 0
    assert len(obs.t) > 0
    assert resolvers.sightings.peek(DAY, vehicle.vehicle_id) is None
    assert resolvers.sightings.rows_read == before
