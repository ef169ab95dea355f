"""``bibo evaluate --worlds``: bibo and the naive baseline scored over many drawn worlds.

A world (:mod:`simulator.world`) is one draw of radio and fleet parameters. Every scenario
of the library is planned, recorded with the fast recorder in that world, reconciled in
this process exactly as the backend's workers do (:mod:`simulator.offline`: the same
resolver and reconciliation code on the same upload bodies) and scored against the ground
truth; the naive threshold rule runs beside on the same uploads. A world's figures pool
its scenarios (trips, matches, encounters), so a world is one row of the table.

Two named sets keep training and test apart (``TRAINING_WORLDS``, ``TEST_WORLDS`` in
:mod:`simulator.const`): constants are fitted on the training worlds only
(``bibo calibrate``), and the report prints the test worlds beside them with the gap.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable, Container, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Final

import numpy as np
from rich.table import Table

from backend.trips.reconciliation import DEFAULT_LEVEL, DetectedTrip, LevelModel
from backend.trips.resolution import TokenResolver
from simulator.baseline import VehicleRecord, naive_trips, read_vehicle
from simulator.const import (
    ABLATIONS,
    GOAL_ABLATION_F1,
    GOAL_BEIN_P95_S,
    GOAL_BEOUT_P99_S,
    GOAL_BYSTANDERS_PER_1000,
    GOAL_EXACT_STOPS,
    GOAL_FLIP_FLOPS,
    GOAL_MEDIAN_F1,
    GOAL_WORLD_F1,
)
from simulator.day import DayPlan, has_background_location, plan_day
from simulator.evaluation import person_of
from simulator.latency import ADVERTISING, BEACON, LatencyCounts, paced_latency
from simulator.misses import MISS_CAUSES, Span, Terms, explain_day
from simulator.network import Network, load_network
from simulator.offline import (
    DAY_INTERVALS,
    PhoneRows,
    VehicleData,
    reconcile_region,
    region_resolvers,
    vehicle_data,
)
from simulator.parallel import fork_map
from simulator.recording import Recorded, Recording, write_recording
from simulator.scenarios import Scenario, library
from simulator.scoring import ScoredTrip, Scores, detectable, score
from simulator.truth import GroundTruth, TruthTrip
from simulator.world import DEFAULT_WORLD, World

METHODS = ("bibo", "naive")


@dataclass
class Counts:
    """Pooled counts of one method over a world's scenarios."""

    truth: int = 0
    detected: int = 0
    matched: int = 0
    board_ok: int = 0
    alight_ok: int = 0
    alight_observable: int = 0
    charged: int = 0
    encounters: int = 0
    rides_by_heard: dict[str, int] = field(default_factory=dict)
    """Rides per ``HEARD_BUCKETS`` label: how often the bus heard the rider's phone."""
    missed_by_heard: dict[str, int] = field(default_factory=dict)
    """Of those, the rides the method missed."""
    missed_by_cause: dict[str, int] = field(default_factory=dict)
    """bibo's missed rides (with a registered phone) per ``misses.MISS_CAUSES`` entry."""
    charged_by_kind: dict[str, int] = field(default_factory=dict)
    """Bystanders charged per kind of their encounter with the bus (``none``: none)."""
    encounters_by_kind: dict[str, int] = field(default_factory=dict)
    """Bystander encounters per kind."""

    def add(self, s: Scores) -> None:
        self.truth += s.truth_trips
        self.detected += s.detected_trips
        self.matched += s.matched
        self.board_ok += s.board_stop_correct
        self.alight_ok += s.alight_stop_correct
        self.alight_observable += s.matched - s.alight_unobservable
        self.charged += s.bystanders_charged
        self.encounters += s.bystander_encounters
        for mine, theirs in (
            (self.charged_by_kind, s.bystanders_by_kind),
            (self.encounters_by_kind, s.encounters_by_kind),
        ):
            for kind, n in theirs.items():
                mine[kind] = mine.get(kind, 0) + n

    def merge(self, other: Counts) -> None:
        """Pool ``other``'s counts into these."""
        for name in (
            "truth",
            "detected",
            "matched",
            "board_ok",
            "alight_ok",
            "alight_observable",
            "charged",
            "encounters",
        ):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for mine, theirs in (
            (self.rides_by_heard, other.rides_by_heard),
            (self.missed_by_heard, other.missed_by_heard),
            (self.missed_by_cause, other.missed_by_cause),
            (self.charged_by_kind, other.charged_by_kind),
            (self.encounters_by_kind, other.encounters_by_kind),
        ):
            for key, n in theirs.items():
                mine[key] = mine.get(key, 0) + n

    def add_cause(self, cause: str) -> None:
        """Count one missed ride put down to ``cause``."""
        self.missed_by_cause[cause] = self.missed_by_cause.get(cause, 0) + 1

    def add_heard(self, truth: GroundTruth, shares: Sequence[float | None], s: Scores) -> None:
        """Count the rides ``s`` scored (the detectable ones of ``truth``) by the
        ``heard_bucket`` of their ``shares`` (``heard_shares``)."""
        matched = {i for _, i in s.matched_pairs}  # indexes truth.trips
        for i, share in enumerate(shares):
            if not detectable(truth.trips[i]):
                continue
            bucket = heard_bucket(share)
            self.rides_by_heard[bucket] = self.rides_by_heard.get(bucket, 0) + 1
            if i not in matched:
                self.missed_by_heard[bucket] = self.missed_by_heard.get(bucket, 0) + 1

    @property
    def precision(self) -> float:
        return self.matched / self.detected if self.detected else 1.0

    @property
    def recall(self) -> float:
        return self.matched / self.truth if self.truth else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    @property
    def exact_stops(self) -> float:
        """Share of matched trips' boarding and (observable) alighting stops that are right."""
        total = self.matched + self.alight_observable
        return (self.board_ok + self.alight_ok) / total if total else 1.0

    @property
    def per_1000(self) -> float:
        return 1000 * self.charged / self.encounters if self.encounters else 0.0

    @property
    def board_share(self) -> float | None:
        """Share of matched trips with the right boarding stop (None: nothing matched)."""
        return self.board_ok / self.matched if self.matched else None

    @property
    def alight_share(self) -> float | None:
        """Share of observable alightings at the right stop (None: none observable)."""
        return self.alight_ok / self.alight_observable if self.alight_observable else None


