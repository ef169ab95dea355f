"""Hostile phone uploads (issue 14) through the real app, on SQLite and PostgreSQL, in the
manner of the vehicle upload's (``test_hostile_input``): whatever a phone sends, the answer
is never a server error; a refusal is a 4xx whose detail names the field and stores nothing,
and the phone's next valid batch is accepted.
"""

from __future__ import annotations

import copy
import gzip
import itertools
import json
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from hypothesis import assume, event, given, note
from hypothesis import strategies as st
from sqlalchemy import func, select

from backend import models
from backend.limits import RateLimiter
from onboard import wire
from tests.backend.conftest import T0, Phone, phone_body
from tests.backend.test_hostile_input import (  # the app on a loop of its own: ``server``
    HOSTILE,
    PROPERTY,
    TEXTS,
    Oracle,
    Raw,
    _field_name,
    _identifier,
    _plain,
    _set,
    _strict_int,
    _time,
    _version,
    assert_refused_naming,
    encode,
    server,  # noqa: F401
    signed,
)


@dataclass
class Phones:
    """The app, a phone and a fresh batch id per call."""

    send: Callable[[str, str, bytes, list[tuple[bytes, bytes]]], httpx.Response]
    engine: Any
    phone: Phone
    vehicle: Any
    ids: itertools.count[int]

    def body(self) -> dict[str, Any]:
        return phone_body(self.phone, self.vehicle, batch_id=f"hostile-{next(self.ids)}")

    def upload(
        self, raw: bytes, headers: list[tuple[bytes, bytes]] | None = None, path: str | None = None
    ) -> httpx.Response:
        return self.send(
            "POST",
            f"/v1/devices/{path or self.phone.device_id}/sightings",
            raw,
            headers if headers is not None else signed(self.phone.upload_key, raw),
        )

    def counts(self) -> tuple[int | None, ...]:
        with self.engine.connect() as conn:
            return tuple(
                conn.scalar(select(func.count()).select_from(m.__table__))
                for m in (models.PhoneBatch, models.BeaconSighting, models.PhoneActivityEvent)
            )

    def refused_storing_nothing(
        self, response: httpx.Response, before: object, name: str | int
    ) -> None:
        assert_refused_naming(response, name)
        assert self.counts() == before
        accepted = self.upload(json.dumps(self.body()).encode())
        assert accepted.status_code == 200, accepted.text
        assert accepted.json()["duplicate"] is False


@pytest.fixture
def phones(server, app, phone) -> Phones:  # noqa: F811
    # A property uploads far more than a phone's allowance; the limit has its own test.
    app.state.phone_limiter = RateLimiter(1e9, 1e9, lambda: 0.0)
    return Phones(server.send, server.engine, phone, server.vehicle, itertools.count(1))


def _platform(v: Any) -> bool:
    return _plain(v) in ("ios", "android")


def _one_of(*values: str) -> Oracle:
    return lambda v: isinstance(v, str) and v in values


FIELDS: list[tuple[tuple[str | int, ...], Oracle]] = [
    (("version",), _version),
    (("device_id",), lambda v: False),  # the URL names the phone: any other id is refused
    (("batch_id",), _identifier),
    (("sent_at",), _time),
    (("platform",), _platform),
    (("beacons", "t", 0), _time),
    (("beacons", "major", 1), _strict_int(0, 0xFFFF)),
    (("beacons", "minor", 2), _strict_int(0, 0xFFFF)),
    (("beacons", "rssi", 0), _strict_int(-127, 20)),
    (("beacons", "n", 1), _strict_int(1, wire.MAX_SIGHTING_N)),
    (("regions", 0, "t"), _time),
    (("regions", 0, "type"), _one_of("enter", "exit")),
    (("activity", 0, "t"), _time),
    (("activity", 0, "type"), _one_of("automotive", "walking", "stationary", "cycling", "unknown")),
]


@PROPERTY
@given(field=st.sampled_from(FIELDS), value=HOSTILE, ascii_only=st.booleans())
def test_one_hostile_field_is_refused_naming_it_or_accepted_as_the_contract_says(
    phones, field, value, ascii_only
):
    path, accepts = field
    note(f"{path} = {value!r}")
    body = phones.body()
    if path == ("device_id",):
        assume(_plain(value) != phones.phone.device_id)
    _set(body, path, value)
    before = phones.counts()
    response = phones.upload(encode(body, ascii_only=ascii_only))
    expected = accepts(value)
    event(f"HTTP {response.status_code}, expected {expected}")
    assert response.status_code < 500, response.text
    if response.status_code == 200:
        assert expected is not False, f"{path} = {value!r} was accepted: {response.text}"
        assert response.json()["duplicate"] is False
        accepted = phones.upload(json.dumps(phones.body()).encode())
        assert accepted.status_code == 200, accepted.text
    else:
        assert expected is not True, f"{path} = {value!r} was refused: {response.text}"
        assert response.status_code == 422, response.text
        phones.refused_storing_nothing(response, before, _field_name(path))


