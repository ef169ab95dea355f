"""The inspection ticket's wire format, its signatures and the inspector's verdict: pure
functions, no I/O (docs/inspection-ticket.md has the same layout with the reasons).

A QR code holds ``base64url(frame)`` without padding, where (all integers big-endian)::

    frame = body ‖ issuer signature (64) ‖ step (u32) ‖ time code (64)

    body  = "BI" ‖ version (u8, 1)
          ‖ key id (u8 length 1-16, ASCII [A-Za-z0-9._-])    the operator key that signs
          ‖ ticket id (8 bytes, random)                       VDV-KA: Berechtigungs-ID
          ‖ rider reference (8 bytes)                         VDV-KA: Kundennummer (pseudonym)
          ‖ rider category (u8, CATEGORY_CODES)               VDV-KA: Produkt / Personentyp
          ‖ flags (u8; bit 0: provisional be-in)
          ‖ issued at, boarded at, valid until (u32 each, UTC epoch s)
                                                  VDV-KA: Ausgabe, Gültigkeitsbeginn/-ende
          ‖ vehicle id (u8 length ‖ UTF-8)        VDV-KA: Geltungsbereich (here: one vehicle)
          ‖ boarding stop id (u8 length ‖ UTF-8)
          ‖ companions (u8 n ‖ n × (category u8, count u8))   VDV-KA: Mitnahme
          ‖ ticket public key (32 bytes, Ed25519)

* The **issuer signature** is Ed25519 by the operator's key ``key id`` over
  ``b"bibo-ticket/1\\x00" ‖ body``. The backend signs; the inspector holds the public keys.
* The **time code** is Ed25519 by the *ticket's own* key over
  ``b"bibo-code/1\\x00" ‖ ticket id ‖ step`` with ``step = floor(unix seconds / 30)``. The
  phone holds the ticket's private key; its public key is inside the signed body, so an
  offline inspector can check the code with nothing but the operator's public keys. A code
  is fresh during its own step only, give or take ``TICKET_CODE_SKEW_S`` of clock
  difference; outside that it is *stale*: a screenshot, refused at the latest 30 s plus that
  allowance after it was taken.

Why not an HMAC time code (TOTP)? The inspector would need the HMAC secret to check it, and
anything an offline inspector can read from the QR a screenshot can read too: with the
secret in the payload anyone could make the next code. A commitment (a hash chain) would
work as well, but a signature is one check, of constant cost, by the primitive that signs
the body anyway.

Where it differs from the VDV-KA static barcode (modelled on, not conformant to it): VDV-KA
wraps its Berechtigung in a certificate chain of the VDV PKI with ECDSA or RSA signatures
and numeric organisation, product and area codes; bibo signs with its own Ed25519 keys
(64-byte signatures, small QR codes, keys named by id and rotated through a published
keyset), names its own stops and vehicles, and adds the time code, which VDV-KA's static
barcode does not have. A ticket is valid on one vehicle, not in a fare zone: be-in/be-out
prices the ride afterwards, so the ticket only shows that the rider is checked in here.
"""

from __future__ import annotations

import base64
import binascii
import enum
import re
import struct
from collections.abc import Collection, Mapping
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from backend.const import TICKET_CODE_SKEW_S, TICKET_CODE_STEP_S

MAGIC = b"BI"
VERSION = 1
TICKET_DOMAIN = b"bibo-ticket/1\x00"
CODE_DOMAIN = b"bibo-code/1\x00"
REVOCATION_DOMAIN = b"bibo-revocations/1\x00"
"""Each thing an operator key signs is prefixed with its own label, so a signed revocation
list can never be passed off as a ticket body, nor a time code as either."""
SIGNATURE_BYTES = 64
KEY_BYTES = 32
TICKET_ID_BYTES = 8
RIDER_REF_BYTES = 8
MAX_TEXT_BYTES = 64
"""Longest vehicle or stop id (the database's column width)."""
KEY_ID = re.compile(r"[A-Za-z0-9._-]{1,16}")
CATEGORY_CODES: Mapping[str, int] = {
    "adult": 1,
    "child": 2,
    "preschool": 3,
    "infant": 4,
    "bike": 5,
}
"""Rider categories and companions (``backend/passengers/companions.py``) as one byte."""
_CATEGORY_NAMES = {code: name for name, code in CATEGORY_CODES.items()}
FLAG_PROVISIONAL = 0x01
_TIMES = struct.Struct(">III")
_STEP = struct.Struct(">I")


