"""Companions: a rider names who rode along on a detected trip; the month's best price
covers the whole party and is re-billed; bad parties, another rider's trip and a late
naming are refused."""

from __future__ import annotations

import datetime as dt

import pytest

import fare_engine
from backend.billing import service as billing_service
from tests.backend.test_billing_periods import KAMEN, UNNA, at, effective

NOV = "2026-11"
NOVEMBER_4 = dt.datetime(2026, 11, 4, 12, tzinfo=dt.UTC)  # a day after the first ride


async def trips_of(client, rider) -> list[dict]:
    r = await client.get(
        f"/v1/passengers/{rider.passenger_id}/trips?month={NOV}", headers=rider.auth
    )
    return sorted(r.json(), key=lambda t: t["board_time"])


async def month_total(client, rider) -> int:
    r = await client.get(
        f"/v1/passengers/{rider.passenger_id}/balance?month={NOV}", headers=rider.auth
    )
    return int(r.json()["total_cents"])


async def test_naming_companions_prices_the_whole_party(client, riders, app):
    a = riders[0]
    app.state.clock = lambda: NOVEMBER_4
    alone = await month_total(client, a)
    last = (await trips_of(client, a))[-1]
    url = f"/v1/passengers/{a.passenger_id}/trips/{last['trip_id']}/companions"
    r = await client.put(url, json={"adult": 1, "child": 2, "bike": 1}, headers=a.auth)
    assert r.status_code == 200, r.text
    assert r.json()["party"] == {"adult": 1, "child": 2, "bike": 1}
    with_party = await month_total(client, a)
    assert with_party > alone
    assert (await trips_of(client, a))[-1]["party"] == {"adult": 1, "child": 2, "bike": 1}
    infants = await client.put(url, json={"infant": 3}, headers=a.auth)
    assert infants.status_code == 200
    assert await month_total(client, a) == alone  # children under 6 ride free
    cleared = await client.put(url, json={}, headers=a.auth)
    assert cleared.json()["party"] == {}
    assert await month_total(client, a) == alone


@pytest.mark.parametrize(
    ("party", "field"),
    [
        ({"adult": -1}, "adult"),
        ({"child": 10}, "child"),
        ({"bike": 6}, "bike"),
        ({"dog": 1}, "dog"),
        ({"adult": 5, "child": 5}, "adult"),
    ],
)
async def test_a_bad_party_is_refused_naming_the_field(client, riders, app, party, field):
    a = riders[0]
    app.state.clock = lambda: NOVEMBER_4
    trip = (await trips_of(client, a))[-1]
    r = await client.put(
        f"/v1/passengers/{a.passenger_id}/trips/{trip['trip_id']}/companions",
        json=party,
        headers=a.auth,
    )
    assert r.status_code == 422
    assert field in r.text


async def test_companions_only_on_own_trips_and_within_a_day(client, riders, app):
    a, b = riders
    trip = (await trips_of(client, a))[0]
    app.state.clock = lambda: NOVEMBER_4
    other = await client.put(
        f"/v1/passengers/{b.passenger_id}/trips/{trip['trip_id']}/companions",
        json={"child": 1},
        headers=b.auth,
    )
    assert other.status_code == 404
    app.state.clock = lambda: dt.datetime(2026, 11, 20, tzinfo=dt.UTC)
    late = await client.put(
        f"/v1/passengers/{a.passenger_id}/trips/{trip['trip_id']}/companions",
        json={"child": 1},
        headers=a.auth,
    )
    assert late.status_code == 409
    assert "dispute" in late.json()["detail"]


async def test_a_6_year_old_not_yet_at_school_signs_up_and_rides_free(client):
    """The WestfalenTarif frees children under 7 who do not go to school yet."""
    r = await client.post("/v1/passengers", json={"rider_category": "preschool"})
    assert r.status_code == 201
    ride = effective(at(2026, 5, 5, 8), UNNA, KAMEN)
    assert billing_service.price([ride], "preschool").total_cents == 0
    assert billing_service.price([ride], "child").total_cents > 0
    assert fare_engine.load_tariff("ruhr_lippe_2026").has_rider("preschool")
