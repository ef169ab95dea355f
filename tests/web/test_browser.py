"""The operator flow in a real browser: Playwright driving Debian's Chromium against a real
``bibo serve`` (uvicorn) on a loopback port.

Log in, open the lowest-confidence trip from the trip list, see its RSSI plot, correct the
alighting stop, and see the passenger's invoice get a new version with another total.
Screenshots of every step go to ``test-artifacts/browser/``.

The data is October 2026, a month that has ended by the real clock, so the server runs with
its own clock and the correction re-issues October's invoice.
"""

from __future__ import annotations

import base64
import datetime as dt
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from backend.billing import repository as billing_repo
from backend.billing import service as billing_service
from backend.db import make_engine, make_sessionmaker, transaction, upgrade
from backend.ingest import service as ingest_service
from backend.operators import service as operators_service
from backend.passengers import disputes as disputes_service
from backend.passengers import service as passengers_service
from backend.timeutil import service_day_bounds
from backend.trips import repository as trips_repo
from backend.trips import service as trips_service
from onboard import wire
from simulator.backend_proc import backend_server, free_port
from tests.backend.synth import DRIVE_MS, DWELL_MS, Rider, journey_batches
from tests.web.conftest import PASSWORD

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts" / "browser"
STOPS = [f"de:05974:10{k:02d}" for k in range(1, 11)]
DAYS = [dt.date(2026, 10, 6), dt.date(2026, 10, 7)]
OCTOBER = "2026-10"
AGENT = "Leitstelle Soest"


def _require_chromium() -> None:
    if CHROMIUM.exists():
        return
    if os.environ.get("BIBO_REQUIRE_BROWSER") == "1":
        pytest.fail(f"BIBO_REQUIRE_BROWSER=1 but {CHROMIUM} is missing: apt-get install chromium")
    pytest.skip("Debian chromium not installed: apt-get install chromium")


