"""Shared small simulated days (module-independent, built once per session)."""

from __future__ import annotations

import datetime as dt

import pytest

from simulator.day import DayConfig, DayPlan, make_device_keys, plan_day
from simulator.network import Network, load_network

SMALL_DAY = DayConfig(service_day=dt.date(2026, 6, 3), buses=3, passengers=40, bystanders=15)
"""Small enough to stream a whole vehicle in a test, big enough for every episode kind."""


@pytest.fixture(scope="session")
def network() -> Network:
    return load_network()


@pytest.fixture(scope="session")
def small_plan(network: Network) -> DayPlan:
    return plan_day(network, SMALL_DAY, seed=11)


@pytest.fixture(scope="session")
def small_keys(small_plan: DayPlan) -> dict[str, bytes]:
    return make_device_keys(small_plan, seed=5)
