"""`bibo fares …`: the best price of one passenger's trips (`bill`) or one journey (`quote`).

`main(argv)` takes the arguments after `bibo fares`, e.g. ["bill", "--trips", "t.json"].
Output goes to stdout; a bad command line or input is one line on stderr and exit
code 2, an internal solver failure one line and exit code 1.

- `bill --trips FILE [--format json|text] [--tariff ID ...] [--method auto|dp|milp]`:
  FILE is a JSON list of {board_stop_id, alight_stop_id, board_time, alight_time,
  rider_category} (UTC epoch ms; optional stops_travelled, mode, farthest_stop_id).
  Priced over Ruhr-Lippe 2026 and eezy Westfalen 2026 unless --tariff is given.
- `quote --from STOP --to STOP [--at ISO_TIME] [--rider child] [--stops N] [--tariff ID]`:
  the cheapest single journey (EinzelTicket, Kurzstrecke with --stops, eezy fare).
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path
from typing import NoReturn
from zoneinfo import ZoneInfo

from pydantic import TypeAdapter, ValidationError

from fare_engine import (
    FareInputError,
    SolverError,
    TariffError,
    Trip,
    best_price_multi,
    load_tariff,
    quote,
)
from fare_engine.const import DEFAULT_TARIFF_ID, DEFAULT_TARIFF_IDS
from fare_engine.money import format_cents

EXIT_USAGE = 2
EXIT_INTERNAL = 1
_TRIPS = TypeAdapter(list[Trip])


class _UsageError(Exception):
    """A problem with the command line or its input; one line for stderr."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise _UsageError(message)


def _build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="bibo fares", description="Fares and best prices of bibo's tariffs.")
    parser.add_argument(
        "--tariff", dest="top_tariffs", action="append", help="tariff id (repeatable)"
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    bill = sub.add_parser("bill", help="best price for one passenger's trips")
    bill.add_argument("--trips", required=True, help="JSON file: list of trips (epoch ms)")
    bill.add_argument("--format", choices=["json", "text"], default="json")
    bill.add_argument(
        "--tariff",
        dest="tariffs",
        action="append",
        help=f"tariff id, repeatable (default: {' + '.join(DEFAULT_TARIFF_IDS)})",
    )
    bill.add_argument(
        "--method",
        choices=["auto", "dp", "milp"],
        default="auto",
        help="exact search: DP with integer-programme fall-back (auto), or force one",
    )
    q = sub.add_parser("quote", help="cheapest single journey")
    q.add_argument("--from", dest="from_stop", required=True, help="boarding stop id")
    q.add_argument("--to", dest="to_stop", required=True, help="alighting stop id")
    q.add_argument("--at", help="ISO time of travel (default now; without offset: local time)")
    q.add_argument("--rider", default="adult", help="rider category (adult, child, infant)")
    q.add_argument(
        "--stops", type=int, default=None, help="stops travelled (lets a Kurzstrecke apply)"
    )
    q.add_argument("--format", choices=["json", "text"], default="json")
    q.add_argument(
        "--tariff", dest="tariffs", action="append", help=f"tariff id (default {DEFAULT_TARIFF_ID})"
    )
    return parser


def main(argv: list[str]) -> int:
    """Run `fares bill|quote`; returns the process exit code."""
    args_list = argv[1:] if argv[:1] == ["fares"] else argv
    try:
        args = _build_parser().parse_args(args_list)
        out = _bill(args) if args.command == "bill" else _quote(args)
    except SystemExit as exc:  # --help
        return exc.code if isinstance(exc.code, int) else 0
    except (_UsageError, FareInputError, TariffError) as exc:
        sys.stderr.write(f"bibo fares: error: {exc}\n")
        return EXIT_USAGE
    except SolverError as exc:
        sys.stderr.write(f"bibo fares: error: {exc}\n")
        return EXIT_INTERNAL
    sys.stdout.write(out)
    return 0


def _tariff_ids(args: argparse.Namespace, default: list[str]) -> list[str]:
    return list(args.tariffs or args.top_tariffs or default)


def _bill(args: argparse.Namespace) -> str:
    path = Path(args.trips)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise _UsageError(f"--trips {path}: cannot be read: {exc.strerror}") from None
    try:
        trips = _TRIPS.validate_json(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in first["loc"])
        raise _UsageError(
            f"--trips {path}: trips{loc}: {first['msg']}"
            " (expected a JSON list of {board_stop_id, alight_stop_id, board_time,"
            " alight_time, rider_category}, times in UTC epoch ms)"
        ) from None
    tariffs = [load_tariff(t) for t in _tariff_ids(args, list(DEFAULT_TARIFF_IDS))]
    bill = best_price_multi(trips, tariffs, method=args.method)
    return bill.to_json() + "\n" if args.format == "json" else bill.to_text()


def _quote(args: argparse.Namespace) -> str:
    ids = _tariff_ids(args, [DEFAULT_TARIFF_ID])
    if len(ids) != 1:
        raise _UsageError(f"--tariff {' '.join(ids)}: a quote takes one tariff id")
    tariff = load_tariff(ids[0])
    if args.stops is not None and args.stops < 0:
        raise _UsageError(f"--stops {args.stops}: expected a number of stops >= 0")
    at_ms = _parse_at(args.at, tariff.spec.timezone)
    result = quote(
        tariff, args.from_stop, args.to_stop, at_ms, args.rider, stops_travelled=args.stops
    )
    if args.format == "json":
        return result.model_dump_json(indent=2) + "\n"
    what = f"Preisstufe {result.level}" if result.level else (result.detail or "")
    valid = f", valid {result.validity_minutes} min" if result.validity_minutes else ""
    product = tariff.product(result.product).name
    return (
        f"{tariff.stop_name(result.from_stop_id)} → {tariff.stop_name(result.to_stop_id)}: "
        f"{product} {what} ({result.rider_category}) "
        f"{format_cents(result.price_cents, tariff.currency)}{valid}\n"
    )


def _parse_at(text: str | None, timezone: str) -> int:
    if text is None:
        return int(dt.datetime.now(dt.UTC).timestamp() * 1000)
    try:
        at = dt.datetime.fromisoformat(text)
    except ValueError:
        raise _UsageError(
            f"--at {text!r}: not an ISO time (expected e.g. 2026-03-02T07:10+01:00)"
        ) from None
    if at.tzinfo is None:
        at = at.replace(tzinfo=ZoneInfo(timezone))
    return int(at.timestamp() * 1000)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
