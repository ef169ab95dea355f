"""Revenue apportionment (``backend/billing/apportionment.py``): the largest-remainder split
as a property over 10,000 random passenger-months (pure, no database), the shares written
with ledger entries and the monthly report on SQLite and PostgreSQL, and its API routes."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import math
import random
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from fractions import Fraction

import pytest
from pydantic import ValidationError
from sqlalchemy import Engine, event, func, select
from sqlalchemy.orm import Session

import fare_engine
from backend import models
from backend.billing import apportionment
from backend.billing import repository as billing_repo
from backend.billing import service as billing_service
from backend.billing.apportionment import (
    MIN_RIDE_KM,
    UNAPPORTIONED,
    UNASSIGNED,
    Share,
    apportion,
    company_weights,
    record_charge_shares,
    record_reversal_shares,
    revenue_by_company,
    revenue_report,
    ride_km,
    split_cents,
)
from backend.db import make_sessionmaker, transaction
from backend.ingest import service as ingest_service
from backend.passengers.disputes import correct_trip
from backend.settings import Settings
from fare_engine.geo import distance_m
from tests.backend.conftest import RIDE_STOPS

NOW = dt.datetime(2026, 12, 2, 12, tzinfo=dt.UTC)
MONTH = "2026-11"
PASSENGER = "pas_apportionment"

# --- split_cents ----------------------------------------------------------------------------


def test_split_cents_by_largest_remainder():
    assert split_cents(100, [1, 1, 1]) == [34, 33, 33]  # the tie goes to the lowest index
    assert split_cents(100, [1, 1, 1, 1, 1, 1]) == [17, 17, 17, 17, 16, 16]
    assert split_cents(10, [0.5, 0.3, 0.2]) == [5, 3, 2]
    assert split_cents(7, [2, 1]) == [5, 2]  # quotas 4.67 and 2.33
    assert split_cents(1, [1, 2]) == [0, 1]  # the larger remainder wins, not the index
    assert split_cents(0, [3, 4]) == [0, 0]
    assert split_cents(5, [0, 1]) == [0, 5]


def test_negative_totals_split_as_the_negated_positive_split():
    assert split_cents(-100, [1, 1, 1]) == [-34, -33, -33]
    assert split_cents(-7, [2, 1]) == [-5, -2]


def test_zero_and_empty_weights():
    assert split_cents(10, [0, 0, 0]) == [4, 3, 3]  # all zero: equal parts
    assert split_cents(-10, [0.0, 0.0]) == [-5, -5]
    assert split_cents(0, []) == []
    with pytest.raises(ValueError, match="no parts"):
        split_cents(1, [])
    for bad in (-1.0, math.nan, math.inf):
        with pytest.raises(ValueError, match="weight"):
            split_cents(10, [1.0, bad])


def test_company_weights_floor_each_ride_and_name_the_unassigned():
    rides = [("RLG", 2.5), ("VKU", 0.0), (None, 1.0), ("RLG", 0.05), ("", 3.0)]
    weights = company_weights(rides)
    assert list(weights) == ["RLG", "VKU", UNASSIGNED]
    assert weights["RLG"] == pytest.approx(2.5 + MIN_RIDE_KM)
    assert weights["VKU"] == MIN_RIDE_KM
    assert weights[UNASSIGNED] == 4.0
    assert company_weights(rides, "rides") == {"RLG": 2.0, "VKU": 1.0, UNASSIGNED: 2.0}
    with pytest.raises(ValueError, match="rule"):
        company_weights(rides, "seats")
    with pytest.raises(ValueError, match="km"):
        company_weights([("RLG", -1.0)])


def test_apportion_records_passenger_km_whatever_the_rule():
    rides = [("RLG", 9.0), ("VKU", 1.0), ("VKU", 0.0)]
    by_km = apportion(1000, rides)
    assert by_km == [Share("RLG", 891, 9.0), Share("VKU", 109, 1.1)]  # 891.09, 108.91
    by_rides = apportion(1000, rides, "rides")
    assert [(s.company, s.amount_cents) for s in by_rides] == [("RLG", 333), ("VKU", 667)]
    assert [s.passenger_km for s in by_rides] == [9.0, 1.1]
    assert apportion(0, rides) == [Share("RLG", 0, 9.0), Share("VKU", 0, 1.1)]
    assert apportion(0, []) == []
    with pytest.raises(ValueError, match="no rides"):
        apportion(100, [])


# --- the property: 10,000 random passenger-months -------------------------------------------

COMPANIES = ("RLG", "VKU", "BVO", "DB-REGIO", "RVM", "WB")


def _random_month(rng: random.Random) -> tuple[int, list[tuple[str | None, float]]]:
    companies: list[str | None] = list(rng.sample(COMPANIES, rng.randint(1, 4)))
    if rng.random() < 0.5:
        companies.append(None)  # some rides on vehicles without a company
    rides: list[tuple[str | None, float]] = []
    for _ in range(rng.randint(1, 120)):
        kind = rng.random()
        if kind < 0.15:
            km = 0.0  # boarded and alighted at the same stop
        elif kind < 0.25:
            km = rng.uniform(0, MIN_RIDE_KM)  # below the floor
        else:
            km = rng.uniform(0.1, 60.0)
        rides.append((rng.choice(companies), km))
    total = rng.randint(0, 20_000)
    if rng.random() < 0.25:
        total = -total  # a reversal's amount
    return total, rides


def _exact_sum(values: list[float]) -> Fraction:
    """The exact sum of floats (their denominators are powers of two)."""
    ratios = [v.as_integer_ratio() for v in values]
    den = max(d for _, d in ratios)
    return Fraction(sum(n * (den // d) for n, d in ratios), den)


def _exact_weights(rides: list[tuple[str | None, float]], rule: str) -> dict[str, Fraction]:
    """The companies' weights as exact rationals, computed independently of the module."""
    per_company: dict[str, list[float]] = {}
    for company, km in rides:
        w = 1.0 if rule == "rides" else max(km, MIN_RIDE_KM)  # exact: picks one of the two
        per_company.setdefault(company or UNASSIGNED, []).append(w)
    return {c: _exact_sum(w) for c, w in per_company.items()}


