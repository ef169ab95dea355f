"""Score detected trips against the ground truth: precision, recall, stop accuracy, bystanders.

Pure: no I/O. A detected trip matches a true trip of the same person (via its device) on
the same vehicle whose [board, alight] time span overlaps; matching is one-to-one, largest
overlap first.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

from simulator.truth import GroundTruth, TruthTrip


@dataclass(frozen=True, slots=True)
class DetectedTrip:
    """A trip as the backend reconstructed it (times epoch ms)."""

    device_id: str
    vehicle_id: str
    journey_id: str
    board_stop_id: str
    board_time: int
    alight_stop_id: str
    alight_time: int


@dataclass(frozen=True, slots=True)
class Scores:
    """Detection quality of one run.

    ``precision``/``recall``/``f1`` count matched trips; the stop accuracies are over
    matched trips (None when nothing matched). ``bystanders_charged`` counts detected trips
    with no true trip of that person on that vehicle at that time (``unknown_devices`` of
    them had a device id not in the mapping); ``split_or_duplicate`` counts unmatched
    detections that do overlap a true trip already matched to another detection.
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

    def as_dict(self) -> dict[str, int | float | None]:
        """Plain dict for JSON reports."""
        return asdict(self)


def _overlap_ms(d: DetectedTrip, t: TruthTrip) -> int:
    return min(d.alight_time, t.alight_time) - max(d.board_time, t.board_time)


def _overlaps(d: DetectedTrip, t: TruthTrip) -> bool:
    """Closed-interval overlap, so a zero-length detection at a true instant still counts."""
    return max(d.board_time, t.board_time) <= min(d.alight_time, t.alight_time)


def score(
    truth: GroundTruth,
    detected: Sequence[DetectedTrip],
    person_of_device: Mapping[str, str],
) -> Scores:
    """Match ``detected`` to ``truth.trips`` and compute the scores.

    ``person_of_device`` maps a backend device id to the simulator's person id.
    """
    truth_by_key: dict[tuple[str, str], list[int]] = defaultdict(list)
    for i, t in enumerate(truth.trips):
        truth_by_key[(t.person_id, t.vehicle_id)].append(i)

    candidates: list[tuple[int, int, int]] = []  # (-overlap, detected idx, truth idx)
    overlapping: list[bool] = []
    unknown = 0
    for k, d in enumerate(detected):
        person = person_of_device.get(d.device_id)
        if person is None:
            unknown += 1
        hits = [
            i
            for i in truth_by_key.get((person or "", d.vehicle_id), [])
            if _overlaps(d, truth.trips[i])
        ]
        overlapping.append(bool(hits))
        candidates.extend((-_overlap_ms(d, truth.trips[i]), k, i) for i in hits)
    candidates.sort()

    pairs: dict[int, int] = {}
    used_truth: set[int] = set()
    for _, k, i in candidates:
        if k in pairs or i in used_truth:
            continue
        pairs[k] = i
        used_truth.add(i)

    matched = len(pairs)
    n_truth, n_det = len(truth.trips), len(detected)
    unmatched = [k for k in range(n_det) if k not in pairs]
    bystanders = sum(1 for k in unmatched if not overlapping[k])
    board_ok = sum(
        1 for k, i in pairs.items() if detected[k].board_stop_id == truth.trips[i].board_stop_id
    )
    alight_ok = sum(
        1 for k, i in pairs.items() if detected[k].alight_stop_id == truth.trips[i].alight_stop_id
    )
    journey_ok = sum(
        1 for k, i in pairs.items() if detected[k].journey_id == truth.trips[i].journey_id
    )
    precision = matched / n_det if n_det else 1.0
    recall = matched / n_truth if n_truth else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return Scores(
        truth_trips=n_truth,
        detected_trips=n_det,
        matched=matched,
        missed=n_truth - matched,
        false_positives=n_det - matched,
        bystanders_charged=bystanders,
        split_or_duplicate=len(unmatched) - bystanders,
        unknown_devices=unknown,
        precision=precision,
        recall=recall,
        f1=f1,
        board_stop_accuracy=board_ok / matched if matched else None,
        alight_stop_accuracy=alight_ok / matched if matched else None,
        board_stop_correct=board_ok,
        alight_stop_correct=alight_ok,
        journey_correct=journey_ok,
    )
