"""The detection-quality view per line and per vehicle, checked against counts the test
computes itself from the seeded trips, disputes and corrections."""

from __future__ import annotations

import datetime as dt
import re
from collections import defaultdict
from html.parser import HTMLParser

from backend.const import LOW_CONFIDENCE
from tests.web.conftest import login
from tests.web.ops_data import DAYS, seed


class _Rows(HTMLParser):
    """The rows of the quality tables: ``{table class: {key: [cell texts]}}``."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, dict[str, list[str]]] = {}
        self._table: str | None = None
        self._key: str | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "table" and "quality" in (a.get("class") or ""):
            self._table = (a.get("class") or "").split()[-1]
            self.tables[self._table] = {}
        elif tag == "tr" and self._table and "data-key" in a:
            self._key = a["data-key"]
            self.tables[self._table][self._key] = []
        elif tag in ("td", "th") and self._key is not None:
            self._cell = []

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None and self._table and self._key:
            self.tables[self._table][self._key].append("".join(self._cell).strip())
            self._cell = None
        elif tag == "tr":
            self._key = None
        elif tag == "table":
            self._table = None


def _parse(html: str) -> dict[str, dict[str, list[str]]]:
    parser = _Rows()
    parser.feed(html)
    return parser.tables


def _expected(data, first: dt.date, last: dt.date, attr: str) -> dict[str, list[str]]:
    """What the view must show, counted here straight from the seeded rows."""
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for t in data.trips:
        if t.conflict_lost or not first <= t.service_day <= last:
            continue
        row = counts[getattr(t, attr)]
        row[0] += 1
        row[1] += t.confidence < LOW_CONFIDENCE
        row[2] += data.disputed.get(t.trip_id, 0)
        row[3] += t.trip_id in data.corrected
    return {
        key: [key, str(n), str(low), f"{100 * low / n:.1f} %", str(d), str(c)]
        for key, (n, low, d, c) in counts.items()
    }


async def test_quality_per_line_and_vehicle_matches_the_counts(client, engine, clock):
    data = seed(engine)
    await login(client, engine, "viewer")
    first, last = DAYS[2], DAYS[8]
    page = await client.get(f"/ops/quality?from={first}&to={last}")
    assert page.status_code == 200
    tables = _parse(page.text)
    by_line = _expected(data, first, last, "line")
    by_vehicle = _expected(data, first, last, "vehicle_id")
    assert tables["quality-line"] == by_line
    assert tables["quality-vehicle"] == by_vehicle
    # The seed makes every column count: some low, some disputed twice, some corrected.
    assert sum(int(r[2]) for r in by_line.values()) > 0
    in_period = [t for t in data.trips if first <= t.service_day <= last and not t.conflict_lost]
    assert any(data.disputed.get(t.trip_id) == 2 for t in in_period)
    assert any(data.corrected.get(t.trip_id) == 2 for t in in_period)
    assert sum(int(r[5]) for r in by_vehicle.values()) > 0
    # The whole seeded period counts every billed trip once per table.
    everything = _parse((await client.get(f"/ops/quality?from={DAYS[0]}&to={DAYS[-1]}")).text)
    billed = sum(1 for t in data.trips if not t.conflict_lost)
    assert sum(int(r[1]) for r in everything["quality-line"].values()) == billed
    assert sum(int(r[1]) for r in everything["quality-vehicle"].values()) == billed


async def test_the_threshold_is_the_lists_one_and_exact_values_are_not_low(client, engine, clock):
    data = seed(engine, trips=60)
    await login(client, engine, "viewer")
    page = (await client.get(f"/ops/quality?from={DAYS[0]}&to={DAYS[-1]}")).text
    assert f"below {LOW_CONFIDENCE * 100:.0f} %" in page
    at_threshold = [t for t in data.trips if t.confidence == LOW_CONFIDENCE]
    assert at_threshold, "the seed puts trips exactly at the threshold"
    tables = _parse(page)
    assert tables["quality-line"] == _expected(data, DAYS[0], DAYS[-1], "line")


async def test_the_period_is_checked(client, engine, clock):
    await login(client, engine, "viewer")
    default = await client.get("/ops/quality")
    assert default.status_code == 200
    assert "No trips in this period" in default.text
    assert re.search(r'name="from" value="2026-11-05"', default.text)  # 28 days to 2 Dec
    for query, field in (
        ("from=2026-11-10&to=2026-11-01", "from"),
        ("from=yesterday", "from"),
        ("from=2020-01-01&to=2026-11-01", "at most"),
    ):
        response = await client.get(f"/ops/quality?{query}")
        assert response.status_code == 422, query
        assert field in response.text
