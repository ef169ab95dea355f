from __future__ import annotations

import numpy as np

from simulator.const import SENSITIVITY_DBM
from simulator.radio import (
    Carry,
    Placement,
    heard_mask,
    mean_rssi_dbm,
    quantise_rssi,
    reception_prob,
    sample_rssi,
)


def _mean(d, placement=Placement.INSIDE, doors_open=True, carry=Carry.HAND):
    return float(mean_rssi_dbm(-8.0, np.array([d], float), placement, doors_open, carry)[0])


def test_mean_rssi_falls_with_distance():
    values = [_mean(d) for d in (1, 2, 4, 8, 12)]
    assert values == sorted(values, reverse=True)
    assert -65 < values[0] < -45  # a phone in hand at 1 m


def test_sampled_rssi_mean_falls_with_distance():
    rng = np.random.default_rng(0)
    means = []
    for d in (1.0, 3.0, 10.0):
        m = mean_rssi_dbm(-8.0, np.full(5000, d), Placement.INSIDE, True, Carry.POCKET)
        means.append(float(sample_rssi(rng, m, 0.0).mean()))
    assert means[0] > means[1] > means[2]


def test_doors_closed_costs_an_outsider_more():
    closed = _mean(5, Placement.OUTSIDE, doors_open=False)
    opened = _mean(5, Placement.OUTSIDE, doors_open=True)
    inside = _mean(5, Placement.INSIDE)
    assert closed < opened < inside


def test_doors_do_not_matter_inside():
    assert _mean(5, doors_open=False) == _mean(5, doors_open=True)


def test_other_bus_is_weaker_than_outside():
    assert _mean(10, Placement.OTHER_BUS, False) < _mean(10, Placement.OUTSIDE, False)


def test_bag_costs_more_than_hand():
    assert _mean(3, carry=Carry.BAG) < _mean(3, carry=Carry.POCKET) < _mean(3, carry=Carry.HAND)


def test_sensitivity_and_loss():
    rssi = np.array([SENSITIVITY_DBM - 1, SENSITIVITY_DBM + 3, -50], float)
    p = reception_prob(rssi)
    assert p[0] == 0.0
    assert 0.0 < p[1] < p[2] < 1.0
    rng = np.random.default_rng(1)
    weak = heard_mask(rng, np.full(10_000, SENSITIVITY_DBM - 0.5))
    strong = heard_mask(rng, np.full(10_000, -60.0))
    assert not weak.any()
    assert 0.9 < strong.mean() < 1.0


def test_quantise_clips_to_wire_range():
    assert quantise_rssi(np.array([-200.0, -60.4, 30.0])).tolist() == [-127, -60, 20]
