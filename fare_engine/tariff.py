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
    DistanceProduct,
    LevelSpec,
    PassProduct,
    PriceEntry,
    SingleProduct,
    StopSpec,
    TariffFile,
)

_TARIFF_ID_RE = re.compile(r"^[a-z0-9_]+$")
_LABEL_KEYS = ("id", "code", "stop_id", "level", "rider", "areas")
_KIND_TAGS = ("single", "calendar_month", "pass", "distance")
_Fail = Callable[[str, str], TariffError]
PricedProduct = SingleProduct | CalendarMonthProduct | PassProduct


class Stop(BaseModel):
    """A stop known to the tariff: DHID, name, WGS84 latitude/longitude in degrees."""

    model_config = ConfigDict(frozen=True)

    stop_id: str
    name: str
    lat: float
    lon: float


class Tariff:
    """A checked tariff: stops, Tarifgebiete, levels and products, with look-ups."""

    def __init__(self, spec: TariffFile, stops: Sequence[StopSpec] | None = None) -> None:
        self.spec = spec
        self.tz = ZoneInfo(spec.timezone)
        self._stop_list = list(spec.stops if stops is None else stops)
        self._stops = {s.stop_id: s for s in self._stop_list}
        self.stop_names = {s.stop_id: s.name for s in self._stop_list}
        """Stop id -> name (`stop_name`, as one dict for the bill's many look-ups)."""
        self._areas = {a.code: a for a in spec.areas}
        self._levels = {lv.code: lv for lv in spec.levels}
        self._riders = {r.id: r for r in spec.riders}
        self._named = {p.id: named_riders(p) for p in spec.products}
        self._neighbours = frozenset(frozenset(n.areas) for n in spec.neighbours)
        self._neighbours_of: dict[str, list[str]] = {}
        for pair in spec.neighbours:
            a, b = pair.areas
            self._neighbours_of.setdefault(a, []).append(b)
            self._neighbours_of.setdefault(b, []).append(a)
        self._level_cache: dict[tuple[str, str], LevelSpec] = {}
        self._price_cache: dict[tuple[str, str | None, str], PriceEntry | None] = {}
        self._areas_where: dict[tuple[str | None, str | None], frozenset[str]] = {}
        start = dt.datetime.combine(spec.valid_from, dt.time(), tzinfo=self.tz)
        end = dt.datetime.combine(spec.valid_to + dt.timedelta(days=1), dt.time(), tzinfo=self.tz)
        self._validity = (int(start.timestamp() * 1000), int(end.timestamp() * 1000))

    @property
    def tariff_id(self) -> str:
        return self.spec.tariff_id

    @property
    def currency(self) -> str:
        return self.spec.currency

    def __repr__(self) -> str:
        return f"Tariff({self.tariff_id!r})"

    # --- stops and areas -----------------------------------------------------------
    def stops(self) -> list[Stop]:
        """All stops of the tariff in file order."""
        return [Stop(stop_id=s.stop_id, name=s.name, lat=s.lat, lon=s.lon) for s in self._stop_list]

    def has_stop(self, stop_id: str) -> bool:
        return stop_id in self._stops

    def stop(self, stop_id: str) -> StopSpec:
        """The stop (KeyError for an unknown stop)."""
        return self._stops[stop_id]

    def stop_name(self, stop_id: str) -> str:
        return self.stop_names[stop_id]

    def has_zones(self) -> bool:
        """True if stops belong to Tarifgebiete / zones (a zone tariff, not distance-only)."""
        return bool(self._areas)

    def area_of_stop(self, stop_id: str) -> AreaSpec:
        """The Tarifgebiet of a stop (KeyError for an unknown stop or a stop without area)."""
        code = self._stops[stop_id].area
        if code is None:
            raise KeyError(f"stop {stop_id} has no Tarifgebiet in {self.tariff_id}")
        return self._areas[code]

    def area(self, code: str) -> AreaSpec:
        return self._areas[code]

    def areas_where(self, kreis: str | None = None, teilraum: str | None = None) -> frozenset[str]:
        """Codes of the Tarifgebiete in a Kreis or a Teilraum."""
        key = (kreis, teilraum)
        found = self._areas_where.get(key)
        if found is None:
            found = frozenset(
                a.code
                for a in self.spec.areas
                if (kreis is None or a.kreis == kreis)
                and (teilraum is None or a.teilraum == teilraum)
            )
            self._areas_where[key] = found
        return found

    def neighbours_of(self, code: str) -> list[str]:
        """Tarifgebiete that are neighbours of `code`, in file order."""
        return self._neighbours_of.get(code, [])

    def are_neighbours(self, a: str, b: str) -> bool:
        return frozenset((a, b)) in self._neighbours

    # --- riders and levels ---------------------------------------------------------
    def has_rider(self, rider: str) -> bool:
        return rider in self._riders

    def rider_ids(self) -> list[str]:
        return list(self._riders)

    def pricing_rider(self, product_id: str, rider: str) -> str:
        """The rider category `rider` is priced as by a product: itself where the product
        names it, else its `prices_as` category (if any)."""
        if rider in self._named.get(product_id, frozenset()):
            return rider
        spec = self._riders.get(rider)
        if spec is not None and spec.prices_as is not None:
            return spec.prices_as
        return rider

    def distance_percent(self, product: DistanceProduct, rider: str) -> int | None:
        """The rider's percentage of the adult distance fare; None if not sold to them."""
        priced = self.pricing_rider(product.id, rider)
        return next((s.percent for s in product.rider_percent if s.rider == priced), None)

    def level(self, code: str) -> LevelSpec:
        return self._levels[code]

    def levels_by_rank(self) -> list[LevelSpec]:
        return sorted(self.spec.levels, key=lambda lv: lv.rank)

    def level_between(self, from_stop_id: str, to_stop_id: str) -> LevelSpec:
        """Price level from boarding to alighting stop ("Start + Ziel = Ticket")."""
        start, dest = self.area_of_stop(from_stop_id), self.area_of_stop(to_stop_id)
        return self._level_between_areas(start, dest)

    def level_between_areas(self, start_code: str, dest_code: str) -> LevelSpec:
        return self._level_between_areas(self._areas[start_code], self._areas[dest_code])

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

    # --- products ------------------------------------------------------------------
    def single_product(self) -> SingleProduct:
        """The single-ticket product (at most one per tariff; LookupError if none)."""
        for p in self.spec.products:
            if isinstance(p, SingleProduct):
                return p
        raise LookupError(f"tariff {self.tariff_id} sells no single ticket")

    def single_products(self) -> list[SingleProduct]:
        return [p for p in self.spec.products if isinstance(p, SingleProduct)]

    def calendar_month_products(self) -> list[CalendarMonthProduct]:
        return [p for p in self.spec.products if isinstance(p, CalendarMonthProduct)]

    def pass_products(self) -> list[PassProduct]:
        return [p for p in self.spec.products if isinstance(p, PassProduct)]

    def distance_products(self) -> list[DistanceProduct]:
        return [p for p in self.spec.products if isinstance(p, DistanceProduct)]

    def product(self, product_id: str) -> Any:
        return next(p for p in self.spec.products if p.id == product_id)

    def price(self, product: PricedProduct, level: str | None, rider: str) -> PriceEntry | None:
        """The price entry of `product` for a level and rider; None if not sold to them.

        Entries with `areas` (zone-scoped passes) are not returned here; see `area_prices`.
        """
        key = (product.id, level, rider)
        if key in self._price_cache:
            return self._price_cache[key]
        entry: PriceEntry | None = None
        priced = self.pricing_rider(product.id, rider)
        if product.riders is None or priced in product.riders:
            matches = _matching_prices(product.prices, level, priced)
            entry = matches[0] if matches else None
        self._price_cache[key] = entry
        return entry

    def area_prices(self, product: PassProduct, rider: str) -> list[PriceEntry]:
        """The zone-scoped price entries (`areas` set) of a pass for a rider."""
        rider = self.pricing_rider(product.id, rider)
        if product.riders is not None and rider not in product.riders:
            return []
        return [p for p in product.prices if p.areas is not None and _price_rider_matches(p, rider)]

    def validity_ms(self) -> tuple[int, int]:
        """The tariff's validity as [start, end) in UTC epoch ms (dates are local)."""
        return self._validity


