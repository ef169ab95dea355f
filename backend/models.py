"""ORM models (SQLAlchemy 2). Times from the wire stay UTC epoch milliseconds (BigInteger);
bookkeeping timestamps are timezone-aware."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    BigInteger,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# SQLite only auto-increments INTEGER PRIMARY KEY; PostgreSQL gets a real bigint.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def _created_at() -> Mapped[dt.datetime]:
    return mapped_column(
        DateTime(timezone=True), default=lambda: dt.datetime.now(dt.UTC), nullable=False
    )


class Vehicle(Base):
    __tablename__ = "vehicles"

    vehicle_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    # The backend must hold the secret itself to check HMAC signatures.
    secret: Mapped[bytes] = mapped_column(LargeBinary(64))
    company: Mapped[str | None] = mapped_column(String(16))
    """The transit company running the vehicle (RLG, VKU, …): revenue of the rides on it is
    shared to it (``backend/billing/apportionment.py``); None until assigned."""
    created_at: Mapped[dt.datetime] = _created_at()


OPERATOR_ROLES = ("viewer", "agent", "admin")
"""viewer reads; agent also resolves disputes and corrects trips; admin also manages operators."""


class Operator(Base):
    __tablename__ = "operators"

    operator_id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200))
    token_sha256: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    role: Mapped[str] = mapped_column(String(10), default="admin")
    password_hash: Mapped[str | None] = mapped_column(String(200))
    """scrypt hash for the web login (``scrypt$n$r$p$salt$hash``); None: API token only."""
    created_at: Mapped[dt.datetime] = _created_at()


class Passenger(Base):
    __tablename__ = "passengers"

    passenger_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    rider_category: Mapped[str] = mapped_column(String(20))
    token_sha256: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    created_at: Mapped[dt.datetime] = _created_at()


class Device(Base):
    __tablename__ = "devices"

    device_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    passenger_id: Mapped[str] = mapped_column(ForeignKey("passengers.passenger_id"), index=True)
    device_key: Mapped[bytes] = mapped_column(LargeBinary(32))
    created_at: Mapped[dt.datetime] = _created_at()


class DeviceRegistry(Base):
    """One row whose ``version`` goes up with every change to the registered devices (in the
    transaction that adds or deletes them), so a process keeping a token resolver knows in
    one primary-key read whether it is still right (``trips.service.ResolverCache``)."""

    __tablename__ = "device_registry"

    registry_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    version: Mapped[int] = mapped_column(BigInteger, default=0)


class Batch(Base):
    __tablename__ = "batches"
    __table_args__ = (UniqueConstraint("vehicle_id", "boot_id", "seq"),)

    batch_id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    vehicle_id: Mapped[str] = mapped_column(ForeignKey("vehicles.vehicle_id"))
    unit_id: Mapped[str] = mapped_column(String(64))
    boot_id: Mapped[str] = mapped_column(String(64))
    seq: Mapped[int] = mapped_column(BigInteger)
    fingerprint: Mapped[bytes] = mapped_column(LargeBinary(32))
    sent_at: Mapped[int] = mapped_column(BigInteger)
    window_ms: Mapped[int] = mapped_column(Integer)
    n_events: Mapped[int] = mapped_column(Integer)
    n_sightings: Mapped[int] = mapped_column(Integer)
    received_at: Mapped[dt.datetime] = _created_at()


class VehicleEvent(Base):
    __tablename__ = "vehicle_events"
    __table_args__ = (Index("ix_vehicle_events_day_vehicle_t", "service_day", "vehicle_id", "t"),)

    event_id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("batches.batch_id", ondelete="CASCADE"))
    vehicle_id: Mapped[str] = mapped_column(String(64))
    service_day: Mapped[dt.date] = mapped_column(Date)
    t: Mapped[int] = mapped_column(BigInteger)
    type: Mapped[str] = mapped_column(String(16))
    stop_id: Mapped[str | None] = mapped_column(String(64))
    lat: Mapped[float | None] = mapped_column(Float)
    lon: Mapped[float | None] = mapped_column(Float)
    speed_mps: Mapped[float | None] = mapped_column(Float)
    line: Mapped[str | None] = mapped_column(String(64))
    journey_id: Mapped[str | None] = mapped_column(String(64))
    direction: Mapped[int | None] = mapped_column(SmallInteger)


class Sighting(Base):
    """Raw sightings are personal data: deleted after the retention period.

    Keyed by service day first: on PostgreSQL the table is partitioned by service day, so
    retention drops whole partitions and a day's reconciliation reads one partition.
    ``k`` is the row's index inside its batch.
    """

    __tablename__ = "sightings"
    __table_args__ = (Index("ix_sightings_vehicle_day_t", "vehicle_id", "service_day", "t"),)

    service_day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    batch_id: Mapped[int] = mapped_column(
        ForeignKey("batches.batch_id", ondelete="CASCADE"), primary_key=True
    )
    k: Mapped[int] = mapped_column(Integer, primary_key=True)
    vehicle_id: Mapped[str] = mapped_column(String(64))
    t: Mapped[int] = mapped_column(BigInteger)
    token: Mapped[bytes] = mapped_column(LargeBinary(16))
    rssi: Mapped[int] = mapped_column(SmallInteger)
    n: Mapped[int] = mapped_column(Integer)
    tx: Mapped[int | None] = mapped_column(SmallInteger)


class PhoneBatch(Base):
    """One phone upload of beacon sightings (docs/contracts.md, Phone sightings upload);
    ``(device_id, batch_id)`` is its identity. Names a device: deleted by retention once it
    was received before the first kept service day, and with its passenger's account."""

    __tablename__ = "phone_batches"
    __table_args__ = (
        UniqueConstraint("device_id", "batch_id"),
        Index("ix_phone_batches_received", "received_at"),
        Index("ix_phone_batches_device_sent", "device_id", "sent_at"),
    )

    phone_batch_id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    device_id: Mapped[str] = mapped_column(ForeignKey("devices.device_id"))
    batch_id: Mapped[str] = mapped_column(String(64))
    fingerprint: Mapped[bytes] = mapped_column(LargeBinary(32))
    sent_at: Mapped[int] = mapped_column(BigInteger)
    """As the phone sent it, on its own clock (its rows' times are corrected)."""
    platform: Mapped[str] = mapped_column(String(8))
    received_at: Mapped[dt.datetime] = _created_at()
    clock_offset_ms: Mapped[int] = mapped_column(BigInteger, server_default="0")
    """How far the phone's clock ran ahead of the buses' (``backend.phones.clock``): the
    batch's rows are stored at their times minus this."""
    clock_lo_ms: Mapped[int | None] = mapped_column(BigInteger)
    clock_hi_ms: Mapped[int | None] = mapped_column(BigInteger)
    clock_as_of_ms: Mapped[int | None] = mapped_column(BigInteger)
    """The device's bounds on that offset after this batch (``clock.ClockBounds``; None:
    no beacon of its so far resolved)."""


