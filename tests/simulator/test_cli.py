"""The simulator's commands: simulate, replay, evaluate (without a backend here)."""

from __future__ import annotations

import json
import queue
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from simulator.cli import main

FIXTURE = Path(__file__).parent / "data" / "gtfs_builtin"


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "clean"
    assert main(["simulate", "clean", "--out", str(out), "--recorder", "fast"]) == 0
    return out


def test_list_scenarios(capsys):
    assert main(["simulate", "--list"]) == 0
    out = capsys.readouterr().out
    for name in ("ordinary-weekday", "stop-wait", "hub-transfer", "alongside", "trailing-car",
                 "bus-beside", "bunched", "clean", "region-day"):  # fmt: skip
        assert name in out


def test_simulate_writes_a_recording(clean):
    for name in ("scenario.json", "vehicles.json", "devices.json", "truth.json", "network.json"):
        assert (clean / name).is_file()
    scenario = json.loads((clean / "scenario.json").read_text("utf-8"))
    assert scenario["name"] == "clean"
    assert scenario["recorder"] == "fast"
    assert len(list((clean / "batches").iterdir())) == scenario["counts"]["vehicles"] == 3


def test_simulate_errors_are_one_line(capsys, tmp_path):
    assert main(["simulate", "nope", "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert "unknown scenario 'nope'" in err
    assert len(err.strip().splitlines()) == 1
    assert main(["simulate", "clean"]) == 2
    assert "expected SCENARIO and --out" in capsys.readouterr().err


def test_simulate_on_a_gtfs_feed_and_export(tmp_path):
    assert main(["simulate", "--export-gtfs", str(tmp_path / "feed")]) == 0
    assert (tmp_path / "feed" / "stop_times.txt").is_file()
    out = tmp_path / "rec"
    args = ["simulate", "clean", "--out", str(out), "--recorder", "fast"]
    assert main([*args, "--gtfs", str(FIXTURE), "--routes", "R61,S20"]) == 0
    network = json.loads((out / "network.json").read_text("utf-8"))
    assert network["source"] == f"gtfs:{FIXTURE}"
    assert [ln["line"] for ln in network["lines"]] == ["R61", "S20"]


def test_replay_with_a_bad_secrets_file(clean, tmp_path, capsys):
    code = main(
        [
            "replay",
            str(clean),
            "--backend",
            "http://127.0.0.1:9",
            "--vehicle-secrets",
            str(tmp_path / "missing.json"),
        ]
    )
    assert code == 2
    assert "no such file" in capsys.readouterr().err


def test_evaluate_the_naive_baseline_without_a_backend(clean, tmp_path, capsys):
    assert main(["evaluate", str(clean), "--no-backend", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "naive" in out
    doc = json.loads((tmp_path / "evaluation.json").read_text("utf-8"))
    assert doc["version"] == 1
    (s,) = doc["scenarios"]
    assert s["name"] == "clean"
    naive = s["methods"]["naive"]["scores"]
    assert 0.5 < naive["f1"] <= 1.0
    assert s["methods"]["naive"]["money"]["unpriced"] == 0
    recorded, production = s["beout_latency"]["recorded"], s["beout_latency"]["production"]
    assert 20 < production["p50_s"] <= recorded["p50_s"]
    assert production["trips"] == recorded["trips"] > 0
    assert (tmp_path / "evaluation.png").stat().st_size > 10_000


def test_evaluate_with_a_trips_file(clean, tmp_path):
    truth = json.loads((clean / "truth.json").read_text("utf-8"))
    fields = (
        "device_id",
        "vehicle_id",
        "journey_id",
        "board_stop_id",
        "board_time",
        "alight_stop_id",
        "alight_time",
    )
    trips = [{k: t[k] for k in fields} for t in truth["trips"]]
    f = tmp_path / "trips.json"
    f.write_text(json.dumps(trips), "utf-8")
    assert main(["evaluate", str(clean), "--trips", str(f), "--out", str(tmp_path)]) == 0
    doc = json.loads((tmp_path / "evaluation.json").read_text("utf-8"))
    bibo = doc["scenarios"][0]["methods"]["bibo"]
    assert bibo["scores"]["f1"] == 1.0
    assert bibo["money"]["mean_abs_error_cents"] == 0
    assert doc["scenarios"][0]["margin"]["f1"] >= 0


def test_evaluate_nothing_there(tmp_path, capsys):
    assert main(["evaluate", str(tmp_path)]) == 2
    assert "no recording" in capsys.readouterr().err


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_replay_to_an_unreachable_backend_says_so_at_once(clean, tmp_path):
    vehicles = json.loads((clean / "vehicles.json").read_text("utf-8"))
    secrets = tmp_path / "secrets.json"
    secrets.write_text(json.dumps({v["vehicle_id"]: "ab" * 32 for v in vehicles["vehicles"]}))
    backend = f"http://127.0.0.1:{_closed_port()}"
    argv = ["replay", str(clean), "--backend", backend, "--vehicle-secrets", str(secrets)]
    lines: queue.Queue[str] = queue.Queue()
    with subprocess.Popen(
        [sys.executable, "-m", "backend.cli", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        reader = threading.Thread(target=lambda: [lines.put(x) for x in proc.stderr])
        reader.start()
        try:
            first = lines.get(timeout=20)  # the interpreter's start-up and imports included
        finally:
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=30)
            reader.join(timeout=10)
        out = proc.stdout.read()
    assert first == (
        f"bibo replay: cannot reach {backend} (connection refused); retrying (attempt 1)...\n"
    )
    rest = []
    while not lines.empty():
        rest.append(lines.get())
    assert proc.returncode == 130
    assert out == ""
    assert rest[-1].startswith("bibo replay: interrupted; the batches delivered so far are stored")
    assert not any("backend was stopped" in x or "Traceback" in x for x in rest)


@pytest.mark.parametrize(
    ("argv", "target", "expected"),
    [
        (["demo", "--workdir", "{tmp}/demo"], "simulator.cli.run_demo", "its backend server"),
        (["simulate", "clean", "--out", "{tmp}/rec"], "simulator.cli._record", "rec is incomplete"),
        (["evaluate", "{tmp}", "--no-backend"], "simulator.evaluation.find_recordings", None),
        (["evaluate", "{tmp}"], "simulator.evaluation.find_recordings", "its backend server"),
    ],
    ids=["demo", "simulate", "evaluate --no-backend", "evaluate"],
)
def test_ctrl_c_says_what_was_interrupted(monkeypatch, capsys, tmp_path, argv, target, expected):
    def interrupted(*_args, **_kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(target, interrupted)
    assert main([a.replace("{tmp}", str(tmp_path)) for a in argv]) == 130
    err = capsys.readouterr().err
    assert err.startswith(f"bibo {argv[0]}: interrupted")
    assert err.count("\n") == 1
    if expected is None:
        assert err == f"bibo {argv[0]}: interrupted\n"
    else:
        assert expected in err


def test_an_unwritable_output_directory_is_one_line(tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    argv = ["simulate", "clean", "--recorder", "fast", "--out", str(blocker / "rec")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"bibo simulate: {blocker / 'rec'}")
    assert err.endswith(": Not a directory\n")
    assert err.count("\n") == 1
