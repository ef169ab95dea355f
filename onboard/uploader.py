"""The seam to the backend: signs and sends one batch body, and classifies what happened.

The only module of the agent that imports httpx. Failures are classified, never raised:
network errors, timeouts, 5xx and answers about the unit rather than the batch (see
``const.RETRY_STATUSES``) keep the batch for a retry; any other 4xx quarantines it.

Every answer's ``Date`` header feeds a clock-offset estimate; when the unit's clock is
visibly wrong (``CLOCK_OFFSET_APPLY_MS``) the signed ``X-Bibo-Timestamp`` is corrected by
it, so a unit that booted without a real-time clock still gets its data in.
"""

from __future__ import annotations

import enum
import gzip as gzip_module
import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal
from urllib.parse import quote

import httpx
from pydantic import ValidationError

from onboard import wire
from onboard.const import (
    CLOCK_OFFSET_APPLY_MS,
    GZIP_LEVEL,
    HTTP_CONNECT_TIMEOUT_S,
    HTTP_KEEPALIVE_EXPIRY_S,
    HTTP_POOL_TIMEOUT_S,
    HTTP_READ_TIMEOUT_S,
    HTTP_WRITE_TIMEOUT_S,
    LOG_DETAIL_MAX_CHARS,
    RETRY_STATUSES,
)
from onboard.timing import ClockOffsetEstimator, backoff_ms, parse_http_date

__all__ = [
    "SignedUploader",
    "UploadOutcome",
    "UploadStatus",
    "Uploader",
    "backoff_ms",
    "classify_status",
    "make_client",
]

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
    retry_after_ms: int | None = None
    """How long the server asked us to wait (``Retry-After`` on a 429 or 503), in ms."""


def make_client() -> httpx.AsyncClient:
    """An ``httpx.AsyncClient`` with the agent's timeouts, for production use."""
    timeout = httpx.Timeout(
        connect=HTTP_CONNECT_TIMEOUT_S,
        read=HTTP_READ_TIMEOUT_S,
        write=HTTP_WRITE_TIMEOUT_S,
        pool=HTTP_POOL_TIMEOUT_S,
    )
    limits = httpx.Limits(keepalive_expiry=HTTP_KEEPALIVE_EXPIRY_S)
    return httpx.AsyncClient(timeout=timeout, limits=limits)


def classify_status(http_status: int) -> UploadStatus:
    """Pure mapping from an HTTP status to what to do with the batch."""
    if 200 <= http_status < 300:
        return UploadStatus.DELIVERED
    if 400 <= http_status < 500 and http_status not in RETRY_STATUSES:
        return UploadStatus.QUARANTINE
    return UploadStatus.RETRY


