"""The reference phone client: what the bibo app does on a phone, as executable
specification for the real apps (docs/contracts.md: Token derivation, Bus beacon, Phone
sightings upload).

- A phone that can advertise (Android) sends the BLE payload of the current interval's
  token (``advert``).
- A phone that hears the bus beacon (every iPhone; an Android phone may too) keeps what it
  heard, its region enter/exit and its motion activity in a durable outbox on the phone
  (``PhoneOutbox``, SQLite): one row per (second, beacon), the strongest RSSI and how often.
- ``seal`` turns what is waiting into a batch, the exact upload body, under a new batch id;
  ``PhoneSender.flush`` posts every sealed batch, signed with the device's upload key
  (never the token key), until the backend has it. Store and forward: a phone offline for
  hours keeps everything and delivers it later, and a batch sent twice (an answer lost on
  the way back) is stored once, because its batch id is its identity.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal
from urllib.parse import quote

import httpx
from pydantic import ValidationError

from onboard import wire
from onboard.uploader import SignedUploader, UploadStatus

PHONE_BATCH_MAX_ROWS: Final = 5_000
"""Beacon rows in one batch at most: about 80 minutes of one bus heard every second, well
inside the backend's upload bound (docs/contracts.md, Vehicle upload) once gzipped."""

TX_POWER_UNKNOWN: Final = 0x7F
"""The payload's tx byte when the platform cannot say (docs/contracts.md, BLE payload)."""

