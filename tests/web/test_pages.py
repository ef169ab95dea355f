"""The operator pages through the ASGI app: login, CSRF, throttling, roles, the trip list and
CSV, the trip page's trace plot, corrections and disputes with their re-billing, and the
revenue per transit company."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re

from backend.billing import apportionment
from backend.billing import repository as billing_repo
from backend.billing import service as billing_service
from backend.db import make_sessionmaker, transaction
from backend.ingest import service as ingest_service
from backend.operators import service as operators_service
from backend.operators.web.const import LOGIN_BACKOFF_BASE, LOGIN_FREE_FAILURES
from backend.passengers import disputes as disputes_service
from backend.passengers import entitlements as entitlements_service
from backend.templating import euros
from tests.backend.conftest import RIDE_DAYS, RIDE_STOPS
from tests.web.conftest import PASSWORD, add_operator, csrf_of, login

NOV = "2026-11"


async def _login_form(client) -> str:
    return csrf_of((await client.get("/ops/login")).text)


def _first_trip(engine, passenger_id: str) -> str:
    with make_sessionmaker(engine)() as session:
        return billing_service.effective_trips(session, passenger_id, RIDE_DAYS[0], RIDE_DAYS[0])[
            0
        ].trip_id


# --- login, sessions, CSRF, throttling ------------------------------------------------------


async def test_pages_send_a_visitor_to_the_login(client):
    response = await client.get("/ops/trips?day=2026-11-03")
    assert response.status_code == 303
    assert response.headers["location"] == "/ops/login?next=/ops/trips%3Fday%3D2026-11-03"


async def test_login_opens_the_dashboard_and_logout_ends_the_session(client, engine, clock):
    csrf = await login(client, engine, "viewer")
    dashboard = await client.get("/ops/")
    assert "Dashboard" in dashboard.text
    assert "viewer web" in dashboard.text
    assert dashboard.headers["cache-control"] == "no-store"
    assert "frame-ancestors 'none'" in dashboard.headers["content-security-policy"]
    css = await client.get("/ops/static/ops.css")
    assert css.headers["content-type"].startswith("text/css")
    assert "svg.trace" in css.text
    logout = await client.post("/ops/logout", data={"csrf_token": csrf})
    assert logout.status_code == 303
    assert (await client.get("/ops/")).status_code == 303


async def test_login_goes_back_to_the_page_asked_for_but_never_off_site(client, engine, clock):
    name = add_operator(engine, "viewer")
    for asked, lands in (("/ops/disputes", "/ops/disputes"), ("https://evil.example/", "/ops/")):
        client.cookies.clear()
        response = await client.post(
            "/ops/login",
            data={
                "name": name,
                "password": PASSWORD,
                "next": asked,
                "csrf_token": await _login_form(client),
            },
        )
        assert response.headers["location"] == lands


async def test_a_wrong_password_is_refused(client, engine, clock):
    name = add_operator(engine, "agent")
    for who in (name, "nobody at all"):
        response = await client.post(
            "/ops/login",
            data={
                "name": who,
                "password": "wrong password",
                "csrf_token": await _login_form(client),
            },
        )
        assert response.status_code == 401
        assert "Wrong operator name or password" in response.text
    assert (await client.get("/ops/")).status_code == 303


async def test_login_backs_off_after_five_failures_for_a_name(client, engine, clock):
    name = add_operator(engine, "agent")
    other = add_operator(engine, "viewer")

    async def attempt(who: str, password: str):
        client.cookies.clear()  # a fresh visitor each time
        return await client.post(
            "/ops/login",
            data={"name": who, "password": password, "csrf_token": await _login_form(client)},
        )

    for _ in range(LOGIN_FREE_FAILURES):
        assert (await attempt(name, "guess guess guess")).status_code == 401
    throttled = await attempt(name, PASSWORD)  # even the right password waits
    assert throttled.status_code == 429
    assert "Too many failed logins for" in throttled.text
    assert "Try again in 30 seconds" in throttled.text
    assert int(throttled.headers["retry-after"]) == LOGIN_BACKOFF_BASE.total_seconds()
    assert (await attempt(name.upper(), "guess")).status_code == 429  # same name, other case
    assert (await attempt(other, PASSWORD)).status_code == 303  # other names are not affected

    clock.now += LOGIN_BACKOFF_BASE
    assert (await attempt(name, PASSWORD)).status_code == 303


async def test_every_post_needs_the_sessions_csrf_token(client, engine, riders, clock):
    assert (await client.post("/ops/login", data={"name": "x", "password": "y"})).status_code == 403
    csrf = await login(client, engine, "agent")
    trip_id = _first_trip(engine, riders[0].passenger_id)
    form = {"reason": "passenger left early", "alight_stop_id": RIDE_STOPS[4]}
    for token in (None, "forged", csrf[:-2]):
        data = form if token is None else form | {"csrf_token": token}
        response = await client.post(f"/ops/trips/{trip_id}/corrections", data=data)
        assert response.status_code == 403
        assert "security token" in response.text
    with make_sessionmaker(engine)() as session:
        assert billing_repo.latest_corrections(session, [trip_id]) == {}


async def test_a_viewer_reads_but_cannot_correct_or_resolve(client, engine, riders, clock):
    csrf = await login(client, engine, "viewer")
    trip_id = _first_trip(engine, riders[0].passenger_id)
    page = await client.get(f"/ops/trips/{trip_id}")
    assert page.status_code == 200
    assert "/corrections" not in page.text
    assert "Corrections need the agent role" in page.text
    response = await client.post(
        f"/ops/trips/{trip_id}/corrections",
        data={"csrf_token": csrf, "reason": "left early", "alight_stop_id": RIDE_STOPS[4]},
    )
    assert response.status_code == 403
    assert "needs the &#39;agent&#39; role" in response.text
    close = await client.post(
        "/ops/billing/close-month", data={"csrf_token": csrf, "month": "2026-11"}
    )
    assert close.status_code == 403
    with make_sessionmaker(engine)() as session:
        assert billing_repo.latest_corrections(session, [trip_id]) == {}


# --- dashboard, trip list, CSV --------------------------------------------------------------


async def test_dashboard_counts_trips_disputes_and_revenue(client, engine, riders, clock):
    with transaction(make_sessionmaker(engine)) as session:
        billing_service.close_month(session, NOV, clock())
        disputes_service.open_dispute(
            session,
            riders[0].passenger_id,
            _first_trip(engine, riders[0].passenger_id),
            "I was not on the bus",
            clock(),
        )
    await login(client, engine, "viewer")
    page = (await client.get("/ops/?until=2026-11-10")).text
    tiles = dict(re.findall(r'<span class="num">([^<]+)</span><span>([^<]+)</span>', page))
    assert tiles["6"] == "trips in these 14 days"
    assert tiles["1"] == "open disputes"
    assert page.count('<svg class="chart"') == 3
    assert page.count('class="bar"') == 14 + 10 + 1  # days, confidence bins, one month


async def test_trip_list_filters_and_exports_csv(client, engine, riders, clock):
    await login(client, engine, "viewer")
    day = RIDE_DAYS[0].isoformat()
    listing = await client.get(f"/ops/trips?day={day}&line=&vehicle=&max_confidence=")
    assert listing.status_code == 200
    assert len(set(re.findall(r'href="/ops/trips/([^"/.?]+)"', listing.text))) == 2
    for rider in riders:
        assert rider.passenger_id in listing.text
    none = await client.get(f"/ops/trips?day={day}&line=S99")
    assert "No trips match" in none.text
    bad = await client.get("/ops/trips?max_confidence=2")
    assert bad.status_code == 422
    assert "max_confidence" in bad.text

    export = await client.get(f"/ops/trips.csv?day={day}&vehicle=RLG-4711")
    assert export.status_code == 200
    assert export.headers["content-type"].startswith("text/csv")
    assert f'filename="trips-{day}.csv"' in export.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(export.text)))
    assert len(rows) == 2
    assert {r["passenger_id"] for r in rows} == {r.passenger_id for r in riders}
    assert list(rows[0]) == list(operators_service.READABLE_CSV_COLUMNS)
    assert rows[0]["board_stop_name"] == "Soest, Bahnhof"
    assert rows[0]["board_time"].startswith(f"{day}T")
    assert rows[0]["board_time"][-6:] == "+01:00"
    everything = list(csv.DictReader(io.StringIO((await client.get("/ops/trips.csv")).text)))
    assert len(everything) == 6


async def test_the_csv_needs_a_login(client, riders):
    assert (await client.get("/ops/trips.csv")).status_code == 303


# --- the trip page --------------------------------------------------------------------------


async def test_the_trip_page_plots_the_rssi_trace(client, engine, riders, clock):
    await login(client, engine, "viewer")
    trip_id = _first_trip(engine, riders[0].passenger_id)
    page = await client.get(f"/ops/trips/{trip_id}")
    assert page.status_code == 200
    with make_sessionmaker(engine)() as session:
        trace = operators_service.trip_trace(session, trip_id)
    assert trace is not None
    assert len(trace.t) > 100
    svg = page.text[page.text.index('<svg class="trace"') :]
    svg = svg[: svg.index("</svg>")]
    assert svg.count('class="pt"') == len(trace.t)
    assert 'class="in-vehicle"' in svg
    assert svg.count('class="doors-open"') == sum(e.type == "doors_open" for e in trace.events)
    assert "Soest, Bahnhof" in svg
    assert "Lippstadt, Rathaus" in svg
    assert (await client.get("/ops/trips/trp_nonexistent")).status_code == 404


async def test_an_agent_corrects_the_alighting_stop_and_sees_the_rebill(
    client, engine, riders, clock
):
    a = riders[0].passenger_id
    with transaction(make_sessionmaker(engine)) as session:
        billing_service.close_month(session, NOV, clock())
        first = billing_repo.latest_invoice(session, a, NOV)
    assert first is not None
    csrf = await login(client, engine, "agent")
    trip_id = _first_trip(engine, a)
    response = await client.post(
        f"/ops/trips/{trip_id}/corrections",
        data={
            "csrf_token": csrf,
            "reason": "driver: left at Bad Sassendorf",
            "alight_stop_id": RIDE_STOPS[4],
        },
    )
    assert response.status_code == 303
    assert response.headers["location"] == f"/ops/trips/{trip_id}"
    page = (await client.get(response.headers["location"])).text
    assert "Correction saved. Re-billed 2026-11" in page
    assert "invoice version 2 issued" in page
    assert "Bad Sassendorf, Bahnhof" in page
    with make_sessionmaker(engine)() as session:
        latest = billing_repo.latest_invoice(session, a, NOV)
    assert latest is not None
    assert latest.version == 2
    assert latest.total_cents < first.total_cents

    nothing = await client.post(
        f"/ops/trips/{trip_id}/corrections", data={"csrf_token": csrf, "reason": "no change"}
    )
    assert nothing.status_code == 422
    unknown = await client.post(
        f"/ops/trips/{trip_id}/corrections",
        data={"csrf_token": csrf, "reason": "typo", "alight_stop_id": "de:0:0"},
    )
    assert unknown.status_code == 422
    assert "no stop" in unknown.text


# --- disputes and invoices ------------------------------------------------------------------


async def test_accepting_a_dispute_changes_the_passengers_invoice(client, engine, riders, clock):
    a = riders[0].passenger_id
    trip_id = _first_trip(engine, a)
    with transaction(make_sessionmaker(engine)) as session:
        billing_service.close_month(session, NOV, clock())
        before = billing_repo.latest_invoice(session, a, NOV)
        dispute = disputes_service.open_dispute(
            session, a, trip_id, "I took the train that day", clock()
        )
        dispute_id = dispute.dispute_id
    assert before is not None

    csrf = await login(client, engine, "agent")
    queue = await client.get("/ops/disputes")
    assert "I took the train that day" in queue.text
    assert f"/ops/disputes/{dispute_id}/resolve" in queue.text
    response = await client.post(
        f"/ops/disputes/{dispute_id}/resolve",
        data={"csrf_token": csrf, "action": "accept", "note": "train ticket shown"},
    )
    assert response.status_code == 303
    queue = (await client.get(response.headers["location"])).text
    assert f"Dispute {dispute_id} accepted. Re-billed 2026-11" in queue
    assert "invoice version 2 issued" in queue
    again = await client.post(
        f"/ops/disputes/{dispute_id}/resolve", data={"csrf_token": csrf, "action": "reject"}
    )
    assert again.status_code == 409

    invoices = (await client.get(f"/ops/passengers/{a}/invoices")).text
    with make_sessionmaker(engine)() as session:
        after = billing_repo.latest_invoice(session, a, NOV)
    assert after is not None
    assert after.version == 2
    assert after.total_cents < before.total_cents
    assert "v2" in invoices
    assert "v1" in invoices
    assert euros(after.total_cents) in invoices
    view = await client.get(f"/ops/passengers/{a}/invoices/{after.invoice_id}")
    assert view.status_code == 200
    assert "Version 2" in view.text
    other = riders[1].passenger_id
    wrong = await client.get(f"/ops/passengers/{other}/invoices/{after.invoice_id}")
    assert wrong.status_code == 404


async def test_adjusting_a_dispute_needs_a_stop(client, engine, riders, clock):
    a = riders[0].passenger_id
    with transaction(make_sessionmaker(engine)) as session:
        dispute = disputes_service.open_dispute(
            session, a, _first_trip(engine, a), "wrong stop", clock()
        )
        dispute_id = dispute.dispute_id
    csrf = await login(client, engine, "agent")
    url = f"/ops/disputes/{dispute_id}/resolve"
    missing = await client.post(url, data={"csrf_token": csrf, "action": "adjust"})
    assert missing.status_code == 422
    adjusted = await client.post(
        url, data={"csrf_token": csrf, "action": "adjust", "alight_stop_id": RIDE_STOPS[5]}
    )
    assert adjusted.status_code == 303
    resolved = (await client.get("/ops/disputes?status=adjusted")).text
    assert f"Dispute {dispute_id} adjusted" in resolved


async def test_an_admin_closes_a_month_from_the_dashboard(client, engine, riders, clock):
    csrf = await login(client, engine, "admin")
    response = await client.post(
        "/ops/billing/close-month", data={"csrf_token": csrf, "month": NOV}
    )
    assert response.status_code == 303
    page = (await client.get("/ops/")).text
    assert "Closed 2026-11: 2 new or changed invoice(s)" in page
    early = await client.post(
        "/ops/billing/close-month", data={"csrf_token": csrf, "month": "2026-12"}
    )
    assert early.status_code == 409


async def test_unknown_passenger_has_no_invoice_page(client, engine, clock):
    await login(client, engine, "viewer")
    assert (await client.get("/ops/passengers/pas_unknown/invoices")).status_code == 404


# --- revenue per transit company ------------------------------------------------------------


def _bill_two_companies(engine, clock) -> int:
    """A November charge on RLG's and VKU's buses, reversed and charged again; returns the
    month's ledger total."""
    rides = [
        ("RLG-1", RIDE_STOPS[0], RIDE_STOPS[7]),
        ("VKU-1", RIDE_STOPS[1], RIDE_STOPS[3]),
        ("BUS-9", RIDE_STOPS[2], RIDE_STOPS[5]),
    ]
    with transaction(make_sessionmaker(engine)) as session:
        for vehicle_id, company in (("RLG-1", "RLG"), ("VKU-1", "VKU"), ("BUS-9", None)):
            ingest_service.register_vehicle(session, vehicle_id, company=company)
        first = billing_repo.post_ledger_entry(session, "pas_x", NOV, "charge", 2000, "{}", clock())
        apportionment.record_charge_shares(session, first, rides, rule="passenger_km")
        reversal = billing_repo.post_ledger_entry(
            session, "pas_x", NOV, "reversal", -2000, "{}", clock(), reverses=first.entry_id
        )
        apportionment.record_reversal_shares(session, reversal, first.entry_id)
        second = billing_repo.post_ledger_entry(
            session, "pas_x", NOV, "charge", 1234, "{}", clock()
        )
        apportionment.record_charge_shares(session, second, rides[:2], rule="passenger_km")
    return 1234


