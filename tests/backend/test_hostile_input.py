"""Hostile requests (issue 11) through the real app, on SQLite and PostgreSQL.

Whatever a client sends, the answer is never a server error: a refusal is a 4xx whose detail
names the field, it stores nothing, and the vehicle's next valid batch is accepted. The
generated batches are valid but for one mutated field (or one whole-body mutation), and
where the contract says what a field accepts, the answer must say exactly that.

Hypothesis drives sync tests; each request runs the app's ASGI interface on an event loop
of the test's own (hypothesis cannot drive async tests).
"""

from __future__ import annotations

import asyncio
import copy
import datetime as dt
import gzip
import hashlib
import hmac
import itertools
import json
import math
import re
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, assume, event, given, note, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, func, select

from backend import models
from backend.db import make_sessionmaker, transaction
from backend.passengers import service as passengers_service
from onboard import wire
from tests.backend.conftest import Vehicle, batch_body

PROPERTY = settings(
    max_examples=70,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# --- talking to the app --------------------------------------------------------------------


@dataclass
class Server:
    """The app on a loop of its own, a vehicle, and a fresh batch identity per call."""

    send: Callable[[str, str, bytes, list[tuple[bytes, bytes]]], httpx.Response]
    engine: Engine
    vehicle: Vehicle
    ids: Iterator[int]

    def body(self) -> dict[str, Any]:
        """A valid batch under an identity never used before (boot id and seq both new)."""
        n = next(self.ids)
        return batch_body(self.vehicle.vehicle_id, seq=n, boot_id=f"hostile-{n}")

    def upload(
        self,
        raw: bytes,
        *,
        headers: list[tuple[bytes, bytes]] | None = None,
        path_vehicle: str | None = None,
    ) -> httpx.Response:
        path_id = urllib.parse.quote(path_vehicle or self.vehicle.vehicle_id, safe="")
        return self.send(
            "POST",
            f"/v1/vehicles/{path_id}/batches",
            raw,
            headers if headers is not None else signed(self.vehicle.secret, raw),
        )

    def counts(self) -> tuple[int | None, ...]:
        with make_sessionmaker(self.engine)() as session:
            return tuple(
                session.scalar(select(func.count()).select_from(m))
                for m in (models.Batch, models.Sighting, models.VehicleEvent)
            )

    def next_valid_batch_is_accepted(self) -> None:
        response = self.upload(json.dumps(self.body()).encode())
        assert response.status_code == 200, response.text
        assert response.json()["duplicate"] is False


@pytest.fixture
def server(app, engine, vehicle) -> Iterator[Server]:
    loop = asyncio.new_event_loop()
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bibo.test")

    def send(
        method: str, path: str, raw: bytes, headers: list[tuple[bytes, bytes]]
    ) -> httpx.Response:
        return loop.run_until_complete(client.request(method, path, content=raw, headers=headers))

    try:
        yield Server(send, engine, vehicle, itertools.count(1))
    finally:
        loop.run_until_complete(client.aclose())
        loop.close()


def signed(
    secret: bytes,
    raw: bytes,
    *,
    timestamp: bytes | None = None,
    signature: bytes | None = None,
    encoding: bytes | None = None,
) -> list[tuple[bytes, bytes]]:
    """Request headers as bytes (a hostile client sends any bytes); signed over the
    timestamp exactly as sent unless ``signature`` is given."""
    ts = timestamp if timestamp is not None else str(int(time.time() * 1000)).encode()
    sig = signature or hmac.new(secret, ts + b"." + raw, hashlib.sha256).hexdigest().encode()
    headers = [
        (b"content-type", b"application/json"),
        (wire.TIMESTAMP_HEADER.encode(), ts),
        (wire.SIGNATURE_HEADER.encode(), sig),
    ]
    if encoding is not None:
        headers.append((b"content-encoding", encoding))
    return headers


def refused_storing_nothing(
    server, response: httpx.Response, before: object, name: str, status: int | None = None
) -> None:
    """Refused (with ``status``, if given) naming ``name``, nothing stored, and the next
    valid batch still accepted."""
    if status is not None:
        assert response.status_code == status, response.text
    assert_refused_naming(response, name)
    assert server.counts() == before
    server.next_valid_batch_is_accepted()


def assert_refused_naming(response: httpx.Response, name: str | int) -> None:
    """A 4xx whose detail names ``name``: in a ``loc`` (fields) or in the message (headers)."""
    assert 400 <= response.status_code < 500, (response.status_code, response.text)
    detail = response.json()["detail"]
    if isinstance(detail, str):
        assert str(name) in detail, detail
    else:
        locs = [d["loc"] for d in detail]
        assert any(name in loc for loc in locs), (name, detail)


# --- hostile values ------------------------------------------------------------------------


@dataclass(frozen=True)
class Raw:
    """A JSON token written as is (``1e400``, ``NaN``); ``value`` is what it parses to."""

    text: str
    value: Any


def encode(body: Any, *, ascii_only: bool = True) -> bytes:
    """JSON of ``body`` with every ``Raw`` written verbatim (Python writes inf/NaN as
    ``Infinity``/``NaN`` itself)."""
    raws: list[Raw] = []

    def swap(node: Any) -> Any:
        if isinstance(node, Raw):
            raws.append(node)
            return f"@@raw{len(raws) - 1}@@"
        if isinstance(node, dict):
            return {k: swap(v) for k, v in node.items()}
        if isinstance(node, list):
            return [swap(v) for v in node]
        return node

    text = json.dumps(swap(body), ensure_ascii=ascii_only)
    for k, raw in enumerate(raws):
        text = text.replace(f'"@@raw{k}@@"', raw.text)
    return text.encode("utf-8")


def year_ms(year: int) -> int:
    """January 1st of ``year`` (1-10000) at 00:00 UTC, in epoch ms."""
    if year == 10_000:
        return 253_402_300_800_000
    return (dt.date(year, 1, 1) - dt.date(1970, 1, 1)).days * 86_400_000


EDGE_INTS = [
    2**63,
    2**63 - 1,
    -(2**63),
    -(2**63) - 1,
    2**64,
    10**30,
    -(10**30),
    -1,
    0,
    1,
    599_999,
    wire.EARLIEST_EPOCH_MS - 1,
    wire.EARLIEST_EPOCH_MS,
    wire.LATEST_EPOCH_MS,
    wire.LATEST_EPOCH_MS + 1,
    10**18,
    10**20,
    -(10**20),
    2**31,
    2**31 - 1,
    32_768,
    -129,
    -128,
    -127,
    20,
    21,
    127,
    128,
    10_000,
    10_001,
    60_000,
    60_001,
]
TIMES = st.integers(1, 10_000).map(year_ms) | st.integers(-(10**20), 10**20)
EDGE_FLOATS = [math.inf, -math.inf, math.nan, 1e308, -1e308, -0.0, 0.0, 5e-324, 1.5]
EDGE_FLOATS += [70.0, 70.000001, 90.0, 90.000001, -180.0, -180.000001, 51.5711, 8.1057]
FLOATS = st.sampled_from(EDGE_FLOATS) | st.floats(allow_nan=True, allow_infinity=True)
RAWS = st.sampled_from(
    [
        Raw("1e400", math.inf),
        Raw("-1e400", -math.inf),
        Raw("Infinity", math.inf),
        Raw("-Infinity", -math.inf),
        Raw("NaN", math.nan),
        Raw("-0", 0),
        Raw("-0.0", -0.0),
        Raw("1E2", 100.0),
        Raw("1.0", 1.0),
        Raw("1795421200000.0", 1795421200000.0),
    ]
)
ODD_TEXT = [
    "",
    " ",
    "\x00",
    "RLG\x004711",
    "\x1f",
    "\x7f",
    "\x85",
    "\n",
    "\u200f",
    "RLG\u202e4711",
    "RLG\u200d4711",
    "\U0001f68c",
    "Bus-\u00fc",
    "x" * 64,
    "x" * 65,
    "x" * 200,
    "de:05974:" + "1" * 55,
    "de:05974:" + "1" * 200,
    "de:\u0660\u0665\u0669\u0667\u0664:1001",
    "de:05974:1001\x00",
    "de:05974:1001",
    "\uff32\uff2c\uff27",
    "3f1c" + "0" * 28,
    "3F1C" + "0" * 28,
    "1795421200000",
    "RLG-4711",
    "obu-4711-a",
]
TEXTS = st.sampled_from(ODD_TEXT) | st.text(max_size=80) | st.text(min_size=60, max_size=300)
OTHERS = st.sampled_from([None, True, False, [], {}, [1], {"t": 1}])
HOSTILE = st.one_of(st.sampled_from(EDGE_INTS), st.integers(), TIMES, FLOATS, RAWS, TEXTS, OTHERS)


# --- what each field accepts (docs/contracts.md, Vehicle upload; onboard/wire.py) ------

Oracle = Callable[[Any], bool | None]
"""True: must be accepted; False: must be refused; None: either (a 4xx must name the field)."""


def _plain(v: Any) -> Any:
    return v.value if isinstance(v, Raw) else v


def _strict_int(lo: int, hi: int) -> Oracle:
    return lambda v: type(_plain(v)) is int and lo <= _plain(v) <= hi


def _lax_int(lo: int, hi: int) -> Oracle:
    def accepts(v: Any) -> bool | None:
        v = _plain(v)
        if type(v) is int:
            return lo <= v <= hi
        if isinstance(v, float | str | bool):
            return None  # pydantic's lax int takes 1.0 and "1"
        return False

    return accepts


def _float(lo: float, hi: float, *, optional: bool = False) -> Oracle:
    def accepts(v: Any) -> bool:
        v = _plain(v)
        if v is None:
            return optional
        if type(v) not in (int, float):
            return False
        return math.isfinite(v) and lo <= v <= hi

    return accepts


def _time(v: Any) -> bool:
    return _strict_int(wire.EARLIEST_EPOCH_MS, wire.LATEST_EPOCH_MS)(v) is True


def _identifier(v: Any) -> bool | None:
    v = _plain(v)
    if not isinstance(v, str) or not 1 <= len(v) <= 64:
        return False
    if re.search(r"[\x00-\x1f\x7f-\x9f\s/]", v):
        return False
    return re.fullmatch(r"[A-Za-z0-9_.:-]+", v) is not None


def _pattern(pattern: str, max_chars: int = 64) -> Oracle:
    return lambda v: isinstance(v, str) and len(v) <= max_chars and bool(re.fullmatch(pattern, v))


def _version(v: Any) -> bool | None:
    v = _plain(v)
    if type(v) is int:
        return v == 1
    return None if v == 1 else False


FIELDS: list[tuple[tuple[str | int, ...], Oracle]] = [
    (("version",), _version),
    (("vehicle_id",), lambda v: v == "RLG-4711"),
    (("unit_id",), _identifier),
    (("boot_id",), _identifier),
    (("seq",), _strict_int(0, 2**63 - 1)),
    (("sent_at",), _time),
    (("window_ms",), _strict_int(1, 60_000)),
    (("events", 0, "t"), _time),
    (("events", 0, "lat"), _float(-90, 90)),
    (("events", 0, "lon"), _float(-180, 180)),
    (("events", 0, "speed_mps"), _float(0, 70, optional=True)),
    (("events", 1, "stop_id"), _pattern(r"de:[0-9]{5}:[0-9A-Za-z_:]+")),
    (("events", 3, "t"), _time),
    (("events", 5, "line"), _identifier),
    (("events", 5, "journey_id"), _identifier),
    (("events", 5, "direction"), _lax_int(0, 1)),
    (("sightings", "t", 0), _time),
    (("sightings", "token", 1), _pattern(r"[0-9a-f]{32}")),
    (("sightings", "rssi", 2), _strict_int(-127, 20)),
    (("sightings", "n", 0), _strict_int(1, wire.MAX_SIGHTING_N)),
    (("sightings", "tx", 1), lambda v: v is None or _strict_int(-128, 127)(v)),
]


def _set(body: dict[str, Any], path: tuple[str | int, ...], value: Any) -> None:
    node: Any = body
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value


def _field_name(path: tuple[str | int, ...]) -> str:
    return next(str(k) for k in reversed(path) if isinstance(k, str))


# --- properties ----------------------------------------------------------------------------


@PROPERTY
@given(field=st.sampled_from(FIELDS), value=HOSTILE, ascii_only=st.booleans())
def test_one_hostile_field_is_refused_naming_it_or_accepted_as_the_contract_says(
    server, field, value, ascii_only
):
    path, accepts = field
    note(f"{path} = {value!r}")  # this hypothesis build leaves the arguments out of its report
    body = server.body()
    _set(body, path, value)
    before = server.counts()
    response = server.upload(encode(body, ascii_only=ascii_only))
    expected = accepts(value)
    event(f"HTTP {response.status_code}, expected {expected}")
    assert response.status_code < 500, response.text
    if response.status_code == 200:
        assert expected is not False, f"{path} = {value!r} was accepted: {response.text}"
        assert response.json()["duplicate"] is False
    else:
        assert expected is not True, f"{path} = {value!r} was refused: {response.text}"
        assert response.status_code == 422, response.text
        assert_refused_naming(response, _field_name(path))
        assert server.counts() == before
    server.next_valid_batch_is_accepted()


@dataclass(frozen=True)
class Mutation:
    """A whole-body mutation: what it does (for hypothesis' report), the bytes and headers it
    sends, and the name the refusal must carry."""

    what: str
    make: Callable[[dict[str, Any], bytes], tuple[bytes, bytes | None]]
    name: str | int

    def __repr__(self) -> str:
        return f"Mutation({self.what})"


_TOP_KEYS = ["version", "vehicle_id", "unit_id", "boot_id", "seq", "sent_at", "window_ms"]
_EVENT_KEYS = {0: ["t", "lat", "lon", "type"], 1: ["t", "stop_id"], 5: ["line", "direction"]}
_COLUMNS = ["t", "token", "rssi", "n", "tx"]
_VALID_CELL = {"t": 1_795_421_200_000, "token": "ab" * 16, "rssi": -60, "n": 1, "tx": None}


def _json(f: Callable[[dict[str, Any]], Any]) -> Callable[[dict[str, Any], bytes], Any]:
    """A mutation of the parsed body, sent as plain JSON."""

    def make(body: dict[str, Any], _raw: bytes) -> tuple[bytes, None]:
        body = copy.deepcopy(body)
        return encode(f(body) or body), None

    return make


def _without(path: tuple[str | int, ...]) -> Callable[[dict[str, Any]], None]:
    def drop(body: dict[str, Any]) -> None:
        node: Any = body
        for key in path[:-1]:
            node = node[key]
        del node[path[-1]]

    return drop


def _with(path: tuple[str | int, ...], value: Any) -> Callable[[dict[str, Any]], None]:
    return lambda body: _set(body, path, value)


@st.composite
def whole_body_mutations(draw: st.DrawFn) -> Mutation:
    kind = draw(
        st.sampled_from(
            ["bytes", "gzip", "missing", "extra", "lengths", "container", "huge", "nested"]
        )
    )
    if kind == "bytes":
        data = draw(
            st.sampled_from(
                [b"", b"{", b"}", b"null", b"[]", b'"batch"', b"1", b"\xff\xfe\x00", b"{'a': 1}"]
            )
            | st.binary(max_size=120)
        )
        return Mutation(f"body {data[:30]!r}", lambda _b, _r: (data, None), "body")
    if kind == "gzip":
        how = draw(st.sampled_from(["plain", "truncated", "garbage", "flipped", "no trailer"]))
        cut = draw(st.integers(1, 60))

        def gz(_body: dict[str, Any], raw: bytes) -> tuple[bytes, bytes]:
            packed = gzip.compress(raw)
            at = 10 + cut  # past the 10-byte header (a flipped mtime would not matter)
            data = {
                "plain": raw,
                "truncated": packed[: max(1, len(packed) - cut)],
                "garbage": gzip.compress(b"\x00\xff" * cut),
                "flipped": packed[:at] + bytes([packed[at] ^ 0xFF]) + packed[at + 1 :],
                "no trailer": packed[:-8],
            }[how]
            return data, b"gzip"

        # A gzip stream that is not one is 400 "body is not gzip"; one that decodes to
        # something else is 422 for the body.
        return Mutation(f"gzip {how} {cut}", gz, "body" if how == "garbage" else "gzip")
    if kind == "missing":
        if draw(st.booleans()):
            key = draw(st.sampled_from(_TOP_KEYS))
            return Mutation(f"no {key}", _json(_without((key,))), key)
        index = draw(st.sampled_from(sorted(_EVENT_KEYS)))
        key = draw(st.sampled_from(_EVENT_KEYS[index]))
        return Mutation(
            f"event {index} without {key}", _json(_without(("events", index, key))), key
        )
    if kind == "extra":
        known = {"type", "t", "lat", "lon", "speed_mps", *_TOP_KEYS, "events", "sightings"}
        key = draw(
            st.sampled_from(["extra", "Seq", "seq ", "\x00", "\u00e9v\u00e9nement", "t\u200f"])
            | st.text(min_size=1, max_size=12)
        )
        assume(key not in known and key not in _COLUMNS)
        where: tuple[str | int, ...] = draw(st.sampled_from([(), ("events", 0), ("sightings",)]))
        return Mutation(f"extra {key!r} at {where}", _json(_with((*where, key), 1)), key)
    if kind == "lengths":
        column = draw(st.sampled_from(_COLUMNS))
        grow = draw(st.booleans())

        def lengths(body: dict[str, Any]) -> None:
            cells = body["sightings"][column]
            if grow:
                cells.append(_VALID_CELL[column])
            else:
                cells.pop()

        return Mutation(f"{column} {'longer' if grow else 'shorter'}", _json(lengths), "sightings")
    if kind == "container":
        path, value = draw(
            st.sampled_from(
                [
                    (("events",), {}),
                    (("events",), "x"),
                    (("events",), None),
                    (("events",), 5),
                    (("events", 2), []),
                    (("events", 2), "doors_open"),
                    (("events", 2), None),
                    (("sightings",), []),
                    (("sightings",), None),
                    (("sightings",), "x"),
                    (("sightings", "t"), 5),
                    (("sightings", "t"), None),
                    (("sightings", "token"), "ab" * 16),
                    (("sightings", "rssi"), {"0": -60}),
                ]
            )
        )
        return Mutation(f"{path} = {value!r}", _json(_with(path, value)), _field_name(path))
    if kind == "huge":
        digits = draw(st.sampled_from([40, 400, 4000, 5000, 20_000]))
        path = draw(st.sampled_from([("seq",), ("sent_at",), ("sightings", "n", 0)]))
        big = Raw("9" * digits, math.inf)
        # Beyond ~4,300 digits the JSON parser gives up on the number: the body is refused.
        name = _field_name(path) if digits <= 4000 else "body"
        return Mutation(f"{path} with {digits} digits", _json(_with(path, big)), name)
    depth = draw(st.sampled_from([2, 50, 1000, 50_000]))
    deep = Raw("[" * depth + "]" * depth, None)
    # Beyond a few hundred levels the JSON parser gives up: the body is refused.
    name = "events" if depth <= 50 else "body"
    return Mutation(f"events nested {depth} deep", _json(_with(("events",), deep)), name)


@PROPERTY
@given(mutation=whole_body_mutations())
def test_a_malformed_body_is_refused_and_stores_nothing(server, mutation):
    note(repr(mutation))
    body = server.body()
    raw, encoding = mutation.make(body, encode(body))
    before = server.counts()
    response = server.upload(raw, headers=signed(server.vehicle.secret, raw, encoding=encoding))
    event(f"HTTP {response.status_code}")
    refused_storing_nothing(server, response, before, mutation.name)


OTHER_DIGITS = st.characters(categories=["Nd", "No", "Nl"]).filter(lambda c: not "0" <= c <= "9")


@st.composite
def hostile_timestamps(draw: st.DrawFn) -> str:
    now = str(int(time.time() * 1000))
    kind = draw(st.sampled_from(["other digits", "one replaced", "text"]))
    if kind == "other digits":
        return draw(st.text(OTHER_DIGITS, min_size=1, max_size=16))
    if kind == "one replaced":
        at = draw(st.integers(0, len(now) - 1))
        return now[:at] + draw(OTHER_DIGITS | st.sampled_from("\u00b2\u00b3\u00b9")) + now[at + 1 :]
    return draw(
        st.text(st.characters(exclude_categories=["Cc", "Cs", "Zs", "Zl", "Zp"]), min_size=1)
    )


def _header_bytes(text: str, latin1: bool) -> bytes:
    """What a client puts on the wire; the server reads header bytes as latin-1."""
    if latin1:
        try:
            return text.encode("latin-1")
        except UnicodeEncodeError:
            pass
    return text.encode("utf-8")


@PROPERTY
@given(timestamp=hostile_timestamps(), latin1=st.booleans())
def test_a_timestamp_that_is_not_ascii_digits_is_401_naming_the_header(server, timestamp, latin1):
    sent = _header_bytes(timestamp, latin1)
    note(f"{wire.TIMESTAMP_HEADER}: {sent!r}")
    assume(not re.fullmatch(rb"[0-9]+", sent))
    raw = encode(server.body())
    before = server.counts()
    response = server.upload(raw, headers=signed(server.vehicle.secret, raw, timestamp=sent))
    refused_storing_nothing(server, response, before, wire.TIMESTAMP_HEADER, status=401)


@PROPERTY
@given(
    signature=st.text(st.characters(exclude_categories=["Cc", "Cs", "Zs", "Zl", "Zp"]), min_size=1)
    | st.sampled_from(["\u00e9" * 64, "\u0660" * 64, "g" * 64, "0" * 63, "0" * 65]),
    latin1=st.booleans(),
)
def test_a_malformed_signature_is_401_naming_the_header(server, signature, latin1):
    raw = encode(server.body())
    before = server.counts()
    sent = _header_bytes(signature, latin1)
    note(f"{wire.SIGNATURE_HEADER}: {sent!r}")
    response = server.upload(raw, headers=signed(server.vehicle.secret, raw, signature=sent))
    refused_storing_nothing(server, response, before, wire.SIGNATURE_HEADER, status=401)


@PROPERTY
@given(vehicle_id=TEXTS)
def test_a_hostile_vehicle_id_in_the_path_is_422_or_the_unknown_vehicles_401(server, vehicle_id):
    assume(vehicle_id not in ("", ".", "..", "RLG-4711") and "/" not in vehicle_id)
    note(f"vehicle_id {vehicle_id!r}")
    raw = encode(server.body())
    before = server.counts()
    response = server.upload(raw, path_vehicle=vehicle_id)
    valid = _identifier(vehicle_id)
    assert response.status_code in {True: (401,), False: (422,), None: (401, 422)}[valid]
    if response.status_code == 422:
        assert response.json()["detail"][0]["loc"] == ["path", "vehicle_id"]
    else:
        assert response.json()["detail"] == f"{wire.SIGNATURE_HEADER} does not match the body"
    assert server.counts() == before
    server.next_valid_batch_is_accepted()


# --- the OpenAPI schema shows the bounds -----------------------------------------------------


async def test_the_openapi_schema_shows_the_upload_bounds(client):
    doc = (await client.get("/openapi.json")).json()
    op = doc["paths"]["/v1/vehicles/{vehicle_id}/batches"]["post"]
    (path_param,) = [p for p in op["parameters"] if p["in"] == "path"]
    assert path_param["schema"]["maxLength"] == 64
    assert path_param["schema"]["pattern"] == wire.IDENTIFIER_PATTERN
    batch = op["requestBody"]["content"]["application/json"]["schema"]
    defs = batch["$defs"]
    assert batch["properties"]["seq"]["maximum"] == 2**63 - 1
    assert batch["properties"]["sent_at"]["minimum"] == wire.EARLIEST_EPOCH_MS
    assert batch["properties"]["boot_id"]["maxLength"] == 64
    sightings = defs["Sightings"]["properties"]
    assert sightings["t"]["items"]["minimum"] == wire.EARLIEST_EPOCH_MS
    assert sightings["t"]["items"]["maximum"] == wire.LATEST_EPOCH_MS
    assert sightings["n"]["items"]["maximum"] == wire.MAX_SIGHTING_N
    position = defs["PositionEvent"]["properties"]
    assert position["speed_mps"]["anyOf"][0]["maximum"] == wire.MAX_SPEED_MPS
    assert position["lat"]["minimum"] == -90
    assert defs["ArrivalEvent"]["properties"]["stop_id"]["maxLength"] == 64


async def test_the_openapi_schema_shows_the_passenger_route_bounds(client):
    doc = (await client.get("/openapi.json")).json()
    op = doc["paths"]["/v1/passengers/{passenger_id}/trips/{trip_id}/disputes"]["post"]
    params = {p["name"]: p["schema"] for p in op["parameters"] if p["in"] == "path"}
    assert params["passenger_id"]["maxLength"] == params["trip_id"]["maxLength"] == 40
    reason = doc["components"]["schemas"]["DisputeIn"]["properties"]["reason"]
    assert reason["maxLength"] == 1000
    assert "pattern" in reason


# --- the passenger routes ------------------------------------------------------------------


@pytest.fixture
def passenger(engine) -> tuple[str, dict[str, str]]:
    with transaction(make_sessionmaker(engine)) as session:
        p = passengers_service.register_passenger(session, "adult")
    return p.passenger_id, {"Authorization": f"Bearer {p.token}"}


@pytest.mark.parametrize("passenger_id", ["pas%00x", "p" * 41, "pas%E2%80%AEx", "pas%20x"])
async def test_a_malformed_passenger_id_is_422_naming_it(client, passenger, passenger_id):
    _, auth = passenger
    for method, path in [("GET", "/trips"), ("GET", "/status"), ("DELETE", "")]:
        r = await client.request(method, f"/v1/passengers/{passenger_id}{path}", headers=auth)
        assert r.status_code == 422, r.text
        assert r.json()["detail"][0]["loc"] == ["path", "passenger_id"]


async def test_a_malformed_passenger_id_without_credentials_is_still_401(client):
    r = await client.get("/v1/passengers/pas%00x/trips")
    assert r.status_code == 401


@pytest.mark.parametrize("trip_id", ["trp%00x", "t" * 41, "trp%E2%80%8Fx"])
async def test_a_malformed_trip_id_is_422_naming_it(client, passenger, trip_id):
    me, auth = passenger
    r = await client.post(
        f"/v1/passengers/{me}/trips/{trip_id}/disputes", json={"reason": "not me"}, headers=auth
    )
    assert r.status_code == 422, r.text
    assert r.json()["detail"][0]["loc"] == ["path", "trip_id"]


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"reason": "not me\x00"}, ["body", "reason"]),
        ({"reason": "not \x1b[31mme"}, ["body", "reason"]),
        ({"reason": "not me\x85"}, ["body", "reason"]),
        ({"reason": "x" * 1001}, ["body", "reason"]),
        ({"reason": "not me", "refund": True}, ["body", "refund"]),
    ],
)
async def test_a_hostile_dispute_is_422_naming_the_field(client, engine, passenger, body, loc):
    me, auth = passenger
    r = await client.post(f"/v1/passengers/{me}/trips/trp_x/disputes", json=body, headers=auth)
    assert r.status_code == 422, r.text
    assert r.json()["detail"][0]["loc"] == loc
    with make_sessionmaker(engine)() as session:
        assert session.scalar(select(func.count()).select_from(models.Dispute)) == 0


