"""``bibo calibrate``: fit the reconciliation's level constants on the named training worlds.

The constants of the reconciliation fitted to data are the level model's
(``backend.const.PATH_LOSS_BOUNDARY_DB``, ``PATH_LOSS_SLOPE_PER_DB``, ``PATH_LOSS_MAX_LLR``):
where a stretch's median calibrated path loss turns from inside to outside and how much a
dB is worth. This command records every library
scenario in every training world (``simulator.const.TRAINING_WORLDS``, or ``--worlds``),
reconciles each recording with every candidate of the grid, and prints per candidate the
training worlds' median and worst F1 and worst bystanders per 1,000 encounters; the
candidate with the best objective (mean F1 less ``BYSTANDER_PENALTY`` per bystander per
1,000 encounters) is the fit. Test worlds are never read here: ``bibo evaluate --worlds``
scores them beside the training worlds.
"""

from __future__ import annotations

import itertools
import multiprocessing
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rich.table import Table

from backend.reconciliation import LevelModel
from simulator.day import plan_day
from simulator.network import load_network
from simulator.recording import Recording, write_recording
from simulator.scenarios import library
from simulator.scoring import score
from simulator.sweep import Counts, bibo_trips
from simulator.truth import GroundTruth
from simulator.world import World

BOUNDARIES_DB = (70.0, 73.5, 76.5, 80.0, 84.0)
SLOPES_PER_DB = (0.5, 1.0)
MAX_LLRS = (6.0,)
"""The grid: path-loss boundaries (dB), nats per dB, and the cap."""

BYSTANDER_PENALTY = 0.01
"""Objective: mean F1 over the training worlds less this per bystander charged per 1,000
encounters (mean over worlds): one bystander per 1,000 costs as much as 1 % of F1."""


def record_worlds(
    seeds: Sequence[int], root: Path, jobs: int = 1, progress: Callable[[str], None] | None = None
) -> list[Path]:
    """Record every library scenario of every world into ``root/w<seed>/<scenario>`` (an
    existing recording of the same world is reused); returns the recording directories."""
    work = [(seed, s.name, root / f"w{seed}" / s.name) for seed in seeds for s in library()]
    todo = [w for w in work if not _recorded(w[2], w[0])]
    if jobs > 1 and len(todo) > 1:
        with multiprocessing.get_context("fork").Pool(jobs) as pool:
            for path in pool.imap_unordered(_record, todo):
                if progress:
                    progress(f"recorded {path}")
    else:
        for w in todo:
            path = _record(w)
            if progress:
                progress(f"recorded {path}")
    return [w[2] for w in work]


def _recorded(path: Path, seed: int) -> bool:
    try:
        import json

        doc = json.loads((path / "world.json").read_text("utf-8"))
    except (OSError, ValueError):
        return False
    return doc.get("seed") == seed and (path / "truth.json").is_file()


def _record(item: tuple[int, str, Path]) -> Path:
    seed, name, out = item
    s = next(x for x in library() if x.name == name)
    plan = plan_day(load_network(), s.config, s.seed)
    write_recording(
        plan,
        out,
        name=s.name,
        description=s.description,
        radio_seed=s.radio_seed,
        recorder="fast",
        upload_interval_ms=s.upload_interval_ms,
        world=World.draw(seed),
    )
    return out


def _person(device_id: str) -> str:
    return device_id.split("-", 2)[-1]


def score_world(paths: Sequence[Path], model: LevelModel) -> Counts:
    """bibo's pooled counts over one world's recordings with this level model."""
    counts = Counts()
    for path in paths:
        recording = Recording.open(path)
        truth = GroundTruth.load(path / "truth.json")
        person = {d["device_id"]: _person(d["device_id"]) for d in recording.devices}
        counts.add(score(truth, bibo_trips(recording, model), person))
    return counts


@dataclass(frozen=True)
class Candidate:
    model: LevelModel
    f1: tuple[float, ...]
    per_1000: tuple[float, ...]

    @property
    def objective(self) -> float:
        return float(np.mean(self.f1) - BYSTANDER_PENALTY * np.mean(self.per_1000))


def _score_candidate(item: tuple[LevelModel, tuple[tuple[Path, ...], ...]]) -> Candidate:
    model, worlds = item
    counts = [score_world(paths, model) for paths in worlds]
    return Candidate(model, tuple(c.f1 for c in counts), tuple(c.per_1000 for c in counts))


def fit(
    worlds: Sequence[Sequence[Path]],
    jobs: int = 1,
    progress: Callable[[str], None] | None = None,
) -> list[Candidate]:
    """Every grid candidate scored on the worlds' recordings, best objective first."""
    grid = [
        LevelModel(boundary, slope, cap)
        for boundary, slope, cap in itertools.product(BOUNDARIES_DB, SLOPES_PER_DB, MAX_LLRS)
    ]
    frozen = tuple(tuple(w) for w in worlds)
    items = [(m, frozen) for m in grid]
    found: list[Candidate] = []
    if jobs > 1:
        with multiprocessing.get_context("fork").Pool(jobs) as pool:
            for c in pool.imap_unordered(_score_candidate, items):
                found.append(c)
                if progress:
                    progress(f"{c.model}: objective {c.objective:.4f}")
    else:
        for item in items:
            found.append(_score_candidate(item))
            if progress:
                progress(f"{found[-1].model}: objective {found[-1].objective:.4f}")
    return sorted(found, key=lambda c: (-c.objective, c.model.boundary_db, c.model.slope_per_db))


def fit_table(candidates: Sequence[Candidate], seeds: Sequence[int]) -> Table:
    table = Table(title=f"Level model fit on training worlds {list(seeds)}")
    for col in (
        "boundary dB",
        "nats/dB",
        "cap",
        "mean F1",
        "median F1",
        "worst F1",
        "worst byst/1000",
        "objective",
    ):
        table.add_column(col, justify="right")
    for c in candidates:
        table.add_row(
            f"{c.model.boundary_db:g}",
            f"{c.model.slope_per_db:g}",
            f"{c.model.max_llr:g}",
            f"{np.mean(c.f1):.4f}",
            f"{np.median(c.f1):.4f}",
            f"{min(c.f1):.4f}",
            f"{max(c.per_1000):.2f}",
            f"{c.objective:.4f}",
        )
    return table
