"""Reconciliation of a simulated region day: every upload of every bus turned into trips
(token resolution, the per-journey HMM, cross-vehicle conflicts), against ``numpy.argsort``
of the same sightings by (token, time) measured in the same run.

    .venv/bin/python benchmarks/reconcile.py [--recording DIR] [--jobs 2]

Without ``--recording`` a region day (all lines, 600+ buses, 100,000+ trips) is simulated
first with ``benchmarks/simulate.py``'s recorder into a temporary directory. Goals (issue 6):
reconciliation <= 10x the sort and <= 5 minutes for the region day on this machine.
Parsing the upload JSON is not timed (that is ingest's work; the backend reads stored rows).
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, this folder is first on sys.path, and benchmarks/onboard.py would shadow
# the onboard package.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).parent]

import argparse  # noqa: E402
import gc  # noqa: E402
import resource  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from backend.trips.reconciliation import (  # noqa: E402
    DetectedTrip,
    conflict_losers,
)
from backend.trips.resolution import TokenResolver  # noqa: E402
from simulator.offline import DAY_INTERVALS, reconcile_one, vehicle_data  # noqa: E402
from simulator.recording import Recording  # noqa: E402
from simulator.scoring import score  # noqa: E402
from simulator.sweep import scored_trips  # noqa: E402
from simulator.truth import GroundTruth  # noqa: E402

GOAL_SORT_RATIO = 10.0
GOAL_SECONDS = 300.0


def argsort_baseline(tokens: np.ndarray, times: np.ndarray) -> float:
    """Seconds for ``numpy.argsort`` of all sightings by (token, time)."""
    table = np.empty(len(times), dtype=[("token", "S16"), ("t", "i8")])
    table["token"], table["t"] = tokens, times
    start = time.perf_counter()
    np.argsort(table, order=("token", "t"), kind="stable")
    return time.perf_counter() - start


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--recording", type=Path, help="a `bibo simulate` recording directory")
    parser.add_argument("--jobs", type=int, default=2, help="processes for the simulation")
    args = parser.parse_args()

    tmp = None
    path = args.recording
    if path is None:
        tmp = tempfile.TemporaryDirectory(prefix="bibo-region-")
        path = Path(tmp.name) / "region"
        print(f"simulating a region day into {path} (benchmarks/simulate.py) ...", flush=True)
        subprocess.run(
            [
                sys.executable,
                str(Path(__file__).with_name("simulate.py")),
                "--out",
                str(path),
                "--jobs",
                str(args.jobs),
            ],
            check=False,  # a missed simulation-time target is that benchmark's verdict
        )
        if not (path / "truth.json").is_file():
            print(f"the simulation wrote no recording into {path}", file=sys.stderr)
            return 1
    try:
        recording = Recording.open(path)
        devices = list(recording.device_keys().items())
        resolver = TokenResolver(devices, cache_intervals=DAY_INTERVALS)
        # One vehicle-day at a time, as the workers do: memory stays bounded by the busiest
        # bus, plus the (token, time) columns kept for the sort baseline.
        load_s = reconcile_s = 0.0
        trips: list[DetectedTrip] = []
        resolved = n_sightings = 0
        token_cols: list[np.ndarray] = []
        time_cols: list[np.ndarray] = []
        for entry in recording.vehicles:
            started = time.perf_counter()
            vid = entry["vehicle_id"]
            data = vehicle_data(vid, recording.batches(vid))
            load_s += time.perf_counter() - started
            token_cols.append(np.array([bytes.fromhex(x) for x in data.token], dtype="S16"))
            time_cols.append(np.asarray(data.t, dtype=np.int64))
            started = time.perf_counter()
            found, n = reconcile_one(data, resolver)
            reconcile_s += time.perf_counter() - started
            trips.extend(found)
            resolved += n
            n_sightings += len(data.t)
            del data
        started = time.perf_counter()
        losers = conflict_losers(trips)
        reconcile_s += time.perf_counter() - started
        vehicles = recording.vehicles
        gc.collect()
        sort_s = argsort_baseline(np.concatenate(token_cols), np.concatenate(time_cols))
        ratio = reconcile_s / sort_s

        truth = GroundTruth.load(path / "truth.json")
        person_of = {t.device_id: t.person_id for t in truth.trips if t.device_id}
        person_of |= {e.device_id: e.person_id for e in truth.bystander_encounters if e.device_id}
        scores = score(truth, scored_trips(trips, losers), person_of)

        print(
            f"region day {recording.service_day}: {len(vehicles)} buses, "
            f"{len(devices):,} devices, {n_sightings:,} sightings "
            f"({resolved:,} resolved), {len(truth.trips):,} true trips"
        )
        print(f"  loading the uploads (not timed below): {load_s:.1f} s")
        print(
            f"reconciliation: {reconcile_s:.1f} s wall = {n_sightings / reconcile_s:,.0f} "
            f"sightings/s -> {len(trips) - len(losers):,} trips "
            f"({len(losers):,} cross-vehicle conflicts)"
        )
        print(
            f"  goal <= {GOAL_SECONDS:.0f} s: {'met' if reconcile_s <= GOAL_SECONDS else 'NOT met'}"
        )
        print(f"numpy.argsort of the same sightings by (token, time): {sort_s:.2f} s")
        print(
            f"  reconciliation / sort = {ratio:.1f}x   goal <= {GOAL_SORT_RATIO:.0f}x: "
            f"{'met' if ratio <= GOAL_SORT_RATIO else 'NOT met'}"
        )
        print(f"peak memory (RSS): {peak_rss_mb():,.0f} MB")
        print(
            f"detection on the region day: precision {scores.precision:.4f}, "
            f"recall {scores.recall:.4f}, F1 {scores.f1:.4f}"
        )
        return 0
    finally:
        if tmp is not None:
            tmp.cleanup()


if __name__ == "__main__":
    sys.exit(main())