def test_property_parts_add_up_stay_within_a_cent_and_are_deterministic():
    rng = random.Random(20261115)
    shuffle = random.Random(7)
    for n in range(10_000):
        total, rides = _random_month(rng)
        rule = "rides" if n % 3 == 0 else "passenger_km"
        shares = apportion(total, rides, rule)
        where = f"month {n}: total {total}, {len(rides)} rides, rule {rule}"
        # To the cent.
        assert sum(s.amount_cents for s in shares) == total, where
        # One part per company that carried a ride, in name order.
        companies = sorted({c or UNASSIGNED for c, _ in rides})
        assert [s.company for s in shares] == companies, where
        # Within one cent of the exact proportional share (strictly, against the weights
        # the split used; at most one against exact rational sums of the rides' weights).
        used = company_weights(rides, rule)
        used_sum = sum(Fraction(w) for w in used.values())
        exact = _exact_weights(rides, rule)
        exact_sum = sum(exact.values())
        for s in shares:
            assert abs(s.amount_cents - total * Fraction(used[s.company]) / used_sum) < 1, where
            assert abs(s.amount_cents - total * exact[s.company] / exact_sum) <= 1, where
        # Largest remainder: whoever got the extra cent had no smaller remainder.
        if total > 0:
            quotas = {c: total * Fraction(used[c]) / used_sum for c in used}
            ups = [s for s in shares if s.amount_cents > math.floor(quotas[s.company])]
            downs = [s for s in shares if s.amount_cents == math.floor(quotas[s.company])]
            assert len(ups) + len(downs) == len(shares), where
            if ups and downs:
                rem = {c: q - math.floor(q) for c, q in quotas.items()}
                assert min(rem[s.company] for s in ups) >= max(rem[s.company] for s in downs)
        # Deterministic: the same again, whatever the order of the rides; the negated total
        # gives the negated parts.
        assert apportion(total, rides, rule) == shares, where
        reordered = rides[:]
        shuffle.shuffle(reordered)
        assert apportion(total, reordered, rule) == shares, where
        negated = apportion(-total, rides, rule)
        assert [s.amount_cents for s in negated] == [-s.amount_cents for s in shares], where


