"""Who rides: app users with daily patterns, their phones, and the rides they take.

Planning is pure given a ``numpy.random.Generator``: persons get a pattern (commuter,
pupil, shopper, leisure, occasional) and a phone (model-dependent tx power, advertising
interval, carry position, clock skew); passengers get itineraries — out and back, with a
transfer at a hub for some, one-stop hops for a few — executed on the timetable by
boarding the next suitable bus. A few phones fall silent mid-ride (app killed, Bluetooth
off). Bystanders (app users who are only *near* buses) are made here too; what they do
near buses is planned in :mod:`simulator.bystanders`.
"""

from __future__ import annotations

import bisect
import enum
import itertools
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from simulator.const import (
    ADV_INTERVALS_MS,
    BOARD_MARGIN_MS,
    CARRY_WEIGHTS,
    CHILD_SHARE_OTHER,
    CHILD_SHARE_PUPIL,
    CLOCK_SKEW_MAX_MS,
    CLOCK_SKEW_SIGMA_MS,
    MAX_WAIT_MS,
    MIN_STAY_MS,
    MIN_TRANSFER_MS,
    ONE_STOP_HOP_PROB,
    OUT_TIME_MIN,
    PATTERN_WEIGHTS,
    PHONE_MODELS,
    PHONE_OUTAGE_MIN_MS,
    PHONE_OUTAGE_PROB,
    RETURN_PROB,
    SAME_STOP_CHOICE_MS,
    SEATED_DISTANCE_MAX_M,
    SEATED_DISTANCE_MIN_M,
    SECOND_OUTING_PROB,
    STAY_MIN,
    TRANSFER_PROB,
    TX_CALIBRATION_SIGMA_DB,
    WAIT_DISTANCE_MAX_M,
    WAIT_DISTANCE_MIN_M,
)
from simulator.network import Network
from simulator.radio import Carry
from simulator.timetable import Journey, StopCall, Vehicle


class Role(enum.StrEnum):
    """A passenger rides at least once; a bystander never boards."""

    PASSENGER = "passenger"
    BYSTANDER = "bystander"


class Pattern(enum.StrEnum):
    """A passenger's daily pattern; bystanders have ``NONE``."""

    COMMUTER = "commuter"
    PUPIL = "pupil"
    SHOPPER = "shopper"
    LEISURE = "leisure"
    OCCASIONAL = "occasional"
    NONE = "none"


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
    """An app user; ``person_id`` is simulator-side ("p0001"), not the backend's device id.

    ``bystander_kind`` says what a bystander does near buses (e.g. ``"alongside_car"``).
    """

    person_id: str
    role: Role
    rider_category: str
    pattern: Pattern
    phone: Phone
    bystander_kind: str | None = None


@dataclass(frozen=True, slots=True)
class Outage:
    """The phone advertises nothing in [start_ms, end_ms) (app killed, Bluetooth off)."""

    person_id: str
    start_ms: int
    end_ms: int
    reason: str


@dataclass(frozen=True, slots=True)
class PlannedTrip:
    """A ride as it really happens; times in epoch ms, distances in metres.

    ``at_stop_ms`` is when the passenger reaches the boarding stop; ``board_time`` and
    ``alight_time`` the moments of stepping in and out; ``board_index``/``alight_index``
    the calls in the journey. ``outing`` numbers the person's itineraries of the day and
    ``part`` the rides within one (1 after a transfer).
    """

    person_id: str
    vehicle_id: str
    journey_id: str
    line: str
    direction: int
    board_stop_id: str
    board_index: int
    board_time: int
    alight_stop_id: str
    alight_index: int
    alight_time: int
    rider_category: str
    pattern: str
    outing: int
    part: int
    at_stop_ms: int
    seat_distance_m: float
    wait_distance_m: float


@dataclass(frozen=True, slots=True)
class CallRef:
    """One call of the timetable: which vehicle, which journey, which stop index."""

    vehicle_id: str
    journey: Journey
    index: int

    @property
    def call(self) -> StopCall:
        return self.journey.calls[self.index]