class FormatError(ValueError):
    """Bytes that are not a ticket of this format; the message names the field."""


@dataclass(frozen=True)
class Ticket:
    """The signed body of a ticket. Times are UTC epoch seconds."""

    key_id: str
    ticket_id: bytes
    rider_ref: bytes
    rider_category: str
    provisional: bool
    issued_at: int
    boarded_at: int
    valid_until: int
    vehicle_id: str
    board_stop_id: str
    companions: tuple[tuple[str, int], ...]
    ticket_public_key: bytes


@dataclass(frozen=True)
class Presented:
    """What a QR code shows: the ticket, its issuer signature, a step and its time code."""

    ticket: Ticket
    body: bytes
    signature: bytes
    step: int
    code: bytes


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def from_b64url(text: str) -> bytes:
    """Strict base64url without padding; a space or line break around it is ignored."""
    text = text.strip()
    if not re.fullmatch(r"[A-Za-z0-9_-]*", text) or len(text) % 4 == 1:
        raise FormatError("payload: expected base64url text (A-Z a-z 0-9 - _)")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except binascii.Error as exc:  # pragma: no cover - the pattern above admits only valid text
        raise FormatError(f"payload: not base64url ({exc})") from exc


def _text(value: str, field: str) -> bytes:
    data = value.encode("utf-8")
    if not 1 <= len(data) <= MAX_TEXT_BYTES:
        raise FormatError(f"{field}: expected 1-{MAX_TEXT_BYTES} bytes of UTF-8, got {value!r}")
    return bytes([len(data)]) + data


def _u32(value: int, field: str) -> int:
    if not 0 <= value < 2**32:
        raise FormatError(f"{field}: expected epoch seconds 0-{2**32 - 1}, got {value}")
    return value


def encode_body(ticket: Ticket) -> bytes:
    if not KEY_ID.fullmatch(ticket.key_id):
        raise FormatError(f"key_id: expected 1-16 of A-Z a-z 0-9 . _ -, got {ticket.key_id!r}")
    if len(ticket.ticket_id) != TICKET_ID_BYTES or len(ticket.rider_ref) != RIDER_REF_BYTES:
        raise FormatError("ticket_id, rider_ref: expected 8 bytes each")
    if len(ticket.ticket_public_key) != KEY_BYTES:
        raise FormatError("ticket_public_key: expected 32 bytes")
    if ticket.rider_category not in CATEGORY_CODES:
        raise FormatError(
            f"rider_category: expected one of {list(CATEGORY_CODES)}, got {ticket.rider_category!r}"
        )
    if len(ticket.companions) > 255:
        raise FormatError("companions: expected at most 255 entries")
    companions = bytearray([len(ticket.companions)])
    for category, count in ticket.companions:
        if category not in CATEGORY_CODES or not 1 <= count <= 255:
            raise FormatError(f"companions: {category!r} x {count} is not a category x 1-255")
        companions += bytes([CATEGORY_CODES[category], count])
    key_id = ticket.key_id.encode("ascii")
    return b"".join(
        (
            MAGIC,
            bytes([VERSION, len(key_id)]),
            key_id,
            ticket.ticket_id,
            ticket.rider_ref,
            bytes([CATEGORY_CODES[ticket.rider_category]]),
            bytes([FLAG_PROVISIONAL if ticket.provisional else 0]),
            _TIMES.pack(
                _u32(ticket.issued_at, "issued_at"),
                _u32(ticket.boarded_at, "boarded_at"),
                _u32(ticket.valid_until, "valid_until"),
            ),
            _text(ticket.vehicle_id, "vehicle_id"),
            _text(ticket.board_stop_id, "board_stop_id"),
            bytes(companions),
            ticket.ticket_public_key,
        )
    )


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.at = 0

    def take(self, n: int, field: str) -> bytes:
        if self.at + n > len(self.data):
            raise FormatError(f"{field}: payload ends early (byte {self.at} of {len(self.data)})")
        chunk = self.data[self.at : self.at + n]
        self.at += n
        return chunk

    def byte(self, field: str) -> int:
        return self.take(1, field)[0]

    def text(self, field: str) -> str:
        n = self.byte(field)
        if not 1 <= n <= MAX_TEXT_BYTES:
            raise FormatError(f"{field}: length {n} out of 1-{MAX_TEXT_BYTES}")
        try:
            return self.take(n, field).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise FormatError(f"{field}: not UTF-8") from exc