Platform = Literal["ios", "android"]
RegionKind = Literal["enter", "exit"]
ActivityKind = Literal["automotive", "walking", "stationary", "cycling", "unknown"]

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS heard (
    t INTEGER NOT NULL, major INTEGER NOT NULL, minor INTEGER NOT NULL,
    rssi INTEGER NOT NULL, n INTEGER NOT NULL,
    PRIMARY KEY (t, major, minor)
);
CREATE TABLE IF NOT EXISTS events (
    k INTEGER PRIMARY KEY, kind TEXT NOT NULL, t INTEGER NOT NULL, type TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS batches (
    k INTEGER PRIMARY KEY, batch_id TEXT NOT NULL UNIQUE, body BLOB NOT NULL,
    refused TEXT
);
"""
"""``heard`` and ``events`` wait to be sealed; ``batches`` holds sealed bodies until the
backend has them (then they are deleted), or, with ``refused`` set, bodies it refused for
good (kept for support, never sent again)."""


@dataclass(frozen=True, slots=True)
class PhoneIdentity:
    """What registration gave the phone (``POST /v1/passengers/{id}/devices``)."""

    device_id: str
    device_key: bytes
    platform: Platform


def advert(identity: PhoneIdentity, now_ms: int, tx_power_dbm: int = TX_POWER_UNKNOWN) -> bytes:
    """The BLE service data a phone that can advertise sends at ``now_ms``."""
    token = wire.token_for_interval(identity.device_key, wire.interval_of(now_ms))
    return wire.encode_payload(token, tx_power_dbm)


@dataclass(frozen=True, slots=True)
class SealedPhoneBatch:
    batch_id: str
    body: bytes


def batch_body(
    device_id: str,
    batch_id: str,
    sent_at: int,
    platform: Platform,
    rows: Sequence[tuple[int, int, int, int, int]],
    events: Sequence[tuple[int, str, str]],
) -> bytes:
    """A phone upload's exact body (docs/contracts.md, Phone sightings upload): beacon
    ``rows`` ``(t, major, minor, rssi, n)``, ``events`` ``(t, "region" | "activity", type)``."""
    batch = wire.PhoneBatch(
        version=1,
        device_id=device_id,
        batch_id=batch_id,
        sent_at=sent_at,
        platform=platform,
        beacons=wire.BeaconSightings(
            t=[r[0] for r in rows],
            major=[r[1] for r in rows],
            minor=[r[2] for r in rows],
            rssi=[r[3] for r in rows],
            n=[r[4] for r in rows],
        ),
        regions=[
            wire.RegionEvent.model_validate({"t": t, "type": kind})
            for t, what, kind in events
            if what == "region"
        ],
        activity=[
            wire.ActivityEvent.model_validate({"t": t, "type": kind})
            for t, what, kind in events
            if what == "activity"
        ],
    )
    return json.dumps(batch.model_dump(mode="json"), separators=(",", ":")).encode()


class PhoneOutbox:
    """What the phone heard, kept on the phone until the backend has it.

    Every method commits before it returns: what was added or sealed survives the app being
    killed. ``new_batch_id`` makes batch ids (a random UUID by default; tests pass their own).
    """

    def __init__(
        self,
        path: Path,
        identity: PhoneIdentity,
        new_batch_id: Callable[[], str] = lambda: str(uuid.uuid4()),
    ) -> None:
        self.identity = identity
        self._new_batch_id = new_batch_id
        self.dropped = 0
        """Readings refused on the way in (out of the contract's range), since opening."""
        self._db = sqlite3.connect(path, isolation_level=None)
        # WAL with NORMAL sync: a commit survives the app being killed (the common case on
        # a phone); only a power cut may take the last moments, as on the phone's own apps.
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def hear(self, t_ms: int, major: int, minor: int, rssi: int) -> bool:
        """One reception of a beacon of the deployment's region (the OS reports only the
        region's UUID to the app) at ``rssi`` dBm; False (and not kept) for a reading the
        upload contract refuses (an RSSI of 127 means "not available")."""
        second = t_ms - t_ms % 1000
        try:
            wire.BeaconSightings(t=[second], major=[major], minor=[minor], rssi=[rssi], n=[1])
        except ValidationError:
            self.dropped += 1
            return False
        with self._transaction() as db:
            db.execute(
                "INSERT INTO heard (t, major, minor, rssi, n) VALUES (?, ?, ?, ?, 1) "
                "ON CONFLICT (t, major, minor) DO UPDATE SET n = n + 1, "
                "rssi = max(rssi, excluded.rssi)",
                (second, major, minor, rssi),
            )
        return True

    def region(self, t_ms: int, kind: RegionKind) -> bool:
        return self._event("region", t_ms, kind, wire.RegionEvent)

    def activity(self, t_ms: int, kind: ActivityKind) -> bool:
        return self._event("activity", t_ms, kind, wire.ActivityEvent)

    def _event(
        self,
        kind: str,
        t_ms: int,
        type_: str,
        model: type[wire.RegionEvent] | type[wire.ActivityEvent],
    ) -> bool:
        try:
            model.model_validate({"t": t_ms, "type": type_})
        except ValidationError:
            self.dropped += 1
            return False
        with self._transaction() as db:
            db.execute("INSERT INTO events (kind, t, type) VALUES (?, ?, ?)", (kind, t_ms, type_))
        return True

    def seal(self, now_ms: int) -> list[str]:
        """Turn what waits into batches of at most ``PHONE_BATCH_MAX_ROWS`` rows (the seconds
        that are over by ``now_ms``: the current one may still hear more); their batch ids
        (none if nothing waits)."""
        sealed: list[str] = []
        with self._transaction() as db:
            while True:
                rows = db.execute(
                    "SELECT t, major, minor, rssi, n FROM heard WHERE t + 1000 <= ? "
                    "ORDER BY t, major, minor LIMIT ?",
                    (now_ms, PHONE_BATCH_MAX_ROWS),
                ).fetchall()
                events = [] if sealed else db.execute("SELECT kind, t, type FROM events").fetchall()
                if not rows and not events:
                    return sealed
                batch_id = self._new_batch_id()
                body = batch_body(
                    self.identity.device_id,
                    batch_id,
                    now_ms,
                    self.identity.platform,
                    rows,
                    [(t, kind, type_) for kind, t, type_ in events],
                )
                db.execute("INSERT INTO batches (batch_id, body) VALUES (?, ?)", (batch_id, body))
                db.executemany(
                    "DELETE FROM heard WHERE t = ? AND major = ? AND minor = ?",
                    [(r[0], r[1], r[2]) for r in rows],
                )
                db.execute("DELETE FROM events")
                sealed.append(batch_id)

    def pending(self) -> list[SealedPhoneBatch]:
        """Sealed batches the backend does not have yet (refused ones aside), oldest first."""
        rows = self._db.execute(
            "SELECT batch_id, body FROM batches WHERE refused IS NULL ORDER BY k"
        ).fetchall()
        return [SealedPhoneBatch(batch_id, bytes(body)) for batch_id, body in rows]

    def refused(self) -> list[tuple[str, str]]:
        """(batch id, the backend's reason) of the batches it refused for good."""
        rows = self._db.execute(
            "SELECT batch_id, refused FROM batches WHERE refused IS NOT NULL ORDER BY k"
        ).fetchall()
        return [(batch_id, reason) for batch_id, reason in rows]

    def delivered(self, batch_id: str) -> None:
        """The backend has it: the body leaves the phone."""
        with self._transaction() as db:
            db.execute("DELETE FROM batches WHERE batch_id = ?", (batch_id,))

    def refuse(self, batch_id: str, reason: str) -> None:
        """The backend will never take it (sending again cannot help): keep it aside."""
        with self._transaction() as db:
            db.execute("UPDATE batches SET refused = ? WHERE batch_id = ?", (reason, batch_id))


def phone_uploader(
    client: httpx.AsyncClient,
    base_url: str,
    device_id: str,
    device_key: bytes,
    wall_clock: Callable[[], int],
) -> SignedUploader:
    """The signed sender of one phone's uploads: ``POST {base_url}/v1/devices/{id}/sightings``
    signed with the device's upload key (never the token key itself)."""
    url = f"{base_url.rstrip('/')}/v1/devices/{quote(device_id, safe=':')}/sightings"
    return SignedUploader(client, url, wire.upload_key(device_key), wall_clock)


class PhoneSender:
    """Posts the outbox's sealed batches to ``POST {base_url}/v1/devices/{id}/sightings``,
    signed with the upload key; a batch leaves the outbox only once the backend has it."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        base_url: str,
        outbox: PhoneOutbox,
        wall_clock: Callable[[], int],
    ) -> None:
        identity = outbox.identity
        self._outbox = outbox
        self._uploader = phone_uploader(
            client, base_url, identity.device_id, identity.device_key, wall_clock
        )
        self.retry_after_ms: int | None = None
        """How long the backend asked the phone to wait after the last flush (429, 503)."""

    async def flush(self) -> int:
        """Send every pending batch once, oldest first; how many the backend now has. Stops
        at the first batch that must wait (offline, overloaded: the caller backs off,
        ``retry_after_ms`` if the backend said how long), so the order is kept."""
        delivered = 0
        self.retry_after_ms = None
        for batch in self._outbox.pending():
            outcome = await self._uploader.send(batch.body)
            if outcome.status is UploadStatus.RETRY:
                self.retry_after_ms = outcome.retry_after_ms
                break
            if outcome.status is UploadStatus.QUARANTINE:
                self._outbox.refuse(batch.batch_id, outcome.detail)
                continue
            self._outbox.delivered(batch.batch_id)
            delivered += 1
        return delivered
