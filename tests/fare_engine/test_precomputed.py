"""Shortcuts of the engine agree with the long way round: an offer's bill fields worked out
once, and pass groups summed per shape of a ride's options instead of ride by ride."""

from __future__ import annotations

from typing import Any

import pytest

from benchmarks.fares import Generator
from fare_engine import default_tariffs
from fare_engine.instance import _Builder
from fare_engine.offers import pass_detail, view_of
from fare_engine.pricing import party_seats, price_ordered
from fare_engine.trips import check_trips


@pytest.fixture(scope="module")
def months() -> list[list[Any]]:
    gen = Generator(7)
    return [gen.passenger()[1] for _ in range(40)]


def test_an_offers_bill_fields_are_what_the_offer_says(months):
    tariffs = default_tariffs()
    seen = 0
    for trips in months:
        order = check_trips(trips, tariffs[0])
        priced = price_ordered([trips[k] for k in order], order, tariffs, "auto")
        for cand, _positions in priced.groups:
            offer = cand.offer
            detail = offer.detail
            if offer.kind == "pass" and offer.period is not None:
                detail = pass_detail(offer.period.kind, offer.period.trips_must_end_inside)
            assert offer.bill_fields == {
                "product": offer.product_id,
                "name": offer.product_name,
                "tariff_id": offer.tariff.tariff_id,
                "kind": offer.kind,
                "level": offer.level,
                "scope": offer.scope,
                "rider_category": offer.rider,
                "detail": detail,
                "provenance": offer.entry.provenance_text(),
            }
            seen += 1
    assert seen > 100


def _groups_ride_by_ride(builder: _Builder) -> list[tuple[int, int, int]]:
    """(option group, trips mask, person) of every pass group, in the order first met,
    looking at every ride's options (what `_Builder._passes` does per shape)."""
    groups: list[list[Any]] = []
    for v, view in enumerate(builder.views):
        touched = builder.touched[v]
        of_person: dict[int, dict[int, list[Any]]] = {}
        for (person, _), (facts, trip, ride_mask) in builder.rides[v].items():
            mine = of_person.setdefault(person, {})
            untouched_seen: set[tuple[str, str | None]] = set()
            for opt in view.pass_options(trip, facts):
                if opt.via is not None and builder.prune and opt.via not in touched:
                    marker = (opt.offer.product_id, opt.offer.level)
                    if marker in untouched_seen:
                        continue
                    untouched_seen.add(marker)
                group = mine.get(opt.group)
                if group is None:
                    mine[opt.group] = group = [opt.group, ride_mask, person]
                    groups.append(group)
                else:
                    group[1] |= ride_mask
    return [(g, mask, person) for g, mask, person in groups]


@pytest.mark.parametrize("prune", [True, False])
def test_pass_groups_per_shape_are_those_ride_by_ride(months, prune):
    tariffs = default_tariffs()
    views = [view_of(t) for t in tariffs]
    for trips in months:
        order = check_trips(trips, tariffs[0])
        seats, persons, rides, _labels = party_seats([trips[k] for k in order])
        builder = _Builder(seats, views, prune, persons, rides)
        expected = _groups_ride_by_ride(builder)
        inst = builder.build()
        assert inst.scope_masks == [mask for _, mask, _ in expected]