# --- distances ------------------------------------------------------------------------------


def test_ride_km_is_the_straight_line_between_the_tariffs_stops():
    tariff = fare_engine.load_tariff(apportionment.STOPS_TARIFF)
    a, b = tariff.stop(RIDE_STOPS[0]), tariff.stop(RIDE_STOPS[7])
    km = ride_km(RIDE_STOPS[0], RIDE_STOPS[7])
    assert km == distance_m(a.lat, a.lon, b.lat, b.lon) / 1000
    assert 1 < km < 100
    assert ride_km(RIDE_STOPS[7], RIDE_STOPS[0]) == pytest.approx(km)
    assert ride_km(RIDE_STOPS[3], RIDE_STOPS[3]) == 0.0
    assert ride_km("de:0:unknown", RIDE_STOPS[0]) == 0.0  # weighs MIN_RIDE_KM


def test_the_split_rule_is_a_setting(monkeypatch):
    assert Settings().revenue_split_rule == "passenger_km"
    monkeypatch.setenv("BIBO_REVENUE_SPLIT_RULE", "rides")
    assert Settings().revenue_split_rule == "rides"
    apportionment.configured_rule.cache_clear()
    try:
        assert apportionment.configured_rule() == "rides"
    finally:
        apportionment.configured_rule.cache_clear()
    monkeypatch.setenv("BIBO_REVENUE_SPLIT_RULE", "seats")
    with pytest.raises(ValidationError, match="revenue_split_rule"):
        Settings()


# --- shares in the database (SQLite and PostgreSQL) -----------------------------------------


@pytest.fixture
def fleet(engine: Engine) -> dict[str, str | None]:
    """Vehicles of RLG and VKU and one without a company."""
    fleet = {"RLG-1": "RLG", "RLG-2": "RLG", "VKU-1": "VKU", "BUS-9": None}
    with transaction(make_sessionmaker(engine)) as session:
        for vehicle_id, company in fleet.items():
            ingest_service.register_vehicle(session, vehicle_id, company=company)
    return fleet


def _charge(session: Session, cents: int, month: str = MONTH) -> models.LedgerEntry:
    explanation = json.dumps({"version": 2, "trips_fingerprint": "test"})
    return billing_repo.post_ledger_entry(
        session, PASSENGER, month, "charge", cents, explanation, NOW
    )


def _reverse(session: Session, entry: models.LedgerEntry) -> models.LedgerEntry:
    return billing_repo.post_ledger_entry(
        session,
        PASSENGER,
        entry.month,
        "reversal",
        -entry.amount_cents,
        json.dumps({"version": 1, "reason": "test"}),
        NOW,
        reverses=entry.entry_id,
    )


def _stored(session: Session, entry_id: int) -> dict[str, int]:
    return {c: cents for c, cents, _ in billing_repo.revenue_shares(session, entry_id)}


RIDES = [
    ("RLG-1", RIDE_STOPS[0], RIDE_STOPS[7]),
    ("RLG-2", RIDE_STOPS[7], RIDE_STOPS[0]),
    ("VKU-1", RIDE_STOPS[1], RIDE_STOPS[4]),
    ("BUS-9", RIDE_STOPS[2], RIDE_STOPS[2]),  # same stop: weighs MIN_RIDE_KM
    ("GONE-7", RIDE_STOPS[0], RIDE_STOPS[1]),  # not registered: unassigned
]


@contextmanager
def _statements(engine: Engine) -> Iterator[list[str]]:
    seen: list[str] = []

    def count(_conn, _cursor, statement, _params, _context, _executemany):
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", count)


