"""Region-day generation benchmark: a full service day of the three counties, streamed to disk.

    .venv/bin/python benchmarks/simulate.py [--out DIR] [--jobs 2] [--json FILE]

Plans the ``region-day`` scenario (every line, ≥ 600 buses, ≥ 100,000 rides, every kind of
bystander), records every bus's upload batches with the fast recorder (byte-identical to
the real agent, see tests/simulator/test_recording.py) into gzip-compressed JSONL files,
writes the truth, and prints the wall time and the peak memory of the parent and of the
largest worker process. Memory stays bounded because each bus is generated one journey at
a time and written as it goes; what grows with the day is the plan (people, rides,
episodes), not the ~10⁸ adverts.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, this file's folder comes first on the import path, where
# benchmarks/onboard.py would shadow the onboard package the simulator drives: drop it.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]

import argparse  # noqa: E402
import json  # noqa: E402
import resource  # noqa: E402
import shutil  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

from simulator.day import plan_day  # noqa: E402
from simulator.network import load_network  # noqa: E402
from simulator.scenarios import scenario  # noqa: E402
from simulator.sweep import record_plan  # noqa: E402


def _peak_mb(who: int) -> float:
    return resource.getrusage(who).ru_maxrss / 1024


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="output directory (default: a temp dir)")
    parser.add_argument("--jobs", type=int, default=2, help="buses recorded in parallel")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--keep", action="store_true", help="keep the output directory")
    args = parser.parse_args(argv)
    s = scenario("region-day")
    out = args.out or Path(tempfile.mkdtemp(prefix="bibo-region-day-"))
    if out.exists():
        shutil.rmtree(out)

    t0 = time.monotonic()
    plan = plan_day(load_network(), s.config, s.seed)
    t_plan = time.monotonic() - t0
    rec = record_plan(s, plan, out, compress=True, jobs=args.jobs)
    total = time.monotonic() - t0
    size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    figures = {
        "buses": rec.vehicles,
        "journeys": sum(len(v.journeys) for v in plan.vehicles),
        "lines": len({v.line for v in plan.vehicles}),
        "stops": len(plan.network.stops),
        "passengers": s.config.passengers,
        "bystanders": s.config.bystanders,
        "rides": rec.truth_trips,
        "bystander_encounters": rec.encounters,
        "upload_batches": rec.batches,
        "output_mb": round(size / 1e6, 1),
        "jobs": args.jobs,
        "planning_s": round(t_plan, 1),
        "recording_s": round(total - t_plan, 1),
        "total_s": round(total, 1),
        "peak_rss_parent_mb": round(_peak_mb(resource.RUSAGE_SELF)),
        "peak_rss_largest_worker_mb": round(_peak_mb(resource.RUSAGE_CHILDREN)),
    }
    width = max(len(k) for k in figures)
    print(f"region day ({s.config.service_day}), output {out}")
    for k, v in figures.items():
        print(f"  {k:<{width}}  {v}")
    ok = figures["buses"] >= 600 and figures["rides"] >= 100_000 and total < 600
    verdict = "met" if ok else "MISSED"
    print(f"  {'target':<{width}}  >= 600 buses, >= 100,000 rides, < 600 s: {verdict}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n", "utf-8")
    if not args.keep and args.out is None:
        shutil.rmtree(out)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
