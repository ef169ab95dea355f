"""Loading and checking tariff files, and the read-only `Tariff` the engine prices with.

The only I/O of the fare engine: reading a tariff file, either a shipped one
(`load_tariff`, via importlib.resources) or any path (`load_tariff_file`).
"""

from __future__ import annotations

import datetime as dt
import functools
import re
import tomllib
from collections.abc import Callable, Sequence
from importlib import resources
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, ValidationError

from fare_engine.const import DEFAULT_TARIFF_ID, TARIFF_PACKAGE
from fare_engine.errors import TariffError
from fare_engine.levels import first_matching_rule
from fare_engine.model import (
    AreaSpec,
    CalendarMonthProduct,
    LevelSpec,
    PriceEntry,
    SingleProduct,
    TariffFile,
)

_TARIFF_ID_RE = re.compile(r"^[a-z0-9_]+$")
_LABEL_KEYS = ("id", "code", "stop_id", "level", "rider")
_Fail = Callable[[str, str], TariffError]


class Stop(BaseModel):
    """A stop known to the tariff: DHID, name, WGS84 latitude/longitude in degrees."""

    model_config = ConfigDict(frozen=True)

    stop_id: str
    name: str
    lat: float
    lon: float


class Tariff:
    """A checked tariff: stops, Tarifgebiete, levels and products, with look-ups."""

    def __init__(self, spec: TariffFile) -> None:
        self.spec = spec
        self.tz = ZoneInfo(spec.timezone)
        self._stops = {s.stop_id: s for s in spec.stops}
        self._areas = {a.code: a for a in spec.areas}
        self._levels = {lv.code: lv for lv in spec.levels}
        self._riders = {r.id: r for r in spec.riders}
        self._neighbours = frozenset(frozenset(n.areas) for n in spec.neighbours)
        self._level_cache: dict[tuple[str, str], LevelSpec] = {}

    @property
    def tariff_id(self) -> str:
        return self.spec.tariff_id

    @property
    def currency(self) -> str:
        return self.spec.currency

    def __repr__(self) -> str:
        return f"Tariff({self.tariff_id!r})"

    # --- look-ups ---------------------------------------------------------------
    def stops(self) -> list[Stop]:
        """All stops of the tariff in file order."""
        return [Stop(stop_id=s.stop_id, name=s.name, lat=s.lat, lon=s.lon) for s in self.spec.stops]

    def has_stop(self, stop_id: str) -> bool:
        return stop_id in self._stops

    def stop_name(self, stop_id: str) -> str:
        return self._stops[stop_id].name

    def area_of_stop(self, stop_id: str) -> AreaSpec:
        """The Tarifgebiet of a stop (KeyError for an unknown stop)."""
        return self._areas[self._stops[stop_id].area]

    def has_rider(self, rider: str) -> bool:
        return rider in self._riders

    def rider_ids(self) -> list[str]:
        return list(self._riders)

    def level(self, code: str) -> LevelSpec:
        return self._levels[code]

    def levels_by_rank(self) -> list[LevelSpec]:
        return sorted(self.spec.levels, key=lambda lv: lv.rank)

    def level_between(self, from_stop_id: str, to_stop_id: str) -> LevelSpec:
        """Price level from boarding to alighting stop ("Start + Ziel = Ticket")."""
        start, dest = self.area_of_stop(from_stop_id), self.area_of_stop(to_stop_id)
        return self._level_between_areas(start, dest)

    def _level_between_areas(self, start: AreaSpec, dest: AreaSpec) -> LevelSpec:
        key = (start.code, dest.code)
        cached = self._level_cache.get(key)
        if cached is None:
            rule = first_matching_rule(self.spec.level_rules, start, dest, self._neighbours)
            if rule is None:  # excluded by the load-time check
                raise LookupError(f"no level rule for {start.code} -> {dest.code}")
            cached = self._levels[rule.level]
            self._level_cache[key] = cached
        return cached

    def single_product(self) -> SingleProduct:
        """The single-ticket product (exactly one per tariff in this version)."""
        return next(p for p in self.spec.products if isinstance(p, SingleProduct))

    def calendar_month_products(self) -> list[CalendarMonthProduct]:
        return [p for p in self.spec.products if isinstance(p, CalendarMonthProduct)]

    def price(
        self, product: SingleProduct | CalendarMonthProduct, level: str | None, rider: str
    ) -> PriceEntry | None:
        """The price entry of `product` for a level and rider; None if not sold to them."""
        if product.riders is not None and rider not in product.riders:
            return None
        matches = _matching_prices(product.prices, level, rider)
        return matches[0] if matches else None

    def validity_ms(self) -> tuple[int, int]:
        """The tariff's validity as [start, end) in UTC epoch ms (dates are local)."""
        start = dt.datetime.combine(self.spec.valid_from, dt.time(), tzinfo=self.tz)
        end = dt.datetime.combine(
            self.spec.valid_to + dt.timedelta(days=1), dt.time(), tzinfo=self.tz
        )
        return int(start.timestamp() * 1000), int(end.timestamp() * 1000)


