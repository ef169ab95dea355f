"""Who may do what: passengers see only their own data, roles bound operators."""

from __future__ import annotations

import pytest

from tests.backend.conftest import batch_body, post_batch

NOV = "2026-11"


async def first_trip(client, rider) -> str:
    trips = (
        await client.get(
            f"/v1/passengers/{rider.passenger_id}/trips?month={NOV}", headers=rider.auth
        )
    ).json()
    return trips[0]["trip_id"]


@pytest.mark.parametrize(
    "path",
    [
        "trips",
        "status",
        "balance",
        "invoices",
        "disputes",
        "export",
        "invoices/1",
        "invoices/1/html",
    ],
)
async def test_passenger_a_cannot_read_b(client, riders, path):
    a, b = riders
    r = await client.get(f"/v1/passengers/{b.passenger_id}/{path}", headers=a.auth)
    assert r.status_code == 404


async def test_passenger_a_cannot_dispute_or_delete_b(client, riders):
    a, b = riders
    b_trip = await first_trip(client, b)
    r = await client.post(
        f"/v1/passengers/{b.passenger_id}/trips/{b_trip}/disputes",
        json={"reason": "not me"},
        headers=a.auth,
    )
    assert r.status_code == 404
    # Nor through their own id with B's trip.
    r = await client.post(
        f"/v1/passengers/{a.passenger_id}/trips/{b_trip}/disputes",
        json={"reason": "not me"},
        headers=a.auth,
    )
    assert r.status_code == 404
    assert (
        await client.delete(f"/v1/passengers/{b.passenger_id}", headers=a.auth)
    ).status_code == 404
    assert (
        await client.get(f"/v1/passengers/{b.passenger_id}/trips", headers=b.auth)
    ).status_code == 200


async def test_no_token_is_401(client, riders):
    a = riders[0]
    assert (await client.get(f"/v1/passengers/{a.passenger_id}/trips")).status_code == 401


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/stops"),
        ("GET", "/v1/trips?service_day=2026-11-03"),
        ("GET", "/v1/disputes"),
        ("POST", "/v1/reconcile?service_day=2026-11-03"),
        ("GET", "/v1/charges?service_day=2026-11-03"),
        ("POST", "/v1/billing/close-month?month=2026-11"),
    ],
)
async def test_a_passenger_token_cannot_reach_operator_routes(client, riders, method, path):
    r = await client.request(method, path, headers=riders[0].auth)
    assert r.status_code == 401


async def test_a_viewer_cannot_correct_trips_or_resolve_disputes(client, riders, operators):
    a = riders[0]
    trip_id = await first_trip(client, a)
    viewer = {"Authorization": f"Bearer {operators['viewer']}"}
    assert (await client.get(f"/v1/trips/{trip_id}", headers=viewer)).status_code == 200
    r = await client.post(
        f"/v1/trips/{trip_id}/corrections",
        json={
            "reason": "wrong stop",
            "board_stop_id": "de:05974:1001",
            "alight_stop_id": "de:05974:1006",
        },
        headers=viewer,
    )
    assert r.status_code == 403
    assert "agent" in r.json()["detail"]
    dispute = await client.post(
        f"/v1/passengers/{a.passenger_id}/trips/{trip_id}/disputes",
        json={"reason": "wrong stop"},
        headers=a.auth,
    )
    r = await client.post(
        f"/v1/disputes/{dispute.json()['dispute_id']}/resolve",
        json={"action": "reject"},
        headers=viewer,
    )
    assert r.status_code == 403


async def test_an_agent_corrects_but_cannot_close_months(client, riders, operators):
    trip_id = await first_trip(client, riders[0])
    agent = {"Authorization": f"Bearer {operators['agent']}"}
    r = await client.post(
        f"/v1/trips/{trip_id}/corrections",
        json={
            "reason": "left earlier",
            "board_stop_id": "de:05974:1001",
            "alight_stop_id": "de:05974:1006",
        },
        headers=agent,
    )
    assert r.status_code == 200
    r = await client.post(
        f"/v1/trips/{trip_id}/corrections",
        json={"reason": "typo", "board_stop_id": "de:05974:1001", "alight_stop_id": "de:99999:1"},
        headers=agent,
    )
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["body", "alight_stop_id"]
    r = await client.post("/v1/billing/close-month?month=2026-11", headers=agent)
    assert r.status_code == 403


async def test_a_vehicle_cannot_upload_as_another(client, vehicle, engine):
    from backend.db import make_sessionmaker, transaction
    from backend.ingest import service as ingest_service

    with transaction(make_sessionmaker(engine)) as session:
        ingest_service.register_vehicle(session, "VKU-0002")
    # Signed with RLG-4711's secret, sent to VKU-0002's endpoint.
    r = await post_batch(
        client, vehicle, batch_body(vehicle_id="VKU-0002"), path_vehicle="VKU-0002"
    )
    assert r.status_code == 401


async def test_trace_shows_the_devices_rssi_and_the_stops(client, riders, operators):
    trip_id = await first_trip(client, riders[0])
    viewer = {"Authorization": f"Bearer {operators['viewer']}"}
    trace = (await client.get(f"/v1/trips/{trip_id}/trace", headers=viewer)).json()
    assert len(trace["t"]) > 100
    assert all(-70 <= r <= -50 for r in trace["rssi"])
    assert {e["type"] for e in trace["events"]} >= {"arrival", "departure", "doors_open"}
    assert trace["board_time"] < trace["alight_time"]
    csv = await client.get("/v1/trips.csv?service_day=2026-11-03", headers=viewer)
    assert csv.status_code == 200
    assert csv.text.splitlines()[0].startswith("trip_id,service_day")
    assert len(csv.text.splitlines()) == 3


async def test_reconciling_a_day_needs_an_agent(client, operators):
    url = "/v1/reconcile?service_day=2026-11-03"
    viewer = {"Authorization": f"Bearer {operators['viewer']}"}
    refused = await client.post(url, headers=viewer)
    assert refused.status_code == 403
    assert refused.json()["detail"] == "needs the 'agent' role; operator 'viewer one' is 'viewer'"
    for role in ("agent", "admin"):
        r = await client.post(url, headers={"Authorization": f"Bearer {operators[role]}"})
        assert r.status_code == 200, role
