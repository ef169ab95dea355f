"""What one upload costs a reconciliation worker during the day: rebuilding the journeys
that upload touched (``reconciliation.rebuild_from``, what ``bibo worker`` does) against
rebuilding the bus's whole day so far (what it did before), measured in the same run on
the same moments of a recorded day.

    .venv/bin/python benchmarks/live.py [--recording DIR] [--every-s 300] [--level absolute]

Without ``--recording`` the ``ordinary-weekday`` scenario (10 buses, 05:00-22:00) is
recorded first into a temporary directory. At every ``--every-s`` of each bus's day the
benchmark takes the data the backend would hold then and times both rebuilds (token
resolution included; reading the rows from the database is not). It prints the cost per
upload and what it means for the region: 660 buses uploading every 10 s (66 uploads/s)
against this machine's two cores. Goal: the region's uploads need at most one core, so
the be-out (decided 45 s after the bus leaves for a phone heard every second, known one
upload and one worker pass later) stays within two minutes. ``--level`` measures another
level model than the default (``backend.const.LEVELS_RELATIVE``, the relative one, which
also scores the journeys that calibrate the rebuilt ones' levels; the absolute one scores
only the rebuilt journeys).
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, this folder is first on sys.path, and benchmarks/onboard.py would shadow
# the onboard package.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).parent]

import argparse  # noqa: E402
import bisect  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass  # noqa: E402

import numpy as np  # noqa: E402

from backend.trips.reconciliation import (  # noqa: E402
    DEFAULT_LEVEL,
    LEVEL_CHOICES,
    LevelModel,
    journeys_from_events,
    level_model_named,
    rebuild_plan,
    reconcile_journeys,
)
from backend.trips.resolution import (  # noqa: E402
    TokenResolver,
    resolved_observations,
)
from backend.trips.stops import stop_index  # noqa: E402
from onboard.const import UPLOAD_INTERVAL_MS  # noqa: E402
from simulator.day import plan_day  # noqa: E402
from simulator.network import load_network  # noqa: E402
from simulator.offline import DAY_INTERVALS, VehicleData, vehicle_data  # noqa: E402
from simulator.recording import Recording, write_recording  # noqa: E402
from simulator.scenarios import scenario  # noqa: E402

REGION_BUSES = 660
REGION_UPLOADS_PER_S = REGION_BUSES * 1000 / UPLOAD_INTERVAL_MS
CORES = 2
GOAL_CORES = 1.0


@dataclass(frozen=True)
class SortedDay:
    """A bus's day as the repository returns it: rows by time, as lists (reading them is
    not timed)."""

    data: VehicleData
    t: np.ndarray
    tokens: list[bytes]
    rssi: list[int]
    tx: list[int | None]
    event_t: list[int]

    @classmethod
    def of(cls, data: VehicleData) -> SortedDay:
        order = np.argsort(np.asarray(data.t, dtype=np.int64), kind="stable")
        data.events.sort(key=lambda e: e.t)
        return cls(
            data,
            np.asarray(data.t, dtype=np.int64)[order],
            [bytes.fromhex(data.token[i]) for i in order],
            [data.rssi[i] for i in order],
            [data.tx[i] for i in order],
            [e.t for e in data.events],
        )


def rebuild(
    day: SortedDay,
    now: int,
    resolver: TokenResolver,
    incremental: bool,
    level: LevelModel = DEFAULT_LEVEL,
) -> float:
    """Seconds to rebuild the bus's trips at ``now`` from the newest upload's data on
    (``incremental``) or from the start of the day."""
    data, t = day.data, day.t
    events = data.events[: bisect.bisect_left(day.event_t, now)]
    started = time.perf_counter()
    journeys = journeys_from_events(data.vehicle_id, events, stop_index(), now)
    # As the worker: the journeys rebuilt and those that calibrate their levels.
    plan = rebuild_plan(journeys, now - UPLOAD_INTERVAL_MS if incremental else 0, level)
    first, context_from = plan.first, plan.context_from
    lo, hi = np.searchsorted(t, [plan.read_from, now])
    obs, _ = resolved_observations(
        data.vehicle_id,
        t[lo:hi],
        day.tokens[lo:hi],
        day.rssi[lo:hi],
        day.tx[lo:hi],
        data.window_ms,
        now,
        resolver,
    )
    reconcile_journeys(
        journeys[context_from:], obs, resolver.device_ids, level, context=first - context_from
    )
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--recording", type=Path, help="a `bibo simulate` recording directory")
    parser.add_argument("--every-s", type=int, default=300, help="moments sampled per bus")
    parser.add_argument(
        "--level",
        choices=LEVEL_CHOICES,
        default="default",
        help="the level model (default: backend.const's)",
    )
    args = parser.parse_args()
    level = level_model_named(args.level)

    tmp = None
    path = args.recording
    if path is None:
        tmp = tempfile.TemporaryDirectory(prefix="bibo-live-")
        path = Path(tmp.name) / "ordinary-weekday"
        s = scenario("ordinary-weekday")
        print(f"recording {s.name} into {path} ...", flush=True)
        write_recording(
            plan_day(load_network(), s.config, s.seed),
            path,
            name=s.name,
            description=s.description,
            radio_seed=s.radio_seed,
            recorder="fast",
            upload_interval_ms=UPLOAD_INTERVAL_MS,
            jobs=2,
        )
    try:
        recording = Recording.open(path)
        resolver = TokenResolver(
            list(recording.device_keys().items()), cache_intervals=DAY_INTERVALS
        )
        journey_s: list[float] = []
        day_s: list[float] = []
        for entry in recording.vehicles:
            data = vehicle_data(entry["vehicle_id"], recording.batches(entry["vehicle_id"]))
            if not data.t:
                continue
            day = SortedDay.of(data)
            for now in range(int(day.t[0]) + 600_000, int(day.t[-1]), args.every_s * 1000):
                # Both at the same moment, on the same data (the resolver cache is warm).
                journey_s.append(rebuild(day, now, resolver, True, level))
                day_s.append(rebuild(day, now, resolver, False, level))
        j, d = np.array(journey_s), np.array(day_s)
        need = REGION_UPLOADS_PER_S * j.mean()
        need_day = REGION_UPLOADS_PER_S * d.mean()
        print(
            f"{recording.name}: {len(recording.vehicles)} buses, {len(j):,} moments "
            f"(every {args.every_s} s of each bus's day), "
            f"{level.name} level model"
        )
        print(
            f"journey rebuild per upload: mean {1000 * j.mean():.2f} ms, "
            f"p95 {1000 * np.percentile(j, 95):.2f} ms, max {1000 * j.max():.2f} ms"
        )
        print(
            f"whole-day rebuild per upload (baseline): mean {1000 * d.mean():.2f} ms, "
            f"p95 {1000 * np.percentile(d, 95):.2f} ms, max {1000 * d.max():.2f} ms"
        )
        print(f"  whole day / journey = {d.mean() / j.mean():.1f}x")
        print(
            f"region ({REGION_BUSES} buses, one upload each per {UPLOAD_INTERVAL_MS // 1000} s "
            f"= {REGION_UPLOADS_PER_S:.0f} uploads/s): journey rebuilds need {need:.2f} cores, "
            f"whole-day rebuilds {need_day:.2f} cores, of this machine's {CORES}"
        )
        print(
            f"  goal <= {GOAL_CORES:.0f} core for the region's uploads: "
            f"{'met' if need <= GOAL_CORES else 'NOT met'}"
        )
        return 0
    finally:
        if tmp is not None:
            tmp.cleanup()


if __name__ == "__main__":
    sys.exit(main())