def _category(code: int, field: str) -> str:
    if code not in _CATEGORY_NAMES:
        raise FormatError(f"{field}: unknown category code {code}")
    return _CATEGORY_NAMES[code]


def _read_body(r: _Reader) -> Ticket:
    if r.take(2, "magic") != MAGIC:
        raise FormatError("magic: not a bibo ticket (expected 'BI')")
    if (version := r.byte("version")) != VERSION:
        raise FormatError(f"version: expected {VERSION}, got {version}")
    n = r.byte("key_id")
    key_id = r.take(n, "key_id").decode("ascii", errors="replace")
    if not KEY_ID.fullmatch(key_id):
        raise FormatError("key_id: expected 1-16 of A-Z a-z 0-9 . _ -")
    ticket_id = r.take(TICKET_ID_BYTES, "ticket_id")
    rider_ref = r.take(RIDER_REF_BYTES, "rider_ref")
    category = _category(r.byte("rider_category"), "rider_category")
    flags = r.byte("flags")
    if flags & ~FLAG_PROVISIONAL:
        raise FormatError(f"flags: unknown bits in {flags:#04x}")
    issued_at, boarded_at, valid_until = _TIMES.unpack(r.take(_TIMES.size, "times"))
    vehicle_id = r.text("vehicle_id")
    board_stop_id = r.text("board_stop_id")
    companions = tuple(
        (_category(r.byte("companions"), "companions"), r.byte("companions"))
        for _ in range(r.byte("companions"))
    )
    if any(count == 0 for _, count in companions):
        raise FormatError("companions: a count of 0")
    public_key = r.take(KEY_BYTES, "ticket_public_key")
    return Ticket(
        key_id=key_id,
        ticket_id=ticket_id,
        rider_ref=rider_ref,
        rider_category=category,
        provisional=bool(flags & FLAG_PROVISIONAL),
        issued_at=issued_at,
        boarded_at=boarded_at,
        valid_until=valid_until,
        vehicle_id=vehicle_id,
        board_stop_id=board_stop_id,
        companions=companions,
        ticket_public_key=public_key,
    )


def decode(frame: bytes) -> Presented:
    """Split a frame into its parts; raises :class:`FormatError`. Checks no signature."""
    r = _Reader(frame)
    ticket = _read_body(r)
    body = frame[: r.at]
    signature = r.take(SIGNATURE_BYTES, "signature")
    (step,) = _STEP.unpack(r.take(_STEP.size, "step"))
    code = r.take(SIGNATURE_BYTES, "time_code")
    if r.at != len(frame):
        raise FormatError(f"payload: {len(frame) - r.at} bytes after the time code")
    return Presented(ticket, body, signature, step, code)


def sign_body(body: bytes, issuer: Ed25519PrivateKey) -> bytes:
    """``body`` with the issuer's signature: what the backend hands the phone."""
    return body + issuer.sign(TICKET_DOMAIN + body)


