"""The passenger's API: own trips, status, running best price, disputes, export, deletion."""

from __future__ import annotations

import datetime as dt

import pytest

from backend.billing import repository as billing_repo
from backend.billing import service as billing_service
from backend.db import make_sessionmaker, transaction
from backend.passengers import repository as passengers_repo
from backend.passengers import service as passengers_service
from tests.backend.conftest import RIDE_STOPS

NOV = "2026-11"


@pytest.fixture
def december_clock(app):
    app.state.clock = lambda: dt.datetime(2026, 12, 2, 12, tzinfo=dt.UTC)


async def test_a_passenger_sees_their_trips_with_stop_names(client, riders):
    a = riders[0]
    response = await client.get(
        f"/v1/passengers/{a.passenger_id}/trips?month={NOV}", headers=a.auth
    )
    assert response.status_code == 200
    trips = response.json()
    assert len(trips) == 3
    assert {(t["board_stop_id"], t["alight_stop_id"]) for t in trips} == {
        (RIDE_STOPS[0], RIDE_STOPS[8])
    }
    assert trips[0]["board_stop_name"] == "Soest, Bahnhof"


async def test_running_total_is_the_best_price_and_child_pays_less(client, riders):
    totals = []
    for rider in riders:
        r = await client.get(
            f"/v1/passengers/{rider.passenger_id}/balance?month={NOV}", headers=rider.auth
        )
        assert r.status_code == 200
        body = r.json()
        assert body["trips"] == 3
        assert 0 < body["total_cents"] <= body["singles_total_cents"]
        assert "Gesamtbetrag" in body["explanation"]  # German unless lang=en
        totals.append(body["total_cents"])
    assert totals[1] < totals[0]


async def test_status_says_checked_out_at_the_last_stop(client, riders, app):
    a = riders[0]
    app.state.clock = lambda: dt.datetime(2026, 11, 5, 12, tzinfo=dt.UTC)
    r = await client.get(f"/v1/passengers/{a.passenger_id}/status", headers=a.auth)
    assert r.json()["state"] == "checked_out"
    assert r.json()["stop_id"] == RIDE_STOPS[8]
    assert r.json()["stop_name"] == "Lippstadt, Rathaus"


async def test_dispute_then_agent_accepts_and_the_invoice_changes(
    client, riders, operators, app, engine, december_clock
):
    a = riders[0]
    with transaction(make_sessionmaker(engine)) as session:
        billing_service.close_month(session, NOV, app.state.clock())
    invoices = (
        await client.get(f"/v1/passengers/{a.passenger_id}/invoices", headers=a.auth)
    ).json()
    assert [i["version"] for i in invoices] == [1]
    trip_id = (
        await client.get(f"/v1/passengers/{a.passenger_id}/trips?month={NOV}", headers=a.auth)
    ).json()[0]["trip_id"]

    r = await client.post(
        f"/v1/passengers/{a.passenger_id}/trips/{trip_id}/disputes",
        json={"reason": "I was not on this bus"},
        headers=a.auth,
    )
    assert r.status_code == 201
    dispute_id = r.json()["dispute_id"]
    again = await client.post(
        f"/v1/passengers/{a.passenger_id}/trips/{trip_id}/disputes",
        json={"reason": "still not"},
        headers=a.auth,
    )
    assert again.status_code == 409

    agent = {"Authorization": f"Bearer {operators['agent']}"}
    queue = (await client.get("/v1/disputes?status=open", headers=agent)).json()
    assert [d["dispute_id"] for d in queue] == [dispute_id]
    r = await client.post(
        f"/v1/disputes/{dispute_id}/resolve",
        json={"action": "accept", "note": "checked the camera"},
        headers=agent,
    )
    assert r.status_code == 200
    assert r.json()["status"] == "accepted"

    invoices = (
        await client.get(f"/v1/passengers/{a.passenger_id}/invoices", headers=a.auth)
    ).json()
    assert [i["version"] for i in invoices] == [1, 2]
    assert invoices[1]["total_cents"] < invoices[0]["total_cents"]
    html = await client.get(
        f"/v1/passengers/{a.passenger_id}/invoices/{invoices[1]['invoice_id']}/html",
        headers=a.auth,
    )
    assert html.status_code == 200
    assert "Lippstadt, Rathaus" in html.text
    trips = (
        await client.get(f"/v1/passengers/{a.passenger_id}/trips?month={NOV}", headers=a.auth)
    ).json()
    assert trip_id not in {t["trip_id"] for t in trips}


async def test_export_and_delete_leave_a_balanced_pseudonymous_ledger(
    client, riders, app, engine, december_clock
):
    a = riders[0]
    with transaction(make_sessionmaker(engine)) as session:
        billing_service.close_month(session, NOV, app.state.clock())
        balance = billing_repo.ledger_balance(session, a.passenger_id, NOV)
    assert balance > 0
    export = (await client.get(f"/v1/passengers/{a.passenger_id}/export", headers=a.auth)).json()
    assert export["passenger"]["passenger_id"] == a.passenger_id
    assert len(export["trips"]) == 3
    assert sum(e["amount_cents"] for e in export["ledger"]) == balance
    assert "device_key" not in str(export)

    r = await client.delete(f"/v1/passengers/{a.passenger_id}", headers=a.auth)
    assert r.status_code == 204
    assert (
        await client.get(f"/v1/passengers/{a.passenger_id}/trips", headers=a.auth)
    ).status_code == 401
    with make_sessionmaker(engine)() as session:
        assert billing_repo.ledger_balance(session, a.passenger_id, NOV) == balance
        assert (
            billing_repo.passenger_trips(
                session, a.passenger_id, dt.date(2026, 1, 1), dt.date(2026, 12, 31)
            )
            == []
        )
        (invoice,) = billing_repo.passenger_invoices(session, a.passenger_id)
        assert "Soest" not in invoice.document
        assert "de:05974" not in invoice.document
    # Month close again changes nothing for the deleted account.
    with transaction(make_sessionmaker(engine)) as session:
        billing_service.close_month(session, NOV, app.state.clock())
        assert billing_repo.ledger_balance(session, a.passenger_id, NOV) == balance


def test_a_device_import_s_passenger_lookup_takes_more_ids_than_a_statement_may(engine):
    # PostgreSQL refuses a statement with more than 65,535 parameters; an import of the
    # region's devices names more passengers than that.
    with transaction(make_sessionmaker(engine)) as session:
        known = passengers_service.register_passenger(session, "child").passenger_id
        ids = [f"pas_import_{k}" for k in range(70_000)] + [known]
        assert passengers_repo.passenger_categories(session, ids) == {known: "child"}