class TimetableIndex:
    """Calls of the timetable, by (line, direction, stop) and by stop, in time order."""

    def __init__(self, vehicles: Sequence[Vehicle]) -> None:
        by_route: dict[tuple[str, int, str], list[CallRef]] = defaultdict(list)
        by_stop: dict[str, list[CallRef]] = defaultdict(list)
        self.journeys: dict[str, Journey] = {}
        self.vehicle_of: dict[str, str] = {}
        self.slot_end: dict[str, int] = {}
        self.all_calls: list[CallRef] = []
        for v in vehicles:
            for k, j in enumerate(v.journeys):
                self.journeys[j.journey_id] = j
                self.vehicle_of[j.journey_id] = v.vehicle_id
                nxt = v.journeys[k + 1].start_ms if k + 1 < len(v.journeys) else j.end_ms + 3600_000
                self.slot_end[j.journey_id] = nxt
                for i, c in enumerate(j.calls):
                    ref = CallRef(v.vehicle_id, j, i)
                    by_route[(j.line, j.direction, c.stop_id)].append(ref)
                    by_stop[c.stop_id].append(ref)
                    self.all_calls.append(ref)
        for refs in (*by_route.values(), *by_stop.values()):
            refs.sort(key=lambda r: (r.call.arrival_ms, r.vehicle_id))
        self.by_route = dict(by_route)
        self.by_stop = dict(by_stop)
        self._arrivals = {
            k: [r.call.arrival_ms for r in refs]
            for k, refs in (*by_route.items(), *by_stop.items())
        }
        self.max_call_ms = max(
            (r.call.departure_ms - r.call.arrival_ms for r in self.all_calls), default=0
        )
        """Longest call (arrival to departure, ms): how far back a search by arrival starts."""

    def calls_at(self, stop_id: str, start: int, end: int) -> list[CallRef]:
        """Calls at ``stop_id`` whose [arrival, departure) overlaps [start, end)."""
        refs = self.by_stop.get(stop_id, [])
        arrivals = self._arrivals.get(stop_id, [])
        lo = bisect.bisect_left(arrivals, start - self.max_call_ms)
        hi = bisect.bisect_left(arrivals, end)
        return [r for r in refs[lo:hi] if r.call.departure_ms > start]

    def boardable(self, line: str, direction: int, stop_id: str, t: int) -> list[CallRef]:
        """Calls at ``stop_id`` one can still board at ``t``: the first one whose doors close
        at least BOARD_MARGIN after ``t`` and the alternatives right behind it."""
        key = (line, direction, stop_id)
        refs = self.by_route.get(key, [])
        lo = bisect.bisect_left(self._arrivals.get(key, []), t - self.max_call_ms)
        out: list[CallRef] = []
        for ref in refs[lo:]:
            closed = ref.call.doors_closed_ms
            if closed is None or closed < t + BOARD_MARGIN_MS:
                continue
            if ref.index + 1 >= len(ref.journey.calls):
                continue  # the last stop: nobody boards there
            first = out[0].call.doors_closed_ms if out else None
            if first is not None and closed > first + SAME_STOP_CHOICE_MS:
                break
            out.append(ref)
        return out


_CUMULATIVE: dict[int, tuple[object, list[float]]] = {}
"""Cumulative weights of the constant tables (PHONE_MODELS, ...), by identity."""


def _choice(rng: np.random.Generator, weighted: Sequence[tuple[object, float]]) -> int:
    """Index drawn with the given weights (one uniform draw)."""
    hit = _CUMULATIVE.get(id(weighted))
    if hit is not None and hit[0] is weighted:
        cum = hit[1]
    else:
        cum = list(itertools.accumulate(w for _, w in weighted))
        if isinstance(weighted, tuple):
            _CUMULATIVE[id(weighted)] = (weighted, cum)
    return min(bisect.bisect_right(cum, rng.random() * cum[-1]), len(cum) - 1)