class _PhoneRow:
    """What every row of a phone upload has: its batch and index ``k`` in it, the device,
    and its time (UTC epoch ms) with the service day it falls in."""

    phone_batch_id: Mapped[int] = mapped_column(
        ForeignKey("phone_batches.phone_batch_id", ondelete="CASCADE"), primary_key=True
    )
    k: Mapped[int] = mapped_column(Integer, primary_key=True)
    device_id: Mapped[str] = mapped_column(String(40))
    service_day: Mapped[dt.date] = mapped_column(Date)
    t: Mapped[int] = mapped_column(BigInteger)


class BeaconSighting(_PhoneRow, Base):
    """A bus beacon a phone heard: ``n`` times in the second from ``t``, strongest at
    ``rssi`` dBm. ``vehicle_id`` is the vehicle resolved at ingest (None: a beacon of no
    vehicle, or one out of its time, or an id two vehicles shared). Raw sightings are
    personal data, kept like ``sightings``."""

    __tablename__ = "beacon_sightings"
    __table_args__ = (
        Index("ix_beacon_sightings_day_vehicle_t", "service_day", "vehicle_id", "t"),
        Index("ix_beacon_sightings_device_t", "device_id", "t"),
    )

    major: Mapped[int] = mapped_column(Integer)
    minor: Mapped[int] = mapped_column(Integer)
    rssi: Mapped[int] = mapped_column(SmallInteger)
    n: Mapped[int] = mapped_column(Integer)
    vehicle_id: Mapped[str | None] = mapped_column(String(64))


