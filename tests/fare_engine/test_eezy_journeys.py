"""eezy journeys across a change of vehicle: rides joined by `joins_previous` are one
check-in, priced start to end (split where the journey turns back), each ride's own fare
staying an option; a check-in is not extended by a ride that makes it cheaper, so a ride
added later never lowers the best price. Expected prices are computed here from the
tariff's base, rate and the stops' straight-line distances."""

from __future__ import annotations

import datetime as dt

from hypothesis import given
from hypothesis import strategies as st

from fare_engine import PricingAccount, Trip, best_price, best_price_multi, load_tariff
from fare_engine.geo import distance_m, started_km
from fare_engine.instance import build_instance
from fare_engine.model import DistanceProduct
from fare_engine.money import format_cents
from fare_engine.offers import view_of
from fare_engine.pricing import partition
from tests.fare_engine import oracle
from tests.fare_engine.conftest import (
    LIPPSTADT_BF,
    SASSENDORF_BF,
    SASSENDORF_KURPARK,
    SOEST_BF,
    SOEST_MARKT,
    SOEST_THOMAE,
    at,
    bought,
    load_test_tariff,
    trip,
)
from tests.fare_engine.test_properties import PROPERTY_SETTINGS

SASSENDORF_LOHNE = "de:05974:1006"
LIPPSTADT_OVERHAGEN = "de:05974:1008"


def _eezy() -> DistanceProduct:
    product = load_tariff("eezy_westfalen_2026").distance_products()[0]
    assert product.id == "eezy"
    return product


def metres(a: str, b: str) -> float:
    tariff = load_tariff("eezy_westfalen_2026")
    sa, sb = tariff.stop(a), tariff.stop(b)
    return distance_m(sa.lat, sa.lon, sb.lat, sb.lon)


def fare(a: str, b: str, percent: int = 100) -> int:
    """One eezy Westfalen leg: base + rate per started km, the rider's percentage."""
    product = _eezy()
    adult = product.base.cents + product.per_started_km.cents * started_km(metres(a, b))
    return (adult * percent + 50) // 100


def leg_text(a: str, b: str) -> str:
    product = _eezy()
    km = started_km(metres(a, b))
    return (
        f"{metres(a, b) / 1000:.1f} km → {km} started km: "
        f"{format_cents(product.base.cents, 'EUR')} + {km} × "
        f"{format_cents(product.per_started_km.cents, 'EUR')}"
    )


def _change(**facts: object) -> Trip:
    """Soest Bahnhof -> Soest Markt, then (joined) Soest Markt -> Bad Sassendorf Kurpark."""
    return trip(SOEST_MARKT, SASSENDORF_KURPARK, "2026-03-02 07:10", minutes=12, **facts)


def test_eezy_with_a_change(eezy, bibo_tariffs):
    # The tariff file's example: one check-in Soest Bahnhof -> Bad Sassendorf Kurpark.
    rides = [
        trip(SOEST_BF, SOEST_MARKT, "2026-03-02 07:00", minutes=5),
        _change(joins_previous=True),
    ]
    one_check_in = fare(SOEST_BF, SASSENDORF_KURPARK)
    two_rides = fare(SOEST_BF, SOEST_MARKT) + fare(SOEST_MARKT, SASSENDORF_KURPARK)
    assert one_check_in < two_rides
    assert bought(best_price(rides, eezy)) == [("eezy", None, one_check_in, [0, 1])]
    # Over Ruhr-Lippe too it beats the EinzelTicket with the change (4.40 €).
    both = best_price_multi(rides, bibo_tariffs)
    assert bought(both) == [("eezy", None, one_check_in, [0, 1])]
    assert both.singles_total_cents == one_check_in
    unjoined = [rides[0], _change()]
    assert best_price(unjoined, eezy).total_cents == two_rides
    assert best_price_multi(unjoined, bibo_tariffs).total_cents > one_check_in