def test_charge_shares_add_up_to_the_charge_in_two_statements(engine, fleet):
    with transaction(make_sessionmaker(engine)) as session:
        entry = _charge(session, 1999)
        with _statements(engine) as seen:
            shares = record_charge_shares(session, entry, RIDES, rule="passenger_km")
        assert len(seen) == 2, seen  # the vehicles' companies, one INSERT of the shares
        entry_id = entry.entry_id
    km = {
        "RLG": 2 * ride_km(RIDE_STOPS[0], RIDE_STOPS[7]),
        "VKU": ride_km(RIDE_STOPS[1], RIDE_STOPS[4]),
        UNASSIGNED: MIN_RIDE_KM + ride_km(RIDE_STOPS[0], RIDE_STOPS[1]),
    }
    assert [s.company for s in shares] == ["RLG", "VKU", UNASSIGNED]
    for s in shares:
        assert s.passenger_km == pytest.approx(km[s.company])
        assert abs(s.amount_cents - 1999 * km[s.company] / sum(km.values())) < 1
    with make_sessionmaker(engine)() as session:
        stored = _stored(session, entry_id)
        assert stored == {s.company: s.amount_cents for s in shares}
        assert sum(stored.values()) == 1999
        months = session.scalars(
            select(models.RevenueShare.month).where(models.RevenueShare.entry_id == entry_id)
        )
        assert set(months) == {MONTH}


def test_the_rides_rule_weighs_every_ride_alike(engine, fleet):
    with transaction(make_sessionmaker(engine)) as session:
        entry = _charge(session, 1000)
        shares = record_charge_shares(session, entry, RIDES, rule="rides")
    assert {s.company: s.amount_cents for s in shares} == {
        "RLG": 400,
        "VKU": 200,
        UNASSIGNED: 400,
    }


def test_zero_charges_get_zero_shares_with_their_passenger_km(engine, fleet):
    with transaction(make_sessionmaker(engine)) as session:
        entry = _charge(session, 0)
        shares = record_charge_shares(session, entry, RIDES[:3])
        assert [(s.company, s.amount_cents) for s in shares] == [("RLG", 0), ("VKU", 0)]
        assert _stored(session, entry.entry_id) == {"RLG": 0, "VKU": 0}


def test_a_reversal_takes_back_the_charges_parts(engine, fleet):
    with transaction(make_sessionmaker(engine)) as session:
        charge = _charge(session, 2345)
        record_charge_shares(session, charge, RIDES)
        reversal = _reverse(session, charge)
        with _statements(engine) as seen:
            negated = record_reversal_shares(session, reversal, charge.entry_id)
        assert len(seen) == 2, seen  # the charge's shares, one INSERT
        charged = _stored(session, charge.entry_id)
        taken_back = _stored(session, reversal.entry_id)
    assert taken_back == {c: -cents for c, cents in charged.items()}
    assert sum(taken_back.values()) == -2345
    assert [s.amount_cents for s in negated] == [taken_back[s.company] for s in negated]


def test_reversing_a_charge_without_shares_writes_none(engine, fleet):
    with transaction(make_sessionmaker(engine)) as session:
        legacy = _charge(session, 500)  # posted before apportionment
        reversal = _reverse(session, legacy)
        assert record_reversal_shares(session, reversal, legacy.entry_id) == []
        assert _stored(session, reversal.entry_id) == {}


def test_misuse_is_refused(engine, fleet):
    with transaction(make_sessionmaker(engine)) as session:
        charge = _charge(session, 100)
        record_charge_shares(session, charge, RIDES)
        reversal = _reverse(session, charge)
        with pytest.raises(ValueError, match="not a charge"):
            record_charge_shares(session, reversal, RIDES)
        with pytest.raises(ValueError, match="reverses"):
            record_reversal_shares(session, reversal, charge.entry_id + 1000)
        wrong = billing_repo.post_ledger_entry(
            session, PASSENGER, MONTH, "reversal", -99, "{}", NOW, reverses=charge.entry_id
        )
        with pytest.raises(ValueError, match="does not negate"):
            record_reversal_shares(session, wrong, charge.entry_id)
        with pytest.raises(ValueError, match="no rides"):
            record_charge_shares(session, _charge(session, 5), [])


def _ledger_total(session: Session, month: str) -> int:
    e = models.LedgerEntry
    return int(session.scalar(select(func.sum(e.amount_cents)).where(e.month == month)) or 0)


