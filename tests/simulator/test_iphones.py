"""The simulated iPhones (simulator/iphones.py): they do not advertise, they hear the bus
beacon and upload what they heard as the contract says (docs/contracts.md, Bus beacon and
Phone sightings upload)."""

from __future__ import annotations

import dataclasses
import json
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import func, select

from backend.db import make_sessionmaker, transaction
from backend.models import BeaconSighting
from backend.trips.resolution import BeaconResolver
from onboard import wire
from simulator.const import ACTIVITY_LAG_MS, BEACON_TX_DBM, RANGING_BURST_MS
from simulator.day import DayPlan, has_background_location, plan_day
from simulator.iphones import beacon_offsets_db, heard_seconds, vehicle_secret
from simulator.network import Network
from simulator.phone import PhoneIdentity, PhoneOutbox
from simulator.recording import Recording, device_ids, recording_tag, write_recording
from simulator.replay import replay
from simulator.world import DEFAULT_WORLD
from tests.simulator.conftest import TINY, register_recording

IPHONES = dataclasses.replace(TINY, iphone_share=0.4)


def _record(plan: DayPlan, out: Path, recorder: str = "fast") -> Recording:
    write_recording(plan, out, name="iphones", description="", radio_seed=3, recorder=recorder)
    return Recording.open(out)


@pytest.fixture(scope="module")
def plan(network: Network) -> DayPlan:
    return plan_day(network, IPHONES, 7)


@pytest.fixture(scope="module")
def recording(plan: DayPlan, tmp_path_factory: pytest.TempPathFactory) -> Recording:
    return _record(plan, tmp_path_factory.mktemp("iphones"))


@pytest.fixture(scope="module")
def batches(recording: Recording) -> list[wire.PhoneBatch]:
    return [wire.PhoneBatch.model_validate_json(b) for b in recording.phone_batches()]


def _by_device(batches: list[wire.PhoneBatch]) -> dict[str, list[wire.PhoneBatch]]:
    out: dict[str, list[wire.PhoneBatch]] = defaultdict(list)
    for b in batches:
        out[b.device_id].append(b)
    return out


