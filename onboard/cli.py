"""``bibo onboard run`` (the agent on a real bus) and ``bibo onboard status`` (its health).

Errors are one line on stderr and exit code 2; the vehicle secret is never printed or logged.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import logging
import math
import re
import signal
import socket
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Final, Literal, NoReturn

from onboard import wire
from onboard.advertiser import BlueZAdvertiser
from onboard.agent import Agent, AgentConfig
from onboard.beacon import BeaconConfig, BeaconKeeper
from onboard.const import (
    BEACON_MEASURED_POWER_DBM,
    DEFAULT_OUTBOX_PATH,
    GPSD_DEFAULT_PORT,
    HEARTBEAT,
    MAX_BATCHES_PER_S,
    METRICS_DEFAULT_ADDRESS,
    OUTBOX_CAP_BYTES,
    SCANNER_WATCHDOG_TIMEOUT_S,
    STATUS_METRICS_TIMEOUT_S,
    UPLOAD_INTERVAL_MS,
)
from onboard.feed import VehicleFeedServer
from onboard.gpsd import GpsdSource
from onboard.outbox import Outbox, OutboxError, OutboxHealth, read_health
from onboard.scanner import BleakAdvertScanner, ScannerError, valid_adapter_name
from onboard.uploader import Uploader, UploadOutcome, make_client
from onboard.vehicle import VehicleSource

_log = logging.getLogger("onboard")

_IDENTIFIER = re.compile(wire.IDENTIFIER_PATTERN)
"""The wire format's ``Identifier`` (vehicle and unit ids)."""

EXIT_USAGE = 2

UNREACHABLE_LOG_INTERVAL_S: Final = 60.0
"""While the backend does not answer, ``run`` says so at the first failed send and then at
most once a minute: a wrong ``--backend`` shows at once, a long outage does not flood the
journal."""


