"""Backend services: registration, reconciliation and charges. They load through the
repository, call the pure cores (reconciliation, fare engine) and store; callers commit."""

from __future__ import annotations

import base64
import datetime as dt
from collections import defaultdict
from dataclasses import dataclass
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy.orm import Session

import fare_engine
from backend import repository
from backend.reconciliation import VehicleObservations, reconcile
from backend.resolution import UNRESOLVED, TokenResolver
from backend.security import new_api_token, new_id, new_secret, token_hash
from backend.timeutil import service_day_bounds
from onboard.wire import DEVICE_KEY_BYTES

RiderCategory = Literal["adult", "child", "infant"]


def register_vehicle(session: Session, vehicle_id: str) -> bytes:
    """Register a vehicle and return its upload secret (shown once)."""
    secret = new_secret()
    repository.add_vehicle(session, vehicle_id, secret)
    return secret


def register_operator(session: Session, name: str) -> str:
    """Create an operator and return its API token (only its hash is stored)."""
    token = new_api_token("op")
    repository.add_operator(session, name, token_hash(token))
    return token


@dataclass(frozen=True)
class NewPassenger:
    passenger_id: str
    token: str


def register_passenger(session: Session, rider_category: str) -> NewPassenger:
    passenger = NewPassenger(passenger_id=new_id("pas"), token=new_api_token("pt"))
    repository.add_passenger(
        session, passenger.passenger_id, rider_category, token_hash(passenger.token)
    )
    return passenger


@dataclass(frozen=True)
class NewDevice:
    device_id: str
    device_key_b64: str


def register_device(session: Session, passenger_id: str) -> NewDevice:
    key = new_secret()
    device_id = new_id("dev")
    repository.add_device(session, device_id, passenger_id, key)
    return NewDevice(device_id=device_id, device_key_b64=base64.b64encode(key).decode("ascii"))


class DeviceImport(BaseModel):
    """One device in a ``bibo devices import`` file (simulations, migrations)."""

    model_config = ConfigDict(extra="forbid")

    passenger_id: str = Field(min_length=1, max_length=40)
    device_id: str = Field(min_length=1, max_length=40)
    rider_category: RiderCategory
    device_key: str = Field(description="base64 of the 32-byte device key")

    @field_validator("device_key")
    @classmethod
    def _key_is_32_bytes(cls, value: str) -> str:
        try:
            raw = base64.b64decode(value, validate=True)
        except ValueError:
            raise ValueError("expected base64") from None
        if len(raw) != DEVICE_KEY_BYTES:
            raise ValueError(f"expected {DEVICE_KEY_BYTES} bytes, got {len(raw)}")
        return value


class DeviceImportFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: Literal[1]
    devices: list[DeviceImport]


def import_devices(session: Session, doc: DeviceImportFile) -> tuple[int, int]:
    """Create the passengers and devices of ``doc``; returns (created, already present).

    Re-importing the same file changes nothing; a known device id with another key is
    refused (``AlreadyExistsError``). Imported passengers get no usable API token.
    """
    known = {device_id: key for device_id, key, _ in repository.all_devices(session)}
    known_passengers = set(
        repository.passenger_categories(session, sorted({d.passenger_id for d in doc.devices}))
    )
    created = present = 0
    for d in doc.devices:
        key = base64.b64decode(d.device_key)
        if d.device_id in known:
            if known[d.device_id] != key:
                raise repository.AlreadyExistsError(
                    f"device {d.device_id!r} exists with another key"
                )
            present += 1
            continue
        if d.passenger_id not in known_passengers:
            repository.add_passenger(
                session, d.passenger_id, d.rider_category, token_hash(new_api_token("pt"))
            )
            known_passengers.add(d.passenger_id)
        repository.add_device(session, d.device_id, d.passenger_id, key)
        known[d.device_id] = key
        created += 1
    return created, present


@dataclass(frozen=True)
class ReconcileSummary:
    service_day: dt.date
    vehicles: int
    sightings: int
    resolved: int
    trips: int


def reconcile_day(session: Session, day: dt.date, now: dt.datetime) -> ReconcileSummary:
    """Rebuild every trip of a service day from what is stored (deterministic, idempotent)."""
    devices = repository.all_devices(session)
    start_ms, end_ms = service_day_bounds(day)
    resolver = TokenResolver.for_span([(d, key) for d, key, _ in devices], start_ms, end_ms)
    passenger_of = {device_id: passenger_id for device_id, _, passenger_id in devices}

    observations = []
    n_sightings = n_resolved = 0
    for vehicle_id, (times, tokens, window_ms) in repository.day_sightings(session, day).items():
        t = np.asarray(times, dtype=np.int64)
        device = resolver.resolve(t, tokens)
        known = device != UNRESOLVED
        n_sightings += len(times)
        n_resolved += int(known.sum())
        observations.append(VehicleObservations(vehicle_id, t[known], device[known], window_ms))

    trips = reconcile(repository.day_events(session, day), observations, resolver.device_ids)
    repository.replace_trips(session, day, trips, passenger_of)
    repository.mark_day_reconciled(session, day, now)
    return ReconcileSummary(day, len(observations), n_sightings, n_resolved, len(trips))


@dataclass(frozen=True)
class PassengerCharge:
    passenger_id: str
    trips: int
    bill: fare_engine.Bill


def day_charges(
    session: Session, day: dt.date, tariff: fare_engine.Tariff
) -> list[PassengerCharge]:
    """The best price per passenger for the trips of one service day."""
    by_passenger: dict[str, list[fare_engine.Trip]] = defaultdict(list)
    rows = repository.day_trips(session, day)
    categories = repository.passenger_categories(session, sorted({r.passenger_id for r in rows}))
    for row in rows:
        by_passenger[row.passenger_id].append(
            fare_engine.Trip(
                board_stop_id=row.board_stop_id,
                alight_stop_id=row.alight_stop_id,
                board_time=row.board_time,
                alight_time=row.alight_time,
                rider_category=categories[row.passenger_id],
            )
        )
    return [
        PassengerCharge(pid, len(trips), fare_engine.best_price(trips, tariff))
        for pid, trips in sorted(by_passenger.items())
    ]
