"""The evidence breakdown on the trip page: each trip's confidence split into log-odds by
feature, computed by a pure function from the reconciliation's own inputs, adding up to the
stored confidence, and changing no decision."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

from backend.db import make_sessionmaker
from backend.operators import evidence as operators_evidence
from backend.trips import reconciliation
from backend.trips import repository as trips_repo
from tests.backend.conftest import RIDE_DAYS
from tests.web.conftest import login


def _logistic(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def _stored_trips(engine):
    with make_sessionmaker(engine)() as session:
        return [t for day in RIDE_DAYS for t in trips_repo.day_trips(session, day)]


async def test_the_terms_add_up_to_each_stored_confidence(client, app, engine, riders, clock):
    trips = _stored_trips(engine)
    assert len(trips) == 6
    with make_sessionmaker(engine)() as session:
        for trip in trips:
            found = operators_evidence.trip_evidence(session, trip, app.state.resolvers)
            assert found is not None, trip.trip_id
            x = found.explanation
            assert round(x.confidence, 4) == trip.confidence
            assert _logistic(x.log_odds) == pytest.approx(x.confidence, abs=1e-12)
            features = [v for name, v in x.terms if name != "journey"]
            assert sum(features) == pytest.approx(x.stretch_llr, abs=1e-9)
            assert x.terms[0][0] == "hearing"
            assert x.terms[-1][0] == "journey"
            # "Confidence without it" is the logistic of the rest.
            for term in found.terms:
                assert term.without == pytest.approx(_logistic(x.log_odds - term.nats))


async def test_the_trip_page_shows_the_breakdown(client, engine, riders, clock):
    await login(client, engine, "viewer")
    trip = _stored_trips(engine)[0]
    page = (await client.get(f"/ops/trips/{trip.trip_id}")).text
    section = re.search(r'<section class="card evidence">(.*?)</section>', page, re.S).group(1)
    nats = {k: float(v) for k, v in re.findall(r'data-term="(\w+)" data-nats="([-\d.]+)"', section)}
    assert set(nats) >= {"hearing", "path_loss", "journey"}
    assert set(nats) <= set(reconciliation.EVIDENCE_TERMS)
    log_odds = float(re.search(r'data-log-odds="([-\d.]+)"', section).group(1))
    assert sum(nats.values()) == pytest.approx(log_odds, abs=1e-5)
    assert round(_logistic(log_odds), 4) == pytest.approx(trip.confidence, abs=1e-4)
    assert "not the" not in section  # the data did not change since


def test_explaining_is_the_posterior_of_the_weakest_stretch():
    """A hand-made journey of five stretches: the decoder's posterior is explained term by
    term, and journey_trips decides the same with or without the terms kept."""
    hearing = np.array([[-3.0, 4.0, 0.4, 5.0, -6.0]])
    level = np.array([[0.0, 1.5, 0.2, 1.0, -2.0]])
    llr = hearing + level
    evidence = reconciliation.Evidence(
        np.array([0], dtype=np.int32),
        llr,
        np.array([[False, True, False, False, False]]),
        np.zeros((1, 5), dtype=bool),
        np.zeros((1, 5)),
        level,
        np.full((1, 5), np.nan),
        np.zeros((1, 5), dtype=bool),
        (("hearing", hearing), ("path_loss", level)),
    )
    path, posterior = reconciliation.decode(
        evidence.llr, evidence.heard_at_stop, evidence.alongside_before
    )
    assert path[0].tolist() == [False, True, True, True, False]
    x = reconciliation.explain_confidence(evidence, 0, 1, 3)
    s = 1 + int(np.argmin(posterior[0, 1:4]))
    assert x.stretch == s
    assert x.confidence == posterior[0, s]
    assert dict(x.terms)["hearing"] == pytest.approx(hearing[0, s])
    assert dict(x.terms)["path_loss"] == pytest.approx(level[0, s])
    assert x.stretch_llr == pytest.approx(llr[0, s])
    assert _logistic(x.log_odds) == pytest.approx(x.confidence)
    # The journey term is what the other stretches say: more evidence there, more of it.
    stronger = reconciliation.Evidence(
        evidence.devices,
        llr + np.array([[0.0, 3.0, 0.0, 3.0, 0.0]]),
        *[getattr(evidence, f) for f in ("heard_at_stop", "alongside_before", "level")],
        evidence.level_llr,
        evidence.tx,
        evidence.confident,
        evidence.terms,
    )
    y = reconciliation.explain_confidence(stronger, 0, 1, 3)
    assert dict(y.terms)["journey"] > dict(x.terms)["journey"]
    without = reconciliation.Evidence(
        *[
            getattr(evidence, f)
            for f in (
                "devices",
                "llr",
                "heard_at_stop",
                "alongside_before",
                "level",
                "level_llr",
                "tx",
                "confident",
            )
        ]
    )
    assert np.array_equal(
        reconciliation.decode(without.llr, without.heard_at_stop, without.alongside_before)[1],
        posterior,
    )