class CliError(Exception):
    """A problem the person running the command can fix; printed as one line."""


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage error as one line instead of usage text and exit."""

    def error(self, message: str) -> NoReturn:
        raise CliError(message)


Address = tuple[str, int]
"""A host (name or IP) and TCP port."""


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
    passive: bool = False
    outbox_cap_bytes: int = OUTBOX_CAP_BYTES
    max_batches_per_s: float = MAX_BATCHES_PER_S
    watchdog_s: float = SCANNER_WATCHDOG_TIMEOUT_S
    reset_adapter_after: int = 0
    gpsd: Address | None = None
    vehicle_feed: Address | None = None
    metrics: Address | None = None
    beacon: BeaconConfig | None = None
    """Advertise the bus beacon on ``adapter`` with these settings (``None``: do not)."""

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
        "--passive",
        action="store_true",
        help="passive scanning with BlueZ advertisement monitor patterns (BlueZ >= 5.56)",
    )
    run.add_argument(
        "--beacon",
        action="store_true",
        help="also advertise the bus beacon (an iBeacon with rotating ids) on the adapter",
    )
    run.add_argument(
        "--beacon-uuid",
        default=str(wire.DEFAULT_PROXIMITY_UUID),
        metavar="UUID",
        help="the deployment's iBeacon proximity UUID, the region the phone app monitors",
    )
    run.add_argument(
        "--beacon-power",
        type=int,
        default=BEACON_MEASURED_POWER_DBM,
        metavar="DBM",
        help=f"iBeacon measured power, RSSI at 1 m in dBm (default {BEACON_MEASURED_POWER_DBM})",
    )
    run.add_argument(
        "--outbox", default=Path(DEFAULT_OUTBOX_PATH), type=Path, help="outbox SQLite file"
    )
    run.add_argument(
        "--outbox-cap-mb",
        type=float,
        default=OUTBOX_CAP_BYTES / 2**20,
        help="disk cap of the outbox in MiB; beyond it the oldest sightings are dropped",
    )
    run.add_argument("--unit-id", default=None, help="onboard unit id (default: host name)")
    run.add_argument("--service-uuid", default=wire.SERVICE_UUID, help="BLE service UUID")
    run.add_argument(
        "--upload-interval-s",
        type=float,
        default=UPLOAD_INTERVAL_MS / 1000,
        help="seconds between sealed batches while online",
    )
    run.add_argument(
        "--max-batches-per-s",
        type=float,
        default=MAX_BATCHES_PER_S,
        help="send rate cap, also while catching up after an outage",
    )
    run.add_argument(
        "--watchdog-s",
        type=float,
        default=SCANNER_WATCHDOG_TIMEOUT_S,
        help="restart scanning after this many seconds without an advert",
    )
    run.add_argument(
        "--reset-adapter-after",
        type=int,
        default=0,
        help="power-cycle the adapter after this many silent restarts in a row (0: never)",
    )
    run.add_argument(
        "--gpsd",
        default=None,
        metavar="HOST[:PORT]",
        help=f"read GNSS positions from gpsd (port {GPSD_DEFAULT_PORT} if omitted)",
    )
    run.add_argument(
        "--vehicle-feed",
        default=None,
        metavar="HOST:PORT",
        help="listen for stop/door/journey events from the onboard computer (see README)",
    )
    run.add_argument(
        "--metrics",
        default=METRICS_DEFAULT_ADDRESS,
        metavar="HOST:PORT|off",
        help=f"Prometheus metrics address (default {METRICS_DEFAULT_ADDRESS})",
    )
    run.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])

    status = commands.add_parser("status", help="show the outbox and the running agent's health")
    status.add_argument(
        "--outbox", default=Path(DEFAULT_OUTBOX_PATH), type=Path, help="outbox SQLite file"
    )
    status.add_argument(
        "--metrics",
        default=METRICS_DEFAULT_ADDRESS,
        metavar="HOST:PORT|off",
        help="the running agent's metrics address, to show live figures",
    )
    status.add_argument("--format", default="text", choices=["text", "json"])
    return parser


def _address(text: str, option: str, default_port: int | None = None) -> Address:
    """``HOST:PORT`` (or ``[IPv6]:PORT``; ``HOST`` alone if ``default_port``) as a pair."""
    host, sep, port_text = text.rpartition(":")
    if not sep or "]" in port_text:
        host, port_text = text, ""
    host = host.strip("[]")
    if not port_text:
        if default_port is None:
            raise CliError(f"{option} {text!r}: expected HOST:PORT, e.g. 127.0.0.1:8472")
        port_text = str(default_port)
    if not host or not re.fullmatch(r"[0-9]{1,5}", port_text) or not 0 <= int(port_text) <= 65535:
        raise CliError(f"{option} {text!r}: expected HOST:PORT with a port 0-65535")
    return host, int(port_text)


def _metrics_address(text: str) -> Address | None:
    return None if text.lower() == "off" else _address(text, "--metrics")


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
    name = re.sub(r"[^A-Za-z0-9_.:-]", "-", socket.gethostname())[:64]
    return name or "obu"


def _options(args: argparse.Namespace) -> RunOptions:
    vehicle_id: str = args.vehicle
    if len(vehicle_id) > wire.IDENTIFIER_MAX_CHARS or not _IDENTIFIER.fullmatch(vehicle_id):
        raise CliError(f"--vehicle {vehicle_id!r}: expected 1-64 of letters, digits, _ . : -")
    unit_id: str = args.unit_id or _default_unit_id()
    if len(unit_id) > wire.IDENTIFIER_MAX_CHARS or not _IDENTIFIER.fullmatch(unit_id):
        raise CliError(f"--unit-id {unit_id!r}: expected 1-64 of letters, digits, _ . : -")
    backend: str = args.backend
    if not backend.startswith(("http://", "https://")):
        raise CliError(f"--backend {backend!r}: expected an http:// or https:// URL")
    interval_s: float = args.upload_interval_s
    if not (interval_s > 0 and math.isfinite(interval_s)):
        raise CliError(f"--upload-interval-s {interval_s}: expected a positive number of seconds")
    adapter: str | None = args.adapter
    if adapter is not None and not valid_adapter_name(adapter):
        raise CliError(f"--adapter {adapter!r}: expected a BlueZ adapter name such as hci0")
    cap_mb: float = args.outbox_cap_mb
    if not (cap_mb > 0 and math.isfinite(cap_mb)):
        raise CliError(f"--outbox-cap-mb {cap_mb}: expected a positive number of MiB")
    rate: float = args.max_batches_per_s
    if not (rate > 0 and math.isfinite(rate)):
        raise CliError(f"--max-batches-per-s {rate}: expected a positive rate")
    watchdog_s: float = args.watchdog_s
    if not (watchdog_s > 0 and math.isfinite(watchdog_s)):
        raise CliError(f"--watchdog-s {watchdog_s}: expected a positive number of seconds")
    reset_after: int = args.reset_adapter_after
    if reset_after < 0:
        raise CliError(f"--reset-adapter-after {reset_after}: expected 0 (never) or more")
    try:
        proximity_uuid = uuid.UUID(args.beacon_uuid)
    except ValueError:
        raise CliError(
            f"--beacon-uuid {args.beacon_uuid!r}: expected a UUID such as"
            f" {wire.DEFAULT_PROXIMITY_UUID}"
        ) from None
    power: int = args.beacon_power
    if not -128 <= power <= 127:
        raise CliError(f"--beacon-power {power}: expected -128..127 dBm")
    return RunOptions(
        vehicle_id=vehicle_id,
        unit_id=unit_id,
        backend_url=backend,
        secret=_read_secret(args.secret_file),
        adapter=adapter,
        outbox_path=args.outbox,
        service_uuid=args.service_uuid,
        upload_interval_ms=round(interval_s * 1000),
        passive=args.passive,
        outbox_cap_bytes=round(cap_mb * 2**20),
        max_batches_per_s=rate,
        watchdog_s=watchdog_s,
        reset_adapter_after=reset_after,
        gpsd=None if args.gpsd is None else _address(args.gpsd, "--gpsd", GPSD_DEFAULT_PORT),
        vehicle_feed=(
            None if args.vehicle_feed is None else _address(args.vehicle_feed, "--vehicle-feed")
        ),
        metrics=_metrics_address(args.metrics),
        beacon=BeaconConfig(proximity_uuid, power) if args.beacon else None,
    )


async def _run(options: RunOptions) -> None:
    try:
        config = AgentConfig(
            vehicle_id=options.vehicle_id,
            unit_id=options.unit_id,
            upload_interval_ms=options.upload_interval_ms,
            service_uuid=options.service_uuid,
            max_batches_per_s=options.max_batches_per_s,
            heartbeat=HEARTBEAT,
            watchdog_timeout_s=options.watchdog_s,
            reset_adapter_after=options.reset_adapter_after,
        )
    except ValueError as exc:
        raise CliError(str(exc)) from None
    # Imported here: prometheus-client is needed by ``run`` only.
    from onboard.metrics import MetricsServer, make_registry

    boot_id = str(uuid.uuid4())
    outbox = Outbox(
        options.outbox_path,
        options.vehicle_id,
        options.unit_id,
        boot_id,
        max_bytes=options.outbox_cap_bytes,
    )
    registry, collector = make_registry()
    metrics: MetricsServer | None = None
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        if options.metrics is not None:
            host, port = options.metrics
            try:
                metrics = MetricsServer(registry, host, port)
            except OSError as exc:
                raise CliError(f"--metrics {host}:{port}: cannot listen: {exc.strerror}") from None
            _log.info("metrics at http://%s:%d/metrics", host, metrics.port)
        sources: list[VehicleSource] = []
        if options.gpsd is not None:
            sources.append(GpsdSource(_now_ms, *options.gpsd))
        if options.vehicle_feed is not None:
            sources.append(VehicleFeedServer(_now_ms, *options.vehicle_feed))
        async with make_client() as client:
            uploader = _ReportingUploader(
                client, options.backend_url, options.vehicle_id, options.secret, _now_ms
            )
            agent = Agent(config, outbox, uploader, _now_ms)
            scanner = BleakAdvertScanner(
                config.service_uuid,
                adapter=options.adapter,
                scanning_mode="passive" if options.passive else "active",
            )
            beacon: BeaconKeeper | None = None
            if options.beacon is not None:
                beacon = BeaconKeeper(
                    BlueZAdvertiser(options.adapter), options.secret, options.beacon
                )
            _log.info(
                "agent starting: vehicle=%s unit=%s boot=%s outbox=%s pending=%d sources=%s"
                " beacon=%s",
                options.vehicle_id,
                options.unit_id,
                boot_id,
                options.outbox_path,
                outbox.pending_count(),
                ",".join(s.name for s in sources) or "none",
                "on" if beacon is not None else "off",
            )
            await agent.run(
                scanner, stop, sources=sources, beacon=beacon, on_health=collector.update
            )
            _log.info("agent stopped: %s", agent.stats)
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        if metrics is not None:
            metrics.close()
        outbox.close()


class _ReportingUploader(Uploader):
    """The agent's uploader, also saying in the log when the backend does not answer.

    The uploader logs a failed send at debug level only (a bus loses its link often); a
    person starting the agent with a wrong ``--backend`` must see it without debug logs.
    """

    def __init__(
        self, *args: Any, monotonic: Callable[[], float] = time.monotonic, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self._monotonic = monotonic
        self._failed = 0
        self._said_at: float | None = None

    async def send_stored(
        self, stored: bytes, encoding: Literal["identity", "gzip"]
    ) -> UploadOutcome:
        outcome = await super().send_stored(stored, encoding)
        if outcome.http_status is None:
            self._failed += 1
            now = self._monotonic()
            if self._said_at is None or now - self._said_at >= UNREACHABLE_LOG_INTERVAL_S:
                _log.warning(
                    "cannot reach the backend at %s (%s); batches stay in the outbox, "
                    "retrying (attempt %d)",
                    self.url,
                    outcome.detail,
                    self._failed,
                )
                self._said_at = now
        elif self._failed:
            _log.info("the backend answers again after %d failed attempts", self._failed)
            self._failed = 0
            self._said_at = None
        return outcome


# --- status ------------------------------------------------------------------------------


def _fetch_metrics(address: Address) -> dict[str, float] | None:
    """The running agent's metric samples by name (labels summed), ``None`` if unreachable."""
    from prometheus_client.parser import text_string_to_metric_families

    host, port = address
    url = f"http://{host}:{port}/metrics"
    try:
        with urllib.request.urlopen(url, timeout=STATUS_METRICS_TIMEOUT_S) as response:
            text = response.read().decode("utf-8")
    except (OSError, urllib.error.URLError, ValueError):
        return None
    samples: dict[str, float] = {}
    try:
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                samples[sample.name] = samples.get(sample.name, 0.0) + sample.value
    except ValueError:
        return None
    return samples


