"""One passenger on one page (devices, trips, disputes with who resolved them and what
changed, tickets held elsewhere, invoices), each trip's fare and the drawing of its stops,
and the daily revenue."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re

from backend import models
from backend.billing import service as billing_service
from backend.billing.presentation import passenger_bill
from backend.db import make_sessionmaker, transaction
from backend.passengers import disputes as disputes_service
from backend.passengers import service as passengers_service
from backend.templating import euros
from tests.backend.conftest import RIDE_DAYS, RIDE_STOPS
from tests.web.conftest import login

NOV = "2026-11"


def _trips(engine, passenger_id: str) -> list[billing_service.EffectiveTrip]:
    with make_sessionmaker(engine)() as session:
        return billing_service.effective_trips(session, passenger_id, RIDE_DAYS[0], RIDE_DAYS[-1])


async def test_the_passenger_page_shows_everything_of_one_passenger(client, engine, riders, clock):
    a, b = riders[0], riders[1]
    trips = _trips(engine, a.passenger_id)
    with transaction(make_sessionmaker(engine)) as session:
        second = passengers_service.register_device(session, a.passenger_id)
        session.add(
            models.Entitlement(
                passenger_id=a.passenger_id,
                kind="deutschlandticket",
                valid_from=dt.date(2026, 12, 1),
                valid_to=dt.date(2026, 12, 31),
                evidence_ref="DT-4242",
            )
        )
        accepted = disputes_service.open_dispute(
            session, a.passenger_id, trips[0].trip_id, "I took the train", clock()
        ).dispute_id
        adjusted = disputes_service.open_dispute(
            session, a.passenger_id, trips[1].trip_id, "I left earlier", clock()
        ).dispute_id
        rejected = disputes_service.open_dispute(
            session, a.passenger_id, trips[2].trip_id, "too expensive", clock()
        ).dispute_id
    csrf = await login(client, engine, "agent")
    for dispute_id, form in (
        (accepted, {"action": "accept", "note": "train ticket shown"}),
        (adjusted, {"action": "adjust", "alight_stop_id": RIDE_STOPS[3]}),
        (rejected, {"action": "reject", "note": "the trace is clear"}),
    ):
        response = await client.post(
            f"/ops/disputes/{dispute_id}/resolve", data={"csrf_token": csrf, **form}
        )
        assert response.status_code == 303

    page = await client.get(f"/ops/passengers/{a.passenger_id}")
    assert page.status_code == 200
    text = page.text
    assert "adult" in text
    for device_id in (a.device_id, second.device_id):
        assert f"<code>{device_id}</code>" in text
    listed = set(re.findall(r'href="/ops/trips/(trp_\w+)"', text))
    assert {t.trip_id for t in trips} <= listed
    assert b.device_id not in text  # nobody else's trips
    assert "Deutschlandticket" in text
    assert "01.12.2026 – 31.12.2026" in text
    # Dispute history: who resolved it, how, and what changed.
    histories = dict(
        re.findall(r"<h3>Dispute (\d+) .*?</h3>\s*<ol class=\"history\">(.*?)</ol>", text, re.S)
    )
    assert "accepted</strong> by agent web" in histories[str(accepted)]
    assert "train ticket shown" in histories[str(accepted)]
    assert "trip cancelled (not billed)" in histories[str(accepted)]
    assert "adjusted</strong> by agent web" in histories[str(adjusted)]
    assert "alighting stop → " in histories[str(adjusted)]
    assert "rejected</strong> by agent web" in histories[str(rejected)]
    assert "Nothing changed" in histories[str(rejected)]
    # The same history on the dispute queue and on the trip's page.
    queue = (await client.get("/ops/disputes?status=accepted")).text
    assert "accepted</strong> by agent web" in queue
    trip_page = (await client.get(f"/ops/trips/{trips[1].trip_id}")).text
    assert "adjusted</strong> by agent web" in trip_page

    # The passenger's trips as CSV, readable.
    export = await client.get(f"/ops/trips.csv?passenger={a.passenger_id}")
    rows = list(csv.DictReader(io.StringIO(export.text)))
    assert {r["trip_id"] for r in rows} == {t.trip_id for t in trips}
    assert all(r["board_time"].endswith("+01:00") for r in rows)
    assert all(r["board_stop_name"] for r in rows)


async def test_an_unknown_passenger_is_not_found(client, engine, clock):
    await login(client, engine, "viewer")
    response = await client.get("/ops/passengers/pas_nobody")
    assert response.status_code == 404
    assert "pas_nobody" in response.text


async def test_the_trip_page_shows_its_fare_and_its_stops(client, engine, riders, clock):
    a = riders[0].passenger_id
    trip = _trips(engine, a)[1]
    with make_sessionmaker(engine)() as session:
        priced = billing_service.month_price(session, a, "adult", NOV)
    bill = passenger_bill(json.loads(priced.bill.to_json()))
    index = [t.trip_id for t in [*priced.earlier, *priced.trips]].index(trip.trip_id)
    paying = [p for p in bill["products"] if index in p["covers"]]
    assert paying
    alone = next(t for t in bill["trips"] if t["index"] == index)

    await login(client, engine, "viewer")
    page = (await client.get(f"/ops/trips/{trip.trip_id}")).text
    fare = re.search(r'<table class="kv fare">(.*?)</table>', page, re.S).group(1)
    for p in paying:
        assert p["label"] in fare
        assert euros(p["price_cents"]) in fare
    assert f"{alone['alone_label']} {euros(alone['single_cents'])}" in fare

    drawing = re.search(r'<svg class="stops-map".*?</svg>', page, re.S).group(0)
    assert len(re.findall(r'<circle class="stop', drawing)) == len(RIDE_STOPS)
    assert drawing.count('class="stop boarded"') == 1
    assert drawing.count('class="stop alighted"') == 1
    assert "(boarded)" in drawing
    assert "(alighted)" in drawing
    assert 'class="ridden"' in drawing
    # The drawing keeps the stops' geometry: west to east is left to right.
    xs = [float(x) for x in re.findall(r'<circle class="stop[^"]*" cx="([\d.]+)"', drawing)]
    assert len(set(xs)) == len(xs)


async def test_a_cancelled_trip_has_no_fare(client, engine, riders, clock):
    a = riders[0].passenger_id
    trip = _trips(engine, a)[0]
    csrf = await login(client, engine, "agent")
    await client.post(
        f"/ops/trips/{trip.trip_id}/corrections",
        data={"csrf_token": csrf, "reason": "not ridden", "cancelled": "1"},
    )
    page = (await client.get(f"/ops/trips/{trip.trip_id}")).text
    assert "Not billed" in page


async def test_daily_revenue_adds_up_to_the_ledger(client, engine, riders, clock):
    with transaction(make_sessionmaker(engine)) as session:
        billing_service.close_month(session, NOV, dt.datetime(2026, 12, 1, 9, tzinfo=dt.UTC))
        billing_service.close_month(session, NOV, dt.datetime(2026, 12, 1, 23, 30, tzinfo=dt.UTC))
    await login(client, engine, "viewer")
    page = (await client.get("/ops/revenue?month=2026-12")).text
    assert "Revenue per day, 2026-12" in page
    export = await client.get("/ops/revenue/daily.csv?month=2026-12")
    assert export.status_code == 200
    assert 'filename="revenue-daily-2026-12.csv"' in export.headers["content-disposition"]
    days = {r["day"]: int(r["net_cents"]) for r in csv.DictReader(io.StringIO(export.text))}
    assert len(days) == 31
    with make_sessionmaker(engine)() as session:
        total = sum(
            billing_service.month_balance(
                session, r.passenger_id, "adult" if k == 0 else "child", NOV
            ).billed_cents
            for k, r in enumerate(riders)
        )
    assert total > 0
    assert days["2026-12-01"] == total  # 09:00 UTC is 10:00 local
    assert sum(days.values()) == total
    assert f"{euros(total)}" in page
