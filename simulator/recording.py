"""Record a simulated day as the exact upload batches a fleet would send, plus its truth.

Two recorders produce the same directory format:

* ``agent`` runs the real onboard agent per bus (the fake scanner feeds it real bleak
  advertisement objects, its outbox lives in memory) and captures every upload through an
  ``httpx.MockTransport``: the batches are the exact JSON bodies the agent sent.
* ``fast`` windows the adverts with numpy the way the agent does (docs/contracts.md, Vehicle upload:
  one row per token and 1 s window, strongest RSSI, count, tx power) and seals a batch every upload
  interval. It exists for the region day, where a Python call per advert is too slow;
  ``tests/simulator/test_recording.py`` checks it yields the agent's rows and events.

A recording directory (version RECORDING_VERSION)::

    scenario.json     what was simulated (name, seeds, day, configuration, counts)
    vehicles.json     the buses: id, line, unit and boot ids, batch file and count
    devices.json      the app users' devices in ``bibo devices import`` format
    network.json      the stops and lines the day ran on (built-in or a GTFS import)
    truth.json        the ground truth (simulator.truth, with device ids)
    world.json        the radio and fleet parameters (simulator.world, WORLD_VERSION)
    batches/<vehicle_id>.jsonl[.gz]   one upload body per line, in upload order
    phones.jsonl[.gz] the iPhones' sighting uploads (simulator.iphones), one body per line,
                      phone by phone; only with iPhones (then ``scenario.json`` has ``phones``)
"""

from __future__ import annotations

import asyncio
import base64
import bisect
import contextlib
import dataclasses
import gzip
import hashlib
import json
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, cast

import httpx
import numpy as np

from onboard import wire
from onboard.agent import Agent, AgentConfig
from onboard.const import (
    HEARTBEAT,
    MAX_BATCH_EVENTS,
    MAX_BATCH_SIGHTINGS,
    TX_POWER_MAX_DBM,
    TX_POWER_MIN_DBM,
    UPLOAD_INTERVAL_MS,
    WINDOW_MS,
)
from onboard.outbox import Outbox
from onboard.scanner import make_advertisement
from onboard.uploader import Uploader
from simulator.const import (
    AFTER_SERVICE_MS,
    DEVICES_FILE_VERSION,
    RECORDING_VERSION,
    SIM_TICK_MS,
)
from simulator.day import (
    Advert,
    DayConfig,
    DayPlan,
    IntArray,
    TokenCache,
    VehicleEvent,
    make_device_keys,
    truth_encounters,
    truth_trips,
    vehicle_slots,
    vehicle_timeline,
)
from simulator.iphones import beacon_offsets_db, heard_seconds, phone_bodies, vehicle_secret
from simulator.network import Network, network_document, parse_network
from simulator.parallel import fork_map
from simulator.truth import write_truth
from simulator.world import DEFAULT_WORLD, World


class RecordingError(ValueError):
    """A recording directory is missing a file or has the wrong version; names which."""


@dataclass(frozen=True, slots=True)
class Identity:
    """How one bus identifies itself in its batches."""

    vehicle_id: str
    unit_id: str
    boot_id: str


def identity(tag: str, vehicle_id: str) -> Identity:
    """Deterministic unit and boot ids for a vehicle in a recording named ``tag``."""
    boot = uuid.uuid5(uuid.NAMESPACE_URL, f"bibo-sim:{tag}:{vehicle_id}")
    return Identity(vehicle_id, f"obu-{vehicle_id.lower()}", str(boot))


def recording_tag(name: str, seed: int) -> str:
    """Short stable tag of a scenario run, used in device and passenger ids."""
    return hashlib.sha256(f"{name}|{seed}".encode()).hexdigest()[:6]


def device_ids(plan: DayPlan, tag: str) -> dict[str, str]:
    """Backend device id by person id (``d-<tag>-<person>``)."""
    return {p.person_id: f"d-{tag}-{p.person_id}" for p in plan.persons}


