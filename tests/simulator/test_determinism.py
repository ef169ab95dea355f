from __future__ import annotations

import hashlib
import itertools

from simulator.day import make_device_keys, plan_day, vehicle_timeline
from tests.simulator.conftest import SMALL_DAY

N_ITEMS = 5_000


def _timeline_hash(plan, keys, seed, n=N_ITEMS):
    h = hashlib.sha256()
    vid = plan.vehicles[0].vehicle_id
    for item in itertools.islice(vehicle_timeline(plan, vid, keys, seed), n):
        h.update(repr(item).encode())
    return h.hexdigest()


def test_same_seed_same_plan_and_timeline(network, small_plan, small_keys):
    again = plan_day(network, SMALL_DAY, seed=11)
    assert again == small_plan
    assert make_device_keys(again, seed=5) == small_keys
    assert _timeline_hash(again, small_keys, 3) == _timeline_hash(small_plan, small_keys, 3)


def test_different_seed_different_plan_and_timeline(network, small_plan, small_keys):
    other = plan_day(network, SMALL_DAY, seed=12)
    assert other.trips != small_plan.trips
    assert other.persons != small_plan.persons
    assert _timeline_hash(small_plan, small_keys, 4) != _timeline_hash(small_plan, small_keys, 3)
