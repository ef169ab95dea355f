"""The operator's ticket keys: a keyset of Ed25519 keys named by key id, one of them signing.

Rotation: a new key signs from now on, the old one stays in the keyset with a ``retire_at``
no earlier than the last ticket it signed expires, so inspectors keep accepting those tickets
until then and refuse the key after. The keyset file is versioned JSON::

    {"version": 1, "signing": "2026-12",
     "keys": [{"key_id": "2026-12", "seed": "<base64url, 32 bytes>", "public": "...",
               "retire_at": null},
              {"key_id": "2026-11", "public": "...", "retire_at": 1796000000}]}

``seed`` is the private key: only the signing key needs it, and it never leaves the server
(``BIBO_TICKET_KEYS_FILE``). :func:`public_keyset` is what inspectors download.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from backend.const import TICKET_VALIDITY
from backend.tickets.codec import KEY_ID, PublicKey, b64url, from_b64url

KEYSET_VERSION = 1


class KeysetError(ValueError):
    """A keyset file that cannot be used; the message names the field."""


@dataclass(frozen=True)
class Keyset:
    """Every key by id; ``signing`` names the one that signs (None: verification only)."""

    keys: Mapping[str, PublicKey]
    seeds: Mapping[str, bytes] = field(default_factory=dict, repr=False)
    signing: str | None = None

    def signer(self) -> tuple[str, Ed25519PrivateKey]:
        if self.signing is None or self.signing not in self.seeds:
            raise KeysetError("signing: the keyset holds no private key to sign with")
        return self.signing, Ed25519PrivateKey.from_private_bytes(self.seeds[self.signing])


def public_bytes(seed: bytes) -> bytes:
    key = Ed25519PrivateKey.from_private_bytes(seed).public_key()
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def generate(key_id: str, seed: bytes | None = None) -> Keyset:
    """A keyset of one new signing key (``seed``: fixed for tests, else random)."""
    if not KEY_ID.fullmatch(key_id):
        raise KeysetError(f"key_id: expected 1-16 of A-Z a-z 0-9 . _ -, got {key_id!r}")
    seed = seed if seed is not None else secrets.token_bytes(32)
    return Keyset({key_id: PublicKey(key_id, public_bytes(seed))}, {key_id: seed}, key_id)


def rotate(keyset: Keyset, new_key_id: str, now: dt.datetime, seed: bytes | None = None) -> Keyset:
    """A new signing key; the old signing key retires once the tickets it signed until
    ``now`` have expired (``now`` + the ticket validity), and its private key is dropped."""
    if new_key_id in keyset.keys:
        raise KeysetError(f"key_id: {new_key_id!r} is already in the keyset")
    fresh = generate(new_key_id, seed)
    keys = dict(keyset.keys)
    if keyset.signing is not None:
        old = keys[keyset.signing]
        retire = int((now + TICKET_VALIDITY).timestamp()) + 1
        keys[old.key_id] = PublicKey(old.key_id, old.public, retire)
    keys[new_key_id] = fresh.keys[new_key_id]
    return Keyset(keys, dict(fresh.seeds), new_key_id)


def to_json(keyset: Keyset, private: bool) -> dict[str, Any]:
    """The keyset as a JSON document; ``private=False`` leaves out the seeds."""
    doc: dict[str, Any] = {
        "version": KEYSET_VERSION,
        "keys": [
            {"key_id": k.key_id, "public": b64url(k.public), "retire_at": k.retire_at}
            | (
                {"seed": b64url(keyset.seeds[k.key_id])}
                if private and k.key_id in keyset.seeds
                else {}
            )
            for k in sorted(keyset.keys.values(), key=lambda k: k.key_id)
        ],
    }
    if private and keyset.signing is not None:
        doc["signing"] = keyset.signing
    return doc


def from_json(doc: object) -> Keyset:
    """A keyset from its JSON document (private or public); raises :class:`KeysetError`."""
    if not isinstance(doc, dict) or doc.get("version") != KEYSET_VERSION:
        raise KeysetError(f"version: expected a keyset object with version {KEYSET_VERSION}")
    entries = doc.get("keys")
    if not isinstance(entries, list) or not entries:
        raise KeysetError("keys: expected a non-empty list")
    keys: dict[str, PublicKey] = {}
    seeds: dict[str, bytes] = {}
    for n, entry in enumerate(entries):
        where = f"keys[{n}]"
        if not isinstance(entry, dict):
            raise KeysetError(f"{where}: expected an object")
        key_id = entry.get("key_id")
        if not isinstance(key_id, str) or not KEY_ID.fullmatch(key_id) or key_id in keys:
            raise KeysetError(f"{where}.key_id: expected a new id of 1-16 of A-Z a-z 0-9 . _ -")
        public = _bytes32(entry.get("public"), f"{where}.public")
        retire_at = entry.get("retire_at")
        if retire_at is not None and (type(retire_at) is not int or retire_at < 0):
            raise KeysetError(f"{where}.retire_at: expected epoch seconds or null")
        if "seed" in entry:
            seed = _bytes32(entry["seed"], f"{where}.seed")
            if public_bytes(seed) != public:
                raise KeysetError(f"{where}.seed: does not belong to its public key")
            seeds[key_id] = seed
        keys[key_id] = PublicKey(key_id, public, retire_at)
    signing = doc.get("signing")
    if signing is not None and signing not in seeds:
        raise KeysetError(f"signing: {signing!r} is not a key with a seed in the keyset")
    return Keyset(keys, seeds, signing)


def _bytes32(value: object, where: str) -> bytes:
    try:
        data = from_b64url(value) if isinstance(value, str) else b""
    except ValueError:
        data = b""
    if len(data) != 32:
        raise KeysetError(f"{where}: expected 32 bytes as base64url")
    return data


def load(path: Path) -> Keyset:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise KeysetError(f"{path}: cannot read ({exc.strerror})") from exc
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise KeysetError(f"{path}: not JSON ({exc.msg}, line {exc.lineno})") from exc
    return from_json(doc)


def save(keyset: Keyset, path: Path, private: bool) -> None:
    """Write the keyset; a private one only readable by its owner (mode 0600)."""
    text = json.dumps(to_json(keyset, private), indent=2) + "\n"
    if private:
        path.touch(mode=0o600, exist_ok=True)
        path.chmod(0o600)
    path.write_text(text, encoding="utf-8")


def from_settings(ticket_keys_file: Path | None, development: bool) -> Keyset | None:
    """The process's keyset: the file's, or in development a new key of this process (its
    tickets verify only while it runs: export its keys from ``/v1/inspect/keys``); None in
    production without a file (no tickets are issued)."""
    if ticket_keys_file is not None:
        return load(ticket_keys_file)
    if development:
        return generate(f"dev-{secrets.token_hex(4)}")
    return None
