"""The ``bibo`` command line (DESIGN §4). The database comes from ``BIBO_DATABASE_URL``.

This module is the composition root of the console script: the backend's own commands live
here; ``onboard``, ``fares`` and the simulator's commands are delegated by module name, so
the backend's code never imports the agent or the simulator.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import json
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn

from pydantic import ValidationError
from sqlalchemy.orm import Session, sessionmaker

from backend import repository, services
from backend.api.schemas import StopOut, TripOut
from backend.db import make_engine, make_sessionmaker, transaction, upgrade
from backend.settings import get_settings
from backend.timeutil import parse_day

USAGE_ERROR = 2

# Commands implemented by other parts: name -> module with ``main(argv) -> int``. The
# simulator's module takes its command name as the first argument; the others do not.
DELEGATED = {
    "onboard": "onboard.cli",
    "fares": "backend.fares_cli",
    "demo": "simulator.cli",
    "simulate": "simulator.cli",
    "replay": "simulator.cli",
    "evaluate": "simulator.cli",
}
KEEPS_COMMAND_NAME = frozenset({"simulator.cli"})


class CliError(Exception):
    """A one-line message for the user; exit code 2."""


def _out(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


@contextmanager
def _database() -> Iterator[sessionmaker[Session]]:
    """The configured database, migrated; its connections are closed on exit."""
    engine = make_engine(get_settings().database_url)
    try:
        upgrade(engine)
        yield make_sessionmaker(engine)
    finally:
        engine.dispose()


def _day(text: str) -> dt.date:
    try:
        return parse_day(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from backend.api.app import create_app
    from backend.observability import configure_logging

    engine = make_engine(get_settings().database_url)
    upgrade(engine)
    app = create_app(engine=engine, migrate=False)
    configure_logging(args.log_level)
    # One JSON line per request comes from bibo's middleware (with its request id).
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        log_config=None,
        access_log=False,
    )
    return 0


def cmd_vehicles_add(args: argparse.Namespace) -> int:
    try:
        with _database() as factory, transaction(factory) as session:
            secret = services.register_vehicle(session, args.vehicle_id)
    except repository.AlreadyExistsError as exc:
        raise CliError(str(exc)) from None
    _out(f"vehicle {args.vehicle_id} registered; its upload secret (shown once):")
    _out(secret.hex())
    return 0


def cmd_operators_add(args: argparse.Namespace) -> int:
    password = sys.stdin.readline().rstrip("\n") if args.password_stdin else None
    try:
        with _database() as factory, transaction(factory) as session:
            token = services.register_operator(session, args.name, args.role, password)
    except (ValueError, repository.AlreadyExistsError) as exc:
        raise CliError(str(exc)) from None
    _out(f"operator {args.name} ({args.role}) created; API token (shown once):")
    _out(token)
    return 0


def cmd_devices_import(args: argparse.Namespace) -> int:
    try:
        doc = services.DeviceImportFile.model_validate_json(Path(args.file).read_bytes())
    except OSError as exc:
        raise CliError(f"{args.file}: cannot be read: {exc.strerror}") from None
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        where = ".".join(str(part) for part in err["loc"])
        raise CliError(f"{args.file}: {where}: {err['msg']}") from None
    try:
        with _database() as factory, transaction(factory) as session:
            created, present = services.import_devices(session, doc)
    except repository.AlreadyExistsError as exc:
        raise CliError(f"{args.file}: {exc}") from None
    _out(f"{created} devices imported, {present} already present")
    return 0


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def cmd_reconcile(args: argparse.Namespace) -> int:
    with _database() as factory:
        summary = services.reconcile_day(factory, args.day, services.ResolverCache(), _utc_now)
    _out(
        f"service day {summary.service_day}: {summary.vehicles} vehicles, "
        f"{summary.sightings} sightings ({summary.resolved} resolved), {summary.trips} trips"
    )
    return 0


def cmd_trips(args: argparse.Namespace) -> int:
    with _database() as factory, factory() as session:
        trips = [TripOut.model_validate(t) for t in repository.day_trips(session, args.day)]
    if args.format == "json":
        _out(json.dumps([t.model_dump(mode="json") for t in trips], indent=2))
    else:
        for t in trips:
            _out(
                f"{t.trip_id} {t.vehicle_id} {t.line} {t.device_id} "
                f"{t.board_stop_id} -> {t.alight_stop_id} conf={t.confidence:.2f}"
            )
    return 0


def cmd_stops(args: argparse.Namespace) -> int:
    import fare_engine

    stops = [
        StopOut(stop_id=s.stop_id, name=s.name, lat=s.lat, lon=s.lon)
        for s in fare_engine.load_tariff().stops()
    ]
    if args.format == "json":
        _out(json.dumps([s.model_dump() for s in stops], indent=2, ensure_ascii=False))
    else:
        for s in stops:
            _out(f"{s.stop_id}\t{s.name}\t{s.lat:.5f}\t{s.lon:.5f}")
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    from backend.worker import run_worker

    settings = get_settings()
    with _database() as factory:
        return run_worker(factory, settings, poll_s=args.poll_seconds, once=args.once)


def cmd_retention(args: argparse.Namespace) -> int:
    from backend.maintenance import apply_retention, ensure_partitions
    from backend.timeutil import service_day_of

    settings = get_settings()
    today = args.today or service_day_of(int(_utc_now().timestamp() * 1000))
    with _database() as factory, transaction(factory) as session:
        result = apply_retention(
            session, today, settings.sightings_retention_days, settings.trips_retention_days
        )
        created = ensure_partitions(session, today)
    _out(
        f"sightings before {result.sightings_before} removed: {result.sightings_deleted} rows, "
        f"{result.partitions_dropped} partitions; {result.trips_deleted} old trips removed; "
        f"{len(created)} partitions created"
    )
    return 0


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(USAGE_ERROR, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="bibo", description="bibo - Bluetooth be-in/be-out ticketing")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    def command(name: str, func: Callable[[argparse.Namespace], int], help_: str) -> _Parser:
        p: _Parser = sub.add_parser(name, help=help_)
        p.set_defaults(func=func)
        return p

    serve = command("serve", cmd_serve, help_="run the backend (migrations applied on start)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--log-level", default="info")

    vehicles = sub.add_parser("vehicles", help="manage vehicles")
    vsub = vehicles.add_subparsers(dest="action", required=True, parser_class=_Parser)
    vadd = vsub.add_parser("add", help="register a vehicle; prints its secret once")
    vadd.add_argument("vehicle_id")
    vadd.set_defaults(func=cmd_vehicles_add)

    operators = sub.add_parser("operators", help="manage operators")
    osub = operators.add_subparsers(dest="action", required=True, parser_class=_Parser)
    oadd = osub.add_parser("add", help="create an operator; prints an API token once")
    oadd.add_argument("name")
    oadd.add_argument("--role", choices=["viewer", "agent", "admin"], default="admin")
    oadd.add_argument(
        "--password-stdin",
        action="store_true",
        help="read a web-login password from the first line of standard input",
    )
    oadd.set_defaults(func=cmd_operators_add)

    devices = sub.add_parser("devices", help="manage passenger devices")
    dsub = devices.add_subparsers(dest="action", required=True, parser_class=_Parser)
    dimp = dsub.add_parser(
        "import", help="import passengers and device keys from a versioned JSON file"
    )
    dimp.add_argument("file", metavar="FILE")
    dimp.set_defaults(func=cmd_devices_import)

    rec = command("reconcile", cmd_reconcile, help_="reconcile a service day now")
    rec.add_argument("--day", type=_day, required=True, metavar="YYYY-MM-DD")

    worker = command("worker", cmd_worker, help_="claim and do reconciliation work units")
    worker.add_argument("--once", action="store_true", help="do what is pending, then exit")
    worker.add_argument("--poll-seconds", type=float, default=None, metavar="S")

    retention = command(
        "retention", cmd_retention, help_="delete raw sightings past their retention period"
    )
    retention.add_argument("--today", type=_day, default=None, metavar="YYYY-MM-DD")

    trips = command("trips", cmd_trips, help_="the reconciled trips of a service day")
    trips.add_argument("--day", type=_day, required=True, metavar="YYYY-MM-DD")
    trips.add_argument("--format", choices=["json", "text"], default="text")

    stops = command("stops", cmd_stops, help_="the stops known to bibo")
    stops.add_argument("--format", choices=["json", "text"], default="text")

    for name, module in DELEGATED.items():
        sub.add_parser(name, help=f"(see 'bibo {name} --help'; implemented in {module})")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list and args_list[0] in DELEGATED:
        module = importlib.import_module(DELEGATED[args_list[0]])
        delegated_main: Callable[[list[str]], int] = module.main
        skip = 0 if DELEGATED[args_list[0]] in KEEPS_COMMAND_NAME else 1
        return delegated_main(args_list[skip:])
    args = build_parser().parse_args(args_list)
    try:
        result: int = args.func(args)
    except CliError as exc:
        sys.stderr.write(f"bibo: {exc}\n")
        return USAGE_ERROR
    return result


if __name__ == "__main__":
    sys.exit(main())
