"""A simulated service day: plan it, stream each bus's adverts and events, get the truth.

``plan_day`` is deterministic in its seed. Device keys come from the backend (or
:func:`make_device_keys`) after planning, so the timelines take them (by ``person_id``)
together with a second seed for the radio. All times are UTC epoch milliseconds. A
vehicle's day is generated one *slot* (a journey and the layover after it) at a time, so
memory stays bounded by the busiest journey.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import zlib
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final, TypeVar

import numpy as np
import numpy.typing as npt

from backend.timeutil import service_day_bounds
from onboard import wire
from simulator.adverts import Receiver, slot_adverts
from simulator.bystanders import Encounter, Episode, plan_episodes
from simulator.const import (
    BACKGROUND_LOCATION_SHARE,
    BYSTANDER_KINDS_MIXED,
    DEFAULT_SERVICE_END,
    DEFAULT_SERVICE_START,
    GNSS_OUTLIER_M,
    INCIDENT_PROB,
    PHONE_OUTAGE_PROB,
    POSITION_PERIOD_MS,
    ROAD_FACTOR,
)
from simulator.network import Network, unproject
from simulator.population import (
    Outage,
    Person,
    PlannedTrip,
    make_persons,
    plan_outages,
    plan_trips,
)
from simulator.radio import (
    Scanner,
)
from simulator.timetable import (
    Journey,
    TimetableConfig,
    Vehicle,
    build_timetable,
    door_boundaries,
    finalize_calls,
    journey_knots,
    local_to_epoch_ms,
)
from simulator.truth import GroundTruth, TruthEncounter, TruthTrip
from simulator.world import DEFAULT_WORLD, World

__all__ = [
    "Advert",
    "DayConfig",
    "DayPlan",
    "GroundTruth",
    "SlotData",
    "TimelineItem",
    "TruthEncounter",
    "TruthTrip",
    "ground_truth",
    "make_device_keys",
    "plan_day",
    "vehicle_slots",
    "vehicle_timeline",
]

IntArray = npt.NDArray[np.int64]
_V = TypeVar("_V")


@dataclass(frozen=True, slots=True)
class DayConfig:
    """What to simulate: the day, the fleet, the people and the disturbances.

    ``buses`` regular buses are shared among ``lines`` (default: all lines of the
    network); ``convoys`` reinforcement buses follow regular peak journeys closely.
    ``bystander_kinds`` weighs what bystander persons do (see
    :data:`simulator.bystanders.BYSTANDER_PERSON_KINDS`). ``service_start``/``service_end``
    are local times of the first and last departure; ``headway_min`` fixes the headway
    per direction (minutes), otherwise derived per line.
    """

    service_day: dt.date
    buses: int = 6
    passengers: int = 200
    bystanders: int = 60
    service_start: dt.time = DEFAULT_SERVICE_START
    service_end: dt.time = DEFAULT_SERVICE_END
    headway_min: int | None = None
    lines: tuple[str, ...] | None = None
    convoys: int = 0
    incident_prob: float = INCIDENT_PROB
    phone_outage_prob: float = PHONE_OUTAGE_PROB
    bystander_kinds: tuple[tuple[str, float], ...] = BYSTANDER_KINDS_MIXED
    iphone_share: float = 0.0
    """Share of persons (riders and bystanders alike) whose phone is an iPhone: it does not
    advertise the BLE payload but hears the bus beacon and uploads what it heard
    (:mod:`simulator.iphones`). 0 keeps every recording as it was before iPhones."""
    background_location_share: float = BACKGROUND_LOCATION_SHARE
    """Of the iPhones, the share with background location: they range all the time they
    are in the beacon region, the others only for a burst after each region entry."""


def _person_unit(seed: int, kind: str, person_id: str) -> float:
    """A deterministic uniform [0, 1) per (plan seed, kind, person id), independent of every
    random stream of the plan and the radio (like :func:`simulator.world._unit`)."""
    digest = hashlib.blake2b(f"{seed}|{kind}|{person_id}".encode(), digest_size=8).digest()
    return (int.from_bytes(digest, "big") >> 11) / float(1 << 53)


def is_iphone(cfg: DayConfig, seed: int, person_id: str) -> bool:
    """Whether the person's phone is an iPhone (``cfg.iphone_share`` of them)."""
    return cfg.iphone_share > 0 and _person_unit(seed, "iphone", person_id) < cfg.iphone_share


