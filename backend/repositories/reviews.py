"""SQL for reviewing a trip: its device key, the sightings and vehicle events around it, and
its corrections and disputes."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from backend import models


@dataclass(frozen=True)
class SightingPoint:
    """One sighting: UTC epoch ms, RSSI (dBm) and how many adverts the window heard (n)."""

    t: int
    rssi: int
    n: int


@dataclass(frozen=True)
class EventPoint:
    """One vehicle event: UTC epoch ms, its type and its stop (if any)."""

    t: int
    type: str
    stop_id: str | None


def device_key(session: Session, device_id: str) -> bytes | None:
    """The key of the device with this id, if it is (still) registered."""
    d = models.Device
    return session.scalar(select(d.device_key).where(d.device_id == device_id))


def sightings_between(
    session: Session,
    vehicle_id: str,
    days: Sequence[dt.date],
    start: int,
    end: int,
    tokens: Sequence[bytes],
) -> list[SightingPoint]:
    """The vehicle's sightings of these tokens on these service days in ``[start, end]``,
    by time."""
    s = models.Sighting
    rows = session.execute(
        select(s.t, s.rssi, s.n)
        .where(
            s.vehicle_id == vehicle_id,
            s.service_day.in_(days),
            s.t >= start,
            s.t <= end,
            s.token.in_(tokens),
        )
        .order_by(s.t)
    ).all()
    return [SightingPoint(t, rssi, n) for t, rssi, n in rows]


def stop_and_door_events(
    session: Session, vehicle_id: str, start: int, end: int
) -> list[EventPoint]:
    """The vehicle's arrivals, departures and door events in ``[start, end]``, in order."""
    e = models.VehicleEvent
    rows = session.execute(
        select(e.t, e.type, e.stop_id)
        .where(
            e.vehicle_id == vehicle_id,
            e.t >= start,
            e.t <= end,
            e.type.in_(("arrival", "departure", "doors_open", "doors_closed")),
        )
        .order_by(e.t, e.event_id)
    ).all()
    return [EventPoint(t, type_, stop_id) for t, type_, stop_id in rows]


def trip_corrections(session: Session, trip_id: str) -> list[models.TripCorrection]:
    """The trip's corrections, oldest first."""
    c = models.TripCorrection
    return list(session.scalars(select(c).where(c.trip_id == trip_id).order_by(c.correction_id)))


def trip_disputes(session: Session, trip_id: str) -> list[models.Dispute]:
    """The trip's disputes, oldest first."""
    d = models.Dispute
    return list(session.scalars(select(d).where(d.trip_id == trip_id).order_by(d.dispute_id)))
