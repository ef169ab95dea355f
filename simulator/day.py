"""A simulated service day: plan it, stream each bus's adverts and events, get the truth.

``plan_day`` is deterministic in its seed. Device keys come from the backend after
planning, so ``vehicle_timeline`` takes them (by ``person_id``) together with a second seed
for the radio. All times are UTC epoch milliseconds.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import zlib
from collections import defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from onboard import wire
from simulator.const import (
    ADV_DELAY_MAX_MS,
    DEFAULT_SERVICE_END,
    DEFAULT_SERVICE_START,
    POSITION_PERIOD_MS,
    SHADOWING_SIGMA_DB,
)
from simulator.network import Network
from simulator.population import (
    Encounter,
    Episode,
    Person,
    PlannedTrip,
    distance_at,
    make_persons,
    plan_episodes,
    plan_trips,
)
from simulator.radio import (
    heard_mask,
    listened_mask,
    mean_rssi_dbm,
    quantise_rssi,
    sample_rssi,
)
from simulator.timetable import (
    Journey,
    TimetableConfig,
    Vehicle,
    build_timetable,
    local_to_epoch_ms,
)
from simulator.truth import GroundTruth, TruthEncounter, TruthTrip

__all__ = [
    "Advert",
    "DayConfig",
    "DayPlan",
    "GroundTruth",
    "TimelineItem",
    "TruthEncounter",
    "TruthTrip",
    "ground_truth",
    "make_device_keys",
    "plan_day",
    "vehicle_timeline",
]


@dataclass(frozen=True, slots=True)
class DayConfig:
    """What to simulate: the day, the fleet size (all lines), and how many people.

    ``service_start``/``service_end`` are local times of the first and last departure;
    ``headway_min`` fixes the headway per direction (minutes), otherwise derived per line.
    """

    service_day: dt.date
    buses: int = 6
    passengers: int = 200
    bystanders: int = 60
    service_start: dt.time = DEFAULT_SERVICE_START
    service_end: dt.time = DEFAULT_SERVICE_END
    headway_min: int | None = None


@dataclass(frozen=True)
class DayPlan:
    """Everything decided before any radio is simulated (pure data, comparable with ==).

    ``episodes`` maps vehicle id to the spans a phone is near that bus, sorted by start.
    """

    config: DayConfig
    seed: int
    network: Network
    vehicles: tuple[Vehicle, ...]
    persons: tuple[Person, ...]
    trips: tuple[PlannedTrip, ...]
    encounters: tuple[Encounter, ...]
    episodes: Mapping[str, tuple[Episode, ...]]

    def vehicle(self, vehicle_id: str) -> Vehicle:
        """The vehicle with this id (KeyError names it)."""
        for v in self.vehicles:
            if v.vehicle_id == vehicle_id:
                return v
        raise KeyError(f"unknown vehicle_id {vehicle_id!r}")

    def person(self, person_id: str) -> Person:
        """The person with this id (KeyError names it)."""
        for p in self.persons:
            if p.person_id == person_id:
                return p
        raise KeyError(f"unknown person_id {person_id!r}")

    @property
    def vehicle_ids(self) -> tuple[str, ...]:
        """All vehicle ids in plan order."""
        return tuple(v.vehicle_id for v in self.vehicles)


@dataclass(frozen=True, slots=True)
class Advert:
    """One advertisement the bus receiver decoded.

    ``t_ms`` epoch ms (true time); ``address`` the phone's current random MAC (rotates with
    the token); ``token`` 16 bytes; ``tx_power`` the advertised dBm at 1 m; ``rssi`` dBm.
    """

    t_ms: int
    address: str
    token: bytes
    tx_power: int
    rssi: int


TimelineItem = (
    Advert
    | wire.JourneyEvent
    | wire.ArrivalEvent
    | wire.DoorsOpenEvent
    | wire.DoorsClosedEvent
    | wire.DepartureEvent
    | wire.PositionEvent
)
VehicleEvent = (
    wire.JourneyEvent
    | wire.ArrivalEvent
    | wire.DoorsOpenEvent
    | wire.DoorsClosedEvent
    | wire.DepartureEvent
    | wire.PositionEvent
)

_SUBSEEDS: Final = {"timetable": 1, "persons": 2, "trips": 3, "episodes": 4}
"""Independent random streams per planning stage, so changing one stage leaves the others."""


def _rng(seed: int, *key: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, *key]))


def _crc(text: str) -> int:
    return zlib.crc32(text.encode("utf-8"))


def plan_day(network: Network, cfg: DayConfig, seed: int) -> DayPlan:
    """Plan the day: timetable and vehicles, persons and phones, trips, bystander episodes."""
    if cfg.passengers < 0 or cfg.bystanders < 0:
        raise ValueError(
            f"passengers/bystanders: expected >= 0, got {cfg.passengers}/{cfg.bystanders}"
        )
    tt_cfg = TimetableConfig(cfg.service_start, cfg.service_end, cfg.headway_min)
    vehicles = build_timetable(
        network, cfg.service_day, cfg.buses, _rng(seed, _SUBSEEDS["timetable"]), tt_cfg
    )
    persons = make_persons(_rng(seed, _SUBSEEDS["persons"]), cfg.passengers, cfg.bystanders)
    midnight = local_to_epoch_ms(cfg.service_day, dt.time(0, 0))
    trips = plan_trips(_rng(seed, _SUBSEEDS["trips"]), network, vehicles, persons, midnight)
    episodes, encounters = plan_episodes(
        _rng(seed, _SUBSEEDS["episodes"]), vehicles, persons, trips
    )
    return DayPlan(cfg, seed, network, vehicles, persons, trips, encounters, episodes)


def make_device_keys(plan: DayPlan, seed: int) -> dict[str, bytes]:
    """Deterministic 32-byte device keys by person id, for runs without a backend."""
    return {
        p.person_id: hashlib.sha256(f"bibo-sim-key|{seed}|{p.person_id}".encode()).digest()
        for p in plan.persons
    }


def mac_for_token(token: bytes) -> str:
    """A resolvable-private-style random MAC derived from the token (rotates with it)."""
    raw = bytearray(hashlib.blake2b(token, digest_size=6, person=b"bibo-sim-mac").digest())
    raw[0] = (raw[0] & 0x3F) | 0x40
    return ":".join(f"{b:02X}" for b in raw)


def _vehicle_events(network: Network, journey: Journey) -> list[VehicleEvent]:
    """The journey's contract events in time order (journey first, then per stop)."""
    events: list[VehicleEvent] = [
        wire.JourneyEvent(
            t=journey.start_ms,
            line=journey.line,
            journey_id=journey.journey_id,
            direction=journey.direction,
        )
    ]
    calls = journey.calls
    for k, c in enumerate(calls):
        events.append(wire.ArrivalEvent(t=c.arrival_ms, stop_id=c.stop_id))
        events.append(wire.DoorsOpenEvent(t=c.doors_open_ms))
        events.append(wire.DoorsClosedEvent(t=c.doors_closed_ms))
        events.append(wire.DepartureEvent(t=c.departure_ms, stop_id=c.stop_id))
        if k + 1 == len(calls):
            break
        a, b = network.stop(c.stop_id), network.stop(calls[k + 1].stop_id)
        t0, t1 = c.departure_ms, calls[k + 1].arrival_ms
        t = (t0 // POSITION_PERIOD_MS + 1) * POSITION_PERIOD_MS
        while t < t1:
            f = (t - t0) / (t1 - t0)
            events.append(
                wire.PositionEvent(
                    t=t,
                    lat=round(a.lat + (b.lat - a.lat) * f, 6),
                    lon=round(a.lon + (b.lon - a.lon) * f, 6),
                    speed_mps=round(journey.segment_speeds_mps[k], 2),
                )
            )
            t += POSITION_PERIOD_MS
    return events


def _door_boundaries(vehicle: Vehicle) -> npt.NDArray[np.int64]:
    """Sorted [open, closed, open, closed, …] instants (ms) of all the vehicle's stops."""
    out = [
        x for j in vehicle.journeys for c in j.calls for x in (c.doors_open_ms, c.doors_closed_ms)
    ]
    return np.asarray(out, dtype=np.int64)


def _episode_adverts(
    rng: np.random.Generator,
    ep: Episode,
    person: Person,
    doors: npt.NDArray[np.int64],
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Times (ms) and RSSIs (dBm) of the episode's adverts the receiver decodes."""
    phone = person.phone
    interval = phone.adv_interval_ms
    start = ep.start_ms + int(rng.integers(0, interval))
    n = max(0, (ep.end_ms - start + interval - 1) // interval)
    t = start + np.arange(n, dtype=np.int64) * interval
    t = t + rng.integers(0, ADV_DELAY_MAX_MS + 1, size=n)
    t = t[(t < ep.end_ms) & listened_mask(rng, n)]
    doors_open = (np.searchsorted(doors, t, side="right") % 2) == 1
    mean = mean_rssi_dbm(phone.tx_1m_dbm, distance_at(ep, t), ep.placement, doors_open, phone.carry)
    rssi = sample_rssi(rng, mean, float(rng.normal(0.0, SHADOWING_SIGMA_DB)))
    keep = heard_mask(rng, rssi)
    return t[keep], quantise_rssi(rssi[keep])


def vehicle_timeline(
    plan: DayPlan, vehicle_id: str, device_keys: Mapping[str, bytes], seed: int
) -> Iterator[TimelineItem]:
    """Yield the vehicle's decoded adverts and its contract events in time order.

    ``device_keys`` maps person id to the 32-byte key the backend issued; every person
    heard by this vehicle needs one (ValueError lists those missing). ``seed`` drives the
    radio (fading, losses), independent of the plan's seed. Work is done one journey at a
    time, so memory stays bounded by the busiest journey.
    """
    vehicle = plan.vehicle(vehicle_id)
    episodes = plan.episodes.get(vehicle_id, ())
    missing = sorted({ep.person_id for ep in episodes} - set(device_keys))
    if missing:
        shown = ", ".join(missing[:5]) + (" …" if len(missing) > 5 else "")
        raise ValueError(f"device_keys: no key for {len(missing)} person(s) heard: {shown}")
    persons = {p.person_id: p for p in plan.persons}
    by_journey: dict[str, list[Episode]] = defaultdict(list)
    for ep in episodes:
        by_journey[ep.journey_id].append(ep)
    doors = _door_boundaries(vehicle)
    vcrc = _crc(vehicle_id)
    cache: dict[tuple[str, int], tuple[str, bytes]] = {}

    for jk, journey in enumerate(vehicle.journeys):
        rng = _rng(seed, vcrc, jk)
        jeps = by_journey.get(journey.journey_id, [])
        ts: list[npt.NDArray[np.int64]] = []
        rs: list[npt.NDArray[np.int64]] = []
        who: list[npt.NDArray[np.int64]] = []
        for e, ep in enumerate(jeps):
            t, r = _episode_adverts(rng, ep, persons[ep.person_id], doors)
            ts.append(t)
            rs.append(r)
            who.append(np.full(t.shape, e, dtype=np.int64))
        if ts:
            t_all = np.concatenate(ts)
            order = np.argsort(t_all, kind="stable")
            t_list: list[int] = t_all[order].tolist()
            r_list: list[int] = np.concatenate(rs)[order].tolist()
            w_list: list[int] = np.concatenate(who)[order].tolist()
        else:
            t_list, r_list, w_list = [], [], []
        events = _vehicle_events(plan.network, journey)
        ei = 0
        for t_ms, rssi, e in zip(t_list, r_list, w_list, strict=True):
            while ei < len(events) and events[ei].t <= t_ms:
                yield events[ei]
                ei += 1
            person = persons[jeps[e].person_id]
            phone = person.phone
            interval = wire.interval_of(t_ms + phone.clock_skew_ms)
            key = (person.person_id, interval)
            hit = cache.get(key)
            if hit is None:
                token = wire.token_for_interval(device_keys[person.person_id], interval)
                hit = (mac_for_token(token), token)
                cache[key] = hit
            yield Advert(t_ms, hit[0], hit[1], phone.tx_power_dbm, rssi)
        yield from events[ei:]
        if len(cache) > 50_000:
            cache.clear()


def ground_truth(plan: DayPlan, device_ids: Mapping[str, str] | None = None) -> GroundTruth:
    """The day's truth: every ride and every non-rider encounter, in time order.

    ``device_ids`` (person id → backend device id) fills ``device_id`` where known.
    """
    ids = device_ids or {}
    trips = [
        TruthTrip(
            person_id=t.person_id,
            vehicle_id=t.vehicle_id,
            journey_id=t.journey_id,
            line=t.line,
            board_stop_id=t.board_stop_id,
            board_time=t.board_time,
            alight_stop_id=t.alight_stop_id,
            alight_time=t.alight_time,
            rider_category=t.rider_category,
            device_id=ids.get(t.person_id),
        )
        for t in sorted(plan.trips, key=lambda t: (t.board_time, t.person_id))
    ]
    encounters = [
        TruthEncounter(e.person_id, e.vehicle_id, e.stop_id, e.t, e.kind, ids.get(e.person_id))
        for e in plan.encounters
    ]
    return GroundTruth(plan.config.service_day, plan.seed, trips, encounters)
