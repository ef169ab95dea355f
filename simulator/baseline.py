"""The naive baseline: an RSSI threshold and a minimum count, on the recorded batches.

What a first attempt at BiBo detection looks like: a device counts as on board for a
journey if the bus heard it at or above a threshold in at least a minimum number of
1 s windows; it boarded at the stop where it was first heard that strongly and alighted
at the stop where it was last heard so (or the next one if that happened while moving).
No motion, no doors, no conflicts between vehicles. It is scored beside the real
reconciliation so every report shows the margin.

It reads what the backend reads, with the backend's own pure parts: the uploads as
:func:`simulator.offline.vehicle_data` columns, tokens resolved by
:class:`backend.trips.resolution.TokenResolver`, journeys cut by
:func:`backend.trips.reconciliation.journeys_from_events` (without GNSS: calls whose stop events
never came are not derived for the baseline).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from backend.trips.reconciliation import EventRecord, Journey, StopVisit, journeys_from_events
from backend.trips.resolution import TokenResolver
from simulator.const import NAIVE_MIN_WINDOWS, NAIVE_RSSI_THRESHOLD_DBM
from simulator.offline import VehicleData, sorted_events
from simulator.scoring import ScoredTrip

IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class VehicleRecord:
    """One vehicle's recorded uploads as columns.

    ``sent_at`` per batch (epoch ms, data clock); sightings ``t`` (window start),
    ``device`` (index into the resolver's devices, -1 if unresolved), ``rssi`` (dBm), and
    ``batch`` (which batch carried the row), sorted by time; ``events`` time ordered;
    ``window_ms`` the scan window.
    """

    vehicle_id: str
    sent_at: IntArray
    t: IntArray
    device: IntArray
    rssi: IntArray
    batch: IntArray
    events: list[EventRecord]
    window_ms: int = 1000

    def journeys(self) -> list[Journey]:
        """Journeys cut from the events, as the backend cuts them."""
        return journeys_from_events(self.vehicle_id, self.events)


def read_vehicle(data: VehicleData, resolver: TokenResolver) -> VehicleRecord:
    """One vehicle's uploads (``simulator.offline.vehicle_data``) as time-sorted columns,
    its tokens resolved."""
    t = np.asarray(data.t, dtype=np.int64)
    order = np.argsort(t, kind="stable")
    device = resolver.resolve(t[order], [bytes.fromhex(data.token[i]) for i in order])
    return VehicleRecord(
        data.vehicle_id,
        np.asarray(data.sent, dtype=np.int64),
        t[order],
        device.astype(np.int64),
        np.asarray(data.rssi, dtype=np.int64)[order],
        np.asarray(data.batch, dtype=np.int64)[order],
        sorted_events(data),
        data.window_ms,
    )


def _left(v: StopVisit) -> int:
    return v.departure if v.departure is not None else v.arrival


def _visit_at(visits: Sequence[StopVisit], t: int, leaving: bool) -> int:
    """Index of the visit a time belongs to: the stop being visited, or while moving the
    previous stop (``leaving=False``, boarding) or the next one (``leaving=True``)."""
    k = 0
    for i, v in enumerate(visits):
        if v.arrival <= t:
            k = i
    v = visits[k]
    if leaving and t > _left(v) and k + 1 < len(visits):
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
        lo, hi = np.searchsorted(t_all, [j.visits[0].arrival, _left(j.visits[-1]) + 1])
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
                    board_time=_left(j.visits[b]),
                    alight_stop_id=j.visits[a].stop_id,
                    alight_time=j.visits[a].arrival,
                )
            )
    return out
