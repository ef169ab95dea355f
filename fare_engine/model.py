"""The tariff file format (versions 1 and 2) as frozen pydantic value objects.

Every price, level, period and rule carries a provenance: `source` + `year`
for a published fact, or `assumed` with the reasoning (optionally together
with the `source` + `year` it was derived from). In matching fields `None`
means "any".

Version 2 adds the product kinds `pass` (24 h / N-day / week / month tickets
and caps), `distance` (eezy-style check-in/check-out fares) and the level
fields for Kurzstrecke; a version-1 file is read unchanged.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, model_validator

Cents = Annotated[StrictInt, Field(ge=0)]
"""An amount of money in integer cents of the tariff's currency."""

Currency = Literal["EUR", "GBP", "USD"]
Mode = Literal["bus", "tram", "light_rail", "rail"]
Weekday = Literal["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
WEEKDAYS: tuple[Weekday, ...] = (
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
)


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Provenance(_Frozen):
    """Where a value comes from: published (`source` + `year`) or `assumed` (reasoning)."""

    source: str | None = None
    year: Annotated[StrictInt, Field(ge=1990, le=2100)] | None = None
    assumed: str | None = None

    @model_validator(mode="after")
    def _has_provenance(self) -> Provenance:
        if self.assumed is not None:
            if not self.assumed.strip():
                raise ValueError("'assumed' must give the reasoning, not be empty")
            return self
        if not self.source or self.year is None:
            raise ValueError(
                "provenance missing: give 'source' and 'year' for a published value, "
                "or 'assumed' with the reasoning"
            )
        return self

    @property
    def is_assumed(self) -> bool:
        return self.assumed is not None

    def provenance_text(self) -> str:
        """One line saying where the value comes from."""
        base = f"{self.source} ({self.year})" if self.source else ""
        if self.assumed is None:
            return base
        return f"assumed: {self.assumed}" + (f" [based on {base}]" if base else "")


class RiderSpec(Provenance):
    """A rider category (adult, child, infant …) with its age range in years."""

    id: str
    name: str
    min_age: int | None = None
    max_age: int | None = None
    prices_as: str | None = None
    """Another rider category this one is priced as wherever a product does not name it
    (in `riders`, a price's `rider` or a distance product's `rider_percent`): e.g.
    `adult_sozial` (eligible for the Deutschlandticket Sozial) buys everything else as an
    `adult`. One step only: the category named must not have `prices_as` itself."""


class Relation(StrEnum):
    """How the start and destination Tarifgebiete relate (nested from narrow to wide)."""

    SAME_AREA = "same_area"
    NEIGHBOURING_AREAS = "neighbouring_areas"
    SAME_KREIS = "same_kreis"
    SAME_TEILRAUM = "same_teilraum"


class LevelSpec(Provenance):
    """A price level (Preisstufe); `rank` orders levels, a ticket covers any lower rank.

    A level with `max_further_stops` is a Kurzstrecke: it is not given by the
    level rules but by the ride itself (boarding stop + up to that many further
    stops, only in `modes`). `pass_scope` says how far a pass (TagesTicket24,
    7/30TageTicket) of this level reaches from the relation it is bought for.
    """

    code: str
    rank: int
    validity_minutes: Annotated[StrictInt, Field(gt=0)]
    max_further_stops: Annotated[StrictInt, Field(ge=1)] | None = None
    modes: list[Mode] | None = None
    changes: bool = True
    """May a single ticket of this level cover a change of vehicle?"""
    pass_scope: Relation | None = None


class LevelRule(Provenance):
    """Gives `level` to a start/destination pair matching every non-None dimension."""

    level: str
    relation: Relation | None = None
    from_area: str | None = None
    to_area: str | None = None
    from_kreis: str | None = None
    to_kreis: str | None = None


class AreaSpec(Provenance):
    """A Tarifgebiet (one municipality, or a fare zone); the provenance is that of its `code`."""

    code: str
    name: str
    kreis: str | None = None
    teilraum: str | None = None


class NeighbourSpec(Provenance):
    """Two Tarifgebiete that count as neighbouring towns (level 3), in either direction."""

    areas: tuple[str, str]


class StopSpec(_Frozen):
    """A stop (DHID) with WGS84 coordinates and its Tarifgebiet code."""

    stop_id: str
    name: str
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    area: str | None = None


class PriceEntry(Provenance):
    """One price of a product; `level`/`rider`/`areas` None means any level/rider/area.

    `areas` (pass products only) makes the entry a pass valid in exactly those
    Tarifgebiete / zones, e.g. London's zones 1-2 cap.
    """

    level: str | None = None
    rider: str | None = None
    areas: list[str] | None = None
    cents: Cents
    name: str | None = None
    """The name the product is sold under at this price, if not the product's name
    (e.g. a bicycle's ticket); shown on the bill."""


class _ProductBase(_Frozen):
    id: str
    name: str
    riders: list[str] | None = None
    """Rider categories that may buy the product (None = all); each needs a price."""
    prices: list[PriceEntry] = Field(min_length=1)


class SingleProduct(_ProductBase):
    """A single ticket priced by level; covers a chain of trips within its validity."""

    kind: Literal["single"]
    allow_return_trip: bool = False


class CalendarMonthProduct(_ProductBase):
    """A ticket valid for one calendar month in the tariff's time zone (Deutschlandticket)."""

    kind: Literal["calendar_month"]


class PeriodKind(StrEnum):
    """How a pass's validity window is placed in time."""

    ROLLING = "rolling"
    """`minutes` from the boarding time of the first trip it covers (TagesTicket24, eezy 24 h)."""
    DAYS = "days"
    """`days` whole days from `day_starts_at` on a freely chosen start day (7/30TageTicket)."""
    WEEK = "week"
    """A calendar week from `week_starts_on` at `day_starts_at` (London's weekly cap)."""
    MONTH = "month"
    """A calendar month from the 1st at `day_starts_at` (Deutschlandticket, eezy month cap)."""


class PeriodSpec(Provenance):
    """The validity window of a pass or cap, in the tariff's local time."""

    kind: PeriodKind
    minutes: Annotated[StrictInt, Field(gt=0)] | None = None
    days: Annotated[StrictInt, Field(gt=0)] | None = None
    day_starts_at: dt.time = dt.time(0, 0)
    week_starts_on: Weekday = "monday"
    trips_must_end_inside: bool = False
    """A trip that does not end inside the window is not covered (eezy: it opens a new one)."""

    @model_validator(mode="after")
    def _fields_fit_kind(self) -> PeriodSpec:
        if (self.kind is PeriodKind.ROLLING) != (self.minutes is not None):
            raise ValueError("'minutes' is required for kind 'rolling' and only allowed there")
        if (self.kind is PeriodKind.DAYS) != (self.days is not None):
            raise ValueError("'days' is required for kind 'days' and only allowed there")
        if self.day_starts_at.tzinfo is not None:
            raise ValueError("'day_starts_at' is a local wall-clock time without offset")
        return self


class GroupSpec(Provenance):
    """A pass for more than its holder (a party riding together).

    - `persons = 1` with `free_riders`/`free_count`: a one-person ticket on which up to
      `free_count` companions of the categories `free_riders` ride free with the holder
      (TagesTicket24: up to 3 children up to 14). The ticket is also an ordinary pass.
    - `persons > 1`: a ticket for up to `persons` people of the categories in the
      product's `riders` (TagesTicket24 for 5 persons); priced per level without a
      `rider`, and only offered to a party.
    """

    persons: Annotated[StrictInt, Field(ge=1, le=10)] = 1
    free_riders: list[str] = Field(default_factory=list)
    free_count: Annotated[StrictInt, Field(ge=0, le=9)] = 0


class PassProduct(_ProductBase):
    """A ticket or cap valid for every trip inside its window and scope.

    A cap ("you pay at most X for the trips billed under product Y in a
    period") is the same thing seen from the other side: the cheapest bill
    either pays those trips one by one or buys the cap for X. `caps` names Y;
    the cap then covers only trips Y can price.
    """

    kind: Literal["pass"]
    period: PeriodSpec
    caps: str | None = None
    group: GroupSpec | None = None
    """Set for a ticket that covers a party (see `GroupSpec`)."""


class RiderPercent(Provenance):
    """A rider category pays `percent` % of the adult distance fare (child −50 %: 50)."""

    rider: str
    percent: Annotated[StrictInt, Field(ge=0, le=100)]


class Amount(Provenance):
    """A money amount with its provenance."""

    cents: Cents


class DistanceProduct(_Frozen):
    """A check-in/check-out fare: base + rate per started straight-line km (eezy).

    The km are the great-circle distance between boarding and alighting stop,
    rounded up to whole started km.
    """

    kind: Literal["distance"]
    id: str
    name: str
    base: Amount
    per_started_km: Amount
    rider_percent: list[RiderPercent] = Field(min_length=1)
    same_stop_free: Provenance | None = None
    """If set, checking in and out at the same stop costs nothing."""
    split_round_trips: Provenance | None = None
    """If set, a trip with a `farthest_stop_id` is priced as two trips split there."""
    check_in_across_changes: Provenance | None = None
    """If set, rides joined by a change of vehicle (`Trip.joins_previous`) may be priced
    as one check-in, start to end (the rule in `fare_engine.instance`); each ride's own
    fare stays an option."""


Product = Annotated[
    SingleProduct | CalendarMonthProduct | PassProduct | DistanceProduct,
    Field(discriminator="kind"),
]


class TariffFile(_Frozen):
    """The whole tariff file, as written on disk."""

    version: Literal[1, 2]
    """File format version (docs/style.md, Versioned persisted shapes); version 1 lacks the
    version-2 product kinds."""
    tariff_id: str
    name: str
    currency: Currency
    valid_from: dt.date
    valid_to: dt.date
    timezone: str
    stops_from: str | None = None
    """Shipped tariff whose stops (with coordinates) this tariff prices, instead of `stops`."""
    riders: list[RiderSpec] = Field(min_length=1)
    levels: list[LevelSpec] = Field(default_factory=list)
    level_rules: list[LevelRule] = Field(default_factory=list)
    areas: list[AreaSpec] = Field(default_factory=list)
    neighbours: list[NeighbourSpec] = Field(default_factory=list)
    stops: list[StopSpec] = Field(default_factory=list)
    products: list[Product] = Field(min_length=1)
