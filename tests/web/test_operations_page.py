"""The operations page shows failing and parked work units and late data for final days."""

from __future__ import annotations

import datetime as dt

from backend.db import make_sessionmaker, transaction
from backend.ingest import repository as ingest_repo
from backend.models import WorkUnit
from backend.trips import repository as trips_repo
from tests.web.conftest import login

DAY = dt.date(2026, 11, 23)
NOW = dt.datetime(2026, 12, 2, 12, tzinfo=dt.UTC)


async def test_operations_page_lists_parked_units_and_late_data(client, engine, clock):
    sessions = make_sessionmaker(engine)
    with transaction(sessions) as session:
        trips_repo.mark_dirty(session, {(DAY, "RLG-9")}, NOW)
        session.execute(
            WorkUnit.__table__.update().values(
                attempts=5, parked=True, last_error="OverflowError: <b>bad</b>", failed_at=NOW
            )
        )
        ingest_repo.add_late_data(session, 17, "RLG-8", [dt.date(2026, 11, 2)], NOW)
    await login(client, engine, "viewer")
    page = await client.get("/ops/operations")
    assert page.status_code == 200
    html = page.text
    for shown in ("23.11.2026", "RLG-9", "parked", "02.11.2026", "RLG-8"):
        assert shown in html
    assert "OverflowError: &lt;b&gt;bad&lt;/b&gt;" in html  # escaped, never markup
    assert 'href="/ops/operations"' in html  # in the navigation


async def test_operations_page_says_when_all_is_well(client, engine, clock):
    await login(client, engine, "viewer")
    html = (await client.get("/ops/operations")).text
    assert "No unit is failing." in html
    assert "No late data." in html
