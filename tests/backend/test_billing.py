"""The ledger: best price per month, append-only, re-billed by reversal, idempotent close."""

from __future__ import annotations

import base64
import datetime as dt
import json

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from backend.billing import repository as billing_repo
from backend.billing import service as billing_service
from backend.db import make_sessionmaker, transaction
from backend.passengers import service as passengers_service
from backend.timeutil import service_day_bounds
from backend.trips import service as trips_service
from tests.backend.conftest import post_batch
from tests.backend.synth import Rider, journey_batches

STOPS = [f"de:05974:10{k:02d}" for k in range(1, 11)]
DAYS = [dt.date(2026, 11, d) for d in (3, 4, 5)]
AFTER_NOVEMBER = dt.datetime(2026, 12, 2, 12, tzinfo=dt.UTC)


def morning(day: dt.date) -> int:
    return service_day_bounds(day)[0] + 4 * 3_600_000  # 07:00 local


@pytest.fixture
async def rider(client, app, engine, vehicle):
    """A passenger riding Soest -> Lippstadt on three days; everything reconciled."""
    with transaction(make_sessionmaker(engine)) as session:
        passenger = passengers_service.register_passenger(session, "adult")
        device = passengers_service.register_device(session, passenger.passenger_id)
    key = base64.b64decode(device.device_key_b64)
    for n, day in enumerate(DAYS):
        for body in journey_batches(
            vehicle.vehicle_id,
            f"R61-{n}",
            STOPS,
            morning(day),
            [Rider(key, 0, 8)],
            boot_id=f"b{n}",
        ):
            assert (await post_batch(client, vehicle, body)).status_code == 200
        state = app.state
        trips_service.reconcile_day(state.sessions, day, state.resolvers, state.clock)
    return passenger.passenger_id


def test_closing_a_month_invoices_the_best_price_once(engine, rider):
    sessions = make_sessionmaker(engine)
    with transaction(sessions) as session:
        (invoice,) = billing_service.close_month(session, "2026-11", AFTER_NOVEMBER)
    document = json.loads(invoice.document)
    assert len(document["trips"]) == 3
    assert invoice.total_cents == document["bill"]["total_cents"] > 0
    assert document["singles_total_cents"] >= invoice.total_cents
    with transaction(sessions) as session:
        assert billing_service.close_month(session, "2026-11", AFTER_NOVEMBER) == []
        assert billing_repo.ledger_balance(session, rider, "2026-11") == invoice.total_cents
        assert len(billing_repo.ledger_entries(session, rider)) == 1


def test_a_month_not_ended_cannot_be_closed(engine, rider):
    with (
        transaction(make_sessionmaker(engine)) as session,
        pytest.raises(ValueError, match="ended"),
    ):
        billing_service.close_month(session, "2026-11", dt.datetime(2026, 11, 30, tzinfo=dt.UTC))


def test_a_correction_is_a_reversal_plus_a_new_charge(engine, rider):
    sessions = make_sessionmaker(engine)
    with transaction(sessions) as session:
        (first,) = billing_service.close_month(session, "2026-11", AFTER_NOVEMBER)
        trip = billing_service.effective_trips(session, rider, DAYS[0], DAYS[0])[0]
        billing_repo.add_correction(
            session,
            trip_id=trip.trip_id,
            cancelled=True,
            reason="rode with a paper ticket",
            operator_id=1,
        )
        (second,) = billing_service.close_month(session, "2026-11", AFTER_NOVEMBER)
    assert second.version == first.version + 1
    assert second.total_cents < first.total_cents
    with sessions() as session:
        kinds = [(e.kind, e.amount_cents) for e in billing_repo.ledger_entries(session, rider)]
        assert kinds == [
            ("charge", first.total_cents),
            ("reversal", -first.total_cents),
            ("charge", second.total_cents),
        ]
        assert billing_repo.ledger_balance(session, rider, "2026-11") == second.total_cents


def test_closed_days_are_billed_before_the_month_ends(engine, rider):
    sessions = make_sessionmaker(engine)
    now = dt.datetime(2026, 11, 4, 23, tzinfo=dt.UTC)  # the 4th has not ended + 6 h yet
    with transaction(sessions) as session:
        (result,) = billing_service.rebill_closed_days(session, now)
        assert result.changed
        assert billing_service.rebill_closed_days(session, now)[0].changed is False
        one_day = billing_repo.ledger_balance(session, rider, "2026-11")
    with transaction(sessions) as session:
        billing_service.rebill_closed_days(session, AFTER_NOVEMBER)
        assert billing_repo.ledger_balance(session, rider, "2026-11") > one_day


def test_the_database_refuses_to_change_the_ledger(engine, rider):
    sessions = make_sessionmaker(engine)
    with transaction(sessions) as session:
        billing_service.close_month(session, "2026-11", AFTER_NOVEMBER)
    for statement in ("UPDATE ledger_entries SET amount_cents = 0", "DELETE FROM ledger_entries"):
        with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
            conn.execute(text(statement))