PLATFORMS = (ADVERTISING, BEACON, f"{BEACON}, ranging", f"{BEACON}, burst only")
"""How a person's phone is seen: it advertises the BLE payload and the bus hears it
(Android), or it hears the bus beacon and uploads what it heard (iPhone); the beacon phones
split into those that range all through their stays in the region (background location)
and those that range only in a burst on entering it."""


def platform_of(plan: DayPlan, person_id: str) -> str:
    """The ``PLATFORMS`` entry of a person's phone in ``plan`` (advertising or beacon)."""
    return PLATFORMS[1] if person_id in plan.iphones else PLATFORMS[0]


def platform_part(
    truth: GroundTruth,
    trips: Sequence[ScoredTrip],
    person: Mapping[str, str],
    persons: Container[str],
) -> tuple[GroundTruth, list[ScoredTrip]]:
    """The rides, encounters and detections of the ``persons`` only (to score a platform
    on its own)."""
    part = GroundTruth(
        truth.service_day,
        truth.seed,
        [t for t in truth.trips if t.person_id in persons],
        [e for e in truth.bystander_encounters if e.person_id in persons],
    )
    return part, [t for t in trips if person.get(t.device_id, "") in persons]


HEARD_BUCKETS: tuple[tuple[float, str], ...] = (
    (0.0, "never heard"),
    (0.05, "heard in < 5 % of windows"),
    (0.2, "5-20 %"),
    (float("inf"), ">= 20 %"),
)
"""Upper bounds (inclusive for "never", exclusive otherwise) of the share of a ride's scan
windows in which the bus heard the rider's phone, and their labels."""
NO_DEVICE = "no registered phone"


def heard_bucket(share: float | None) -> str:
    """The ``HEARD_BUCKETS`` label of a ride heard in ``share`` of its windows."""
    if share is None:
        return NO_DEVICE
    if share <= 0.0:
        return HEARD_BUCKETS[0][1]
    return next(label for bound, label in HEARD_BUCKETS[1:] if share < bound)


def heard_shares(
    truth: GroundTruth, records: Sequence[VehicleRecord], device_ids: Sequence[str]
) -> list[float | None]:
    """Per true ride: the share of its scan windows (boarding to alighting) in which its bus
    heard the rider's phone, from what the bus uploaded (``read_vehicle``'s records, devices
    indexing ``device_ids``; None: no registered phone)."""
    index = {device_id: i for i, device_id in enumerate(device_ids)}
    heard = {r.vehicle_id: r for r in records}
    out: list[float | None] = []
    for trip in truth.trips:
        if trip.device_id is None or trip.device_id not in index or trip.vehicle_id not in heard:
            out.append(None)
            continue
        r = heard[trip.vehicle_id]
        lo, hi = np.searchsorted(r.t, [trip.board_time, trip.alight_time], side="left")
        windows = np.unique(r.t[lo:hi][r.device[lo:hi] == index[trip.device_id]])
        out.append(len(windows) / max(1.0, (trip.alight_time - trip.board_time) / r.window_ms))
    return out


