"""``bibo demo``: a whole simulated service day through every real part of bibo.

The backend runs as its own process (``bibo serve`` on loopback, SQLite in a work directory);
vehicles and an operator are provisioned with the ``bibo`` commands; every bus runs the real
onboard agent, fed by the simulator through the fake scanner with real bleak types, and
uploads signed batches over real HTTP. Then the day is reconciled, priced and scored against
the simulator's ground truth. The simulator talks to the backend only over HTTP and the CLI.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import datetime as dt
import json
import shutil
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

import httpx
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from onboard.agent import Agent, AgentConfig
from onboard.outbox import Outbox
from onboard.uploader import Uploader, UploadStatus
from simulator.backend_proc import (
    BackendError,
    add_vehicles,
    backend_env,
    backend_server,
    bibo,
    free_port,
    last_line,
)
from simulator.const import (
    DEFAULT_SERVICE_END,
    DEFAULT_SERVICE_START,
    IPHONE_SHARE,
    REPLAY_UPLOADS_PER_S,
)
from simulator.day import (
    DayConfig,
    DayPlan,
    IntArray,
    ground_truth,
    plan_day,
    vehicle_timeline,
)
from simulator.iphones import beacon_offsets_db, heard_seconds, phone_bodies
from simulator.network import load_network
from simulator.phone import phone_uploader
from simulator.recording import SimClock, feed_agent
from simulator.scenarios import DEFAULT_DAY
from simulator.scoring import ScoredTrip, Scores, score
from simulator.timetable import Vehicle
from simulator.truth import GroundTruth
from simulator.world import DEFAULT_WORLD

DEMO_UPLOAD_INTERVAL_MS: Final = 300_000
"""One batch per simulated 5 minutes: a real bus uploads every 10 s, but the demo replays a
whole day in about a minute, and 30 times fewer requests keep it inside that budget."""

DEMO_TICK_EVERY_MS: Final = 30_000
"""Simulated time between agent ticks; each tick is one durable outbox commit (an fsync)."""

DEMO_REGISTRATION_CONCURRENCY: Final = 8
"""Concurrent sign-ups; more only queues on the single SQLite writer."""

DEMO_PHONE_ATTEMPTS: Final = 30
"""Tries per phone upload while the backend's per-device allowance says wait (429)."""

DEMO_LINES: Final = ("R61", "S20", "R55")
"""One line per county, all of whose stops the shipped tariff prices: the demo's clean day."""

DEMO_BYSTANDER_KINDS: Final = (("stop_wait", 0.6), ("walk_past", 0.4))
"""The demo stays on the easy bystanders; ``bibo simulate`` has the hard ones."""


@dataclasses.dataclass(frozen=True)
class DemoOptions:
    buses: int = 6
    passengers: int = 120
    bystanders: int = 40
    seed: int = 1
    day: dt.date = DEFAULT_DAY
    workdir: Path = Path("bibo-demo")
    upload_interval_ms: int = DEMO_UPLOAD_INTERVAL_MS
    lines: tuple[str, ...] = DEMO_LINES
    service_start: dt.time = DEFAULT_SERVICE_START
    service_end: dt.time = DEFAULT_SERVICE_END
    quiet: bool = False
    iphone_share: float = IPHONE_SHARE
    """Share of passengers and bystanders on an iPhone: they hear the bus beacon and upload
    what they heard instead of advertising."""


