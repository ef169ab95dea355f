"""The durable outbox: crash safety, batch identity, limits."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap

import pytest

from onboard import wire
from onboard.const import MAX_BATCH_SIGHTINGS, OUTBOX_SCHEMA_VERSION
from onboard.outbox import Outbox, OutboxError, OutboxErrorReason
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


def test_a_row_the_backend_would_refuse_is_refused_on_the_way_in(outbox):
    bad = SightingRow(t=T0, token=token(1), rssi=127, n=1, tx=None)

    with pytest.raises(OutboxError, match="rssi=127") as info:
        outbox.add_sightings([*rows(1), bad])

    assert info.value.reason is OutboxErrorReason.INVALID_ROW
    assert outbox.health(T0).unbatched_sightings == 0


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