@dataclass
class WorldResult:
    """One world's pooled scores per method, and bibo's paced latency."""

    seed: int | None
    """The world's seed; None for the simulator's default world."""
    methods: dict[str, Counts]
    latency: LatencyCounts
    world: dict[str, Any] = field(default_factory=dict)
    platforms: dict[str, dict[str, Counts]] = field(default_factory=dict)
    """Per method, its counts per ``PLATFORMS`` entry (the phones of that platform only)."""
    mistakes: list[dict[str, Any]] = field(default_factory=list)
    """bibo's mistakes, one dict per ride it missed (``why``: its ``misses.MISS_CAUSES``
    entry) and per bystander it charged (``why``: the kind of the person's encounter with
    the bus, with the trip's score and stretches), each with the scenario, the person, the
    platforms of their phone, the ride or trip and its evidence terms per stretch
    (``misses.explain_day``): what ``bibo evaluate --worlds
    --out`` writes to mistakes.jsonl."""

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"seed": self.seed, "world": self.world}
        for name, c in self.methods.items():
            out[name] = _counts_dict(c)
            out[name]["platforms"] = {
                platform: _counts_dict(pc) for platform, pc in self.platforms.get(name, {}).items()
            }
        out["latency"] = self.latency.summary()
        return out


def _counts_dict(c: Counts) -> dict[str, Any]:
    return {
        **asdict(c),
        "precision": c.precision,
        "recall": c.recall,
        "f1": c.f1,
        "exact_stops": c.exact_stops,
        "per_1000": c.per_1000,
    }


def recorded_vehicles(recording: Recording) -> list[VehicleData]:
    """Every bus's uploads in a recording, as columns."""
    return [
        vehicle_data(v["vehicle_id"], recording.batches(v["vehicle_id"]))
        for v in recording.vehicles
    ]


def bibo_trips(
    recording: Recording,
    level_model: LevelModel = DEFAULT_LEVEL,
    vehicles: Sequence[VehicleData] | None = None,
) -> list[ScoredTrip]:
    """bibo's trips on a recording (its ``recorded_vehicles`` if already read), reconciled
    in process as the backend's workers do."""
    day = bibo_day(recording, level_model, vehicles)
    return scored_trips(day.kept)


@dataclass(frozen=True)
class BiboDay:
    """bibo's trips of a recording as the backend holds them: every vehicle's trips, the ids
    of the cross-vehicle conflicts' losers, and the resolvers they were read with."""

    trips: list[DetectedTrip]
    losers: set[str]
    resolver: TokenResolver
    phones: PhoneRows

    @property
    def kept(self) -> list[DetectedTrip]:
        """The trips the backend keeps: the conflicts' losers left out."""
        return [t for t in self.trips if t.trip_id not in self.losers]


def bibo_day(
    recording: Recording,
    level_model: LevelModel = DEFAULT_LEVEL,
    vehicles: Sequence[VehicleData] | None = None,
) -> BiboDay:
    """``bibo_trips`` before the conflicts' losers are left out (``BiboDay``)."""
    if vehicles is None:
        vehicles = recorded_vehicles(recording)
    resolver, phones = region_resolvers(
        list(recording.device_keys().items()),
        list(recording.phone_batches()),
        recording.vehicle_secrets(),
    )
    trips, losers, _ = reconcile_region(vehicles, resolver, phones, level_model)
    return BiboDay(trips, losers, resolver, phones)


def explain_mistakes(
    truth: GroundTruth,
    scores: Scores,
    day: BiboDay,
    vehicles: Sequence[VehicleData],
    level_model: LevelModel,
    charged: Sequence[DetectedTrip] = (),
) -> tuple[list[tuple[TruthTrip, str, Terms]], list[Terms]]:
    """Why bibo missed the detectable rides of ``truth`` it did not match (``scores``) with
    its trips of the ``day``: each with its ``misses.MISS_CAUSES`` entry and its evidence
    terms per stretch; and the terms of the trips it ``charged`` bystanders
    (``misses.explain_day``)."""
    matched = {i for _, i in scores.matched_pairs}
    missed = [
        t
        for i, t in enumerate(truth.trips)
        if detectable(t) and i not in matched and t.device_id is not None
    ]
    return explain_day(
        missed, charged, day.trips, day.losers, vehicles, day.resolver, day.phones, level_model
    )


def scored_trips(trips: Iterable[DetectedTrip], losers: Container[str] = ()) -> list[ScoredTrip]:
    """The backend's trips as the scoring reads them, conflict ``losers`` left out."""
    return [
        ScoredTrip(
            t.device_id,
            t.vehicle_id,
            t.journey_id,
            t.board_stop_id,
            t.board_time,
            t.alight_stop_id,
            t.alight_time,
            t.alight_known_at,
        )
        for t in trips
        if t.trip_id not in losers
    ]


def vehicle_records(
    recording: Recording, vehicles: Sequence[VehicleData]
) -> tuple[list[VehicleRecord], list[str]]:
    """The recording's buses (its ``recorded_vehicles``) as ``read_vehicle`` records, and the
    device ids their device indices point into (one resolver for all of them)."""
    resolver = TokenResolver(list(recording.device_keys().items()), cache_intervals=DAY_INTERVALS)
    return [read_vehicle(data, resolver) for data in vehicles], resolver.device_ids


def record_in_world(s: Scenario, world: World, out: Path, network: Network) -> DayPlan:
    """Plan scenario ``s`` and record it in ``world`` into ``out`` (the fast recorder)."""
    plan = plan_day(network, s.config, s.seed)
    record_plan(s, plan, out, world=world)
    return plan


