"""Shared small simulated days (module-independent, built once per session)."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
from sqlalchemy import Engine

from backend.db import make_sessionmaker, transaction
from backend.ingest import service as ingest_service
from backend.passengers import service as passengers_service
from backend.passengers.schemas import DeviceImportFile
from simulator.day import DayConfig, DayPlan, make_device_keys, plan_day
from simulator.network import Network, load_network
from simulator.recording import Recording

SMALL_DAY = DayConfig(
    service_day=dt.date(2026, 6, 3),
    lines=("R61", "C1", "C2", "R60"),
    buses=4,
    convoys=1,
    passengers=90,
    bystanders=40,
    service_start=dt.time(6, 30),
    service_end=dt.time(9, 30),
)
"""Small enough to stream a whole vehicle in a test, big enough for every episode kind:
the Soest hub with four lines, a reinforcement bus, every kind of bystander."""

TINY = dataclasses.replace(
    SMALL_DAY,
    lines=("C1", "C2"),
    buses=2,
    convoys=0,
    passengers=40,
    bystanders=20,
    service_start=dt.time(7, 0),
    service_end=dt.time(8, 0),
)
"""Two lines, two buses, one hour: for tests that record whole days several times."""


@pytest.fixture(scope="session")
def network() -> Network:
    return load_network()


@pytest.fixture(scope="session")
def small_plan(network: Network) -> DayPlan:
    return plan_day(network, SMALL_DAY, seed=11)


@pytest.fixture(scope="session")
def small_keys(small_plan: DayPlan) -> dict[str, bytes]:
    return make_device_keys(small_plan, seed=5)


def register_recording(engine: Engine, recording: Recording) -> dict[str, bytes]:
    """Register a recording's buses and import its devices into the backend at ``engine``;
    returns the buses' secrets (the backend's, not the recording's)."""
    secrets = {}
    with transaction(make_sessionmaker(engine)) as session:
        for v in recording.vehicles:
            secrets[v["vehicle_id"]] = ingest_service.register_vehicle(session, v["vehicle_id"])
        doc = DeviceImportFile.model_validate_json((recording.path / "devices.json").read_bytes())
        passengers_service.import_devices(session, doc)
    return secrets
