"""Honest be-in and be-out latency, and flip-flops, from a paced replay of a recording.

The backend shows a rider what it decided on the data it holds. Here that is replayed: a
bus's onboard agent seals an upload every ``UPLOAD_INTERVAL_MS`` (10 s), so at each seal
``c`` the backend holds the sightings of the windows closed by ``c`` and the events up to
``c``; a worker pass (``WORKER_PASS_S``) later ``GET /v1/trips`` shows the
reconciliation of exactly that data (incremental rebuilds equal full ones, tested in
tests/backend); an iPhone's upload counts from when it was sent in true time (its
``sent_at`` is read on the phone's clock, which runs up to 60 s off). The seals looked at
are those within ``LATENCY_HORIZON_S`` after each departure that some rider's boarding or
alighting follows; the journeys under way then are reconciled on the truncated data with
the backend's own code.

- **be-in**: from the bus leaving the true boarding stop to the first seal whose trips show
  the rider on this bus boarded at that stop (open or closed), plus the worker pass.
- **be-out**: from the bus leaving the true alighting stop to the first seal whose trips
  show the ride closed at that stop. A be-out at a wrong stop is not a fast success: the
  ride counts as not known (infinite) until it shows the right one.
- **flip-flop**: a trip shown closed at some seal whose existence or stops differ in the
  final reconciliation of the whole day.
- **bystanders shown**: trips shown at some seal (open or closed) on a vehicle the device's
  person rode at no time of the trip: someone the backend held on board, if only for a
  while, who was not (their app said "on bus X", a be-in notification went out).

Rides the final reconciliation did not match, and alightings the phone could not show
(``alight_observable``), are left out of the latency; a ride not shown right within the
horizon counts as infinite, so a percentile above the horizon prints as such.
"""

from __future__ import annotations

import bisect
import dataclasses
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np

from backend.phones.clock import ClockBounds
from backend.trips.reconciliation import (
    DEFAULT_LEVEL,
    LevelModel,
    PhoneObservations,
    VehicleObservations,
    calibrating_journeys,
    journeys_from_events,
    reconcile_journeys,
)
from backend.trips.reconciliation import DetectedTrip as BackendTrip
from backend.trips.resolution import BeaconResolver, TokenResolver
from backend.trips.stops import stop_index
from onboard.const import UPLOAD_INTERVAL_MS
from simulator.const import LATENCY_HORIZON_S, WORKER_PASS_S
from simulator.day import DayPlan
from simulator.offline import (
    DAY_INTERVALS,
    PhoneRows,
    observations,
    phone_rows,
    sorted_events,
    vehicle_data,
)
from simulator.recording import Recording
from simulator.scoring import ScoredTrip, alight_observable, detectable, overlaps, score
from simulator.truth import GroundTruth, TruthTrip

ADVERTISING: Final = "advertising"
BEACON: Final = "beacon"
"""How a rider's phone is seen (``simulator.sweep.PLATFORMS``): it advertises and the bus
hears it (Android), or it hears the bus beacon and uploads what it heard (iPhone)."""