@dataclasses.dataclass(frozen=True)
class DemoResult:
    scores: Scores
    charges: list[dict[str, Any]]
    trips: list[dict[str, Any]]
    adverts: int
    batches: int
    bystander_encounters: int
    phone_batches: int = 0
    iphone_scores: Scores | None = None
    """The iPhones' rides alone (they heard the bus beacon) ..."""
    android_scores: Scores | None = None
    """... and the advertising phones' alone."""
    revenue: dict[str, Any] | None = None
    """``GET /v1/revenue`` of the day's month after closing it (shares per transit company);
    None when the month has not ended yet (it cannot be closed)."""

    @property
    def revenue_cents(self) -> int:
        return sum(int(c["total_cents"]) for c in self.charges)

    def as_dict(self) -> dict[str, Any]:
        return {
            "version": 1,
            "scores": self.scores.as_dict(),
            "revenue_cents": self.revenue_cents,
            "charges": self.charges,
            "adverts": self.adverts,
            "batches": self.batches,
            "bystander_encounters": self.bystander_encounters,
            "phone_batches": self.phone_batches,
            "iphone_scores": self.iphone_scores.as_dict() if self.iphone_scores else None,
            "android_scores": self.android_scores.as_dict() if self.android_scores else None,
            "revenue": self.revenue,
        }


DemoError = BackendError
"""A step of the demo failed; the message says which and why."""


# --- the simulated day through the agents -----------------------------------------------


async def register_persons(
    client: httpx.AsyncClient, plan: DayPlan
) -> tuple[dict[str, bytes], dict[str, str]]:
    """Sign every simulated app user up; returns device keys and device ids by person id."""
    keys: dict[str, bytes] = {}
    device_ids: dict[str, str] = {}
    limit = asyncio.Semaphore(DEMO_REGISTRATION_CONCURRENCY)

    async def one(person_id: str, category: str) -> None:
        async with limit:
            r = await client.post("/v1/passengers", json={"rider_category": category})
            _expect(r, 201, "passenger sign-up")
            passenger = r.json()
            r = await client.post(
                f"/v1/passengers/{passenger['passenger_id']}/devices",
                headers={"Authorization": f"Bearer {passenger['token']}"},
            )
            _expect(r, 201, "device registration")
            keys[person_id] = base64.b64decode(r.json()["device_key"])
            device_ids[person_id] = r.json()["device_id"]

    await asyncio.gather(*(one(p.person_id, p.rider_category) for p in plan.persons))
    return keys, device_ids


def _expect(response: httpx.Response, status: int, what: str) -> None:
    if response.status_code != status:
        raise DemoError(f"{what}: HTTP {response.status_code}: {response.text[:300]}")


async def run_bus(
    plan: DayPlan,
    vehicle_id: str,
    secret: bytes,
    keys: Mapping[str, bytes],
    client: httpx.AsyncClient,
    base_url: str,
    options: DemoOptions,
    on_progress: Any,
    beacon_heard: list[tuple[IntArray, IntArray, IntArray]] | None = None,
) -> tuple[int, int]:
    """Drive one bus's real agent through the day; returns (adverts, batches delivered).
    What the iPhones heard of its beacon goes to ``beacon_heard``."""
    vehicle = plan.vehicle(vehicle_id)
    clock = SimClock(vehicle.journeys[0].start_ms)
    outbox = Outbox(
        options.workdir / f"outbox-{vehicle_id}.sqlite3",
        vehicle_id,
        f"obu-{vehicle_id.lower()}",
        str(uuid.uuid4()),
    )
    uploader = Uploader(
        client, base_url, vehicle_id, secret, wall_clock=lambda: int(time.time() * 1000)
    )
    config = AgentConfig(
        vehicle_id=vehicle_id,
        unit_id=f"obu-{vehicle_id.lower()}",
        upload_interval_ms=options.upload_interval_ms,
        # The day runs at simulation speed: do not pace uploads as a live unit would.
        max_batches_per_s=REPLAY_UPLOADS_PER_S,
    )
    agent = Agent(config, outbox, uploader, clock)
    try:
        items = vehicle_timeline(plan, vehicle_id, keys, options.seed, beacon_heard=beacon_heard)
        adverts = await feed_agent(
            agent, clock, items, DEMO_TICK_EVERY_MS, config.service_uuid, on_tick=on_progress
        )
        if outbox.pending_count():
            raise DemoError(f"{vehicle_id}: {outbox.pending_count()} batches not delivered")
        return adverts, agent.stats.batches_delivered
    finally:
        outbox.close()


