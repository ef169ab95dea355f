"""Durable SQLite outbox: nothing heard is lost on a crash, and every batch keeps one identity.

Events and sighting rows wait *unbatched* until ``seal`` moves them, in one transaction,
into a *sealed batch*: the exact JSON body of a ``wire.Batch`` with the next ``seq``. The
body is stored as bytes and never rebuilt, so a resend after a restart is byte-identical
and the backend stores it once (DESIGN §3). ``seq`` comes from one persisted counter that
is never reused in this file, so it is monotonic per ``(vehicle_id, boot_id)`` and names a
batch uniquely within the outbox, whichever boot sealed it.
"""

from __future__ import annotations

import enum
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Final

from pydantic import TypeAdapter

from onboard import wire
from onboard.const import (
    MAX_BATCH_EVENTS,
    MAX_BATCH_SIGHTINGS,
    OUTBOX_RECORD_VERSION,
    OUTBOX_SCHEMA_VERSION,
    QUARANTINE_REASON_MAX_CHARS,
    RSSI_MAX_DBM,
    RSSI_MIN_DBM,
    SQLITE_BUSY_TIMEOUT_S,
    TX_POWER_MAX_DBM,
    TX_POWER_MIN_DBM,
)
from onboard.windowing import SightingRow

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
    last_error  TEXT
);
CREATE INDEX IF NOT EXISTS batches_status_seq ON batches (status, seq);
"""

_NEXT_SEQ_KEY: Final = "next_seq"


class OutboxErrorReason(enum.Enum):
    """Why the outbox refused an operation."""

    UNREADABLE = "unreadable"
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
    """A batch waiting for delivery: its identity, exact body and delivery history.

    ``sealed_at`` in UTC epoch ms (data clock); ``attempts`` counts failed sends.
    """

    seq: int
    vehicle_id: str
    boot_id: str
    body: bytes
    attempts: int
    sealed_at: int
    n_events: int
    n_sightings: int


@dataclass(frozen=True, slots=True)
class OutboxHealth:
    """Counts for a health report; ``oldest_pending_age_ms`` is ``None`` when nothing waits."""

    pending_batches: int
    quarantined_batches: int
    unbatched_events: int
    unbatched_sightings: int
    oldest_pending_age_ms: int | None


class Outbox:
    """The durable queue between the agent and the uploader, in one SQLite file.

    ``boot_id`` names this run of the unit (a fresh UUID per process start); batches
    sealed now carry it, batches sealed by earlier runs keep theirs.
    """

    def __init__(self, path: str | Path, vehicle_id: str, unit_id: str, boot_id: str) -> None:
        self.vehicle_id = vehicle_id
        self.unit_id = unit_id
        self.boot_id = boot_id
        self._path = str(path)
        self._db: sqlite3.Connection | None = None
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
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    db.execute(statement)
            db.execute("INSERT OR IGNORE INTO meta (key, value) VALUES (?, 0)", (_NEXT_SEQ_KEY,))
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
        if not events:
            return
        rows = [
            (OUTBOX_RECORD_VERSION, e.t, _EVENT_ADAPTER.dump_json(e).decode("utf-8"))
            for e in events
        ]
        with self._transaction() as db:
            db.executemany("INSERT INTO events (version, t, body) VALUES (?, ?, ?)", rows)

    def add_sightings(self, rows: Sequence[SightingRow]) -> None:
        """Store sighting rows in one transaction; a row the backend would refuse raises."""
        if not rows:
            return
        for row in rows:
            _check_row(row)
        values = [(OUTBOX_RECORD_VERSION, r.t, r.token, r.rssi, r.n, r.tx) for r in rows]
        with self._transaction() as db:
            db.executemany(
                "INSERT INTO sightings (version, t, token, rssi, n, tx) VALUES (?, ?, ?, ?, ?, ?)",
                values,
            )

    def seal(self, now_ms: int, window_ms: int) -> int | None:
        """Move unbatched events and sightings into a new sealed batch; return its ``seq``.

        At most ``MAX_BATCH_EVENTS`` events and ``MAX_BATCH_SIGHTINGS`` rows go into one
        batch, oldest first; call again until it returns ``None`` to seal the rest.
        ``now_ms`` (UTC epoch ms) becomes ``sent_at`` and ``sealed_at``; ``window_ms`` is the
        window length the rows were cut with. Returns ``None`` when nothing is unbatched.
        """
        with self._transaction() as db:
            event_rows = db.execute(
                "SELECT id, body FROM events ORDER BY id LIMIT ?", (MAX_BATCH_EVENTS,)
            ).fetchall()
            sighting_rows = db.execute(
                "SELECT id, t, token, rssi, n, tx FROM sightings ORDER BY id LIMIT ?",
                (MAX_BATCH_SIGHTINGS,),
            ).fetchall()
            if not event_rows and not sighting_rows:
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
            body = batch.model_dump_json().encode("utf-8")
            db.execute(
                "INSERT INTO batches (seq, version, vehicle_id, unit_id, boot_id, sealed_at,"
                " n_events, n_sightings, body, status) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    seq,
                    OUTBOX_RECORD_VERSION,
                    self.vehicle_id,
                    self.unit_id,
                    self.boot_id,
                    now_ms,
                    len(event_rows),
                    len(sighting_rows),
                    body,
                    "pending",
                ),
            )
            if event_rows:
                db.execute("DELETE FROM events WHERE id <= ?", (event_rows[-1][0],))
            if sighting_rows:
                db.execute("DELETE FROM sightings WHERE id <= ?", (sighting_rows[-1][0],))
            db.execute("UPDATE meta SET value = ? WHERE key = ?", (seq + 1, _NEXT_SEQ_KEY))
        return int(seq)

    def mark_delivered(self, seq: int) -> bool:
        """Forget a delivered batch (its tokens are personal data); ``False`` if unknown."""
        with self._transaction() as db:
            cur = db.execute("DELETE FROM batches WHERE seq = ? AND status = 'pending'", (seq,))
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
        rows = self._conn.execute(
            "SELECT seq, vehicle_id, boot_id, body, attempts, sealed_at, n_events, n_sightings"
            " FROM batches WHERE status = 'pending' ORDER BY seq LIMIT ?",
            (-1 if limit is None else limit,),
        ).fetchall()
        return [
            SealedBatch(
                seq=r[0],
                vehicle_id=r[1],
                boot_id=r[2],
                body=bytes(r[3]),
                attempts=r[4],
                sealed_at=r[5],
                n_events=r[6],
                n_sightings=r[7],
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
        (value,) = self._conn.execute(
            "SELECT MIN(sealed_at) FROM batches WHERE status = 'pending'"
        ).fetchone()
        return None if value is None else int(value)

    def health(self, now_ms: int) -> OutboxHealth:
        """Counts for monitoring; ages relative to ``now_ms`` (UTC epoch ms)."""
        oldest = self.oldest_pending_ms()
        return OutboxHealth(
            pending_batches=self.pending_count(),
            quarantined_batches=self.quarantined_count(),
            unbatched_events=self._count("SELECT COUNT(*) FROM events"),
            unbatched_sightings=self._count("SELECT COUNT(*) FROM sightings"),
            oldest_pending_age_ms=None if oldest is None else max(0, now_ms - oldest),
        )

    def _count(self, sql: str) -> int:
        (value,) = self._conn.execute(sql).fetchone()
        return int(value)


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
