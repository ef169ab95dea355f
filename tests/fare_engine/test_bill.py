"""The bill explains itself: each product with its validity and the trips it covers, what
single journeys would have cost, the saving; as JSON (contract keys) and as text."""

from __future__ import annotations

import json

from fare_engine import Trip, best_price, best_price_multi
from tests.fare_engine.conftest import (
    ARNSBERG_BF,
    KAMEN_BF,
    LIPPSTADT_BF,
    MESCHEDE_BF,
    SOEST_BF,
    SOEST_MARKT,
    UNNA_BF,
    trip,
)


def _mixed_trips() -> list[Trip]:
    # Deliberately not in time order: the bill refers to the caller's indexes.
    return [
        trip(UNNA_BF, KAMEN_BF, "2026-05-04 08:00"),
        trip(SOEST_BF, SOEST_MARKT, "2026-05-02 09:00", minutes=5),
        trip(SOEST_MARKT, LIPPSTADT_BF, "2026-05-02 09:30", minutes=40),
        trip(ARNSBERG_BF, MESCHEDE_BF, "2026-06-10 12:00", minutes=30),
        trip(MESCHEDE_BF, ARNSBERG_BF, "2026-06-10 18:00", minutes=30, rider="child"),
    ]


def test_every_trip_is_covered_exactly_once(bibo_tariffs):
    trips = _mixed_trips()
    bill = best_price_multi(trips, bibo_tariffs)
    covered = sorted(k for p in bill.products for k in p.covers)
    assert covered == list(range(len(trips)))
    assert bill.total_cents == sum(p.price_cents for p in bill.products)
    for n, product in enumerate(bill.products):
        for k in product.covers:
            assert product.valid_from <= trips[k].board_time < product.valid_to
            assert bill.trips[[t.index for t in bill.trips].index(k)].covered_by == n


def test_bill_json_has_the_contract_fields(bibo_tariffs):
    data = json.loads(best_price_multi(_mixed_trips(), bibo_tariffs).to_json())
    assert {"total_cents", "singles_total_cents", "saving_cents", "products"} <= data.keys()
    for product in data["products"]:
        assert {"product", "price_cents", "valid_from", "valid_to", "covers"} <= product.keys()
    # Soest Bf -> Markt -> Lippstadt is one EinzelTicket level 4 with a change.
    assert data["products"][0]["covers"] == [1, 2]
    assert data["products"][0]["product"] == "einzel"


def test_each_trip_shows_its_own_cheapest_single_fare(bibo_tariffs):
    bill = best_price_multi(_mixed_trips(), bibo_tariffs)
    by_index = {t.index: t for t in bill.trips}
    assert (by_index[1].single_cents, by_index[1].single_product) == (167, "eezy Westfalen")
    assert (by_index[2].single_cents, by_index[2].single_product) == (620, "EinzelTicket 4")
    assert by_index[4].rider_category == "child"


def test_a_pass_says_what_its_trips_would_have_cost_one_by_one(tariff):
    trips = [
        trip(SOEST_BF, SOEST_MARKT, "2026-03-03 08:00"),
        trip(SOEST_MARKT, SOEST_BF, "2026-03-03 12:00"),
        trip(SOEST_BF, SOEST_MARKT, "2026-03-03 17:00"),
    ]
    bill = best_price(trips, tariff)
    (product,) = bill.products
    assert (product.product, product.kind, product.singles_cents) == ("tagesticket24", "pass", 930)
    assert bill.saving_cents == 930 - 540
    assert "docs/tariff-sources.md" in product.provenance
    assert "assumed" in product.provenance


def test_text_explains_products_trips_and_saving(tariff):
    trips = [
        trip(SOEST_BF, SOEST_MARKT, "2026-03-03 08:00"),
        trip(SOEST_MARKT, SOEST_BF, "2026-03-03 12:00"),
    ]
    text = best_price(trips, tariff).to_text()
    assert text == (
        "Bill (ruhr_lippe_2026), 2 trips\n"
        "1. TagesTicket24 Preisstufe A (adult) 5,40 €, valid in Soest, "
        "Tue 03.03.2026 08:00 – Wed 04.03.2026 08:00\n"
        "     valid from the first trip it covers\n"
        "     trip 0: Tue 03.03.2026 08:00 Soest, Bahnhof → Soest, Markt (alone: 3,10 €, level A)\n"
        "     trip 1: Tue 03.03.2026 12:00 Soest, Markt → Soest, Bahnhof (alone: 3,10 €, level A)\n"
        "     these 2 trips one by one: 6,20 €\n"
        "Total: 5,40 €\n"
        "Single tickets alone: 6,20 €\n"
        "You save: 0,80 €\n"
    )


def test_text_shows_how_an_eezy_fare_is_made(bibo_tariffs):
    text = best_price_multi(
        [trip(SOEST_BF, SOEST_MARKT, "2026-03-02 07:00")], bibo_tariffs
    ).to_text()
    assert "eezy Westfalen (adult) 1,67 €" in text
    assert "0.7 km → 1 started km: 1,40 € + 1 × 0,27 €" in text


def test_no_trips_is_an_empty_bill(tariff):
    bill = best_price([], tariff)
    assert (bill.total_cents, bill.products) == (0, [])
    assert "nothing to pay" in bill.to_text()


def test_back_to_back_trips_do_not_overlap(tariff):
    first = trip(SOEST_BF, SOEST_MARKT, "2026-05-02 09:00", minutes=10)
    second = Trip(
        board_stop_id=SOEST_MARKT,
        alight_stop_id=SOEST_BF,
        board_time=first.alight_time,
        alight_time=first.alight_time + 600_000,
        rider_category="adult",
    )
    assert best_price([first, second], tariff).total_cents == 540