_MODEL_WEIGHTS = tuple((m[0], m[3]) for m in PHONE_MODELS)


def make_phone(rng: np.random.Generator) -> Phone:
    """Draw a phone: model (tx power and its bias), interval, carry position, clock skew."""
    k = _choice(rng, _MODEL_WEIGHTS)
    model, tx, bias, _ = PHONE_MODELS[k]
    interval = ADV_INTERVALS_MS[_choice(rng, ADV_INTERVALS_MS)][0]
    carry = Carry(CARRY_WEIGHTS[_choice(rng, CARRY_WEIGHTS)][0])
    skew = float(np.clip(rng.normal(0, CLOCK_SKEW_SIGMA_MS), -CLOCK_SKEW_MAX_MS, CLOCK_SKEW_MAX_MS))
    return Phone(
        model=model,
        tx_power_dbm=tx,
        tx_1m_dbm=tx + bias + float(rng.normal(0.0, TX_CALIBRATION_SIGMA_DB)),
        adv_interval_ms=interval,
        carry=carry,
        clock_skew_ms=int(skew),
    )


def make_persons(
    rng: np.random.Generator,
    passengers: int,
    bystanders: int,
    bystander_kinds: Sequence[tuple[str, float]],
) -> tuple[Person, ...]:
    """``passengers`` riders (with a pattern) then ``bystanders`` non-riders (with a kind)."""
    total = passengers + bystanders
    width = max(4, len(str(total)))
    persons: list[Person] = []
    for k in range(total):
        pid = f"p{k + 1:0{width}d}"
        if k < passengers:
            pattern = Pattern(PATTERN_WEIGHTS[_choice(rng, PATTERN_WEIGHTS)][0])
            share = CHILD_SHARE_PUPIL if pattern is Pattern.PUPIL else CHILD_SHARE_OTHER
            category = "child" if rng.random() < share else "adult"
            persons.append(Person(pid, Role.PASSENGER, category, pattern, make_phone(rng)))
        else:
            kind = bystander_kinds[_choice(rng, bystander_kinds)][0] if bystander_kinds else None
            category = "child" if rng.random() < CHILD_SHARE_OTHER else "adult"
            phone = make_phone(rng)
            persons.append(Person(pid, Role.BYSTANDER, category, Pattern.NONE, phone, kind))
    return tuple(persons)


# --- itineraries ------------------------------------------------------------------------


_ATTRACTORS: tuple[tuple[tuple[str, ...], dict[Pattern, float]], ...] = (
    (("Bahnhof", "Busbahnhof"), {Pattern.COMMUTER: 5.0, Pattern.LEISURE: 2.0}),
    (("Markt", "Rathaus", "Neumarkt"), {Pattern.SHOPPER: 6.0, Pattern.COMMUTER: 2.0}),
    (("Schul", "Hochschule", "Fachhochschule"), {Pattern.PUPIL: 12.0, Pattern.COMMUTER: 1.5}),
    (("Krankenhaus", "Klinik"), {Pattern.COMMUTER: 2.5, Pattern.OCCASIONAL: 3.0}),
    (("Kurpark", "Kurhaus", "Schloss", "Sorpesee", "Seepark", "Marina"), {Pattern.LEISURE: 4.0}),
)


class _Attraction:
    """How much a stop draws a pattern's trips (by its name and hub status), cached."""

    def __init__(self, network: Network) -> None:
        self.network = network
        self._cache: dict[tuple[str, Pattern], float] = {}

    def __call__(self, stop_id: str, pattern: Pattern) -> float:
        key = (stop_id, pattern)
        w = self._cache.get(key)
        if w is None:
            name = self.network.stop(stop_id).name
            w = 1.0
            for words, boost in _ATTRACTORS:
                if any(word in name for word in words):
                    w *= boost.get(pattern, 1.0)
            if self.network.is_hub(stop_id):
                w *= 2.0
            self._cache[key] = w
        return w


