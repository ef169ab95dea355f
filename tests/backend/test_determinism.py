"""The final trips do not depend on the order or timing of uploads (issue 6)."""

from __future__ import annotations

import random

import pytest

from backend import services
from backend.db import make_sessionmaker, transaction
from backend.timeutil import service_day_of
from tests.backend.conftest import post_batch
from tests.backend.synth import Rider, Waiting, journey_batches

STOPS = [f"de:05974:10{k:02d}" for k in range(1, 9)]
T0 = 1_795_420_000_000


@pytest.fixture
def keys(engine):
    with transaction(make_sessionmaker(engine)) as session:
        devices = [
            services.register_device(
                session, services.register_passenger(session, "adult").passenger_id
            )
            for _ in range(4)
        ]
    import base64

    return [(d.device_id, base64.b64decode(d.device_key_b64)) for d in devices]


def day_batches(keys):
    riders = [Rider(keys[0][1], 0, 3), Rider(keys[1][1], 2, 7), Rider(keys[2][1], 1, 2)]
    waiting = [Waiting(keys[3][1], 4), Waiting(keys[3][1], 5)]
    return journey_batches("RLG-4711", "R61-1", STOPS, T0, riders, waiting)


def trips_now(engine, app):
    state = app.state
    services.reconcile_day(state.sessions, service_day_of(T0), state.resolvers, state.clock)
    with make_sessionmaker(engine)() as session:
        from backend import repository

        return sorted(
            (t.device_id, t.board_stop_id, t.alight_stop_id, t.trip_id, t.status)
            for t in repository.day_trips(session, service_day_of(T0))
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
            trips_now(engine, app)
    assert trips_now(engine, app) == in_order
