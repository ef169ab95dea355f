"""eezy: base price + rate per started straight-line km, rolling 24 h cap, calendar-month cap,
children -50 %, same stop free, round trips split at the farthest point."""

from __future__ import annotations

from fare_engine import best_price, quote
from tests.fare_engine.conftest import (
    LIPPSTADT_BF,
    SASSENDORF_KURPARK,
    SOEST_BF,
    SOEST_MARKT,
    at,
    bought,
    load_test_tariff,
    trip,
)


def test_the_published_worked_example_with_vrs_rates():
    # 2.1 km -> 3 started km -> 1,50 € + 3 x 0,20 € = 2,10 €
    vrs = load_test_tariff("vrs_eezy_example")
    bill = best_price([trip("vrs:a", "vrs:b", "2026-03-02 07:00")], vrs)
    assert bill.total_cents == 210
    assert bill.products[0].detail == "2.1 km → 3 started km: 1,50 € + 3 × 0,20 €"


def test_a_started_kilometre_counts_whole():
    vrs = load_test_tariff("vrs_eezy_example")
    assert (
        quote(vrs, "vrs:a", "vrs:c", at("2026-03-02 07:00"), "adult").price_cents == 190
    )  # 1.95 km


def test_eezy_westfalen_fare(eezy):
    # Soest Bf -> Lippstadt Bf is 19.6 km: 1,40 € + 20 x 0,27 € = 6,80 €
    bill = best_price([trip(SOEST_BF, LIPPSTADT_BF, "2026-03-02 07:00")], eezy)
    assert bought(bill) == [("eezy", None, 680, [0])]


def test_children_pay_half_rounded_to_the_cent(eezy):
    # 0.7 km -> 1 km: 1,67 € for adults, 0,835 € -> 0,84 € for children; under 6 free.
    trips = [
        trip(SOEST_BF, SOEST_MARKT, "2026-03-02 07:00", rider="adult"),
        trip(SOEST_MARKT, SOEST_BF, "2026-03-02 09:00", rider="child"),
        trip(SOEST_BF, SOEST_MARKT, "2026-03-02 11:00", rider="infant"),
    ]
    assert [p.price_cents for p in best_price(trips, eezy).products] == [167, 84, 0]


def test_checking_in_and_straight_out_again_costs_nothing(eezy):
    bill = best_price([trip(SOEST_BF, SOEST_BF, "2026-03-02 07:00", minutes=2)], eezy)
    assert bill.total_cents == 0


def test_a_round_trip_is_split_at_the_farthest_point(eezy):
    # Soest Bf -> Bad Sassendorf Kurpark (4.3 km: 2,75 €) and back: 2 x 2,75 €, not 0 €.
    ride = trip(
        SOEST_BF, SOEST_BF, "2026-03-02 07:00", minutes=40, farthest_stop_id=SASSENDORF_KURPARK
    )
    bill = best_price([ride], eezy)
    assert bill.total_cents == 2 * 275


def test_the_24_hour_cap(eezy):
    # Four rides of 6,80 € within 24 h would be 27,20 €; the cap is 25 €.
    trips = [
        trip(SOEST_BF, LIPPSTADT_BF, "2026-03-02 08:00", minutes=40),
        trip(LIPPSTADT_BF, SOEST_BF, "2026-03-02 12:00", minutes=40),
        trip(SOEST_BF, LIPPSTADT_BF, "2026-03-02 16:00", minutes=40),
        trip(LIPPSTADT_BF, SOEST_BF, "2026-03-02 20:00", minutes=40),
    ]
    bill = best_price(trips, eezy)
    assert bill.singles_total_cents == 4 * 680
    assert bought(bill) == [("eezy_24h_cap", None, 2500, [0, 1, 2, 3])]
    assert bill.products[0].singles_cents == 4 * 680
    assert (bill.products[0].valid_from, bill.products[0].valid_to) == (
        at("2026-03-02 08:00"),
        at("2026-03-03 08:00"),
    )


def test_a_trip_not_finished_inside_the_window_is_not_capped(eezy):
    day = [
        trip(SOEST_BF, LIPPSTADT_BF, "2026-03-02 08:00", minutes=40),
        trip(LIPPSTADT_BF, SOEST_BF, "2026-03-02 12:00", minutes=40),
        trip(SOEST_BF, LIPPSTADT_BF, "2026-03-02 16:00", minutes=40),
        trip(LIPPSTADT_BF, SOEST_BF, "2026-03-02 20:00", minutes=40),
    ]
    inside = trip(SOEST_BF, LIPPSTADT_BF, "2026-03-03 07:15", minutes=40)  # ends 07:55
    across = trip(SOEST_BF, LIPPSTADT_BF, "2026-03-03 07:30", minutes=40)  # ends 08:10
    assert best_price([*day, inside], eezy).total_cents == 2500
    assert best_price([*day, across], eezy).total_cents == 2500 + 680


def test_the_month_cap(eezy):
    # Twelve capped days (12 x 25 €) would be 300 €; the month cap is 63 € (assumed).
    trips = [
        trip(a, b, f"2026-03-{day:02d} {hour:02d}:00", minutes=40)
        for day in range(2, 14)
        for hour, (a, b) in zip(
            (8, 12, 16, 20), [(SOEST_BF, LIPPSTADT_BF), (LIPPSTADT_BF, SOEST_BF)] * 2, strict=True
        )
    ]
    bill = best_price(trips, eezy)
    assert bought(bill) == [("eezy_month_cap", None, 6300, list(range(48)))]
    assert bill.products[0].valid_from == at("2026-03-01 00:00")


def test_child_caps_are_half(eezy):
    trips = [
        trip(SOEST_BF, LIPPSTADT_BF, f"2026-03-02 {hour:02d}:00", minutes=40, rider="child")
        for hour in (6, 8, 10, 12, 14, 16, 18, 20)
    ]
    bill = best_price(trips, eezy)
    assert bill.singles_total_cents == 8 * 340
    assert bill.total_cents == 1250
