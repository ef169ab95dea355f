"""Raw sightings, the vehicles' and the phones', are deleted after their retention period;
trips stay (issue 6, issue 14)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from backend import models
from backend.db import make_sessionmaker, transaction
from backend.maintenance.service import apply_retention, ensure_partitions, sighting_partitions
from backend.passengers import service as passengers_service
from backend.timeutil import service_day_bounds
from backend.trips import repository as trips_repo
from backend.trips import service as trips_service
from tests.backend.conftest import beacon_at, phone_body, post_batch, post_sightings
from tests.backend.synth import Rider, journey_batches

TODAY = dt.date(2026, 11, 21)
NOW = dt.datetime(2026, 11, 21, 12, tzinfo=dt.UTC)
OLD, RECENT = TODAY - dt.timedelta(days=15), TODAY - dt.timedelta(days=13)
STOPS = [f"de:05974:10{k:02d}" for k in range(1, 5)]


def day_start(day: dt.date) -> int:
    return service_day_bounds(day)[0] + 6 * 3_600_000


async def test_old_sightings_go_recent_ones_and_trips_stay(client, app, engine, vehicle):
    sessions = make_sessionmaker(engine)
    with transaction(sessions) as session:
        ensure_partitions(session, RECENT)  # PostgreSQL: RECENT has its own partition
        device = passengers_service.register_device(
            session, passengers_service.register_passenger(session, "adult").passenger_id
        )
    import base64

    key = base64.b64decode(device.device_key_b64)
    for n, day in enumerate((OLD, RECENT)):
        for body in journey_batches(
            vehicle.vehicle_id,
            f"R61-{n}",
            STOPS,
            day_start(day),
            [Rider(key, 0, 3)],
            boot_id=f"boot-{n}",
        ):
            assert (await post_batch(client, vehicle, body)).status_code == 200
        state = app.state
        trips_service.reconcile_day(state.sessions, day, state.resolvers, state.clock)

    with transaction(sessions) as session:
        result = apply_retention(session, TODAY, sightings_days=14, trips_days=365, now=NOW)
    assert result.sightings_before == TODAY - dt.timedelta(days=14)
    assert result.sightings_deleted > 0 or result.partitions_dropped > 0

    with sessions() as session:
        days = set(session.scalars(select(models.Sighting.service_day).distinct()))
        assert days == {RECENT}
        assert len(trips_repo.day_trips(session, OLD)) == 1
        assert len(trips_repo.day_trips(session, RECENT)) == 1

    with transaction(sessions) as session:
        result = apply_retention(session, TODAY + dt.timedelta(days=400), 14, 365, NOW)
    assert result.trips_deleted == 2


def test_partitions_are_made_ahead_and_dropped_after_retention(engine):
    sessions = make_sessionmaker(engine)
    with transaction(sessions) as session:
        created = ensure_partitions(session, TODAY)
        if engine.dialect.name != "postgresql":
            assert created == []  # SQLite has no partitions: retention deletes rows
            return
        assert sorted(sighting_partitions(session).values())[-3:] == [
            TODAY,
            TODAY + dt.timedelta(days=1),
            TODAY + dt.timedelta(days=2),
        ]
        assert ensure_partitions(session, TODAY) == []
    with transaction(sessions) as session:
        result = apply_retention(session, TODAY + dt.timedelta(days=20), 14, 365, NOW)
        assert result.partitions_dropped >= 3
        assert all(
            day >= TODAY + dt.timedelta(days=6) for day in sighting_partitions(session).values()
        )


async def test_old_phone_sightings_go_like_the_vehicles(app, client, engine, phone, vehicle):
    """A phone's rows of days past retention go, also from an upload received since; an
    upload received before the first kept day goes whole."""
    old_t, recent_t = day_start(OLD), day_start(RECENT)
    major, minor = beacon_at(vehicle.secret, recent_t)
    uploads = [  # (received at, batch id, beacon times)
        (old_t, "received-old", [old_t - 2000, old_t - 1000]),
        (recent_t, "received-recent", [old_t, recent_t - 1000, recent_t]),
    ]
    for received, batch_id, times in uploads:
        app.state.clock = lambda received=received: dt.datetime.fromtimestamp(
            received / 1000, dt.UTC
        )
        n = len(times)
        body = phone_body(
            phone,
            vehicle,
            batch_id=batch_id,
            sent_at=received,
            beacons={
                "t": times,
                "major": [major] * n,
                "minor": [minor] * n,
                "rssi": [-70] * n,
                "n": [1] * n,
            },
            regions=[{"t": t, "type": "enter"} for t in times],
            activity=[{"t": t, "type": "automotive"} for t in times],
        )
        response = await post_sightings(client, phone, body, timestamp_ms=received)
        assert response.status_code == 200, response.text

    with transaction(make_sessionmaker(engine)) as session:
        result = apply_retention(session, TODAY, sightings_days=14, trips_days=365, now=NOW)
    assert result.phone_sightings_deleted == 3

    with make_sessionmaker(engine)() as session:
        assert set(session.scalars(select(models.PhoneBatch.batch_id))) == {"received-recent"}
        for model in (models.BeaconSighting, models.PhoneRegionEvent, models.PhoneActivityEvent):
            kept = session.scalars(select(model.t).order_by(model.t))
            assert list(kept) == [recent_t - 1000, recent_t], model