def step_of(epoch_s: float) -> int:
    return int(epoch_s // TICKET_CODE_STEP_S)


def time_code(ticket_key: Ed25519PrivateKey, ticket_id: bytes, step: int) -> bytes:
    return ticket_key.sign(CODE_DOMAIN + ticket_id + _STEP.pack(step))


def frame(signed_body: bytes, ticket_key: Ed25519PrivateKey, ticket_id: bytes, step: int) -> bytes:
    """The bytes a QR code holds at ``step``: the signed body, the step and its code."""
    return signed_body + _STEP.pack(step) + time_code(ticket_key, ticket_id, step)


# --- verification --------------------------------------------------------------------------


class State(enum.Enum):
    """What an inspector can act on."""

    VALID = "valid"
    PROVISIONAL = "provisional"
    """Valid, but the be-in is not yet certain (the bus just left the boarding stop, or the
    model is unsure)."""
    STALE = "stale"
    """The signatures hold but the time code is old: a screenshot."""
    WRONG_VEHICLE = "wrong_vehicle"
    EXPIRED = "expired"
    REVOKED = "revoked"
    INVALID = "invalid"
    """Not a ticket (malformed), a forged or altered one, or one signed by an unknown or
    retired key."""

    @property
    def accepted(self) -> bool:
        return self in (State.VALID, State.PROVISIONAL)


@dataclass(frozen=True)
class PublicKey:
    """An operator's verification key; ``retire_at`` (UTC epoch s) ends its use, None: never."""

    key_id: str
    public: bytes
    retire_at: int | None = None


@dataclass(frozen=True)
class Verdict:
    state: State
    reason: str
    """One line for the inspector (English; the page words the states itself)."""
    ticket: Ticket | None = None
    step: int | None = None


def verify(
    payload: str,
    keys: Mapping[str, PublicKey],
    now_s: float,
    vehicle_id: str | None = None,
    revoked: Collection[bytes] = (),
) -> Verdict:
    """The verdict on a scanned ``payload`` at ``now_s`` (UTC epoch s), offline.

    ``keys`` by key id; ``vehicle_id``: the vehicle the inspector is on (None: not checked);
    ``revoked``: ticket ids of the newest signed revocation list. Checks, in order: the
    format, the key (known, not retired), the issuer signature, the time code's signature,
    revocation, expiry, the code's age, the vehicle; the first that fails decides.
    """
    try:
        shown = decode(from_b64url(payload))
    except FormatError as exc:
        return Verdict(State.INVALID, f"not a bibo ticket: {exc}")
    ticket = shown.ticket
    key = keys.get(ticket.key_id)
    if key is None:
        return Verdict(State.INVALID, f"unknown key id {ticket.key_id!r}", ticket)
    if key.retire_at is not None and now_s >= key.retire_at:
        return Verdict(State.INVALID, f"key {ticket.key_id!r} retired at {key.retire_at}", ticket)
    if not _signed(key.public, shown.signature, TICKET_DOMAIN + shown.body):
        return Verdict(State.INVALID, "issuer signature does not match: altered or forged")
    code_message = CODE_DOMAIN + ticket.ticket_id + _STEP.pack(shown.step)
    if not _signed(ticket.ticket_public_key, shown.code, code_message):
        return Verdict(State.INVALID, "time code does not match the ticket: forged", ticket)
    if ticket.ticket_id in revoked:
        return Verdict(State.REVOKED, "ticket is on the revocation list", ticket, shown.step)
    if now_s > ticket.valid_until:
        return Verdict(State.EXPIRED, f"valid until {ticket.valid_until}", ticket, shown.step)
    begins = shown.step * TICKET_CODE_STEP_S
    if not begins - TICKET_CODE_SKEW_S <= now_s <= begins + TICKET_CODE_STEP_S + TICKET_CODE_SKEW_S:
        return Verdict(
            State.STALE,
            f"time code is for {begins}-{begins + TICKET_CODE_STEP_S}, "
            f"now is {int(now_s)} (screenshot?)",
            ticket,
            shown.step,
        )
    if vehicle_id is not None and ticket.vehicle_id != vehicle_id:
        return Verdict(
            State.WRONG_VEHICLE,
            f"ticket is for vehicle {ticket.vehicle_id!r}, not {vehicle_id!r}",
            ticket,
            shown.step,
        )
    if ticket.provisional:
        return Verdict(State.PROVISIONAL, "valid; be-in not yet certain", ticket, shown.step)
    return Verdict(State.VALID, "valid", ticket, shown.step)


def _signed(public: bytes, signature: bytes, message: bytes) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(public).verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True


def signed_list(document: bytes, issuer: Ed25519PrivateKey) -> bytes:
    """The signature of a revocation list document (its exact bytes)."""
    return issuer.sign(REVOCATION_DOMAIN + document)


def list_signed_by(public: bytes, signature: bytes, document: bytes) -> bool:
    return _signed(public, signature, REVOCATION_DOMAIN + document)
