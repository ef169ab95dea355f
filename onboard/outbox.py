"""Durable SQLite outbox: nothing heard is lost on a crash, and every batch keeps one identity.

Events and sighting rows wait *unbatched* until ``seal`` moves them, in one transaction,
into a *sealed batch*: the exact JSON body of a ``wire.Batch`` with the next ``seq``. The
body is stored (gzip-compressed, ~10x smaller) and never rebuilt, so a resend after a
restart is byte-identical and the backend stores it once (docs/contracts.md,
Identity and duplicates). ``seq`` comes from
one persisted counter that is never reused in this file, so it is monotonic per
``(vehicle_id, boot_id)`` and names a batch uniquely within the outbox, whichever boot
sealed it.

Nothing the backend would refuse is stored: a sighting row whose time lies outside the wire
format's 2020..2100 (a unit whose clock was never set), or whose token, RSSI or count the wire
format cannot carry, and an event the wire format refuses, are dropped on the way in (``add``).
Two values are repaired instead, as the row still says who was heard when: a count above
``wire.MAX_SIGHTING_N`` is clamped to it (it still means "heard very often"), and a tx power
outside ``TX_POWER_MIN_DBM``..``TX_POWER_MAX_DBM`` is stored as unknown (null). Each is
counted in the file (``meta``) and logged, once per run of such writes. Should ``seal`` still
meet a stored row the wire format refuses (written by an older release, or by hand), it
moves that row to the ``quarantined_rows`` table with the reason, logs it and seals the
rest: one bad row never stops the outbox from sealing.

Overflow policy at the disk cap (``max_bytes``): rows set aside at sealing go first (they
can never be sent), then the oldest *sightings*, vehicle events never. A sealed batch that
was never offered to the backend (or was quarantined) loses its sighting rows and keeps its
events under the same identity (no backend has seen that identity, so no conflict can
arise); one without events goes entirely. Batches already offered are never touched: the
backend may hold them. Unbatched rows, the newest, go last. Every dropped row is counted in
the file (``meta``) and logged.
"""

from __future__ import annotations

import enum
import gzip
import json
import logging
import math
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Literal
from urllib.parse import quote

from pydantic import TypeAdapter, ValidationError

from onboard import wire
from onboard.const import (
    GZIP_LEVEL,
    MAX_BATCH_EVENTS,
    MAX_BATCH_SIGHTINGS,
    MAX_WINDOW_MS,
    OUTBOX_CAP_LOW_WATER,
    OUTBOX_RECORD_VERSION,
    OUTBOX_SCHEMA_VERSION,
    OUTBOX_UNBATCHED_ROW_BYTES,
    QUARANTINE_REASON_MAX_CHARS,
    RSSI_MAX_DBM,
    RSSI_MIN_DBM,
    SQLITE_BUSY_TIMEOUT_S,
    TX_POWER_MAX_DBM,
    TX_POWER_MIN_DBM,
)
from onboard.windowing import SightingRow

_log = logging.getLogger(__name__)

