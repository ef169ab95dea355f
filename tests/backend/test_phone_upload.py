"""The phone upload through the real app (docs/contracts.md, Phone sightings upload), on
SQLite and PostgreSQL: signed with the device's upload key, idempotent on its batch id, all
or nothing, every beacon resolved to its vehicle."""

from __future__ import annotations

import datetime as dt
import json
import time

from sqlalchemy import Engine, func, select

from backend import models
from backend.const import MAX_SIGHTINGS_PER_BATCH, MAX_UPLOAD_BYTES
from backend.db import make_sessionmaker, transaction
from backend.ingest import service as ingest_service
from backend.limits import RateLimiter
from backend.phones import service as phones_service
from backend.timeutil import service_day_of
from onboard import wire
from tests.backend.conftest import (
    T0,
    Vehicle,
    beacon_at,
    phone_body,
    post_sightings,
    register_phone,
)

PHONE_TABLES = (
    models.PhoneBatch,
    models.BeaconSighting,
    models.PhoneRegionEvent,
    models.PhoneActivityEvent,
)


def counts(engine: Engine) -> tuple[int, ...]:
    """Rows of (phone batches, beacon sightings, region events, activity events)."""
    with make_sessionmaker(engine)() as session:
        return tuple(session.scalar(select(func.count()).select_from(m)) or 0 for m in PHONE_TABLES)


def stored_beacons(engine: Engine) -> list[tuple[int, int, int, str | None]]:
    """(k, major, minor, vehicle_id) of every stored beacon sighting, in upload order."""
    b = models.BeaconSighting
    with make_sessionmaker(engine)() as session:
        rows = session.execute(select(b.k, b.major, b.minor, b.vehicle_id).order_by(b.k))
        return [tuple(row) for row in rows]


async def test_round_trip_stores_rows_and_resolves_the_beacon(client, engine, phone, vehicle):
    response = await post_sightings(client, phone, phone_body(phone, vehicle))
    assert response.status_code == 200, response.text
    assert response.json() == {"inserted": 5, "duplicate": False}
    assert counts(engine) == (1, 3, 1, 1)
    major, minor = beacon_at(vehicle.secret, T0)
    assert stored_beacons(engine) == [
        (0, major, minor, vehicle.vehicle_id),
        (1, major, minor, vehicle.vehicle_id),
        (2, 4711, 815, None),  # a beacon of no vehicle
    ]
    with make_sessionmaker(engine)() as session:
        batch = session.scalars(select(models.PhoneBatch)).one()
        assert (batch.device_id, batch.platform, batch.sent_at) == (
            phone.device_id,
            "ios",
            T0 + 60_000,
        )
        days = set(session.scalars(select(models.BeaconSighting.service_day)))
        region = session.scalars(select(models.PhoneRegionEvent)).one()
        activity = session.scalars(select(models.PhoneActivityEvent)).one()
    assert days == {service_day_of(T0)}
    assert (region.t, region.type, region.device_id) == (T0 - 500, "enter", phone.device_id)
    assert (activity.t, activity.type) == (T0 - 10_000, "automotive")


async def test_a_beacon_resolves_one_interval_off_but_not_two(client, engine, phone, vehicle):
    offsets = [-2, -1, 0, 1, 2]
    ids = [beacon_at(vehicle.secret, T0, d) for d in offsets]
    beacons = {
        "t": [T0] * len(ids),
        "major": [major for major, _ in ids],
        "minor": [minor for _, minor in ids],
        "rssi": [-70] * len(ids),
        "n": [1] * len(ids),
    }
    response = await post_sightings(client, phone, phone_body(phone, vehicle, beacons=beacons))
    assert response.status_code == 200, response.text
    v = vehicle.vehicle_id
    assert [row[3] for row in stored_beacons(engine)] == [None, v, v, v, None]


async def test_a_vehicle_registered_later_is_resolved(client, engine, phone, vehicle):
    assert (await post_sightings(client, phone, phone_body(phone, vehicle))).status_code == 200
    with transaction(make_sessionmaker(engine)) as session:
        secret = ingest_service.register_vehicle(session, "VKU-0002")
    other = Vehicle("VKU-0002", secret)
    response = await post_sightings(client, phone, phone_body(phone, other, batch_id="b-2"))
    assert response.status_code == 200, response.text
    b = models.BeaconSighting
    with make_sessionmaker(engine)() as session:
        resolved = session.scalars(
            select(b.vehicle_id).where(b.vehicle_id.is_not(None)).order_by(b.phone_batch_id, b.k)
        )
        assert list(resolved) == [vehicle.vehicle_id] * 2 + ["VKU-0002"] * 2


