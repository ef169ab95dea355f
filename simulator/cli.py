"""Command line of the simulator: ``bibo demo``, ``simulate``, ``replay``, ``evaluate``.

``main(argv)`` receives the arguments including the command name (``backend.cli`` routes
those four commands here). Errors are one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import resource
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import NoReturn

from rich.console import Console

from simulator.backend_proc import BackendError
from simulator.const import GOAL_ABLATION_F1, IPHONE_SHARE, REPLAY_CONCURRENCY
from simulator.demo import DemoOptions, report, run_demo, write_json
from simulator.gtfs import export_gtfs, load_gtfs
from simulator.network import Network, NetworkError, load_network
from simulator.recording import RecordingError
from simulator.replay import ReplayError, load_secrets, replay_sync
from simulator.scenarios import DEFAULT_DAY, SCENARIOS, Scenario, library, scenario

USAGE_ERROR = 2
INTERRUPTED = 130
"""128 + SIGINT: what a shell reports for a program stopped with Ctrl-C."""

EVALUATE_TABLE_WIDTH = 168
"""Characters per line of the evaluation tables (they have eleven columns)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(USAGE_ERROR, f"{self.prog}: error: {message}\n")


def _whole_number(text: str, minimum: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"expected at least {minimum}, got {value}")
    return value


def _positive(text: str) -> int:
    return _whole_number(text, 1)


def _count(text: str) -> int:
    return _whole_number(text, 0)


