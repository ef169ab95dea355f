"""What an operator needs to review a trip: its evidence (the RSSI trace with stops, doors
and the inferred interval), corrections and disputes, and filtered trip lists.

Also: operators' registration, the trips and revenue CSVs and the work that needs an
operator's eye.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from backend import db, models
from backend.billing.apportionment import RevenueReport
from backend.billing.presentation import local_iso
from backend.const import (
    LATE_DATA_ROWS,
    MIN_PASSWORD_LENGTH,
    TRACE_MARGIN_MS,
)
from backend.ingest import repository as ingest_repo
from backend.maintenance import repository as maintenance_repo
from backend.models import OPERATOR_ROLES
from backend.operators import repository as operators_repo
from backend.passengers import repository as passengers_repo
from backend.security import hash_password, new_api_token, token_hash
from backend.trips import repository as trips_repo
from onboard.wire import interval_of, token_for_interval


def register_operator(
    session: Session, name: str, role: str = "admin", password: str | None = None
) -> str:
    """Create an operator and return its API token (only its hash is stored).

    With a password the operator can also log in to the web pages (by name).
    """
    if role not in OPERATOR_ROLES:
        raise ValueError(f"role: expected one of {', '.join(OPERATOR_ROLES)}, got {role!r}")
    if password is not None:
        if len(password) < MIN_PASSWORD_LENGTH:
            raise ValueError(f"password: expected at least {MIN_PASSWORD_LENGTH} characters")
        if operators_repo.operator_by_name(session, name) is not None:
            raise db.AlreadyExistsError(f"an operator named {name!r} can log in already")
    token = new_api_token("op")
    operators_repo.add_operator(
        session, name, token_hash(token), role, hash_password(password) if password else None
    )
    return token


CSV_COLUMNS = (
    "trip_id",
    "service_day",
    "vehicle_id",
    "line",
    "journey_id",
    "device_id",
    "passenger_id",
    "board_stop_id",
    "board_time",
    "alight_stop_id",
    "alight_time",
    "confidence",
    "status",
)


def filter_trips(
    trips: Sequence[models.Trip],
    line: str | None = None,
    vehicle_id: str | None = None,
    max_confidence: float | None = None,
) -> list[models.Trip]:
    return [
        t
        for t in trips
        if (line is None or t.line == line)
        and (vehicle_id is None or t.vehicle_id == vehicle_id)
        and (max_confidence is None or t.confidence <= max_confidence)
    ]


@dataclass(frozen=True, slots=True)
class TraceEvent:
    t: int
    type: str
    stop_id: str | None


@dataclass
class Trace:
    """Times in UTC epoch ms, RSSI and tx power in dBm."""

    trip_id: str
    vehicle_id: str
    t: list[int] = field(default_factory=list)
    rssi: list[int] = field(default_factory=list)
    n: list[int] = field(default_factory=list)
    events: list[TraceEvent] = field(default_factory=list)
    board_time: int = 0
    alight_time: int = 0
    phone_t: list[int] = field(default_factory=list)
    """What the device's phone heard of the vehicle's beacon (the second stream)."""
    phone_rssi: list[int] = field(default_factory=list)
    regions: list[TraceEvent] = field(default_factory=list)
    """The phone's region enter and exit events."""


def trip_trace(session: Session, trip_id: str) -> Trace | None:
    """The trip's evidence: its sightings (if its device is still known), what its phone heard
    of the vehicle's beacon and its region events, and the stop and door events around it."""
    trip = trips_repo.trip(session, trip_id)
    if trip is None:
        return None
    trace = Trace(
        trip_id, trip.vehicle_id, board_time=trip.board_time, alight_time=trip.alight_time
    )
    start, end = trip.board_time - TRACE_MARGIN_MS, trip.alight_time + TRACE_MARGIN_MS
    key = operators_repo.device_key(session, trip.device_id)
    if key is not None:
        tokens = [
            token_for_interval(key, i) for i in range(interval_of(start) - 1, interval_of(end) + 2)
        ]
        days = [trip.service_day, trip.service_day + dt.timedelta(days=1)]
        rows = operators_repo.sightings_between(session, trip.vehicle_id, days, start, end, tokens)
        trace.t = [r.t for r in rows]
        trace.rssi = [r.rssi for r in rows]
        trace.n = [r.n for r in rows]
    beacons, regions = operators_repo.phone_points_between(
        session, trip.device_id, trip.vehicle_id, start, end
    )
    trace.phone_t = [p.t for p in beacons]
    trace.phone_rssi = [p.rssi for p in beacons]
    trace.regions = [TraceEvent(e.t, e.type, None) for e in regions]
    events = operators_repo.stop_and_door_events(session, trip.vehicle_id, start, end)
    trace.events = [TraceEvent(r.t, r.type, r.stop_id) for r in events]
    return trace