async def simulate(
    options: DemoOptions,
    env: Mapping[str, str],
    base_url: str,
    operator_token: str,
    secrets: Mapping[str, bytes],
    plan: DayPlan,
    console: Console,
) -> DemoResult:
    auth = {"Authorization": f"Bearer {operator_token}"}
    limits = httpx.Limits(max_connections=DEMO_REGISTRATION_CONCURRENCY)
    async with httpx.AsyncClient(base_url=base_url, timeout=60.0, limits=limits) as client:
        keys, device_ids = await register_persons(client, plan)
        spans = {v.vehicle_id: _span(v) for v in plan.vehicles}
        total = sum(end - start for start, end in spans.values())
        adverts = batches = 0
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.percentage:>3.0f}%"),
            TimeElapsedColumn(),
            console=console,
            disable=options.quiet,
        ) as progress:
            task = progress.add_task("buses driving", total=total)
            done_before = 0
            heard: list[tuple[str, tuple[IntArray, IntArray, IntArray]]] = []
            offsets = beacon_offsets_db(plan, DEFAULT_WORLD)
            for vehicle_id, (start, end) in spans.items():
                progress.update(task, description=f"bus {vehicle_id}")

                def advance(t_ms: int, start: int = start, base: int = done_before) -> None:
                    progress.update(task, completed=base + max(0, t_ms - start))

                chunks: list[tuple[IntArray, IntArray, IntArray]] = []
                a, b = await run_bus(
                    plan,
                    vehicle_id,
                    secrets[vehicle_id],
                    keys,
                    client,
                    base_url,
                    options,
                    advance,
                    chunks,
                )
                heard.append((vehicle_id, heard_seconds(plan, chunks, offsets)))
                adverts += a
                batches += b
                done_before += end - start
                progress.update(task, completed=done_before)

        phone_batches = await send_phones(
            client, base_url, plan, heard, keys, device_ids, secrets, options.seed
        )
        day = options.day.isoformat()
        r = await client.post(f"/v1/reconcile?service_day={day}", headers=auth, timeout=600)
        _expect(r, 200, "reconcile")
        r = await client.get(f"/v1/trips?service_day={day}", headers=auth)
        _expect(r, 200, "trips")
        trips: list[dict[str, Any]] = r.json()
        r = await client.get(f"/v1/charges?service_day={day}", headers=auth)
        _expect(r, 200, "charges")
        charges: list[dict[str, Any]] = r.json()
        revenue = await close_and_share(client, auth, options.day)

    truth = ground_truth(plan, device_ids)
    person_of_device = {d: p for p, d in device_ids.items()}
    detected = [
        ScoredTrip(
            device_id=t["device_id"],
            vehicle_id=t["vehicle_id"],
            journey_id=t["journey_id"],
            board_stop_id=t["board_stop_id"],
            board_time=t["board_time"],
            alight_stop_id=t["alight_stop_id"],
            alight_time=t["alight_time"],
        )
        for t in trips
    ]
    iphones = {device_ids[p] for p in plan.iphones}
    return DemoResult(
        score(truth, detected, person_of_device),
        charges,
        trips,
        adverts,
        batches,
        len(truth.bystander_encounters),
        phone_batches,
        score(*_part(truth, detected, iphones, keep=True), person_of_device),
        score(*_part(truth, detected, iphones, keep=False), person_of_device),
        revenue,
    )


async def close_and_share(
    client: httpx.AsyncClient, auth: Mapping[str, str], day: dt.date
) -> dict[str, Any] | None:
    """Close the day's billing month (every passenger's invoice) and fetch its revenue per
    transit company (Einnahmeaufteilung by passenger-km); None while the month has not
    ended by the server's clock (409: it cannot be closed yet)."""
    month = day.strftime("%Y-%m")
    r = await client.post(f"/v1/billing/close-month?month={month}", headers=auth, timeout=600)
    if r.status_code == 409:
        return None
    _expect(r, 200, "close-month")
    r = await client.get(f"/v1/revenue?month={month}", headers=auth)
    _expect(r, 200, "revenue")
    revenue: dict[str, Any] = r.json()
    return revenue


