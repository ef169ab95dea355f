"""History is final once its evidence is gone (docs/operations.md, Retention; issue 11): after
retention deleted a day's raw sightings, no rebuild — late data, an operator's reconcile, a worker,
a unit marked dirty by a migration — changes that day's trips, charges or ledger. Late data is kept
and reported; an operator's correction still works through the correction flow."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select

from backend import models
from backend.billing import service as billing_service
from backend.db import make_sessionmaker, transaction
from backend.maintenance import repository as maintenance_repo
from backend.passengers import repository as passengers_repo
from backend.settings import Settings
from backend.timeutil import service_day_bounds
from backend.trips import repository as trips_repo
from backend.trips import service as trips_service
from backend.trips.worker import maintain
from tests.backend.conftest import RIDE_DAYS, RIDE_STOPS, post_batch
from tests.backend.synth import Rider, journey_batches

MONTH = "2026-11"
AFTER_RETENTION = dt.datetime(2026, 12, 2, 12, tzinfo=dt.UTC)
"""Fourteen days after 2026-11-18: the riders' November days are past retention."""


def is_final(session, day: dt.date) -> bool:
    mark = maintenance_repo.purged_before(session)
    return mark is not None and day < mark


def ledger(session) -> list[tuple[str, str, int, int]]:
    """Per passenger and month: balance and number of entries."""
    e = models.LedgerEntry
    rows = session.execute(
        select(e.passenger_id, e.month, func.sum(e.amount_cents), func.count())
        .group_by(e.passenger_id, e.month)
        .order_by(e.passenger_id, e.month)
    )
    return [(p, m, int(total), int(n)) for p, m, total, n in rows]


async def snapshot(client, auth) -> dict[str, object]:
    """What the operator API says about the riders' days: trips and charges."""
    out: dict[str, object] = {}
    for day in RIDE_DAYS:
        trips = await client.get("/v1/trips", params={"service_day": str(day)}, headers=auth)
        charges = await client.get("/v1/charges", params={"service_day": str(day)}, headers=auth)
        assert trips.status_code == charges.status_code == 200
        out[f"trips {day}"] = sorted(
            (t["trip_id"], t["board_stop_id"], t["alight_stop_id"]) for t in trips.json()
        )
        out[f"charges {day}"] = sorted(
            (c["passenger_id"], c["total_cents"]) for c in charges.json()
        )
    return out


def device_keys(engine) -> list[bytes]:
    with make_sessionmaker(engine)() as session:
        return [key for _, key, _ in passengers_repo.all_devices(session)]


async def test_a_day_past_retention_keeps_its_trips_charges_and_ledger(
    client, app, engine, vehicle, riders, operators
):
    sessions = make_sessionmaker(engine)
    admin = {"Authorization": f"Bearer {operators['admin']}"}
    closed = await client.post("/v1/billing/close-month", params={"month": MONTH}, headers=admin)
    assert closed.status_code == 200, closed.text
    assert len(closed.json()) == 2  # both riders invoiced
    before = await snapshot(client, admin)
    assert all(before[f"trips {day}"] for day in RIDE_DAYS)
    with sessions() as session:
        ledger_before = ledger(session)
    assert ledger_before
    assert all(total > 0 for _, _, total, _ in ledger_before)

    # Retention runs (the worker's hourly maintenance): the riders' days lose their sightings.
    maintain(sessions, Settings(database_url="sqlite://"), AFTER_RETENTION)
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(models.Sighting)) == 0
        assert all(is_final(session, day) for day in RIDE_DAYS)

    # A bus that was offline for weeks uploads the rest of a final day, with both riders.
    late_day = RIDE_DAYS[1]
    late = journey_batches(
        vehicle.vehicle_id,
        "R61-late",
        RIDE_STOPS,
        service_day_bounds(late_day)[0] + 9 * 3_600_000,
        [Rider(key, 1, 6) for key in device_keys(engine)],
        boot_id="late-boot",
    )
    for body in late:
        answer = await post_batch(client, vehicle, body)
        assert answer.status_code == 200, answer.text
        assert answer.json()["duplicate"] is False

    # An operator asks to reconcile it: a viewer may not, an agent or admin is told why not.
    for role, expected in (("viewer", 403), ("agent", 409), ("admin", 409)):
        answer = await client.post(
            "/v1/reconcile",
            params={"service_day": str(late_day)},
            headers={"Authorization": f"Bearer {operators[role]}"},
        )
        assert answer.status_code == expected, (role, answer.text)
        if expected == 409:
            assert "final" in answer.json()["detail"]

    # A worker, and a unit marked dirty by anything else (a migration, a heartbeat), rebuild
    # nothing; hourly billing and closing the month again change nothing.
    with transaction(sessions) as session:
        trips_repo.mark_dirty(
            session,
            {(day, vehicle.vehicle_id) for day in RIDE_DAYS} | {(late_day, models.DAY_UNIT)},
            AFTER_RETENTION,
        )
    state = app.state
    done = trips_service.work_until_idle(state.sessions, state.resolvers, state.clock)
    assert done
    assert all(w.error is None for w in done)
    maintain(sessions, Settings(database_url="sqlite://"), AFTER_RETENTION)
    again = await client.post("/v1/billing/close-month", params={"month": MONTH}, headers=admin)
    assert again.status_code == 200
    assert again.json() == []

    assert await snapshot(client, admin) == before
    with sessions() as session:
        assert ledger(session) == ledger_before
        assert trips_repo.dirty_units(session) == []

    # The late data is kept and reported: the operations API and page, and the metric.
    ops = await client.get("/v1/operations", headers=admin)
    assert ops.status_code == 200
    report = ops.json()
    assert report["sightings_purged_before"] == "2026-11-18"
    assert [(r["service_day"], r["vehicle_id"]) for r in report["late_data"]] == [
        (str(late_day), vehicle.vehicle_id)
    ]
    assert report["late_data"][0]["batches"] == len(late)
    metrics = (await client.get("/metrics")).text
    assert f"bibo_late_data_batches {float(len(late))}" in metrics

    # A correction through the correction flow still works: reversal plus new entry.
    trip_id = before[f"trips {late_day}"][0][0]
    agent = {"Authorization": f"Bearer {operators['agent']}"}
    corrected = await client.post(
        f"/v1/trips/{trip_id}/corrections",
        json={"reason": "rider left the bus earlier", "cancelled": True},
        headers=agent,
    )
    assert corrected.status_code == 200, corrected.text
    with sessions() as session:
        kinds = session.scalars(select(models.LedgerEntry.kind)).all()
    assert "reversal" in kinds


