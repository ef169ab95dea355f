"""The contracts between phone, onboard unit and backend (docs/contracts.md: BLE payload,
Token derivation, Vehicle upload, Bus beacon, Phone sightings upload).

This module is the one place both ``onboard`` and ``backend`` import for the wire format.
It imports neither of them (only the standard library and pydantic), so the backend can
use it without pulling in bleak or anything else of the agent.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import re
import struct
import uuid
from typing import Annotated, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

# --- BLE advertisement (docs/contracts.md, BLE payload) -----------------------------------

TOKEN_INTERVAL_S: Final = 600
"""Length of one token interval in seconds; the phone rotates token and MAC with it."""

TOKEN_LABEL: Final = b"BIBO-TOKEN-v1"
"""Domain-separation prefix of the token HMAC input."""

TOKEN_BYTES: Final = 16
DEVICE_KEY_BYTES: Final = 32
PAYLOAD_VERSION: Final = 0x01
PAYLOAD_BYTES: Final = 1 + TOKEN_BYTES + 1

SERVICE_UUID16: Final = 0xFFB1
SERVICE_UUID: Final = "0000ffb1-0000-1000-8000-00805f9b34fb"
"""Full form of the default 16-bit service UUID; a deployment may register its own."""


def interval_of(unix_ms: int) -> int:
    """The token interval that contains ``unix_ms`` (UTC epoch milliseconds)."""
    return unix_ms // (TOKEN_INTERVAL_S * 1000)


def token_for_interval(device_key: bytes, interval: int) -> bytes:
    """``HMAC-SHA256(K, b"BIBO-TOKEN-v1" || i.to_bytes(4, "big"))[:16]``."""
    if len(device_key) != DEVICE_KEY_BYTES:
        raise ValueError(f"device_key: expected {DEVICE_KEY_BYTES} bytes, got {len(device_key)}")
    msg = TOKEN_LABEL + interval.to_bytes(4, "big")
    return hmac.new(device_key, msg, hashlib.sha256).digest()[:TOKEN_BYTES]


class PayloadError(enum.Enum):
    """Why service data was not a bibo payload (counted by the agent, never raised past it)."""

    WRONG_LENGTH = "wrong_length"
    UNKNOWN_VERSION = "unknown_version"


class Payload(BaseModel):
    """A decoded advertisement payload: the 10-minute token and calibrated tx power (dBm at 1 m)."""

    model_config = ConfigDict(frozen=True)

    token: bytes
    tx_power: int


def encode_payload(token: bytes, tx_power_dbm: int) -> bytes:
    """``version || token || tx_power`` (18 bytes); tx power is a signed byte in dBm."""
    if len(token) != TOKEN_BYTES:
        raise ValueError(f"token: expected {TOKEN_BYTES} bytes, got {len(token)}")
    return struct.pack(">B16sb", PAYLOAD_VERSION, token, tx_power_dbm)


def decode_payload(data: bytes) -> Payload | PayloadError:
    """Decode service data; a malformed payload is returned as its reason, never raised."""
    if len(data) != PAYLOAD_BYTES:
        return PayloadError.WRONG_LENGTH
    version, token, tx = struct.unpack(">B16sb", data)
    if version != PAYLOAD_VERSION:
        return PayloadError.UNKNOWN_VERSION
    return Payload(token=token, tx_power=tx)


# --- Upload (docs/contracts.md, Vehicle upload) -------------------------------------------

WIRE_VERSION: Final = 1
TIMESTAMP_HEADER: Final = "X-Bibo-Timestamp"
SIGNATURE_HEADER: Final = "X-Bibo-Signature"
MAX_CLOCK_SKEW_MS: Final = 300_000
"""Requests whose signed timestamp is further than this from the backend clock are refused."""

# Every bound below is what the backend's columns hold and the domain allows, so a batch
# that validates can always be stored and reconciled (issue 11).

EARLIEST_EPOCH_MS: Final = 1_577_836_800_000
"""2020-01-01T00:00:00Z: no bibo unit ran before; an earlier time is a unit whose clock was
never set (1970 after a power loss without a real-time clock)."""

LATEST_EPOCH_MS: Final = 4_102_444_800_000
"""2100-01-01T00:00:00Z: far beyond any unit's service life, well inside what the service-day
arithmetic (zoneinfo, dates) and a bigint column hold."""

MAX_BIGINT: Final = 2**63 - 1
"""Largest value of a PostgreSQL ``bigint`` column (``seq``)."""

MAX_SIGHTING_N: Final = 10_000
"""Adverts of one phone counted in one window of at most 60 s: BLE advertises at most every
20 ms (3,000 a minute); anything beyond is a broken counter, not a phone."""

MAX_SPEED_MPS: Final = 70.0
"""252 km/h: faster than any bus (or anything beside it on a road); beyond is a GNSS glitch."""

IDENTIFIER_PATTERN: Final = r"^[A-Za-z0-9_.:-]+$"
IDENTIFIER_MAX_CHARS: Final = 64
r"""Vehicle, unit, boot, line and journey ids: ASCII letters, digits and ``_.:-`` (no spaces,
no control characters), as long as their ``String(64)`` columns. ASCII, because ``\w``
means other things in other regex engines (the OpenAPI schema's readers take it as ASCII,
pydantic's as Unicode): the published pattern must mean what the server does."""

STOP_ID_PATTERN: Final = r"^de:[0-9]{5}:[0-9A-Za-z_:]+$"
STOP_ID_MAX_CHARS: Final = 64
"""A DHID such as ``de:05974:1001``, as long as the ``String(64)`` stop columns."""

TOKEN_HEX_PATTERN: Final = r"^[0-9a-f]{32}$"
_TIMESTAMP_HEADER_FORMAT: Final = re.compile(r"[0-9]{1,15}")
"""Unix ms in ASCII digits only (``str.isdigit`` also takes "²" and other scripts' digits)."""
_SIGNATURE_FORMAT: Final = re.compile(r"[0-9a-fA-F]{64}")

EpochMs = Annotated[
    int,
    Field(
        strict=True,
        ge=EARLIEST_EPOCH_MS,
        le=LATEST_EPOCH_MS,
        description="UTC epoch milliseconds, 2020-01-01 to 2100-01-01",
    ),
]
StopId = Annotated[
    str, StringConstraints(min_length=1, max_length=STOP_ID_MAX_CHARS, pattern=STOP_ID_PATTERN)
]
TokenHex = Annotated[str, StringConstraints(pattern=TOKEN_HEX_PATTERN)]
Identifier = Annotated[
    str,
    StringConstraints(min_length=1, max_length=IDENTIFIER_MAX_CHARS, pattern=IDENTIFIER_PATTERN),
]
Latitude = Annotated[float, Field(strict=True, ge=-90, le=90, allow_inf_nan=False)]
Longitude = Annotated[float, Field(strict=True, ge=-180, le=180, allow_inf_nan=False)]
SpeedMps = Annotated[
    float,
    Field(strict=True, ge=0, le=MAX_SPEED_MPS, allow_inf_nan=False, description="m/s"),
]


def sign(secret: bytes, timestamp_ms: int, raw_body: bytes) -> str:
    """``hex(HMAC-SHA256(secret, timestamp || "." || raw_body))``: the vehicle's secret for
    its uploads, a phone's upload key for its sightings."""
    msg = str(timestamp_ms).encode("ascii") + b"." + raw_body
    return hmac.new(secret, msg, hashlib.sha256).hexdigest()


def parse_timestamp_header(value: str) -> int | None:
    """The ``X-Bibo-Timestamp`` value as unix ms; None unless it is 1-15 ASCII digits."""
    return int(value) if _TIMESTAMP_HEADER_FORMAT.fullmatch(value) else None


def signature_valid(secret: bytes, timestamp_header: str, raw_body: bytes, signature: str) -> bool:
    """Constant-time check of a request signature (the timestamp exactly as sent).

    Anything but ASCII digits in the timestamp and 64 hex digits in the signature is simply
    invalid (``hmac.compare_digest`` raises on non-ASCII text).
    """
    if parse_timestamp_header(timestamp_header) is None or not _SIGNATURE_FORMAT.fullmatch(
        signature
    ):
        return False
    msg = timestamp_header.encode("ascii") + b"." + raw_body
    expected = hmac.new(secret, msg, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, signature.lower())


class _Event(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    t: EpochMs


class PositionEvent(_Event):
    type: Literal["position"] = "position"
    lat: Latitude
    lon: Longitude
    speed_mps: SpeedMps | None = None


class ArrivalEvent(_Event):
    type: Literal["arrival"] = "arrival"
    stop_id: StopId


class DepartureEvent(_Event):
    type: Literal["departure"] = "departure"
    stop_id: StopId


class DoorsOpenEvent(_Event):
    type: Literal["doors_open"] = "doors_open"


class DoorsClosedEvent(_Event):
    type: Literal["doors_closed"] = "doors_closed"


class JourneyEvent(_Event):
    type: Literal["journey"] = "journey"
    line: Identifier
    journey_id: Identifier
    direction: int = Field(ge=0, le=1)


Event = Annotated[
    PositionEvent
    | ArrivalEvent
    | DepartureEvent
    | DoorsOpenEvent
    | DoorsClosedEvent
    | JourneyEvent,
    Field(discriminator="type"),
]


class Sightings(BaseModel):
    """Columnar sightings: row k is token[k] heard n[k] times in the window from t[k].

    ``rssi`` is the strongest RSSI in dBm in that window, ``tx`` the advertised tx power
    (dBm at 1 m) or null.
    """

    model_config = ConfigDict(extra="forbid")

    t: list[EpochMs] = Field(default_factory=list)
    token: list[TokenHex] = Field(default_factory=list)
    rssi: list[Annotated[int, Field(strict=True, ge=-127, le=20)]] = Field(default_factory=list)
    n: list[Annotated[int, Field(strict=True, ge=1, le=MAX_SIGHTING_N)]] = Field(
        default_factory=list
    )
    tx: list[Annotated[int, Field(strict=True, ge=-128, le=127)] | None] = Field(
        default_factory=list
    )

    @model_validator(mode="after")
    def _same_length(self) -> Sightings:
        lengths = {k: len(getattr(self, k)) for k in ("t", "token", "rssi", "n", "tx")}
        if len(set(lengths.values())) > 1:
            detail = ", ".join(f"{k}={v}" for k, v in lengths.items())
            raise ValueError(f"all sightings arrays must have the same length (got {detail})")
        return self

    def __len__(self) -> int:
        return len(self.t)


class Batch(BaseModel):
    """One upload from an onboard unit; ``(vehicle_id, boot_id, seq)`` is its identity."""

    model_config = ConfigDict(extra="forbid")

    version: Literal[1]
    vehicle_id: Identifier
    unit_id: Identifier
    boot_id: Identifier
    seq: Annotated[int, Field(strict=True, ge=0, le=MAX_BIGINT)]
    sent_at: EpochMs
    window_ms: Annotated[int, Field(strict=True, gt=0, le=60_000)]
    events: list[Event] = Field(default_factory=list)
    sightings: Sightings = Field(default_factory=Sightings)


class BatchAccepted(BaseModel):
    """The backend's answer to an upload (HTTP 200 whether new or a duplicate)."""

    inserted: int
    duplicate: bool


# --- The bus as a beacon (docs/contracts.md, Bus beacon) ----------------------------------

BEACON_KEY_LABEL: Final = b"BIBO-BEACON-KEY-v1"
BEACON_LABEL: Final = b"BIBO-BEACON-v1"
"""Domain-separation labels of the vehicle's beacon key and of its per-interval beacon id."""

APPLE_COMPANY_ID: Final = 0x004C
"""The manufacturer-data company id an iBeacon is advertised under."""
IBEACON_PREFIX: Final = b"\x02\x15"
"""iBeacon's type (0x02) and the length of what follows (21 bytes)."""
IBEACON_BYTES: Final = len(IBEACON_PREFIX) + 16 + 2 + 2 + 1
DEFAULT_PROXIMITY_UUID: Final = uuid.UUID("9d1c0a59-5b1e-4c4b-8b1e-0000b1b0b1b0")
"""The deployment's beacon region (configurable); the phone app monitors it."""
BEACON_ID_MAX: Final = 0xFFFF


def beacon_key(vehicle_secret: bytes) -> bytes:
    """``HMAC-SHA256(vehicle_secret, b"BIBO-BEACON-KEY-v1")``: derived from the upload secret
    by bus and backend alike, so nothing new is provisioned."""
    if not vehicle_secret:
        raise ValueError("vehicle_secret: expected at least one byte")
    return hmac.new(vehicle_secret, BEACON_KEY_LABEL, hashlib.sha256).digest()


def beacon_for_interval(key: bytes, interval: int) -> tuple[int, int]:
    """The ``(major, minor)`` a vehicle advertises in ``interval``:
    ``HMAC-SHA256(beacon_key, b"BIBO-BEACON-v1" || i.to_bytes(4, "big"))[:4]``."""
    if len(key) != hashlib.sha256().digest_size:
        raise ValueError(f"beacon key: expected 32 bytes, got {len(key)}")
    if not 0 <= interval < 2**32:
        raise ValueError(f"interval: expected 0 to 2**32 - 1, got {interval}")
    digest = hmac.new(key, BEACON_LABEL + interval.to_bytes(4, "big"), hashlib.sha256).digest()
    major, minor = struct.unpack(">HH", digest[:4])
    return major, minor


class IBeacon(BaseModel):
    """An iBeacon advertisement's manufacturer data (company ``APPLE_COMPANY_ID``)."""

    model_config = ConfigDict(frozen=True)

    proximity_uuid: uuid.UUID
    major: int = Field(strict=True, ge=0, le=BEACON_ID_MAX)
    minor: int = Field(strict=True, ge=0, le=BEACON_ID_MAX)
    measured_power: int = Field(strict=True, ge=-128, le=127, description="dBm at 1 m")


def encode_ibeacon(beacon: IBeacon) -> bytes:
    """``0x02 0x15 || proximity_uuid || major || minor || measured_power`` (big-endian ids,
    signed power): the manufacturer data an onboard unit advertises."""
    return (
        IBEACON_PREFIX
        + beacon.proximity_uuid.bytes
        + struct.pack(">HHb", beacon.major, beacon.minor, beacon.measured_power)
    )


def decode_ibeacon(data: bytes) -> IBeacon | None:
    """The iBeacon in manufacturer data, or None if it is not one."""
    if len(data) != IBEACON_BYTES or not data.startswith(IBEACON_PREFIX):
        return None
    major, minor, power = struct.unpack(">HHb", data[18:])
    return IBeacon(
        proximity_uuid=uuid.UUID(bytes=data[2:18]), major=major, minor=minor, measured_power=power
    )


# --- Phone sightings upload (docs/contracts.md, Phone sightings upload) ---------------------

UPLOAD_KEY_LABEL: Final = b"BIBO-UPLOAD-v1"


def upload_key(device_key: bytes) -> bytes:
    """``HMAC-SHA256(K, b"BIBO-UPLOAD-v1")``: what a phone signs its uploads with (the token
    key ``K`` itself never signs anything that leaves the phone)."""
    if len(device_key) != DEVICE_KEY_BYTES:
        raise ValueError(f"device_key: expected {DEVICE_KEY_BYTES} bytes, got {len(device_key)}")
    return hmac.new(device_key, UPLOAD_KEY_LABEL, hashlib.sha256).digest()


class BeaconSightings(BaseModel):
    """Columnar beacon sightings of a phone: row k is the beacon ``(major[k], minor[k])`` of
    the deployment's proximity UUID, heard ``n[k]`` times in the second from ``t[k]``,
    strongest at ``rssi[k]`` dBm."""

    model_config = ConfigDict(extra="forbid")

    t: list[EpochMs] = Field(default_factory=list)
    major: list[Annotated[int, Field(strict=True, ge=0, le=BEACON_ID_MAX)]] = Field(
        default_factory=list
    )
    minor: list[Annotated[int, Field(strict=True, ge=0, le=BEACON_ID_MAX)]] = Field(
        default_factory=list
    )
    rssi: list[Annotated[int, Field(strict=True, ge=-127, le=20)]] = Field(default_factory=list)
    n: list[Annotated[int, Field(strict=True, ge=1, le=MAX_SIGHTING_N)]] = Field(
        default_factory=list
    )

    @model_validator(mode="after")
    def _same_length(self) -> BeaconSightings:
        lengths = {k: len(getattr(self, k)) for k in ("t", "major", "minor", "rssi", "n")}
        if len(set(lengths.values())) > 1:
            detail = ", ".join(f"{k}={v}" for k, v in lengths.items())
            raise ValueError(f"all beacons arrays must have the same length (got {detail})")
        return self

    def __len__(self) -> int:
        return len(self.t)


class RegionEvent(BaseModel):
    """The phone entered or left the deployment's beacon region (as its OS reported it)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    t: EpochMs
    type: Literal["enter", "exit"]


class ActivityEvent(BaseModel):
    """The phone's own motion activity from ``t`` on."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    t: EpochMs
    type: Literal["automotive", "walking", "stationary", "cycling", "unknown"]


class PhoneBatch(BaseModel):
    """One upload of a phone's beacon sightings; ``(device_id, batch_id)`` is its identity."""

    model_config = ConfigDict(extra="forbid")

    version: Literal[1]
    device_id: Identifier
    batch_id: Identifier
    sent_at: EpochMs
    platform: Literal["ios", "android"]
    beacons: BeaconSightings = Field(default_factory=BeaconSightings)
    regions: list[RegionEvent] = Field(default_factory=list)
    activity: list[ActivityEvent] = Field(default_factory=list)
