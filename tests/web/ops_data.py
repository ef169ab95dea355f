"""Seeded data for the operator pages' tests: many trips over lines, vehicles, days and
passengers with known confidences, disputes and corrections, written straight to the tables
(reconciling that many rides would take minutes and test reconciliation, not the pages)."""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass

from sqlalchemy import Engine

from backend import models
from backend.db import make_sessionmaker, transaction
from backend.passengers import service as passengers_service
from backend.timeutil import service_day_bounds
from tests.backend.conftest import RIDE_STOPS

LINES = ("R61", "R62", "C4")
VEHICLES = ("RLG-4711", "RLG-4712", "VKU-0815", "VKU-0816")
DAYS = tuple(dt.date(2026, 11, d) for d in range(2, 14))


@dataclass(frozen=True)
class Seeded:
    passengers: list[str]
    devices: dict[str, str]
    """device id -> passenger id."""
    trips: list[models.Trip]
    """Detached copies of every trip written (conflict losers included)."""
    disputed: dict[str, int]
    """trip id -> disputes opened on it."""
    corrected: dict[str, int]
    """trip id -> corrections made to it."""


def seed(engine: Engine, trips: int = 240, passengers: int = 7, rng_seed: int = 16) -> Seeded:
    """``trips`` trips of ``passengers`` passengers (adults) on random lines, vehicles and
    days; about one in twenty a conflict loser, a few disputed (some twice) and some
    corrected (some twice)."""
    rng = random.Random(rng_seed)
    rows: list[models.Trip] = []
    disputed: dict[str, int] = {}
    corrected: dict[str, int] = {}
    with transaction(make_sessionmaker(engine)) as session:
        pids, devices = [], {}
        for _ in range(passengers):
            p = passengers_service.register_passenger(session, "adult")
            d = passengers_service.register_device(session, p.passenger_id)
            pids.append(p.passenger_id)
            devices[d.device_id] = p.passenger_id
        device_ids = sorted(devices)
        for k in range(trips):
            day = rng.choice(DAYS)
            board = service_day_bounds(day)[0] + rng.randrange(4 * 3600, 20 * 3600) * 1000
            device_id = rng.choice(device_ids)
            a = rng.randrange(0, len(RIDE_STOPS) - 1)
            b = rng.randrange(a + 1, len(RIDE_STOPS))
            trip = models.Trip(
                trip_id=f"trp_{k:04d}{rng.getrandbits(40):010x}",
                service_day=day,
                device_id=device_id,
                passenger_id=devices[device_id],
                vehicle_id=rng.choice(VEHICLES),
                journey_id=f"J-{k}",
                line=rng.choice(LINES),
                board_stop_id=RIDE_STOPS[a],
                board_time=board,
                alight_stop_id=RIDE_STOPS[b],
                alight_time=board + (b - a) * 120_000,
                confidence=round(rng.choice([rng.uniform(0.3, 0.99), 0.9, 0.8999, 1.0]), 4),
                stops_travelled=b - a,
                status="closed",
                conflict_lost=rng.random() < 0.05,
            )
            session.add(trip)
            rows.append(trip)
        session.flush()
        for trip in rows:
            if rng.random() < 0.12:
                n = rng.choice((1, 1, 2))
                disputed[trip.trip_id] = n
                for _ in range(n):
                    session.add(
                        models.Dispute(
                            trip_id=trip.trip_id,
                            passenger_id=trip.passenger_id,
                            reason="I was not on that bus",
                            status=rng.choice(("open", "rejected")),
                        )
                    )
            if rng.random() < 0.1:
                n = rng.choice((1, 2))
                corrected[trip.trip_id] = n
                for _ in range(n):
                    session.add(
                        models.TripCorrection(
                            trip_id=trip.trip_id,
                            alight_stop_id=trip.alight_stop_id,
                            reason="driver confirms",
                            operator_id=1,
                        )
                    )
        session.flush()
        session.expunge_all()
    return Seeded(pids, devices, rows, disputed, corrected)
