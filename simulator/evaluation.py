"""``bibo evaluate``: score the real reconciliation and the naive baseline on recordings.

For each recorded scenario the real reconciliation runs as the backend itself, in
subprocesses like the demo: a fresh SQLite work directory, ``bibo devices import``,
``bibo vehicles add``, ``bibo serve``, the batches replayed over HTTP, ``POST
/v1/reconcile``, ``GET /v1/trips`` — or its trips come from a ``--trips`` file (the output
of ``bibo trips --format json``). The naive baseline runs here on the recorded batches.

Measures per scenario and method: trip precision, recall and F1; exact boarding and
alighting stop accuracy; bystanders wrongly charged per 1,000 bystander encounters (and by
kind); euro error per passenger-day (see :mod:`simulator.pricing`); and the be-out
latency.

The be-out latency (``beout_known``, the table's column) is counted from the bus leaving
the rider's true alighting stop to the moment the backend knows the be-out: each closed
trip says on which data its be-out was decided (``alight_known_at``, a data time); the
backend has that data with the production agent's first upload sealed after it (every 10
s; the library itself is recorded with 60 s batches, see LIBRARY_UPLOAD_INTERVAL_MS) and
reconciles it within WORKER_PASS_S. That the decision on the data up to
``alight_known_at`` is the final one is tested in tests/simulator/test_fixed_lag.py.
``beout_latency`` is the evidence bound beside it: from the alighting moment to the
upload carrying the departure plus BEOUT_ABSENCE_MS without the phone.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from rich.console import Console
from rich.table import Table

from backend.trips.resolution import TokenResolver
from onboard.const import UPLOAD_INTERVAL_MS
from simulator.backend_proc import (
    BackendError,
    add_vehicles,
    backend_env,
    backend_server,
    bibo,
    free_port,
    last_line,
)
from simulator.baseline import VehicleRecord, naive_trips, read_vehicle
from simulator.const import BEOUT_ABSENCE_MS, BEOUT_GOAL_S, EVALUATION_VERSION, WORKER_PASS_S
from simulator.network import load_network
from simulator.offline import DAY_INTERVALS, vehicle_data
from simulator.pricing import MoneyScores, Pricer, money_scores
from simulator.recording import Recording, RecordingError
from simulator.replay import replay_sync
from simulator.scoring import ScoredTrip, Scores, detectable, score
from simulator.truth import GroundTruth

METHODS = ("bibo", "naive")


@dataclass
class MethodResult:
    """One method's scores on one scenario."""

    scores: Scores
    money: MoneyScores | None
    beout: dict[str, float | int | None] | None = None
    """``beout_known`` when the method's trips say when their be-out was decided."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "scores": self.scores.as_dict(),
            "money": self.money.as_dict() if self.money else None,
            "beout_known": self.beout,
        }


@dataclass
class ScenarioResult:
    """The evaluation of one recorded scenario."""

    name: str
    path: str
    description: str
    methods: dict[str, MethodResult]
    latency: dict[str, dict[str, float | int | None]]
    source: str
    seconds: dict[str, float] = field(default_factory=dict)
    backend_charges: dict[str, int] | None = None
    """What ``GET /v1/charges`` billed for bibo's trips (a cross-check of the simulator's
    pricing of the same trips, ``methods["bibo"].money.revenue_detected_cents``)."""

    def margin(self) -> dict[str, float | None]:
        """bibo minus naive for the headline measures (None when a side has no value)."""
        if "bibo" not in self.methods:
            return {}
        a, b = self.methods["bibo"], self.methods["naive"]

        def diff(x: float | None, y: float | None) -> float | None:
            return None if x is None or y is None else x - y

        return {
            "precision": diff(a.scores.precision, b.scores.precision),
            "recall": diff(a.scores.recall, b.scores.recall),
            "f1": diff(a.scores.f1, b.scores.f1),
            "board_stop_accuracy": diff(a.scores.board_stop_accuracy, b.scores.board_stop_accuracy),
            "alight_stop_accuracy": diff(
                a.scores.alight_stop_accuracy, b.scores.alight_stop_accuracy
            ),
            "per_1000_encounters": diff(a.scores.per_1000_encounters, b.scores.per_1000_encounters),
            "mean_abs_error_cents": diff(
                a.money.mean_abs_error_cents if a.money else None,
                b.money.mean_abs_error_cents if b.money else None,
            ),
        }

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "path": self.path,
            "description": self.description,
            "source": self.source,
            "methods": {k: v.as_dict() for k, v in self.methods.items()},
            "margin": self.margin(),
            "beout_latency": self.latency,
            "backend_charges": self.backend_charges,
            "seconds": self.seconds,
        }


class EvaluationError(Exception):
    """The evaluation could not run; one line for the user."""


def find_recordings(path: Path) -> list[Path]:
    """``path`` itself if it is a recording, else its sub-directories that are, sorted."""
    if (path / "scenario.json").is_file():
        return [path]
    found = (
        sorted(p for p in path.iterdir() if (p / "scenario.json").is_file())
        if path.is_dir()
        else []
    )
    if not found:
        raise EvaluationError(f"{path}: no recording (scenario.json) here or one level below")
    return found


def person_of(device_id: str) -> str:
    """The simulator's person id in a recorded device id ``d-<tag>-<person>``."""
    return device_id.split("-", 2)[-1]


