"""The simulated iPhones: phones that hear the bus beacon and upload what they heard.

iOS lets an app advertise no service data, so an iPhone (``DayPlan.iphones``) sends no BLE
payload; the bus advertises its beacon and the phone listens (docs/contracts.md, Bus
beacon and Phone sightings upload). The model is deliberately simple:

- **Reciprocity.** Every second in which a bus would have heard the phone's advert is a
  second in which the phone hears that bus's beacon, through the same bodies, walls and
  distances, at the RSSI the bus measured shifted by what the beacon radiates
  (``BEACON_TX_DBM``, a typical phone's) against what this phone does
  (``beacon_offsets_db``) (``simulator.day.vehicle_slots`` takes those rows out of
  the vehicle upload and hands them here). iOS ranging reports one reading per beacon and
  second, so ``n`` is 1 and ``rssi`` the second's strongest.
- **Region.** The deployment's proximity UUID is one region shared by every bus. The phone
  enters it a drawn ``REGION_ENTER_DELAY_MS`` after the first beacon heard while outside,
  and leaves it when no beacon was heard for a drawn ``REGION_EXIT_SILENCE_MS`` (about
  30 s on iOS), at the last beacon plus that silence: changing from one bus to another
  within it is neither exit nor entry.
- **Ranging.** A phone with background location (``background_location_share``) reports
  every second it hears a beacon from its region entry on; one without reports only the
  seconds within ``RANGING_BURST_MS`` after each entry (iOS wakes the app for a moment).
- **Beacon ids** are the bus's ``(major, minor)`` of the interval of the *phone's* clock
  (true time plus ``clock_skew_ms``); every time uploaded is a phone clock time.
- **Activity** is the person's motion as Core Motion would report it, a drawn
  ``ACTIVITY_LAG_MS`` late: ``automotive`` riding a bus once it moves off the boarding stop
  (not while it stands there) or in a car, ``cycling`` on a bike,
  ``walking`` walking past or away from a stop, ``stationary`` waiting or in between.
- **Uploads** are sealed ``PHONE_EXIT_UPLOAD_MS`` after each region exit and
  ``RANGING_BURST_MS`` after each entry (iOS wakes the app for both: a phone that ranges
  in bursts sends its burst, one that ranges on says it is back near a bus, so a region
  exit it reported does not stand alone for a minute), every ``PHONE_LIVE_UPLOAD_MS`` in
  which a phone that ranges in the background heard a bus, and at the end of each
  ``PHONE_UPLOAD_PERIOD_MS`` of the phone's clock that holds any other data, as
  ``simulator.phone.PhoneOutbox.seal`` writes them (tests compare the two).

A bus's beacon key derives from its upload secret; a recording's buses have the
deterministic secrets of :func:`vehicle_secret` (``Recording.vehicle_secrets``). Replaying
into a backend that issued other secrets re-keys the beacons (:func:`rekey_body`).
"""

from __future__ import annotations

import hashlib
import json
import uuid
import zlib
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from typing import Final

import numpy as np
import numpy.typing as npt

from onboard import wire
from simulator.bystanders import EpisodeKind
from simulator.const import (
    ACTIVITY_LAG_MS,
    BEACON_TX_DBM,
    PHONE_EXIT_UPLOAD_MS,
    PHONE_LIVE_UPLOAD_MS,
    PHONE_UPLOAD_PERIOD_MS,
    RANGING_BURST_MS,
    REGION_ENTER_DELAY_MS,
    REGION_EXIT_SILENCE_MS,
)
from simulator.day import DayPlan, has_background_location
from simulator.phone import PHONE_BATCH_MAX_ROWS, batch_body
from simulator.world import World

IntArray = npt.NDArray[np.int64]

_PHONE_SALT: Final = 0x1F0E
"""Separates the iPhones' draws (delays, lags) from every other random stream."""

_ACTIVITY_OF: Final[Mapping[EpisodeKind, str]] = {
    EpisodeKind.WAIT_BOARD: "stationary",
    EpisodeKind.RIDE: "automotive",
    EpisodeKind.LEAVE: "walking",
    EpisodeKind.STOP_WAIT: "stationary",
    EpisodeKind.HUB_WAIT: "stationary",
    EpisodeKind.WALK_PAST: "walking",
    EpisodeKind.ALONGSIDE_CAR: "automotive",
    EpisodeKind.ALONGSIDE_BIKE: "cycling",
    EpisodeKind.TRAILING_CAR: "automotive",
    EpisodeKind.BUS_BESIDE: "automotive",
    EpisodeKind.BUNCHED: "automotive",
}
"""What Core Motion says during an episode of each kind (riders of the bus beside or behind
sit in a bus of their own)."""

