"""Ingest throughput: signed, gzip-compressed batches of 1,000 sightings over real HTTP
(uvicorn on loopback, several concurrent clients) into PostgreSQL, against a raw COPY
of the same rows into the same table, measured in the same run.

    .venv/bin/python benchmarks/ingest.py [--batches 3000] [--clients 8] [--workers 2]

Needs PostgreSQL at 127.0.0.1:5432 (user postgres, trust auth, as on the dev and CI machines);
it works in a database of its own, dropped at the end. Goals (issue 6): >= 100,000
sightings/s over HTTP and >= 50 % of the raw COPY rate.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, this folder is first on sys.path, and benchmarks/onboard.py would shadow
# the onboard package.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).parent]

import argparse  # noqa: E402
import asyncio  # noqa: E402
import datetime as dt  # noqa: E402
import gzip  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import secrets  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import httpx  # noqa: E402

try:
    import uvloop
except ImportError:  # Windows: asyncio's own loop
    uvloop = None  # type: ignore[assignment]
from sqlalchemy import create_engine, text  # noqa: E402

from backend.db import make_engine, make_sessionmaker, transaction, upgrade  # noqa: E402
from backend.ingest import repository as ingest_repo  # noqa: E402
from backend.ingest import service as ingest_service  # noqa: E402
from backend.timeutil import service_day_of  # noqa: E402
from onboard import wire  # noqa: E402

ADMIN_URL = os.environ.get(
    "BIBO_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
ROWS_PER_BATCH = 1000
T0 = 1_795_420_000_000
GOAL_RATE = 100_000
GOAL_SHARE = 0.5


def batch_body(vehicle_id: str, seq: int, rng_tokens: list[str]) -> bytes:
    """One upload: 1,000 sightings of ~60 phones over ~17 s, plus a position event."""
    t0 = T0 + seq * 20_000
    rows = [(t0 + (i // 60) * 1000, rng_tokens[i % len(rng_tokens)]) for i in range(ROWS_PER_BATCH)]
    body = {
        "version": 1,
        "vehicle_id": vehicle_id,
        "unit_id": f"obu-{vehicle_id}",
        "boot_id": "bench",
        "seq": seq,
        "sent_at": t0 + 20_000,
        "window_ms": 1000,
        "events": [{"t": t0, "type": "position", "lat": 51.57, "lon": 8.1, "speed_mps": 9.0}],
        "sightings": {
            "t": [r[0] for r in rows],
            "token": [r[1] for r in rows],
            "rssi": [-60 - (i % 30) for i in range(ROWS_PER_BATCH)],
            "n": [1 + i % 4 for i in range(ROWS_PER_BATCH)],
            "tx": [-8] * ROWS_PER_BATCH,
        },
    }
    return gzip.compress(json.dumps(body, separators=(",", ":")).encode())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def post(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    host: str,
    path: str,
    headers: dict[str, str],
    body: bytes,
) -> tuple[int, bytes]:
    """One HTTP/1.1 request on a kept-alive connection; returns (status, body).

    The clients are a few lines over asyncio streams rather than httpx because they share
    the machine's two cores with the server and PostgreSQL: a bus does not. What reaches
    the server is the same request a unit sends (``onboard/uploader.py`` uses httpx).
    """
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    request = f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {len(body)}\r\n{head}\r\n"
    writer.write(request.encode() + body)
    status_line, *lines = (await reader.readuntil(b"\r\n\r\n")).decode().split("\r\n")
    length = next(
        int(line.split(":", 1)[1]) for line in lines if line.lower().startswith("content-length:")
    )
    return int(status_line.split()[1]), await reader.readexactly(length)


async def send_all(
    url: str, requests: list[tuple[str, bytes, bytes]], clients: int
) -> tuple[float, int]:
    """Post every batch with ``clients`` concurrent connections; returns (seconds, rows)."""
    queue: asyncio.Queue[tuple[str, bytes, bytes]] = asyncio.Queue()
    for item in requests:
        queue.put_nowait(item)
    inserted = 0
    host, port = url.removeprefix("http://").split(":")

    async def client_loop() -> None:
        nonlocal inserted
        reader, writer = await asyncio.open_connection(host, int(port))
        try:
            while not queue.empty():
                vehicle_id, secret, raw = queue.get_nowait()
                ts = int(time.time() * 1000)
                status, body = await post(
                    reader,
                    writer,
                    host,
                    f"/v1/vehicles/{vehicle_id}/batches",
                    {
                        "Content-Type": "application/json",
                        "Content-Encoding": "gzip",
                        wire.TIMESTAMP_HEADER: str(ts),
                        wire.SIGNATURE_HEADER: wire.sign(secret, ts, raw),
                    },
                    raw,
                )
                if status != 200:
                    raise RuntimeError(f"upload answered {status}: {body[:300]!r}")
                inserted += json.loads(body)["inserted"] - 1  # minus the position event
        finally:
            writer.close()

    start = time.perf_counter()
    await asyncio.gather(*(client_loop() for _ in range(clients)))
    return time.perf_counter() - start, inserted


def raw_copy(db_url: str, n_rows: int, tokens: list[str]) -> float:
    """Seconds for a COPY of ``n_rows`` sighting rows into the same table."""
    engine = make_engine(db_url)
    sessions = make_sessionmaker(engine)
    day = service_day_of(T0)
    with transaction(sessions) as session:
        if ingest_repo.vehicle_secret(session, "COPY-1") is None:
            ingest_service.register_vehicle(session, "COPY-1")
        batch_ids = []
        for b in range(n_rows // ROWS_PER_BATCH):
            batch_id = ingest_repo.insert_batch(
                session,
                {
                    "vehicle_id": "COPY-1",
                    "unit_id": "copy",
                    "boot_id": "copy",
                    "seq": b,
                    "fingerprint": bytes(32),
                    "sent_at": T0,
                    "window_ms": 1000,
                    "n_events": 0,
                    "n_sightings": ROWS_PER_BATCH,
                    "received_at": dt.datetime.now(dt.UTC),
                },
            )
            assert batch_id is not None
            batch_ids.append(batch_id)
    # Rendered before the clock starts: the baseline is PostgreSQL's COPY alone.
    text = "".join(
        ingest_repo.sightings_copy_text(
            ingest_repo.BatchSightings(
                batch_id,
                "COPY-1",
                day,
                [T0 + (i // 60) * 1000 for i in range(ROWS_PER_BATCH)],
                [tokens[i % len(tokens)] for i in range(ROWS_PER_BATCH)],
                [-60 - i % 30 for i in range(ROWS_PER_BATCH)],
                [1 + i % 4 for i in range(ROWS_PER_BATCH)],
                [-8] * ROWS_PER_BATCH,
            )
        )
        for batch_id in batch_ids
    )
    start = time.perf_counter()
    with transaction(sessions) as session:
        ingest_repo.copy_sightings_text(session, text)
    elapsed = time.perf_counter() - start
    engine.dispose()
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batches", type=int, default=3000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")
    parser.add_argument("--vehicles", type=int, default=10)
    args = parser.parse_args()

    name = f"bibo_bench_{secrets.token_hex(4)}"
    admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    db_url = ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    server = None
    try:
        engine = make_engine(db_url)
        upgrade(engine)
        sessions = make_sessionmaker(engine)
        vehicles = [f"BENCH-{i:03d}" for i in range(args.vehicles)]
        with transaction(sessions) as session:
            secrets_by_vehicle = {v: ingest_service.register_vehicle(session, v) for v in vehicles}
        engine.dispose()
        tokens = [secrets.token_hex(16) for _ in range(60)]
        requests = [
            (
                v := vehicles[i % len(vehicles)],
                secrets_by_vehicle[v],
                batch_body(v, i // len(vehicles), tokens),
            )
            for i in range(args.batches)
        ]

        port = free_port()
        env = {
            **os.environ,
            "BIBO_DATABASE_URL": db_url,
            "BIBO_RECONCILE_IN_BACKGROUND": "false",
            # The per-vehicle rate limit is not what is measured here (it is tested).
            "BIBO_VEHICLE_UPLOADS_PER_S": "100000",
            "BIBO_VEHICLE_UPLOAD_BURST": "100000",
        }
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "backend.api.app:create_app",
                "--factory",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                str(args.workers),
                "--log-level",
                "warning",
                "--no-access-log",
            ],
            env=env,
            cwd=Path(__file__).resolve().parents[1],
        )
        url = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                if httpx.get(f"{url}/v1/health").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        # The clients share the machine's two cores with the server and PostgreSQL; on uvloop
        # they take less of them (the server runs on uvloop too).
        run = uvloop.run if uvloop is not None else asyncio.run
        run(send_all(url, requests[: args.clients], args.clients))  # warm up
        seconds, rows = run(send_all(url, requests[args.clients :], args.clients))
        http_rate = rows / seconds
        copy_seconds = raw_copy(db_url, rows, tokens)
        copy_rate = rows / copy_seconds
        share = http_rate / copy_rate

        print(
            f"ingest over HTTP: {rows:,} sightings in {seconds:.2f} s "
            f"({len(requests) - args.clients} batches of {ROWS_PER_BATCH}, gzip, signed; "
            f"{args.clients} clients, {args.workers} uvicorn workers, PostgreSQL)"
        )
        print(
            f"  {http_rate:,.0f} sightings/s   goal >= {GOAL_RATE:,}: "
            f"{'met' if http_rate >= GOAL_RATE else 'NOT met'}"
        )
        print(f"raw COPY of the same rows: {copy_seconds:.2f} s = {copy_rate:,.0f} rows/s")
        print(
            f"  HTTP ingest / raw COPY = {share:.1%}   goal >= {GOAL_SHARE:.0%}: "
            f"{'met' if share >= GOAL_SHARE else 'NOT met'}"
        )
        return 0
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=20)
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


if __name__ == "__main__":
    sys.exit(main())