def named_riders(product: Any) -> frozenset[str]:
    """The rider categories a product names (`riders`, prices, `rider_percent`)."""
    if isinstance(product, DistanceProduct):
        return frozenset(s.rider for s in product.rider_percent)
    named = set(product.riders or [])
    named.update(p.rider for p in product.prices if p.rider is not None)
    return frozenset(named)


def _price_level_matches(entry: PriceEntry, level: str | None) -> bool:
    return entry.level is None or entry.level == level


def _price_rider_matches(entry: PriceEntry, rider: str) -> bool:
    return entry.rider is None or entry.rider == rider


def _matching_prices(
    prices: Sequence[PriceEntry], level: str | None, rider: str
) -> list[PriceEntry]:
    return [
        p
        for p in prices
        if p.areas is None and _price_level_matches(p, level) and _price_rider_matches(p, rider)
    ]


# --- loading ------------------------------------------------------------------------
def load_tariff(tariff_id: str = DEFAULT_TARIFF_ID) -> Tariff:
    """Load a tariff shipped with the engine (`fare_engine/tariffs/<tariff_id>.toml`).

    Loaded once per process: a `Tariff` is read-only.
    """
    return _load_shipped(tariff_id)


@functools.lru_cache(maxsize=16)
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
    stops = _stops_for(file_label, spec)
    _check_consistency(file_label, spec, stops)
    return Tariff(spec, stops)


