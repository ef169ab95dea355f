"""Billing periods that follow the tariff: trips billed in the local calendar month they
board in, passes running across month ends, and the month-by-month charges adding up to
the best price of all trips (against the fare engine and the brute-force oracle)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import json
import random
from collections.abc import Iterator
from zoneinfo import ZoneInfo

import pytest

import fare_engine
import fare_engine.geo as fare_engine_geo
from backend import models
from backend.billing import repository as billing_repo
from backend.billing import service as billing_service
from backend.db import make_sessionmaker, transaction
from backend.passengers import service as passengers_service
from backend.timeutil import service_day_of
from tests.fare_engine import oracle

BERLIN = ZoneInfo("Europe/Berlin")
UNNA = "de:05978:2001"  # Unna, Bahnhof
KAMEN = "de:05978:2005"  # Kamen, Bahnhof
SOEST = [f"de:05974:10{k:02d}" for k in range(1, 11)]
_ids = itertools.count()


def at(year: int, month: int, day: int, hour: int, minute: int = 0) -> int:
    return int(dt.datetime(year, month, day, hour, minute, tzinfo=BERLIN).timestamp() * 1000)


def effective(board: int, start: str, end: str, minutes: int = 15) -> billing_service.EffectiveTrip:
    n = next(_ids)
    return billing_service.EffectiveTrip(
        trip_id=f"t{n:06d}",
        service_day=service_day_of(board),
        device_id="d",
        passenger_id="p",
        vehicle_id="v",
        journey_id=f"j{n}",
        line="R1",
        board_stop_id=start,
        board_time=board,
        alight_stop_id=end,
        alight_time=board + minutes * 60_000,
        confidence=1.0,
        status="closed",
        chain_id=None,
        stops_travelled=None,
        corrected=False,
    )


def add_trips(session, passenger_id: str, trips: list[billing_service.EffectiveTrip]) -> None:
    for t in trips:
        session.add(
            models.Trip(
                trip_id=f"{passenger_id[:8]}-{t.trip_id}",
                service_day=t.service_day,
                device_id=t.device_id,
                passenger_id=passenger_id,
                vehicle_id=t.vehicle_id,
                journey_id=t.journey_id,
                line=t.line,
                board_stop_id=t.board_stop_id,
                board_time=t.board_time,
                alight_stop_id=t.alight_stop_id,
                alight_time=t.alight_time,
                confidence=t.confidence,
                stops_travelled=t.stops_travelled,
                status="closed",
            )
        )
    session.flush()


def weekdays(first: dt.date, last: dt.date) -> Iterator[dt.date]:
    day = first
    while day <= last:
        if day.weekday() < 5:
            yield day
        day += dt.timedelta(days=1)


def commute(days: Iterator[dt.date]) -> list[billing_service.EffectiveTrip]:
    trips = []
    for d in days:
        trips.append(effective(at(d.year, d.month, d.day, 7, 30), UNNA, KAMEN))
        trips.append(effective(at(d.year, d.month, d.day, 17), KAMEN, UNNA))
    return trips


def month_charges(
    trips: list[billing_service.EffectiveTrip], months: list[str], rider: str = "adult"
) -> list[int]:
    """Each month's charge by the backend's rule, from the trips known at its end."""
    charges = []
    for month in months:
        start, end = billing_service.month_bounds(month)
        known = [t for t in trips if t.board_time < end]
        charges.append(billing_service.price_between(known, start, rider).total_cents)
    return charges


def best(trips: list[billing_service.EffectiveTrip], rider: str = "adult") -> int:
    return billing_service.price(trips, rider).total_cents if trips else 0


def test_a_commute_across_a_month_end_pays_one_bill_over_both_months(engine):
    """Unna <-> Kamen every weekday from 28 January to 26 February: January's invoice
    stays as issued, February pays what one bill over both months adds to it."""
    trips = commute(weekdays(dt.date(2026, 1, 28), dt.date(2026, 2, 26)))
    january = [t for t in trips if t.board_time < billing_service.month_bounds("2026-02")[0]]
    february = trips[len(january) :]
    sessions = make_sessionmaker(engine)
    with transaction(sessions) as session:
        rider = passengers_service.register_passenger(session, "adult").passenger_id
        add_trips(session, rider, trips)
    with transaction(sessions) as session:
        (jan_invoice,) = billing_service.close_month(
            session, "2026-01", dt.datetime(2026, 2, 2, 12, tzinfo=dt.UTC)
        )
    with transaction(sessions) as session:
        (feb_invoice,) = billing_service.close_month(
            session, "2026-02", dt.datetime(2026, 3, 2, 12, tzinfo=dt.UTC)
        )
        latest = billing_repo.latest_invoice(session, rider, "2026-01")
        assert latest is not None
        assert (latest.invoice_id, latest.version) == (jan_invoice.invoice_id, 1)
        assert billing_repo.ledger_balance(session, rider, "2026-01") == jan_invoice.total_cents

    assert jan_invoice.total_cents == best(january)
    assert jan_invoice.total_cents + feb_invoice.total_cents == best(trips)
    # Each month priced alone (the old rule) charges more.
    assert best(trips) < best(january) + best(february)
    document = json.loads(feb_invoice.document)
    assert len(document["trips"]) == len(february)
    assert document["earlier"]["trips"] == len(january)
    assert document["earlier"]["credit_cents"] == jan_invoice.total_cents
    (spanning,) = [p for p in document["bill"]["products"] if p["earlier_trips"]]
    assert spanning["valid_from"] < billing_service.month_bounds("2026-02")[0]
    shown = sum(p["price_cents"] for p in document["bill"]["products"])
    assert shown - document["earlier"]["credit_cents"] == feb_invoice.total_cents


def test_a_ride_at_0130_on_the_first_is_billed_in_the_new_month(engine):
    """A Deutschlandticket rider's ride at 01:30 on 1 February (service day 31 January)
    belongs to February, where February's Deutschlandticket pays for it."""
    days = [dt.date(2026, 1, 2) + dt.timedelta(days=k) for k in range(55)]
    trips = commute(iter(days))
    trips.append(effective(at(2026, 2, 1, 1, 30), KAMEN, UNNA))
    trips.sort(key=lambda t: t.board_time)
    assert service_day_of(at(2026, 2, 1, 1, 30)) == dt.date(2026, 1, 31)
    sessions = make_sessionmaker(engine)
    with transaction(sessions) as session:
        rider = passengers_service.register_passenger(session, "adult").passenger_id
        add_trips(session, rider, trips)
    with transaction(sessions) as session:
        (jan,) = billing_service.close_month(
            session, "2026-01", dt.datetime(2026, 2, 2, 12, tzinfo=dt.UTC)
        )
        (feb,) = billing_service.close_month(
            session, "2026-02", dt.datetime(2026, 3, 2, 12, tzinfo=dt.UTC)
        )
    ruhr_lippe = fare_engine.load_tariff("ruhr_lippe_2026")
    dticket = ruhr_lippe.price(ruhr_lippe.calendar_month_products()[0], None, "adult")
    assert dticket is not None
    assert jan.total_cents == feb.total_cents == dticket.cents
    late = at(2026, 2, 1, 1, 30)
    assert [t["board_time"] for t in json.loads(feb.document)["trips"]].count(late) == 1


