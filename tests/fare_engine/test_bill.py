"""The bill: covers every trip exactly once, explains itself, refuses bad input by name."""

from __future__ import annotations

import json

import pytest

from fare_engine import FareInputError, FareInputReason, Trip, best_price
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


def test_every_trip_is_covered_exactly_once(tariff):
    trips = _mixed_trips()
    bill = best_price(trips, tariff)
    covered = sorted(k for p in bill.products for k in p.covers)
    assert covered == list(range(len(trips)))
    assert bill.total_cents == sum(p.price_cents for p in bill.products)
    for n, product in enumerate(bill.products):
        for k in product.covers:
            assert product.valid_from <= trips[k].board_time < product.valid_to
            assert bill.trips[[t.index for t in bill.trips].index(k)].covered_by == n


def test_bill_json_has_the_contract_fields(tariff):
    data = json.loads(best_price(_mixed_trips(), tariff).to_json())
    assert {"total_cents", "singles_total_cents", "saving_cents", "products"} <= data.keys()
    for product in data["products"]:
        assert {"product", "price_cents", "valid_from", "valid_to", "covers"} <= product.keys()
    assert data["products"][0]["covers"] == [1, 2]  # Soest Bf -> Markt -> Lippstadt: one ticket


def test_text_explains_products_and_saving(tariff):
    text = best_price(_mixed_trips(), tariff).to_text()
    assert "EinzelTicket Preisstufe 4 (adult) 6,20 €" in text
    assert "Soest, Markt → Lippstadt, Bahnhof" in text
    assert "Total: " in text


def test_no_trips_is_an_empty_bill(tariff):
    bill = best_price([], tariff)
    assert (bill.total_cents, bill.products) == (0, [])
    assert "nothing to pay" in bill.to_text()


def _replace(t: Trip, **changes) -> Trip:
    return t.model_copy(update=changes)


@pytest.mark.parametrize(
    ("index", "changes", "reason", "field"),
    [
        pytest.param(
            2,
            {"alight_stop_id": "de:05974:9999"},
            FareInputReason.UNKNOWN_STOP,
            "alight_stop_id",
            id="unknown stop",
        ),
        pytest.param(
            0,
            {"rider_category": "senior"},
            FareInputReason.UNKNOWN_RIDER_CATEGORY,
            "rider_category",
            id="unknown rider",
        ),
        pytest.param(
            3,
            {"alight_time": 0},
            FareInputReason.ALIGHT_BEFORE_BOARD,
            "alight_time",
            id="alight before board",
        ),
        pytest.param(
            1,
            {"board_time": 1_600_000_000_000, "alight_time": 1_600_000_600_000},
            FareInputReason.OUTSIDE_TARIFF_VALIDITY,
            "board_time",
            id="outside tariff validity",
        ),
    ],
)
def test_bad_trip_names_index_and_field(tariff, index, changes, reason, field):
    trips = _mixed_trips()
    trips[index] = _replace(trips[index], **changes)
    with pytest.raises(FareInputError) as info:
        best_price(trips, tariff)
    assert (info.value.trip_index, info.value.reason, info.value.field) == (index, reason, field)
    assert str(info.value).startswith(f"trip {index}: {field}=")


def test_overlapping_trips_name_the_later_trip(tariff):
    trips = [
        trip(SOEST_BF, LIPPSTADT_BF, "2026-05-02 09:00", minutes=40),
        trip(UNNA_BF, KAMEN_BF, "2026-05-02 09:30"),
    ]
    with pytest.raises(FareInputError) as info:
        best_price(trips, tariff)
    assert info.value.reason is FareInputReason.OVERLAPPING_TRIPS
    assert info.value.trip_index == 1
    assert "of trip 0" in str(info.value)


def test_back_to_back_trips_do_not_overlap(tariff):
    first = trip(SOEST_BF, SOEST_MARKT, "2026-05-02 09:00", minutes=10)
    second = Trip(
        board_stop_id=SOEST_MARKT,
        alight_stop_id=SOEST_BF,
        board_time=first.alight_time,
        alight_time=first.alight_time + 600_000,
        rider_category="adult",
    )
    assert len(best_price([first, second], tariff).products) == 2
