"""Tickets riders hold elsewhere: registered through the passenger API, verified or revoked by
an operator; covered trips cost nothing and the bill says why; every change re-bills."""

from __future__ import annotations

import datetime as dt
import json
import random

import pytest

import fare_engine
from backend.billing import repository as billing_repo
from backend.billing import service as billing_service
from backend.db import make_sessionmaker, transaction
from backend.passengers import service as passengers_service
from tests.backend.conftest import RIDE_STOPS, Rider
from tests.backend.test_billing_periods import (
    KAMEN,
    SOEST,
    UNNA,
    add_trips,
    at,
    commute,
    effective,
    weekdays,
)
from tests.fare_engine import oracle

NOV = "2026-11"
DECEMBER = dt.datetime(2026, 12, 2, 12, tzinfo=dt.UTC)
DTICKET = {
    "kind": "deutschlandticket",
    "valid_from": "2026-11-01",
    "valid_to": "2026-11-30",
    "evidence_ref": "D-Ticket Abo 4711-0815",
}


@pytest.fixture
def december_clock(app):
    app.state.clock = lambda: DECEMBER


async def balance(client, rider) -> dict:
    r = await client.get(
        f"/v1/passengers/{rider.passenger_id}/balance?month={NOV}", headers=rider.auth
    )
    assert r.status_code == 200
    return r.json()


async def test_a_deutschlandticket_holder_pays_nothing_and_the_bill_says_why(
    client, riders, engine, app, december_clock
):
    a, b = riders
    assert (await balance(client, a))["total_cents"] > 0
    r = await client.post(
        f"/v1/passengers/{a.passenger_id}/entitlements", json=DTICKET, headers=a.auth
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["entitlement"]["status"] == "pending"
    assert body["entitlement"]["label"] == "Deutschlandticket"
    shown = await balance(client, a)
    assert shown["total_cents"] == 0
    assert "3 Fahrt(en) frei mit Ihrem Ticket: Deutschlandticket" in shown["explanation"]
    assert (await balance(client, b))["total_cents"] > 0  # only the holder's trips
    with transaction(make_sessionmaker(engine)) as session:
        billing_service.close_month(session, NOV, DECEMBER)
        invoice = billing_repo.latest_invoice(session, a.passenger_id, NOV)
    assert invoice is not None
    document = json.loads(invoice.document)
    assert (invoice.total_cents, document["trips"]) == (0, [])
    assert [t["entitlement_kind"] for t in document["entitled"]] == ["deutschlandticket"] * 3


async def test_a_revoked_entitlement_charges_the_trips_again_with_a_new_invoice(
    client, riders, operators, engine, app, december_clock
):
    a = riders[0]
    with transaction(make_sessionmaker(engine)) as session:
        billing_service.close_month(session, NOV, DECEMBER)
        before = billing_repo.ledger_balance(session, a.passenger_id, NOV)
    added = await client.post(
        f"/v1/passengers/{a.passenger_id}/entitlements", json=DTICKET, headers=a.auth
    )
    entitlement_id = added.json()["entitlement"]["entitlement_id"]
    assert added.json()["rebilled"][0] == {"month": NOV, "total_cents": 0, "invoice_version": 2}
    agent = {"Authorization": f"Bearer {operators['agent']}"}
    viewer = {"Authorization": f"Bearer {operators['viewer']}"}
    queue = await client.get("/v1/entitlements?status=pending", headers=viewer)
    assert [e["entitlement_id"] for e in queue.json()] == [entitlement_id]
    decision = {"decision": "revoke", "note": "no such subscription"}
    url = f"/v1/entitlements/{entitlement_id}/decide"
    assert (await client.post(url, json=decision, headers=viewer)).status_code == 403
    revoked = await client.post(url, json=decision, headers=agent)
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["entitlement"]["status"] == "revoked"
    assert revoked.json()["rebilled"][0] == {
        "month": NOV,
        "total_cents": before,
        "invoice_version": 3,
    }
    again = await client.post(url, json={"decision": "verify", "note": "too late"}, headers=agent)
    assert again.status_code == 409


async def test_a_jobticket_covers_only_its_tarifgebiete(client, riders, december_clock):
    """Rider A rides Soest -> Lippstadt; a JobTicket for Soest alone covers none of it, one
    for both towns covers all."""
    a = riders[0]
    home = billing_service.tarifgebiet_of(RIDE_STOPS[0])
    work = billing_service.tarifgebiet_of(RIDE_STOPS[8])
    assert home is not None
    assert work is not None
    assert home != work
    full = (await balance(client, a))["total_cents"]
    job = DTICKET | {"kind": "jobticket", "scope_areas": [home]}
    r = await client.post(f"/v1/passengers/{a.passenger_id}/entitlements", json=job, headers=a.auth)
    assert r.status_code == 201
    assert (await balance(client, a))["total_cents"] == full
    job["scope_areas"] = [home, work]
    await client.post(f"/v1/passengers/{a.passenger_id}/entitlements", json=job, headers=a.auth)
    assert (await balance(client, a))["total_cents"] == 0


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"valid_to": "2026-10-01"}, "valid_to"),
        ({"valid_to": "2028-01-01"}, "valid_to"),
        ({"scope_areas": ["99999"]}, "scope_areas"),
        ({"scope_areas": []}, "scope_areas"),
        ({"kind": "golden_ticket"}, "kind"),
        ({"valid_from": "20261101"}, "valid_from"),
        ({"evidence_ref": ""}, "evidence_ref"),
    ],
)
async def test_a_bad_entitlement_is_refused_naming_the_field(client, riders, change, field):
    a = riders[0]
    r = await client.post(
        f"/v1/passengers/{a.passenger_id}/entitlements", json=DTICKET | change, headers=a.auth
    )
    assert r.status_code == 422
    assert field in r.text


