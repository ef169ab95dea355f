"""Signed, idempotent batch ingest (docs/contracts.md, Vehicle upload): authenticate, decode,
validate, store once. The phone upload takes the same path (``receive``, ``UploadKind``;
``backend/phones/service.py``).

Also registers vehicles: a vehicle's secret is what its uploads are signed with.
"""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
import logging
import re
import time
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from pydantic import BaseModel, ValidationError
from sqlalchemy.orm import Session

from backend.const import (
    MAX_BODY_BYTES,
    MAX_EVENTS_PER_BATCH,
    MAX_SIGHTINGS_PER_BATCH,
    VEHICLE_SECRET_CACHE_S,
)
from backend.ingest import repository as ingest_repo
from backend.maintenance import repository as maintenance_repo
from backend.security import new_secret
from backend.timeutil import service_day_of, service_days
from backend.trips import repository as trips_repo
from onboard import wire

COMPANY_MAX_CHARS = 16
"""The longest transit company code the database holds (``vehicles.company``)."""
COMPANY_PATTERN = re.compile(rf"[A-Z0-9][A-Z0-9_-]{{0,{COMPANY_MAX_CHARS - 1}}}")
"""A transit company code (``RLG``, ``VKU``, ``DB-REGIO``): upper-case ASCII letters and
digits, ``_`` and ``-``, starting with a letter or digit. Upper case keeps it apart from the
revenue report's lower-case ``unassigned`` and ``unapportioned``."""


def check_company(company: str) -> str:
    """``company`` if it is a valid transit company code, else ValueError saying why."""
    if not COMPANY_PATTERN.fullmatch(company):
        raise ValueError(
            f"company {company!r}: expected 1-{COMPANY_MAX_CHARS} upper-case letters, digits, "
            "'_' or '-', starting with a letter or digit (e.g. RLG, VKU)"
        )
    return company


def register_vehicle(session: Session, vehicle_id: str, company: str | None = None) -> bytes:
    """Register a vehicle, run by the transit company ``company`` (None: not yet assigned),
    and return its upload secret (shown once). ValueError for an invalid company code."""
    return register_vehicles(session, [vehicle_id], company)[vehicle_id]


def register_vehicles(
    session: Session, vehicle_ids: Sequence[str], company: str | None = None
) -> dict[str, bytes]:
    """Register several vehicles of one company at once (a fleet): all or none, in the
    caller's transaction; their upload secrets by id. ValueError for an invalid company code
    or an id given twice, AlreadyExistsError (naming it) for one registered already."""
    if company is not None:
        check_company(company)
    twice = sorted(v for v, n in Counter(vehicle_ids).items() if n > 1)
    if twice:
        raise ValueError(f"vehicle {twice[0]!r} is given more than once")
    secrets = {vehicle_id: new_secret() for vehicle_id in vehicle_ids}
    ingest_repo.add_vehicles(session, secrets, company)
    return secrets


def set_vehicle_company(session: Session, vehicle_id: str, company: str | None) -> None:
    """Change (or with None clear) the transit company of a registered vehicle: revenue of
    ledger entries posted from then on goes to it; entries posted before keep their shares.
    ValueError for an invalid company code, LookupError for an unknown vehicle."""
    if company is not None:
        check_company(company)
    if not ingest_repo.set_vehicle_company(session, vehicle_id, company):
        raise LookupError(f"vehicle {vehicle_id!r} is not registered")


log = logging.getLogger(__name__)


class IngestErrorReason(enum.Enum):
    MISSING_AUTH = "missing_auth"
    STALE_TIMESTAMP = "stale_timestamp"
    BAD_SIGNATURE = "bad_signature"
    """Also an unknown vehicle: the same answer, so vehicle ids cannot be probed."""
    BODY_TOO_LARGE = "body_too_large"
    BAD_ENCODING = "bad_encoding"
    INVALID_BATCH = "invalid_batch"
    IDENTITY_CONFLICT = "identity_conflict"
    RATE_LIMITED = "rate_limited"