async def test_gzip_body_is_accepted(client, engine, phone, vehicle):
    response = await post_sightings(client, phone, phone_body(phone, vehicle), compress=True)
    assert response.status_code == 200, response.text
    assert counts(engine) == (1, 3, 1, 1)


# --- signature ------------------------------------------------------------------------------


async def test_signed_with_the_device_key_itself_is_401(client, engine, phone, vehicle):
    response = await post_sightings(client, phone, phone_body(phone, vehicle), key=phone.device_key)
    assert response.status_code == 401
    assert "X-Bibo-Signature" in response.json()["detail"]
    assert counts(engine) == (0, 0, 0, 0)


async def test_signed_with_another_devices_key_is_401(client, engine, phone, vehicle):
    other = register_phone(engine)
    response = await post_sightings(client, phone, phone_body(phone, vehicle), key=other.upload_key)
    assert response.status_code == 401
    # Nor may a device upload as another with its own key.
    response = await post_sightings(client, other, phone_body(phone, vehicle))
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "device_id"]
    assert counts(engine) == (0, 0, 0, 0)


async def test_a_stale_timestamp_is_401(client, engine, phone, vehicle):
    stale = int(time.time() * 1000) - 301_000
    response = await post_sightings(client, phone, phone_body(phone, vehicle), timestamp_ms=stale)
    assert response.status_code == 401
    assert "X-Bibo-Timestamp" in response.json()["detail"]
    assert counts(engine) == (0, 0, 0, 0)


async def test_missing_signature_headers_are_401(client, phone, vehicle):
    url = f"/v1/devices/{phone.device_id}/sightings"
    response = await client.post(url, json=phone_body(phone, vehicle))
    assert response.status_code == 401


async def test_unknown_device_and_wrong_signature_get_the_same_401(client, phone, vehicle):
    unknown = await post_sightings(
        client,
        phone,
        phone_body(phone, vehicle, device_id="dev_0000000000000000"),
        path_device="dev_0000000000000000",
    )
    wrong = await post_sightings(client, phone, phone_body(phone, vehicle), key=b"x" * 32)
    assert unknown.status_code == wrong.status_code == 401
    assert unknown.content == wrong.content


# --- identity -------------------------------------------------------------------------------


async def test_a_resend_is_a_duplicate_and_stored_once(client, engine, phone, vehicle):
    first = await post_sightings(client, phone, phone_body(phone, vehicle))
    again = await post_sightings(client, phone, phone_body(phone, vehicle), compress=True)
    renewed = await post_sightings(client, phone, phone_body(phone, vehicle, sent_at=T0 + 90_000))
    assert first.json() == {"inserted": 5, "duplicate": False}
    assert again.json() == renewed.json() == {"inserted": 0, "duplicate": True}
    assert counts(engine) == (1, 3, 1, 1)


async def test_the_same_batch_id_with_another_body_is_422(client, engine, phone, vehicle):
    await post_sightings(client, phone, phone_body(phone, vehicle))
    other = phone_body(phone, vehicle)
    other["beacons"]["rssi"][0] = -50
    response = await post_sightings(client, phone, other)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "batch_id"]
    assert counts(engine) == (1, 3, 1, 1)


async def test_two_devices_may_use_the_same_batch_id(client, engine, phone, vehicle):
    other = register_phone(engine)
    for who in (phone, other):
        response = await post_sightings(client, who, phone_body(who, vehicle))
        assert response.json()["duplicate"] is False
    assert counts(engine) == (2, 6, 2, 2)


# --- refusals -------------------------------------------------------------------------------


async def test_one_bad_row_stores_nothing(client, engine, phone, vehicle):
    body = phone_body(phone, vehicle)
    body["beacons"]["major"][2] = 70_000
    response = await post_sightings(client, phone, body)
    assert response.status_code == 422
    (detail,) = response.json()["detail"]
    assert detail["loc"] == ["body", "beacons", "major", 2]
    assert "70000" in detail["msg"]
    assert counts(engine) == (0, 0, 0, 0)


async def test_a_bad_event_names_it_and_stores_nothing(client, engine, phone, vehicle):
    body = phone_body(phone, vehicle, activity=[{"t": T0, "type": "flying"}])
    response = await post_sightings(client, phone, body)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "activity", 0, "type"]
    assert counts(engine) == (0, 0, 0, 0)


async def test_columns_of_unequal_length_are_422(client, engine, phone, vehicle):
    body = phone_body(phone, vehicle)
    body["beacons"]["n"].pop()
    response = await post_sightings(client, phone, body)
    assert response.status_code == 422
    detail = response.json()["detail"][0]
    assert detail["loc"] == ["body", "beacons"]
    assert "same length" in detail["msg"]
    assert counts(engine) == (0, 0, 0, 0)


