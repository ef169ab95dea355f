"""TagesTicket24: 24 hours from the first ride it covers, priced by level, valid in the
towns of the relation it is bought for (A: the town, 3: the two neighbouring towns,
4: the Kreis, 5: Ruhr-Lippe)."""

from __future__ import annotations

from fare_engine import best_price
from tests.fare_engine.conftest import (
    LIPPSTADT_BF,
    SASSENDORF_KURPARK,
    SOEST_BF,
    SOEST_MARKT,
    SOEST_THOMAE,
    UNNA_BF,
    at,
    bought,
    trip,
)


def test_three_rides_in_town_buy_a_tagesticket24_for_the_town(tariff):
    trips = [
        trip(SOEST_BF, SOEST_MARKT, "2026-03-03 08:00"),
        trip(SOEST_MARKT, SOEST_THOMAE, "2026-03-03 12:00"),
        trip(SOEST_THOMAE, SOEST_BF, "2026-03-03 17:00"),
    ]
    bill = best_price(trips, tariff)
    assert bill.singles_total_cents == 3 * 310
    assert bought(bill) == [("tagesticket24", "A", 540, [0, 1, 2])]
    (product,) = bill.products
    assert product.scope == "Soest"
    assert (product.valid_from, product.valid_to) == (
        at("2026-03-03 08:00"),
        at("2026-03-04 08:00"),
    )


def test_valid_24_hours_from_first_use_not_per_calendar_day(tariff):
    trips = [
        trip(SOEST_BF, SOEST_MARKT, "2026-03-03 20:00"),
        trip(SOEST_MARKT, SOEST_THOMAE, "2026-03-04 07:00"),
        trip(SOEST_THOMAE, SOEST_BF, "2026-03-04 19:59"),
    ]
    assert bought(best_price(trips, tariff)) == [("tagesticket24", "A", 540, [0, 1, 2])]


def test_a_ride_after_the_24_hours_is_not_covered(tariff):
    trips = [
        trip(SOEST_BF, SOEST_MARKT, "2026-03-03 20:00"),
        trip(SOEST_MARKT, SOEST_THOMAE, "2026-03-03 22:00"),
        trip(SOEST_THOMAE, SOEST_BF, "2026-03-04 20:00"),  # 24 h after the first: too late
    ]
    bill = best_price(trips, tariff)
    # One TagesTicket24 for two of the rides and an EinzelTicket for the third;
    # no single TagesTicket24 reaches from 20:00 to 20:00 the next day.
    assert bill.total_cents == 540 + 310
    assert sorted(p.product for p in bill.products) == ["einzel", "tagesticket24"]


def test_neighbouring_towns_buy_level_3_valid_in_both(tariff):
    # Soest -> Bad Sassendorf and back (level 3) plus a ride inside Soest.
    trips = [
        trip(SOEST_BF, SASSENDORF_KURPARK, "2026-03-03 08:00"),
        trip(SASSENDORF_KURPARK, SOEST_MARKT, "2026-03-03 13:00"),
        trip(SOEST_MARKT, SOEST_BF, "2026-03-03 17:00"),
    ]
    bill = best_price(trips, tariff)
    assert bill.singles_total_cents == 440 + 440 + 310
    assert bought(bill) == [("tagesticket24", "3", 770, [0, 1, 2])]
    assert bill.products[0].scope == "Bad Sassendorf + Soest"


def test_a_day_in_the_kreis_buys_level_4_for_the_kreis(tariff):
    trips = [
        trip(SOEST_BF, LIPPSTADT_BF, "2026-03-03 08:00", minutes=40),
        trip(LIPPSTADT_BF, SOEST_BF, "2026-03-03 17:00", minutes=40),
    ]
    bill = best_price(trips, tariff)
    assert bill.singles_total_cents == 2 * 620
    assert bought(bill) == [("tagesticket24", "4", 1080, [0, 1])]
    assert bill.products[0].scope == "Kreis Soest"


def test_a_ride_outside_the_scope_is_paid_on_its_own(tariff):
    # The town ticket for Soest does not cover Soest -> Unna (level 5, another Kreis).
    trips = [
        trip(SOEST_BF, SOEST_MARKT, "2026-03-03 08:00"),
        trip(SOEST_MARKT, SOEST_THOMAE, "2026-03-03 10:00"),
        trip(SOEST_THOMAE, UNNA_BF, "2026-03-03 15:00", minutes=50),
    ]
    assert bought(best_price(trips, tariff)) == [
        ("tagesticket24", "A", 540, [0, 1]),
        ("einzel", "5", 800, [2]),
    ]


def test_child_tagesticket24(tariff):
    trips = [
        trip(SOEST_BF, SOEST_MARKT, "2026-03-03 08:00", rider="child"),
        trip(SOEST_MARKT, SOEST_THOMAE, "2026-03-03 12:00", rider="child"),
    ]
    bill = best_price(trips, tariff)
    assert bill.singles_total_cents == 2 * 190
    assert bought(bill) == [("tagesticket24", "A", 320, [0, 1])]