async def test_the_revenue_page_splits_the_month_per_company(client, engine, clock):
    total = _bill_two_companies(engine, clock)
    await login(client, engine, "viewer")
    dashboard = (await client.get("/ops/")).text
    assert 'href="/ops/revenue"' in dashboard
    page = await client.get(f"/ops/revenue?month={NOV}")
    assert page.status_code == 200
    assert '<a href="/ops/revenue" aria-current="page">Revenue</a>' in page.text
    rows = re.findall(r'<tr class="company">(.*?)</tr>', page.text, re.DOTALL)
    assert len(rows) == 3
    assert "<strong>RLG</strong>" in rows[0]
    assert "<strong>VKU</strong>" in rows[1]
    assert "unassigned" in rows[2]
    with make_sessionmaker(engine)() as session:
        report = apportionment.revenue_report(session, NOV)
    nets = [c.net_cents for c in report.companies]
    assert sum(nets) == total
    for row, cents in zip(rows, nets, strict=True):
        assert euros(cents) in row
    assert f"<strong>{euros(total)}</strong>" in page.text
    assert "adds up to it to the cent" in page.text
    assert 'href="/ops/revenue?month=2026-10"' in page.text
    assert 'href="/ops/revenue?month=2026-12"' in page.text  # December has begun

    export = await client.get(f"/ops/revenue.csv?month={NOV}")
    assert export.status_code == 200
    assert export.headers["content-type"].startswith("text/csv")
    assert f'filename="revenue-{NOV}.csv"' in export.headers["content-disposition"]
    lines = list(csv.DictReader(io.StringIO(export.text)))
    assert [r["company"] for r in lines] == ["RLG", "VKU", "unassigned"]
    assert sum(int(r["net_cents"]) for r in lines) == total
    assert list(lines[0]) == list(operators_service.REVENUE_CSV_COLUMNS)

    current = await client.get("/ops/revenue")  # the clock's month
    assert "Revenue per company, 2026-12" in current.text
    assert "Nothing billed in 2026-12" in current.text
    assert 'href="/ops/revenue?month=2027-01"' not in current.text
    for bad in ("2026-13", "11-2026", "٢٠٢٦-١١", "x" * 300):
        for path in ("/ops/revenue", "/ops/revenue.csv"):
            refused = await client.get(path, params={"month": bad})
            assert refused.status_code == 422, (path, bad)
            assert "month: expected YYYY-MM" in refused.text