@dataclass(frozen=True, slots=True)
class TripDetail:
    trip: models.Trip
    corrections: list[models.TripCorrection]
    """Oldest first."""
    disputes: list[models.Dispute]


def trip_detail(session: Session, trip_id: str) -> TripDetail | None:
    """The trip with its corrections and disputes (None: no such trip)."""
    trip = trips_repo.trip(session, trip_id)
    if trip is None:
        return None
    return TripDetail(
        trip,
        operators_repo.trip_corrections(session, trip_id),
        passengers_repo.trip_disputes(session, trip_id),
    )


def _csv(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


def trips_csv(trips: Sequence[models.Trip]) -> str:
    """The trips as CSV, a row each in ``CSV_COLUMNS`` (the API's and the pages' export)."""
    return _csv(CSV_COLUMNS, ([getattr(t, c) for c in CSV_COLUMNS] for t in trips))


READABLE_CSV_COLUMNS = tuple(
    name
    for c in CSV_COLUMNS
    for name in ((c, c.removesuffix("_id") + "_name") if c.endswith("_stop_id") else (c,))
)
"""The operator pages' trip export: ``CSV_COLUMNS`` with the stops' names beside their ids
and the times as local time with the UTC offset (``2026-11-03T05:06:40+01:00``; the two
02:30 of the autumn night differ) instead of epoch ms."""


def readable_trips_csv(trips: Sequence[models.Trip], stop_names: dict[str, str]) -> str:
    """The trips as CSV for people, a row each in ``READABLE_CSV_COLUMNS`` (a stop the
    tariff does not name gets its id as name)."""

    def row(t: models.Trip) -> list[object]:
        values = {c: getattr(t, c) for c in CSV_COLUMNS}
        values["board_stop_name"] = stop_names.get(t.board_stop_id, t.board_stop_id)
        values["alight_stop_name"] = stop_names.get(t.alight_stop_id, t.alight_stop_id)
        values["board_time"] = local_iso(t.board_time)
        values["alight_time"] = local_iso(t.alight_time)
        return [values[c] for c in READABLE_CSV_COLUMNS]

    return _csv(READABLE_CSV_COLUMNS, (row(t) for t in trips))


def daily_revenue_csv(days: Sequence[tuple[dt.date, int]]) -> str:
    """Net ledger postings per local day as CSV (``day``, ``net_cents``)."""
    return _csv(("day", "net_cents"), ((day.isoformat(), cents) for day, cents in days))


@dataclass(frozen=True, slots=True)
class Operations:
    """Work that needs an operator's eye (the operations page and ``GET /v1/operations``)."""

    purged_before: dt.date | None
    """Sightings of service days before this are deleted (retention); None: none yet."""
    units: list[trips_repo.TroubledUnit]
    """Reconciliation units that failed: waiting to retry, or parked."""
    late: list[ingest_repo.LateDataRow]
    """The newest uploads for service days past retention (kept, never used)."""


def operations(session: Session) -> Operations:
    return Operations(
        purged_before=maintenance_repo.purged_before(session),
        units=trips_repo.troubled_units(session),
        late=ingest_repo.late_data(session, LATE_DATA_ROWS),
    )


REVENUE_CSV_COLUMNS = (
    "month",
    "company",
    "charged_cents",
    "reversed_cents",
    "net_cents",
    "passenger_km",
    "entries",
)


def revenue_csv(report: RevenueReport) -> str:
    """A month's revenue per company as CSV, a row each in ``REVENUE_CSV_COLUMNS`` (the API's
    and the pages' export); the rows' ``net_cents`` add up to the month's ledger total."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(REVENUE_CSV_COLUMNS)
    for c in report.companies:
        writer.writerow(
            [
                report.month,
                c.company,
                c.charged_cents,
                c.reversed_cents,
                c.net_cents,
                f"{c.passenger_km:.3f}",
                c.entries,
            ]
        )
    return buffer.getvalue()
