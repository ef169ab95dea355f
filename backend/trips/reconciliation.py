"""Trip reconstruction from vehicle events and resolved sightings: pure functions, no I/O.

Model (docs/architecture.md, Reconciliation): per device and vehicle journey, a hidden Markov chain
over the stretches between stops with three states (not yet boarded, on board, alighted: nobody
boards the same journey twice). The state may change only at a stop (doors open), so boarding and
alighting stops follow from the decoded states. Each stretch's evidence is scored by how a rider
would be heard there (in every part of the stretch, at a short tx-calibrated path loss; in the
relative model the riders who came in through the bus's doors, levels learnt per bus from the
data, excuse a quiet device about as loud as them and veto one below them, see
``with_levels``) against how a non-rider would (only in parts of it — a car alongside, a person
passed by — or far away); boarding needs the device heard at the stop while the bus stood there,
and is unlikely for one heard along the stretch before (it travelled beside the bus). Calls and
journeys whose events never came are derived (``journeys_from_events``,
``derive_missing_calls``). Viterbi decodes the states, forward-backward gives the confidence, and
a device rides one vehicle at a time.

Incremental use: the newest stretch may still be under way (``data_end_ms``); a rider's
alighting is *closed* once the data reaches a silence past the bus leaving that stop that
the rider's own rate on the way makes unlikely on board (``silence_needed``, at least
``CLOSE_AFTER_SILENCE_MS``) with the rider decoded "out" on the stretch since, so a be-out
is known within about a minute of the bus leaving (``alight_known_at`` is that data time).
"""

from __future__ import annotations

import bisect
import dataclasses
import hashlib
import itertools
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Protocol

import numpy as np
import numpy.typing as npt

from backend.const import (
    ARRIVED_IN_VEHICLE_MS,
    BOARD_AFTER_ALONGSIDE,
    BOARD_AFTER_FAR,
    BURST_TO_DEPARTURE_MS,
    CLOSE_AFTER_SILENCE_MS,
    CLOSE_MAX_IN_PROB,
    CONTRAST_MARGIN_DB,
    CONTRAST_MAX_LLR,
    CONTRAST_SLOPE_PER_DB,
    DEFAULT_TX_POWER_DBM,
    DOOR_EVENT_SLACK_MS,
    DOORS_CLOSE_BEFORE_DEPARTURE_MS,
    EXIT_AT_STOP_SLACK_MS,
    FAR_HEAR_PROB,
    FAR_STRETCH_MS,
    HEAR_PROB_GRID,
    JOURNEY_GAP_MS,
    LAYOVER_MS,
    LEFT_SETTLES_FROM_CONFIDENCE,
    LEVEL_MARGIN_DB,
    LEVEL_MAX_LLR,
    LEVEL_POOL_JOURNEYS,
    LEVEL_REFERENCE_QUANTILE,
    LEVEL_SLOPE_PER_DB,
    LEVEL_VETO,
    LEVELS_FROM_RIDERS,
    LEVELS_RELATIVE,
    MAX_TRANSFER_WAIT_MS,
    MIN_CHORD_PAIRS,
    MIN_PARTIAL_STRETCH_MS,
    MIN_REFERENCE_CELLS,
    MIN_STAND_MS,
    MIN_WINDOWS_FOR_PATH_LOSS,
    MOTION_ONSET_WINDOW_MS,
    NEAR_PART_PROB,
    ON_FOOT_LLR,
    OTHER_BUS_LOOKBACK_MS,
    P_ALIGHT,
    P_ALIGHT_HEARD_LATE,
    P_BOARD_HEARD,
    P_BOARD_UNHEARD,
    P_DOORS_SHUT,
    PARTS_PER_STRETCH,
    PATH_LOSS_BOUNDARY_DB,
    PATH_LOSS_MAX_LLR,
    PATH_LOSS_SLOPE_PER_DB,
    PHONE_APPROACH_MS,
    PHONE_CLOCK_SLACK_MS,
    PHONE_SILENCE_DECIDES_AFTER_MS,
    RANGING_BURST_MAX_MS,
    REGION_COVER_MAX_LLR,
    REGION_COVER_NATS_PER_MIN,
    REGION_EXIT_DELAY_MS,
    RIDER_MARGIN_DB,
    RIDER_REFERENCE_QUANTILE,
    SCANNER_RESTART_MS,
    SILENCE_GAP_FACTOR,
    STAND_CONTRAST_MIN_WINDOWS,
    STANDING_DECIDES_AFTER_MS,
    STANDING_GAP_MS,
    STANDING_MIN_RATE,
    STANDING_SILENCE_PROB,
    STANDING_SPEED_MPS,
    STILL_HEARD_AFTER_MS,
    STILL_HEARD_MIN_WINDOWS,
    STILL_IN_VEHICLE_AFTER_MS,
    STOP_MATCH_M,
    STOP_MATCH_TIME_MS,
    TX_WEIGHT_PRIOR_CELLS,
)
from fare_engine.geo import METRES_PER_DEGREE

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class EventRecord:
    """A stored vehicle event (the wire event flattened); ``t`` in UTC epoch ms."""

    t: int
    type: str
    stop_id: str | None = None
    line: str | None = None
    journey_id: str | None = None
    direction: int | None = None
    lat: float | None = None
    lon: float | None = None
    speed_mps: float | None = None


RECONCILED_EVENTS: Final = (
    "journey",
    "arrival",
    "departure",
    "position",
    "doors_open",
    "doors_closed",
)
"""The vehicle event types reconciliation reads (``EventRecord.type``)."""


@dataclass(frozen=True, slots=True)
class StopVisit:
    """A call at a stop; ``departure`` is None while the bus still stands there."""

    stop_id: str
    arrival: int
    departure: int | None
    derived: bool = False
    """Derived from GNSS positions: its arrival and departure events never came, or (the
    journey under way) its departure event has not come though the bus has left."""
    doors: tuple[int, int | None] | None = None
    """When the doors were open at this call: its first ``doors_open`` event and the last
    ``doors_closed`` after it (None: not yet closed). None: the bus reported no door event
    for it (``with_doors``)."""


class StopIndex:
    """Stop positions for deriving calls from GNSS (a local equirectangular projection in
    metres, exact enough over a few hundred metres)."""

    def __init__(self, stops: Iterable[tuple[str, float, float]]) -> None:
        rows = sorted(stops)
        self.ids = [r[0] for r in rows]
        lat = np.array([r[1] for r in rows], dtype=np.float64)
        lon = np.array([r[2] for r in rows], dtype=np.float64)
        self._lat0 = float(np.median(lat)) if rows else 0.0
        self.xy = self.project(lat, lon)

    def project(self, lat: FloatArray, lon: FloatArray) -> FloatArray:
        """Positions in the index's metres, (n, 2)."""
        k = METRES_PER_DEGREE
        return np.stack([lon * k * np.cos(np.radians(self._lat0)), lat * k], axis=1)

    def distance(self, stop_id: str, lat: FloatArray, lon: FloatArray) -> FloatArray:
        """Distance (m) of each position from stop ``stop_id`` (inf: an unknown stop)."""
        try:
            k = self.ids.index(stop_id)
        except ValueError:
            return np.full(lat.size, np.inf)
        p = self.project(lat, lon)
        return np.asarray(np.hypot(p[:, 0] - self.xy[k, 0], p[:, 1] - self.xy[k, 1]))

    def nearest_to_all(self, xy: FloatArray) -> tuple[int, FloatArray]:
        """The stop with the least summed distance from the projected positions ``xy`` (the
        fixes around a spell: a bus that stood between them stood at a stop near both), and
        its distance (m) from each (inf: no stops)."""
        if not self.ids or len(xy) == 0:
            return 0, np.full(len(xy), np.inf)
        d = np.hypot(xy[:, None, 0] - self.xy[None, :, 0], xy[:, None, 1] - self.xy[None, :, 1])
        k = int(np.argmin(d.sum(axis=0)))
        return k, np.asarray(d[:, k], dtype=np.float64)

    def nearest(self, lat: FloatArray, lon: FloatArray) -> tuple[IntArray, FloatArray]:
        """Index of the nearest stop and its distance (m) per position."""
        if not self.ids or lat.size == 0:
            return np.zeros(lat.size, dtype=np.int64), np.full(lat.size, np.inf)
        p = self.project(lat, lon)
        d = np.hypot(p[:, None, 0] - self.xy[None, :, 0], p[:, None, 1] - self.xy[None, :, 1])
        k = np.argmin(d, axis=1)
        return k.astype(np.int64), d[np.arange(len(k)), k]


def derive_missing_calls(
    journeys: Sequence[Journey],
    events: Sequence[EventRecord],
    stops: StopIndex,
    data_end_ms: int | None = None,
) -> list[Journey]:
    """Add the calls whose arrival and departure events never came, from GNSS positions.

    A bus standing at a stop either sends no fix (an AVL that reports only while moving:
    a gap between two fixes longer than driving between them takes, ``_paused``) or fixes
    at walking speed; and from its ``journey`` event until its first fix it stood at its
    first stop, if it did not drive off at once. Where such a standing spell lies within
    ``STOP_MATCH_M`` of one stop (``_at_stop``), and no call of the journey covers it, the
    journey gains a derived visit there, from the fix before the spell to the one after it
    less the driving between them and the stop; a journey's first and last calls too (a
    layover at the terminus can be the last call of one journey and the first of the
    next), and two spells in a row at one stop are one call. A spell still going on at the
    newest data (``data_end_ms`` ``STANDING_GAP_MS`` after the last fix, or the last fixes
    at walking speed) is a call whose departure has not come: the bus stands there now, and
    a rider may yet stay on (``journey_trips``). A spell that outlasts its journey (the
    next one began while the bus stood) ends with it.
    """
    fixes = sorted(
        (e for e in events if e.type == "position" and e.lat is not None and e.lon is not None),
        key=lambda e: e.t,
    )
    if len(fixes) < 2 or not stops.ids:
        return list(journeys)
    t = np.array([e.t for e in fixes], dtype=np.int64)
    lat = np.array([e.lat for e in fixes], dtype=np.float64)
    lon = np.array([e.lon for e in fixes], dtype=np.float64)
    speed = np.array(
        [np.nan if e.speed_mps is None else e.speed_mps for e in fixes], dtype=np.float64
    )
    journeys = _departed_by_gnss(journeys, t, lat, lon, stops)
    xy = stops.project(lat, lon)
    slow = speed < STANDING_SPEED_MPS
    # (index of the fix before, index of the fix after) of every standing spell: a pause
    # between two fixes, or a run of walking-speed fixes; the fix before is None for a
    # journey's first call, where the bus stood from the ``journey`` event on, and the fix
    # after is None for a spell still going on at the newest data.
    spells: list[tuple[int | None, int | None]] = [
        (int(i), int(i) + 1) for i in np.flatnonzero(_paused(t, xy, speed))
    ]
    inner = slow.copy()
    inner[0] = False
    edges = np.flatnonzero(np.diff(np.r_[0, inner.astype(np.int8), 0]))
    for a, b in zip(edges[::2], edges[1::2], strict=True):
        spells.append((int(a) - 1, int(b) if b < len(t) else None))
    if data_end_ms is not None and data_end_ms - t[-1] >= STANDING_GAP_MS and not slow[-1]:
        spells.append((len(t) - 1, None))
    paused_before = {b for a, b in spells if a is not None and b is not None}
    # Each journey's first fix after its journey event (None: no event, or no fix since).
    first_fix = [
        None if j.started is None else int(np.searchsorted(t, j.started)) for j in journeys
    ]
    for f in first_fix:
        if f is not None and f < len(t) and f not in paused_before:
            spells.append((None, f))
    if not spells:
        return list(journeys)
    # Where each spell stood: the stop nearest both fixes around it (the one fix there is),
    # and when: a fix taken while driving was that far from the stop at its speed.
    where: dict[tuple[int | None, int | None], tuple[int, int | None, int | None]] = {}
    for a, b in spells:
        ends = [k for k in (a, b) if k is not None]
        stop, away = stops.nearest_to_all(xy[ends])
        if not _at_stop(away):
            continue
        stopped = None if a is None else int(t[a]) + _driving_ms(xy[a], stops.xy[stop], speed[a])
        left = None if b is None else int(t[b]) - _driving_ms(stops.xy[stop], xy[b], speed[b])
        if stopped is not None and left is not None and left < stopped:
            stopped = left = (stopped + left) // 2
        where[(a, b)] = (stop, stopped, left)
    out: list[Journey] = []
    for i, journey in enumerate(journeys):
        # A journey's first or last calls may be the lost ones: its spells run from the
        # previous journey's last call (or a layover's length before its own first) to the
        # next journey's first call (or the newest data).
        # (A journey with no call yet begins at its event.)
        if i > 0 and journeys[i - 1].visits:
            lo = journeys[i - 1].visits[-1].arrival - STOP_MATCH_TIME_MS
        else:
            lo = _began(journey) - JOURNEY_GAP_MS
        hi = np.iinfo(np.int64).max
        if i + 1 < len(journeys):
            hi = _began(journeys[i + 1], departed=True)
        added: list[StopVisit] = []
        visits = list(journey.visits)
        for a, b in spells:
            if (a, b) not in where:
                continue
            stop, stopped, left = where[(a, b)]
            if a is None:
                if journey.started is None or b != first_fix[i]:
                    continue
                begun = journey.started
            else:
                assert stopped is not None  # (a fix before the spell gives its start)
                begun = stopped
            if begun < lo or begun >= hi:
                continue
            # Still standing there, or until the next journey began: no departure known.
            if b is None or t[b] > hi:
                left = None
            if a is None and (left is None or left - begun < MIN_STAND_MS):
                continue  # it drove off at once (a journey logged on the way to its first stop)
            until = left if left is not None else hi
            stop_id = stops.ids[stop]
            covering = [
                k
                for k, v in enumerate(visits)
                if (v.arrival <= until and begun <= (v.departure or v.arrival))
                or (
                    v.stop_id == stop_id
                    and v.arrival - STOP_MATCH_TIME_MS <= until
                    and begun <= (v.departure or v.arrival) + STOP_MATCH_TIME_MS
                )
            ]
            if not covering:
                added.append(StopVisit(stop_id, begun, left, derived=True))
                continue
            # An arrival event minutes after the bus came to stand there (logged as the
            # layover ended): the bus arrived when it stopped.
            k = covering[0]
            if (
                len(covering) == 1
                and visits[k].stop_id == stop_id
                and visits[k].arrival - begun > STOP_MATCH_TIME_MS
                and (k == 0 or (visits[k - 1].departure or visits[k - 1].arrival) <= begun)
            ):
                visits[k] = dataclasses.replace(visits[k], arrival=begun, derived=True)
        if added or visits != list(journey.visits):
            # Two calls in a row at one stop, one of them derived (a fix lost as the bus
            # pulled in, a halt at a light just before the stop, an arrival moved back to
            # when the bus stopped), are one call: no stretch runs from a stop to itself.
            ordered: list[StopVisit] = []
            for visit in sorted([*visits, *added], key=lambda v: v.arrival):
                last = ordered[-1] if ordered else None
                if (
                    last is not None
                    and last.stop_id == visit.stop_id
                    and (last.derived or visit.derived)
                    and _near(last, visit)
                ):
                    visit = _joined(ordered.pop(), visit)
                ordered.append(visit)
            journey = dataclasses.replace(journey, visits=tuple(ordered))
        out.append(journey)
    return out


