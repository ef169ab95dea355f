"""What the operator pages show, gathered from the domains' repositories: the dashboard's
figures, trip lists with their flags, a trip's review, the dispute queue and a passenger's
invoices. The routes in ``backend/operators/web/routes.py`` only render it."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.orm import Session

from backend import models
from backend.billing import repository as billing_repo
from backend.const import RECENT_TRIPS_LIMIT, REVENUE_MONTHS
from backend.operators import repository as operators_repo
from backend.operators import service as operators_service
from backend.passengers import disputes as disputes_service
from backend.passengers import repository as passengers_repo
from backend.trips import repository as trips_repo


@dataclass(frozen=True, slots=True)
class Dashboard:
    per_day: dict[dt.date, int]
    """Billed trips per service day of the window."""
    confidences: list[float]
    """Every billed trip's detection confidence in the window."""
    revenue: list[tuple[str, int]]
    """(month, ledger balance in cents), the newest ``REVENUE_MONTHS``."""
    newest_day: dt.date | None
    """The newest service day with trips (to offer when the window holds none)."""
    open_disputes: int


def dashboard(session: Session, first: dt.date, last: dt.date) -> Dashboard:
    return Dashboard(
        per_day=operators_repo.trips_per_day(session, first, last),
        confidences=operators_repo.confidences(session, first, last),
        revenue=operators_repo.revenue_by_month(session, REVENUE_MONTHS),
        newest_day=operators_repo.newest_trip_day(session),
        open_disputes=operators_repo.open_disputes_count(session),
    )


def trips(
    session: Session,
    day: dt.date | None,
    line: str | None,
    vehicle_id: str | None,
    max_confidence: float | None,
) -> list[models.Trip]:
    """A day's trips (the newest ``RECENT_TRIPS_LIMIT`` across days without one), filtered."""
    found = (
        trips_repo.day_trips(session, day)
        if day is not None
        else operators_repo.recent_trips(session, RECENT_TRIPS_LIMIT)
    )
    return operators_service.filter_trips(found, line, vehicle_id, max_confidence)


def trip_flags(session: Session, trips: Sequence[models.Trip]) -> tuple[set[str], set[str]]:
    """Of these trips, the ids of the corrected ones and of the disputed ones."""
    return operators_repo.trip_flags(session, [t.trip_id for t in trips])


@dataclass(frozen=True, slots=True)
class TripReview:
    detail: operators_service.TripDetail
    trace: operators_service.Trace
    fix: models.TripCorrection | None
    """The correction in force (the newest), if any."""
    operator_names: dict[int, str]
    """The names of the operators who corrected the trip ("?" for one since deleted)."""
    journey_stops: list[str]
    """The stops of the trip's journey, in order (the choices for a correction)."""


def trip_review(session: Session, trip: models.Trip) -> TripReview:
    detail = operators_service.trip_detail(session, trip.trip_id) or (
        operators_service.TripDetail(trip, [], [])
    )
    trace = operators_service.trip_trace(session, trip.trip_id) or operators_service.Trace(
        trip.trip_id, trip.vehicle_id
    )
    ids = sorted({c.operator_id for c in detail.corrections})
    names = operators_repo.operator_names(session, ids)
    return TripReview(
        detail=detail,
        trace=trace,
        fix=billing_repo.latest_corrections(session, [trip.trip_id]).get(trip.trip_id),
        operator_names={i: names.get(i, "?") for i in ids},
        journey_stops=operators_repo.journey_stops(session, trip),
    )


@dataclass(frozen=True, slots=True)
class QueuedDispute:
    dispute: models.Dispute
    trip: models.Trip | None
    """None once the trip is gone (deleted with its passenger's account)."""
    journey_stops: list[str]
    """An open dispute's journey stops (the choices for an adjustment); else empty."""


def dispute_queue(session: Session, status: str | None) -> list[QueuedDispute]:
    """Disputes in ``status`` (every one for None), each with its trip and, while open, its
    journey's stops: three queries, whatever the queue's length."""
    disputes = disputes_service.dispute_queue(session, status)
    trips = trips_repo.trips_by_id(session, sorted({d.trip_id for d in disputes}))
    open_trips = [t for d in disputes if d.status == "open" and (t := trips.get(d.trip_id))]
    journeys = operators_repo.journey_stops_of(session, open_trips)
    return [
        QueuedDispute(
            d,
            trips.get(d.trip_id),
            journeys.get(d.trip_id, []) if d.trip_id in trips and d.status == "open" else [],
        )
        for d in disputes
    ]


@dataclass(frozen=True, slots=True)
class PassengerInvoices:
    invoices: list[models.Invoice]
    """Newest month and version first."""
    exists: bool
    """False once the passenger deleted their account (their invoices are kept)."""
    category: str | None
    ledger: list[tuple[str, int]]
    """(month, ledger balance in cents)."""


def passenger_invoices(session: Session, passenger_id: str) -> PassengerInvoices | None:
    """A passenger's invoices and ledger (None: no such passenger, now or before)."""
    rows = billing_repo.passenger_invoices(session, passenger_id)
    exists = passengers_repo.passenger(session, passenger_id) is not None
    if not rows and not exists:
        return None
    return PassengerInvoices(
        invoices=sorted(rows, key=lambda i: (i.month, i.version), reverse=True),
        exists=exists,
        category=passengers_repo.passenger_category(session, passenger_id),
        ledger=operators_repo.passenger_ledger_by_month(session, passenger_id),
    )
