"""Reconciliation as a service: load a vehicle-day through the repository, run the pure
model (``backend.trips.reconciliation``), store its trips; settle a day's conflicts and
transfer chains; and the work queue that runs both (claim, do, complete or fail a unit).
Callers commit.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import threading
import uuid
from collections import Counter, OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from backend import models
from backend.const import (
    MAX_UNIT_ATTEMPTS,
    SIGHTINGS_CACHE_ROWS,
    UNIT_RETRY_BACKOFF,
    WORK_LEASE,
)
from backend.db import transaction
from backend.maintenance import repository as maintenance_repo
from backend.models import DAY_UNIT
from backend.notifications.queue import enqueue_vehicle_day as enqueue_notifications
from backend.passengers import repository as passengers_repo
from backend.phones import repository as phones_repo
from backend.trips import repository as trips_repo
from backend.trips.reconciliation import (
    PHONE_ROWS_LOOKBACK_MS,
    EventRecord,
    Journey,
    VehicleObservations,
    conflict_losers,
    journeys_from_events,
    phone_observations,
    rebuild_plan,
    reconcile_journeys,
    transfer_chains,
)
from backend.trips.resolution import UNRESOLVED, TokenResolver, advertised_tx
from backend.trips.stops import stop_index, stop_walkable

log = logging.getLogger(__name__)

DEFAULT_WINDOW_MS: Final = 1000
"""The window length taken when no sighting says its batch's (one second, the agent's)."""


class ResolverCache:
    """What a process keeps between units of work: one token resolver, rebuilt when devices
    were registered or removed, and the sightings of the vehicle-days it reconciled last
    (``sightings``)."""

    def __init__(self) -> None:
        self._version: int | None = None
        self._resolver = TokenResolver([])
        self._passenger_of: dict[str, str] = {}
        self._index: dict[str, int] = {}
        self.sightings = SightingsCache()

    def get(self, session: Session) -> tuple[TokenResolver, dict[str, str]]:
        version = passengers_repo.device_registry_version(session)
        if version != self._version:
            devices = passengers_repo.all_devices(session)
            self._resolver = TokenResolver([(d, key) for d, key, _ in devices])
            self._passenger_of = {d: p for d, _, p in devices}
            self._index = {}
            self._version = version
        return self._resolver, self._passenger_of

    @property
    def version(self) -> int | None:
        """The device registry's version the resolver was built from (None: not yet built)."""
        return self._version

    def device_index(self, resolver: TokenResolver) -> dict[str, int]:
        """Each device id's index in ``resolver.device_ids`` (built once per registry)."""
        if not self._index:
            self._index = {d: i for i, d in enumerate(resolver.device_ids)}
        return self._index


_RESOLVED_COLUMNS: Final = ("t", "device", "rssi", "tx", "window_ms")
_STRANGER_COLUMNS: Final = ("stranger_t", "stranger_window_ms")
"""``_Held``'s columns: of the resolved sightings, and of the strangers'."""


