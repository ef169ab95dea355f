"""The tariff's stops as reconciliation needs them: an index for deriving calls from GNSS
and which changes between stops are a short walk. Pure: no database, cached per process."""

from __future__ import annotations

import functools
from collections.abc import Callable

import fare_engine
from backend.const import MAX_TRANSFER_WALK_M
from backend.trips.reconciliation import StopIndex
from fare_engine.geo import distance_m


@functools.cache
def _stop_positions() -> dict[str, tuple[float, float]]:
    return {s.stop_id: (s.lat, s.lon) for s in fare_engine.load_tariff().stops()}


@functools.cache
def stop_index() -> StopIndex:
    """The tariff's stops, for deriving calls whose stop events never came."""
    return StopIndex((k, lat, lon) for k, (lat, lon) in _stop_positions().items())


def stop_walkable() -> Callable[[str, str], bool]:
    """Whether a change between two stops is a short walk (same stop or a hub's bays)."""
    positions = _stop_positions()

    def walkable(a: str, b: str) -> bool:
        if a == b:
            return True
        if a not in positions or b not in positions:
            return False
        return distance_m(*positions[a], *positions[b]) <= MAX_TRANSFER_WALK_M

    return walkable