def has_background_location(cfg: DayConfig, seed: int, person_id: str) -> bool:
    """Whether an iPhone ranges continuously in the region (``background_location_share``)."""
    return _person_unit(seed, "background", person_id) < cfg.background_location_share


def _by_id(table: Mapping[str, _V], field_name: str, key: str) -> _V:
    """``table[key]``; a missing key raises a KeyError that names the id and its field."""
    try:
        return table[key]
    except KeyError:
        raise KeyError(f"unknown {field_name} {key!r}") from None


@dataclass(frozen=True)
class DayPlan:
    """Everything decided before any radio is simulated (pure data, comparable with ==).

    ``episodes`` maps vehicle id to the spans a phone is near that bus, sorted by start.
    ``iphones`` (derived) holds the ids of the persons whose phone is an iPhone.
    """

    config: DayConfig
    seed: int
    network: Network
    vehicles: tuple[Vehicle, ...]
    persons: tuple[Person, ...]
    trips: tuple[PlannedTrip, ...]
    outages: tuple[Outage, ...]
    encounters: tuple[Encounter, ...]
    episodes: Mapping[str, tuple[Episode, ...]]
    _vehicles: Mapping[str, Vehicle] = field(init=False, repr=False, compare=False)
    _persons: Mapping[str, Person] = field(init=False, repr=False, compare=False)
    _trips_by_vehicle: Mapping[str, tuple[PlannedTrip, ...]] = field(
        init=False, repr=False, compare=False
    )
    iphones: frozenset[str] = field(init=False, repr=False, compare=False)
    _index: Mapping[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_vehicles", {v.vehicle_id: v for v in self.vehicles})
        object.__setattr__(self, "_persons", {p.person_id: p for p in self.persons})
        by_vehicle: dict[str, list[PlannedTrip]] = defaultdict(list)
        for t in self.trips:
            by_vehicle[t.vehicle_id].append(t)
        object.__setattr__(self, "_trips_by_vehicle", {k: tuple(v) for k, v in by_vehicle.items()})
        iphones = frozenset(
            p.person_id for p in self.persons if is_iphone(self.config, self.seed, p.person_id)
        )
        object.__setattr__(self, "iphones", iphones)
        object.__setattr__(self, "_index", {p.person_id: i for i, p in enumerate(self.persons)})

    def vehicle(self, vehicle_id: str) -> Vehicle:
        """The vehicle with this id (KeyError names it)."""
        return _by_id(self._vehicles, "vehicle_id", vehicle_id)

    def person(self, person_id: str) -> Person:
        """The person with this id (KeyError names it)."""
        return _by_id(self._persons, "person_id", person_id)

    def person_index(self, person_id: str) -> int:
        """The person's index in ``persons`` (KeyError names it)."""
        return _by_id(self._index, "person_id", person_id)

    def journey_of(self, trip: PlannedTrip) -> Journey:
        """The journey a ride is on."""
        journeys = self.vehicle(trip.vehicle_id).journeys
        return next(j for j in journeys if j.journey_id == trip.journey_id)

    def trips_on(self, vehicle_id: str) -> tuple[PlannedTrip, ...]:
        """The rides on one vehicle, in plan order."""
        return self._trips_by_vehicle.get(vehicle_id, ())

    @property
    def vehicle_ids(self) -> tuple[str, ...]:
        """All vehicle ids in plan order."""
        return tuple(v.vehicle_id for v in self.vehicles)


@dataclass(frozen=True, slots=True)
class Advert:
    """One advertisement the bus receiver decoded.

    ``t_ms`` epoch ms (true time); ``address`` the phone's current random MAC (rotates with
    the token); ``token`` 16 bytes; ``tx_power`` the advertised tx byte (dBm; -128 when the
    phone cannot say); ``rssi`` dBm.
    """

    t_ms: int
    address: str
    token: bytes
    tx_power: int
    rssi: int


VehicleEvent = (
    wire.JourneyEvent
    | wire.ArrivalEvent
    | wire.DoorsOpenEvent
    | wire.DoorsClosedEvent
    | wire.DepartureEvent
    | wire.PositionEvent
)
TimelineItem = Advert | VehicleEvent

_SUBSEEDS: Final = {
    "timetable": 1,
    "persons": 2,
    "trips": 3,
    "episodes": 4,
    "finalize": 5,
    "outages": 6,
}
"""Independent random streams per planning stage, so changing one stage leaves the others."""


def _rng(seed: int, *key: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, *key]))


