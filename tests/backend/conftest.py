"""Backend fixtures: a registered vehicle, phone and operator, and signed-upload helpers."""

from __future__ import annotations

import base64
import datetime as dt
import gzip
import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine

from backend.db import make_sessionmaker, transaction
from backend.ingest import service as ingest_service
from backend.operators import service as operators_service
from backend.passengers import service as passengers_service
from backend.trips import service as trips_service
from onboard import wire

T0 = 1_795_421_200_000  # Mon 2026-11-23 09:06:40 Europe/Berlin


@dataclass
class Vehicle:
    vehicle_id: str
    secret: bytes


@pytest.fixture
def vehicle(engine: Engine) -> Vehicle:
    with transaction(make_sessionmaker(engine)) as session:
        secret = ingest_service.register_vehicle(session, "RLG-4711")
    return Vehicle("RLG-4711", secret)


@pytest.fixture
def operator_token(engine: Engine) -> str:
    with transaction(make_sessionmaker(engine)) as session:
        return operators_service.register_operator(session, "Leitstelle Soest")


def batch_body(vehicle_id: str = "RLG-4711", seq: int = 1, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "version": 1,
        "vehicle_id": vehicle_id,
        "unit_id": "obu-4711-a",
        "boot_id": "5b0e1c1e-7d8a-4c2b-9a57-0f5f3a1f9e21",
        "seq": seq,
        "sent_at": T0 + 34_567,
        "window_ms": 1000,
        "events": [
            {"t": T0, "type": "position", "lat": 51.5711, "lon": 8.1057, "speed_mps": 8.3},
            {"t": T0 + 1000, "type": "arrival", "stop_id": "de:05974:1001"},
            {"t": T0 + 3000, "type": "doors_open"},
            {"t": T0 + 20000, "type": "doors_closed"},
            {"t": T0 + 22000, "type": "departure", "stop_id": "de:05974:1001"},
            {
                "t": T0 - 100000,
                "type": "journey",
                "line": "R61",
                "journey_id": "R61-0712",
                "direction": 1,
            },
        ],
        "sightings": {
            "t": [T0 + 1000, T0 + 1000, T0 + 2000],
            "token": ["3f1c" + "0" * 28, "9a0b" + "1" * 28, "3f1c" + "0" * 28],
            "rssi": [-61, -83, -59],
            "n": [4, 1, 5],
            "tx": [-8, -12, None],
        },
    }
    body.update(overrides)
    return body


async def post_batch(
    client: httpx.AsyncClient,
    vehicle: Vehicle,
    body: dict[str, Any] | bytes,
    *,
    compress: bool = False,
    timestamp_ms: int | None = None,
    secret: bytes | None = None,
    path_vehicle: str | None = None,
) -> httpx.Response:
    url = f"/v1/vehicles/{path_vehicle or vehicle.vehicle_id}/batches"
    return await signed_post(client, url, body, secret or vehicle.secret, compress, timestamp_ms)


async def signed_post(
    client: httpx.AsyncClient,
    url: str,
    body: dict[str, Any] | bytes,
    secret: bytes,
    compress: bool = False,
    timestamp_ms: int | None = None,
) -> httpx.Response:
    """An upload as the contract has it: JSON (gzip if ``compress``), signed with ``secret``
    at ``timestamp_ms`` (default now)."""
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {"Content-Type": "application/json"}
    if compress:
        raw = gzip.compress(raw)
        headers["Content-Encoding"] = "gzip"
    ts = timestamp_ms if timestamp_ms is not None else int(time.time() * 1000)
    headers[wire.TIMESTAMP_HEADER] = str(ts)
    headers[wire.SIGNATURE_HEADER] = wire.sign(secret, ts, raw)
    return await client.post(url, content=raw, headers=headers)


@dataclass
class Phone:
    """A registered device: its passenger, id and token key ``K``."""

    passenger_id: str
    token: str
    device_id: str
    device_key: bytes

    @property
    def upload_key(self) -> bytes:
        return wire.upload_key(self.device_key)

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def register_phone(engine: Engine) -> Phone:
    with transaction(make_sessionmaker(engine)) as session:
        passenger = passengers_service.register_passenger(session, "adult")
        device = passengers_service.register_device(session, passenger.passenger_id)
    key = base64.b64decode(device.device_key_b64)
    return Phone(passenger.passenger_id, passenger.token, device.device_id, key)