class PhoneRegionEvent(_PhoneRow, Base):
    """The phone entered or left the deployment's beacon region (``type``: enter, exit)."""

    __tablename__ = "phone_region_events"
    __table_args__ = (
        Index("ix_phone_region_events_device_t", "device_id", "t"),
        Index("ix_phone_region_events_day", "service_day"),
    )

    type: Mapped[str] = mapped_column(String(8))


class PhoneActivityEvent(_PhoneRow, Base):
    """The phone's own motion activity from ``t`` on (``type``: automotive, walking, …)."""

    __tablename__ = "phone_activity_events"
    __table_args__ = (
        Index("ix_phone_activity_events_device_t", "device_id", "t"),
        Index("ix_phone_activity_events_day", "service_day"),
    )

    type: Mapped[str] = mapped_column(String(16))


class Trip(Base):
    __tablename__ = "trips"
    __table_args__ = (
        Index("ix_trips_day_vehicle", "service_day", "vehicle_id"),
        Index(
            "ix_trips_vehicle_board",
            "vehicle_id",
            "board_time",
            postgresql_ops={"vehicle_id": "varchar_pattern_ops"},
        ),
    )
    """``ix_trips_vehicle_board`` serves the operator pages: a vehicle's trips newest first,
    and vehicle ids by prefix (the pattern operator class lets PostgreSQL use it for
    ``LIKE 'x%'`` whatever the database's collation)."""

    trip_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    service_day: Mapped[dt.date] = mapped_column(Date)
    device_id: Mapped[str] = mapped_column(String(40), index=True)
    passenger_id: Mapped[str] = mapped_column(String(40), index=True)
    vehicle_id: Mapped[str] = mapped_column(String(64))
    journey_id: Mapped[str] = mapped_column(String(64))
    line: Mapped[str] = mapped_column(String(64))
    board_stop_id: Mapped[str] = mapped_column(String(64))
    board_time: Mapped[int] = mapped_column(BigInteger)
    alight_stop_id: Mapped[str] = mapped_column(String(64))
    alight_time: Mapped[int] = mapped_column(BigInteger)
    confidence: Mapped[float] = mapped_column(Float)
    stops_travelled: Mapped[int | None] = mapped_column(Integer)
    score: Mapped[float] = mapped_column(Float, default=0.0)
    """Evidence for the trip (summed log-likelihood ratio); decides cross-vehicle conflicts."""
    status: Mapped[str] = mapped_column(String(8), default="closed")
    """``open`` while the rider is still on board at the newest data, else ``closed``."""
    alight_known_at: Mapped[int | None] = mapped_column(BigInteger)
    """Data time (UTC epoch ms) of the newest upload when the alighting stop became known."""
    chain_id: Mapped[str | None] = mapped_column(String(40))
    """The first trip of the journey this trip belongs to (changes of vehicle at hubs)."""
    conflict_lost: Mapped[bool] = mapped_column(default=False)
    """Overlaps a more likely trip of the same device on another vehicle: not billed."""
    created_at: Mapped[dt.datetime] = _created_at()


DAY_UNIT: str = "*"
"""``vehicle_id`` of the work unit that settles a whole service day (cross-vehicle conflicts)."""


