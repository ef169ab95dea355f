"""Prometheus metrics of the agent on a local port (prometheus-client).

The agent builds a ``HealthSnapshot`` every tick on its own thread; the metrics server
(prometheus-client's, on a daemon thread) only reads the latest snapshot, so scraping never
touches the outbox's SQLite connection. Metric names start with ``bibo_onboard_``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

from prometheus_client import start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from onboard.beacon import BeaconHealth
from onboard.health import HealthSnapshot


def _seconds(ms: int | None) -> float:
    return math.nan if ms is None else ms / 1000


class SnapshotCollector(Collector):
    """A Prometheus collector serving the latest ``HealthSnapshot`` (none: no samples)."""

    def __init__(self) -> None:
        self.snapshot: HealthSnapshot | None = None

    def update(self, snapshot: HealthSnapshot) -> None:
        """Replace the served snapshot (an atomic reference swap)."""
        self.snapshot = snapshot

    def collect(self) -> Iterator[Metric]:
        s = self.snapshot
        if s is None:
            return
        adverts = CounterMetricFamily(
            "bibo_onboard_adverts", "Adverts received, by outcome", labels=["outcome"]
        )
        for outcome, count in sorted(s.adverts.items()):
            adverts.add_metric([outcome], count)
        yield adverts
        yield _gauge(
            "bibo_onboard_adverts_per_second", "Adverts received per second", s.adverts_per_s
        )
        yield _gauge(
            "bibo_onboard_window_open_rows", "(window, token) rows held in memory", s.open_rows
        )
        yield CounterMetricFamily(
            "bibo_onboard_vehicle_events", "Vehicle events received", value=s.events
        )
        o = s.outbox
        yield _gauge(
            "bibo_onboard_outbox_pending_batches",
            "Sealed batches waiting (queue depth)",
            o.pending_batches,
        )
        yield _gauge(
            "bibo_onboard_outbox_quarantined_batches",
            "Batches the backend refused, kept for the operator",
            o.quarantined_batches,
        )
        yield _gauge(
            "bibo_onboard_outbox_unbatched_sightings",
            "Sighting rows on disk not yet sealed into a batch",
            o.unbatched_sightings,
        )
        yield _gauge(
            "bibo_onboard_outbox_oldest_unsent_age_seconds",
            "Age of the oldest data not yet delivered (NaN when none waits)",
            _seconds(o.oldest_unsent_age_ms),
        )
        yield _gauge("bibo_onboard_outbox_bytes", "Bytes of data in the outbox file", o.used_bytes)
        refused = CounterMetricFamily(
            "bibo_onboard_outbox_refused_rows",
            "Sighting rows and events refused on the way into the outbox, over the file's life",
            labels=["kind"],
        )
        refused.add_metric(["sighting"], o.refused_sightings)
        refused.add_metric(["event"], o.refused_events)
        yield refused
        yield CounterMetricFamily(
            "bibo_onboard_outbox_clamped_sightings",
            "Sighting rows whose advert count was clamped to the wire format's maximum",
            value=o.clamped_sightings,
        )
        yield _gauge(
            "bibo_onboard_outbox_quarantined_rows",
            "Stored rows set aside at sealing because they fail the upload contract",
            o.quarantined_rows,
        )
        yield CounterMetricFamily(
            "bibo_onboard_outbox_dropped_sightings",
            "Sighting rows dropped at the outbox disk cap (over the file's life)",
            value=o.dropped_sightings,
        )
        uploads = CounterMetricFamily(
            "bibo_onboard_uploads", "Batch sends, by outcome", labels=["outcome"]
        )
        for outcome, count in sorted(s.uploads.items()):
            uploads.add_metric([outcome], count)
        yield uploads
        yield _gauge(
            "bibo_onboard_last_successful_upload_timestamp_seconds",
            "Unix time of the last batch the backend stored (NaN before the first)",
            _seconds(s.last_upload_ms),
        )
        yield _gauge(
            "bibo_onboard_clock_offset_seconds",
            "Backend clock minus unit clock, from HTTP Date (NaN before the first answer)",
            _seconds(s.clock_offset_ms),
        )
        yield CounterMetricFamily(
            "bibo_onboard_scanner_restarts",
            "Scanner restarts by the watchdog",
            value=s.scanner_restarts,
        )
        yield CounterMetricFamily(
            "bibo_onboard_adapter_resets",
            "Bluetooth adapter power cycles by the watchdog",
            value=s.adapter_resets,
        )
        sources = CounterMetricFamily(
            "bibo_onboard_source", "Vehicle source counters", labels=["source", "counter"]
        )
        for name, counters in sorted(s.sources.items()):
            for counter, value in sorted(counters.items()):
                sources.add_metric([name, counter], value)
        yield sources
        if s.beacon is not None:
            yield from _beacon_metrics(s.beacon)


def _beacon_metrics(b: BeaconHealth) -> Iterator[Metric]:
    registrations = CounterMetricFamily(
        "bibo_onboard_beacon_registrations",
        "Attempts to register the bus beacon with BlueZ, by outcome",
        labels=["outcome"],
    )
    for outcome, count in sorted(b.registrations.items()):
        registrations.add_metric([outcome], count)
    yield registrations
    yield CounterMetricFamily(
        "bibo_onboard_beacon_releases",
        "Times BlueZ dropped the registered bus beacon on its own",
        value=b.releases,
    )
    yield _gauge(
        "bibo_onboard_beacon_advertising", "1 while the bus beacon is advertised", b.advertising
    )
    yield _gauge(
        "bibo_onboard_beacon_interval",
        "Token interval whose beacon ids are advertised (NaN while down)",
        math.nan if b.interval is None else b.interval,
    )
    yield _gauge(
        "bibo_onboard_beacon_down_seconds", "How long the bus beacon has been down", b.down_s
    )
    yield _gauge(
        "bibo_onboard_beacon_down_too_long",
        "1 while the watchdog flags the bus beacon as down too long",
        b.down_too_long,
    )


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)


def make_registry() -> tuple[CollectorRegistry, SnapshotCollector]:
    """A registry holding only the agent's metrics (no process defaults, nothing global)."""
    registry = CollectorRegistry(auto_describe=False)
    collector = SnapshotCollector()
    registry.register(collector)
    return registry, collector


class MetricsServer:
    """prometheus-client's HTTP server for ``registry`` on ``host:port`` (0: a free port)."""

    def __init__(self, registry: CollectorRegistry, host: str, port: int) -> None:
        self._server: Any
        self._server, self._thread = start_http_server(port, addr=host, registry=registry)
        self.port = int(self._server.server_port)

    def close(self) -> None:
        """Stop serving and release the port."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()