async def test_path_and_body_device_must_agree(client, engine, phone, vehicle):
    body = phone_body(phone, vehicle, device_id="dev_ffffffffffffffff")
    response = await post_sightings(client, phone, body)
    assert response.status_code == 422
    detail = response.json()["detail"][0]
    assert detail["loc"] == ["body", "device_id"]
    assert phone.device_id in detail["msg"]
    assert counts(engine) == (0, 0, 0, 0)


async def test_an_oversized_upload_is_413(client, phone):
    raw = b"x" * (MAX_UPLOAD_BYTES + 1)
    response = await post_sightings(client, phone, raw)
    assert response.status_code == 413


async def test_too_many_beacons_is_413_naming_the_field(client, engine, phone, vehicle):
    n = MAX_SIGHTINGS_PER_BATCH + 1
    beacons = {"t": [T0] * n, "major": [1] * n, "minor": [2] * n, "rssi": [-60] * n, "n": [1] * n}
    response = await post_sightings(
        client, phone, phone_body(phone, vehicle, beacons=beacons), compress=True
    )
    assert response.status_code == 413
    assert response.json()["detail"][0]["loc"] == ["body", "beacons"]
    assert counts(engine) == (0, 0, 0, 0)


async def test_an_unknown_content_encoding_is_400(client, phone, vehicle):
    raw = json.dumps(phone_body(phone, vehicle)).encode()
    ts = int(time.time() * 1000)
    response = await client.post(
        f"/v1/devices/{phone.device_id}/sightings",
        content=raw,
        headers={
            "Content-Encoding": "br",
            wire.TIMESTAMP_HEADER: str(ts),
            wire.SIGNATURE_HEADER: wire.sign(phone.upload_key, ts, raw),
        },
    )
    assert response.status_code == 400
    assert "Content-Encoding" in response.json()["detail"]


async def test_a_runaway_phone_gets_429_and_its_resends_are_still_answered(
    app, client, phone, vehicle
):
    now = [0.0]
    app.state.phone_limiter = RateLimiter(rate=1.0, burst=2, clock=lambda: now[0])
    codes = [
        (await post_sightings(client, phone, phone_body(phone, vehicle, batch_id=f"b-{k}")))
        for k in range(3)
    ]
    assert [c.status_code for c in codes] == [200, 200, 429]
    assert codes[2].headers["Retry-After"] == "1"
    assert "device" in codes[2].json()["detail"]
    resend = await post_sightings(client, phone, phone_body(phone, vehicle, batch_id="b-0"))
    assert resend.json() == {"inserted": 0, "duplicate": True}
    now[0] += 1.0
    late = await post_sightings(client, phone, phone_body(phone, vehicle, batch_id="b-2"))
    assert late.status_code == 200


async def test_metrics_count_phone_uploads(client, phone, vehicle):
    await post_sightings(client, phone, phone_body(phone, vehicle))
    await post_sightings(client, phone, phone_body(phone, vehicle))
    await post_sightings(client, phone, phone_body(phone, vehicle), key=b"x" * 32)
    text = (await client.get("/metrics")).text
    assert 'bibo_phone_batches_total{result="new"} 1.0' in text
    assert 'bibo_phone_batches_total{result="duplicate"} 1.0' in text
    assert 'bibo_phone_batches_total{result="bad_signature"} 1.0' in text
    assert "bibo_phone_rows_total 5.0" in text
    assert 'route="/v1/devices/{device_id}/sightings"' in text


# --- a passenger's own data -----------------------------------------------------------------


async def test_export_has_only_the_passengers_own_phone_data_and_deletion_removes_it(
    client, engine, phone, vehicle
):
    other = register_phone(engine)
    for who in (phone, other):
        assert (await post_sightings(client, who, phone_body(who, vehicle))).status_code == 200
    export = (
        await client.get(f"/v1/passengers/{phone.passenger_id}/export", headers=phone.auth)
    ).json()
    assert export["version"] == 2
    assert [u["batch_id"] for u in export["phone_uploads"]] == ["0b6f7a52-2a4e"]
    assert {s["device_id"] for s in export["beacon_sightings"]} == {phone.device_id}
    assert [s["vehicle_id"] for s in export["beacon_sightings"]] == [
        vehicle.vehicle_id,
        vehicle.vehicle_id,
        None,
    ]
    assert export["region_events"] == [
        {"device_id": phone.device_id, "t": T0 - 500, "type": "enter"}
    ]
    assert [e["type"] for e in export["activity_events"]] == ["automotive"]
    assert other.device_id not in str(export)

    response = await client.delete(f"/v1/passengers/{phone.passenger_id}", headers=phone.auth)
    assert response.status_code == 204
    assert counts(engine) == (1, 3, 1, 1)  # the other passenger's
    with make_sessionmaker(engine)() as session:
        for model in PHONE_TABLES:
            devices = set(session.scalars(select(model.device_id)))
            assert devices == {other.device_id}, model
    # The erased device signs nothing more.
    again = await post_sightings(client, phone, phone_body(phone, vehicle, batch_id="b-2"))
    assert again.status_code == 401