def _iso(ms: int | None) -> str | None:
    if ms is None:
        return None
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).isoformat(timespec="seconds")


def status_report(
    health: OutboxHealth, live: dict[str, float] | None, now_ms: int
) -> dict[str, Any]:
    """The status as one versioned JSON-able dict (pure, for ``--format json`` and tests)."""
    report: dict[str, Any] = {"version": 1, "outbox": asdict(health)}
    report["outbox"]["last_delivery"] = _iso(health.last_delivery_ms)
    if live is None:
        report["agent"] = None
        return report

    def number(name: str) -> float | None:
        value = live.get(name)
        return None if value is None or math.isnan(value) else value

    last_upload = number("bibo_onboard_last_successful_upload_timestamp_seconds")
    report["agent"] = {
        "adverts_per_s": number("bibo_onboard_adverts_per_second"),
        "adverts_total": number("bibo_onboard_adverts_total"),
        "last_upload": None if last_upload is None else _iso(round(last_upload * 1000)),
        "last_upload_age_s": None if last_upload is None else now_ms / 1000 - last_upload,
        "clock_offset_s": number("bibo_onboard_clock_offset_seconds"),
        "scanner_restarts": number("bibo_onboard_scanner_restarts_total"),
        "open_rows": number("bibo_onboard_window_open_rows"),
    }
    return report


