"""Shared helpers: the shipped tariff, Berlin local times as epoch ms, trip builders."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from fare_engine import Tariff, Trip, load_tariff

BERLIN = ZoneInfo("Europe/Berlin")

# Stops of simulator/data/network.toml used by the scenarios.
SOEST_BF = "de:05974:1001"
SOEST_MARKT = "de:05974:1002"
SOEST_THOMAE = "de:05974:1003"
SASSENDORF_KURPARK = "de:05974:1004"
SASSENDORF_BF = "de:05974:1005"
LIPPSTADT_BF = "de:05974:1010"
UNNA_BF = "de:05978:2001"
UNNA_MARKT = "de:05978:2002"
KAMEN_BF = "de:05978:2005"
BERGKAMEN_RATHAUS = "de:05978:2008"
ARNSBERG_BF = "de:05958:3001"
MESCHEDE_BF = "de:05958:3007"


def at(text: str) -> int:
    """Epoch ms of a Europe/Berlin wall-clock time like '2026-03-02 07:10'."""
    local = dt.datetime.strptime(text, "%Y-%m-%d %H:%M").replace(tzinfo=BERLIN)
    return int(local.timestamp() * 1000)


def trip(board: str, alight: str, start: str, minutes: int = 20, rider: str = "adult") -> Trip:
    """A trip boarding at Berlin time `start` and riding `minutes`."""
    board_ms = at(start)
    return Trip(
        board_stop_id=board,
        alight_stop_id=alight,
        board_time=board_ms,
        alight_time=board_ms + minutes * 60_000,
        rider_category=rider,
    )


@pytest.fixture
def tariff() -> Tariff:
    return load_tariff()