def devices_document(plan: DayPlan, keys: Mapping[str, bytes], tag: str) -> dict[str, Any]:
    """The ``bibo devices import`` file: one passenger with one device per person."""
    ids = device_ids(plan, tag)
    return {
        "version": DEVICES_FILE_VERSION,
        "devices": [
            {
                "passenger_id": f"pas-{tag}-{p.person_id}",
                "device_id": ids[p.person_id],
                "rider_category": p.rider_category,
                "device_key": base64.b64encode(keys[p.person_id]).decode("ascii"),
            }
            for p in plan.persons
        ],
    }


# --- the real agent --------------------------------------------------------------------------


class SimClock:
    """The data clock of one simulated bus (UTC epoch ms), advanced by the simulator."""

    def __init__(self, start_ms: int) -> None:
        self.now_ms = start_ms

    def __call__(self) -> int:
        return self.now_ms


def recording_transport(bodies: list[bytes]) -> httpx.MockTransport:
    """A transport that accepts every upload and keeps its uncompressed body."""

    def handle(request: httpx.Request) -> httpx.Response:
        raw = request.content
        if request.headers.get("Content-Encoding") == "gzip":
            raw = gzip.decompress(raw)
        bodies.append(raw)
        rows = len(json.loads(raw)["sightings"]["t"])
        return httpx.Response(200, json={"inserted": rows, "duplicate": False})

    return httpx.MockTransport(handle)


async def feed_agent(
    agent: Agent,
    clock: SimClock,
    items: Iterator[Advert | VehicleEvent],
    tick_ms: int,
    service_uuid: str,
    on_tick: Callable[[int], object] | None = None,
    after_ms: int = AFTER_SERVICE_MS,
) -> int:
    """Drive ``agent`` through ``items`` (time ordered): ticks every ``tick_ms`` of data
    time, adverts through the fake scanner, events as the vehicle bus reports them, ticks
    on for ``after_ms`` after the last item (the unit stays on), then a final drain.
    ``on_tick`` gets the data time of every tick. Returns the number of adverts fed."""
    adverts = 0
    next_tick: int | None = None
    last_t = 0
    for item in items:
        t = item.t_ms if isinstance(item, Advert) else item.t
        last_t = t
        if next_tick is None:
            next_tick = t - t % tick_ms + tick_ms
        while t >= next_tick:
            clock.now_ms = next_tick
            await agent.tick()
            if on_tick is not None:
                on_tick(next_tick)
            next_tick += tick_ms
        clock.now_ms = t
        if isinstance(item, Advert):
            device, adv = make_advertisement(
                address=item.address,
                service_data={service_uuid: wire.encode_payload(item.token, item.tx_power)},
                rssi=item.rssi,
            )
            agent.on_advertisement(device, adv)
            adverts += 1
        else:
            agent.on_event(item)
    while next_tick is not None and next_tick <= last_t + after_ms:
        clock.now_ms = next_tick
        await agent.tick()
        if on_tick is not None:
            on_tick(next_tick)
        next_tick += tick_ms
    clock.now_ms = (next_tick or clock.now_ms) + tick_ms
    await agent.drain()
    return adverts


async def record_vehicle_agent(
    plan: DayPlan,
    ident: Identity,
    keys: Mapping[str, bytes],
    radio_seed: int,
    upload_interval_ms: int,
    world: World = DEFAULT_WORLD,
    beacon_heard: list[tuple[IntArray, IntArray, IntArray]] | None = None,
) -> tuple[list[bytes], int]:
    """Run the real agent for one bus in ``world``; returns (upload bodies in order,
    adverts fed). ``beacon_heard`` collects what iPhones heard of the bus
    (``vehicle_slots``)."""
    bodies: list[bytes] = []
    vehicle = plan.vehicle(ident.vehicle_id)
    clock = SimClock(vehicle.journeys[0].start_ms)
    outbox = Outbox(":memory:", ident.vehicle_id, ident.unit_id, ident.boot_id)
    async with httpx.AsyncClient(transport=recording_transport(bodies)) as client:
        uploader = Uploader(
            client, "http://recorder.invalid", ident.vehicle_id, b"recording", wall_clock=clock
        )
        config = AgentConfig(
            vehicle_id=ident.vehicle_id,
            unit_id=ident.unit_id,
            upload_interval_ms=upload_interval_ms,
            heartbeat=HEARTBEAT,
        )
        agent = Agent(config, outbox, uploader, clock, rng=lambda: 0.5)
        try:
            items = vehicle_timeline(plan, ident.vehicle_id, keys, radio_seed, world, beacon_heard)
            adverts = await feed_agent(agent, clock, items, SIM_TICK_MS, config.service_uuid)
            if outbox.pending_count():
                raise RecordingError(
                    f"{ident.vehicle_id}: {outbox.pending_count()} batches not delivered"
                )
        finally:
            outbox.close()
    return bodies, adverts


