"""7TageTicket and 30TageTicket: a freely chosen start day, valid from its 00:00 for 7 or 30
days, priced by level and scope like the TagesTicket24."""

from __future__ import annotations

import datetime as dt

from fare_engine import Trip, best_price
from tests.fare_engine.conftest import SOEST_BF, SOEST_MARKT, at, bought, trip


def _town_days(first: str, days: int, per_day: int = 2) -> list[Trip]:
    start = dt.date.fromisoformat(first)
    trips = []
    for k in range(days):
        day = (start + dt.timedelta(days=k)).isoformat()
        trips.append(trip(SOEST_BF, SOEST_MARKT, f"{day} 08:00"))
        if per_day > 1:
            trips.append(trip(SOEST_MARKT, SOEST_BF, f"{day} 17:00"))
    return trips


def test_a_week_of_town_rides_buys_a_7tageticket(tariff):
    # Mon-Sun, two rides a day: 14 EinzelTickets 43,40 €, 7 TagesTickets24 37,80 €.
    trips = _town_days("2026-03-02", 7)
    bill = best_price(trips, tariff)
    assert bill.singles_total_cents == 14 * 310
    assert bought(bill) == [("7tageticket", "A", 1690, list(range(14)))]
    (product,) = bill.products
    assert product.scope == "Soest"
    assert (product.valid_from, product.valid_to) == (
        at("2026-03-02 00:00"),
        at("2026-03-09 00:00"),
    )


def test_the_start_day_is_free_not_a_monday(tariff):
    trips = _town_days("2026-03-04", 7)  # Wednesday to Tuesday
    (product,) = best_price(trips, tariff).products
    assert product.product == "7tageticket"
    assert (product.valid_from, product.valid_to) == (
        at("2026-03-04 00:00"),
        at("2026-03-11 00:00"),
    )


def test_thirty_days_across_a_month_end_buy_a_30tageticket_not_two_deutschlandtickets(tariff):
    # 16 March to 14 April, rides every day in Soest: one 30TageTicket A (56,30 €) beats
    # the Deutschlandticket for March and April (126 €) and five 7TageTickets (84,50 €).
    trips = _town_days("2026-03-16", 30)
    bill = best_price(trips, tariff)
    assert bought(bill) == [("30tageticket", "A", 5630, list(range(60)))]
    (product,) = bill.products
    # 30 days from 16 March 00:00 (CET) to 15 April 00:00 (CEST): 30 days minus the DST hour.
    assert (product.valid_from, product.valid_to) == (
        at("2026-03-16 00:00"),
        at("2026-04-15 00:00"),
    )


def test_a_ride_after_the_seventh_day_is_not_covered(tariff):
    trips = [*_town_days("2026-03-02", 7), trip(SOEST_BF, SOEST_MARKT, "2026-03-09 00:00")]
    bill = best_price(trips, tariff)
    assert bought(bill) == [
        ("7tageticket", "A", 1690, list(range(14))),
        ("einzel", "A", 310, [14]),
    ]
