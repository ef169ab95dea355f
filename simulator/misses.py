"""Why bibo missed the rides it missed (``bibo evaluate --worlds`` prints the table).

Each detectable ride bibo did not match gets one cause, read off the evidence the
reconciliation decoded its bus's journey on (``reconciliation.decided_evidence``), summed
over the stretches the rider really rode:

- ``unheard``: the journey's evidence has no row for the device: neither did the bus hear
  its phone nor did the phone report hearing the bus;
- ``lost``: the ride was decoded on its bus, and lost a conflict to a trip of the same
  device on another bus;
- ``sparse``: the hearing pattern and the phone's own reports speak against "on board"
  over the ride (heard in too few parts of its stretches, or too briefly; or the phone
  said it was on foot, or out of the beacon region);
- ``level``: they speak for it, and the level (the path loss, with the bus's own levels
  in the relative models, and the stand contrast) turns the sum against;
- ``boarding``: the evidence over the ride says "on board", but the device was not heard
  at the stop it boarded at, where boarding unheard is unlikely (``P_BOARD_UNHEARD``);
- ``other``: none of these (the decoded chain put the ride elsewhere: a neighbour
  stretch's evidence, a split, a boarding the stretch before looked alongside).

The causes sum to the misses, so a table of them says where recall is lost and which part
of the model to look at first. ``explain_day`` also reads off the terms of every stretch of
each missed ride and of each trip bibo charged a bystander (what ``bibo evaluate --worlds
--out`` writes to mistakes.jsonl).
"""

from __future__ import annotations

from collections.abc import Container, Mapping, Sequence
from typing import Final, Protocol

import numpy as np

from backend.const import DOOR_EVENT_SLACK_MS
from backend.trips.reconciliation import (
    DetectedTrip,
    Evidence,
    Journey,
    LevelModel,
    decided_evidence,
    journeys_from_events,
)
from backend.trips.resolution import TokenResolver
from backend.trips.stops import stop_index
from simulator.offline import PhoneRows, VehicleData, sorted_events, vehicle_observations
from simulator.scoring import overlaps
from simulator.truth import TruthTrip

MISS_CAUSES: Final = ("unheard", "lost", "sparse", "level", "boarding", "other")
"""The causes a missed ride is put down to (module doc); ``lost`` is tested first."""

LEVEL_TERMS: Final = frozenset({"path_loss", "bus_levels", "stand_contrast"})
"""The ``Evidence.terms`` that say how loud a device was; the others (``hearing``, and
``phone``: what the phone reported) say how and whether it was heard."""


def cause_of(terms: Mapping[str, float], heard_at_boarding: bool) -> str:
    """The cause of a miss whose evidence over the ride's stretches sums to ``terms``
    (``Evidence.terms`` by name, summed), heard or not at its boarding stop (one of
    ``MISS_CAUSES`` after ``unheard`` and ``lost``)."""
    level = sum(v for name, v in terms.items() if name in LEVEL_TERMS)
    rest = sum(v for name, v in terms.items() if name not in LEVEL_TERMS)
    if rest <= 0:
        return "sparse"
    if rest + level < 0:
        return "level"
    if not heard_at_boarding:
        return "boarding"
    return "other"


class Span(Protocol):
    """A ride or a trip on one journey of one vehicle: a truth ride, or a trip bibo found."""

    @property
    def device_id(self) -> str | None: ...

    @property
    def vehicle_id(self) -> str: ...

    @property
    def journey_id(self) -> str: ...

    @property
    def board_stop_id(self) -> str: ...

    @property
    def board_time(self) -> int: ...

    @property
    def alight_stop_id(self) -> str: ...

    @property
    def alight_time(self) -> int: ...


Terms = dict[str, list[float]]
"""``Evidence.terms`` by name, one value per stretch of a span (empty: its bus's evidence has
no row for the device, or its journey or calls were not found)."""


def _call_index(journey: Journey, stop_id: str, t: int, after: int = -1) -> int | None:
    """The journey's call at ``stop_id`` after call ``after`` nearest in time to ``t``."""
    calls = [k for k, v in enumerate(journey.visits) if k > after and v.stop_id == stop_id]
    if not calls:
        return None
    return min(calls, key=lambda k: abs(journey.visits[k].arrival - t))


def _journey_of(ride: Span, journeys: Sequence[Journey]) -> int | None:
    """The index of the ride's journey: by its id, else (the bus lost the journey event)
    the one whose calls span the ride, give or take ``DOOR_EVENT_SLACK_MS`` (its stop
    events may be that early or late)."""
    for i, journey in enumerate(journeys):
        if journey.journey_id == ride.journey_id:
            return i
    for i, journey in enumerate(journeys):
        first, last = journey.visits[0].arrival, journey.visits[-1].arrival
        if first - DOOR_EVENT_SLACK_MS <= ride.board_time <= last + DOOR_EVENT_SLACK_MS:
            return i
    return None


