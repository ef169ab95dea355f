"""Exact search: a DP whose state stays small where scopes nest, the integer programme
(scipy.optimize.milp / HiGHS) as the exact fall-back, and both agree with the plain
integer programme over every candidate product."""

from __future__ import annotations

import importlib

import pytest

from fare_engine import best_price, best_price_multi
from tests.fare_engine.conftest import load_test_tariff, trip

# crossing_scopes: towns A1-A2 and A2-A3 are neighbours.
A1, A2, A2_SOUTH, A3 = "t:1a", "t:2a", "t:2b", "t:3a"


@pytest.fixture
def crossing():
    return load_test_tariff("crossing_scopes")


def _crossing_week():
    # Rides A1<->A2, inside A2 and A2<->A3 on three days: the passes for A1+A2 and A2+A3
    # both cover the rides inside A2, and neither covers all rides of the other.
    legs = (
        (7, (A1, A2)),
        (9, (A2, A2_SOUTH)),
        (11, (A2_SOUTH, A2)),
        (13, (A2, A3)),
        (16, (A3, A2)),
    )
    return [
        trip(a, b, f"2026-03-{day:02d} {hour:02d}:00", minutes=20)
        for day in (3, 4, 5)
        for hour, (a, b) in legs
    ]


def test_scopes_that_cross_are_reported(crossing):
    bill = best_price(_crossing_week(), crossing)
    assert not bill.scopes_nested
    assert bill.method == "dp"


@pytest.mark.parametrize("method", ["dp", "milp", "plain_milp"])
def test_every_method_finds_the_same_optimum(crossing, method):
    expected = best_price(_crossing_week(), crossing).total_cents
    bill = best_price_multi(_crossing_week(), [crossing], method=method)
    assert (bill.total_cents, bill.method) == (expected, method)


def test_the_dp_hands_over_to_the_integer_programme_past_its_state_budget(crossing, monkeypatch):
    expected = best_price(_crossing_week(), crossing).total_cents
    monkeypatch.setattr(importlib.import_module("fare_engine.pricing"), "DP_LABEL_BUDGET", 1)
    bill = best_price(_crossing_week(), crossing)
    assert (bill.method, bill.total_cents) == ("milp", expected)


def test_nested_zones_are_reported_nested():
    london = load_test_tariff("london_2025")
    trips = [
        trip("940GZZLUBNK", "940GZZLUWIM", "2025-05-06 08:00"),
        trip("940GZZLUWIM", "940GZZLUBNK", "2025-05-06 18:00"),
    ]
    assert best_price(trips, london).scopes_nested
