"""Changes of vehicle: one EinzelTicket covers the next rides within its validity and level.

`singles_total_cents` is the cheapest bill with EinzelTickets only, so these examples
read it where a TagesTicket24 would otherwise be the better buy.
"""

from __future__ import annotations

from fare_engine import best_price
from tests.fare_engine.conftest import (
    LIPPSTADT_BF,
    SASSENDORF_BF,
    SASSENDORF_KURPARK,
    SOEST_BF,
    SOEST_MARKT,
    SOEST_THOMAE,
    bought,
    trip,
)


def test_change_within_validity_inside_the_level_is_one_ticket(tariff):
    # Soest Bf -> Markt (A), change, Markt -> Thomästraße (A), within 90 min.
    trips = [
        trip(SOEST_BF, SOEST_MARKT, "2026-03-02 07:00", minutes=10),
        trip(SOEST_MARKT, SOEST_THOMAE, "2026-03-02 07:30", minutes=10),
    ]
    bill = best_price(trips, tariff)
    assert bought(bill) == [("einzel", "A", 310, [0, 1])]
    assert bill.singles_total_cents == 310


def test_change_after_validity_needs_a_new_ticket(tariff):
    trips = [
        trip(SOEST_BF, SOEST_MARKT, "2026-03-02 07:00", minutes=10),
        trip(SOEST_MARKT, SOEST_THOMAE, "2026-03-02 09:00", minutes=10),  # past 90 and 120 min
    ]
    bill = best_price(trips, tariff)
    assert bill.singles_total_cents == 2 * 310
    assert bought(bill) == [("tagesticket24", "A", 540, [0, 1])]  # cheaper than two


def test_a_higher_level_may_be_bought_for_its_longer_validity(tariff):
    # A change after 90 min: two level-A tickets cost 6,20 €, but one level-3 ticket
    # (valid 120 min, and a level-3 ticket is valid for a level-A journey) costs 4,40 €.
    trips = [
        trip(SOEST_BF, SOEST_MARKT, "2026-03-02 07:00", minutes=10),
        trip(SOEST_MARKT, SOEST_THOMAE, "2026-03-02 08:30", minutes=10),
    ]
    bill = best_price(trips, tariff)
    assert bought(bill) == [("einzel", "3", 440, [0, 1])]


def test_validity_is_measured_from_first_boarding(tariff):
    trips = [
        trip(SOEST_BF, SOEST_MARKT, "2026-03-02 07:00", minutes=10),
        trip(SOEST_MARKT, SOEST_THOMAE, "2026-03-02 08:29", minutes=10),
    ]
    (product,) = best_price(trips, tariff).products
    assert product.covers == [0, 1]
    assert product.valid_to - product.valid_from == 90 * 60_000


def test_combined_journey_above_the_first_legs_level_buys_the_higher_level(tariff):
    # Soest -> Bad Sassendorf (3) then on to Lippstadt (3): combined Soest -> Lippstadt is 4.
    # One level-4 ticket (6,20 €) is cheaper than two level-3 tickets (8,80 €).
    trips = [
        trip(SOEST_BF, SASSENDORF_KURPARK, "2026-03-02 07:00", minutes=15),
        trip(SASSENDORF_KURPARK, LIPPSTADT_BF, "2026-03-02 07:20", minutes=30),
    ]
    assert bought(best_price(trips, tariff)) == [("einzel", "4", 620, [0, 1])]


def test_walking_to_another_stop_to_change_is_still_a_change(tariff):
    # Markt -> Thomästraße, walk, Thomästraße is not where the next bus starts:
    # Soest Bf is; bibo counts the walk as part of the change (assumed rule).
    trips = [
        trip(SOEST_MARKT, SOEST_THOMAE, "2026-03-02 07:00", minutes=10),
        trip(SOEST_BF, SASSENDORF_BF, "2026-03-02 07:25", minutes=15),
    ]
    assert bought(best_price(trips, tariff)) == [("einzel", "3", 440, [0, 1])]


def test_coming_back_to_a_visited_stop_is_a_return_trip_and_needs_its_own_ticket(tariff):
    trips = [
        trip(SASSENDORF_KURPARK, SASSENDORF_BF, "2026-03-02 07:00", minutes=5),
        trip(SASSENDORF_BF, SASSENDORF_KURPARK, "2026-03-02 07:30", minutes=5),
    ]
    bill = best_price(trips, tariff)
    assert bill.singles_total_cents == 2 * 310
    assert [p.covers for p in bill.products] == [[0, 1]]
    assert bill.products[0].product == "tagesticket24"


def test_child_pays_child_fares_and_infant_rides_free(tariff):
    child = best_price([trip(SOEST_BF, LIPPSTADT_BF, "2026-03-02 07:00", rider="child")], tariff)
    infant = best_price([trip(SOEST_BF, LIPPSTADT_BF, "2026-03-02 07:00", rider="infant")], tariff)
    assert child.total_cents == 370
    assert infant.total_cents == 0
    assert infant.products[0].covers == [0]