_EVENT_ADAPTER: Final[TypeAdapter[wire.Event]] = TypeAdapter(wire.Event)
_IDENTIFIER_ADAPTER: Final[TypeAdapter[str]] = TypeAdapter(wire.Identifier)

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS events (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    version INTEGER NOT NULL,
    t       INTEGER NOT NULL,
    body    TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS sightings (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    version INTEGER NOT NULL,
    t       INTEGER NOT NULL,
    token   BLOB NOT NULL,
    rssi    INTEGER NOT NULL,
    n       INTEGER NOT NULL,
    tx      INTEGER
);
CREATE TABLE IF NOT EXISTS batches (
    seq         INTEGER PRIMARY KEY,
    version     INTEGER NOT NULL,
    vehicle_id  TEXT NOT NULL,
    unit_id     TEXT NOT NULL,
    boot_id     TEXT NOT NULL,
    sealed_at   INTEGER NOT NULL,
    n_events    INTEGER NOT NULL,
    n_sightings INTEGER NOT NULL,
    body        BLOB NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('pending', 'quarantined')),
    attempts    INTEGER NOT NULL DEFAULT 0,
    last_error  TEXT,
    encoding    TEXT NOT NULL DEFAULT 'identity' CHECK (encoding IN ('identity', 'gzip')),
    offered     INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS batches_status_seq ON batches (status, seq);
CREATE TABLE IF NOT EXISTS quarantined_rows (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    version        INTEGER NOT NULL,
    kind           TEXT NOT NULL CHECK (kind IN ('event', 'sighting')),
    body           TEXT NOT NULL,
    reason         TEXT NOT NULL,
    quarantined_at INTEGER NOT NULL
);
"""

_MIGRATE_1_TO_2: Final = (
    "ALTER TABLE batches ADD COLUMN encoding TEXT NOT NULL DEFAULT 'identity'"
    " CHECK (encoding IN ('identity', 'gzip'))",
    "ALTER TABLE batches ADD COLUMN offered INTEGER NOT NULL DEFAULT 0",
    # A version-1 agent kept no record of which batches it had sent: assume all of them.
    "UPDATE batches SET offered = 1",
)
"""Schema 1 (first agent) to 2: compressed bodies, and whether a batch was ever offered.
Schema 2 to 3 only adds the ``quarantined_rows`` table, which ``_SCHEMA`` creates."""

_NEXT_SEQ_KEY: Final = "next_seq"
_DROPPED_SIGHTINGS_KEY: Final = "dropped_sightings"
_LAST_DELIVERY_KEY: Final = "last_delivery_ms"
_REFUSED_SIGHTINGS_KEY: Final = "refused_sightings"
_REFUSED_EVENTS_KEY: Final = "refused_events"
_CLAMPED_SIGHTINGS_KEY: Final = "clamped_sightings"
_COUNTER_KEYS: Final = (
    _NEXT_SEQ_KEY,
    _DROPPED_SIGHTINGS_KEY,
    _REFUSED_SIGHTINGS_KEY,
    _REFUSED_EVENTS_KEY,
    _CLAMPED_SIGHTINGS_KEY,
)

Encoding = Literal["identity", "gzip"]


class OutboxErrorReason(enum.Enum):
    """Why the outbox refused an operation."""

    UNREADABLE = "unreadable"
    READ_FAILED = "read_failed"
    WRITE_FAILED = "write_failed"
    NEWER_SCHEMA = "newer_schema"
    CLOSED = "closed"
    CLOCK_NOT_SET = "clock_not_set"


class OutboxError(Exception):
    """An outbox operation failed; ``reason`` is structured, the message names the field."""

    def __init__(self, reason: OutboxErrorReason, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class SealedBatch:
    """A batch waiting for delivery: its identity, exact stored bytes and delivery history.

    ``stored`` is the body as kept on disk, in ``encoding``; ``body`` the JSON bytes.
    ``sealed_at`` in UTC epoch ms (data clock); ``attempts`` counts failed sends;
    ``offered`` says whether it was ever handed to the uploader (the backend may hold it).
    """

    seq: int
    vehicle_id: str
    boot_id: str
    stored: bytes
    encoding: Encoding
    attempts: int
    sealed_at: int
    n_events: int
    n_sightings: int
    offered: bool = False

    @property
    def body(self) -> bytes:
        """The batch's JSON bytes (``wire.Batch``), exactly as sealed."""
        return gzip.decompress(self.stored) if self.encoding == "gzip" else self.stored

    @property
    def gzipped(self) -> bytes | None:
        """The stored gzip bytes, ``None`` if stored uncompressed."""
        return self.stored if self.encoding == "gzip" else None


@dataclass(frozen=True, slots=True)
class OutboxHealth:
    """Counts for a health report; ``oldest_pending_age_ms`` is ``None`` when nothing waits.

    ``used_bytes`` is the data in the file (pages in use); ``dropped_sightings`` counts
    sighting rows dropped at the disk cap over the file's life; ``last_delivery_ms`` is the
    data time (epoch ms) of the last delivered batch, ``None`` if none yet. Over the file's
    life, ``refused_sightings`` and ``refused_events`` count what was not stored because the
    wire format refuses it, ``clamped_sightings`` the rows stored with their count capped at
    ``wire.MAX_SIGHTING_N`` or their tx power as unknown; ``quarantined_rows`` are stored rows
    sealing set aside.
    """

    pending_batches: int
    quarantined_batches: int
    unbatched_events: int
    unbatched_sightings: int
    oldest_pending_age_ms: int | None
    used_bytes: int = 0
    dropped_sightings: int = 0
    last_delivery_ms: int | None = None
    oldest_unsent_age_ms: int | None = None
    """Age of the oldest data not yet delivered: a pending batch, or an unbatched row."""
    refused_sightings: int = 0
    refused_events: int = 0
    clamped_sightings: int = 0
    quarantined_rows: int = 0


@dataclass(frozen=True, slots=True)
class AddReport:
    """What one ``add`` stored: rows and events taken, refused, and rows with ``n`` clamped."""

    sightings: int = 0
    events: int = 0
    refused_sightings: int = 0
    refused_events: int = 0
    clamped_sightings: int = 0


@dataclass(frozen=True, slots=True)
class DropReport:
    """What one enforcement of the disk cap dropped."""

    sightings: int = 0
    batches_stripped: int = 0
    batches_deleted: int = 0
    unbatched: int = 0
    quarantined: int = 0
    """Rows set aside at sealing, deleted (they can never be sent)."""


class Outbox:
    """The durable queue between the agent and the uploader, in one SQLite file.

    ``boot_id`` names this run of the unit (a fresh UUID per process start); batches
    sealed now carry it, batches sealed by earlier runs keep theirs. ``max_bytes`` is the
    disk cap (``None``: none), enforced after every write; ``compress`` stores sealed
    bodies gzip-compressed (the default) rather than as plain JSON. ``vehicle_id``,
    ``unit_id`` and ``boot_id`` go into every batch, so an id the wire format refuses
    raises ``ValueError`` here rather than failing every seal later.
    """

    def __init__(
        self,
        path: str | Path,
        vehicle_id: str,
        unit_id: str,
        boot_id: str,
        *,
        max_bytes: int | None = None,
        compress: bool = True,
    ) -> None:
        if max_bytes is not None and max_bytes <= 0:
            raise ValueError(f"max_bytes: expected a positive number of bytes, got {max_bytes}")
        for name, value in (("vehicle_id", vehicle_id), ("unit_id", unit_id), ("boot_id", boot_id)):
            _check_identifier(name, value)
        self.vehicle_id = vehicle_id
        self.unit_id = unit_id
        self.boot_id = boot_id
        self.max_bytes = max_bytes
        self._encoding: Encoding = "gzip" if compress else "identity"
        self._path = str(path)
        self._db: sqlite3.Connection | None = None
        self._over_cap_logged = False
        self._refusals_logged = False
        self.sealed_bytes = 0
        """Bytes of batch bodies sealed through this object, as stored (for benchmarks)."""
        try:
            self._db = sqlite3.connect(
                self._path, timeout=SQLITE_BUSY_TIMEOUT_S, isolation_level=None
            )
            self._open()
        except sqlite3.Error as exc:
            self.close()
            raise OutboxError(
                OutboxErrorReason.UNREADABLE, f"outbox {self._path}: cannot open: {exc}"
            ) from exc
        except OutboxError:
            self.close()
            raise

    def _open(self) -> None:
        db = self._conn
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        (found,) = db.execute("PRAGMA user_version").fetchone()
        if found > OUTBOX_SCHEMA_VERSION:
            raise OutboxError(
                OutboxErrorReason.NEWER_SCHEMA,
                f"outbox {self._path}: schema version {found} is newer than this agent's "
                f"{OUTBOX_SCHEMA_VERSION}; upgrade the agent",
            )
        with self._transaction():
            if found == 1:
                for statement in _MIGRATE_1_TO_2:
                    db.execute(statement)
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    db.execute(statement)
            for key in _COUNTER_KEYS:
                db.execute("INSERT OR IGNORE INTO meta (key, value) VALUES (?, 0)", (key,))
            db.execute(f"PRAGMA user_version = {OUTBOX_SCHEMA_VERSION}")

    # --- plumbing ------------------------------------------------------------------------

    @property
    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise OutboxError(OutboxErrorReason.CLOSED, f"outbox {self._path}: already closed")
        return self._db

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction: everything inside commits together or not at all."""
        db = self._conn
        try:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            # Disk full, I/O error, lock held too long: nothing of this transaction was kept.
            raise OutboxError(
                OutboxErrorReason.WRITE_FAILED, f"outbox {self._path}: write failed: {exc}"
            ) from exc

    @contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection]:
        """A read: an SQLite error (I/O, corruption, lock held too long) becomes ``OutboxError``."""
        try:
            yield self._conn
        except sqlite3.Error as exc:
            raise OutboxError(
                OutboxErrorReason.READ_FAILED, f"outbox {self._path}: read failed: {exc}"
            ) from exc

    def close(self) -> None:
        """Close the file; committed data stays, nothing is marked delivered."""
        if self._db is not None:
            self._db.close()
            self._db = None

    def __enter__(self) -> Outbox:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # --- writing -------------------------------------------------------------------------

    def add_events(self, events: Sequence[wire.Event]) -> AddReport:
        """Store vehicle events in one transaction; one the backend would refuse is dropped."""
        return self.add(events=events)

    def add_sightings(self, rows: Sequence[SightingRow]) -> AddReport:
        """Store sighting rows in one transaction; a row the backend would refuse is dropped."""
        return self.add(rows=rows)

    def add(self, rows: Sequence[SightingRow] = (), events: Sequence[wire.Event] = ()) -> AddReport:
        """Store sighting rows and vehicle events together in one transaction (one fsync).

        What the backend would refuse is dropped and the rest stored: a row with a time
        outside ``wire.EARLIEST_EPOCH_MS``..``wire.LATEST_EPOCH_MS`` (a clock never set), a
        token, RSSI, count or tx power the wire format cannot carry, an event that does not
        validate. ``n`` above ``wire.MAX_SIGHTING_N`` is clamped to it, a tx power outside
        ``TX_POWER_MIN_DBM``..``TX_POWER_MAX_DBM`` stored as unknown (``None``). Both are
        counted in the file and logged once per run of such writes; the ``AddReport`` says
        what happened.
        """
        if not rows and not events:
            return AddReport()
        values: list[tuple[int, int, bytes, int, int, int | None]] = []
        refused_rows = clamped = refused_events = 0
        first: str | None = None
        for row in rows:
            admitted = _admit_sighting(row.t, row.token, row.rssi, row.n, row.tx)
            if isinstance(admitted, str):
                refused_rows += 1
                first = first or f"sighting row {admitted}"
                continue
            if admitted[3] != row.n or admitted[4] != row.tx:
                clamped += 1
                first = first or f"sighting row {_repair_text(row.n, row.tx, admitted)}"
            values.append((OUTBOX_RECORD_VERSION, *admitted))
        bodies: list[tuple[int, int, str]] = []
        for event in events:
            try:
                body = _event_body(event)
            except (ValueError, TypeError) as exc:
                refused_events += 1
                first = first or f"event {_error_text(exc)}"
                continue
            bodies.append((OUTBOX_RECORD_VERSION, event.t, body))
        with self._transaction() as db:
            if values:
                db.executemany(
                    "INSERT INTO sightings (version, t, token, rssi, n, tx)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    values,
                )
            if bodies:
                db.executemany("INSERT INTO events (version, t, body) VALUES (?, ?, ?)", bodies)
            for key, count in (
                (_REFUSED_SIGHTINGS_KEY, refused_rows),
                (_REFUSED_EVENTS_KEY, refused_events),
                (_CLAMPED_SIGHTINGS_KEY, clamped),
            ):
                if count:
                    _bump(db, key, count)
        report = AddReport(len(values), len(bodies), refused_rows, refused_events, clamped)
        self._log_refusals(report, first)
        if values:
            self.enforce_cap()
        return report

    def _log_refusals(self, report: AddReport, first: str | None) -> None:
        """One warning per run of writes with refused or clamped values (the counts persist)."""
        if first is None:
            self._refusals_logged = False
            return
        if self._refusals_logged:
            return
        self._refusals_logged = True
        _log.warning(
            "outbox: dropped %d sighting rows and %d events the backend would refuse and"
            " clamped %d rows (first: %s); counted in the outbox health, logged again after"
            " a write without such values",
            report.refused_sightings,
            report.refused_events,
            report.clamped_sightings,
            first,
        )

    def seal(self, now_ms: int, window_ms: int, *, allow_empty: bool = False) -> int | None:
        """Move unbatched events and sightings into a new sealed batch; return its ``seq``.

        At most ``MAX_BATCH_EVENTS`` events and ``MAX_BATCH_SIGHTINGS`` rows go into one
        batch, oldest first; call again until it returns ``None`` to seal the rest.
        ``now_ms`` (UTC epoch ms) becomes ``sent_at`` and ``sealed_at``; ``window_ms`` is the
        window length the rows were cut with. Returns ``None`` when nothing is unbatched,
        unless ``allow_empty`` (a heartbeat batch without events or sightings).

        ``now_ms`` outside ``wire.EARLIEST_EPOCH_MS``..``wire.LATEST_EPOCH_MS`` raises
        ``OutboxError`` (``CLOCK_NOT_SET``) and changes nothing: the rows wait for a clock
        that is set. ``window_ms`` outside 1..``MAX_WINDOW_MS`` raises ``ValueError``. A
        stored row the wire format refuses (written by an older release, or by hand) never
        stops sealing: it is moved to ``quarantined_rows`` with its reason and logged, a
        row ``add`` would clamp is clamped, and the rest is sealed.
        """
        if type(now_ms) is not int or not wire.EARLIEST_EPOCH_MS <= now_ms <= wire.LATEST_EPOCH_MS:
            raise OutboxError(
                OutboxErrorReason.CLOCK_NOT_SET,
                f"seal at now_ms={now_ms!r}: expected UTC epoch ms {wire.EARLIEST_EPOCH_MS}.."
                f"{wire.LATEST_EPOCH_MS} (2020-01-01..2100-01-01); the unit's clock is not set",
            )
        if type(window_ms) is not int or not 0 < window_ms <= MAX_WINDOW_MS:
            raise ValueError(f"window_ms: expected 1..{MAX_WINDOW_MS} ms, got {window_ms!r}")
        aside = _SetAside()
        seq = self._seal(now_ms, window_ms, allow_empty=allow_empty, aside=aside)
        if aside.rows or aside.clamped:
            _log.warning(
                "outbox: sealing set %d stored rows the backend would refuse aside in"
                " quarantined_rows and clamped %d rows (first: %s); the rest is sealed",
                aside.rows,
                aside.clamped,
                aside.first,
            )
        if seq is not None:
            self.enforce_cap()
        return seq

    def _seal(
        self, now_ms: int, window_ms: int, *, allow_empty: bool, aside: _SetAside
    ) -> int | None:
        with self._transaction() as db:
            while True:
                event_rows = db.execute(
                    "SELECT id, body FROM events ORDER BY id LIMIT ?", (MAX_BATCH_EVENTS,)
                ).fetchall()
                sighting_rows = db.execute(
                    "SELECT id, t, token, rssi, n, tx FROM sightings ORDER BY id LIMIT ?",
                    (MAX_BATCH_SIGHTINGS,),
                ).fetchall()
                if not event_rows and not sighting_rows and not allow_empty:
                    return None
                (seq,) = db.execute(
                    "SELECT value FROM meta WHERE key = ?", (_NEXT_SEQ_KEY,)
                ).fetchone()
                try:
                    batch = self._batch(seq, now_ms, window_ms, event_rows, sighting_rows)
                except (ValueError, TypeError) as exc:
                    # ValidationError is a ValueError; TypeError: e.g. a token stored as text.
                    # Every pass moves or fixes at least one row, so this loop ends.
                    self._set_aside(
                        db, now_ms, seq, window_ms, event_rows, sighting_rows, exc, aside
                    )
                    continue
                break
            if aside.clamped:
                _bump(db, _CLAMPED_SIGHTINGS_KEY, aside.clamped)
            stored = self._encode(batch.model_dump_json().encode("utf-8"))
            db.execute(
                "INSERT INTO batches (seq, version, vehicle_id, unit_id, boot_id, sealed_at,"
                " n_events, n_sightings, body, status, encoding)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    seq,
                    OUTBOX_RECORD_VERSION,
                    self.vehicle_id,
                    self.unit_id,
                    self.boot_id,
                    now_ms,
                    len(event_rows),
                    len(sighting_rows),
                    stored,
                    "pending",
                    self._encoding,
                ),
            )
            if event_rows:
                db.execute("DELETE FROM events WHERE id <= ?", (event_rows[-1][0],))
            if sighting_rows:
                db.execute("DELETE FROM sightings WHERE id <= ?", (sighting_rows[-1][0],))
            db.execute("UPDATE meta SET value = ? WHERE key = ?", (seq + 1, _NEXT_SEQ_KEY))
        self.sealed_bytes += len(stored)
        return int(seq)

    def _batch(
        self,
        seq: int,
        now_ms: int,
        window_ms: int,
        event_rows: Sequence[Any],
        sighting_rows: Sequence[Any],
    ) -> wire.Batch:
        """The wire batch of stored rows; raises ``ValueError``/``TypeError`` if one is invalid."""
        return wire.Batch(
            version=wire.WIRE_VERSION,
            vehicle_id=self.vehicle_id,
            unit_id=self.unit_id,
            boot_id=self.boot_id,
            seq=seq,
            sent_at=now_ms,
            window_ms=window_ms,
            events=[_EVENT_ADAPTER.validate_json(body) for _, body in event_rows],
            sightings=wire.Sightings(
                t=[r[1] for r in sighting_rows],
                # Anything but bytes (a token written by hand) fails the wire's hex pattern.
                token=[r[2].hex() if type(r[2]) is bytes else repr(r[2]) for r in sighting_rows],
                rssi=[r[3] for r in sighting_rows],
                n=[r[4] for r in sighting_rows],
                tx=[r[5] for r in sighting_rows],
            ),
        )

    def _set_aside(
        self,
        db: sqlite3.Connection,
        now_ms: int,
        seq: int,
        window_ms: int,
        event_rows: Sequence[Any],
        sighting_rows: Sequence[Any],
        error: Exception,
        aside: _SetAside,
    ) -> None:
        """Move the fetched rows the wire format refuses to ``quarantined_rows`` and clamp the
        others as ``add`` would, so that the next attempt seals; ``error`` is why it failed."""
        self._batch(seq, now_ms, window_ms, (), ())  # raises if the batch itself is at fault
        before = (aside.rows, aside.clamped)
        for row_id, body in event_rows:
            problem = _stored_event_problem(body)
            if problem is not None:
                _quarantine_event(db, row_id, body, problem, now_ms, aside)
        for row_id, t, token, rssi, n, tx in sighting_rows:
            admitted = _admit_sighting(t, token, rssi, n, tx)
            if not isinstance(admitted, str):
                # The wire format has the last word, should it ever disagree with the gate.
                admitted = _wire_sighting_problem(admitted) or admitted
            if isinstance(admitted, str):
                _quarantine_sighting(db, row_id, (t, token, rssi, n, tx), admitted, now_ms, aside)
            elif admitted[3] != n or admitted[4] != tx:
                db.execute(
                    "UPDATE sightings SET n = ?, tx = ? WHERE id = ?",
                    (admitted[3], admitted[4], row_id),
                )
                aside.clamped += 1
                if aside.first is None:
                    aside.first = f"sighting row {row_id}: {_repair_text(n, tx, admitted)}"
        if (aside.rows, aside.clamped) == before:
            # Refused for a reason no single row shows: set the whole chunk aside rather than
            # fail every seal from now on.
            reason = f"batch refused as a whole: {_error_text(error)}"
            for row_id, body in event_rows:
                _quarantine_event(db, row_id, body, reason, now_ms, aside)
            for row_id, *values in sighting_rows:
                _quarantine_sighting(db, row_id, tuple(values), reason, now_ms, aside)

    def _encode(self, body: bytes) -> bytes:
        # mtime=0: the same body always gives the same bytes.
        if self._encoding == "gzip":
            return gzip.compress(body, compresslevel=GZIP_LEVEL, mtime=0)
        return body

    def mark_offered(self, seq: int) -> None:
        """Record, before its first send, that a batch is being handed to the backend.

        From then on the disk cap never rewrites it: the backend may store it even if the
        answer never arrives, and a changed body under the same identity would be refused.
        """
        with self._transaction() as db:
            db.execute("UPDATE batches SET offered = 1 WHERE seq = ? AND offered = 0", (seq,))

    def mark_delivered(self, seq: int, now_ms: int | None = None) -> bool:
        """Forget a delivered batch (its tokens are personal data); ``False`` if unknown.

        ``now_ms`` (UTC epoch ms), if given, is kept as the time of the last delivery.
        """
        with self._transaction() as db:
            cur = db.execute("DELETE FROM batches WHERE seq = ? AND status = 'pending'", (seq,))
            if now_ms is not None and cur.rowcount > 0:
                db.execute(
                    "INSERT INTO meta (key, value) VALUES (?, ?)"
                    " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    (_LAST_DELIVERY_KEY, now_ms),
                )
        return cur.rowcount > 0

    def record_failure(self, seq: int, error: str) -> None:
        """Count one failed send of a pending batch, keeping the latest error for the operator."""
        with self._transaction() as db:
            db.execute(
                "UPDATE batches SET attempts = attempts + 1, last_error = ? WHERE seq = ?",
                (error[:QUARANTINE_REASON_MAX_CHARS], seq),
            )

    def quarantine(self, seq: int, reason: str) -> bool:
        """Set a batch aside that the backend refused; kept for the operator, never resent."""
        with self._transaction() as db:
            cur = db.execute(
                "UPDATE batches SET status = 'quarantined', last_error = ?"
                " WHERE seq = ? AND status = 'pending'",
                (reason[:QUARANTINE_REASON_MAX_CHARS], seq),
            )
        return cur.rowcount > 0

    # --- reading -------------------------------------------------------------------------

    def pending(self, limit: int | None = None) -> list[SealedBatch]:
        """Pending batches, oldest (lowest ``seq``) first; at most ``limit`` if given."""
        with self._reading() as db:
            rows = db.execute(
                "SELECT seq, vehicle_id, boot_id, body, encoding, attempts, sealed_at, n_events,"
                " n_sightings, offered FROM batches WHERE status = 'pending' ORDER BY seq"
                " LIMIT ?",
                (-1 if limit is None else limit,),
            ).fetchall()
        return [
            SealedBatch(
                seq=r[0],
                vehicle_id=r[1],
                boot_id=r[2],
                stored=bytes(r[3]),
                encoding="gzip" if r[4] == "gzip" else "identity",
                attempts=r[5],
                sealed_at=r[6],
                n_events=r[7],
                n_sightings=r[8],
                offered=bool(r[9]),
            )
            for r in rows
        ]

    def pending_count(self) -> int:
        """Number of sealed batches waiting for delivery."""
        return self._count("SELECT COUNT(*) FROM batches WHERE status = 'pending'")

    def quarantined_count(self) -> int:
        """Number of batches the backend refused."""
        return self._count("SELECT COUNT(*) FROM batches WHERE status = 'quarantined'")

    def oldest_pending_ms(self) -> int | None:
        """``sealed_at`` (UTC epoch ms) of the oldest pending batch, ``None`` if none waits."""
        with self._reading() as db:
            return _scalar(db, "SELECT MIN(sealed_at) FROM batches WHERE status = 'pending'")

    def health(self, now_ms: int) -> OutboxHealth:
        """Counts for monitoring; ages relative to ``now_ms`` (UTC epoch ms)."""
        with self._reading() as db:
            return _health(db, now_ms)

    def used_bytes(self) -> int:
        """Bytes of data in the file: pages in use (free pages are reused, not counted)."""
        with self._reading() as db:
            return _used_bytes(db)

    def dropped_sightings(self) -> int:
        """Sighting rows dropped at the disk cap over the life of this file."""
        with self._reading() as db:
            return _meta(db, _DROPPED_SIGHTINGS_KEY) or 0

    def _count(self, sql: str) -> int:
        with self._reading() as db:
            return _scalar(db, sql) or 0

    # --- the disk cap ----------------------------------------------------------------------

    def enforce_cap(self) -> DropReport:
        """Drop rows set aside at sealing, then the oldest sightings, until the data fits
        ``OUTBOX_CAP_LOW_WATER`` of the cap.

        Runs only when the data exceeds ``max_bytes``; see the module docstring for what is
        dropped in which order. Vehicle events and batches already offered are never dropped,
        so the file can stay above the cap if they alone fill it (logged once).
        """
        if self.max_bytes is None:
            return DropReport()
        used = self.used_bytes()
        if used <= self.max_bytes:
            self._over_cap_logged = False
            return DropReport()
        target = int(self.max_bytes * OUTBOX_CAP_LOW_WATER)
        report = DropReport()
        while used > target:
            step = self._drop_quarantined_rows()
            if step == DropReport():
                step = self._drop_from_batches(used - target)
            if step == DropReport():
                step = self._drop_unbatched(used - target)
            if step == DropReport():
                break
            report = _add(report, step)
            used = self.used_bytes()
        if report.sightings or report.quarantined:
            _log.warning(
                "outbox over its cap of %d bytes: deleted %d rows set aside at sealing and"
                " dropped the %d oldest sightings (%d batches stripped to their events, %d"
                " removed, %d unbatched rows); %d dropped in total",
                self.max_bytes,
                report.quarantined,
                report.sightings,
                report.batches_stripped,
                report.batches_deleted,
                report.unbatched,
                self.dropped_sightings(),
            )
        if used > self.max_bytes and not self._over_cap_logged:
            self._over_cap_logged = True
            _log.warning(
                "outbox holds %d bytes, over its cap of %d, in vehicle events and batches"
                " already offered to the backend; those are never dropped",
                used,
                self.max_bytes,
            )
        return report

    def _drop_quarantined_rows(self) -> DropReport:
        """Delete every row set aside at sealing: they can never be sent, so they go first."""
        with self._transaction() as db:
            cur = db.execute("DELETE FROM quarantined_rows")
        return DropReport(quarantined=max(0, cur.rowcount))

    def _drop_from_batches(self, need_bytes: int) -> DropReport:
        """Strip sightings from the oldest never-offered or quarantined batches."""
        with self._transaction() as db:
            candidates = db.execute(
                "SELECT seq, body, encoding, n_events, n_sightings, length(body) FROM batches"
                " WHERE n_sightings > 0 AND (offered = 0 OR status = 'quarantined')"
                " ORDER BY seq"
            )
            freed = stripped = deleted = sightings = 0
            for seq, body, encoding, n_events, n_sightings, size in candidates.fetchall():
                if freed >= need_bytes:
                    break
                freed += size
                sightings += n_sightings
                if n_events == 0:
                    db.execute("DELETE FROM batches WHERE seq = ?", (seq,))
                    deleted += 1
                    continue
                raw = gzip.decompress(body) if encoding == "gzip" else bytes(body)
                new = _without_sightings(raw)
                if new is None:
                    # Not even JSON: nothing in it can ever be delivered.
                    db.execute("DELETE FROM batches WHERE seq = ?", (seq,))
                    deleted += 1
                    continue
                db.execute(
                    "UPDATE batches SET body = ?, n_sightings = 0 WHERE seq = ?",
                    (gzip.compress(new, GZIP_LEVEL, mtime=0) if encoding == "gzip" else new, seq),
                )
                stripped += 1
            if sightings:
                self._count_drops(db, sightings)
        return DropReport(sightings, stripped, deleted, 0)

    def _drop_unbatched(self, need_bytes: int) -> DropReport:
        """Delete the oldest unbatched sighting rows (the newest data, so the last resort)."""
        count = max(1, need_bytes // OUTBOX_UNBATCHED_ROW_BYTES)
        with self._transaction() as db:
            cur = db.execute(
                "DELETE FROM sightings WHERE id IN (SELECT id FROM sightings ORDER BY id LIMIT ?)",
                (count,),
            )
            if cur.rowcount > 0:
                self._count_drops(db, cur.rowcount)
        return DropReport(sightings=max(0, cur.rowcount), unbatched=max(0, cur.rowcount))

    @staticmethod
    def _count_drops(db: sqlite3.Connection, rows: int) -> None:
        _bump(db, _DROPPED_SIGHTINGS_KEY, rows)


def _add(a: DropReport, b: DropReport) -> DropReport:
    return DropReport(
        a.sightings + b.sightings,
        a.batches_stripped + b.batches_stripped,
        a.batches_deleted + b.batches_deleted,
        a.unbatched + b.unbatched,
        a.quarantined + b.quarantined,
    )


def _used_bytes(db: sqlite3.Connection) -> int:
    (pages,) = db.execute("PRAGMA page_count").fetchone()
    (free,) = db.execute("PRAGMA freelist_count").fetchone()
    (size,) = db.execute("PRAGMA page_size").fetchone()
    return int((pages - free) * size)


def _meta(db: sqlite3.Connection, key: str) -> int | None:
    row = db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    return None if row is None else int(row[0])


def _scalar(db: sqlite3.Connection, sql: str) -> int | None:
    """The query's one value as an int; ``None`` if NULL or not a finite number (a row
    written by hand may hold text where a time belongs)."""
    (value,) = db.execute(sql).fetchone()
    if isinstance(value, int) or (isinstance(value, float) and math.isfinite(value)):
        return int(value)
    return None


def _bump(db: sqlite3.Connection, key: str, count: int) -> None:
    db.execute("UPDATE meta SET value = value + ? WHERE key = ?", (count, key))


def _quarantined_rows(db: sqlite3.Connection) -> int:
    """Rows in ``quarantined_rows``; 0 in a schema-2 file (read-only) that has no such table."""
    found = db.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'quarantined_rows'"
    ).fetchone()
    return 0 if found is None else _scalar(db, "SELECT COUNT(*) FROM quarantined_rows") or 0


def _health(db: sqlite3.Connection, now_ms: int) -> OutboxHealth:
    oldest_batch = _scalar(db, "SELECT MIN(sealed_at) FROM batches WHERE status = 'pending'")
    # Rows are written window by window, so the first row id holds the oldest window.
    oldest_row = _scalar(db, "SELECT (SELECT t FROM sightings ORDER BY id LIMIT 1)")
    oldest_event = _scalar(db, "SELECT MIN(t) FROM events")
    unsent = [t for t in (oldest_batch, oldest_row, oldest_event) if t is not None]
    return OutboxHealth(
        pending_batches=_scalar(db, "SELECT COUNT(*) FROM batches WHERE status = 'pending'") or 0,
        quarantined_batches=(
            _scalar(db, "SELECT COUNT(*) FROM batches WHERE status = 'quarantined'") or 0
        ),
        unbatched_events=_scalar(db, "SELECT COUNT(*) FROM events") or 0,
        unbatched_sightings=_scalar(db, "SELECT COUNT(*) FROM sightings") or 0,
        oldest_pending_age_ms=None if oldest_batch is None else max(0, now_ms - oldest_batch),
        used_bytes=_used_bytes(db),
        dropped_sightings=_meta(db, _DROPPED_SIGHTINGS_KEY) or 0,
        last_delivery_ms=_meta(db, _LAST_DELIVERY_KEY),
        oldest_unsent_age_ms=max(0, now_ms - min(unsent)) if unsent else None,
        refused_sightings=_meta(db, _REFUSED_SIGHTINGS_KEY) or 0,
        refused_events=_meta(db, _REFUSED_EVENTS_KEY) or 0,
        clamped_sightings=_meta(db, _CLAMPED_SIGHTINGS_KEY) or 0,
        quarantined_rows=_quarantined_rows(db),
    )


def read_health(path: str | Path, now_ms: int) -> OutboxHealth:
    """The health of the outbox file at ``path``, opened read-only (an agent may be running).

    Raises ``OutboxError`` (``UNREADABLE``) if the file is missing or not an outbox.
    """
    uri = f"file:{quote(str(Path(path).resolve()))}?mode=ro"
    try:
        db = sqlite3.connect(uri, uri=True, timeout=SQLITE_BUSY_TIMEOUT_S)
    except sqlite3.Error as exc:
        raise OutboxError(
            OutboxErrorReason.UNREADABLE, f"outbox {path}: cannot open: {exc}"
        ) from exc
    try:
        return _health(db, now_ms)
    except sqlite3.Error as exc:
        raise OutboxError(
            OutboxErrorReason.UNREADABLE, f"outbox {path}: not a readable outbox: {exc}"
        ) from exc
    finally:
        db.close()


# --- what the wire format takes (pure; shared by ``add`` and ``seal`` so they agree) ------

_Admitted = tuple[int, bytes, int, int, int | None]
"""A sighting row as stored: ``(t, token, rssi, n, tx)``."""

# Bound once: ``_admit_sighting`` runs for every row written (a hot path).
_EARLIEST_MS: Final = wire.EARLIEST_EPOCH_MS
_LATEST_MS: Final = wire.LATEST_EPOCH_MS
_MAX_N: Final = wire.MAX_SIGHTING_N


def _admit_sighting(
    t: object, token: object, rssi: object, n: object, tx: object
) -> _Admitted | str:
    """The row as the wire format takes it, or why it cannot be, naming the field, the value
    and what was expected.

    A time outside 2020..2100 is refused, never clamped: it is a clock that was not set, and
    a clamped time would place a rider on the bus at a moment they were not. So are a token,
    RSSI (the distance evidence) or count below 1 the wire format cannot carry. A count above
    ``wire.MAX_SIGHTING_N`` still means "heard very often", so it is capped; a tx power out
    of range is only calibration, so it becomes unknown (``None``) and the sighting stays.
    """
    if type(t) is not int or not _EARLIEST_MS <= t <= _LATEST_MS:
        return (
            f"t={t!r}: expected UTC epoch ms {wire.EARLIEST_EPOCH_MS}..{wire.LATEST_EPOCH_MS}"
            " (2020-01-01..2100-01-01; earlier is a clock never set)"
        )
    if type(token) is not bytes or len(token) != wire.TOKEN_BYTES:
        got = f"{len(token)} bytes" if type(token) is bytes else type(token).__name__
        return f"token: expected {wire.TOKEN_BYTES} bytes, got {got}"
    if type(rssi) is not int or not RSSI_MIN_DBM <= rssi <= RSSI_MAX_DBM:
        return f"rssi={rssi!r}: expected {RSSI_MIN_DBM}..{RSSI_MAX_DBM} dBm"
    if type(n) is not int or n < 1:
        return f"n={n!r}: expected a count >= 1"
    if n > _MAX_N:
        n = _MAX_N
    if tx is not None and (type(tx) is not int or not TX_POWER_MIN_DBM <= tx <= TX_POWER_MAX_DBM):
        tx = None
    return (t, token, rssi, n, tx)


def _repair_text(n: object, tx: object, admitted: _Admitted) -> str:
    """What ``_admit_sighting`` clamped, for a log line."""
    return (
        f"n={n!r}, tx={tx!r}: stored as n={admitted[3]} (at most {wire.MAX_SIGHTING_N}),"
        f" tx={admitted[4]} ({TX_POWER_MIN_DBM}..{TX_POWER_MAX_DBM} dBm, else unknown)"
    )


def _event_body(event: wire.Event) -> str:
    """The JSON body stored for ``event``; raises ``ValueError`` if the wire format refuses it.

    Events are wire models, valid when built; checking their fields again catches one built
    without validation (``model_construct``), which would otherwise fail every seal (pydantic
    would even write an infinite float as null instead of refusing it).
    """
    valid = _EVENT_ADAPTER.validate_python(event.model_dump())
    return _EVENT_ADAPTER.dump_json(valid).decode("utf-8")


def _wire_sighting_problem(row: _Admitted) -> str | None:
    """Why the wire format refuses an admitted row, ``None`` if it takes it (slow; for seal's
    rare second look only)."""
    t, token, rssi, n, tx = row
    try:
        wire.Sightings(t=[t], token=[token.hex()], rssi=[rssi], n=[n], tx=[tx])
    except ValidationError as exc:
        return _error_text(exc)
    return None


def _stored_event_problem(body: object) -> str | None:
    """Why a stored event body does not validate, ``None`` if it does."""
    try:
        _EVENT_ADAPTER.validate_json(body)  # type: ignore[arg-type]
    except (ValueError, TypeError) as exc:
        return _error_text(exc)
    return None


def _error_text(exc: Exception) -> str:
    """One line for a log or ``quarantined_rows``: pydantic's first error, field and value."""
    if isinstance(exc, ValidationError):
        err = exc.errors(include_url=False)[0]
        where = ".".join(str(part) for part in err["loc"]) or "value"
        return f"{where}: {err['msg']} (got {repr(err.get('input'))[:80]})"
    return f"{type(exc).__name__}: {exc}"[:QUARANTINE_REASON_MAX_CHARS]


