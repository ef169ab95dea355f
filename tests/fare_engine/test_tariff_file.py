"""The shipped tariff file: provenance everywhere, stops as the simulator has them, and
loading errors that name the file, the entry and the problem."""

from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path

import pytest

from fare_engine import Stop, TariffError, load_tariff, load_tariff_file
from fare_engine.model import DistanceProduct, SingleProduct

NETWORK = Path(__file__).resolve().parents[2] / "simulator" / "data" / "network.toml"


def _shipped_text() -> str:
    return (
        resources.files("fare_engine.tariffs")
        .joinpath("ruhr_lippe_2026.toml")
        .read_text(encoding="utf-8")
    )


def test_header(tariff):
    spec = tariff.spec
    assert (spec.version, spec.tariff_id, spec.currency) == (2, "ruhr_lippe_2026", "EUR")
    assert spec.valid_from.isoformat() == "2026-01-01"
    assert spec.valid_to.isoformat() == "2026-12-31"


@pytest.mark.parametrize("tariff_id", ["ruhr_lippe_2026", "eezy_westfalen_2026"])
def test_every_price_is_integer_cents_with_provenance(tariff_id):
    for product in load_tariff(tariff_id).spec.products:
        prices = (
            [product.base, product.per_started_km]
            if isinstance(product, DistanceProduct)
            else product.prices
        )
        for price in prices:
            assert isinstance(price.cents, int)
            assert price.assumed or (price.source and price.year), price
            assert price.provenance_text()


def test_assumed_prices_say_so_and_sourced_ones_do_not(tariff):
    single = tariff.single_product()
    adult_a = tariff.price(single, "A", "adult")
    assert adult_a is not None
    assert adult_a.cents == 310
    assert adult_a.is_assumed
    assert "2016" in adult_a.provenance_text()
    dticket = tariff.calendar_month_products()[0]
    price = tariff.price(dticket, None, "adult")
    assert price is not None
    assert (price.cents, price.year, price.is_assumed) == (6300, 2026, False)
    day = tariff.price(tariff.product("tagesticket24"), "A", "adult")
    assert day is not None
    assert (day.cents, day.year, day.is_assumed) == (540, 2023, True)


def test_eezy_caps_not_found_are_marked_assumed():
    eezy = load_tariff("eezy_westfalen_2026")
    day_cap = eezy.price(eezy.product("eezy_24h_cap"), None, "adult")
    month_cap = eezy.price(eezy.product("eezy_month_cap"), None, "adult")
    assert day_cap is not None
    assert month_cap is not None
    assert (day_cap.cents, day_cap.is_assumed) == (2500, True)
    assert (month_cap.cents, month_cap.is_assumed) == (6300, True)
    (distance,) = eezy.distance_products()
    assert (distance.base.cents, distance.per_started_km.cents) == (140, 27)


def test_eezy_prices_the_stops_of_ruhr_lippe():
    eezy = load_tariff("eezy_westfalen_2026")
    assert eezy.stops() == load_tariff("ruhr_lippe_2026").stops()


def test_infants_ride_free_and_cannot_buy_a_deutschlandticket(tariff):
    single = tariff.single_product()
    for level in ("A", "3", "4", "5"):
        entry = tariff.price(single, level, "infant")
        assert entry is not None
        assert entry.cents == 0
    assert tariff.price(tariff.calendar_month_products()[0], None, "infant") is None


def test_every_simulator_stop_is_in_the_tariff_with_its_municipality(tariff):
    network = tomllib.loads(NETWORK.read_text(encoding="utf-8"))
    by_id = {s.stop_id: s for s in tariff.stops()}
    assert len(network["stops"]) >= 26
    for stop in network["stops"]:
        assert by_id[stop["stop_id"]] == Stop(
            stop_id=stop["stop_id"], name=stop["name"], lat=stop["lat"], lon=stop["lon"]
        )
        assert tariff.area_of_stop(stop["stop_id"]).name == stop["municipality"]


def test_load_tariff_is_the_shipped_file():
    assert load_tariff() is load_tariff("ruhr_lippe_2026")
    assert isinstance(load_tariff().single_product(), SingleProduct)


def test_unknown_tariff_id_names_it():
    with pytest.raises(TariffError, match=r"no_such_2099\.toml: tariff_id: no such tariff"):
        load_tariff("no_such_2099")


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "broken.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_missing_price_names_the_product_level_and_rider(tmp_path):
    line = '  { level = "4", rider = "child", cents = 370,'
    text = _shipped_text()
    start = text.index(line)
    broken = text[:start] + text[text.index("\n", start) + 1 :]
    path = _write(tmp_path, broken)
    with pytest.raises(TariffError) as info:
        load_tariff_file(path)
    err = info.value
    assert err.file == str(path)
    assert err.entry == "products[0] (einzel).prices"
    assert err.problem == "no price for rider 'child', level '4'"
    assert str(err).startswith(str(path))


