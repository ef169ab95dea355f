"""GTFS in and out: a real feed (NWL publishes one) can replace the built-in network.

Import (:func:`load_gtfs`) reads ``stops.txt``, ``routes.txt``, ``trips.txt`` and
``stop_times.txt`` from a directory or a zip. Each bus route becomes a line whose stops are
its most frequent stop pattern in direction 0; platforms (``de:05974:1234:1:1``) are merged
into their stop area (``parent_station``) so lines meeting at a hub share its stop. A stop's
municipality comes from an extra ``municipality`` column when the feed has one (our export
writes it; GTFS consumers ignore unknown columns), else from its name (``Town-District,
Place`` → ``Town``). The simulator builds its own timetable on the imported lines.

Export (:func:`export_gtfs`) writes a small valid feed of a network: one trip per line and
direction at nominal run times, enough to exchange the network with GTFS tools.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import zipfile
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from onboard.wire import STOP_ID_PATTERN
from simulator.const import (
    DWELL_MAX_MS,
    DWELL_MIN_MS,
    GTFS_AGENCY_URL,
    GTFS_DEFAULT_MUNICIPALITY,
    NETWORK_VERSION,
)
from simulator.network import Line, Network, NetworkError, Stop
from simulator.timetable import nominal_speed_mps, segment_lengths_m

BUS_ROUTE_TYPES = frozenset({3, *range(700, 800)})
"""GTFS route types that are buses (basic 3 and the extended 7xx bus types)."""

EXPORT_FILES = (
    "agency.txt",
    "stops.txt",
    "routes.txt",
    "trips.txt",
    "stop_times.txt",
    "calendar.txt",
)


def _read_tables(source: Path) -> dict[str, list[dict[str, str]]]:
    """The feed's tables by file name, rows as dicts (UTF-8, BOM tolerated)."""
    wanted = ("agency.txt", "stops.txt", "routes.txt", "trips.txt", "stop_times.txt")
    texts: dict[str, str] = {}
    if source.is_dir():
        for name in wanted:
            f = source / name
            if f.is_file():
                texts[name] = f.read_text("utf-8-sig")
    elif zipfile.is_zipfile(source):
        with zipfile.ZipFile(source) as zf:
            names = {Path(n).name: n for n in zf.namelist()}
            for name in wanted:
                if name in names:
                    texts[name] = zf.read(names[name]).decode("utf-8-sig")
    else:
        raise NetworkError(f"{source}: not a GTFS directory or zip file")
    for name in wanted[1:]:
        if name not in texts:
            raise NetworkError(f"{source}: {name}: missing")
    return {name: list(csv.DictReader(io.StringIO(text))) for name, text in texts.items()}


def _need(row: Mapping[str, str], key: str, where: str) -> str:
    value = (row.get(key) or "").strip()
    if not value:
        raise NetworkError(f"{where}: {key}: missing")
    return value


def municipality_from_name(name: str, known: Iterable[str] = ()) -> str:
    """The municipality in a stop name: ``"Soest-Ampen, Kirche"`` → ``"Soest"``; keeps
    ``"Bad Sassendorf"`` and ``"Wickede (Ruhr)"`` whole; ``known`` official names win
    (``"Fröndenberg"`` → ``"Fröndenberg/Ruhr"``); no comma → GTFS_DEFAULT_MUNICIPALITY."""
    if "," not in name:
        return GTFS_DEFAULT_MUNICIPALITY
    town = name.split(",", 1)[0].strip()
    m = re.match(r"^(.*?\S)(?:-[A-ZÄÖÜ].*)?$", town)
    town = m.group(1) if m else town
    for official in known:
        if official == town or official.startswith((town + "/", town + " (")):
            return official
    return town


def _operator_code(agency: str) -> str:
    code = re.sub(r"[^A-Za-z0-9]", "", agency).upper()[:8]
    return code or "BUS"