def _format_text(report: dict[str, Any], outbox_path: Path, metrics: Address | None) -> str:
    o = report["outbox"]

    # A missing figure is said in words, never put next to a unit ("- old", "0 restarts").
    oldest = o["oldest_unsent_age_ms"]
    lines = [
        f"outbox               {outbox_path} ({o['used_bytes'] / 2**20:.2f} MiB of data)",
        f"pending batches      {o['pending_batches']}",
        "oldest unsent data   " + ("none" if oldest is None else f"{oldest / 1000:.0f} s old"),
        f"quarantined batches  {o['quarantined_batches']}",
        f"unbatched            {o['unbatched_sightings']} sightings,"
        f" {o['unbatched_events']} events",
        f"dropped sightings    {o['dropped_sightings']} (at the disk cap, ever)",
        f"last delivery        {o['last_delivery'] or 'never'}",
    ]
    agent = report["agent"]
    if metrics is None:
        lines.append("agent                not asked (--metrics off)")
    elif agent is None:
        lines.append(f"agent                not reachable at {metrics[0]}:{metrics[1]}")
    else:
        rate = agent["adverts_per_s"]
        offset = agent["clock_offset_s"]
        upload_age = agent["last_upload_age_s"]
        restarts = agent["scanner_restarts"]
        lines.append(
            "agent                running: "
            + (f"{rate:.1f} adverts/s" if rate is not None else "adverts/s unknown")
            + (
                f", last upload {upload_age:.0f} s ago"
                if upload_age is not None
                else ", no upload yet"
            )
            + (f", clock offset {offset:+.1f} s" if offset is not None else "")
            + (f", {restarts:.0f} scanner restarts" if restarts is not None else "")
        )
    return "\n".join(lines) + "\n"


