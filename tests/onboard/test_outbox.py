"""The durable outbox: crash safety, batch identity, limits."""

from __future__ import annotations

import logging
import random
import sqlite3
import subprocess
import sys
import textwrap

import pytest

from onboard import wire
from onboard.const import MAX_BATCH_EVENTS, MAX_BATCH_SIGHTINGS, OUTBOX_SCHEMA_VERSION
from onboard.outbox import Outbox, OutboxError, OutboxErrorReason, read_health
from onboard.windowing import SightingRow
from tests.onboard.conftest import T0, UNIT, VEHICLE, token


def rows(count: int, t: int = T0) -> list[SightingRow]:
    return [
        SightingRow(t=t, token=token(i), rssi=-60 - i % 40, n=1 + i % 5, tx=-8)
        for i in range(count)
    ]


@pytest.fixture
def path(tmp_path):
    return tmp_path / "outbox.sqlite3"


@pytest.fixture
def outbox(path):
    with Outbox(path, VEHICLE, UNIT, "boot-1") as box:
        yield box


def test_seal_stores_the_exact_wire_batch(outbox):
    outbox.add_sightings(rows(2))
    outbox.add_events(
        [wire.ArrivalEvent(t=T0, stop_id="de:05974:1001"), wire.DoorsOpenEvent(t=T0 + 1)]
    )

    seq = outbox.seal(T0 + 5000, 1000)

    [sealed] = outbox.pending()
    batch = wire.Batch.model_validate_json(sealed.body)
    assert seq == sealed.seq == batch.seq == 0
    assert (batch.vehicle_id, batch.unit_id, batch.boot_id) == (VEHICLE, UNIT, "boot-1")
    assert (batch.version, batch.sent_at, batch.window_ms) == (1, T0 + 5000, 1000)
    assert batch.sightings.token == [token(0).hex(), token(1).hex()]
    assert batch.sightings.rssi == [-60, -61]
    assert batch.sightings.n == [1, 2]
    assert [e.type for e in batch.events] == ["arrival", "doors_open"]
    assert (sealed.n_events, sealed.n_sightings, sealed.attempts) == (2, 2, 0)
    assert sealed.sealed_at == T0 + 5000


def test_nothing_to_send_seals_nothing_and_nothing_is_sealed_twice(outbox):
    assert outbox.seal(T0, 1000) is None

    outbox.add_sightings(rows(3))
    assert outbox.seal(T0, 1000) == 0
    assert outbox.seal(T0, 1000) is None

    assert len(outbox.pending()) == 1
    assert outbox.health(T0).unbatched_sightings == 0


def test_row_limit_splits_into_several_batches(outbox):
    outbox.add_sightings(rows(MAX_BATCH_SIGHTINGS + 7))

    assert outbox.seal(T0, 1000) == 0
    assert outbox.seal(T0, 1000) == 1
    assert outbox.seal(T0, 1000) is None
    assert [b.n_sightings for b in outbox.pending()] == [MAX_BATCH_SIGHTINGS, 7]


def test_closed_without_delivery_the_batch_survives_a_restart_byte_for_byte(path):
    with Outbox(path, VEHICLE, UNIT, "boot-1") as box:
        box.add_sightings(rows(3))
        box.seal(T0, 1000)
        [before] = box.pending()
        box.add_sightings(rows(1, t=T0 + 1000))  # unbatched at the "crash"

    with Outbox(path, VEHICLE, UNIT, "boot-2") as box:
        [after] = box.pending()
        assert after == before
        assert after.boot_id == "boot-1"

        assert box.seal(T0 + 10_000, 1000) == 1
        new = box.pending()[1]
        assert new.boot_id == "boot-2"
        assert wire.Batch.model_validate_json(new.body).boot_id == "boot-2"
        assert new.n_sightings == 1


def test_seq_is_monotonic_across_reopen_and_never_reused(path):
    seqs = []
    for boot in range(4):
        with Outbox(path, VEHICLE, UNIT, f"boot-{boot}") as box:
            box.add_sightings(rows(1))
            seq = box.seal(T0, 1000)
            assert seq is not None
            seqs.append(seq)
            box.mark_delivered(seq)

    assert seqs == [0, 1, 2, 3]