def _began(journey: Journey, departed: bool = False) -> int:
    """When a journey began: its first call's arrival (with ``departed``, its departure where
    known), or its ``journey`` event where it has no call yet; an inferred one that began as
    the bus moved off after a layover, by then at the latest (its first call known may be
    stops later, its calls before derived from the fixes)."""
    if not journey.visits:
        assert journey.started is not None  # only a journey with its event has no call
        return journey.started
    first = journey.visits[0]
    began = first.departure if departed and first.departure is not None else first.arrival
    if journey.inferred and journey.started is not None:
        return min(began, journey.started)
    return began


def _at_stop(away: FloatArray) -> bool:
    """Did a bus stand at the stop ``away`` metres from the fixes around its spell? They lie
    within ``STOP_MATCH_M`` of it on average (one fix: the first of a journey). A wider
    match (a stop off the line between two fixes by up to that, or one lost fix as the bus
    pulled in) was tried on the scenario library in the drawn worlds and put
    more riders at a wrong stop than it found lost calls, so a pause a fix's way before a
    stop is not taken for a call there."""
    return bool(away.sum() <= STOP_MATCH_M * len(away))


def _near(a: StopVisit, b: StopVisit) -> bool:
    """Do two visits lie within ``STOP_MATCH_TIME_MS`` of each other?"""
    a_end = a.departure if a.departure is not None else np.iinfo(np.int64).max
    b_end = b.departure if b.departure is not None else np.iinfo(np.int64).max
    return a.arrival - STOP_MATCH_TIME_MS <= b_end and b.arrival - STOP_MATCH_TIME_MS <= a_end


def _joined(a: StopVisit, b: StopVisit) -> StopVisit:
    """One derived visit spanning both (still standing if either is)."""
    departure = (
        None if a.departure is None or b.departure is None else max(a.departure, b.departure)
    )
    return StopVisit(a.stop_id, min(a.arrival, b.arrival), departure, derived=True)


def _driving_ms(p: FloatArray, q: FloatArray, speed: float) -> int:
    """Time (ms) driving from ``p`` to ``q`` (metres) at ``speed`` takes (0 below a walking
    pace: the fix does not say how far it was driven)."""
    if not speed >= STANDING_SPEED_MPS:
        return 0
    return int(1000.0 * float(np.hypot(*(q - p))) / speed)


def _paused(t: IntArray, xy: FloatArray, speed: FloatArray) -> npt.NDArray[np.bool_]:
    """Per pair of consecutive fixes: did the bus stand between them? Where the fixes give a
    driving speed, the gap is at least ``MIN_STAND_MS`` longer than driving the distance
    between them at that speed takes (an AVL that reports every 10 s while moving: a dwell
    of a few seconds leaves a gap too short to tell by its length, but the bus hardly moved
    across it; fixes lost while driving leave a longer gap over a longer way). Where they
    do not, the AVL paused for ``STANDING_GAP_MS``."""
    gap = np.diff(t).astype(np.float64)
    way = np.hypot(*(xy[1:] - xy[:-1]).T)
    pair = np.stack([speed[:-1], speed[1:]])
    known = np.isfinite(pair)
    # Mean speed of the two fixes (NaN where neither says).
    v = np.where(known, pair, 0.0).sum(axis=0) / np.maximum(known.sum(axis=0), 1)
    v = np.where(known.any(axis=0), v, np.nan)
    moving = v >= STANDING_SPEED_MPS
    # The way between two fixes is a chord of the road, and an AVL's speed may be read off
    # the road or the chord: how far this bus's fixes lie apart per metre of driving is
    # learnt from its own fixes at the usual interval (most of them taken on the move).
    chord = 1.0
    if moving.sum() >= MIN_CHORD_PAIRS:
        usual = moving & (gap <= 1.5 * np.median(gap[moving]))
        if usual.sum() >= MIN_CHORD_PAIRS:
            chord = float(np.clip(np.median(way[usual] / (v[usual] * gap[usual] / 1000)), 0.5, 1.0))
    driving = np.zeros(gap.shape)
    driving[moving] = 1000.0 * way[moving] / (chord * v[moving])
    return np.asarray(
        np.where(moving, gap - driving >= MIN_STAND_MS, gap >= STANDING_GAP_MS), dtype=bool
    )


def _departed_by_gnss(
    journeys: Sequence[Journey], t: IntArray, lat: FloatArray, lon: FloatArray, stops: StopIndex
) -> Sequence[Journey]:
    """The journey under way with the departure from its last stop derived from GNSS when
    that event has not come but two fixes in a row put the bus beyond ``STOP_MATCH_M`` of
    the stop (one fix could be an outlier): a lost departure event must not keep its riders
    open until the next call."""
    if not journeys or journeys[-1].complete or not journeys[-1].visits:
        return journeys
    last = journeys[-1].visits[-1]
    if last.departure is not None:
        return journeys
    after = np.flatnonzero(t > last.arrival)
    if after.size < 2:
        return journeys
    away = stops.distance(last.stop_id, lat[after], lon[after]) > STOP_MATCH_M
    both = np.flatnonzero(away[:-1] & away[1:])
    if both.size == 0:
        return journeys
    # Left between the last fix at the stop and the first beyond it.
    first_away = int(after[int(both[0])])
    left = (
        int(t[first_away - 1])
        if first_away > 0 and t[first_away - 1] > last.arrival
        else last.arrival
    )
    visit = dataclasses.replace(last, departure=left, derived=True)
    journey = dataclasses.replace(journeys[-1], visits=(*journeys[-1].visits[:-1], visit))
    return [*journeys[:-1], journey]


@dataclass(frozen=True, slots=True)
class Journey:
    vehicle_id: str
    journey_id: str
    line: str
    direction: int
    visits: tuple[StopVisit, ...]
    complete: bool
    """A later journey has started: nobody is still riding this one."""
    inferred: bool = False
    """Cut without its ``journey`` event (see ``journeys_from_events``): id and line inferred."""
    started: int | None = None
    """When its ``journey`` event came (the bus stood at its first stop then), or, inferred
    where the bus moved off after a layover, its first moving fix; None: inferred at a call."""

    @property
    def first_seen(self) -> int:
        """From when its sightings count: its first call's arrival, or the doors opening
        there if that came first (its stop events late)."""
        first = self.visits[0]
        return first.arrival if first.doors is None else min(first.arrival, first.doors[0])


@dataclass(frozen=True, slots=True)
class VehicleObservations:
    """One vehicle's resolved sightings, sorted by time.

    ``t`` window starts (UTC epoch ms), ``device`` indexes into the day's device list,
    ``rssi`` as this bus's receiver measured it (dBm), ``tx`` the advertised tx byte (NaN
    where the phone gave none or said "unknown": a hint, on a convention not known here).
    ``data_end_ms`` is the newest data time the vehicle has uploaded (events or sightings).
    """

    vehicle_id: str
    t: IntArray
    device: npt.NDArray[np.int32]
    rssi: FloatArray
    tx: FloatArray
    window_ms: int
    data_end_ms: int
    phone: PhoneObservations | None = None
    """What phones reported hearing of this bus's beacon (None: no phone did)."""


_NEVER: Final = np.iinfo(np.int64).max
"""An open stay's end (the phone has not reported leaving the region yet)."""

PHONE_ROWS_LOOKBACK_MS: Final = OTHER_BUS_LOOKBACK_MS + PHONE_APPROACH_MS
"""How long before the first journey it rebuilds reconciliation reads the phones' rows:
``phone_terms`` reads a burst heard as the bus approached that journey's first stop, and
what else the phone heard in the ``OTHER_BUS_LOOKBACK_MS`` before it."""

ON_FOOT: Final = frozenset({"walking", "cycling"})
"""Motion activities no rider's phone reports while the bus moves."""

IN_VEHICLE: Final = frozenset({"automotive"})
"""The motion activity of a phone in a moving vehicle (a bus, or a car beside it)."""


@dataclass(frozen=True, slots=True)
class PhoneObservations:
    """What the phones that heard one vehicle's beacon reported (docs/contracts.md, Phone
    sightings upload), device indices as in ``VehicleObservations``.

    ``t``/``device``/``rssi``: the seconds in which a phone heard this vehicle. ``listen_t``/
    ``listen_device``: every second in which one of those phones heard any beacon (this bus,
    another or one that resolved to none): while it hears something it is ranging, so not
    hearing this bus then is evidence. A phone that ranges only in bursts says nothing
    between them; its ``stays`` in the beacon region (enter to exit, ``_NEVER`` while open)
    and its ``on_foot`` spells (walking or cycling) speak for those stretches.
    """

    t: IntArray
    device: npt.NDArray[np.int32]
    rssi: FloatArray
    listen_t: IntArray
    listen_device: npt.NDArray[np.int32]
    stays: dict[int, list[tuple[int, int]]]
    on_foot: dict[int, list[tuple[int, int]]]
    in_vehicle: dict[int, list[tuple[int, int]]]
    """Spells its motion activity said ``automotive``."""
    ranging: dict[int, list[tuple[int, int]]] = dataclasses.field(default_factory=dict)
    """The stays (to ``REGION_EXIT_DELAY_MS`` before the exit, and no further than the
    phone has reported) through which the phone ranged all along: every second of them it
    would have heard a bus near it."""
    reported_until: dict[int, int] = dataclasses.field(default_factory=dict)
    """Per device, the newest ``sent_at`` of its uploads: what it heard before then is in
    (a phone missing here is taken to have reported everything)."""

    def last_exit(self, device: int) -> int | None:
        """When ``device``'s phone left the beacon region, if that is its last word on the
        region (None: it is still in the region, or never reported it)."""
        stays = self.stays.get(device)
        return stays[-1][1] if stays and stays[-1][1] != _NEVER else None

    def behind(self, device: int, t: int) -> bool:
        """Whether ``device``'s phone has not yet reported up to time ``t``. One that left
        the region has nothing more to tell until it enters again (its uploads' times are
        its own clock's, which may be behind the bus's: they alone could keep it behind
        for good)."""
        return self.reported_until.get(device, _NEVER) < t and self.last_exit(device) is None

    def longest_away(self, device: int, since: int) -> int:
        """The longest time (ms) ``device``'s phone was out of the beacon region between an
        exit at ``since`` or later and its next entry (0 if it never came back)."""
        stays = self.stays.get(device, ())
        return max(
            (b[0] - a[1] for a, b in itertools.pairwise(stays) if a[1] >= since),
            default=0,
        )

    def in_vehicle_through(self, device: int, since: int, until: int) -> bool:
        """Whether ``device``'s phone said it was in a vehicle without a break from ``since``
        or before until after ``until``, as far as it has reported."""
        reported = self.reported_until.get(device, _NEVER)
        return any(
            start <= since and min(end, reported) > until
            for start, end in self.in_vehicle.get(device, ())
        )


def phone_observations(
    vehicle_id: str,
    device_index: dict[str, int],
    beacons: Iterable[tuple[str, int, int, str | None]],
    regions: Iterable[tuple[str, int, str]],
    activity: Iterable[tuple[str, int, str]],
    reported: Mapping[str, int] | None = None,
) -> PhoneObservations | None:
    """The phone-side observations of ``vehicle_id`` from stored phone rows: ``beacons``
    ``(device_id, t, rssi, vehicle_id or None)`` of every phone that heard this vehicle
    (all their rows, any vehicle), their ``regions`` and ``activity`` events ``(device_id,
    t, type)``, and per device the newest ``sent_at`` of its uploads (``reported``; None:
    every phone has reported all it heard). Devices not in ``device_index`` (deleted since)
    are left out; None when no known phone heard the vehicle."""
    own_t: list[int] = []
    own_device: list[int] = []
    own_rssi: list[int] = []
    listen: list[tuple[int, int]] = []
    for device_id, t, rssi, heard in beacons:
        index = device_index.get(device_id)
        if index is None:
            continue
        listen.append((t, index))
        if heard == vehicle_id:
            own_t.append(t)
            own_device.append(index)
            own_rssi.append(rssi)
    if not own_t:
        return None
    order = np.argsort(np.asarray(own_t, dtype=np.int64), kind="stable")
    listen.sort()
    stays: dict[int, list[tuple[int, int]]] = defaultdict(list)
    opened: dict[int, int] = {}
    for device_id, t, kind in sorted(regions, key=lambda r: (r[0], r[1], r[2] == "enter")):
        index = device_index.get(device_id)
        if index is None:
            continue
        if kind == "enter":
            opened.setdefault(index, t)
        else:  # an exit without its enter: the stay began before the data
            stays[index].append((opened.pop(index, 0), t))
    for index, t in opened.items():
        stays[index].append((t, _NEVER))
    stays = {k: sorted(v) for k, v in stays.items()}
    # A phone that reported beacons long after entering the region ranged all through
    # that stay (background location), not in a burst on entering it.
    heard_at: dict[int, list[int]] = defaultdict(list)
    for t, index in listen:
        heard_at[index].append(t)
    reported_until = {device_index[d]: t for d, t in (reported or {}).items() if d in device_index}
    ranging: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for index, spans in stays.items():
        times = np.asarray(heard_at.get(index, []), dtype=np.int64)
        # A stay still open says nothing past the phone's newest upload: what it heard
        # since is not in yet, so not hearing the bus there is no evidence.
        until = reported_until.get(index, _NEVER)
        for enter, exit_ in spans:
            if ((times > enter + RANGING_BURST_MAX_MS) & (times <= exit_)).any():
                end = exit_ - REGION_EXIT_DELAY_MS if exit_ != _NEVER else _NEVER
                ranging[index].append((enter, min(end, until)))
    on_foot = _spells(activity, device_index, ON_FOOT)
    in_vehicle = _spells(activity, device_index, IN_VEHICLE)
    return PhoneObservations(
        np.asarray(own_t, dtype=np.int64)[order],
        np.asarray(own_device, dtype=np.int32)[order],
        np.asarray(own_rssi, dtype=np.float64)[order],
        np.array([t for t, _ in listen], dtype=np.int64),
        np.array([d for _, d in listen], dtype=np.int32),
        stays,
        on_foot,
        in_vehicle,
        dict(ranging),
        reported_until,
    )


def _spells(
    activity: Iterable[tuple[str, int, str]], device_index: dict[str, int], kinds: frozenset[str]
) -> dict[int, list[tuple[int, int]]]:
    """Per device, the spells ``[from, to)`` its motion activity was one of ``kinds`` (the
    last one open to ``_NEVER``)."""
    spells: dict[int, list[tuple[int, int]]] = defaultdict(list)
    since: dict[int, int] = {}
    for device_id, t, kind in sorted(activity, key=lambda a: (a[0], a[1])):
        index = device_index.get(device_id)
        if index is None:
            continue
        if kind in kinds:
            since.setdefault(index, t)
        elif index in since:
            spells[index].append((since.pop(index), t))
    for index, t in since.items():
        spells[index].append((t, _NEVER))
    return dict(spells)


