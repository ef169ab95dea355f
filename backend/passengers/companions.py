"""Companions: a rider names who rode with them on a detected trip (adults, children,
infants and bicycles), while the trip is open or within ``COMPANION_WINDOW`` after it; the
best price then covers the whole party (a TagesTicket24 with up to three children free, a
5-person TagesTicket24, or a ticket per person) and the month is re-billed.
"""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy.orm import Session

from backend.billing import service as billing_service
from backend.const import COMPANION_WINDOW
from backend.passengers import repository as passengers_repo
from backend.trips import repository as trips_repo

MAX_PEOPLE = 9
"""Companions on one trip (a party of ten, the rider included, is a group booking)."""
MAX_BIKES = 5
CATEGORIES = ("adult", "child", "preschool", "infant", "bike")
"""What a companion may be: a rider category every default tariff knows, or a bicycle."""


class CompanionErrorReason(enum.Enum):
    NOT_FOUND = "not_found"
    INVALID = "invalid"
    TOO_LATE = "too_late"


class CompanionError(Exception):
    def __init__(self, reason: CompanionErrorReason, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def check_party(counts: dict[str, int]) -> None:
    """Refuse an unknown category or a party too large, naming the field."""
    for category, n in counts.items():
        if category not in CATEGORIES:
            raise CompanionError(
                CompanionErrorReason.INVALID,
                f"{category}: expected one of {list(CATEGORIES)}",
            )
        if n < 0:
            raise CompanionError(
                CompanionErrorReason.INVALID, f"{category}: expected >= 0, got {n}"
            )
    people = sum(n for c, n in counts.items() if c != "bike")
    if people > MAX_PEOPLE:
        raise CompanionError(
            CompanionErrorReason.INVALID,
            f"adult: expected at most {MAX_PEOPLE} companions in all, got {people}",
        )
    if counts.get("bike", 0) > MAX_BIKES:
        raise CompanionError(
            CompanionErrorReason.INVALID,
            f"bike: expected at most {MAX_BIKES} bicycles, got {counts['bike']}",
        )


def set_party(
    session: Session, passenger_id: str, trip_id: str, counts: dict[str, int], now: dt.datetime
) -> tuple[str, int]:
    """Name the trip's companions (replacing any named before) and re-bill; returns the
    trip's month and its charge so far."""
    check_party(counts)
    trip = trips_repo.trip(session, trip_id)
    if trip is None or trip.passenger_id != passenger_id:
        raise CompanionError(CompanionErrorReason.NOT_FOUND, f"trip {trip_id!r} not found")
    now_ms = int(now.timestamp() * 1000)
    window_ms = int(COMPANION_WINDOW.total_seconds() * 1000)
    if trip.status == "closed" and now_ms > trip.alight_time + window_ms:
        raise CompanionError(
            CompanionErrorReason.TOO_LATE,
            f"trip {trip_id!r} ended more than {COMPANION_WINDOW} ago: companions are named "
            "while riding or within a day after; dispute the trip instead",
        )
    passengers_repo.set_companions(session, trip_id, passenger_id, counts, now)
    month, total, _ = billing_service.rebill_from(session, passenger_id, trip.board_time, now)[0]
    return month, total
