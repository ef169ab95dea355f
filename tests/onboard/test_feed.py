"""The vehicle feed: the onboard computer's stop, door and journey events over local HTTP."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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


# --- values the upload format cannot carry ------------------------------------------------


@pytest.mark.parametrize(
    ("position", "needle"),
    [
        ({"lat": 51.5, "lon": 8.1, "speed_mps": 1e308}, "messages[0].speed_mps"),
        ({"lat": 51.5, "lon": 8.1, "speed_mps": 70.5}, "messages[0].speed_mps"),
        ({"lat": 51.5, "lon": 8.1, "speed_mps": -1}, "messages[0].speed_mps"),
        ({"lat": 90.5, "lon": 8.1}, "messages[0].lat"),
        ({"lat": 51.5, "lon": -180.5}, "messages[0].lon"),
        ({"lat": "51.5", "lon": 8.1}, "messages[0].lat"),
    ],
)
async def test_a_position_the_wire_format_refuses_is_refused_naming_the_field(
    feed, position, needle
):
    _, client, events = feed

    r = await client.post("/v1/events", json={"version": 1, "type": "position", **position})

    assert r.status_code == 422
    assert needle in r.json()["detail"]
    assert events == []


@pytest.mark.parametrize("value", ["Infinity", "-Infinity", "NaN"])
async def test_non_finite_numbers_are_refused(feed, value):
    _, client, events = feed
    body = '{"version": 1, "type": "position", "lat": 51.5, "lon": 8.1, "speed_mps": %s}'

    r = await client.post("/v1/events", content=(body % value).encode())

    assert r.status_code == 422
    assert "messages[0].speed_mps" in r.json()["detail"]
    assert events == []


@pytest.mark.parametrize(
    ("length", "status"),
    [("²", 400), ("１２", 400), ("-1", 400), ("1 2", 400), ("9" * 5000, 413), ("", 400)],
)
async def test_a_content_length_that_is_not_ascii_digits_gets_a_4xx(feed, length, status):
    server, _, events = feed
    request = f"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Length: {length}\r\n\r\n[]"

    answer = await raw_request(server.bound_port, request.encode("utf-8"))

    assert answer.startswith(f"HTTP/1.1 {status} ".encode())
    assert b"Content-Length" in answer.split(b"\r\n\r\n", 1)[1] or status == 413
    assert events == []


async def test_json_nested_too_deep_gets_a_400(feed):
    _, client, _ = feed

    r = await client.post("/v1/events", content=b"[" * 50_000)

    assert r.status_code == 400
    assert "nested too deep" in r.json()["detail"]


async def test_with_the_clock_not_set_a_message_without_t_is_refused_and_nothing_taken(feed, clock):
    server, client, events = feed
    clock.now = 5_000  # a unit whose real-time clock was never set
    body = [
        {"version": 1, "type": "doors_open", "t": T0},
        {"version": 1, "type": "arrival", "stop_id": STOP},
    ]

    r = await client.post("/v1/events", json=body)

    assert r.status_code == 503
    assert "clock is not set" in r.json()["detail"]
    assert events == []
    assert not server.doors.open_doors
    assert (server.stats.clock_invalid, server.stats.refused) == (1, 1)

    r = await client.post("/v1/events", json=body[:1])  # every message has its own time

    assert r.status_code == 202
    assert events == [wire.DoorsOpenEvent(t=T0)]


def test_to_events_never_raises_on_a_clock_not_set():
    messages = parse_messages(
        b'[{"version": 1, "type": "doors_open", "t": %d},'
        b' {"version": 1, "type": "doors_closed"}]' % T0
    )
    doors = DoorState()

    assert to_events(messages, 5_000, doors) == [wire.DoorsOpenEvent(t=T0)]
    assert doors.open_doors  # the skipped message without a time changed nothing


feed_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**64), 2**64),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.sampled_from([T0, STOP, "R51", 51.5, 8.1, 70.0, 1e308, wire.EARLIEST_EPOCH_MS - 1]),
)
feed_messages = st.fixed_dictionaries(
    {
        "version": st.sampled_from([1, 1, 2]),
        "type": st.sampled_from(
            ["arrival", "departure", "doors_open", "doors_closed", "journey", "position"]
        ),
    },
    optional=dict.fromkeys(
        ["t", "stop_id", "door", "line", "journey_id", "direction", "lat", "lon", "speed_mps"],
        feed_values,
    ),
)


@settings(max_examples=100, deadline=None)
@given(
    messages=st.lists(feed_messages, max_size=5),
    now=st.one_of(st.integers(0, 253_402_300_800_000), st.just(T0)),
)
def test_whatever_is_posted_the_events_are_valid_or_the_request_is_refused(messages, now):
    body = json.dumps(messages).encode()
    try:
        parsed = parse_messages(body)
    except FeedError as exc:
        refused = exc
    else:
        refused = None
    if refused is not None:
        assert refused.status in (400, 422)
        return
    for event in to_events(parsed, now, DoorState()):  # never raises
        type(event).model_validate(event.model_dump())
