"""Corrections re-derive the ride: stops travelled and times from the journey's stop
events, the price from them; the invoice and the export show corrected and cancelled trips."""

from __future__ import annotations

import base64
import datetime as dt
import json

import pytest

from backend.billing import repository as billing_repo
from backend.billing import service as billing_service
from backend.db import make_sessionmaker, transaction
from backend.passengers import disputes
from backend.passengers import service as passengers_service
from backend.timeutil import service_day_bounds
from backend.trips import repository as trips_repo
from backend.trips import service as trips_service
from tests.backend.conftest import post_batch
from tests.backend.synth import Rider, journey_batches

STOPS = [f"de:05974:10{k:02d}" for k in range(1, 11)]  # Soest
DAY = dt.date(2026, 11, 3)
AFTER_NOVEMBER = dt.datetime(2026, 12, 2, 12, tzinfo=dt.UTC)
OPERATOR = 1


@pytest.fixture
async def kurzstrecke(client, app, engine, vehicle):
    """A passenger riding four stops (a Kurzstrecke) on line R61; reconciled."""
    with transaction(make_sessionmaker(engine)) as session:
        passenger = passengers_service.register_passenger(session, "adult")
        device = passengers_service.register_device(session, passenger.passenger_id)
    key = base64.b64decode(device.device_key_b64)
    t0 = service_day_bounds(DAY)[0] + 4 * 3_600_000
    for body in journey_batches(vehicle.vehicle_id, "R61-1", STOPS, t0, [Rider(key, 0, 4)]):
        assert (await post_batch(client, vehicle, body)).status_code == 200
    trips_service.reconcile_day(app.state.sessions, DAY, app.state.resolvers, app.state.clock)
    with make_sessionmaker(engine)() as session:
        (trip,) = billing_service.effective_trips(session, passenger.passenger_id, DAY, DAY)
    assert (trip.board_stop_id, trip.alight_stop_id, trip.stops_travelled) == (
        STOPS[0],
        STOPS[4],
        4,
    )
    return trip


def arrival_at(session, trip, stop_id: str) -> int:
    events = trips_repo.vehicle_day_events(session, trip.service_day, trip.vehicle_id)
    return min(e.t for e in events if e.type == "arrival" and e.stop_id == stop_id)


def test_a_shortened_kurzstrecke_dispute_never_raises_the_bill(engine, kurzstrecke):
    """The rider says they got off after one stop: the corrected trip keeps its
    Kurzstrecke (one stop travelled, re-derived), ends at the arrival there, and costs no
    more than before."""
    trip = kurzstrecke
    sessions = make_sessionmaker(engine)
    with transaction(sessions) as session:
        (before,) = billing_service.close_month(session, "2026-11", AFTER_NOVEMBER)
        dispute = disputes.open_dispute(
            session, trip.passenger_id, trip.trip_id, "got off at the next stop", AFTER_NOVEMBER
        )
        _, rebilled = disputes.resolve_dispute(
            session,
            dispute.dispute_id,
            OPERATOR,
            disputes.Resolution.ADJUST,
            "confirmed by the driver",
            AFTER_NOVEMBER,
            alight_stop_id=STOPS[1],
        )
    assert rebilled is not None
    assert rebilled.invoice_version == 2
    with sessions() as session:
        (fixed,) = billing_service.effective_trips(session, trip.passenger_id, DAY, DAY)
        assert fixed.alight_stop_id == STOPS[1]
        assert fixed.stops_travelled == 1
        assert fixed.alight_time == arrival_at(session, trip, STOPS[1]) < trip.alight_time
        assert fixed.board_time == trip.board_time
        after = billing_repo.latest_invoice(session, trip.passenger_id, "2026-11")
    assert after is not None
    assert after.total_cents <= before.total_cents
    document = json.loads(after.document)
    (product,) = document["bill"]["products"]
    assert product["valid_from"] == trip.board_time
    (billed,) = document["trips"]
    assert billed["corrected"] is True
    assert billed["alight_time"] == fixed.alight_time


def test_moving_the_boarding_stop_rederives_both_ends(engine, kurzstrecke):
    trip = kurzstrecke
    sessions = make_sessionmaker(engine)
    with transaction(sessions) as session:
        disputes.correct_trip(
            session, trip.trip_id, OPERATOR, "boarded one stop later", AFTER_NOVEMBER,
            board_stop_id=STOPS[1],
        )  # fmt: skip
    with sessions() as session:
        (fixed,) = billing_service.effective_trips(session, trip.passenger_id, DAY, DAY)
        events = trips_repo.vehicle_day_events(session, DAY, trip.vehicle_id)
    departure = min(e.t for e in events if e.type == "departure" and e.stop_id == STOPS[1])
    assert (fixed.board_time, fixed.stops_travelled) == (departure, 3)
    assert fixed.alight_time == trip.alight_time


@pytest.mark.parametrize(
    ("field", "changes"),
    [
        ("alight_stop_id", {"alight_stop_id": "de:05978:2001"}),  # Unna: not on this journey
        ("alight_stop_id", {"board_stop_id": STOPS[5]}),  # alights before the new boarding
        ("board_stop_id", {"board_stop_id": "de:05978:2005"}),
    ],
)
def test_a_correction_to_stops_the_journey_does_not_serve_is_refused(
    engine, kurzstrecke, field, changes
):
    with (
        transaction(make_sessionmaker(engine)) as session,
        pytest.raises(disputes.DisputeError, match=field) as refused,
    ):
        disputes.correct_trip(
            session, kurzstrecke.trip_id, OPERATOR, "wrong", AFTER_NOVEMBER, **changes
        )
    assert refused.value.reason is disputes.DisputeErrorReason.NOT_ON_JOURNEY


def test_the_invoice_and_the_export_show_a_cancelled_trip_as_cancelled(engine, kurzstrecke):
    trip = kurzstrecke
    sessions = make_sessionmaker(engine)
    with transaction(sessions) as session:
        (first,) = billing_service.close_month(session, "2026-11", AFTER_NOVEMBER)
        disputes.correct_trip(
            session, trip.trip_id, OPERATOR, "paper ticket", AFTER_NOVEMBER, cancelled=True
        )
        invoice = billing_repo.latest_invoice(session, trip.passenger_id, "2026-11")
        export = passengers_service.export(session, trip.passenger_id)
    assert invoice is not None
    assert invoice.version == first.version + 1
    document = json.loads(invoice.document)
    assert (document["trips"], document["total_cents"]) == ([], 0)
    assert [t["trip_id"] for t in document["cancelled"]] == [trip.trip_id]
    exported = next(t for t in export["trips"] if t["trip_id"] == trip.trip_id)
    assert exported["billed"] is False
    assert exported["correction"]["cancelled"] is True
    assert exported["correction"]["reason"] == "paper ticket"
