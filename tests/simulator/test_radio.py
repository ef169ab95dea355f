"""Physical sanity of the radio model."""

from __future__ import annotations

import numpy as np
import pytest

from simulator.const import (
    SCAN_INTERVAL_MS,
    SCAN_RESTART_GAP_MS,
    SCAN_RESTART_PERIOD_MS,
    SCAN_WINDOW_MS,
    SENSITIVITY_DBM,
)
from simulator.radio import (
    Carry,
    Placement,
    Scanner,
    collision_prob,
    crowd_loss_db,
    draw_link,
    duty_cycle,
    fading_db,
    link_rssi_dbm,
    mean_link,
    mean_rssi_dbm,
    quantise_rssi,
    reception_prob,
    shadowing_db,
)


def _mean(d, placement=Placement.INSIDE, doors_open=True, carry=Carry.HAND):
    return float(mean_rssi_dbm(-8.0, d, placement, doors_open, carry)[0])


def test_mean_rssi_falls_with_distance():
    values = [_mean(d) for d in (1, 2, 4, 8, 12)]
    assert values == sorted(values, reverse=True)
    assert -65 < values[0] < -45  # a phone in hand at 1 m


def test_sampled_rssi_falls_with_distance_on_average():
    """With correlated shadowing, Rician fading and per-episode losses drawn at random."""
    rng = np.random.default_rng(0)
    t = np.arange(0, 600_000, 250, dtype=np.int64)
    means = []
    for d in (1.0, 3.0, 10.0, 30.0):
        samples = []
        for _ in range(40):
            link = draw_link(rng, Placement.INSIDE, Carry.POCKET, moving=False)
            m = link_rssi_dbm(-8.0, np.full(t.size, d), Placement.INSIDE, link, True)
            rssi = m + shadowing_db(rng, t, link.shadow_sigma_db, link.shadow_tau_s)
            samples.append(rssi + fading_db(rng, t.size, link.rician_k))
        means.append(float(np.mean(samples)))
    assert means == sorted(means, reverse=True)
    assert means[0] - means[-1] > 20


def test_doors_closed_attenuate_more_than_open_for_someone_outside():
    closed = _mean(5, Placement.OUTSIDE, doors_open=False)
    opened = _mean(5, Placement.OUTSIDE, doors_open=True)
    inside = _mean(5, Placement.INSIDE)
    assert closed < opened < inside
    assert opened - closed >= 4


def test_doors_do_not_matter_inside():
    assert _mean(5, doors_open=False) == _mean(5, doors_open=True)


def test_other_bus_and_car_are_weaker_than_standing_outside():
    outside = _mean(10, Placement.OUTSIDE, False)
    assert _mean(10, Placement.OTHER_BUS, False) < outside
    assert _mean(10, Placement.IN_CAR, False, Carry.HAND) < outside


def test_a_bag_costs_more_than_a_pocket_more_than_a_hand():
    assert _mean(3, carry=Carry.BAG) < _mean(3, carry=Carry.POCKET) < _mean(3, carry=Carry.HAND)


def test_drawn_losses_scatter_around_their_means_and_never_amplify():
    rng = np.random.default_rng(3)
    links = [draw_link(rng, Placement.OUTSIDE, Carry.BAG, moving=True) for _ in range(2000)]
    m = mean_link(Placement.OUTSIDE, Carry.BAG)
    assert np.mean([k.carry_db for k in links]) == pytest.approx(m.carry_db, abs=0.3)
    assert np.mean([k.body_closed_db for k in links]) == pytest.approx(m.body_closed_db, abs=0.3)
    assert min(k.carry_db for k in links) >= 0
    assert min(k.body_open_db for k in links) >= 0


def test_crowd_loss_grows_with_the_crowd_and_the_distance():
    assert crowd_loss_db(1, 5.0) == 0.0
    assert crowd_loss_db(20, 5.0) > crowd_loss_db(10, 5.0) > 0
    assert crowd_loss_db(20, 1.0) < crowd_loss_db(20, 6.0)
    assert crowd_loss_db(500, 6.0) <= 12.0


