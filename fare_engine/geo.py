"""Distances on the earth, for all of bibo: straight-line ("Luftlinie") distances between
stops (the distance tariffs, walks between stops at a transfer, the simulator's network) and
metres per degree for local flat projections (deriving stop calls from GNSS, the simulator's
map)."""

from __future__ import annotations

import math

from fare_engine.const import EARTH_RADIUS_M

METRES_PER_DEGREE = math.pi / 180 * EARTH_RADIUS_M
"""Metres per degree of latitude (and of longitude at the equator)."""


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in metres between two WGS84 points (degrees)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


def started_km(metres: float) -> int:
    """Started kilometres: 2.1 km -> 3. Rounded to whole metres first, so that float
    noise on an exact kilometre (2000.0000001 m) does not start another one."""
    return -(-round(metres) // 1000)
