"""The reference phone client (``simulator/phone.py``) against the real backend, on SQLite
and PostgreSQL: what the phone seals and sends is stored once, every beacon on its bus."""

from __future__ import annotations

import time

import httpx
from sqlalchemy import func, select

from backend import models
from backend.db import make_sessionmaker
from simulator.phone import PhoneIdentity, PhoneOutbox, PhoneSender
from tests.backend.conftest import T0, beacon_at

MINUTES = 15
"""A ride across an interval boundary: the bus's beacon id rotates under way."""


async def test_the_reference_client_delivers_a_ride_once_resolved_to_its_bus(
    app, engine, phone, vehicle, tmp_path
):
    identity = PhoneIdentity(phone.device_id, phone.device_key, "ios")
    outbox = PhoneOutbox(tmp_path / "phone.db", identity)
    outbox.region(T0 - 5_000, "enter")
    outbox.activity(T0 - 4_000, "automotive")
    seconds = range(0, MINUTES * 60, 2)
    for s in seconds:
        t = T0 + s * 1000
        outbox.hear(t + 100, *beacon_at(vehicle.secret, t), -70)
        if s % 60 == 58:
            outbox.seal(t + 1000)  # a batch a minute
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport) as client:
            sender = PhoneSender(
                client, "http://bibo.test", outbox, lambda: int(time.time() * 1000)
            )
            assert await sender.flush() == MINUTES
            assert await sender.flush() == 0
    finally:
        outbox.close()
    b = models.BeaconSighting
    with make_sessionmaker(engine)() as session:
        assert session.scalar(select(func.count()).select_from(models.PhoneBatch)) == MINUTES
        stored = session.execute(select(b.vehicle_id, func.count()).group_by(b.vehicle_id)).all()
        events = session.scalar(select(func.count()).select_from(models.PhoneRegionEvent))
    assert [tuple(row) for row in stored] == [(vehicle.vehicle_id, len(seconds))]
    assert events == 1
