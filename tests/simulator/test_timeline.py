from __future__ import annotations

import itertools

import pytest

from onboard import wire
from simulator.bystanders import EpisodeKind
from simulator.const import POSITION_PERIOD_MS
from simulator.day import Advert, vehicle_timeline


@pytest.fixture(scope="module")
def timeline(small_plan, small_keys):
    vid = small_plan.vehicles[0].vehicle_id
    return vid, list(vehicle_timeline(small_plan, vid, small_keys, seed=3))


def _t(item):
    return item.t_ms if isinstance(item, Advert) else item.t


def _owners(plan, keys, lo, hi):
    owner = {}
    for p in plan.persons:
        for i in range(wire.interval_of(lo) - 1, wire.interval_of(hi) + 2):
            owner[wire.token_for_interval(keys[p.person_id], i)] = (p, i)
    return owner


def test_time_ordered(timeline):
    _, items = timeline
    ts = [_t(i) for i in items]
    assert ts == sorted(ts)
    assert sum(isinstance(i, Advert) for i in items) > 1000


def test_tokens_follow_the_phones_skewed_clock(small_plan, small_keys, timeline):
    _, items = timeline
    owner = _owners(small_plan, small_keys, _t(items[0]), _t(items[-1]))
    boundary_crossings = 0
    last = {}
    for a in (i for i in items if isinstance(i, Advert)):
        person, interval = owner[a.token]
        assert interval == wire.interval_of(a.t_ms + person.phone.clock_skew_ms)
        assert a.tx_power == person.phone.tx_power_dbm
        prev = last.get(person.person_id)
        if prev is not None and prev[1] != interval:
            boundary_crossings += 1
            assert prev[0].address != a.address
        if prev is not None and prev[1] == interval:
            assert prev[0].address == a.address
        last[person.person_id] = (a, interval)
    assert boundary_crossings > 0


def test_silent_phones_are_not_heard(small_plan, small_keys):
    assert small_plan.outages, "the small day should have a phone outage"
    o = small_plan.outages[0]
    trip = next(
        t
        for t in small_plan.trips
        if t.person_id == o.person_id and t.board_time < o.start_ms < t.alight_time
    )
    items = vehicle_timeline(small_plan, trip.vehicle_id, small_keys, seed=3)
    key = small_keys[o.person_id]
    lo, hi = wire.interval_of(trip.board_time) - 1, wire.interval_of(o.end_ms) + 2
    mine = {wire.token_for_interval(key, i) for i in range(lo, hi)}
    heard = [a.t_ms for a in items if isinstance(a, Advert) and a.token in mine]
    assert any(t < o.start_ms for t in heard)
    assert not any(o.start_ms <= t < o.end_ms for t in heard)


def test_events_and_sightings_fit_the_wire_contract(timeline):
    vid, items = timeline
    events = [i for i in items if not isinstance(i, Advert)]
    adverts = [i for i in items if isinstance(i, Advert)][:500]
    batch = wire.Batch.model_validate(
        {
            "version": 1,
            "vehicle_id": vid,
            "unit_id": "obu-test",
            "boot_id": "boot",
            "seq": 0,
            "sent_at": _t(items[-1]),
            "window_ms": 1000,
            "events": [e.model_dump() for e in events],
            "sightings": {
                "t": [a.t_ms for a in adverts],
                "token": [a.token.hex() for a in adverts],
                "rssi": [a.rssi for a in adverts],
                "n": [1] * len(adverts),
                "tx": [a.tx_power for a in adverts],
            },
        }
    )
    assert len(batch.events) == len(events)
    types = [e.type for e in events]
    assert types[0] == "journey"
    assert {"arrival", "doors_open", "doors_closed", "departure", "position"} <= set(types)


def test_per_stop_event_order_with_doors_only_where_served(timeline, small_plan):
    vid, items = timeline
    events = [i for i in items if not isinstance(i, Advert) and i.type != "position"]
    calls = [c for j in small_plan.vehicle(vid).journeys for c in j.calls]
    stop_events = [e for e in events if e.type != "journey"]
    k = 0
    for c in calls:
        n = 4 if c.served else 2
        group = stop_events[k : k + n]
        k += n
        assert group[0].type == "arrival"
        assert group[-1].type == "departure"
        assert group[0].stop_id == group[-1].stop_id == c.stop_id
        if c.served:
            assert [e.type for e in group[1:3]] == ["doors_open", "doors_closed"]
        assert [e.t for e in group] == sorted(e.t for e in group)
    assert k == len(stop_events)
    assert any(not c.served for c in calls)


def test_positions_only_while_moving_on_a_10s_grid(timeline, network):
    _, items = timeline
    events = [i for i in items if not isinstance(i, Advert)]
    moving = False
    stopped_at_light = 0
    for e in events:
        if e.type == "departure":
            moving = True
        elif e.type == "arrival":
            moving = False
        elif e.type == "position":
            assert moving
            assert e.t % POSITION_PERIOD_MS == 0
            stopped_at_light += e.speed_mps < 0.5
            assert 51.0 < e.lat < 51.8
            assert 7.4 < e.lon < 9.0
    assert stopped_at_light > 0  # red lights show as standing still between stops


def test_missing_device_key_is_named(small_plan):
    vid = small_plan.vehicles[0].vehicle_id
    with pytest.raises(ValueError, match="device_keys: no key for"):
        next(iter(vehicle_timeline(small_plan, vid, {}, seed=1)))


def test_riders_are_louder_and_heard_more_than_bystanders(small_plan, small_keys):
    stats = {"ride": [], "other": []}
    for v in small_plan.vehicles[:3]:
        vid = v.vehicle_id
        owner = _owners(small_plan, small_keys, v.journeys[0].start_ms, v.journeys[-1].end_ms)
        eps = {}
        for ep in small_plan.episodes[vid]:
            eps.setdefault(ep.person_id, []).append(ep)
        for a in itertools.islice(vehicle_timeline(small_plan, vid, small_keys, seed=3), 300_000):
            if not isinstance(a, Advert):
                continue
            pid = owner[a.token][0].person_id
            kind = next((e.kind for e in eps[pid] if e.start_ms <= a.t_ms < e.end_ms), None)
            stats["ride" if kind is EpisodeKind.RIDE else "other"].append(a.rssi)
    assert stats["ride"]
    assert stats["other"]
    mean = {k: sum(v) / len(v) for k, v in stats.items()}
    assert mean["ride"] > mean["other"] + 3