def _part(
    truth: GroundTruth, detected: list[ScoredTrip], devices: set[str], keep: bool
) -> tuple[GroundTruth, list[ScoredTrip]]:
    """The rides and detections of ``devices`` only (``keep``) or of every other device."""

    def mine(device_id: str | None) -> bool:
        return (device_id in devices) == keep

    part = dataclasses.replace(
        truth,
        trips=[t for t in truth.trips if mine(t.device_id)],
        bystander_encounters=[e for e in truth.bystander_encounters if mine(e.device_id)],
    )
    return part, [t for t in detected if mine(t.device_id)]


async def send_phones(
    client: httpx.AsyncClient,
    base_url: str,
    plan: DayPlan,
    heard: list[tuple[str, tuple[IntArray, IntArray, IntArray]]],
    keys: Mapping[str, bytes],
    device_ids: Mapping[str, str],
    secrets: Mapping[str, bytes],
    seed: int,
) -> int:
    """Upload what every iPhone heard (as its app would, signed with its upload key);
    returns the batches delivered."""
    person_of = {d: p for p, d in device_ids.items()}
    delivered = 0
    for body in phone_bodies(plan, heard, device_ids, f"demo-{seed}", seed, secrets):
        device_id = json.loads(body)["device_id"]
        uploader = phone_uploader(
            client, base_url, device_id, keys[person_of[device_id]], _wall_clock
        )
        for _ in range(DEMO_PHONE_ATTEMPTS):
            outcome = await uploader.send(body)
            if outcome.status is UploadStatus.DELIVERED:
                delivered += 1
                break
            if outcome.http_status != 429:
                raise DemoError(f"phone {device_id}: upload refused: {outcome.detail}")
            await asyncio.sleep(1.0)
        else:
            raise DemoError(f"phone {device_id}: upload still rate-limited")
    return delivered


def _wall_clock() -> int:
    return int(time.time() * 1000)


def _span(vehicle: Vehicle) -> tuple[int, int]:
    return vehicle.journeys[0].start_ms, vehicle.journeys[-1].end_ms


def run_demo(options: DemoOptions, console: Console | None = None) -> DemoResult:
    """Provision, serve, simulate, reconcile, price and score one day; stop the server."""
    console = console or Console(stderr=True, quiet=options.quiet)
    workdir = options.workdir
    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    env = backend_env(workdir)

    config = DayConfig(
        options.day,
        options.buses,
        options.passengers,
        options.bystanders,
        service_start=options.service_start,
        service_end=options.service_end,
        lines=options.lines,
        incident_prob=0.0,
        phone_outage_prob=0.0,
        bystander_kinds=DEMO_BYSTANDER_KINDS,
        iphone_share=options.iphone_share,
    )
    plan = plan_day(load_network(), config, options.seed)
    console.log(
        f"planned {options.day}: {len(plan.vehicles)} buses, "
        f"{len(plan.trips)} trips of {options.passengers} passengers, "
        f"{options.bystanders} bystanders"
    )
    companies = {v.vehicle_id: v.operator for v in plan.vehicles}
    secrets = add_vehicles(list(plan.vehicle_ids), env, operators=companies)
    # The demo reconciles the day and closes its month (POST /v1/reconcile and
    # /v1/billing/close-month): the latter takes the admin role.
    operator_token = last_line(bibo(["operators", "add", "demo operator", "--role", "admin"], env))
    with backend_server(env, free_port(), workdir / "server.log") as url:
        console.log(f"backend serving at {url} (log: {workdir / 'server.log'})")
        return asyncio.run(simulate(options, env, url, operator_token, secrets, plan, console))


