"""Settings of the backend process, read from ``BIBO_*`` environment variables."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from backend.const import (
    PHONE_UPLOAD_BURST,
    PHONE_UPLOADS_PER_S,
    SIGNUP_BURST,
    SIGNUPS_PER_S,
    VEHICLE_UPLOAD_BURST,
    VEHICLE_UPLOADS_PER_S,
)

DEFAULT_DATABASE_URL = "sqlite:///bibo.sqlite3"
PLACEHOLDER_SECRETS = frozenset({"", "changeme", "change-me", "secret", "development"})

RevenueSplitRule = Literal["passenger_km", "rides"]
"""How a ledger entry is split to the transit companies (``backend/billing/apportionment.py``):
by the passenger-km each company carried (``passenger_km``) or by its number of rides
(``rides``, every ride the same weight)."""


class Settings(BaseSettings):
    """One settings object per process, built by :func:`get_settings` (never at import)."""

    model_config = SettingsConfigDict(env_prefix="BIBO_", extra="ignore")

    database_url: str = Field(
        default=DEFAULT_DATABASE_URL,
        description="SQLAlchemy URL; default a SQLite file in the working directory.",
    )
    sightings_retention_days: int = Field(
        default=14, ge=1, description="raw sightings are personal data: kept for disputes only"
    )
    trips_retention_days: int = Field(
        default=365,
        ge=62,
        description="trips are kept for disputes and invoices; at least two months, so a "
        "month's trips are never deleted before the month is closed and invoiced",
    )
    reconcile_in_background: bool = Field(
        default=True, description="Reconcile vehicle-days that received data, every 5 s."
    )
    vehicle_uploads_per_s: float = Field(
        default=VEHICLE_UPLOADS_PER_S, gt=0, description="per-vehicle upload rate limit"
    )
    vehicle_upload_burst: float = Field(default=VEHICLE_UPLOAD_BURST, ge=1)
    phone_uploads_per_s: float = Field(
        default=PHONE_UPLOADS_PER_S, gt=0, description="per-device phone upload rate limit"
    )
    phone_upload_burst: float = Field(default=PHONE_UPLOAD_BURST, ge=1)
    signups_per_s: float = Field(default=SIGNUPS_PER_S, gt=0)
    signup_burst: float = Field(default=SIGNUP_BURST, ge=1)
    revenue_split_rule: RevenueSplitRule = Field(
        default="passenger_km",
        description="how each ledger entry is split to the transit companies whose vehicles "
        "carried its rides: 'passenger_km' (straight-line km between the stops, at least "
        "0.1 km a ride) or 'rides' (each ride weighs the same); applies to entries posted "
        "from then on",
    )
    ticket_keys_file: Path | None = Field(
        default=None,
        description="The operator's inspection-ticket keyset (private JSON, mode 0600; made "
        "by 'bibo inspect keys generate'). Unset in development: a new key per process; "
        "unset in production: no tickets are issued.",
    )
    vapid_private_key: str | None = Field(
        default=None,
        description="Web Push: the VAPID private key (base64url; `bibo notifications "
        "vapid-keys` makes a pair). Unset: no push, the open app's event stream only.",
        repr=False,
    )
    vapid_public_key: str | None = Field(
        default=None, description="Web Push: the VAPID public key the app subscribes with"
    )
    vapid_subject: str | None = Field(
        default=None,
        description="Web Push: a contact for the push services, mailto: or https: (needed "
        "with the keys)",
    )
    environment: Literal["development", "production"] = "development"
    secret_key: str | None = Field(
        default=None,
        description="Signs operator web sessions. Random per process in development; "
        "must be set (and shared by all API processes) in production.",
        repr=False,
    )

    @model_validator(mode="after")
    def _vapid_complete(self) -> Settings:
        if self.vapid_private_key and not (self.vapid_public_key and self.vapid_subject):
            raise ValueError(
                "BIBO_VAPID_PRIVATE_KEY is set: set BIBO_VAPID_PUBLIC_KEY and "
                "BIBO_VAPID_SUBJECT (mailto: or https:) too"
            )
        return self

    @model_validator(mode="after")
    def _no_placeholder_secret_in_production(self) -> Settings:
        if self.secret_key is None and self.environment == "development":
            self.secret_key = secrets.token_urlsafe(32)
        key = self.secret_key or ""
        if key.lower() in PLACEHOLDER_SECRETS or len(key) < 32:
            raise ValueError(
                "BIBO_SECRET_KEY: set a random value of at least 32 characters in production"
            )
        return self


def get_settings() -> Settings:
    return Settings()
