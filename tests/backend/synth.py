"""Hand-made upload batches of a clean journey: riders heard every second on board, people
at stops heard only while the bus dwells. For backend tests that need realistic uploads
without the simulator."""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from onboard import wire

DWELL_MS, DRIVE_MS = 30_000, 120_000


@dataclass(frozen=True)
class Rider:
    key: bytes
    board: int
    alight: int
    rssi: tuple[int, int] = (-68, -55)
    """The range of RSSI (dBm, both ends included) the bus hears the phone at."""


@dataclass(frozen=True)
class Waiting:
    key: bytes
    stop: int


def journey_batches(
    vehicle_id: str,
    journey_id: str,
    stops: list[str],
    t0: int,
    riders: list[Rider],
    waiting: list[Waiting] = (),  # type: ignore[assignment]
    *,
    boot_id: str = "boot-1",
    first_seq: int = 0,
    chunk_ms: int = 60_000,
    seed: int = 0,
    journey_event: bool = True,
    lost_calls: frozenset[int] = frozenset(),
    positions: Mapping[str, tuple[float, float]] | None = None,
) -> list[dict[str, Any]]:
    """Upload bodies of one journey starting at ``t0`` (epoch ms), cut every ``chunk_ms``.

    An onboard computer that loses events: without ``journey_event`` the journey event
    never comes; the calls in ``lost_calls`` (indexes into ``stops``) have no stop or door
    events. With ``positions`` (stop id to latitude, longitude) the bus reports a GNSS fix
    every 10 s while it drives, none while it stands.
    """
    rng = random.Random(seed)
    events: list[dict[str, Any]] = []
    if journey_event:
        events.append(
            {
                "t": t0 - 30_000,
                "type": "journey",
                "line": journey_id.split("-")[0],
                "journey_id": journey_id,
                "direction": 0,
            }
        )
    arrival = [t0 + k * (DWELL_MS + DRIVE_MS) for k in range(len(stops))]
    for k, stop in enumerate(stops):
        if k in lost_calls:
            continue
        events += [
            {"t": arrival[k], "type": "arrival", "stop_id": stop},
            {"t": arrival[k] + 2_000, "type": "doors_open"},
            {"t": arrival[k] + DWELL_MS - 2_000, "type": "doors_closed"},
            {"t": arrival[k] + DWELL_MS, "type": "departure", "stop_id": stop},
        ]
    if positions is not None:
        for k in range(len(stops) - 1):
            (lat0, lon0), (lat1, lon1) = positions[stops[k]], positions[stops[k + 1]]
            leave = arrival[k] + DWELL_MS
            for t in range(leave + 5_000, arrival[k + 1], 10_000):
                f = (t - leave) / DRIVE_MS
                events.append(
                    {
                        "t": t,
                        "type": "position",
                        "lat": round(lat0 + f * (lat1 - lat0), 6),
                        "lon": round(lon0 + f * (lon1 - lon0), 6),
                        "speed_mps": 8.0,
                    }
                )
        events.sort(key=lambda e: int(e["t"]))
    rows: list[tuple[int, str, int, int]] = []
    for r in riders:
        for t in range(arrival[r.board] + 5_000, arrival[r.alight] + 3_000, 1000):
            if rng.random() < 0.85:
                rows.append((t, _token(r.key, t), rng.randint(*r.rssi), rng.randint(1, 3)))
    for w in waiting:
        for t in range(arrival[w.stop], arrival[w.stop] + DWELL_MS, 1000):
            if rng.random() < 0.6:
                rows.append((t, _token(w.key, t), rng.randint(-86, -74), 1))
    rows.sort()
    end = arrival[-1] + DWELL_MS
    bodies = []
    seq = first_seq
    for start in range(t0 - 30_000, end + 1, chunk_ms):
        chunk_events = [e for e in events if start <= e["t"] < start + chunk_ms]
        chunk_rows = [r for r in rows if start <= r[0] < start + chunk_ms]
        if not chunk_events and not chunk_rows:
            continue
        bodies.append(
            {
                "version": 1,
                "vehicle_id": vehicle_id,
                "unit_id": f"obu-{vehicle_id}",
                "boot_id": boot_id,
                "seq": seq,
                "sent_at": start + chunk_ms,
                "window_ms": 1000,
                "events": chunk_events,
                "sightings": {
                    "t": [r[0] for r in chunk_rows],
                    "token": [r[1] for r in chunk_rows],
                    "rssi": [r[2] for r in chunk_rows],
                    "n": [r[3] for r in chunk_rows],
                    "tx": [-8] * len(chunk_rows),
                },
            }
        )
        seq += 1
    return bodies


def heartbeat(seq: int, sent_at: int) -> dict[str, Any]:
    """An upload of bus RLG-4711 with nothing in it: the data up to ``sent_at`` is complete."""
    empty: dict[str, list[Any]] = {"t": [], "token": [], "rssi": [], "n": [], "tx": []}
    return {
        "version": 1,
        "vehicle_id": "RLG-4711",
        "unit_id": "obu-RLG-4711",
        "boot_id": "boot-1",
        "seq": seq,
        "sent_at": sent_at,
        "window_ms": 1000,
        "events": [],
        "sightings": empty,
    }


def _token(key: bytes, t_ms: int) -> str:
    return wire.token_for_interval(key, wire.interval_of(t_ms)).hex()
