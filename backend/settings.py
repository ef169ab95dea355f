"""Settings of the backend process, read from ``BIBO_*`` environment variables."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATABASE_URL = "sqlite:///bibo.sqlite3"


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
    trips_retention_days: int = Field(default=365, ge=1)
    reconcile_in_background: bool = Field(
        default=True, description="Reconcile service days that received data, every 30 s."
    )


def get_settings() -> Settings:
    return Settings()
