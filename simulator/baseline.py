"""The naive baseline: an RSSI threshold and a minimum count, on the recorded batches.

What a first attempt at BiBo detection looks like: a device counts as on board for a
journey if the bus heard it at or above a threshold in at least a minimum number of
1 s windows; it boarded at the stop where it was first heard that strongly and alighted
at the stop where it was last heard so (or the next one if that happened while moving).
No motion, no doors, no conflicts between vehicles. It is scored beside the real
reconciliation so every report shows the margin.

Also here: reading recorded batches back into per-vehicle columns, shared with the
evaluation (token resolution with the devices' keys, like the backend's resolver).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from onboard import wire
from simulator.const import NAIVE_MIN_WINDOWS, NAIVE_RSSI_THRESHOLD_DBM
from simulator.scoring import ScoredTrip

IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class Visit:
    """A stop visit of a journey (epoch ms)."""

    stop_id: str
    arrival: int
    departure: int


@dataclass(frozen=True, slots=True)
class RecordedJourney:
    """A journey as the batches describe it."""

    journey_id: str
    line: str
    visits: tuple[Visit, ...]

    @property
    def start(self) -> int:
        return self.visits[0].arrival

    @property
    def end(self) -> int:
        return self.visits[-1].departure


@dataclass(frozen=True)
class VehicleRecord:
    """One vehicle's recorded uploads as columns.

    ``sent_at`` per batch (epoch ms, data clock); sightings ``t`` (window start),
    ``device`` (index into the resolver's devices, -1 if unresolved), ``rssi`` (dBm), and
    ``batch`` (which batch carried the row); ``events`` as dicts, time ordered.
    """

    vehicle_id: str
    sent_at: IntArray
    t: IntArray
    device: IntArray
    rssi: IntArray
    batch: IntArray
    events: list[dict[str, object]]

    def journeys(self) -> list[RecordedJourney]:
        """Journeys cut from the events (a ``journey`` event starts one)."""
        return journeys_from_events(self.events)


class TokenResolver:
    """Maps a sighting's token to the device that advertised it (±1 token interval)."""

    def __init__(
        self, device_ids: Sequence[str], keys: Mapping[str, bytes], lo_ms: int, hi_ms: int
    ):
        self.device_ids = list(device_ids)
        first = wire.interval_of(lo_ms) - 1
        last = wire.interval_of(hi_ms) + 1
        self._table: dict[str, int] = {}
        for k, did in enumerate(self.device_ids):
            key = keys[did]
            for i in range(first, last + 1):
                self._table[wire.token_for_interval(key, i).hex()] = k

    def resolve(self, tokens: Iterable[str]) -> IntArray:
        """Device index per token hex (-1 if no device's token)."""
        table = self._table
        return np.fromiter((table.get(tok, -1) for tok in tokens), dtype=np.int64)


def read_vehicle(
    vehicle_id: str, bodies: Iterable[bytes], resolver: TokenResolver
) -> VehicleRecord:
    """Parse one vehicle's upload bodies into columns."""
    sent: list[int] = []
    ts: list[IntArray] = []
    devs: list[IntArray] = []
    rs: list[IntArray] = []
    bs: list[IntArray] = []
    events: list[dict[str, object]] = []
    for k, body in enumerate(bodies):
        doc = json.loads(body)
        sent.append(int(doc["sent_at"]))
        events.extend(doc["events"])
        s = doc["sightings"]
        if s["t"]:
            ts.append(np.asarray(s["t"], dtype=np.int64))
            devs.append(resolver.resolve(s["token"]))
            rs.append(np.asarray(s["rssi"], dtype=np.int64))
            bs.append(np.full(len(s["t"]), k, dtype=np.int64))
    events.sort(key=lambda e: int(e["t"]))  # type: ignore[call-overload]

    def cat(parts: list[IntArray]) -> IntArray:
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)

    t = cat(ts)
    order = np.argsort(t, kind="stable")
    return VehicleRecord(
        vehicle_id,
        np.asarray(sent, dtype=np.int64),
        t[order],
        cat(devs)[order],
        cat(rs)[order],
        cat(bs)[order],
        events,
    )


def journeys_from_events(events: Sequence[Mapping[str, object]]) -> list[RecordedJourney]:
    """Journeys with their stop visits from time-ordered contract events."""
    out: list[RecordedJourney] = []
    current: Mapping[str, object] | None = None
    visits: list[Visit] = []
    arrived: tuple[str, int] | None = None

    def close() -> None:
        if current is not None and len(visits) >= 2:
            out.append(
                RecordedJourney(str(current["journey_id"]), str(current["line"]), tuple(visits))
            )

    for e in events:
        kind, t = e["type"], int(e["t"])  # type: ignore[call-overload]
        if kind == "journey":
            close()
            current, visits, arrived = e, [], None
        elif kind == "arrival":
            arrived = (str(e["stop_id"]), t)
        elif kind == "departure" and arrived is not None:
            visits.append(Visit(arrived[0], arrived[1], t))
            arrived = None
    close()
    return out


def _visit_at(visits: Sequence[Visit], t: int, leaving: bool) -> int:
    """Index of the visit a time belongs to: the stop being visited, or while moving the
    previous stop (``leaving=False``, boarding) or the next one (``leaving=True``)."""
    k = 0
    for i, v in enumerate(visits):
        if v.arrival <= t:
            k = i
    v = visits[k]
    if leaving and t > v.departure and k + 1 < len(visits):
        return k + 1
    return k


def naive_trips(
    record: VehicleRecord,
    device_ids: Sequence[str],
    threshold_dbm: int = NAIVE_RSSI_THRESHOLD_DBM,
    min_windows: int = NAIVE_MIN_WINDOWS,
) -> list[ScoredTrip]:
    """The baseline's trips on one vehicle."""
    strong = (record.rssi >= threshold_dbm) & (record.device >= 0)
    t_all, d_all = record.t[strong], record.device[strong]
    out: list[ScoredTrip] = []
    for j in record.journeys():
        lo, hi = np.searchsorted(t_all, [j.start, j.end + 1])
        t, dev = t_all[lo:hi], d_all[lo:hi]
        for d in np.unique(dev):
            mine = np.unique(t[dev == d])
            if mine.size < min_windows:
                continue
            b = _visit_at(j.visits, int(mine[0]), leaving=False)
            a = _visit_at(j.visits, int(mine[-1]), leaving=True)
            if a <= b:
                if b + 1 >= len(j.visits):
                    continue
                a = b + 1
            out.append(
                ScoredTrip(
                    device_id=device_ids[int(d)],
                    vehicle_id=record.vehicle_id,
                    journey_id=j.journey_id,
                    board_stop_id=j.visits[b].stop_id,
                    board_time=j.visits[b].departure,
                    alight_stop_id=j.visits[a].stop_id,
                    alight_time=j.visits[a].arrival,
                )
            )
    return out