@dataclass(frozen=True, slots=True)
class DetectedTrip:
    trip_id: str
    device_id: str
    vehicle_id: str
    journey_id: str
    line: str
    board_stop_id: str
    board_time: int
    alight_stop_id: str
    alight_time: int
    confidence: float
    stops_travelled: int
    """Stops passed after boarding up to and including the alighting stop (Kurzstrecke)."""
    score: float
    """Summed log-likelihood ratio of the ridden stretches (decides conflicts)."""
    status: str
    """``closed`` when the alighting is decided, ``open`` while the rider may still be on."""
    alight_known_at: int | None
    """Data time (epoch ms) from which the alighting stop was decided, or None if open."""


def journeys_from_events(
    vehicle_id: str,
    events: Iterable[EventRecord],
    stops: StopIndex | None = None,
    data_end_ms: int | None = None,
) -> list[Journey]:
    """Cut a vehicle's event stream into journeys with their stop visits.

    A ``journey`` event starts a journey; an ``arrival`` opens a stop visit and the matching
    ``departure`` closes it. Duplicate events (a resent batch) are harmless.

    Onboard computers lose events. A journey whose ``journey`` event never came is still
    cut: a new journey begins where the bus arrives again at the stop it just departed (it
    turned at the terminus), after a gap of ``JOURNEY_GAP_MS`` without a call (a layover),
    or with the first call of the day; such a journey is ``inferred``, keeps the line of
    the journey before it and is named ``~`` and the time of its first event. A call with only
    one of its two events counts as a visit of zero length at that event. With ``stops``,
    calls whose both events are missing are derived from the ``position`` events
    (``derive_missing_calls``; ``data_end_ms``, the newest data time, tells a bus standing
    now without fixes).
    """
    journeys: list[Journey] = []
    current: EventRecord | None = None
    inferred = False
    moved_off: int | None = None  # (an inferred journey's first moving fix after a layover)
    visits: list[StopVisit] = []
    open_stop: tuple[str, int] | None = None

    def close(complete: bool) -> None:
        nonlocal open_stop
        if open_stop is not None:
            visits.append(StopVisit(open_stop[0], open_stop[1], None))
            open_stop = None
        # A journey with its event but no call yet is kept for ``derive_missing_calls``:
        # its first call's events may be lost while the bus stood there (dropped after).
        if current is not None and (visits or not inferred):
            journeys.append(
                Journey(
                    vehicle_id=vehicle_id,
                    journey_id=current.journey_id or "",
                    line=current.line or "",
                    direction=current.direction or 0,
                    visits=tuple(visits),
                    complete=complete,
                    inferred=inferred,
                    started=moved_off if inferred else current.t,
                )
            )
        visits.clear()

    def last_time() -> int | None:
        if open_stop is not None:
            return open_stop[1]
        if visits:
            last = visits[-1]
            return last.departure if last.departure is not None else last.arrival
        return None

    def infer(event: EventRecord, moved: int | None = None) -> None:
        """Start a journey whose ``journey`` event is missing at this call's first event, or
        where the bus moved off after a layover (``moved``: its first moving fix, which also
        names it, so the journey keeps its id once its next call comes)."""
        nonlocal current, inferred, moved_off
        previous = current
        close(complete=True)
        begun = event.t if moved is None else moved
        current = EventRecord(
            begun,
            "journey",
            None,
            previous.line if previous is not None else None,
            f"~{begun}",
            None,
        )
        inferred, moved_off = True, moved

    def moved_after_layover(before: int, t: int) -> int | None:
        """The bus's first moving fix after its call at ``before`` and before ``t``, where
        it stood there ``LAYOVER_MS`` first (its fixes say it laid over)."""
        k = bisect.bisect_right(moving, before)
        if k < len(moving) and moving[k] < t and moving[k] - before >= LAYOVER_MS:
            return moving[k]
        return None

    events = list(events)
    # A layover is a bus standing still: moving fixes in a gap between calls are a bus on
    # its way whose stop events were lost, not a new journey.
    moving = sorted(
        e.t
        for e in events
        if e.type == "position" and e.speed_mps is not None and e.speed_mps >= STANDING_SPEED_MPS
    )

    def since_moving(t: int, before: int) -> int:
        k = bisect.bisect_left(moving, t)
        return t - max(before, moving[k - 1]) if k else t - before

    def laid_over(t: int, before: int) -> bool:
        """Did the bus lay over between its call at ``before`` and this event at ``t``? It
        stood there for ``LAYOVER_MS`` before it next moved (its fixes say), or, without
        a moving fix since, for ``JOURNEY_GAP_MS`` (an AVL without GNSS)."""
        k = bisect.bisect_right(moving, before)
        if k < len(moving) and moving[k] < t:
            return moving[k] - before >= LAYOVER_MS
        return since_moving(t, before) > JOURNEY_GAP_MS

    calls = [e for e in events if e.type in ("journey", "arrival", "departure")]
    ordered = sorted(set(calls), key=lambda e: (e.t, e.type != "journey", e.type, e.stop_id))
    for event in ordered:
        if event.type == "journey":
            if current is not None and event.journey_id == current.journey_id and not inferred:
                continue
            # The bus stands at a stop as the journey begins: with stop events a few seconds
            # early, that call is the new journey's first (and stays the old one's last).
            carried = open_stop
            if inferred and not visits:
                open_stop = None  # that call was all there was of an inferred journey
            close(complete=True)
            current, inferred, moved_off, open_stop = event, False, None, carried
            continue
        if event.type not in ("arrival", "departure") or event.stop_id is None:
            continue
        before = last_time()
        turned = (
            event.type == "arrival"
            and open_stop is None
            and bool(visits)
            and visits[-1].stop_id == event.stop_id
            and visits[-1].departure is not None
        )
        if turned and len(visits) == 1 and not inferred:
            # The journey began at a call carried over from the one before (its departure
            # came late); its own first call at that stop is this one.
            visits.clear()
        elif current is None or turned or (before is not None and laid_over(event.t, before)):
            infer(event, None if before is None else moved_after_layover(before, event.t))
        if event.type == "arrival":
            if open_stop is not None and open_stop[0] == event.stop_id:
                continue
            if open_stop is not None:
                visits.append(StopVisit(open_stop[0], open_stop[1], open_stop[1]))
            open_stop = (event.stop_id, event.t)
        else:
            if open_stop is not None and open_stop[0] == event.stop_id:
                visits.append(StopVisit(event.stop_id, open_stop[1], event.t))
            else:
                if open_stop is not None:
                    visits.append(StopVisit(open_stop[0], open_stop[1], open_stop[1]))
                if not visits or visits[-1].stop_id != event.stop_id:
                    visits.append(StopVisit(event.stop_id, event.t, event.t))
            open_stop = None
    # Seen live: the bus laid over after its last call and has moved off since, with no
    # event yet (the next journey's was lost). That journey has begun; its first call, the
    # layover, is derived from the fixes, so its riders show before its next call.
    before = last_time()
    moved = None
    if stops is not None and current is not None and open_stop is None and before is not None:
        moved = moved_after_layover(before, np.iinfo(np.int64).max)
    if current is not None and moved is not None:
        line = current.line or ""
        close(complete=True)
        journeys.append(
            Journey(
                vehicle_id=vehicle_id,
                journey_id=f"~{moved}",  # as ``infer`` names it once the next call comes
                line=line,
                direction=0,
                visits=(),
                complete=False,
                inferred=True,
                started=moved,
            )
        )
        current = None
    close(complete=False)
    if stops is not None:
        journeys = derive_missing_calls(journeys, events, stops, data_end_ms)
    return with_doors([j for j in journeys if j.visits], events)


class TimedEvent(Protocol):
    """An event with a time (UTC epoch ms) and a type, as ``spells`` pairs them."""

    @property
    def t(self) -> int: ...

    @property
    def type(self) -> str: ...


def spells(
    events: Iterable[TimedEvent], opening: str, closing: str
) -> list[tuple[int, int | None]]:
    """The spells from an ``opening`` event to the first ``closing`` after it, by time (None:
    not closed yet); an opening while open, or a closing while closed, changes nothing (a
    repeated event)."""
    out: list[tuple[int, int | None]] = []
    opened: int | None = None
    for e in sorted((e for e in events if e.type in (opening, closing)), key=_time):
        if e.type == opening and opened is None:
            opened = e.t
        elif e.type == closing and opened is not None:
            out.append((opened, e.t))
            opened = None
    if opened is not None:
        out.append((opened, None))
    return out


def _time(e: TimedEvent) -> int:
    return e.t


def with_doors(journeys: Sequence[Journey], events: Sequence[EventRecord]) -> list[Journey]:
    """The journeys with each call's doors-open time (``StopVisit.doors``) from the bus's
    door events. A spell belongs to the call it opened nearest to (of the few just before
    it in time), within ``DOOR_EVENT_SLACK_MS`` of the call's arrival and departure (the stop
    events may come that early or late; a call whose departure has not come is matched by
    its arrival, the newest by any spell since); the doors opening and closing several times
    at one call make one spell, from the first opening to the last closing, which ends no
    later than the slack after the call's departure (a ``doors_closed`` lost)."""
    door_spells = spells(events, "doors_open", "doors_closed")
    if not door_spells:
        return list(journeys)
    calls = sorted(
        (
            (v.arrival, v.departure, (j, k))
            for j, journey in enumerate(journeys)
            for k, v in enumerate(journey.visits)
        ),
        key=lambda c: (c[0], c[2]),
    )
    if not calls:
        return list(journeys)
    arrivals = [arrival for arrival, _, _ in calls]
    # A call whose departure has not come is matched by its arrival, but the last one, where
    # the bus may stand now (a terminus call shared by two journeys is one call).
    last = arrivals[-1]
    ends = [
        departure if departure is not None else _NEVER if arrival == last else arrival
        for arrival, departure, _ in calls
    ]
    found: dict[tuple[int, int], tuple[int, int | None]] = {}
    for opened, closed in door_spells:
        near: list[tuple[int, int]] = []
        k = bisect.bisect_right(arrivals, opened + DOOR_EVENT_SLACK_MS)
        # The calls just before it in time: a bus's calls follow one another, so only the
        # last one or two can hold it (a call shared by two journeys is two of them); four
        # leave room.
        for i in range(max(0, k - 4), k):
            gap = max(0, arrivals[i] - opened, opened - ends[i])
            if gap <= DOOR_EVENT_SLACK_MS:
                near.append((gap, i))
        if not near:
            continue
        # The nearest call, in each journey it belongs to (a terminus call is the last of
        # one journey and the first of the next: one arrival).
        _, nearest = min(near)
        # A spell ends by the call's departure and the slack: a lost ``doors_closed`` does
        # not carry it into the next call.
        end, departure = closed, calls[nearest][1]
        if departure is not None:
            cap = departure + DOOR_EVENT_SLACK_MS
            end = cap if end is None or end > cap else end
        for _, i in near:
            if arrivals[i] == arrivals[nearest]:
                key = calls[i][2]
                first = found.get(key)
                found[key] = (opened, end) if first is None else (first[0], end)
    return [
        dataclasses.replace(
            journey,
            visits=tuple(
                v if (j, k) not in found else dataclasses.replace(v, doors=found[(j, k)])
                for k, v in enumerate(journey.visits)
            ),
        )
        for j, journey in enumerate(journeys)
    ]


@dataclass(frozen=True, slots=True)
class LevelModel:
    """How a stretch's median calibrated path loss weighs (see PATH_LOSS_BOUNDARY_DB): the
    fitted constants by default; ``bibo calibrate`` tries others."""

    boundary_db: float = PATH_LOSS_BOUNDARY_DB
    slope_per_db: float = PATH_LOSS_SLOPE_PER_DB
    max_llr: float = PATH_LOSS_MAX_LLR
    contrast_margin_db: float = CONTRAST_MARGIN_DB
    contrast_slope_per_db: float = CONTRAST_SLOPE_PER_DB
    contrast_max_llr: float = CONTRAST_MAX_LLR

    relative: bool = LEVELS_RELATIVE
    margin_db: float = LEVEL_MARGIN_DB
    reference_quantile: float = LEVEL_REFERENCE_QUANTILE
    level_slope_per_db: float = LEVEL_SLOPE_PER_DB
    level_max_llr: float = LEVEL_MAX_LLR
    level_veto: bool = LEVEL_VETO

    riders: bool = LEVELS_FROM_RIDERS
    rider_margin_db: float = RIDER_MARGIN_DB

    @property
    def name(self) -> str:
        """``riders``, ``relative`` or ``absolute``: the model's kind, as commands print it."""
        return "riders" if self.riders else "relative" if self.relative else "absolute"

    @property
    def learns_levels(self) -> bool:
        """Whether the bus's riders calibrate its levels (``learn_levels``)."""
        return self.riders or self.relative

    @property
    def level_quantile(self) -> float:
        """Which quantile of the riders' levels is the reference: their median in the
        riders model (``RIDER_REFERENCE_QUANTILE``), ``reference_quantile`` in the relative
        one."""
        return RIDER_REFERENCE_QUANTILE if self.riders else self.reference_quantile

    def rider_llr(self, relative_db: FloatArray) -> FloatArray:
        """The riders model's nats for "in" per dB against the bus's median rider: neutral
        ``rider_margin_db`` below them, ``slope_per_db`` per dB, capped at ``max_llr`` (the
        path loss's form, its boundary read off the bus's own riders)."""
        value = self.slope_per_db * (relative_db + self.rider_margin_db)
        return np.asarray(np.clip(value, -self.max_llr, self.max_llr), dtype=np.float64)

    def relative_llr(self, relative_db: FloatArray) -> FloatArray:
        """Nats for "in" per dB against the bus's riders (0 where unknown): neutral at
        ``margin_db`` below them, ``level_slope_per_db`` per dB, capped at ``level_max_llr``
        (``with_levels`` bounds the path loss's nats with it)."""
        known = np.isfinite(relative_db)
        value = self.level_slope_per_db * (np.where(known, relative_db, 0.0) + self.margin_db)
        cap = self.level_max_llr
        return np.asarray(np.where(known, np.clip(value, -cap, cap), 0.0), dtype=np.float64)

    def llr(self, median_path_loss: FloatArray) -> FloatArray:
        """Nats for "in" per median path loss."""
        value = self.slope_per_db * (self.boundary_db - median_path_loss)
        return np.asarray(np.clip(value, -self.max_llr, self.max_llr), dtype=np.float64)

    def contrast_llr(self, contrast_db: FloatArray) -> FloatArray:
        """Nats against "in" per dB a device was louder while the bus stood at its stops than
        as it drove (``_stand_contrast``), beyond the margin (0 where unknown)."""
        known = np.isfinite(contrast_db)
        excess = np.where(known, contrast_db, 0.0) - self.contrast_margin_db
        value = np.clip(self.contrast_slope_per_db * excess, 0.0, self.contrast_max_llr)
        return np.asarray(np.where(known, value, 0.0), dtype=np.float64)


DEFAULT_LEVEL: Final = LevelModel()

LEVEL_CHOICES: Final = ("default", "absolute", "relative", "riders")
"""What ``--level`` accepts where a command can score either level model."""


def level_model_named(name: str) -> LevelModel:
    """``default`` (backend.const's), or the absolute, relative or riders model with the
    same constants."""
    if name not in LEVEL_CHOICES:
        raise ValueError(f"level: expected one of {', '.join(LEVEL_CHOICES)}, got {name!r}")
    if name == "default":
        return DEFAULT_LEVEL
    return dataclasses.replace(DEFAULT_LEVEL, relative=name == "relative", riders=name == "riders")