def record_plan(
    s: Scenario,
    plan: DayPlan,
    out: Path,
    *,
    world: World = DEFAULT_WORLD,
    compress: bool = False,
    jobs: int = 1,
) -> Recorded:
    """Record ``plan``, scenario ``s``'s day, into ``out`` with the fast recorder, under the
    scenario's name, description, radio seed and upload interval; ``world``, ``compress``
    and ``jobs`` as ``write_recording`` takes them."""
    return write_recording(
        plan,
        out,
        name=s.name,
        description=s.description,
        radio_seed=s.radio_seed,
        recorder="fast",
        upload_interval_ms=s.upload_interval_ms,
        compress=compress,
        jobs=jobs,
        world=world,
    )


def evaluate_world(
    world: World,
    scenarios: Sequence[Scenario],
    workdir: Path,
    network: Network,
    latency_scenarios: Sequence[str] = (),
    level_model: LevelModel = DEFAULT_LEVEL,
) -> WorldResult:
    """Record every scenario in ``world`` under ``workdir`` and score both methods (bibo
    with ``level_model``)."""
    seed = world.seed
    methods = {m: Counts() for m in METHODS}
    mistakes: list[dict[str, Any]] = []
    platforms = {m: {p: Counts() for p in PLATFORMS} for m in METHODS}
    latency = LatencyCounts()
    for s in scenarios:
        out = workdir / f"w{seed}-{s.name}"
        plan = record_in_world(s, world, out, network)
        try:
            recording = Recording.open(out)
            truth = GroundTruth.load(out / "truth.json")
            person = {d["device_id"]: person_of(d["device_id"]) for d in recording.devices}
            vehicles = recorded_vehicles(recording)
            records, device_ids = vehicle_records(recording, vehicles)
            shares = heard_shares(truth, records, device_ids)
            naive = [trip for r in records for trip in naive_trips(r, device_ids)]
            day = bibo_day(recording, level_model, vehicles)
            kept = day.kept
            detected = scored_trips(kept)
            ranging = {
                q.person_id
                for q in plan.persons
                if q.person_id in plan.iphones
                and has_background_location(s.config, s.seed, q.person_id)
            }
            on = {
                p: {q.person_id for q in plan.persons if platform_of(plan, q.person_id) == p}
                for p in PLATFORMS[:2]
            }
            on[PLATFORMS[2]] = ranging
            on[PLATFORMS[3]] = set(plan.iphones) - ranging
            for method, trips in (("bibo", detected), ("naive", naive)):
                scores = score(truth, trips, person)
                methods[method].add(scores)
                methods[method].add_heard(truth, shares, scores)
                if method == "bibo":
                    charged = [kept[k] for k, _ in scores.charged_trips]
                    causes, explained = explain_mistakes(
                        truth, scores, day, vehicles, level_model, charged
                    )
                    for ride, cause, terms in causes:
                        methods[method].add_cause(cause)
                        for platform, persons in on.items():
                            if ride.person_id in persons:
                                platforms[method][platform].add_cause(cause)
                        mistakes.append(
                            _mistake(s.name, "missed", ride, ride.person_id, cause, terms, on)
                        )
                    for trip, (_, kind), terms in zip(
                        charged, scores.charged_trips, explained, strict=True
                    ):
                        who = person.get(trip.device_id, "")
                        entry = _mistake(s.name, "bystander", trip, who, kind, terms, on)
                        entry["stops_travelled"] = trip.stops_travelled
                        entry["score"] = trip.score
                        mistakes.append(entry)
                for platform, persons in on.items():
                    part, part_trips = platform_part(truth, trips, person, persons)
                    platforms[method][platform].add(score(part, part_trips, person))
            if s.name in latency_scenarios:
                rider_platforms: dict[str, list[str]] = {}
                for platform, persons in on.items():
                    for person_id in persons:
                        rider_platforms.setdefault(person_id, []).append(platform)
                latency.merge(
                    paced_latency(
                        recording, plan, truth, detected, person, level_model, rider_platforms
                    )
                )
        finally:
            shutil.rmtree(out, ignore_errors=True)
    return WorldResult(seed, methods, latency, world.document(), platforms, mistakes)


def _mistake(
    scenario: str,
    what: str,
    span: Span,
    person_id: str,
    why: str,
    terms: Terms,
    platforms: Mapping[str, set[str]],
) -> dict[str, Any]:
    """One of bibo's mistakes as ``WorldResult.mistakes`` holds it (``platforms``: the
    persons on each of ``PLATFORMS``)."""
    return {
        "scenario": scenario,
        "mistake": what,
        "why": why,
        "person_id": person_id,
        "platforms": [p for p in PLATFORMS if person_id in platforms.get(p, ())],
        "device_id": span.device_id,
        "vehicle_id": span.vehicle_id,
        "journey_id": span.journey_id,
        "board_stop_id": span.board_stop_id,
        "board_time": span.board_time,
        "alight_stop_id": span.alight_stop_id,
        "alight_time": span.alight_time,
        "terms": terms,
    }


