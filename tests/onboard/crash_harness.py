"""Kill the agent with SIGKILL at random moments, over and over, then let one run finish.

Run as ``python -m tests.onboard.crash_harness ...`` by ``test_crash.py``. The process
imports everything once, then forks one agent process per round (so a round costs
milliseconds, not an interpreter start). Each agent runs the production loop
(``Agent.run``: record, upload task, watchdog) on the real clock, fed by a fake scanner
with adverts of 20 phones, uploading to the real backend over HTTP, with windows of
50 ms and a batch every 200 ms so that kills land in every phase: writing rows, sealing,
marking a batch offered, mid-request, between the backend's answer and the outbox's
delete. The parent SIGKILLs it after a random delay. Rounds take turns among a few
vehicles (one outbox each), so that together they stay near the backend's per-vehicle
upload limit (2/s, bursts of 30). At the end one agent per vehicle, not killed, drains.

An SQLite trigger in the outbox copies every sighting row into ``audit_sightings`` in the
same transaction that commits it: that table is exactly "what the outbox had committed".
Every answer the backend gives (new or duplicate) is appended to ``--answers-log``; a
duplicate means a batch was stored but its agent was killed before it could forget it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import sqlite3
import sys
import time
import traceback
import uuid

import httpx

from onboard.agent import Agent, AgentConfig
from onboard.outbox import Outbox
from onboard.scanner import FakeScanner
from onboard.uploader import Uploader
from tests.onboard.conftest import UNIT, advert, token

WINDOW_MS = 50
UPLOAD_INTERVAL_MS = 200
TICK_S = 0.01
PHONES = 20

AUDIT = """
CREATE TABLE IF NOT EXISTS audit_sightings (t INTEGER, token BLOB, rssi INTEGER, n INTEGER,
    tx INTEGER);
CREATE TRIGGER IF NOT EXISTS audit_sightings AFTER INSERT ON sightings BEGIN
    INSERT INTO audit_sightings VALUES (NEW.t, NEW.token, NEW.rssi, NEW.n, NEW.tx);
END;
"""


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


def answers_client(answers_log: str, timeout: float) -> httpx.AsyncClient:
    """A client that appends ``new``/``dup`` per stored batch to ``answers_log`` (atomic
    O_APPEND writes, so killed processes never tear a line)."""
    fd = os.open(answers_log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)

    async def record(response: httpx.Response) -> None:
        if response.status_code == 200:
            await response.aread()
            os.write(fd, b"dup\n" if response.json().get("duplicate") else b"new\n")

    # verify=False: plain HTTP to loopback, and no CA bundle to load in every agent process.
    return httpx.AsyncClient(timeout=timeout, verify=False, event_hooks={"response": [record]})


def outbox_path(directory: str, vehicle: str) -> str:
    return os.path.join(directory, f"outbox-{vehicle}.sqlite3")


def make_agent(
    directory: str, vehicle: str, backend: str, secret: bytes, client: httpx.AsyncClient
) -> Agent:
    outbox = Outbox(outbox_path(directory, vehicle), vehicle, UNIT, str(uuid.uuid4()))
    uploader = Uploader(client, backend, vehicle, secret, wall_ms)
    config = AgentConfig(
        vehicle,
        UNIT,
        window_ms=WINDOW_MS,
        upload_interval_ms=UPLOAD_INTERVAL_MS,
        offline_seal_interval_ms=UPLOAD_INTERVAL_MS,
        max_batches_per_s=10,
    )
    return Agent(config, outbox, uploader, wall_ms)


async def agent_round(
    directory: str, vehicle: str, backend: str, secret: bytes, seed: int, answers_log: str
) -> None:
    """One agent process's life: runs until killed."""
    rnd = random.Random(seed)
    async with answers_client(answers_log, 5.0) as client:
        agent = make_agent(directory, vehicle, backend, secret, client)
        scanner = FakeScanner()
        stop = asyncio.Event()
        run = asyncio.create_task(agent.run(scanner, stop, tick_interval_s=TICK_S))
        await scanner.wait_started()
        while True:
            for _ in range(4):
                p = rnd.randrange(PHONES)
                scanner.emit(*advert(token(p), rssi=rnd.randint(-100, -40)))
            await asyncio.sleep(0.002)
            if run.done():
                run.result()


async def final_drain(
    directory: str, vehicles: dict[str, bytes], backend: str, answers_log: str
) -> int:
    """Each vehicle's agent drains its outbox, not killed; returns batches left over."""
    left = 0
    async with answers_client(answers_log, 10.0) as client:
        for vehicle, secret in vehicles.items():
            agent = make_agent(directory, vehicle, backend, secret, client)
            await agent.drain()
            left += agent.outbox.pending_count()
            agent.outbox.close()
    return left


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--backend", required=True)
    parser.add_argument(
        "--vehicle", action="append", required=True, metavar="ID=SECRET_HEX", dest="vehicles"
    )
    parser.add_argument("--outbox-dir", required=True)
    parser.add_argument("--answers-log", required=True)
    parser.add_argument("--kills", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--min-delay-s", type=float, default=0.02)
    parser.add_argument("--max-delay-s", type=float, default=0.35)
    args = parser.parse_args(argv)
    vehicles = {
        vid: bytes.fromhex(secret) for vid, secret in (item.split("=", 1) for item in args.vehicles)
    }
    for vehicle in vehicles:
        path = outbox_path(args.outbox_dir, vehicle)
        Outbox(path, vehicle, UNIT, "setup").close()
        db = sqlite3.connect(path)
        db.executescript(AUDIT)
        db.close()
    order = list(vehicles)

    # Warm httpx's one-time set-up in the parent, so each forked agent starts in milliseconds.
    httpx.AsyncClient(verify=False)
    rnd = random.Random(args.seed)
    exited_early = 0
    for round_no in range(args.kills):
        vehicle = order[round_no % len(order)]
        pid = os.fork()
        if pid == 0:  # the agent process
            code = 0
            try:
                asyncio.run(
                    agent_round(
                        args.outbox_dir,
                        vehicle,
                        args.backend,
                        vehicles[vehicle],
                        args.seed * 1000 + round_no,
                        args.answers_log,
                    )
                )
            except BaseException:
                traceback.print_exc()
                code = 3
            os._exit(code)
        time.sleep(rnd.uniform(args.min_delay_s, args.max_delay_s))
        os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
        if not (os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL):
            exited_early += 1

    left = asyncio.run(final_drain(args.outbox_dir, vehicles, args.backend, args.answers_log))
    json.dump({"kills": args.kills, "exited_early": exited_early, "pending_left": left}, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