@dataclass(frozen=True, slots=True)
class _Leg:
    line: str
    origin: int
    destination: int

    @property
    def direction(self) -> int:
        return 0 if self.origin < self.destination else 1


def _pick(
    rng: np.random.Generator, attraction: _Attraction, stops: Sequence[str], pattern: Pattern
) -> int:
    return _choice(rng, [(s, attraction(s, pattern)) for s in stops])


def _route(
    rng: np.random.Generator,
    attraction: _Attraction,
    lines: Sequence[str],
    weights: Sequence[tuple[str, float]],
    p: Person,
) -> list[_Leg]:
    """Home on a line weighted by its service; destination by pattern, maybe via a hub."""
    network = attraction.network
    line = network.line(lines[_choice(rng, weights)])
    stops = line.stops
    home = int(rng.integers(len(stops)))
    served = set(lines)
    if rng.random() < TRANSFER_PROB:
        hubs = [
            (i, other)
            for i, s in enumerate(stops)
            if i != home
            for other in network.lines_at(s)
            if other != line.line and other in served
        ]
        if hubs:
            i, other_id = hubs[int(rng.integers(len(hubs)))]
            other = network.line(other_id)
            at = other.stops.index(stops[i])
            cands = [k for k in range(len(other.stops)) if k != at and other.stops[k] not in stops]
            if cands:
                dest = cands[_pick(rng, attraction, [other.stops[k] for k in cands], p.pattern)]
                return [_Leg(line.line, home, i), _Leg(other.line, at, dest)]
    if rng.random() < ONE_STOP_HOP_PROB:
        nxt = [k for k in (home - 1, home + 1) if 0 <= k < len(stops)]
        return [_Leg(line.line, home, nxt[int(rng.integers(len(nxt)))])]
    cands = [k for k in range(len(stops)) if k != home]
    dest = cands[_pick(rng, attraction, [stops[k] for k in cands], p.pattern)]
    return [_Leg(line.line, home, dest)]


def _reverse(route: Sequence[_Leg]) -> list[_Leg]:
    """The way back: the legs in reverse order, each reversed."""
    return [_Leg(leg.line, leg.destination, leg.origin) for leg in reversed(route)]


def _minutes(rng: np.random.Generator, mean_sigma: tuple[float, float]) -> float:
    mean, sigma = mean_sigma
    return float(rng.normal(mean, sigma))


def plan_trips(
    rng: np.random.Generator,
    network: Network,
    vehicles: Sequence[Vehicle],
    persons: Sequence[Person],
    midnight_ms: int,
) -> tuple[PlannedTrip, ...]:
    """Each passenger's rides: out (maybe via a hub), maybe back, maybe a second outing.

    ``midnight_ms`` is local midnight of the service day (epoch ms). A ride no bus can
    serve any more (too late, or a wait over MAX_WAIT_MS) ends that person's day.
    """
    index = TimetableIndex(vehicles)
    lines = sorted({j.line for j in index.journeys.values()})
    if not lines:
        return ()
    service: dict[str, int] = defaultdict(int)
    for j in index.journeys.values():
        service[j.line] += 1
    weights = [(ln, float(service[ln])) for ln in lines]
    attraction = _Attraction(network)
    trips: list[PlannedTrip] = []
    for person in persons:
        if person.role is not Role.PASSENGER:
            continue
        route = _route(rng, attraction, lines, weights, person)
        pattern = person.pattern.value
        outings: list[tuple[list[_Leg], float]] = []
        out_min = _minutes(rng, OUT_TIME_MIN[pattern])
        outings.append((route, out_min))
        back = rng.random() < RETURN_PROB[pattern]
        stay = max(MIN_STAY_MS / 60_000, _minutes(rng, STAY_MIN[pattern]))
        if back:
            outings.append((_reverse(route), -stay))
        if back and rng.random() < SECOND_OUTING_PROB:
            second = _route(rng, attraction, lines, weights, person)
            outings.append((second, -float(rng.uniform(60, 180))))
            outings.append((_reverse(second), -float(rng.uniform(40, 150))))
        ready = midnight_ms
        for n, (legs, when) in enumerate(outings):
            # A positive ``when`` is a local time of day; a negative one a stay (minutes).
            desired = (
                midnight_ms + round(when * 60_000) if when >= 0 else ready + round(-when * 60_000)
            )
            t = max(desired, ready)
            done = _ride_legs(rng, index, network, person, legs, t, n, trips)
            if done is None:
                break
            ready = done + MIN_STAY_MS
    return tuple(trips)


