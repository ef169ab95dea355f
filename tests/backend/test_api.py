"""Registration, stops, trips and reconciliation over the HTTP API (docs/contracts.md)."""

from __future__ import annotations

import base64

from backend.timeutil import service_day_of
from onboard import wire
from tests.backend.conftest import T0, batch_body, post_batch


async def register(client, category: str = "adult") -> tuple[str, str, str, bytes]:
    response = await client.post("/v1/passengers", json={"rider_category": category})
    assert response.status_code == 201, response.text
    passenger = response.json()
    device = await client.post(
        f"/v1/passengers/{passenger['passenger_id']}/devices",
        headers={"Authorization": f"Bearer {passenger['token']}"},
    )
    assert device.status_code == 201, device.text
    key = base64.b64decode(device.json()["device_key"])
    return passenger["passenger_id"], passenger["token"], device.json()["device_id"], key


async def test_passenger_and_device_registration(client):
    passenger_id, _, device_id, key = await register(client, "child")
    assert passenger_id.startswith("pas_")
    assert device_id.startswith("dev_")
    assert len(key) == wire.DEVICE_KEY_BYTES


async def test_unknown_rider_category_is_422_naming_the_field(client):
    response = await client.post("/v1/passengers", json={"rider_category": "senior"})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "rider_category"]


async def test_passenger_cannot_add_a_device_to_another_passenger(client):
    a_id, _, _, _ = await register(client)
    _, b_token, _, _ = await register(client)
    response = await client.post(
        f"/v1/passengers/{a_id}/devices", headers={"Authorization": f"Bearer {b_token}"}
    )
    assert response.status_code == 404


async def test_operator_routes_need_an_operator_token(client, operator_token):
    _, passenger_token, _, _ = await register(client)
    assert (await client.get("/v1/stops")).status_code == 401
    bad = {"Authorization": f"Bearer {passenger_token}"}
    assert (await client.get("/v1/stops", headers=bad)).status_code == 401
    assert (await client.get("/v1/trips?service_day=2026-11-21", headers=bad)).status_code == 401


async def test_stops_come_from_the_tariff(client, operator_token):
    response = await client.get("/v1/stops", headers={"Authorization": f"Bearer {operator_token}"})
    assert response.status_code == 200
    stops = {s["stop_id"]: s for s in response.json()}
    assert stops["de:05974:1001"]["name"] == "Soest, Bahnhof"
    assert set(stops["de:05974:1001"]) == {"stop_id", "name", "lat", "lon"}


async def test_trips_bad_day_is_422(client, operator_token):
    response = await client.get(
        "/v1/trips?service_day=21.11.2026",
        headers={"Authorization": f"Bearer {operator_token}"},
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", "service_day"]


async def test_uploaded_ride_becomes_a_trip(client, vehicle, operator_token):
    passenger_id, _, device_id, key = await register(client)
    stops = ["de:05974:1001", "de:05974:1002", "de:05974:1003"]
    events = [
        {"t": T0 - 60_000, "type": "journey", "line": "R61", "journey_id": "R61-1", "direction": 0}
    ]
    t = T0
    for stop in stops:
        events += [
            {"t": t, "type": "arrival", "stop_id": stop},
            {"t": t + 20_000, "type": "departure", "stop_id": stop},
        ]
        t += 140_000
    times = list(range(T0 + 5_000, T0 + 2 * 140_000 + 5_000, 1000))
    tokens = [wire.token_for_interval(key, wire.interval_of(x)).hex() for x in times]
    sightings = {
        "t": times,
        "token": tokens,
        "rssi": [-60] * len(times),
        "n": [3] * len(times),
        "tx": [-8] * len(times),
    }
    upload = await post_batch(client, vehicle, batch_body(events=events, sightings=sightings))
    assert upload.status_code == 200, upload.text

    day = service_day_of(T0).isoformat()
    auth = {"Authorization": f"Bearer {operator_token}"}
    summary = await client.post(f"/v1/reconcile?service_day={day}", headers=auth)
    assert summary.json()["trips"] == 1
    trips = (await client.get(f"/v1/trips?service_day={day}", headers=auth)).json()
    assert len(trips) == 1
    trip = trips[0]
    assert trip["passenger_id"] == passenger_id
    assert trip["device_id"] == device_id
    assert (trip["board_stop_id"], trip["alight_stop_id"]) == (stops[0], stops[2])
    assert trip["vehicle_id"] == vehicle.vehicle_id
    assert trip["journey_id"] == "R61-1"
    assert trip["line"] == "R61"
    assert trip["confidence"] > 0.99

    charges = (await client.get(f"/v1/charges?service_day={day}", headers=auth)).json()
    assert [c["passenger_id"] for c in charges] == [passenger_id]
    assert charges[0]["total_cents"] > 0


async def test_the_service_reconciles_days_that_received_data(app, client, vehicle, engine):
    from backend.api.app import reconcile_dirty_units
    from backend.db import make_sessionmaker
    from backend.trips.repository import dirty_units

    await post_batch(client, vehicle, batch_body())
    with make_sessionmaker(engine)() as session:
        # The upload dirties its vehicle's unit; reconciling that dirties the day's conflicts.
        assert dirty_units(session) == [(service_day_of(T0), "RLG-4711")]
    assert reconcile_dirty_units(app) == 2
    with make_sessionmaker(engine)() as session:
        assert dirty_units(session) == []
    assert reconcile_dirty_units(app) == 0