def detected_from_json(trips: Sequence[dict[str, Any]]) -> list[ScoredTrip]:
    """Trips as ``GET /v1/trips`` or ``bibo trips --format json`` return them."""
    return [
        ScoredTrip(
            device_id=str(t["device_id"]),
            vehicle_id=str(t["vehicle_id"]),
            journey_id=str(t.get("journey_id") or ""),
            board_stop_id=str(t["board_stop_id"]),
            board_time=int(t["board_time"]),
            alight_stop_id=str(t["alight_stop_id"]),
            alight_time=int(t["alight_time"]),
            alight_known_at=(
                None if t.get("alight_known_at") is None else int(t["alight_known_at"])
            ),
        )
        for t in trips
    ]


def _summary(values: Sequence[float], missing: int) -> dict[str, float | int | None]:
    if not values:
        return {
            "trips": 0,
            "p50_s": None,
            "p95_s": None,
            "p99_s": None,
            "max_s": None,
            "missing": missing,
        }
    a = np.array(values)
    return {
        "trips": len(values),
        "p50_s": round(float(np.percentile(a, 50)), 1),
        "p95_s": round(float(np.percentile(a, 95)), 1),
        "p99_s": round(float(np.percentile(a, 99)), 1),
        "max_s": round(float(a.max()), 1),
        "missing": missing,
    }


Departures = dict[tuple[str, str, str], int]
"""Departure time per (vehicle, journey, stop), from the recorded events."""


def departures_of(records: Sequence[VehicleRecord]) -> Departures:
    """Departure time per (vehicle, journey, stop) from the recorded events."""
    departures: Departures = {}
    for r in records:
        journey = ""
        for e in r.events:
            if e.type == "journey":
                journey = str(e.journey_id)
            elif e.type == "departure":
                departures[(r.vehicle_id, journey, str(e.stop_id))] = e.t
    return departures


