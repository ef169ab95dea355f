"""The outbox never jams on one bad value: what the backend would refuse is dropped or clamped
on the way in, and a bad row already on disk is set aside at sealing, never sealed."""

from __future__ import annotations

import gzip
import json
import logging
import math
import sqlite3

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from onboard import wire
from onboard.agent import Agent, AgentConfig
from onboard.const import (
    MAX_BATCH_SIGHTINGS,
    MAX_WINDOW_MS,
    OUTBOX_SCHEMA_VERSION,
    TX_POWER_MAX_DBM,
    TX_POWER_MIN_DBM,
)
from onboard.outbox import Outbox, OutboxError, OutboxErrorReason, read_health
from onboard.uploader import Uploader
from onboard.windowing import SightingRow
from tests.onboard.conftest import SECRET, T0, UNIT, VEHICLE, Clock, FakeBackend, token

YEAR_10000_MS = 253_402_300_800_000
"""10000-01-01T00:00:00Z in epoch ms: the far end of the times thrown at the outbox."""

PROPERTY_SETTINGS = settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


def sealed_batches(box: Outbox) -> list[wire.Batch]:
    """Every pending batch, parsed by the wire format exactly as the backend would."""
    return [wire.Batch.model_validate_json(b.body) for b in box.pending()]


def seal_everything(box: Outbox, now_ms: int = T0 + 60_000) -> None:
    while box.seal(now_ms, 1000) is not None:
        pass


def sealed_rows(box: Outbox) -> list[tuple[int, str, int, int, int | None]]:
    rows: list[tuple[int, str, int, int, int | None]] = []
    for batch in sealed_batches(box):
        s = batch.sightings
        rows.extend(zip(s.t, s.token, s.rssi, s.n, s.tx, strict=True))
    return rows


# --- what may be fed to the outbox ---------------------------------------------------------

edge_times = st.sampled_from(
    [0, wire.EARLIEST_EPOCH_MS - 1, wire.EARLIEST_EPOCH_MS, T0, wire.LATEST_EPOCH_MS]
)
edge_times |= st.sampled_from([wire.LATEST_EPOCH_MS + 1, YEAR_10000_MS])
times = st.one_of(st.integers(0, YEAR_10000_MS), edge_times)
counts = st.one_of(
    st.integers(0, 2**63),
    st.sampled_from([0, 1, wire.MAX_SIGHTING_N, wire.MAX_SIGHTING_N + 1, 2**63 - 1, 2**63]),
)
odd_floats = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([1e308, -1e308, math.inf, -math.inf, math.nan, 70.0, 70.01, 90.0, 180.5]),
)
sighting_rows = st.builds(
    SightingRow,
    t=st.one_of(times, times.map(float)),
    token=st.one_of(st.binary(min_size=16, max_size=16), st.binary(max_size=20)),
    rssi=st.one_of(st.integers(-130, 130), st.sampled_from([127, -128, 20, -127])),
    n=st.one_of(counts, st.just(True)),
    tx=st.one_of(st.none(), st.integers(-300, 300), st.sampled_from([-128, -127, 127, 128])),
)
identifiers = st.one_of(st.sampled_from(["R51", "R51-0712"]), st.text(max_size=70))
events = st.one_of(
    st.builds(
        lambda t, lat, lon, speed: wire.PositionEvent.model_construct(
            t=t, lat=lat, lon=lon, speed_mps=speed
        ),
        times,
        st.one_of(odd_floats, st.floats(-90, 90)),
        st.one_of(odd_floats, st.floats(-180, 180)),
        st.one_of(st.none(), odd_floats, st.floats(0, 70)),
    ),
    st.builds(lambda t: wire.DoorsOpenEvent.model_construct(t=t), times),
    st.builds(
        lambda t, stop: wire.ArrivalEvent.model_construct(t=t, stop_id=stop),
        times,
        st.one_of(st.just("de:05974:1001"), st.text(max_size=70)),
    ),
    st.builds(
        lambda t, line, journey, direction: wire.JourneyEvent.model_construct(
            t=t, line=line, journey_id=journey, direction=direction
        ),
        times,
        identifiers,
        identifiers,
        st.integers(-2, 3),
    ),
)


def expected_row(row: SightingRow) -> tuple[int, str, int, int, int | None] | None:
    """The oracle is the wire format itself: the row as a batch carries it (``n`` capped,
    an unusable tx power unknown), or ``None`` if the wire refuses its time, token, RSSI or
    count."""
    if type(row.n) is not int or type(row.t) is not int or not isinstance(row.token, bytes):
        return None
    n = min(row.n, wire.MAX_SIGHTING_N)
    tx = row.tx if row.tx is not None and TX_POWER_MIN_DBM <= row.tx <= TX_POWER_MAX_DBM else None
    try:
        s = wire.Sightings(t=[row.t], token=[row.token.hex()], rssi=[row.rssi], n=[n], tx=[tx])
    except ValidationError:
        return None
    return (s.t[0], s.token[0], s.rssi[0], s.n[0], s.tx[0])