def _ride_legs(
    rng: np.random.Generator,
    index: TimetableIndex,
    network: Network,
    person: Person,
    legs: Sequence[_Leg],
    t: int,
    outing: int,
    out: list[PlannedTrip],
) -> int | None:
    """Ride ``legs`` from time ``t``; returns the final alighting time or None (gave up)."""
    planned: list[PlannedTrip] = []
    for part, leg in enumerate(legs):
        line = network.line(leg.line)
        origin, dest = line.stops[leg.origin], line.stops[leg.destination]
        options = index.boardable(line.line, leg.direction, origin, t)
        if not options or options[0].call.arrival_ms - t > MAX_WAIT_MS:
            return None
        ref = options[int(rng.integers(len(options)))]
        j, bc = ref.journey, ref.call
        ai = j.call_index(dest)
        b_open, b_closed = bc.doors
        a_open, a_closed = j.calls[ai].doors
        lo = max(b_open, t) + 500
        board = int(rng.integers(lo, max(lo + 1, b_closed - 1000)))
        hi = a_open + max(1500, (a_closed - a_open) * 6 // 10)
        alight = int(rng.integers(a_open + 500, hi))
        planned.append(
            PlannedTrip(
                person_id=person.person_id,
                vehicle_id=ref.vehicle_id,
                journey_id=j.journey_id,
                line=line.line,
                direction=leg.direction,
                board_stop_id=origin,
                board_index=ref.index,
                board_time=board,
                alight_stop_id=dest,
                alight_index=ai,
                alight_time=alight,
                rider_category=person.rider_category,
                pattern=person.pattern.value,
                outing=outing,
                part=part,
                at_stop_ms=min(t, board),
                seat_distance_m=float(rng.uniform(SEATED_DISTANCE_MIN_M, SEATED_DISTANCE_MAX_M)),
                wait_distance_m=float(rng.uniform(WAIT_DISTANCE_MIN_M, WAIT_DISTANCE_MAX_M)),
            )
        )
        t = alight + MIN_TRANSFER_MS
    out.extend(planned)
    return planned[-1].alight_time


def plan_outages(
    rng: np.random.Generator,
    trips: Sequence[PlannedTrip],
    day_end_ms: int,
    prob: float = PHONE_OUTAGE_PROB,
) -> tuple[Outage, ...]:
    """Some passengers' phones (each with ``prob``) fall silent in the middle of a ride.

    Half of the outages last the rest of the service day (``day_end_ms``), the others at
    least PHONE_OUTAGE_MIN_MS.
    """
    by_person: dict[str, list[PlannedTrip]] = defaultdict(list)
    for t in trips:
        by_person[t.person_id].append(t)
    out: list[Outage] = []
    reasons = ("app_killed", "bluetooth_off", "battery_empty")
    for pid in sorted(by_person):
        if rng.random() >= prob:
            continue
        ride = by_person[pid][int(rng.integers(len(by_person[pid])))]
        length = ride.alight_time - ride.board_time
        start = ride.board_time + int(length * float(rng.uniform(0.15, 0.85)))
        if rng.random() < 0.5:
            end = day_end_ms
        else:
            end = start + int(rng.integers(PHONE_OUTAGE_MIN_MS, 4 * PHONE_OUTAGE_MIN_MS))
        out.append(Outage(pid, start, min(end, day_end_ms), reasons[int(rng.integers(3))]))
    return tuple(out)
