"""Pydantic shapes of the notification routes."""

from __future__ import annotations

import re
from typing import Final

from pydantic import BaseModel, ConfigDict, Field, field_validator

from backend.notifications.const import PUSH_SERVICE_HOSTS

_B64URL = r"^[A-Za-z0-9_-]+={0,2}$"


def _caseless(text: str) -> str:
    """A regular expression matching ``text`` in any letter case, without flags: JSON
    Schema patterns have none, and a URL's scheme and host are case-insensitive (RFC 3986
    §3.1, §3.2.2), so ``HTTPS://FCM.googleapis.com`` names the same push service."""
    return "".join(f"[{c.lower()}{c.upper()}]" if c.isalpha() else re.escape(c) for c in text)


ENDPOINT_PATTERN: Final = (
    "^"
    + _caseless("https://")
    + r"([A-Za-z0-9-]+\.)*("
    + "|".join(_caseless(host) for host in PUSH_SERVICE_HOSTS)
    + r")(/[!-~]*)?$"
)
"""A subscription endpoint: HTTPS to a known push service (``PUSH_SERVICE_HOSTS``, or a
subdomain, in any letter case), no port or user; in the API schema, so a client learns it
there and not only from a refusal."""


class SubscriptionKeys(BaseModel):
    model_config = ConfigDict(extra="forbid")

    p256dh: str = Field(min_length=16, max_length=200, pattern=_B64URL)
    auth: str = Field(min_length=8, max_length=100, pattern=_B64URL)


class PushSubscriptionIn(BaseModel):
    """A browser's ``PushSubscription.toJSON()`` (``expirationTime`` is ignored)."""

    model_config = ConfigDict(extra="ignore")

    endpoint: str = Field(
        min_length=8, max_length=1000, json_schema_extra={"pattern": ENDPOINT_PATTERN}
    )
    keys: SubscriptionKeys

    @field_validator("endpoint")
    @classmethod
    def _known_push_service(cls, endpoint: str) -> str:
        if re.fullmatch(ENDPOINT_PATTERN, endpoint) is None:
            raise ValueError("expected an https URL of a known push service")
        return endpoint
