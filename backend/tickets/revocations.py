"""The signed revocation list inspectors download: which unexpired tickets no longer count.

Wire shape (versioned JSON)::

    {"version": 1, "key_id": "2026-12", "document": "<base64url>", "signature": "<base64url>"}

``document`` holds the exact JSON bytes the operator key signed (so nobody has to
re-serialise JSON the same way to check it): ``{"version": 1, "issued_at": <epoch s>,
"revoked": [{"ticket_id": "<16 hex>", "reason": "...", "valid_until": <epoch s>}, ...]}``.
A ticket leaves the list once it has expired anyway.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from backend.tickets.codec import PublicKey, b64url, from_b64url, list_signed_by, signed_list

LIST_VERSION = 1
REASONS = ("account_deleted", "trip_cancelled", "trip_conflict", "device_removed", "ride_ended")
"""Why a ticket is revoked: the rider deleted their account; an operator cancelled the trip;
the trip lost to a likelier one on another vehicle; the device was removed; the ride ended
(be-out, ``TICKET_ENDED_GRACE`` ago)."""


class RevocationListError(ValueError):
    """A revocation list that is not signed by a known key or not of this format."""


@dataclass(frozen=True)
class Revoked:
    ticket_id: bytes
    reason: str
    valid_until: int
    """UTC epoch s."""


@dataclass(frozen=True)
class RevocationList:
    issued_at: int
    """UTC epoch s: an inspector sees how old their list is."""
    revoked: tuple[Revoked, ...]

    def ticket_ids(self) -> frozenset[bytes]:
        return frozenset(r.ticket_id for r in self.revoked)


def sign(
    revoked: Sequence[Revoked], issued_at: int, key_id: str, key: Ed25519PrivateKey
) -> dict[str, Any]:
    document = json.dumps(
        {
            "version": LIST_VERSION,
            "issued_at": issued_at,
            "revoked": [
                {"ticket_id": r.ticket_id.hex(), "reason": r.reason, "valid_until": r.valid_until}
                for r in revoked
            ],
        },
        separators=(",", ":"),
    ).encode()
    return {
        "version": LIST_VERSION,
        "key_id": key_id,
        "document": b64url(document),
        "signature": b64url(signed_list(document, key)),
    }


def read(doc: object, keys: Mapping[str, PublicKey], now_s: float) -> RevocationList:
    """The list in ``doc`` if a known, unretired key signed it; raises
    :class:`RevocationListError` naming what is wrong."""
    if not isinstance(doc, dict) or doc.get("version") != LIST_VERSION:
        raise RevocationListError(f"version: expected an object with version {LIST_VERSION}")
    key = keys.get(str(doc.get("key_id")))
    if key is None:
        raise RevocationListError(f"key_id: unknown key {doc.get('key_id')!r}")
    if key.retire_at is not None and now_s >= key.retire_at:
        raise RevocationListError(f"key_id: key {key.key_id!r} is retired")
    try:
        document = from_b64url(str(doc.get("document")))
        signature = from_b64url(str(doc.get("signature")))
    except ValueError as exc:
        raise RevocationListError(f"document, signature: expected base64url ({exc})") from exc
    if not list_signed_by(key.public, signature, document):
        raise RevocationListError("signature: does not match the document")
    try:
        body = json.loads(document)
        return RevocationList(
            issued_at=int(body["issued_at"]),
            revoked=tuple(
                Revoked(bytes.fromhex(r["ticket_id"]), str(r["reason"]), int(r["valid_until"]))
                for r in body["revoked"]
            ),
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise RevocationListError(f"document: not a revocation list ({exc})") from exc
