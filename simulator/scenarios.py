"""The scenario library: named, seeded days, one per bystander case plus an ordinary weekday.

Each case scenario puts one kind of bystander in front of the buses (besides the riders'
own waits at stops, which every scenario has), so its score isolates that case; the
``ordinary-weekday`` mixes them all at plausible rates. ``clean`` is the walking skeleton's
easy day; ``region-day`` is the full three-county day of the scale benchmark (recorded
with the fast recorder). The scenarios are not tuned to any reconciliation.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from typing import Final

from onboard.const import UPLOAD_INTERVAL_MS
from simulator.const import BYSTANDER_KINDS_MIXED, LIBRARY_UPLOAD_INTERVAL_MS
from simulator.day import DayConfig

DEFAULT_DAY: Final = dt.date(2026, 11, 17)
"""A Tuesday in term time: an ordinary weekday, fixed so a seed always means the same day."""

SOEST_HUB_LINES: Final = ("C1", "C2", "R60", "R61", "R64", "R71")
"""Lines meeting at Soest, Bahnhof and sharing the corridor to the Markt."""


@dataclass(frozen=True, slots=True)
class Scenario:
    """A named day: its configuration, seeds, and how it is recorded."""

    name: str
    description: str
    config: DayConfig
    seed: int
    recorder: str = "agent"
    upload_interval_ms: int = LIBRARY_UPLOAD_INTERVAL_MS
    compress: bool = False
    in_library: bool = True
    """Whether ``bibo simulate library`` records it (the region day is too big)."""

    @property
    def radio_seed(self) -> int:
        """The radio's seed: derived from the plan's, so one number names the run."""
        return self.seed * 7919 + 17

    def with_seed(self, seed: int) -> Scenario:
        """The same scenario with another seed."""
        return replace(self, seed=seed)


_T = dt.time

SCENARIOS: Final[dict[str, Scenario]] = {
    s.name: s
    for s in (
        Scenario(
            "ordinary-weekday",
            "An ordinary weekday around the Soest hub: commuters, pupils, shoppers, "
            "transfers, reinforcement buses in the school peak, and every kind of "
            "bystander at plausible rates.",
            DayConfig(
                service_day=DEFAULT_DAY,
                lines=("R61", "C1", "C2", "R60", "R64", "R71"),
                buses=8,
                convoys=2,
                passengers=650,
                bystanders=260,
                service_start=_T(6, 0),
                service_end=_T(19, 0),
                bystander_kinds=BYSTANDER_KINDS_MIXED,
            ),
            seed=4101,
        ),
        Scenario(
            "stop-wait",
            "People lingering at stops (waiting for a lift, at the kiosk) who never board.",
            DayConfig(
                service_day=DEFAULT_DAY,
                lines=("R61", "C2"),
                buses=3,
                passengers=140,
                bystanders=160,
                service_start=_T(6, 30),
                service_end=_T(9, 30),
                bystander_kinds=(("stop_wait", 1.0),),
            ),
            seed=4102,
        ),
        Scenario(
            "hub-transfer",
            "People at the Soest hub waiting for another bus while this one stands there.",
            DayConfig(
                service_day=DEFAULT_DAY,
                lines=("C1", "C2", "R60", "R64"),
                buses=4,
                passengers=160,
                bystanders=120,
                service_start=_T(6, 30),
                service_end=_T(9, 30),
                bystander_kinds=(("hub_wait", 1.0),),
            ),
            seed=4103,
        ),
        Scenario(
            "alongside",
            "Cars and cyclists alongside the bus at red lights and in slow peak traffic.",
            DayConfig(
                service_day=DEFAULT_DAY,
                lines=("C1", "C2", "C41"),
                buses=3,
                passengers=140,
                bystanders=220,
                service_start=_T(6, 45),
                service_end=_T(9, 30),
                bystander_kinds=(("alongside_car", 0.6), ("alongside_bike", 0.4)),
            ),
            seed=4104,
        ),
        Scenario(
            "trailing-car",
            "A car trailing the bus for several stops on country roads, waiting behind it "
            "at every stop.",
            DayConfig(
                service_day=DEFAULT_DAY,
                lines=("R61", "R60", "R63"),
                buses=3,
                passengers=140,
                bystanders=90,
                service_start=_T(6, 30),
                service_end=_T(9, 30),
                bystander_kinds=(("trailing_car", 1.0),),
            ),
            seed=4105,
        ),
        Scenario(
            "bus-beside",
            "Buses of several lines standing side by side at the Soest hub for minutes, "
            "each with its own riders on board.",
            DayConfig(
                service_day=DEFAULT_DAY,
                lines=("C1", "C2", "R60", "R61", "R64", "R71"),
                buses=6,
                passengers=240,
                bystanders=0,
                service_start=_T(6, 30),
                service_end=_T(9, 0),
                bystander_kinds=(),
            ),
            seed=4106,
        ),
        Scenario(
            "bunched",
            "Reinforcement buses of the same line running right behind the regular bus in "
            "the school peak (bunching), both full of pupils.",
            DayConfig(
                service_day=DEFAULT_DAY,
                lines=("R61", "R60"),
                buses=2,
                convoys=4,
                passengers=200,
                bystanders=0,
                service_start=_T(6, 15),
                service_end=_T(8, 45),
                bystander_kinds=(),
            ),
            seed=4107,
        ),
        Scenario(
            "clean",
            "The walking skeleton's easy day: three lines in three counties, people at stops "
            "and passers-by only, no phone outages, no incidents.",
            DayConfig(
                service_day=DEFAULT_DAY,
                lines=("R61", "S20", "R55"),
                buses=3,
                passengers=120,
                bystanders=40,
                service_start=_T(6, 0),
                service_end=_T(10, 0),
                incident_prob=0.0,
                phone_outage_prob=0.0,
                bystander_kinds=(("stop_wait", 0.6), ("walk_past", 0.4)),
            ),
            seed=4108,
        ),
        Scenario(
            "region-day",
            "A full service day of all three counties: every line, 620 buses, reinforcement "
            "buses, about 120,000 rides, every kind of bystander (the scale benchmark).",
            DayConfig(
                service_day=DEFAULT_DAY,
                buses=620,
                convoys=40,
                passengers=48_000,
                bystanders=10_000,
                bystander_kinds=BYSTANDER_KINDS_MIXED,
            ),
            seed=4199,
            recorder="fast",
            upload_interval_ms=UPLOAD_INTERVAL_MS,
            compress=True,
            in_library=False,
        ),
    )
}


def scenario(name: str) -> Scenario:
    """The scenario called ``name`` (KeyError lists the known ones)."""
    try:
        return SCENARIOS[name]
    except KeyError:
        known = ", ".join(SCENARIOS)
        raise KeyError(f"unknown scenario {name!r}; known: {known}") from None


def library() -> list[Scenario]:
    """The scenarios ``bibo simulate library`` records, in a fixed order."""
    return [s for s in SCENARIOS.values() if s.in_library]
