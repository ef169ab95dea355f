"""Replay a recording against a running backend: every batch, signed, in upload order.

The bodies go out byte for byte as recorded, signed now with each vehicle's secret through the
agent's own :class:`onboard.uploader.Uploader` (gzip, ``X-Bibo-Timestamp``, ``X-Bibo-Signature``),
so the backend sees exactly what the buses would have sent; the data inside may be days old, which
the contract allows (docs/contracts.md, Signing). Vehicles go in parallel, each vehicle's batches
one after the other. Then the iPhones' sighting uploads (``phones.jsonl``) go to
``/v1/devices/{id}/sightings``, signed with each device's upload key (``simulator.phone``);
their beacon ids are re-keyed from the recording's vehicle secrets to the backend's
(``simulator.iphones.rekey_body``), so they resolve to the buses the backend knows.

A backend that does not answer is asked again until it does (it may be starting); the
``notice`` callback hears about it at once and then every ``REPLAY_NOTICE_INTERVAL_S``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from onboard.uploader import SignedUploader, Uploader, UploadOutcome, UploadStatus
from simulator.const import (
    REPLAY_CONCURRENCY,
    REPLAY_CONNECT_TIMEOUT_S,
    REPLAY_MAX_ATTEMPTS,
    REPLAY_NOTICE_INTERVAL_S,
    REPLAY_READ_TIMEOUT_S,
    REPLAY_RETRY_WAIT_MAX_S,
    REPLAY_RETRY_WAIT_S,
)
from simulator.iphones import rekey_body
from simulator.phone import phone_uploader
from simulator.recording import Recording

_log = logging.getLogger(__name__)


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
    phone_batches: int = 0
    phone_delivered: int = 0
    """The iPhones' sighting uploads sent and stored (docs/contracts.md, Phone sightings
    upload); their failures are in ``failures`` too."""


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


def unreachable_reason(exc: httpx.RequestError) -> str:
    """Why a request got no answer, in a few words (``connection refused``)."""
    if isinstance(exc, httpx.ConnectTimeout):
        return f"no answer within {REPLAY_CONNECT_TIMEOUT_S:.0f} s"
    if isinstance(exc, httpx.TimeoutException):
        return "timed out"
    # httpx wraps the operating system's error; its own message is often only "All
    # connection attempts failed".
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, ConnectionRefusedError):
            return "connection refused"
        if isinstance(cause, socket.gaierror):
            return "unknown host name"
        if isinstance(cause, OSError) and cause.strerror:
            return cause.strerror.lower()
        cause = cause.__cause__ or cause.__context__
    return str(exc) or type(exc).__name__


class _Backend:
    """Whether the backend answers at all, shared by the vehicles of one replay.

    Reachability is asked with ``GET /v1/health``: any HTTP answer counts.
    """

    def __init__(
        self,
        client: httpx.AsyncClient,
        base_url: str,
        notice: Callable[[str], None],
        sleep: Callable[[float], Awaitable[None]],
        monotonic: Callable[[], float],
    ) -> None:
        self._client = client
        self._base_url = base_url
        self._health_url = f"{base_url.rstrip('/')}/v1/health"
        self._notice = notice
        self._sleep = sleep
        self._monotonic = monotonic
        self._lock = asyncio.Lock()  # one vehicle asks; the others wait for its answer

    async def wait_until_reachable(self) -> bool:
        """Return once the backend answers; True if it did not at first (so a send that
        just failed was the backend's absence, not the batch's fault)."""
        async with self._lock:
            attempt = 0
            wait = REPLAY_RETRY_WAIT_S
            noticed_at: float | None = None
            while True:
                attempt += 1
                try:
                    await self._client.get(self._health_url)
                except httpx.RequestError as exc:
                    now = self._monotonic()
                    if noticed_at is None or now - noticed_at >= REPLAY_NOTICE_INTERVAL_S:
                        self._notice(
                            f"cannot reach {self._base_url} ({unreachable_reason(exc)}); "
                            f"retrying (attempt {attempt})..."
                        )
                        noticed_at = now
                    await self._sleep(wait)
                    wait = min(2 * wait, REPLAY_RETRY_WAIT_MAX_S)
                    continue
                if attempt > 1:
                    self._notice(f"{self._base_url} answers (attempt {attempt}); replaying")
                return attempt > 1


async def replay(
    recording: Recording,
    client: httpx.AsyncClient,
    base_url: str,
    secrets: Mapping[str, bytes],
    *,
    concurrency: int = REPLAY_CONCURRENCY,
    wall_clock: Callable[[], int] | None = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    notice: Callable[[str], None] = _log.warning,
    monotonic: Callable[[], float] = time.monotonic,
) -> ReplayResult:
    """Send every batch of ``recording`` to ``base_url`` with the vehicles' secrets.

    A vehicle without a secret is refused up front (ReplayError lists them). A batch the
    backend answers with 429 (its per-vehicle rate limit) or 5xx is sent again after a wait
    (``sleep``, seconds); one it refuses otherwise, or that cannot be delivered, is counted
    in ``failures``, and the vehicle's remaining batches still go. While the backend does
    not answer at all, replay waits for it, telling ``notice`` (one line, e.g. ``cannot
    reach URL (connection refused); retrying (attempt 3)...``) at once and then every
    ``REPLAY_NOTICE_INTERVAL_S`` of ``monotonic`` time.
    """
    if not base_url.startswith(("http://", "https://")):
        raise ReplayError(f"--backend {base_url!r}: expected an http:// or https:// URL")
    missing = sorted(v["vehicle_id"] for v in recording.vehicles if v["vehicle_id"] not in secrets)
    if missing:
        shown = ", ".join(missing[:5]) + (" …" if len(missing) > 5 else "")
        raise ReplayError(f"--vehicle-secrets: no secret for {len(missing)} vehicle(s): {shown}")
    clock = wall_clock or (lambda: int(time.time() * 1000))
    result = ReplayResult(vehicles=len(recording.vehicles))
    limit = asyncio.Semaphore(concurrency)
    backend = _Backend(client, base_url, notice, sleep, monotonic)

    async def send(uploader: SignedUploader, body: bytes) -> UploadOutcome:
        """Send until delivered, refused, or out of attempts (429, 5xx: again; no answer:
        again once the backend answers, without using up an attempt)."""
        wait = REPLAY_RETRY_WAIT_S
        attempts = 0
        while True:
            outcome = await uploader.send(body)
            if outcome.http_status is None and await backend.wait_until_reachable():
                continue
            attempts += 1
            transient = outcome.http_status is None or outcome.http_status == 429
            transient |= outcome.http_status is not None and outcome.http_status >= 500
            if (
                outcome.status is UploadStatus.DELIVERED
                or not transient
                or attempts >= REPLAY_MAX_ATTEMPTS
            ):
                return outcome
            await sleep(wait)
            wait = min(2 * wait, REPLAY_RETRY_WAIT_MAX_S)

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

    phones: dict[str, list[bytes]] = {}
    for body in recording.phone_batches():
        phones.setdefault(json.loads(body)["device_id"], []).append(body)
    keys = recording.device_keys()
    recorded_secrets = recording.vehicle_secrets()

    async def phone(device_id: str, bodies: list[bytes]) -> None:
        async with limit:
            uploader = phone_uploader(client, base_url, device_id, keys[device_id], clock)
            for k, body in enumerate(bodies):
                result.phone_batches += 1
                outcome = await send(uploader, rekey_body(body, recorded_secrets, secrets))
                if outcome.status is UploadStatus.DELIVERED:
                    result.phone_delivered += 1
                else:
                    result.failures.append(f"{device_id} phone batch {k}: {outcome.detail}")

    # The agent's uploader warns about every 429; replaying, they are the expected pacing.
    uploader_log = logging.getLogger("onboard.uploader")
    level = uploader_log.level
    uploader_log.setLevel(logging.ERROR)
    try:
        # A wrong --backend is reported before the first batch, not after its retries.
        await backend.wait_until_reachable()
        await asyncio.gather(*(one(v["vehicle_id"]) for v in recording.vehicles))
        # The phones after the buses: as in service, a phone's beacons resolve against
        # vehicles the backend knows either way.
        await asyncio.gather(*(phone(d, bodies) for d, bodies in phones.items()))
    finally:
        uploader_log.setLevel(level)
    return result


def replay_sync(
    recording_dir: Path,
    base_url: str,
    secrets: Mapping[str, bytes],
    concurrency: int = REPLAY_CONCURRENCY,
    notice: Callable[[str], None] = _log.warning,
) -> ReplayResult:
    """:func:`replay` over real HTTP, for the command line."""
    recording = Recording.open(recording_dir)

    async def run() -> ReplayResult:
        limits = httpx.Limits(max_connections=concurrency)
        timeout = httpx.Timeout(REPLAY_READ_TIMEOUT_S, connect=REPLAY_CONNECT_TIMEOUT_S)
        async with httpx.AsyncClient(timeout=timeout, limits=limits) as client:
            return await replay(
                recording, client, base_url, secrets, concurrency=concurrency, notice=notice
            )

    return asyncio.run(run())