@dataclass
class LatencyCounts:
    """Latencies in seconds (``inf``: not shown right within the horizon) and flip-flops."""

    bein: list[float] = field(default_factory=list)
    beout: list[float] = field(default_factory=list)
    flip_flops: int = 0
    closed_trips: int = 0
    bystanders_shown: int = 0
    platform_shown: dict[str, int] = field(default_factory=dict)
    """``bystanders_shown`` by the platforms of the person's phone."""
    platform_bein: dict[str, list[float]] = field(default_factory=dict)
    platform_beout: dict[str, list[float]] = field(default_factory=dict)
    """The same latencies by the platforms of the rider's phone (``BEACON``: iPhones, and
    whatever finer platforms the caller named, ``paced_latency``)."""

    @property
    def beacon_bein(self) -> list[float]:
        return self.platform_bein.get(BEACON, [])

    @property
    def beacon_beout(self) -> list[float]:
        return self.platform_beout.get(BEACON, [])

    def merge(self, other: LatencyCounts) -> None:
        self.bein += other.bein
        self.beout += other.beout
        self.flip_flops += other.flip_flops
        self.closed_trips += other.closed_trips
        self.bystanders_shown += other.bystanders_shown
        for platform, n in other.platform_shown.items():
            self.platform_shown[platform] = self.platform_shown.get(platform, 0) + n
        for mine, theirs in (
            (self.platform_bein, other.platform_bein),
            (self.platform_beout, other.platform_beout),
        ):
            for platform, values in theirs.items():
                mine.setdefault(platform, []).extend(values)

    def add(self, alight: bool, seconds: float, platforms: Sequence[str]) -> None:
        """A ride's be-in (``alight`` False) or be-out latency, counted under ``platforms``."""
        (self.beout if alight else self.bein).append(seconds)
        by_platform = self.platform_beout if alight else self.platform_bein
        for platform in platforms:
            by_platform.setdefault(platform, []).append(seconds)

    def summary(self) -> dict[str, Any]:
        def pct(values: list[float]) -> dict[str, float | int | None]:
            if not values:
                return {"rides": 0, "p50_s": None, "p95_s": None, "p99_s": None}
            a = np.array(values)
            return {
                "rides": len(values),
                **{
                    f"p{q}_s": round(float(np.percentile(a, q, method="higher")), 1)
                    for q in (50, 95, 99)
                },
            }

        platforms = sorted(
            set(self.platform_bein) | set(self.platform_beout) | set(self.platform_shown)
        )
        return {
            "bein": pct(self.bein),
            "beout": pct(self.beout),
            "beacon_bein": pct(self.beacon_bein),
            "beacon_beout": pct(self.beacon_beout),
            "platforms": {
                p: {
                    "bein": pct(self.platform_bein.get(p, [])),
                    "beout": pct(self.platform_beout.get(p, [])),
                    "bystanders_shown": self.platform_shown.get(p, 0),
                }
                for p in platforms
            },
            "flip_flops": self.flip_flops,
            "closed_trips": self.closed_trips,
            "bystanders_shown": self.bystanders_shown,
            "flip_flop_share": (
                round(self.flip_flops / self.closed_trips, 5) if self.closed_trips else None
            ),
        }


def phone_uploads(
    recording: Recording, clock_skew_ms: Mapping[str, int]
) -> list[tuple[int, PhoneRows]]:
    """The recording's phone uploads, each resolved (``simulator.offline.phone_rows``), by
    the time they were sent: ``sent_at`` is read on the phone's clock, ``clock_skew_ms``
    (by device id) ahead of the true time at which the backend holds the upload."""
    bodies = list(recording.phone_batches())
    if not bodies:
        return []
    beacons = BeaconResolver(sorted(recording.vehicle_secrets().items()), DAY_INTERVALS)
    uploads = []
    clocks: dict[str, ClockBounds | None] = {}  # each phone's, upload by upload
    for body in bodies:
        doc = json.loads(body)
        sent = int(doc["sent_at"]) - clock_skew_ms.get(doc["device_id"], 0)
        uploads.append((sent, phone_rows([body], beacons, clocks)))
    return sorted(uploads, key=lambda u: u[0])


def _heard_by(uploads: list[tuple[int, PhoneRows]], vehicle_id: str) -> list[tuple[int, PhoneRows]]:
    """The uploads of the phones that heard ``vehicle_id`` (all their rows), by time sent."""
    devices = {b[0] for _, rows in uploads for b in rows.beacons if b[3] == vehicle_id}
    out = []
    for sent_at, rows in uploads:
        mine = rows.of_devices(devices)
        if mine:
            out.append((sent_at, mine))
    return out


class _PhonesSoFar:
    """What the phones that heard one vehicle had uploaded by a seal, as observations
    (computed once per number of uploads: consecutive seals mostly hold the same ones)."""

    def __init__(
        self, vehicle_id: str, heard: list[tuple[int, PhoneRows]], index: dict[str, int]
    ) -> None:
        self._vehicle_id, self._heard, self._index = vehicle_id, heard, index
        self._sent = [sent_at for sent_at, _ in heard]
        self._cache: dict[int, PhoneObservations | None] = {}

    def __bool__(self) -> bool:
        return bool(self._heard)

    def apply(self, obs: VehicleObservations, cut: int | None) -> VehicleObservations:
        """``obs`` with the uploads sent by ``cut`` (None: all of them)."""
        n = len(self._sent) if cut is None else bisect.bisect_right(self._sent, cut)
        if n not in self._cache:
            rows = PhoneRows()
            for _, part in self._heard[:n]:
                rows.extend(part)
            self._cache[n] = rows.observations(self._vehicle_id, self._index)
        return dataclasses.replace(obs, phone=self._cache[n])


EVENT_LOOKBACK_MS = 10 * 60_000
"""Events read before the first journey a seal can change (its journey event comes first)."""


