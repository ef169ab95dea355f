"""What detection errors cost: price true and detected trips per passenger-day.

The only simulator module that prices with ``fare_engine``, and only to evaluate: the
truth's price cannot come from the backend (it never sees the truth), and the naive
baseline and ``--trips`` files have no backend behind them. Both sides are priced the
same way, so the difference is the detection's alone.

The shipped tariff maps every stop of the built-in network; stops it does not know (a
GTFS import) are added here by municipality (the tariff's Tarifgebiet is the stop's
municipality) — the rule the tariff file states. Stops of a municipality the tariff does
not know make that passenger-day unpriceable (counted).
"""

from __future__ import annotations

import tempfile
import tomllib
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import fare_engine
from simulator.network import Network
from simulator.scoring import ScoredTrip
from simulator.truth import TruthTrip

TARIFF_ID = "ruhr_lippe_2026"


@dataclass(frozen=True)
class MoneyScores:
    """Euro error of a detection, per passenger-day (amounts in cents).

    ``mean_abs_error_cents`` averages |detected bill − true bill| over passenger-days
    with a true or detected trip; ``revenue_*`` sum the bills; ``unpriced`` counts
    passenger-days that could not be priced.
    """

    passenger_days: int
    mean_abs_error_cents: float | None
    overcharged: int
    undercharged: int
    revenue_true_cents: int
    revenue_detected_cents: int
    unpriced: int

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _shipped_text() -> str:
    return resources.files("fare_engine.tariffs").joinpath(f"{TARIFF_ID}.toml").read_text("utf-8")


class Pricer:
    """Best price of a passenger's trips with the shipped tariff, extended to ``network``."""

    def __init__(self, network: Network) -> None:
        text = _shipped_text()
        doc = tomllib.loads(text)
        known = {s["stop_id"] for s in doc.get("stops", [])}
        areas = {a["name"]: a["code"] for a in doc.get("areas", [])}
        extra: list[str] = []
        self.unmapped: set[str] = set()
        for stop in network.stops.values():
            if stop.stop_id in known:
                continue
            code = areas.get(stop.municipality)
            if code is None:
                self.unmapped.add(stop.stop_id)
                continue
            name = stop.name.replace("\\", "\\\\").replace('"', '\\"')
            extra.append(
                f'\n[[stops]]\nstop_id = "{stop.stop_id}"\nname = "{name}"\n'
                f'lat = {stop.lat}\nlon = {stop.lon}\narea = "{code}"\n'
            )
        self.added = len(extra)
        if extra:
            with tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / f"{TARIFF_ID}.toml"
                path.write_text(text + "".join(extra), "utf-8")
                self._tariffs = [fare_engine.load_tariff_file(path)]
        else:
            # As the backend bills: the zone tariff and eezy (whose stops match then).
            self._tariffs = fare_engine.default_tariffs()
        self._positions = [{sid: k for k, sid in enumerate(ln.stops)} for ln in network.lines]

    def stops_travelled(self, board: str, alight: str) -> int | None:
        """Stops between boarding and alighting on a line serving both (fewest), if any."""
        best: int | None = None
        for pos in self._positions:
            if board in pos and alight in pos:
                n = abs(pos[alight] - pos[board])
                best = n if best is None else min(best, n)
        return best

    def bill_cents(self, trips: Sequence[tuple[str, str, int, int, str]]) -> int | None:
        """Best price (cents) of (board stop, alight stop, board ms, alight ms, category)
        trips; None if the tariffs cannot price them.

        Priced like the backend bills: the cheapest mix over bibo's tariffs (Ruhr-Lippe,
        eezy, Deutschlandticket), with the stops travelled (Kurzstrecke); with stops the
        shipped tariff lacks (a GTFS import), over the extended Ruhr-Lippe tariff alone.
        """
        if not trips:
            return 0
        try:
            rides = [
                fare_engine.Trip(
                    board_stop_id=b,
                    alight_stop_id=a,
                    board_time=bt,
                    alight_time=max(at, bt + 1),
                    rider_category=cat,
                    stops_travelled=self.stops_travelled(b, a),
                )
                for b, a, bt, at, cat in sorted(trips, key=lambda x: x[2])
            ]
            return int(fare_engine.best_price_multi(rides, self._tariffs).total_cents)
        except (fare_engine.FareInputError, ValueError):
            return None


def money_scores(
    pricer: Pricer,
    truth_trips: Sequence[TruthTrip],
    detected: Sequence[ScoredTrip],
    person_of_device: Mapping[str, str],
    category_of_person: Mapping[str, str],
) -> MoneyScores:
    """Price each passenger-day's true and detected trips and compare."""
    true_by: dict[str, list[tuple[str, str, int, int, str]]] = defaultdict(list)
    det_by: dict[str, list[tuple[str, str, int, int, str]]] = defaultdict(list)
    for t in truth_trips:
        true_by[t.person_id].append(
            (t.board_stop_id, t.alight_stop_id, t.board_time, t.alight_time, t.rider_category)
        )
    for d in detected:
        person = person_of_device.get(d.device_id, f"?{d.device_id}")
        cat = category_of_person.get(person, "adult")
        det_by[person].append((d.board_stop_id, d.alight_stop_id, d.board_time, d.alight_time, cat))
    errors: list[int] = []
    over = under = unpriced = rev_t = rev_d = 0
    for person in sorted(set(true_by) | set(det_by)):
        truth_c = pricer.bill_cents(true_by.get(person, []))
        det_c = pricer.bill_cents(det_by.get(person, []))
        if truth_c is None or det_c is None:
            unpriced += 1
            continue
        rev_t += truth_c
        rev_d += det_c
        errors.append(abs(det_c - truth_c))
        over += det_c > truth_c
        under += det_c < truth_c
    return MoneyScores(
        passenger_days=len(errors) + unpriced,
        mean_abs_error_cents=sum(errors) / len(errors) if errors else None,
        overcharged=over,
        undercharged=under,
        revenue_true_cents=rev_t,
        revenue_detected_cents=rev_d,
        unpriced=unpriced,
    )
