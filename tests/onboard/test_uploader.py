"""The uploader against httpx.MockTransport: signing, gzip, failure classification, backoff."""

from __future__ import annotations

import email.utils
import gzip
import logging

import httpx
import pytest

from onboard import wire
from onboard.const import BACKOFF_BASE_MS, BACKOFF_CAP_MS, BACKOFF_JITTER
from onboard.uploader import (
    Uploader,
    UploadStatus,
    backoff_ms,
    classify_status,
    parse_retry_after,
)
from tests.onboard.conftest import SECRET, VEHICLE, FakeBackend

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


async def test_stored_gzip_bytes_are_sent_as_they_are():
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"inserted": 1, "duplicate": False})

    stored = gzip.compress(BODY, mtime=0)
    uploader, client = make(handler)
    async with client:
        await uploader.send_stored(stored, "gzip")
    plain, plain_client = make(handler, gzip_body=False)
    async with plain_client:
        await plain.send_stored(stored, "gzip")
        await plain.send_stored(BODY, "identity")

    assert seen[0].content == stored
    assert seen[0].headers["content-encoding"] == "gzip"
    assert seen[1].content == BODY
    assert "content-encoding" not in seen[1].headers
    assert seen[2].content == BODY


async def test_a_wrong_unit_clock_is_corrected_from_the_date_header(caplog):
    """The unit booted without a real-time clock, 2 hours behind: the first request is
    refused (401) but its answer's Date fixes the signing time of the next."""
    server = FakeBackend(clock=lambda: NOW, max_skew_ms=300_000)
    unit_clock = NOW - 7_200_000
    client = httpx.AsyncClient(transport=httpx.MockTransport(server.handler))
    uploader = Uploader(client, "http://bibo.test", VEHICLE, SECRET, lambda: unit_clock)
    batch = wire.Batch(
        version=1, vehicle_id=VEHICLE, unit_id="u", boot_id="b", seq=0, sent_at=NOW, window_ms=1000
    )
    body = batch.model_dump_json().encode()

    with caplog.at_level(logging.WARNING, logger="onboard.uploader"):
        async with client:
            first = await uploader.send(body)
            second = await uploader.send(body)

    assert (first.status, first.http_status) == (UploadStatus.RETRY, 401)
    assert second.status is UploadStatus.DELIVERED
    assert uploader.clock_offset_ms is not None
    assert abs(uploader.clock_offset_ms - 7_200_000) < 1000
    assert uploader.last_success_ms == unit_clock
    assert any("clock" in r.getMessage() for r in caplog.records)


async def test_a_small_offset_leaves_the_signing_time_alone():
    server_now = NOW + 1200
    uploader, client = make(
        lambda request: httpx.Response(
            200,
            json={"inserted": 0, "duplicate": True},
            headers={"Date": email.utils.formatdate(server_now / 1000, usegmt=True)},
        )
    )
    async with client:
        await uploader.send(BODY)

    assert uploader.clock_offset_ms is not None
    assert uploader.signing_time() == NOW


async def test_retry_after_is_read_from_429_and_503():
    uploader, client = make(answer(429, headers={"Retry-After": "7"}))
    async with client:
        outcome = await uploader.send(BODY)
    assert (outcome.status, outcome.retry_after_ms) == (UploadStatus.RETRY, 7000)

    date = email.utils.formatdate(NOW / 1000, usegmt=True)
    later = email.utils.formatdate(NOW / 1000 + 30, usegmt=True)
    uploader, client = make(answer(503, headers={"Retry-After": later, "Date": date}))
    async with client:
        outcome = await uploader.send(BODY)
    assert outcome.retry_after_ms == 30_000


@pytest.mark.parametrize(
    ("value", "date_ms", "expected"),
    [
        (None, None, None),
        ("soon", NOW, None),
        ("Sun, 06 Nov 1994 08:49:37 GMT", None, None),
        ("²", NOW, None),  # a digit to str.isdigit, not to int()
        ("١٢", NOW, None),
        ("9" * 5000, NOW, None),  # past int()'s digit limit
    ],
)
def test_unusable_retry_after_is_none(value, date_ms, expected):
    assert parse_retry_after(value, date_ms) is expected
