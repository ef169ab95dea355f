"""TfL pay as you go caps, as published for 2 March 2025: a daily cap for the zones
travelled (the day runs 04:30-04:29) and a Monday-Sunday weekly cap; London is a test
tariff for the engine's generality (tests/fare_engine/tariffs/london_2025.toml)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from fare_engine import Trip, best_price
from tests.fare_engine.conftest import at, bought, load_test_tariff, trip

LONDON = ZoneInfo("Europe/London")
BANK, OXFORD_CIRCUS, WIMBLEDON = "940GZZLUBNK", "940GZZLUOXC", "940GZZLUWIM"


@pytest.fixture
def london():
    return load_test_tariff("london_2025")


def _zone1_day(day: str, rides: int = 4) -> list[Trip]:
    hours = [8, 12, 17, 21][:rides]
    return [
        trip(
            *((BANK, OXFORD_CIRCUS) if k % 2 == 0 else (OXFORD_CIRCUS, BANK)),
            f"{day} {h:02d}:00",
            tz=LONDON,
        )
        for k, h in enumerate(hours)
    ]


def test_four_zone_1_journeys_are_capped_at_the_daily_cap(london):
    bill = best_price(_zone1_day("2025-05-06"), london)  # a Tuesday
    assert bill.singles_total_cents == 4 * 290
    assert bought(bill) == [("daily_cap", None, 890, [0, 1, 2, 3])]
    assert bill.products[0].scope == "Zone 1 + Zone 2"
    assert bill.currency == "GBP"
    assert "£8.90" in bill.to_text()


def test_three_journeys_stay_below_the_cap(london):
    assert best_price(_zone1_day("2025-05-06", rides=3), london).total_cents == 3 * 290


def test_the_day_runs_from_0430_to_0429(london):
    # 04:15 on Wednesday still belongs to Tuesday's day; 04:30 starts Wednesday's.
    tuesday = _zone1_day("2025-05-06", rides=3)
    early = trip(BANK, OXFORD_CIRCUS, "2025-05-07 04:15", tz=LONDON)
    bill = best_price([*tuesday, early], london)
    assert bought(bill) == [("daily_cap", None, 890, [0, 1, 2, 3])]
    assert bill.products[0].valid_from == at("2025-05-06 04:30", LONDON)
    assert bill.products[0].valid_to == at("2025-05-07 04:30", LONDON)
    later = trip(BANK, OXFORD_CIRCUS, "2025-05-07 04:30", tz=LONDON)
    assert best_price([*tuesday, later], london).total_cents == 4 * 290


def test_a_zone_3_journey_moves_the_day_to_the_zones_1_3_cap(london):
    # Three zone-1 journeys (8,70) + Wimbledon -> Wimbledon area ride in zone 3 (2,00) = 10,70;
    # the cap for zones 1-3 is 10,50 (the zones 1-2 cap does not cover zone 3).
    trips = [
        *_zone1_day("2025-05-06", rides=3),
        trip(WIMBLEDON, WIMBLEDON, "2025-05-06 22:00", tz=LONDON),
    ]
    bill = best_price(trips, london)
    assert bought(bill) == [("daily_cap", None, 1050, [0, 1, 2, 3])]
    assert bill.products[0].scope == "Zone 1 + Zone 2 + Zone 3"
    assert bill.scopes_nested


def test_a_week_of_capped_days_is_capped_at_the_weekly_cap(london):
    monday = dt.date(2025, 5, 5)
    trips = [t for k in range(7) for t in _zone1_day((monday + dt.timedelta(days=k)).isoformat())]
    bill = best_price(trips, london)
    assert bill.singles_total_cents == 28 * 290
    assert bought(bill) == [("weekly_cap", None, 4470, list(range(28)))]  # < 7 x 8,90
    assert bill.products[0].valid_from == at("2025-05-05 04:30", LONDON)
    assert bill.products[0].valid_to == at("2025-05-12 04:30", LONDON)


def test_the_week_is_monday_to_sunday_not_any_seven_days(london):
    # Wednesday to the next Tuesday: five days in one week (5 x 8,90 = 44,50 < 44,70)
    # and two in the next; no weekly cap applies.
    wednesday = dt.date(2025, 5, 7)
    trips = [
        t for k in range(7) for t in _zone1_day((wednesday + dt.timedelta(days=k)).isoformat())
    ]
    bill = best_price(trips, london)
    assert bill.total_cents == 7 * 890
    assert {p.product for p in bill.products} == {"daily_cap"}
