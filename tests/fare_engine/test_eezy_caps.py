"""The eezy caps never lower a bill in Kreis Soest, Kreis Unna and the HSK (the finding of
issue 15, docs/tariff-sources.md "eezy caps").

- 24 h cap: 25 € (assumed; published per association 19-25 €, NRW-wide 30 €). Every stop
  bibo prices lies in Ruhr-Lippe, where a level-5 TagesTicket24 (13.90 €, child 8.30 €;
  FahrradTagesTicket24 8.30 € for a bike) covers every ride for 24 h from the first, also
  rides that do not end inside the cap's window. Even the lowest published cap (19 €) is
  dearer.
- Month cap: follows the Deutschlandticket (63 € in 2026), which covers every ride of the
  calendar month: the cap can only tie with it. Bikes are outside the month cap.
So the caps stay in the tariff (they are the published rules, and would bind with a
higher TagesTicket24 or with trips outside Ruhr-Lippe), and this test states that they
change no best price here.
"""

from __future__ import annotations

from hypothesis import given

from fare_engine import best_price_multi
from fare_engine.tariff import Tariff
from tests.fare_engine.test_parties import party_instances
from tests.fare_engine.test_properties import PROPERTY_SETTINGS, instances


def _without_caps(eezy: Tariff) -> Tariff:
    spec = eezy.spec.model_copy(
        update={"products": [p for p in eezy.spec.products if getattr(p, "caps", None) is None]}
    )
    return Tariff(spec, eezy._stop_list)


def test_the_24h_cap_is_dearer_than_a_level_5_tagesticket24_for_every_rider(bibo_tariffs):
    ruhr, eezy = bibo_tariffs
    cap = eezy.product("eezy_24h_cap")
    day = {"adult": "tagesticket24", "child": "tagesticket24", "bike": "fahrradtagesticket24"}
    for rider in cap.riders:
        cap_price = eezy.price(cap, None, rider)
        pass_price = ruhr.price(ruhr.product(day[rider]), "5", rider)
        assert cap_price is not None
        assert pass_price is not None
        assert pass_price.cents < cap_price.cents, rider
    assert {a.teilraum for a in ruhr.spec.areas} == {"Ruhr-Lippe"}
    assert ruhr.level("5").pass_scope == "same_teilraum"


def test_the_month_cap_is_no_cheaper_than_the_deutschlandticket(bibo_tariffs):
    ruhr, eezy = bibo_tariffs
    cap = eezy.product("eezy_month_cap")
    ticket = ruhr.product("deutschlandticket")
    assert "bike" not in cap.riders
    for rider in cap.riders:
        cap_price = eezy.price(cap, None, rider)
        dt_price = ruhr.price(ticket, None, rider)
        assert cap_price is not None
        assert dt_price is not None
        assert dt_price.cents <= cap_price.cents


@PROPERTY_SETTINGS
@given(instances(riders=("adult", "child")))
def test_the_caps_change_no_best_price_in_the_three_kreise(case):
    tariffs, trips = case
    if tariffs[-1].tariff_id != "eezy_westfalen_2026":
        return
    uncapped = [tariffs[0], _without_caps(tariffs[1])]
    assert (
        best_price_multi(trips, tariffs).total_cents
        == best_price_multi(trips, uncapped).total_cents
    )


@PROPERTY_SETTINGS
@given(party_instances())
def test_the_caps_change_no_best_price_for_parties_and_bikes(case):
    tariffs, trips = case
    uncapped = [tariffs[0], _without_caps(tariffs[1])]
    assert (
        best_price_multi(trips, tariffs).total_cents
        == best_price_multi(trips, uncapped).total_cents
    )