def truncated(obs: VehicleObservations, cut: int) -> VehicleObservations:
    """What the backend holds at seal ``cut``: the windows closed by then, data up to it."""
    k = int(np.searchsorted(obs.t, cut - obs.window_ms, side="right"))
    n = len(obs.t)
    changes: dict[str, Any] = {"data_end_ms": cut}
    for f in dataclasses.fields(obs):
        value = getattr(obs, f.name)
        if isinstance(value, np.ndarray) and value.ndim >= 1 and len(value) == n:
            changes[f.name] = value[:k]
    return dataclasses.replace(obs, **changes)


def _seals_after(t: int, horizon_ms: int) -> range:
    """The 10 s seals from the first at or after ``t`` up to ``t + horizon``."""
    first = -(-t // UPLOAD_INTERVAL_MS) * UPLOAD_INTERVAL_MS
    return range(first, t + horizon_ms + 1, UPLOAD_INTERVAL_MS)


def _shows(trips: Sequence[BackendTrip], ride: TruthTrip, stop: str, alight: bool) -> bool:
    for t in trips:
        if t.device_id != ride.device_id or t.alight_time < ride.board_time:
            continue
        if t.board_time > ride.alight_time:
            continue
        if alight and t.status == "closed" and t.alight_stop_id == stop:
            return True
        if not alight and t.board_stop_id == stop:
            return True
    return False


def shown_to_a_bystander(
    trip: BackendTrip,
    rode: Mapping[tuple[str, str], Sequence[TruthTrip]],
    person_of_device: Mapping[str, str],
) -> bool:
    """Whether ``trip`` (as a seal shows it: an open one ends at the data's end) overlaps
    none of the true rides of its device's person on its vehicle (``rode``, by person and
    vehicle id)."""
    person = person_of_device.get(trip.device_id, "")
    return not any(overlaps(trip, r) for r in rode.get((person, trip.vehicle_id), ()))


def latency_at(cut: int, dep: int, horizon_ms: int, shown: bool) -> float | None:
    """A ride's latency (s) as decided at seal ``cut`` for a departure at ``dep``
    (``shown``: the trips then show it right): the time to then, infinite once the horizon
    is over, None while it may yet show. The seals looked at come from every departure, so
    a ride may be looked at again long past its own horizon: not shown in time, it is
    infinite however it shows then."""
    if cut > dep + horizon_ms:
        return float("inf")
    if shown:
        return (cut - dep) / 1000 + WORKER_PASS_S
    if cut >= dep + horizon_ms:
        return float("inf")
    return None


def paced_latency(
    recording: Recording,
    plan: DayPlan,
    truth: GroundTruth,
    detected: Sequence[ScoredTrip],
    person_of_device: Mapping[str, str],
    level_model: LevelModel = DEFAULT_LEVEL,
    platforms: Mapping[str, Sequence[str]] | None = None,
) -> LatencyCounts:
    """be-in, be-out and flip-flops of bibo on ``recording`` (see the module docstring).

    ``detected`` are the final trips (after conflicts) used to pick the rides bibo matched.
    ``platforms`` names, by person id, the platforms each rider's latencies count under
    (default: ``BEACON`` for the plan's iPhones, ``ADVERTISING`` for the others).
    """

    def platforms_of(person_id: str) -> Sequence[str]:
        if platforms is not None and person_id in platforms:
            return platforms[person_id]
        return (BEACON,) if person_id in plan.iphones else (ADVERTISING,)

    horizon = int(LATENCY_HORIZON_S * 1000)
    scores = score(truth, detected, person_of_device)
    matched = [truth.trips[i] for _, i in scores.matched_pairs]
    departures: dict[tuple[str, str, str], int] = {}
    for vehicle in plan.vehicles:
        for journey in vehicle.journeys:
            for call in journey.calls:
                departures[(vehicle.vehicle_id, journey.journey_id, call.stop_id)] = (
                    call.departure_ms
                )
    # Every true ride (detectable or not) by person and vehicle: a trip overlapping none of
    # them is shown to a bystander.
    rode: dict[tuple[str, str], list[TruthTrip]] = {}
    for ride in truth.trips:
        rode.setdefault((ride.person_id, ride.vehicle_id), []).append(ride)
    rides_on: dict[str, list[TruthTrip]] = {}
    for ride in matched:
        if detectable(ride) and ride.device_id:
            rides_on.setdefault(ride.vehicle_id, []).append(ride)
    resolver = TokenResolver(list(recording.device_keys().items()), cache_intervals=DAY_INTERVALS)
    index = {device_id: i for i, device_id in enumerate(resolver.device_ids)}
    skew = {p.person_id: p.phone.clock_skew_ms for p in plan.persons}
    uploads = phone_uploads(
        recording, {d: skew[p] for d, p in person_of_device.items() if p in skew}
    )
    stops = stop_index()
    # Journeys before the two a seal can change that calibrate their levels (relative model).
    window_extra = range(calibrating_journeys(level_model))
    out = LatencyCounts()
    for entry in recording.vehicles:
        vid = entry["vehicle_id"]
        rides = rides_on.get(vid, [])
        data = vehicle_data(vid, recording.batches(vid))
        obs, _ = observations(data, resolver)
        heard = _PhonesSoFar(vid, _heard_by(uploads, vid), index)

        if heard:
            obs = heard.apply(obs, None)
        events = sorted_events(data)
        event_t = np.array([e.t for e in events], dtype=np.int64)
        final_journeys = journeys_from_events(vid, events, stops, obs.data_end_ms)
        final = reconcile_journeys(final_journeys, obs, resolver.device_ids, level_model)
        starts = np.array([j.visits[0].arrival for j in final_journeys], dtype=np.int64)
        final_stops = {t.trip_id: (t.board_stop_id, t.alight_stop_id) for t in final}
        out.closed_trips += sum(t.status == "closed" for t in final)

        wanted: dict[int, list[tuple[TruthTrip, bool, int]]] = {}
        for ride in rides:
            for alight in (False, True):
                if alight and not alight_observable(ride):
                    continue
                stop = ride.alight_stop_id if alight else ride.board_stop_id
                dep = departures.get((vid, ride.journey_id, stop))
                if dep is None:
                    continue
                wanted.setdefault(dep, []).append((ride, alight, dep))
        cuts = sorted({c for dep in wanted for c in _seals_after(dep, horizon)})
        pending = {
            (r.person_id, r.board_time, a): (r, a, dep) for v in wanted.values() for r, a, dep in v
        }
        flipped: set[str] = set()
        shown_to_bystanders: dict[str, str] = {}  # trip id: device id
        for cut in cuts:
            # The events since shortly before the journey two before the one under way:
            # enough to cut the two journeys a seal can change as the whole day would,
            # without re-reading it. (A slice that began inside one of them would cut that
            # journey as an inferred one, under another id: its trips would count as
            # flip-flops of the measurement, not of bibo.)
            under_way = max(
                0, int(np.searchsorted(starts, cut, side="right")) - 3 - len(window_extra)
            )
            since = int(starts[under_way]) - EVENT_LOOKBACK_MS if starts.size else 0
            lo = int(np.searchsorted(event_t, since, side="left"))
            k = int(np.searchsorted(event_t, cut, side="right"))
            journeys = journeys_from_events(vid, events[lo:k], stops, cut)
            if not journeys:
                continue
            # The two journeys a seal can change, with the ones that calibrate their levels.
            window = journeys[-(2 + len(window_extra)) :]
            held = truncated(obs, cut)
            if heard:
                held = heard.apply(held, cut)  # the phone uploads sent by then
            trips = reconcile_journeys(
                window,
                held,
                resolver.device_ids,
                level_model,
                context=max(0, len(window) - 2),
            )
            for t in trips:
                if t.status == "closed" and final_stops.get(t.trip_id) != (
                    t.board_stop_id,
                    t.alight_stop_id,
                ):
                    flipped.add(t.trip_id)
                if shown_to_a_bystander(t, rode, person_of_device):
                    shown_to_bystanders[t.trip_id] = t.device_id
            done = []
            for key, (ride, alight, dep) in pending.items():
                if cut < dep:
                    continue
                stop = ride.alight_stop_id if alight else ride.board_stop_id
                seconds = latency_at(cut, dep, horizon, _shows(trips, ride, stop, alight))
                if seconds is not None:
                    out.add(alight, seconds, platforms_of(ride.person_id))
                    done.append(key)
            for key in done:
                del pending[key]
        for ride, alight, _ in pending.values():
            out.add(alight, float("inf"), platforms_of(ride.person_id))
        out.flip_flops += len(flipped)
        out.bystanders_shown += len(shown_to_bystanders)
        for device_id in shown_to_bystanders.values():
            for platform in platforms_of(person_of_device.get(device_id, "")):
                out.platform_shown[platform] = out.platform_shown.get(platform, 0) + 1
    return out
