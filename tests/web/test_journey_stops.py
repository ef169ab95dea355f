"""The dispute queue's stop choices come from one query for all disputes
(``operators_repo.journey_stops_of``); they are the stops the per-trip query found."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from backend import models
from backend.db import make_sessionmaker
from backend.operators import repository as operators_repo


def _journey_stops_one_by_one(session: Session, trip: models.Trip) -> list[str]:
    """The per-trip query the dispute queue used to run once per dispute."""
    e = models.VehicleEvent
    where = (e.vehicle_id == trip.vehicle_id, e.service_day == trip.service_day)
    start = session.scalar(
        select(func.max(e.t)).where(
            *where, e.type == "journey", e.journey_id == trip.journey_id, e.t <= trip.board_time
        )
    )
    if start is None:
        start = trip.board_time
    end = session.scalar(
        select(func.min(e.t)).where(
            *where, e.type == "journey", e.t > start, e.journey_id != trip.journey_id
        )
    )
    stmt = select(e.stop_id).where(*where, e.type == "arrival", e.t >= start)
    if end is not None:
        stmt = stmt.where(e.t < end)
    stops: list[str] = []
    for stop_id in session.scalars(stmt.order_by(e.t, e.event_id)):
        if stop_id is not None and stop_id not in stops:
            stops.append(stop_id)
    return stops


def test_journey_stops_of_all_trips_match_the_per_trip_query(engine, riders):
    with make_sessionmaker(engine)() as session:
        trips = list(session.scalars(select(models.Trip)))
        assert trips
        batched = operators_repo.journey_stops_of(session, trips)
        assert any(batched.values())
        for trip in trips:
            assert batched[trip.trip_id] == _journey_stops_one_by_one(session, trip)
            assert operators_repo.journey_stops(session, trip) == batched[trip.trip_id]
        assert operators_repo.journey_stops_of(session, []) == {}