def _share(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a share from 0 to 1, got {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a share from 0 to 1, got {text!r}")
    return value


def _world_seed(text: str) -> int:
    return _whole_number(text, 0)


def _seeds(text: str) -> tuple[int | None, ...]:
    """Comma-separated world seeds; ``default`` names the simulator's default world."""
    seeds: list[int | None] = []
    for part in (x.strip() for x in text.split(",")):
        if not part:
            continue
        if part == "default":
            seeds.append(None)
            continue
        try:
            seed = int(part)
        except ValueError:
            seed = -1
        if seed < 0:
            raise argparse.ArgumentTypeError(
                f"expected comma-separated world seeds (whole numbers >= 0, or 'default'), "
                f"got {text!r}"
            )
        seeds.append(seed)
    if not seeds:
        raise argparse.ArgumentTypeError(f"expected one or more world seeds, got {text!r}")
    return tuple(seeds)


def _day(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected YYYY-MM-DD, got {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    from backend.trips.reconciliation import LEVEL_CHOICES

    parser = _Parser(prog="bibo")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    demo = sub.add_parser(
        "demo",
        help="simulate a service day end to end and score it",
        description="Start the backend on loopback (SQLite in --workdir), drive one onboard "
        "agent per simulated bus uploading over HTTP, reconcile, price and score the day.",
    )
    demo.add_argument("--buses", type=_positive, default=DemoOptions.buses)
    demo.add_argument("--passengers", type=_count, default=DemoOptions.passengers)
    demo.add_argument("--bystanders", type=_count, default=DemoOptions.bystanders)
    demo.add_argument("--seed", type=int, default=DemoOptions.seed)
    demo.add_argument("--day", type=_day, default=DEFAULT_DAY, metavar="YYYY-MM-DD")
    demo.add_argument(
        "--workdir",
        type=Path,
        default=DemoOptions.workdir,
        help="where the database, outboxes and logs go (replaced on each run)",
    )
    demo.add_argument(
        "--iphone-share",
        type=_share,
        default=DemoOptions.iphone_share,
        metavar="SHARE",
        help="share of passengers and bystanders on an iPhone: they hear the bus beacon and "
        f"upload what they heard instead of advertising (default {IPHONE_SHARE}; 0: none)",
    )
    demo.add_argument("--json", type=Path, help="also write the scores and charges here")

    sim = sub.add_parser(
        "simulate",
        help="record a named scenario: upload batches, ground truth, devices, vehicles",
        description="Simulate a scenario of the library and record what the buses upload "
        "(the real onboard agent per bus, or the numpy recorder with --recorder fast), the "
        "ground truth, devices.json (for 'bibo devices import') and vehicles.json. "
        "SCENARIO 'library' records every library scenario into OUT/<name>.",
    )
    sim.add_argument("scenario", nargs="?", metavar="SCENARIO", help="a scenario name or 'library'")
    sim.add_argument("--out", type=Path, help="output directory (replaced)")
    sim.add_argument("--seed", type=int, help="override the scenario's seed")
    sim.add_argument("--recorder", choices=["agent", "fast"], help="override the recorder")
    sim.add_argument(
        "--world",
        type=_world_seed,
        metavar="SEED",
        help="run in the randomized world drawn from SEED (radio, phones, fleet; see "
        "simulator.world); without it, the simulator's default world",
    )
    sim.add_argument(
        "--iphone-share",
        type=_share,
        default=IPHONE_SHARE,
        metavar="SHARE",
        help="share of persons on an iPhone: they hear the bus beacon and upload what they "
        f"heard (phones.jsonl) instead of advertising (default {IPHONE_SHARE}; 0: none)",
    )
    sim.add_argument("--jobs", type=_positive, default=1, help="buses recorded in parallel")
    sim.add_argument("--list", action="store_true", help="list the scenarios and exit")
    sim.add_argument(
        "--gtfs",
        type=Path,
        metavar="FEED",
        help="run on a GTFS feed (directory or zip, e.g. NWL's) instead of the built-in network",
    )
    sim.add_argument(
        "--routes", help="with --gtfs: comma-separated route short names or ids to import"
    )
    sim.add_argument(
        "--export-gtfs",
        type=Path,
        metavar="DIR",
        help="write the built-in network as a small GTFS feed to DIR and exit",
    )

    rep = sub.add_parser(
        "replay",
        help="send a recording's batches, signed, to a running backend",
        description="Replay every recorded batch in upload order against --backend, signed "
        "with the vehicle secrets from --vehicle-secrets (JSON {vehicle_id: secret hex}).",
    )
    rep.add_argument("dir", type=Path, metavar="DIR")
    rep.add_argument("--backend", required=True, metavar="URL")
    rep.add_argument("--vehicle-secrets", required=True, type=Path, metavar="FILE")
    rep.add_argument("--concurrency", type=_positive, default=REPLAY_CONCURRENCY)

    ev = sub.add_parser(
        "evaluate",
        help="score the real reconciliation and a naive baseline on recordings",
        description="For each recording in DIR (DIR itself or its sub-directories): run the "
        "backend on a fresh SQLite database (devices import, vehicles add, serve, replay, "
        "reconcile, trips) or read --trips, run the naive RSSI baseline, and print precision, "
        "recall, F1, stop accuracy, bystanders charged per 1000 encounters, € error per "
        "passenger-day and be-out latency; write evaluation.json and evaluation.png.",
    )
    ev.add_argument("dir", type=Path, metavar="DIR", nargs="?")
    ev.add_argument(
        "--worlds",
        action="store_true",
        help="instead of DIR: record the scenario library in every test world, every "
        "training world (simulator.const TEST_WORLDS, TRAINING_WORLDS: the default world "
        "and drawn ones), score bibo "
        "(reconciled in process with the backend's code) and the naive baseline, print a "
        "row per world, the median and worst world per set and the gap between the sets",
    )
    ev.add_argument(
        "--ablations",
        action="store_true",
        help="instead of DIR: record the scenario library in the default world and in it "
        "with one thing taken away each (no phone advertises tx, no bus reports doors, "
        "receiver gains spread +-10 dB: simulator.const ABLATIONS), score bibo and print "
        "each one's F1 beside the default's",
    )
    ev.add_argument("--test-worlds", type=_seeds, metavar="SEEDS", help="override the test set")
    ev.add_argument(
        "--training-worlds", type=_seeds, metavar="SEEDS", help="override the training set"
    )
    ev.add_argument(
        "--scenarios", metavar="NAMES", help="with --worlds or --ablations: a subset of the library"
    )
    ev.add_argument(
        "--latency-scenarios",
        metavar="NAMES",
        default="ordinary-weekday",
        help="with --worlds: scenarios whose be-in/be-out latency and flip-flops are "
        "measured in a paced replay (default: the mixed ordinary weekday; 'none' for none)",
    )
    ev.add_argument(
        "--iphone-share",
        type=_share,
        default=IPHONE_SHARE,
        metavar="SHARE",
        help="with --worlds or --ablations: share of persons on an iPhone "
        f"(default {IPHONE_SHARE}; 0: none)",
    )
    ev.add_argument(
        "--jobs", type=_positive, default=2, help="with --worlds or --ablations: processes"
    )
    ev.add_argument(
        "--level",
        choices=LEVEL_CHOICES,
        default="default",
        help="with --worlds or --ablations: bibo's level model (default: backend.const's "
        "LEVELS_RELATIVE and LEVELS_FROM_RIDERS; the others with the same constants)",
    )
    ev.add_argument("--trips", type=Path, metavar="FILE", help="'bibo trips --format json' output")
    ev.add_argument("--no-backend", action="store_true", help="score only the naive baseline")
    ev.add_argument(
        "--out",
        type=Path,
        help="where evaluation.json/.png go (default DIR); with --worlds: where worlds.json "
        "and (also with --ablations) mistakes.jsonl go (every ride bibo missed and every "
        "bystander it charged, with why and the evidence per stretch)",
    )
    ev.add_argument("--keep-workdir", type=Path, help="keep the backend's database here")

    cal = sub.add_parser(
        "calibrate",
        help="fit the reconciliation's level constants on the named training worlds",
        description="Record the scenario library in every training world (or --worlds), "
        "reconcile each recording with every candidate of the level model's grid and print "
        "the candidates by objective (simulator.calibrate); the first row is the fit "
        "(backend.const's LEVELS_RELATIVE says where the default departs from it). Test "
        "worlds are never read.",
    )
    cal.add_argument("--worlds", type=_seeds, metavar="SEEDS", help="override the training set")
    cal.add_argument(
        "--cache",
        type=Path,
        metavar="DIR",
        help="keep the recordings here and reuse them (default: a temporary directory)",
    )
    cal.add_argument("--jobs", type=_positive, default=2, help="processes")
    return parser


def _interrupt_on_sigterm(_signum: int, _frame: FrameType | None) -> None:
    # A plain kill must stop the backend process too: unwind like Ctrl-C does.
    raise KeyboardInterrupt


def _fail(command: str, message: str) -> int:
    sys.stderr.write(f"bibo {command}: {message}\n")
    return USAGE_ERROR


def _interrupted(args: argparse.Namespace) -> str:
    """What stopping ``args.command`` half way left behind, in a few words."""
    if args.command == "replay":
        return (
            "interrupted; the batches delivered so far are stored "
            "(the backend takes each batch once, so replaying again is safe)"
        )
    if args.command == "simulate":
        return f"interrupted; {args.out} is incomplete" if args.out else "interrupted"
    if args.command == "evaluate" and (args.no_backend or args.trips is not None):
        return "interrupted"
    # demo and evaluate run their own backend in a child process (backend_proc), which is
    # terminated on the way out of its ``with`` block; Ctrl-C may come before it started.
    return "interrupted; its backend server, if started, was stopped"


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt_on_sigterm)
    try:
        if args.command == "demo":
            return _demo(args)
        if args.command == "simulate":
            return _simulate(args)
        if args.command == "replay":
            return _replay(args)
        if args.command == "calibrate":
            return _calibrate(args)
        return _evaluate(args)
    except (BackendError, RecordingError, ReplayError, NetworkError) as exc:
        return _fail(args.command, str(exc))
    except BrokenPipeError:
        raise  # the reader of our output left: ``bibo``'s main ends quietly
    except OSError as exc:
        # A directory given on the command line cannot be written (or read) as asked.
        where = f"{exc.filename}: " if exc.filename else ""
        return _fail(args.command, f"{where}{exc.strerror or exc}")
    except KeyboardInterrupt:
        sys.stderr.write(f"bibo {args.command}: {_interrupted(args)}\n")
        return INTERRUPTED


def _demo(args: argparse.Namespace) -> int:
    options = DemoOptions(
        buses=args.buses,
        passengers=args.passengers,
        bystanders=args.bystanders,
        seed=args.seed,
        day=args.day,
        workdir=args.workdir,
        iphone_share=args.iphone_share,
    )
    result = run_demo(options, Console(stderr=True))
    report(result, Console())
    if args.json:
        write_json(result, args.json)
    return 0


def _peak_rss_mb() -> tuple[float, float]:
    """Peak resident memory (MB) of this process and of its largest child process."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return own, kids


def _network(args: argparse.Namespace) -> tuple[Network, str]:
    """The built-in network, or the GTFS feed given with --gtfs (and its source label)."""
    builtin = load_network()
    if args.gtfs is None:
        return builtin, "built-in"
    routes = [r.strip() for r in args.routes.split(",")] if args.routes else None
    known = {st.municipality for st in builtin.stops.values()}
    return load_gtfs(args.gtfs, routes, municipalities=known), f"gtfs:{args.gtfs}"


def _record(s: Scenario, out: Path, args: argparse.Namespace, console: Console) -> None:
    from simulator.day import plan_day
    from simulator.recording import write_recording
    from simulator.world import DEFAULT_WORLD, World

    if args.seed is not None:
        s = s.with_seed(args.seed)
    recorder = args.recorder or s.recorder
    network, source = _network(args)
    config = s.config
    if config.lines is not None:
        known = {ln.line for ln in network.lines}
        kept = tuple(ln for ln in config.lines if ln in known)
        config = dataclasses.replace(config, lines=kept or None)
    config = dataclasses.replace(config, iphone_share=args.iphone_share)
    world = DEFAULT_WORLD if args.world is None else World.draw(args.world)
    t0 = time.monotonic()
    plan = plan_day(network, config, s.seed)
    t_plan = time.monotonic() - t0
    console.log(
        f"{s.name}: planned {len(plan.vehicles)} buses, {len(plan.trips)} rides of "
        f"{s.config.passengers} passengers, {len(plan.encounters)} bystander encounters "
        f"in {t_plan:.1f} s"
    )
    rec = write_recording(
        plan,
        out,
        name=s.name,
        description=s.description,
        radio_seed=s.radio_seed,
        recorder=recorder,
        upload_interval_ms=s.upload_interval_ms,
        compress=s.compress,
        jobs=args.jobs,
        network_source=source,
        world=world,
    )
    total = time.monotonic() - t0
    own, kids = _peak_rss_mb()
    console.print(
        f"{s.name}: {rec.vehicles} buses, {rec.batches} batches, {rec.truth_trips} true trips, "
        f"{rec.encounters} bystander encounters -> {out}\n"
        f"  time {total:.1f} s (planning {t_plan:.1f} s); peak memory {own:.0f} MB "
        f"(largest worker {kids:.0f} MB); recorder {recorder}; "
        f"world {'default' if args.world is None else args.world}"
    )


def _simulate(args: argparse.Namespace) -> int:
    console = Console()
    if args.export_gtfs is not None:
        export_gtfs(
            load_network(),
            args.export_gtfs,
            DEFAULT_DAY.replace(month=1, day=1),
            DEFAULT_DAY.replace(month=12, day=31),
        )
        console.print(f"wrote the built-in network as GTFS to {args.export_gtfs}")
        return 0
    if args.list:
        for s in SCENARIOS.values():
            tag = "" if s.in_library else " (not in 'library')"
            console.print(f"[bold]{s.name}[/bold]{tag}: {s.description}")
        console.print(
            "Every scenario runs in any world: add --world SEED for a randomized radio and "
            "fleet (written to OUT/world.json)."
        )
        return 0
    if not args.scenario or args.out is None:
        return _fail("simulate", "expected SCENARIO and --out DIR (or --list)")
    import shutil

    if args.scenario == "library":
        if args.out.exists():
            shutil.rmtree(args.out)
        for s in library():
            _record(s, args.out / s.name, args, console)
        return 0
    try:
        s = scenario(args.scenario)
    except KeyError as exc:
        return _fail("simulate", str(exc.args[0]))
    if args.out.exists():
        shutil.rmtree(args.out)
    _record(s, args.out, args, console)
    return 0


def _replay(args: argparse.Namespace) -> int:
    secrets = load_secrets(args.vehicle_secrets)

    def notice(line: str) -> None:
        sys.stderr.write(f"bibo replay: {line}\n")
        sys.stderr.flush()

    result = replay_sync(args.dir, args.backend, secrets, args.concurrency, notice=notice)
    sys.stdout.write(
        json.dumps(
            {
                "vehicles": result.vehicles,
                "batches": result.batches,
                "delivered": result.delivered,
                "duplicates": result.duplicates,
                "failed": len(result.failures),
            }
        )
        + "\n"
    )
    for line in result.failures[:20]:
        sys.stderr.write(f"bibo replay: {line}\n")
    return 0 if not result.failures else USAGE_ERROR


def _evaluate_worlds(args: argparse.Namespace) -> int:
    from backend.trips.reconciliation import level_model_named
    from simulator.const import TEST_WORLDS, TRAINING_WORLDS
    from simulator.sweep import (
        WorldResult,
        cause_table,
        goals_failed,
        heard_table,
        kind_table,
        platform_table,
        set_objective,
        summarize,
        summary_table,
        sweep,
        world_table,
        write_mistakes,
    )
    from simulator.sweep import write_json as write_sweep_json

    console = Console(width=EVALUATE_TABLE_WIDTH)
    log = Console(stderr=True)
    names = [x for x in (args.scenarios or "").split(",") if x] or None
    latency = [x for x in args.latency_scenarios.split(",") if x and x != "none"]
    sets: dict[str, Sequence[int | None]] = {
        "test": args.test_worlds or TEST_WORLDS,
        "training": args.training_worlds or TRAINING_WORLDS,
    }
    results: dict[str, list[WorldResult]] = {}
    level = level_model_named(args.level)
    log.log(f"bibo's level model: {level.name}")
    started = time.monotonic()
    for name, seeds in sets.items():

        def progress(r: WorldResult, name: str = name) -> None:
            log.log(
                f"{name} world {r.seed}: F1 {r.methods['bibo'].f1:.4f} "
                f"({time.monotonic() - started:.0f} s)"
            )

        try:
            results[name] = sweep(
                seeds, names, args.jobs, latency, progress, level, args.iphone_share
            )
        except ValueError as exc:
            return _fail("evaluate", str(exc))
        shown = ", ".join("default" if x is None else str(x) for x in seeds)
        console.print(world_table(f"{name} worlds {shown}", results[name]))
    pairs = [(summarize(n, r), summarize(n, r, "naive")) for n, r in results.items()]
    console.print(summary_table(pairs))
    console.print(heard_table(results))
    console.print(cause_table(results))
    console.print(platform_table(results))
    console.print(kind_table(results))
    test, training = pairs[0][0], pairs[1][0]
    console.print(
        f"gap (training - test): median F1 {training.median_f1 - test.median_f1:+.4f}, "
        f"worst F1 {training.worst_f1 - test.worst_f1:+.4f}, worst bystanders per 1000 "
        f"{training.worst_per_1000 - test.worst_per_1000:+.2f}"
    )
    console.print(
        "objective (bibo calibrate's: mean F1 less bystander penalties): training "
        f"{set_objective(results['training']):.4f}, test {set_objective(results['test']):.4f}"
    )
    failed = goals_failed(test, results["test"])
    console.print(
        "test worlds meet every goal" if not failed else "test worlds miss: " + "; ".join(failed)
    )
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        write_sweep_json(results, args.out / "worlds.json")
        console.print(f"wrote {args.out / 'worlds.json'}")
        write_mistakes(results, args.out / "mistakes.jsonl")
        console.print(f"wrote {args.out / 'mistakes.jsonl'} (every ride missed, every bystander)")
    return 0


def _calibrate(args: argparse.Namespace) -> int:
    import tempfile

    from simulator.calibrate import fit, fit_table, record_worlds, world_dir
    from simulator.const import TRAINING_WORLDS

    console = Console(width=EVALUATE_TABLE_WIDTH)
    log = Console(stderr=True)
    seeds = args.worlds or TRAINING_WORLDS
    with tempfile.TemporaryDirectory(prefix="bibo-calibrate-") as tmp:
        root = args.cache or Path(tmp)
        paths = record_worlds(seeds, root, args.jobs, progress=log.log)
        worlds = [[p for p in paths if p.parent.name == world_dir(s)] for s in seeds]
        candidates = fit(worlds, args.jobs, progress=log.log)
    console.print(fit_table(candidates, seeds))
    best = candidates[0].model
    names = ", ".join("default" if s is None else str(s) for s in seeds)
    console.print(f"fit on training worlds {names}: {best}")
    return 0


def _evaluate_ablations(args: argparse.Namespace) -> int:
    from backend.trips.reconciliation import level_model_named
    from simulator.sweep import (
        WorldResult,
        ablation_table,
        ablations_failed,
        sweep_ablations,
        write_mistakes,
    )

    console = Console(width=EVALUATE_TABLE_WIDTH)
    log = Console(stderr=True)
    names = [x for x in (args.scenarios or "").split(",") if x] or None
    level = level_model_named(args.level)
    log.log(f"bibo's level model: {level.name}")
    started = time.monotonic()

    def progress(name: str, r: WorldResult) -> None:
        log.log(f"{name}: F1 {r.methods['bibo'].f1:.4f} ({time.monotonic() - started:.0f} s)")

    try:
        results = sweep_ablations(names, args.jobs, progress, level, args.iphone_share)
    except ValueError as exc:
        return _fail("evaluate", str(exc))
    console.print(ablation_table(results))
    failed = ablations_failed(results)
    console.print(
        f"every ablation within {GOAL_ABLATION_F1} F1 of the default world"
        if not failed
        else "ablations miss: " + "; ".join(failed)
    )
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        write_mistakes({name: [r] for name, r in results}, args.out / "mistakes.jsonl")
        console.print(f"wrote {args.out / 'mistakes.jsonl'} (set: the ablation's name)")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    if args.worlds and args.ablations:
        return _fail("evaluate", "--worlds and --ablations: expected one of them, not both")
    if args.ablations and (args.dir or args.test_worlds or args.training_worlds):
        return _fail(
            "evaluate",
            "--ablations scores the default world: DIR, --test-worlds and --training-worlds "
            "do not apply",
        )
    if args.ablations:
        return _evaluate_ablations(args)
    if args.worlds:
        return _evaluate_worlds(args)
    if args.dir is None:
        return _fail("evaluate", "expected DIR (a recording), --worlds or --ablations")
    from simulator.evaluation import (
        EvaluationError,
        evaluate_recording,
        find_recordings,
        kinds_table,
        report_table,
        write_plot,
    )
    from simulator.evaluation import (
        write_json as write_eval_json,
    )
    from simulator.network import load_network
    from simulator.pricing import Pricer

    # Wide enough for the whole table, so it can be copied as it is into a report.
    console = Console(width=EVALUATE_TABLE_WIDTH)
    log = Console(stderr=True)
    try:
        dirs = find_recordings(args.dir)
        if args.trips is not None and len(dirs) != 1:
            raise EvaluationError("--trips needs DIR to be a single recording")
        pricer = Pricer(load_network())
        results = []
        for d in dirs:
            keep = (
                args.keep_workdir / d.name
                if args.keep_workdir and len(dirs) > 1
                else args.keep_workdir
            )
            results.append(
                evaluate_recording(
                    d,
                    log,
                    trips_file=args.trips,
                    use_backend=not args.no_backend,
                    keep_workdir=keep,
                    pricer=pricer,
                )
            )
            log.log(f"{d.name}: evaluated")
    except EvaluationError as exc:
        return _fail("evaluate", str(exc))
    console.print(report_table(results))
    console.print(kinds_table(results))
    out = args.out or args.dir
    out.mkdir(parents=True, exist_ok=True)
    write_eval_json(results, out / "evaluation.json")
    write_plot(results, out / "evaluation.png")
    console.print(f"wrote {out / 'evaluation.json'} and {out / 'evaluation.png'}")
    return 0
