"""Kurzstrecke (K): boarding stop + up to 4 further stops, by bus only, 1,20 €.

The level follows from the ride, not from the towns: the trip says how many stops it
travelled (`stops_travelled`, from the vehicle journey's stop sequence). On line R61,
Soest Bf -> Bad Sassendorf Kurpark is 3 stops but crosses a town border (level 3).
"""

from __future__ import annotations

from fare_engine import best_price, quote
from tests.fare_engine.conftest import (
    SASSENDORF_BF,
    SASSENDORF_KURPARK,
    SOEST_BF,
    SOEST_MARKT,
    at,
    bought,
    trip,
)


def test_three_stops_by_bus_is_a_kurzstrecke_even_across_a_town_border(tariff):
    bill = best_price(
        [trip(SOEST_BF, SASSENDORF_KURPARK, "2026-03-02 07:00", stops_travelled=3)], tariff
    )
    assert bought(bill) == [("einzel", "K", 120, [0])]
    assert bill.trips[0].level == "3"  # its own level by towns; K is cheaper


def test_four_further_stops_still_count(tariff):
    bill = best_price(
        [trip(SOEST_BF, SASSENDORF_KURPARK, "2026-03-02 07:00", stops_travelled=4)], tariff
    )
    assert bill.total_cents == 120


def test_five_stops_is_no_kurzstrecke(tariff):
    bill = best_price(
        [trip(SOEST_BF, SASSENDORF_KURPARK, "2026-03-02 07:00", stops_travelled=5)], tariff
    )
    assert bought(bill) == [("einzel", "3", 440, [0])]


def test_without_the_stop_count_the_kurzstrecke_is_not_offered(tariff):
    bill = best_price([trip(SOEST_BF, SOEST_MARKT, "2026-03-02 07:00")], tariff)
    assert bought(bill) == [("einzel", "A", 310, [0])]


def test_kurzstrecke_is_for_buses_only(tariff):
    ride = trip(SOEST_BF, SOEST_MARKT, "2026-03-02 07:00", stops_travelled=1, mode="tram")
    assert best_price([ride], tariff).total_cents == 310


def test_kurzstrecke_allows_no_change(tariff):
    # Two short rides in a row are two Kurzstrecken (2,40 €), not one ticket.
    trips = [
        trip(SOEST_BF, SOEST_MARKT, "2026-03-02 07:00", minutes=5, stops_travelled=1),
        trip(SOEST_MARKT, SASSENDORF_KURPARK, "2026-03-02 07:10", minutes=8, stops_travelled=2),
    ]
    assert bought(best_price(trips, tariff)) == [
        ("einzel", "K", 120, [0]),
        ("einzel", "K", 120, [1]),
    ]


def test_child_kurzstrecke(tariff):
    ride = trip(SOEST_BF, SASSENDORF_BF, "2026-03-02 07:00", rider="child", stops_travelled=4)
    assert best_price([ride], tariff).total_cents == 70


def test_quote_gives_the_kurzstrecke_when_told_the_stops(tariff):
    q = quote(
        tariff, SOEST_BF, SASSENDORF_KURPARK, at("2026-03-02 07:00"), "adult", stops_travelled=3
    )
    assert (q.level, q.price_cents, q.validity_minutes) == ("K", 120, 90)