async def test_nobody_withdraws_another_riders_entitlement(client, riders):
    a, b = riders
    r = await client.post(
        f"/v1/passengers/{a.passenger_id}/entitlements", json=DTICKET, headers=a.auth
    )
    entitlement_id = r.json()["entitlement"]["entitlement_id"]
    url = f"/v1/passengers/{b.passenger_id}/entitlements/{entitlement_id}/withdraw"
    assert (await client.post(url, headers=b.auth)).status_code == 404
    own = f"/v1/passengers/{a.passenger_id}/entitlements/{entitlement_id}/withdraw"
    assert (await client.post(own, headers=a.auth)).json()["entitlement"]["status"] == "withdrawn"
    assert (await client.post(own, headers=a.auth)).status_code == 409


def register_with_trips(engine, category: str, trips) -> Rider:
    """A passenger of ``category`` with these trips stored, signed in."""
    with transaction(make_sessionmaker(engine)) as session:
        passenger = passengers_service.register_passenger(session, category)
        add_trips(session, passenger.passenger_id, trips)
    return Rider(passenger.passenger_id, passenger.token, "")


SOZIAL = {
    "kind": "sozial_eligibility",
    "valid_from": "2026-11-01",
    "valid_to": "2027-04-30",
    "evidence_ref": "Bürgergeld-Bescheid 2026-10-12",
}


async def test_a_sozialticket_eligible_commuter_pays_the_deutschlandticket_sozial(
    client, engine, operators, december_clock
):
    """Unna <-> Kamen every November weekday: 63 € (Deutschlandticket) for an adult, 39 €
    (Deutschlandticket Sozial) once eligibility is registered, 63 € again once an operator
    revokes it; the trips are charged, not free, and the invoice says how they were priced."""
    commuter = register_with_trips(
        engine, "adult", commute(weekdays(dt.date(2026, 11, 2), dt.date(2026, 11, 27)))
    )
    url = f"/v1/passengers/{commuter.passenger_id}/entitlements"
    adult = (await balance(client, commuter))["total_cents"]
    scoped = SOZIAL | {"scope_areas": [billing_service.tarifgebiet_of(UNNA)]}
    refused = await client.post(url, json=scoped, headers=commuter.auth)
    assert refused.status_code == 422
    assert "scope_areas" in refused.text
    assert "eligibility holds everywhere" in refused.text
    added = await client.post(url, json=SOZIAL, headers=commuter.auth)
    assert added.status_code == 201, added.text
    assert added.json()["entitlement"]["label"] == "Berechtigung Deutschlandticket Sozial"
    sozial = await balance(client, commuter)
    assert (adult, sozial["total_cents"]) == (6300, 3900)
    assert "Deutschlandticket Sozial" in sozial["explanation"]
    assert "frei" not in sozial["explanation"]  # charged, not free
    with transaction(make_sessionmaker(engine)) as session:
        billing_service.close_month(session, NOV, DECEMBER)
        invoice = billing_repo.latest_invoice(session, commuter.passenger_id, NOV)
    assert invoice is not None
    document = json.loads(invoice.document)
    assert (document["rider_category"], document["priced_as"]) == ("adult", "adult_sozial")
    assert document["entitled"] == []
    agent = {"Authorization": f"Bearer {operators['agent']}"}
    entitlement_id = added.json()["entitlement"]["entitlement_id"]
    revoked = await client.post(
        f"/v1/entitlements/{entitlement_id}/decide",
        json={"decision": "revoke", "note": "notice expired"},
        headers=agent,
    )
    assert revoked.json()["rebilled"][0] == {
        "month": NOV,
        "total_cents": 6300,
        "invoice_version": 2,
    }