def _crc(text: str) -> int:
    return zlib.crc32(text.encode("utf-8"))


def plan_day(network: Network, cfg: DayConfig, seed: int) -> DayPlan:
    """Plan the day: timetable, persons and phones, rides, outages, every episode."""
    if cfg.passengers < 0 or cfg.bystanders < 0:
        raise ValueError(
            f"passengers/bystanders: expected >= 0, got {cfg.passengers}/{cfg.bystanders}"
        )
    for line in cfg.lines or ():
        network.line(line)
    tt_cfg = TimetableConfig(
        cfg.service_start,
        cfg.service_end,
        cfg.headway_min,
        cfg.lines,
        cfg.convoys,
        cfg.incident_prob,
    )
    vehicles = build_timetable(
        network, cfg.service_day, cfg.buses, _rng(seed, _SUBSEEDS["timetable"]), tt_cfg
    )
    persons = make_persons(
        _rng(seed, _SUBSEEDS["persons"]), cfg.passengers, cfg.bystanders, cfg.bystander_kinds
    )
    midnight = local_to_epoch_ms(cfg.service_day, dt.time(0, 0))
    trips = plan_trips(_rng(seed, _SUBSEEDS["trips"]), network, vehicles, persons, midnight)
    used = {(t.journey_id, i) for t in trips for i in (t.board_index, t.alight_index)}
    vehicles = finalize_calls(vehicles, used, _rng(seed, _SUBSEEDS["finalize"]))
    day_end = service_day_bounds(cfg.service_day)[1]
    outages = plan_outages(_rng(seed, _SUBSEEDS["outages"]), trips, day_end, cfg.phone_outage_prob)
    episodes, encounters = plan_episodes(
        _rng(seed, _SUBSEEDS["episodes"]), network, vehicles, persons, trips
    )
    return DayPlan(cfg, seed, network, vehicles, persons, trips, outages, encounters, episodes)


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


# --- vehicle events ------------------------------------------------------------------------