def test_a_killed_process_leaves_sealed_and_unbatched_data_behind(path):
    script = textwrap.dedent(
        f"""
        import os
        from onboard.outbox import Outbox
        from onboard.windowing import SightingRow
        box = Outbox({str(path)!r}, {VEHICLE!r}, {UNIT!r}, "boot-dead")
        box.add_sightings([SightingRow(t={T0}, token=bytes(16), rssi=-60, n=1, tx=None)])
        box.seal({T0}, 1000)
        box.add_sightings([SightingRow(t={T0 + 1000}, token=bytes(16), rssi=-61, n=2, tx=None)])
        os._exit(0)  # no close, no commit hooks: like a power cut after the writes returned
        """
    )
    subprocess.run([sys.executable, "-c", script], check=True)

    with Outbox(path, VEHICLE, UNIT, "boot-next") as box:
        [old] = box.pending()
        assert old.boot_id == "boot-dead"
        assert box.seal(T0 + 2000, 1000) == 1
        assert wire.Batch.model_validate_json(box.pending()[1].body).sightings.rssi == [-61]


def test_delivered_and_quarantined_batches_leave_the_queue(outbox):
    for i in range(3):
        outbox.add_sightings(rows(1, t=T0 + i * 1000))
        outbox.seal(T0 + i * 1000, 1000)

    assert outbox.mark_delivered(0) is True
    assert outbox.mark_delivered(0) is False
    assert outbox.quarantine(1, "HTTP 422: bad") is True
    outbox.record_failure(2, "ConnectError")

    [left] = outbox.pending()
    assert (left.seq, left.attempts) == (2, 1)
    assert outbox.pending_count() == 1
    assert outbox.quarantined_count() == 1
    assert outbox.oldest_pending_ms() == T0 + 2000
    health = outbox.health(T0 + 5000)
    assert (health.pending_batches, health.oldest_pending_age_ms) == (1, 3000)


def test_pending_is_oldest_first_with_limit(outbox):
    for i in range(5):
        outbox.add_sightings(rows(1))
        outbox.seal(T0 + i, 1000)

    assert [b.seq for b in outbox.pending(limit=3)] == [0, 1, 2]


def test_every_persisted_row_carries_a_version_and_the_file_is_wal_full(path, outbox):
    outbox.add_sightings(rows(1))
    outbox.add_events([wire.DoorsClosedEvent(t=T0)])
    assert outbox._conn.execute("PRAGMA synchronous").fetchone() == (2,)  # FULL
    outbox.seal(T0, 1000)
    outbox.add_sightings(rows(1))
    outbox.add_events([wire.DoorsClosedEvent(t=T0)])

    db = sqlite3.connect(path)
    try:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert db.execute("PRAGMA user_version").fetchone() == (OUTBOX_SCHEMA_VERSION,)
        for table in ("events", "sightings", "batches"):
            assert db.execute(f"SELECT DISTINCT version FROM {table}").fetchall() == [(1,)]
    finally:
        db.close()


def test_a_row_the_backend_would_refuse_is_dropped_on_the_way_in_and_the_rest_kept(outbox, caplog):
    bad = SightingRow(t=T0, token=token(1), rssi=127, n=1, tx=None)

    with caplog.at_level(logging.WARNING, logger="onboard.outbox"):
        report = outbox.add_sightings([*rows(1), bad])

    assert (report.sightings, report.refused_sightings) == (1, 1)
    health = outbox.health(T0)
    assert (health.unbatched_sightings, health.refused_sightings) == (1, 1)
    [record] = caplog.records
    assert "rssi=127: expected -127..20 dBm" in record.getMessage()


def test_a_file_from_a_newer_agent_is_refused(path):
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {OUTBOX_SCHEMA_VERSION + 1}")
    db.close()

    with pytest.raises(OutboxError) as info:
        Outbox(path, VEHICLE, UNIT, "boot-1")

    assert info.value.reason is OutboxErrorReason.NEWER_SCHEMA


def test_a_closed_outbox_says_so(path):
    box = Outbox(path, VEHICLE, UNIT, "boot-1")
    box.close()

    with pytest.raises(OutboxError) as info:
        box.pending()

    assert info.value.reason is OutboxErrorReason.CLOSED


# --- compression, schema migration, read-only health ------------------------------------


def test_bodies_are_stored_gzipped_and_read_back_as_json(path):
    with Outbox(path, VEHICLE, UNIT, "boot-1") as box:
        box.add_sightings(rows(200))
        box.seal(T0, 1000)
        [sealed] = box.pending()

    assert sealed.encoding == "gzip"
    assert sealed.gzipped == sealed.stored
    assert len(sealed.stored) < len(sealed.body) / 2
    assert wire.Batch.model_validate_json(sealed.body).seq == 0