def event_is_valid(event: wire.Event) -> bool:
    """Whether the event's own model takes its fields (it was built without validation)."""
    try:
        type(event).model_validate(dict(event.__dict__))
    except ValidationError:
        return False
    return True


@PROPERTY_SETTINGS
@given(rows=st.lists(sighting_rows, max_size=30), evs=st.lists(events, max_size=10))
def test_whatever_is_fed_in_every_sealed_batch_is_valid_and_every_valid_row_is_in_one(rows, evs):
    with Outbox(":memory:", VEHICLE, UNIT, "boot-1") as box:
        half = len(rows) // 2
        box.add(rows[:half], evs)
        box.add_sightings(rows[half:])
        seal_everything(box)

        batches = sealed_batches(box)  # raises if any body is not a valid wire.Batch
        expected = [e for e in map(expected_row, rows) if e is not None]
        assert sorted(sealed_rows(box), key=repr) == sorted(expected, key=repr)
        sealed_events = [e for b in batches for e in b.events]
        assert len(sealed_events) == sum(map(event_is_valid, evs))
        health = box.health(T0)
        assert health.refused_sightings == len(rows) - len(expected)
        assert health.refused_events == len(evs) - len(sealed_events)
        assert (health.unbatched_sightings, health.unbatched_events) == (0, 0)
        assert health.quarantined_rows == 0


def test_times_outside_2020_to_2100_are_dropped_and_a_huge_count_is_clamped(caplog):
    with Outbox(":memory:", VEHICLE, UNIT, "boot-1") as box:
        rows = [
            SightingRow(t=0, token=token(1), rssi=-60, n=1, tx=None),  # RTC at 1970
            SightingRow(t=wire.EARLIEST_EPOCH_MS - 1000, token=token(2), rssi=-60, n=1, tx=None),
            SightingRow(t=wire.LATEST_EPOCH_MS + 1000, token=token(3), rssi=-60, n=1, tx=None),
            SightingRow(t=T0, token=token(4), rssi=-60, n=wire.MAX_SIGHTING_N + 1, tx=-8),
            SightingRow(t=T0, token=token(5), rssi=-60, n=2, tx=-128),
            SightingRow(t=T0, token=token(6), rssi=-60, n=3, tx=-8),
        ]
        with caplog.at_level(logging.WARNING, logger="onboard.outbox"):
            report = box.add_sightings(rows)
            box.add_sightings(rows[:1])  # the same trouble again: counted, not logged again

        assert (report.sightings, report.refused_sightings, report.clamped_sightings) == (3, 3, 2)
        [line] = [r.getMessage() for r in caplog.records]
        assert "t=0: expected UTC epoch ms 1577836800000..4102444800000" in line
        assert box.seal(T0 + 5000, 1000) == 0
        assert sealed_rows(box) == [
            (T0, token(4).hex(), -60, wire.MAX_SIGHTING_N, -8),
            (T0, token(5).hex(), -60, 2, None),
            (T0, token(6).hex(), -60, 3, -8),
        ]
        health = box.health(T0)
        assert (health.refused_sightings, health.clamped_sightings) == (4, 2)


def test_an_event_built_without_validation_is_dropped_not_stored():
    with Outbox(":memory:", VEHICLE, UNIT, "boot-1") as box:
        bad = wire.PositionEvent.model_construct(t=T0, lat=51.5, lon=8.1, speed_mps=math.inf)
        report = box.add_events([bad, wire.DoorsOpenEvent(t=T0)])

        assert (report.events, report.refused_events) == (1, 1)
        box.seal(T0 + 1000, 1000)
        [batch] = sealed_batches(box)
        assert [e.type for e in batch.events] == ["doors_open"]


# --- rows already on disk that the wire format refuses -----------------------------------


