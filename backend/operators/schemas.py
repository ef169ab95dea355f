"""Pydantic shapes of the operator API: disputes and their resolution, corrections, the
operations overview and the revenue per transit company."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from backend.api.schemas import TEXT_PATTERN
from backend.trips.schemas import TripOut
from onboard.wire import StopId

Note = Annotated[str, Field(max_length=1000, pattern=TEXT_PATTERN)]
Reason = Annotated[str, Field(min_length=3, max_length=500, pattern=TEXT_PATTERN)]
"""Operators' free text: within its column, line breaks and tabs but no other control
characters."""


class DisputeRow(BaseModel):
    dispute_id: int
    trip_id: str
    passenger_id: str
    status: str
    reason: str
    resolution: str | None
    created_at: dt.datetime
    resolved_at: dt.datetime | None


class DecideIn(BaseModel):
    """Accept (the trip is cancelled) or reject a dispute."""

    model_config = ConfigDict(extra="forbid")

    action: Literal["accept", "reject"]
    note: Note = ""


class AdjustIn(BaseModel):
    """The trip was ridden, between these stops."""

    model_config = ConfigDict(extra="forbid")

    action: Literal["adjust"]
    note: Note = ""
    board_stop_id: StopId
    alight_stop_id: StopId


class CancelIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Reason
    cancelled: Literal[True]


class RestopIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Reason
    board_stop_id: StopId
    alight_stop_id: StopId


class TroubledUnitOut(BaseModel):
    service_day: dt.date
    vehicle_id: str = Field(description="'*' is the day's cross-vehicle settling")
    attempts: int
    parked: bool = Field(description="failed too often; waits for POST /v1/reconcile")
    last_error: str | None
    failed_at: dt.datetime | None


class LateDataOut(BaseModel):
    service_day: dt.date
    vehicle_id: str
    batches: int
    last_received_at: dt.datetime


class OperationsOut(BaseModel):
    sightings_purged_before: dt.date | None = Field(
        description="service days before this are past retention: their trips are final"
    )
    units: list[TroubledUnitOut]
    late_data: list[LateDataOut]


class ReviewedTripOut(TripOut):
    """The trip as reviewed: the export's fields and what reconciliation and settling said."""

    stops_travelled: int | None
    conflict_lost: bool = Field(description="another vehicle's trip of the device won")


class CorrectionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    correction_id: int
    board_stop_id: str | None
    alight_stop_id: str | None
    cancelled: bool
    reason: str
    operator_id: int
    created_at: dt.datetime


class TripDisputeOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    dispute_id: int
    status: str
    reason: str
    resolution: str | None
    created_at: dt.datetime


class TripDetailOut(BaseModel):
    """A trip with its corrections (oldest first) and disputes."""

    model_config = ConfigDict(from_attributes=True)

    trip: ReviewedTripOut
    corrections: list[CorrectionOut]
    disputes: list[TripDisputeOut]


class TraceEventOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    t: int = Field(description="UTC epoch ms")
    type: str
    stop_id: str | None


class TraceOut(BaseModel):
    """A trip's evidence for the review plot: the device's sightings on the vehicle around
    the trip (empty once its device is deleted), the stop and door events, the trip's
    interval. Times in UTC epoch ms, RSSI in dBm."""

    model_config = ConfigDict(from_attributes=True)

    trip_id: str
    vehicle_id: str
    t: list[int]
    rssi: list[int]
    n: list[int] = Field(description="adverts heard in each 1 s window")
    events: list[TraceEventOut]
    board_time: int
    alight_time: int
    phone_t: list[int] = Field(description="seconds in which the phone heard the bus beacon")
    phone_rssi: list[int]
    regions: list[TraceEventOut] = Field(description="the phone's region enter and exit")


class CompanyRevenueOut(BaseModel):
    """A transit company's part of a billing month's ledger
    (``backend/billing/apportionment.py``)."""

    model_config = ConfigDict(from_attributes=True)

    company: str = Field(
        description="the company code (RLG, VKU, …); 'unassigned' for rides on vehicles "
        "without one, 'unapportioned' for ledger entries posted before apportionment"
    )
    charged_cents: int = Field(description="its shares of the month's charges")
    reversed_cents: int = Field(description="its shares of the month's reversals (<= 0)")
    net_cents: int = Field(description="charged_cents + reversed_cents")
    passenger_km: float = Field(description="passenger-km of its rides in the live charges")
    entries: int = Field(description="ledger entries with a share for it")


class RevenueOut(BaseModel):
    """A billing month's revenue per transit company beside the ledger's total."""

    month: str
    companies: list[CompanyRevenueOut]
    total_cents: int = Field(description="the sum of the companies' net_cents")
    ledger_total_cents: int = Field(description="the sum of the month's ledger entries")
    ledger_entries: int
    balanced: bool = Field(
        description="total_cents == ledger_total_cents (always, unless the "
        "shares were tampered with)"
    )