def _scratch() -> str | None:
    shm = Path("/dev/shm")
    return str(shm) if shm.is_dir() and shm.stat().st_mode & 0o002 else None


def with_iphones(s: Scenario, iphone_share: float) -> Scenario:
    """Scenario ``s`` with ``iphone_share`` of its persons on an iPhone."""
    if iphone_share == s.config.iphone_share:
        return s
    return replace(s, config=replace(s.config, iphone_share=iphone_share))


def _one(
    args: tuple[World | int | None, tuple[str, ...], tuple[str, ...], LevelModel, float],
) -> WorldResult:
    seed, names, latency_scenarios, level_model, iphone_share = args
    if isinstance(seed, World):
        world = seed
    elif seed is None:
        world = DEFAULT_WORLD
    else:
        world = World.draw(seed)
    scenarios = [with_iphones(s, iphone_share) for s in library() if s.name in names]
    with tempfile.TemporaryDirectory(prefix="bibo-sweep-", dir=_scratch()) as tmp:
        return evaluate_world(
            world, scenarios, Path(tmp), load_network(), latency_scenarios, level_model
        )


def library_names(scenario_names: Sequence[str] | None) -> tuple[str, ...]:
    """``scenario_names`` (None: the whole library), each checked to be in the library."""
    names = tuple(scenario_names or [s.name for s in library()])
    unknown = sorted(set(names) - {s.name for s in library()})
    if unknown:
        raise ValueError(f"scenarios: not in the library: {', '.join(unknown)}")
    return names


def sweep(
    seeds: Sequence[int | None],
    scenario_names: Sequence[str] | None = None,
    jobs: int = 1,
    latency_scenarios: Sequence[str] = (),
    progress: Callable[[WorldResult], None] | None = None,
    level_model: LevelModel = DEFAULT_LEVEL,
    iphone_share: float = 0.0,
) -> list[WorldResult]:
    """Evaluate every world of ``seeds`` (None: the default world; in ``jobs`` processes),
    in seed order; the paced latency is measured on ``latency_scenarios``; every
    scenario runs with ``iphone_share`` of its persons on an iPhone."""
    names = library_names(scenario_names)
    unknown_latency = sorted(set(latency_scenarios) - set(names))
    if unknown_latency:
        raise ValueError(f"latency scenarios: not evaluated: {', '.join(unknown_latency)}")
    work = [(seed, names, tuple(latency_scenarios), level_model, iphone_share) for seed in seeds]
    results: list[WorldResult] = []
    for r in fork_map(_one, work, jobs):
        results.append(r)
        if progress:
            progress(r)
    return sorted(results, key=lambda r: -1 if r.seed is None else r.seed)


def ablated_worlds() -> list[tuple[str, World]]:
    """The default world (its per-phone and per-bus draws salted with seed 0, as it has
    none of its own) and, after it, each of ``ABLATIONS`` applied to it, by name."""
    base = replace(DEFAULT_WORLD, seed=0)
    worlds = [("default", base)]
    for name, change in ABLATIONS:
        changes: dict[str, Any] = dict(change)
        worlds.append((name, replace(base, **changes)))
    return worlds


def sweep_ablations(
    scenario_names: Sequence[str] | None = None,
    jobs: int = 1,
    progress: Callable[[str, WorldResult], None] | None = None,
    level_model: LevelModel = DEFAULT_LEVEL,
    iphone_share: float = 0.0,
) -> list[tuple[str, WorldResult]]:
    """Evaluate ``ablated_worlds`` (in ``jobs`` processes) on the scenario library (or
    ``scenario_names``), the default first, in their order."""
    names = library_names(scenario_names)
    worlds = ablated_worlds()
    work = [(world, names, (), level_model, iphone_share) for _, world in worlds]
    results: list[tuple[str, WorldResult]] = []
    for (name, _), r in zip(worlds, fork_map(_one, work, jobs), strict=True):
        results.append((name, r))
        if progress:
            progress(name, r)
    return results


def ablations_failed(results: Sequence[tuple[str, WorldResult]]) -> list[str]:
    """The ablations (after the default world, first in ``results``) whose F1 moves more
    than ``GOAL_ABLATION_F1`` from the default's or that charge more bystanders than
    ``GOAL_BYSTANDERS_PER_1000``."""
    default = results[0][1].methods["bibo"]
    failed: list[str] = []
    for name, r in results[1:]:
        b = r.methods["bibo"]
        if abs(b.f1 - default.f1) > GOAL_ABLATION_F1:
            failed.append(f"{name}: F1 {b.f1 - default.f1:+.4f}")
        if b.per_1000 > GOAL_BYSTANDERS_PER_1000:
            failed.append(f"{name}: {b.per_1000:.2f} bystanders per 1000")
    return failed