_PRIORITY: Final = {"stationary": 0, "walking": 1, "cycling": 2, "automotive": 3}
"""Where spans overlap (waiting at a stop while another bus passes), the stronger motion."""


def vehicle_secret(vehicle_id: str) -> bytes:
    """The deterministic 32-byte upload secret of a simulated bus (its beacon key derives
    from it, docs/contracts.md, Bus beacon)."""
    return hashlib.sha256(f"bibo-sim-vehicle|{vehicle_id}".encode()).digest()


def beacon_offsets_db(plan: DayPlan, world: World) -> npt.NDArray[np.float64]:
    """Per person index: how much louder the bus beacon is than the person's own phone
    (``BEACON_TX_DBM`` less what the phone radiates in ``world``). The link is reciprocal,
    the transmitters are not: the bus hears a phone at its own power, the phone hears the
    beacon at the beacon's."""
    return np.array(
        [BEACON_TX_DBM - world.radiated_dbm(p.phone, p.person_id) for p in plan.persons],
        dtype=np.float64,
    )


def heard_seconds(
    plan: DayPlan,
    chunks: Sequence[tuple[IntArray, IntArray, IntArray]],
    offsets_db: npt.NDArray[np.float64] | None = None,
) -> tuple[IntArray, IntArray, IntArray]:
    """One bus's ``beacon_heard`` columns (``simulator.day.vehicle_slots``) per phone and
    second of the phone's clock: (person index, second start ms, strongest RSSI), sorted
    by person and second; ``offsets_db`` (``beacon_offsets_db``) turns the bus's reading
    of the phone into the phone's reading of the beacon."""
    empty = np.zeros(0, dtype=np.int64)
    if not chunks:
        return empty, empty, empty
    t = np.concatenate([c[0] for c in chunks])
    person = np.concatenate([c[1] for c in chunks]).astype(np.int64)
    rssi = np.concatenate([c[2] for c in chunks])
    if offsets_db is not None:
        rssi = np.round(rssi + offsets_db[person]).astype(rssi.dtype)
    skew = np.array([plan.persons[i].phone.clock_skew_ms for i in range(len(plan.persons))])
    phone_t = t + skew[person]
    second = phone_t - phone_t % 1000
    order = np.lexsort((second, person))
    person, second, rssi = person[order], second[order], rssi[order]
    new = np.ones(person.size, dtype=bool)
    new[1:] = (person[1:] != person[:-1]) | (second[1:] != second[:-1])
    starts = np.flatnonzero(new)
    return person[starts], second[starts], np.maximum.reduceat(rssi, starts)


class _BeaconIds:
    """The buses' ``(major, minor)`` per interval, computed once."""

    def __init__(self, secrets: Mapping[str, bytes]) -> None:
        self._keys = {vid: wire.beacon_key(secret) for vid, secret in secrets.items()}
        self._cache: dict[tuple[str, int], tuple[int, int]] = {}

    def get(self, vehicle_id: str, interval: int) -> tuple[int, int]:
        key = (vehicle_id, interval)
        hit = self._cache.get(key)
        if hit is None:
            hit = self._cache[key] = wire.beacon_for_interval(self._keys[vehicle_id], interval)
        return hit


def _activity(plan: DayPlan) -> dict[str, list[tuple[int, int, str]]]:
    """Per iPhone person: (start, end, activity) spans of true time, unordered. A rider's
    phone says ``automotive`` once the bus moves off the boarding stop, not while it stands
    there with the doors open (Core Motion tells the activity from motion)."""
    spans: dict[str, list[tuple[int, int, str]]] = defaultdict(list)
    for trip in plan.trips:
        if trip.person_id in plan.iphones:
            departure = plan.journey_of(trip).calls[trip.board_index].departure_ms
            moves = max(trip.board_time, departure)
            spans[trip.person_id].append((moves, trip.alight_time, "automotive"))
    for vid in plan.vehicle_ids:
        for ep in plan.episodes.get(vid, ()):
            if ep.person_id in plan.iphones and ep.kind != EpisodeKind.RIDE:  # rides: above
                spans[ep.person_id].append((ep.start_ms, ep.end_ms, _ACTIVITY_OF[ep.kind]))
    return spans