@dataclass(frozen=True)
class _Held:
    """A vehicle-day's sightings from data time ``read_from`` on, as last read: the resolved
    ones column by column (``device`` indexes the resolver of registry ``version``), and of
    the others (strangers' tokens) the time and window, which ``data_end_ms`` counts."""

    read_from: int
    version: int | None
    t: npt.NDArray[np.int64]
    device: npt.NDArray[np.int32]
    rssi: npt.NDArray[np.int16]
    tx: npt.NDArray[np.float32]
    window_ms: npt.NDArray[np.int32]
    stranger_t: npt.NDArray[np.int64]
    stranger_window_ms: npt.NDArray[np.int32]

    def __post_init__(self) -> None:
        # Held across units and handed to reconciliation as they are: nothing may write
        # into them.
        for name in _RESOLVED_COLUMNS + _STRANGER_COLUMNS:
            getattr(self, name).setflags(write=False)

    @classmethod
    def read(
        cls,
        session: Session,
        day: dt.date,
        vehicle_id: str,
        read_from: int,
        resolver: TokenResolver,
        version: int | None,
    ) -> _Held:
        """The vehicle-day's sightings from ``read_from`` on, read whole."""
        rows = trips_repo.vehicle_day_sighting_rows(session, day, vehicle_id, read_from)
        return cls.resolved(rows, read_from, resolver, version)

    @classmethod
    def resolved(
        cls,
        rows: trips_repo.SightingRows,
        read_from: int,
        resolver: TokenResolver,
        version: int | None,
    ) -> _Held:
        device = resolver.resolve(rows.t, rows.token)
        known = device != UNRESOLVED
        tx = advertised_tx(rows.tx[known]).astype(np.float32)
        return cls(
            read_from,
            version,
            rows.t[known],
            device[known],
            rows.rssi[known],
            tx,
            rows.window_ms[known],
            rows.t[~known],
            rows.window_ms[~known],
        )

    @property
    def rows(self) -> int:
        return len(self.t) + len(self.stranger_t)

    def between(self, start: int, end: int) -> _Held:
        """Its sightings from data time ``start`` (not before ``read_from``) to ``end``."""
        n = np.searchsorted(self.t, [start, end])
        m = np.searchsorted(self.stranger_t, [start, end])
        cut: dict[str, Any] = {name: getattr(self, name)[n[0] : n[1]] for name in _RESOLVED_COLUMNS}
        cut |= {name: getattr(self, name)[m[0] : m[1]] for name in _STRANGER_COLUMNS}
        return dataclasses.replace(self, read_from=start, **cut)

    def then(self, later: _Held) -> _Held:
        """These sightings followed by ``later``'s (all of them later than these)."""
        joined: dict[str, Any] = {
            name: np.concatenate([getattr(self, name), getattr(later, name)])
            for name in _RESOLVED_COLUMNS + _STRANGER_COLUMNS
        }
        return dataclasses.replace(self, **joined)

    def observations(self, vehicle_id: str, seal_end: int) -> VehicleObservations:
        """As reconciliation reads them; the window is the longest of their batches' (1 s
        without any), and the data end the last one's window end or ``seal_end``."""
        windows = np.concatenate([self.window_ms, self.stranger_window_ms])
        window = int(windows.max()) if len(windows) else DEFAULT_WINDOW_MS
        last = max([int(x[-1]) for x in (self.t, self.stranger_t) if len(x)], default=None)
        return VehicleObservations(
            vehicle_id,
            self.t,
            self.device,
            self.rssi.astype(np.float64),
            self.tx.astype(np.float64),
            window,
            seal_end if last is None else max(seal_end, last + window),
        )


class SightingsCache:
    """The sightings of the vehicle-days a worker reconciled last, so that the next upload
    of a bus costs a read of its new sightings, not of its whole journey again.

    A unit records the worker that last reconciled it (``complete_unit``), and its
    ``dirty_from`` is the earliest data time uploaded since: every sighting this worker has
    not read is from then on. So when a unit is this worker's, the sightings held before
    ``dirty_from`` are those stored; those from it on are read again (uploads may come late
    and out of order). An upload that came in after the claim with earlier data lowered the
    unit's ``dirty_from`` meanwhile: it is read again after the sightings, and if it fell
    below what was kept, everything is read again. So are another worker's unit, a
    whole-day mark and a changed device registry. The rows, their order and so the trips
    are those of a full read at the same moment. At most ``SIGHTINGS_CACHE_ROWS`` rows are
    held, the least recently used vehicle-days dropped first.

    Safe to share between threads (``bibo serve`` reconciles in the background and on
    ``POST /v1/reconcile``); only units a thread has claimed may read through it.
    """

    def __init__(self, max_rows: int = SIGHTINGS_CACHE_ROWS) -> None:
        self.owner = uuid.uuid4().hex
        """This process's name in ``WorkUnit.reconciled_by``."""
        self._held: OrderedDict[tuple[dt.date, str], _Held] = OrderedDict()
        self._rows = 0
        self._max_rows = max_rows
        self._lock = threading.Lock()
        self.rows_read = 0
        """Sightings read from the database so far (the cache's effect, for tests)."""

    def peek(self, day: dt.date, vehicle_id: str) -> _Held | None:
        """What is held of the vehicle-day, without reading (for tests and inspection)."""
        with self._lock:
            return self._held.get((day, vehicle_id))

    def read(
        self,
        session: Session,
        day: dt.date,
        vehicle_id: str,
        read_from: int,
        changed_from: int,
        resolver: TokenResolver,
        version: int | None,
    ) -> _Held:
        """The vehicle-day's sightings from ``read_from`` on; ``changed_from`` is the
        earliest data time stored since this worker last read them, as the unit said when
        it was claimed (0: not known)."""
        key = (day, vehicle_id)
        with self._lock:
            held = self._held.get(key)
        fresh_from = read_from
        if (
            held is not None
            and changed_from > 0
            and held.version == version
            and held.read_from <= read_from
        ):
            fresh_from = max(read_from, changed_from)
        rows = trips_repo.vehicle_day_sighting_rows(session, day, vehicle_id, fresh_from)
        if fresh_from > read_from:
            pending = trips_repo.unit_dirty_from(session, day, vehicle_id)
            if pending < fresh_from:
                # Data from before ``fresh_from`` came in since the claim: what is held
                # misses it.
                fresh_from = read_from
                rows = trips_repo.vehicle_day_sighting_rows(session, day, vehicle_id, read_from)
        fresh = _Held.resolved(rows, fresh_from, resolver, version)
        if fresh_from > read_from and held is not None:
            fresh = held.between(read_from, fresh_from).then(fresh)
        with self._lock:
            self.rows_read += len(rows.t)
            replaced = self._held.pop(key, None)
            if replaced is not None:
                self._rows -= replaced.rows
            self._held[key] = fresh
            self._rows += fresh.rows
            while self._rows > self._max_rows and len(self._held) > 1:
                _, dropped = self._held.popitem(last=False)
                self._rows -= dropped.rows
        return fresh


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


