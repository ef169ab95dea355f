"""The reference phone client (simulator/phone.py) against a backend that checks what the
contract says (docs/contracts.md: Phone sightings upload): the signature with the upload
key, the body, and one stored copy per batch id."""

from __future__ import annotations

import gzip
from collections import Counter
from pathlib import Path

import httpx
import pytest

from onboard import wire
from simulator.phone import PHONE_BATCH_MAX_ROWS, PhoneIdentity, PhoneOutbox, PhoneSender, advert

T0 = 1_795_421_200_000
IDENTITY = PhoneIdentity("dev_phone_1", bytes(range(32)), "ios")
HOUR_MS = 3_600_000


class FakeBackend:
    """Stores each (device, batch id) once; can be offline, or lose its answers."""

    def __init__(self) -> None:
        self.batches: dict[tuple[str, str], wire.PhoneBatch] = {}
        self.offline = False
        self.lose_answers = False
        self.requests = 0

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests += 1
        if self.offline:
            raise httpx.ConnectError("no network", request=request)
        raw = request.content
        assert wire.signature_valid(
            wire.upload_key(IDENTITY.device_key),
            request.headers[wire.TIMESTAMP_HEADER],
            raw,
            request.headers[wire.SIGNATURE_HEADER],
        ), "not signed with the upload key"
        assert not wire.signature_valid(
            IDENTITY.device_key,
            request.headers[wire.TIMESTAMP_HEADER],
            raw,
            request.headers[wire.SIGNATURE_HEADER],
        ), "the token key itself must never sign"
        body = gzip.decompress(raw) if request.headers.get("content-encoding") == "gzip" else raw
        batch = wire.PhoneBatch.model_validate_json(body)
        assert request.url.path == f"/v1/devices/{batch.device_id}/sightings"
        key = (batch.device_id, batch.batch_id)
        duplicate = key in self.batches
        if duplicate:
            assert self.batches[key] == batch, "same batch id, another body"
        self.batches[key] = batch
        if self.lose_answers:
            raise httpx.ReadTimeout("answer lost", request=request)
        accepted = wire.BatchAccepted(
            inserted=0 if duplicate else len(batch.beacons), duplicate=duplicate
        )
        return httpx.Response(200, json=accepted.model_dump())

    def rows(self) -> Counter[tuple[int, int, int]]:
        """(second, major, minor) -> receptions, over every stored batch."""
        out: Counter[tuple[int, int, int]] = Counter()
        for b in self.batches.values():
            for t, major, minor, n in zip(
                b.beacons.t, b.beacons.major, b.beacons.minor, b.beacons.n, strict=True
            ):
                out[(t, major, minor)] += n
        return out


def _heard_bus(outbox: PhoneOutbox, start_ms: int, seconds: int, vehicle_secret: bytes) -> None:
    """A ride: the bus's beacon heard twice a second, its id rotating with the interval."""
    key = wire.beacon_key(vehicle_secret)
    for s in range(seconds):
        t = start_ms + s * 1000
        major, minor = wire.beacon_for_interval(key, wire.interval_of(t))
        outbox.hear(t + 100, major, minor, -70)
        outbox.hear(t + 600, major, minor, -65)


@pytest.fixture
def backend() -> FakeBackend:
    return FakeBackend()


async def test_a_phone_offline_for_six_hours_delivers_everything_exactly_once(
    tmp_path: Path, backend: FakeBackend
):
    now = [T0]
    outbox = PhoneOutbox(tmp_path / "phone.db", IDENTITY)
    async with httpx.AsyncClient(transport=httpx.MockTransport(backend.handle)) as client:
        sender = PhoneSender(client, "http://backend", outbox, lambda: now[0])
        backend.offline = True
        heard: Counter[tuple[int, int, int]] = Counter()
        for ride in range(6):  # a ride an hour, each 20 minutes, sealing every minute
            start = T0 + ride * HOUR_MS
            _heard_bus(outbox, start, 1200, b"vehicle-secret")
            outbox.region(start - 5000, "enter")
            outbox.activity(start - 4000, "automotive")
            outbox.region(start + 1_205_000, "exit")
            for minute in range(0, HOUR_MS, 60_000):
                now[0] = start + minute
                outbox.seal(now[0])
                assert await sender.flush() == 0
        key = wire.beacon_key(b"vehicle-secret")
        for ride in range(6):
            for s in range(1200):
                t = T0 + ride * HOUR_MS + s * 1000
                heard[(t, *wire.beacon_for_interval(key, wire.interval_of(t)))] += 2
        assert backend.batches == {}
        pending = len(outbox.pending())
        assert pending > 6

        # The answers of the first attempt are lost on the way back: the phone sends again.
        backend.offline, backend.lose_answers = False, True
        assert await sender.flush() == 0
        backend.lose_answers = False
        assert await sender.flush() == pending
        assert outbox.pending() == []
        assert await sender.flush() == 0

    assert backend.rows() == heard
    stored = list(backend.batches.values())
    assert sum(len(b.regions) for b in stored) == 12
    assert sum(len(b.activity) for b in stored) == 6
    assert all(len(b.beacons) <= PHONE_BATCH_MAX_ROWS for b in stored)