def _stops_for(file_label: str, spec: TariffFile) -> list[StopSpec]:
    if spec.stops_from is None:
        if not spec.stops:
            raise TariffError(file_label, "stops", "no stops: list them or name 'stops_from'")
        return list(spec.stops)
    if spec.stops:
        raise TariffError(file_label, "stops_from", "give either 'stops' or 'stops_from'")
    if spec.stops_from == spec.tariff_id:
        raise TariffError(file_label, "stops_from", "a tariff cannot take stops from itself")
    try:
        source = _load_shipped(spec.stops_from)
    except TariffError as exc:
        raise TariffError(file_label, "stops_from", f"cannot load: {exc}") from None
    # The other tariff's areas mean nothing here: keep only ids, names, coordinates.
    return [s.model_copy(update={"area": None}) for s in source._stop_list]


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
        elif key in _KIND_TAGS:  # discriminator tag, not a field
            continue
        else:
            node = None
            parts.append(key)
    return ".".join(parts) or "(top level)"


def _label(key: str, value: Any) -> str:
    return str(value) if key in ("id", "code", "stop_id") else f"{key} {value}"


def _check_consistency(file_label: str, spec: TariffFile, stops: list[StopSpec]) -> None:
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
    by_rider = {r.id: r for r in spec.riders}
    for i, rider in enumerate(spec.riders):
        if rider.prices_as is None:
            continue
        target = by_rider.get(rider.prices_as)
        entry = f"riders[{i}] ({rider.id}).prices_as"
        if target is None or target.id == rider.id:
            raise fail(entry, f"unknown or own rider category {rider.prices_as!r}")
        if target.prices_as is not None:
            raise fail(entry, f"{target.id!r} is priced as another category itself")
    levels = _unique(fail, "levels", [lv.code for lv in spec.levels])
    _unique(fail, "levels", [f"rank {lv.rank}" for lv in spec.levels])
    areas = _unique(fail, "areas", [a.code for a in spec.areas])
    _unique(fail, "stops", [s.stop_id for s in spec.stops])
    _unique(fail, "products", [p.id for p in spec.products])
    kreise = {a.kreis for a in spec.areas if a.kreis is not None}

    for i, stop in enumerate(spec.stops):
        if areas and stop.area is None:
            raise fail(f"stops[{i}] ({stop.stop_id}).area", "missing: this tariff has zones")
        if stop.area is not None and stop.area not in areas:
            raise fail(f"stops[{i}] ({stop.stop_id}).area", f"unknown Tarifgebiet {stop.area!r}")
    for i, pair in enumerate(spec.neighbours):
        for code in pair.areas:
            if code not in areas:
                raise fail(f"neighbours[{i}].areas", f"unknown Tarifgebiet {code!r}")
    short_levels = {lv.code for lv in spec.levels if lv.max_further_stops is not None}
    for i, rule in enumerate(spec.level_rules):
        entry = f"level_rules[{i}] (level {rule.level})"
        if rule.level not in levels:
            raise fail(f"{entry}.level", f"unknown level {rule.level!r}")
        if rule.level in short_levels:
            raise fail(f"{entry}.level", "a Kurzstrecke level is given by stops, not by rules")
        for field, value, known in (
            ("from_area", rule.from_area, areas),
            ("to_area", rule.to_area, areas),
            ("from_kreis", rule.from_kreis, kreise),
            ("to_kreis", rule.to_kreis, kreise),
        ):
            if value is not None and value not in known:
                raise fail(f"{entry}.{field}", f"unknown value {value!r}")

    if spec.areas and not spec.level_rules and levels - short_levels:
        raise fail("level_rules", "levels are given but no rule assigns them")
    _check_levels_total(fail, spec)
    _check_products(fail, spec, riders, levels, areas)


def _unique(fail: _Fail, entry: str, keys: list[str]) -> set[str]:
    seen: set[str] = set()
    for i, key in enumerate(keys):
        if key in seen:
            raise fail(f"{entry}[{i}]", f"duplicate {key!r}")
        seen.add(key)
    return seen


def _check_levels_total(fail: _Fail, spec: TariffFile) -> None:
    if not spec.level_rules:
        return
    neighbours = frozenset(frozenset(n.areas) for n in spec.neighbours)
    for start in spec.areas:
        for dest in spec.areas:
            if first_matching_rule(spec.level_rules, start, dest, neighbours) is None:
                raise fail(
                    "level_rules",
                    f"no rule gives a level for {start.name} ({start.code}) -> "
                    f"{dest.name} ({dest.code})",
                )


