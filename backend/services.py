"""Backend services: registration, reconciliation and charges. They load through the
repository, call the pure cores (reconciliation, fare engine) and store; callers commit."""

from __future__ import annotations

import base64
import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

import fare_engine
from backend import billing, repository
from backend.const import (
    MAX_UNIT_ATTEMPTS,
    MIN_PASSWORD_LENGTH,
    UNIT_RETRY_BACKOFF,
    WORK_LEASE,
)
from backend.db import transaction
from backend.models import DAY_UNIT, OPERATOR_ROLES
from backend.reconciliation import (
    conflict_losers,
    journeys_from_events,
    rebuild_plan,
    reconcile_journeys,
    transfer_chains,
)
from backend.resolution import TokenResolver, resolved_observations
from backend.security import hash_password, new_api_token, new_id, new_secret, token_hash
from backend.stops import stop_index, stop_walkable
from onboard.wire import DEVICE_KEY_BYTES

RiderCategory = Literal["adult", "child", "infant"]

log = logging.getLogger(__name__)


def register_vehicle(session: Session, vehicle_id: str) -> bytes:
    """Register a vehicle and return its upload secret (shown once)."""
    secret = new_secret()
    repository.add_vehicle(session, vehicle_id, secret)
    return secret


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
        if repository.operator_by_name(session, name) is not None:
            raise repository.AlreadyExistsError(f"an operator named {name!r} can log in already")
    token = new_api_token("op")
    repository.add_operator(
        session, name, token_hash(token), role, hash_password(password) if password else None
    )
    return token


@dataclass(frozen=True)
class NewPassenger:
    passenger_id: str
    token: str


def register_passenger(session: Session, rider_category: str) -> NewPassenger:
    passenger = NewPassenger(passenger_id=new_id("pas"), token=new_api_token("pt"))
    repository.add_passenger(
        session, passenger.passenger_id, rider_category, token_hash(passenger.token)
    )
    return passenger


@dataclass(frozen=True)
class NewDevice:
    device_id: str
    device_key_b64: str


def register_device(session: Session, passenger_id: str) -> NewDevice:
    key = new_secret()
    device_id = new_id("dev")
    repository.add_device(session, device_id, passenger_id, key)
    return NewDevice(device_id=device_id, device_key_b64=base64.b64encode(key).decode("ascii"))


class DeviceImport(BaseModel):
    """One device in a ``bibo devices import`` file (simulations, migrations)."""

    model_config = ConfigDict(extra="forbid")

    passenger_id: str = Field(min_length=1, max_length=40)
    device_id: str = Field(min_length=1, max_length=40)
    rider_category: RiderCategory
    device_key: str = Field(description="base64 of the 32-byte device key")

    @field_validator("device_key")
    @classmethod
    def _key_is_32_bytes(cls, value: str) -> str:
        try:
            raw = base64.b64decode(value, validate=True)
        except ValueError:
            raise ValueError("expected base64") from None
        if len(raw) != DEVICE_KEY_BYTES:
            raise ValueError(f"expected {DEVICE_KEY_BYTES} bytes, got {len(raw)}")
        return value


class DeviceImportFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: Literal[1]
    devices: list[DeviceImport]


def import_devices(session: Session, doc: DeviceImportFile) -> tuple[int, int]:
    """Create the passengers and devices of ``doc``; returns (created, already present).

    Re-importing the same file changes nothing; a known device id with another key is
    refused (``AlreadyExistsError``). Imported passengers get no usable API token.
    """
    known = {device_id: key for device_id, key, _ in repository.all_devices(session)}
    known_passengers = set(
        repository.passenger_categories(session, sorted({d.passenger_id for d in doc.devices}))
    )
    created = present = 0
    for d in doc.devices:
        key = base64.b64decode(d.device_key)
        if d.device_id in known:
            if known[d.device_id] != key:
                raise repository.AlreadyExistsError(
                    f"device {d.device_id!r} exists with another key"
                )
            present += 1
            continue
        if d.passenger_id not in known_passengers:
            repository.add_passenger(
                session, d.passenger_id, d.rider_category, token_hash(new_api_token("pt"))
            )
            known_passengers.add(d.passenger_id)
        repository.add_device(session, d.device_id, d.passenger_id, key)
        known[d.device_id] = key
        created += 1
    return created, present


class ResolverCache:
    """One token resolver per process, rebuilt when devices were registered or removed."""

    def __init__(self) -> None:
        self._version: tuple[int, str | None] | None = None
        self._resolver = TokenResolver([])
        self._passenger_of: dict[str, str] = {}

    def get(self, session: Session) -> tuple[TokenResolver, dict[str, str]]:
        version = repository.device_registry_version(session)
        if version != self._version:
            devices = repository.all_devices(session)
            self._resolver = TokenResolver([(d, key) for d, key, _ in devices])
            self._passenger_of = {d: p for d, _, p in devices}
            self._version = version
        return self._resolver, self._passenger_of