@dataclass(slots=True)
class _SetAside:
    """What one ``seal`` moved to ``quarantined_rows`` or capped, with the first reason."""

    rows: int = 0
    clamped: int = 0
    first: str | None = None


def _quarantine_event(
    db: sqlite3.Connection, row_id: int, body: object, reason: str, now_ms: int, aside: _SetAside
) -> None:
    _quarantine(db, "event", _as_text(body), reason, now_ms, aside, row_id)
    db.execute("DELETE FROM events WHERE id = ?", (row_id,))


def _quarantine_sighting(
    db: sqlite3.Connection,
    row_id: int,
    values: tuple[object, ...],
    reason: str,
    now_ms: int,
    aside: _SetAside,
) -> None:
    t, token, rssi, n, tx = values
    shown = token.hex() if isinstance(token, bytes) else token
    body = json.dumps({"t": t, "token": shown, "rssi": rssi, "n": n, "tx": tx}, default=repr)
    _quarantine(db, "sighting", body, reason, now_ms, aside, row_id)
    db.execute("DELETE FROM sightings WHERE id = ?", (row_id,))


def _quarantine(
    db: sqlite3.Connection,
    kind: Literal["event", "sighting"],
    body: str,
    reason: str,
    now_ms: int,
    aside: _SetAside,
    row_id: int,
) -> None:
    db.execute(
        "INSERT INTO quarantined_rows (version, kind, body, reason, quarantined_at)"
        " VALUES (?, ?, ?, ?, ?)",
        (OUTBOX_RECORD_VERSION, kind, body, reason[:QUARANTINE_REASON_MAX_CHARS], now_ms),
    )
    aside.rows += 1
    if aside.first is None:
        aside.first = f"{kind} row {row_id}: {reason}"


