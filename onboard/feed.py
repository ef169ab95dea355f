"""Stop, door and journey events from the vehicle's onboard computer, over a local HTTP JSON feed.

In the style of the ITxPT / VDV 301 (IBIS-IP) services a vehicle's onboard computer offers
on the vehicle LAN, but as one small endpoint the integrator's gateway posts to:

``POST /v1/events`` with ``Content-Type: application/json`` and a body that is one message
or a JSON array of messages (at most ``FEED_MAX_BODY_BYTES``). Every message has
``"version": 1``, a ``"type"`` and optionally ``"t"`` (UTC epoch ms; default: the moment the
agent received it)::

    {"version": 1, "type": "arrival",      "stop_id": "de:05974:1001"}
    {"version": 1, "type": "departure",    "stop_id": "de:05974:1001", "t": 1795421222000}
    {"version": 1, "type": "doors_open",   "door": 2}
    {"version": 1, "type": "doors_closed", "door": 2}
    {"version": 1, "type": "journey",      "line": "R51", "journey_id": "R51-0712", "direction": 1}
    {"version": 1, "type": "position",     "lat": 51.5711, "lon": 8.1057, "speed_mps": 8.3}

``stop_id`` is a German DHID (``de:<AGS>:<number>``). ``door`` (1-32, optional) reports one
door; the feed merges doors into the vehicle-level events of the upload format: the first
door to open gives ``doors_open``, the last to close ``doors_closed``, repeated states
(gateways often re-send state periodically) give nothing. Without ``door`` a message speaks
for all doors at once.

Answers: ``202 {"accepted": <messages>, "events": <events queued>}``; ``400`` for a body
that is not JSON or a ``Content-Length`` that is not ASCII digits; ``411`` without one;
``413`` when too large; ``422 {"detail": "<where>: <what is wrong>"}`` naming the first bad
field, such as a time outside 2020..2100 or a speed outside 0..70 m/s (a request is all or
nothing); ``503`` while the agent's clock is not set (before 2020) and a message has no
``"t"`` to stamp it with, so nothing of the request is taken: retry, or send ``"t"``;
``404``/``405`` otherwise.
``GET /v1/health`` answers ``200 {"status": "ok"}``. The feed has no authentication: it
listens on loopback by default, and on the vehicle LAN only when told to.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from onboard import wire
from onboard.const import FEED_MAX_BODY_BYTES, FEED_MAX_HEADER_BYTES, FEED_REQUEST_TIMEOUT_S
from onboard.vehicle import EventSink

_log = logging.getLogger(__name__)

FEED_PATH: Final = "/v1/events"
HEALTH_PATH: Final = "/v1/health"
FEED_VERSION: Final = 1
MAX_DOOR: Final = 32
_CONTENT_LENGTH: Final = re.compile(r"[0-9]+")
"""ASCII digits only: ``str.isdigit`` also takes "²" and other scripts' digits."""
_CONTENT_LENGTH_MAX_DIGITS: Final = 15
"""Longer lengths are refused as too large without ``int()`` (which fails over 4300 digits)."""