def poison(path, *, extra_bad: int = 0) -> None:
    """Write rows the wire format refuses straight into the outbox's tables, as an older
    release (or an operator's sqlite3 shell) could have."""
    db = sqlite3.connect(path)
    try:
        bad_sightings = [
            (0, token(10), -60, 1, None),  # 1970: a clock never set
            (T0, token(11), -60, wire.MAX_SIGHTING_N * 3, -8),  # clamped, not set aside
            (T0, b"short", -60, 1, None),
            (T0, "0" * 32, -60, 1, None),  # a token as text, though it looks like hex
            (T0, 10**12, -60, 1, None),  # bytes(10**12) would need a terabyte
            ("yesterday", token(12), -60, 1, None),
            (T0, token(13), -60, 1, 900),  # tx unusable: stored as unknown
        ] + [(5, token(20), -60, 1, None)] * extra_bad
        db.executemany(
            "INSERT INTO sightings (version, t, token, rssi, n, tx) VALUES (1, ?, ?, ?, ?, ?)",
            bad_sightings,
        )
        db.executemany(
            "INSERT INTO events (version, t, body) VALUES (1, ?, ?)",
            [
                (0, '{"t":0,"type":"doors_open"}'),
                (T0, "not json at all"),
                (T0, f'{{"t":{T0},"type":"position","lat":51.5,"lon":8.1,"speed_mps":1e308}}'),
            ],
        )
        db.commit()
    finally:
        db.close()


def test_a_poisoned_outbox_still_seals_the_rest_and_sets_the_bad_rows_aside(tmp_path, caplog):
    path = tmp_path / "outbox.sqlite3"
    with Outbox(path, VEHICLE, UNIT, "boot-1") as box:
        box.add_sightings([SightingRow(t=T0, token=token(1), rssi=-60, n=1, tx=-8)])
    poison(path)
    with Outbox(path, VEHICLE, UNIT, "boot-1") as box:
        box.add(
            [SightingRow(t=T0 + 1000, token=token(2), rssi=-61, n=2, tx=None)],
            [wire.DoorsClosedEvent(t=T0 + 1000)],
        )

        with caplog.at_level(logging.WARNING, logger="onboard.outbox"):
            assert box.seal(T0 + 5000, 1000) == 0
        assert box.seal(T0 + 5000, 1000) is None

        [batch] = sealed_batches(box)
        assert sorted(zip(batch.sightings.token, batch.sightings.n, strict=True)) == sorted(
            [
                (token(1).hex(), 1),
                (token(11).hex(), wire.MAX_SIGHTING_N),
                (token(13).hex(), 1),
                (token(2).hex(), 2),
            ]
        )
        assert [e.type for e in batch.events] == ["doors_closed"]
        health = box.health(T0)
        assert (health.quarantined_rows, health.clamped_sightings) == (8, 2)
        assert (health.unbatched_sightings, health.unbatched_events) == (0, 0)
        [line] = [r.getMessage() for r in caplog.records]
        assert "set 8 stored rows the backend would refuse aside" in line
        assert "doors_open.t: Input should be greater than or equal to 1577836800000" in line
    db = sqlite3.connect(path)
    try:
        reasons = dict(db.execute("SELECT body, reason FROM quarantined_rows").fetchall())
    finally:
        db.close()
    assert "Invalid JSON" in reasons["not json at all"]
    assert any("speed_mps" in r for r in reasons.values())
    assert any(r.startswith("token: expected 16 bytes, got 5 bytes") for r in reasons.values())
    assert any(r.startswith("t='yesterday'") for r in reasons.values())


async def test_a_poisoned_outbox_still_uploads_everything_valid(tmp_path):
    path = tmp_path / "outbox.sqlite3"
    Outbox(path, VEHICLE, UNIT, "boot-1").close()
    poison(path, extra_bad=MAX_BATCH_SIGHTINGS + 5)  # a whole first chunk of bad rows
    backend = FakeBackend()
    clock = Clock()
    async with httpx.AsyncClient(transport=httpx.MockTransport(backend.handler)) as client:
        with Outbox(path, VEHICLE, UNIT, "boot-2") as box:
            box.add_sightings([SightingRow(t=T0, token=token(1), rssi=-60, n=4, tx=-8)])
            uploader = Uploader(client, "http://bibo.test", VEHICLE, SECRET, clock)
            agent = Agent(AgentConfig(VEHICLE, UNIT), box, uploader, clock)

            await agent.drain()

            assert box.pending_count() == 0
            assert box.health(T0).quarantined_rows == 8 + MAX_BATCH_SIGHTINGS + 5
    tokens = {row[1] for row in backend.sighting_rows()}
    assert tokens == {token(1).hex(), token(11).hex(), token(13).hex()}


def test_sealing_with_a_clock_not_set_changes_nothing_and_says_so():
    with Outbox(":memory:", VEHICLE, UNIT, "boot-1") as box:
        box.add_sightings([SightingRow(t=T0, token=token(1), rssi=-60, n=1, tx=None)])

        for now in (0, wire.EARLIEST_EPOCH_MS - 1, wire.LATEST_EPOCH_MS + 1):
            with pytest.raises(OutboxError, match="clock is not set") as info:
                box.seal(now, 1000)
            assert info.value.reason is OutboxErrorReason.CLOCK_NOT_SET
        with pytest.raises(ValueError, match="window_ms"):
            box.seal(T0, MAX_WINDOW_MS + 1)

        assert box.health(T0).unbatched_sightings == 1
        assert box.seal(T0 + 1000, MAX_WINDOW_MS) == 0


