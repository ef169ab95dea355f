"""Signed, idempotent batch ingest through the real FastAPI app (docs/contracts.md, Vehicle
upload)."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import time

import pytest
from sqlalchemy import Engine, func, select

from backend import models
from backend.db import make_sessionmaker
from backend.trips import repository as trips_repo
from onboard import wire
from tests.backend.conftest import T0, batch_body, post_batch


def counts(engine: Engine) -> tuple[int, int, int]:
    with make_sessionmaker(engine)() as session:
        return (
            session.scalar(select(func.count()).select_from(models.Batch)) or 0,
            session.scalar(select(func.count()).select_from(models.VehicleEvent)) or 0,
            session.scalar(select(func.count()).select_from(models.Sighting)) or 0,
        )


async def test_upload_round_trip_stores_events_and_sightings(client, vehicle, engine):
    response = await post_batch(client, vehicle, batch_body())
    assert response.status_code == 200, response.text
    assert response.json() == {"inserted": 9, "duplicate": False}
    assert counts(engine) == (1, 6, 3)


async def test_gzip_body_is_accepted(client, vehicle, engine):
    response = await post_batch(client, vehicle, batch_body(), compress=True)
    assert response.status_code == 200, response.text
    assert counts(engine) == (1, 6, 3)


async def test_same_batch_twice_is_stored_once(client, vehicle, engine):
    first = await post_batch(client, vehicle, batch_body())
    second = await post_batch(client, vehicle, batch_body(), compress=True)
    assert first.json()["duplicate"] is False
    assert second.status_code == 200
    assert second.json() == {"inserted": 0, "duplicate": True}
    assert counts(engine) == (1, 6, 3)


async def test_resend_with_new_sent_at_is_still_a_duplicate(client, vehicle):
    await post_batch(client, vehicle, batch_body())
    again = await post_batch(client, vehicle, batch_body(sent_at=batch_body()["sent_at"] + 9000))
    assert again.json() == {"inserted": 0, "duplicate": True}


async def test_same_identity_with_another_body_is_refused(client, vehicle, engine):
    await post_batch(client, vehicle, batch_body())
    other = batch_body()
    other["sightings"]["rssi"] = [-70, -83, -59]
    response = await post_batch(client, vehicle, other)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "seq"]
    assert counts(engine) == (1, 6, 3)


async def test_next_seq_is_a_new_batch(client, vehicle, engine):
    await post_batch(client, vehicle, batch_body(seq=1))
    response = await post_batch(client, vehicle, batch_body(seq=2))
    assert response.json()["duplicate"] is False
    assert counts(engine)[0] == 2


async def test_bad_signature_is_401(client, vehicle, engine):
    response = await post_batch(client, vehicle, batch_body(), secret=b"x" * 32)
    assert response.status_code == 401
    assert "X-Bibo-Signature" in response.json()["detail"]
    assert counts(engine) == (0, 0, 0)


async def test_stale_timestamp_is_401(client, vehicle):
    stale = int(time.time() * 1000) - 301_000
    response = await post_batch(client, vehicle, batch_body(), timestamp_ms=stale)
    assert response.status_code == 401
    assert "X-Bibo-Timestamp" in response.json()["detail"]


async def test_timestamp_within_300_s_is_accepted(client, vehicle):
    early = int(time.time() * 1000) - 290_000
    response = await post_batch(client, vehicle, batch_body(), timestamp_ms=early)
    assert response.status_code == 200


async def test_missing_signature_headers_are_401(client, vehicle):
    response = await client.post(f"/v1/vehicles/{vehicle.vehicle_id}/batches", json=batch_body())
    assert response.status_code == 401


async def test_unknown_vehicle_is_401(client, vehicle):
    response = await post_batch(
        client, vehicle, batch_body(vehicle_id="VKU-0001"), path_vehicle="VKU-0001"
    )
    assert response.status_code == 401


async def test_vehicle_cannot_upload_as_another(client, vehicle):
    response = await post_batch(client, vehicle, batch_body(vehicle_id="VKU-0001"))
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "vehicle_id"]


async def test_sightings_of_unequal_length_are_422(client, vehicle, engine):
    body = batch_body()
    body["sightings"]["n"] = [4, 1]
    response = await post_batch(client, vehicle, body)
    assert response.status_code == 422
    detail = response.json()["detail"][0]
    assert detail["loc"] == ["body", "sightings"]
    assert "same length" in detail["msg"]
    assert counts(engine) == (0, 0, 0)


async def test_malformed_field_is_422_naming_it(client, vehicle):
    body = batch_body()
    body["sightings"]["rssi"][1] = "-83"
    body["events"][1]["stop_id"] = "Soest Bf"
    response = await post_batch(client, vehicle, body)
    assert response.status_code == 422
    locs = [d["loc"] for d in response.json()["detail"]]
    assert ["body", "sightings", "rssi", 1] in locs
    assert ["body", "events", 1, "arrival", "stop_id"] in locs


async def test_missing_field_is_422_naming_it(client, vehicle):
    body = batch_body()
    del body["seq"]
    response = await post_batch(client, vehicle, body)
    assert response.status_code == 422
    assert ["body", "seq"] in [d["loc"] for d in response.json()["detail"]]


async def test_invalid_json_is_422(client, vehicle):
    response = await post_batch(client, vehicle, b"{not json")
    assert response.status_code == 422


async def test_unknown_content_encoding_is_400(client, vehicle):
    raw = b"{}"
    ts = int(time.time() * 1000)
    from onboard import wire

    response = await client.post(
        f"/v1/vehicles/{vehicle.vehicle_id}/batches",
        content=raw,
        headers={
            "Content-Encoding": "br",
            wire.TIMESTAMP_HEADER: str(ts),
            wire.SIGNATURE_HEADER: wire.sign(vehicle.secret, ts, raw),
        },
    )
    assert response.status_code == 400
    assert "Content-Encoding" in response.json()["detail"]


async def test_a_changed_vehicle_secret_takes_effect_at_once(client, vehicle, engine):
    # The server caches the secret it read for the first upload ...
    assert (await post_batch(client, vehicle, batch_body(seq=1))).status_code == 200
    new = bytes(range(32))
    with make_sessionmaker(engine)() as session, session.begin():
        session.get(models.Vehicle, vehicle.vehicle_id).secret = new
    # ... and reads it again when a signature does not match the cached one.
    response = await post_batch(client, vehicle, batch_body(seq=2), secret=new)
    assert response.status_code == 200, response.text
    wrong = await post_batch(client, vehicle, batch_body(seq=3), secret=bytes(32))
    assert wrong.status_code == 401


def test_the_secret_cache_reads_the_database_once_per_ttl(engine, vehicle):
    from backend.ingest.service import VehicleSecrets

    now = [0.0]
    cache = VehicleSecrets(ttl_s=30, clock=lambda: now[0])
    sessions = make_sessionmaker(engine)
    with sessions() as session:
        assert cache.get(session, vehicle.vehicle_id) == vehicle.secret
    with sessions() as session, session.begin():
        session.get(models.Vehicle, vehicle.vehicle_id).secret = b"x" * 32
    with sessions() as session:
        assert cache.get(session, vehicle.vehicle_id) == vehicle.secret  # within the TTL
        now[0] = 31.0
        assert cache.get(session, vehicle.vehicle_id) == b"x" * 32
        assert cache.get(session, "NO-SUCH-BUS") is None


async def test_a_batch_across_the_service_day_boundary_is_split_by_day(client, vehicle, engine):
    from backend.timeutil import service_day_bounds, service_day_of
    from tests.backend.conftest import T0

    day = service_day_of(T0)
    _, end = service_day_bounds(day)  # 03:00 the next morning
    body = batch_body(
        sent_at=end + 5_000,
        events=[{"t": end - 1_000, "type": "position", "lat": 51.57, "lon": 8.1}],
        sightings={
            "t": [end - 2_000, end - 1_000, end, end + 1_000],
            "token": ["ab" * 16] * 4,
            "rssi": [-60, -61, -62, -63],
            "n": [1, 1, 1, 1],
            "tx": [None, -8, None, -8],
        },
    )
    assert (await post_batch(client, vehicle, body)).status_code == 200
    with make_sessionmaker(engine)() as session:
        s = models.Sighting
        rows = session.execute(select(s.service_day, s.k, s.tx).order_by(s.k)).all()
        units = trips_repo.dirty_units(session)
    next_day = day + dt.timedelta(days=1)
    assert rows == [(day, 0, None), (day, 1, -8), (next_day, 2, None), (next_day, 3, -8)]
    assert units == [(day, vehicle.vehicle_id), (next_day, vehicle.vehicle_id)]


# --- hostile requests (issue 11) -----------------------------------------------------------


def signed_headers(secret: bytes, timestamp: bytes, raw: bytes) -> list[tuple[bytes, bytes]]:
    """Headers as raw bytes, so a test can send what no well-behaved client would."""
    signature = hmac.new(secret, timestamp + b"." + raw, hashlib.sha256).hexdigest()
    return [
        (b"content-type", b"application/json"),
        (wire.TIMESTAMP_HEADER.encode(), timestamp),
        (wire.SIGNATURE_HEADER.encode(), signature.encode()),
    ]


@pytest.mark.parametrize(
    "timestamp",
    [
        "²".encode("latin-1"),  # what the tester sent: the server reads it as "²"
        ("1795421234567" + "²").encode("latin-1"),
        "١٧٩٥٤٢١٢٣٤٥٦٧".encode(),  # Arabic-Indic digits
        "１７９５４２１２３４５６７".encode(),  # fullwidth digits
    ],
)
async def test_a_timestamp_in_other_digits_is_401_naming_the_header(
    client, vehicle, engine, timestamp
):
    raw = json.dumps(batch_body()).encode()
    response = await client.post(
        f"/v1/vehicles/{vehicle.vehicle_id}/batches",
        content=raw,
        headers=signed_headers(vehicle.secret, timestamp, raw),
    )
    assert response.status_code == 401, response.text
    assert wire.TIMESTAMP_HEADER in response.json()["detail"]
    assert counts(engine) == (0, 0, 0)


async def test_unknown_vehicle_and_wrong_signature_get_the_same_401(client, vehicle):
    unknown = await post_batch(
        client, vehicle, batch_body(vehicle_id="VKU-0001"), path_vehicle="VKU-0001"
    )
    wrong = await post_batch(client, vehicle, batch_body(vehicle_id="VKU-0001"), secret=b"x" * 32)
    wrong_body = await post_batch(client, vehicle, batch_body(), secret=b"x" * 32)
    assert unknown.status_code == wrong.status_code == wrong_body.status_code == 401
    assert unknown.content == wrong.content == wrong_body.content
    assert unknown.headers.get("www-authenticate") == wrong.headers.get("www-authenticate")


@pytest.mark.parametrize(
    ("timestamp_ms", "signed"),
    [
        (T0 - 301_000, True),  # stale
        (T0 + 301_000, True),  # from the future
        (T0, False),  # fresh, but not signed with the vehicle's secret
    ],
)
async def test_a_bad_request_gets_the_same_answer_for_known_and_unknown_vehicles(
    app, client, vehicle, timestamp_ms, signed
):
    app.state.clock = lambda: dt.datetime.fromtimestamp(T0 / 1000, dt.UTC)
    secret = None if signed else b"x" * 32
    known = await post_batch(
        client, vehicle, batch_body(), timestamp_ms=timestamp_ms, secret=secret
    )
    unknown = await post_batch(
        client,
        vehicle,
        batch_body(vehicle_id="VKU-0001"),
        timestamp_ms=timestamp_ms,
        secret=secret,
        path_vehicle="VKU-0001",
    )
    assert known.status_code == unknown.status_code == 401
    # The detail names the vehicle nowhere, so the two answers are the same bytes.
    assert known.content == unknown.content


async def test_a_sighting_before_the_epoch_is_422_naming_t(client, vehicle, engine):
    body = batch_body()
    body["sightings"]["t"][1] = 599_999  # January 1970: a unit whose clock was never set
    response = await post_batch(client, vehicle, body)
    assert response.status_code == 422, response.text
    (detail,) = response.json()["detail"]
    assert detail["loc"] == ["body", "sightings", "t", 1]
    assert "599999" in detail["msg"]
    assert counts(engine) == (0, 0, 0)
    assert (await post_batch(client, vehicle, batch_body())).json()["duplicate"] is False


@pytest.mark.parametrize("vehicle_id", ["RLG%004711", "R" * 65, "RLG%E2%80%AE4711", "RLG%204711"])
async def test_a_malformed_vehicle_id_in_the_path_is_422_naming_it(client, vehicle, vehicle_id):
    response = await post_batch(client, vehicle, batch_body(), path_vehicle=vehicle_id)
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == ["path", "vehicle_id"]


async def test_an_unknown_event_type_is_422_naming_type(client, vehicle):
    body = batch_body()
    body["events"][2]["type"] = "teleport"
    response = await post_batch(client, vehicle, body)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "events", 2, "type"]
