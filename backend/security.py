"""Secrets and API tokens: generation and the hashes the database keeps instead of tokens."""

from __future__ import annotations

import hashlib
import secrets

from backend.const import SECRET_BYTES


def new_secret() -> bytes:
    return secrets.token_bytes(SECRET_BYTES)


def new_api_token(prefix: str) -> str:
    """An opaque bearer token; only its SHA-256 is stored."""
    return f"{prefix}_{secrets.token_urlsafe(SECRET_BYTES)}"


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(8)}"