def test_the_longest_window_is_the_one_the_wire_format_takes():
    batch = {"version": 1, "vehicle_id": "V", "unit_id": "U", "boot_id": "B", "seq": 0}
    batch["sent_at"] = T0
    wire.Batch.model_validate({**batch, "window_ms": MAX_WINDOW_MS})
    with pytest.raises(ValidationError):
        wire.Batch.model_validate({**batch, "window_ms": MAX_WINDOW_MS + 1})


@pytest.mark.parametrize(
    ("field", "value"),
    [("vehicle_id", "bus 12"), ("unit_id", ""), ("boot_id", "b\n"), ("vehicle_id", "x" * 65)],
)
def test_an_id_no_batch_could_carry_is_refused_when_the_outbox_opens(field, value):
    ids = {"vehicle_id": VEHICLE, "unit_id": UNIT, "boot_id": "boot-1", field: value}

    with pytest.raises(ValueError, match=field):
        Outbox(":memory:", ids["vehicle_id"], ids["unit_id"], ids["boot_id"])


# --- the disk cap meets bodies and rows that do not validate -----------------------------


def test_the_disk_cap_strips_a_quarantined_batch_even_if_its_body_no_longer_validates(tmp_path):
    path = tmp_path / "outbox.sqlite3"
    with Outbox(path, VEHICLE, UNIT, "boot-1", max_bytes=10**9) as box:
        box.add(
            [SightingRow(t=T0, token=token(i), rssi=-60, n=1, tx=None) for i in range(3)],
            [wire.DoorsOpenEvent(t=T0)],
        )
        seq = box.seal(T0 + 1000, 1000)
        # Sealed under older, looser bounds, then refused by the backend with a 422.
        body = json.loads(box.pending()[0].body)
        body["sightings"]["n"] = [wire.MAX_SIGHTING_N * 2] * 3
        db = sqlite3.connect(path)
        db.execute(
            "UPDATE batches SET body = ?, status = 'quarantined' WHERE seq = ?",
            (gzip.compress(json.dumps(body).encode(), mtime=0), seq),
        )
        db.execute(
            "INSERT INTO quarantined_rows (version, kind, body, reason, quarantined_at)"
            " VALUES (1, 'sighting', '{}', 'test', 0)"
        )
        db.commit()
        db.close()
        box.max_bytes = 4096  # far below what the file holds

        report = box.enforce_cap()

        assert (report.quarantined, report.batches_stripped) == (1, 1)
        db = sqlite3.connect(path)
        [(stored,)] = db.execute("SELECT body FROM batches WHERE seq = ?", (seq,)).fetchall()
        db.close()
        stripped = json.loads(gzip.decompress(stored))
        assert stripped["events"] == body["events"]
        assert stripped["sightings"]["n"] == []


def test_a_schema_2_file_is_read_and_upgraded(tmp_path):
    path = tmp_path / "outbox.sqlite3"
    with Outbox(path, VEHICLE, UNIT, "boot-1") as box:
        box.add_sightings([SightingRow(t=T0, token=token(1), rssi=-60, n=1, tx=None)])
    db = sqlite3.connect(path)
    db.execute("DROP TABLE quarantined_rows")
    db.execute("PRAGMA user_version = 2")
    db.commit()
    db.close()

    assert read_health(path, T0).quarantined_rows == 0  # read-only, as `bibo onboard status`
    with Outbox(path, VEHICLE, UNIT, "boot-2") as box:
        assert box.seal(T0 + 1000, 1000) == 0
    db = sqlite3.connect(path)
    try:
        assert db.execute("PRAGMA user_version").fetchone() == (OUTBOX_SCHEMA_VERSION,)
        assert db.execute("SELECT COUNT(*) FROM quarantined_rows").fetchone() == (0,)
    finally:
        db.close()


def test_health_survives_a_time_written_as_text(tmp_path):
    path = tmp_path / "outbox.sqlite3"
    Outbox(path, VEHICLE, UNIT, "boot-1").close()
    db = sqlite3.connect(path)
    db.execute("INSERT INTO events (version, t, body) VALUES (1, 'noon', '{}')")
    db.commit()
    db.close()

    health = read_health(path, T0)

    assert (health.unbatched_events, health.oldest_unsent_age_ms) == (1, None)