async def test_the_openapi_schema_shows_the_phone_upload(client):
    doc = (await client.get("/openapi.json")).json()
    op = doc["paths"]["/v1/devices/{device_id}/sightings"]["post"]
    (path_param,) = [p for p in op["parameters"] if p["in"] == "path"]
    assert path_param["schema"]["maxLength"] == 40
    body = op["requestBody"]["content"]["application/json"]["schema"]
    assert body["properties"]["platform"]["enum"] == ["ios", "android"]
    assert body["$defs"]["BeaconSightings"]["properties"]["major"]["items"]["maximum"] == 0xFFFF
    assert {"401", "413", "422", "429"} <= set(op["responses"])


def test_received_at_is_the_server_clock(engine, phone, vehicle):
    """A store at a given ``now`` stamps it (retention reads it)."""
    now = dt.datetime(2026, 11, 23, 9, tzinfo=dt.UTC)
    batch = wire.PhoneBatch.model_validate(phone_body(phone, vehicle))
    with transaction(make_sessionmaker(engine)) as session:
        accepted = phones_service.store_phone_batch(
            session, batch, now, phones_service.BeaconResolvers()
        )
    assert accepted.inserted == 5
    with make_sessionmaker(engine)() as session:
        received = session.scalars(select(models.PhoneBatch.received_at)).one()
    assert (received if received.tzinfo else received.replace(tzinfo=dt.UTC)) == now


async def test_a_phone_clock_running_ahead_is_read_off_the_beacon_change(
    client, engine, phone, vehicle
):
    # The bus changes its beacon id at B on its clock; a phone 20 s ahead heard the old id
    # until its own B + 20 s. Its rows are stored on the buses' clock, and so are those of
    # its next batch, which heard no change itself.
    skew = 20_000
    boundary = (wire.interval_of(T0) + 1) * wire.TOKEN_INTERVAL_S * 1000
    true = [boundary - 10_000 + 1000 * k for k in range(20)]
    ids = [beacon_at(vehicle.secret, t) for t in true]
    body = phone_body(
        phone,
        vehicle,
        sent_at=boundary + 30_000 + skew,
        beacons={
            "t": [t + skew for t in true],
            "major": [m for m, _ in ids],
            "minor": [n for _, n in ids],
            "rssi": [-70] * len(true),
            "n": [1] * len(true),
        },
        regions=[{"t": true[0] - 2_000 + skew, "type": "enter"}],
        activity=[{"t": true[0] - 5_000 + skew, "type": "automotive"}],
    )
    response = await post_sightings(client, phone, body)
    assert response.status_code == 200, response.text
    later = [boundary + 120_000 + 1000 * k for k in range(3)]
    later_ids = [beacon_at(vehicle.secret, t) for t in later]
    response = await post_sightings(
        client,
        phone,
        phone_body(
            phone,
            vehicle,
            batch_id="second",
            sent_at=later[-1] + skew,
            beacons={
                "t": [t + skew for t in later],
                "major": [m for m, _ in later_ids],
                "minor": [n for _, n in later_ids],
                "rssi": [-70] * 3,
                "n": [1] * 3,
            },
            regions=[{"t": later[-1] + 30_000 + skew, "type": "exit"}],
            activity=[],
        ),
    )
    assert response.status_code == 200, response.text
    b = models.BeaconSighting
    with make_sessionmaker(engine)() as session:
        offsets = session.scalars(
            select(models.PhoneBatch.clock_offset_ms).order_by(models.PhoneBatch.phone_batch_id)
        ).all()
        stored = session.scalars(select(b.t).order_by(b.phone_batch_id, b.k)).all()
        region = session.scalars(
            select(models.PhoneRegionEvent.t).order_by(models.PhoneRegionEvent.t)
        ).all()
        activity = session.scalars(select(models.PhoneActivityEvent.t)).all()
    assert len(offsets) == 2
    assert abs(offsets[0] - skew) <= 1000
    assert offsets[1] == offsets[0]
    for got, want in zip(stored, true + later, strict=True):
        assert abs(got - want) <= 1000
    assert abs(region[0] - (true[0] - 2_000)) <= 1000
    assert abs(region[1] - (later[-1] + 30_000)) <= 1000
    assert abs(activity[0] - (true[0] - 5_000)) <= 1000
