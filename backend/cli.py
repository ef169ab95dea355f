"""The ``bibo`` command line (docs/contracts.md, Command line). The database comes from
``BIBO_DATABASE_URL``.

This module is the composition root of the console script: the backend's own commands live
here; ``onboard``, ``fares`` and the simulator's commands are delegated by module name, so
the backend's code never imports the agent or the simulator.

It is also the console script of every install profile (pyproject's extras), a bus's
``bibo[onboard]`` included: at import it needs only the base dependencies, and each command
imports what it uses when it runs. A command whose profile is not installed says which to
install (one line, exit 2) instead of failing with a traceback.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import importlib.util
import json
import os
import socket
import sys
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from pydantic import TypeAdapter, ValidationError

from onboard import wire

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

    from backend.settings import Settings

USAGE_ERROR = 2
INTERRUPTED = 130
"""128 + SIGINT: what a shell reports for a program stopped with Ctrl-C."""
BROKEN_PIPE = 141
"""128 + SIGPIPE: what a shell reports for ``yes | head``; the reader had all it wanted."""

DEFAULT_OPERATOR_ROLE = "viewer"
"""``operators add`` without ``--role`` grants the least: reading. More must be asked for."""
OPERATOR_NAME_MAX_CHARS = 200
"""The longest operator name the database holds (``operators.name``)."""

_IDENTIFIER: TypeAdapter[str] = TypeAdapter(wire.Identifier)
"""The upload API's rule for a vehicle id, applied by the API's own validator (pydantic's
regex engine reads ``\\w`` slightly differently from Python's ``re``)."""

# Commands implemented by other parts: name -> module with ``main(argv) -> int``. The
# simulator's module takes its command name as the first argument; the others do not.
DELEGATED = {
    "onboard": "onboard.cli",
    "fares": "backend.fares_cli",
    "demo": "simulator.cli",
    "simulate": "simulator.cli",
    "replay": "simulator.cli",
    "evaluate": "simulator.cli",
    "calibrate": "simulator.cli",
    "inspect": "backend.tickets.cli",
    "notifications": "backend.notifications.cli",
}
KEEPS_COMMAND_NAME = frozenset({"simulator.cli"})

# The install profiles (pyproject's extras) by what a command needs: the profile's name for
# people, and the modules whose absence shows it is not installed (what the code imports; a
# test holds them to pyproject and COMMAND_PROFILE to the parser's commands).
PROFILES: dict[str, tuple[str, tuple[str, ...]]] = {
    "onboard": ("the onboard agent", ("bleak", "httpx")),
    "server": (
        "the server",
        (
            "alembic",
            "cryptography",
            "fastapi",
            "jinja2",
            "numpy",
            "psycopg",
            "pydantic_settings",
            "scipy",
            "segno",
            "sqlalchemy",
            "uvicorn",
        ),
    ),
    "sim": ("the simulator", ("matplotlib", "rich")),
}
PROFILE_INCLUDES = {"sim": ("server", "onboard")}
"""Profiles that hold others (``bibo[sim]`` installs ``bibo[server,onboard]``)."""
COMMAND_PROFILE = {
    "serve": "server",
    "vehicles": "server",
    "operators": "server",
    "devices": "server",
    "reconcile": "server",
    "worker": "server",
    "retention": "server",
    "trips": "server",
    "stops": "server",
    "notifications": "server",
    "fares": "server",
    "inspect": "server",
    "onboard": "onboard",
    "demo": "sim",
    "simulate": "sim",
    "replay": "sim",
    "evaluate": "sim",
    "calibrate": "sim",
}
"""The profile each command needs (every command of ``bibo --help``)."""


class CliError(Exception):
    """A one-line message for the user; exit code 2."""


def _out(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def _settings() -> Settings:
    """The settings from ``BIBO_*``; a bad value is a CliError naming the variable."""
    from backend.settings import get_settings

    try:
        return get_settings()
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        msg = str(err["msg"]).removeprefix("Value error, ")
        if not err["loc"]:  # a check of several settings names them itself
            raise CliError(msg) from None
        name = "BIBO_" + str(err["loc"][0]).upper()
        shown = "" if name == "BIBO_SECRET_KEY" else f"={err['input']!r}"
        raise CliError(f"{name}{shown}: {msg}") from None


def _database_url() -> str:
    """``BIBO_DATABASE_URL``, checked: every command that opens the database starts here,
    so a bad URL is one line before any work (not a traceback half way through)."""
    from backend.db import DatabaseUrlError, check_database_url

    url = _settings().database_url
    try:
        check_database_url(url)
    except DatabaseUrlError as exc:
        raise CliError(str(exc)) from None
    return url


@contextmanager
def _database(url: str) -> Iterator[sessionmaker[Session]]:
    """The database at ``url`` (see :func:`_database_url`), migrated; its connections are
    closed on exit."""
    from backend.db import make_engine, make_sessionmaker, upgrade

    engine = make_engine(url)
    try:
        upgrade(engine)
        yield make_sessionmaker(engine)
    finally:
        engine.dispose()


def _day(text: str) -> dt.date:
    from backend.timeutil import parse_day

    try:
        return parse_day(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _port(text: str) -> int:
    if not text.isdigit() or not 0 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"expected a TCP port 0-65535, got {text!r}")
    return int(text)


def _check_listen(host: str, port: int) -> None:
    """Refuse a host and port the server could not listen on, before the migration runs
    (uvicorn would say so only in its log, after starting up)."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        with socket.socket(family, kind, proto) as probe:
            # As uvicorn does: a port whose old connections linger in TIME_WAIT is free.
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(address)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise CliError(f"--host {host} --port {port}: cannot listen there: {reason}") from None


def cmd_serve(args: argparse.Namespace) -> int:
    _check_listen(args.host, args.port)
    url = _database_url()
    settings = _settings()

    import uvicorn

    from backend.api.app import create_app
    from backend.const import SERVER_KEEP_ALIVE_S
    from backend.db import make_engine, upgrade
    from backend.observability import configure_logging

    engine = make_engine(url)
    upgrade(engine)
    app = create_app(settings=settings, engine=engine, migrate=False)
    configure_logging(args.log_level)
    # One JSON line per request comes from bibo's middleware (with its request id).
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        log_config=None,
        access_log=False,
        timeout_keep_alive=SERVER_KEEP_ALIVE_S,
    )
    return 0


def _vehicle_id(text: str) -> str:
    try:
        return _IDENTIFIER.validate_python(text)
    except ValidationError:
        raise argparse.ArgumentTypeError(
            f"{text!r}: expected 1-{wire.IDENTIFIER_MAX_CHARS} letters, digits or "
            "'_', '.', ':', '-' (the upload API accepts no other vehicle ids)"
        ) from None


def _operator_name(text: str) -> str:
    if not 1 <= len(text) <= OPERATOR_NAME_MAX_CHARS or not text.strip():
        raise argparse.ArgumentTypeError(
            f"expected 1-{OPERATOR_NAME_MAX_CHARS} characters, not only spaces; "
            f"got {len(text)} characters"
        )
    # Names are shown on the operator pages and in logs: nothing that moves a terminal's
    # cursor or reorders text (control and format characters such as bidi overrides).
    bad = next((c for c in text if unicodedata.category(c) in ("Cc", "Cf")), None)
    if bad is not None:
        raise argparse.ArgumentTypeError(
            f"{text!r}: expected no control characters, found U+{ord(bad):04X}"
        )
    return text


def _company(text: str) -> str:
    """A transit company code (``RLG``); argument types run after the profile check, so the
    server's modules are there."""
    from backend.ingest.service import check_company

    try:
        return check_company(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def cmd_vehicles_add(args: argparse.Namespace) -> int:
    from backend.db import AlreadyExistsError, transaction
    from backend.ingest import service as ingest_service

    vehicle_ids: list[str] = args.vehicle_id
    url = _database_url()
    try:
        with _database(url) as factory, transaction(factory) as session:
            secrets = ingest_service.register_vehicles(session, vehicle_ids, args.operator)
    except (AlreadyExistsError, ValueError) as exc:
        several = len(vehicle_ids) > 1
        raise CliError(f"{exc}; no vehicle registered" if several else str(exc)) from None
    run_by = f" (operator {args.operator})" if args.operator else ""
    if len(vehicle_ids) == 1:
        _out(f"vehicle {vehicle_ids[0]}{run_by} registered; its upload secret (shown once):")
        _out(secrets[vehicle_ids[0]].hex())
        return 0
    _out(
        f"{len(vehicle_ids)} vehicles{run_by} registered; their upload secrets (shown once), "
        "one 'VEHICLE_ID SECRET' per line:"
    )
    for vehicle_id in vehicle_ids:
        _out(f"{vehicle_id} {secrets[vehicle_id].hex()}")
    return 0


def cmd_vehicles_set_operator(args: argparse.Namespace) -> int:
    from backend.db import transaction
    from backend.ingest import service as ingest_service

    if args.none == (args.operator is not None):
        raise CliError("vehicles set-operator: give the operator (e.g. RLG) or --none")
    company: str | None = args.operator
    url = _database_url()
    try:
        with _database(url) as factory, transaction(factory) as session:
            ingest_service.set_vehicle_company(session, args.vehicle_id, company)
    except LookupError as exc:
        raise CliError(str(exc)) from None
    _out(
        f"vehicle {args.vehicle_id}: operator {company or 'none'} "
        "(applies to ledger entries posted from now on)"
    )
    return 0


def cmd_operators_add(args: argparse.Namespace) -> int:
    from backend.db import AlreadyExistsError, transaction
    from backend.operators import service as operators_service

    url = _database_url()
    password = sys.stdin.readline().rstrip("\n") if args.password_stdin else None
    try:
        with _database(url) as factory, transaction(factory) as session:
            token = operators_service.register_operator(session, args.name, args.role, password)
    except (ValueError, AlreadyExistsError) as exc:
        raise CliError(str(exc)) from None
    _out(f"operator {args.name} ({args.role}) created; API token (shown once):")
    _out(token)
    return 0


def cmd_devices_import(args: argparse.Namespace) -> int:
    from backend.db import AlreadyExistsError, transaction
    from backend.passengers import service as passengers_service
    from backend.passengers.schemas import DeviceImportFile

    url = _database_url()
    try:
        doc = DeviceImportFile.model_validate_json(Path(args.file).read_bytes())
    except OSError as exc:
        raise CliError(f"{args.file}: cannot be read: {exc.strerror}") from None
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        where = ".".join(str(part) for part in err["loc"])
        raise CliError(f"{args.file}: {where}: {err['msg']}") from None
    try:
        with _database(url) as factory, transaction(factory) as session:
            created, present = passengers_service.import_devices(session, doc)
    except AlreadyExistsError as exc:
        raise CliError(f"{args.file}: {exc}") from None
    _out(f"{created} devices imported, {present} already present")
    return 0


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def cmd_reconcile(args: argparse.Namespace) -> int:
    from backend.trips import service as trips_service

    try:
        with _database(_database_url()) as factory:
            summary = trips_service.reconcile_day(
                factory, args.day, trips_service.ResolverCache(), _utc_now
            )
    except trips_service.FinalDayError as exc:
        raise CliError(str(exc)) from None
    _out(
        f"service day {summary.service_day}: {summary.vehicles} vehicles, "
        f"{summary.sightings} sightings ({summary.resolved} resolved), {summary.trips} trips"
    )
    for failure in summary.failed:
        sys.stderr.write(f"bibo reconcile: unit failed (retried later): {failure}\n")
    return 1 if summary.failed else 0


def cmd_trips(args: argparse.Namespace) -> int:
    from backend.trips import service as trips_service
    from backend.trips.schemas import TripOut

    with _database(_database_url()) as factory, factory() as session:
        trips = [TripOut.model_validate(t) for t in trips_service.day_trips(session, args.day)]
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
    from backend.trips.schemas import StopOut

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
    from backend.trips.worker import run_worker

    url = _database_url()
    settings = _settings()
    with _database(url) as factory:
        return run_worker(factory, settings, poll_s=args.poll_seconds, once=args.once)


def cmd_retention(args: argparse.Namespace) -> int:
    from backend.db import transaction
    from backend.maintenance.service import apply_retention, ensure_partitions
    from backend.timeutil import service_day_of

    url = _database_url()
    settings = _settings()
    now = _utc_now()
    real_today = service_day_of(int(now.timestamp() * 1000))
    today = args.today or real_today
    if today > real_today:
        # Retention marks days final for good: a date in the future would end days early.
        raise CliError(f"--today {today}: must not be after today ({real_today})")
    with _database(url) as factory, transaction(factory) as session:
        result = apply_retention(
            session, today, settings.sightings_retention_days, settings.trips_retention_days, now
        )
        created = ensure_partitions(session, today)
    _out(
        f"sightings before {result.sightings_before} removed: {result.sightings_deleted} rows, "
        f"{result.partitions_dropped} partitions, {result.phone_sightings_deleted} phone "
        f"sightings; {result.trips_deleted} old trips removed; "
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
    serve.add_argument("--port", type=_port, default=8000)
    serve.add_argument("--log-level", default="info")

    vehicles = sub.add_parser("vehicles", help="manage vehicles")
    vsub = vehicles.add_subparsers(dest="action", required=True, parser_class=_Parser)
    vadd = vsub.add_parser(
        "add",
        help="register vehicles (all or none); prints each upload secret once",
        description="Register one vehicle (its upload secret alone on the last line) or a "
        "fleet of one company at once (all or none; one 'VEHICLE_ID SECRET' line each).",
    )
    vadd.add_argument("vehicle_id", type=_vehicle_id, nargs="+", metavar="VEHICLE_ID")
    vadd.add_argument(
        "--operator",
        type=_company,
        default=None,
        metavar="COMPANY",
        help="the transit company running the vehicle (RLG, VKU, …): the revenue of the "
        "rides on it is apportioned to it",
    )
    vadd.set_defaults(func=cmd_vehicles_add)
    vset = vsub.add_parser(
        "set-operator", help="change the transit company of a registered vehicle"
    )
    vset.add_argument("vehicle_id", type=_vehicle_id)
    vset.add_argument("operator", type=_company, nargs="?", default=None, metavar="COMPANY")
    vset.add_argument(
        "--none", action="store_true", help="no company: its revenue is reported 'unassigned'"
    )
    vset.set_defaults(func=cmd_vehicles_set_operator)

    operators = sub.add_parser("operators", help="manage operators")
    osub = operators.add_subparsers(dest="action", required=True, parser_class=_Parser)
    oadd = osub.add_parser("add", help="create an operator; prints an API token once")
    oadd.add_argument("name", type=_operator_name)
    oadd.add_argument(
        "--role",
        choices=["viewer", "agent", "admin"],
        default=DEFAULT_OPERATOR_ROLE,
        help=f"viewer reads, agent also reconciles and resolves disputes, admin may do "
        f"everything (default {DEFAULT_OPERATOR_ROLE})",
    )
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


def _fail(message: str) -> None:
    """One line on stderr, whatever the message holds."""
    sys.stderr.write("bibo: " + " ".join(message.splitlines()) + "\n")
    sys.stderr.flush()


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so that the interpreter's flush at exit finds no closed pipe
    (Python's documented recipe for SIGPIPE)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # stdout is not a file (a test's capture)
        pass


def missing_module(profile: str) -> str | None:
    """A module of ``profile`` (or of a profile it holds) that is not installed, if any."""
    for module in PROFILES[profile][1]:
        if importlib.util.find_spec(module) is None:
            return module
    for name in PROFILE_INCLUDES.get(profile, ()):
        missing = missing_module(name)
        if missing is not None:
            return missing
    return None


def _require_profile(command: str) -> None:
    """Refuse ``command`` in one line if its install profile is not installed."""
    profile = COMMAND_PROFILE[command]
    missing = missing_module(profile)
    if missing is not None:
        raise CliError(
            f"{command} needs {PROFILES[profile][0]}, which is not installed here "
            f"(no module {missing!r}): pip install 'bibo[{profile}]'"
        )


def _database_error(exc: Exception) -> str | None:
    """The one line for a database that went away or is locked, ``None`` for anything else.

    Only the commands that use the database import SQLAlchemy: if it is not loaded, ``exc``
    cannot be its error (and a bus's install has none to import).
    """
    if "sqlalchemy" not in sys.modules:
        return None
    from sqlalchemy.exc import OperationalError

    if not isinstance(exc, OperationalError):
        return None
    from backend.db import mask_password

    return f"database error: {mask_password(str(exc.orig))}"


def _run(args_list: list[str]) -> int:
    if args_list and args_list[0] in COMMAND_PROFILE:
        # Before parsing: a server command's argument types may need the server's modules.
        _require_profile(args_list[0])
    if args_list and args_list[0] in DELEGATED:
        module = importlib.import_module(DELEGATED[args_list[0]])
        delegated_main: Callable[[list[str]], int] = module.main
        skip = 0 if DELEGATED[args_list[0]] in KEEPS_COMMAND_NAME else 1
        return delegated_main(args_list[skip:])
    args = build_parser().parse_args(args_list)
    result: int = args.func(args)
    return result


def main(argv: Sequence[str] | None = None) -> int:
    """Run one ``bibo`` command; returns the exit code.

    Expected failures are one line on stderr: a CliError or a database that stopped
    answering (exit 2), Ctrl-C (130), a reader that closed the pipe (141, silently).
    Anything else is a bug and keeps its traceback.
    """
    args_list = list(sys.argv[1:] if argv is None else argv)
    try:
        result = _run(args_list)
        # Output still buffered (the delegated commands do not flush) must fail here, where
        # a closed pipe is handled, not in the interpreter's flush at exit.
        sys.stdout.flush()
    except BrokenPipeError:
        _silence_stdout()
        return BROKEN_PIPE
    except CliError as exc:
        _fail(str(exc))
        return USAGE_ERROR
    except KeyboardInterrupt:
        _fail("interrupted")
        return INTERRUPTED
    except Exception as exc:
        # The database went away or is locked after the up-front check passed.
        message = _database_error(exc)
        if message is None:
            raise
        _fail(message)
        return USAGE_ERROR
    return result


if __name__ == "__main__":
    sys.exit(main())