def ablation_table(results: Sequence[tuple[str, WorldResult]]) -> Table:
    """One row per world of ``sweep_ablations``: bibo's figures and the change of F1 from
    the default world (the first row)."""
    table = Table(title="Ablations of the default world (bibo)")
    for col in ("world", "trips", *_QUALITY_COLUMNS, "F1 change", "exact stops", "naive F1"):
        table.add_column(col, justify="right")
    default = results[0][1].methods["bibo"].f1
    for k, (name, r) in enumerate(results):
        b = r.methods["bibo"]
        table.add_row(
            name,
            str(b.truth),
            *_quality_cells(b),
            "–" if k == 0 else f"{round(b.f1 - default, 4) + 0.0:+.4f}",
            f"{b.exact_stops:.3f}",
            f"{r.methods['naive'].f1:.4f}",
        )
    return table


# --- summaries and report ------------------------------------------------------------------


@dataclass(frozen=True)
class SetSummary:
    """A set of worlds in one line per method: median and worst world."""

    name: str
    worlds: int
    median_f1: float
    worst_f1: float
    worst_seed: int | None
    worst_per_1000: float
    median_exact_stops: float
    worst_exact_stops: float
    bein_p95_s: float | None
    beout_p99_s: float | None
    flip_flop_share: float | None
    bystanders_shown: int | None
    """Trips the paced replay showed to someone not riding (``LatencyCounts``)."""


def summarize(name: str, results: Sequence[WorldResult], method: str = "bibo") -> SetSummary:
    f1 = np.array([r.methods[method].f1 for r in results])
    stops = np.array([r.methods[method].exact_stops for r in results])
    worst = int(np.argmin(f1))
    pooled = LatencyCounts()
    for r in results:
        pooled.merge(r.latency)
    lat = pooled.summary()
    return SetSummary(
        name=name,
        worlds=len(results),
        median_f1=float(np.median(f1)),
        worst_f1=float(f1[worst]),
        worst_seed=results[worst].seed,
        worst_per_1000=max(r.methods[method].per_1000 for r in results),
        median_exact_stops=float(np.median(stops)),
        worst_exact_stops=float(stops.min()),
        bein_p95_s=lat["bein"]["p95_s"] if method == "bibo" else None,
        beout_p99_s=lat["beout"]["p99_s"] if method == "bibo" else None,
        flip_flop_share=lat["flip_flop_share"] if method == "bibo" else None,
        bystanders_shown=lat["bystanders_shown"]
        if method == "bibo" and lat["closed_trips"]
        else None,
    )


BYSTANDER_PENALTY = 0.01
OVER_GOAL_PENALTY = 0.05
"""Objective (``fit_objective``): mean F1 over the worlds less ``BYSTANDER_PENALTY`` per
bystander charged per 1,000 encounters (mean over worlds: one per 1,000 costs as much as
1 % of F1), less ``OVER_GOAL_PENALTY`` per bystander per 1,000 above the goal in any world
(the goal ``GOAL_BYSTANDERS_PER_1000`` holds in every world, so exceeding it costs five
times more)."""


def fit_objective(f1: Sequence[float], per_1000: Sequence[float]) -> float:
    """What ``bibo calibrate`` maximises over the training worlds, one value per world in
    ``f1`` and ``per_1000`` (see ``BYSTANDER_PENALTY``)."""
    over = np.maximum(0.0, np.array(per_1000) - GOAL_BYSTANDERS_PER_1000).sum()
    return float(np.mean(f1) - BYSTANDER_PENALTY * np.mean(per_1000) - OVER_GOAL_PENALTY * over)


def set_objective(results: Sequence[WorldResult], method: str = "bibo") -> float:
    """``fit_objective`` of ``method`` over a set of worlds."""
    counts = [r.methods[method] for r in results]
    return fit_objective([c.f1 for c in counts], [c.per_1000 for c in counts])


def goals_failed(s: SetSummary, results: Sequence[WorldResult]) -> list[str]:
    """Which of the issue's goals the set misses (bibo's figures)."""
    failed: list[str] = []
    if s.worst_f1 < GOAL_WORLD_F1:
        failed.append(f"every world F1 >= {GOAL_WORLD_F1} (world {s.worst_seed}: {s.worst_f1:.4f})")
    if s.median_f1 < GOAL_MEDIAN_F1:
        failed.append(f"median F1 >= {GOAL_MEDIAN_F1} ({s.median_f1:.4f})")
    if s.worst_per_1000 > GOAL_BYSTANDERS_PER_1000:
        failed.append(
            f"bystanders <= {GOAL_BYSTANDERS_PER_1000}/1000 in every world "
            f"(worst {s.worst_per_1000:.2f})"
        )
    if s.worst_exact_stops < GOAL_EXACT_STOPS:
        failed.append(f"exact stops >= {GOAL_EXACT_STOPS:.0%} (worst {s.worst_exact_stops:.3f})")
    if s.bein_p95_s is not None and s.bein_p95_s > GOAL_BEIN_P95_S:
        failed.append(f"be-in p95 <= {GOAL_BEIN_P95_S:.0f} s ({s.bein_p95_s:.0f} s)")
    if s.beout_p99_s is not None and s.beout_p99_s > GOAL_BEOUT_P99_S:
        failed.append(f"be-out p99 <= {GOAL_BEOUT_P99_S:.0f} s ({s.beout_p99_s:.0f} s)")
    if s.flip_flop_share is not None and s.flip_flop_share > GOAL_FLIP_FLOPS:
        failed.append(f"flip-flops <= {GOAL_FLIP_FLOPS:.1%} ({s.flip_flop_share:.2%})")
    return failed


