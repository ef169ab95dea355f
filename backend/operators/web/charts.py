"""Small charts as inline SVG, drawn in Python: pure functions from numbers to markup.

No plotting library and no JavaScript: the pages stay printable and the charts are part of
the HTML a test (or a screen reader, through ``<title>``) can read.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape
from zoneinfo import ZoneInfo

from markupsafe import Markup

from backend.const import SERVICE_DAY_TZ, TRACE_MARGIN_MS
from backend.operators.service import Trace, TraceEvent
from backend.operators.web.const import TRACE_HEIGHT_PX, TRACE_RSSI_RANGE_DBM, TRACE_WIDTH_PX
from backend.trips.reconciliation import spells

_TZ = ZoneInfo(SERVICE_DAY_TZ)
_FONT = 'font-family="system-ui, sans-serif" font-size="11"'
_INK, _MUTED, _GRID = "#1f2937", "#6b7280", "#e5e7eb"
_BAR, _BAR_WARN = "#2563eb", "#d97706"


def _f(x: float) -> str:
    """A coordinate with one decimal (keeps the markup small)."""
    return f"{x:.1f}"


@dataclass(frozen=True)
class Bar:
    label: str
    value: int
    warn: bool = False
    """Drawn in the warning colour (e.g. low-confidence bins)."""


def bar_chart(
    bars: Sequence[Bar],
    title: str,
    value_label: Callable[[int], str] = str,
    width: int = 560,
    height: int = 220,
) -> Markup:
    """Vertical bars with their value on top and their label below."""
    left, right, top, bottom = 12, 12, 22, 36
    plot_w, plot_h = width - left - right, height - top - bottom
    peak = max((b.value for b in bars), default=0) or 1
    slot = plot_w / max(len(bars), 1)
    bar_w = min(max(slot * 0.7, 1.0), 44.0)
    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
        f'xmlns="http://www.w3.org/2000/svg" {_FONT}>',
        f"<title>{escape(title)}</title>",
        f'<line x1="{left}" y1="{top + plot_h}" x2="{width - right}" y2="{top + plot_h}" '
        f'stroke="{_MUTED}"/>',
    ]
    for i, b in enumerate(bars):
        x = left + i * slot + (slot - bar_w) / 2
        h = plot_h * max(b.value, 0) / peak
        y = top + plot_h - h
        colour = _BAR_WARN if b.warn else _BAR
        parts.append(
            f'<rect class="bar" x="{_f(x)}" y="{_f(y)}" width="{_f(bar_w)}" height="{_f(h)}" '
            f'fill="{colour}" rx="2"><title>{escape(b.label)}: {escape(value_label(b.value))}'
            f"</title></rect>"
        )
        cx = x + bar_w / 2
        if b.value:
            parts.append(
                f'<text x="{_f(cx)}" y="{_f(y - 4)}" text-anchor="middle" fill="{_INK}">'
                f"{escape(value_label(b.value))}</text>"
            )
        parts.append(
            f'<text x="{_f(cx)}" y="{top + plot_h + 15}" text-anchor="middle" '
            f'fill="{_MUTED}">{escape(b.label)}</text>'
        )
    if not any(b.value for b in bars):
        parts.append(
            f'<text x="{width / 2}" y="{top + plot_h / 2}" text-anchor="middle" '
            f'fill="{_MUTED}">no data</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def confidence_bins(values: Sequence[float], bins: int) -> list[int]:
    """Counts of ``values`` in ``bins`` equal bins over [0, 1] (1.0 falls in the last)."""
    counts = [0] * bins
    for v in values:
        counts[min(max(int(v * bins), 0), bins - 1)] += 1
    return counts


# --- the RSSI trace of a trip ----------------------------------------------------------------


@dataclass(frozen=True)
class _Scale:
    """Maps epoch ms and dBm to SVG coordinates."""

    t0: int
    t1: int
    lo: int
    hi: int
    left: float
    top: float
    width: float
    height: float

    def x(self, t: int) -> float:
        return self.left + self.width * (t - self.t0) / max(self.t1 - self.t0, 1)

    def y(self, rssi: float) -> float:
        return self.top + self.height * (self.hi - rssi) / max(self.hi - self.lo, 1)


def _time_step_ms(span_ms: int) -> int:
    for minutes in (1, 2, 5, 10, 15, 30, 60, 120, 240):
        if span_ms / (minutes * 60_000) <= 10:
            return minutes * 60_000
    return 480 * 60_000


def _clock(t_ms: int) -> str:
    return dt.datetime.fromtimestamp(t_ms / 1000, tz=_TZ).strftime("%H:%M")


def _spans(events: Sequence[TraceEvent], start: str, end: str, t_end: int) -> list[tuple[int, int]]:
    """``[start, end)`` intervals from paired events (an unpaired start runs to ``t_end``)."""
    return [(a, t_end if b is None else b) for a, b in spells(events, start, end)]


def _short(name: str, limit: int = 24) -> str:
    return name if len(name) <= limit else name[: limit - 1] + "…"


def trace_plot(trace: Trace, stop_names: dict[str, str]) -> Markup:
    """The trip's evidence: RSSI dots over time (dBm, local time) as the bus heard the phone,
    orange squares as the phone heard the bus beacon with its region stays along the top,
    the stops (arrival solid, departure dashed, named above the plot), door-open spans
    shaded amber and the inferred in-vehicle interval [board_time, alight_time] shaded
    green."""
    width, height = TRACE_WIDTH_PX, TRACE_HEIGHT_PX
    # The right margin leaves room for the slanted name of a stop near the end.
    left, right, top, bottom = 52.0, 112.0, 110.0, 48.0
    times = [*trace.t, *trace.phone_t, *(e.t for e in trace.events)]
    t0 = min([trace.board_time - TRACE_MARGIN_MS, *times])
    t1 = max([trace.alight_time + TRACE_MARGIN_MS, *times])
    lo, hi = TRACE_RSSI_RANGE_DBM
    levels = [*trace.rssi, *trace.phone_rssi]
    if levels:
        lo = min(lo, (min(levels) // 10) * 10)
        hi = max(hi, -((-max(levels)) // 10) * 10)
    s = _Scale(t0, t1, lo, hi, left, top, width - left - right, height - top - bottom)
    plot_bottom = top + s.height
    out = [
        f'<svg class="trace" viewBox="0 0 {width} {height}" role="img" '
        f'xmlns="http://www.w3.org/2000/svg" {_FONT}>',
        f"<title>RSSI trace of trip {escape(trace.trip_id)} on {escape(trace.vehicle_id)}: "
        f"{len(trace.t)} sightings by the bus, {len(trace.phone_t)} by the phone</title>",
        f'<rect x="{_f(left)}" y="{_f(top)}" width="{_f(s.width)}" height="{_f(s.height)}" '
        f'fill="#ffffff" stroke="{_GRID}"/>',
    ]
    # The inferred in-vehicle interval, under everything else.
    bx, ax = s.x(trace.board_time), s.x(trace.alight_time)
    out.append(
        f'<rect class="in-vehicle" x="{_f(bx)}" y="{_f(top)}" width="{_f(max(ax - bx, 1))}" '
        f'height="{_f(s.height)}" fill="#16a34a" fill-opacity="0.10"/>'
    )
    for a, b in _spans(trace.events, "doors_open", "doors_closed", t1):
        out.append(
            f'<rect class="doors-open" x="{_f(s.x(a))}" y="{_f(top)}" '
            f'width="{_f(max(s.x(b) - s.x(a), 1))}" height="{_f(s.height)}" fill="#f59e0b" '
            f'fill-opacity="0.22"><title>doors open {_clock(a)}–{_clock(b)}</title></rect>'
        )
    # Grid: RSSI every 10 dB, time at a round step.
    for dbm in range(lo, hi + 1, 10):
        y = s.y(dbm)
        out.append(
            f'<line x1="{_f(left)}" y1="{_f(y)}" x2="{_f(left + s.width)}" y2="{_f(y)}" '
            f'stroke="{_GRID}"/><text x="{_f(left - 6)}" y="{_f(y + 4)}" text-anchor="end" '
            f'fill="{_MUTED}">{dbm}</text>'
        )
    step = _time_step_ms(t1 - t0)
    for t in range(-(-t0 // step) * step, t1 + 1, step):
        x = s.x(t)
        out.append(
            f'<line x1="{_f(x)}" y1="{_f(plot_bottom)}" x2="{_f(x)}" y2="{_f(plot_bottom + 4)}" '
            f'stroke="{_MUTED}"/><text x="{_f(x)}" y="{_f(plot_bottom + 16)}" '
            f'text-anchor="middle" fill="{_MUTED}">{_clock(t)}</text>'
        )
    # Stops: a solid line at arrival (named above the plot), dashed at departure.
    for e in trace.events:
        t, kind = e.t, e.type
        if kind not in ("arrival", "departure"):
            continue
        x = s.x(t)
        dash = "" if kind == "arrival" else ' stroke-dasharray="3 3"'
        stop_id = e.stop_id or ""
        name = stop_names.get(stop_id, stop_id)
        out.append(
            f'<line class="stop-{kind}" x1="{_f(x)}" y1="{_f(top)}" x2="{_f(x)}" '
            f'y2="{_f(plot_bottom)}" stroke="#475569" stroke-width="1"{dash}>'
            f"<title>{escape(kind)} {escape(name)} {_clock(t)}</title></line>"
        )
        if kind == "arrival":
            out.append(
                f'<text class="stop-name" x="{_f(x)}" y="{_f(top - 6)}" '
                f'transform="rotate(-40 {_f(x)} {_f(top - 6)})" fill="{_INK}">'
                f"{escape(_short(name))}</text>"
            )
    # The sightings; the dot's size grows with the adverts heard in its window.
    for t, rssi, n in zip(trace.t, trace.rssi, trace.n, strict=True):
        inside = trace.board_time <= t <= trace.alight_time
        out.append(
            f'<circle class="pt" cx="{_f(s.x(t))}" cy="{_f(s.y(rssi))}" '
            f'r="{1.8 + 0.4 * min(n, 4):.1f}" fill="{"#1d4ed8" if inside else "#64748b"}" '
            f'fill-opacity="0.8"/>'
        )
    # The phone's side (iPhones): what it heard of the bus beacon as orange squares, its
    # region stays as an orange bar along the top.
    for t, rssi in zip(trace.phone_t, trace.phone_rssi, strict=True):
        out.append(
            f'<rect class="phone-pt" x="{_f(s.x(t) - 2)}" y="{_f(s.y(rssi) - 2)}" width="4" '
            f'height="4" fill="#ea580c" fill-opacity="0.8"/>'
        )
    for a, b in _spans(trace.regions, "enter", "exit", t1):
        out.append(
            f'<rect class="region" x="{_f(s.x(a))}" y="{_f(top)}" '
            f'width="{_f(max(s.x(b) - s.x(a), 1))}" height="4" fill="#ea580c">'
            f"<title>phone in the beacon region {_clock(a)}–{_clock(b)}</title></rect>"
        )
    # The inferred interval, labelled under the time axis.
    out.append(
        f'<line x1="{_f(bx)}" y1="{_f(plot_bottom + 28)}" x2="{_f(ax)}" '
        f'y2="{_f(plot_bottom + 28)}" stroke="#16a34a" stroke-width="4"/>'
        f'<text x="{_f((bx + ax) / 2)}" y="{_f(plot_bottom + 43)}" text-anchor="middle" '
        f'fill="#166534">in vehicle {_clock(trace.board_time)}–{_clock(trace.alight_time)}'
        f"</text>"
        f'<text x="14" y="{_f(top + s.height / 2)}" text-anchor="middle" fill="{_MUTED}" '
        f'transform="rotate(-90 14 {_f(top + s.height / 2)})">RSSI (dBm)</text>'
    )
    if not trace.t and not trace.phone_t:
        out.append(
            f'<text x="{_f(left + s.width / 2)}" y="{_f(top + s.height / 2)}" '
            f'text-anchor="middle" fill="{_MUTED}">no sightings kept (retention period over)'
            f"</text>"
        )
    out.append("</svg>")
    return Markup("".join(out))


# --- the trip's stops on a plain drawing ----------------------------------------------------


@dataclass(frozen=True)
class MapStop:
    """A stop of the journey: id, name and WGS84 position in degrees."""

    stop_id: str
    name: str
    lat: float
    lon: float


def stops_map(
    stops: Sequence[MapStop], board_stop_id: str, alight_stop_id: str, width: int = 560
) -> Markup:
    """The journey's stops drawn from their coordinates (no map tiles): an equirectangular
    projection scaled by the cosine of the mean latitude (true to shape at this size), the
    stops joined in journey order, the ridden part thick, boarding and alighting stops
    marked and named; every stop named in its ``<title>``."""
    placed = [s for s in stops if math.isfinite(s.lat) and math.isfinite(s.lon)]
    if not placed:
        return Markup(
            f'<svg class="stops-map" viewBox="0 0 {width} 60" role="img" '
            f'xmlns="http://www.w3.org/2000/svg" {_FONT}><title>No stop positions</title>'
            f'<text x="{width / 2}" y="34" text-anchor="middle" fill="{_MUTED}">'
            "no stop positions known</text></svg>"
        )
    pad = 30.0
    k = math.cos(math.radians(sum(s.lat for s in placed) / len(placed)))
    xs = [s.lon * k for s in placed]
    ys = [s.lat for s in placed]
    span = max(max(xs) - min(xs), max(ys) - min(ys), 1e-6)
    scale = (width - 2 * pad) / span
    height = int(2 * pad + (max(ys) - min(ys)) * scale) + 1
    height = max(height, 120)

    def at(s: MapStop) -> tuple[float, float]:
        return pad + (s.lon * k - min(xs)) * scale, height - pad - (s.lat - min(ys)) * scale

    ids = [s.stop_id for s in placed]
    board = ids.index(board_stop_id) if board_stop_id in ids else None
    alight = ids.index(alight_stop_id) if alight_stop_id in ids else None
    named = {board_stop_id: "boarded", alight_stop_id: "alighted"}
    out = [
        f'<svg class="stops-map" viewBox="0 0 {width} {height}" role="img" '
        f'xmlns="http://www.w3.org/2000/svg" {_FONT}>',
        f"<title>The journey's {len(placed)} stops from their coordinates (north up); "
        f"boarded at {escape(_name(placed, board))}, alighted at "
        f"{escape(_name(placed, alight))}</title>",
    ]
    points = " ".join(f"{_f(x)},{_f(y)}" for x, y in map(at, placed))
    out.append(f'<polyline points="{points}" fill="none" stroke="{_MUTED}" stroke-width="2"/>')
    if board is not None and alight is not None and board <= alight:
        ridden = " ".join(f"{_f(x)},{_f(y)}" for x, y in map(at, placed[board : alight + 1]))
        out.append(
            f'<polyline class="ridden" points="{ridden}" fill="none" stroke="#16a34a" '
            f'stroke-width="6" stroke-linecap="round" stroke-linejoin="round"/>'
        )
    for n, s in enumerate(placed):
        x, y = at(s)
        role = named.get(s.stop_id)
        colour = {"boarded": "#1d4ed8", "alighted": "#b91c1c"}.get(role or "", "#ffffff")
        radius = 7 if role else 4
        label = f"{n + 1}. {s.name}" + (f" ({role})" if role else "")
        out.append(
            f'<circle class="stop{" " + role if role else ""}" cx="{_f(x)}" cy="{_f(y)}" '
            f'r="{radius}" fill="{colour}" stroke="{_INK}" stroke-width="1.5">'
            f"<title>{escape(label)}</title></circle>"
        )
        if role:
            # Named on the side with room: left of a stop in the right half.
            right = x > width / 2
            out.append(
                f'<text x="{_f(x - 10 if right else x + 10)}" y="{_f(y - 8)}" '
                f'text-anchor="{"end" if right else "start"}" fill="{_INK}" '
                f'font-weight="bold">{escape(_short(s.name))} ({role})</text>'
            )
    out.append("</svg>")
    return Markup("".join(out))


def _name(stops: Sequence[MapStop], index: int | None) -> str:
    return stops[index].name if index is not None else "a stop not drawn"
