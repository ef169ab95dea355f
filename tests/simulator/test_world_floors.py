"""Floors on bibo itself in randomized worlds (issue 12): a small evaluation in worlds that
are neither training nor test worlds (``CI_WORLDS``), and ablations against the default
world. The floors sit below the issue's goals where bibo does not reach them yet; the
figures on the full test set come from ``bibo evaluate --worlds``."""

import dataclasses
from collections import Counter
from pathlib import Path

import pytest

from simulator.const import ABLATIONS, CI_WORLDS, GOAL_ABLATION_F1, TEST_WORLDS, TRAINING_WORLDS
from simulator.network import load_network
from simulator.scenarios import library
from simulator.sweep import ablated_worlds, evaluate_world
from simulator.world import World

SCENARIOS = ("clean", "trailing-car", "stop-wait")
"""A rider day and the two bystander cases that levels alone get wrong."""

F1_FLOOR = 0.87
BYSTANDERS_PER_1000_CEILING = 2.0
EXACT_STOPS_FLOOR = 0.95
"""F1 and exact stops below the goals (0.99, 98 %): the level model still starts from the
absolute path loss, which the bus's own riders only bound (issue 12, item 1). The bystander
ceiling is the goal itself."""


def _scenarios():
    return [s for s in library() if s.name in SCENARIOS]


def test_ci_worlds_are_neither_training_nor_test_worlds():
    assert None in TRAINING_WORLDS  # the default world trains, it is never a test world
    assert not set(CI_WORLDS) & (set(TRAINING_WORLDS) | set(TEST_WORLDS))
    assert not set(TRAINING_WORLDS) & set(TEST_WORLDS)


@pytest.mark.parametrize("seed", CI_WORLDS)
def test_bibo_holds_its_floors_in_a_world_it_was_not_fitted_on(seed: int, tmp_path: Path):
    result = evaluate_world(World.draw(seed), _scenarios(), tmp_path, load_network())
    bibo, naive = result.methods["bibo"], result.methods["naive"]
    assert bibo.truth > 100
    assert bibo.f1 >= F1_FLOOR, bibo
    assert bibo.per_1000 <= BYSTANDERS_PER_1000_CEILING, bibo
    assert bibo.exact_stops >= EXACT_STOPS_FLOOR, bibo
    assert bibo.f1 > naive.f1
    # Every ride is in one audibility bucket, and the misses there add up to the recall.
    for counts in (bibo, naive):
        assert sum(counts.rides_by_heard.values()) == counts.truth
        assert sum(counts.missed_by_heard.values()) == counts.truth - counts.matched
    # Every ride bibo missed has one cause (every truth ride here has a registered phone).
    assert sum(bibo.missed_by_cause.values()) == bibo.truth - bibo.matched
    # ... and is listed among its mistakes with it, as is every bystander it charged, each
    # with the evidence terms of the stretches it covers.
    missed = [m for m in result.mistakes if m["mistake"] == "missed"]
    charged = [m for m in result.mistakes if m["mistake"] == "bystander"]
    assert len(missed) + len(charged) == len(result.mistakes)
    assert len(missed) == bibo.truth - bibo.matched
    assert len(charged) == bibo.charged
    assert Counter(m["why"] for m in charged) == Counter(bibo.charged_by_kind)
    for m in result.mistakes:
        assert m["scenario"] in SCENARIOS
        assert m["board_time"] <= m["alight_time"]
        assert len({len(v) for v in m["terms"].values()}) <= 1  # one value per stretch
    for m in charged:
        # The terms are read off the evidence the trip was decoded on: one per stretch it
        # rode, adding up to its score (each rounded to 0.001).
        stretches = {len(v) for v in m["terms"].values()}
        assert stretches == {m["stops_travelled"]}, m
        total = sum(sum(v) for v in m["terms"].values())
        assert total == pytest.approx(m["score"], abs=0.001 * (1 + 5 * m["stops_travelled"]))


NOT_SELF_CALIBRATING = pytest.mark.xfail(
    strict=True,
    reason="the level model starts from the absolute path loss, which the bus's riders only "
    "bound (issue 12, item 1 not done): without tx or with other receiver gains it moves",
)

_SELF_CALIBRATING_ABLATIONS = ("no bus reports doors",)
ABLATION_CASES = [
    pytest.param(
        dict(change),
        id=name,
        marks=() if name in _SELF_CALIBRATING_ABLATIONS else NOT_SELF_CALIBRATING,
    )
    for name, change in ABLATIONS
]


@pytest.mark.parametrize("change", ABLATION_CASES)
def test_ablations_stay_within_half_a_point_of_f1(change: dict[str, float], tmp_path: Path):
    # The default world's parameters with one thing taken away (``bibo evaluate
    # --ablations`` on the whole library); a seed salts the per-phone and per-bus draws.
    (_, base), *_ = ablated_worlds()
    network = load_network()
    default = evaluate_world(base, _scenarios(), tmp_path / "a", network)
    ablated = evaluate_world(
        dataclasses.replace(base, **change), _scenarios(), tmp_path / "b", network
    )
    assert abs(default.methods["bibo"].f1 - ablated.methods["bibo"].f1) <= GOAL_ABLATION_F1
    assert ablated.methods["bibo"].per_1000 <= BYSTANDERS_PER_1000_CEILING
