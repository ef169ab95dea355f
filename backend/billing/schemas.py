"""Pydantic shapes of the billing API: a day's charges and a re-bill's outcome."""

from __future__ import annotations

from pydantic import BaseModel, Field


class ChargeOut(BaseModel):
    passenger_id: str
    trips: int
    total_cents: int | None = Field(description="best price; null when it cannot be priced")
    singles_total_cents: int | None
    error: str | None = Field(default=None, description="why the trips could not be priced")


class RebilledOut(BaseModel):
    month: str
    total_cents: int
    invoice_version: int | None