def vehicle_day_observations(
    session: Session,
    day: dt.date,
    vehicle_id: str,
    read_from: int,
    resolvers: ResolverCache,
    resolver: TokenResolver,
    changed_from: int | None = None,
    seal_end: int | None = None,
) -> tuple[VehicleObservations, int, int]:
    """What one vehicle heard on ``day`` from data time ``read_from`` on, as reconciliation
    reads it: the bus's sightings resolved to devices and the beacon phones' reports of it;
    with the number of sightings read and of those resolved. ``changed_from``: for a unit
    this process claimed, the earliest data time stored since it last read the vehicle-day
    (0: not known), read through ``ResolverCache.sightings``; None (any other reader): read
    whole, past the cache. ``seal_end``: ``VehicleDayEnds.seal_end`` if read already."""
    if changed_from is None:
        held = _Held.read(session, day, vehicle_id, read_from, resolver, resolvers.version)
    else:
        held = resolvers.sightings.read(
            session, day, vehicle_id, read_from, changed_from, resolver, resolvers.version
        )
    if seal_end is None:
        seal_end = trips_repo.vehicle_day_ends(session, day, vehicle_id).seal_end
    obs = held.observations(vehicle_id, seal_end)
    phones = phones_repo.vehicle_day_phone_rows(
        session, day, vehicle_id, read_from - PHONE_ROWS_LOOKBACK_MS
    )
    if phones.beacons:
        index = resolvers.device_index(resolver)
        heard = phone_observations(
            vehicle_id, index, phones.beacons, phones.regions, phones.activity, phones.reported
        )
        obs = dataclasses.replace(obs, phone=heard)
    return obs, held.rows, len(held.t)


def vehicle_day_data(
    day: dt.date, vehicle_id: str, events: Sequence[EventRecord], journeys: Sequence[Journey]
) -> models.VehicleDayData:
    """What the vehicle sent on the day, as reconciliation read it: its journeys (those
    without their ``journey`` event are inferred), its calls (a terminus call shared by two
    journeys once; those without stop events derived from GNSS), fixes and door events."""
    calls = {(v.stop_id, v.arrival): v.derived for j in journeys for v in j.visits}
    kinds = Counter(e.type for e in events)
    return models.VehicleDayData(
        service_day=day,
        vehicle_id=vehicle_id,
        journeys=len(journeys),
        inferred_journeys=sum(j.inferred for j in journeys),
        calls=len(calls),
        derived_calls=sum(calls.values()),
        fixes=kinds["position"],
        door_events=kinds["doors_open"],
    )


def reconcile_vehicle_day(
    session: Session,
    day: dt.date,
    vehicle_id: str,
    resolvers: ResolverCache,
    since: int = 0,
    own: bool = False,
) -> VehicleDayResult:
    """Rebuild one vehicle's trips of one service day from what is stored for it, after its
    data changed from data time ``since`` on (0: everything): the journeys from the first
    one not finished by then (``rebuild_from``), so an upload costs one journey, not a day.
    ``own``: this process reconciled the vehicle-day last, so the sightings it may hold are
    current up to ``since`` (``SightingsCache``)."""
    resolver, passenger_of = resolvers.get(session)
    events = trips_repo.vehicle_day_events(session, day, vehicle_id)
    ends = trips_repo.vehicle_day_ends(session, day, vehicle_id)
    journeys = journeys_from_events(vehicle_id, events, stop_index(), ends.data_end)
    trips_repo.save_vehicle_day_data(session, vehicle_day_data(day, vehicle_id, events, journeys))
    # The journeys rebuilt, and before them those that calibrate their levels (context).
    plan = rebuild_plan(journeys, since)
    start, first, context_from = plan.start, plan.first, plan.context_from
    obs, stored, resolved = vehicle_day_observations(
        session,
        day,
        vehicle_id,
        plan.read_from,
        resolvers,
        resolver,
        changed_from=since if own else 0,
        seal_end=ends.seal_end,
    )
    trips = reconcile_journeys(
        journeys[context_from:], obs, resolver.device_ids, context=first - context_from
    )
    trips_repo.replace_vehicle_trips(session, day, vehicle_id, trips, passenger_of, start)
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
        stored,
        resolved,
        len(trips),
        tuple(t.confidence for t in trips),
        inferred,
        derived,
    )


