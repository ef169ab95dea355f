"""Pydantic shapes of the HTTP API (separate from the ORM models)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Final

from fastapi import Path
from pydantic import BaseModel, ConfigDict, Field

from backend.services import RiderCategory
from onboard.wire import IDENTIFIER_PATTERN, MAX_BIGINT

ID_PATTERN: Final = IDENTIFIER_PATTERN
ID_MAX_CHARS: Final = 40
"""Passenger, device and trip ids (``pas_…``, ``dev_…``, ``trp_…`` or imported ones): no spaces
or control characters, as long as their ``String(40)`` columns."""

MONTH_PATTERN: Final = r"^(19[7-9][0-9]|2[0-9]{3})-(0[1-9]|1[0-2])$"
"""``YYYY-MM`` from 1970 on, in ASCII digits: a regex digit class would also take other
scripts' digits ("2٠٢٦-11"), which the month arithmetic then refuses."""

PassengerId = Annotated[str, Path(min_length=1, max_length=ID_MAX_CHARS, pattern=ID_PATTERN)]
TripId = Annotated[str, Path(min_length=1, max_length=ID_MAX_CHARS, pattern=ID_PATTERN)]
DbId = Annotated[int, Path(ge=1, le=MAX_BIGINT, description="a row id (bigint)")]
"""Path parameters of every route, API and pages alike: what their columns hold."""

TEXT_PATTERN: Final = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]*$"
"""Free text from people (dispute reasons): line breaks and tabs, but no other control
characters (PostgreSQL cannot store NUL; the rest would hide text from whoever reads it)."""


class StopOut(BaseModel):
    stop_id: str
    name: str
    lat: float
    lon: float


class PassengerIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rider_category: RiderCategory = Field(
        description="adult; child (6-14, child fares); infant (under 6, rides free)"
    )


class PassengerOut(BaseModel):
    passenger_id: str
    token: str


class DeviceOut(BaseModel):
    device_id: str
    device_key: str = Field(description="base64 of the 32-byte device key; shown once")


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


class ChargeOut(BaseModel):
    passenger_id: str
    trips: int
    total_cents: int | None = Field(description="best price; null when it cannot be priced")
    singles_total_cents: int | None
    error: str | None = Field(default=None, description="why the trips could not be priced")


class ErrorOut(BaseModel):
    """Every refusal: ``detail`` is a message, or a list of ``{loc, msg, type}`` per field."""

    detail: str | list[dict[str, object]]


def errors(*codes: int) -> dict[int | str, dict[str, object]]:
    """OpenAPI ``responses`` for the refusals a route may give."""
    text = {
        400: "malformed request",
        401: "missing or invalid credentials",
        403: "the operator's role does not allow this",
        404: "not found (or not yours)",
        409: "conflicts with the current state",
        413: "too large",
        422: "invalid input; the detail names the field",
        429: "too many requests",
    }
    # Content spelled out: a route answering HTML or CSV still refuses in JSON.
    content = {"application/json": {"schema": ErrorOut.model_json_schema()}}
    return {code: {"content": content, "description": text[code]} for code in codes}
