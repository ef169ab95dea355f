"""``bibo onboard run``: the agent on a real bus, scanning a Bluetooth adapter until stopped.

Errors are one line on stderr and exit code 2; the vehicle secret is never printed or logged.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import re
import signal
import socket
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

from onboard import wire
from onboard.agent import Agent, AgentConfig
from onboard.const import DEFAULT_OUTBOX_PATH, UPLOAD_INTERVAL_MS
from onboard.outbox import Outbox, OutboxError
from onboard.scanner import BleakAdvertScanner, ScannerError
from onboard.uploader import Uploader, make_client

_log = logging.getLogger("onboard")

_IDENTIFIER = re.compile(r"^[\w.:-]{1,64}$")
"""The wire format's ``Identifier`` (vehicle and unit ids)."""

EXIT_USAGE = 2


class CliError(Exception):
    """A problem the person running the command can fix; printed as one line."""


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage error as one line instead of usage text and exit."""

    def error(self, message: str) -> NoReturn:
        raise CliError(message)


@dataclass(frozen=True, slots=True)
class RunOptions:
    """Validated options of ``onboard run``."""

    vehicle_id: str
    unit_id: str
    backend_url: str
    secret: bytes
    adapter: str | None
    outbox_path: Path
    service_uuid: str
    upload_interval_ms: int

    def __repr__(self) -> str:  # keep the secret out of any accidental log line
        return f"RunOptions(vehicle_id={self.vehicle_id!r}, backend_url={self.backend_url!r})"


def _now_ms() -> int:
    """Real time in UTC epoch ms."""
    return time.time_ns() // 1_000_000


def _build_parser() -> _Parser:
    parser = _Parser(prog="bibo onboard", description="bibo onboard unit agent")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    run = commands.add_parser("run", help="scan for passengers and upload batches until stopped")
    run.add_argument("--vehicle", required=True, help="vehicle id, e.g. RLG-4711")
    run.add_argument("--backend", required=True, help="backend base URL, e.g. https://bibo.example")
    run.add_argument(
        "--secret-file", required=True, type=Path, help="file holding the vehicle secret (hex)"
    )
    run.add_argument("--adapter", default=None, help="Bluetooth adapter, e.g. hci0")
    run.add_argument(
        "--outbox", default=Path(DEFAULT_OUTBOX_PATH), type=Path, help="outbox SQLite file"
    )
    run.add_argument("--unit-id", default=None, help="onboard unit id (default: host name)")
    run.add_argument("--service-uuid", default=wire.SERVICE_UUID, help="BLE service UUID")
    run.add_argument(
        "--upload-interval-s",
        type=float,
        default=UPLOAD_INTERVAL_MS / 1000,
        help="seconds between sealed batches",
    )
    run.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    return parser


def _read_secret(path: Path) -> bytes:
    """The vehicle secret from ``path`` (hex, as ``bibo vehicles add`` prints it)."""
    try:
        text = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not ASCII text"
        raise CliError(f"--secret-file {path}: cannot read: {reason}") from None
    try:
        secret = bytes.fromhex(text)
    except ValueError:
        raise CliError(f"--secret-file {path}: expected hex characters only") from None
    if not secret:
        raise CliError(f"--secret-file {path}: file is empty")
    return secret


def _default_unit_id() -> str:
    name = re.sub(r"[^\w.:-]", "-", socket.gethostname())[:64]
    return name or "obu"


def _options(args: argparse.Namespace) -> RunOptions:
    vehicle_id: str = args.vehicle
    if not _IDENTIFIER.match(vehicle_id):
        raise CliError(f"--vehicle {vehicle_id!r}: expected 1-64 of letters, digits, _ . : -")
    unit_id: str = args.unit_id or _default_unit_id()
    if not _IDENTIFIER.match(unit_id):
        raise CliError(f"--unit-id {unit_id!r}: expected 1-64 of letters, digits, _ . : -")
    backend: str = args.backend
    if not backend.startswith(("http://", "https://")):
        raise CliError(f"--backend {backend!r}: expected an http:// or https:// URL")
    interval_s: float = args.upload_interval_s
    if not interval_s > 0:
        raise CliError(f"--upload-interval-s {interval_s}: expected a positive number of seconds")
    return RunOptions(
        vehicle_id=vehicle_id,
        unit_id=unit_id,
        backend_url=backend,
        secret=_read_secret(args.secret_file),
        adapter=args.adapter,
        outbox_path=args.outbox,
        service_uuid=args.service_uuid,
        upload_interval_ms=round(interval_s * 1000),
    )


async def _run(options: RunOptions) -> None:
    try:
        config = AgentConfig(
            vehicle_id=options.vehicle_id,
            unit_id=options.unit_id,
            upload_interval_ms=options.upload_interval_ms,
            service_uuid=options.service_uuid,
        )
    except ValueError as exc:
        raise CliError(str(exc)) from None
    boot_id = str(uuid.uuid4())
    outbox = Outbox(options.outbox_path, options.vehicle_id, options.unit_id, boot_id)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        async with make_client() as client:
            uploader = Uploader(
                client, options.backend_url, options.vehicle_id, options.secret, _now_ms
            )
            agent = Agent(config, outbox, uploader, _now_ms)
            scanner = BleakAdvertScanner(config.service_uuid, adapter=options.adapter)
            _log.info(
                "agent starting: vehicle=%s unit=%s boot=%s outbox=%s pending=%d",
                options.vehicle_id,
                options.unit_id,
                boot_id,
                options.outbox_path,
                outbox.pending_count(),
            )
            await agent.run(scanner, stop)
            _log.info("agent stopped: %s", agent.stats)
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        outbox.close()


def main(argv: list[str]) -> int:
    """Entry point for ``bibo onboard ...``; returns the process exit code."""
    try:
        args = _build_parser().parse_args(argv)
    except CliError as exc:
        sys.stderr.write(f"bibo onboard: error: {exc}\n")
        return EXIT_USAGE
    except SystemExit as exc:  # --help
        return exc.code if isinstance(exc.code, int) else 0
    logging.basicConfig(
        level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        options = _options(args)
        asyncio.run(_run(options))
    except (CliError, OutboxError, ScannerError) as exc:
        sys.stderr.write(f"bibo onboard: error: {exc}\n")
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 0
    return 0