class VehicleDayData(Base):
    """What one bus's onboard computer sent on one service day, as reconciliation read it
    (issue 12: detect per bus what it provides, never assume silently): its journeys and
    how many came without their ``journey`` event, its calls and how many bibo derived from
    GNSS because their stop events never came, its GNSS fixes and door events. Updated on
    every rebuild of the vehicle-day; shown per vehicle on the operators' quality page."""

    __tablename__ = "vehicle_day_data"

    service_day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    vehicle_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    journeys: Mapped[int] = mapped_column(Integer)
    inferred_journeys: Mapped[int] = mapped_column(Integer)
    calls: Mapped[int] = mapped_column(Integer)
    derived_calls: Mapped[int] = mapped_column(Integer)
    fixes: Mapped[int] = mapped_column(Integer)
    door_events: Mapped[int] = mapped_column(Integer)


class WorkUnit(Base):
    """Reconciliation work: one vehicle's service day, or (``DAY_UNIT``) the day's conflicts.

    Ingest marks units dirty; workers claim dirty units with ``FOR UPDATE SKIP LOCKED`` and a
    lease, so a crashed worker's unit is taken over once the lease runs out.
    """

    __tablename__ = "work_units"
    __table_args__ = (Index("ix_work_units_dirty", "dirty", "service_day"),)

    service_day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    vehicle_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    dirty: Mapped[bool] = mapped_column(default=True)
    generation: Mapped[int] = mapped_column(Integer, default=1)
    """Bumped by every upload that touches the unit; a worker's result only cleans the unit
    when no upload came in while it worked."""
    data_received_at: Mapped[dt.datetime] = _created_at()
    sealed_until: Mapped[int | None] = mapped_column(BigInteger)
    """UTC epoch ms up to which the vehicle's data of the day is uploaded: the newest upload's
    seal time less one window (the agent seals every window closed by then, and uploads its
    outbox in order), heartbeats included."""
    dirty_from: Mapped[int | None] = mapped_column(BigInteger)
    """UTC epoch ms of the earliest data uploaded since the unit was last reconciled (0: the
    whole day; None with ``dirty`` set: the whole day too, as a unit from before 0004)."""
    lease_until: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    reconciled_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    reconciled_by: Mapped[str | None] = mapped_column(String(64))
    """The worker process (its ``SightingsCache.owner``) that last reconciled the unit: it
    may still hold the unit's sightings up to then, and claims the unit first
    (``claim_unit``)."""
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    """Failed attempts since the unit last succeeded; each failure waits longer (the lease is
    the back-off), and after ``MAX_UNIT_ATTEMPTS`` the unit is parked."""
    last_error: Mapped[str | None] = mapped_column(Text)
    """The newest failure (exception type and message), for operators."""
    failed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    parked: Mapped[bool] = mapped_column(default=False)
    """Failed too often: no worker claims it until an operator reconciles its day again."""


class RetentionMark(Base):
    """How far retention has deleted personal data (one row per kind, ``sightings``).

    Service days before ``purged_before`` have lost their raw sightings: their trips are
    final, and no rebuild may change them (docs/operations.md, Retention: "history is final
    once its evidence is gone"). The mark only ever moves forward.
    """

    __tablename__ = "retention_marks"

    kind: Mapped[str] = mapped_column(String(20), primary_key=True)
    purged_before: Mapped[dt.date] = mapped_column(Date)
    updated_at: Mapped[dt.datetime] = _created_at()


class LateData(Base):
    """An upload with data for a service day that is already final (past retention): kept
    and reported to operators, never used to rewrite that day's trips or bills."""

    __tablename__ = "late_data"
    __table_args__ = (Index("ix_late_data_received", "received_at"),)

    late_id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    batch_id: Mapped[int] = mapped_column(BigInteger)
    vehicle_id: Mapped[str] = mapped_column(String(64))
    service_day: Mapped[dt.date] = mapped_column(Date)
    received_at: Mapped[dt.datetime] = _created_at()