class SignedUploader:
    """Posts batch bodies to one signed upload route (``X-Bibo-Timestamp``,
    ``X-Bibo-Signature``; docs/contracts.md, Signing) and classifies the answers: the
    vehicle's ``Uploader`` below, and the reference phone client's sender
    (``simulator/phone.py``, signed with the device's upload key).

    ``wall_clock`` returns the real time of the request in UTC epoch ms (for the signed
    ``X-Bibo-Timestamp``), which may differ from the data clock that stamped the batch.
    """

    def __init__(
        self,
        client: httpx.AsyncClient,
        url: str,
        secret: bytes,
        wall_clock: Callable[[], int],
        gzip: bool = True,
    ) -> None:
        if not secret:
            raise ValueError("secret: expected the signing secret, got an empty value")
        self._client = client
        self.url = url
        self._secret = secret
        self._wall_clock = wall_clock
        self._gzip = gzip
        self._offset = ClockOffsetEstimator()
        self._offset_applied = False
        self.last_success_ms: int | None = None
        """Wall-clock time (epoch ms) of the last answer that stored a batch."""

    @property
    def gzip(self) -> bool:
        """Whether bodies are sent gzip-compressed."""
        return self._gzip

    @property
    def clock_offset_ms(self) -> int | None:
        """Estimated ``server clock - wall clock`` in ms, ``None`` before any answer."""
        return self._offset.offset_ms

    def signing_time(self) -> int:
        """The ``X-Bibo-Timestamp`` for a request now: the wall clock, corrected by the
        estimated offset when that is at least ``CLOCK_OFFSET_APPLY_MS``."""
        now = self._wall_clock()
        offset = self._offset.offset_ms
        if offset is None or abs(offset) < CLOCK_OFFSET_APPLY_MS:
            self._offset_applied = False
            return now
        if not self._offset_applied:
            self._offset_applied = True
            _log.warning(
                "the unit's clock is %+.1f s off the backend's; signing with the backend's time",
                -offset / 1000,
            )
        return now + offset

    def __repr__(self) -> str:
        return f"{type(self).__name__}(url={self.url!r}, gzip={self._gzip})"

    def encode(
        self, body: bytes, timestamp_ms: int, gzipped: bytes | None = None
    ) -> tuple[bytes, dict[str, str]]:
        """The raw request bytes and headers for ``body`` signed at ``timestamp_ms`` (epoch ms).

        gzip uses ``mtime=0`` so the same body always compresses to the same bytes;
        ``gzipped``, if given, is ``body`` already compressed (as the outbox stores it).
        """
        raw = gzipped if self._gzip and gzipped is not None else self._compress(body)
        return raw, self._headers(raw, timestamp_ms)

    def _compress(self, body: bytes) -> bytes:
        if not self._gzip:
            return body
        return gzip_module.compress(body, compresslevel=GZIP_LEVEL, mtime=0)

    def _headers(self, raw: bytes, timestamp_ms: int) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        if self._gzip:
            headers["Content-Encoding"] = "gzip"
        headers[wire.TIMESTAMP_HEADER] = str(timestamp_ms)
        headers[wire.SIGNATURE_HEADER] = wire.sign(self._secret, timestamp_ms, raw)
        return headers

    async def send(self, body: bytes) -> UploadOutcome:
        """Send one batch body (uncompressed JSON bytes); never raises for network trouble."""
        return await self.send_stored(body, "identity")

    async def send_stored(
        self, stored: bytes, encoding: Literal["identity", "gzip"]
    ) -> UploadOutcome:
        """Send one batch body as the outbox stores it (JSON, or gzip of it).

        Stored gzip bytes are sent as they are (no recompression on every retry), or
        decompressed when this uploader sends uncompressed bodies.
        """
        if encoding == "gzip":
            raw = stored if self._gzip else gzip_module.decompress(stored)
        else:
            raw = self._compress(stored)
        return await self._post(raw)

    async def _post(self, raw: bytes) -> UploadOutcome:
        headers = self._headers(raw, self.signing_time())
        sent_ms = self._wall_clock()
        try:
            response = await self._client.post(self.url, content=raw, headers=headers)
        except httpx.RequestError as exc:
            detail = f"{type(exc).__name__}: {exc}"[:LOG_DETAIL_MAX_CHARS]
            _log.debug("upload to %s failed, will retry: %s", self.url, detail)
            return UploadOutcome(UploadStatus.RETRY, detail=detail)
        received_ms = self._wall_clock()
        date_ms = parse_http_date(response.headers.get("date", ""))
        if date_ms is not None:
            self._offset.observe(date_ms, sent_ms, received_ms)
        status = classify_status(response.status_code)
        if status is UploadStatus.DELIVERED:
            self.last_success_ms = received_ms
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
        retry_after = None
        if status is UploadStatus.RETRY:
            retry_after = parse_retry_after(response.headers.get("retry-after"), date_ms)
        return UploadOutcome(
            status, response.status_code, detail=detail, retry_after_ms=retry_after
        )


class Uploader(SignedUploader):
    """Posts the agent's batch bodies to ``POST {base_url}/v1/vehicles/{vehicle_id}/batches``,
    signed with the vehicle's secret."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        base_url: str,
        vehicle_id: str,
        secret: bytes,
        wall_clock: Callable[[], int],
        gzip: bool = True,
    ) -> None:
        url = f"{base_url.rstrip('/')}/v1/vehicles/{quote(vehicle_id, safe=':')}/batches"
        super().__init__(client, url, secret, wall_clock, gzip)
        self.vehicle_id = vehicle_id


def parse_retry_after(value: str | None, date_ms: int | None) -> int | None:
    """``Retry-After`` (delay in seconds, or an HTTP date compared with the answer's
    ``Date``) as ms to wait; ``None`` if absent or unusable."""
    if value is None:
        return None
    value = value.strip()
    if re.fullmatch(r"[0-9]{1,9}", value):  # ASCII digits only ("²" is a digit to isdigit)
        return int(value) * 1000
    when = parse_http_date(value)
    if when is None or date_ms is None:
        return None
    return max(0, when - date_ms)


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