@dataclass(frozen=True)
class VehicleDayResult:
    sightings: int
    resolved: int
    trips: int
    confidences: tuple[float, ...] = ()
    inferred_journeys: int = 0
    """Journeys rebuilt whose ``journey`` event never came."""
    derived_calls: int = 0
    """Calls rebuilt whose stop events never came (derived from GNSS)."""


def reconcile_vehicle_day(
    session: Session,
    day: dt.date,
    vehicle_id: str,
    resolvers: ResolverCache,
    since: int = 0,
) -> VehicleDayResult:
    """Rebuild one vehicle's trips of one service day from what is stored for it, after its
    data changed from data time ``since`` on (0: everything): the journeys from the first
    one not finished by then (``rebuild_from``), so an upload costs one journey, not a day."""
    resolver, passenger_of = resolvers.get(session)
    journeys = journeys_from_events(
        vehicle_id, repository.vehicle_day_events(session, day, vehicle_id), stop_index()
    )
    # The journeys rebuilt, and before them those that calibrate their levels (context).
    plan = rebuild_plan(journeys, since)
    start, first, context_from = plan.start, plan.first, plan.context_from
    data = repository.vehicle_day_sightings(session, day, vehicle_id, plan.read_from)
    obs, resolved = resolved_observations(
        vehicle_id,
        np.asarray(data.t, dtype=np.int64),
        data.token,
        data.rssi,
        data.tx,
        data.window_ms,
        data.data_end_ms,
        resolver,
    )
    trips = reconcile_journeys(
        journeys[context_from:], obs, resolver.device_ids, context=first - context_from
    )
    repository.replace_vehicle_trips(session, day, vehicle_id, trips, passenger_of, start)
    rebuilt = journeys[first:]
    inferred = sum(j.inferred for j in rebuilt)
    derived = sum(v.derived for j in rebuilt for v in j.visits)
    if inferred or derived:
        # Said, not assumed: this bus's onboard computer loses events.
        log.info(
            "vehicle %s %s: %d journeys without their journey event, %d calls without stop "
            "events (derived from GNSS)",
            vehicle_id,
            day,
            inferred,
            derived,
        )
    return VehicleDayResult(
        len(data.t),
        resolved,
        len(trips),
        tuple(t.confidence for t in trips),
        inferred,
        derived,
    )


def settle_day(session: Session, day: dt.date) -> int:
    """Day-level decisions across vehicles: a device rides one vehicle at a time, and trips
    joined at hubs form one journey. Returns the number of conflict losers."""
    candidates = repository.day_trip_candidates(session, day)
    losers = conflict_losers(candidates)
    kept = [t for t in candidates if t.trip_id not in losers]
    chains = transfer_chains(kept, stop_walkable())
    repository.settle_trips(session, day, losers, chains)
    return len(losers)


class FinalDayError(Exception):
    """The service day is past retention: its trips are final (the message says so)."""

    def __init__(self, day: dt.date, purged_before: dt.date) -> None:
        super().__init__(
            f"service day {day} is final: its raw sightings were deleted by retention (every "
            f"day before {purged_before}), so its trips cannot be rebuilt; correct a trip "
            "through POST /v1/trips/{trip_id}/corrections instead"
        )
        self.day = day


def run_unit(
    session: Session, unit: repository.ClaimedUnit, resolvers: ResolverCache, now: dt.datetime
) -> VehicleDayResult | None:
    """Do one claimed unit of work and release it (in the caller's transaction).

    A unit of a final day (past retention) is released without a rebuild: with the raw
    sightings gone, a rebuild would remove trips it can no longer see the evidence for.
    """
    result = None
    mark = repository.hold_retention(session)
    if mark is not None and unit.service_day < mark:
        log.warning(
            "work unit %s %s left as it is: the day is past retention",
            unit.service_day,
            unit.vehicle_id,
        )
    elif unit.vehicle_id == DAY_UNIT:
        settle_day(session, unit.service_day)
    else:
        result = reconcile_vehicle_day(
            session, unit.service_day, unit.vehicle_id, resolvers, unit.dirty_from
        )
        # The day's conflicts are settled again after this vehicle's trips changed.
        repository.mark_dirty(session, {(unit.service_day, DAY_UNIT)}, now)
    repository.complete_unit(session, unit, now)
    return result


@dataclass(frozen=True)
class WorkDone:
    unit: repository.ClaimedUnit
    result: VehicleDayResult | None
    error: str | None = None
    """Why the unit failed (it waits to be retried, or is ``parked``)."""
    parked: bool = False


