"""Property tests against the brute-force oracle (tests/fare_engine/oracle.py), <= 8 trips.

For random trips on four tariff sets (crossing scopes; Ruhr-Lippe + eezy; London; OMNY):
the engine's total equals the oracle's, whether found by the DP, by the pruned integer
programme or by the plain one over every candidate; adding a trip never lowers the
total; the order trips arrive in does not matter; and the bill covers every trip exactly
once, by products that may cover it. Rides carry random `joins_previous` flags (one eezy
check-in over a change of vehicle), except where a trip is taken away from the middle or
arrives out of boarding order: a joined check-in can cost less than its last rides alone,
so there only rides added after the others keep the total from falling
(tests/fare_engine/test_eezy_journeys.py).
"""

from __future__ import annotations

import datetime as dt
from functools import cache

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fare_engine import PricingAccount, Tariff, Trip, best_price_multi, load_tariff
from tests.fare_engine import oracle
from tests.fare_engine.conftest import load_test_tariff

PROPERTY_SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


@cache
def _tariff_sets() -> dict[str, tuple[list[Tariff], list[str], str]]:
    ruhr = [load_tariff("ruhr_lippe_2026"), load_tariff("eezy_westfalen_2026")]
    ruhr_stops = [
        "de:05974:1001",  # Soest, Bahnhof
        "de:05974:1002",  # Soest, Markt
        "de:05974:1004",  # Bad Sassendorf, Kurpark
        "de:05974:1010",  # Lippstadt, Bahnhof
        "de:05978:2001",  # Unna, Bahnhof
        "de:05978:2005",  # Kamen, Bahnhof
    ]
    crossing = [load_test_tariff("crossing_scopes")]
    crossing_stops = [s.stop_id for s in crossing[0].stops()]
    london = [load_test_tariff("london_2025")]
    london_stops = [s.stop_id for s in london[0].stops()]
    omny = [load_test_tariff("omny_2023")]
    omny_stops = [s.stop_id for s in omny[0].stops()]
    return {
        "crossing": (crossing, crossing_stops, "2026-03-26 06:00"),
        "ruhr_lippe+eezy": (ruhr, ruhr_stops, "2026-03-26 06:00"),
        "london": (london, london_stops, "2025-03-27 06:00"),
        "omny": (omny, omny_stops, "2024-03-27 06:00"),
    }


def _start_ms(text: str, tariff: Tariff) -> int:
    local = dt.datetime.strptime(text, "%Y-%m-%d %H:%M").replace(tzinfo=tariff.tz)
    return int(local.timestamp() * 1000)


@st.composite
def instances(draw, riders=("adult",), max_trips=oracle.MAX_TRIPS, joins=True):
    """(tariffs, trips): up to 8 non-overlapping trips over ~2 weeks around a month end;
    `joins`: random `joins_previous` flags (else none)."""
    name = draw(st.sampled_from(["crossing", "crossing", *sorted(_tariff_sets())]))
    tariffs, stops, start = _tariff_sets()[name]
    clock = _start_ms(start, tariffs[0]) + draw(st.integers(0, 36 * 60)) * 60_000
    riders = tuple(r for r in riders if tariffs[0].has_rider(r))
    rider = draw(st.sampled_from(riders))
    trips = []
    for _ in range(draw(st.integers(0, max_trips))):
        gap = draw(
            st.one_of(st.integers(0, 40), st.integers(40, 600), st.integers(600, 3 * 24 * 60))
        )
        minutes = draw(st.integers(0, 80))
        board = clock + gap * 60_000
        trips.append(
            Trip(
                board_stop_id=draw(st.sampled_from(stops)),
                alight_stop_id=draw(st.sampled_from(stops)),
                board_time=board,
                alight_time=board + minutes * 60_000,
                rider_category=draw(st.sampled_from([rider, rider, rider, *riders])),
                stops_travelled=draw(st.sampled_from([None, 1, 2, 3, 4, 5, 8])),
                mode=draw(st.sampled_from(["bus", "bus", "bus", "tram"])),
                farthest_stop_id=draw(st.sampled_from([None] * 8 + stops)),
                joins_previous=draw(st.booleans()) if joins else False,
            )
        )
        clock = board + minutes * 60_000
    return tariffs, trips


@PROPERTY_SETTINGS
@given(instances(riders=("adult", "child")))
def test_total_equals_the_brute_force_optimum(case):
    tariffs, trips = case
    expected = oracle.best_total(trips, tariffs)
    assert best_price_multi(trips, tariffs, method="dp").total_cents == expected
    assert best_price_multi(trips, tariffs, method="milp").total_cents == expected
    assert best_price_multi(trips, tariffs, method="plain_milp").total_cents == expected


@PROPERTY_SETTINGS
@given(instances(joins=False), st.data())
def test_adding_a_trip_never_lowers_the_total(case, data):
    tariffs, trips = case
    if not trips:
        return
    drop = data.draw(st.integers(0, len(trips) - 1))
    fewer = trips[:drop] + trips[drop + 1 :]
    assert (
        best_price_multi(fewer, tariffs).total_cents <= best_price_multi(trips, tariffs).total_cents
    )


@PROPERTY_SETTINGS
@given(instances(riders=("adult", "child")), st.randoms(use_true_random=False))
def test_the_order_trips_arrive_in_does_not_matter(case, rnd):
    tariffs, trips = case
    shuffled = list(range(len(trips)))
    rnd.shuffle(shuffled)
    first = best_price_multi(trips, tariffs)
    second = best_price_multi([trips[k] for k in shuffled], tariffs)
    assert second.total_cents == first.total_cents

    def bought(bill, index_of):
        return sorted(
            (p.product, p.level, p.price_cents, sorted(index_of[k] for k in p.covers))
            for p in bill.products
        )

    assert bought(second, shuffled) == bought(first, list(range(len(trips))))


@PROPERTY_SETTINGS
@given(instances(riders=("adult", "child")))
def test_every_trip_is_covered_exactly_once_by_a_product_that_may_cover_it(case):
    tariffs, trips = case
    bill = best_price_multi(trips, tariffs)
    covered = sorted(k for p in bill.products for k in p.covers)
    assert covered == list(range(len(trips)))
    assert bill.total_cents == sum(p.price_cents for p in bill.products)
    ordered = oracle.sorted_trips(trips)
    where = oracle.positions(trips)
    for product in bill.products:
        block = [trips[k] for k in product.covers]
        mask = sum(1 << where[k] for k in product.covers)
        may = oracle.options(ordered, mask, tariffs)
        assert (
            oracle.Option(product.tariff_id, product.product, product.level, product.price_cents)
            in may
        )
        for t in block:
            assert product.valid_from <= t.board_time < product.valid_to


@PROPERTY_SETTINGS
@given(instances(joins=False), st.randoms(use_true_random=False))
def test_running_total_equals_the_batch_best_price(case, rnd):
    tariffs, trips = case
    arrival = list(trips)
    rnd.shuffle(arrival)
    account = PricingAccount(tariffs)
    totals = [account.add(t) for t in arrival]
    assert totals == sorted(totals)  # a new trip never lowers the running total
    assert account.total_cents == best_price_multi(arrival, tariffs).total_cents
    assert account.bill().total_cents == account.total_cents
