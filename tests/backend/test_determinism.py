"""The final trips do not depend on the order or timing of uploads (issue 6)."""

from __future__ import annotations

import random

import pytest

from backend.api.app import reconcile_dirty_units
from backend.db import make_sessionmaker
from backend.timeutil import service_day_of
from backend.trips import service as trips_service
from tests.backend.conftest import post_batch, register_phone
from tests.backend.synth import DRIVE_MS, DWELL_MS, Rider, Waiting, journey_batches

STOPS = [f"de:05974:10{k:02d}" for k in range(1, 9)]
T0 = 1_795_420_000_000


@pytest.fixture
def keys(engine):
    return [(p.device_id, p.device_key) for p in (register_phone(engine) for _ in range(4))]


def day_batches(keys):
    riders = [Rider(keys[0][1], 0, 3), Rider(keys[1][1], 2, 7), Rider(keys[2][1], 1, 2)]
    waiting = [Waiting(keys[3][1], 4), Waiting(keys[3][1], 5)]
    return journey_batches("RLG-4711", "R61-1", STOPS, T0, riders, waiting)


def trips_now(engine, app):
    state = app.state
    trips_service.reconcile_day(state.sessions, service_day_of(T0), state.resolvers, state.clock)
    with make_sessionmaker(engine)() as session:
        from backend.trips import repository as trips_repo

        return sorted(
            (t.device_id, t.board_stop_id, t.alight_stop_id, t.trip_id, t.status)
            for t in trips_repo.day_trips(session, service_day_of(T0))
        )


async def test_permuted_and_duplicated_uploads_give_the_same_trips(
    client, app, vehicle, engine, keys
):
    batches = day_batches(keys)
    for body in batches:
        assert (await post_batch(client, vehicle, body)).status_code == 200
    in_order = trips_now(engine, app)
    assert [(t[0], t[1], t[2]) for t in in_order] == sorted(
        [
            (keys[0][0], STOPS[0], STOPS[3]),
            (keys[1][0], STOPS[2], STOPS[7]),
            (keys[2][0], STOPS[1], STOPS[2]),
        ]
    )

    # Start over: the same uploads shuffled, some twice, reconciled in between (as the
    # service does while data trickles in after an outage).
    from backend.models import Base

    with engine.begin() as conn:
        for table in ("trips", "work_units", "sightings", "vehicle_events", "batches"):
            conn.execute(Base.metadata.tables[table].delete())
    rng = random.Random(7)
    shuffled = batches + rng.sample(batches, 5)
    rng.shuffle(shuffled)
    for i, body in enumerate(shuffled):
        assert (await post_batch(client, vehicle, body)).status_code == 200
        if i % 4 == 0:
            reconcile_dirty_units(app)  # as the service does: from the new data's time on
    reconcile_dirty_units(app)
    assert stored(engine) == in_order
    assert trips_now(engine, app) == in_order


def stored(engine):
    from backend.trips import repository as trips_repo

    with make_sessionmaker(engine)() as session:
        return sorted(
            (t.device_id, t.board_stop_id, t.alight_stop_id, t.trip_id, t.status)
            for t in trips_repo.day_trips(session, service_day_of(T0))
            if not t.conflict_lost
        )


async def test_reconciling_after_every_upload_rebuilds_only_what_changed(
    client, app, vehicle, engine, keys, monkeypatch
):
    from backend.trips import repository as trips_repo

    # Two journeys of the same bus, uploaded every 10 s and reconciled after each upload.
    first = journey_batches(
        "RLG-4711", "R61-1", STOPS, T0, [Rider(keys[0][1], 0, 3)], chunk_ms=10_000
    )
    t1 = T0 + len(STOPS) * (DWELL_MS + DRIVE_MS) + 300_000
    second = journey_batches(
        "RLG-4711",
        "R61-2",
        STOPS[::-1],
        t1,
        [Rider(keys[1][1], 1, 5), Rider(keys[0][1], 4, 7)],
        first_seq=first[-1]["seq"] + 1,
        chunk_ms=10_000,
    )
    rebuilt_from: list[int] = []
    real = trips_repo.replace_vehicle_trips

    def spy(session, day, vehicle_id, trips, passenger_of, since):
        rebuilt_from.append(since)
        return real(session, day, vehicle_id, trips, passenger_of, since)

    monkeypatch.setattr(trips_repo, "replace_vehicle_trips", spy)
    for body in first + second:
        assert (await post_batch(client, vehicle, body)).status_code == 200
        reconcile_dirty_units(app)
    incremental = stored(engine)
    # Once the second journey is under way, the first is left alone (its riders may still
    # calibrate the second's levels, but its trips are not rebuilt).
    assert max(rebuilt_from) >= t1
    assert trips_now(engine, app) == incremental  # a full rebuild agrees
    assert sorted((t[1], t[2]) for t in incremental) == sorted(
        [(STOPS[0], STOPS[3]), (STOPS[::-1][1], STOPS[::-1][5]), (STOPS[::-1][4], STOPS[::-1][7])]
    )