def test_the_report_adds_up_to_the_ledger_with_reversals_and_old_entries(engine, fleet):
    with transaction(make_sessionmaker(engine)) as session:
        legacy = _charge(session, 700)  # before apportionment: no shares
        first = _charge(session, 1999)
        record_charge_shares(session, first, RIDES)
        record_reversal_shares(session, _reverse(session, first), first.entry_id)
        second = _charge(session, 1500)
        record_charge_shares(session, second, RIDES[:3])
        record_reversal_shares(session, _reverse(session, legacy), legacy.entry_id)
        record_charge_shares(session, _charge(session, 300, "2026-10"), RIDES)  # another month
        second_shares = _stored(session, second.entry_id)
    with make_sessionmaker(engine)() as session:
        report = revenue_report(session, MONTH)
        assert revenue_by_company(session, MONTH) == report.companies
        ledger = _ledger_total(session, MONTH)
    rows = {c.company: c for c in report.companies}
    assert list(rows) == ["RLG", "VKU", UNASSIGNED, UNAPPORTIONED]
    assert report.ledger_total_cents == ledger == 1500
    assert report.total_cents == sum(c.net_cents for c in report.companies) == ledger
    assert report.balanced
    assert report.ledger_entries == 5
    for c in report.companies:
        assert c.net_cents == c.charged_cents + c.reversed_cents
    # The first charge and its reversal cancel per company; the second charge stays.
    assert rows["RLG"].net_cents == second_shares["RLG"]
    assert rows["VKU"].net_cents == second_shares["VKU"]
    assert rows[UNASSIGNED].net_cents == 0
    assert rows[UNASSIGNED].charged_cents > 0
    assert rows[UNASSIGNED].reversed_cents == -rows[UNASSIGNED].charged_cents
    assert rows[UNASSIGNED].passenger_km == 0.0  # charged and reversed
    assert rows["RLG"].passenger_km == pytest.approx(
        2 * ride_km(RIDE_STOPS[0], RIDE_STOPS[7]), abs=1e-3
    )
    assert rows["RLG"].entries == 3  # first, its reversal, second
    assert rows[UNAPPORTIONED] == apportionment.CompanyRevenue(UNAPPORTIONED, 700, -700, 0, 0.0, 2)
    with make_sessionmaker(engine)() as session:
        october = revenue_report(session, "2026-10")
        empty = revenue_report(session, "2026-09")
    assert october.balanced
    assert october.total_cents == 300
    assert empty.companies == []
    assert empty.balanced
    assert empty.ledger_total_cents == 0


def test_the_report_notices_shares_that_do_not_match_the_ledger(engine, fleet, caplog):
    with transaction(make_sessionmaker(engine)) as session:
        entry = _charge(session, 1000)
        billing_repo.add_revenue_shares(
            session,
            [
                {
                    "entry_id": entry.entry_id,
                    "company": "RLG",
                    "month": MONTH,
                    "amount_cents": 999,
                    "passenger_km": 1.0,
                }
            ],
        )
    with make_sessionmaker(engine)() as session:
        report = revenue_report(session, MONTH)
    assert not report.balanced
    assert report.total_cents == 999
    assert report.ledger_total_cents == 1000
    assert "does not add up" in caplog.text


def test_a_vehicles_company_can_change(engine, fleet):
    with transaction(make_sessionmaker(engine)) as session:
        ingest_service.set_vehicle_company(session, "BUS-9", "VKU")
        ingest_service.set_vehicle_company(session, "RLG-2", None)
        companies = billing_repo.vehicle_companies(session, ["BUS-9", "RLG-2", "GONE-7"])
        assert companies == {"BUS-9": "VKU", "RLG-2": None}
        with pytest.raises(LookupError, match="not registered"):
            ingest_service.set_vehicle_company(session, "GONE-7", "RLG")
        with pytest.raises(ValueError, match="upper-case"):
            ingest_service.set_vehicle_company(session, "BUS-9", "vku")
        with pytest.raises(ValueError, match="upper-case"):
            ingest_service.register_vehicle(session, "NEW-1", company="X" * 17)


# --- billing as a whole: whatever billing wrote, the month adds up ---------------------------


