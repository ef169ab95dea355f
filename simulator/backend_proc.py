"""The backend as a separate process: ``bibo`` commands and ``bibo serve`` on loopback.

The simulator never imports ``backend``; it runs ``python -m backend.cli …`` in
subprocesses with the database given by ``BIBO_DATABASE_URL``, and talks HTTP to the
server.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import httpx

from simulator.const import REPLAY_UPLOADS_PER_S, SERVER_START_TIMEOUT_S


class BackendError(Exception):
    """A backend command or the server failed; the message says which and why."""


def backend_env(workdir: Path, background_reconcile: bool = False) -> dict[str, str]:
    """Environment for backend processes with a SQLite database in ``workdir``."""
    return {
        **os.environ,
        "BIBO_DATABASE_URL": f"sqlite:///{workdir.resolve()}/bibo.sqlite3",
        "BIBO_RECONCILE_IN_BACKGROUND": "true" if background_reconcile else "false",
        # A simulated day is uploaded in a minute, not a day: lift the per-vehicle and
        # per-phone limits that protect a live backend from a runaway unit or app.
        "BIBO_VEHICLE_UPLOADS_PER_S": str(REPLAY_UPLOADS_PER_S),
        "BIBO_VEHICLE_UPLOAD_BURST": str(REPLAY_UPLOADS_PER_S),
        "BIBO_PHONE_UPLOADS_PER_S": str(REPLAY_UPLOADS_PER_S),
        "BIBO_PHONE_UPLOAD_BURST": str(REPLAY_UPLOADS_PER_S),
    }


def free_port() -> int:
    """A TCP port free on loopback right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def bibo(args: Sequence[str], env: Mapping[str, str]) -> str:
    """Run a ``bibo`` command in its own process and return its stdout."""
    done = subprocess.run(
        [sys.executable, "-m", "backend.cli", *args],
        env=dict(env),
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise BackendError(f"'bibo {' '.join(args)}' failed: {done.stderr.strip()}")
    return done.stdout


def last_line(text: str) -> str:
    """The last non-empty line of a command's output (secrets and tokens are printed there)."""
    return text.strip().splitlines()[-1].strip()


def add_vehicles(
    vehicle_ids: Sequence[str],
    env: Mapping[str, str],
    operators: Mapping[str, str] | None = None,
) -> dict[str, bytes]:
    """``bibo vehicles add`` once per transit company (from ``operators``; none where not
    given) with all of its vehicles, as an operator registers a fleet; secrets by id."""
    fleets: dict[str | None, list[str]] = {}
    for vid in vehicle_ids:
        fleets.setdefault((operators or {}).get(vid), []).append(vid)
    secrets: dict[str, bytes] = {}
    for company, fleet in fleets.items():
        command = ["vehicles", "add", *fleet] + (["--operator", company] if company else [])
        lines = bibo(command, env).strip().splitlines()
        if len(fleet) == 1:
            secrets[fleet[0]] = bytes.fromhex(lines[-1].strip())
            continue
        for line in lines[-len(fleet) :]:
            vid, secret = line.split()
            secrets[vid] = bytes.fromhex(secret)
    return {vid: secrets[vid] for vid in vehicle_ids}


@contextlib.contextmanager
def backend_server(env: Mapping[str, str], port: int, log: Path) -> Iterator[str]:
    """``bibo serve`` on loopback; yields its URL; terminated on exit, Ctrl-C included."""
    with log.open("wb") as log_file:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "backend.cli",
                "serve",
                "--port",
                str(port),
                "--log-level",
                "warning",
            ],
            env=dict(env),
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + SERVER_START_TIMEOUT_S
            while True:
                if proc.poll() is not None:
                    raise BackendError(f"the backend exited with {proc.returncode}; see {log}")
                with contextlib.suppress(httpx.TransportError):
                    if httpx.get(f"{url}/v1/health", timeout=1.0).status_code == 200:
                        break
                if time.monotonic() > deadline:
                    raise BackendError(
                        f"the backend did not answer within {SERVER_START_TIMEOUT_S:.0f} s; "
                        f"see {log}"
                    )
                time.sleep(0.2)
            yield url
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