def _changes(spans: Sequence[tuple[int, int, str]]) -> list[tuple[int, str]]:
    """The activity from each change on (true time): the strongest motion of the spans
    covering it, ``stationary`` between and after them."""
    bounds = sorted({b for s, e, _ in spans for b in (s, e)})
    out: list[tuple[int, str]] = []
    for lo, hi in zip(bounds, [*bounds[1:], bounds[-1] + 1], strict=True):
        covering = [a for s, e, a in spans if s <= lo and hi <= e and s < e]
        kind = max(covering, key=_PRIORITY.__getitem__) if covering else "stationary"
        if not out or out[-1][1] != kind:
            out.append((lo, kind))
    return out


def _rng(seed: int, person_id: str) -> np.random.Generator:
    return np.random.default_rng(
        np.random.SeedSequence([seed, _PHONE_SALT, zlib.crc32(person_id.encode())])
    )


def phone_bodies(
    plan: DayPlan,
    heard: Sequence[tuple[str, tuple[IntArray, IntArray, IntArray]]],
    device_ids: Mapping[str, str],
    tag: str,
    seed: int,
    secrets: Mapping[str, bytes] | None = None,
) -> Iterator[bytes]:
    """Every iPhone's upload bodies (docs/contracts.md, Phone sightings upload), phone by
    phone in plan order, each phone's in upload order.

    ``heard`` holds per bus its :func:`heard_seconds`; ``device_ids`` maps person to
    backend device id; ``tag`` names the recording (batch ids derive from it); ``seed``
    drives the delays and lags; ``secrets`` are the buses' upload secrets (default
    :func:`vehicle_secret`).
    """
    vids = [vid for vid, _ in heard]
    ids = _BeaconIds(secrets or {vid: vehicle_secret(vid) for vid in vids})
    cols = [c for _, c in heard]
    person = np.concatenate([c[0] for c in cols]) if cols else np.zeros(0, dtype=np.int64)
    second = np.concatenate([c[1] for c in cols]) if cols else np.zeros(0, dtype=np.int64)
    rssi = np.concatenate([c[2] for c in cols]) if cols else np.zeros(0, dtype=np.int64)
    vehicle = np.concatenate(
        [np.full(c[0].size, k, dtype=np.int64) for k, c in enumerate(cols)]
        or [np.zeros(0, dtype=np.int64)]
    )
    order = np.lexsort((vehicle, second, person))
    person, second, rssi, vehicle = person[order], second[order], rssi[order], vehicle[order]
    bounds = np.searchsorted(person, np.arange(len(plan.persons) + 1))
    activity = _activity(plan)
    for index, p in enumerate(plan.persons):
        lo, hi = int(bounds[index]), int(bounds[index + 1])
        if p.person_id not in plan.iphones or lo == hi:
            continue
        yield from _one_phone(
            p.person_id,
            device_ids[p.person_id],
            second[lo:hi],
            rssi[lo:hi],
            [vids[int(k)] for k in vehicle[lo:hi]],
            has_background_location(plan.config, plan.seed, p.person_id),
            activity.get(p.person_id, []),
            p.phone.clock_skew_ms,
            ids,
            _rng(seed, p.person_id),
            tag,
        )


