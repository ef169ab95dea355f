"""``bibo evaluate --worlds`` and ``bibo calibrate`` on a small scale (one scenario, worlds
that are neither training nor test worlds)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from simulator.calibrate import fit, grid, record_worlds, world_dir
from simulator.cli import main
from simulator.const import ABLATIONS
from simulator.sweep import ablated_worlds


def test_evaluate_worlds_prints_both_sets_the_gap_and_the_goals(tmp_path: Path, capsys):
    args = ["evaluate", "--worlds", "--test-worlds", "2004", "--training-worlds", "default"]
    args += ["--scenarios", "clean", "--latency-scenarios", "clean", "--jobs", "1"]
    assert main([*args, "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "test worlds 2004" in out
    assert "training worlds default" in out
    assert "gap (training - test)" in out
    assert "objective (bibo calibrate's" in out
    assert "Rides missed by how often the bus heard the phone" in out
    assert "test worlds meet every goal" in out or "test worlds miss:" in out
    doc = json.loads((tmp_path / "worlds.json").read_text("utf-8"))
    (test,) = doc["test"]
    (training,) = doc["training"]
    assert test["seed"] == 2004
    assert training["seed"] is None
    bibo = test["bibo"]
    assert bibo["truth"] > 0
    assert sum(bibo["rides_by_heard"].values()) == bibo["truth"]
    assert 0 <= bibo["f1"] <= 1
    assert test["latency"]["bein"]["rides"] > 0
    # 40 % iPhones by default: scored apart, their latency from the paced phone uploads.
    assert "By platform" in out
    platforms = bibo["platforms"]
    assert platforms["beacon"]["truth"] > 0
    assert platforms["beacon"]["truth"] + platforms["advertising"]["truth"] == bibo["truth"]
    assert (
        platforms["beacon, ranging"]["truth"] + platforms["beacon, burst only"]["truth"]
        == platforms["beacon"]["truth"]
    )
    beacon = test["latency"]["beacon_beout"]
    assert 0 < beacon["rides"] < test["latency"]["beout"]["rides"]
    assert beacon["p50_s"] is not None
    assert beacon["p50_s"] < float("inf")
    # Every mistake of bibo's, one JSON line each, adds up to the world's counts.
    assert "mistakes.jsonl" in out
    lines = (tmp_path / "mistakes.jsonl").read_text("utf-8").splitlines()
    mistakes = [json.loads(line) for line in lines]
    mine = [m for m in mistakes if m["set"] == "test" and m["world"] == 2004]
    missed = sum(m["mistake"] == "missed" for m in mine)
    assert missed == bibo["truth"] - bibo["matched"]
    assert sum(m["mistake"] == "bystander" for m in mine) == bibo["charged"]
    assert {m["scenario"] for m in mistakes} <= {"clean"}
    for m in (m for m in mine if m["person_id"]):
        # Android, or an iPhone that ranges or only bursts.
        assert m["platforms"] in (
            ["advertising"],
            ["beacon", "beacon, ranging"],
            ["beacon", "beacon, burst only"],
        )


def test_evaluate_worlds_scores_the_other_level_model_on_request(tmp_path: Path, capsys):
    # The absolute model (the default is the relative one), paced replay included.
    args = ["evaluate", "--worlds", "--test-worlds", "2004", "--training-worlds", "default"]
    args += ["--scenarios", "clean", "--latency-scenarios", "clean", "--jobs", "1"]
    assert main([*args, "--level", "absolute", "--out", str(tmp_path)]) == 0
    assert "level model: absolute" in capsys.readouterr().err
    doc = json.loads((tmp_path / "worlds.json").read_text("utf-8"))
    (test,) = doc["test"]
    assert test["bibo"]["truth"] > 0
    assert test["latency"]["bein"]["rides"] > 0


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("--test-worlds", "a,b", "world seeds"),
        ("--test-worlds", "-3", "world seeds"),
        ("--scenarios", "nowhere", "not in the library"),
        ("--latency-scenarios", "bunched", "not evaluated"),
        ("--level", "loud", "invalid choice"),
    ],
)
def test_evaluate_worlds_refuses_bad_arguments(flag, value, message, capsys):
    args = ["evaluate", "--worlds", "--test-worlds", "2004", "--training-worlds", "2005"]
    args += ["--scenarios", "clean", "--latency-scenarios", "none", flag, value]
    try:
        code = main(args)
    except SystemExit as exc:
        code = int(exc.code or 0)
    assert code == 2
    assert message in capsys.readouterr().err


def test_evaluate_without_dir_or_worlds_says_what_it_needs(capsys):
    assert main(["evaluate"]) == 2
    assert "expected DIR" in capsys.readouterr().err


def test_evaluate_ablations_scores_each_beside_the_default_world(tmp_path: Path, capsys):
    args = ["evaluate", "--ablations", "--scenarios", "clean", "--jobs", "1"]
    assert main([*args, "--iphone-share", "0", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "Ablations of the default world" in out
    rows = {}
    for line in out.splitlines():
        cells = [c.strip() for c in line.split("│")[1:-1]]
        if len(cells) == 11 and cells[0]:
            rows[cells[0]] = cells
    assert list(rows) == [name for name, _ in ablated_worlds()]
    assert rows["default"][8] == "–"
    default_f1 = float(rows["default"][2])
    for name, cells in list(rows.items())[1:]:
        assert cells[1] == rows["default"][1]  # the same riders, only the radio differs
        assert float(cells[8]) == pytest.approx(float(cells[2]) - default_f1, abs=2e-4), name
    assert "every ablation within 0.005 F1" in out or "ablations miss:" in out
    # Each one's mistakes, under its name.
    lines = (tmp_path / "mistakes.jsonl").read_text("utf-8").splitlines()
    assert {json.loads(line)["set"] for line in lines} <= set(rows)


def test_ablated_worlds_each_change_only_their_own_parameters():
    (_, base), *ablated = ablated_worlds()
    assert base.seed is not None  # salts the per-phone and per-bus draws
    for (name, world), (_, change) in zip(ablated, ABLATIONS, strict=True):
        differs = {
            f.name
            for f in dataclasses.fields(world)
            if getattr(world, f.name) != getattr(base, f.name)
        }
        assert differs == {field for field, _ in change}, name


def test_evaluate_takes_worlds_or_ablations_not_both(capsys):
    assert main(["evaluate", "--worlds", "--ablations"]) == 2
    assert "not both" in capsys.readouterr().err
    assert main(["evaluate", "--ablations", "--test-worlds", "2004"]) == 2
    assert "do not apply" in capsys.readouterr().err


def test_calibrate_scores_every_candidate_on_recorded_worlds(tmp_path: Path):
    # One world, recorded once and reused; the fit is sorted by its objective.
    paths = record_worlds([2006], tmp_path)
    assert paths
    assert all(p.parent.name == world_dir(2006) for p in paths)
    clean = [p for p in paths if p.name == "clean"]
    candidates = fit([clean])
    assert len(candidates) == len(grid())
    assert {c.model.name for c in candidates} == {"absolute", "relative", "riders"}
    objectives = [c.objective for c in candidates]
    assert objectives == sorted(objectives, reverse=True)
    # Recorded worlds are reused, not recorded again.
    stamp = (clean[0] / "truth.json").stat().st_mtime_ns
    record_worlds([2006], tmp_path)
    assert (clean[0] / "truth.json").stat().st_mtime_ns == stamp