async def test_a_dispute_may_have_line_breaks_and_tabs(client, passenger):
    me, auth = passenger
    r = await client.post(
        f"/v1/passengers/{me}/trips/trp_x/disputes",
        json={"reason": "I was not on\nthat bus:\tI was at work."},
        headers=auth,
    )
    assert r.status_code == 404  # valid, but there is no such trip


@pytest.mark.parametrize("month", ["2\u0660\u0662\u0666-11", "2\uff10\uff12\uff16-11", "2026-13"])
async def test_a_month_in_other_digits_is_422_naming_it(client, passenger, month):
    me, auth = passenger
    for path in ("/trips", "/balance"):
        r = await client.get(f"/v1/passengers/{me}{path}", params={"month": month}, headers=auth)
        assert r.status_code == 422, r.text
        assert r.json()["detail"][0]["loc"] == ["query", "month"]


PASSENGER_INPUTS = st.sampled_from(["month", "passenger_id", "trip_id", "reason", "invoice_id"])


@PROPERTY
@given(where=PASSENGER_INPUTS, value=TEXTS | st.sampled_from(["2026-11", "2\u0660\u0662\u0666-11"]))
def test_hostile_passenger_input_is_refused_naming_it(server, passenger, where, value):
    note(f"{where} = {value!r}")
    me, auth = passenger
    headers = [(k.lower().encode(), v.encode()) for k, v in auth.items()]
    headers.append((b"content-type", b"application/json"))
    quoted = urllib.parse.quote(value, safe="")
    # A path parameter cannot hold "/" (the server decodes %2F before routing: another path).
    assume(
        where not in ("passenger_id", "trip_id", "invoice_id")
        or (quoted not in ("", ".", "..") and "/" not in value)
    )
    method, path, body = "GET", f"/v1/passengers/{me}/trips", b""
    if where == "month":
        path += "?" + urllib.parse.urlencode({"month": value})
    elif where == "passenger_id":
        path = f"/v1/passengers/{quoted}/status"
    elif where == "invoice_id":
        path = f"/v1/passengers/{me}/invoices/{quoted}"
    else:
        method = "POST"
        trip = quoted if where == "trip_id" else "trp_x"
        path = f"/v1/passengers/{me}/trips/{trip}/disputes"
        body = encode({"reason": value if where == "reason" else "not me"}, ascii_only=False)
    response = server.send(method, path, body, headers)
    assert response.status_code < 500, response.text
    if response.status_code == 422:
        assert_refused_naming(response, where)
    else:
        # Valid input: an answer for the caller's own data, or "no such trip/invoice".
        assert response.status_code in (200, 404), response.text