def test_uncompressed_outbox_stores_json(path):
    with Outbox(path, VEHICLE, UNIT, "boot-1", compress=False) as box:
        box.add_sightings(rows(2))
        box.seal(T0, 1000)
        [sealed] = box.pending()

    assert sealed.encoding == "identity"
    assert sealed.gzipped is None
    assert sealed.stored == sealed.body


V1_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE events (id INTEGER PRIMARY KEY AUTOINCREMENT, version INTEGER NOT NULL,
    t INTEGER NOT NULL, body TEXT NOT NULL);
CREATE TABLE sightings (id INTEGER PRIMARY KEY AUTOINCREMENT, version INTEGER NOT NULL,
    t INTEGER NOT NULL, token BLOB NOT NULL, rssi INTEGER NOT NULL, n INTEGER NOT NULL,
    tx INTEGER);
CREATE TABLE batches (seq INTEGER PRIMARY KEY, version INTEGER NOT NULL,
    vehicle_id TEXT NOT NULL, unit_id TEXT NOT NULL, boot_id TEXT NOT NULL,
    sealed_at INTEGER NOT NULL, n_events INTEGER NOT NULL, n_sightings INTEGER NOT NULL,
    body BLOB NOT NULL, status TEXT NOT NULL CHECK (status IN ('pending', 'quarantined')),
    attempts INTEGER NOT NULL DEFAULT 0, last_error TEXT);
