"""Named constants of the fare engine."""

from __future__ import annotations

from typing import Final

DEFAULT_TARIFF_ID: Final = "ruhr_lippe_2026"
"""The tariff bibo bills with unless told otherwise (the only one shipped so far)."""

TARIFF_FILE_VERSION: Final = 1
"""Version of the tariff file format this engine reads (STYLE item 11)."""

TARIFF_PACKAGE: Final = "fare_engine.tariffs"
"""Package holding the shipped tariff files, read via importlib.resources."""

MS_PER_MINUTE: Final = 60_000
"""Epoch times inside the engine are integer milliseconds (UTC)."""
