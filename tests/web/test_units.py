"""Pure parts of the web pages: the throttle's arithmetic, redirects, and the SVG charts."""

from __future__ import annotations

import datetime as dt

from backend.operators.service import Trace, TraceEvent
from backend.operators.web import charts
from backend.operators.web.auth import backoff_wait, safe_next, throttle_key
from backend.operators.web.const import LOGIN_BACKOFF_BASE, LOGIN_BACKOFF_CAP

NOW = dt.datetime(2026, 11, 21, 12, tzinfo=dt.UTC)


def test_the_back_off_doubles_past_the_free_failures_up_to_its_cap():
    free = 3
    assert backoff_wait([NOW] * (free - 1), free, NOW) is None
    waits = [backoff_wait([NOW] * (free + extra), free, NOW) for extra in range(12)]
    assert waits[:5] == [LOGIN_BACKOFF_BASE * 2**k for k in range(5)]
    assert max(w for w in waits if w is not None) == LOGIN_BACKOFF_CAP
    assert waits[-1] == LOGIN_BACKOFF_CAP
    assert backoff_wait([NOW] * 10_000, free, NOW) == LOGIN_BACKOFF_CAP  # no overflow


def test_the_back_off_counts_from_the_newest_failure():
    failures = [NOW - dt.timedelta(seconds=s) for s in (3000, 1200, 10)]
    assert backoff_wait(failures, 2, NOW) == LOGIN_BACKOFF_BASE * 2 - dt.timedelta(seconds=10)
    naive = [f.replace(tzinfo=None) for f in failures]  # as SQLite returns them
    assert backoff_wait(naive, 2, NOW) == LOGIN_BACKOFF_BASE * 2 - dt.timedelta(seconds=10)
    assert backoff_wait(failures, 2, failures[-1] + LOGIN_BACKOFF_BASE * 2) is None


def test_throttle_names_ignore_case_and_spaces():
    assert throttle_key("  Leitstelle SOEST ") == throttle_key("leitstelle soest")


def test_login_only_goes_back_to_operator_pages():
    assert safe_next("/ops/trips?day=2026-11-03") == "/ops/trips?day=2026-11-03"
    for bad in ("https://evil.example/ops", "//evil.example/ops", "/v1/stops", "", None):
        assert safe_next(bad) == "/ops/"


def test_confidence_bins_cover_zero_to_one():
    counts = charts.confidence_bins([0.0, 0.05, 0.1, 0.55, 0.999, 1.0], 10)
    assert counts == [2, 1, 0, 0, 0, 1, 0, 0, 0, 2]


def test_bar_chart_escapes_labels_and_says_when_empty():
    svg = charts.bar_chart([charts.Bar("<b>", 0)], "t & t")
    assert "<b>" not in svg
    assert "&lt;b&gt;" in svg
    assert "t &amp; t" in svg
    assert "no data" in svg


def test_trace_plot_marks_stops_doors_and_the_interval():
    t0 = int(NOW.timestamp() * 1000)
    trace = Trace(
        "trp_1",
        "RLG-4711",
        t=[t0 + k * 1000 for k in range(60)],
        rssi=[-60] * 60,
        n=[2] * 60,
        events=[
            TraceEvent(t0, "arrival", "de:05974:1001"),
            TraceEvent(t0 + 2000, "doors_open", None),
            TraceEvent(t0 + 20000, "doors_closed", None),
            TraceEvent(t0 + 22000, "departure", "de:05974:1001"),
        ],
        board_time=t0 + 10_000,
        alight_time=t0 + 50_000,
    )
    svg = charts.trace_plot(trace, {"de:05974:1001": "Soest <Bahnhof>"})
    assert svg.count('class="pt"') == 60
    assert svg.count('class="doors-open"') == 1
    assert svg.count('class="stop-arrival"') == 1
    assert svg.count('class="stop-departure"') == 1
    assert "Soest &lt;Bahnhof&gt;" in svg
    assert 'class="in-vehicle"' in svg
    assert "in vehicle 13:00–13:00" in svg  # 12:00:10-12:00:50 UTC in Berlin


def test_an_empty_trace_says_why():
    svg = charts.trace_plot(Trace("trp_1", "RLG-4711", board_time=0, alight_time=60_000), {})
    assert "no sightings kept" in svg
    assert 'class="pt"' not in svg
