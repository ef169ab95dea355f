"""Shared builders for the onboard tests: tokens, adverts, a simulated clock, a fake backend."""

from __future__ import annotations

import email.utils
import gzip
import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx
import pytest

from onboard import wire
from onboard.scanner import AdvertisementData, BLEDevice, make_advertisement

NEEDS_SERVER = (
    "the agent against the real backend needs bibo[server] (not installed: the onboard "
    "profile alone runs the other onboard tests)"
)
"""Why the onboard tests that start the backend skip in an onboard-only install."""

T0 = 1_795_421_200_000
"""A fixed data time (UTC epoch ms) on a window boundary."""

SECRET = bytes.fromhex("5ec7e7" * 10 + "00")
VEHICLE = "RLG-4711"
UNIT = "obu-4711-a"


def token(n: int) -> bytes:
    """A deterministic 16-byte token, as a phone with key ``n`` would advertise now."""
    key = random.Random(n).randbytes(wire.DEVICE_KEY_BYTES)
    return wire.token_for_interval(key, wire.interval_of(T0))


def advert(
    tok: bytes,
    rssi: int = -60,
    tx: int = -8,
    uuid: str = wire.SERVICE_UUID,
    address: str = "C0:FF:EE:00:00:01",
) -> tuple[BLEDevice, AdvertisementData]:
    """A real bleak advert carrying a bibo payload."""
    return make_advertisement(
        address=address, service_data={uuid: wire.encode_payload(tok, tx)}, rssi=rssi
    )


@dataclass
class Clock:
    """A settable data clock in UTC epoch ms."""

    now: int = T0

    def __call__(self) -> int:
        return self.now


@dataclass
class FakeBackend:
    """The batch endpoint's contract (docs/contracts.md, Vehicle upload) in memory, with
    injectable failures.

    ``fail_rate`` of requests fail, split between "connection refused" (not stored),
    HTTP 500 (not stored) and "stored, but the answer was lost" (read timeout). While
    ``down``, every request is refused. ``clock`` (epoch ms), if set, stamps each request
    in ``request_times`` and every answer's ``Date``; ``max_skew_ms`` refuses signed
    timestamps further than that from it, as the real backend does.
    """

    secret: bytes = SECRET
    fail_rate: float = 0.0
    seed: int = 0
    down: bool = False
    clock: Callable[[], int] | None = None
    max_skew_ms: int | None = None
    stored: dict[tuple[str, str, int], bytes] = field(default_factory=dict)
    requests: int = 0
    duplicates: int = 0
    request_times: list[int] = field(default_factory=list)
    rng: random.Random = field(init=False)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    def handler(self, request: httpx.Request) -> httpx.Response:
        response = self._handle(request)
        if self.clock is not None:
            response.headers["Date"] = email.utils.formatdate(self.clock() / 1000, usegmt=True)
        return response

    def _handle(self, request: httpx.Request) -> httpx.Response:
        self.requests += 1
        if self.clock is not None:
            self.request_times.append(self.clock())
        if self.down:
            raise httpx.ConnectError("network unreachable", request=request)
        raw = request.content
        ts = request.headers[wire.TIMESTAMP_HEADER]
        if not wire.signature_valid(self.secret, ts, raw, request.headers[wire.SIGNATURE_HEADER]):
            return httpx.Response(401, json={"detail": "bad signature"})
        if (
            self.max_skew_ms is not None
            and self.clock is not None
            and abs(int(ts) - self.clock()) > self.max_skew_ms
        ):
            return httpx.Response(401, json={"detail": "timestamp too far from server clock"})
        failure = self.rng.random() < self.fail_rate
        mode = self.rng.randrange(3)
        if failure and mode == 0:
            raise httpx.ConnectError("connection refused", request=request)
        if failure and mode == 1:
            return httpx.Response(500, json={"detail": "database unavailable"})
        body = gzip.decompress(raw) if request.headers.get("content-encoding") == "gzip" else raw
        batch = wire.Batch.model_validate_json(body)
        assert request.url.path == f"/v1/vehicles/{batch.vehicle_id}/batches"
        key = (batch.vehicle_id, batch.boot_id, batch.seq)
        duplicate = key in self.stored
        if duplicate and self.stored[key] != body:
            return httpx.Response(422, json={"detail": f"batch {key} resent with another body"})
        self.stored[key] = body
        self.duplicates += duplicate
        if failure:
            raise httpx.ReadTimeout("answer lost", request=request)
        inserted = 0 if duplicate else len(batch.sightings) + len(batch.events)
        return httpx.Response(200, json={"inserted": inserted, "duplicate": duplicate})

    def batches(self) -> list[wire.Batch]:
        return [wire.Batch.model_validate_json(b) for _, b in sorted(self.stored.items())]

    def sighting_rows(self) -> list[tuple[int, str, int, int, int | None]]:
        rows: list[tuple[int, str, int, int, int | None]] = []
        for batch in self.batches():
            s = batch.sightings
            rows.extend(zip(s.t, s.token, s.rssi, s.n, s.tx, strict=True))
        return rows


def body_json(body: bytes) -> dict[str, object]:
    parsed = json.loads(body)
    assert isinstance(parsed, dict)
    return parsed


@pytest.fixture
def clock() -> Clock:
    return Clock()