async def test_nothing_heard_is_lost_when_the_app_is_killed(tmp_path: Path, backend: FakeBackend):
    path = tmp_path / "phone.db"
    first = PhoneOutbox(path, IDENTITY)
    _heard_bus(first, T0, 30, b"vehicle-secret")
    first.seal(T0 + 15_000)  # half sealed, half still waiting
    first.close()  # the app is killed

    again = PhoneOutbox(path, IDENTITY)
    again.seal(T0 + 60_000)
    async with httpx.AsyncClient(transport=httpx.MockTransport(backend.handle)) as client:
        assert await PhoneSender(client, "http://backend", again, lambda: T0).flush() == 2
    assert sum(backend.rows().values()) == 60


def test_the_second_under_way_is_not_sealed(tmp_path: Path):
    outbox = PhoneOutbox(tmp_path / "phone.db", IDENTITY)
    outbox.hear(T0 + 200, 1, 2, -70)
    assert outbox.seal(T0 + 900) == []
    assert len(outbox.seal(T0 + 1000)) == 1


async def test_a_refused_batch_is_set_aside_and_the_rest_still_goes(tmp_path: Path):
    answers = iter([httpx.Response(422, json={"detail": "batch_id: same id, another body"})])

    def handle(request: httpx.Request) -> httpx.Response:
        return next(answers, httpx.Response(200, json={"inserted": 1, "duplicate": False}))

    ids = iter(["batch-1", "batch-2"])
    outbox = PhoneOutbox(tmp_path / "phone.db", IDENTITY, new_batch_id=lambda: next(ids))
    outbox.hear(T0, 1, 2, -70)
    outbox.seal(T0 + 1000)
    outbox.hear(T0 + 2000, 1, 2, -70)
    outbox.seal(T0 + 3000)
    async with httpx.AsyncClient(transport=httpx.MockTransport(handle)) as client:
        sender = PhoneSender(client, "http://backend", outbox, lambda: T0)
        assert await sender.flush() == 1
    assert outbox.pending() == []
    ((batch_id, reason),) = outbox.refused()
    assert batch_id == "batch-1"
    assert "same id, another body" in reason

    reopened = PhoneOutbox(tmp_path / "phone.db", IDENTITY)  # the app restarts
    assert reopened.pending() == []
    assert [b for b, _ in reopened.refused()] == ["batch-1"]


async def test_a_busy_backend_s_wait_is_passed_on_and_the_order_kept(tmp_path: Path):
    def handle(request: httpx.Request) -> httpx.Response:
        return httpx.Response(429, headers={"Retry-After": "30"}, json={"detail": "slow down"})

    outbox = PhoneOutbox(tmp_path / "phone.db", IDENTITY)
    for k in range(3):
        outbox.hear(T0 + k * 2000, 1, 2, -70)
        outbox.seal(T0 + k * 2000 + 1000)
    async with httpx.AsyncClient(transport=httpx.MockTransport(handle)) as client:
        sender = PhoneSender(client, "http://backend", outbox, lambda: T0)
        assert await sender.flush() == 0
    assert sender.retry_after_ms == 30_000
    assert len(outbox.pending()) == 3


@pytest.mark.parametrize(
    ("reading", "kind"),
    [
        ((T0, 1, 2, 127), "hear"),  # 127: the radio had no RSSI
        ((T0, 70_000, 2, -70), "hear"),
        ((0, 1, 2, -70), "hear"),
        ((T0, "arrive"), "region"),
        ((T0, "teleporting"), "activity"),
    ],
)
def test_a_reading_the_contract_refuses_is_dropped_and_never_blocks_the_outbox(
    tmp_path: Path, reading, kind
):
    outbox = PhoneOutbox(tmp_path / "phone.db", IDENTITY)
    assert getattr(outbox, kind)(*reading) is False
    assert outbox.dropped == 1
    outbox.hear(T0, 1, 2, -70)
    assert len(outbox.seal(T0 + 1000)) == 1


def test_an_android_phone_advertises_the_interval_s_token():
    payload = wire.decode_payload(advert(IDENTITY, T0, tx_power_dbm=-12))
    assert isinstance(payload, wire.Payload)
    assert payload.token == wire.token_for_interval(IDENTITY.device_key, wire.interval_of(T0))
    assert payload.tx_power == -12