def test_the_bill_explains_a_joined_check_in(eezy):
    rides = [
        trip(SOEST_BF, SOEST_MARKT, "2026-03-02 07:00", minutes=5),
        _change(joins_previous=True),
    ]
    bill = best_price(rides, eezy)
    (product,) = bill.products
    assert product.kind == "distance"
    assert product.covers == [0, 1]
    assert product.detail == (
        "one check-in Soest, Bahnhof → Bad Sassendorf, Kurpark: "
        + leg_text(SOEST_BF, SASSENDORF_KURPARK)
    )
    assert (product.valid_from, product.valid_to) == (rides[0].board_time, rides[1].alight_time)
    assert product.singles_cents == fare(SOEST_BF, SOEST_MARKT) + fare(
        SOEST_MARKT, SASSENDORF_KURPARK
    )
    assert "one check-in Soest, Bahnhof → Bad Sassendorf, Kurpark" in bill.to_text()


def test_children_pay_half_of_the_check_in(eezy):
    rides = [
        trip(SOEST_BF, SOEST_MARKT, "2026-03-02 07:00", minutes=5, rider="child"),
        _change(joins_previous=True, rider="child"),
    ]
    assert best_price(rides, eezy).total_cents == fare(SOEST_BF, SASSENDORF_KURPARK, 50)


def test_only_rides_of_the_same_rider_join(eezy):
    rides = [
        trip(SOEST_BF, SOEST_MARKT, "2026-03-02 07:00", minutes=5, rider="child"),
        _change(joins_previous=True),
    ]
    expected = fare(SOEST_BF, SOEST_MARKT, 50) + fare(SOEST_MARKT, SASSENDORF_KURPARK)
    assert best_price(rides, eezy).total_cents == expected


def test_a_tariff_without_check_ins_across_changes_prices_each_ride():
    vrs = load_test_tariff("vrs_eezy_example")
    rides = [
        trip("vrs:a", "vrs:b", "2026-03-02 07:00", minutes=5),
        trip("vrs:b", "vrs:c", "2026-03-02 07:10", minutes=5, joins_previous=True),
    ]
    bill = best_price(rides, vrs)
    assert [p.covers for p in bill.products] == [[0], [1]]


def test_a_round_trip_with_a_change_is_split_where_it_turns_back(eezy):
    # Soest Bahnhof -> Markt, change, a loop out to Bad Sassendorf Kurpark and back to
    # Soest Thomästraße: the check-in turns back at the Kurpark, the farthest stop.
    rides = [
        trip(SOEST_BF, SOEST_MARKT, "2026-03-02 07:00", minutes=5),
        trip(
            SOEST_MARKT, SOEST_THOMAE, "2026-03-02 07:10", minutes=30,
            farthest_stop_id=SASSENDORF_KURPARK, joins_previous=True,
        ),
    ]  # fmt: skip
    assert metres(SOEST_BF, SASSENDORF_KURPARK) > metres(SOEST_BF, SOEST_THOMAE)
    expected = fare(SOEST_BF, SASSENDORF_KURPARK) + fare(SASSENDORF_KURPARK, SOEST_THOMAE)
    separately = (
        fare(SOEST_BF, SOEST_MARKT)
        + fare(SOEST_MARKT, SASSENDORF_KURPARK)
        + fare(SASSENDORF_KURPARK, SOEST_THOMAE)
    )
    assert expected < separately
    bill = best_price(rides, eezy)
    assert bought(bill) == [("eezy", None, expected, [0, 1])]
    assert bill.products[0].detail == (
        "one check-in Soest, Bahnhof → Bad Sassendorf, Kurpark (turns back) → "
        "Soest, Thomästraße: "
        + leg_text(SOEST_BF, SASSENDORF_KURPARK)
        + "; "
        + leg_text(SASSENDORF_KURPARK, SOEST_THOMAE)
    )


