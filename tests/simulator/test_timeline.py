from __future__ import annotations

import itertools

import pytest

from onboard import wire
from simulator.day import Advert, vehicle_timeline


@pytest.fixture(scope="module")
def timeline(small_plan, small_keys):
    vid = small_plan.vehicles[0].vehicle_id
    return vid, list(vehicle_timeline(small_plan, vid, small_keys, seed=3))


def _t(item):
    return item.t_ms if isinstance(item, Advert) else item.t


def test_time_ordered(timeline):
    _, items = timeline
    ts = [_t(i) for i in items]
    assert ts == sorted(ts)
    assert sum(isinstance(i, Advert) for i in items) > 1000


def test_tokens_follow_the_phones_skewed_clock(small_plan, small_keys, timeline):
    _, items = timeline
    owner = {}
    for p in small_plan.persons:
        for i in range(wire.interval_of(_t(items[0])) - 1, wire.interval_of(_t(items[-1])) + 2):
            owner[wire.token_for_interval(small_keys[p.person_id], i)] = (p, i)
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
            assert prev[0].token != a.token
        if prev is not None and prev[1] == interval:
            assert prev[0].address == a.address
        last[person.person_id] = (a, interval)
    assert boundary_crossings > 0


def test_skewed_phone_switches_token_early():
    # A phone 45 s fast is already in the next interval 30 s before the true boundary.
    boundary = 2_992_368 * wire.TOKEN_INTERVAL_S * 1000
    assert wire.interval_of(boundary - 30_000 + 45_000) == wire.interval_of(boundary)


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


def test_per_stop_event_order(timeline, small_plan):
    vid, items = timeline
    events = [i for i in items if not isinstance(i, Advert) and i.type != "position"]
    n_calls = sum(len(j.calls) for j in small_plan.vehicle(vid).journeys)
    stop_events = [e for e in events if e.type != "journey"]
    assert len(stop_events) == 4 * n_calls
    for k in range(0, len(stop_events), 4):
        arr, op, cl, dep = stop_events[k : k + 4]
        assert (arr.type, op.type, cl.type, dep.type) == (
            "arrival",
            "doors_open",
            "doors_closed",
            "departure",
        )
        assert arr.stop_id == dep.stop_id
        assert arr.t < op.t < cl.t < dep.t


def test_positions_only_while_moving_every_10s(timeline):
    _, items = timeline
    events = [i for i in items if not isinstance(i, Advert)]
    moving = False
    last_pos = None
    for e in events:
        if e.type == "departure":
            moving, last_pos = True, None
        elif e.type == "arrival":
            moving = False
        elif e.type == "position":
            assert moving
            if last_pos is not None:
                assert e.t - last_pos == 10_000
            last_pos = e.t


def test_missing_device_key_is_named(small_plan):
    vid = small_plan.vehicles[0].vehicle_id
    with pytest.raises(ValueError, match="device_keys: no key for"):
        next(iter(vehicle_timeline(small_plan, vid, {}, seed=1)))


def test_riders_heard_while_moving_and_louder_than_bystanders(small_plan, small_keys):
    vid = small_plan.vehicles[0].vehicle_id
    riders = {t.person_id for t in small_plan.trips if t.vehicle_id == vid}
    token_owner = {}
    for p in small_plan.persons:
        for i in range(
            wire.interval_of(small_plan.vehicles[0].journeys[0].start_ms) - 1,
            wire.interval_of(small_plan.vehicles[0].journeys[-1].end_ms) + 2,
        ):
            token_owner[wire.token_for_interval(small_keys[p.person_id], i)] = p.person_id
    rider_rssi, other_rssi = [], []
    for a in itertools.islice(vehicle_timeline(small_plan, vid, small_keys, seed=3), 200_000):
        if isinstance(a, Advert):
            (rider_rssi if token_owner[a.token] in riders else other_rssi).append(a.rssi)
    assert rider_rssi
    assert other_rssi
    assert sum(rider_rssi) / len(rider_rssi) > sum(other_rssi) / len(other_rssi)