def _as_text(body: object) -> str:
    if isinstance(body, str):
        return body
    if isinstance(body, bytes):
        return body.decode("utf-8", "replace")
    return repr(body)


def _without_sightings(raw: bytes) -> bytes | None:
    """A batch body with its sightings removed, or ``None`` if it is not a JSON object.

    A body the wire format refuses (sealed under older bounds, then refused by the backend
    and quarantined) is edited as plain JSON, so the disk cap can still shrink it.
    """
    try:
        batch = wire.Batch.model_validate_json(raw)
    except ValueError:
        try:
            parsed = json.loads(raw)
        except (ValueError, RecursionError):
            return None
        if not isinstance(parsed, dict):
            return None
        parsed["sightings"] = wire.Sightings().model_dump()
        return json.dumps(parsed, separators=(",", ":")).encode("utf-8")
    events_only = batch.model_copy(update={"sightings": wire.Sightings()})
    return events_only.model_dump_json().encode("utf-8")


def _check_identifier(name: str, value: str) -> None:
    """Raise ``ValueError`` naming ``name`` unless ``value`` is a ``wire.Identifier``."""
    try:
        _IDENTIFIER_ADAPTER.validate_python(value)
    except ValidationError:
        raise ValueError(
            f"{name}: expected 1-{wire.IDENTIFIER_MAX_CHARS} letters, digits or _ . : -"
            f" (the upload format's identifier), got {value!r}"
        ) from None