@dataclass(frozen=True, slots=True)
class Stretches:
    """The between-stops stretches of a journey: stretch k runs from visit k to visit k+1.

    The last one may be *partial* (the bus left visit k and has not arrived anywhere yet);
    it then ends at the data end and has no arrival visit.
    """

    start: IntArray
    end: IntArray
    partial: bool


def stretches(journey: Journey, data_end_ms: int) -> Stretches:
    starts: list[int] = []
    ends: list[int] = []
    for a, b in zip(journey.visits, journey.visits[1:], strict=False):
        starts.append(a.departure if a.departure is not None else a.arrival)
        ends.append(b.arrival)
    last = journey.visits[-1]
    partial = (
        not journey.complete
        and last.departure is not None
        and data_end_ms - last.departure >= MIN_PARTIAL_STRETCH_MS
    )
    if partial and last.departure is not None:
        starts.append(last.departure)
        ends.append(data_end_ms)
    return Stretches(np.array(starts, dtype=np.int64), np.array(ends, dtype=np.int64), partial)


@dataclass(frozen=True, slots=True)
class Evidence:
    """Per (device, stretch): the emission log-likelihood ratio in vs out."""

    devices: npt.NDArray[np.int32]
    llr: FloatArray
    heard_at_stop: npt.NDArray[np.bool_]
    """(device, stretch): heard while the doors were open at the stop before the stretch;
    for a phone also in the ``PHONE_APPROACH_MS`` before the bus arrived there
    (``_heard_approaching``) or, for a burst on a clock running ahead, soon after the doors
    closed (``_waited_at``)."""
    alongside_before: npt.NDArray[np.bool_]
    """(device, stretch): heard along most of the stretch before that stop (all but one of
    its parts): travelling beside the bus, not waiting at the stop."""
    level: FloatArray
    """(device, stretch): the median loudness over the stretch (dB; RSSI in the relative
    model, minus the tx-calibrated path loss in the absolute one; NaN: too few windows)."""
    level_llr: FloatArray
    """(device, stretch): the nats the tx-calibrated path loss added to ``llr`` (0: never
    heard; from fewer than ``MIN_WINDOWS_FOR_PATH_LOSS`` windows a share of them); what the
    relative model bounds (``with_levels``)."""
    tx: FloatArray
    """(device, stretch): the advertised tx (NaN: none)."""
    confident: npt.NDArray[np.bool_]
    """(device, stretch): a rider beyond doubt, whose level calibrates the others (see
    ``learn_levels``): heard by the bus while the doors were open at a stop (not along the
    stretch before it), then in every part of every stretch since, in
    ``MIN_WINDOWS_FOR_PATH_LOSS`` windows or more, from the second stretch on
    (``_boarded_riders``; none in the absolute model)."""
    terms: tuple[tuple[str, FloatArray], ...] = ()
    """``llr`` by feature (``EVIDENCE_TERMS`` names; each (device, stretch), adding up to
    ``llr``), kept to explain a confidence (``explain_trip``); decisions read ``llr`` only."""
    by_bus: npt.NDArray[np.bool_] | None = None
    """Per device: heard by the bus itself (None: all were); a level of a phone that only
    heard the bus's beacon is of the other link and not read against the bus's riders."""
    heard_late: npt.NDArray[np.bool_] | None = None
    """(device, stretch): heard in ``STILL_HEARD_MIN_WINDOWS`` windows or more later than
    ``STILL_HEARD_AFTER_MS`` after the bus left the stop before the stretch: not someone
    who got off there (``decode_rides``). None: nobody was."""
    level_share: FloatArray | None = None
    """(device, stretch): the share of the stretch a level speaks for (the parts up to the
    last one the device was heard in; for a phone's ranging, also the share it ranged
    through): what ``level_llr`` was scaled by, and what ``with_levels`` scales the bus's
    own levels by. None: all of it."""
    served: npt.NDArray[np.bool_] | None = None
    """Per stretch: whether the doors may have opened at the stop before it (``_served``);
    nobody boards or alights where they did not. None: at every stop."""
    alongside_far: npt.NDArray[np.bool_] | None = None
    """(device, stretch): heard in every part of the stretch before, one of at least
    ``FAR_STRETCH_MS``: from its far end on, where nobody waiting at the stop is heard
    (None: nobody was)."""


def _binomial_loglik(heard: FloatArray, total: FloatArray, p: float) -> FloatArray:
    # The binomial coefficient is the same under every hypothesis and cancels out.
    return np.asarray(heard * np.log(p) + (total - heard) * np.log1p(-p), dtype=np.float64)


def _logmeanexp(stack: FloatArray, axis: int) -> FloatArray:
    top = stack.max(axis=axis, keepdims=True)
    out = top + np.log(np.mean(np.exp(stack - top), axis=axis, keepdims=True))
    return np.asarray(np.squeeze(out, axis=axis), dtype=np.float64)


def stretch_evidence(
    journey: Journey,
    obs: VehicleObservations,
    parts: Stretches,
    level_model: LevelModel = DEFAULT_LEVEL,
) -> Evidence:
    """Score every device heard on the journey's stretches (vectorised over devices): the
    hearing pattern, the tx-calibrated path loss and the stand contrast. The relative
    model's excuse is added by ``with_levels`` once the levels are learnt."""
    n_str = len(parts.start)
    empty = Evidence(
        np.zeros(0, dtype=np.int32),
        np.zeros((0, n_str)),
        np.zeros((0, n_str), dtype=bool),
        np.zeros((0, n_str), dtype=bool),
        np.zeros((0, n_str)),
        np.zeros((0, n_str)),
        np.zeros((0, n_str)),
        np.zeros((0, n_str), dtype=bool),
    )
    if n_str == 0:
        return empty
    begin, finish = journey.first_seen, int(parts.end[-1])
    lo, hi = np.searchsorted(obs.t, [begin, finish])
    t, dev, rssi, tx = obs.t[lo:hi], obs.device[lo:hi], obs.rssi[lo:hi], obs.tx[lo:hi]
    bus_heard = np.unique(dev)
    phone = obs.phone
    approach: tuple[npt.NDArray[np.int32], IntArray] | None = None
    if phone is not None:
        # A phone hearing the bus's beacon is the same link seen from the other end: its
        # seconds join the bus's windows, its RSSI read as a typical phone's (no tx).
        a, b = np.searchsorted(phone.t, [begin - PHONE_APPROACH_MS, finish])
        approach = _heard_approaching(phone, a, b, journey, n_str)
        a = max(a, int(np.searchsorted(phone.t, begin)))
        if b > a:
            t = np.concatenate([t, phone.t[a:b]])
            order = np.argsort(t, kind="stable")
            t = t[order]
            dev = np.concatenate([dev, phone.device[a:b]])[order]
            rssi = np.concatenate([rssi, phone.rssi[a:b]])[order]
            tx = np.concatenate([tx, np.full(b - a, np.nan)])[order]
    # The loudness measure: the path loss calibrated by the advertised tx (a typical phone's
    # where none); a model that learns its levels also keeps the RSSI with tx aside.
    pl = np.where(np.isfinite(tx), tx, DEFAULT_TX_POWER_DBM) - rssi
    # Heard while the bus stood at the stop before each stretch (arrival to departure).
    dwell_start = np.array([v.arrival for v in journey.visits[:n_str]], dtype=np.int64)
    at = np.searchsorted(dwell_start, t, side="right") - 1
    left = parts.start[np.clip(at, 0, None)]
    at_stop = (at >= 0) & (t < left)
    # Heard while the doors were open: between the bus's door events where it sends them
    # (exact, where its stop events may be early or late), else while it stood there but
    # not in the last seconds before it pulled away (DOORS_CLOSE_BEFORE_DEPARTURE_MS).
    door_open, door_shut = _door_windows(journey.visits[:n_str], parts.start)
    served = _served(journey, n_str)
    at_door = np.searchsorted(door_open, t, side="right") - 1
    boarding = (at_door >= 0) & (t < door_shut[np.clip(at_door, 0, None)])
    dwell_hits = (dev[boarding], at_door[boarding])
    dwell_pl = pl[boarding]
    k = np.searchsorted(parts.start, t, side="right") - 1
    inside = (k >= 0) & (t < parts.end[np.clip(k, 0, None)])
    # Devices heard on a stretch, and phones that heard the bus only while it stood at a
    # stop or pulled in (a burst on entering the region): their stay may still speak.
    devices = np.unique(
        dev[inside]
        if approach is None
        else np.concatenate([dev[inside], dev[at_stop], dev[boarding], approach[0]])
    )
    if len(devices) == 0:
        return empty
    t, dev, pl, tx, k = t[inside], dev[inside], pl[inside], tx[inside], k[inside]
    d_idx = np.searchsorted(devices, dev)
    n_dev = len(devices)

    # One row per (device, stretch, window): several tokens in a window count once.
    key = (d_idx.astype(np.int64) * n_str + k) * (1 << 42) + (t - parts.start[0])
    order = np.lexsort((pl, key))
    key, pl, tx, t, k, d_idx = key[order], pl[order], tx[order], t[order], k[order], d_idx[order]
    first = np.ones(len(key), dtype=bool)
    first[1:] = key[1:] != key[:-1]
    t, k, d_idx, pl, tx = t[first], k[first], d_idx[first], pl[first], tx[first]  # strongest

    length = (parts.end - parts.start).astype(np.float64)
    n_windows = np.maximum(1.0, np.ceil(length / obs.window_ms))
    part = np.minimum(
        ((t - parts.start[k]) * PARTS_PER_STRETCH / np.maximum(length[k], 1)).astype(np.int64),
        PARTS_PER_STRETCH - 1,
    )
    heard = np.zeros((n_dev, n_str, PARTS_PER_STRETCH))
    np.add.at(heard, (d_idx, k, part), 1.0)
    per_part = np.broadcast_to((n_windows / PARTS_PER_STRETCH)[None, :, None], heard.shape)
    # The bus listens all the time; a phone only while it ranges: where a device was not
    # heard by the bus, the windows that count are those its phone ranged in.
    by_bus = np.isin(devices, bus_heard)
    listening = np.zeros((n_dev, n_str), dtype=bool)
    if phone is not None and not by_bus.all():
        ranged = _ranging_windows(phone, devices, parts, begin, finish)
        ranged = np.maximum(ranged, _ranging_stays(phone, devices, parts, obs.window_ms))
        listening = ranged.sum(axis=2) > 0
        per_part = np.where(by_bus[:, None, None], per_part, np.minimum(ranged, per_part))
    heard = np.minimum(heard, per_part)
    alongside_before = np.zeros((n_dev, n_str), dtype=bool)
    alongside_before[:, 1:] = (heard[:, :-1] > 0).sum(axis=2) >= PARTS_PER_STRETCH - 1
    # Heard from the far end of a long stretch on: nobody waiting at the stop it leads to.
    alongside_far = np.zeros((n_dev, n_str), dtype=bool)
    alongside_far[:, 1:] = (heard[:, :-1] > 0).all(axis=2) & (length[:-1] >= FAR_STRETCH_MS)
    late = t >= parts.start[k] + STILL_HEARD_AFTER_MS
    late_windows = np.zeros((n_dev, n_str))
    np.add.at(late_windows, (d_idx[late], k[late]), 1.0)
    heard_late = late_windows >= STILL_HEARD_MIN_WINDOWS
    grid = np.array(HEAR_PROB_GRID)

    # In: every part heard at some rate (how well a phone is heard varies with the crowd
    # and how it is carried). Out: each part either near the bus (heard at some rate: a car
    # alongside, a person passed by) or far from it (almost never heard).
    mix = _logmeanexp(np.stack([_binomial_loglik(heard, per_part, p) for p in grid]), axis=0)
    far = _binomial_loglik(heard, per_part, FAR_HEAR_PROB)
    near_or_far = np.logaddexp(np.log(NEAR_PART_PROB) + mix, np.log1p(-NEAR_PART_PROB) + far)
    llr = (mix - near_or_far).sum(axis=2)
    terms: list[tuple[str, FloatArray]] = [("hearing", llr.copy())]

    # Calibrated path loss: a rider is metres away inside, a non-rider further and outside.
    cell = d_idx.astype(np.int64) * n_str + k
    # A level read from fewer than MIN_WINDOWS_FOR_PATH_LOSS windows is a noisier one: it
    # weighs in proportion to its windows (a rider heard twice on the first seconds of a
    # stretch shows on board sooner), and only levels of that many windows or more calibrate.
    windows = np.bincount(cell, minlength=n_dev * n_str).reshape(n_dev, n_str)
    any_level = _cell_medians(cell, pl, n_dev * n_str, min_windows=1).reshape(n_dev, n_str)
    known = windows >= MIN_WINDOWS_FOR_PATH_LOSS
    moving = np.where(known, any_level, np.nan)
    heard_in = windows > 0
    level_llr = np.zeros((n_dev, n_str))
    level_llr[heard_in] = level_model.llr(any_level[heard_in]) * np.minimum(
        1.0, windows[heard_in] / MIN_WINDOWS_FOR_PATH_LOSS
    )
    # A level speaks for the time it was heard over. Heard only early in a stretch (a rider
    # stepping off after a departure event that came early, a car that turned off), it says
    # how near the device was then, not that it stayed: it counts for the share of the
    # stretch's parts up to the last one it was heard in.
    reached = PARTS_PER_STRETCH - np.argmax((heard > 0)[:, :, ::-1], axis=2)
    level_share = reached / PARTS_PER_STRETCH
    if phone is not None:
        # A phone that ranged through a few seconds of a stretch likewise.
        level_share *= np.minimum(1.0, per_part.sum(axis=2) / n_windows[None, :])
    level_llr *= level_share
    llr += level_llr
    terms.append(("path_loss", level_llr))
    full = np.asarray((heard > 0).all(axis=2), dtype=bool)
    level_known = known
    # The riders beyond doubt, whose level calibrates the others, are found below, once who
    # was heard at the stops is known.
    confident = np.zeros((n_dev, n_str), dtype=bool)
    if level_model.learns_levels:
        # What ``learn_levels`` learns from: the riders' RSSI and tx.
        neg_rssi = pl - np.where(np.isfinite(tx), tx, DEFAULT_TX_POWER_DBM)
        level = -_cell_medians(cell, neg_rssi, n_dev * n_str).reshape(n_dev, n_str)
        cell_tx = _cell_medians(cell, tx, n_dev * n_str).reshape(n_dev, n_str)
    else:
        level = -moving
        cell_tx = np.full((n_dev, n_str), np.nan)

    waited = np.zeros((n_dev, n_str), dtype=bool)
    if phone is not None:
        said, arrived, waited = phone_terms(
            phone,
            devices,
            by_bus,
            listening,
            parts,
            dwell_start,
            (door_open, door_shut),
            level_model,
            obs.data_end_ms,
            _last_left(journey, parts),
        )
        llr += said
        terms.append(("phone", said))
        alongside_before |= arrived

    heard_at_stop = np.zeros((n_dev, n_str), dtype=bool)
    if approach is not None:
        ahead = np.searchsorted(devices, approach[0])
        heard_at_stop[ahead, approach[1]] = True  # every approach device is in ``devices``
    rows = np.searchsorted(devices, dwell_hits[0])
    hit_known = (rows < n_dev) & (devices[np.minimum(rows, n_dev - 1)] == dwell_hits[0])
    heard_at_stop[rows[hit_known], dwell_hits[1][hit_known]] = True
    # A burst stamped soon after the doors closed, of a phone that waited and rode off: its
    # clock ran ahead, and it was heard at the stop (``phone_terms``).
    heard_at_stop |= waited

    if level_model.learns_levels:
        # Those who came in through the doors (a phone that only heard the bus's beacon is a
        # level of the other link).
        confident = _boarded_riders(
            full & level_known & by_bus[:, None], _came_in_at(heard_at_stop, alongside_before)
        )

    # Stand contrast: a car behind the bus closes up while the bus stands at a stop and falls
    # back as it drives on; a rider inside stays where they are. A difference of the
    # device's own levels: its phone, carry and the bus's receiver gain cancel out.
    if level_model.contrast_slope_per_db > 0:
        on_bus_hits = hit_known & by_bus[np.minimum(rows, n_dev - 1)]
        contrast = _stand_contrast(
            full & by_bus[:, None],
            (rows[on_bus_hits], dwell_hits[1][on_bus_hits], dwell_pl[on_bus_hits]),
            (d_idx, k, pl),
        )
        against = np.where(heard_in, level_model.contrast_llr(contrast)[:, None], 0.0)
        llr -= against
        terms.append(("stand_contrast", -against))
    return Evidence(
        devices.astype(np.int32),
        llr,
        heard_at_stop,
        alongside_before,
        level,
        level_llr,
        cell_tx,
        confident,
        tuple(terms),
        None if by_bus.all() else by_bus,
        heard_late if heard_late.any() else None,
        level_share,
        served,
        alongside_far if alongside_far.any() else None,
    )


