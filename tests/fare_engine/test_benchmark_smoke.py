"""The benchmark's --quick path runs and the engine agrees with the plain integer programme
(totals only; timings are the benchmark's business, not a test's)."""

from __future__ import annotations

from benchmarks.fares import main


def test_quick_benchmark_runs_and_totals_agree(capsys):
    assert main(["--quick"]) == 0
    out = capsys.readouterr().out
    assert "identical totals: 40 / 40 (100.00 %)" in out
    assert "final total equals batch: 20 / 20" in out
