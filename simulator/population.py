"""Who is near the buses: passengers with their trips, bystanders, and their phones.

Planning is pure given a ``numpy.random.Generator``: it turns a timetable into persons,
planned trips (with the exact boarding and alighting moments) and *episodes* — spans of
time a phone is near one vehicle, with the geometry the radio model needs.
"""

from __future__ import annotations

import enum
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from simulator.const import (
    ADV_INTERVALS_MS,
    AFTERNOON_MEAN_MIN,
    AFTERNOON_SIGMA_MIN,
    ALIGHT_START_DISTANCE_M,
    ALONGSIDE_DISTANCE_MAX_M,
    ALONGSIDE_DISTANCE_MIN_M,
    ALONGSIDE_MAX_MS,
    ALONGSIDE_MIN_MS,
    BOARD_MARGIN_MS,
    BYSTANDER_EPISODES_MAX,
    BYSTANDER_KIND_WEIGHTS,
    CARRY_WEIGHTS,
    CHILD_SHARE,
    CLOCK_SKEW_MAX_MS,
    CLOCK_SKEW_SIGMA_MS,
    INSIDE_DISTANCE_MAX_M,
    INSIDE_DISTANCE_MIN_M,
    LEAVE_TAIL_MS,
    MIDDAY_MEAN_MIN,
    MIDDAY_SIGMA_MIN,
    MIN_STAY_MS,
    MORNING_MEAN_MIN,
    MORNING_SIGMA_MIN,
    OTHER_BUS_DISTANCE_MAX_M,
    OTHER_BUS_DISTANCE_MIN_M,
    PHONE_MODELS,
    STOP_WAIT_DISTANCE_MAX_M,
    STOP_WAIT_DISTANCE_MIN_M,
    STOP_WAIT_MAX_MS,
    STOP_WAIT_MIN_MS,
    TRIP_COUNT_WEIGHTS,
    TX_CALIBRATION_SIGMA_DB,
    WAIT_DISTANCE_MAX_M,
    WAIT_DISTANCE_MIN_M,
    WALK_PAST_CLOSEST_MAX_M,
    WALK_PAST_CLOSEST_MIN_M,
    WALK_PAST_HALF_MS,
    WALK_SPEED_MPS,
)
from simulator.network import Network
from simulator.radio import Carry, Placement
from simulator.timetable import Journey, StopCall, Vehicle


class Role(enum.StrEnum):
    """A passenger rides at least once; a bystander never boards."""

    PASSENGER = "passenger"
    BYSTANDER = "bystander"


@dataclass(frozen=True, slots=True)
class Phone:
    """A person's phone.

    ``tx_power_dbm`` is the advertised, model-calibrated tx power (dBm at 1 m);
    ``tx_1m_dbm`` the power it really radiates. ``clock_skew_ms`` is added to true time to
    get the phone's clock, from which it computes its token interval.
    """

    model: str
    tx_power_dbm: int
    tx_1m_dbm: float
    adv_interval_ms: int
    carry: Carry
    clock_skew_ms: int


@dataclass(frozen=True, slots=True)
class Person:
    """An app user; ``person_id`` is simulator-side ("p0001"), not the backend's device id."""

    person_id: str
    role: Role
    rider_category: str
    phone: Phone


@dataclass(frozen=True, slots=True)
class PlannedTrip:
    """A ride as it really happens; times in epoch ms, distances in metres.

    ``at_stop_ms`` is when the passenger reaches the boarding stop; ``board_time`` and
    ``alight_time`` the moments of stepping in and out.
    """

    person_id: str
    vehicle_id: str
    journey_id: str
    line: str
    direction: int
    board_stop_id: str
    board_time: int
    alight_stop_id: str
    alight_time: int
    rider_category: str
    at_stop_ms: int
    seat_distance_m: float
    wait_distance_m: float


class EpisodeKind(enum.StrEnum):
    """Why a phone is near a vehicle."""

    WAIT_BOARD = "wait_board"
    RIDE = "ride"
    LEAVE = "leave"
    STOP_WAIT = "stop_wait"
    WALK_PAST = "walk_past"
    ALONGSIDE = "alongside"
    OTHER_BUS = "other_bus"


BYSTANDER_KINDS: frozenset[EpisodeKind] = frozenset(
    {EpisodeKind.STOP_WAIT, EpisodeKind.WALK_PAST, EpisodeKind.ALONGSIDE, EpisodeKind.OTHER_BUS}
)
"""Episode kinds of someone who is not riding the receiving vehicle."""


