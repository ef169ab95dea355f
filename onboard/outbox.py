"""Durable SQLite outbox: nothing heard is lost on a crash, and every batch keeps one identity.

Events and sighting rows wait *unbatched* until ``seal`` moves them, in one transaction,
into a *sealed batch*: the exact JSON body of a ``wire.Batch`` with the next ``seq``. The
body is stored (gzip-compressed, ~10x smaller) and never rebuilt, so a resend after a
restart is byte-identical and the backend stores it once (DESIGN §3). ``seq`` comes from
one persisted counter that is never reused in this file, so it is monotonic per
``(vehicle_id, boot_id)`` and names a batch uniquely within the outbox, whichever boot
sealed it.

Overflow policy at the disk cap (``max_bytes``): the oldest *sightings* are dropped first,
vehicle events never. A sealed batch that was never offered to the backend (or was
quarantined) loses its sighting rows and keeps its events under the same identity (no
backend has seen that identity, so no conflict can arise); one without events goes
entirely. Batches already offered are never touched: the backend may hold them. Unbatched
rows, the newest, go last. Every dropped row is counted in the file (``meta``) and logged.
"""

from __future__ import annotations

import enum
import gzip
import logging
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Final, Literal
from urllib.parse import quote

from pydantic import TypeAdapter

from onboard import wire
from onboard.const import (
    GZIP_LEVEL,
    MAX_BATCH_EVENTS,
    MAX_BATCH_SIGHTINGS,
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
"""

_MIGRATE_1_TO_2: Final = (
    "ALTER TABLE batches ADD COLUMN encoding TEXT NOT NULL DEFAULT 'identity'"
    " CHECK (encoding IN ('identity', 'gzip'))",
    "ALTER TABLE batches ADD COLUMN offered INTEGER NOT NULL DEFAULT 0",
    # A version-1 agent kept no record of which batches it had sent: assume all of them.
    "UPDATE batches SET offered = 1",
)
"""Schema 1 (first agent) to 2: compressed bodies, and whether a batch was ever offered."""

_NEXT_SEQ_KEY: Final = "next_seq"
_DROPPED_SIGHTINGS_KEY: Final = "dropped_sightings"
_LAST_DELIVERY_KEY: Final = "last_delivery_ms"

Encoding = Literal["identity", "gzip"]


class OutboxErrorReason(enum.Enum):
    """Why the outbox refused an operation."""

    UNREADABLE = "unreadable"
    READ_FAILED = "read_failed"
    WRITE_FAILED = "write_failed"
    NEWER_SCHEMA = "newer_schema"
    INVALID_ROW = "invalid_row"
    CLOSED = "closed"


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
    data time (epoch ms) of the last delivered batch, ``None`` if none yet.
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


@dataclass(frozen=True, slots=True)
class DropReport:
    """What one enforcement of the disk cap dropped."""

    sightings: int = 0
    batches_stripped: int = 0
    batches_deleted: int = 0
    unbatched: int = 0


class Outbox:
    """The durable queue between the agent and the uploader, in one SQLite file.

    ``boot_id`` names this run of the unit (a fresh UUID per process start); batches
    sealed now carry it, batches sealed by earlier runs keep theirs. ``max_bytes`` is the
    disk cap (``None``: none), enforced after every write; ``compress`` stores sealed
    bodies gzip-compressed (the default) rather than as plain JSON.
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
        self.vehicle_id = vehicle_id
        self.unit_id = unit_id
        self.boot_id = boot_id
        self.max_bytes = max_bytes
        self._encoding: Encoding = "gzip" if compress else "identity"
        self._path = str(path)
        self._db: sqlite3.Connection | None = None
        self._over_cap_logged = False
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
            for key in (_NEXT_SEQ_KEY, _DROPPED_SIGHTINGS_KEY):
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

    def add_events(self, events: Sequence[wire.Event]) -> None:
        """Store vehicle events (already validated wire models) in one transaction."""
        self.add(events=events)

    def add_sightings(self, rows: Sequence[SightingRow]) -> None:
        """Store sighting rows in one transaction; a row the backend would refuse raises."""
        self.add(rows=rows)

    def add(self, rows: Sequence[SightingRow] = (), events: Sequence[wire.Event] = ()) -> None:
        """Store sighting rows and vehicle events together in one transaction (one fsync).

        A row the backend would refuse raises ``OutboxError`` (``INVALID_ROW``) and nothing
        is stored.
        """
        if not rows and not events:
            return
        for row in rows:
            _check_row(row)
        values = [(OUTBOX_RECORD_VERSION, r.t, r.token, r.rssi, r.n, r.tx) for r in rows]
        bodies = [
            (OUTBOX_RECORD_VERSION, e.t, _EVENT_ADAPTER.dump_json(e).decode("utf-8"))
            for e in events
        ]
        with self._transaction() as db:
            if values:
                db.executemany(
                    "INSERT INTO sightings (version, t, token, rssi, n, tx)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    values,
                )
            if bodies:
                db.executemany("INSERT INTO events (version, t, body) VALUES (?, ?, ?)", bodies)
        if values:
            self.enforce_cap()

    def seal(self, now_ms: int, window_ms: int, *, allow_empty: bool = False) -> int | None:
        """Move unbatched events and sightings into a new sealed batch; return its ``seq``.

        At most ``MAX_BATCH_EVENTS`` events and ``MAX_BATCH_SIGHTINGS`` rows go into one
        batch, oldest first; call again until it returns ``None`` to seal the rest.
        ``now_ms`` (UTC epoch ms) becomes ``sent_at`` and ``sealed_at``; ``window_ms`` is the
        window length the rows were cut with. Returns ``None`` when nothing is unbatched,
        unless ``allow_empty`` (a heartbeat batch without events or sightings).
        """
        seq = self._seal(now_ms, window_ms, allow_empty=allow_empty)
        if seq is not None:
            self.enforce_cap()
        return seq

    def _seal(self, now_ms: int, window_ms: int, *, allow_empty: bool) -> int | None:
        with self._transaction() as db:
            event_rows = db.execute(
                "SELECT id, body FROM events ORDER BY id LIMIT ?", (MAX_BATCH_EVENTS,)
            ).fetchall()
            sighting_rows = db.execute(
                "SELECT id, t, token, rssi, n, tx FROM sightings ORDER BY id LIMIT ?",
                (MAX_BATCH_SIGHTINGS,),
            ).fetchall()
            if not event_rows and not sighting_rows and not allow_empty:
                return None
            (seq,) = db.execute("SELECT value FROM meta WHERE key = ?", (_NEXT_SEQ_KEY,)).fetchone()
            batch = wire.Batch(
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
                    token=[bytes(r[2]).hex() for r in sighting_rows],
                    rssi=[r[3] for r in sighting_rows],
                    n=[r[4] for r in sighting_rows],
                    tx=[r[5] for r in sighting_rows],
                ),
            )
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
        """Drop the oldest sightings until the data fits ``OUTBOX_CAP_LOW_WATER`` of the cap.

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
            step = self._drop_from_batches(used - target)
            if step == DropReport():
                step = self._drop_unbatched(used - target)
            if step == DropReport():
                break
            report = _add(report, step)
            used = self.used_bytes()
        if report.sightings:
            _log.warning(
                "outbox over its cap of %d bytes: dropped the %d oldest sightings (%d batches"
                " stripped to their events, %d removed, %d unbatched rows); %d dropped in total",
                self.max_bytes,
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
                batch = wire.Batch.model_validate_json(raw)
                events_only = batch.model_copy(update={"sightings": wire.Sightings()})
                new = events_only.model_dump_json().encode("utf-8")
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
        db.execute(
            "UPDATE meta SET value = value + ? WHERE key = ?", (rows, _DROPPED_SIGHTINGS_KEY)
        )


def _add(a: DropReport, b: DropReport) -> DropReport:
    return DropReport(
        a.sightings + b.sightings,
        a.batches_stripped + b.batches_stripped,
        a.batches_deleted + b.batches_deleted,
        a.unbatched + b.unbatched,
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
    (value,) = db.execute(sql).fetchone()
    return None if value is None else int(value)


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


def _check_row(row: SightingRow) -> None:
    """Refuse a row the wire format would refuse, before it can poison a sealed batch."""
    problem: str | None = None
    if row.t < 0:
        problem = f"t={row.t}: expected epoch ms >= 0"
    elif len(row.token) != wire.TOKEN_BYTES:
        problem = f"token: expected {wire.TOKEN_BYTES} bytes, got {len(row.token)}"
    elif not RSSI_MIN_DBM <= row.rssi <= RSSI_MAX_DBM:
        problem = f"rssi={row.rssi}: expected {RSSI_MIN_DBM}..{RSSI_MAX_DBM} dBm"
    elif row.n < 1:
        problem = f"n={row.n}: expected >= 1"
    elif row.tx is not None and not TX_POWER_MIN_DBM <= row.tx <= TX_POWER_MAX_DBM:
        problem = f"tx={row.tx}: expected {TX_POWER_MIN_DBM}..{TX_POWER_MAX_DBM} dBm or None"
    if problem is not None:
        raise OutboxError(OutboxErrorReason.INVALID_ROW, f"sighting row: {problem}")
