"""The be-out of a rider who leaves at a journey's last stop, when nothing but heartbeat
uploads follow (the bus runs empty to the depot): the backend learns from each upload's
seal time that no rider was heard, and closes the trip 45 s after the bus left."""

from __future__ import annotations

import pytest

from backend.api.app import reconcile_dirty_units
from backend.const import CLOSE_AFTER_SILENCE_MS
from backend.db import make_sessionmaker
from backend.timeutil import service_day_of
from backend.trips import repository as trips_repo
from tests.backend.conftest import Phone, post_batch
from tests.backend.synth import DRIVE_MS, DWELL_MS, Rider, heartbeat, journey_batches

STOPS = [f"de:05974:10{k:02d}" for k in range(1, 5)]
T0 = 1_795_420_000_000
LAST_DEPARTURE = T0 + (len(STOPS) - 1) * (DWELL_MS + DRIVE_MS) + DWELL_MS


@pytest.fixture
def key(phone: Phone) -> bytes:
    return phone.device_key


def trips(engine) -> list[tuple[str, str, int | None]]:
    with make_sessionmaker(engine)() as session:
        return [
            (t.alight_stop_id, t.status, t.alight_known_at)
            for t in trips_repo.day_trips(session, service_day_of(T0))
        ]


def dirty(engine) -> list[object]:
    with make_sessionmaker(engine)() as session:
        return trips_repo.dirty_units(session)


async def test_heartbeats_close_the_last_stops_be_out(app, client, vehicle, engine, key):
    batches = journey_batches("RLG-4711", "R61-1", STOPS, T0, [Rider(key, 0, 3)], chunk_ms=10_000)
    for body in batches:
        assert (await post_batch(client, vehicle, body)).status_code == 200
    reconcile_dirty_units(app)
    assert trips(engine) == [(STOPS[3], "open", None)]

    seq = batches[-1]["seq"] + 1
    # Too early: 45 s after the departure are not sealed yet.
    early = heartbeat(seq, LAST_DEPARTURE + CLOSE_AFTER_SILENCE_MS - 5_000)
    assert (await post_batch(client, vehicle, early)).status_code == 200
    reconcile_dirty_units(app)
    assert trips(engine) == [(STOPS[3], "open", None)]

    late = heartbeat(seq + 1, LAST_DEPARTURE + CLOSE_AFTER_SILENCE_MS + 1_000)
    assert (await post_batch(client, vehicle, late)).status_code == 200
    assert dirty(engine) == [(service_day_of(T0), "RLG-4711")]
    reconcile_dirty_units(app)
    assert trips(engine) == [(STOPS[3], "closed", LAST_DEPARTURE + CLOSE_AFTER_SILENCE_MS)]

    # With nothing open, a heartbeat leaves the vehicle's day alone.
    idle = heartbeat(seq + 2, LAST_DEPARTURE + 300_000)
    assert (await post_batch(client, vehicle, idle)).status_code == 200
    assert dirty(engine) == []
