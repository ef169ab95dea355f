"""Ground truth of a simulated day (who really rode what, who was only nearby), as JSON.

Times are UTC epoch milliseconds. The persisted shape carries ``"version": 1``.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from simulator.const import GROUND_TRUTH_VERSION


class GroundTruthError(ValueError):
    """A ground-truth document is malformed; the message names the field."""


@dataclass(frozen=True, slots=True)
class TruthTrip:
    """A ride that really happened; ``board_time``/``alight_time`` are the door steps (epoch ms).

    ``device_id`` is the backend's id of the person's phone, when known.
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


@dataclass(frozen=True, slots=True)
class TruthEncounter:
    """A non-rider heard by a vehicle near ``stop_id`` from ``t`` (epoch ms) on.

    ``kind``: stop_wait, walk_past, alongside (``stop_id`` = the stop the bus last left)
    or other_bus (a rider of another bus standing at the same stop).
    """

    person_id: str
    vehicle_id: str
    stop_id: str
    t: int
    kind: str
    device_id: str | None = None


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
        """Write the versioned JSON to ``path`` (UTF-8)."""
        path.write_text(json.dumps(self.to_json(), indent=1, ensure_ascii=False), "utf-8")

    @classmethod
    def load(cls, path: Path) -> GroundTruth:
        """Read a file written by :meth:`save`."""
        return cls.from_json(json.loads(path.read_text("utf-8")))