_STATUS = {
    IngestErrorReason.MISSING_AUTH: 401,
    IngestErrorReason.STALE_TIMESTAMP: 401,
    IngestErrorReason.BAD_SIGNATURE: 401,
    IngestErrorReason.BODY_TOO_LARGE: 413,
    IngestErrorReason.BAD_ENCODING: 400,
    IngestErrorReason.INVALID_BATCH: 422,
    IngestErrorReason.IDENTITY_CONFLICT: 422,
    IngestErrorReason.RATE_LIMITED: 429,
}


_SHOWN_CHARS = 40
"""A refused value is shown in the answer up to this many characters."""


_NO_SECRET = bytes(32)
"""Checked against for an unknown signer, so its refusal costs what a known one's does."""


class IngestError(Exception):
    """A refused upload; ``detail`` follows FastAPI's shape (``loc``, ``msg``, ``type``)."""

    def __init__(
        self,
        reason: IngestErrorReason,
        detail: list[dict[str, Any]] | str,
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.status = _STATUS[reason]
        self.detail = detail
        self.retry_after_s = retry_after_s


class SigningKeys(Protocol):
    """Where ``authenticate`` finds the key an id's uploads are signed with; ``fresh`` asks
    the database now rather than a cache."""

    def get(self, session: Session, signer_id: str, fresh: bool = False) -> bytes | None: ...


class VehicleSecrets:
    """Vehicles' upload secrets, each read from the database at most once per ``ttl_s`` in
    this process; ``get(..., fresh=True)`` reads it now."""

    def __init__(
        self, ttl_s: float = VEHICLE_SECRET_CACHE_S, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.ttl_s = ttl_s
        self.clock = clock
        self._cache: dict[str, tuple[float, bytes]] = {}

    def get(self, session: Session, vehicle_id: str, fresh: bool = False) -> bytes | None:
        now = self.clock()
        cached = self._cache.get(vehicle_id)
        if cached is not None and not fresh and now - cached[0] < self.ttl_s:
            return cached[1]
        secret = ingest_repo.vehicle_secret(session, vehicle_id)
        if secret is None:
            self._cache.pop(vehicle_id, None)
        else:
            self._cache[vehicle_id] = (now, secret)
        return secret


def authenticate(
    session: Session,
    signer_id: str,
    timestamp: str | None,
    signature: str | None,
    raw_body: bytes,
    now_ms: int,
    keys: SigningKeys,
) -> None:
    """Check the request's HMAC over ``timestamp "." raw_body`` and its freshness, with the
    key of ``signer_id`` (a vehicle, a device).

    Whether the signer exists is asked last, and an unknown one gets the answer of a wrong
    signature: a stranger learns nothing about which vehicle or device ids exist.
    """
    if not timestamp or not signature:
        raise IngestError(
            IngestErrorReason.MISSING_AUTH,
            f"headers {wire.TIMESTAMP_HEADER} and {wire.SIGNATURE_HEADER} are required",
        )
    sent_ms = wire.parse_timestamp_header(timestamp)
    if sent_ms is None or abs(sent_ms - now_ms) > wire.MAX_CLOCK_SKEW_MS:
        raise IngestError(
            IngestErrorReason.STALE_TIMESTAMP,
            f"{wire.TIMESTAMP_HEADER} must be unix ms in ASCII digits within "
            f"{wire.MAX_CLOCK_SKEW_MS // 1000} s of the server clock ({now_ms}), "
            f"got {timestamp[:_SHOWN_CHARS]!r}",
        )
    secret = keys.get(session, signer_id)
    if secret is None:
        log.info("upload signed for unknown id %r refused", signer_id)
        # The same work as for a known signer's wrong signature (checked against the cached
        # key, then against the database's), then the same answer.
        for _ in range(2):
            wire.signature_valid(_NO_SECRET, timestamp, raw_body, signature)
        raise _bad_signature()
    if not wire.signature_valid(secret, timestamp, raw_body, signature) and (
        (fresh := keys.get(session, signer_id, fresh=True)) is None
        or not wire.signature_valid(fresh, timestamp, raw_body, signature)
    ):
        raise _bad_signature()


def _bad_signature() -> IngestError:
    return IngestError(
        IngestErrorReason.BAD_SIGNATURE, f"{wire.SIGNATURE_HEADER} does not match the body"
    )


def decode_body(raw_body: bytes, content_encoding: str | None) -> bytes:
    encoding = (content_encoding or "identity").strip().lower()
    complete = True
    if encoding == "identity":
        body = raw_body
    elif encoding == "gzip":
        try:
            decompressor = zlib.decompressobj(wbits=31)
            body = decompressor.decompress(raw_body, MAX_BODY_BYTES + 1)
        except zlib.error as exc:
            raise IngestError(IngestErrorReason.BAD_ENCODING, f"body is not gzip: {exc}") from None
        complete = decompressor.eof
    else:
        shown = (content_encoding or "")[:_SHOWN_CHARS]
        raise IngestError(
            IngestErrorReason.BAD_ENCODING,
            f"Content-Encoding must be gzip or absent, got {shown!r}",
        )
    if len(body) > MAX_BODY_BYTES:
        raise IngestError(
            IngestErrorReason.BODY_TOO_LARGE, f"body exceeds {MAX_BODY_BYTES} bytes uncompressed"
        )
    if not complete:
        # Cut short, or without its checksum: the body may be a prefix of what was sent.
        raise IngestError(IngestErrorReason.BAD_ENCODING, "body is not gzip: the stream ends early")
    return body


Body = TypeVar("Body", bound=BaseModel)


def validate(model: type[Body], body: bytes) -> Body:
    """The body as ``model``; every error names its field (``["body", …]``) and the value."""
    try:
        return model.model_validate_json(body)
    except ValidationError as exc:
        detail = [
            {"loc": _loc(err), "msg": err["msg"] + _got(err), "type": err["type"]}
            for err in exc.errors(include_url=False, include_context=False)
        ]
        raise IngestError(IngestErrorReason.INVALID_BATCH, detail) from None


def check_rows(rows: Iterable[tuple[str, int, int]]) -> None:
    """Refuse a body with more rows than allowed: ``(field, rows, limit)`` each."""
    for name, count, limit in rows:
        if count > limit:
            raise field_error(
                IngestErrorReason.BODY_TOO_LARGE,
                name,
                f"at most {limit} rows per batch, got {count}",
                "too_long",
            )


def check_signer(field: str, body_id: str, path_id: str, what: str) -> None:
    """Refuse a body that names another signer than the URL (``what``: "vehicle", "device")."""
    if body_id != path_id:
        raise field_error(
            IngestErrorReason.INVALID_BATCH,
            field,
            f"must equal the {what} in the URL ({path_id!r}), got {body_id!r}",
            "value_error",
        )


def parse_batch(body: bytes, path_vehicle_id: str) -> wire.Batch:
    batch = validate(wire.Batch, body)
    check_rows(
        (
            ("sightings", len(batch.sightings), MAX_SIGHTINGS_PER_BATCH),
            ("events", len(batch.events), MAX_EVENTS_PER_BATCH),
        )
    )
    check_signer("vehicle_id", batch.vehicle_id, path_vehicle_id, "vehicle")
    return batch


def field_error(reason: IngestErrorReason, field: str, msg: str, type_: str) -> IngestError:
    """A refusal naming one body field, in FastAPI's shape."""
    return IngestError(reason, [{"loc": ["body", field], "msg": msg, "type": type_}])


def _loc(err: Any) -> list[str | int]:
    loc: list[str | int] = ["body", *err["loc"]]
    if err["type"] in ("union_tag_invalid", "union_tag_not_found"):
        loc.append("type")  # an event's ``type`` chooses its model: name it
    return loc


def _got(err: Any) -> str:
    """``, got <value>`` for a refused scalar (cut short); nothing for objects and arrays."""
    value = err.get("input")
    if err["type"] == "missing" or isinstance(value, dict | list | bytes):
        return ""
    shown = repr(value)
    if len(shown) > _SHOWN_CHARS:
        shown = shown[:_SHOWN_CHARS] + "..."
    return f", got {shown}"


def fingerprint(batch: BaseModel) -> bytes:
    """What makes two batches "the same": everything but ``sent_at``, which a resend may renew."""
    return hashlib.sha256(batch.model_dump_json(exclude={"sent_at"}).encode()).digest()


def stored_before(session: Session, batch: wire.Batch, digest: bytes) -> bool:
    """Whether this batch is stored already; the same identity with another body is refused."""
    stored = ingest_repo.batch_fingerprint(session, batch.vehicle_id, batch.boot_id, batch.seq)
    if stored is not None and stored != digest:
        raise field_error(
            IngestErrorReason.IDENTITY_CONFLICT,
            "seq",
            f"batch (vehicle_id={batch.vehicle_id!r}, boot_id={batch.boot_id!r}, "
            f"seq={batch.seq}) was stored before with another body",
            "identity_conflict",
        )
    return stored is not None


def store_batch(session: Session, batch: wire.Batch, now: dt.datetime) -> wire.BatchAccepted:
    """Store a batch once; a resend answers ``duplicate``, a different body is refused."""
    digest = fingerprint(batch)
    batch_id = ingest_repo.insert_batch(
        session,
        {
            "vehicle_id": batch.vehicle_id,
            "unit_id": batch.unit_id,
            "boot_id": batch.boot_id,
            "seq": batch.seq,
            "fingerprint": digest,
            "sent_at": batch.sent_at,
            "window_ms": batch.window_ms,
            "n_events": len(batch.events),
            "n_sightings": len(batch.sightings),
            "received_at": now,
        },
    )
    if batch_id is None:
        stored_before(session, batch, digest)  # refuses another body under this identity
        return wire.BatchAccepted(inserted=0, duplicate=True)

    # Before any row that retention deletes is written (on PostgreSQL, a lock on a day's
    # partition first and this lock second could deadlock with retention dropping it).
    final = maintenance_repo.hold_retention(session, writing=True)  # the batch row is written
    days: set[dt.date] = set()
    events = []
    for event in batch.events:
        day = service_day_of(event.t)
        days.add(day)
        row = event.model_dump()
        events.append(
            {
                "batch_id": batch_id,
                "vehicle_id": batch.vehicle_id,
                "service_day": day,
                "t": event.t,
                "type": event.type,
                "stop_id": row.get("stop_id"),
                "lat": row.get("lat"),
                "lon": row.get("lon"),
                "speed_mps": row.get("speed_mps"),
                "line": row.get("line"),
                "journey_id": row.get("journey_id"),
                "direction": row.get("direction"),
            }
        )
    s = batch.sightings
    service_day = service_days(s.t)
    days |= {service_day} if isinstance(service_day, dt.date) else set(service_day)
    ingest_repo.insert_events(session, events)
    ingest_repo.insert_sightings(
        session,
        ingest_repo.BatchSightings(
            batch_id, batch.vehicle_id, service_day, s.t, s.token, s.rssi, s.n, s.tx
        ),
    )
    # The agent seals every window closed by ``sent_at`` and uploads its outbox in order:
    # the vehicle's data is complete up to one window before it (a heartbeat says only that).
    sealed_until = batch.sent_at - batch.window_ms
    if days:
        # Data for a day past retention is kept and reported, never reconciled: that day's
        # trips and bills are final (docs/operations.md, Retention).
        late = sorted(day for day in days if final is not None and day < final)
        if late:
            ingest_repo.add_late_data(session, batch_id, batch.vehicle_id, late, now)
        # Only the vehicle's unit: its reconciliation marks the day's conflict unit in turn,
        # and rebuilds the journeys from the batch's earliest data on.
        units = {(day, batch.vehicle_id) for day in days if day not in late}
        since = min([e.t for e in batch.events] + ([min(s.t)] if s.t else []))
        trips_repo.mark_dirty(session, units, now, sealed_until, since)
    else:
        trips_repo.note_heartbeat(
            session, service_day_of(sealed_until), batch.vehicle_id, sealed_until, now
        )
    return wire.BatchAccepted(inserted=len(events) + len(s), duplicate=False)


class Allowance(Protocol):
    """A rate limit asked before a request's cost is known and charged after
    (``backend.limits.RateLimiter``)."""

    def wait_time(self, key: str) -> float: ...

    def take(self, key: str) -> None: ...


@dataclass(frozen=True)
class UploadKind(Generic[Body]):
    """What tells the signed uploads apart: who signs them (``signer``, named in refusals),
    how a body is read (``parse(body, id in the URL)``), whether it was stored before
    (``stored_before(session, body, fingerprint)``, refusing another body under its
    identity) and how it is stored once (``store(session, body, now)``)."""

    signer: str
    parse: Callable[[bytes, str], Body]
    stored_before: Callable[[Session, Body, bytes], bool]
    store: Callable[[Session, Body, dt.datetime], wire.BatchAccepted]


VEHICLE_UPLOAD = UploadKind("vehicle", parse_batch, stored_before, store_batch)


def ingest(
    session: Session,
    vehicle_id: str,
    headers: dict[str, str],
    raw_body: bytes,
    now: dt.datetime,
    secrets: VehicleSecrets,
    allowance: Allowance | None = None,
    resends: Allowance | None = None,
) -> wire.BatchAccepted:
    """The vehicle upload of one request (see ``receive``); the caller commits."""
    return receive(
        session, VEHICLE_UPLOAD, vehicle_id, headers, raw_body, now, secrets, allowance, resends
    )


def receive(
    session: Session,
    kind: UploadKind[Body],
    signer_id: str,
    headers: dict[str, str],
    raw_body: bytes,
    now: dt.datetime,
    keys: SigningKeys,
    allowance: Allowance | None = None,
    resends: Allowance | None = None,
) -> wire.BatchAccepted:
    """The whole path of one signed upload; the caller commits.

    ``keys`` finds the signer's key (and may cache it across requests). ``allowance`` is the
    signer's rate limit, asked once the signer is authenticated (so a stranger cannot use it
    up). Every request costs one token except one answered as a duplicate: a replayed or
    resent batch is answered even when the allowance is used up, and cannot use it up
    either. Duplicates draw on ``resends`` instead, a separate and generous allowance, so a
    captured request replayed in a loop (for the 300 s its timestamp is fresh) cannot make
    the server decode and look up batches without end.
    """
    now_ms = int(now.timestamp() * 1000)
    authenticate(
        session,
        signer_id,
        headers.get(wire.TIMESTAMP_HEADER.lower()),
        headers.get(wire.SIGNATURE_HEADER.lower()),
        raw_body,
        now_ms,
        keys,
    )
    wait = allowance.wait_time(signer_id) if allowance is not None else 0.0
    if wait > 0:
        batch = kind.parse(decode_body(raw_body, headers.get("content-encoding")), signer_id)
        if kind.stored_before(session, batch, fingerprint(batch)):
            return _resent(kind.signer, signer_id, resends)
        raise IngestError(
            IngestErrorReason.RATE_LIMITED,
            f"{kind.signer} {signer_id!r} uploads too often; retry in {wait:.1f} s",
            retry_after_s=wait,
        )
    try:
        batch = kind.parse(decode_body(raw_body, headers.get("content-encoding")), signer_id)
        accepted = kind.store(session, batch, now)
    except IngestError:
        if allowance is not None:
            allowance.take(signer_id)  # a refused batch costs as much as a new one
        raise
    if accepted.duplicate:
        return _resent(kind.signer, signer_id, resends)
    if allowance is not None:
        allowance.take(signer_id)
    return accepted


def _resent(signer: str, signer_id: str, resends: Allowance | None) -> wire.BatchAccepted:
    """The answer to a batch stored before, while the signer's resend allowance lasts."""
    if resends is not None:
        wait = resends.wait_time(signer_id)
        if wait > 0:
            raise IngestError(
                IngestErrorReason.RATE_LIMITED,
                f"{signer} {signer_id!r} resends stored batches too often; retry in {wait:.1f} s",
                retry_after_s=wait,
            )
        resends.take(signer_id)
    return wire.BatchAccepted(inserted=0, duplicate=True)