_COLUMNS = ["t", "major", "minor", "rssi", "n"]
_VALID_CELL = {"t": T0, "major": 1, "minor": 2, "rssi": -60, "n": 1}
_TOP_KEYS = ["version", "device_id", "batch_id", "sent_at", "platform"]


@st.composite
def whole_body_mutations(draw: st.DrawFn) -> tuple[str, Callable[[dict[str, Any]], Any], str]:
    """(what, mutate the parsed body or return raw bytes, the name its refusal carries)."""
    kind = draw(st.sampled_from(["bytes", "missing", "extra", "lengths", "container", "huge"]))
    if kind == "bytes":
        data = draw(st.sampled_from([b"", b"{", b"null", b"[]", b"\xff\xfe"]) | st.binary())
        return f"body {data[:30]!r}", lambda _body: data, "body"
    if kind == "missing":
        key = draw(st.sampled_from(_TOP_KEYS))
        return f"no {key}", lambda body: body.pop(key), key
    if kind == "extra":
        key = draw(st.sampled_from(["extra", "Batch_id", "\x00"]) | st.text(min_size=1))
        assume(key not in {*_TOP_KEYS, "beacons", "regions", "activity", *_COLUMNS, "type"})
        where: tuple[str | int, ...] = draw(st.sampled_from([(), ("beacons",), ("regions", 0)]))
        return f"extra {key!r} at {where}", lambda body: _set(body, (*where, key), 1), key
    if kind == "lengths":
        column = draw(st.sampled_from(_COLUMNS))
        return (
            f"{column} longer",
            lambda body: body["beacons"][column].append(_VALID_CELL[column]),
            "beacons",
        )
    if kind == "container":
        path, value = draw(
            st.sampled_from(
                [
                    (("beacons",), []),
                    (("beacons",), None),
                    (("beacons", "t"), 5),
                    (("beacons", "major"), {"0": 1}),
                    (("regions",), {}),
                    (("regions", 0), "enter"),
                    (("activity",), "automotive"),
                    (("activity", 0), None),
                ]
            )
        )
        return f"{path} = {value!r}", lambda body: _set(body, path, value), _field_name(path)
    digits = draw(st.sampled_from([40, 400, 4000, 5000]))
    path = draw(st.sampled_from([("sent_at",), ("beacons", "major", 0)]))
    name = _field_name(path) if digits <= 4000 else "body"
    return f"{path} with {digits} digits", lambda b: _set(b, path, Raw("9" * digits, 0)), name


@PROPERTY
@given(mutation=whole_body_mutations(), compress=st.booleans())
def test_a_malformed_body_is_refused_and_stores_nothing(phones, mutation, compress):
    what, mutate, name = mutation
    note(what)
    body = copy.deepcopy(phones.body())
    result = mutate(body)
    raw = result if isinstance(result, bytes) else encode(body)
    encoding = None
    if compress:
        raw, encoding = gzip.compress(raw), b"gzip"
    before = phones.counts()
    response = phones.upload(raw, signed(phones.phone.upload_key, raw, encoding=encoding))
    event(f"HTTP {response.status_code}")
    phones.refused_storing_nothing(response, before, name)


@PROPERTY
@given(device_id=TEXTS)
def test_a_hostile_device_id_in_the_path_is_422_or_the_unknown_devices_401(phones, device_id):
    assume(device_id not in ("", ".", "..", phones.phone.device_id) and "/" not in device_id)
    note(f"device_id {device_id!r}")
    raw = encode(phones.body())
    before = phones.counts()
    response = phones.upload(raw, path=urllib.parse.quote(device_id, safe=""))
    assert response.status_code in (401, 422), response.text
    if response.status_code == 422:
        assert response.json()["detail"][0]["loc"] == ["path", "device_id"]
    else:
        assert response.json()["detail"] == f"{wire.SIGNATURE_HEADER} does not match the body"
    phones.refused_storing_nothing(
        response, before, "device_id" if response.status_code == 422 else wire.SIGNATURE_HEADER
    )