def _near_month_ends(rng: random.Random, n: int) -> list[billing_service.EffectiveTrip]:
    """Trips around the January or the February month end, at any hour, between three
    places (so a TagesTicket24 or an eezy 24 h cap may span the month end)."""
    trips: list[billing_service.EffectiveTrip] = []
    edge = at(2026, rng.choice([2, 3]), 1, 0)
    reach = rng.choice([20, 30, 60]) * 60
    places = rng.sample([UNNA, KAMEN, *SOEST[:3]], 3)
    for _ in range(n):
        board = edge + rng.randrange(-reach, reach) * 60_000
        start, end = rng.sample(places, 2)
        trips.append(effective(board, start, end, rng.randrange(5, 40)))
    trips.sort(key=lambda t: t.board_time)
    # Trips must not overlap: shift each after the previous one's alighting.
    out: list[billing_service.EffectiveTrip] = []
    for t in trips:
        if out and t.board_time < out[-1].alight_time:
            t = effective(out[-1].alight_time + 60_000, t.board_stop_id, t.alight_stop_id)
        out.append(t)
    return out


@pytest.mark.parametrize("seed", range(60))
def test_month_charges_add_up_to_the_oracle_best_price(seed):
    """Over consecutive months the charges sum to the brute-force best price of all the
    trips (so no later month is overcharged for what an earlier one bought), and none is
    negative."""
    rng = random.Random(seed)
    trips = _near_month_ends(rng, rng.randrange(2, oracle.MAX_TRIPS + 1))
    rider = rng.choice(["adult", "child"])
    charges = month_charges(trips, ["2026-01", "2026-02", "2026-03"], rider)
    assert all(c >= 0 for c in charges)
    fares = billing_service.fare_trips(trips, rider)
    assert sum(charges) == oracle.best_total(fares, fare_engine.default_tariffs())