def test_price_without_provenance_names_the_entry(tmp_path):
    text = _shipped_text().replace(
        '{ cents = 6300, source = "docs/tariff-sources.md: Deutschlandticket 63 € per calendar '
        'month (2026)", year = 2026 }',
        "{ cents = 6300 }",
    )
    with pytest.raises(TariffError) as info:
        load_tariff_file(_write(tmp_path, text))
    assert info.value.entry == "products[4] (deutschlandticket).prices[0]"
    assert "provenance missing" in info.value.problem


def test_price_in_euros_instead_of_cents_is_refused(tmp_path):
    text = _shipped_text().replace("cents = 6300,", "cents = 63.0,")
    with pytest.raises(TariffError) as info:
        load_tariff_file(_write(tmp_path, text))
    assert info.value.entry == "products[4] (deutschlandticket).prices[0].cents"
    assert "integer" in info.value.problem


def test_stop_in_unknown_area_names_the_stop(tmp_path):
    text = _shipped_text().replace('lon = 8.1083\narea = "43100"', 'lon = 8.1083\narea = "99999"')
    with pytest.raises(TariffError, match=r"stops\[0\] \(de:05974:1001\)\.area: unknown"):
        load_tariff_file(_write(tmp_path, text))


def test_missing_version_is_refused(tmp_path):
    text = _shipped_text().replace("version = 2\n", "", 1)
    with pytest.raises(TariffError, match=r"broken\.toml: version: Field required"):
        load_tariff_file(_write(tmp_path, text))


def test_unreadable_file_and_bad_toml(tmp_path):
    with pytest.raises(TariffError, match=r"cannot be read"):
        load_tariff_file(tmp_path / "missing.toml")
    with pytest.raises(TariffError, match=r"not valid TOML"):
        load_tariff_file(_write(tmp_path, "version = = 1"))


def test_a_pass_priced_for_a_level_without_pass_scope_is_refused(tmp_path):
    text = _shipped_text().replace(
        'code = "A"\nrank = 1\nvalidity_minutes = 90\npass_scope = "same_area"\n',
        'code = "A"\nrank = 1\nvalidity_minutes = 90\n',
    )
    with pytest.raises(TariffError) as info:
        load_tariff_file(_write(tmp_path, text))
    assert info.value.entry == "products[1] (tagesticket24).prices[0].level"
    assert info.value.problem == "level 'A' has no pass_scope"


def test_a_rolling_period_without_minutes_names_the_product(tmp_path):
    text = _shipped_text().replace('{ kind = "rolling", minutes = 1440,', '{ kind = "rolling",')
    with pytest.raises(TariffError) as info:
        load_tariff_file(_write(tmp_path, text))
    assert info.value.entry == "products[1] (tagesticket24).period"
    assert "'minutes' is required for kind 'rolling'" in info.value.problem


def _eezy_text() -> str:
    return (
        resources.files("fare_engine.tariffs")
        .joinpath("eezy_westfalen_2026.toml")
        .read_text(encoding="utf-8")
    )


def test_a_cap_of_an_unknown_product_is_refused(tmp_path):
    text = _eezy_text().replace('caps = "eezy"\nriders', 'caps = "ezzy"\nriders', 1)
    with pytest.raises(TariffError) as info:
        load_tariff_file(_write(tmp_path, text))
    assert info.value.entry == "products[1] (eezy_24h_cap).caps"
    assert "'ezzy' is not a single or distance product" in info.value.problem


def test_a_missing_cap_price_names_the_rider(tmp_path):
    text = _eezy_text()
    line = '  { rider = "child", cents = 1250,'
    start = text.index(line)
    broken = text[:start] + text[text.index("\n", start) + 1 :]
    with pytest.raises(TariffError) as info:
        load_tariff_file(_write(tmp_path, broken))
    assert info.value.entry == "products[1] (eezy_24h_cap).prices"
    assert info.value.problem == "no price for rider 'child'"


def test_stops_from_an_unknown_tariff_is_refused(tmp_path):
    text = _eezy_text().replace('stops_from = "ruhr_lippe_2026"', 'stops_from = "nowhere_2026"')
    with pytest.raises(TariffError) as info:
        load_tariff_file(_write(tmp_path, text))
    assert info.value.entry == "stops_from"
    assert "no such tariff" in info.value.problem