def _production_seal(first_seal: int, t: int, interval_ms: int) -> int:
    """The first seal at or after ``t`` of an agent sealing every ``interval_ms`` from
    ``first_seal`` (it seals every interval, with heartbeats)."""
    return first_seal + max(0, -(-(t - first_seal) // interval_ms)) * interval_ms


def beout_latency(
    records: Sequence[VehicleRecord],
    truth: GroundTruth,
    departures: Departures,
    window_ms: int,
    production_interval_ms: int = UPLOAD_INTERVAL_MS,
) -> dict[str, dict[str, float | int | None]]:
    """Seconds from alighting to the upload carrying the be-out evidence (p50, p95, max):
    a lower bound for any method, reached if it decided on the first upload after it.

    The evidence is complete at E = departure from the alighting stop + BEOUT_ABSENCE_MS
    + one window. ``recorded``: the first recorded batch sealed at or after E.
    ``production``: the first seal at or after E of an agent sealing every
    ``production_interval_ms`` from the same first seal.
    """
    sent = {r.vehicle_id: np.sort(r.sent_at) for r in records}
    recorded: list[float] = []
    production: list[float] = []
    missing = 0
    for t in truth.trips:
        if not detectable(t):
            continue
        dep = departures.get((t.vehicle_id, t.journey_id, t.alight_stop_id))
        s = sent.get(t.vehicle_id)
        if dep is None or s is None or s.size == 0:
            missing += 1
            continue
        evidence = dep + BEOUT_ABSENCE_MS + window_ms
        k = int(np.searchsorted(s, evidence))
        if k >= s.size:
            missing += 1
            continue
        recorded.append((int(s[k]) - t.alight_time) / 1000)
        seal = _production_seal(int(s[0]), evidence, production_interval_ms)
        production.append((seal - t.alight_time) / 1000)
    return {"recorded": _summary(recorded, missing), "production": _summary(production, missing)}


def beout_known(
    records: Sequence[VehicleRecord],
    truth: GroundTruth,
    departures: Departures,
    detected: Sequence[ScoredTrip],
    scores: Scores,
    window_ms: int,
    production_interval_ms: int = UPLOAD_INTERVAL_MS,
) -> dict[str, float | int | None]:
    """When the backend knew each matched rider's be-out, in seconds after the bus left the
    true alighting stop (the issue's measure), with the share within ``BEOUT_GOAL_S``.

    The backend decides a be-out on the data up to the trip's ``alight_known_at``; it has
    that data once the production agent's first upload sealed a window or more after it
    arrives, and reconciles it within ``WORKER_PASS_S``. A matched trip left open
    counts as not known; ``unmatched`` true trips (missed, see recall) are left out of the
    share.
    """
    first_seal = {r.vehicle_id: int(np.min(r.sent_at)) for r in records if len(r.sent_at)}
    values: list[float] = []
    never = 0
    for k, i in scores.matched_pairs:  # i indexes truth.trips
        d, t = detected[k], truth.trips[i]
        dep = departures.get((t.vehicle_id, t.journey_id, t.alight_stop_id))
        first = first_seal.get(t.vehicle_id)
        if d.alight_known_at is None or dep is None or first is None:
            never += 1
            continue
        # The agent's upload sealed at S carries the windows closed by S (up to S - window).
        seal = _production_seal(first, d.alight_known_at + window_ms, production_interval_ms)
        values.append((seal - dep) / 1000 + WORKER_PASS_S)
    summary = _summary(values, never)
    matched = len(scores.matched_pairs)
    within = sum(v <= BEOUT_GOAL_S for v in values)
    summary["within_goal"] = round(within / matched, 4) if matched else None
    summary["unmatched"] = scores.truth_trips - matched
    return summary


def _workdir_base() -> str | None:
    shm = Path("/dev/shm")
    return str(shm) if shm.is_dir() and shm.stat().st_mode & 0o002 else None


def backend_trips(
    recording: Recording, workdir: Path, console: Console
) -> tuple[list[dict[str, Any]], list[dict[str, Any]] | None, dict[str, float]]:
    """Run the backend on the recording in ``workdir``: its trips of the service day, its
    charges (``GET /v1/charges``, None if it could not price them) and timings."""
    env = backend_env(workdir)
    timings: dict[str, float] = {}
    t0 = time.monotonic()
    bibo(["devices", "import", str(recording.path / "devices.json")], env)
    secrets = add_vehicles([v["vehicle_id"] for v in recording.vehicles], env)
    # POST /v1/reconcile below takes the agent role.
    token = last_line(bibo(["operators", "add", "evaluation", "--role", "agent"], env))
    timings["setup_s"] = round(time.monotonic() - t0, 1)
    with backend_server(env, free_port(), workdir / "server.log") as url:
        t0 = time.monotonic()
        result = replay_sync(recording.path, url, secrets)
        timings["replay_s"] = round(time.monotonic() - t0, 1)
        if result.failures:
            raise BackendError(
                f"{len(result.failures)} of {result.batches} batches refused, first: "
                f"{result.failures[0]}"
            )
        console.log(
            f"{recording.name}: replayed {result.delivered} batches in {timings['replay_s']} s"
        )
        auth = {"Authorization": f"Bearer {token}"}
        day = recording.service_day
        t0 = time.monotonic()
        r = httpx.post(f"{url}/v1/reconcile?service_day={day}", headers=auth, timeout=3600)
        if r.status_code != 200:
            raise BackendError(f"reconcile: HTTP {r.status_code}: {r.text[:300]}")
        r = httpx.get(f"{url}/v1/trips?service_day={day}", headers=auth, timeout=600)
        if r.status_code != 200:
            raise BackendError(f"trips: HTTP {r.status_code}: {r.text[:300]}")
        timings["reconcile_s"] = round(time.monotonic() - t0, 1)
        trips: list[dict[str, Any]] = r.json()
        r = httpx.get(f"{url}/v1/charges?service_day={day}", headers=auth, timeout=600)
        charges = r.json() if r.status_code == 200 else None
    return trips, charges, timings


def evaluate_recording(
    path: Path,
    console: Console | None = None,
    *,
    trips_file: Path | None = None,
    use_backend: bool = True,
    keep_workdir: Path | None = None,
    pricer: Pricer | None = None,
) -> ScenarioResult:
    """Score the naive baseline and (from the backend or ``trips_file``) bibo on one recording."""
    recording = Recording.open(path)
    try:
        truth = GroundTruth.load(path / "truth.json")
    except FileNotFoundError:
        raise RecordingError(f"{path / 'truth.json'}: missing") from None
    device_ids = [d["device_id"] for d in recording.devices]
    person = {d: person_of(d) for d in device_ids}
    category = {person_of(d["device_id"]): d["rider_category"] for d in recording.devices}
    t0 = time.monotonic()
    resolver = TokenResolver(list(recording.device_keys().items()), cache_intervals=DAY_INTERVALS)
    records = [
        read_vehicle(vehicle_data(v["vehicle_id"], recording.batches(v["vehicle_id"])), resolver)
        for v in recording.vehicles
    ]
    naive = [trip for r in records for trip in naive_trips(r, resolver.device_ids)]
    seconds = {"read_and_naive_s": round(time.monotonic() - t0, 1)}
    network = recording.network()
    if network is not None:
        pricer = Pricer(network)
    pricer = pricer or Pricer(load_network())
    detectable_trips = [t for t in truth.trips if detectable(t)]
    window_ms = int(recording.scenario.get("window_ms", 1000))
    departures = departures_of(records)

    def result(detected: list[ScoredTrip]) -> MethodResult:
        s = score(truth, detected, person)
        m = money_scores(pricer, detectable_trips, detected, person, category)
        decided = any(d.alight_known_at is not None for d in detected)
        beout = beout_known(records, truth, departures, detected, s, window_ms) if decided else None
        return MethodResult(s, m, beout)

    methods: dict[str, MethodResult] = {}
    backend_charges: dict[str, int] | None = None
    source = "none"
    if trips_file is not None:
        try:
            raw = json.loads(trips_file.read_text("utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise EvaluationError(f"--trips {trips_file}: {exc}") from None
        methods["bibo"] = result(detected_from_json(raw))
        source = f"trips file {trips_file}"
    elif use_backend:
        workdir = keep_workdir or Path(tempfile.mkdtemp(prefix="bibo-eval-", dir=_workdir_base()))
        if keep_workdir is not None:
            shutil.rmtree(workdir, ignore_errors=True)
            workdir.mkdir(parents=True)
        try:
            trips, charges, timings = backend_trips(
                recording, workdir, console or Console(stderr=True)
            )
        finally:
            if keep_workdir is None:
                shutil.rmtree(workdir, ignore_errors=True)
        seconds.update(timings)
        methods["bibo"] = result(detected_from_json(trips))
        if charges is not None:
            backend_charges = {
                "passengers": len(charges),
                "revenue_cents": sum(int(c["total_cents"]) for c in charges),
            }
        source = "backend (bibo serve + replay + POST /v1/reconcile)"
    methods["naive"] = result(naive)
    latency = beout_latency(records, truth, departures, window_ms)
    return ScenarioResult(
        recording.name,
        str(path),
        str(recording.scenario.get("description", "")),
        methods,
        latency,
        source,
        seconds,
        backend_charges,
    )


# --- report -----------------------------------------------------------------------------


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.1f}"


def _num(x: float | None, fmt: str = "{:.1f}") -> str:
    return "–" if x is None else fmt.format(x)


def _signed(x: float | None, scale: float = 100.0, fmt: str = "{:+.1f}") -> str:
    return "–" if x is None else fmt.format(scale * x)


def _beout_cell(beout: dict[str, float | int | None] | None) -> str:
    if beout is None:
        return "–"
    share = beout.get("within_goal")
    return f"{_pct(None if share is None else float(share))} ({_num(beout.get('p95_s'))})"


def report_table(results: Sequence[ScenarioResult]) -> Table:
    """One block of rows per scenario: bibo, naive, and the margin."""
    table = Table(title="Trip detection against ground truth (bibo = the backend's reconciliation)")
    for col, justify in (
        ("scenario", "left"),
        ("method", "left"),
        ("true/det", "right"),
        ("P %", "right"),
        ("R %", "right"),
        ("F1", "right"),
        ("board %", "right"),
        ("alight %", "right"),
        ("bystanders charged /1000 enc", "right"),
        ("€ err /pax-day", "right"),
        (f"be-out <= {BEOUT_GOAL_S:.0f} s % (p95 s)", "right"),
    ):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    for res in results:
        for method in METHODS:
            if method not in res.methods:
                continue
            m = res.methods[method]
            s = m.scores
            euro = (
                m.money.mean_abs_error_cents / 100
                if m.money and m.money.mean_abs_error_cents is not None
                else None
            )
            table.add_row(
                res.name if method == "bibo" or "bibo" not in res.methods else "",
                method,
                f"{s.truth_trips}/{s.detected_trips}",
                _pct(s.precision),
                _pct(s.recall),
                f"{s.f1:.3f}",
                _pct(s.board_stop_accuracy),
                _pct(s.alight_stop_accuracy),
                f"{_num(s.per_1000_encounters)} ({s.bystanders_charged}/{s.bystander_encounters})",
                _num(euro, "{:.2f}"),
                _beout_cell(m.beout),
            )
        margin = res.margin()
        if margin:
            euro_m = margin["mean_abs_error_cents"]
            table.add_row(
                "",
                "margin",
                "",
                _signed(margin["precision"]),
                _signed(margin["recall"]),
                _signed(margin["f1"], 1.0, "{:+.3f}"),
                _signed(margin["board_stop_accuracy"]),
                _signed(margin["alight_stop_accuracy"]),
                _signed(margin["per_1000_encounters"], 1.0),
                _signed(euro_m / 100 if euro_m is not None else None, 1.0, "{:+.2f}"),
                "",
                end_section=True,
            )
    return table


def kinds_table(results: Sequence[ScenarioResult]) -> Table:
    """Bystanders charged by kind of encounter, bibo and naive."""
    kinds = sorted(
        {k for r in results for m in r.methods.values() for k in m.scores.encounters_by_kind}
        | {k for r in results for m in r.methods.values() for k in m.scores.bystanders_by_kind}
    )
    table = Table(title="Bystanders wrongly charged by encounter kind (bibo / naive) of encounters")
    table.add_column("scenario")
    for k in kinds:
        table.add_column(k, justify="right")
    for r in results:
        row = [r.name]
        enc = next(iter(r.methods.values())).scores.encounters_by_kind
        for k in kinds:
            b = (
                r.methods["bibo"].scores.bystanders_by_kind.get(k, 0)
                if "bibo" in r.methods
                else None
            )
            n = r.methods["naive"].scores.bystanders_by_kind.get(k, 0)
            row.append(f"{'–' if b is None else b}/{n} of {enc.get(k, 0)}")
        table.add_row(*row)
    return table


def write_json(results: Sequence[ScenarioResult], path: Path) -> None:
    """The versioned evaluation report."""
    doc = {"version": EVALUATION_VERSION, "scenarios": [r.as_dict() for r in results]}
    path.write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n", "utf-8")


def write_plot(results: Sequence[ScenarioResult], path: Path) -> None:
    """A PNG with the headline measures per scenario, bibo beside naive."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [r.name for r in results]
    x = np.arange(len(names))
    width = 0.38

    def f1(s: Scores, m: MoneyScores | None) -> float:
        return s.f1

    def alight(s: Scores, m: MoneyScores | None) -> float:
        return s.alight_stop_accuracy or 0.0

    def charged(s: Scores, m: MoneyScores | None) -> float:
        return s.per_1000_encounters or 0.0

    def euro(s: Scores, m: MoneyScores | None) -> float:
        return (m.mean_abs_error_cents or 0.0) / 100 if m else 0.0

    panels: tuple[tuple[str, Callable[[Scores, MoneyScores | None], float]], ...] = (
        ("trip F1", f1),
        ("exact alighting stop", alight),
        ("bystanders charged per 1000 encounters", charged),
        ("€ error per passenger-day", euro),
    )
    fig, axes = plt.subplots(2, 2, figsize=(13, 8), constrained_layout=True)
    for ax, (title, get) in zip(axes.flat, panels, strict=True):
        for k, method in enumerate(METHODS):
            vals = [
                get(r.methods[method].scores, r.methods[method].money)
                if method in r.methods
                else 0.0
                for r in results
            ]
            ax.bar(x + (k - 0.5) * width, vals, width, label=method)
        ax.set_title(title)
        ax.set_xticks(x, names, rotation=30, ha="right", fontsize=8)
        ax.grid(axis="y", alpha=0.3)
    axes.flat[0].legend()
    fig.suptitle("bibo evaluate: real reconciliation vs naive RSSI baseline")
    fig.savefig(path, dpi=110)
    plt.close(fig)