def load_gtfs(
    source: Path,
    routes: Iterable[str] | None = None,
    merge_platforms: bool = True,
    municipalities: Iterable[str] = (),
) -> Network:
    """A :class:`Network` from a GTFS feed (directory or zip).

    ``routes`` keeps only routes whose ``route_short_name`` or ``route_id`` is listed;
    otherwise every bus route. ``municipalities`` are official names the stop-name
    heuristic maps to (e.g. the built-in network's). Stop ids must be DHIDs (the upload
    contract's pattern); NetworkError names the file, row and field of anything unusable.
    """
    tables = _read_tables(source)
    wanted = set(routes) if routes is not None else None
    raw_stops: dict[str, dict[str, str]] = {}
    for k, row in enumerate(tables["stops.txt"]):
        raw_stops[_need(row, "stop_id", f"stops.txt row {k + 2}")] = row

    def area(stop_id: str) -> str:
        parent = (raw_stops.get(stop_id, {}).get("parent_station") or "").strip()
        return parent if merge_platforms and parent in raw_stops else stop_id

    agencies = {
        r.get("agency_id", ""): r.get("agency_name", "") for r in tables.get("agency.txt", [])
    }
    chosen: dict[str, dict[str, str]] = {}
    for k, row in enumerate(tables["routes.txt"]):
        where = f"routes.txt row {k + 2}"
        rid = _need(row, "route_id", where)
        try:
            rtype = int(_need(row, "route_type", where))
        except ValueError:
            raise NetworkError(f"{where}: route_type: expected a number") from None
        short = (row.get("route_short_name") or "").strip()
        if wanted is not None and short not in wanted and rid not in wanted:
            continue
        if rtype not in BUS_ROUTE_TYPES:
            continue
        chosen[rid] = row
    trips_of: dict[str, list[str]] = defaultdict(list)
    direction: dict[str, int] = {}
    for k, row in enumerate(tables["trips.txt"]):
        rid = (row.get("route_id") or "").strip()
        if rid in chosen:
            tid = _need(row, "trip_id", f"trips.txt row {k + 2}")
            trips_of[rid].append(tid)
            direction[tid] = int((row.get("direction_id") or "0").strip() or 0)
    calls: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for k, row in enumerate(tables["stop_times.txt"]):
        tid = (row.get("trip_id") or "").strip()
        if tid not in direction:
            continue
        where = f"stop_times.txt row {k + 2}"
        try:
            seq = int(_need(row, "stop_sequence", where))
        except ValueError:
            raise NetworkError(f"{where}: stop_sequence: expected a number") from None
        calls[tid].append((seq, area(_need(row, "stop_id", where))))

    lines: list[Line] = []
    used_ids: set[str] = set()
    for rid, row in chosen.items():
        patterns: Counter[tuple[str, ...]] = Counter()
        for tid in trips_of[rid]:
            visited = [s for _, s in sorted(calls[tid])]
            dedup = tuple(s for i, s in enumerate(visited) if i == 0 or s != visited[i - 1])
            if len(dedup) < 2 or len(set(dedup)) != len(dedup):
                continue
            patterns[dedup if direction[tid] == 0 else tuple(reversed(dedup))] += 1
        if not patterns:
            continue
        stops = max(patterns.items(), key=lambda kv: (kv[1], len(kv[0]), kv[0]))[0]
        line_id = (row.get("route_short_name") or "").strip() or rid
        if line_id in used_ids:
            line_id = f"{line_id}_{rid}"
        used_ids.add(line_id)
        agency = agencies.get((row.get("agency_id") or "").strip(), "") or (
            row.get("agency_id") or ""
        )
        name = (row.get("route_long_name") or "").strip() or line_id
        lines.append(Line(line_id, name, _operator_code(agency), stops))
    if not lines:
        raise NetworkError(f"{source}: no bus route with a usable stop pattern")

    stops_out: dict[str, Stop] = {}
    pattern = re.compile(STOP_ID_PATTERN)
    known = sorted(set(municipalities))
    for ln in lines:
        for sid in ln.stops:
            if sid in stops_out:
                continue
            srow = raw_stops.get(sid)
            if srow is None:
                raise NetworkError(f"stop_times.txt: stop_id {sid!r} is not in stops.txt")
            if not pattern.match(sid):
                raise NetworkError(
                    f"stops.txt: stop_id {sid!r}: expected a DHID like 'de:05974:1001' "
                    "(the upload contract's stop ids)"
                )
            name = (srow.get("stop_name") or sid).strip()
            try:
                lat, lon = float(srow["stop_lat"]), float(srow["stop_lon"])
            except (KeyError, TypeError, ValueError):
                raise NetworkError(
                    f"stops.txt: {sid}: stop_lat/stop_lon: expected numbers"
                ) from None
            muni = (srow.get("municipality") or "").strip() or municipality_from_name(name, known)
            stops_out[sid] = Stop(sid, name, muni, lat, lon)
    ordered = {sid: stops_out[sid] for sid in sorted(stops_out)}
    return Network(version=NETWORK_VERSION, stops=ordered, lines=tuple(lines))


