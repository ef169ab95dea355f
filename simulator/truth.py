"""Ground truth of a simulated day (who really rode what, who was only nearby), as JSON.

Times are UTC epoch milliseconds. The persisted shape carries ``"version": 2``.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from simulator.const import GROUND_TRUTH_VERSION


class GroundTruthError(ValueError):
    """A ground-truth document is malformed; the message names the field."""


@dataclass(frozen=True, slots=True)
class TruthTrip:
    """A ride that really happened; ``board_time``/``alight_time`` are the door steps (epoch ms).

    ``device_id`` is the backend's id of the person's phone, when known. ``pattern`` is the
    passenger's daily pattern, ``outing``/``part`` number the itinerary and the ride within
    it (part 1 follows a transfer). ``phone_silent_from`` is when the phone stopped
    advertising during this ride (app killed, Bluetooth off), else None;
    ``phone_silent_until`` when it started again (None: never, or not recorded).
    """

    person_id: str
    vehicle_id: str
    journey_id: str
    line: str
    board_stop_id: str
    board_time: int
    alight_stop_id: str
    alight_time: int
    rider_category: str
    device_id: str | None = None
    pattern: str = ""
    outing: int = 0
    part: int = 0
    phone_silent_from: int | None = None
    phone_silent_until: int | None = None


@dataclass(frozen=True, slots=True)
class TruthEncounter:
    """A non-rider near a vehicle near ``stop_id`` from ``t`` to ``t_end`` (epoch ms).

    ``kind``: stop_wait, hub_wait, walk_past, alongside_car, alongside_bike,
    trailing_car, bus_beside, bunched. ``journey_id`` is the receiving bus's journey
    (empty during a layover).
    """

    person_id: str
    vehicle_id: str
    stop_id: str
    t: int
    kind: str
    device_id: str | None = None
    journey_id: str = ""
    t_end: int = 0


@dataclass(frozen=True)
class GroundTruth:
    """All rides and non-rider encounters of one simulated service day."""

    service_day: dt.date
    seed: int
    trips: list[TruthTrip] = field(default_factory=list)
    bystander_encounters: list[TruthEncounter] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """The versioned JSON document (a dict ready for ``json.dumps``)."""
        return {
            "version": GROUND_TRUTH_VERSION,
            "service_day": self.service_day.isoformat(),
            "seed": self.seed,
            "trips": [asdict(t) for t in self.trips],
            "bystander_encounters": [asdict(e) for e in self.bystander_encounters],
        }

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> GroundTruth:
        """Parse a document written by :meth:`to_json` (GroundTruthError names the field)."""
        version = doc.get("version")
        if version != GROUND_TRUTH_VERSION:
            raise GroundTruthError(f"version: expected {GROUND_TRUTH_VERSION}, got {version!r}")
        try:
            day = dt.date.fromisoformat(doc["service_day"])
            seed = int(doc["seed"])
        except (KeyError, TypeError, ValueError) as exc:
            raise GroundTruthError(f"service_day/seed: {exc}") from None
        trips: list[TruthTrip] = []
        for k, raw in enumerate(doc.get("trips", [])):
            try:
                trips.append(TruthTrip(**raw))
            except TypeError as exc:
                raise GroundTruthError(f"trips[{k}]: {exc}") from None
        encs: list[TruthEncounter] = []
        for k, raw in enumerate(doc.get("bystander_encounters", [])):
            try:
                encs.append(TruthEncounter(**raw))
            except TypeError as exc:
                raise GroundTruthError(f"bystander_encounters[{k}]: {exc}") from None
        return cls(service_day=day, seed=seed, trips=trips, bystander_encounters=encs)

    def save(self, path: Path) -> None:
        """Write the versioned JSON to ``path`` (UTF-8), one trip or encounter a line."""
        write_truth(path, self.service_day, self.seed, self.trips, self.bystander_encounters)

    @classmethod
    def load(cls, path: Path) -> GroundTruth:
        """Read a file written by :meth:`save`."""
        return cls.from_json(json.loads(path.read_text("utf-8")))


def write_truth(
    path: Path,
    service_day: dt.date,
    seed: int,
    trips: Iterable[TruthTrip],
    encounters: Iterable[TruthEncounter],
) -> None:
    """Stream a ground-truth document to ``path``: a JSON object whose ``trips`` and
    ``bystander_encounters`` have one compact element per line, so a region day with a
    million encounters is written without holding its text in memory. Deterministic."""
    with path.open("w", encoding="utf-8") as fh:
        head = {
            "version": GROUND_TRUTH_VERSION,
            "service_day": service_day.isoformat(),
            "seed": seed,
        }
        fh.write(json.dumps(head, ensure_ascii=False)[:-1])
        for key, items in (("trips", trips), ("bystander_encounters", encounters)):
            fh.write(f',\n "{key}": [')
            sep = "\n  "
            for item in items:
                fh.write(sep + json.dumps(asdict(item), ensure_ascii=False, separators=(",", ":")))
                sep = ",\n  "
            fh.write("\n ]" if sep != "\n  " else "]")
        fh.write("\n}\n")