def _check_products(
    fail: _Fail, spec: TariffFile, riders: set[str], levels: set[str], areas: set[str]
) -> None:
    singles = [p for p in spec.products if isinstance(p, SingleProduct)]
    if len(singles) > 1:
        raise fail("products", f"at most one product of kind 'single' expected, {len(singles)}")
    if singles and not spec.levels:
        raise fail("levels", "a single ticket is priced by level, but no levels are given")
    pass_levels = sorted(lv.code for lv in spec.levels if lv.pass_scope is not None)
    by_id = {p.id: p for p in spec.products}
    for i, product in enumerate(spec.products):
        entry = f"products[{i}] ({product.id})"
        if isinstance(product, DistanceProduct):
            _check_distance(fail, entry, product, riders)
            continue
        for rider in product.riders or []:
            if rider not in riders:
                raise fail(f"{entry}.riders", f"unknown rider category {rider!r}")
        for j, price in enumerate(product.prices):
            where = f"{entry}.prices[{j}]"
            if price.rider is not None and price.rider not in riders:
                raise fail(f"{where}.rider", f"unknown rider {price.rider!r}")
            if price.level is not None and price.level not in levels:
                raise fail(f"{where}.level", f"unknown level {price.level!r}")
            if price.areas is not None:
                if not isinstance(product, PassProduct):
                    raise fail(f"{where}.areas", "only pass products are priced by areas")
                if price.level is not None:
                    raise fail(f"{where}.areas", "give either 'level' or 'areas'")
                for code in price.areas:
                    if code not in areas:
                        raise fail(f"{where}.areas", f"unknown Tarifgebiet {code!r}")
            if (
                isinstance(product, PassProduct)
                and price.level is not None
                and price.level not in pass_levels
            ):
                raise fail(f"{where}.level", f"level {price.level!r} has no pass_scope")
        if isinstance(product, PassProduct) and product.group is not None:
            group = product.group
            for rider in group.free_riders:
                if rider not in riders:
                    raise fail(f"{entry}.group.free_riders", f"unknown rider {rider!r}")
            if group.persons > 1 and any(p.rider is not None for p in product.prices):
                raise fail(f"{entry}.prices", "a ticket for several persons has no rider prices")
            if group.persons > 1 and product.caps is not None:
                raise fail(f"{entry}.group", "a cap is not a ticket for several persons")
        if isinstance(product, PassProduct) and product.caps is not None:
            capped = by_id.get(product.caps)
            if not isinstance(capped, SingleProduct | DistanceProduct):
                raise fail(f"{entry}.caps", f"{product.caps!r} is not a single or distance product")
        sold_to = sorted(
            {
                _resolve(spec, product, r)
                for r in riders
                if product.riders is None or _resolve(spec, product, r) in product.riders
            }
        )
        _check_price_coverage(fail, entry, product, sold_to, sorted(levels), pass_levels)


def _check_price_coverage(
    fail: _Fail,
    entry: str,
    product: PricedProduct,
    riders: list[str],
    levels: list[str],
    pass_levels: list[str],
) -> None:
    sold_to = riders
    needed_levels: list[str | None] = [None]
    if isinstance(product, SingleProduct):
        needed_levels = [*levels]
    elif isinstance(product, PassProduct):
        if any(p.areas is not None for p in product.prices):
            if any(p.areas is None for p in product.prices):
                raise fail(f"{entry}.prices", "either every price has 'areas' or none")
            _unique(
                fail,
                f"{entry}.prices",
                [f"rider {p.rider}, areas {sorted(p.areas or [])}" for p in product.prices],
            )
            return
        if any(p.level is not None for p in product.prices):
            needed_levels = [*pass_levels]
    for rider in sold_to:
        for level in needed_levels:
            n = len(_matching_prices(product.prices, level, rider))
            what = f"rider {rider!r}" + (f", level {level!r}" if level else "")
            if n == 0:
                raise fail(f"{entry}.prices", f"no price for {what}")
            if n > 1:
                raise fail(f"{entry}.prices", f"{n} prices match {what}; expected one")


def _resolve(spec: TariffFile, product: PricedProduct, rider: str) -> str:
    """`Tariff.pricing_rider` on the raw file (before the tariff is built)."""
    if rider in named_riders(product):
        return rider
    found = next((r for r in spec.riders if r.id == rider), None)
    return found.prices_as if found is not None and found.prices_as is not None else rider


def _check_distance(fail: _Fail, entry: str, product: DistanceProduct, riders: set[str]) -> None:
    seen: set[str] = set()
    for j, share in enumerate(product.rider_percent):
        if share.rider not in riders:
            raise fail(f"{entry}.rider_percent[{j}].rider", f"unknown rider {share.rider!r}")
        if share.rider in seen:
            raise fail(f"{entry}.rider_percent[{j}].rider", f"duplicate {share.rider!r}")
        seen.add(share.rider)