def _status(args: argparse.Namespace) -> int:
    outbox_path: Path = args.outbox
    metrics = _metrics_address(args.metrics)
    if not outbox_path.exists():
        raise CliError(f"--outbox {outbox_path}: no such file (is the agent's outbox elsewhere?)")
    now = _now_ms()
    health = read_health(outbox_path, now)
    live = None if metrics is None else _fetch_metrics(metrics)
    report = status_report(health, live, now)
    if args.format == "json":
        sys.stdout.write(json.dumps(report, indent=2) + "\n")
    else:
        sys.stdout.write(_format_text(report, outbox_path, metrics))
    return 0


def main(argv: list[str]) -> int:
    """Entry point for ``bibo onboard ...``; returns the process exit code."""
    try:
        args = _build_parser().parse_args(argv)
    except CliError as exc:
        sys.stderr.write(f"bibo onboard: error: {exc}\n")
        return EXIT_USAGE
    except SystemExit as exc:  # --help
        return exc.code if isinstance(exc.code, int) else 0
    try:
        if args.command == "status":
            return _status(args)
        logging.basicConfig(
            level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
        )
        options = _options(args)
        asyncio.run(_run(options))
    except (CliError, OutboxError, ScannerError) as exc:
        sys.stderr.write(f"bibo onboard: error: {exc}\n")
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 0
    return 0