def _regions(batches: list[wire.PhoneBatch]) -> list[tuple[int, int]]:
    """[enter, exit) of each stay in the region, from one phone's batches."""
    events = sorted((e.t, e.type) for b in batches for e in b.regions)
    assert [kind for _, kind in events] == ["enter", "exit"] * (len(events) // 2)
    return [(events[k][0], events[k + 1][0]) for k in range(0, len(events), 2)]


def test_iphones_do_not_advertise_and_their_bodies_validate(plan, recording, batches):
    assert 0 < len(plan.iphones) < len(plan.persons)
    ids = device_ids(plan, recording_tag("iphones", plan.seed))
    keys = recording.device_keys()
    iphone_devices = {ids[p] for p in plan.iphones}
    uploaded: list[tuple[int, str]] = []
    for v in recording.vehicles:
        for body in recording.batches(v["vehicle_id"]):
            s = json.loads(body)["sightings"]
            uploaded += zip(s["t"], s["token"], strict=True)
    assert uploaded
    intervals = {wire.interval_of(t) + d for t, _ in uploaded for d in (-1, 0, 1)}
    tokens = {wire.token_for_interval(keys[d], i).hex() for d in iphone_devices for i in intervals}
    assert not {token for _, token in uploaded} & tokens, "an iPhone's token in a vehicle upload"
    assert batches, "no phone uploads"
    assert {b.device_id for b in batches} <= iphone_devices
    assert {b.platform for b in batches} == {"ios"}
    assert len({(b.device_id, b.batch_id) for b in batches}) == len(batches)
    assert recording.scenario["phones"]["batches"] == len(batches)


def test_regions_and_ranging(plan, recording, batches):
    ids = device_ids(plan, recording_tag("iphones", plan.seed))
    person_of = {d: p for p, d in ids.items()}
    kinds = set()
    for device, mine in _by_device(batches).items():
        regions = _regions(mine)
        assert regions, device
        continuous = has_background_location(plan.config, plan.seed, person_of[device])
        kinds.add(continuous)
        rows = [t for b in mine for t in b.beacons.t]
        assert rows == sorted(rows)
        for t in rows:
            stay = [(lo, hi) for lo, hi in regions if lo <= t < hi]
            assert stay, f"{device}: ranging at {t} outside the region"
            if not continuous:
                assert t < stay[0][0] + RANGING_BURST_MS, f"{device}: ranged after the burst"
        for lo, hi in regions:
            assert hi - lo >= 1_000, "an exit right after its entry"
        acts = [e for b in mine for e in b.activity]
        assert [a.t for a in acts] == sorted(a.t for a in acts)
    assert kinds == {True, False}, "expected phones with and without background location"


def test_a_rider_s_phone_is_automotive_only_once_the_bus_moves_off(plan, batches):
    # Core Motion tells the activity from motion: a phone on a bus that stands at the
    # boarding stop (a layover, a long dwell) says automotive only after it pulls away.
    ids = device_ids(plan, recording_tag("iphones", plan.seed))
    activity = {
        d: sorted((e.t, e.type) for b in mine for e in b.activity)
        for d, mine in _by_device(batches).items()
    }
    checked = 0
    for trip in plan.trips:
        changes = activity.get(ids[trip.person_id])
        if not changes:
            continue
        moves = plan.journey_of(trip).calls[trip.board_index].departure_ms
        skew = plan.person(trip.person_id).phone.clock_skew_ms
        ride = [(t - skew, kind) for t, kind in changes if kind == "automotive"]
        onset = [
            t
            for t, _ in ride
            if trip.board_time - ACTIVITY_LAG_MS[1] < t <= trip.alight_time + ACTIVITY_LAG_MS[1]
        ]
        assert onset, f"{trip.person_id}: no automotive while riding {trip.journey_id}"
        assert min(onset) >= min(moves, trip.alight_time) + ACTIVITY_LAG_MS[0] - 1
        checked += moves > trip.board_time + ACTIVITY_LAG_MS[1]
    assert checked, "no rider boarded a bus that stood on after the boarding"


def test_continuous_phones_range_every_second_heard_in_the_region(plan, tmp_path):
    """With every iPhone ranging in the background, each second the bus heard the phone
    (the same recording at iphone_share 0) is a ranged row once the phone is in the region."""
    cfg = dataclasses.replace(IPHONES, iphone_share=1.0, background_location_share=1.0)
    day = plan_day(plan.network, cfg, 7)
    rec = _record(day, tmp_path / "all")
    android = _record(plan_day(plan.network, TINY, 7), tmp_path / "none")
    keys = android.device_keys()
    skew = {
        d: day.person(p).phone.clock_skew_ms
        for p, d in device_ids(day, recording_tag("iphones", 7)).items()
    }
    heard: dict[str, set[int]] = defaultdict(set)
    for v in android.vehicles:
        for body in android.batches(v["vehicle_id"]):
            s = json.loads(body)["sightings"]
            for t, token in zip(s["t"], s["token"], strict=True):
                heard[token].add(t)
    by_token: dict[str, str] = {}
    for device, key in keys.items():
        for t in {t for ts in heard.values() for t in ts}:
            i = wire.interval_of(t + skew[device])
            by_token[wire.token_for_interval(key, i).hex()] = device
    windows: dict[str, set[int]] = defaultdict(set)  # phone clock, window starts
    for token, ts in heard.items():
        device = by_token[token]
        windows[device] |= {t + skew[device] for t in ts}
    batches = [wire.PhoneBatch.model_validate_json(b) for b in rec.phone_batches()]
    assert {v["batches"] for v in rec.vehicles} != set()
    for v in rec.vehicles:  # no phone advertises: the buses heard nobody
        for body in rec.batches(v["vehicle_id"]):
            assert json.loads(body)["sightings"]["t"] == []
    for device, mine in _by_device(batches).items():
        regions = _regions(mine)
        ranged = {t for b in mine for t in b.beacons.t}
        # A 1 s window of the bus's clock spans one or two seconds of the phone's.
        candidates = {w // 1000 * 1000 + d for w in windows[device] for d in (0, 1000)}
        assert ranged <= candidates, device
        for w in windows[device]:
            if any(lo + 1_000 <= w < hi - 1_000 for lo, hi in regions):
                assert ranged & {w // 1000 * 1000, w // 1000 * 1000 + 1000}, (device, w)
        assert len(ranged) >= len(windows[device]) - 12 * len(regions)


def test_beacons_resolve_to_the_bus_heard(plan, recording, batches):
    """The backend's resolver maps every ranged beacon to the bus that was there: the one
    whose episode with the phone covers the row's true time (phone clock less its skew)."""
    resolver = BeaconResolver(sorted(recording.vehicle_secrets().items()))
    ids = device_ids(plan, recording_tag("iphones", plan.seed))
    person_of = {d: p for p, d in ids.items()}
    near: dict[str, list[tuple[int, int, str]]] = defaultdict(list)
    for vid, episodes in plan.episodes.items():
        for ep in episodes:
            near[ep.person_id].append((ep.start_ms, ep.end_ms, vid))
    rows = 0
    for b in batches:
        person = person_of[b.device_id]
        skew = plan.person(person).phone.clock_skew_ms
        vehicles = resolver.resolve(b.beacons.t, b.beacons.major, b.beacons.minor)
        for t, vid in zip(b.beacons.t, vehicles, strict=True):
            true_t = t - skew
            assert vid is not None
            assert any(
                lo - 1_000 <= true_t < hi + 1_000 and v == vid for lo, hi, v in near[person]
            ), f"{b.device_id} at {t}: {vid} was not near"
            # The id is the one the bus advertised then: its interval on the bus's clock,
            # not the phone's (what lets the backend read the phone's clock off it).
            key = wire.beacon_key(vehicle_secret(vid))
            i = wire.interval_of(true_t)
            major, minor = wire.beacon_for_interval(key, i)
            assert (major, minor) in {
                (b.beacons.major[k], b.beacons.minor[k])
                for k in range(len(b.beacons))
                if b.beacons.t[k] == t
            }
            rows += 1
    assert rows > 100


def test_bodies_are_the_reference_clients(batches, tmp_path):
    """A body holds exactly what the reference phone's outbox seals from the same data."""
    batch = max(batches, key=lambda b: len(b.beacons) + len(b.regions) + len(b.activity))
    outbox = PhoneOutbox(
        tmp_path / "outbox.db",
        PhoneIdentity(batch.device_id, bytes(32), "ios"),
        new_batch_id=lambda: batch.batch_id,
    )
    try:
        s = batch.beacons
        for k in range(len(s)):
            assert outbox.hear(s.t[k], s.major[k], s.minor[k], s.rssi[k])
        for e in batch.regions:
            assert outbox.region(e.t, e.type)
        for a in batch.activity:
            assert outbox.activity(a.t, a.type)
        assert outbox.seal(batch.sent_at) == [batch.batch_id]
        (sealed,) = outbox.pending()
    finally:
        outbox.close()
    ours = json.loads(batch.model_dump_json())
    theirs = json.loads(sealed.body)
    # The outbox keeps events in arrival order, regions and activity apart: the same lists.
    assert theirs == ours


def test_same_seed_same_bytes_and_no_iphones_no_change(plan, recording, tmp_path):
    again = _record(plan, tmp_path / "again")
    assert list(again.phone_batches()) == list(recording.phone_batches())
    agent = _record(plan, tmp_path / "agent", recorder="agent")
    assert list(agent.phone_batches()) == list(recording.phone_batches())

    plain = plan_day(plan.network, TINY, 7)
    zero = plan_day(plan.network, dataclasses.replace(IPHONES, iphone_share=0.0), 7)
    assert not zero.iphones
    a, b = _record(plain, tmp_path / "plain"), _record(zero, tmp_path / "zero")
    assert list(b.phone_batches()) == []
    assert not (tmp_path / "zero/phones.jsonl").exists()
    for name in ("scenario.json", "vehicles.json", "devices.json", "truth.json"):
        assert (tmp_path / "plain" / name).read_bytes() == (tmp_path / "zero" / name).read_bytes()
    for v in a.vehicles:
        assert list(a.batches(v["vehicle_id"])) == list(b.batches(v["vehicle_id"]))


async def test_replay_posts_the_phone_uploads(engine, client, recording, batches):
    """Replayed into the backend, every phone upload is stored and its beacons resolve to
    the backend's vehicles (their secrets differ from the recording's: re-keyed)."""
    factory = make_sessionmaker(engine)
    secrets = register_recording(engine, recording)
    assert secrets != recording.vehicle_secrets()
    result = await replay(recording, client, "http://bibo.test", secrets)
    assert result.failures == []
    assert result.phone_batches == result.phone_delivered == len(batches)
    with transaction(factory) as session:
        total = session.scalar(select(func.count()).select_from(BeaconSighting))
        unresolved = session.scalar(
            select(func.count())
            .select_from(BeaconSighting)
            .where(BeaconSighting.vehicle_id.is_(None))
        )
    assert total == sum(len(b.beacons) for b in batches)
    assert unresolved == 0


def test_a_phone_hears_the_beacon_at_the_beacon_s_power_not_its_own(plan):
    # The bus heard each phone at the phone's power; the phone hears the beacon at the
    # beacon's, so a weak phone hears it louder by the difference, a strong one quieter.
    offsets = beacon_offsets_db(plan, DEFAULT_WORLD)
    radiated = [DEFAULT_WORLD.radiated_dbm(p.phone, p.person_id) for p in plan.persons]
    assert offsets.tolist() == [BEACON_TX_DBM - r for r in radiated]
    assert offsets.min() < 0 < offsets.max()  # phones weaker and stronger than the beacon
    t = np.array([1_000, 1_200, 5_000], dtype=np.int64)
    who = np.array([0, 0, 1], dtype=np.int64)
    rssi = np.array([-70, -60, -80], dtype=np.int64)
    person, _, heard = heard_seconds(plan, [(t, who, rssi)], offsets)
    by_person = dict(zip(person.tolist(), heard.tolist(), strict=False))
    assert by_person[1] == round(-80 + offsets[1])
    assert max(heard[person == 0]) == round(-60 + offsets[0])  # the strongest of its second