# --- billing, disputes, corrections (issue 7) ----------------------------------------------


class TripCorrection(Base):
    """An operator's correction of a reconciled trip; the newest per trip applies.

    Kept apart from ``trips`` because reconciliation rewrites those: a correction survives
    any re-reconciliation of the day. ``cancelled`` removes the trip from billing.
    """

    __tablename__ = "trip_corrections"
    __table_args__ = (Index("ix_trip_corrections_trip", "trip_id", "correction_id"),)

    correction_id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    trip_id: Mapped[str] = mapped_column(String(40))
    board_stop_id: Mapped[str | None] = mapped_column(String(64))
    alight_stop_id: Mapped[str | None] = mapped_column(String(64))
    cancelled: Mapped[bool] = mapped_column(default=False)
    board_time: Mapped[int | None] = mapped_column(BigInteger)
    alight_time: Mapped[int | None] = mapped_column(BigInteger)
    stops_travelled: Mapped[int | None] = mapped_column(Integer)
    """The corrected ride re-derived from the journey's stop events when the correction was
    made (departure at the boarding stop, arrival at the alighting stop, stops between them);
    None when those events were already gone (retention) or nothing about the stops changed."""
    reason: Mapped[str] = mapped_column(String(500))
    operator_id: Mapped[int] = mapped_column(BigInteger)
    dispute_id: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[dt.datetime] = _created_at()


class Dispute(Base):
    """A passenger contests a trip; an agent accepts (cancel), adjusts or rejects it."""

    __tablename__ = "disputes"
    __table_args__ = (Index("ix_disputes_status", "status", "created_at"),)

    dispute_id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    trip_id: Mapped[str] = mapped_column(String(40))
    passenger_id: Mapped[str] = mapped_column(String(40), index=True)
    reason: Mapped[str] = mapped_column(String(1000))
    status: Mapped[str] = mapped_column(String(12), default="open")
    resolution: Mapped[str | None] = mapped_column(String(1000))
    resolved_by: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[dt.datetime] = _created_at()
    resolved_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class LedgerEntry(Base):
    """The billing ledger: append-only (database triggers refuse UPDATE and DELETE).

    A correction is a ``reversal`` of an earlier ``charge`` plus a new ``charge``. Kept
    8 years (§147 AO); ``passenger_id`` is a random id, so once the account is deleted the
    entries stay as a pseudonymised record that still balances.
    """

    __tablename__ = "ledger_entries"
    __table_args__ = (Index("ix_ledger_passenger_month", "passenger_id", "month"),)

    entry_id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    passenger_id: Mapped[str] = mapped_column(String(40))
    month: Mapped[str] = mapped_column(String(7))
    """Billing month ``YYYY-MM`` (Europe/Berlin)."""
    kind: Mapped[str] = mapped_column(String(10))
    """``charge`` or ``reversal``."""
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    reverses: Mapped[int | None] = mapped_column(BigInteger)
    explanation: Mapped[str] = mapped_column(Text)
    """The fare engine's bill (JSON) behind a charge, or why a reversal was made."""
    created_at: Mapped[dt.datetime] = _created_at()


class Invoice(Base):
    """A closed month's invoice; a re-bill after a correction issues the next version."""

    __tablename__ = "invoices"
    __table_args__ = (UniqueConstraint("passenger_id", "month", "version"),)

    invoice_id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    passenger_id: Mapped[str] = mapped_column(String(40), index=True)
    month: Mapped[str] = mapped_column(String(7))
    version: Mapped[int] = mapped_column(Integer)
    total_cents: Mapped[int] = mapped_column(BigInteger)
    document: Mapped[str] = mapped_column(Text)
    """The invoice as JSON (bill, trips, ledger balance)."""
    created_at: Mapped[dt.datetime] = _created_at()


