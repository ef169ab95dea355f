"""What an operator needs to review a trip: its evidence (the RSSI trace with stops, doors
and the inferred interval), corrections and disputes, and filtered trip lists."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from backend import models, repository
from backend.const import TRACE_MARGIN_MS
from backend.repositories import reviews as reviews_repo
from onboard.wire import interval_of, token_for_interval

CSV_COLUMNS = (
    "trip_id",
    "service_day",
    "vehicle_id",
    "line",
    "journey_id",
    "device_id",
    "passenger_id",
    "board_stop_id",
    "board_time",
    "alight_stop_id",
    "alight_time",
    "confidence",
    "status",
)


def filter_trips(
    trips: Sequence[models.Trip],
    line: str | None = None,
    vehicle_id: str | None = None,
    max_confidence: float | None = None,
) -> list[models.Trip]:
    return [
        t
        for t in trips
        if (line is None or t.line == line)
        and (vehicle_id is None or t.vehicle_id == vehicle_id)
        and (max_confidence is None or t.confidence <= max_confidence)
    ]


@dataclass
class Trace:
    """Times in UTC epoch ms, RSSI and tx power in dBm."""

    trip_id: str
    vehicle_id: str
    t: list[int] = field(default_factory=list)
    rssi: list[int] = field(default_factory=list)
    n: list[int] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    board_time: int = 0
    alight_time: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def trip_trace(session: Session, trip_id: str) -> Trace | None:
    """The trip's evidence: its sightings (if its device is still known) and the stop and door
    events around it."""
    trip = repository.trip(session, trip_id)
    if trip is None:
        return None
    trace = Trace(
        trip_id, trip.vehicle_id, board_time=trip.board_time, alight_time=trip.alight_time
    )
    start, end = trip.board_time - TRACE_MARGIN_MS, trip.alight_time + TRACE_MARGIN_MS
    key = reviews_repo.device_key(session, trip.device_id)
    if key is not None:
        tokens = [
            token_for_interval(key, i) for i in range(interval_of(start) - 1, interval_of(end) + 2)
        ]
        days = [trip.service_day, trip.service_day + dt.timedelta(days=1)]
        rows = reviews_repo.sightings_between(session, trip.vehicle_id, days, start, end, tokens)
        trace.t = [r.t for r in rows]
        trace.rssi = [r.rssi for r in rows]
        trace.n = [r.n for r in rows]
    events = reviews_repo.stop_and_door_events(session, trip.vehicle_id, start, end)
    trace.events = [{"t": r.t, "type": r.type, "stop_id": r.stop_id} for r in events]
    return trace


def trip_detail(session: Session, trip_id: str) -> dict[str, Any] | None:
    trip = repository.trip(session, trip_id)
    if trip is None:
        return None
    corrections = reviews_repo.trip_corrections(session, trip_id)
    disputes = reviews_repo.trip_disputes(session, trip_id)
    return {
        "trip": {col: getattr(trip, col) for col in CSV_COLUMNS}
        | {
            "service_day": trip.service_day.isoformat(),
            "chain_id": trip.chain_id,
            "conflict_lost": trip.conflict_lost,
            "stops_travelled": trip.stops_travelled,
        },
        "corrections": [
            {
                "correction_id": x.correction_id,
                "board_stop_id": x.board_stop_id,
                "alight_stop_id": x.alight_stop_id,
                "cancelled": x.cancelled,
                "reason": x.reason,
                "operator_id": x.operator_id,
                "created_at": x.created_at.isoformat(),
            }
            for x in corrections
        ],
        "disputes": [
            {
                "dispute_id": x.dispute_id,
                "status": x.status,
                "reason": x.reason,
                "resolution": x.resolution,
                "created_at": x.created_at.isoformat(),
            }
            for x in disputes
        ],
    }
