"""Replay a recording against a running backend: every batch, signed, in upload order.

The bodies go out byte for byte as recorded, signed now with each vehicle's secret through
the agent's own :class:`onboard.uploader.Uploader` (gzip, ``X-Bibo-Timestamp``,
``X-Bibo-Signature``), so the backend sees exactly what the buses would have sent; the data
inside may be days old, which DESIGN §3 allows. Vehicles go in parallel, each vehicle's
batches one after the other.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from onboard.uploader import Uploader, UploadOutcome, UploadStatus
from simulator.const import (
    REPLAY_CONCURRENCY,
    REPLAY_MAX_ATTEMPTS,
    REPLAY_RETRY_WAIT_MAX_S,
    REPLAY_RETRY_WAIT_S,
)
from simulator.recording import Recording


class ReplayError(ValueError):
    """The secrets file or the recording does not fit; the message names what."""


@dataclass
class ReplayResult:
    """Counts of one replay; ``failures`` holds one line per refused or failed batch."""

    vehicles: int = 0
    batches: int = 0
    delivered: int = 0
    duplicates: int = 0
    failures: list[str] = field(default_factory=list)
    uploaded_at: dict[tuple[str, int], int] = field(default_factory=dict)
    """Wall-clock epoch ms at which each (vehicle_id, seq) was accepted."""


def load_secrets(path: Path) -> dict[str, bytes]:
    """``{vehicle_id: secret hex}`` from a JSON file (ReplayError names the problem)."""
    try:
        doc = json.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        raise ReplayError(f"--vehicle-secrets {path}: no such file") from None
    except json.JSONDecodeError as exc:
        raise ReplayError(f"--vehicle-secrets {path}: not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise ReplayError(f"--vehicle-secrets {path}: expected an object {{vehicle_id: hex}}")
    out: dict[str, bytes] = {}
    for vid, hexed in doc.items():
        try:
            out[str(vid)] = bytes.fromhex(str(hexed))
        except ValueError:
            raise ReplayError(
                f"--vehicle-secrets {path}: {vid}: expected a hex secret, got {hexed!r}"
            ) from None
    return out


async def replay(
    recording: Recording,
    client: httpx.AsyncClient,
    base_url: str,
    secrets: Mapping[str, bytes],
    *,
    concurrency: int = REPLAY_CONCURRENCY,
    wall_clock: Callable[[], int] | None = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> ReplayResult:
    """Send every batch of ``recording`` to ``base_url`` with the vehicles' secrets.

    A vehicle without a secret is refused up front (ReplayError lists them). A batch the
    backend answers with 429 (its per-vehicle rate limit), 5xx or not at all is sent again
    after a wait (``sleep``, seconds); one it refuses otherwise, or that cannot be
    delivered, is counted in ``failures``, and the vehicle's remaining batches still go.
    """
    missing = sorted(v["vehicle_id"] for v in recording.vehicles if v["vehicle_id"] not in secrets)
    if missing:
        shown = ", ".join(missing[:5]) + (" …" if len(missing) > 5 else "")
        raise ReplayError(f"--vehicle-secrets: no secret for {len(missing)} vehicle(s): {shown}")
    clock = wall_clock or (lambda: int(time.time() * 1000))
    result = ReplayResult(vehicles=len(recording.vehicles))
    limit = asyncio.Semaphore(concurrency)

    async def send(uploader: Uploader, body: bytes) -> UploadOutcome:
        """Send until delivered, refused, or out of attempts (429, 5xx, network: again)."""
        wait = REPLAY_RETRY_WAIT_S
        for _ in range(REPLAY_MAX_ATTEMPTS - 1):
            outcome = await uploader.send(body)
            transient = outcome.http_status is None or outcome.http_status == 429
            transient |= outcome.http_status is not None and outcome.http_status >= 500
            if outcome.status is UploadStatus.DELIVERED or not transient:
                return outcome
            await sleep(wait)
            wait = min(2 * wait, REPLAY_RETRY_WAIT_MAX_S)
        return await uploader.send(body)

    async def one(vehicle_id: str) -> None:
        async with limit:
            uploader = Uploader(client, base_url, vehicle_id, secrets[vehicle_id], clock)
            for seq, body in enumerate(recording.batches(vehicle_id)):
                result.batches += 1
                outcome = await send(uploader, body)
                if outcome.status is UploadStatus.DELIVERED:
                    result.delivered += 1
                    if outcome.accepted is not None and outcome.accepted.duplicate:
                        result.duplicates += 1
                    result.uploaded_at[(vehicle_id, seq)] = clock()
                else:
                    result.failures.append(f"{vehicle_id} batch {seq}: {outcome.detail}")

    # The agent's uploader warns about every 429; replaying, they are the expected pacing.
    uploader_log = logging.getLogger("onboard.uploader")
    level = uploader_log.level
    uploader_log.setLevel(logging.ERROR)
    try:
        await asyncio.gather(*(one(v["vehicle_id"]) for v in recording.vehicles))
    finally:
        uploader_log.setLevel(level)
    return result


def replay_sync(
    recording_dir: Path,
    base_url: str,
    secrets: Mapping[str, bytes],
    concurrency: int = REPLAY_CONCURRENCY,
) -> ReplayResult:
    """:func:`replay` over real HTTP, for the command line."""
    recording = Recording.open(recording_dir)

    async def run() -> ReplayResult:
        limits = httpx.Limits(max_connections=concurrency)
        async with httpx.AsyncClient(timeout=60.0, limits=limits) as client:
            return await replay(recording, client, base_url, secrets, concurrency=concurrency)

    return asyncio.run(run())
