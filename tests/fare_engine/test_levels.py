"""Price levels from start and destination Tarifgebiet ("Start + Ziel = Ticket")."""

from __future__ import annotations

import pytest

from tests.fare_engine.conftest import (
    ARNSBERG_BF,
    BERGKAMEN_RATHAUS,
    KAMEN_BF,
    LIPPSTADT_BF,
    MESCHEDE_BF,
    SASSENDORF_KURPARK,
    SOEST_BF,
    SOEST_MARKT,
    UNNA_BF,
    UNNA_MARKT,
)


@pytest.mark.parametrize(
    ("board", "alight", "level"),
    [
        pytest.param(SOEST_BF, SOEST_MARKT, "A", id="within Soest"),
        pytest.param(UNNA_BF, UNNA_MARKT, "A", id="within Unna"),
        pytest.param(SOEST_BF, SASSENDORF_KURPARK, "3", id="Soest-Bad Sassendorf neighbours"),
        pytest.param(UNNA_BF, KAMEN_BF, "3", id="Unna-Kamen neighbours"),
        pytest.param(KAMEN_BF, BERGKAMEN_RATHAUS, "3", id="Kamen-Bergkamen neighbours"),
        pytest.param(ARNSBERG_BF, MESCHEDE_BF, "3", id="Arnsberg-Meschede neighbours"),
        pytest.param(SOEST_BF, LIPPSTADT_BF, "4", id="Soest-Lippstadt within Kreis Soest"),
        pytest.param(UNNA_BF, BERGKAMEN_RATHAUS, "4", id="Unna-Bergkamen within Kreis Unna"),
        pytest.param(UNNA_BF, SOEST_BF, "5", id="Kreis Unna to Kreis Soest"),
        pytest.param(LIPPSTADT_BF, MESCHEDE_BF, "5", id="Kreis Soest to HSK"),
    ],
)
def test_level_between_stops(tariff, board, alight, level):
    assert tariff.level_between(board, alight).code == level
    assert tariff.level_between(alight, board).code == level


def test_kreis_unna_areas_carry_the_sourced_codes(tariff):
    codes = {a.name: a.code for a in tariff.spec.areas if a.kreis == "Kreis Unna"}
    assert codes["Schwerte"] == "42150"
    assert codes["Lünen"] == "42190"
    assert codes["Kamen"] == "42390"
    assert codes["Bergkamen"] == "42400"
    assert codes["Holzwickede"] == "42480"
    assert codes["Unna"] == "42490"
    sourced = {a.code for a in tariff.spec.areas if not a.is_assumed}
    assert sourced == {"42150", "42190", "42390", "42400", "42480", "42490"}


def test_all_36_municipalities_are_tarifgebiete(tariff):
    per_kreis: dict[str, int] = {}
    for area in tariff.spec.areas:
        per_kreis[area.kreis] = per_kreis.get(area.kreis, 0) + 1
    assert per_kreis == {"Kreis Unna": 10, "Kreis Soest": 14, "Hochsauerlandkreis": 12}


def test_validity_grows_with_level(tariff):
    minutes = {lv.code: lv.validity_minutes for lv in tariff.spec.levels}
    assert minutes == {"K": 90, "A": 90, "3": 120, "4": 120, "5": 180}


def test_passes_of_a_level_reach_the_towns_of_its_relation(tariff):
    scopes = {lv.code: lv.pass_scope for lv in tariff.spec.levels}
    assert scopes == {
        "K": None,
        "A": "same_area",
        "3": "neighbouring_areas",
        "4": "same_kreis",
        "5": "same_teilraum",
    }
