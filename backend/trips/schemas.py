"""Pydantic shapes of the trips API: stops, the trip export (docs/contracts.md: Trip
export) and a reconciliation summary."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, ConfigDict, Field


class StopOut(BaseModel):
    stop_id: str
    name: str
    lat: float
    lon: float


class TripOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    trip_id: str
    service_day: dt.date
    device_id: str
    passenger_id: str
    vehicle_id: str
    journey_id: str
    line: str
    board_stop_id: str
    board_time: int = Field(description="UTC epoch ms")
    alight_stop_id: str
    alight_time: int = Field(description="UTC epoch ms")
    confidence: float
    status: str = Field(description="open while the rider may still be on board, else closed")
    alight_known_at: int | None = Field(
        default=None,
        description="UTC epoch ms of the newest data the be-out was decided on (closed trips)",
    )
    chain_id: str | None = Field(
        default=None, description="first trip of the journey (changes of vehicle at hubs)"
    )


class ReconcileOut(BaseModel):
    service_day: dt.date
    vehicles: int
    sightings: int
    resolved: int
    trips: int
    failed: list[str] = Field(
        default_factory=list,
        description="work units that failed (vehicle: error); retried later, or parked",
    )
