"""The tariff file format (version 1) as frozen pydantic value objects.

Every price, level and rule carries a provenance: `source` + `year` for a
published fact, or `assumed` with the reasoning (optionally together with the
`source` + `year` it was derived from). In matching fields `None` means "any".
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, model_validator

Cents = Annotated[StrictInt, Field(ge=0)]
"""An amount of money in integer euro cents."""


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


class LevelSpec(Provenance):
    """A price level (Preisstufe); `rank` orders levels, a ticket covers any lower rank."""

    code: str
    rank: int
    validity_minutes: Annotated[StrictInt, Field(gt=0)]


class Relation(StrEnum):
    """How the start and destination Tarifgebiete relate (nested from narrow to wide)."""

    SAME_AREA = "same_area"
    NEIGHBOURING_AREAS = "neighbouring_areas"
    SAME_KREIS = "same_kreis"
    SAME_TEILRAUM = "same_teilraum"


class LevelRule(Provenance):
    """Gives `level` to a start/destination pair matching every non-None dimension."""

    level: str
    relation: Relation | None = None
    from_area: str | None = None
    to_area: str | None = None
    from_kreis: str | None = None
    to_kreis: str | None = None


class AreaSpec(Provenance):
    """A Tarifgebiet (one municipality); the provenance is that of its `code`."""

    code: str
    name: str
    kreis: str
    teilraum: str


class NeighbourSpec(Provenance):
    """Two Tarifgebiete that count as neighbouring towns (level 3), in either direction."""

    areas: tuple[str, str]


class StopSpec(_Frozen):
    """A stop (DHID) with WGS84 coordinates and its Tarifgebiet code."""

    stop_id: str
    name: str
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    area: str


class PriceEntry(Provenance):
    """One price of a product; `level`/`rider` None means any level/rider."""

    level: str | None = None
    rider: str | None = None
    cents: Cents


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


Product = Annotated[SingleProduct | CalendarMonthProduct, Field(discriminator="kind")]
"""Future kinds (rolling 24 h / 7 / 30 days, distance tariff with caps) join this union."""


class TariffFile(_Frozen):
    """The whole tariff file, as written on disk."""

    version: Literal[1]
    tariff_id: str
    name: str
    currency: Literal["EUR"]
    valid_from: dt.date
    valid_to: dt.date
    timezone: str
    riders: list[RiderSpec] = Field(min_length=1)
    levels: list[LevelSpec] = Field(min_length=1)
    level_rules: list[LevelRule] = Field(min_length=1)
    areas: list[AreaSpec] = Field(min_length=1)
    neighbours: list[NeighbourSpec] = Field(default_factory=list)
    stops: list[StopSpec] = Field(min_length=1)
    products: list[Product] = Field(min_length=1)