def _stand_contrast(
    full: npt.NDArray[np.bool_],
    standing: tuple[IntArray, IntArray, FloatArray],
    moving: tuple[IntArray, IntArray, FloatArray],
) -> FloatArray:
    """Per device the bus heard: how many dB louder it was while the bus stood at the stops
    it was heard all through than on the stretches next to them (NaN: fewer than
    ``STAND_CONTRAST_MIN_WINDOWS`` readings of either). ``full`` (device, stretch): heard in
    every part of the stretch; a stop is heard all through when the stretches before and
    after it are. ``standing`` and ``moving`` are (device row, stop or stretch, path loss)
    per reading: while the doors were open, and on the stretches (one per window there). A
    rider's interior stops count (not where they boarded or got off, the stretch before or
    after was not heard all through), as do a trailing car's between its first and last
    full stretch."""
    n_dev, n_str = full.shape
    through = np.zeros((n_dev, n_str), dtype=bool)  # (device, stop before the stretch)
    through[:, 1:] = full[:, :-1] & full[:, 1:]
    around = through.copy()  # (device, stretch): next to a stop heard all through
    around[:, :-1] |= through[:, 1:]
    row, stop, stand_pl = standing
    kept = through[row, stop]
    at_stop = _cell_medians(row[kept], stand_pl[kept], n_dev, STAND_CONTRAST_MIN_WINDOWS)
    row, stretch, move_pl = moving
    kept = around[row, stretch]
    driving = _cell_medians(row[kept], move_pl[kept], n_dev, STAND_CONTRAST_MIN_WINDOWS)
    return driving - at_stop  # path loss: more of it is quieter


def _door_windows(visits: Sequence[StopVisit], left: IntArray) -> tuple[IntArray, IntArray]:
    """Per call, when people could board through its doors (start, end; ms): its door spell
    where the bus reported one (a spell not yet closed ends as the bus left, ``left``), else
    from its arrival until ``DOORS_CLOSE_BEFORE_DEPARTURE_MS`` before it left: also on a bus
    that reports its doors, as a door event may be lost. Ends are kept no later than the
    next call's start, so the windows stay in order."""
    start = np.array([v.arrival if v.doors is None else v.doors[0] for v in visits], dtype=np.int64)
    end = np.array(
        [
            left[k] - DOORS_CLOSE_BEFORE_DEPARTURE_MS
            if v.doors is None
            else (left[k] if v.doors[1] is None else v.doors[1])
            for k, v in enumerate(visits)
        ],
        dtype=np.int64,
    )
    start = np.maximum.accumulate(start)
    end[:-1] = np.minimum(end[:-1], start[1:])
    return start, end


def _served(journey: Journey, n_str: int) -> npt.NDArray[np.bool_]:
    """Per stretch: whether the doors may have opened at the stop before it. Not where the
    bus reported no door spell and stood no longer than ``DOORS_CLOSE_BEFORE_DEPARTURE_MS``
    between its arrival and departure events (no door window is left, ``_door_windows``):
    it ran through a stop nobody asked for, standing a few seconds or not at all. Served
    are a call with a door spell, one derived from GNSS positions, one that came of a single
    stop event (the other lost: its length says nothing), the journey's first and its
    newest (the bus may stand there now, or a terminus's departure event may come at once).
    A call without a door spell on a bus that reports its doors is not taken as shut by
    that alone: a spell can fail to match a call whose stop events came late."""
    out = np.ones(n_str, dtype=bool)
    newest = len(journey.visits) - 1
    for k, v in enumerate(journey.visits[:n_str]):
        if k in (0, newest) or v.derived or v.departure is None or v.doors is not None:
            continue
        if v.departure == v.arrival:
            continue  # one stop event of the two
        out[k] = v.departure - v.arrival > DOORS_CLOSE_BEFORE_DEPARTURE_MS
    return out


def _came_in_at(
    heard_at_stop: npt.NDArray[np.bool_], alongside_before: npt.NDArray[np.bool_]
) -> npt.NDArray[np.bool_]:
    """(device, stretch): came in through the doors at the stop before the stretch: heard
    there while they were open, and not along the stretch before it (``Evidence``)."""
    return heard_at_stop & ~alongside_before


def _boarded_riders(
    full: npt.NDArray[np.bool_], boarded: npt.NDArray[np.bool_]
) -> npt.NDArray[np.bool_]:
    """(device, stretch): riders beyond doubt, who calibrate the bus (``learn_levels``): heard
    through every part of this stretch and the one before it, and of every stretch since
    they boarded at a stop where they were heard while the doors were open and not heard
    along the way to it (``boarded``). A car trailing the bus is heard through whole
    stretches too, but it did not come in through the doors: left out, it cannot pull the
    riders' level down to its own."""
    run = np.zeros_like(full)
    on = np.zeros(full.shape[0], dtype=bool)
    for s in range(full.shape[1]):
        on = (on | boarded[:, s]) & full[:, s]
        run[:, s] = on
    out = np.zeros_like(run)
    out[:, 1:] = run[:, 1:] & run[:, :-1]
    return out


def _heard_approaching(
    phone: PhoneObservations, a: int, b: int, journey: Journey, n_str: int
) -> tuple[npt.NDArray[np.int32], IntArray]:
    """(device, stop) pairs of phones that heard the bus in the ``PHONE_APPROACH_MS`` before
    it arrived at the stop before a stretch, and had not come with it in a vehicle (their
    seconds ``phone.t[a:b]``): someone waiting there. A phone enters the beacon region as
    the bus comes into earshot, so the burst of one that ranges only on entering is often
    over before the doors open; the bus's own scanner hears a waiting phone at the stop.
    A phone came in a vehicle (a car beside the bus) if its motion activity said
    ``automotive`` from ``ARRIVED_IN_VEHICLE_MS`` before the arrival through it, as in
    ``phone_terms``; a spell that only touches the arrival is a waiting rider's read on the
    phone's own clock, which may run up to a minute ahead of the bus's.
    (What any device was heard while the bus stood there counts in ``stretch_evidence``.)"""
    t, dev = phone.t[a:b], phone.device[a:b]
    pairs: set[tuple[int, int]] = set()
    for k, visit in enumerate(journey.visits[:n_str]):
        near = (t >= visit.arrival - PHONE_APPROACH_MS) & (t < visit.arrival)
        pairs.update((int(d), k) for d in np.unique(dev[near]).tolist())
    arrivals = [v.arrival for v in journey.visits[:n_str]]
    kept = [
        (d, k)
        for d, k in sorted(pairs)
        if not any(
            start <= arrivals[k] - ARRIVED_IN_VEHICLE_MS and arrivals[k] <= end
            for start, end in phone.in_vehicle.get(d, ())
        )
    ]
    return (
        np.array([d for d, _ in kept], dtype=np.int32),
        np.array([k for _, k in kept], dtype=np.int64),
    )