def _hms(ms: int) -> str:
    s = ms // 1000
    return f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"


def _table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> list[list[object]]:
    return [list(header), *(list(r) for r in rows)]


def _csv(rows: Sequence[Sequence[object]]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerows(rows)
    return buf.getvalue()


def export_gtfs(network: Network, out: Path, valid_from: dt.date, valid_to: dt.date) -> None:
    """Write a small GTFS feed of ``network`` into directory ``out``.

    One weekday trip per line and direction, leaving the first stop at 08:00, at nominal
    off-peak running times with mean dwells. Stops carry an extra ``municipality``
    column so :func:`load_gtfs` gets the network back exactly.
    """
    out.mkdir(parents=True, exist_ok=True)
    operators = sorted({ln.operator for ln in network.lines})
    days = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
    files: dict[str, list[list[object]]] = {
        "agency.txt": _table(
            ("agency_id", "agency_name", "agency_url", "agency_timezone", "agency_lang"),
            ((op, op, GTFS_AGENCY_URL, "Europe/Berlin", "de") for op in operators),
        ),
        "stops.txt": _table(
            ("stop_id", "stop_name", "stop_lat", "stop_lon", "municipality"),
            (
                (s.stop_id, s.name, f"{s.lat:.4f}", f"{s.lon:.4f}", s.municipality)
                for s in network.stops.values()
            ),
        ),
        "routes.txt": _table(
            ("route_id", "agency_id", "route_short_name", "route_long_name", "route_type"),
            ((ln.line, ln.operator, ln.line, ln.name, 3) for ln in network.lines),
        ),
        "trips.txt": _table(("route_id", "service_id", "trip_id", "direction_id"), ()),
        "stop_times.txt": _table(
            ("trip_id", "arrival_time", "departure_time", "stop_id", "stop_sequence"), ()
        ),
        "calendar.txt": _table(
            ("service_id", *days, "start_date", "end_date"),
            [("WD", 1, 1, 1, 1, 1, 0, 0, f"{valid_from:%Y%m%d}", f"{valid_to:%Y%m%d}")],
        ),
    }
    dwell = (DWELL_MIN_MS + DWELL_MAX_MS) // 2
    for ln in network.lines:
        lengths = segment_lengths_m(network, ln)
        for direction in (0, 1):
            stops = ln.stops if direction == 0 else tuple(reversed(ln.stops))
            segs = lengths if direction == 0 else lengths[::-1]
            tid = f"{ln.line}-{direction}"
            files["trips.txt"].append([ln.line, "WD", tid, direction])
            t = 8 * 3600_000
            for k, sid in enumerate(stops):
                arrive = t
                depart = t if k == 0 else t + dwell
                files["stop_times.txt"].append([tid, _hms(arrive), _hms(depart), sid, k + 1])
                if k < len(segs):
                    t = depart + round(segs[k] / nominal_speed_mps(segs[k]) * 1000)
    for name in EXPORT_FILES:
        (out / name).write_text(_csv(files[name]), "utf-8")
