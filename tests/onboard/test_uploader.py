"""The uploader against httpx.MockTransport: signing, gzip, failure classification, backoff."""

from __future__ import annotations

import gzip
import logging

import httpx
import pytest

from onboard import wire
from onboard.const import BACKOFF_BASE_MS, BACKOFF_CAP_MS, BACKOFF_JITTER
from onboard.uploader import Uploader, UploadStatus, backoff_ms, classify_status
from tests.onboard.conftest import SECRET, VEHICLE

BODY = b'{"version":1,"seq":0}'
NOW = 1_795_421_234_567


def make(handler, *, gzip_body: bool = True) -> tuple[Uploader, httpx.AsyncClient]:
    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    uploader = Uploader(client, "http://bibo.test/", VEHICLE, SECRET, lambda: NOW, gzip=gzip_body)
    return uploader, client


def answer(status: int, **kwargs):
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, **kwargs)

    return handler


def failing(exc_type: type[httpx.RequestError]):
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc_type("simulated", request=request)

    return handler


async def test_request_is_signed_gzipped_and_posted_to_the_vehicle_endpoint():
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"inserted": 3, "duplicate": False})

    uploader, client = make(handler)
    async with client:
        outcome = await uploader.send(BODY)

    [request] = seen
    assert outcome.status is UploadStatus.DELIVERED
    assert outcome.accepted == wire.BatchAccepted(inserted=3, duplicate=False)
    assert request.method == "POST"
    assert str(request.url) == f"http://bibo.test/v1/vehicles/{VEHICLE}/batches"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["content-encoding"] == "gzip"
    assert request.headers[wire.TIMESTAMP_HEADER] == str(NOW)
    assert gzip.decompress(request.content) == BODY
    assert wire.signature_valid(
        SECRET,
        request.headers[wire.TIMESTAMP_HEADER],
        request.content,
        request.headers[wire.SIGNATURE_HEADER],
    )
    assert not wire.signature_valid(
        SECRET, request.headers[wire.TIMESTAMP_HEADER], BODY, request.headers[wire.SIGNATURE_HEADER]
    ), "the signature covers the compressed bytes, not the JSON"


async def test_same_body_compresses_to_the_same_bytes():
    uploader, client = make(answer(200))
    async with client:
        assert uploader.encode(BODY, NOW) == uploader.encode(BODY, NOW)


async def test_without_gzip_the_raw_json_is_sent_and_signed():
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"inserted": 0, "duplicate": True})

    uploader, client = make(handler, gzip_body=False)
    async with client:
        outcome = await uploader.send(BODY)

    assert outcome.accepted == wire.BatchAccepted(inserted=0, duplicate=True)
    assert seen[0].content == BODY
    assert "content-encoding" not in seen[0].headers
    assert wire.signature_valid(SECRET, str(NOW), BODY, seen[0].headers[wire.SIGNATURE_HEADER])


@pytest.mark.parametrize(
    "handler",
    [
        answer(500, text="boom"),
        answer(502),
        answer(503, json={"detail": "overloaded"}),
        answer(429),
        answer(401, json={"detail": "timestamp too far from server clock"}),
        failing(httpx.ConnectError),
        failing(httpx.ReadTimeout),
        failing(httpx.ConnectTimeout),
        failing(httpx.RemoteProtocolError),
    ],
    ids=["500", "502", "503", "429", "401", "connect", "read-timeout", "connect-timeout", "proto"],
)
async def test_transient_failures_keep_the_batch(handler):
    uploader, client = make(handler)
    async with client:
        outcome = await uploader.send(BODY)

    assert outcome.status is UploadStatus.RETRY
    assert outcome.detail


@pytest.mark.parametrize("status", [400, 413, 422])
async def test_a_refused_batch_is_quarantined_with_one_log_line(status, caplog):
    detail = [{"loc": ["body", "sightings", "rssi", 0], "msg": "too small"}]
    uploader, client = make(answer(status, json={"detail": detail}))

    with caplog.at_level(logging.WARNING, logger="onboard.uploader"):
        async with client:
            outcome = await uploader.send(BODY)

    assert outcome.status is UploadStatus.QUARANTINE
    assert outcome.http_status == status
    assert "sightings" in outcome.detail
    [record] = caplog.records
    message = record.getMessage()
    assert str(status) in message
    assert "too small" in message
    assert "\n" not in message
    assert SECRET.hex() not in caplog.text
    assert SECRET.hex() not in repr(uploader)


async def test_a_200_without_the_expected_answer_still_counts_as_stored(caplog):
    uploader, client = make(answer(200, text="ok"))
    async with client:
        outcome = await uploader.send(BODY)

    assert outcome.status is UploadStatus.DELIVERED
    assert outcome.accepted is None


def test_status_classification():
    assert classify_status(200) is UploadStatus.DELIVERED
    assert classify_status(422) is UploadStatus.QUARANTINE
    assert classify_status(404) is UploadStatus.RETRY
    assert classify_status(503) is UploadStatus.RETRY
    assert classify_status(301) is UploadStatus.RETRY


@pytest.mark.parametrize("rng_value", [0.0, 0.25, 0.5, 0.999999, 1.0])
def test_backoff_grows_exponentially_within_jitter_and_cap(rng_value):
    delays = [backoff_ms(attempt, rng_value) for attempt in range(1, 40)]

    assert delays == sorted(delays)
    for attempt, delay in enumerate(delays, start=1):
        nominal = min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** (attempt - 1))
        assert (1 - BACKOFF_JITTER) * nominal <= delay <= nominal
    assert delays[-1] <= BACKOFF_CAP_MS
    assert delays[0] >= (1 - BACKOFF_JITTER) * BACKOFF_BASE_MS


def test_backoff_huge_attempt_does_not_overflow():
    assert backoff_ms(10**6, 0.5) <= BACKOFF_CAP_MS


@pytest.mark.parametrize(("attempt", "rng_value"), [(0, 0.5), (-1, 0.5), (1, -0.1), (1, 1.5)])
def test_backoff_refuses_nonsense(attempt, rng_value):
    with pytest.raises(ValueError, match=r"attempt|rng_value"):
        backoff_ms(attempt, rng_value)


def test_empty_secret_is_refused():
    with pytest.raises(ValueError, match="secret"):
        Uploader(httpx.AsyncClient(), "http://x", VEHICLE, b"", lambda: NOW)
