"""New York OMNY since 20 August 2023: $2.90 a ride, and within 7 days from the first tap
the 12th ride costs $2.10 and every further one is free ($34 in all); a test tariff for the
engine's generality (tests/fare_engine/tariffs/omny_2023.toml)."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pytest

from fare_engine import Trip, best_price
from tests.fare_engine.conftest import at, bought, load_test_tariff, trip

NEW_YORK = ZoneInfo("America/New_York")
TIMES_SQ, FULTON = "omny:times_sq", "omny:fulton"


@pytest.fixture
def omny():
    return load_test_tariff("omny_2023")


def _rides(count: int, first_day: int = 1, per_day: int = 2) -> list[Trip]:
    """`count` rides from Monday 1 April 2024, `per_day` a day at 08:00 and 18:00."""
    rides = []
    for k in range(count):
        day = first_day + k // per_day
        hour = 8 if k % per_day == 0 else 18
        board, alight = (TIMES_SQ, FULTON) if k % 2 == 0 else (FULTON, TIMES_SQ)
        rides.append(trip(board, alight, f"2024-04-{day:02d} {hour:02d}:00", tz=NEW_YORK))
    return rides


def test_eleven_rides_are_paid_in_full(omny):
    assert best_price(_rides(11), omny).total_cents == 11 * 290


def test_the_twelfth_ride_costs_2_10(omny):
    assert best_price(_rides(12), omny).total_cents == 3400  # 11 x 2,90 + 2,10


def test_rides_after_the_twelfth_are_free(omny):
    bill = best_price(_rides(14), omny)
    assert bought(bill) == [("omny_7day_cap", None, 3400, list(range(14)))]
    assert bill.currency == "USD"
    assert "$34.00" in bill.to_text()


def test_seven_days_count_from_the_first_tap(omny):
    # 12 rides Monday 08:00 to Saturday 18:00, then one on the next Monday 09:00: more
    # than 7 days after the first tap, so it is paid.
    rides = [*_rides(12), trip(TIMES_SQ, FULTON, "2024-04-08 09:00", tz=NEW_YORK)]
    bill = best_price(rides, omny)
    assert bill.total_cents == 3400 + 290
    (cap,) = (p for p in bill.products if p.product == "omny_7day_cap")
    assert cap.valid_from == at("2024-04-01 08:00", NEW_YORK)
    assert cap.valid_to == at("2024-04-08 08:00", NEW_YORK)