def _price_level_matches(entry: PriceEntry, level: str | None) -> bool:
    return entry.level is None or entry.level == level


def _price_rider_matches(entry: PriceEntry, rider: str) -> bool:
    return entry.rider is None or entry.rider == rider


def _matching_prices(
    prices: Sequence[PriceEntry], level: str | None, rider: str
) -> list[PriceEntry]:
    return [p for p in prices if _price_level_matches(p, level) and _price_rider_matches(p, rider)]


# --- loading ------------------------------------------------------------------------
def load_tariff(tariff_id: str = DEFAULT_TARIFF_ID) -> Tariff:
    """Load a tariff shipped with the engine (`fare_engine/tariffs/<tariff_id>.toml`).

    Loaded once per process: a `Tariff` is read-only.
    """
    return _load_shipped(tariff_id)


@functools.lru_cache(maxsize=8)
def _load_shipped(tariff_id: str) -> Tariff:
    file_name = f"{tariff_id}.toml"
    if not _TARIFF_ID_RE.match(tariff_id):
        raise TariffError(file_name, "tariff_id", "must be lower-case letters, digits and '_'")
    resource = resources.files(TARIFF_PACKAGE).joinpath(file_name)
    if not resource.is_file():
        shipped = sorted(
            r.name.removesuffix(".toml")
            for r in resources.files(TARIFF_PACKAGE).iterdir()
            if r.name.endswith(".toml")
        )
        raise TariffError(file_name, "tariff_id", f"no such tariff; shipped: {shipped}")
    tariff = _parse(file_name, resource.read_text(encoding="utf-8"))
    if tariff.tariff_id != tariff_id:
        raise TariffError(
            file_name, "tariff_id", f"is {tariff.tariff_id!r}, expected {tariff_id!r}"
        )
    return tariff