def settle_day(session: Session, day: dt.date) -> int:
    """Day-level decisions across vehicles: a device rides one vehicle at a time, and trips
    joined at hubs form one journey. Returns the number of conflict losers."""
    candidates = trips_repo.day_trip_candidates(session, day)
    losers = conflict_losers(candidates)
    kept = [t for t in candidates if t.trip_id not in losers]
    chains = transfer_chains(kept, stop_walkable())
    trips_repo.settle_trips(session, day, losers, chains)
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
    session: Session, unit: trips_repo.ClaimedUnit, resolvers: ResolverCache, now: dt.datetime
) -> VehicleDayResult | None:
    """Do one claimed unit of work and release it (in the caller's transaction).

    A unit of a final day (past retention) is released without a rebuild: with the raw
    sightings gone, a rebuild would remove trips it can no longer see the evidence for.
    """
    result = None
    mark = maintenance_repo.hold_retention(session)
    if mark is not None and unit.service_day < mark:
        log.warning(
            "work unit %s %s left as it is: the day is past retention",
            unit.service_day,
            unit.vehicle_id,
        )
    elif unit.vehicle_id == DAY_UNIT:
        settle_day(session, unit.service_day)
    else:
        own = unit.reconciled_by == resolvers.sightings.owner
        result = reconcile_vehicle_day(
            session, unit.service_day, unit.vehicle_id, resolvers, unit.dirty_from, own
        )
        # Queued only (one insert); texts, prices and pushes are the drain's (notifications).
        enqueue_notifications(session, unit.service_day, unit.vehicle_id, now)
        # The day's conflicts are settled again after this vehicle's trips changed.
        trips_repo.mark_dirty(session, {(unit.service_day, DAY_UNIT)}, now)
    trips_repo.complete_unit(session, unit, now, resolvers.sightings.owner)
    return result


@dataclass(frozen=True)
class WorkDone:
    unit: trips_repo.ClaimedUnit
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
        unit = trips_repo.claim_unit(
            session, clock(), WORK_LEASE, day=day, worker=resolvers.sightings.owner
        )
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
    unit: trips_repo.ClaimedUnit,
    exc: Exception,
    clock: Callable[[], dt.datetime],
) -> WorkDone:
    """Record a failed attempt at ``unit``: retried after a back-off, parked at the end."""
    error = f"{type(exc).__name__}: {exc}"
    log.error("work unit %s %s failed", unit.service_day, unit.vehicle_id, exc_info=exc)
    with transaction(sessions) as session:
        attempts = trips_repo.unit_attempts(session, unit) + 1
        park = attempts >= MAX_UNIT_ATTEMPTS
        trips_repo.fail_unit(
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
        mark = maintenance_repo.purged_before(session)
        if mark is not None and day < mark:
            raise FinalDayError(day, mark)
        vehicles = trips_repo.day_vehicles(session, day)
        trips_repo.unpark_day(session, day)
        trips_repo.mark_dirty(session, {(day, v) for v in vehicles}, clock())
    done = work_until_idle(sessions, resolvers, clock, day=day)
    results = [w.result for w in done if w.result]
    failed = tuple(f"{w.unit.vehicle_id}: {w.error}" for w in done if w.error is not None)
    with sessions() as session:
        trips = len(trips_repo.day_trips(session, day))
    return ReconcileSummary(
        day,
        len(vehicles),
        sum(r.sightings for r in results),
        sum(r.resolved for r in results),
        trips,
        failed,
    )


def day_trips(session: Session, day: dt.date) -> list[models.Trip]:
    """The service day's trips, in export order."""
    return trips_repo.day_trips(session, day)
