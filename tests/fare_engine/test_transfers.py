"""Changes of vehicle: one EinzelTicket covers a chain of trips within its validity."""

from __future__ import annotations

from fare_engine import best_price
from tests.fare_engine.conftest import (
    LIPPSTADT_BF,
    SASSENDORF_BF,
    SASSENDORF_KURPARK,
    SOEST_BF,
    SOEST_MARKT,
    SOEST_THOMAE,
    trip,
)


def test_change_within_validity_inside_the_level_is_one_ticket(tariff):
    # Soest Bf -> Markt (A), change, Markt -> Thomästraße (A), within 90 min.
    trips = [
        trip(SOEST_BF, SOEST_MARKT, "2026-03-02 07:00", minutes=10),
        trip(SOEST_MARKT, SOEST_THOMAE, "2026-03-02 07:30", minutes=10),
    ]
    bill = best_price(trips, tariff)
    assert [(p.level, p.price_cents, p.covers) for p in bill.products] == [("A", 310, [0, 1])]
    assert bill.singles_total_cents == 310


def test_change_after_validity_needs_a_new_ticket(tariff):
    trips = [
        trip(SOEST_BF, SOEST_MARKT, "2026-03-02 07:00", minutes=10),
        trip(SOEST_MARKT, SOEST_THOMAE, "2026-03-02 09:00", minutes=10),  # past 90 and 120 min
    ]
    bill = best_price(trips, tariff)
    assert [p.covers for p in bill.products] == [[0], [1]]
    assert bill.total_cents == 620


def test_a_higher_level_may_be_bought_for_its_longer_validity(tariff):
    # A change after 90 min: two level-A tickets cost 6,20 €, but one level-3 ticket
    # (valid 120 min, and a level-3 ticket is valid for a level-A journey) costs 4,40 €.
    trips = [
        trip(SOEST_BF, SOEST_MARKT, "2026-03-02 07:00", minutes=10),
        trip(SOEST_MARKT, SOEST_THOMAE, "2026-03-02 08:30", minutes=10),
    ]
    bill = best_price(trips, tariff)
    assert [(p.level, p.covers) for p in bill.products] == [("3", [0, 1])]
    assert bill.total_cents == 440


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
    bill = best_price(trips, tariff)
    assert [(p.level, p.covers) for p in bill.products] == [("4", [0, 1])]
    assert bill.total_cents == 620


def test_next_trip_from_another_stop_is_not_a_change(tariff):
    trips = [
        trip(SOEST_BF, SOEST_MARKT, "2026-03-02 07:00", minutes=10),
        trip(SOEST_THOMAE, SOEST_BF, "2026-03-02 07:30", minutes=10),
    ]
    assert [p.covers for p in best_price(trips, tariff).products] == [[0], [1]]


def test_return_trip_needs_its_own_ticket(tariff):
    trips = [
        trip(SASSENDORF_KURPARK, SASSENDORF_BF, "2026-03-02 07:00", minutes=5),
        trip(SASSENDORF_BF, SASSENDORF_KURPARK, "2026-03-02 07:30", minutes=5),
    ]
    bill = best_price(trips, tariff)
    assert [p.covers for p in bill.products] == [[0], [1]]
    assert bill.total_cents == 620


def test_child_pays_child_fares_and_infant_rides_free(tariff):
    child = best_price([trip(SOEST_BF, LIPPSTADT_BF, "2026-03-02 07:00", rider="child")], tariff)
    infant = best_price([trip(SOEST_BF, LIPPSTADT_BF, "2026-03-02 07:00", rider="infant")], tariff)
    assert child.total_cents == 370
    assert infant.total_cents == 0
    assert infant.products[0].covers == [0]