def load_tariff_file(path: str | Path) -> Tariff:
    """Load and check a tariff file from any path (tests, an operator's official table)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise TariffError(str(path), "(file)", f"cannot be read: {exc.strerror}") from exc
    return _parse(str(path), text)


def _parse(file_label: str, text: str) -> Tariff:
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise TariffError(file_label, "(file)", f"not valid TOML: {exc}") from exc
    try:
        spec = TariffFile.model_validate(raw)
    except ValidationError as exc:
        raise _tariff_error_from_validation(file_label, raw, exc) from None
    _check_consistency(file_label, spec)
    return Tariff(spec)


def _tariff_error_from_validation(
    file_label: str, raw: dict[str, Any], exc: ValidationError
) -> TariffError:
    first = exc.errors()[0]
    entry = _entry_label(raw, first["loc"])
    more = f" (and {exc.error_count() - 1} more problems)" if exc.error_count() > 1 else ""
    return TariffError(file_label, entry, f"{first['msg']}{more}")


def _entry_label(raw: Any, loc: tuple[int | str, ...]) -> str:
    """`products[0] (einzel).prices[3] (level 4, rider child).cents` from a pydantic loc."""
    parts: list[str] = []
    node: Any = raw
    for key in loc:
        if isinstance(key, int):
            node = node[key] if isinstance(node, list) and key < len(node) else None
            label = ""
            if isinstance(node, dict):
                named = [_label(k, node[k]) for k in _LABEL_KEYS if k in node]
                label = f" ({', '.join(named)})" if named else ""
            parts[-1] = f"{parts[-1]}[{key}]{label}" if parts else f"[{key}]"
        elif isinstance(node, dict) and key in node:
            node = node[key]
            parts.append(key)
        elif key in ("single", "calendar_month"):  # discriminator tag, not a field
            continue
        else:
            node = None
            parts.append(key)
    return ".".join(parts) or "(top level)"


def _label(key: str, value: Any) -> str:
    return str(value) if key in ("id", "code", "stop_id") else f"{key} {value}"


def _check_consistency(file_label: str, spec: TariffFile) -> None:
    """Cross-entry checks: references resolve, ids are unique, every price exists."""

    def fail(entry: str, problem: str) -> TariffError:
        return TariffError(file_label, entry, problem)

    if spec.valid_to < spec.valid_from:
        raise fail("valid_to", f"{spec.valid_to} is before valid_from {spec.valid_from}")
    try:
        ZoneInfo(spec.timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise fail("timezone", f"unknown time zone {spec.timezone!r}") from exc

    riders = _unique(fail, "riders", [r.id for r in spec.riders])
    levels = _unique(fail, "levels", [lv.code for lv in spec.levels])
    _unique(fail, "levels", [f"rank {lv.rank}" for lv in spec.levels])
    areas = _unique(fail, "areas", [a.code for a in spec.areas])
    _unique(fail, "stops", [s.stop_id for s in spec.stops])
    _unique(fail, "products", [p.id for p in spec.products])
    kreise = {a.kreis for a in spec.areas}

    for i, stop in enumerate(spec.stops):
        if stop.area not in areas:
            raise fail(f"stops[{i}] ({stop.stop_id}).area", f"unknown Tarifgebiet {stop.area!r}")
    for i, pair in enumerate(spec.neighbours):
        for code in pair.areas:
            if code not in areas:
                raise fail(f"neighbours[{i}].areas", f"unknown Tarifgebiet {code!r}")
    for i, rule in enumerate(spec.level_rules):
        entry = f"level_rules[{i}] (level {rule.level})"
        if rule.level not in levels:
            raise fail(f"{entry}.level", f"unknown level {rule.level!r}")
        for field, value, known in (
            ("from_area", rule.from_area, areas),
            ("to_area", rule.to_area, areas),
            ("from_kreis", rule.from_kreis, kreise),
            ("to_kreis", rule.to_kreis, kreise),
        ):
            if value is not None and value not in known:
                raise fail(f"{entry}.{field}", f"unknown value {value!r}")

    _check_levels_total(fail, spec)
    _check_products(fail, spec, riders, levels)


def _unique(fail: _Fail, entry: str, keys: list[str]) -> set[str]:
    seen: set[str] = set()
    for i, key in enumerate(keys):
        if key in seen:
            raise fail(f"{entry}[{i}]", f"duplicate {key!r}")
        seen.add(key)
    return seen


def _check_levels_total(fail: _Fail, spec: TariffFile) -> None:
    neighbours = frozenset(frozenset(n.areas) for n in spec.neighbours)
    for start in spec.areas:
        for dest in spec.areas:
            if first_matching_rule(spec.level_rules, start, dest, neighbours) is None:
                raise fail(
                    "level_rules",
                    f"no rule gives a level for {start.name} ({start.code}) -> "
                    f"{dest.name} ({dest.code})",
                )


def _check_products(fail: _Fail, spec: TariffFile, riders: set[str], levels: set[str]) -> None:
    singles = [p for p in spec.products if isinstance(p, SingleProduct)]
    if len(singles) != 1:
        raise fail("products", f"exactly one product of kind 'single' expected, {len(singles)}")
    for i, product in enumerate(spec.products):
        entry = f"products[{i}] ({product.id})"
        for rider in product.riders or []:
            if rider not in riders:
                raise fail(f"{entry}.riders", f"unknown rider category {rider!r}")
        for j, price in enumerate(product.prices):
            if price.rider is not None and price.rider not in riders:
                raise fail(f"{entry}.prices[{j}].rider", f"unknown rider {price.rider!r}")
            if price.level is not None and price.level not in levels:
                raise fail(f"{entry}.prices[{j}].level", f"unknown level {price.level!r}")
        sold_to = product.riders if product.riders is not None else sorted(riders)
        needed_levels: list[str | None] = [None]
        if isinstance(product, SingleProduct):
            needed_levels = [*sorted(levels)]
        for rider in sold_to:
            for level in needed_levels:
                n = len(_matching_prices(product.prices, level, rider))
                what = f"rider {rider!r}" + (f", level {level!r}" if level else "")
                if n == 0:
                    raise fail(f"{entry}.prices", f"no price for {what}")
                if n > 1:
                    raise fail(f"{entry}.prices", f"{n} prices match {what}; expected one")
