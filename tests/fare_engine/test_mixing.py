"""A bibo passenger pays the cheapest mix of Ruhr-Lippe products (EinzelTicket, Kurzstrecke,
TagesTicket24, 7/30TageTicket), eezy fares and the Deutschlandticket."""

from __future__ import annotations

from fare_engine import best_price_multi
from tests.fare_engine.conftest import (
    LIPPSTADT_BF,
    SOEST_BF,
    SOEST_MARKT,
    SOEST_THOMAE,
    bought,
    trip,
)


def test_short_hop_on_eezy_long_ride_on_an_einzelticket(bibo_tariffs):
    # 0.7 km: eezy 1,67 € < EinzelTicket A 3,10 €; 19.6 km: EinzelTicket 4 6,20 € < eezy 6,80 €.
    trips = [
        trip(SOEST_BF, SOEST_MARKT, "2026-03-02 07:00"),
        trip(SOEST_BF, LIPPSTADT_BF, "2026-03-02 12:00", minutes=40),
    ]
    bill = best_price_multi(trips, bibo_tariffs)
    assert bought(bill) == [("eezy", None, 167, [0]), ("einzel", "4", 620, [1])]
    assert [p.tariff_id for p in bill.products] == ["eezy_westfalen_2026", "ruhr_lippe_2026"]
    assert bill.singles_total_cents == 167 + 620  # single journeys of either tariff


def test_three_town_hops_stay_on_eezy_four_buy_a_tagesticket24(bibo_tariffs):
    hops = [
        trip(SOEST_BF, SOEST_MARKT, "2026-03-02 08:00"),
        trip(SOEST_MARKT, SOEST_BF, "2026-03-02 11:00"),
        trip(SOEST_BF, SOEST_MARKT, "2026-03-02 14:00"),
        trip(SOEST_MARKT, SOEST_BF, "2026-03-02 17:00"),
    ]
    three = best_price_multi(hops[:3], bibo_tariffs)
    assert three.total_cents == 3 * 167  # 5,01 € < TagesTicket24 A 5,40 €
    four = best_price_multi(hops, bibo_tariffs)
    assert bought(four) == [("tagesticket24", "A", 540, [0, 1, 2, 3])]  # < 6,68 €


def test_kurzstrecke_beats_eezy_when_the_stop_count_is_known(bibo_tariffs):
    ride = trip(SOEST_BF, SOEST_THOMAE, "2026-03-02 08:00", stops_travelled=2)
    assert bought(best_price_multi([ride], bibo_tariffs)) == [("einzel", "K", 120, [0])]


def test_deutschlandticket_and_eezy_month_cap_tie_and_the_bill_names_one(bibo_tariffs):
    trips = [
        trip(a, b, f"2026-03-{day:02d} {hour:02d}:00", minutes=40)
        for day in range(2, 28)
        for hour, (a, b) in ((7, (SOEST_BF, LIPPSTADT_BF)), (17, (LIPPSTADT_BF, SOEST_BF)))
    ]
    bill = best_price_multi(trips, bibo_tariffs)
    assert bill.total_cents == 6300
    assert [p.product for p in bill.products] == ["deutschlandticket"]


def test_default_tariffs_are_ruhr_lippe_and_eezy():
    bill = best_price_multi([trip(SOEST_BF, SOEST_MARKT, "2026-03-02 07:00")])
    assert bill.tariff_ids == ["ruhr_lippe_2026", "eezy_westfalen_2026"]
