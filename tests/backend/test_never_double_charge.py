"""Never double-charge: whatever the order of uploads, however often a batch arrives, and
however often billing and month close run, the invoices and ledger sums are the same."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import tempfile
import time
from pathlib import Path

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backend.api.app import create_app
from backend.billing import repository as billing_repo
from backend.billing import service as billing_service
from backend.db import make_engine, make_sessionmaker, transaction
from backend.ingest import repository as ingest_repo
from backend.limits import RateLimiter
from backend.passengers import repository as passengers_repo
from backend.security import new_secret
from backend.settings import Settings
from backend.timeutil import service_day_bounds
from backend.trips import service as trips_service
from tests.backend.conftest import RIDE_STOPS, Vehicle, post_batch
from tests.backend.synth import Rider, Waiting, journey_batches

DAYS = [dt.date(2026, 10, d) for d in (6, 7, 8)]
CLOSED = dt.datetime(2026, 11, 2, 12, tzinfo=dt.UTC)
MID_MONTH = dt.datetime(2026, 10, 8, 12, tzinfo=dt.UTC)
KEYS = [bytes([n]) * 32 for n in range(1, 5)]
VEHICLE = Vehicle("RLG-4711", new_secret())


def batches() -> list[dict]:
    out = []
    for n, day in enumerate(DAYS):
        t0 = service_day_bounds(day)[0] + 4 * 3_600_000
        riders = [Rider(KEYS[0], 0, 8), Rider(KEYS[1], 1, 4 + n), Rider(KEYS[2], 2, 3)]
        out += journey_batches(
            VEHICLE.vehicle_id,
            f"R61-{n}",
            RIDE_STOPS,
            t0,
            riders,
            [Waiting(KEYS[3], 5)],
            boot_id=f"b{n}",
            chunk_ms=300_000,
        )
    return out


BATCHES = batches()


async def run(template: Path, order: list[int], bill_after: set[int], closes: int):
    """Upload in ``order``, billing/reconciling after the positions in ``bill_after``;
    then close October ``closes`` times. Returns the invoices and the ledger sums."""
    folder = Path(tempfile.mkdtemp(prefix="bibo-ndc-"))
    shutil.copyfile(template, folder / "bibo.sqlite3")
    url = f"sqlite:///{folder}/bibo.sqlite3"
    engine = make_engine(url)
    try:
        sessions = make_sessionmaker(engine)
        with transaction(sessions) as session:
            ingest_repo.add_vehicles(session, {VEHICLE.vehicle_id: VEHICLE.secret})
            for n, key in enumerate(KEYS):
                pid = f"pas_{n}"
                passengers_repo.add_passenger(
                    session, pid, "child" if n == 1 else "adult", bytes([n]) * 32
                )
                passengers_repo.add_device(session, f"dev_{n}", pid, key)
        app = create_app(
            Settings(database_url=url, reconcile_in_background=False), engine=engine, migrate=False
        )
        app.state.vehicle_limiter = RateLimiter(1e9, 1e9, time.monotonic)
        resolvers = trips_service.ResolverCache()
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            for position, index in enumerate(order):
                response = await post_batch(client, VEHICLE, BATCHES[index])
                assert response.status_code == 200
                if position in bill_after:
                    trips_service.work_until_idle(sessions, resolvers, lambda: MID_MONTH)
                    with transaction(sessions) as session:
                        billing_service.rebill_closed_days(session, MID_MONTH)
        trips_service.work_until_idle(sessions, resolvers, lambda: CLOSED)
        for _ in range(closes):
            with transaction(sessions) as session:
                billing_service.close_month(session, "2026-10", CLOSED)
        with sessions() as session:
            invoices = {
                pid: [
                    (i.version, i.total_cents, json.loads(i.document)["bill"]["total_cents"])
                    for i in billing_repo.passenger_invoices(session, pid)
                ]
                for pid in (f"pas_{n}" for n in range(len(KEYS)))
            }
            ledger = {pid: billing_repo.ledger_balance(session, pid, "2026-10") for pid in invoices}
        return invoices, ledger
    finally:
        engine.dispose()
        shutil.rmtree(folder, ignore_errors=True)


_REFERENCE: dict[str, tuple[dict, dict]] = {}
orders = st.permutations(range(len(BATCHES))).flatmap(
    lambda perm: st.lists(st.sampled_from(perm), max_size=6).map(lambda dup: perm + dup)
)


@settings(max_examples=6, deadline=None, suppress_health_check=list(HealthCheck))
@given(order=orders, bill_after=st.sets(st.integers(0, 40), max_size=4), closes=st.integers(1, 3))
async def test_any_order_duplicates_and_reruns_bill_the_same(
    sqlite_template, order, bill_after, closes
):
    if "in order" not in _REFERENCE:
        _REFERENCE["in order"] = await run(sqlite_template, list(range(len(BATCHES))), set(), 1)
    reference = _REFERENCE["in order"]
    invoices, ledger = reference
    assert all(len(v) == 1 for pid, v in invoices.items() if pid != "pas_3")
    assert invoices["pas_3"] == []  # waited at a stop, never rode: never charged
    assert ledger["pas_0"] > 0
    assert await run(sqlite_template, order, bill_after, closes) == reference
