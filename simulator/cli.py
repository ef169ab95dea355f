"""Command line of the simulator: ``bibo demo`` (and later ``simulate``, ``replay``)."""

from __future__ import annotations

import argparse
import datetime as dt
import signal
import sys
from pathlib import Path
from types import FrameType
from typing import NoReturn

from rich.console import Console

from simulator.demo import DEFAULT_DAY, DemoError, DemoOptions, report, run_demo, write_json

USAGE_ERROR = 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(USAGE_ERROR, f"{self.prog}: error: {message}\n")


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected at least 1, got {value}")
    return value


def _count(text: str) -> int:
    value = _positive(text) if text != "0" else 0
    return value


def _day(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected YYYY-MM-DD, got {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
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
    demo.add_argument("--json", type=Path, help="also write the scores and charges here")
    return parser


def _interrupt_on_sigterm(_signum: int, _frame: FrameType | None) -> None:
    # A plain kill must stop the backend process too: unwind like Ctrl-C does.
    raise KeyboardInterrupt


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt_on_sigterm)
    console = Console()
    options = DemoOptions(
        buses=args.buses,
        passengers=args.passengers,
        bystanders=args.bystanders,
        seed=args.seed,
        day=args.day,
        workdir=args.workdir,
    )
    try:
        result = run_demo(options, Console(stderr=True))
    except DemoError as exc:
        sys.stderr.write(f"bibo demo: {exc}\n")
        return USAGE_ERROR
    except KeyboardInterrupt:
        sys.stderr.write("bibo demo: interrupted; the backend was stopped\n")
        return 130
    report(result, console)
    if args.json:
        write_json(result, args.json)
    return 0
