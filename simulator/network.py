"""The bus network (stops and lines) the simulator plays on, loaded from a TOML file."""

from __future__ import annotations

import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from fare_engine.geo import METRES_PER_DEGREE, distance_m
from simulator.const import HUB_MIN_LINES, NETWORK_VERSION, PROJECTION_ORIGIN


class NetworkError(ValueError):
    """The network file is malformed; the message names the field and the value."""


@dataclass(frozen=True, slots=True)
class Stop:
    """A bus stop; ``stop_id`` is a DHID, ``lat``/``lon`` WGS84 degrees."""

    stop_id: str
    name: str
    municipality: str
    lat: float
    lon: float


@dataclass(frozen=True, slots=True)
class Line:
    """A bus line; ``stops`` are stop ids in direction 0 (direction 1 is the reverse)."""

    line: str
    name: str
    operator: str
    stops: tuple[str, ...]


@dataclass(frozen=True)
class Network:
    """Stops by id and lines in file order."""

    version: int
    stops: Mapping[str, Stop]
    lines: tuple[Line, ...]
    _lines_by_id: Mapping[str, Line] = field(init=False, repr=False, compare=False)
    _lines_at: Mapping[str, tuple[str, ...]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_lines_by_id", {ln.line: ln for ln in self.lines})
        at: dict[str, list[str]] = {}
        for ln in self.lines:
            for sid in ln.stops:
                at.setdefault(sid, []).append(ln.line)
        object.__setattr__(self, "_lines_at", {k: tuple(v) for k, v in at.items()})

    def stop(self, stop_id: str) -> Stop:
        """The stop with this id (KeyError names the id)."""
        try:
            return self.stops[stop_id]
        except KeyError:
            raise KeyError(f"unknown stop_id {stop_id!r}") from None

    def line(self, line: str) -> Line:
        """The line with this id, e.g. ``"R61"``."""
        try:
            return self._lines_by_id[line]
        except KeyError:
            raise KeyError(f"unknown line {line!r}") from None

    def lines_at(self, stop_id: str) -> tuple[str, ...]:
        """Ids of the lines serving ``stop_id``, in file order (empty if none)."""
        return self._lines_at.get(stop_id, ())

    def is_hub(self, stop_id: str) -> bool:
        """Whether at least HUB_MIN_LINES lines serve the stop."""
        return len(self.lines_at(stop_id)) >= HUB_MIN_LINES

    @property
    def hubs(self) -> tuple[str, ...]:
        """Stop ids of all hubs, in stop order."""
        return tuple(sid for sid in self.stops if self.is_hub(sid))

    def subset(self, lines: tuple[str, ...]) -> Network:
        """The network of only ``lines`` (and the stops they serve), in the given order."""
        chosen = tuple(self.line(ln) for ln in lines)
        used = {sid for ln in chosen for sid in ln.stops}
        stops = {sid: s for sid, s in self.stops.items() if sid in used}
        return Network(version=self.version, stops=stops, lines=chosen)


def stop_distance_m(a: Stop, b: Stop) -> float:
    """Straight-line distance in metres between two stops."""
    return distance_m(a.lat, a.lon, b.lat, b.lon)


def project_m(lat: float, lon: float) -> tuple[float, float]:
    """Local flat coordinates (x east, y north) in metres around PROJECTION_ORIGIN.

    Equirectangular; at our ~100 km extent the error is well below 1 %.
    """
    lat0, lon0 = PROJECTION_ORIGIN
    k = METRES_PER_DEGREE
    return (lon - lon0) * k * math.cos(math.radians(lat0)), (lat - lat0) * k


def unproject(x: float, y: float) -> tuple[float, float]:
    """Inverse of :func:`project_m`: (lat, lon) in degrees."""
    lat0, lon0 = PROJECTION_ORIGIN
    k = METRES_PER_DEGREE
    return lat0 + y / k, lon0 + x / (k * math.cos(math.radians(lat0)))


def _field(table: Mapping[str, Any], key: str, typ: type, where: str) -> Any:
    if key not in table:
        raise NetworkError(f"{where}.{key}: missing")
    value = table[key]
    if typ is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, typ) or isinstance(value, bool):
        raise NetworkError(f"{where}.{key}: expected {typ.__name__}, got {value!r}")
    return value


def parse_network(data: Mapping[str, Any]) -> Network:
    """Build a :class:`Network` from the parsed TOML document, checking version and references."""
    version = data.get("version")
    if version != NETWORK_VERSION:
        raise NetworkError(f"version: expected {NETWORK_VERSION}, got {version!r}")
    stops: dict[str, Stop] = {}
    for k, raw in enumerate(data.get("stops", [])):
        where = f"stops[{k}]"
        stop = Stop(
            stop_id=_field(raw, "stop_id", str, where),
            name=_field(raw, "name", str, where),
            municipality=_field(raw, "municipality", str, where),
            lat=_field(raw, "lat", float, where),
            lon=_field(raw, "lon", float, where),
        )
        if not (-90 <= stop.lat <= 90 and -180 <= stop.lon <= 180):
            raise NetworkError(f"{where}: coordinates out of range ({stop.lat}, {stop.lon})")
        if stop.stop_id in stops:
            raise NetworkError(f"{where}.stop_id: duplicate {stop.stop_id!r}")
        stops[stop.stop_id] = stop
    lines: list[Line] = []
    seen: set[str] = set()
    for k, raw in enumerate(data.get("lines", [])):
        where = f"lines[{k}]"
        stop_ids = _field(raw, "stops", list, where)
        for sid in stop_ids:
            if sid not in stops:
                raise NetworkError(f"{where}.stops: unknown stop_id {sid!r}")
        if len(stop_ids) < 2 or len(set(stop_ids)) != len(stop_ids):
            raise NetworkError(f"{where}.stops: need >= 2 distinct stops, got {stop_ids!r}")
        line = Line(
            line=_field(raw, "line", str, where),
            name=_field(raw, "name", str, where),
            operator=_field(raw, "operator", str, where),
            stops=tuple(stop_ids),
        )
        if line.line in seen:
            raise NetworkError(f"{where}.line: duplicate {line.line!r}")
        seen.add(line.line)
        lines.append(line)
    if not lines:
        raise NetworkError("lines: the network has no lines")
    return Network(version=version, stops=stops, lines=tuple(lines))


def load_network(path: Path | None = None) -> Network:
    """Load a network TOML file; without ``path`` the built-in ``simulator/data/network.toml``."""
    if path is None:
        text = resources.files("simulator").joinpath("data/network.toml").read_text("utf-8")
    else:
        text = path.read_text("utf-8")
    return parse_network(tomllib.loads(text))


def network_document(network: Network, source: str) -> dict[str, Any]:
    """The network as a JSON document (same fields as the TOML file, plus ``source``)."""
    return {
        "version": network.version,
        "source": source,
        "stops": [
            {
                "stop_id": st.stop_id,
                "name": st.name,
                "municipality": st.municipality,
                "lat": st.lat,
                "lon": st.lon,
            }
            for st in network.stops.values()
        ],
        "lines": [
            {"line": ln.line, "name": ln.name, "operator": ln.operator, "stops": list(ln.stops)}
            for ln in network.lines
        ],
    }
