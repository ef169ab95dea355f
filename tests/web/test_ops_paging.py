"""Paging on the operator lists: trips, disputes, tickets held elsewhere, invoices and
passengers; following "next" from the first page reaches every row exactly once, in order,
with the filters kept and the page size chosen."""

from __future__ import annotations

import datetime as dt
import html
import re

from backend import models
from backend.db import make_sessionmaker, transaction
from backend.operators.web.const import DEFAULT_PAGE_SIZE, PAGE_SIZES
from backend.passengers import service as passengers_service
from tests.web.conftest import login
from tests.web.ops_data import seed

_NEXT = re.compile(r'<a rel="next" href="([^"]+)">')
_PREVIOUS = re.compile(r'<a rel="prev" href="([^"]+)">')


async def _walk(client, url: str, pattern: str) -> tuple[list[str], int]:
    """Every id ``pattern`` finds on the pages from ``url`` on, following "next"; and the
    number of pages."""
    found: list[str] = []
    pages = 0
    while url:
        response = await client.get(url)
        assert response.status_code == 200, response.text
        pages += 1
        found.extend(re.findall(pattern, response.text))
        following = _NEXT.search(response.text)
        url = html.unescape(following.group(1)) if following else ""
        assert pages < 100
    return found, pages


def _trip_ids(text: str) -> list[str]:
    # Each trip row links its page twice (day and time): take each once, in order.
    return list(dict.fromkeys(re.findall(r'href="/ops/trips/(trp_\w+)"', text)))


async def test_trips_are_paged_newest_first_with_every_trip_once(client, engine, clock):
    data = seed(engine)
    await login(client, engine, "viewer")
    billed = sorted(
        (t for t in data.trips if not t.conflict_lost), key=lambda t: (-t.board_time, t.trip_id)
    )
    assert len(billed) > 4 * 25
    first = await client.get("/ops/trips?size=25")
    assert _trip_ids(first.text) == [t.trip_id for t in billed[:25]]
    assert not _PREVIOUS.search(first.text)
    assert "Trips 1–25 · page 1" in first.text
    ids: list[str] = []
    url = "/ops/trips?size=25"
    pages = 0
    while url:
        page = (await client.get(url)).text
        ids.extend(_trip_ids(page))
        pages += 1
        following = _NEXT.search(page)
        url = html.unescape(following.group(1)) if following else ""
    assert ids == [t.trip_id for t in billed]
    assert pages == -(-len(billed) // 25)
    second = (await client.get("/ops/trips?size=25&page=2")).text
    assert html.unescape(_PREVIOUS.search(second).group(1)) == "/ops/trips?page=1&size=25"
    beyond = await client.get("/ops/trips?size=25&page=99")
    assert beyond.status_code == 200
    assert "No trips match" in beyond.text
    default = (await client.get("/ops/trips")).text
    assert len(_trip_ids(default)) == DEFAULT_PAGE_SIZE
    for n in PAGE_SIZES:
        assert f"{n} trips per page" in default or f'aria-current="true">{n}<' in default


async def test_filters_are_kept_from_page_to_page(client, engine, clock):
    data = seed(engine)
    await login(client, engine, "viewer")
    expected = sorted(
        (t for t in data.trips if not t.conflict_lost and t.line == "R61"),
        key=lambda t: (t.confidence, t.board_time, t.trip_id),
    )
    ids: list[str] = []
    url = "/ops/trips?line=R61&sort=confidence&size=25"
    while url:
        page = (await client.get(url)).text
        ids.extend(_trip_ids(page))
        following = _NEXT.search(page)
        url = html.unescape(following.group(1)) if following else ""
        if url:
            assert "line=R61" in url
            assert "sort=confidence" in url
            assert "size=25" in url
    assert ids == [t.trip_id for t in expected]
    # The passenger and device filters page too.
    passenger = data.passengers[0]
    mine = [t for t in data.trips if t.passenger_id == passenger and not t.conflict_lost]
    listed: list[str] = []
    url = f"/ops/trips?passenger={passenger}&size=25"
    while url:
        page = (await client.get(url)).text
        listed.extend(_trip_ids(page))
        following = _NEXT.search(page)
        url = html.unescape(following.group(1)) if following else ""
    assert sorted(listed) == sorted(t.trip_id for t in mine)


async def test_bad_paging_is_refused(client, engine, clock):
    await login(client, engine, "viewer")
    for query, field in (("page=0", "page:"), ("page=x", "page:"), ("size=7", "size:")):
        for path in ("/ops/trips", "/ops/disputes", "/ops/entitlements", "/ops/passengers"):
            response = await client.get(f"{path}?{query}")
            assert response.status_code == 422, (path, query)
            assert field in response.text


async def test_disputes_and_tickets_are_paged(client, engine, clock):
    data = seed(engine)
    with transaction(make_sessionmaker(engine)) as session:
        for k in range(60):
            session.add(
                models.Entitlement(
                    passenger_id=data.passengers[k % len(data.passengers)],
                    kind="deutschlandticket",
                    valid_from=dt.date(2026, 11, 1),
                    valid_to=dt.date(2026, 11, 30),
                    evidence_ref=f"DT-{k:04d}",
                    status="pending",
                )
            )
    await login(client, engine, "viewer")
    disputes, pages = await _walk(client, "/ops/disputes?status=all&size=25", r"<h2>Dispute (\d+) ")
    assert len(disputes) == sum(data.disputed.values())
    assert len(set(disputes)) == len(disputes)
    assert [int(d) for d in disputes] == sorted(int(d) for d in disputes)
    assert pages == -(-len(disputes) // 25)
    tickets, pages = await _walk(client, "/ops/entitlements?size=25", r"<code>(DT-\d+)</code>")
    assert tickets == [f"DT-{k:04d}" for k in range(60)]
    assert pages == 3


async def test_passengers_and_invoices_are_paged(client, engine, clock):
    with transaction(make_sessionmaker(engine)) as session:
        pids = [
            passengers_service.register_passenger(session, "adult").passenger_id for _ in range(30)
        ]
        for k in range(30):
            session.add(
                models.Invoice(
                    passenger_id=pids[0],
                    month=f"{2024 + k // 12}-{k % 12 + 1:02d}",
                    version=1,
                    total_cents=100 * k,
                    document="{}",
                )
            )
    await login(client, engine, "viewer")
    listed, pages = await _walk(
        client, "/ops/passengers?size=25", r'<tr><td><a href="/ops/passengers/([^"]+)">'
    )
    assert sorted(listed) == sorted(pids)
    assert pages == 2
    months, pages = await _walk(
        client, f"/ops/passengers/{pids[0]}/invoices?size=25", r"<tr><td>(\d{4}-\d{2})</td><td>v1"
    )
    assert months == sorted(months, reverse=True)
    assert len(months) == 30
    assert pages == 2
