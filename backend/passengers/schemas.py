"""Pydantic shapes of the passenger API: registration, own trips, live status, balance,
invoices, disputes and entitlements."""

from __future__ import annotations

import base64
import datetime as dt
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from backend.api.schemas import TEXT_PATTERN
from onboard.wire import DEVICE_KEY_BYTES

RiderCategory = Literal["adult", "child", "preschool", "infant"]


class PassengerIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rider_category: RiderCategory = Field(
        description="adult; child (6-14, child fares); preschool (6, not yet at school: free "
        "in the WestfalenTarif, child fare with eezy); infant (under 6, rides free)"
    )


class PassengerOut(BaseModel):
    passenger_id: str
    token: str


class DeviceOut(BaseModel):
    device_id: str
    device_key: str = Field(description="base64 of the 32-byte device key; shown once")


class PassengerTripOut(BaseModel):
    trip_id: str
    service_day: dt.date
    line: str
    vehicle_id: str
    board_stop_id: str
    board_stop_name: str | None
    board_time: int = Field(description="UTC epoch ms")
    alight_stop_id: str
    alight_stop_name: str | None
    alight_time: int = Field(description="UTC epoch ms")
    status: str
    corrected: bool
    party: dict[str, int] = Field(
        default_factory=dict, description="companions by category (adult, child, infant, bike)"
    )


class StatusOut(BaseModel):
    state: str = Field(description="checked_in, checked_out or none")
    line: str | None
    vehicle_id: str | None
    stop_id: str | None
    stop_name: str | None
    at: int | None = Field(description="UTC epoch ms: boarding (checked in) or alighting")
    trip_id: str | None


class BalanceOut(BaseModel):
    month: str
    total_cents: int = Field(description="best price of the month so far, today included")
    singles_total_cents: int
    saving_cents: int
    billed_cents: int = Field(description="what the ledger holds (days closed so far)")
    trips: int
    explanation: str


class InvoiceOut(BaseModel):
    invoice_id: int
    month: str
    version: int
    total_cents: int
    created_at: dt.datetime


class DisputeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=3, max_length=1000, pattern=TEXT_PATTERN)


class DisputeOut(BaseModel):
    dispute_id: int
    trip_id: str
    status: str
    reason: str
    resolution: str | None
    created_at: dt.datetime


class DeviceImport(BaseModel):
    """One device in a ``bibo devices import`` file (simulations, migrations)."""

    model_config = ConfigDict(extra="forbid")

    passenger_id: str = Field(min_length=1, max_length=40)
    device_id: str = Field(min_length=1, max_length=40)
    rider_category: RiderCategory
    device_key: str = Field(description="base64 of the 32-byte device key")

    @field_validator("device_key")
    @classmethod
    def _key_is_32_bytes(cls, value: str) -> str:
        try:
            raw = base64.b64decode(value, validate=True)
        except ValueError:
            raise ValueError("expected base64") from None
        if len(raw) != DEVICE_KEY_BYTES:
            raise ValueError(f"expected {DEVICE_KEY_BYTES} bytes, got {len(raw)}")
        return value


class DeviceImportFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: Literal[1]
    devices: list[DeviceImport]


EntitlementKind = Literal[
    "deutschlandticket",
    "jobticket",
    "schoolticket",
    "semesterticket",
    "sozialticket",
    "free_travel",
    "other",
    "sozial_eligibility",
    "job_eligibility",
]
"""Tickets and passes held elsewhere that make bibo's trips free for their holder;
``free_travel`` is a Schwerbehindertenausweis with Wertmarke. The ``*_eligibility`` kinds
make no trip free: they prove an adult may buy the Deutschlandticket Sozial (a Bürgergeld or
Sozialhilfe notice) or Job (an employer's offer), so bibo's best price may include it
(``backend.billing.service.ELIGIBILITIES``)."""


def _iso_day(value: object) -> object:
    # Only YYYY-MM-DD from 1970 to 2999 (a bare number would pass as days since 1970).
    if isinstance(value, dt.date) or (
        isinstance(value, str)
        and len(value) == 10
        and value[:4].isascii()
        and value[:4].isdigit()
        and "1970" <= value[:4] <= "2999"
    ):
        return value
    raise ValueError("expected a date as YYYY-MM-DD between 1970 and 2999")


Day = Annotated[dt.date, BeforeValidator(_iso_day)]


class EntitlementIn(BaseModel):
    """A ticket or pass held elsewhere: trips on its days (local calendar, both ends
    included) from and to stops in its Tarifgebiete cost nothing."""

    model_config = ConfigDict(extra="forbid")

    kind: EntitlementKind
    valid_from: Day
    valid_to: Day
    scope_areas: (
        list[Annotated[str, Field(min_length=1, max_length=16, pattern=r"^[0-9A-Za-z]+$")]] | None
    ) = Field(
        default=None,
        max_length=64,
        description="Tarifgebiet codes where it is valid; null = everywhere (Deutschlandticket)",
    )
    evidence_ref: str = Field(
        min_length=1,
        max_length=200,
        pattern=TEXT_PATTERN,
        description="what identifies the ticket for an operator (ticket or card number)",
    )


class EntitlementOut(BaseModel):
    entitlement_id: int
    kind: str
    label: str
    valid_from: dt.date
    valid_to: dt.date
    scope_areas: list[str] | None
    evidence_ref: str
    status: str = Field(description="pending, verified, revoked or withdrawn")
    note: str | None
    created_at: dt.datetime
    decided_at: dt.datetime | None


class RebilledMonthOut(BaseModel):
    month: str
    total_cents: int
    invoice_version: int | None = Field(description="set when a new invoice version was issued")


class EntitlementChangeOut(BaseModel):
    entitlement: EntitlementOut
    rebilled: list[RebilledMonthOut]


class CompanionsIn(BaseModel):
    """Who rode with the passenger on the trip (replaces what was named before)."""

    model_config = ConfigDict(extra="forbid")

    adult: int = Field(default=0, ge=0, le=9)
    child: int = Field(default=0, ge=0, le=9, description="6 to 14 years")
    preschool: int = Field(default=0, ge=0, le=9, description="6, not yet at school")
    infant: int = Field(default=0, ge=0, le=9, description="under 6: free")
    bike: int = Field(default=0, ge=0, le=5)


class CompanionsOut(BaseModel):
    trip_id: str
    party: dict[str, int]
    month: str
    total_cents: int = Field(description="the month's charge so far after the change")
