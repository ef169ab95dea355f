"""Named constants of the fare engine."""

from __future__ import annotations

from typing import Final

DEFAULT_TARIFF_ID: Final = "ruhr_lippe_2026"
"""The zone tariff bibo quotes with unless told otherwise."""

DEFAULT_TARIFF_IDS: Final = ("ruhr_lippe_2026", "eezy_westfalen_2026")
"""The tariffs a bibo passenger's best price is taken over: WestfalenTarif Ruhr-Lippe
(with the Deutschlandticket) and eezy Westfalen. The first one checks the trips."""

TARIFF_PACKAGE: Final = "fare_engine.tariffs"
"""Package holding the shipped tariff files, read via importlib.resources."""

MS_PER_MINUTE: Final = 60_000
"""Epoch times inside the engine are integer milliseconds (UTC)."""

EARTH_RADIUS_M: Final = 6_371_008.8
"""Mean earth radius (IUGG) for straight-line distances. eezy does not publish its
geodesic; on bibo's distances (< 100 km) sphere and ellipsoid differ by < 0.5 %."""

DP_LABEL_BUDGET: Final = 200
"""Most states the best-price DP keeps after one trip before it hands the instance to
the integer programme. A realistic passenger-month needs a few dozen (2,000 benchmark
months peaked at 32); the budget only guards against the blow-up that crossing scopes
can cause, where HiGHS is then the faster exact route."""

MILP_TIME_LIMIT_S: Final = 60.0
"""A safety net for the integer programme; an instance hitting it is an error, not a
silently sub-optimal bill (HiGHS solves a passenger-month in milliseconds)."""