def _one_phone(
    person_id: str,
    device_id: str,
    second: IntArray,
    rssi: IntArray,
    vehicles: Sequence[str],
    continuous: bool,
    spans: Sequence[tuple[int, int, str]],
    skew_ms: int,
    ids: _BeaconIds,
    rng: np.random.Generator,
    tag: str,
) -> Iterator[bytes]:
    """One phone's bodies from its heard seconds (phone clock, sorted, per bus)."""
    secs = np.unique(second)
    silence = rng.integers(REGION_EXIT_SILENCE_MS[0], REGION_EXIT_SILENCE_MS[1] + 1, secs.size)
    # A region ends after the last second before a silence longer than its exit delay.
    ends = np.append(np.diff(secs) > silence[:-1], True)
    first = np.concatenate([[True], ends[:-1]])
    enter = secs[first] + rng.integers(
        REGION_ENTER_DELAY_MS[0], REGION_ENTER_DELAY_MS[1] + 1, int(first.sum())
    )
    leave = secs[ends] + silence[ends]
    region = np.cumsum(first)[np.searchsorted(secs, second)] - 1
    ranged = second >= enter[region]
    if not continuous:
        ranged &= second < enter[region] + RANGING_BURST_MS
    events: list[tuple[int, str, str]] = [(int(t), "region", "enter") for t in enter]
    events += [(int(t), "region", "exit") for t in leave]
    changes = _changes(spans) if spans else []
    lags = rng.integers(ACTIVITY_LAG_MS[0], ACTIVITY_LAG_MS[1] + 1, len(changes))
    last = 0
    for (t, kind), lag in zip(changes, lags.tolist(), strict=True):
        last = max(t + skew_ms + lag, last + 1)
        events.append((last, "activity", kind))
    events.sort()
    keep = np.flatnonzero(ranged)
    # A bus advertises the id of the interval its own clock is in; the phone stamps what it
    # heard with its clock, ``skew_ms`` ahead.
    rows = sorted(  # as the outbox keeps them: by second, then beacon
        (
            int(second[k]),
            *ids.get(vehicles[k], wire.interval_of(int(second[k]) - skew_ms)),
            int(rssi[k]),
        )
        for k in keep.tolist()
    )
    # The app uploads when iOS wakes it on leaving the region (the ride is over: be-out
    # should not wait), and at most every period otherwise.
    # A phone that ranges in the background runs anyway and uploads every
    # PHONE_LIVE_UPLOAD_MS it heard something (the rider's ticket should not wait); one
    # that ranges in bursts uploads its burst before iOS suspends the app again. Either
    # uploads on entering the region: the backend takes a reported exit as the phone's
    # last word until an entry comes.
    period = PHONE_LIVE_UPLOAD_MS if continuous else PHONE_UPLOAD_PERIOD_MS
    seals = sorted(
        {(t // period + 1) * period for t, *_ in rows}
        | {(t // PHONE_UPLOAD_PERIOD_MS + 1) * PHONE_UPLOAD_PERIOD_MS for t, _, _ in events}
        | {int(t) + PHONE_EXIT_UPLOAD_MS for t in leave}
        | {int(t) + RANGING_BURST_MS for t in enter}
    )
    ri = ei = 0
    for sent_at in seals:
        r_end = ri
        while r_end < len(rows) and rows[r_end][0] + 1000 <= sent_at:  # seconds over
            r_end += 1
        e_end = ei
        while e_end < len(events) and events[e_end][0] < sent_at:
            e_end += 1
        part, evs = rows[ri:r_end], events[ei:e_end]
        ri, ei = r_end, e_end
        if not part and not evs:
            continue
        for chunk in range(max(1, -(-len(part) // PHONE_BATCH_MAX_ROWS))):
            sub = part[chunk * PHONE_BATCH_MAX_ROWS : (chunk + 1) * PHONE_BATCH_MAX_ROWS]
            batch_id = uuid.uuid5(uuid.NAMESPACE_URL, f"bibo-sim-phone:{tag}:{person_id}:{sent_at}")
            yield _body(
                device_id,
                f"{batch_id}" if chunk == 0 else f"{uuid.uuid5(batch_id, str(chunk))}",
                sent_at,
                sub,
                evs if chunk == 0 else [],
            )


def _body(
    device_id: str,
    batch_id: str,
    sent_at: int,
    rows: Sequence[tuple[int, int, int, int]],
    events: Sequence[tuple[int, str, str]],
) -> bytes:
    """The upload body exactly as ``PhoneOutbox.seal`` writes it (one reading a second)."""
    return batch_body(device_id, batch_id, sent_at, "ios", [(*r, 1) for r in rows], events)


def rekey_body(body: bytes, recorded: Mapping[str, bytes], secrets: Mapping[str, bytes]) -> bytes:
    """``body`` with every beacon id of a bus of ``recorded`` (vehicle id to the secret
    the recording used) replaced by the id the same bus advertises with its secret in
    ``secrets`` (the backend's), in the same interval; other ids stay. The body is written
    compact as recorded, so the same inputs give the same bytes (a replay sent twice is
    a duplicate)."""
    doc = json.loads(body)
    beacons = doc["beacons"]
    old, new = _BeaconIds(recorded), _BeaconIds(secrets)
    wanted = [vid for vid in recorded if vid in secrets]
    owners: dict[int, dict[tuple[int, int], str | None]] = {}

    def owner_of(interval: int) -> dict[tuple[int, int], str | None]:
        owner = owners.get(interval)
        if owner is None:
            owner = owners[interval] = {}
            for wanted_id in wanted:
                beacon = old.get(wanted_id, interval)
                owner[beacon] = None if beacon in owner else wanted_id
        return owner

    for k, t in enumerate(beacons["t"]):
        # The id is of the bus's interval, which the phone's clock may put one off.
        heard = (beacons["major"][k], beacons["minor"][k])
        for interval in (wire.interval_of(t) + d for d in (0, -1, 1)):
            vid = owner_of(interval).get(heard)
            if vid is not None:
                beacons["major"][k], beacons["minor"][k] = new.get(vid, interval)
                break
    return json.dumps(doc, separators=(",", ":")).encode()