async def test_eligibility_counts_from_a_months_first_day_and_for_adults_only(
    client, engine, december_clock
):
    trips = commute(weekdays(dt.date(2026, 11, 2), dt.date(2026, 11, 27)))
    late = register_with_trips(engine, "adult", trips)
    url = f"/v1/passengers/{late.passenger_id}/entitlements"
    mid_month = SOZIAL | {"valid_from": "2026-11-10"}
    assert (await client.post(url, json=mid_month, headers=late.auth)).status_code == 201
    assert (await balance(client, late))["total_cents"] == 6300  # from December on
    child = register_with_trips(engine, "child", trips)
    before = (await balance(client, child))["total_cents"]
    job = SOZIAL | {"kind": "job_eligibility"}
    url = f"/v1/passengers/{child.passenger_id}/entitlements"
    assert (await client.post(url, json=job, headers=child.auth)).status_code == 201
    assert (await balance(client, child))["total_cents"] == before


def test_held_eligibility_picks_the_category_on_the_day():
    nov, dec = dt.date(2026, 11, 1), dt.date(2026, 12, 1)
    held = billing_service.Held(
        [],
        [
            ("job_eligibility", nov, dt.date(2026, 12, 31)),
            ("sozial_eligibility", dec, dt.date(2026, 12, 31)),
        ],
    )
    assert held.category_on("adult", nov) == "adult_job"
    assert held.category_on("adult", dec) == "adult_sozial"  # the cheaper of both
    assert held.category_on("adult", dt.date(2027, 1, 1)) == "adult"
    assert held.category_on("child", dec) == "child"
    tariff_riders = {r.id for r in fare_engine.default_tariffs()[0].spec.riders}
    assert set(billing_service.ELIGIBILITIES.values()) <= tariff_riders


@pytest.mark.parametrize("seed", range(40))
def test_leaving_entitled_trips_out_is_the_oracle_best_price(seed):
    """The brute force may leave any subset of the entitled trips to the entitlement and
    buy products for all the others; its cheapest choice is what billing charges by
    leaving every entitled trip out (products stay valid with fewer trips)."""
    rng = random.Random(seed)
    day = dt.date(2026, 5, rng.randrange(1, 28))
    trips = []
    board = at(day.year, day.month, day.day, 6)
    for _ in range(rng.randrange(2, 8)):
        board += rng.randrange(20, 300) * 60_000
        start, end = rng.sample([UNNA, KAMEN, SOEST[0], SOEST[3]], 2)
        trips.append(effective(board, start, end, rng.randrange(5, 15)))
        board = trips[-1].alight_time
    areas = {billing_service.tarifgebiet_of(s) for s in (UNNA, KAMEN, SOEST[0])}
    coverage = billing_service.Coverage(
        1, "jobticket", day, day, frozenset(a for a in areas if a and rng.random() < 0.7)
    )
    charged = billing_service.price_between(trips, trips[0].board_time, "adult", [coverage])
    entitled = [k for k, t in enumerate(trips) if coverage.covers(t)]
    tariffs = fare_engine.default_tariffs()
    best = None
    for mask in range(1 << len(entitled)):
        left_out = {entitled[i] for i in range(len(entitled)) if mask >> i & 1}
        rest = [t for k, t in enumerate(trips) if k not in left_out]
        cost = oracle.best_total(billing_service.fare_trips(rest, "adult"), tariffs) if rest else 0
        best = cost if best is None else min(best, cost)
    assert charged.total_cents == best
    assert len(charged.free) == len(entitled)