def _ranging_windows(
    phone: PhoneObservations, devices: npt.NDArray[np.int32], parts: Stretches, begin: int, end: int
) -> FloatArray:
    """(device, stretch, part): the seconds in which the device's phone heard any beacon."""
    n_dev, n_str = len(devices), len(parts.start)
    out = np.zeros((n_dev, n_str, PARTS_PER_STRETCH))
    lo, hi = np.searchsorted(phone.listen_t, [begin, end])
    t, dev = phone.listen_t[lo:hi], phone.listen_device[lo:hi]
    rows = np.searchsorted(devices, dev)
    known = (rows < n_dev) & (devices[np.minimum(rows, n_dev - 1)] == dev)
    t, rows = t[known], rows[known]
    k = np.searchsorted(parts.start, t, side="right") - 1
    inside = (k >= 0) & (t < parts.end[np.clip(k, 0, None)])
    t, rows, k = t[inside], rows[inside], k[inside]
    # A second heard of two beacons (two buses) is one second of ranging.
    key = np.unique(rows.astype(np.int64) * (1 << 42) + (t - begin))
    rows, t = key >> 42, (key & ((1 << 42) - 1)) + begin
    k = np.searchsorted(parts.start, t, side="right") - 1
    length = np.maximum(parts.end - parts.start, 1)
    part = np.minimum((t - parts.start[k]) * PARTS_PER_STRETCH // length[k], PARTS_PER_STRETCH - 1)
    np.add.at(out, (rows, k, part), 1.0)
    return out


def _ranging_stays(
    phone: PhoneObservations, devices: npt.NDArray[np.int32], parts: Stretches, window_ms: int
) -> FloatArray:
    """(device, stretch, part): the windows of the phone's ranging stays in each part."""
    out = np.zeros((len(devices), len(parts.start), PARTS_PER_STRETCH))
    length = parts.end - parts.start
    for row, device in enumerate(devices.tolist()):
        stays = phone.ranging.get(device)
        if not stays:
            continue
        for p in range(PARTS_PER_STRETCH):
            part = Stretches(
                parts.start + length * p // PARTS_PER_STRETCH,
                parts.start + length * (p + 1) // PARTS_PER_STRETCH,
                parts.partial,
            )
            out[row, :, p] = _overlap_ms(stays, part) // window_ms
    return out


def _overlap_ms(spells: Sequence[tuple[int, int]], parts: Stretches) -> IntArray:
    """Per stretch, the milliseconds it shares with ``spells``."""
    total = np.zeros(len(parts.start), dtype=np.int64)
    for a, b in spells:
        total += np.maximum(0, np.minimum(parts.end, b) - np.maximum(parts.start, a))
    return total


def _last_left(journey: Journey, parts: Stretches) -> int:
    """When the bus left the last call its stretches reach (its arrival there while the
    departure is not known, and the data's end for a partial last stretch)."""
    n = len(parts.start)
    last = journey.visits[n] if not parts.partial and n < len(journey.visits) else None
    if last is None or last.departure is None:
        return int(parts.end[-1])
    return last.departure


def _rode_off_with(
    driving: Sequence[tuple[int, int]] | None,
    burst: int,
    end: int,
    parts: Stretches,
    moved_off: int,
    last_left: int,
) -> bool:
    r"""Whether a phone whose burst at ``burst`` heard the bus long before it left (stretch
    ``moved_off`` the first after the burst: a layover, a long hold) rode off with it all
    the same: its motion activity turned ``automotive`` as the bus moved off
    (``MOTION_ONSET_WINDOW_MS``) *and* its stay in the region, which ``end``\ s, ended while
    the bus stood at a later stop (``EXIT_AT_STOP_SLACK_MS``): it got off there. Each alone
    also happens to someone who rode off on another bus leaving with this one, or who heard
    this one lay over and then rode another; a stay still open says neither yet."""
    if end == _NEVER or not driving:
        return False
    onset = next((start for start, _ in driving if start >= burst), None)
    earliest, latest = MOTION_ONSET_WINDOW_MS
    left = int(parts.start[moved_off])
    if onset is None or not left + earliest <= onset <= left + latest:
        return False
    return _left_at_a_stop(end, parts, moved_off, last_left)


def _left_at_a_stop(end: int, parts: Stretches, moved_off: int, last_left: int) -> bool:
    """Whether a stay ending at ``end`` ended while the bus stood at a stop after stretch
    ``moved_off`` began, give or take ``EXIT_AT_STOP_SLACK_MS``."""
    n = len(parts.start)
    # A partial last stretch ends at the data's end, not at a stop; the bus stood at the
    # last call of all until ``last_left`` (its departure is no stretch's start).
    for k in range(moved_off, n - 1 if parts.partial else n):
        leaves = parts.start[k + 1] if k + 1 < n else last_left
        if parts.end[k] - EXIT_AT_STOP_SLACK_MS <= end <= leaves + EXIT_AT_STOP_SLACK_MS:
            return True
    return False


def _waited_at(
    driving: Sequence[tuple[int, int]],
    first: int,
    parts: Stretches,
    doors: tuple[IntArray, IntArray],
) -> int | None:
    """The stop (index of the stretch after it) at which a phone whose burst began at
    ``first``, after the doors there had closed, waited and rode off all the same: its clock
    ran ahead by at least ``first`` minus the doors' closing, and at most
    ``PHONE_CLOCK_SLACK_MS``. It waited if it was still as its burst began (on its own
    clock, as both times are) and rode off if, read on the bus's clock with that least
    offset taken off, its motion said ``automotive`` for most of the stretch after the stop.
    The latest such stop is taken (it needs the smallest offset); None if there is none, or
    if the burst began while the doors of a stop were open (heard there, on any clock)."""
    if any(a <= first < b for a, b in driving):
        return None  # already moving: it came in a vehicle
    opened, shut = doors
    at = int(np.searchsorted(opened, first, side="right")) - 1
    if at >= 0 and first < shut[at]:
        return None
    for stop in range(at, -1, -1):
        ahead = first - int(shut[stop])
        if ahead >= PHONE_CLOCK_SLACK_MS:
            break
        stretch = Stretches(
            parts.start[stop : stop + 1] + ahead, parts.end[stop : stop + 1] + ahead, False
        )
        if 2 * int(_overlap_ms(driving, stretch)[0]) > int(parts.end[stop] - parts.start[stop]):
            return stop
    return None


def phone_terms(
    phone: PhoneObservations,
    devices: npt.NDArray[np.int32],
    by_bus: npt.NDArray[np.bool_],
    listening: npt.NDArray[np.bool_],
    parts: Stretches,
    arrivals: IntArray,
    doors: tuple[IntArray, IntArray],
    level_model: LevelModel,
    data_end: int,
    last_left: int,
) -> tuple[FloatArray, npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
    """(device, stretch): the nats for "in" from what a phone said besides its beacon
    seconds (``REGION_*``, ``ON_FOOT_LLR``):

    - on foot (walking, cycling) for most of a stretch: against;
    - out of the beacon region for most of a stretch: against (no bibo bus was near). A
      stay in the region ends ``REGION_EXIT_DELAY_MS`` before its exit event, and a phone
      that reported none is never out;
    - a stretch mostly inside a stay in which the phone heard this bus, which it did not
      range through (a phone that ranges only in a burst on entering the region), and
      which it spent ``automotive`` (or, without activity, after hearing this bus close by:
      median path loss on the "in" side of ``level_model``): for, by the stretch's length.
      A stay vouches so only for a bus that left within ``BURST_TO_DEPARTURE_MS`` of the
      burst (or of the stop it waited at on a clock running ahead, ``_waited_at``), or
      that the phone rode off with and got off at a stop of (``_rode_off_with``; the bus
      stood at the last call the stretches reach until ``last_left``). A phone that heard
      another bus as it waited (``OTHER_BUS_LOOKBACK_MS``) and has left the region vouches
      only if it left while this bus stood at a stop (``_left_at_a_stop``); one whose burst
      heard other buses only vouches for a bus it heard earlier in that wait as for a burst
      before a layover. A stay still open is known only to ``REGION_EXIT_DELAY_MS`` before
      ``data_end`` (the newest data): the stretch under way counts for that much of it.

    Also returns (device, stretch): the phone was in a vehicle (``automotive``) from
    ``ARRIVED_IN_VEHICLE_MS`` before the bus arrived at the stop before the stretch until
    it left: it came in a car or another bus and did not wait there, so boarding there is
    as unlikely as for a device heard alongside (``decode``); and (device, stretch): the
    phone waited at the stop before the stretch and rode off from it, its burst read on a
    clock running ahead (``_waited_at``): it counts as heard at that stop.
    """
    out = np.zeros((len(devices), len(parts.start)))
    arrived = np.zeros((len(devices), len(parts.start)), dtype=bool)
    waited = np.zeros((len(devices), len(parts.start)), dtype=bool)
    length = (parts.end - parts.start).astype(np.float64)
    approach = int(arrivals[0]) - PHONE_APPROACH_MS
    before = Stretches(arrivals - ARRIVED_IN_VEHICLE_MS, parts.start, parts.partial)
    for row, device in enumerate(devices.tolist()):
        foot = phone.on_foot.get(device)
        if foot:
            out[row] -= np.where(2 * _overlap_ms(foot, parts) > length, ON_FOOT_LLR, 0.0)
        stays = [
            (enter, exit_ - REGION_EXIT_DELAY_MS if exit_ != _NEVER else _NEVER)
            for enter, exit_ in phone.stays.get(device, ())
        ]
        if not stays:
            continue
        inside = _overlap_ms(stays, parts)
        out[row] -= np.where(2 * inside < length, REGION_COVER_MAX_LLR, 0.0)
        if by_bus[row]:
            continue
        heard = phone.device == device
        heard_t, heard_rssi = phone.t[heard], phone.rssi[heard]
        driving = phone.in_vehicle.get(device)
        in_a_vehicle = np.zeros(len(length), dtype=bool)
        if driving:
            in_a_vehicle = 2 * _overlap_ms(driving, parts) > length
            arrived[row] = _overlap_ms(driving, before) >= before.end - before.start
        # Seconds heard before the bus approached the journey's first stop belong to its
        # journey before (and a rebuild from this journey on does not read them).
        all_heard_t = heard_t
        this_journey = heard_t >= approach
        heard_t, heard_rssi = heard_t[this_journey], heard_rssi[this_journey]
        for enter, end in stays:
            in_stay = (heard_t >= enter) & (heard_t <= end + REGION_EXIT_DELAY_MS)
            # A stay in which the phone heard no second of this bus, of a phone that heard
            # this one earlier in its wait (it left the region and entered it again as
            # another bus came) and was in no vehicle since: it vouches from its entry as a
            # burst before a layover does, if the phone rode off with this bus and left the
            # region at one of its stops (``_rode_off_with``).
            earlier = not in_stay.any() and bool(driving) and end != _NEVER
            if earlier:
                # Heard as this bus approached or stood at the stop it then left.
                k = int(np.searchsorted(parts.start, enter, side="left"))
                if k == len(parts.start):
                    continue
                waiting_from = max(
                    int(arrivals[k]) - PHONE_APPROACH_MS, enter - OTHER_BUS_LOOKBACK_MS
                )
                in_stay = (heard_t >= waiting_from) & (heard_t < enter)
                if in_stay.any():
                    since_heard = int(heard_t[in_stay][0])
                    if any(a < enter and b > since_heard for a, b in driving or ()):
                        continue  # it came in a vehicle (rode this bus, or another) since
            # A stay near other buses, or this one heard too briefly to tell how near (a
            # phone in a vehicle vouches by its motion, not by this bus's level).
            if not in_stay.any() or (not driving and in_stay.sum() < MIN_WINDOWS_FOR_PATH_LOSS):
                continue
            # Heard close by, or in a vehicle while this bus drove (whether it boarded this
            # bus rather than drove beside it is the boarding's question).
            loss = DEFAULT_TX_POWER_DBM - float(np.median(heard_rssi[in_stay]))
            close = level_model.llr(np.array([loss]))[0] > 0
            first, last = int(heard_t[in_stay][0]), int(heard_t[in_stay][-1])
            if earlier:
                first = last = enter  # what follows is read from its entry on
            # Only the bus heard as it stood at (or pulled in to) the phone's stop and left
            # it soon after: a burst says which bus was near then, not which one the phone
            # later rode.
            leaving = np.flatnonzero(parts.start >= first)
            stop = None
            if (
                driving
                and not earlier
                and not any(a == enter for a, _ in phone.ranging.get(device, ()))
            ):
                stop = _waited_at(driving, first, parts, doors)
            if stop is not None:
                waited[row, stop] = True
                moved_off = stop
            elif leaving.size:
                moved_off = int(leaving[0])
            else:
                continue
            long_before = earlier or parts.start[moved_off] > last + BURST_TO_DEPARTURE_MS
            if long_before and not _rode_off_with(driving, first, end, parts, moved_off, last_left):
                continue
            # A phone that heard another bus while it waited may have ridden that one: its
            # stay vouches for this bus only if it ended while this bus stood at a stop.
            if end != _NEVER and not _left_at_a_stop(end, parts, moved_off, last_left):
                since, left = first - OTHER_BUS_LOOKBACK_MS, int(parts.start[moved_off])
                mine = int(((all_heard_t >= since) & (all_heard_t <= left)).sum())
                lo = int(np.searchsorted(phone.listen_t, since, side="left"))
                hi = int(np.searchsorted(phone.listen_t, left, side="right"))
                if int((phone.listen_device[lo:hi] == device).sum()) > mine:
                    continue
            # A stay still open is known only to ``REGION_EXIT_DELAY_MS`` before the newest
            # data: a phone that left the region since has not said so yet (a bystander the
            # bus left behind at the stop still seems to be in it for that long).
            known = end if end != _NEVER else data_end - REGION_EXIT_DELAY_MS
            in_part = (np.minimum(parts.end, known) - parts.start).astype(np.float64)
            # Most of the stretch in the stay, not all of it: the exit is read on the phone's
            # clock too, and a rider whose clock runs behind seems to leave before the stop.
            # The stretch under way counts for as long as an open stay is known in it.
            mostly_in = 2 * in_part > length
            span = length.copy()
            if parts.partial and end == _NEVER:
                mostly_in[-1] = in_part[-1] > 0
                span[-1] = in_part[-1]
            covered = (parts.start >= first) & mostly_in & ~listening[row]
            covered &= in_a_vehicle if driving else close
            out[row, covered] += np.minimum(
                REGION_COVER_MAX_LLR, REGION_COVER_NATS_PER_MIN * span[covered] / 60_000
            )
    return out, arrived & ~by_bus[:, None], waited


@dataclass(frozen=True, slots=True)
class Levels:
    """What the relative model learnt about a bus's levels (see ``learn_levels``)."""

    reference: float
    """The typical rider's tx-corrected level (dBm; NaN: too few riders to say)."""
    tx_weight: float
    tx_centre: float
    riders: int

    def relative(self, evidence: Evidence) -> FloatArray:
        """Each cell's tx-corrected level against the reference (dB; NaN where unknown)."""
        level = np.where(
            np.isfinite(evidence.tx),
            evidence.level - self.tx_weight * (evidence.tx - self.tx_centre),
            evidence.level,
        )
        return np.asarray(level - self.reference, dtype=np.float64)


def learn_levels(pool: Sequence[Evidence], quantile: float) -> Levels:
    """Learn a bus's levels from the confident rider cells of a few journeys.

    The tx byte is a hint on an unknown convention (a per-model table, a calibrated RSSI at
    1 m, a power level: each meant to follow what the phone radiates) and may be missing for
    every phone. Among the riders that report it, the least-squares slope of their level
    (less their stretch's median) on their tx says how much a dB of tx is worth here; it is
    shrunk towards 1 (the byte means what it says) by ``TX_WEIGHT_PRIOR_CELLS`` and kept
    within 0..1. The reference is the ``quantile`` of the riders' tx-corrected levels (the
    riders are those who came in through the doors, ``_boarded_riders``: a car trailing the
    bus from where it pulled away, heard like a rider, does not pull even a low quantile
    down to its own level); with fewer than ``MIN_REFERENCE_CELLS`` rider cells it is NaN,
    and the absolute path loss speaks only as ``with_levels`` lets it. It follows the bus's
    receiver gain and the phones' conventions, and pooling journeys keeps a quiet
    journey's few riders from deciding alone.
    """
    levels: list[FloatArray] = []
    txs: list[FloatArray] = []
    centred: list[FloatArray] = []
    for e in pool:
        c = e.confident
        if not c.any():
            continue
        level = e.level
        medians = np.array(
            [np.median(level[c[:, s], s]) if c[:, s].any() else np.nan for s in range(c.shape[1])]
        )
        levels.append(level[c])
        txs.append(e.tx[c])
        centred.append((level - medians[None, :])[c])
    if not levels:
        return Levels(float("nan"), 0.0, 0.0, 0)
    level, tx, y = np.concatenate(levels), np.concatenate(txs), np.concatenate(centred)
    has_tx = np.isfinite(tx)
    weight, centre = 0.0, 0.0
    n = int(has_tx.sum())
    if n:
        x, yy = tx[has_tx], y[has_tx]
        slope = 1.0
        var = float(np.var(x))
        if n >= 2 and var > 0:
            slope = float(np.mean((x - x.mean()) * (yy - yy.mean()))) / var
            slope = min(1.0, max(0.0, slope))
        weight = (n * slope + TX_WEIGHT_PRIOR_CELLS) / (n + TX_WEIGHT_PRIOR_CELLS)
        centre = float(np.median(x))
    corrected = np.where(has_tx, level - weight * (tx - centre), level)
    if corrected.size < MIN_REFERENCE_CELLS:
        return Levels(float("nan"), round(weight, 6), centre, int(corrected.size))
    return Levels(
        float(np.quantile(corrected, quantile)), round(weight, 6), centre, int(corrected.size)
    )


def with_levels(evidence: Evidence, levels: Levels, level_model: LevelModel) -> Evidence:
    """The evidence with the bus's own levels applied (unchanged in the absolute model).

    The bus's riders set bounds on what the tx-calibrated path loss may say (``relative_llr``
    is what they say: negative for a device more than ``margin_db`` below them):
    - a device the path loss counts against is excused that loss as far as it is about as
      loud as the riders (a quiet phone in a bag, a bus whose receiver is deaf, a phone
      whose tx byte is on another convention): the level term is at least the negative
      side of ``relative_llr``;
    - with ``level_veto``, a device more than ``margin_db`` below them gains nothing from the
      path loss (a tx byte read on the wrong convention makes a car behind the bus sound
      near); about as loud as them or louder, the path loss says what it says.
    The learnt levels never add evidence beyond the path loss's, so the absolute model still
    decides among loud devices. The riders are those who came in through the doors
    (``_boarded_riders``): a car that trails the bus from where it pulled away does not set
    the reference, though one heard behind it while the doors were open at a stop and
    through the stretches after counts as boarded there.

    The riders model (``level_model.riders``) instead replaces the path loss's nats of every
    device the bus heard by what its level against the riders' median says
    (``LevelModel.rider_llr``). In either, a phone that only heard the bus's beacon keeps its
    path loss: its level is of the other link.

    Either way the bus's levels speak for the share of a stretch the path loss does
    (``Evidence.level_share``). A bus without a reference yet (fewer than
    ``MIN_REFERENCE_CELLS`` rider cells on the pooled journeys) keeps the path loss of a
    device from the stop it came in at through the doors (heard there while they were open,
    not alongside on the way there), and lets it count only against a device on the
    stretches before that, or that never did: an absolute level is one receiver's and one
    tx convention's reading, and alone it would charge a car that fell in behind a bus
    nobody rides yet. Once the bus has a reference, its riders' levels bound the path loss
    instead, for every device (applied there as well, the rule cost the training worlds'
    F1 more than it saved bystanders: ``bibo evaluate --worlds`` with it changed by hand
    printed a training median 0.9580 against 0.9600 and a worst 0.8992 against 0.9072, the
    worst bystanders 1.47 against 1.62 per 1,000).
    """
    if not level_model.learns_levels:
        return evidence
    by_bus = (
        np.ones(len(evidence.devices), dtype=bool) if evidence.by_bus is None else evidence.by_bus
    )
    if not np.isfinite(levels.reference):
        # No riders of its own yet to read a level against: an absolute level is one
        # receiver's and one tx convention's reading. It still speaks for a device that came
        # in through the doors (heard at a stop while they were open, not alongside on the
        # way there), but for one that never did (a car that fell in behind the bus as it
        # pulled away) only against.
        came_in = np.logical_or.accumulate(
            _came_in_at(evidence.heard_at_stop, evidence.alongside_before), axis=1
        )
        capped = by_bus[:, None] & ~came_in
        level = np.where(capped, np.minimum(evidence.level_llr, 0.0), evidence.level_llr)
        return _with_bus_levels(evidence, level - evidence.level_llr)
    share = 1.0 if evidence.level_share is None else evidence.level_share
    # Read against the riders only the levels of the link they were learnt on.
    relative = np.where(by_bus[:, None], levels.relative(evidence), np.nan)
    if level_model.riders:
        read = np.isfinite(relative)
        level = np.where(read, level_model.rider_llr(relative) * share, evidence.level_llr)
        return _with_bus_levels(evidence, level - evidence.level_llr)
    bus_says = level_model.relative_llr(relative) * share
    floor = np.minimum(bus_says, 0.0)
    level = np.maximum(evidence.level_llr, floor)
    if level_model.level_veto:
        # Below the riders the path loss may not count for "in"; about as loud as them or
        # louder it says what it says.
        level = np.where(bus_says < 0, np.minimum(level, 0.0), level)
    return _with_bus_levels(
        evidence, np.where(np.isfinite(relative), level - evidence.level_llr, 0.0)
    )


def _with_bus_levels(evidence: Evidence, change: FloatArray) -> Evidence:
    """The evidence with ``change`` added to its nats as the ``bus_levels`` term."""
    return dataclasses.replace(
        evidence, llr=evidence.llr + change, terms=(*evidence.terms, ("bus_levels", change))
    )


def _cell_medians(
    cell: IntArray,
    values: FloatArray,
    n_cells: int,
    min_windows: int = MIN_WINDOWS_FOR_PATH_LOSS,
) -> FloatArray:
    """The median of ``values`` per cell index (NaN for cells with fewer than
    ``min_windows`` values)."""
    out = np.full(n_cells, np.nan)
    if cell.size == 0:
        return out
    order = np.lexsort((values, cell))
    cell_sorted, values_sorted = cell[order], values[order]
    bounds = np.flatnonzero(np.r_[True, cell_sorted[1:] != cell_sorted[:-1], True])
    starts, stops = bounds[:-1], bounds[1:]
    enough = stops - starts >= min_windows
    out[cell_sorted[starts][enough]] = values_sorted[(starts + stops)[enough] // 2]
    return out


_BEFORE, _IN, _AFTER = 0, 1, 2
"""The decoder's states: not yet boarded, on board, alighted."""


def decode(
    llr: FloatArray,
    heard_at_stop: npt.NDArray[np.bool_],
    alongside_before: npt.NDArray[np.bool_],
    heard_late: npt.NDArray[np.bool_] | None = None,
    served: npt.NDArray[np.bool_] | None = None,
    alongside_far: npt.NDArray[np.bool_] | None = None,
) -> tuple[npt.NDArray[np.bool_], FloatArray]:
    """Viterbi path (True = in) and posterior P(in) per (device, stretch).

    Three states: not yet boarded, in, alighted. The chain starts before boarding. At the
    stop before stretch s a device boards with ``P_BOARD_HEARD`` if it was heard while the
    bus stood there (people board through open doors, and are heard waiting and stepping
    in), else with ``P_BOARD_UNHEARD``, and ``BOARD_AFTER_ALONGSIDE`` times that when it was
    heard along the stretch before the stop (``alongside_before``: a car or a bike beside
    the bus, not someone waiting at the stop), ``BOARD_AFTER_FAR`` times that again when it
    was heard from the far end of a long one (``alongside_far``, per (device, stretch)); a
    rider alights with ``P_ALIGHT`` and does not
    board the same journey again (nobody outruns their bus), so a rider heard poorly for a
    few stretches stays one ride instead of several. Emissions are log-likelihood ratios
    (in vs out; both out states have 0). With ``heard_late`` a rider alights before a
    stretch it was heard late in (``Evidence.heard_late``) only with
    ``P_ALIGHT_HEARD_LATE`` times ``P_ALIGHT``. With ``served`` (per stretch, ``_served``)
    boarding and alighting at a stop where the doors cannot have opened are ``P_DOORS_SHUT``
    times as likely.
    """
    n_dev, n_str = llr.shape
    board = np.where(heard_at_stop, P_BOARD_HEARD, P_BOARD_UNHEARD)  # (dev, str)
    # Being heard alongside is evidence about the boarding, not a change of the prior: it
    # weighs only the boarding transition.
    log_board = np.log(board) + np.where(alongside_before, np.log(BOARD_AFTER_ALONGSIDE), 0.0)
    if alongside_far is not None:
        log_board = log_board + np.where(alongside_far, np.log(BOARD_AFTER_FAR), 0.0)
    # log_t[d, s, from, to]: the transition into stretch s (before, in, after).
    log_t = np.full((n_dev, n_str, 3, 3), -np.inf)
    log_t[:, :, _BEFORE, _BEFORE] = np.log1p(-board)
    log_t[:, :, _BEFORE, _IN] = log_board
    log_t[:, :, _IN, _IN] = np.log1p(-P_ALIGHT)
    log_t[:, :, _IN, _AFTER] = np.log(P_ALIGHT)
    if heard_late is not None:
        log_t[:, :, _IN, _AFTER] += np.where(heard_late, np.log(P_ALIGHT_HEARD_LATE), 0.0)
    if served is not None:
        shut = np.where(served, 0.0, np.log(P_DOORS_SHUT))[None, :]
        log_t[:, :, _BEFORE, _IN] += shut
        log_t[:, :, _IN, _AFTER] += shut
    log_t[:, :, _AFTER, _AFTER] = 0.0
    zero = np.zeros_like(llr)
    emis = np.stack([zero, llr, zero], axis=2)  # (dev, str, state)
    start = log_t[:, 0, _BEFORE, :] + emis[:, 0]  # every journey starts before boarding

    score = start
    back = np.zeros((n_dev, n_str, 3), dtype=np.int8)
    for s in range(1, n_str):
        cand = score[:, :, None] + log_t[:, s]  # (dev, from, to)
        back[:, s] = np.argmax(cand, axis=1)
        score = cand.max(axis=1) + emis[:, s]
    path = np.zeros((n_dev, n_str), dtype=np.int8)
    path[:, -1] = np.argmax(score, axis=1)
    for s in range(n_str - 1, 0, -1):
        path[:, s - 1] = back[np.arange(n_dev), s, path[:, s]]

    fwd = np.zeros((n_dev, n_str, 3))
    fwd[:, 0] = start
    for s in range(1, n_str):
        fwd[:, s] = _logsumexp(fwd[:, s - 1][:, :, None] + log_t[:, s], axis=1) + emis[:, s]
    bwd = np.zeros((n_dev, n_str, 3))
    for s in range(n_str - 2, -1, -1):
        bwd[:, s] = _logsumexp(log_t[:, s + 1] + (emis[:, s + 1] + bwd[:, s + 1])[:, None, :], 2)
    joint = fwd + bwd
    posterior = np.exp(joint[:, :, _IN] - _logsumexp(joint, axis=2))
    return path == _IN, np.asarray(posterior, dtype=np.float64)


def decode_rides(
    evidence: Evidence, rows: slice = slice(None)
) -> tuple[npt.NDArray[np.bool_], FloatArray]:
    """``decode`` of evidence ``rows``: whether a device rode, and how sure the model is of
    each stretch (the posterior), are decided without ``heard_late``; where it boarded and
    alighted with it.

    A device still heard long after the bus left a stop did not get off there: it rode on,
    or it is a car that kept following the bus. Knowing that moves a rider's alighting to
    where they did get off; it is not let decide whether they rode, which would charge the
    last stretches of a quiet rider (one the level speaks against) to their whole ride. The
    posterior stays the plain chain's: a stretch the rider is kept on for having been heard
    late in it, but that the plain chain doubted, keeps its doubt (the confidence, the
    "still on board?" question)."""
    far = None if evidence.alongside_far is None else evidence.alongside_far[rows]
    plain = decode(
        evidence.llr[rows],
        evidence.heard_at_stop[rows],
        evidence.alongside_before[rows],
        None,
        evidence.served,
        far,
    )
    if evidence.heard_late is None:
        return plain
    # Devices decode independently: only those that rode and were heard late somewhere
    # can decode otherwise.
    heard_late = evidence.heard_late[rows]
    again = np.flatnonzero(plain[0].any(axis=1) & heard_late.any(axis=1))
    if not again.size:
        return plain
    late, _ = decode(
        evidence.llr[rows][again],
        evidence.heard_at_stop[rows][again],
        evidence.alongside_before[rows][again],
        heard_late[again],
        evidence.served,
        None if far is None else far[again],
    )
    path = plain[0].copy()
    rode = late.any(axis=1)
    path[again[rode]] = late[rode]
    return path, plain[1]


def _logsumexp(x: FloatArray, axis: int) -> FloatArray:
    top = x.max(axis=axis, keepdims=True)
    top = np.where(np.isfinite(top), top, 0.0)
    out = top + np.log(np.exp(x - top).sum(axis=axis, keepdims=True))
    return np.asarray(np.squeeze(out, axis=axis), dtype=np.float64)


def _runs(on: npt.NDArray[np.bool_]) -> list[tuple[int, int]]:
    """Maximal runs ``(first, last)`` of in-vehicle stretches."""
    padded = np.r_[False, on, False].astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return [(int(a), int(b) - 1) for a, b in zip(edges[::2], edges[1::2], strict=True)]


def trip_id(vehicle_id: str, journey_id: str, device_id: str, board_time: int) -> str:
    """Deterministic, so re-reconciling the same data yields the same ids."""
    digest = hashlib.sha256(f"{vehicle_id}|{journey_id}|{device_id}|{board_time}".encode())
    return "trp_" + digest.hexdigest()[:20]


def journey_trips(
    journey: Journey,
    parts: Stretches,
    evidence: Evidence,
    obs: VehicleObservations,
    device_ids: Sequence[str],
) -> list[DetectedTrip]:
    """Decode one journey's evidence into its trips."""
    if len(evidence.devices) == 0:
        return []
    path, posterior = decode_rides(evidence)
    n_str = len(parts.start)
    trips: list[DetectedTrip] = []
    for row, device in enumerate(evidence.devices):
        for first, last in _runs(path[row]):
            board = journey.visits[first]
            board_time = board.departure if board.departure is not None else board.arrival
            still_riding = parts.partial and last == n_str - 1
            if still_riding:
                alight = journey.visits[-1]
                alight_time = obs.data_end_ms
            else:
                alight = journey.visits[last + 1]
                alight_time = alight.arrival
            # Decided on the data up to a silence after the bus left the stop that a rider
            # heard as often as this one was on the way would hardly keep (at least 45 s, and
            # longer than the longest the rider kept on the way): the stretch under way says
            # "out" by then, or the rider rides on. The silence runs from the last time the
            # bus heard the device, which may be after it left (a rider still on board).
            left = alight.departure if alight.departure is not None else alight.arrival
            silence = (
                None  # (a rider still riding is not decided)
                if still_riding
                else silence_needed(
                    obs, int(device), int(parts.start[first]), int(parts.end[last]), rare=True
                )
            )
            # A phone that has reported leaving the beacon region since said so itself. One
            # that said it was in a vehicle all along from the arrival until after its exit
            # may have lost the beacons riding on (in a bag, a crowd): its exit counts once it
            # has stayed out longer than it ever did on this ride before coming back
            # (SILENCE_GAP_FACTOR times).
            silence_ms = CLOSE_AFTER_SILENCE_MS if silence is None else silence
            phone = obs.phone
            exit_at = None if phone is None else phone.last_exit(int(device))
            if phone is not None and exit_at is not None and exit_at >= alight.arrival:
                decided_at = left + silence_ms
                if phone.in_vehicle_through(int(device), alight.arrival, exit_at):
                    away = phone.longest_away(int(device), int(parts.start[first]))
                    decided_at = max(decided_at, exit_at + int(SILENCE_GAP_FACTOR * away))
                exited = obs.data_end_ms >= decided_at
            else:
                decided_at = heard_since(obs, int(device), left) + silence_ms
                exited = False
            # A bus still standing at the stop (its departure not yet known) may keep the
            # rider: nothing is decided before it leaves, or has stood there too long for
            # anyone to sit through (switched off at the terminus, no event or fix since).
            # A phone that left the beacon region while the bus stood there has left it, and
            # so has a rider beyond doubt (LEFT_SETTLES_FROM_CONFIDENCE, their least on-board
            # posterior up to there) the bus no longer hears while it stands there, for
            # longer than their phone was ever silent on the way in.
            standing = (
                not journey.complete
                and alight.departure is None
                and obs.data_end_ms < alight.arrival + STANDING_DECIDES_AFTER_MS
                and not exited
                and not (
                    posterior[row, first : last + 1].min() >= LEFT_SETTLES_FROM_CONFIDENCE
                    and walked_away(obs, int(device), parts, last, alight.arrival)
                )
            )
            # The stretch since must put the rider off the bus with confidence
            # (CLOSE_MAX_IN_PROB); a doubt holds the be-out for STANDING_DECIDES_AFTER_MS.
            after = last + 1 < n_str and posterior[row, last + 1] > CLOSE_MAX_IN_PROB
            doubt = after and obs.data_end_ms < left + STANDING_DECIDES_AFTER_MS
            # A rider seen by a phone's reports: what it heard up to then must be in, or the
            # stretch since is judged without its seconds (PHONE_SILENCE_DECIDES_AFTER_MS).
            waiting = (
                phone is not None
                and phone.behind(int(device), decided_at)
                and obs.data_end_ms < left + PHONE_SILENCE_DECIDES_AFTER_MS
            )
            # A phone that said it was in a vehicle from before the bus reached the stop until
            # well after it left (STILL_IN_VEHICLE_AFTER_MS) rode on, whatever its silence:
            # held as long as for a phone that has not reported.
            riding_on = (
                phone is not None
                and phone.in_vehicle_through(
                    int(device), alight.arrival, left + STILL_IN_VEHICLE_AFTER_MS
                )
                and obs.data_end_ms < left + PHONE_SILENCE_DECIDES_AFTER_MS
            )
            closed = (
                not still_riding
                and not standing
                and (
                    journey.complete
                    or (
                        obs.data_end_ms >= decided_at
                        and not doubt
                        and not waiting
                        and not riding_on
                    )
                )
            )
            device_id = device_ids[int(device)]
            trips.append(
                DetectedTrip(
                    trip_id=trip_id(obs.vehicle_id, journey.journey_id, device_id, board_time),
                    device_id=device_id,
                    vehicle_id=obs.vehicle_id,
                    journey_id=journey.journey_id,
                    line=journey.line,
                    board_stop_id=board.stop_id,
                    board_time=board_time,
                    alight_stop_id=alight.stop_id,
                    alight_time=alight_time,
                    confidence=round(float(posterior[row, first : last + 1].min()), 4),
                    stops_travelled=last - first + 1,
                    score=round(float(evidence.llr[row, first : last + 1].sum()), 3),
                    status="closed" if closed else "open",
                    alight_known_at=min(decided_at, obs.data_end_ms) if closed else None,
                )
            )
    return trips


def silence_needed(
    obs: VehicleObservations, device: int, start: int, end: int, rare: bool = False
) -> int | None:
    """How long (ms) the bus must not hear ``device`` before it is off: a phone heard at the
    rate it was from ``start`` to ``end`` (its ride) would keep silent that long with at most
    ``STANDING_SILENCE_PROB``, never less than ``CLOSE_AFTER_SILENCE_MS`` and never less
    than ``SILENCE_GAP_FACTOR`` times the longest silence it kept on that ride
    (``longest_silence``: a phone heard in bursts, in a bag or a crowd, is silent far longer
    than its rate says). Where the bus heard it in fewer than ``STANDING_MIN_RATE`` of the
    windows its rate tells no silence: None, or with ``rare`` the floor and its gaps alone
    (a be-out after the bus left; a phone's own reports have rules of their own). Learnt
    from the device itself, so a phone, a carry or a scanner that is heard less often waits
    longer, and one heard every second no longer than the floor."""
    times = _bus_times(obs, device, start, end)
    windows = max(1, -(-(end - start) // obs.window_ms))
    rate = min(times.size / windows, 1.0 - 1e-9)
    if rate < STANDING_MIN_RATE and not rare:
        return None
    needed = 0
    if rate >= STANDING_MIN_RATE:
        needed = int(np.ceil(np.log(STANDING_SILENCE_PROB) / np.log1p(-rate))) * obs.window_ms
    gaps = SILENCE_GAP_FACTOR * longest_silence(obs, device, start, end)
    return int(min(max(needed, CLOSE_AFTER_SILENCE_MS, gaps), STANDING_DECIDES_AFTER_MS))


def _bus_times(obs: VehicleObservations, device: int, start: int, end: int) -> IntArray:
    """The windows from ``start`` to ``end`` in which the bus heard ``device``."""
    lo, hi = np.searchsorted(obs.t, [start, end])
    return np.asarray(obs.t[lo:hi][obs.device[lo:hi] == device], dtype=np.int64)


def _heard_times(obs: VehicleObservations, device: int, start: int, end: int) -> IntArray:
    """The windows from ``start`` to ``end`` in which the bus heard ``device`` or its phone
    heard the bus's beacon, in order."""
    times = _bus_times(obs, device, start, end)
    phone = obs.phone
    if phone is not None:
        a, b = np.searchsorted(phone.t, [start, end])
        times = np.sort(np.concatenate([times, phone.t[a:b][phone.device[a:b] == device]]))
    return np.asarray(times, dtype=np.int64)


def longest_silence(obs: VehicleObservations, device: int, start: int, end: int) -> int:
    """The longest time (ms) from ``start`` to ``end`` between two windows in which the bus
    heard ``device``, or its phone heard the bus within one stay in the beacon region (0
    if none): a phone ranges while it is in the region, so a silence across an exit and a
    new entry is not one it kept while listening."""
    times = _bus_times(obs, device, start, end)
    longest = int(np.diff(times).max()) if times.size > 1 else 0
    phone = obs.phone
    if phone is not None and device in phone.stays:
        a, b = np.searchsorted(phone.t, [start, end])
        heard = phone.t[a:b][phone.device[a:b] == device]
        entered = np.array([enter for enter, _ in phone.stays[device]], dtype=np.int64)
        stay = np.searchsorted(entered, heard, side="right")
        same = stay[1:] == stay[:-1]
        if same.any():
            longest = max(longest, int(np.diff(heard)[same].max()))
    return longest


def heard_since(obs: VehicleObservations, device: int, since: int) -> int:
    """The end of the newest window after ``since``, and at most
    ``STANDING_DECIDES_AFTER_MS`` after it, in which the bus heard ``device``, or its phone
    the bus (``since`` if none)."""
    until = min(obs.data_end_ms, since + STANDING_DECIDES_AFTER_MS)
    times = _heard_times(obs, device, since + 1, until + 1)
    return int(times[-1]) + obs.window_ms if times.size else since


def walked_away(
    obs: VehicleObservations, device: int, parts: Stretches, last: int, arrival: int
) -> bool:
    """Whether the bus, standing at the stop it arrived at ``arrival`` after stretch ``last``,
    has not heard ``device`` for so long that a rider still on board would have been heard
    (``STANDING_SILENCE_PROB``) at the rate the bus heard it on that stretch, and for at
    least ``CLOSE_AFTER_SILENCE_MS``: it got off and walked out of range.

    Only the bus's own hearing counts (a phone's reports arrive late, and one that ranges in
    bursts says nothing in between); one heard on that stretch too rarely to tell is not. A
    silence in which the bus heard nobody else either (the last rider off at a terminus, the
    bus laying over) may be a stalled scanner: the onboard agent restarts one that hears
    nothing (``SCANNER_RESTART_MS``), after which a rider still on board would be heard
    again, so such a silence counts once it outlasts that restart as well."""
    needed = silence_needed(obs, device, int(parts.start[last]), int(parts.end[last]))
    if needed is None:
        return False
    times = obs.t[obs.device == device]
    # (Every sighting is before the data end: ``VehicleObservations``.)
    since = max(arrival, int(times[-1]) + obs.window_ms) if times.size else arrival
    silent = obs.data_end_ms - since
    if silent < needed:
        return False
    lo, hi = np.searchsorted(obs.t, [since, obs.data_end_ms], side="right")
    return bool((obs.device[lo:hi] != device).any()) or silent >= needed + SCANNER_RESTART_MS


def reconcile_vehicle(
    events: Iterable[EventRecord],
    obs: VehicleObservations,
    device_ids: Sequence[str],
    level_model: LevelModel = DEFAULT_LEVEL,
    stops: StopIndex | None = None,
) -> list[DetectedTrip]:
    """The trips ridden on one vehicle in one service day (before cross-vehicle conflicts)."""
    journeys = journeys_from_events(obs.vehicle_id, events, stops, obs.data_end_ms)
    return reconcile_journeys(journeys, obs, device_ids, level_model)


def reconcile_journeys(
    journeys: Sequence[Journey],
    obs: VehicleObservations,
    device_ids: Sequence[str],
    level_model: LevelModel = DEFAULT_LEVEL,
    context: int = 0,
) -> list[DetectedTrip]:
    """The trips ridden on these journeys of one vehicle, by boarding time.

    The first ``context`` journeys only calibrate: each journey's levels are learnt from its
    own riders and those of the ``LEVEL_POOL_JOURNEYS`` journeys before it (``learn_levels``),
    so a rebuild of the newest journeys passes the ones before them as context and decides
    exactly as a rebuild of the whole day.
    """
    trips: list[DetectedTrip] = []
    for i, parts, decided in decided_evidence(journeys, obs, level_model, context):
        trips.extend(journey_trips(journeys[i], parts, decided, obs, device_ids))
    return sorted(trips, key=lambda t: (t.board_time, t.device_id))


def decided_evidence(
    journeys: Sequence[Journey], obs: VehicleObservations, level_model: LevelModel, context: int
) -> Iterable[tuple[int, Stretches, Evidence]]:
    """Each journey from ``context`` on, with its stretches and the evidence it is decoded
    on (``reconcile_journeys``)."""
    parts = [stretches(j, obs.data_end_ms) for j in journeys]
    # The absolute model needs no context: its journeys decide alone.
    scored = range(0 if level_model.learns_levels else context, len(journeys))
    evidence = {i: stretch_evidence(journeys[i], obs, parts[i], level_model) for i in scored}
    for i in range(context, len(journeys)):
        decided = evidence[i]
        if level_model.learns_levels:
            pool = [evidence[k] for k in range(max(0, i - LEVEL_POOL_JOURNEYS), i + 1)]
            levels = learn_levels(pool, level_model.level_quantile)
            decided = with_levels(decided, levels, level_model)
        yield i, parts[i], decided


EVIDENCE_TERMS: Final = {
    "hearing": "how it was heard along the stretch (in every part, at a rider's rate)",
    "path_loss": "how loud it was (path loss calibrated by the advertised tx power)",
    "phone": "the phone's own side (beacon region stays, on foot, in a vehicle)",
    "stand_contrast": "louder while the bus stood at its stops than as it drove",
    "bus_levels": "against the levels of this bus's own riders; with none yet, a short path "
    "loss not counted for a device that never came in through the doors",
    "journey": "the rest of the journey: boarding and alighting odds and the other stretches",
}
"""The features a trip's confidence is explained by (``explain_trip``), each with what it
weighs; all but ``journey`` are ``Evidence.terms``."""

_LOGIT_EDGE: Final = 1e-15
"""A posterior this close to 0 or 1 is taken as that far from it when turned into log-odds
(floats round 1 - 1e-17 to 1, whose log-odds are infinite)."""


@dataclass(frozen=True, slots=True)
class Explanation:
    """Why a trip got its confidence: the confidence is P(in) on its least certain stretch,
    and its log-odds there are the stretch's evidence by feature plus what the rest of the
    journey says (``journey``); the terms add up to ``log_odds``, whose logistic is
    ``confidence``."""

    stretch: int
    """The least certain stretch of the ride (index in the journey; from visit ``stretch``
    to visit ``stretch + 1``)."""
    confidence: float
    terms: tuple[tuple[str, float], ...]
    """(``EVIDENCE_TERMS`` name, nats for "on board"), in that table's order; the features
    that did not apply are left out."""
    stretch_llr: float
    """The evidence of the least certain stretch (``Evidence.llr``): its features add up to
    it."""

    @property
    def log_odds(self) -> float:
        return sum(v for _, v in self.terms)


def explain_confidence(evidence: Evidence, row: int, first: int, last: int) -> Explanation:
    """The explanation of the confidence of the ride on stretches ``first..last`` of
    evidence row ``row`` (as ``journey_trips`` computes it: the least P(in) over them).

    Pure and decision-free: it decodes the device's row alone, which the HMM does anyway
    (devices are independent), and splits the log-odds of P(in) at the least certain
    stretch s as ``llr[s]`` (its features) plus the rest: the forward-backward odds of "in"
    at s without s's own emission, which no feature of s changes."""
    _, posterior = decode_rides(evidence, slice(row, row + 1))
    weakest = first + int(np.argmin(posterior[0, first : last + 1]))
    p = float(posterior[0, weakest])
    edge = min(max(p, _LOGIT_EDGE), 1 - _LOGIT_EDGE)
    log_odds = float(np.log(edge) - np.log1p(-edge))
    by_name = {name: float(values[row, weakest]) for name, values in evidence.terms}
    terms = [(n, by_name[n]) for n in EVIDENCE_TERMS if n in by_name]
    # The features add up to llr[s] (up to the last bits of a float sum); the journey term
    # is the rest of the log-odds, so all terms add up to them as shown.
    terms.append(("journey", log_odds - sum(v for _, v in terms)))
    return Explanation(weakest, p, tuple(terms), float(evidence.llr[row, weakest]))


def explain_trip(
    journeys: Sequence[Journey],
    obs: VehicleObservations,
    device_ids: Sequence[str],
    device_id: str,
    board_time: int,
    level_model: LevelModel = DEFAULT_LEVEL,
    context: int = 0,
) -> Explanation | None:
    """The explanation of the trip of ``device_id`` boarded at ``board_time`` among these
    journeys (decided as ``reconcile_journeys`` decides them, the first ``context`` only
    calibrating); None if these data no longer make that trip."""
    device = device_ids.index(device_id) if device_id in device_ids else -1
    for i, _parts, evidence in decided_evidence(journeys, obs, level_model, context):
        rows = np.flatnonzero(evidence.devices == device)
        if not rows.size:
            continue
        row = int(rows[0])
        path, _ = decode_rides(evidence, slice(row, row + 1))
        for first, last in _runs(path[0]):
            board = journeys[i].visits[first]
            boarded = board.departure if board.departure is not None else board.arrival
            if boarded == board_time:
                return explain_confidence(evidence, row, first, last)
    return None


def rebuild_from(journeys: Sequence[Journey], since: int) -> int:
    """From which data time a vehicle-day's trips must be rebuilt once its data changed from
    ``since`` on (0: all of it): the start of the first journey not settled before then.

    A journey is settled when it ended before ``since`` and the next journey started before
    it too (so it was already known to be over): its trips depend only on its own stop
    visits and the sightings before its last stop, all of which came before ``since``.
    Trips are boarded at or after their journey's first stop, so everything boarded from
    the returned time on is rebuilt and nothing before it changes.
    """
    if since <= 0:
        return 0
    for k, journey in enumerate(journeys):
        last = journey.visits[-1]
        end = last.departure if last.departure is not None else last.arrival
        following = journeys[k + 1].visits[0].arrival if k + 1 < len(journeys) else None
        if end >= since or following is None or following >= since:
            return min(journey.visits[0].arrival, since)
    return since


def calibrating_journeys(level_model: LevelModel = DEFAULT_LEVEL) -> int:
    """How many journeys before the first one rebuilt a rebuild must score as well: those
    the level model learns the rebuilt journeys' levels from (none for the absolute one)."""
    return LEVEL_POOL_JOURNEYS if level_model.learns_levels else 0


@dataclass(frozen=True, slots=True)
class RebuildPlan:
    """What a rebuild of a vehicle-day after a change of its data covers."""

    start: int
    """Trips boarded from this data time on are rebuilt (``rebuild_from``)."""
    first: int
    """Index of the first journey rebuilt."""
    context_from: int
    """Index of the first journey scored: those from here to ``first`` only calibrate."""
    read_from: int
    """Sightings from this data time on are needed."""


def rebuild_plan(
    journeys: Sequence[Journey], since: int, level_model: LevelModel = DEFAULT_LEVEL
) -> RebuildPlan:
    """The rebuild of ``journeys`` (a vehicle-day) once its data changed from ``since`` on
    (0: all of it); pass ``journeys[context_from:]`` and ``context=first - context_from`` to
    ``reconcile_journeys``."""
    start = rebuild_from(journeys, since)
    first = next((i for i, j in enumerate(journeys) if j.visits[0].arrival >= start), len(journeys))
    context_from = max(0, first - calibrating_journeys(level_model))
    # The sightings from the first journey read on (its doors may have opened before its
    # arrival event came).
    read_from = start
    if context_from < len(journeys):
        read_from = min(start, journeys[context_from].first_seen)
    return RebuildPlan(start, first, context_from, read_from)


def conflict_losers(trips: Iterable[DetectedTrip]) -> set[str]:
    """Trip ids that overlap a more likely trip of the same device on another vehicle.

    A device rides one vehicle at a time. Of overlapping trips the one with the larger
    evidence score wins; ties go to the smaller trip id, so the result does not depend on
    the order trips are given in.
    """
    by_device: dict[str, list[DetectedTrip]] = defaultdict(list)
    for trip in trips:
        by_device[trip.device_id].append(trip)
    losers: set[str] = set()
    for device_trips in by_device.values():
        kept: list[DetectedTrip] = []
        for trip in sorted(device_trips, key=lambda t: (-t.score, t.trip_id)):
            if any(
                trip.board_time < other.alight_time and other.board_time < trip.alight_time
                for other in kept
            ):
                losers.add(trip.trip_id)
            else:
                kept.append(trip)
    return losers


def transfer_chains(
    trips: Iterable[DetectedTrip], walkable: Callable[[str, str], bool]
) -> dict[str, str]:
    """Join a device's trips into journeys: a trip boarded soon after the previous one
    alighted, at the same stop or one a short walk away (a hub), continues its journey.

    Returns the chain id (the first trip's id) of every trip; fares treat a chain as one
    journey with changes of vehicle.
    """
    by_device: dict[str, list[DetectedTrip]] = defaultdict(list)
    for trip in trips:
        by_device[trip.device_id].append(trip)
    chain: dict[str, str] = {}
    for device_trips in by_device.values():
        previous: DetectedTrip | None = None
        for trip in sorted(device_trips, key=lambda t: (t.board_time, t.trip_id)):
            joined = (
                previous is not None
                and 0 <= trip.board_time - previous.alight_time <= MAX_TRANSFER_WAIT_MS
                and walkable(previous.alight_stop_id, trip.board_stop_id)
            )
            chain[trip.trip_id] = chain[previous.trip_id] if joined and previous else trip.trip_id
            previous = trip
    return chain


def reconcile(
    events_by_vehicle: dict[str, list[EventRecord]],
    observations: Sequence[VehicleObservations],
    device_ids: Sequence[str],
) -> list[DetectedTrip]:
    """All trips of a service day across vehicles, with conflicts removed."""
    trips: list[DetectedTrip] = []
    for obs in observations:
        trips.extend(reconcile_vehicle(events_by_vehicle.get(obs.vehicle_id, []), obs, device_ids))
    losers = conflict_losers(trips)
    kept = [t for t in trips if t.trip_id not in losers]
    return sorted(kept, key=lambda t: (t.board_time, t.vehicle_id, t.device_id))