def _f(x: float | None, fmt: str) -> str:
    return "–" if x is None else fmt.format(x)


_QUALITY_COLUMNS: Final = ("F1", "P", "R", "board", "alight", "byst/1000")
"""The heads of the columns ``_quality_cells`` fills."""


def _quality_cells(c: Counts) -> list[str]:
    """``c``'s F1, precision, recall, shares of right boarding and alighting stops and
    bystanders per 1,000 encounters, as the tables show them (``_QUALITY_COLUMNS``)."""
    return [
        f"{c.f1:.4f}",
        f"{c.precision:.4f}",
        f"{c.recall:.4f}",
        _f(c.board_share, "{:.3f}"),
        _f(c.alight_share, "{:.3f}"),
        f"{c.per_1000:.2f}",
    ]


def world_table(title: str, results: Sequence[WorldResult]) -> Table:
    """One row per world: bibo's figures with the naive baseline's F1 and bystanders beside."""
    table = Table(title=title, show_lines=False)
    for col in (
        "world",
        "trips",
        *_QUALITY_COLUMNS,
        "be-in p50/p95/p99 s",
        "be-out p50/p95/p99 s",
        "flip",
        "naive F1",
        "naive byst/1000",
    ):
        table.add_column(col, justify="right")
    for r in results:
        b, n = r.methods["bibo"], r.methods["naive"]
        lat = r.latency.summary()
        bein, beout = lat["bein"], lat["beout"]
        table.add_row(
            "default" if r.seed is None else str(r.seed),
            str(b.truth),
            *_quality_cells(b),
            "/".join(_f(bein[k], "{:.0f}") for k in ("p50_s", "p95_s", "p99_s")),
            "/".join(_f(beout[k], "{:.0f}") for k in ("p50_s", "p95_s", "p99_s")),
            _f(lat["flip_flop_share"], "{:.2%}"),
            f"{n.f1:.4f}",
            f"{n.per_1000:.2f}",
        )
    return table


def summary_table(summaries: Sequence[tuple[SetSummary, SetSummary]]) -> Table:
    """Per set: bibo's median and worst world, the naive baseline's beside."""
    table = Table(title="Summary (bibo | naive)")
    for col in (
        "set",
        "worlds",
        "median F1",
        "worst F1 (world)",
        "worst byst/1000",
        "median exact stops",
        "worst exact stops",
        "be-in p95 s",
        "be-out p99 s",
        "flip-flops",
        "bystanders shown",
        "naive median F1",
        "naive worst F1",
    ):
        table.add_column(col, justify="right")
    for b, n in summaries:
        table.add_row(
            b.name,
            str(b.worlds),
            f"{b.median_f1:.4f}",
            f"{b.worst_f1:.4f} ({b.worst_seed})",
            f"{b.worst_per_1000:.2f}",
            f"{b.median_exact_stops:.3f}",
            f"{b.worst_exact_stops:.3f}",
            _f(b.bein_p95_s, "{:.0f}"),
            _f(b.beout_p99_s, "{:.0f}"),
            _f(b.flip_flop_share, "{:.2%}"),
            _f(b.bystanders_shown, "{:d}"),
            f"{n.median_f1:.4f}",
            f"{n.worst_f1:.4f}",
        )
    return table


def write_json(sets: Mapping[str, Sequence[WorldResult]], path: Path) -> None:
    doc = {name: [r.as_dict() for r in results] for name, results in sets.items()}
    path.write_text(json.dumps(doc, indent=1) + "\n", "utf-8")


def write_mistakes(sets: Mapping[str, Sequence[WorldResult]], path: Path) -> None:
    """bibo's mistakes in every world of ``sets`` as JSON lines (``WorldResult.mistakes``,
    each with its set and world seed), written to a temporary file and moved into place."""
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as f:
        for name, results in sets.items():
            for r in results:
                for m in r.mistakes:
                    f.write(json.dumps({"set": name, "world": r.seed, **m}) + "\n")
    tmp.replace(path)


def heard_table(sets: Mapping[str, Sequence[WorldResult]], method: str = "bibo") -> Table:
    """Per set, pooled over its worlds: rides and the share missed by how often the bus heard
    the rider's phone (what a miss is made of: a phone never heard is no model's to find)."""
    table = Table(title=f"Rides missed by how often the bus heard the phone ({method})")
    table.add_column("heard in the ride's scan windows")
    for name in sets:
        table.add_column(f"{name}: rides", justify="right")
        table.add_column(f"{name}: missed", justify="right")
    labels = [label for _, label in HEARD_BUCKETS] + [NO_DEVICE]
    for label in labels:
        row = [label]
        for results in sets.values():
            rides = sum(r.methods[method].rides_by_heard.get(label, 0) for r in results)
            missed = sum(r.methods[method].missed_by_heard.get(label, 0) for r in results)
            row += [f"{rides:,}", f"{missed:,} ({missed / rides:.1%})" if rides else "–"]
        table.add_row(*row)
    return table


