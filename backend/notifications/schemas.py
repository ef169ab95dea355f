"""Pydantic shapes of the notification routes."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

_B64URL = r"^[A-Za-z0-9_-]+={0,2}$"


class SubscriptionKeys(BaseModel):
    model_config = ConfigDict(extra="forbid")

    p256dh: str = Field(min_length=16, max_length=200, pattern=_B64URL)
    auth: str = Field(min_length=8, max_length=100, pattern=_B64URL)


class PushSubscriptionIn(BaseModel):
    """A browser's ``PushSubscription.toJSON()`` (``expirationTime`` is ignored)."""

    model_config = ConfigDict(extra="ignore")

    endpoint: str = Field(min_length=8, max_length=1000, pattern=r"^https://[!-~]+$")
    keys: SubscriptionKeys
