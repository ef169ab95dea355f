"""Trips from phone uploads through the real app (issue 14), on SQLite and PostgreSQL: an
iPhone that never advertises rides on what it heard of the bus beacon, and its upload
alone, arriving after the bus's, marks the vehicle-day for reconciliation."""

from __future__ import annotations

import base64
import datetime as dt
from typing import Any

from backend.const import REGION_EXIT_DELAY_MS
from backend.db import make_sessionmaker, transaction
from backend.passengers import service as passengers_service
from backend.phones import repository as phones_repo
from backend.timeutil import service_day_bounds
from backend.trips import service as trips_service
from tests.backend.conftest import RIDE_STOPS, Phone, Vehicle, beacon_at, post_batch, post_sightings
from tests.backend.synth import DRIVE_MS, DWELL_MS, Rider, journey_batches

DAY = dt.date(2026, 11, 3)
T0 = service_day_bounds(DAY)[0] + 4 * 3_600_000
BOARD, ALIGHT = 1, 5


def arrival(k: int) -> int:
    return T0 + k * (DWELL_MS + DRIVE_MS)


def ride_body(phone: Phone, vehicle: Vehicle, batch_id: str, burst: bool = False) -> dict[str, Any]:
    """What an iPhone riding ``BOARD`` -> ``ALIGHT`` uploads: the beacon every second from
    the stop to the alighting (only 10 s on entering the region if ``burst``), the region
    stay and its motion."""
    enter, left = arrival(BOARD) + 3_000, arrival(ALIGHT) + 10_000
    end = enter + 10_000 if burst else left
    t = list(range(enter + 1_000, end, 1_000))
    ids = [beacon_at(vehicle.secret, x) for x in t]
    return {
        "version": 1,
        "device_id": phone.device_id,
        "batch_id": batch_id,
        "sent_at": left + 60_000,
        "platform": "ios",
        "beacons": {
            "t": t,
            "major": [i[0] for i in ids],
            "minor": [i[1] for i in ids],
            "rssi": [-66 - (k % 5) for k in range(len(t))],
            "n": [2] * len(t),
        },
        "regions": [
            {"t": enter, "type": "enter"},
            {"t": left + REGION_EXIT_DELAY_MS, "type": "exit"},
        ],
        "activity": [
            {"t": arrival(BOARD) + DWELL_MS + 15_000, "type": "automotive"},
            {"t": arrival(ALIGHT) + DWELL_MS + 20_000, "type": "walking"},
        ],
    }


async def upload_journey(client, engine, vehicle: Vehicle) -> None:
    """The bus's journey with one Android rider all the way (the iPhone is not heard)."""
    with transaction(make_sessionmaker(engine)) as session:
        passenger = passengers_service.register_passenger(session, "adult")
        device = passengers_service.register_device(session, passenger.passenger_id)
    android = Rider(base64.b64decode(device.device_key_b64), 0, 8)
    for body in journey_batches(vehicle.vehicle_id, "R61-0", RIDE_STOPS, T0, [android]):
        assert (await post_batch(client, vehicle, body)).status_code == 200


async def phone_trips(client, phone: Phone) -> list[dict[str, Any]]:
    response = await client.get(
        f"/v1/passengers/{phone.passenger_id}/trips?month=2026-11",
        headers={"Authorization": f"Bearer {phone.token}"},
    )
    assert response.status_code == 200, response.text
    return list(response.json())


async def test_an_iphone_rides_on_the_beacon_it_heard(client, app, engine, vehicle, phone):
    await upload_journey(client, engine, vehicle)
    response = await post_sightings(client, phone, ride_body(phone, vehicle, "b-1"))
    assert response.status_code == 200, response.text
    state = app.state
    trips_service.reconcile_day(state.sessions, DAY, state.resolvers, state.clock)
    [trip] = await phone_trips(client, phone)
    assert (trip["board_stop_id"], trip["alight_stop_id"]) == (
        RIDE_STOPS[BOARD],
        RIDE_STOPS[ALIGHT],
    )


async def test_a_phone_upload_after_the_bus_s_rebuilds_the_vehicle_day(
    client, app, engine, vehicle, phone
):
    await upload_journey(client, engine, vehicle)
    state = app.state
    trips_service.work_until_idle(state.sessions, state.resolvers, state.clock)
    assert await phone_trips(client, phone) == []
    # The phone was offline; its burst-only upload comes later and alone.
    response = await post_sightings(client, phone, ride_body(phone, vehicle, "b-2", burst=True))
    assert response.status_code == 200, response.text
    done = trips_service.work_until_idle(state.sessions, state.resolvers, state.clock)
    assert any(w.unit.vehicle_id == vehicle.vehicle_id for w in done)
    [trip] = await phone_trips(client, phone)
    assert (trip["board_stop_id"], trip["alight_stop_id"]) == (
        RIDE_STOPS[BOARD],
        RIDE_STOPS[ALIGHT],
    )


async def test_the_trace_shows_both_streams(client, app, engine, vehicle, phone, operator_token):
    await upload_journey(client, engine, vehicle)
    assert (
        await post_sightings(client, phone, ride_body(phone, vehicle, "b-3"))
    ).status_code == 200
    state = app.state
    trips_service.reconcile_day(state.sessions, DAY, state.resolvers, state.clock)
    [trip] = await phone_trips(client, phone)
    auth = {"Authorization": f"Bearer {operator_token}"}
    trace = (await client.get(f"/v1/trips/{trip['trip_id']}/trace", headers=auth)).json()
    assert trace["t"] == []  # the bus never heard the iPhone
    assert len(trace["phone_t"]) == len(trace["phone_rssi"]) > 100
    assert [e["type"] for e in trace["regions"]] == ["enter", "exit"]
    from backend.operators import service as operators_service
    from backend.operators.web.charts import trace_plot

    with make_sessionmaker(engine)() as session:
        found = operators_service.trip_trace(session, trip["trip_id"])
    assert found is not None
    svg = str(trace_plot(found, {}))
    assert svg.count('class="phone-pt"') == len(trace["phone_t"])
    assert svg.count('class="region"') == 1
    assert "no sightings kept" not in svg


async def test_what_a_phone_has_reported_is_its_newest_upload(client, app, engine, vehicle, phone):
    # The be-out of a ride resting on a phone waits for the phone's uploads to reach it:
    # the backend reads how far they reach from the stored batches.
    first = ride_body(phone, vehicle, "b-1")
    later = {**ride_body(phone, vehicle, "b-2", burst=True), "sent_at": first["sent_at"] + 5_000}
    later["regions"], later["activity"] = [], []
    for body in (later, first):  # the newer one arrives first
        response = await post_sightings(client, phone, body)
        assert response.status_code == 200, response.text
    with transaction(make_sessionmaker(engine)) as session:
        rows = phones_repo.vehicle_day_phone_rows(session, DAY, vehicle.vehicle_id)
    assert rows.reported == {phone.device_id: first["sent_at"] + 5_000}