# --- the fast recorder -----------------------------------------------------------------------


def _event_json(event: VehicleEvent) -> str:
    return event.model_dump_json()


def _windows(
    t: np.ndarray,
    person: np.ndarray,
    rssi: np.ndarray,
    persons: Sequence[Any],
    tokens: TokenCache,
    window_ms: int,
    world: World = DEFAULT_WORLD,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Window adverts like ``onboard.windowing``: per (window, token) the strongest RSSI,
    the count and the tx byte the phone advertises in ``world``; rows sorted by (window,
    token bytes)."""
    skew = np.array([p.phone.clock_skew_ms for p in persons], dtype=np.int64)
    tx_of = np.array([world.advertised_tx(p.phone, p.person_id) for p in persons], dtype=np.int64)
    interval = (t + skew[person]) // (wire.TOKEN_INTERVAL_S * 1000)
    base = int(interval.min())
    span = int(interval.max()) - base + 1
    key = person * span + (interval - base)
    uniq, inverse = np.unique(key, return_inverse=True)
    inverse = inverse.reshape(-1)
    hexes = np.array(
        [
            tokens.get(persons[int(k // span)].person_id, int(k % span) + base)[1].hex()
            for k in uniq
        ],
        dtype="<U32",
    )
    # Rank the tokens by their bytes (= their hex), so rows sort by (window, token).
    by_hex = np.argsort(hexes, kind="stable")
    rank = np.empty(by_hex.size, dtype=np.int64)
    rank[by_hex] = np.arange(by_hex.size)
    window = t - t % window_ms
    tok_rank = rank[inverse]
    order = np.lexsort((tok_rank, window))
    window, tok_rank, rssi_s, who = window[order], tok_rank[order], rssi[order], person[order]
    new = np.ones(window.size, dtype=bool)
    new[1:] = (window[1:] != window[:-1]) | (tok_rank[1:] != tok_rank[:-1])
    starts = np.flatnonzero(new)
    return (
        window[starts],
        hexes[by_hex][tok_rank[starts]],
        np.maximum.reduceat(rssi_s, starts),
        np.diff(np.append(starts, window.size)),
        tx_of[who[starts]],
    )


_COMPACT = json.JSONEncoder(separators=(",", ":"))


def _ints(a: np.ndarray) -> str:
    """Comma-separated integers (the C JSON encoder is the fastest way from a list)."""
    return _COMPACT.encode(a.tolist())[1:-1]


def _tx_ints(a: np.ndarray) -> str:
    """The tx column: like the agent, a byte that means "unknown" (-128, or the 0x7F some
    phones send) is uploaded as null."""
    if not ((a < TX_POWER_MIN_DBM) | (a > TX_POWER_MAX_DBM)).any():
        return _ints(a)
    return _COMPACT.encode(
        [None if not TX_POWER_MIN_DBM <= v <= TX_POWER_MAX_DBM else v for v in a.tolist()]
    )[1:-1]


def _batch_body(
    ident: Identity,
    seq: int,
    sent_at: int,
    window_ms: int,
    events: Sequence[VehicleEvent],
    cols: tuple[np.ndarray, ...],
) -> bytes:
    """The batch's JSON exactly as ``wire.Batch.model_dump_json`` writes it (compact, in
    field order); built by hand because the region day writes millions of them."""
    t, token, rssi, n, tx = cols
    if t.size:
        tokens = '","'.join(token.tolist())
        sightings = (
            f'{{"t":[{_ints(t)}],"token":["{tokens}"],'
            f'"rssi":[{_ints(rssi)}],"n":[{_ints(n)}],"tx":[{_tx_ints(tx)}]}}'
        )
    else:
        sightings = '{"t":[],"token":[],"rssi":[],"n":[],"tx":[]}'
    evs = ",".join(_event_json(e) for e in events)
    return (
        f'{{"version":{wire.WIRE_VERSION},"vehicle_id":{json.dumps(ident.vehicle_id)},'
        f'"unit_id":{json.dumps(ident.unit_id)},"boot_id":{json.dumps(ident.boot_id)},'
        f'"seq":{seq},"sent_at":{sent_at},"window_ms":{window_ms},'
        f'"events":[{evs}],"sightings":{sightings}}}'
    ).encode()


def record_vehicle_fast(
    plan: DayPlan,
    ident: Identity,
    keys: Mapping[str, bytes],
    radio_seed: int,
    upload_interval_ms: int,
    window_ms: int = WINDOW_MS,
    world: World = DEFAULT_WORLD,
    beacon_heard: list[tuple[IntArray, IntArray, IntArray]] | None = None,
) -> Iterator[bytes]:
    """Upload bodies of one bus, windowed with numpy; sealed every ``upload_interval_ms``;
    ``beacon_heard`` collects what iPhones heard of the bus (``vehicle_slots``).

    A batch sealed at T holds the events before T and the windows closed by T (start +
    window_ms <= T) not sent yet, at most the outbox's row and event limits per batch; with
    nothing to send, an empty heartbeat batch (as the agent seals with ``HEARTBEAT``).
    """
    tokens = TokenCache(keys)
    empty_i = np.zeros(0, dtype=np.int64)
    rows: tuple[np.ndarray, ...] = (empty_i, np.zeros(0, dtype="<U32"), empty_i, empty_i, empty_i)
    pos = 0  # rows before pos are sent; rows are sorted by window start
    events: list[VehicleEvent] = []
    epos = 0
    seq = 0
    seal_at: int | None = None
    last_t = 0

    def seal(now: int, final: bool) -> Iterator[bytes]:
        nonlocal seq, pos, epos
        end = rows[0].size if final else int(np.searchsorted(rows[0], now - window_ms, "right"))
        e_end = len(events) if final else bisect.bisect_left(events, now, lo=epos, key=_t)
        part = tuple(c[pos:end] for c in rows)
        evs = events[epos:e_end]
        pos, epos = end, e_end
        n_rows = part[0].size
        if n_rows == 0 and not evs:
            if HEARTBEAT and not final:
                yield _batch_body(ident, seq, now, window_ms, [], part)
                seq += 1
            return
        start_r = start_e = 0
        while start_r < n_rows or start_e < len(evs):
            end_r = min(n_rows, start_r + MAX_BATCH_SIGHTINGS)
            end_e = min(len(evs), start_e + MAX_BATCH_EVENTS)
            chunk = tuple(c[start_r:end_r] for c in part)
            yield _batch_body(ident, seq, now, window_ms, evs[start_e:end_e], chunk)
            seq += 1
            start_r, start_e = end_r, end_e

    for slot in vehicle_slots(plan, ident.vehicle_id, keys, radio_seed, world, beacon_heard):
        first = min([slot.events[0].t] + ([int(slot.t[0])] if slot.t.size else []))
        last = max([slot.events[-1].t] + ([int(slot.t[-1])] if slot.t.size else []))
        last_t = max(last_t, last)
        if seal_at is None:
            seal_at = first - first % SIM_TICK_MS + SIM_TICK_MS
        while seal_at <= first:
            yield from seal(seal_at, final=False)
            seal_at += upload_interval_ms
        if slot.t.size:
            cols = _windows(slot.t, slot.person, slot.rssi, slot.persons, tokens, window_ms, world)
            rows = tuple(np.concatenate([c[pos:], n]) for c, n in zip(rows, cols, strict=True))
            pos = 0
        events = events[epos:] + slot.events
        epos = 0
        while seal_at <= last:
            yield from seal(seal_at, final=False)
            seal_at += upload_interval_ms
    if seal_at is not None:
        # The unit stays on AFTER_SERVICE_MS (heartbeats), then drains one tick after the
        # tick that followed.
        end = last_t + AFTER_SERVICE_MS
        while seal_at <= end:
            yield from seal(seal_at, final=False)
            seal_at += upload_interval_ms
        yield from seal(end - end % SIM_TICK_MS + 2 * SIM_TICK_MS, final=True)


def _t(event: VehicleEvent) -> int:
    return event.t


# --- the directory ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Recorded:
    """What a recording run produced (for the caller's summary)."""

    out: Path
    vehicles: int
    batches: int
    adverts: int
    truth_trips: int
    encounters: int


def _json_text(doc: Any) -> str:
    return json.dumps(doc, indent=1, ensure_ascii=False) + "\n"


def config_document(cfg: DayConfig) -> dict[str, Any]:
    """The day configuration as JSON (times as ISO strings)."""
    doc = dataclasses.asdict(cfg)
    for key, value in doc.items():
        if hasattr(value, "isoformat"):
            doc[key] = value.isoformat()
    doc["lines"] = list(cfg.lines) if cfg.lines is not None else None
    doc["bystander_kinds"] = [[k, w] for k, w in cfg.bystander_kinds]
    if not cfg.iphone_share:
        # A day without iPhones is written as before they existed (byte for byte).
        del doc["iphone_share"], doc["background_location_share"]
    return doc


@contextlib.contextmanager
def _batch_writer(path: Path) -> Iterator[BinaryIO]:
    """The batch file, gzip-compressed for ``.gz`` (level 1, no name or time in the header,
    so the bytes depend on the content only)."""
    with path.open("wb") as raw:
        if path.suffix != ".gz":
            yield raw
            return
        with gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=1, mtime=0) as gz:
            yield cast(BinaryIO, gz)