def test_month_past_trip_retention_is_never_billed_again(engine, riders):
    """A year on, retention deletes the trips: closing or re-billing that month again would
    reverse everything, so it is refused and the ledger stays."""

    sessions = make_sessionmaker(engine)
    with transaction(sessions) as session:
        billing_service.close_month(session, MONTH, AFTER_RETENTION)
    with sessions() as session:
        ledger_before = ledger(session)
    a_year_on = AFTER_RETENTION + dt.timedelta(days=400)
    maintain(sessions, Settings(database_url="sqlite://"), a_year_on)
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(models.Trip)) == 0
        assert billing_service.month_is_final(session, MONTH)
    with transaction(sessions) as session:
        for passenger_id, month, _, _ in ledger_before:
            result = billing_service.rebill(
                session, passenger_id, month, dt.date(2026, 11, 30), a_year_on
            )
            assert result.changed is False
        with pytest.raises(ValueError, match="final"):
            billing_service.close_month(session, MONTH, a_year_on)
    with sessions() as session:
        assert ledger(session) == ledger_before


def test_retention_waits_for_a_rebuild_under_way(engine, riders, vehicle, monkeypatch):
    """Retention committing in the middle of a rebuild (another process's hourly
    maintenance) must not leave the rebuild deleting trips whose sightings just went: it
    waits for the rebuild, and the day is final after both."""
    import threading
    import time

    from backend.maintenance.service import apply_retention

    sessions = make_sessionmaker(engine)
    day = RIDE_DAYS[0]

    def trips() -> int:
        with sessions() as session:
            return len(trips_repo.day_trips(session, day))

    before = trips()
    assert before > 0
    with transaction(sessions) as session:
        trips_repo.mark_dirty(session, {(day, vehicle.vehicle_id)}, AFTER_RETENTION)

    def retention() -> None:
        with transaction(sessions) as other:
            apply_retention(other, AFTER_RETENTION.date(), 14, 365, AFTER_RETENTION)

    other = threading.Thread(target=retention)
    real = trips_repo.vehicle_day_events

    def events(session, d, v, **options):
        if not other.is_alive() and other.ident is None:
            other.start()
            time.sleep(1.0)  # retention would commit now, were it not held off
        return real(session, d, v, **options)

    monkeypatch.setattr(trips_repo, "vehicle_day_events", events)
    done = trips_service.work_until_idle(
        sessions, trips_service.ResolverCache(), lambda: AFTER_RETENTION
    )
    other.join(timeout=60)
    assert not other.is_alive()
    assert all(w.error is None for w in done)
    assert trips() == before
    with sessions() as session:
        assert is_final(session, day)
