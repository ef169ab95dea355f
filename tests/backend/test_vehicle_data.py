"""Vehicle data as onboard computers really send it: a journey without its journey event, a
call without its stop events (derived from GNSS), no door signal. The backend still cuts
the journey and boards the rider at the right stop."""

from __future__ import annotations

import logging
import re

import pytest

import fare_engine
from backend import models
from backend.api.app import reconcile_dirty_units
from backend.db import make_sessionmaker
from backend.timeutil import service_day_of
from backend.trips import repository as trips_repo
from tests.backend.conftest import Phone, post_batch
from tests.backend.synth import Rider, journey_batches
from tests.web.conftest import login

STOPS = [f"de:05974:10{k:02d}" for k in range(1, 6)]
T0 = 1_795_420_000_000


@pytest.fixture
def key(phone: Phone) -> bytes:
    return phone.device_key


def _positions() -> dict[str, tuple[float, float]]:
    tariff = {s.stop_id: (s.lat, s.lon) for s in fare_engine.load_tariff().stops()}
    return {s: tariff[s] for s in STOPS}


def _lossy_journey(key: bytes, journey_event: bool, gnss: bool = True) -> list[dict]:
    """One journey's uploads of a bus that lost the stop (and door) events of its second
    call, and maybe its journey event; its rider boards there and alights two stops on."""
    return journey_batches(
        "RLG-4711",
        "R61-1",
        STOPS,
        T0,
        [Rider(key, 1, 3)],
        journey_event=journey_event,
        lost_calls=frozenset({1}),
        positions=_positions() if gnss else None,
    )


@pytest.mark.parametrize("journey_event", [True, False], ids=["journey event", "no journey event"])
async def test_a_rider_boarding_where_the_stop_events_were_lost_is_boarded_there(
    app, client, vehicle, engine, key, journey_event, caplog
):
    caplog.set_level(logging.INFO, logger="backend.trips.service")
    batches = _lossy_journey(key, journey_event)
    for body in batches:
        assert (await post_batch(client, vehicle, body)).status_code == 200
    reconcile_dirty_units(app)
    with make_sessionmaker(engine)() as session:
        (trip,) = trips_repo.day_trips(session, service_day_of(T0))
    assert (trip.board_stop_id, trip.alight_stop_id) == (STOPS[1], STOPS[3])
    assert trip.journey_id.startswith("~") != journey_event
    # The backend says what this bus's onboard computer did not.
    said = [r.getMessage() for r in caplog.records if "derived from GNSS" in r.getMessage()]
    assert said
    assert f"{0 if journey_event else 1} journeys without their journey event" in said[-1]


async def test_without_gnss_a_lost_call_cannot_be_boarded_at(app, client, vehicle, engine, key):
    # The same journey without position fixes: nothing tells the backend the bus stopped
    # there (the property the fixes restore). The rider is boarded at the stop before, or,
    # as here, not at all: nobody else rides this bus to read levels against, and without
    # that call the rider was never heard at its open doors, so its short path loss does not
    # count for "on board" (``reconciliation.with_levels``).
    batches = _lossy_journey(key, journey_event=True, gnss=False)
    for body in batches:
        assert (await post_batch(client, vehicle, body)).status_code == 200
    reconcile_dirty_units(app)
    with make_sessionmaker(engine)() as session:
        trips = trips_repo.day_trips(session, service_day_of(T0))
    assert all(trip.board_stop_id != STOPS[1] for trip in trips)


def _row(html: str, table: str, key: str) -> list[str]:
    """The cell texts of the row ``key`` of the table with class ``table``."""
    body = html.split(f'class="list {table}"', 1)[1].split("</table>", 1)[0]
    row = body.split(f'data-key="{key}"', 1)[1].split("</tr>", 1)[0]
    cells = re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", row, flags=re.S)
    return [re.sub(r"<[^>]+>", "", c).strip() for c in cells]


@pytest.mark.parametrize("gnss", [True, False], ids=["with GNSS", "without GNSS"])
async def test_what_each_bus_sends_is_counted_and_shown_to_operators(
    app, client, vehicle, engine, key, gnss
):
    # A journey without its journey event, one of five calls without stop or door events:
    # the vehicle-day's data says so, and the quality page shows it per bus.
    batches = _lossy_journey(key, journey_event=False, gnss=gnss)
    for body in batches:
        assert (await post_batch(client, vehicle, body)).status_code == 200
    reconcile_dirty_units(app)
    day = service_day_of(T0)
    fixes = sum(e["type"] == "position" for b in batches for e in b["events"])
    doors = sum(e["type"] == "doors_open" for b in batches for e in b["events"])
    assert (fixes > 0) == gnss
    assert doors == len(STOPS) - 1
    derived = 1 if gnss else 0
    with make_sessionmaker(engine)() as session:
        data = session.get(models.VehicleDayData, (day, "RLG-4711"))
    assert data is not None
    assert (data.journeys, data.inferred_journeys) == (1, 1)
    assert (data.calls, data.derived_calls) == (len(STOPS) - 1 + derived, derived)
    assert (data.fixes, data.door_events) == (fixes, doors)

    await login(client, engine, "viewer")
    page = await client.get("/ops/quality", params={"from": str(day), "to": str(day)})
    assert page.status_code == 200
    calls = len(STOPS) - 1 + derived
    shown = f"{derived} ({100 * derived / calls:.1f} %)"
    assert _row(page.text, "vehicle-data", "RLG-4711") == [
        "RLG-4711",
        "1",
        "1",
        "1 (100 %)",
        str(calls),
        shown,
        str(fixes) if gnss else "0 (none: lost calls cannot be derived)",
        "yes",
    ]