CREATE INDEX batches_status_seq ON batches (status, seq);
INSERT INTO meta VALUES ('next_seq', 8);
PRAGMA user_version = 1;
"""


def test_a_version_1_outbox_is_migrated_and_its_batches_resent_unchanged(path):
    body = b'{"version":1,"vehicle_id":"RLG-4711","seq":7}'
    db = sqlite3.connect(path)
    db.executescript(V1_SCHEMA)
    db.execute(
        "INSERT INTO batches VALUES (7, 1, ?, ?, 'boot-0', ?, 0, 1, ?, 'pending', 0, NULL)",
        (VEHICLE, UNIT, T0, body),
    )
    db.commit()
    db.close()

    with Outbox(path, VEHICLE, UNIT, "boot-1") as box:
        [old] = box.pending()
        box.add_sightings(rows(1))
        new_seq = box.seal(T0 + 1, 1000)

    assert (old.seq, old.body, old.encoding) == (7, body, "identity")
    assert old.offered, "a v1 agent may have sent it: never rewritten by the disk cap"
    assert new_seq == 8
    db = sqlite3.connect(path)
    try:
        assert db.execute("PRAGMA user_version").fetchone() == (OUTBOX_SCHEMA_VERSION,)
        assert db.execute("SELECT body FROM batches WHERE seq = 7").fetchone() == (body,)
    finally:
        db.close()


def test_health_is_readable_read_only_while_the_agent_writes(path, outbox):
    outbox.add_sightings(rows(3))
    outbox.add_events([wire.DoorsOpenEvent(t=T0 + 10)])
    outbox.seal(T0 + 1000, 1000)
    outbox.add_sightings(rows(2, t=T0 + 1000))
    outbox.mark_delivered(0, now_ms=T0 + 1500)
    outbox.add_sightings(rows(1, t=T0 + 2000))
    outbox.seal(T0 + 3000, 1000)

    health = read_health(path, T0 + 4000)

    assert health == outbox.health(T0 + 4000)
    assert (health.pending_batches, health.unbatched_sightings) == (1, 0)
    assert health.last_delivery_ms == T0 + 1500
    assert health.oldest_unsent_age_ms == 1000
    assert health.used_bytes > 0


def test_read_health_of_something_else_says_so(tmp_path):
    junk = tmp_path / "junk.sqlite3"
    junk.write_bytes(b"not a database at all" * 100)

    with pytest.raises(OutboxError) as info:
        read_health(junk, T0)

    assert info.value.reason is OutboxErrorReason.UNREADABLE


# --- the disk cap -----------------------------------------------------------------------

CAP = 200_000


def noisy_rows(count: int, t: int, seed: int) -> list[SightingRow]:
    """Rows with random tokens: they barely compress, so the cap is reached quickly."""
    rnd = random.Random(seed)
    return [
        SightingRow(t=t, token=rnd.randbytes(16), rssi=-60 - i % 40, n=1, tx=None)
        for i in range(count)
    ]


def fill(box: Outbox, batches: int, *, with_events: bool = True) -> int:
    """Seal ``batches`` batches of 300 rows (and an event each); returns rows added."""
    for i in range(batches):
        box.add_sightings(noisy_rows(300, T0 + i * 1000, seed=i))
        if with_events:
            box.add_events([wire.ArrivalEvent(t=T0 + i * 1000, stop_id="de:05974:1001")])
        box.seal(T0 + i * 1000, 1000)
    return 300 * batches


def batch_rows(path) -> list[tuple[int, int, int, int]]:
    db = sqlite3.connect(path)
    try:
        return db.execute(
            "SELECT seq, n_events, n_sightings, offered FROM batches ORDER BY seq"
        ).fetchall()
    finally:
        db.close()


def test_at_the_cap_the_oldest_sightings_go_first_and_events_stay(path, caplog):
    with Outbox(path, VEHICLE, UNIT, "boot-1", max_bytes=CAP) as box:
        box.add_sightings(noisy_rows(300, T0 - 1000, seed=99))
        box.seal(T0 - 1000, 1000)
        box.mark_offered(0)  # handed to the backend: its sightings must never change
        with caplog.at_level(logging.WARNING, logger="onboard.outbox"):
            added = 300 + fill(box, 60)
            assert box.used_bytes() <= CAP
        dropped = box.dropped_sightings()
        kept = box.pending()

    assert dropped > 0
    assert sum(b.n_sightings for b in kept) == added - dropped
    assert len(kept) == 61, "batches with events are stripped, never removed"
    assert sum(b.n_events for b in kept) == 60
    assert kept[0].n_sightings == 300, "the offered batch keeps its sightings"
    with_sightings = [b.seq for b in kept[1:] if b.n_sightings]
    assert with_sightings == list(range(61 - len(with_sightings), 61)), "oldest dropped first"
    stripped = wire.Batch.model_validate_json(kept[1].body)
    assert (stripped.seq, len(stripped.sightings), len(stripped.events)) == (1, 0, 1)
    assert any("dropped the" in r.getMessage() for r in caplog.records)
    assert all("\n" not in r.getMessage() for r in caplog.records)
    assert read_health(path, T0).dropped_sightings == dropped


def test_batches_without_events_are_removed_entirely_at_the_cap(path):
    with Outbox(path, VEHICLE, UNIT, "boot-1", max_bytes=CAP) as box:
        added = fill(box, 60, with_events=False)
        kept = box.pending()
        assert box.used_bytes() <= CAP
        assert sum(b.n_sightings for b in kept) == added - box.dropped_sightings()
    assert kept[0].seq > 0
    assert [b.seq for b in kept] == list(range(kept[0].seq, 60))


def test_quarantined_batches_lose_their_sightings_too(path):
    with Outbox(path, VEHICLE, UNIT, "boot-1", max_bytes=CAP) as box:
        fill(box, 1)
        box.mark_offered(0)
        box.quarantine(0, "HTTP 422: refused")
        fill(box, 60)
        assert box.used_bytes() <= CAP
    assert batch_rows(path)[0] == (0, 1, 0, 1)


def test_unbatched_rows_are_dropped_when_no_sealed_sightings_are_left(path):
    with Outbox(path, VEHICLE, UNIT, "boot-1", max_bytes=CAP) as box:
        for i in range(40):
            box.add_sightings(noisy_rows(300, T0 + i * 1000, seed=i))
        assert box.used_bytes() <= CAP
        left = box.health(T0).unbatched_sightings
        assert left + box.dropped_sightings() == 40 * 300
        oldest = box._conn.execute("SELECT MIN(t) FROM sightings").fetchone()[0]
    assert oldest > T0, "the oldest rows went first"


def test_events_alone_over_the_cap_are_kept_and_logged_once(path, caplog):
    with (
        caplog.at_level(logging.WARNING, logger="onboard.outbox"),
        Outbox(path, VEHICLE, UNIT, "boot-1", max_bytes=40_000) as box,
    ):
        for i in range(10):
            box.add_events(
                [wire.DoorsOpenEvent(t=T0 + i * 1000 + k) for k in range(MAX_BATCH_EVENTS // 10)]
            )
            box.seal(T0 + i * 1000, 1000)
        assert box.used_bytes() > 40_000
        assert box.dropped_sightings() == 0
        assert sum(b.n_events for b in box.pending()) == 10 * (MAX_BATCH_EVENTS // 10)
    warnings = [r for r in caplog.records if "never dropped" in r.getMessage()]
    assert len(warnings) == 1


def test_cap_must_be_positive(path):
    with pytest.raises(ValueError, match="max_bytes"):
        Outbox(path, VEHICLE, UNIT, "boot-1", max_bytes=0)