@pytest.fixture
def phone(engine: Engine) -> Phone:
    return register_phone(engine)


def beacon_at(vehicle_secret: bytes, t_ms: int, intervals_off: int = 0) -> tuple[int, int]:
    """The ``(major, minor)`` a vehicle advertises at ``t_ms`` (or that many intervals off)."""
    key = wire.beacon_key(vehicle_secret)
    return wire.beacon_for_interval(key, wire.interval_of(t_ms) + intervals_off)


def phone_body(
    phone: Phone, vehicle: Vehicle, batch_id: str = "0b6f7a52-2a4e", **overrides: Any
) -> dict[str, Any]:
    """A phone batch: two seconds of the vehicle's beacon and one foreign beacon, the region
    entered and the phone in a vehicle."""
    major, minor = beacon_at(vehicle.secret, T0)
    body: dict[str, Any] = {
        "version": 1,
        "device_id": phone.device_id,
        "batch_id": batch_id,
        "sent_at": T0 + 60_000,
        "platform": "ios",
        "beacons": {
            "t": [T0 + 1000, T0 + 2000, T0 + 2000],
            "major": [major, major, 4711],
            "minor": [minor, minor, 815],
            "rssi": [-71, -69, -90],
            "n": [1, 2, 1],
        },
        "regions": [{"t": T0 - 500, "type": "enter"}],
        "activity": [{"t": T0 - 10_000, "type": "automotive"}],
    }
    body.update(overrides)
    return body


async def post_sightings(
    client: httpx.AsyncClient,
    phone: Phone,
    body: dict[str, Any] | bytes,
    *,
    compress: bool = False,
    timestamp_ms: int | None = None,
    key: bytes | None = None,
    path_device: str | None = None,
) -> httpx.Response:
    """A phone upload signed with the device's upload key (or ``key``)."""
    url = f"/v1/devices/{path_device or phone.device_id}/sightings"
    return await signed_post(client, url, body, key or phone.upload_key, compress, timestamp_ms)


def new_boot_id() -> str:
    return str(uuid.uuid4())


@dataclass
class Rider:
    passenger_id: str
    token: str
    device_id: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


RIDE_STOPS = [f"de:05974:10{k:02d}" for k in range(1, 11)]
RIDE_DAYS = [dt.date(2026, 11, d) for d in (3, 4, 5)]


@pytest.fixture
async def riders(client, app, engine, vehicle) -> list[Rider]:
    """Passengers A (adult) and B (child), each riding Soest -> Lippstadt on three November
    mornings on the same bus; uploaded and reconciled."""
    import base64

    from backend.timeutil import service_day_bounds
    from tests.backend.synth import Rider as SynthRider
    from tests.backend.synth import journey_batches

    out = []
    keys = []
    with transaction(make_sessionmaker(engine)) as session:
        for category in ("adult", "child"):
            passenger = passengers_service.register_passenger(session, category)
            device = passengers_service.register_device(session, passenger.passenger_id)
            out.append(Rider(passenger.passenger_id, passenger.token, device.device_id))
            keys.append(base64.b64decode(device.device_key_b64))
    for n, day in enumerate(RIDE_DAYS):
        t0 = service_day_bounds(day)[0] + 4 * 3_600_000
        trips = [SynthRider(keys[0], 0, 8), SynthRider(keys[1], 1, 5)]
        for body in journey_batches(
            vehicle.vehicle_id,
            f"R61-{n}",
            RIDE_STOPS,
            t0,
            trips,
            boot_id=f"b{n}",
            chunk_ms=600_000,
        ):
            assert (await post_batch(client, vehicle, body)).status_code == 200
        state = app.state
        trips_service.reconcile_day(state.sessions, day, state.resolvers, state.clock)
    return out


@pytest.fixture
def operators(engine) -> dict[str, str]:
    """An API token per role."""
    with transaction(make_sessionmaker(engine)) as session:
        return {
            role: operators_service.register_operator(session, f"{role} one", role)
            for role in ("viewer", "agent", "admin")
        }