_WORK: dict[str, Any] = {}
"""The recording job's inputs, set before forking so worker processes share them."""


def _record_one(vid: str) -> tuple[int, int, tuple[IntArray, IntArray, IntArray]]:
    """Record one bus into its batch file; returns (batches, adverts fed to the agent,
    what the iPhones heard of its beacon as ``heard_seconds``)."""
    w = _WORK
    plan: DayPlan = w["plan"]
    ident = identity(w["tag"], vid)
    n_batches = adverts = 0
    beacon_heard: list[tuple[IntArray, IntArray, IntArray]] = []
    with _batch_writer(w["out"] / f"batches/{vid}{w['suffix']}") as fh:
        if w["recorder"] == "agent":
            bodies, adverts = asyncio.run(
                record_vehicle_agent(
                    plan,
                    ident,
                    w["keys"],
                    w["radio_seed"],
                    w["interval"],
                    w["world"],
                    beacon_heard,
                )
            )
            it: Iterator[bytes] = iter(bodies)
        else:
            it = record_vehicle_fast(
                plan,
                ident,
                w["keys"],
                w["radio_seed"],
                w["interval"],
                world=w["world"],
                beacon_heard=beacon_heard,
            )
        for body in it:
            fh.write(body + b"\n")
            n_batches += 1
    offsets = beacon_offsets_db(plan, w["world"])
    return n_batches, adverts, heard_seconds(plan, beacon_heard, offsets)


