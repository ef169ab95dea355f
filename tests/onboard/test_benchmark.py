"""Smoke test: ``benchmarks/onboard.py --quick`` runs as documented and prints every figure."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_quick_benchmark_runs_and_prints_goals_and_baseline():
    done = subprocess.run(
        [sys.executable, "benchmarks/onboard.py", "--quick"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    for needle in (
        "adverts/s per core, decode+window+outbox",
        "baseline, same adverts: decode only",
        "pipeline / baseline = ",
        "peak RSS (MB)",
        "outbox bytes per bus-hour (MB)",
        ">= 5,000",
        "< 100",
        "<= 5",
    ):
        assert needle in out, out
    assert "MISSED" not in out
