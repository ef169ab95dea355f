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
    RETRY = "retry"
    """The push service did not take it, for now (network error, time-out, 429, 5xx): the
    drain tries again later (``PUSH_RETRY_DELAYS_S``)."""
    FAILED = "failed"
    """Refused for good (any other 4xx, keys that do not encrypt): not tried again."""


PushSender = Callable[[Subscription, str, str], PushOutcome]
"""Post one message (JSON text) to one subscription under a topic (RFC 8030 §5.4: a push
service replaces an undelivered message of the same topic, so a retry after a time-out
whose first post did get through is not queued twice; the app's service worker shows one
notification per trip and kind in any case)."""


def classify_status(status: int) -> PushOutcome:
    """What a push service's refusal with HTTP ``status`` means for the drain."""
    if status in (404, 410):
        return PushOutcome.GONE
    if status in (408, 429) or status >= 500:
        return PushOutcome.RETRY
    return PushOutcome.FAILED


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

    def send(subscription: Subscription, data: str, topic: str) -> PushOutcome:
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
                headers={"Topic": topic, "Urgency": "high"},
            )
        except WebPushException as exc:
            status = getattr(exc.response, "status_code", None)
            # No response: pywebpush refused before posting (a bad subscription or key).
            outcome = PushOutcome.FAILED if status is None else classify_status(status)
            if outcome is not PushOutcome.GONE:
                # The endpoint names a device: log its host only, never the keys.
                log.warning(
                    "web push to %s refused: %s (%s)",
                    urlsplit(subscription.endpoint).hostname,
                    status,
                    outcome.value,
                )
            return outcome
        except OSError as exc:  # no answer (requests' errors are OSErrors): refused, time-out
            log.warning(
                "web push to %s got no answer: %s (retry)",
                urlsplit(subscription.endpoint).hostname,
                type(exc).__name__,
            )
            return PushOutcome.RETRY
        except Exception as exc:  # keys that do not encrypt
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