@dataclass(frozen=True, slots=True)
class Episode:
    """A span [start_ms, end_ms) during which a phone is near one vehicle's receiver.

    Distance (m) over time: WALK_PAST ``hypot(distance_m, speed·(t − ref))``, LEAVE
    ``distance_m + speed·(t − ref)``, otherwise ``distance_m`` (speed in m/s, t in ms).
    """

    person_id: str
    vehicle_id: str
    journey_id: str
    kind: EpisodeKind
    start_ms: int
    end_ms: int
    placement: Placement
    distance_m: float
    speed_mps: float = 0.0
    ref_ms: int = 0


@dataclass(frozen=True, slots=True)
class Encounter:
    """A non-rider heard by a vehicle: who, which bus, near which stop, when (epoch ms).

    ``stop_id`` is the stop the bus stands at, or for ``alongside`` the stop it last left.
    """

    person_id: str
    vehicle_id: str
    stop_id: str
    t: int
    kind: str


@dataclass(frozen=True, slots=True)
class _CallRef:
    vehicle_id: str
    journey: Journey
    index: int

    @property
    def call(self) -> StopCall:
        return self.journey.calls[self.index]


def _choice(rng: np.random.Generator, weighted: Sequence[tuple[object, float]]) -> int:
    weights = np.array([w for _, w in weighted], dtype=np.float64)
    return int(rng.choice(len(weighted), p=weights / weights.sum()))


def make_phone(rng: np.random.Generator) -> Phone:
    """Draw a phone: model (and its tx power), interval, carry position, clock skew."""
    model, tx, _ = PHONE_MODELS[_choice(rng, [(m, w) for m, _, w in PHONE_MODELS])]
    interval = ADV_INTERVALS_MS[_choice(rng, ADV_INTERVALS_MS)][0]
    carry = Carry(CARRY_WEIGHTS[_choice(rng, CARRY_WEIGHTS)][0])
    skew = float(np.clip(rng.normal(0, CLOCK_SKEW_SIGMA_MS), -CLOCK_SKEW_MAX_MS, CLOCK_SKEW_MAX_MS))
    return Phone(
        model=model,
        tx_power_dbm=tx,
        tx_1m_dbm=tx + float(rng.normal(0.0, TX_CALIBRATION_SIGMA_DB)),
        adv_interval_ms=interval,
        carry=carry,
        clock_skew_ms=round(skew),
    )


def make_persons(rng: np.random.Generator, passengers: int, bystanders: int) -> tuple[Person, ...]:
    """``passengers`` riders then ``bystanders`` non-riders, ids ``p0001``… in that order."""
    persons: list[Person] = []
    width = max(4, len(str(passengers + bystanders)))
    for k in range(passengers + bystanders):
        role = Role.PASSENGER if k < passengers else Role.BYSTANDER
        category = "child" if rng.random() < CHILD_SHARE else "adult"
        persons.append(Person(f"p{k + 1:0{width}d}", role, category, make_phone(rng)))
    return tuple(persons)


class _Index:
    """Calls of the timetable, by (line, direction, stop) and by stop, in time order."""

    def __init__(self, vehicles: Sequence[Vehicle]) -> None:
        by_route: dict[tuple[str, int, str], list[_CallRef]] = defaultdict(list)
        by_stop: dict[str, list[_CallRef]] = defaultdict(list)
        self.journeys: dict[str, Journey] = {}
        self.next_start: dict[str, int] = {}
        self.all_calls: list[_CallRef] = []
        for v in vehicles:
            for k, j in enumerate(v.journeys):
                self.journeys[j.journey_id] = j
                nxt = v.journeys[k + 1].start_ms if k + 1 < len(v.journeys) else j.end_ms + 3600_000
                self.next_start[j.journey_id] = nxt
                for i, c in enumerate(j.calls):
                    ref = _CallRef(v.vehicle_id, j, i)
                    by_route[(j.line, j.direction, c.stop_id)].append(ref)
                    by_stop[c.stop_id].append(ref)
                    self.all_calls.append(ref)
        for refs in (*by_route.values(), *by_stop.values()):
            refs.sort(key=lambda r: r.call.arrival_ms)
        self.by_route = dict(by_route)
        self.by_stop = dict(by_stop)

    def next_call(self, line: str, direction: int, stop_id: str, t: int) -> _CallRef | None:
        """The first call at ``stop_id`` whose doors close at least BOARD_MARGIN after ``t``."""
        for ref in self.by_route.get((line, direction, stop_id), []):
            if ref.call.doors_closed_ms >= t + BOARD_MARGIN_MS:
                return ref
        return None

    def clip(self, journey_id: str, start: int, end: int) -> tuple[int, int]:
        """Clip [start, end) to the journey's slot [its start, the vehicle's next start)."""
        return max(start, self.journeys[journey_id].start_ms), min(end, self.next_start[journey_id])


