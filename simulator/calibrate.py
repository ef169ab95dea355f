"""``bibo calibrate``: fit the reconciliation's level constants on the named training worlds.

The constants of the reconciliation fitted to data are the level model's
(``backend.const.LEVELS_RELATIVE``, ``LEVEL_MARGIN_DB``, ``LEVEL_REFERENCE_QUANTILE``,
``LEVEL_VETO``, the absolute model's ``PATH_LOSS_BOUNDARY_DB``
and the stand contrast's ``CONTRAST_SLOPE_PER_DB``): whether the bus's own riders bound the
path loss's evidence, where inside turns to outside and how much the stand contrast is
worth. This command records every library scenario in every training world
(``simulator.const.TRAINING_WORLDS``, or ``--worlds``), reconciles each recording with
every candidate of the grid (``grid``), and prints per candidate the training worlds' mean,
median and worst F1 and worst bystanders per 1,000 encounters; the candidate with the best
objective (``Candidate.objective``) is the fit (``backend.const.LEVELS_RELATIVE`` says where
the default departs from it, and which constants are set by hand). Test worlds are never
read here:
``bibo evaluate --worlds`` scores them beside the training worlds.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rich.table import Table

from backend.trips.reconciliation import LevelModel
from simulator.evaluation import person_of
from simulator.network import load_network
from simulator.parallel import fork_map
from simulator.recording import Recording
from simulator.scenarios import library
from simulator.scoring import score
from simulator.sweep import Counts, bibo_trips, fit_objective, record_in_world
from simulator.truth import GroundTruth
from simulator.world import DEFAULT_WORLD, World

ABSOLUTE_BOUNDARIES_DB = (74.5, 76.5, 78.5, 80.5, 82.5)
CONTRAST_SLOPES_PER_DB = (0.0, 1.0)
RELATIVE_MARGINS_DB = (3.0, 6.0, 10.0, 36.0)
RELATIVE_QUANTILES = (0.1, 0.25, 0.9)
RELATIVE_VETOES = (True,)
RELATIVE_CONTRAST_SLOPES_PER_DB = (1.0,)
RIDER_MARGINS_DB = (13.5, 16.5, 19.5, 22.5)


def grid() -> list[LevelModel]:
    """The candidates: the absolute path-loss model at several boundaries, with and without
    the stand contrast; the relative model (the absolute one at the default boundary,
    quiet riders excused by the levels of the riders who came in through the bus's doors,
    with their veto and the stand contrast) at several margins below several quantiles of
    those riders; and the riders model (no absolute level once the bus has riders: each level
    read against the bus's median rider) at several margins, with the default stand contrast."""
    absolute = [
        LevelModel(relative=False, boundary_db=b, contrast_slope_per_db=c)
        for b, c in itertools.product(ABSOLUTE_BOUNDARIES_DB, CONTRAST_SLOPES_PER_DB)
    ]
    relative = [
        LevelModel(
            relative=True,
            margin_db=m,
            reference_quantile=q,
            level_veto=v,
            contrast_slope_per_db=c,
        )
        for m, q, v, c in itertools.product(
            RELATIVE_MARGINS_DB,
            RELATIVE_QUANTILES,
            RELATIVE_VETOES,
            RELATIVE_CONTRAST_SLOPES_PER_DB,
        )
    ]
    riders = [LevelModel(relative=False, riders=True, rider_margin_db=m) for m in RIDER_MARGINS_DB]
    return absolute + relative + riders


def record_worlds(
    seeds: Sequence[int | None],
    root: Path,
    jobs: int = 1,
    progress: Callable[[str], None] | None = None,
) -> list[Path]:
    """Record every library scenario of every world into ``root/w<seed>/<scenario>`` (an
    existing recording of the same world is reused); returns the recording directories."""
    work = [(seed, s.name, root / world_dir(seed) / s.name) for seed in seeds for s in library()]
    todo = [w for w in work if not _recorded(w[2], w[0])]
    for path in fork_map(_record, todo, jobs):
        if progress:
            progress(f"recorded {path}")
    return [w[2] for w in work]


def world_dir(seed: int | None) -> str:
    """The directory name of a world's recordings."""
    return "w-default" if seed is None else f"w{seed}"


def _recorded(path: Path, seed: int | None) -> bool:
    try:
        import json

        doc = json.loads((path / "world.json").read_text("utf-8"))
    except (OSError, ValueError):
        return False
    return doc.get("seed") == seed and (path / "truth.json").is_file()


def _record(item: tuple[int | None, str, Path]) -> Path:
    seed, name, out = item
    s = next(x for x in library() if x.name == name)
    world = DEFAULT_WORLD if seed is None else World.draw(seed)
    record_in_world(s, world, out, load_network())
    return out


def score_world(paths: Sequence[Path], model: LevelModel) -> Counts:
    """bibo's pooled counts over one world's recordings with this level model."""
    counts = Counts()
    for path in paths:
        recording = Recording.open(path)
        truth = GroundTruth.load(path / "truth.json")
        person = {d["device_id"]: person_of(d["device_id"]) for d in recording.devices}
        counts.add(score(truth, bibo_trips(recording, model), person))
    return counts


@dataclass(frozen=True)
class Candidate:
    model: LevelModel
    f1: tuple[float, ...]
    per_1000: tuple[float, ...]

    @property
    def objective(self) -> float:
        return fit_objective(self.f1, self.per_1000)


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
    frozen = tuple(tuple(w) for w in worlds)
    items = [(m, frozen) for m in grid()]
    found: list[Candidate] = []
    for c in fork_map(_score_candidate, items, jobs):
        found.append(c)
        if progress:
            progress(f"{c.model}: objective {c.objective:.4f}")
    return sorted(found, key=lambda c: (-c.objective, c.model.boundary_db, c.model.slope_per_db))


def fit_table(candidates: Sequence[Candidate], seeds: Sequence[int | None]) -> Table:
    names = ["default" if s is None else str(s) for s in seeds]
    table = Table(title=f"Level model fit on training worlds {', '.join(names)}")
    for col in (
        "model",
        "boundary dB",
        "margin dB",
        "quantile",
        "veto",
        "contrast nats/dB",
        "mean F1",
        "median F1",
        "worst F1",
        "worst byst/1000",
        "objective",
    ):
        table.add_column(col, justify="right")
    for c in candidates:
        m = c.model
        table.add_row(
            m.name,
            "" if m.riders else f"{m.boundary_db:g}",
            f"{m.rider_margin_db:g}" if m.riders else f"{m.margin_db:g}" if m.relative else "",
            f"{m.reference_quantile:g}" if m.relative else "",
            ("yes" if m.level_veto else "no") if m.relative else "",
            f"{m.contrast_slope_per_db:g}",
            f"{np.mean(c.f1):.4f}",
            f"{np.median(c.f1):.4f}",
            f"{min(c.f1):.4f}",
            f"{max(c.per_1000):.2f}",
            f"{c.objective:.4f}",
        )
    return table
