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


# scrypt parameters (RFC 7914): n=2**14, r=8, p=1 costs ~16 MB and ~50 ms per check, which
# makes offline guessing slow and keeps a login cheap enough for the server.
_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 2**14, 8, 1


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(
        password.encode(), salt=salt, n=_SCRYPT_N, r=_SCRYPT_R, p=_SCRYPT_P, dklen=32
    )
    return f"scrypt${_SCRYPT_N}${_SCRYPT_R}${_SCRYPT_P}${salt.hex()}${digest.hex()}"


def check_password(password: str, stored: str | None) -> bool:
    if not stored:
        return False
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    candidate = hashlib.scrypt(
        password.encode(), salt=bytes.fromhex(salt), n=int(n), r=int(r), p=int(p), dklen=32
    )
    return secrets.compare_digest(candidate.hex(), digest)
