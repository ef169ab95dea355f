"""What the operator pages show, gathered from the domains' repositories: the dashboard's
figures, paged lists (trips, disputes, tickets held elsewhere, invoices, passengers), a
trip's review and fare, the search, a passenger on one page, detection quality and daily
revenue. The routes in ``backend/operators/web/`` only render it."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

import fare_engine
from backend import models
from backend.billing import presentation
from backend.billing import repository as billing_repo
from backend.billing import service as billing_service
from backend.const import REVENUE_MONTHS
from backend.operators import repository as operators_repo
from backend.operators import service as operators_service
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


@dataclass(frozen=True, slots=True)
class PassengerInvoices:
    invoices: Page[models.Invoice]
    """Newest month and version first."""
    exists: bool
    """False once the passenger deleted their account (their invoices are kept)."""
    category: str | None
    ledger: list[tuple[str, int]]
    """(month, ledger balance in cents)."""


def passenger_invoices(
    session: Session, passenger_id: str, paging: Paging
) -> PassengerInvoices | None:
    """A page of the passenger's invoices, and their ledger (None: no such passenger, now or
    before)."""
    listed = invoice_page(session, passenger_id, paging)
    exists = passengers_repo.passenger(session, passenger_id) is not None
    ledger = operators_repo.passenger_ledger_by_month(session, passenger_id)
    if not listed.items and not exists and not ledger:
        return None
    return PassengerInvoices(
        invoices=listed,
        exists=exists,
        category=passengers_repo.passenger_category(session, passenger_id),
        ledger=ledger,
    )


# --- paging, search, a passenger on one page, detection quality, daily revenue ---------------


T = TypeVar("T")

TripQuery = operators_repo.TripQuery
"""The trip list's filters (the routes build one; the repository reads it)."""


@dataclass(frozen=True, slots=True)
class Paging:
    """Offset paging: ``page`` counts from 1, ``size`` rows a page."""

    page: int
    size: int

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.size


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a list; ``has_next`` says whether another follows."""

    items: list[T]
    paging: Paging
    has_next: bool

    @property
    def first_number(self) -> int:
        """The 1-based number of the page's first row (0 on an empty page)."""
        return self.paging.offset + 1 if self.items else 0

    @property
    def last_number(self) -> int:
        return self.paging.offset + len(self.items)


def _page(rows: list[T], paging: Paging) -> Page[T]:
    """A page from up to ``size + 1`` rows read (the extra one only says more follow)."""
    return Page(rows[: paging.size], paging, len(rows) > paging.size)


def trips_page(session: Session, q: TripQuery, paging: Paging) -> Page[models.Trip]:
    return _page(operators_repo.trips_matching(session, q, paging.offset, paging.size + 1), paging)


def trips_for_export(session: Session, q: TripQuery, limit: int) -> list[models.Trip]:
    """Every trip ``q`` matches, in its order, up to ``limit``."""
    return operators_repo.trips_matching(session, q, 0, limit)


def dispute_page(session: Session, status: str | None, paging: Paging) -> Page[QueuedDispute]:
    """A page of the dispute queue, each with its trip and (while open) its journey's
    stops: three queries, whatever the page size."""
    found = _page(
        operators_repo.disputes_page(session, status, paging.offset, paging.size + 1), paging
    )
    return Page(_queued(session, found.items), paging, found.has_next)


def _queued(session: Session, disputes: Sequence[models.Dispute]) -> list[QueuedDispute]:
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


def entitlement_page(
    session: Session, status: str | None, paging: Paging
) -> Page[models.Entitlement]:
    rows = operators_repo.entitlements_page(session, status, paging.offset, paging.size + 1)
    return _page(rows, paging)


def invoice_page(session: Session, passenger_id: str, paging: Paging) -> Page[models.Invoice]:
    rows = operators_repo.invoices_page(session, passenger_id, paging.offset, paging.size + 1)
    return _page(rows, paging)


@dataclass(frozen=True, slots=True)
class PassengerRow:
    passenger: models.Passenger
    trips: int


def passenger_page(session: Session, paging: Paging) -> Page[PassengerRow]:
    """A page of passengers (newest first) with their number of billed trips."""
    rows = operators_repo.passengers_page(session, paging.offset, paging.size + 1)
    counts = operators_repo.trip_counts(session, [p.passenger_id for p in rows])
    return _page([PassengerRow(p, counts.get(p.passenger_id, 0)) for p in rows], paging)


SEARCH_KINDS = ("passenger", "device", "trip", "vehicle")


@dataclass(frozen=True, slots=True)
class SearchHit:
    kind: str
    """One of ``SEARCH_KINDS``."""
    id: str
    exact: bool
    owner: str | None = None
    """A device's passenger, if it is still registered."""


def search(session: Session, text: str, limit: int) -> list[SearchHit]:
    """Ids of passengers, devices, trips and vehicles that are ``text`` or start with it
    (case-sensitive), up to ``limit`` of each kind; exact matches first, then by kind and
    id."""
    hits: list[SearchHit] = []
    for kind in SEARCH_KINDS:
        ids = operators_repo.ids_starting_with(session, kind, text, limit)
        owners = operators_repo.device_owners(session, ids) if kind == "device" else {}
        hits.extend(SearchHit(kind, i, i == text, owners.get(i)) for i in ids)
    return sorted(hits, key=lambda h: (not h.exact, SEARCH_KINDS.index(h.kind), h.id))


@dataclass(frozen=True, slots=True)
class DisputeHistory:
    """A dispute's story: opened by the passenger, resolved by an operator (who, when, how,
    with which note) and what the resolution changed (its corrections)."""

    dispute: models.Dispute
    resolver: str | None
    """The resolving operator's name ("?" for one since deleted); None while open."""
    corrections: list[models.TripCorrection]