def _minutes_to_ms(day_start_ms: int, minutes: float) -> int:
    return day_start_ms + round(minutes * 60_000)


def _desired_times(rng: np.random.Generator, n: int) -> list[float]:
    """Desired stop-arrival times (local minutes after midnight) for ``n`` legs."""
    morning = float(rng.normal(MORNING_MEAN_MIN, MORNING_SIGMA_MIN))
    afternoon = float(rng.normal(AFTERNOON_MEAN_MIN, AFTERNOON_SIGMA_MIN))
    if n == 1:
        return [morning if rng.random() < 0.5 else afternoon]
    if n == 2:
        return [morning, afternoon]
    midday = float(rng.normal(MIDDAY_MEAN_MIN, MIDDAY_SIGMA_MIN))
    return [morning, midday, midday + float(rng.uniform(30, 120)), afternoon]


def plan_trips(
    rng: np.random.Generator,
    network: Network,
    vehicles: Sequence[Vehicle],
    persons: Sequence[Person],
    midnight_ms: int,
) -> tuple[PlannedTrip, ...]:
    """Each passenger's rides on one line, boarding the next suitable journey.

    ``midnight_ms`` is local midnight of the service day (epoch ms). A leg that no journey
    can serve any more (too late in the evening) is dropped with all later legs.
    """
    index = _Index(vehicles)
    lines = sorted({v.line for v in vehicles})
    if not lines:
        return ()
    weights = np.array([sum(1 for v in vehicles if v.line == ln) for ln in lines], float)
    trips: list[PlannedTrip] = []
    for person in persons:
        if person.role is not Role.PASSENGER:
            continue
        line = network.line(lines[int(rng.choice(len(lines), p=weights / weights.sum()))])
        n_stops = len(line.stops)
        home, dest = (int(x) for x in rng.choice(n_stops, size=2, replace=False))
        dest2 = int(rng.choice([s for s in range(n_stops) if s != home]))
        n = TRIP_COUNT_WEIGHTS[_choice(rng, TRIP_COUNT_WEIGHTS)][0]
        legs = [(home, dest), (dest, home), (home, dest2), (dest2, home)][:n]
        if n == 1 and rng.random() < 0.5:
            legs = [(dest, home)]
        ready = 0
        for (a, b), desired in zip(legs, _desired_times(rng, n), strict=True):
            at_stop = max(_minutes_to_ms(midnight_ms, desired), ready)
            direction = 0 if a < b else 1
            board_ref = index.next_call(line.line, direction, line.stops[a], at_stop)
            if board_ref is None:
                break
            j = board_ref.journey
            bc = board_ref.call
            lo = max(bc.doors_open_ms, at_stop) + 500
            board = int(rng.integers(lo, max(lo + 1, bc.doors_closed_ms - 1000)))
            ac = j.calls[j.call_index(line.stops[b])]
            hi = ac.doors_open_ms + max(1500, (ac.doors_closed_ms - ac.doors_open_ms) * 6 // 10)
            alight = int(rng.integers(ac.doors_open_ms + 500, hi))
            trips.append(
                PlannedTrip(
                    person_id=person.person_id,
                    vehicle_id=board_ref.vehicle_id,
                    journey_id=j.journey_id,
                    line=line.line,
                    direction=direction,
                    board_stop_id=bc.stop_id,
                    board_time=board,
                    alight_stop_id=ac.stop_id,
                    alight_time=alight,
                    rider_category=person.rider_category,
                    at_stop_ms=min(at_stop, board),
                    seat_distance_m=float(
                        rng.uniform(INSIDE_DISTANCE_MIN_M, INSIDE_DISTANCE_MAX_M)
                    ),
                    wait_distance_m=float(rng.uniform(WAIT_DISTANCE_MIN_M, WAIT_DISTANCE_MAX_M)),
                )
            )
            ready = alight + MIN_STAY_MS
    return tuple(trips)


def _overlap(a0: int, a1: int, b0: int, b1: int) -> tuple[int, int] | None:
    lo, hi = max(a0, b0), min(a1, b1)
    return (lo, hi) if lo < hi else None


def _rider_episodes(index: _Index, trip: PlannedTrip) -> list[Episode]:
    j = index.journeys[trip.journey_id]
    bc = j.calls[j.call_index(trip.board_stop_id)]
    ac = j.calls[j.call_index(trip.alight_stop_id)]
    eps = [
        Episode(
            trip.person_id,
            trip.vehicle_id,
            j.journey_id,
            EpisodeKind.RIDE,
            trip.board_time,
            trip.alight_time,
            Placement.INSIDE,
            trip.seat_distance_m,
        )
    ]
    wait = _overlap(bc.arrival_ms, trip.board_time, trip.at_stop_ms, trip.board_time)
    if wait:
        eps.append(
            Episode(
                trip.person_id,
                trip.vehicle_id,
                j.journey_id,
                EpisodeKind.WAIT_BOARD,
                *wait,
                Placement.OUTSIDE,
                trip.wait_distance_m,
            )
        )
    leave = index.clip(j.journey_id, trip.alight_time, ac.departure_ms + LEAVE_TAIL_MS)
    if leave[0] < leave[1]:
        eps.append(
            Episode(
                trip.person_id,
                trip.vehicle_id,
                j.journey_id,
                EpisodeKind.LEAVE,
                *leave,
                Placement.OUTSIDE,
                ALIGHT_START_DISTANCE_M,
                WALK_SPEED_MPS,
                trip.alight_time,
            )
        )
    return eps


def _at_stop(
    index: _Index,
    person_id: str,
    stop_id: str,
    start: int,
    end: int,
    distance_m: float,
    kind: EpisodeKind,
    skip_journey: str | None,
) -> tuple[list[Episode], list[Encounter]]:
    """Episodes of someone standing at ``stop_id`` during [start, end) for every bus there."""
    eps: list[Episode] = []
    encs: list[Encounter] = []
    for ref in index.by_stop.get(stop_id, []):
        c = ref.call
        if ref.journey.journey_id == skip_journey:
            continue
        span = _overlap(start, end, c.arrival_ms, c.departure_ms)
        if span is None:
            continue
        jid = ref.journey.journey_id
        eps.append(
            Episode(person_id, ref.vehicle_id, jid, kind, *span, Placement.OUTSIDE, distance_m)
        )
        encs.append(Encounter(person_id, ref.vehicle_id, stop_id, span[0], kind.value))
    return eps, encs


def plan_episodes(
    rng: np.random.Generator,
    vehicles: Sequence[Vehicle],
    persons: Sequence[Person],
    trips: Sequence[PlannedTrip],
) -> tuple[dict[str, tuple[Episode, ...]], tuple[Encounter, ...]]:
    """Every phone-near-vehicle episode (by vehicle id, sorted by start) and the encounters.

    Encounters are the truth about non-riders: bystanders lingering at stops, walking past,
    keeping pace alongside; passengers waiting at a stop where another bus calls; riders of
    another bus standing at the same stop at the same time.
    """
    index = _Index(vehicles)
    episodes: list[Episode] = []
    encounters: list[Encounter] = []
    rides_by_journey: dict[str, list[PlannedTrip]] = defaultdict(list)
    for trip in trips:
        episodes.extend(_rider_episodes(index, trip))
        rides_by_journey[trip.journey_id].append(trip)
        eps, encs = _at_stop(
            index,
            trip.person_id,
            trip.board_stop_id,
            trip.at_stop_ms,
            trip.board_time,
            trip.wait_distance_m,
            EpisodeKind.STOP_WAIT,
            trip.journey_id,
        )
        episodes.extend(eps)
        encounters.extend(encs)

    calls = index.all_calls
    for person in persons:
        if person.role is not Role.BYSTANDER or not calls:
            continue
        for _ in range(int(rng.integers(1, BYSTANDER_EPISODES_MAX + 1))):
            kind = EpisodeKind(BYSTANDER_KIND_WEIGHTS[_choice(rng, BYSTANDER_KIND_WEIGHTS)][0])
            ref = calls[int(rng.integers(len(calls)))]
            c, jid = ref.call, ref.journey.journey_id
            if kind is EpisodeKind.STOP_WAIT:
                dur = int(rng.integers(STOP_WAIT_MIN_MS, STOP_WAIT_MAX_MS))
                start = c.arrival_ms - int(rng.integers(0, dur))
                dist = float(rng.uniform(STOP_WAIT_DISTANCE_MIN_M, STOP_WAIT_DISTANCE_MAX_M))
                eps, encs = _at_stop(
                    index, person.person_id, c.stop_id, start, start + dur, dist, kind, None
                )
                episodes.extend(eps)
                encounters.extend(encs)
            elif kind is EpisodeKind.WALK_PAST:
                tc = int(rng.integers(c.arrival_ms, c.departure_ms))
                span = index.clip(jid, tc - WALK_PAST_HALF_MS, tc + WALK_PAST_HALF_MS)
                dist = float(rng.uniform(WALK_PAST_CLOSEST_MIN_M, WALK_PAST_CLOSEST_MAX_M))
                episodes.append(
                    Episode(
                        person.person_id,
                        ref.vehicle_id,
                        jid,
                        kind,
                        *span,
                        Placement.OUTSIDE,
                        dist,
                        WALK_SPEED_MPS,
                        tc,
                    )
                )
                encounters.append(
                    Encounter(person.person_id, ref.vehicle_id, c.stop_id, tc, kind.value)
                )
            else:
                j = ref.journey
                k = ref.index if ref.index + 1 < len(j.calls) else ref.index - 1
                seg0, seg1 = j.calls[k].departure_ms, j.calls[k + 1].arrival_ms
                dur = min(int(rng.integers(ALONGSIDE_MIN_MS, ALONGSIDE_MAX_MS)), seg1 - seg0)
                start = int(rng.integers(seg0, max(seg0 + 1, seg1 - dur)))
                dist = float(rng.uniform(ALONGSIDE_DISTANCE_MIN_M, ALONGSIDE_DISTANCE_MAX_M))
                episodes.append(
                    Episode(
                        person.person_id,
                        ref.vehicle_id,
                        jid,
                        kind,
                        start,
                        start + dur,
                        Placement.OUTSIDE,
                        dist,
                    )
                )
                stop_id = j.calls[k].stop_id
                encounters.append(
                    Encounter(person.person_id, ref.vehicle_id, stop_id, start, kind.value)
                )

    # Riders of one bus are heard by another bus standing at the same stop at the same time.
    for refs in index.by_stop.values():
        for x, a in enumerate(refs):
            for b in refs[x + 1 :]:
                if b.call.arrival_ms >= a.call.departure_ms:
                    break
                if a.vehicle_id == b.vehicle_id:
                    continue
                both = _overlap(
                    a.call.arrival_ms, a.call.departure_ms, b.call.arrival_ms, b.call.departure_ms
                )
                if both is None:
                    continue
                for src, dst in ((a, b), (b, a)):
                    for trip in rides_by_journey.get(src.journey.journey_id, []):
                        heard = _overlap(*both, trip.board_time, trip.alight_time)
                        if heard is None:
                            continue
                        dist = float(
                            rng.uniform(OTHER_BUS_DISTANCE_MIN_M, OTHER_BUS_DISTANCE_MAX_M)
                        )
                        episodes.append(
                            Episode(
                                trip.person_id,
                                dst.vehicle_id,
                                dst.journey.journey_id,
                                EpisodeKind.OTHER_BUS,
                                *heard,
                                Placement.OTHER_BUS,
                                dist,
                            )
                        )
                        encounters.append(
                            Encounter(
                                trip.person_id,
                                dst.vehicle_id,
                                dst.call.stop_id,
                                heard[0],
                                EpisodeKind.OTHER_BUS.value,
                            )
                        )

    by_vehicle: dict[str, list[Episode]] = {v.vehicle_id: [] for v in vehicles}
    for ep in episodes:
        if ep.start_ms < ep.end_ms:
            by_vehicle[ep.vehicle_id].append(ep)
    encounters.sort(key=lambda e: (e.t, e.vehicle_id, e.person_id))
    return (
        {
            vid: tuple(sorted(eps, key=lambda e: (e.start_ms, e.person_id, e.kind)))
            for vid, eps in by_vehicle.items()
        },
        tuple(encounters),
    )


def distance_at(ep: Episode, t_ms: np.ndarray) -> np.ndarray:
    """Distance (m) of the episode's phone to the receiver at times ``t_ms`` (epoch ms)."""
    dt_s = (t_ms - ep.ref_ms) / 1000.0
    if ep.kind is EpisodeKind.WALK_PAST:
        return np.hypot(ep.distance_m, ep.speed_mps * dt_s)
    if ep.kind is EpisodeKind.LEAVE:
        return ep.distance_m + ep.speed_mps * np.maximum(dt_s, 0.0)
    return np.full(t_ms.shape, ep.distance_m, dtype=np.float64)


def persons_by_id(persons: Sequence[Person]) -> Mapping[str, Person]:
    """Index persons by ``person_id``."""
    return {p.person_id: p for p in persons}
