"""Parties: a rider travelling with companions (`Trip.party`), priced as the tariff's own
examples say. Every person and bicycle on a ride needs a valid product: per-person tickets
per person, a TagesTicket24 with up to 3 children free, a 5-person TagesTicket24, a
bicycle ticket per bicycle. Prices are taken from the tariff files, not typed in."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fare_engine import FareInputError, FareInputReason, PricingAccount, Trip, best_price_multi
from fare_engine.instance import build_instance
from fare_engine.offers import view_of
from fare_engine.pricing import party_seats
from fare_engine.tariff import Tariff
from fare_engine.trips import check_trips
from tests.fare_engine import oracle
from tests.fare_engine.conftest import (
    LIPPSTADT_BF,
    SASSENDORF_KURPARK,
    SOEST_BF,
    SOEST_MARKT,
    trip,
)
from tests.fare_engine.test_properties import PROPERTY_SETTINGS, _start_ms, _tariff_sets


def _price(tariff: Tariff, product_id: str, level: str | None, rider: str) -> int:
    entry = tariff.price(tariff.product(product_id), level, rider)
    assert entry is not None
    return entry.cents


def _day_out(party: dict[str, int]) -> list:
    """Soest -> Lippstadt (level 4, Kreis Soest) in the morning and back in the afternoon."""
    return [
        trip(SOEST_BF, LIPPSTADT_BF, "2026-03-07 09:00", 40, party=party),
        trip(LIPPSTADT_BF, SOEST_BF, "2026-03-07 16:00", 40, party=party),
    ]


def test_a_family_of_two_adults_and_three_children_on_a_day_out(bibo_tariffs):
    ruhr = bibo_tariffs[0]
    trips = _day_out({"adult": 1, "child": 3})
    bill = best_price_multi(trips, bibo_tariffs)
    adult_day = _price(ruhr, "tagesticket24", "4", "adult")
    five = _price(ruhr, "tagesticket24_5", "4", "adult")
    # One TagesTicket24 with the three children free + one for the other adult, or one
    # TagesTicket24 for 5 persons: whichever the tariff makes cheaper.
    expected = min(2 * adult_day, five)
    assert bill.total_cents == expected
    everyone = {"rider", "adult 1", "child 1", "child 2", "child 3"}
    for k in (0, 1):
        paid_for = {s.person for p in bill.products for s in p.seats if s.trip == k}
        assert paid_for == everyone
        assert set(bill.trips[k].persons) == everyone
    if five < 2 * adult_day:
        (product,) = bill.products
        assert (product.product, product.level, product.covers) == ("tagesticket24_5", "4", [0, 1])
    assert best_price_multi(trips, bibo_tariffs, method="milp").total_cents == expected
    assert best_price_multi(trips, bibo_tariffs, method="plain_milp").total_cents == expected


def test_one_adult_with_three_children_takes_them_free_on_the_tagesticket24(bibo_tariffs):
    ruhr = bibo_tariffs[0]
    trips = _day_out({"child": 3})
    bill = best_price_multi(trips, bibo_tariffs)
    adult_day = _price(ruhr, "tagesticket24", "4", "adult")
    assert bill.total_cents == adult_day
    (product,) = bill.products
    assert product.product == "tagesticket24"
    assert len(product.seats) == 8  # 4 people x 2 rides


def test_a_fourth_child_needs_a_ticket_of_its_own(bibo_tariffs):
    ruhr = bibo_tariffs[0]
    trips = _day_out({"child": 4})
    adult_day = _price(ruhr, "tagesticket24", "4", "adult")
    child_day = _price(ruhr, "tagesticket24", "4", "child")
    five = _price(ruhr, "tagesticket24_5", "4", "adult")
    child_alone = oracle.best_total(
        [t.model_copy(update={"rider_category": "child", "party": None}) for t in trips],
        bibo_tariffs,
    )
    expected = min(adult_day + min(child_day, child_alone), five)
    assert best_price_multi(trips, bibo_tariffs).total_cents == expected


def test_a_rider_with_a_bike(bibo_tariffs):
    ruhr, eezy = bibo_tariffs
    trips = _day_out({"bike": 1})
    bill = best_price_multi(trips, bibo_tariffs)
    rider_alone = best_price_multi(
        [t.model_copy(update={"party": None}) for t in trips], bibo_tariffs
    ).total_cents
    bike_day = _price(ruhr, "fahrradtagesticket24", "4", "bike")
    bike_cap = _price(eezy, "eezy_24h_cap", None, "bike")
    # The bike's eezy add-ons (one per ride) are the other option.
    bike_fares = [
        next(f.cents for f in _facts(eezy, t).distance_fares)
        for t in (t.model_copy(update={"rider_category": "bike", "party": None}) for t in trips)
    ]
    assert bill.total_cents == rider_alone + min(bike_day, bike_cap, sum(bike_fares))
    bike_products = [p for p in bill.products if any(s.person == "bike 1" for s in p.seats)]
    assert bike_products
    assert all(p.rider_category == "bike" for p in bike_products)


def test_a_bike_in_the_westfalentarif_alone_needs_the_fahrradtagesticket24(tariff):
    trips = _day_out({"bike": 1})[:1]
    bill = best_price_multi(trips, [tariff])
    bike = [p for p in bill.products if p.rider_category == "bike"]
    assert [(p.product, p.level) for p in bike] == [("fahrradtagesticket24", "4")]


def test_a_6_year_old_not_yet_at_school_rides_free(bibo_tariffs):
    _ruhr, eezy = bibo_tariffs
    alone = [trip(SOEST_BF, SASSENDORF_KURPARK, "2026-03-03 08:00", rider="preschool")]
    bill = best_price_multi(alone, bibo_tariffs)
    assert bill.total_cents == 0
    # A school child of 6 pays the child fare; eezy alone charges the preschooler as a child.
    assert (
        best_price_multi(
            [alone[0].model_copy(update={"rider_category": "child"})], bibo_tariffs
        ).total_cents
        > 0
    )
    assert best_price_multi(alone, [eezy]).total_cents > 0
    # As a companion: nothing extra.
    with_kid = [trip(SOEST_BF, SASSENDORF_KURPARK, "2026-03-03 08:00", party={"preschool": 1})]
    rider_only = [trip(SOEST_BF, SASSENDORF_KURPARK, "2026-03-03 08:00")]
    assert (
        best_price_multi(with_kid, bibo_tariffs).total_cents
        == best_price_multi(rider_only, bibo_tariffs).total_cents
    )


def _month_of_commuting(rider: str) -> list:
    trips = []
    for day in range(2, 28):
        if day % 7 in (0, 1):
            continue
        trips.append(trip(SOEST_BF, LIPPSTADT_BF, f"2026-03-{day:02d} 07:10", 40, rider=rider))
        trips.append(trip(LIPPSTADT_BF, SOEST_BF, f"2026-03-{day:02d} 17:10", 40, rider=rider))
    return trips


@pytest.mark.parametrize(
    ("rider", "product"),
    [("adult_sozial", "deutschlandticket_sozial"), ("adult_job", "deutschlandticket_job")],
)
def test_deutschlandticket_sozial(bibo_tariffs, rider, product):
    ruhr = bibo_tariffs[0]
    price = _price(ruhr, product, None, rider)
    bill = best_price_multi(_month_of_commuting(rider), bibo_tariffs)
    assert [(p.product, p.price_cents) for p in bill.products] == [(product, price)]
    adult = best_price_multi(_month_of_commuting("adult"), bibo_tariffs)
    assert [p.product for p in adult.products] == ["deutschlandticket"]
    # Sold only to eligible riders; everything else is sold to them as to an adult.
    assert ruhr.price(ruhr.product(product), None, "adult") is None
    one = [trip(SOEST_BF, SOEST_MARKT, "2026-03-03 08:00", rider=rider)]
    adult_one = [trip(SOEST_BF, SOEST_MARKT, "2026-03-03 08:00")]
    assert (
        best_price_multi(one, bibo_tariffs).total_cents
        == best_price_multi(adult_one, bibo_tariffs).total_cents
    )


def test_the_bill_says_who_each_product_pays_for(bibo_tariffs):
    trips = _day_out({"adult": 1, "bike": 1})
    bill = best_price_multi(trips, bibo_tariffs)
    data = bill.model_dump()
    for product in data["products"]:
        assert set(product) >= {
            "name", "kind", "level", "scope", "price_cents", "valid_from", "valid_to",
            "covers", "provenance", "seats",
        }  # fmt: skip
        assert sorted({s["trip"] for s in product["seats"]}) == sorted(product["covers"])
    seats = sorted((s.trip, s.person) for p in bill.products for s in p.seats)
    assert seats == sorted((k, who) for k in (0, 1) for who in ("rider", "adult 1", "bike 1"))
    assert "for adult 1" in bill.to_text() or "adult 1" in bill.to_text()


@pytest.mark.parametrize(
    ("party", "field"),
    [
        ({"child": -1}, "party.child"),
        ({"adult": 10}, "party"),
        ({"bike": 6}, "party.bike"),
        ({"dog": 1}, "party.dog"),
    ],
)
def test_a_bad_party_is_refused_naming_the_field(bibo_tariffs, party, field):
    trips = [trip(SOEST_BF, SOEST_MARKT, "2026-03-03 08:00", party=party)]
    with pytest.raises(FareInputError) as info:
        best_price_multi(trips, bibo_tariffs)
    assert info.value.field == field
    assert info.value.trip_index == 0
    assert info.value.reason in (
        FareInputReason.BAD_PARTY,
        FareInputReason.UNKNOWN_RIDER_CATEGORY,
    )


def test_no_party_is_the_rider_alone(bibo_tariffs):
    a = trip(SOEST_BF, SOEST_MARKT, "2026-03-03 08:00", party={})
    b = trip(SOEST_BF, SOEST_MARKT, "2026-03-03 08:00", party={"child": 0})
    assert a.party is None
    assert b.party is None


def _facts(tariff, t):
    from fare_engine.offers import view_of

    facts = view_of(tariff).ride(t)
    assert facts is not None
    return facts


# --- against the brute force --------------------------------------------------------
PARTY_CATEGORIES = ("adult", "child", "infant", "preschool", "bike")


@st.composite
def party_instances(draw):
    """Ruhr-Lippe + eezy trips (rider adult, child or adult_sozial), some with a small
    party, at most 8 seats in all (the oracle's limit)."""
    tariffs, stops, start = _tariff_sets()["ruhr_lippe+eezy"]
    clock = _start_ms(start, tariffs[0]) + draw(st.integers(0, 36 * 60)) * 60_000
    rider = draw(st.sampled_from(["adult", "adult", "child", "adult_sozial"]))
    trips, seats = [], 0
    for _ in range(draw(st.integers(1, 5))):
        gap = draw(st.one_of(st.integers(0, 40), st.integers(40, 600), st.integers(600, 3000)))
        minutes = draw(st.integers(0, 80))
        board = clock + gap * 60_000
        party: dict[str, int] = {}
        if draw(st.booleans()):
            for _ in range(draw(st.integers(1, 3))):
                category = draw(st.sampled_from(PARTY_CATEGORIES))
                party[category] = party.get(category, 0) + 1
        if seats + 1 + sum(party.values()) > oracle.MAX_TRIPS:
            party = {}
        if seats + 1 > oracle.MAX_TRIPS:
            break
        seats += 1 + sum(party.values())
        trips.append(
            Trip(
                board_stop_id=draw(st.sampled_from(stops)),
                alight_stop_id=draw(st.sampled_from(stops)),
                board_time=board,
                alight_time=board + minutes * 60_000,
                rider_category=rider,
                stops_travelled=draw(st.sampled_from([None, 2, 5])),
                farthest_stop_id=draw(st.sampled_from([None] * 6 + stops)),
                joins_previous=draw(st.booleans()),
                party=party or None,
            )
        )
        clock = board + minutes * 60_000
    return tariffs, trips


@PROPERTY_SETTINGS
@given(party_instances())
def test_parties_dp_milp_plain_milp_and_brute_force_agree(case):
    tariffs, trips = case
    expected = oracle.best_total(trips, tariffs)
    assert best_price_multi(trips, tariffs, method="dp").total_cents == expected
    assert best_price_multi(trips, tariffs, method="milp").total_cents == expected
    assert best_price_multi(trips, tariffs, method="plain_milp").total_cents == expected


@PROPERTY_SETTINGS
@given(party_instances())
def test_parties_every_seat_is_paid_for_once(case):
    tariffs, trips = case
    bill = best_price_multi(trips, tariffs)
    paid = sorted((s.trip, s.person) for p in bill.products for s in p.seats)
    # A seat names its trip by the caller's index, as ``bill.trips[j].index`` does: the
    # bill lists trips in boarding order, which differs where two board at once.
    expected = sorted((t.index, who) for t in bill.trips for who in t.persons)
    assert sorted(t.index for t in bill.trips) == list(range(len(trips)))
    assert paid == expected
    assert bill.total_cents == sum(p.price_cents for p in bill.products)


def test_seats_name_the_callers_trip_where_two_board_at_once():
    # Found by the property test above: the bill lists trips in boarding order (ties by
    # content, so the one without companions first), while seats name the caller's index.
    board = 1_774_501_200_000
    ride = dict(
        board_stop_id="de:05974:1001", alight_stop_id="de:05974:1001", rider_category="adult"
    )
    trips = [
        Trip(**ride, board_time=board, alight_time=board, party={"adult": 1}),
        Trip(**ride, board_time=board, alight_time=board),
    ]
    bill = best_price_multi(trips)
    assert [t.index for t in bill.trips] == [1, 0]
    assert bill.trips[1].persons == ["rider", "adult 1"]
    companion = [s.trip for p in bill.products for s in p.seats if s.person == "adult 1"]
    assert companion == [0]


@PROPERTY_SETTINGS
@given(party_instances(), st.randoms(use_true_random=False))
def test_parties_running_total_equals_the_batch_best_price(case, rnd):
    tariffs, trips = case
    trips = [t.model_copy(update={"joins_previous": False}) for t in trips]
    arrival = list(trips)
    rnd.shuffle(arrival)
    account = PricingAccount(tariffs)
    totals = [account.add(t) for t in arrival]
    assert totals == sorted(totals)
    assert account.total_cents == best_price_multi(arrival, tariffs).total_cents


def _bits(mask: int) -> list[int]:
    return [k for k in range(mask.bit_length()) if mask >> k & 1]


@PROPERTY_SETTINGS
@given(party_instances())
def test_pruning_only_drops_a_party_candidate_another_choice_beats(case):
    """Pruning only drops a candidate when another choice is never dearer and covers at
    least the same trips: every party candidate of the unpruned formulation (the plain
    integer programme's) is covered by a kept candidate at no more money, or costs at
    least what its seats cost one by one."""
    tariffs, trips = case
    order = check_trips(trips, tariffs[0])
    seats, persons, rides, _labels = party_seats([trips[k] for k in order])
    views = [view_of(t) for t in tariffs]
    full = build_instance(seats, views, prune=False, persons=persons, rides=rides)
    kept = build_instance(seats, views, prune=True, persons=persons, rides=rides)
    kept_cands = kept.all_cands()
    for c in full.all_cands():
        if not c.group:
            continue
        if sum(kept.min_single[k] for k in _bits(c.mask)) <= c.price:
            continue
        assert any(k.mask & c.mask == c.mask and k.price <= c.price for k in kept_cands), c


def test_a_ride_without_a_party_is_absorbed_by_the_riders_pass(bibo_tariffs):
    """Once a trip has a party, the running total still absorbs a later ride of the rider
    alone into a pass of the cover bought for the rider, without re-solving."""
    trips = _month_of_commuting("adult")
    trips[0] = Trip.model_validate({**trips[0].model_dump(), "party": {"child": 1, "bike": 1}})
    account = PricingAccount(bibo_tariffs)
    totals = [account.add(t) for t in trips]
    assert totals == sorted(totals)
    assert account.fast_adds > 0
    assert account.total_cents == best_price_multi(trips, bibo_tariffs).total_cents
