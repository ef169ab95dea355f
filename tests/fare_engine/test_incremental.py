"""The app's running total: `PricingAccount.add` after each trip, equal to the batch bill."""

from __future__ import annotations

from fare_engine import PricingAccount, best_price_multi
from tests.fare_engine.conftest import LIPPSTADT_BF, SOEST_BF, SOEST_MARKT, trip

WORKDAYS = [2, 3, 4, 5, 6, 9, 10, 11, 12, 13, 16, 17, 18, 19, 20, 23, 24, 25, 26, 27]


def _commute():
    return [
        trip(a, b, f"2026-03-{day:02d} {hour:02d}:00", minutes=40)
        for day in WORKDAYS
        for hour, (a, b) in ((7, (SOEST_BF, LIPPSTADT_BF)), (17, (LIPPSTADT_BF, SOEST_BF)))
    ]


def test_the_running_total_grows_to_the_deutschlandticket_and_stays_there(bibo_tariffs):
    account = PricingAccount(bibo_tariffs)
    totals = [account.add(t) for t in _commute()]
    assert totals[:3] == [620, 1080, 1080 + 620]  # EinzelTicket, then a TagesTicket24 ...
    assert totals[-1] == 6300
    assert totals == sorted(totals)
    first_at_cap = totals.index(6300)
    assert account.fast_adds >= len(totals) - first_at_cap - 1  # absorbed without solving
    assert [p.product for p in account.bill().products] == ["deutschlandticket"]


def test_a_late_upload_gives_the_batch_bill(bibo_tariffs):
    trips = _commute()[:10]
    late, rest = trips[3], trips[:3] + trips[4:]
    account = PricingAccount(bibo_tariffs)
    for t in rest:
        account.add(t)
    account.add(late)
    batch = best_price_multi(account.trips, bibo_tariffs)
    assert account.total_cents == batch.total_cents
    assert account.bill().model_dump() == batch.model_dump()


def test_a_trip_inside_a_changing_ticket_is_re_solved(bibo_tariffs):
    # Two rides on one EinzelTicket with a change; a third ride uploaded late sits between
    # them, so that ticket no longer covers consecutive rides and the account re-solves.
    account = PricingAccount(bibo_tariffs)
    account.add(trip(SOEST_BF, SOEST_MARKT, "2026-03-02 07:00", minutes=10))
    account.add(trip(SOEST_MARKT, LIPPSTADT_BF, "2026-03-02 07:40", minutes=40))
    resolves = account.resolves
    total = account.add(trip(SOEST_MARKT, SOEST_BF, "2026-03-02 07:15", minutes=10))
    assert account.resolves == resolves + 1
    assert total == best_price_multi(account.trips, bibo_tariffs).total_cents
