"""``bibo evaluate`` end to end: a recorded day replayed into the real backend in its own
process, reconciled, scored beside the naive baseline; and the naive baseline's bar on the
mixed scenario (it must fail it: F1 < 0.97, or the scenario is too easy)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json

import pytest

from simulator.cli import main
from simulator.day import plan_day
from simulator.evaluation import evaluate_recording
from simulator.network import load_network
from simulator.recording import write_recording
from simulator.scenarios import scenario


@pytest.mark.slow
def test_evaluate_runs_the_backend_and_the_baseline(tmp_path, capsys):
    s = scenario("stop-wait")
    cfg = dataclasses.replace(
        s.config, passengers=40, bystanders=40, service_start=dt.time(7), service_end=dt.time(7, 40)
    )
    out = tmp_path / "stop-wait"
    plan = plan_day(load_network(), cfg, s.seed)
    write_recording(
        plan,
        out,
        name=s.name,
        description=s.description,
        radio_seed=s.radio_seed,
        upload_interval_ms=s.upload_interval_ms,  # the real agent, sealing every 60 s
    )
    assert main(["evaluate", str(tmp_path), "--out", str(tmp_path / "report")]) == 0
    printed = capsys.readouterr().out
    assert "margin" in printed
    doc = json.loads((tmp_path / "report" / "evaluation.json").read_text("utf-8"))
    (res,) = doc["scenarios"]
    assert res["source"].startswith("backend")
    bibo, naive = res["methods"]["bibo"]["scores"], res["methods"]["naive"]["scores"]
    assert bibo["truth_trips"] == naive["truth_trips"] > 5
    assert bibo["detected_trips"] > 0
    assert 0 < bibo["f1"] <= 1
    assert res["margin"]["f1"] == pytest.approx(bibo["f1"] - naive["f1"])
    money = res["methods"]["bibo"]["money"]
    assert money["passenger_days"] > 0
    # The backend prices bibo's trips too: the same tariff, so the same revenue.
    # The backend also knows the stops travelled (Kurzstrecke), so it can only be cheaper.
    assert 0 < res["backend_charges"]["revenue_cents"] <= money["revenue_detected_cents"]
    assert (tmp_path / "report" / "evaluation.png").is_file()
    # Be-outs as the backend decided them, from the bus leaving the alighting stop.
    beout = res["methods"]["bibo"]["beout_known"]
    assert beout["trips"] + beout["missing"] == bibo["matched"]
    assert 0 < beout["p50_s"] <= beout["max_s"]
    assert beout["p50_s"] >= 45  # decided 45 s after the departure at the earliest
    assert 0 <= beout["within_goal"] <= 1
    assert res["methods"]["naive"]["beout_known"] is None


@pytest.mark.slow
def test_naive_baseline_fails_the_ordinary_weekday(tmp_path):
    s = scenario("ordinary-weekday")
    plan = plan_day(load_network(), s.config, s.seed)
    write_recording(
        plan,
        tmp_path,
        name=s.name,
        description=s.description,
        radio_seed=s.radio_seed,
        recorder="fast",  # byte-identical to the agent's uploads, see test_recording.py
        jobs=2,
    )
    result = evaluate_recording(tmp_path, use_backend=False)
    naive = result.methods["naive"].scores
    assert naive.truth_trips > 1000
    assert naive.f1 < 0.97, naive.as_dict()
