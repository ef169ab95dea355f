"""The seam to the backend: signs and sends one batch body, and classifies what happened.

The only module of the agent that imports httpx. Failures are classified, never raised:
network errors, timeouts, 5xx and answers about the unit rather than the batch (see
``const.RETRY_STATUSES``) keep the batch for a retry; any other 4xx quarantines it.
"""

from __future__ import annotations

import enum
import gzip as gzip_module
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import quote

import httpx
from pydantic import ValidationError

from onboard import wire
from onboard.const import (
    BACKOFF_BASE_MS,
    BACKOFF_CAP_MS,
    BACKOFF_JITTER,
    GZIP_LEVEL,
    HTTP_CONNECT_TIMEOUT_S,
    HTTP_POOL_TIMEOUT_S,
    HTTP_READ_TIMEOUT_S,
    HTTP_WRITE_TIMEOUT_S,
    LOG_DETAIL_MAX_CHARS,
    RETRY_STATUSES,
)

_log = logging.getLogger(__name__)


class UploadStatus(enum.Enum):
    """What to do with a batch after one send."""

    DELIVERED = "delivered"
    """The backend stored it (or already had it): forget it."""
    RETRY = "retry"
    """Not stored, but it may be later: keep it and back off."""
    QUARANTINE = "quarantine"
    """The backend refused this batch: set it aside, sending again cannot help."""


@dataclass(frozen=True, slots=True)
class UploadOutcome:
    """The classified result of one send.

    ``http_status`` is ``None`` when no answer arrived; ``detail`` is one line for a log or
    the outbox (the server's ``detail`` or the network error), never a secret.
    """

    status: UploadStatus
    http_status: int | None = None
    detail: str = ""
    accepted: wire.BatchAccepted | None = None


def backoff_ms(attempt: int, rng_value: float) -> int:
    """Delay in ms before retry number ``attempt`` (1 = first retry) after failed sends.

    Exponential from ``BACKOFF_BASE_MS``, capped at ``BACKOFF_CAP_MS``; the top
    ``BACKOFF_JITTER`` fraction is scaled by ``rng_value`` in [0, 1), so the result lies in
    ``[(1 - BACKOFF_JITTER) * d, d]`` for the un-jittered delay ``d``.
    """
    if attempt < 1:
        raise ValueError(f"attempt: expected >= 1, got {attempt}")
    if not 0.0 <= rng_value <= 1.0:
        raise ValueError(f"rng_value: expected a number in [0, 1], got {rng_value}")
    delay = BACKOFF_BASE_MS
    for _ in range(attempt - 1):
        if delay >= BACKOFF_CAP_MS:
            break
        delay *= 2
    delay = min(delay, BACKOFF_CAP_MS)
    return int(delay * (1.0 - BACKOFF_JITTER + BACKOFF_JITTER * rng_value))


def make_client() -> httpx.AsyncClient:
    """An ``httpx.AsyncClient`` with the agent's timeouts, for production use."""
    timeout = httpx.Timeout(
        connect=HTTP_CONNECT_TIMEOUT_S,
        read=HTTP_READ_TIMEOUT_S,
        write=HTTP_WRITE_TIMEOUT_S,
        pool=HTTP_POOL_TIMEOUT_S,
    )
    return httpx.AsyncClient(timeout=timeout)


def classify_status(http_status: int) -> UploadStatus:
    """Pure mapping from an HTTP status to what to do with the batch."""
    if 200 <= http_status < 300:
        return UploadStatus.DELIVERED
    if 400 <= http_status < 500 and http_status not in RETRY_STATUSES:
        return UploadStatus.QUARANTINE
    return UploadStatus.RETRY


class Uploader:
    """Posts batch bodies to ``POST {base_url}/v1/vehicles/{vehicle_id}/batches``.

    ``wall_clock`` returns the real time of the request in UTC epoch ms (for the signed
    ``X-Bibo-Timestamp``), which may differ from the data clock that stamped the batch.
    """

    def __init__(
        self,
        client: httpx.AsyncClient,
        base_url: str,
        vehicle_id: str,
        secret: bytes,
        wall_clock: Callable[[], int],
        gzip: bool = True,
    ) -> None:
        if not secret:
            raise ValueError("secret: expected the vehicle secret, got an empty value")
        self._client = client
        self.vehicle_id = vehicle_id
        self.url = f"{base_url.rstrip('/')}/v1/vehicles/{quote(vehicle_id, safe=':')}/batches"
        self._secret = secret
        self._wall_clock = wall_clock
        self._gzip = gzip

    def __repr__(self) -> str:
        return f"Uploader(url={self.url!r}, gzip={self._gzip})"

    def encode(self, body: bytes, timestamp_ms: int) -> tuple[bytes, dict[str, str]]:
        """The raw request bytes and headers for ``body`` signed at ``timestamp_ms`` (epoch ms).

        gzip uses ``mtime=0`` so the same body always compresses to the same bytes.
        """
        headers = {"Content-Type": "application/json"}
        raw = body
        if self._gzip:
            raw = gzip_module.compress(body, compresslevel=GZIP_LEVEL, mtime=0)
            headers["Content-Encoding"] = "gzip"
        headers[wire.TIMESTAMP_HEADER] = str(timestamp_ms)
        headers[wire.SIGNATURE_HEADER] = wire.sign(self._secret, timestamp_ms, raw)
        return raw, headers

    async def send(self, body: bytes) -> UploadOutcome:
        """Send one batch body (uncompressed JSON bytes); never raises for network trouble."""
        raw, headers = self.encode(body, self._wall_clock())
        try:
            response = await self._client.post(self.url, content=raw, headers=headers)
        except httpx.RequestError as exc:
            detail = f"{type(exc).__name__}: {exc}"[:LOG_DETAIL_MAX_CHARS]
            _log.debug("upload to %s failed, will retry: %s", self.url, detail)
            return UploadOutcome(UploadStatus.RETRY, detail=detail)
        status = classify_status(response.status_code)
        if status is UploadStatus.DELIVERED:
            return UploadOutcome(
                status, response.status_code, accepted=_parse_accepted(response.content)
            )
        detail = _server_detail(response)
        if status is UploadStatus.QUARANTINE:
            _log.warning(
                "upload refused with HTTP %d, batch quarantined: %s", response.status_code, detail
            )
        elif response.status_code in RETRY_STATUSES:
            # Clock skew, a wrong secret or an unregistered vehicle: an operator must know.
            _log.warning(
                "upload refused with HTTP %d, will retry: %s", response.status_code, detail
            )
        else:
            _log.debug("upload got HTTP %d, will retry: %s", response.status_code, detail)
        return UploadOutcome(status, response.status_code, detail=detail)


def _parse_accepted(content: bytes) -> wire.BatchAccepted | None:
    """The backend's answer; ``None`` (logged) if a 2xx came without the expected body."""
    try:
        return wire.BatchAccepted.model_validate_json(content)
    except ValidationError:
        _log.warning("upload accepted but the answer was not a BatchAccepted; assuming stored")
        return None


def _server_detail(response: httpx.Response) -> str:
    """One line from an error answer: FastAPI's ``detail`` if present, else the text."""
    text = response.text
    try:
        parsed = json.loads(text)
    except ValueError:
        parsed = None
    if isinstance(parsed, dict) and "detail" in parsed:
        detail = parsed["detail"]
        text = detail if isinstance(detail, str) else json.dumps(detail, separators=(",", ":"))
    one_line = " ".join(text.split())
    return f"HTTP {response.status_code}: {one_line}"[:LOG_DETAIL_MAX_CHARS]