def _weaken(body: dict[str, Any], key: bytes, after_ms: int) -> None:
    """From ``after_ms`` on, the phone of ``key`` is heard only around the stops, every other
    second: the end of the trip becomes doubtful (low confidence). (Not weaker as well: a
    phone far below the bus's other riders and heard only at the stops is off the bus beyond
    doubt.)"""
    s = body["sightings"]
    theirs = {
        wire.token_for_interval(key, i).hex()
        for i in range(wire.interval_of(after_ms) - 6, wire.interval_of(after_ms) + 6)
    }
    keep = []
    for k, (t, token) in enumerate(zip(s["t"], s["token"], strict=True)):
        near_a_stop = (t - after_ms) % (DWELL_MS + DRIVE_MS) < 80_000 and (t // 1000) % 2 == 0
        if token not in theirs or t < after_ms or near_a_stop:
            keep.append(k)
    for column in s:
        s[column] = [s[column][k] for k in keep]


@dataclass(frozen=True)
class Prepared:
    database_url: str
    passenger_id: str
    low_trip_id: str
    october_total_cents: int


@pytest.fixture
def prepared(tmp_path: Path) -> Prepared:
    """A migrated SQLite file with two October days of one bus: passenger A rides Soest ->
    Lippstadt both days (heard badly after Lohne on the second), passenger B a shorter trip
    (and disputes one); reconciled, October closed, and an agent who logs in with a
    password."""
    url = f"sqlite:///{tmp_path / 'bibo.sqlite3'}"
    engine = make_engine(url)
    now = dt.datetime.now(dt.UTC)
    try:
        upgrade(engine)
        sessions = make_sessionmaker(engine)
        with transaction(sessions) as session:
            ingest_service.register_vehicle(session, "RLG-4711")
            operators_service.register_operator(session, AGENT, "agent", PASSWORD)
            riders = []
            for _ in range(2):
                p = passengers_service.register_passenger(session, "adult")
                d = passengers_service.register_device(session, p.passenger_id)
                riders.append((p.passenger_id, base64.b64decode(d.device_key_b64)))
        (a, key_a), (b, key_b) = riders
        for n, day in enumerate(DAYS):
            t0 = service_day_bounds(day)[0] + 4 * 3_600_000  # 07:00 local
            bodies = journey_batches(
                "RLG-4711",
                f"R61-{n}",
                STOPS,
                t0,
                [Rider(key_a, 0, 8), Rider(key_b, 1, 6)],
                boot_id=f"b{n}",
                chunk_ms=600_000,
                seed=n,
            )
            with transaction(sessions) as session:
                for body in bodies:
                    if n == 1:
                        _weaken(body, key_a, t0 + 6 * (DWELL_MS + DRIVE_MS))
                    ingest_service.store_batch(session, wire.Batch.model_validate(body), now)
            trips_service.reconcile_day(sessions, day, trips_service.ResolverCache(), lambda: now)
        with transaction(sessions) as session:
            billing_service.close_month(session, OCTOBER, now)
            trips = [t for day in DAYS for t in trips_repo.day_trips(session, day)]
            low = min(trips, key=lambda t: t.confidence)
            invoice = billing_repo.latest_invoice(session, a, OCTOBER)
            disputes_service.open_dispute(
                session,
                b,
                trips_repo.day_trips(session, DAYS[0])[-1].trip_id,
                "I got off at Bad Sassendorf, not in Lohne",
                now,
            )
        assert low.passenger_id == a, "the weakly heard trip should be the least certain"
        assert low.confidence < 0.9, f"the weak trip should look doubtful: {low.confidence}"
        assert invoice is not None
        return Prepared(url, a, low.trip_id, invoice.total_cents)
    finally:
        engine.dispose()


@pytest.fixture
def server(prepared: Prepared, tmp_path: Path) -> Iterator[str]:
    """``bibo serve`` on a free loopback port, on the prepared database and the real clock."""
    _require_chromium()
    env = os.environ | {
        "BIBO_DATABASE_URL": prepared.database_url,
        "BIBO_RECONCILE_IN_BACKGROUND": "false",
        "BIBO_ENVIRONMENT": "development",
    }
    env.pop("BIBO_SECRET_KEY", None)
    with backend_server(env, free_port(), tmp_path / "server.log") as url:
        yield url


def test_an_agent_corrects_a_doubtful_trip_and_the_invoice_changes(
    server: str, prepared: Prepared
) -> None:
    from playwright.sync_api import expect, sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for old in ARTIFACTS.glob("*.png"):
        old.unlink()

    def shot(page: Any, name: str) -> None:
        page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.set_default_timeout(15_000)

            # 1. Log in (the dashboard sends a visitor to the login page first).
            page.goto(f"{server}/ops/")
            expect(page).to_have_url(f"{server}/ops/login?next=/ops/")
            page.get_by_label("Operator name").fill(AGENT)
            page.get_by_label("Password").fill(PASSWORD)
            shot(page, "01-login")
            page.get_by_role("button", name="Log in").click()
            expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
            page.get_by_role("link", name="newest trips").click()
            expect(page.locator("svg.chart rect.bar")).to_have_count(14 + 10 + 1)
            shot(page, "02-dashboard")

            # 2. The trip list, doubtful trips first.
            page.get_by_role("link", name="Trips", exact=True).click()
            page.get_by_label("Confidence ≤").fill("0.9")
            page.get_by_label("Sort").select_option("confidence")
            page.get_by_role("button", name="Filter").click()
            rows = page.locator("table.list tbody tr.low")
            expect(rows.first).to_be_visible()
            shot(page, "03-trips-low-confidence")
            first_link = rows.first.locator("a").first
            assert first_link.get_attribute("href") == f"/ops/trips/{prepared.low_trip_id}"
            first_link.click()

            # 3. The trip page and its RSSI plot.
            expect(page).to_have_url(f"{server}/ops/trips/{prepared.low_trip_id}")
            plot = page.locator("svg.trace")
            expect(plot).to_be_visible()
            assert plot.locator("circle.pt").count() > 100
            expect(plot.locator("rect.in-vehicle")).to_have_count(1)
            expect(plot.locator("text.stop-name").first).to_have_text("Soest, Bahnhof")
            shot(page, "04-trip-plot")

            # 4. Correct the alighting stop: the passenger left at Benninghausen.
            page.get_by_label("Alighting stop").select_option(STOPS[6])
            page.get_by_label("Reason").fill("phone lost in the bag; driver saw him leave")
            page.get_by_role("button", name="Save correction and re-bill").click()
            flash = page.locator(".flash-ok")
            expect(flash).to_contain_text(f"Re-billed {OCTOBER}")
            expect(flash).to_contain_text("invoice version 2 issued")
            shot(page, "05-corrected")

            # 5. The passenger's invoices: a second October version with another total.
            page.get_by_role("link", name=prepared.passenger_id).first.click()
            invoices = page.locator("table.invoices tbody tr")
            expect(invoices).to_have_count(2)
            newest = invoices.nth(0).locator("td")
            expect(newest.nth(0)).to_have_text(OCTOBER)
            expect(newest.nth(1)).to_have_text("v2")
            expect(invoices.nth(1).locator("td").nth(1)).to_have_text("v1")
            old_total, new_total = (
                invoices.nth(k).locator("td").nth(3).inner_text() for k in (1, 0)
            )
            assert old_total != new_total
            shot(page, "06-invoices")
            invoices.nth(0).get_by_role("link", name="view").click()
            expect(page.locator("h1")).to_contain_text(f"Rechnung {OCTOBER}")
            expect(page.get_by_text("(korrigiert)")).to_be_visible()
            shot(page, "07-invoice-v2")

            # 6. The disputes queue (passenger B contests a trip).
            page.go_back()
            page.get_by_role("link", name="Disputes", exact=True).click()
            expect(page.locator("section.dispute")).to_have_count(1)
            expect(page.get_by_role("button", name="Adjust stops")).to_be_visible()
            shot(page, "08-disputes")
        finally:
            browser.close()
