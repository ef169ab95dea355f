"""The same seed gives byte-identical output; another seed gives another day."""

from __future__ import annotations

from pathlib import Path

import pytest

from simulator.day import plan_day
from simulator.recording import write_recording
from tests.simulator.conftest import SMALL_DAY, TINY


def _record(network, out: Path, seed: int, recorder: str = "agent") -> dict[str, bytes]:
    plan = plan_day(network, TINY, seed)
    write_recording(plan, out, name="tiny", description="", radio_seed=seed + 1, recorder=recorder)
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def first(network, tmp_path_factory):
    return _record(network, tmp_path_factory.mktemp("a"), 21)


def test_same_seed_byte_identical_recording(network, first, tmp_path):
    again = _record(network, tmp_path, 21)
    assert sorted(again) == sorted(first)
    assert {"scenario.json", "truth.json", "devices.json", "vehicles.json", "network.json"} <= set(
        first
    )
    for name, data in first.items():
        assert again[name] == data, name


def test_same_seed_same_plan(network, small_plan):
    assert plan_day(network, SMALL_DAY, seed=11) == small_plan


def test_different_seed_different_day(network, first, tmp_path):
    other = _record(network, tmp_path, 22)
    assert other["truth.json"] != first["truth.json"]
    batches = [k for k in first if k.startswith("batches/")]
    assert any(other.get(k) != first[k] for k in batches)