def _span_evidence(
    span: Span,
    journeys: Sequence[Journey],
    evidence: Mapping[int, Evidence],
    device: int,
    stretches: int | None = None,
) -> tuple[str, Terms]:
    """The cause a span would be missed for (``cause_of``, or ``unheard``/``other``), and its
    evidence terms over the stretches it covers (``stretches`` from its boarding call where
    known, else to its alighting call)."""
    i = _journey_of(span, journeys)
    if i is None:
        return "other", {}  # its journey was not cut as the bus ran it
    journey, e = journeys[i], evidence.get(i)
    rows = np.flatnonzero(e.devices == device) if e is not None else np.zeros(0)
    if e is None or not rows.size:
        return "unheard", {}
    board = _call_index(journey, span.board_stop_id, span.board_time)
    if board is not None and stretches is not None:
        alight: int | None = board + stretches
    else:
        alight = (
            None
            if board is None
            else _call_index(journey, span.alight_stop_id, span.alight_time, board)
        )
    if board is None or alight is None:
        return "other", {}
    row = int(rows[0])
    sums = {name: float(v[row, board:alight].sum()) for name, v in e.terms}
    terms = {name: [round(float(x), 3) for x in v[row, board:alight]] for name, v in e.terms}
    return cause_of(sums, bool(e.heard_at_stop[row, board])), terms


def explain_spans(
    spans: Sequence[Span],
    vehicles: Sequence[VehicleData],
    resolver: TokenResolver,
    phones: PhoneRows,
    level_model: LevelModel,
    stretches: Sequence[int | None] = (),
) -> list[tuple[str, Terms]]:
    """Per span (in order): the cause it would be missed for and its evidence terms per
    stretch, read off the evidence its bus's journey was decoded on (``decided_evidence``);
    a span on a bus that sent nothing is ``unheard``. For a missed ride the cause is why
    bibo missed it; for a trip bibo charged a bystander the terms say what outweighed
    the rest. ``stretches`` gives, where known, how many stretches a span covers from its
    boarding stop (a trip bibo found: its ``stops_travelled``; one still riding at the end
    of the data covers the stretch under way, whose end is no call); else its alighting
    call says."""
    out: list[tuple[str, Terms]] = [("unheard", {}) for _ in spans]
    by_vehicle: dict[str, list[int]] = {}
    for k, span in enumerate(spans):
        by_vehicle.setdefault(span.vehicle_id, []).append(k)
    index = {device_id: i for i, device_id in enumerate(resolver.device_ids)}
    stops = stop_index()
    for data in vehicles:
        mine = by_vehicle.pop(data.vehicle_id, [])
        if not mine:
            continue
        obs, _ = vehicle_observations(data, resolver, phones.of_vehicle(data.vehicle_id))
        events = sorted_events(data)
        journeys = journeys_from_events(data.vehicle_id, events, stops, obs.data_end_ms)
        evidence = {i: e for i, _, e in decided_evidence(journeys, obs, level_model, 0)}
        for k in mine:
            device = index.get(spans[k].device_id or "", -1)
            n = stretches[k] if k < len(stretches) else None
            out[k] = _span_evidence(spans[k], journeys, evidence, device, n)
    return out


def explain_day(
    missed: Sequence[TruthTrip],
    charged: Sequence[DetectedTrip],
    trips: Sequence[DetectedTrip],
    losers: Container[str],
    vehicles: Sequence[VehicleData],
    resolver: TokenResolver,
    phones: PhoneRows,
    level_model: LevelModel,
) -> tuple[list[tuple[TruthTrip, str, Terms]], list[Terms]]:
    """Each of the ``missed`` rides (detectable, with a registered phone) with its cause
    (``MISS_CAUSES``; ``lost`` is tested first) and its evidence terms per stretch on its
    own bus, and the terms of each trip bibo ``charged`` a bystander (``explain_spans``,
    one pass over the buses for both), given bibo's ``trips`` of the day (the conflicts'
    ``losers`` among them) on the recorded ``vehicles``; ``resolver`` and ``phones`` as
    ``offline.region_resolvers`` returns them."""
    lost = [
        any(
            t.trip_id in losers
            and t.device_id == ride.device_id
            and t.vehicle_id == ride.vehicle_id
            and overlaps(t, ride)
            for t in trips
        )
        for ride in missed
    ]
    spans: list[Span] = [*missed, *charged]
    stretches = [None] * len(missed) + [t.stops_travelled for t in charged]
    explained = explain_spans(spans, vehicles, resolver, phones, level_model, stretches)
    rides = [
        (ride, "lost" if gone else cause, terms)
        for ride, gone, (cause, terms) in zip(missed, lost, explained[: len(missed)], strict=True)
    ]
    return rides, [terms for _, terms in explained[len(missed) :]]