@pytest.mark.parametrize("seed", range(12))
def test_month_charges_over_a_year_of_riding_telescope_to_one_bill(seed):
    """Commuters, occasional riders and long breaks (chains cut at gaps longer than any
    product) over ten months: the months' charges add up to the engine's exact best price
    of all trips."""
    rng = random.Random(1000 + seed)
    trips: list[billing_service.EffectiveTrip] = []
    day = dt.date(2026, 1, 1) + dt.timedelta(days=rng.randrange(20))
    while day < dt.date(2026, 10, 31):
        if rng.random() < 0.03:
            day += dt.timedelta(days=rng.randrange(25, 45))  # a holiday
            continue
        if rng.random() < 0.55:
            a, b = rng.sample([UNNA, KAMEN, SOEST[0], SOEST[4]], 2)
            trips.append(effective(at(day.year, day.month, day.day, 7, rng.randrange(60)), a, b))
            if rng.random() < 0.8:
                trips.append(effective(at(day.year, day.month, day.day, 17), b, a))
        day += dt.timedelta(days=1)
    months = [f"2026-{m:02d}" for m in range(1, 11)]
    charges = month_charges(trips, months)
    assert all(c >= 0 for c in charges)
    assert sum(charges) == best(trips)


def test_a_gap_longer_than_any_product_starts_a_new_chain():
    before = effective(at(2026, 3, 2, 8), UNNA, KAMEN)
    after = effective(before.board_time + billing_service.horizon_ms(), KAMEN, UNNA)
    close = effective(after.board_time - 1 - 60 * 60_000, KAMEN, UNNA)
    assert billing_service.chain_start([before, after], 1) == 1
    assert billing_service.chain_start([before, close, after], 2) == 0


def test_the_random_instances_do_buy_products_across_month_ends():
    """The oracle test above is not vacuous: in many of its instances one product pays for
    rides of two months (pricing each month alone would cost more)."""
    spanning = 0
    for seed in range(60):
        rng = random.Random(seed)
        trips = _near_month_ends(rng, rng.randrange(2, oracle.MAX_TRIPS + 1))
        rider = rng.choice(["adult", "child"])
        months = ["2026-01", "2026-02", "2026-03"]
        alone = 0
        for month in months:
            start, end = billing_service.month_bounds(month)
            alone += best([t for t in trips if start <= t.board_time < end], rider)
        spanning += alone > sum(month_charges(trips, months, rider))
    assert spanning >= 8


def test_eezy_with_a_change_is_one_check_in_when_reconciliation_chained_the_rides():
    """Soest Bahnhof -> Markt, change, -> Thomästraße: the two rides of one transfer chain
    are one eezy check-in priced start to end; unchained they are priced ride by ride."""
    first = effective(at(2026, 5, 5, 8), SOEST[0], SOEST[1], 10)
    second = effective(first.alight_time + 5 * 60_000, SOEST[1], SOEST[3], 10)
    chained = [dataclasses.replace(t, chain_id=first.trip_id) for t in (first, second)]
    apart = billing_service.price([first, second], "adult")
    joined = billing_service.price(chained, "adult")
    (product,) = joined.products
    assert (product.product, product.covers) == ("eezy", [0, 1])
    eezy = fare_engine.load_tariff("eezy_westfalen_2026")
    start, end = eezy.stop(SOEST[0]), eezy.stop(SOEST[3])
    km = fare_engine_geo.started_km(
        fare_engine_geo.distance_m(start.lat, start.lon, end.lat, end.lon)
    )
    (fare,) = eezy.distance_products()
    assert product.price_cents == fare.base.cents + km * fare.per_started_km.cents
    assert joined.total_cents < apart.total_cents