# --- report ------------------------------------------------------------------------------


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f} %"


def report(result: DemoResult, console: Console) -> None:
    s = result.scores
    table = Table(title="Trip detection against ground truth")
    table.add_column("measure")
    table.add_column("value", justify="right")
    for name, value in [
        ("true trips", str(s.truth_trips)),
        ("detected trips", str(s.detected_trips)),
        ("precision", _pct(s.precision)),
        ("recall", _pct(s.recall)),
        ("F1", f"{s.f1:.3f}"),
        ("exact boarding stop", _pct(s.board_stop_accuracy)),
        ("exact alighting stop", _pct(s.alight_stop_accuracy)),
        (
            "bystanders wrongly charged",
            f"{s.bystanders_charged} of {result.bystander_encounters} encounters",
        ),
        ("adverts heard / batches uploaded", f"{result.adverts} / {result.batches}"),
        ("phone uploads (iPhones)", str(result.phone_batches)),
    ]:
        table.add_row(name, value)
    console.print(table)
    if result.iphone_scores is not None and result.android_scores is not None:
        kinds = Table(title="By kind of phone")
        for col in ("phone", "true trips", "detected", "F1", "exact alighting", "bystanders"):
            kinds.add_column(col, justify="left" if col == "phone" else "right")
        for label, k in (
            ("Android (the bus hears it)", result.android_scores),
            ("iPhone (it hears the bus)", result.iphone_scores),
        ):
            kinds.add_row(
                label,
                str(k.truth_trips),
                str(k.detected_trips),
                f"{k.f1:.3f}",
                _pct(k.alight_stop_accuracy),
                str(k.bystanders_charged),
            )
        console.print(kinds)

    charges = Table(title="Charges per passenger (best price of the day)")
    for col in ("passenger", "trips", "charged €", "single tickets €"):
        charges.add_column(col, justify="right" if col != "passenger" else "left")
    for c in result.charges[:15]:
        charges.add_row(
            c["passenger_id"],
            str(c["trips"]),
            f"{c['total_cents'] / 100:.2f}",
            f"{c['singles_total_cents'] / 100:.2f}",
        )
    if len(result.charges) > 15:
        charges.add_row(f"… {len(result.charges) - 15} more", "", "", "")
    console.print(charges)
    console.print(
        f"[bold]Total revenue: {result.revenue_cents / 100:.2f} €[/bold] "
        f"from {len(result.charges)} passengers"
    )
    report_revenue(result.revenue, console)


def report_revenue(revenue: Mapping[str, Any] | None, console: Console) -> None:
    """The closed month's revenue per transit company, or why there is none yet."""
    if revenue is None:
        console.print("The day's month has not ended: its revenue is shared when it is closed.")
        return
    table = Table(title=f"Revenue per transit company, {revenue['month']} (by passenger-km)")
    for col in ("company", "net €", "passenger-km", "charges it shares"):
        table.add_column(col, justify="left" if col == "company" else "right")
    for c in revenue["companies"]:
        table.add_row(
            c["company"],
            f"{c['net_cents'] / 100:.2f}",
            f"{c['passenger_km']:.1f}",
            str(c["entries"]),
        )
    table.add_row(
        "[bold]sum[/bold]",
        f"[bold]{revenue['total_cents'] / 100:.2f}[/bold]",
        "",
        str(revenue["ledger_entries"]),
    )
    console.print(table)
    balanced = "equals" if revenue["balanced"] else "DOES NOT equal"
    console.print(
        f"The companies' shares sum to {revenue['total_cents'] / 100:.2f} €, which {balanced} "
        f"the ledger's {revenue['ledger_total_cents'] / 100:.2f} €."
    )


def write_json(result: DemoResult, path: Path) -> None:
    path.write_text(json.dumps(result.as_dict(), indent=2), encoding="utf-8")