class _Message(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: Literal[1]
    t: wire.EpochMs | None = None


class _Arrival(_Message):
    type: Literal["arrival"]
    stop_id: wire.StopId


class _Departure(_Message):
    type: Literal["departure"]
    stop_id: wire.StopId


class _DoorsOpen(_Message):
    type: Literal["doors_open"]
    door: int | None = Field(default=None, ge=1, le=MAX_DOOR)


class _DoorsClosed(_Message):
    type: Literal["doors_closed"]
    door: int | None = Field(default=None, ge=1, le=MAX_DOOR)


class _Journey(_Message):
    type: Literal["journey"]
    line: wire.Identifier
    journey_id: wire.Identifier
    direction: int = Field(ge=0, le=1)


class _Position(_Message):
    type: Literal["position"]
    lat: wire.Latitude
    lon: wire.Longitude
    speed_mps: wire.SpeedMps | None = None


FeedMessage = Annotated[
    _Arrival | _Departure | _DoorsOpen | _DoorsClosed | _Journey | _Position,
    Field(discriminator="type"),
]
_MESSAGES: Final[TypeAdapter[list[FeedMessage]]] = TypeAdapter(list[FeedMessage])
_TYPE_TAGS: Final = frozenset(
    {"arrival", "departure", "doors_open", "doors_closed", "journey", "position"}
)


class FeedError(ValueError):
    """A refused feed request; ``status`` is the HTTP status, the message names the field."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def parse_messages(body: bytes) -> list[FeedMessage]:
    """Validate a request body (one message or an array); raises ``FeedError``."""
    try:
        parsed = json.loads(body)
    except ValueError as exc:
        raise FeedError(400, f"body: expected JSON, got a parse error: {exc}") from None
    except RecursionError:
        raise FeedError(400, "body: expected JSON, got arrays or objects nested too deep") from None
    items: Any = parsed if isinstance(parsed, list) else [parsed]
    try:
        return _MESSAGES.validate_python(items)
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        loc = list(err["loc"])
        index = loc.pop(0) if loc and isinstance(loc[0], int) else 0
        if loc and loc[0] in _TYPE_TAGS:  # pydantic puts the union member's tag in loc
            loc.pop(0)
        where = f"messages[{index}]" + "".join(f".{part}" for part in loc)
        got = err.get("input")
        shown = (
            ""
            if err["type"] == "missing" or isinstance(got, dict | list)
            else (f" (got {json.dumps(got)[:80]})")
        )
        raise FeedError(422, f"{where}: {err['msg']}{shown}") from None


class DoorState:
    """Merges per-door reports into vehicle-level ``doors_open``/``doors_closed`` changes."""

    _ALL: Final = 0

    def __init__(self) -> None:
        self.open_doors: set[int] = set()

    def apply(self, door: int | None, is_open: bool) -> bool:
        """Apply one report; ``True`` if the vehicle-level state changed (emit an event)."""
        was_open = bool(self.open_doors)
        if door is None:
            self.open_doors = {self._ALL} if is_open else set()
        elif is_open:
            self.open_doors.discard(self._ALL)
            self.open_doors.add(door)
        else:
            self.open_doors.discard(door)
            self.open_doors.discard(self._ALL)
        return bool(self.open_doors) != was_open


def clock_needed(messages: Sequence[FeedMessage], now_ms: int) -> bool:
    """Whether a message has no ``t`` and ``now_ms`` cannot stand in (a clock not set)."""
    clock_set = wire.EARLIEST_EPOCH_MS <= now_ms <= wire.LATEST_EPOCH_MS
    return not clock_set and any(m.t is None for m in messages)


def to_events(messages: Sequence[FeedMessage], now_ms: int, doors: DoorState) -> list[wire.Event]:
    """Wire events for validated messages received at ``now_ms``; updates ``doors``.

    Never raises: a message without ``t`` while ``now_ms`` is outside 2020..2100 (the clock
    is not set; see ``clock_needed``, which the server checks first) is skipped, doors and all.
    """
    events: list[wire.Event] = []
    clock_set = wire.EARLIEST_EPOCH_MS <= now_ms <= wire.LATEST_EPOCH_MS
    for m in messages:
        if m.t is None and not clock_set:
            continue
        t = now_ms if m.t is None else m.t
        if isinstance(m, _Arrival):
            events.append(wire.ArrivalEvent(t=t, stop_id=m.stop_id))
        elif isinstance(m, _Departure):
            events.append(wire.DepartureEvent(t=t, stop_id=m.stop_id))
        elif isinstance(m, _DoorsOpen):
            if doors.apply(m.door, is_open=True):
                events.append(wire.DoorsOpenEvent(t=t))
        elif isinstance(m, _DoorsClosed):
            if doors.apply(m.door, is_open=False):
                events.append(wire.DoorsClosedEvent(t=t))
        elif isinstance(m, _Journey):
            events.append(
                wire.JourneyEvent(t=t, line=m.line, journey_id=m.journey_id, direction=m.direction)
            )
        else:
            events.append(wire.PositionEvent(t=t, lat=m.lat, lon=m.lon, speed_mps=m.speed_mps))
    return events


@dataclass(slots=True)
class FeedStats:
    """Counters since start (not persisted)."""

    requests: int = 0
    messages: int = 0
    events: int = 0
    refused: int = 0
    clock_invalid: int = 0
    """Requests refused (503) because a message had no ``t`` and the clock was not set."""


_REASONS: Final = {
    200: "OK",
    202: "Accepted",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    411: "Length Required",
    413: "Content Too Large",
    422: "Unprocessable Content",
    431: "Request Header Fields Too Large",
    503: "Service Unavailable",
}


class VehicleFeedServer:
    """A ``VehicleSource`` listening for the onboard computer's posts at ``host:port``.

    ``clock`` is the agent's (epoch ms), stamping messages without ``t``. ``port`` 0 picks
    a free port; ``bound_port`` tells which once ``ready`` is set.
    """

    name = "vehicle-feed"

    def __init__(self, clock: Callable[[], int], host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port
        self._clock = clock
        self.doors = DoorState()
        self.stats = FeedStats()
        self.ready = asyncio.Event()
        self.bound_port: int | None = None
        self._emit: EventSink | None = None

    async def run(self, emit: EventSink) -> None:
        """Serve until cancelled."""
        self._emit = emit
        server = await asyncio.start_server(
            self._handle, self.host, self.port, limit=FEED_MAX_HEADER_BYTES
        )
        try:
            self.bound_port = int(server.sockets[0].getsockname()[1])
            _log.info(
                "vehicle feed listening on http://%s:%d%s", self.host, self.bound_port, FEED_PATH
            )
            self.ready.set()
            async with server:
                await server.serve_forever()
        finally:
            self.ready.clear()
            self._emit = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            try:
                async with asyncio.timeout(FEED_REQUEST_TIMEOUT_S):
                    status, answer = await self._request(reader)
            except TimeoutError:
                status, answer = 408, {"detail": "request not complete within the time limit"}
            except FeedError as exc:
                status, answer = exc.status, {"detail": str(exc)}
            if status >= 400:
                self.stats.refused += 1
            payload = json.dumps(answer).encode()
            head = (
                f"HTTP/1.1 {status} {_REASONS.get(status, '')}\r\n"
                "Content-Type: application/json\r\n"
                f"Content-Length: {len(payload)}\r\n"
                "Connection: close\r\n\r\n"
            )
            writer.write(head.encode("ascii") + payload)
            await writer.drain()
        except (ConnectionError, OSError):
            pass  # the client went away; nothing to answer
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()

    async def _request(self, reader: asyncio.StreamReader) -> tuple[int, dict[str, Any]]:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.LimitOverrunError:
            raise FeedError(431, "request line and headers exceed the limit") from None
        except asyncio.IncompleteReadError:
            raise FeedError(400, "incomplete request") from None
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) != 3:
            raise FeedError(400, f"request line: expected 'METHOD PATH HTTP/1.1', got {lines[0]!r}")
        method, path, _ = parts
        headers = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if sep:
                headers[name.strip().lower()] = value.strip()
        path = path.split("?", 1)[0]
        if path == HEALTH_PATH:
            if method != "GET":
                raise FeedError(405, f"{path}: use GET")
            return 200, {"status": "ok"}
        if path != FEED_PATH:
            raise FeedError(404, f"{path}: not found; post events to {FEED_PATH}")
        if method != "POST":
            raise FeedError(405, f"{path}: use POST")
        self.stats.requests += 1
        length = _content_length(headers.get("content-length"))
        if length > FEED_MAX_BODY_BYTES:
            raise FeedError(413, f"body: {length} bytes, at most {FEED_MAX_BODY_BYTES}")
        try:
            body = await reader.readexactly(length)
        except asyncio.IncompleteReadError:
            raise FeedError(400, "body shorter than Content-Length") from None
        messages = parse_messages(body)
        now = self._clock()
        if clock_needed(messages, now):
            self.stats.clock_invalid += 1
            raise FeedError(
                503,
                f"the unit's clock is not set (epoch ms {now}, before 2020 or after 2100), so a"
                ' message without "t" has no time; nothing was taken: retry later or send "t"',
            )
        events = to_events(messages, now, self.doors)
        if self._emit is not None:
            for event in events:
                self._emit(event)
        self.stats.messages += len(messages)
        self.stats.events += len(events)
        return 202, {"accepted": len(messages), "events": len(events)}


def _content_length(value: str | None) -> int:
    """The ``Content-Length`` header as bytes; raises ``FeedError`` (411, 400 or 413)."""
    if value is None:
        raise FeedError(411, "Content-Length: required (chunked bodies are not accepted)")
    if not _CONTENT_LENGTH.fullmatch(value):
        raise FeedError(400, f"Content-Length: expected ASCII digits, got {value[:40]!r}")
    if len(value) > _CONTENT_LENGTH_MAX_DIGITS:
        raise FeedError(413, f"body: {value[:40]}... bytes, at most {FEED_MAX_BODY_BYTES}")
    return int(value)
