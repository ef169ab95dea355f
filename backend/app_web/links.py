"""Signed invoice links: an invoice opens by a short-lived URL instead of a Bearer header, so
the app can hand it to the browser (a new page, print) like any link. The link carries the
passenger, the invoice, the language and its expiry, signed with ``BIBO_SECRET_KEY``
(itsdangerous, HMAC-SHA1 over a salt of its own, so no other signed value of bibo passes)."""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass
from typing import Any, Literal

from itsdangerous import BadSignature, URLSafeSerializer

_SALT = "bibo.invoice-link.v1"
Lang = Literal["de", "en"]


@dataclass(frozen=True)
class InvoiceLink:
    passenger_id: str
    invoice_id: int
    lang: Lang
    expires_at: dt.datetime


class LinkErrorReason(enum.Enum):
    INVALID = "invalid"
    """Not a link bibo signed (or signed with another key)."""
    EXPIRED = "expired"


class LinkError(Exception):
    def __init__(self, reason: LinkErrorReason) -> None:
        super().__init__(f"invoice link {reason.value}")
        self.reason = reason


def _serializer(secret: str) -> URLSafeSerializer:
    return URLSafeSerializer(secret, salt=_SALT)


def sign(
    secret: str,
    passenger_id: str,
    invoice_id: int,
    lang: Lang,
    now: dt.datetime,
    ttl_s: int,
) -> tuple[str, dt.datetime]:
    """The link token and when it expires (``now`` plus ``ttl_s`` seconds)."""
    expires = now + dt.timedelta(seconds=ttl_s)
    token = _serializer(secret).dumps(
        {"p": passenger_id, "i": invoice_id, "l": lang, "e": int(expires.timestamp())}
    )
    return str(token), expires


def read(secret: str, token: str, now: dt.datetime) -> InvoiceLink:
    """What a link token names; ``LinkError`` if it is not bibo's or has expired at ``now``."""
    try:
        data: Any = _serializer(secret).loads(token)
    except (BadSignature, UnicodeError, ValueError):
        raise LinkError(LinkErrorReason.INVALID) from None
    if not (
        isinstance(data, dict)
        and isinstance(data.get("p"), str)
        and isinstance(data.get("i"), int)
        and data.get("l") in ("de", "en")
        and isinstance(data.get("e"), int)
    ):
        raise LinkError(LinkErrorReason.INVALID)
    expires = dt.datetime.fromtimestamp(data["e"], tz=dt.UTC)
    if now >= expires:
        raise LinkError(LinkErrorReason.EXPIRED)
    return InvoiceLink(data["p"], data["i"], data["l"], expires)
