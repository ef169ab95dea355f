"""Why a trip got its confidence, for the trip page: the vehicle-day's data loaded as the
reconciliation loads it (``backend/trips/service.py``, ``reconcile_vehicle_day``) and the
trip explained by the pure ``reconciliation.explain_trip`` (nothing stored, nothing
decided)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from sqlalchemy.orm import Session

from backend import models
from backend.trips import repository as trips_repo
from backend.trips.reconciliation import (
    EVIDENCE_TERMS,
    Explanation,
    explain_trip,
    journeys_from_events,
    rebuild_plan,
)
from backend.trips.service import ResolverCache, vehicle_day_observations
from backend.trips.stops import stop_index


@dataclass(frozen=True, slots=True)
class Term:
    name: str
    meaning: str
    nats: float
    """Log-odds for "on board" this feature adds at the least certain stretch."""
    without: float
    """The confidence had this term been 0 (the others as they are)."""


@dataclass(frozen=True, slots=True)
class TripEvidence:
    explanation: Explanation
    board_stop_id: str
    """The stops the least certain stretch runs between."""
    alight_stop_id: str
    terms: list[Term]


def _logistic(x: float) -> float:
    return 1 / (1 + math.exp(-x)) if x >= 0 else math.exp(x) / (1 + math.exp(x))


def terms_of(explanation: Explanation) -> list[Term]:
    """The explanation's terms with what each means and the confidence without it."""
    total = explanation.log_odds
    return [
        Term(name, EVIDENCE_TERMS[name], nats, _logistic(total - nats))
        for name, nats in explanation.terms
    ]


def trip_evidence(
    session: Session, trip: models.Trip, resolvers: ResolverCache
) -> TripEvidence | None:
    """The trip's confidence explained from the data stored now (None: the data no longer
    make this trip, e.g. its sightings are past retention or its device is gone)."""
    resolver, _ = resolvers.get(session)
    if trip.device_id not in resolver.device_ids:
        return None
    journeys = journeys_from_events(
        trip.vehicle_id,
        trips_repo.vehicle_day_events(session, trip.service_day, trip.vehicle_id),
        stop_index(),
        trips_repo.vehicle_day_ends(session, trip.service_day, trip.vehicle_id).data_end,
    )
    mine = [
        i
        for i, j in enumerate(journeys)
        if j.journey_id == trip.journey_id and j.visits[0].arrival <= trip.board_time
    ]
    if not mine:
        return None
    # The journey and those its levels are learnt from, as a rebuild from its start reads.
    target = mine[-1]
    plan = rebuild_plan(journeys, journeys[target].visits[0].arrival)
    obs, _, _ = vehicle_day_observations(
        session, trip.service_day, trip.vehicle_id, plan.read_from, resolvers, resolver
    )
    explanation = explain_trip(
        journeys[plan.context_from : target + 1],
        obs,
        resolver.device_ids,
        trip.device_id,
        trip.board_time,
        context=plan.first - plan.context_from,
    )
    if explanation is None:
        return None
    visits = journeys[target].visits
    stretch = explanation.stretch
    return TripEvidence(
        explanation,
        visits[stretch].stop_id,
        visits[min(stretch + 1, len(visits) - 1)].stop_id,
        terms_of(explanation),
    )