def work_once(
    sessions: sessionmaker[Session],
    resolvers: ResolverCache,
    clock: Callable[[], dt.datetime],
    day: dt.date | None = None,
) -> WorkDone | None:
    """Claim and do one unit of reconciliation work; None when there is nothing to do.

    A unit that fails is retried after a back-off that doubles each time, and parked for an
    operator after ``MAX_UNIT_ATTEMPTS`` (``WorkDone.error`` says why); one bad unit never
    stops the others. A lost database connection is no fault of the unit: it is raised (the
    worker waits and tries again), and the unit's lease runs out for another worker.
    """
    with transaction(sessions) as session:
        unit = repository.claim_unit(session, clock(), WORK_LEASE, day=day)
    if unit is None:
        return None
    try:
        with transaction(sessions) as session:
            return WorkDone(unit, run_unit(session, unit, resolvers, clock()))
    except (OperationalError, InterfaceError) as exc:
        if exc.connection_invalidated:
            raise
        # A deadlock, a serialization failure, a statement time-out: this unit's doing, or
        # at least its lot; counted like any failure, so it cannot stop a worker forever.
        return _failed(sessions, unit, exc, clock)
    except Exception as exc:
        return _failed(sessions, unit, exc, clock)


def _failed(
    sessions: sessionmaker[Session],
    unit: repository.ClaimedUnit,
    exc: Exception,
    clock: Callable[[], dt.datetime],
) -> WorkDone:
    """Record a failed attempt at ``unit``: retried after a back-off, parked at the end."""
    error = f"{type(exc).__name__}: {exc}"
    log.error("work unit %s %s failed", unit.service_day, unit.vehicle_id, exc_info=exc)
    with transaction(sessions) as session:
        attempts = repository.unit_attempts(session, unit) + 1
        park = attempts >= MAX_UNIT_ATTEMPTS
        repository.fail_unit(
            session,
            unit,
            error,
            clock(),
            UNIT_RETRY_BACKOFF * 2 ** (attempts - 1),
            park=park,
        )
    return WorkDone(unit, None, error=error, parked=park)


def work_until_idle(
    sessions: sessionmaker[Session],
    resolvers: ResolverCache,
    clock: Callable[[], dt.datetime],
    day: dt.date | None = None,
) -> list[WorkDone]:
    """Do units until none is left (or all left are leased by others)."""
    done: list[WorkDone] = []
    while (work := work_once(sessions, resolvers, clock, day)) is not None:
        done.append(work)
    return done


@dataclass(frozen=True)
class ReconcileSummary:
    service_day: dt.date
    vehicles: int
    sightings: int
    resolved: int
    trips: int
    failed: tuple[str, ...] = ()
    """Units that failed now (``vehicle: error``); they are retried, or parked, as usual."""


def reconcile_day(
    sessions: sessionmaker[Session],
    day: dt.date,
    resolvers: ResolverCache,
    clock: Callable[[], dt.datetime],
) -> ReconcileSummary:
    """Reconcile everything received for a service day now, then settle its conflicts.

    Units of the day that failed or were parked start afresh. A day past retention is
    refused (``FinalDayError``): its trips are final.
    """
    with transaction(sessions) as session:
        mark = repository.purged_before(session)
        if mark is not None and day < mark:
            raise FinalDayError(day, mark)
        vehicles = repository.day_vehicles(session, day)
        repository.unpark_day(session, day)
        repository.mark_dirty(session, {(day, v) for v in vehicles}, clock())
    done = work_until_idle(sessions, resolvers, clock, day=day)
    results = [w.result for w in done if w.result]
    failed = tuple(f"{w.unit.vehicle_id}: {w.error}" for w in done if w.error is not None)
    with sessions() as session:
        trips = len(repository.day_trips(session, day))
    return ReconcileSummary(
        day,
        len(vehicles),
        sum(r.sightings for r in results),
        sum(r.resolved for r in results),
        trips,
        failed,
    )


@dataclass(frozen=True)
class PassengerCharge:
    """What a service day adds to a passenger's month (cents), or why it could not be
    priced (``error``)."""

    passenger_id: str
    trips: int
    total_cents: int | None
    singles_total_cents: int | None
    error: str | None = None


def day_charges(session: Session, day: dt.date) -> list[PassengerCharge]:
    """Each passenger's charge for one service day: the month's best price through that day
    minus the month's best price through the day before. A pass bought earlier in the month
    (a 30TageTicket, the Deutschlandticket) makes later days cost nothing; the charges of a
    month add up to its best price."""
    month = billing.month_of(day)
    first, _ = billing.month_days(month)
    charges = []
    for pid in repository.passengers_with_trips(session, day, day):
        category = repository.passenger_category(session, pid)
        through = billing.effective_trips(session, pid, first, day)
        today = [t for t in through if t.service_day == day]
        before = [t for t in through if t.service_day < day]
        if category is None or not today:
            continue
        try:
            after_bill = billing.price(through, category)
            before_bill = billing.price(before, category) if before else None
        except fare_engine.FareInputError as exc:
            # One unpriceable passenger (a stop the tariff lacks) must not hide the others.
            log.warning("cannot price %s on %s: %s", pid, day, exc)
            charges.append(PassengerCharge(pid, len(today), None, None, str(exc)))
            continue
        charges.append(
            PassengerCharge(
                pid,
                len(today),
                after_bill.total_cents - (before_bill.total_cents if before_bill else 0),
                after_bill.singles_total_cents
                - (before_bill.singles_total_cents if before_bill else 0),
            )
        )
    return charges