def journey_events(
    network: Network,
    journey: Journey,
    rng: np.random.Generator,
    world: World = DEFAULT_WORLD,
    doors: bool = True,
    disturb: np.random.Generator | None = None,
) -> list[VehicleEvent]:
    """The journey's contract events in time order: journey, per stop arrival, doors (if
    served), departure, and GNSS positions every POSITION_PERIOD_MS while moving (noisy,
    with outliers and dropouts, as noisy as ``world`` says).

    ``doors`` False: the bus's onboard computer reports no door events. ``disturb`` draws
    the world's stop-event jitter and missing stop and journey events (a stream of its
    own, so a world without them draws nothing).
    """
    jitter = np.zeros(len(journey.calls), dtype=np.int64)
    missing = np.zeros(len(journey.calls), dtype=bool)
    no_journey_event = False
    if disturb is not None:
        span = world.stop_event_jitter_ms
        jitter = disturb.integers(-span, span + 1, size=len(journey.calls))
        missing = disturb.random(len(journey.calls)) < world.stop_event_missing_share
        no_journey_event = bool(disturb.random() < world.journey_event_missing_share)
    events: list[VehicleEvent] = []
    if not no_journey_event:
        events.append(
            wire.JourneyEvent(
                t=journey.start_ms,
                line=journey.line,
                journey_id=journey.journey_id,
                direction=journey.direction,
            )
        )
    knots = journey_knots(network, journey)
    kt = np.array([k[0] for k in knots], dtype=np.float64)
    kx = np.array([k[1] for k in knots], dtype=np.float64)
    ky = np.array([k[2] for k in knots], dtype=np.float64)
    calls = journey.calls
    for k, c in enumerate(calls):
        shift = int(jitter[k])
        if not missing[k]:
            events.append(wire.ArrivalEvent(t=c.arrival_ms + shift, stop_id=c.stop_id))
        if doors and c.doors_open_ms is not None and c.doors_closed_ms is not None:
            events.append(wire.DoorsOpenEvent(t=c.doors_open_ms))
            events.append(wire.DoorsClosedEvent(t=c.doors_closed_ms))
        if not missing[k]:
            events.append(wire.DepartureEvent(t=c.departure_ms + shift, stop_id=c.stop_id))
        if k + 1 == len(calls):
            break
        t0, t1 = c.departure_ms, calls[k + 1].arrival_ms
        ts = np.arange((t0 // POSITION_PERIOD_MS + 1) * POSITION_PERIOD_MS, t1, POSITION_PERIOD_MS)
        if ts.size == 0:
            continue
        tf = ts.astype(np.float64)
        x, y = np.interp(tf, kt, kx), np.interp(tf, kt, ky)
        x2, y2 = np.interp(tf + 1000, kt, kx), np.interp(tf + 1000, kt, ky)
        speed = np.hypot(x2 - x, y2 - y) * ROAD_FACTOR
        noise = rng.normal(0.0, world.gnss_sigma_m, size=(2, ts.size))
        outlier = rng.random(ts.size) < world.gnss_outlier_prob
        noise += outlier * rng.normal(0.0, GNSS_OUTLIER_M, size=(2, ts.size))
        speed = np.maximum(0.0, speed + rng.normal(0.0, 0.3, size=ts.size))
        dropped = rng.random(ts.size) < world.gnss_dropout_prob
        for i in np.flatnonzero(~dropped):
            lat, lon = unproject(float(x[i] + noise[0, i]), float(y[i] + noise[1, i]))
            events.append(
                wire.PositionEvent(
                    t=int(ts[i]),
                    lat=round(lat, 6),
                    lon=round(lon, 6),
                    speed_mps=round(float(speed[i]), 2),
                )
            )
    events.sort(key=lambda e: e.t)
    return events


# --- adverts -------------------------------------------------------------------------------


def _occupancy(trips: Sequence[PlannedTrip]) -> tuple[IntArray, IntArray]:
    changes = sorted([(t.board_time, 1) for t in trips] + [(t.alight_time, -1) for t in trips])
    times = np.array([c[0] for c in changes], dtype=np.int64)
    counts = np.cumsum(np.array([c[1] for c in changes], dtype=np.int64))
    return times, counts


@dataclass(frozen=True, slots=True)
class SlotData:
    """One slot of a vehicle's day: its contract events and its decoded adverts.

    Adverts are columns sorted by time: ``t`` (epoch ms), ``person`` (index into
    ``persons``), ``rssi`` (dBm). ``journey`` is the slot's journey.
    """

    journey: Journey
    events: list[VehicleEvent]
    t: IntArray
    person: IntArray
    rssi: IntArray
    persons: tuple[Person, ...]


def _slots(vehicle: Vehicle) -> list[tuple[int, int]]:
    """[start, end) of each slot: from a journey's start to the next one's (open ends)."""
    js = vehicle.journeys
    bounds = [-(2**62)] + [j.start_ms for j in js[1:]] + [2**62]
    return list(itertools.pairwise(bounds))


def vehicle_slots(
    plan: DayPlan,
    vehicle_id: str,
    device_keys: Mapping[str, bytes],
    seed: int,
    world: World = DEFAULT_WORLD,
    beacon_heard: list[tuple[IntArray, IntArray, IntArray]] | None = None,
) -> Iterator[SlotData]:
    """The vehicle's day slot by slot: events and decoded adverts as arrays.

    ``device_keys`` maps person id to the 32-byte key the backend issued; every person
    heard by this vehicle needs one (ValueError lists those missing). ``seed`` drives the
    radio and the GNSS noise, independent of the plan's seed; ``world`` sets the radio,
    phone and fleet parameters (default: the simulator's single model).

    iPhones (``plan.iphones``) do not advertise: their adverts are left out of the slots.
    By link reciprocity each of them is when and how well that phone hears the bus's
    beacon instead; with ``beacon_heard`` given, every slot appends those as columns
    (``t`` epoch ms of true time, ``person`` index into ``plan.persons``, ``rssi`` dBm).
    The radio is drawn for every phone either way, so the other phones' adverts do not
    depend on who has an iPhone.
    """
    vehicle = plan.vehicle(vehicle_id)
    episodes = plan.episodes.get(vehicle_id, ())
    missing = sorted({ep.person_id for ep in episodes} - set(device_keys))
    if missing:
        shown = ", ".join(missing[:5]) + (" …" if len(missing) > 5 else "")
        raise ValueError(f"device_keys: no key for {len(missing)} person(s) heard: {shown}")
    vcrc = _crc(vehicle_id)
    occ_t, occ_n = _occupancy(plan.trips_on(vehicle_id))
    others = {ep.other_vehicle_id for ep in episodes if ep.other_vehicle_id}
    outages: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for o in plan.outages:
        outages[o.person_id].append((o.start_ms, o.end_ms))
    rx = Receiver(
        Scanner.draw(_rng(seed, vcrc), world),
        door_boundaries(vehicle),
        occ_t,
        occ_n,
        {vid: door_boundaries(plan.vehicle(vid)) for vid in sorted(others)},
        {k: tuple(v) for k, v in outages.items()},
        world.receiver_gain_db(vehicle_id),
        world,
    )
    doors = world.has_doors(vehicle_id)
    disturbed = (
        world.stop_event_jitter_ms > 0
        or world.stop_event_missing_share > 0
        or world.journey_event_missing_share > 0
    )
    slots = _slots(vehicle)
    starts = np.array([s for s, _ in slots], dtype=np.int64)
    buckets: list[list[Episode]] = [[] for _ in slots]
    for ep in episodes:
        first = int(np.searchsorted(starts, ep.start_ms, side="right")) - 1
        last = int(np.searchsorted(starts, ep.end_ms - 1, side="right")) - 1
        for k in range(max(first, 0), last + 1):
            buckets[k].append(ep)
    for k, ((s0, s1), journey) in enumerate(zip(slots, vehicle.journeys, strict=True)):
        rng = _rng(seed, vcrc, k + 1)
        events = journey_events(
            plan.network,
            journey,
            _rng(seed, vcrc, k + 1, 1),
            world,
            doors,
            _rng(seed, vcrc, k + 1, 2) if disturbed else None,
        )
        eps = buckets[k]
        t, e, r = slot_adverts(rng, eps, [plan.person(ep.person_id) for ep in eps], rx, s0, s1)
        slot_persons: list[Person] = []
        seen: dict[str, int] = {}
        index_of = np.empty(len(eps), dtype=np.int64)
        for i, ep in enumerate(eps):
            idx = seen.setdefault(ep.person_id, len(slot_persons))
            if idx == len(slot_persons):
                slot_persons.append(plan.person(ep.person_id))
            index_of[i] = idx
        who = index_of[e] if e.size else e
        if plan.iphones and who.size:
            silent = np.array([p.person_id in plan.iphones for p in slot_persons], dtype=bool)
            heard = silent[who]
            if heard.any():
                if beacon_heard is not None:
                    glob = np.array([plan.person_index(p.person_id) for p in slot_persons])
                    beacon_heard.append((t[heard], glob[who[heard]], r[heard]))
                keep = ~heard
                t, who, r = t[keep], who[keep], r[keep]
        yield SlotData(journey, events, t, who, r, tuple(slot_persons))


class TokenCache:
    """Tokens and MACs of (person, interval), computed once (HMAC is the costly part)."""

    def __init__(self, device_keys: Mapping[str, bytes]) -> None:
        self._keys = device_keys
        self._cache: dict[tuple[str, int], tuple[str, bytes]] = {}

    def get(self, person_id: str, interval: int) -> tuple[str, bytes]:
        """(MAC, token) of a person's phone in a token interval."""
        key = (person_id, interval)
        hit = self._cache.get(key)
        if hit is None:
            token = wire.token_for_interval(self._keys[person_id], interval)
            hit = (mac_for_token(token), token)
            if len(self._cache) > 200_000:
                self._cache.clear()
            self._cache[key] = hit
        return hit


def vehicle_timeline(
    plan: DayPlan,
    vehicle_id: str,
    device_keys: Mapping[str, bytes],
    seed: int,
    world: World = DEFAULT_WORLD,
    beacon_heard: list[tuple[IntArray, IntArray, IntArray]] | None = None,
) -> Iterator[TimelineItem]:
    """Yield the vehicle's decoded adverts and its contract events in time order.

    See :func:`vehicle_slots` for the arguments. Each phone uses the token of the interval
    its own (skewed) clock is in, and advertises the tx byte ``world`` gives it.
    """
    tokens = TokenCache(device_keys)
    tx_of: dict[str, int] = {}
    for slot in vehicle_slots(plan, vehicle_id, device_keys, seed, world, beacon_heard):
        events = slot.events
        ei = 0
        for t_ms, who, rssi in zip(
            slot.t.tolist(), slot.person.tolist(), slot.rssi.tolist(), strict=True
        ):
            while ei < len(events) and events[ei].t <= t_ms:
                yield events[ei]
                ei += 1
            person = slot.persons[who]
            phone = person.phone
            mac, token = tokens.get(person.person_id, wire.interval_of(t_ms + phone.clock_skew_ms))
            tx = tx_of.get(person.person_id)
            if tx is None:
                tx = tx_of[person.person_id] = world.advertised_tx(phone, person.person_id)
            yield Advert(t_ms, mac, token, tx, rssi)
        yield from events[ei:]


# --- truth -----------------------------------------------------------------------------


def truth_trips(plan: DayPlan, device_ids: Mapping[str, str] | None = None) -> Iterator[TruthTrip]:
    """Every ride of the day as truth, in boarding order (``phone_silent_from`` is when its
    phone stopped advertising during it, ``phone_silent_until`` when it started again)."""
    ids = device_ids or {}
    silent: dict[str, list[Outage]] = defaultdict(list)
    for o in plan.outages:
        silent[o.person_id].append(o)

    def outage(t: PlannedTrip) -> Outage | None:
        for o in silent.get(t.person_id, ()):
            if o.start_ms < t.alight_time and o.end_ms > t.board_time:
                return o
        return None

    for t in sorted(plan.trips, key=lambda t: (t.board_time, t.person_id)):
        silence = outage(t)
        yield TruthTrip(
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
            pattern=t.pattern,
            outing=t.outing,
            part=t.part,
            phone_silent_from=None if silence is None else max(silence.start_ms, t.board_time),
            phone_silent_until=None if silence is None else silence.end_ms,
        )


def truth_encounters(
    plan: DayPlan, device_ids: Mapping[str, str] | None = None
) -> Iterator[TruthEncounter]:
    """Every non-rider encounter of the day as truth, in time order."""
    ids = device_ids or {}
    for e in plan.encounters:
        yield TruthEncounter(
            e.person_id,
            e.vehicle_id,
            e.stop_id,
            e.t,
            e.kind,
            ids.get(e.person_id),
            journey_id=e.journey_id,
            t_end=e.t_end,
        )


def ground_truth(plan: DayPlan, device_ids: Mapping[str, str] | None = None) -> GroundTruth:
    """The day's truth: every ride and every non-rider encounter.

    ``device_ids`` (person id → backend device id) fills ``device_id`` where known.
    """
    return GroundTruth(
        plan.config.service_day,
        plan.seed,
        list(truth_trips(plan, device_ids)),
        list(truth_encounters(plan, device_ids)),
    )
