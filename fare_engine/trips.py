"""A passenger's trip as the fare engine sees it, and the checks on a list of them."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict

from fare_engine.errors import FareInputError, FareInputReason
from fare_engine.tariff import Tariff


class Trip(BaseModel):
    """One ride: stops are DHIDs, times UTC epoch ms, `rider_category` a tariff rider id."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    board_stop_id: str
    alight_stop_id: str
    board_time: int
    alight_time: int
    rider_category: str


def check_stop(tariff: Tariff, stop_id: str, field: str, trip_index: int | None) -> None:
    if not tariff.has_stop(stop_id):
        raise FareInputError(
            FareInputReason.UNKNOWN_STOP,
            field,
            stop_id,
            f"a stop id of tariff {tariff.tariff_id}",
            trip_index,
        )


def check_rider(tariff: Tariff, rider: str, field: str, trip_index: int | None) -> None:
    if not tariff.has_rider(rider):
        raise FareInputError(
            FareInputReason.UNKNOWN_RIDER_CATEGORY,
            field,
            rider,
            f"one of {tariff.rider_ids()}",
            trip_index,
        )


def check_in_validity(tariff: Tariff, at_ms: int, field: str, trip_index: int | None) -> None:
    start, end = tariff.validity_ms()
    if not start <= at_ms < end:
        raise FareInputError(
            FareInputReason.OUTSIDE_TARIFF_VALIDITY,
            field,
            at_ms,
            f"a time from {tariff.spec.valid_from} to {tariff.spec.valid_to} "
            f"({tariff.spec.timezone}), when tariff {tariff.tariff_id} is valid; "
            f"got {_iso(at_ms)}",
            trip_index,
        )


def _iso(at_ms: int) -> str:
    return dt.datetime.fromtimestamp(at_ms / 1000, tz=dt.UTC).isoformat()


def check_trips(trips: Sequence[Trip], tariff: Tariff) -> list[int]:
    """Refuse bad trips (naming index and field); return indexes in boarding order."""
    for i, trip in enumerate(trips):
        check_rider(tariff, trip.rider_category, "rider_category", i)
        check_stop(tariff, trip.board_stop_id, "board_stop_id", i)
        check_stop(tariff, trip.alight_stop_id, "alight_stop_id", i)
        if trip.alight_time < trip.board_time:
            raise FareInputError(
                FareInputReason.ALIGHT_BEFORE_BOARD,
                "alight_time",
                trip.alight_time,
                f">= board_time {trip.board_time}",
                i,
            )
        check_in_validity(tariff, trip.board_time, "board_time", i)
    order = sorted(range(len(trips)), key=lambda k: (trips[k].board_time, trips[k].alight_time))
    for prev, cur in itertools.pairwise(order):
        if trips[cur].board_time < trips[prev].alight_time:
            raise FareInputError(
                FareInputReason.OVERLAPPING_TRIPS,
                "board_time",
                trips[cur].board_time,
                f">= alight_time {trips[prev].alight_time} of trip {prev} "
                "(one rider cannot ride twice at once)",
                cur,
            )
    return order