def dispute_histories(session: Session, disputes: Sequence[models.Dispute]) -> list[DisputeHistory]:
    """The history of each of these disputes (two queries for all)."""
    fixes = operators_repo.dispute_corrections(session, [d.dispute_id for d in disputes])
    ids = sorted({d.resolved_by for d in disputes if d.resolved_by is not None})
    names = operators_repo.operator_names(session, ids)
    return [
        DisputeHistory(
            d,
            None if d.resolved_by is None else names.get(d.resolved_by, "?"),
            fixes.get(d.dispute_id, []),
        )
        for d in disputes
    ]


@dataclass(frozen=True, slots=True)
class PassengerOverview:
    """One passenger on one page: account, devices, trips (paged), disputes with their
    history, tickets held elsewhere and the ledger per month."""

    passenger_id: str
    passenger: models.Passenger | None
    """None once the account is deleted (its ledger and invoices are kept)."""
    devices: list[models.Device]
    trips: Page[models.Trip]
    disputes: list[DisputeHistory]
    entitlements: list[models.Entitlement]
    invoices: Page[models.Invoice]
    """The newest invoices (the invoice page has them all)."""
    ledger: list[tuple[str, int]]


def passenger_overview(
    session: Session, passenger_id: str, trips: Paging, invoices: Paging
) -> PassengerOverview | None:
    """The passenger's page (None: never known here: no account, trips or ledger)."""
    passenger = passengers_repo.passenger(session, passenger_id)
    trip_page = trips_page(session, TripQuery(passenger_id=passenger_id), trips)
    ledger = operators_repo.passenger_ledger_by_month(session, passenger_id)
    if passenger is None and not trip_page.items and not ledger:
        return None
    return PassengerOverview(
        passenger_id=passenger_id,
        passenger=passenger,
        devices=passengers_repo.devices(session, passenger_id),
        trips=trip_page,
        disputes=dispute_histories(
            session, passengers_repo.passenger_disputes(session, passenger_id)
        ),
        entitlements=passengers_repo.passenger_entitlements(session, passenger_id),
        invoices=invoice_page(session, passenger_id, invoices),
        ledger=ledger,
    )


@dataclass(frozen=True, slots=True)
class Quality:
    by_line: list[operators_repo.QualityRow]
    by_vehicle: list[operators_repo.QualityRow]
    vehicle_data: list[operators_repo.VehicleDataRow]
    """What each bus sent: the events it loses, and what bibo derives in their place."""


def quality(session: Session, first: dt.date, last: dt.date, low_below: float) -> Quality:
    return Quality(
        by_line=operators_repo.quality(session, "line", first, last, low_below),
        by_vehicle=operators_repo.quality(session, "vehicle", first, last, low_below),
        vehicle_data=operators_repo.vehicle_data(session, first, last),
    )


def daily_postings(
    session: Session, first: dt.date, last: dt.date, tz: ZoneInfo
) -> list[tuple[dt.date, int]]:
    """Net ledger postings (cents) per local day in ``[first, last]``, every day listed."""
    since = dt.datetime.combine(first, dt.time(), tz)
    before = dt.datetime.combine(last + dt.timedelta(days=1), dt.time(), tz)
    per_day = {first + dt.timedelta(days=k): 0 for k in range((last - first).days + 1)}
    for at, cents in operators_repo.ledger_postings(session, since, before):
        posted = (at if at.tzinfo is not None else at.replace(tzinfo=dt.UTC)).astimezone(tz)
        if posted.date() in per_day:
            per_day[posted.date()] += cents
    return sorted(per_day.items())


@dataclass(frozen=True, slots=True)
class TripFare:
    """What the month's best price charges for one trip: the product(s) that pay for it and
    what it would cost alone (cents; labels as the bill names them)."""

    month: str
    products: list[tuple[str, int, int]]
    """(label, price in cents, trips of the month it pays for)."""
    alone_label: str
    alone_cents: int
    entitled: str | None = None
    """The ticket held elsewhere that makes the trip free, if one does."""
    error: str | None = None
    """Why the month cannot be priced (a stop the tariff lacks), if it cannot."""


def trip_fare(session: Session, trip: models.Trip) -> TripFare | None:
    """The trip's fare in its passenger's current bill of its month (None: not billed, i.e.
    cancelled, lost a conflict, or the passenger is gone)."""
    category = passengers_repo.passenger_category(session, trip.passenger_id)
    if category is None or trip.conflict_lost:
        return None
    month = billing_service.month_of_ms(trip.board_time)
    try:
        priced = billing_service.month_price(session, trip.passenger_id, category, month)
    except fare_engine.FareInputError as exc:
        return TripFare(month, [], "", 0, error=str(exc))
    for free, coverage in priced.free:
        if free.trip_id == trip.trip_id:
            label = presentation.ENTITLEMENT_LABELS.get(coverage.kind, coverage.kind)
            return TripFare(month, [], "", 0, entitled=label)
    everything = [*priced.earlier, *priced.trips]
    index = next((k for k, t in enumerate(everything) if t.trip_id == trip.trip_id), None)
    if index is None or priced.bill is None:
        return None
    bill = presentation.passenger_bill(json.loads(priced.bill.to_json()))
    n = len(priced.earlier)
    products = [
        (p["label"], int(p["price_cents"]), sum(1 for k in p["covers"] if k >= n))
        for p in bill["products"]
        if index in p["covers"]
    ]
    alone = next(t for t in bill["trips"] if t["index"] == index)
    return TripFare(month, products, str(alone["alone_label"]), int(alone["single_cents"]))