def write_recording(
    plan: DayPlan,
    out: Path,
    *,
    name: str,
    description: str,
    radio_seed: int,
    recorder: str = "agent",
    upload_interval_ms: int = UPLOAD_INTERVAL_MS,
    compress: bool = False,
    vehicle_ids: Sequence[str] | None = None,
    jobs: int = 1,
    network_source: str = "built-in",
    world: World = DEFAULT_WORLD,
) -> Recorded:
    """Simulate every bus of ``plan`` and write the recording directory ``out``.

    ``recorder`` is ``"agent"`` or ``"fast"``; ``compress`` gzips the batch files;
    ``vehicle_ids`` restricts the buses recorded (default all); ``jobs`` > 1 records buses
    in that many forked processes (the output does not depend on it); ``world`` the radio
    and fleet parameters, written to ``world.json`` (default: the simulator's own model).
    """
    if recorder not in {"agent", "fast"}:
        raise ValueError(f"recorder: expected 'agent' or 'fast', got {recorder!r}")
    tag = recording_tag(name, plan.seed)
    keys = make_device_keys(plan, plan.seed)
    ids = device_ids(plan, tag)
    (out / "batches").mkdir(parents=True, exist_ok=True)
    vids = list(vehicle_ids) if vehicle_ids is not None else list(plan.vehicle_ids)
    suffix = ".jsonl.gz" if compress else ".jsonl"
    _WORK.clear()
    _WORK.update(
        plan=plan,
        tag=tag,
        keys=keys,
        out=out,
        suffix=suffix,
        recorder=recorder,
        radio_seed=radio_seed,
        interval=upload_interval_ms,
        world=world,
    )
    try:
        counts = list(fork_map(_record_one, vids, jobs))
    finally:
        _WORK.clear()
    phones_file = f"phones{suffix}"
    n_phone_batches = 0
    if plan.iphones:
        heard = [(vid, c[2]) for vid, c in zip(vids, counts, strict=True)]
        with _batch_writer(out / phones_file) as fh:
            for body in phone_bodies(plan, heard, ids, tag, radio_seed):
                fh.write(body + b"\n")
                n_phone_batches += 1
    vehicles_doc: list[dict[str, Any]] = []
    for vid, (n_batches, _, _) in zip(vids, counts, strict=True):
        ident = identity(tag, vid)
        v = plan.vehicle(vid)
        vehicles_doc.append(
            {
                "vehicle_id": vid,
                "line": v.line,
                "operator": v.operator,
                "unit_id": ident.unit_id,
                "boot_id": ident.boot_id,
                "journeys": [j.journey_id for j in v.journeys],
                "batches": n_batches,
                "file": f"batches/{vid}{suffix}",
            }
        )
    total_batches = sum(c[0] for c in counts)
    total_adverts = sum(c[1] for c in counts)
    n_trips, n_encounters = len(plan.trips), len(plan.encounters)
    cfg = plan.config
    scenario = {
        "version": RECORDING_VERSION,
        "name": name,
        "description": description,
        "seed": plan.seed,
        "radio_seed": radio_seed,
        "service_day": cfg.service_day.isoformat(),
        "recorder": recorder,
        "window_ms": WINDOW_MS,
        "upload_interval_ms": upload_interval_ms,
        "config": config_document(cfg),
        "counts": {
            "vehicles": len(vids),
            "journeys": sum(len(plan.vehicle(v).journeys) for v in vids),
            "persons": len(plan.persons),
            "truth_trips": n_trips,
            "bystander_encounters": n_encounters,
            "phone_outages": len(plan.outages),
            "batches": total_batches,
            "adverts": total_adverts if recorder == "agent" else None,
        },
    }
    if plan.iphones:
        # Only recordings with iPhones say so: one without stays byte for byte as before.
        scenario["phones"] = {
            "file": phones_file,
            "iphones": len(plan.iphones),
            "batches": n_phone_batches,
            "vehicle_secrets": "simulator.iphones.vehicle_secret",
        }
    (out / "scenario.json").write_text(_json_text(scenario), "utf-8")
    (out / "vehicles.json").write_text(
        _json_text({"version": RECORDING_VERSION, "vehicles": vehicles_doc}), "utf-8"
    )
    (out / "world.json").write_text(_json_text(world.document()), "utf-8")
    (out / "devices.json").write_text(_json_text(devices_document(plan, keys, tag)), "utf-8")
    (out / "network.json").write_text(
        _json_text(network_document(plan.network, network_source)), "utf-8"
    )
    write_truth(
        out / "truth.json",
        cfg.service_day,
        plan.seed,
        truth_trips(plan, ids),
        truth_encounters(plan, ids),
    )
    return Recorded(out, len(vids), total_batches, total_adverts, n_trips, n_encounters)