def _out_back_and_on() -> list[Trip]:
    """Soest Bahnhof out to Lohne (8 km), back to Soest Thomästraße, then on to Overhagen:
    start to end the three rides are one leg, cheaper than the first two's two legs."""
    return [
        trip(SOEST_BF, SASSENDORF_LOHNE, "2026-03-02 07:00", minutes=20),
        trip(SASSENDORF_LOHNE, SOEST_THOMAE, "2026-03-02 07:25", minutes=15, joins_previous=True),
        trip(
            SOEST_THOMAE, LIPPSTADT_OVERHAGEN, "2026-03-02 07:45", minutes=30, joins_previous=True
        ),
    ]


def test_a_check_in_is_not_extended_by_a_ride_that_makes_it_cheaper(eezy):
    rides = _out_back_and_on()
    first_two = fare(SOEST_BF, SASSENDORF_LOHNE) + fare(SASSENDORF_LOHNE, SOEST_THOMAE)
    all_three = fare(SOEST_BF, LIPPSTADT_OVERHAGEN)
    assert metres(SOEST_BF, LIPPSTADT_OVERHAGEN) > metres(SOEST_BF, SASSENDORF_LOHNE)
    assert all_three < first_two  # eezy's own price would fall with the third ride
    before = best_price(rides[:2], eezy)
    assert before.total_cents == first_two  # (the same as the two rides one by one)
    bill = best_price(rides, eezy)
    assert [0, 1, 2] not in [p.covers for p in bill.products]
    assert bill.total_cents == oracle.best_total(rides, [eezy])
    # A month ending after the second ride is charged `before`, the next one the rest:
    # never a negative charge, at the price of billing more than eezy's start to end.
    assert bill.total_cents >= before.total_cents
    assert bill.total_cents > all_three


def test_a_check_in_can_cost_less_than_its_last_ride_alone(eezy):
    # Bad Sassendorf Kurpark west to Soest Thomästraße, then east to Lohne: the check-in
    # pays the straight line Kurpark -> Lohne, shorter than Thomästraße -> Lohne. So the
    # first ride, uploaded late, lowers the running total; in boarding order it never falls.
    first = trip(SASSENDORF_KURPARK, SOEST_THOMAE, "2026-03-02 07:00", minutes=10)
    then = trip(SOEST_THOMAE, SASSENDORF_LOHNE, "2026-03-02 07:15", minutes=15, joins_previous=True)
    assert metres(SASSENDORF_KURPARK, SOEST_THOMAE) <= metres(SASSENDORF_KURPARK, SASSENDORF_LOHNE)
    journey = fare(SASSENDORF_KURPARK, SASSENDORF_LOHNE)
    alone = fare(SOEST_THOMAE, SASSENDORF_LOHNE)
    assert journey < alone
    late = PricingAccount([eezy])
    assert [late.add(then), late.add(first)] == [alone, journey]
    assert late.bill().model_dump() == best_price_multi(late.trips, [eezy]).model_dump()
    in_order = PricingAccount([eezy])
    assert [in_order.add(first), in_order.add(then)] == [
        fare(SASSENDORF_KURPARK, SOEST_THOMAE),
        journey,
    ]


def _journeys_of_a_day(day: int, hours: tuple[int, ...]) -> list[Trip]:
    """Soest Bahnhof -> Markt, change, -> Lippstadt Bahnhof, at each of `hours`."""
    rides = []
    for hour in hours:
        start = f"2026-03-{day:02d} {hour:02d}:00"
        rides.append(trip(SOEST_BF, SOEST_MARKT, start, minutes=5))
        board = f"2026-03-{day:02d} {hour:02d}:10"
        rides.append(trip(SOEST_MARKT, LIPPSTADT_BF, board, minutes=40, joins_previous=True))
    return rides