def test_billed_months_add_up_per_company(engine, riders, app):
    """After closing a month and a correction (a reversal and a new charge), the report of
    the month equals the ledger, and every entry with shares is split to the cent."""
    sessions = make_sessionmaker(engine)
    with transaction(sessions) as session:
        ingest_service.set_vehicle_company(session, "RLG-4711", "RLG")
        billing_service.close_month(session, MONTH, NOW)
        trip = billing_service.effective_trips(
            session, riders[0].passenger_id, dt.date(2026, 11, 3), dt.date(2026, 11, 3)
        )[0]
    with transaction(sessions) as session:
        correct_trip(session, trip.trip_id, 1, "left early", NOW, alight_stop_id=RIDE_STOPS[4])
    with sessions() as session:
        report = revenue_report(session, MONTH)
        entries = billing_repo.ledger_entries(session, riders[0].passenger_id)
        kinds = Counter(e.kind for e in entries)
        for e in entries:
            shares = _stored(session, e.entry_id)
            if shares:
                assert sum(shares.values()) == e.amount_cents
                assert set(shares) <= {"RLG"}
        ledger = _ledger_total(session, MONTH)
    assert kinds["reversal"] >= 1
    assert report.balanced
    assert report.total_cents == ledger > 0
    assert {c.company for c in report.companies} <= {"RLG", UNAPPORTIONED}


# --- the API --------------------------------------------------------------------------------


@pytest.fixture
def billed(engine, fleet) -> int:
    """A month with a charge, its reversal and a new charge; returns the ledger total."""
    with transaction(make_sessionmaker(engine)) as session:
        first = _charge(session, 1999)
        record_charge_shares(session, first, RIDES)
        record_reversal_shares(session, _reverse(session, first), first.entry_id)
        record_charge_shares(session, _charge(session, 1234), RIDES[:3])
    return 1234


async def test_a_viewer_reads_the_revenue_per_company(client, operators, billed):
    viewer = {"Authorization": f"Bearer {operators['viewer']}"}
    r = await client.get(f"/v1/revenue?month={MONTH}", headers=viewer)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["month"] == MONTH
    assert body["ledger_total_cents"] == body["total_cents"] == billed
    assert body["balanced"] is True
    assert body["ledger_entries"] == 3
    companies = {c["company"]: c for c in body["companies"]}
    assert list(companies) == ["RLG", "VKU", UNASSIGNED]
    assert sum(c["net_cents"] for c in body["companies"]) == billed
    assert companies[UNASSIGNED]["net_cents"] == 0
    assert companies["RLG"]["charged_cents"] > companies["RLG"]["net_cents"] > 0

    export = await client.get(f"/v1/revenue.csv?month={MONTH}", headers=viewer)
    assert export.status_code == 200
    assert export.headers["content-type"].startswith("text/csv")
    assert f'filename="revenue-{MONTH}.csv"' in export.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(export.text)))
    assert list(rows[0]) == [
        "month",
        "company",
        "charged_cents",
        "reversed_cents",
        "net_cents",
        "passenger_km",
        "entries",
    ]
    assert [r["company"] for r in rows] == ["RLG", "VKU", UNASSIGNED]
    assert sum(int(r["net_cents"]) for r in rows) == billed
    assert {r["month"] for r in rows} == {MONTH}


@pytest.mark.parametrize("path", ["/v1/revenue", "/v1/revenue.csv"])
async def test_revenue_needs_an_operator_not_a_passenger(client, operators, riders, path):
    url = f"{path}?month={MONTH}"
    assert (await client.get(url)).status_code == 401
    assert (await client.get(url, headers=riders[0].auth)).status_code == 401
    for role in ("viewer", "agent", "admin"):
        headers = {"Authorization": f"Bearer {operators[role]}"}
        assert (await client.get(url, headers=headers)).status_code == 200


@pytest.mark.parametrize("month", ["2026-13", "2026-1", "26-11", "2026-11-01", "١٩٩٩-١١", ""])
async def test_revenue_validates_the_month(client, operators, month):
    headers = {"Authorization": f"Bearer {operators['viewer']}"}
    for path in ("/v1/revenue", "/v1/revenue.csv"):
        r = await client.get(path, params={"month": month}, headers=headers)
        assert r.status_code == 422, (path, month, r.text)
    assert (await client.get("/v1/revenue", headers=headers)).status_code == 422
    with pytest.raises(ValueError, match="month"):
        revenue_by_company(None, month)  # type: ignore[arg-type]
