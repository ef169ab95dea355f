"""Web Push (RFC 8030, encrypted per RFC 8291, VAPID per RFC 8292): the one module that
imports pywebpush. The drain gets a ``PushSender``; tests pass a fake one."""

from __future__ import annotations

import base64
import enum
import logging
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from backend.notifications.const import PUSH_SERVICE_HOSTS, PUSH_TIMEOUT_S, PUSH_TTL_S
from backend.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Subscription:
    """Where a browser receives pushes, and its keys (base64url, as the browser gives them)."""

    endpoint: str
    p256dh: str
    auth: str


class PushOutcome(enum.Enum):
    DELIVERED = "delivered"
    """The push service accepted the message."""
    GONE = "gone"
    """The subscription no longer exists (404/410): forget it."""
    FAILED = "failed"
    """Anything else (network, 5xx, 4xx): not retried, a notification is sent at most once."""


PushSender = Callable[[Subscription, str], PushOutcome]
"""Post one message (JSON text) to one subscription."""


def endpoint_allowed(url: str) -> bool:
    """Whether a subscription endpoint names a known push service over HTTPS (see
    ``PUSH_SERVICE_HOSTS``): the server posts to it."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    return (
        parts.scheme == "https"
        and parts.port in (None, 443)
        and parts.username is None
        and any(host == h or host.endswith(f".{h}") for h in PUSH_SERVICE_HOSTS)
    )


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def generate_vapid_keys() -> tuple[str, str]:
    """A new VAPID key pair (P-256): the private key as the 32-byte scalar and the public
    key as the uncompressed point, both base64url (what browsers take as
    ``applicationServerKey``)."""
    key = ec.generate_private_key(ec.SECP256R1())
    private = key.private_numbers().private_value.to_bytes(32, "big")
    public = key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return _b64url(private), _b64url(public)


def webpush_sender(private_key: str, subject: str) -> PushSender:
    """A sender that posts through pywebpush, signed with the VAPID ``private_key``
    (base64url) and ``subject`` (``mailto:`` or ``https:``)."""
    from pywebpush import WebPushException, webpush

    def send(subscription: Subscription, data: str) -> PushOutcome:
        info = {
            "endpoint": subscription.endpoint,
            "keys": {"p256dh": subscription.p256dh, "auth": subscription.auth},
        }
        try:
            webpush(
                info,
                data,
                vapid_private_key=private_key,
                vapid_claims={"sub": subject},
                ttl=PUSH_TTL_S,
                timeout=PUSH_TIMEOUT_S,
            )
        except WebPushException as exc:
            status = getattr(exc.response, "status_code", None)
            if status in (404, 410):
                return PushOutcome.GONE
            # The endpoint names a device: log its host only, never the keys.
            log.warning(
                "web push to %s refused: %s", urlsplit(subscription.endpoint).hostname, status
            )
            return PushOutcome.FAILED
        except Exception as exc:  # network errors of requests, bad keys
            log.warning(
                "web push to %s failed: %s",
                urlsplit(subscription.endpoint).hostname,
                type(exc).__name__,
            )
            return PushOutcome.FAILED
        return PushOutcome.DELIVERED

    return send


def push_sender(settings: Settings) -> PushSender | None:
    """The sender the settings configure: None without VAPID keys (no push)."""
    if not (settings.vapid_private_key and settings.vapid_subject):
        return None
    return webpush_sender(settings.vapid_private_key, settings.vapid_subject)
