"""Structured errors of the fare engine: bad tariff data and bad trip input."""

from __future__ import annotations

from enum import StrEnum


class TariffError(ValueError):
    """A tariff file could not be loaded; names the file, the entry and the problem."""

    def __init__(self, file: str, entry: str, problem: str) -> None:
        self.file = file
        self.entry = entry
        self.problem = problem
        super().__init__(f"{file}: {entry}: {problem}")


class FareInputReason(StrEnum):
    """Why a trip (or a quote request) was refused."""

    UNKNOWN_STOP = "unknown_stop"
    ALIGHT_BEFORE_BOARD = "alight_before_board"
    OVERLAPPING_TRIPS = "overlapping_trips"
    UNKNOWN_RIDER_CATEGORY = "unknown_rider_category"
    OUTSIDE_TARIFF_VALIDITY = "outside_tariff_validity"
    NO_PRODUCT = "no_product"
    BAD_PARTY = "bad_party"
    """A party with a negative count or more people / bicycles than one ride takes."""


class FareInputError(ValueError):
    """Refused input to `quote` or `best_price`.

    `trip_index` is the position in the caller's trip list (None for a quote),
    `field` the offending field and `value` its value.
    """

    def __init__(
        self,
        reason: FareInputReason,
        field: str,
        value: object,
        expected: str,
        trip_index: int | None = None,
    ) -> None:
        self.reason = reason
        self.field = field
        self.value = value
        self.expected = expected
        self.trip_index = trip_index
        where = f"trip {trip_index}: " if trip_index is not None else ""
        super().__init__(f"{where}{field}={value!r}: {reason.value}: expected {expected}")
