"""The Deutschlandticket (63 € per calendar month, Europe/Berlin) against everything else."""

from __future__ import annotations

from fare_engine import Trip, best_price
from tests.fare_engine.conftest import LIPPSTADT_BF, SOEST_BF, at, trip


def _commute(days: list[int], month: str = "2026-03") -> list[Trip]:
    trips = []
    for day in days:
        trips.append(trip(SOEST_BF, LIPPSTADT_BF, f"{month}-{day:02d} 07:00", minutes=40))
        trips.append(trip(LIPPSTADT_BF, SOEST_BF, f"{month}-{day:02d} 17:00", minutes=40))
    return trips


WORKDAYS_MARCH = [2, 3, 4, 5, 6, 9, 10, 11, 12, 13, 16, 17, 18, 19, 20, 23, 24, 25, 26, 27]


def test_heavy_month_buys_the_deutschlandticket(tariff):
    trips = _commute(WORKDAYS_MARCH)  # 40 level-4 rides = 248,00 € in EinzelTickets
    bill = best_price(trips, tariff)
    assert bill.singles_total_cents == 40 * 620
    assert bill.total_cents == 6300
    assert bill.saving_cents == 40 * 620 - 6300
    (product,) = bill.products
    assert product.product == "deutschlandticket"
    assert product.covers == list(range(40))
    assert product.valid_from == at("2026-03-01 00:00")
    assert product.valid_to == at("2026-04-01 00:00")


def test_light_month_buys_day_tickets_not_the_deutschlandticket(tariff):
    trips = _commute([2, 9, 16, 23, 30])  # five Mondays: 5 x TagesTicket24 level 4 = 54 €
    bill = best_price(trips, tariff)
    assert bill.total_cents == 5 * 1080
    assert {p.product for p in bill.products} == {"tagesticket24"}


def test_each_calendar_month_is_decided_on_its_own(tariff):
    heavy_march = _commute(WORKDAYS_MARCH)
    light_april = _commute([7, 14], month="2026-04")
    bill = best_price(heavy_march + light_april, tariff)
    assert bill.total_cents == 6300 + 2 * 1080
    assert [p.product for p in bill.products] == ["deutschlandticket"] + ["tagesticket24"] * 2


def test_month_follows_berlin_local_time(tariff):
    # 23:30 local on 31 Mar (21:30 UTC, CEST) belongs to March; 00:30 local on 1 Apr
    # (22:30 UTC on 31 Mar) already belongs to April.
    march = _commute(WORKDAYS_MARCH)
    late = trip(SOEST_BF, LIPPSTADT_BF, "2026-03-31 23:30", minutes=20)
    april = trip(LIPPSTADT_BF, SOEST_BF, "2026-04-01 00:30", minutes=40)
    bill = best_price([*march, late, april], tariff)
    dticket = bill.products[0]
    assert dticket.covers == list(range(41))
    assert bill.products[1].covers == [41]
    assert bill.total_cents == 6300 + 620
