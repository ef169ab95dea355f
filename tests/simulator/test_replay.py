"""Replaying a recording against the real backend app, in process."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import socket

import httpx
import pytest

from simulator.day import plan_day
from simulator.recording import Recording, write_recording
from simulator.replay import ReplayError, load_secrets, replay, unreachable_reason
from tests.simulator.conftest import SMALL_DAY, register_recording

TINY = dataclasses.replace(
    SMALL_DAY,
    lines=("C1",),
    buses=1,
    convoys=0,
    passengers=15,
    bystanders=5,
    service_start=dt.time(7, 0),
    service_end=dt.time(7, 20),
)


@pytest.fixture(scope="module")
def recording(network, tmp_path_factory):
    out = tmp_path_factory.mktemp("replay")
    plan = plan_day(network, TINY, 3)
    write_recording(plan, out, name="replay", description="", radio_seed=4, recorder="fast")
    return Recording.open(out)


@pytest.fixture
def secrets(engine, recording):
    return register_recording(engine, recording)


async def test_replay_delivers_every_batch_once(client, recording, secrets):
    first = await replay(recording, client, "http://bibo.test", secrets)
    assert first.failures == []
    assert first.batches == sum(v["batches"] for v in recording.vehicles) > 50
    assert first.delivered == first.batches
    assert first.duplicates == 0
    again = await replay(recording, client, "http://bibo.test", secrets)
    assert again.duplicates == again.batches


async def test_wrong_secret_is_reported_not_raised(client, recording, secrets):
    wrong = {vid: b"x" * 32 for vid in secrets}
    result = await replay(recording, client, "http://bibo.test", wrong)
    assert result.delivered == 0
    assert len(result.failures) == result.batches
    assert "401" in result.failures[0]


async def test_missing_secret_is_named(client, recording):
    with pytest.raises(ReplayError, match="no secret for 1 vehicle"):
        await replay(recording, client, "http://bibo.test", {})


def test_secrets_file(tmp_path):
    f = tmp_path / "s.json"
    f.write_text(json.dumps({"RLG-1": "00ff"}), "utf-8")
    assert load_secrets(f) == {"RLG-1": b"\x00\xff"}
    f.write_text(json.dumps({"RLG-1": "zz"}), "utf-8")
    with pytest.raises(ReplayError, match="RLG-1: expected a hex secret"):
        load_secrets(f)
    with pytest.raises(ReplayError, match="no such file"):
        load_secrets(tmp_path / "nope.json")


class Unreachable(httpx.AsyncBaseTransport):
    """The real app behind a link that is down for requests ``down_from`` to ``down_until``
    (counted from 0): those fail as a refused connection does."""

    def __init__(self, app, down_from: int, down_until: int) -> None:
        self._inner = httpx.ASGITransport(app=app)
        self._down = range(down_from, down_until)
        self.requests = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        n = self.requests
        self.requests += 1
        if n in self._down:
            refused = ConnectionRefusedError(111, "Connect call failed ('127.0.0.1', 1)")
            raise httpx.ConnectError("All connection attempts failed", request=request) from refused
        return await self._inner.handle_async_request(request)


class FakeTime:
    """``sleep`` and ``monotonic`` of a replay, without waiting."""

    def __init__(self) -> None:
        self.now = 0.0

    async def sleep(self, seconds: float) -> None:
        self.now += seconds

    def monotonic(self) -> float:
        return self.now


@pytest.mark.parametrize(
    ("down_from", "down_until"), [(0, 40), (7, 30)], ids=["from the start", "mid-replay"]
)
async def test_an_unreachable_backend_is_reported_and_waited_for(
    app, recording, secrets, down_from, down_until
):
    transport = Unreachable(app, down_from, down_until)
    notices: list[str] = []
    time = FakeTime()
    async with httpx.AsyncClient(transport=transport) as client:
        result = await replay(
            recording,
            client,
            "http://bibo.test",
            secrets,
            sleep=time.sleep,
            monotonic=time.monotonic,
            notice=notices.append,
        )
    # Nothing is lost and no batch is blamed for the backend's absence.
    assert result.failures == []
    assert result.delivered == result.batches
    assert (
        notices[0] == "cannot reach http://bibo.test (connection refused); retrying (attempt 1)..."
    )
    attempts = [int(n.rsplit("attempt ", 1)[1].rstrip(".)")) for n in notices[:-1]]
    assert attempts == sorted(attempts)
    assert len(attempts) >= 2  # the count is updated while it lasts
    assert notices[-1].startswith("http://bibo.test answers (attempt ")
    assert all(n.count("\n") == 0 for n in notices)


def test_why_a_backend_is_unreachable():
    request = httpx.Request("GET", "http://bibo.test/v1/health")

    def wrapped(cause: BaseException) -> httpx.ConnectError:
        try:
            raise httpx.ConnectError("All connection attempts failed", request=request) from cause
        except httpx.ConnectError as exc:
            return exc

    assert unreachable_reason(wrapped(ConnectionRefusedError(111, "refused"))) == (
        "connection refused"
    )
    assert unreachable_reason(wrapped(socket.gaierror(-2, "Name or service not known"))) == (
        "unknown host name"
    )
    assert unreachable_reason(httpx.ConnectTimeout("", request=request)) == "no answer within 5 s"
    assert unreachable_reason(wrapped(OSError(113, "No route to host"))) == "no route to host"


async def test_a_backend_url_without_a_scheme_is_refused(recording, secrets):
    async with httpx.AsyncClient() as client:
        with pytest.raises(ReplayError, match="expected an http:// or https:// URL"):
            await replay(recording, client, "127.0.0.1:8000", secrets)