async def test_the_revenue_page_needs_a_login(client):
    for path in ("/ops/revenue", f"/ops/revenue.csv?month={NOV}"):
        response = await client.get(path)
        assert response.status_code == 303
        assert response.headers["location"].startswith("/ops/login")


# --- tickets held elsewhere --------------------------------------------------------------


async def test_an_agent_revokes_a_ticket_held_elsewhere_and_the_trips_are_charged(
    client, engine, riders, clock
):
    a = riders[0].passenger_id
    with transaction(make_sessionmaker(engine)) as session:
        billing_service.close_month(session, NOV, clock())
        charged = billing_repo.ledger_balance(session, a, NOV)
        entitlement, _ = entitlements_service.register(
            session,
            a,
            kind="jobticket",
            valid_from=dt.date(2026, 11, 1),
            valid_to=dt.date(2026, 11, 30),
            scope_areas=None,
            evidence_ref="JobTicket 4711",
            now=clock(),
        )
        assert billing_repo.ledger_balance(session, a, NOV) == 0
    csrf = await login(client, engine, "agent")
    queue = (await client.get("/ops/entitlements")).text
    assert "JobTicket" in queue
    assert "JobTicket 4711" in queue
    url = f"/ops/entitlements/{entitlement.entitlement_id}/decide"
    no_note = await client.post(url, data={"csrf_token": csrf, "decision": "revoke"})
    assert no_note.status_code == 422
    response = await client.post(
        url, data={"csrf_token": csrf, "decision": "revoke", "note": "employer says no"}
    )
    assert response.status_code == 303
    page = (await client.get(response.headers["location"])).text
    assert f"Entitlement {entitlement.entitlement_id} revoked. Re-billed 2026-11" in page
    with make_sessionmaker(engine)() as session:
        assert billing_repo.ledger_balance(session, a, NOV) == charged
    again = await client.post(
        url, data={"csrf_token": csrf, "decision": "verify", "note": "too late"}
    )
    assert again.status_code == 409
    revoked = (await client.get("/ops/entitlements?status=revoked")).text
    assert "employer says no" in revoked