CAUSE_LABELS: Final = {
    "unheard": "never heard on its bus",
    "lost": "lost a conflict to another bus",
    "sparse": "heard too little (or the phone said no)",
    "level": "heard, but the level said outside",
    "boarding": "not heard at its boarding stop",
    "other": "other (decoded elsewhere)",
}
"""How ``cause_table`` names each ``misses.MISS_CAUSES`` entry."""


def cause_table(sets: Mapping[str, Sequence[WorldResult]]) -> Table:
    """Per set and platform (Android; iPhones that range, and that range only in bursts),
    pooled over the set's worlds: bibo's missed rides by cause (``simulator.misses``), each
    with its share of those misses."""
    table = Table(title="Rides bibo missed, by cause (share of the platform's misses)")
    table.add_column("cause")
    shown = (PLATFORMS[0], PLATFORMS[2], PLATFORMS[3])  # Android; iPhones ranging, in bursts
    columns = [(name, platform) for name in sets for platform in shown]
    for name, platform in columns:
        table.add_column(f"{name}: {platform}", justify="right")

    def missed(results: Sequence[WorldResult], platform: str, cause: str) -> int:
        return sum(
            r.platforms.get("bibo", {}).get(platform, Counts()).missed_by_cause.get(cause, 0)
            for r in results
        )

    totals = {(name, p): sum(missed(sets[name], p, c) for c in MISS_CAUSES) for name, p in columns}
    for cause in MISS_CAUSES:
        row = [CAUSE_LABELS[cause]]
        for name, platform in columns:
            n, total = missed(sets[name], platform, cause), totals[(name, platform)]
            row.append(f"{n:,} ({n / total:.1%})" if total else "–")
        table.add_row(*row)
    return table


def platform_table(sets: Mapping[str, Sequence[WorldResult]]) -> Table:
    """Per set and platform, pooled over its worlds: bibo's F1, precision, recall, exact
    boarding and alighting stops and bystanders per 1,000 encounters of that platform's
    phones, with the naive baseline's F1 beside (it reads the vehicle uploads only, so it
    never finds a beacon phone's ride), and each platform's be-in and be-out p95 from the
    paced replay, and the trips it showed to people not riding."""
    table = Table(title="By platform (advertising: Android, beacon: iPhone)")
    for col in (
        "set",
        "platform",
        "trips",
        *_QUALITY_COLUMNS,
        "encounters",
        "naive F1",
        "be-in/be-out p95 s",
        "bystanders shown",
    ):
        table.add_column(col, justify="right")
    for name, results in sets.items():
        latency = LatencyCounts()
        for r in results:
            latency.merge(r.latency)
        paced = latency.summary()["platforms"]
        for platform in PLATFORMS:
            pooled = {m: Counts() for m in METHODS}
            for r in results:
                for m in METHODS:
                    counts = r.platforms.get(m, {}).get(platform)
                    if counts is not None:
                        pooled[m].merge(counts)
            b = pooled["bibo"]
            table.add_row(
                name,
                platform,
                f"{b.truth:,}",
                *_quality_cells(b),
                f"{b.encounters:,}",
                f"{pooled['naive'].f1:.4f}",
                (
                    f"{_f(paced[platform]['bein']['p95_s'], '{:.0f}')}/"
                    f"{_f(paced[platform]['beout']['p95_s'], '{:.0f}')}"
                    if platform in paced
                    else ""
                ),
                str(paced[platform]["bystanders_shown"]) if platform in paced else "",
            )
    return table


def kind_table(sets: Mapping[str, Sequence[WorldResult]], method: str = "bibo") -> Table:
    """Per set, pooled over its worlds: bystanders charged per 1,000 encounters of each
    kind (``none``: charged without any encounter with that bus)."""
    table = Table(title=f"Bystanders per 1,000 encounters by kind ({method})")
    table.add_column("kind")
    for name in sets:
        table.add_column(f"{name}: encounters", justify="right")
        table.add_column(f"{name}: charged", justify="right")
        table.add_column(f"{name}: /1000", justify="right")
    pooled = {name: Counts() for name in sets}
    for name, results in sets.items():
        for r in results:
            pooled[name].merge(r.methods[method])
    kinds = sorted(
        {k for c in pooled.values() for k in (*c.encounters_by_kind, *c.charged_by_kind)}
    )
    for kind in kinds:
        row = [kind]
        for c in pooled.values():
            enc, charged = c.encounters_by_kind.get(kind, 0), c.charged_by_kind.get(kind, 0)
            row += [f"{enc:,}", f"{charged:,}", f"{1000 * charged / enc:.2f}" if enc else "–"]
        table.add_row(*row)
    return table