class LoginAttempt(Base):
    """Failed operator logins, for throttling guessing."""

    __tablename__ = "login_attempts"
    __table_args__ = (Index("ix_login_attempts_name_at", "name", "attempted_at"),)

    attempt_id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200))
    attempted_at: Mapped[dt.datetime] = _created_at()
    address: Mapped[str | None] = mapped_column(String(64), index=True)
    """The client address the attempt came from (None for attempts stored before 0005)."""


class OperatorSession(Base):
    """A logged-in operator web session, kept on the server: the cookie carries only a random
    id whose SHA-256 is stored here, so logging out (or a password change) ends every copy
    of the cookie at once."""

    __tablename__ = "operator_sessions"

    session_sha256: Mapped[bytes] = mapped_column(LargeBinary(32), primary_key=True)
    operator_id: Mapped[int] = mapped_column(
        ForeignKey("operators.operator_id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[dt.datetime] = _created_at()
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


# --- revenue sharing, entitlements and companions (issue 15) ------------------------------------


class RevenueShare(Base):
    """One transit company's part of a ledger entry (Einnahmeaufteilung), in whole cents.

    Written with its ledger entry and never changed: the parts of an entry add up to its
    amount exactly (largest-remainder rounding), a reversal's parts are the negated parts of
    the charge it reverses.
    """

    __tablename__ = "revenue_shares"
    __table_args__ = (Index("ix_revenue_shares_month_company", "month", "company"),)

    entry_id: Mapped[int] = mapped_column(
        ForeignKey("ledger_entries.entry_id", ondelete="RESTRICT"), primary_key=True
    )
    company: Mapped[str] = mapped_column(String(16), primary_key=True)
    """The transit company, or ``unassigned`` for rides on vehicles without one."""
    month: Mapped[str] = mapped_column(String(7))
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    passenger_km: Mapped[float] = mapped_column(Float)
    """The weight the part was computed from (the company's passenger-km in the charge)."""


class Entitlement(Base):
    """A ticket or pass the passenger holds elsewhere: trips inside its validity and scope
    cost nothing. It applies from registration (``pending``) and once ``verified``; an
    operator's ``revoked`` ends it, and the months it touched are re-billed."""

    __tablename__ = "entitlements"

    entitlement_id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    passenger_id: Mapped[str] = mapped_column(String(40), index=True)
    kind: Mapped[str] = mapped_column(String(24))
    """``backend.passengers.schemas.EntitlementKind``."""
    valid_from: Mapped[dt.date] = mapped_column(Date)
    valid_to: Mapped[dt.date] = mapped_column(Date)
    """Last day of validity (inclusive, local calendar)."""
    scope_areas: Mapped[str | None] = mapped_column(String(400))
    """Tarifgebiet codes separated by commas; None = valid everywhere (Deutschlandticket)."""
    evidence_ref: Mapped[str] = mapped_column(String(200))
    """What the rider showed (a ticket or card number), for an operator to verify."""
    status: Mapped[str] = mapped_column(String(12), default="pending")
    decided_by: Mapped[int | None] = mapped_column(BigInteger)
    decided_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    note: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[dt.datetime] = _created_at()


class TripCompanion(Base):
    """Who rode with the passenger on one trip (a party): companions by rider category and
    bicycles (``bike``). The best price covers the whole party."""

    __tablename__ = "trip_companions"

    trip_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    category: Mapped[str] = mapped_column(String(16), primary_key=True)
    """A rider category of the tariff (adult, child, …) or ``bike``."""
    count: Mapped[int] = mapped_column(Integer)
    passenger_id: Mapped[str] = mapped_column(String(40), index=True)
    created_at: Mapped[dt.datetime] = _created_at()


# --- notifications (issue 16) -------------------------------------------------------------------


class Notification(Base):
    """One message to a passenger about one trip (``kind``: be_in, be_out, still_on_board),
    at most once: the unique (passenger, trip, kind) makes a repeated reconciliation's insert
    a no-op. Written ``queued`` by reconciliation (cheap), made ``ready`` (texts, price) or
    ``dropped`` (the trip went away) by the drain, which also sends it by Web Push; the
    app's event stream sends ``ready`` ones. Deleted with the passenger's account."""

    __tablename__ = "notifications"
    __table_args__ = (
        UniqueConstraint("passenger_id", "trip_id", "kind"),
        Index("ix_notifications_status", "status", "notification_id"),
        Index("ix_notifications_passenger", "passenger_id", "notification_id"),
    )

    notification_id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    passenger_id: Mapped[str] = mapped_column(String(40))
    trip_id: Mapped[str] = mapped_column(String(40))
    kind: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(8), default="queued")
    """``queued``, ``sending`` (claimed by one drain), ``ready`` or ``dropped``."""
    payload: Mapped[str | None] = mapped_column(Text)
    """The message as JSON (``backend.notifications.service.Message``), once ready."""
    pushed: Mapped[int] = mapped_column(Integer, default=0)
    """Web Push deliveries the push services accepted (one per subscription at most)."""
    created_at: Mapped[dt.datetime] = _created_at()
    ready_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class PushSubscription(Base):
    """A browser's Web Push subscription (RFC 8030/8291): where to post and the keys to
    encrypt for. Personal data: deleted with the account, and when the push service says it
    is gone (404/410)."""

    __tablename__ = "push_subscriptions"

    subscription_id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    passenger_id: Mapped[str] = mapped_column(String(40), index=True)
    endpoint: Mapped[str] = mapped_column(String(1000), unique=True)
    p256dh: Mapped[str] = mapped_column(String(200))
    auth: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[dt.datetime] = _created_at()


class PushRetry(Base):
    """A push the push service did not take yet (no answer, 429, 5xx): the drain posts it
    again at ``next_at``, at most ``len(PUSH_RETRY_DELAYS_S)`` more times. Deleted once
    delivered, refused for good, given up, or with its subscription."""

    __tablename__ = "push_retries"
    __table_args__ = (Index("ix_push_retries_next_at", "next_at"),)

    notification_id: Mapped[int] = mapped_column(BigId, primary_key=True)
    subscription_id: Mapped[int] = mapped_column(BigId, primary_key=True)
    attempts: Mapped[int] = mapped_column(Integer)
    """Posts so far (the first included)."""
    next_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


# --- the inspection ticket (issue 16) ------------------------------------------------------


class Ticket(Base):
    """An inspection ticket issued to a rider on board (``backend/tickets/``): one per
    device and vehicle journey, re-signed on every fetch. ``time_key`` is the Ed25519 seed
    of the ticket's own key (the phone signs the 30 s time code with it)."""

    __tablename__ = "tickets"
    __table_args__ = (
        UniqueConstraint("device_id", "vehicle_id", "journey_id"),
        Index("ix_tickets_valid_until", "valid_until"),
    )

    ticket_id: Mapped[str] = mapped_column(String(16), primary_key=True)
    """8 random bytes as hex."""
    trip_id: Mapped[str | None] = mapped_column(String(40), index=True)
    """The open trip it was last issued for (None once the account is deleted)."""
    passenger_id: Mapped[str | None] = mapped_column(String(40), index=True)
    device_id: Mapped[str | None] = mapped_column(String(40))
    vehicle_id: Mapped[str] = mapped_column(String(64))
    journey_id: Mapped[str] = mapped_column(String(64))
    time_key: Mapped[bytes | None] = mapped_column(LargeBinary(32))
    issued_at: Mapped[int] = mapped_column(BigInteger)
    """UTC epoch ms of the first fetch."""
    valid_until: Mapped[int] = mapped_column(BigInteger)
    """UTC epoch ms; moved on by fetches while the rider is on board."""
    revoked_reason: Mapped[str | None] = mapped_column(String(20))
    """Set when revoked for good (``account_deleted``); other reasons are read from the
    trip and device when the revocation list is made."""
    created_at: Mapped[dt.datetime] = _created_at()