# --- reading a recording ---------------------------------------------------------------------


def _lines(f: Path) -> Iterator[bytes]:
    """The non-empty lines of a (gzipped if ``.gz``) file, without their newline."""
    with gzip.open(f, "rb") if f.suffix == ".gz" else f.open("rb") as fh:
        for raw in fh:
            line = raw.rstrip(b"\n")
            if line:
                yield line


@dataclass(frozen=True)
class Recording:
    """A recording directory opened for reading."""

    path: Path
    scenario: dict[str, Any]
    vehicles: list[dict[str, Any]]
    devices: list[dict[str, Any]]

    @classmethod
    def open(cls, path: Path) -> Recording:
        """Read the directory's JSON files (RecordingError names a missing or bad one)."""
        docs: dict[str, Any] = {}
        for name in ("scenario.json", "vehicles.json", "devices.json"):
            f = path / name
            try:
                docs[name] = json.loads(f.read_text("utf-8"))
            except FileNotFoundError:
                raise RecordingError(f"{f}: missing (not a bibo simulate recording?)") from None
            except json.JSONDecodeError as exc:
                raise RecordingError(f"{f}: not JSON: {exc}") from None
        for name, expected in (
            ("scenario.json", RECORDING_VERSION),
            ("vehicles.json", RECORDING_VERSION),
            ("devices.json", DEVICES_FILE_VERSION),
        ):
            got = docs[name].get("version")
            if got != expected:
                raise RecordingError(f"{path / name}: version: expected {expected}, got {got!r}")
        return cls(
            path,
            docs["scenario.json"],
            docs["vehicles.json"]["vehicles"],
            docs["devices.json"]["devices"],
        )

    @property
    def name(self) -> str:
        return str(self.scenario["name"])

    @property
    def service_day(self) -> str:
        return str(self.scenario["service_day"])

    def batches(self, vehicle_id: str) -> Iterator[bytes]:
        """The vehicle's upload bodies in upload order (exact bytes)."""
        entry = next((v for v in self.vehicles if v["vehicle_id"] == vehicle_id), None)
        if entry is None:
            raise RecordingError(f"{self.path}: no vehicle {vehicle_id!r} in vehicles.json")
        yield from _lines(self.path / entry["file"])

    def phone_batches(self) -> Iterator[bytes]:
        """The iPhones' upload bodies (docs/contracts.md, Phone sightings upload), phone by
        phone, each phone's in upload order (exact bytes, unsigned); none for a recording
        without iPhones."""
        entry = self.scenario.get("phones")
        if entry is None:
            return
        yield from _lines(self.path / entry["file"])

    def vehicle_secrets(self) -> dict[str, bytes]:
        """The upload secret of every bus, from which its beacon ids derive
        (:func:`simulator.iphones.vehicle_secret`)."""
        return {v["vehicle_id"]: vehicle_secret(v["vehicle_id"]) for v in self.vehicles}

    def iphone_device_ids(self) -> set[str]:
        """The device ids of the iPhones (those with at least one upload)."""
        return {json.loads(body)["device_id"] for body in self.phone_batches()}

    def network(self) -> Network | None:
        """The network the recording ran on (None for recordings without network.json)."""
        f = self.path / "network.json"
        if not f.is_file():
            return None
        return parse_network(json.loads(f.read_text("utf-8")))

    def device_keys(self) -> dict[str, bytes]:
        """Device key by device id."""
        return {d["device_id"]: base64.b64decode(d["device_key"]) for d in self.devices}
