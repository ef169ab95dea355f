"""The vehicle feed: the onboard computer's stop, door and journey events over local HTTP."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from onboard import wire
from onboard.const import FEED_MAX_BODY_BYTES
from onboard.feed import DoorState, FeedError, VehicleFeedServer, parse_messages, to_events
from tests.onboard.conftest import T0, Clock

STOP = "de:05974:1001"


@pytest.fixture
async def feed(clock: Clock):
    events: list[wire.Event] = []
    server = VehicleFeedServer(clock, "127.0.0.1", 0)
    task = asyncio.create_task(server.run(events.append))
    await server.ready.wait()
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.bound_port}") as client:
        yield server, client, events
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_a_stop_call_becomes_wire_events(feed, clock):
    server, client, events = feed
    messages = [
        {"version": 1, "type": "journey", "line": "R51", "journey_id": "R51-0712", "direction": 1},
        {"version": 1, "type": "arrival", "stop_id": STOP},
        {"version": 1, "type": "doors_open", "door": 1},
        {"version": 1, "type": "doors_open", "door": 2},
        {"version": 1, "type": "doors_closed", "door": 1},
        {"version": 1, "type": "doors_open", "door": 2},  # periodic re-send of the state
        {"version": 1, "type": "doors_closed", "door": 2, "t": T0 + 20_000},
        {"version": 1, "type": "departure", "stop_id": STOP, "t": T0 + 22_000},
    ]

    r = await client.post("/v1/events", json=messages)

    assert r.status_code == 202
    assert r.json() == {"accepted": 8, "events": 5}
    assert events == [
        wire.JourneyEvent(t=T0, line="R51", journey_id="R51-0712", direction=1),
        wire.ArrivalEvent(t=T0, stop_id=STOP),
        wire.DoorsOpenEvent(t=T0),
        wire.DoorsClosedEvent(t=T0 + 20_000),
        wire.DepartureEvent(t=T0 + 22_000, stop_id=STOP),
    ]
    assert (server.stats.requests, server.stats.messages, server.stats.events) == (1, 8, 5)


async def test_one_message_without_an_array_and_a_position(feed):
    _, client, events = feed

    r = await client.post(
        "/v1/events", json={"version": 1, "type": "position", "lat": 51.57, "lon": 8.1}
    )

    assert r.status_code == 202
    assert events == [wire.PositionEvent(t=T0, lat=51.57, lon=8.1)]


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ([{"version": 1, "type": "arrival", "stop_id": "Soest Bf"}], "messages[0].stop_id"),
        ([{"version": 2, "type": "doors_open"}], "messages[0].version"),
        ([{"version": 1, "type": "teleport"}], "messages[0]"),
        ([{"version": 1, "type": "arrival"}], "messages[0].stop_id"),
        (
            [
                {"version": 1, "type": "doors_open"},
                {"version": 1, "type": "doors_open", "door": 99},
            ],
            "messages[1].door",
        ),
        ([{"version": 1, "type": "doors_open", "t": -5}], "messages[0].t"),
        ([{"version": 1, "type": "doors_open", "colour": "red"}], "messages[0].colour"),
    ],
)
async def test_a_bad_message_is_refused_naming_the_field_and_nothing_is_taken(feed, body, needle):
    server, client, events = feed

    r = await client.post("/v1/events", json=body)

    assert r.status_code == 422
    assert needle in r.json()["detail"]
    assert events == []
    assert not server.doors.open_doors


async def test_not_json_too_large_wrong_path_and_method(feed):
    _, client, events = feed

    assert (await client.post("/v1/events", content=b"{nope")).status_code == 400
    big = b"[" + b" " * FEED_MAX_BODY_BYTES + b"]"
    assert (await client.post("/v1/events", content=big)).status_code == 413
    assert (await client.post("/v2/events", json=[])).status_code == 404
    assert (await client.get("/v1/events")).status_code == 405
    r = await client.get("/v1/health")
    assert (r.status_code, r.json()) == (200, {"status": "ok"})
    assert events == []


async def raw_request(port: int, data: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    await writer.drain()
    answer = await reader.read()
    writer.close()
    await writer.wait_closed()
    return answer


async def test_raw_protocol_errors_get_an_answer(feed):
    server, _, _ = feed
    port = server.bound_port

    no_length = await raw_request(port, b"POST /v1/events HTTP/1.1\r\nHost: x\r\n\r\n")
    assert no_length.startswith(b"HTTP/1.1 411 ")
    huge_header = await raw_request(port, b"GET / HTTP/1.1\r\nX: " + b"a" * 10_000 + b"\r\n\r\n")
    assert huge_header.startswith(b"HTTP/1.1 431 ")
    garbage = await raw_request(port, b"HELLO\r\n\r\n")
    assert garbage.startswith(b"HTTP/1.1 400 ")
    body = json.loads(garbage.split(b"\r\n\r\n", 1)[1])
    assert "request line" in body["detail"]


def test_door_state_merges_doors():
    doors = DoorState()

    assert doors.apply(1, is_open=True) is True
    assert doors.apply(2, is_open=True) is False
    assert doors.apply(1, is_open=False) is False
    assert doors.apply(2, is_open=False) is True
    assert doors.apply(3, is_open=False) is False
    assert doors.apply(None, is_open=True) is True
    assert doors.apply(2, is_open=False) is True  # a door report ends the "all doors" state


def test_parse_and_convert_without_a_server():
    messages = parse_messages(b'{"version": 1, "type": "doors_open"}')

    assert to_events(messages, T0, DoorState()) == [wire.DoorsOpenEvent(t=T0)]
    with pytest.raises(FeedError) as info:
        parse_messages(b"[1]")
    assert info.value.status == 422