def test_the_24_hour_cap_covers_the_rides_of_joined_check_ins(eezy):
    journey = fare(SOEST_BF, LIPPSTADT_BF)
    cap = 2500
    assert 3 * journey < cap < 4 * journey
    three = best_price(_journeys_of_a_day(2, (7, 11, 15)), eezy)
    assert bought(three) == [("eezy", None, journey, [2 * k, 2 * k + 1]) for k in range(3)]
    four = best_price(_journeys_of_a_day(2, (7, 11, 15, 19)), eezy)
    assert bought(four) == [("eezy_24h_cap", None, cap, list(range(8)))]
    assert four.singles_total_cents == 4 * journey


def test_the_month_cap_covers_the_rides_of_joined_check_ins(eezy):
    rides = [t for day in range(2, 14) for t in _journeys_of_a_day(day, (7, 11, 15, 19))]
    bill = best_price(rides, eezy)
    assert bought(bill) == [("eezy_month_cap", None, 6300, list(range(len(rides))))]
    assert bill.products[0].valid_from == at("2026-03-01 00:00")


def _overlapping() -> list[Trip]:
    """Soest Bahnhof -> Bad Sassendorf Kurpark, change, -> Bad Sassendorf Bahnhof, change,
    -> Soest Markt. One check-in over all three turns back (two legs, the second longer
    than from the Kurpark); the first ride alone plus one check-in over the other two is
    one leg each. A cover may buy the check-ins over rides 0-1 and 1-2 together."""
    return [
        trip(SOEST_BF, SASSENDORF_KURPARK, "2026-03-02 07:00", minutes=12),
        trip(SASSENDORF_KURPARK, SASSENDORF_BF, "2026-03-02 07:15", minutes=3, joins_previous=True),
        trip(SASSENDORF_BF, SOEST_MARKT, "2026-03-02 07:20", minutes=12, joins_previous=True),
    ]


def test_overlapping_runs_leave_the_earlier_one_its_first_rides(eezy, bibo_tariffs):
    rides = _overlapping()
    inst = build_instance(rides, [view_of(eezy)])
    run_01 = next(c for c in inst.cands[0] if (c.first, c.last) == (0, 1))
    run_12 = next(c for c in inst.cands[1] if (c.first, c.last) == (1, 2))
    assert run_01.price == fare(SOEST_BF, SASSENDORF_BF)
    groups = partition(inst, [run_01, run_12])
    assert [(g[0].price, g[1]) for g in groups] == [
        (fare(SOEST_BF, SASSENDORF_KURPARK), [0]),  # re-priced: the first ride's own fare
        (run_12.price, [1, 2]),
    ]
    assert groups[0][0].offer.detail == leg_text(SOEST_BF, SASSENDORF_KURPARK)
    # An EinzelTicket keeps its price for its first rides.
    both = build_instance(rides, [view_of(t) for t in bibo_tariffs], prune=False)
    chain = next(c for c in both.cands[0] if c.offer.kind == "single" and c.last == 1)
    groups = partition(both, [chain, run_12])
    assert [(g[0].offer.kind, g[0].price, g[1]) for g in groups] == [
        ("single", chain.price, [0]),
        ("distance", run_12.price, [1, 2]),
    ]


def test_every_method_bills_overlapping_check_ins_with_real_prices(eezy):
    rides = _overlapping()
    expected = fare(SOEST_BF, SASSENDORF_KURPARK) + fare(SASSENDORF_KURPARK, SOEST_MARKT)
    assert expected == oracle.best_total(rides, [eezy])
    for method in ("dp", "milp", "plain_milp"):
        bill = best_price_multi(rides, [eezy], method=method)
        assert bill.total_cents == expected, method
        _assert_real_products(bill, rides, [eezy])


def _assert_real_products(bill, trips, tariffs):
    """Every trip covered exactly once, by a product that may cover exactly those trips
    for its price (the oracle's rules), valid when each of its trips boards."""
    assert sorted(k for p in bill.products for k in p.covers) == list(range(len(trips)))
    assert bill.total_cents == sum(p.price_cents for p in bill.products)
    ordered = oracle.sorted_trips(trips)
    where = oracle.positions(trips)
    for product in bill.products:
        block = [trips[k] for k in product.covers]
        mask = sum(1 << where[k] for k in product.covers)
        option = oracle.Option(
            product.tariff_id, product.product, product.level, product.price_cents
        )
        assert option in oracle.options(ordered, mask, tariffs)
        for t in block:
            assert product.valid_from <= t.board_time < product.valid_to


