"""Shared helpers: the shipped tariffs, test tariffs, Berlin local times as epoch ms, trips."""

from __future__ import annotations

import datetime as dt
import functools
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from fare_engine import Tariff, Trip, load_tariff, load_tariff_file

BERLIN = ZoneInfo("Europe/Berlin")
TEST_TARIFFS = Path(__file__).resolve().parent / "tariffs"

# Stops of simulator/data/network.toml used by the scenarios. Line R61 runs
# Soest Bf - Markt - Thomästraße - Bad Sassendorf Kurpark - Bf - Lohne - Benninghausen
# - Overhagen - ... - Lippstadt Bf.
SOEST_BF = "de:05974:1001"
SOEST_MARKT = "de:05974:1002"
SOEST_THOMAE = "de:05974:1003"
SASSENDORF_KURPARK = "de:05974:1004"
SASSENDORF_BF = "de:05974:1005"
LIPPSTADT_BENNINGHAUSEN = "de:05974:1007"
LIPPSTADT_BF = "de:05974:1010"
UNNA_BF = "de:05978:2001"
UNNA_MARKT = "de:05978:2002"
KAMEN_BF = "de:05978:2005"
BERGKAMEN_RATHAUS = "de:05978:2008"
ARNSBERG_BF = "de:05958:3001"
MESCHEDE_BF = "de:05958:3007"


def at(text: str, tz: ZoneInfo = BERLIN) -> int:
    """Epoch ms of a wall-clock time like '2026-03-02 07:10' (Europe/Berlin by default)."""
    local = dt.datetime.strptime(text, "%Y-%m-%d %H:%M").replace(tzinfo=tz)
    return int(local.timestamp() * 1000)


def trip(
    board: str,
    alight: str,
    start: str,
    minutes: int = 20,
    rider: str = "adult",
    tz: ZoneInfo = BERLIN,
    **facts: object,
) -> Trip:
    """A trip boarding at local time `start` and riding `minutes` (extra Trip fields in `facts`)."""
    board_ms = at(start, tz)
    return Trip.model_validate(
        {
            "board_stop_id": board,
            "alight_stop_id": alight,
            "board_time": board_ms,
            "alight_time": board_ms + minutes * 60_000,
            "rider_category": rider,
            **facts,
        }
    )


def bought(bill) -> list[tuple[str, str | None, int, list[int]]]:
    """The bill's products as (product, level, price, trip indexes) — how tests compare bills."""
    return [(p.product, p.level, p.price_cents, p.covers) for p in bill.products]


@functools.cache
def load_test_tariff(name: str) -> Tariff:
    """A tariff of tests/fare_engine/tariffs (London, OMNY, the eezy example, …)."""
    return load_tariff_file(TEST_TARIFFS / f"{name}.toml")


@pytest.fixture
def tariff() -> Tariff:
    """WestfalenTarif Ruhr-Lippe 2026 alone (with the Deutschlandticket)."""
    return load_tariff()


@pytest.fixture
def eezy() -> Tariff:
    """eezy Westfalen 2026 alone."""
    return load_tariff("eezy_westfalen_2026")


@pytest.fixture
def bibo_tariffs() -> list[Tariff]:
    """What a bibo passenger is billed over: Ruhr-Lippe 2026 and eezy Westfalen 2026."""
    return [load_tariff(), load_tariff("eezy_westfalen_2026")]
