"""Prometheus metrics from the agent's health snapshot, and ``bibo onboard status`` reading them."""

from __future__ import annotations

import json
import math

import httpx
import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from onboard.cli import main, status_report
from onboard.health import HealthSnapshot
from onboard.metrics import MetricsServer, make_registry
from onboard.outbox import Outbox, OutboxHealth
from tests.onboard.conftest import T0, UNIT, VEHICLE
from tests.onboard.test_outbox import rows

OUTBOX = OutboxHealth(
    pending_batches=3,
    quarantined_batches=1,
    unbatched_events=2,
    unbatched_sightings=40,
    oldest_pending_age_ms=12_000,
    used_bytes=65_536,
    dropped_sightings=17,
    last_delivery_ms=T0 - 4000,
    refused_sightings=5,
    refused_events=2,
    clamped_sightings=1,
    quarantined_rows=4,
    oldest_unsent_age_ms=15_000,
)


def snapshot(**overrides) -> HealthSnapshot:
    values = {
        "t_ms": T0,
        "adverts": {"windowed": 900, "ignored": 50, "malformed_wrong_length": 3},
        "adverts_per_s": 95.5,
        "open_rows": 210,
        "events": 12,
        "outbox": OUTBOX,
        "uploads": {"delivered": 40, "retry": 2, "quarantined": 1},
        "last_upload_ms": T0 - 3000,
        "clock_offset_ms": -1500,
        "scanner_restarts": 1,
        "sources": {"gpsd": {"positions": 30}},
    }
    values.update(overrides)
    return HealthSnapshot(**values)


def samples(text: str) -> dict[tuple[str, tuple], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_every_health_figure_is_a_metric():
    registry, collector = make_registry()
    assert generate_latest(registry) == b""  # nothing before the first snapshot

    collector.update(snapshot())
    got = samples(generate_latest(registry).decode())

    assert got[("bibo_onboard_adverts_total", (("outcome", "windowed"),))] == 900
    assert got[("bibo_onboard_adverts_total", (("outcome", "malformed_wrong_length"),))] == 3
    assert got[("bibo_onboard_adverts_per_second", ())] == 95.5
    assert got[("bibo_onboard_outbox_pending_batches", ())] == 3
    assert got[("bibo_onboard_outbox_oldest_unsent_age_seconds", ())] == 15
    assert got[("bibo_onboard_outbox_dropped_sightings_total", ())] == 17
    assert got[("bibo_onboard_outbox_refused_rows_total", (("kind", "sighting"),))] == 5
    assert got[("bibo_onboard_outbox_refused_rows_total", (("kind", "event"),))] == 2
    assert got[("bibo_onboard_outbox_clamped_sightings_total", ())] == 1
    assert got[("bibo_onboard_outbox_quarantined_rows", ())] == 4
    assert got[("bibo_onboard_outbox_bytes", ())] == 65_536
    assert got[("bibo_onboard_last_successful_upload_timestamp_seconds", ())] == (T0 - 3000) / 1000
    assert got[("bibo_onboard_clock_offset_seconds", ())] == -1.5
    assert got[("bibo_onboard_uploads_total", (("outcome", "retry"),))] == 2
    assert got[("bibo_onboard_scanner_restarts_total", ())] == 1
    assert got[("bibo_onboard_source_total", (("counter", "positions"), ("source", "gpsd")))] == 30


def test_unknown_times_are_nan():
    registry, collector = make_registry()
    collector.update(snapshot(last_upload_ms=None, clock_offset_ms=None))
    got = samples(generate_latest(registry).decode())

    assert math.isnan(got[("bibo_onboard_last_successful_upload_timestamp_seconds", ())])
    assert math.isnan(got[("bibo_onboard_clock_offset_seconds", ())])


@pytest.fixture
def metrics_server():
    registry, collector = make_registry()
    collector.update(snapshot())
    server = MetricsServer(registry, "127.0.0.1", 0)
    yield server
    server.close()


def test_the_metrics_server_serves_on_loopback(metrics_server):
    r = httpx.get(f"http://127.0.0.1:{metrics_server.port}/metrics")

    assert r.status_code == 200
    assert "bibo_onboard_outbox_pending_batches 3.0" in r.text


def test_status_shows_the_outbox_and_the_live_agent(tmp_path, metrics_server, capsys):
    path = tmp_path / "outbox.sqlite3"
    with Outbox(path, VEHICLE, UNIT, "boot-1") as box:
        box.add_sightings(rows(3))
        box.seal(T0, 1000)

    code = main(["status", "--outbox", str(path), "--metrics", f"127.0.0.1:{metrics_server.port}"])
    text = capsys.readouterr().out
    code_json = main(
        [
            "status",
            "--outbox",
            str(path),
            "--metrics",
            f"127.0.0.1:{metrics_server.port}",
            "--format",
            "json",
        ]
    )
    report = json.loads(capsys.readouterr().out)

    assert code == code_json == 0
    assert "pending batches      1" in text
    assert "95.5 adverts/s" in text
    assert "clock offset -1.5 s" in text
    assert report["version"] == 1
    assert report["outbox"]["pending_batches"] == 1
    assert report["agent"]["adverts_per_s"] == 95.5
    assert report["agent"]["adverts_total"] == 953


def test_status_without_a_running_agent(tmp_path, capsys):
    path = tmp_path / "outbox.sqlite3"
    Outbox(path, VEHICLE, UNIT, "boot-1").close()

    assert main(["status", "--outbox", str(path), "--metrics", "127.0.0.1:9"]) == 0
    assert "not reachable at 127.0.0.1:9" in capsys.readouterr().out
    assert main(["status", "--outbox", str(path), "--metrics", "off"]) == 0
    assert "--metrics off" in capsys.readouterr().out


def test_status_report_is_pure():
    report = status_report(OUTBOX, None, T0)

    assert report["agent"] is None
    assert report["outbox"]["dropped_sightings"] == 17
    assert report["outbox"]["last_delivery"] == "2026-11-23T08:06:36+00:00"
