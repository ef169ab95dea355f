"""Score detected trips against the ground truth: precision, recall, stops, bystanders.

Pure: no I/O. A detected trip matches a true trip of the same person (via its device) on
the same vehicle whose [board, alight] time span overlaps; matching is one-to-one, largest
overlap first. Rides whose phone was silent from the moment of boarding (its app had been
killed on an earlier ride) cannot be detected by anyone and are left out of the truth
(counted as ``undetectable``); rides whose phone fell silent mid-ride stay in.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Protocol

from simulator.truth import GroundTruth, TruthEncounter, TruthTrip


@dataclass(frozen=True, slots=True)
class ScoredTrip:
    """A trip as a reconciliation reconstructed it (times epoch ms)."""

    device_id: str
    vehicle_id: str
    journey_id: str
    board_stop_id: str
    board_time: int
    alight_stop_id: str
    alight_time: int
    alight_known_at: int | None = None
    """Data time from which the be-out was decided (the backend's closed trips), else None."""


@dataclass(frozen=True, slots=True)
class Scores:
    """Detection quality of one run.

    ``precision``/``recall``/``f1`` count matched trips; the stop accuracies are over
    matched trips (None when nothing matched), the alighting one over those whose alighting
    the phone could show (``alight_observable``). ``bystanders_charged`` counts detected trips
    with no true trip of that person on that vehicle at that time (``unknown_devices`` of
    them had a device id not in the mapping), ``bystanders_by_kind`` attributes them to the
    kind of the person's encounter with that bus (``none`` if there was none);
    ``split_or_duplicate`` counts unmatched detections that overlap a true trip already
    matched to another detection. ``per_1000_encounters`` is bystanders charged per
    thousand bystander encounters.
    """

    truth_trips: int
    detected_trips: int
    matched: int
    missed: int
    false_positives: int
    bystanders_charged: int
    split_or_duplicate: int
    unknown_devices: int
    precision: float
    recall: float
    f1: float
    board_stop_accuracy: float | None
    alight_stop_accuracy: float | None
    board_stop_correct: int
    alight_stop_correct: int
    journey_correct: int
    alight_unobservable: int = 0
    """Matched rides whose phone was silent at the alighting (left out of the alighting
    accuracy, see ``alight_observable``)."""
    alight_stop_accuracy_all: float | None = None
    """The alighting accuracy over every matched ride, unobservable ones included."""
    undetectable: int = 0
    bystander_encounters: int = 0
    per_1000_encounters: float | None = None
    bystanders_by_kind: dict[str, int] = field(default_factory=dict)
    encounters_by_kind: dict[str, int] = field(default_factory=dict)
    matched_pairs: tuple[tuple[int, int], ...] = field(default=(), repr=False)
    """(detected index, truth index) of every match (for latency and money)."""
    charged_trips: tuple[tuple[int, str], ...] = field(default=(), repr=False)
    """(detected index, kind) of every bystander charged (``bystanders_by_kind`` per trip)."""

    def as_dict(self) -> dict[str, object]:
        """Plain dict for JSON reports (without the match and bystander lists)."""
        doc = asdict(self)
        doc.pop("matched_pairs")
        doc.pop("charged_trips")
        return doc


def detectable(trip: TruthTrip) -> bool:
    """Whether the phone advertised at all during the ride."""
    return trip.phone_silent_from is None or trip.phone_silent_from > trip.board_time


def alight_observable(trip: TruthTrip) -> bool:
    """Whether the phone advertised when its rider got off. A phone silent from mid-ride to
    past the alighting leaves the bus nothing to tell that stop from the next ones: any
    method ends such a ride at the last stop the phone was heard at."""
    if trip.phone_silent_from is None:
        return True
    return trip.phone_silent_until is not None and trip.phone_silent_until <= trip.alight_time


def _overlap_ms(d: ScoredTrip, t: TruthTrip) -> int:
    return min(d.alight_time, t.alight_time) - max(d.board_time, t.board_time)


class Ride(Protocol):
    """Anything ridden from ``board_time`` to ``alight_time`` (epoch ms)."""

    @property
    def board_time(self) -> int: ...

    @property
    def alight_time(self) -> int: ...


def overlaps(d: Ride, t: Ride) -> bool:
    """Closed-interval overlap, so a zero-length detection at a true instant still counts."""
    return max(d.board_time, t.board_time) <= min(d.alight_time, t.alight_time)


def _kind_of(d: ScoredTrip, person: str | None, encounters: Sequence[TruthEncounter]) -> str:
    """Kind of the person's encounter with the detection's vehicle nearest in time."""
    best: tuple[int, str] | None = None
    for e in encounters:
        if e.person_id != person or e.vehicle_id != d.vehicle_id:
            continue
        end = max(e.t_end, e.t)
        gap = max(0, e.t - d.alight_time, d.board_time - end)
        if best is None or gap < best[0]:
            best = (gap, e.kind)
    return best[1] if best is not None else "none"


def score(
    truth: GroundTruth,
    detected: Sequence[ScoredTrip],
    person_of_device: Mapping[str, str],
) -> Scores:
    """Match ``detected`` to the detectable ``truth.trips`` and compute the scores.

    ``person_of_device`` maps a device id to the simulator's person id.
    """
    trips = [t for t in truth.trips if detectable(t)]
    truth_by_key: dict[tuple[str, str], list[int]] = defaultdict(list)
    for i, t in enumerate(trips):
        truth_by_key[(t.person_id, t.vehicle_id)].append(i)
    # Rides left out as undetectable still make an overlapping detection "not a bystander".
    all_by_key: dict[tuple[str, str], list[TruthTrip]] = defaultdict(list)
    for t in truth.trips:
        all_by_key[(t.person_id, t.vehicle_id)].append(t)

    candidates: list[tuple[int, int, int]] = []  # (-overlap, detected idx, truth idx)
    overlapping: list[bool] = []
    unknown = 0
    for k, d in enumerate(detected):
        person = person_of_device.get(d.device_id)
        if person is None:
            unknown += 1
        key = (person or "", d.vehicle_id)
        hits = [i for i in truth_by_key.get(key, []) if overlaps(d, trips[i])]
        overlapping.append(any(overlaps(d, t) for t in all_by_key.get(key, [])))
        candidates.extend((-_overlap_ms(d, trips[i]), k, i) for i in hits)
    candidates.sort()

    pairs: dict[int, int] = {}
    used_truth: set[int] = set()
    for _, k, i in candidates:
        if k in pairs or i in used_truth:
            continue
        pairs[k] = i
        used_truth.add(i)

    matched = len(pairs)
    n_truth, n_det = len(trips), len(detected)
    unmatched = [k for k in range(n_det) if k not in pairs]
    charged = [k for k in unmatched if not overlapping[k]]
    by_person: dict[str, list[TruthEncounter]] = defaultdict(list)
    for e in truth.bystander_encounters:
        by_person[e.person_id].append(e)
    charged_kinds = [
        _kind_of(
            detected[k],
            person_of_device.get(detected[k].device_id),
            by_person.get(person_of_device.get(detected[k].device_id, ""), []),
        )
        for k in charged
    ]
    kinds = Counter(charged_kinds)
    board_ok = sum(
        1 for k, i in pairs.items() if detected[k].board_stop_id == trips[i].board_stop_id
    )
    alight_ok_all = sum(
        1 for k, i in pairs.items() if detected[k].alight_stop_id == trips[i].alight_stop_id
    )
    observable = [(k, i) for k, i in pairs.items() if alight_observable(trips[i])]
    alight_ok = sum(
        1 for k, i in observable if detected[k].alight_stop_id == trips[i].alight_stop_id
    )
    journey_ok = sum(1 for k, i in pairs.items() if detected[k].journey_id == trips[i].journey_id)
    precision = matched / n_det if n_det else 1.0
    recall = matched / n_truth if n_truth else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    n_enc = len(truth.bystander_encounters)
    # Map back to indexes of truth.trips, the list callers hold.
    full_index = {id(t): i for i, t in enumerate(truth.trips)}
    return Scores(
        truth_trips=n_truth,
        detected_trips=n_det,
        matched=matched,
        missed=n_truth - matched,
        false_positives=n_det - matched,
        bystanders_charged=len(charged),
        split_or_duplicate=len(unmatched) - len(charged),
        unknown_devices=unknown,
        precision=precision,
        recall=recall,
        f1=f1,
        board_stop_accuracy=board_ok / matched if matched else None,
        alight_stop_accuracy=alight_ok / len(observable) if observable else None,
        board_stop_correct=board_ok,
        alight_stop_correct=alight_ok,
        alight_unobservable=matched - len(observable),
        alight_stop_accuracy_all=alight_ok_all / matched if matched else None,
        journey_correct=journey_ok,
        undetectable=len(truth.trips) - n_truth,
        bystander_encounters=n_enc,
        per_1000_encounters=1000 * len(charged) / n_enc if n_enc else None,
        bystanders_by_kind=dict(sorted(kinds.items())),
        encounters_by_kind=dict(
            sorted(Counter(e.kind for e in truth.bystander_encounters).items())
        ),
        matched_pairs=tuple(sorted((k, full_index[id(trips[i])]) for k, i in pairs.items())),
        charged_trips=tuple(zip(charged, charged_kinds, strict=True)),
    )