def test_shadowing_is_log_normal_and_correlated_in_time():
    rng = np.random.default_rng(5)
    t = np.arange(0, 3_600_000, 1000, dtype=np.int64)
    x = shadowing_db(rng, t, 4.0, 30.0)
    assert np.std(x) == pytest.approx(4.0, rel=0.25)
    lag1 = np.corrcoef(x[:-1], x[1:])[0, 1]
    lag120 = np.corrcoef(x[:-120], x[120:])[0, 1]
    assert lag1 > 0.9
    assert abs(lag120) < 0.2
    # Adverts within one second share the value.
    sub = np.array([0, 100, 900, 1000], dtype=np.int64)
    y = shadowing_db(np.random.default_rng(1), sub, 4.0, 30.0)
    assert y[0] == y[1] == y[2] != y[3]


def test_fast_fading_has_unit_mean_power_and_a_deep_lower_tail():
    rng = np.random.default_rng(2)
    for k in (0.5, 3.0):
        f = fading_db(rng, 200_000, k)
        assert np.mean(10 ** (f / 10)) == pytest.approx(1.0, rel=0.02)
        assert np.percentile(f, 1) < -10
    assert np.std(fading_db(rng, 100_000, 0.5)) > np.std(fading_db(rng, 100_000, 3.0))


def test_scanner_listens_in_windows_with_restart_gaps():
    scanner = Scanner(phase_ms=0, restart_phase_ms=0, salt=123)
    t = np.arange(0, 600_000, dtype=np.int64)
    on = scanner.listening(t)
    assert on.mean() == pytest.approx(duty_cycle(), abs=0.02)
    assert duty_cycle() == pytest.approx(
        SCAN_WINDOW_MS / SCAN_INTERVAL_MS * (1 - SCAN_RESTART_GAP_MS / SCAN_RESTART_PERIOD_MS)
    )
    assert not on[:SCAN_RESTART_GAP_MS].any()  # the gap after a restart
    period = t[SCAN_RESTART_GAP_MS : SCAN_RESTART_GAP_MS + SCAN_INTERVAL_MS]
    assert on[period].sum() == SCAN_WINDOW_MS


def test_reception_sensitivity_loss_and_collisions():
    rssi = np.array([SENSITIVITY_DBM - 1, SENSITIVITY_DBM + 3, -50], float)
    p = reception_prob(rssi)
    assert p[0] == 0.0
    assert 0.0 < p[1] < p[2] < 1.0
    assert collision_prob(60) > collision_prob(5) > 0
    assert reception_prob(np.array([-50.0]), 80)[0] < reception_prob(np.array([-50.0]), 0)[0]


def test_quantise_clips_to_wire_range():
    assert quantise_rssi(np.array([-200.0, -60.4, 30.0])).tolist() == [-127, -60, 20]


def test_vectorised_links_match_the_single_draw():
    from simulator.radio import carry_code, draw_links, placement_code

    rng = np.random.default_rng(8)
    for placement in Placement:
        n = 4000
        codes = np.full(n, placement_code(placement))
        carry = np.full(n, carry_code(Carry.POCKET))
        many = draw_links(rng, codes, carry, np.zeros(n, dtype=bool))
        one = [draw_link(rng, placement, Carry.POCKET, moving=False) for _ in range(n)]
        for name, values in many.items():
            ref = np.array([getattr(k, name) for k in one])
            assert values.mean() == pytest.approx(ref.mean(), abs=0.25), (placement, name)
            assert values.min() >= 0


def test_fading_pool_has_the_distribution_of_fresh_draws():
    from simulator.radio import fading_pool_db

    rng = np.random.default_rng(9)
    k = np.full(100_000, 0.5)
    pooled, fresh = fading_pool_db(rng, k), fading_db(rng, 100_000, 0.5)
    for q in (5, 50, 95):
        assert np.percentile(pooled, q) == pytest.approx(np.percentile(fresh, q), abs=0.3)


def test_shadowing_of_many_episodes_is_independent_between_them():
    from simulator.adverts import _shadowing_unit

    rng = np.random.default_rng(10)
    t = np.tile(np.arange(0, 600_000, 1000, dtype=np.int64), 200)
    seg = np.repeat(np.arange(200), 600)
    x = _shadowing_unit(rng, t, seg, 200, np.full(200, 30.0)).reshape(200, 600)
    assert x.std() == pytest.approx(1.0, rel=0.1)
    within = np.mean([np.corrcoef(r[:-1], r[1:])[0, 1] for r in x])
    assert within > 0.9
    # The end of one episode says nothing about the start of the next.
    assert abs(np.corrcoef(x[:-1, -1], x[1:, 0])[0, 1]) < 0.2