# --- properties against the brute force ---------------------------------------------------

_STOPS = [SOEST_BF, SOEST_MARKT, SOEST_THOMAE, SASSENDORF_KURPARK, SASSENDORF_LOHNE, LIPPSTADT_BF]


@st.composite
def journeys(draw, max_trips=oracle.MAX_TRIPS):
    """(tariffs, trips): up to 8 rides, mostly joined by changes, on eezy alone, on
    Ruhr-Lippe + eezy or on the crossing-scopes test tariff (its distance fare joins too)."""
    name = draw(st.sampled_from(["eezy", "ruhr_lippe+eezy", "crossing"]))
    if name == "crossing":
        tariffs = [load_test_tariff("crossing_scopes")]
        stops = [s.stop_id for s in tariffs[0].stops()]
    else:
        tariffs = [load_tariff("eezy_westfalen_2026")]
        if name != "eezy":
            tariffs.insert(0, load_tariff("ruhr_lippe_2026"))
        stops = _STOPS
    start = dt.datetime(2026, 3, 30, 6, tzinfo=tariffs[0].tz)  # a month end within reach
    clock = int(start.timestamp() * 1000) + draw(st.integers(0, 48 * 60)) * 60_000
    rider = draw(st.sampled_from(["adult", "child"]))
    trips = []
    for _ in range(draw(st.integers(1, max_trips))):
        gap = draw(st.one_of(st.integers(0, 30), st.integers(0, 30), st.integers(30, 26 * 60)))
        minutes = draw(st.integers(0, 60))
        board = clock + gap * 60_000
        trips.append(
            Trip(
                board_stop_id=draw(st.sampled_from(stops)),
                alight_stop_id=draw(st.sampled_from(stops)),
                board_time=board,
                alight_time=board + minutes * 60_000,
                rider_category=draw(st.sampled_from([rider] * 5 + ["adult", "child"])),
                farthest_stop_id=draw(st.sampled_from([None] * 4 + stops)),
                joins_previous=draw(st.sampled_from([True, True, True, False])),
            )
        )
        clock = board + minutes * 60_000
    return tariffs, trips


@PROPERTY_SETTINGS
@given(journeys())
def test_dp_milp_and_the_plain_milp_equal_the_brute_force(case):
    tariffs, trips = case
    expected = oracle.best_total(trips, tariffs)
    for method in ("dp", "milp", "plain_milp"):
        bill = best_price_multi(trips, tariffs, method=method)
        assert bill.total_cents == expected, method
        _assert_real_products(bill, trips, tariffs)


@PROPERTY_SETTINGS
@given(journeys())
def test_a_ride_added_later_never_lowers_the_total(case):
    # What the backend relies on: best(trips through month M) - best(trips before M) >= 0.
    tariffs, trips = case
    ordered = oracle.sorted_trips(trips)
    totals = [best_price_multi(ordered[:k], tariffs).total_cents for k in range(len(trips) + 1)]
    assert totals == sorted(totals)


@PROPERTY_SETTINGS
@given(journeys(), st.randoms(use_true_random=False))
def test_the_running_total_is_the_best_price_of_the_rides_so_far(case, rnd):
    tariffs, trips = case
    arrival = list(trips)
    rnd.shuffle(arrival)
    account = PricingAccount(tariffs)
    for k, ride in enumerate(arrival):
        total = account.add(ride)
        assert total == best_price_multi(arrival[: k + 1], tariffs).total_cents
    assert account.bill().total_cents == account.total_cents
    in_order = PricingAccount(tariffs)
    totals = [in_order.add(t) for t in oracle.sorted_trips(trips)]
    assert totals == sorted(totals)
    assert totals[-1] == account.total_cents
