"""`bibo fares bill|quote` through `backend.fares_cli.main`."""

from __future__ import annotations

import json

import pytest

from backend.fares_cli import main
from tests.fare_engine.conftest import (
    LIPPSTADT_BF,
    SASSENDORF_KURPARK,
    SOEST_BF,
    SOEST_MARKT,
    at,
)


def _write_trips(tmp_path, trips) -> str:
    path = tmp_path / "trips.json"
    path.write_text(json.dumps(trips), encoding="utf-8")
    return str(path)


def _trip(board, alight, start, minutes=40, rider="adult") -> dict[str, object]:
    board_ms = at(start)
    return {
        "board_stop_id": board,
        "alight_stop_id": alight,
        "board_time": board_ms,
        "alight_time": board_ms + minutes * 60_000,
        "rider_category": rider,
    }


def test_bill_json(tmp_path, capsys):
    path = _write_trips(tmp_path, [_trip(SOEST_BF, LIPPSTADT_BF, "2026-03-02 07:00")])
    assert main(["bill", "--trips", path, "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["total_cents"] == data["singles_total_cents"] == 620
    product = data["products"][0]
    assert (product["product"], product["price_cents"], product["covers"]) == ("einzel", 620, [0])
    assert product["valid_to"] - product["valid_from"] == 120 * 60_000
    assert data["tariff_ids"] == ["ruhr_lippe_2026", "eezy_westfalen_2026"]


def test_bill_mixes_eezy_by_default_and_takes_tariffs(tmp_path, capsys):
    trips = [_trip(SOEST_BF, SOEST_MARKT, "2026-03-02 07:00", minutes=5)]
    path = _write_trips(tmp_path, trips)
    assert main(["bill", "--trips", path]) == 0
    assert json.loads(capsys.readouterr().out)["products"][0]["product"] == "eezy"
    assert main(["bill", "--trips", path, "--tariff", "ruhr_lippe_2026", "--method", "milp"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert (data["total_cents"], data["method"]) == (310, "milp")


def test_bill_reads_the_optional_ride_facts(tmp_path, capsys):
    ride = {**_trip(SOEST_BF, SASSENDORF_KURPARK, "2026-03-02 07:00"), "stops_travelled": 3}
    path = _write_trips(tmp_path, [ride])
    assert main(["bill", "--trips", path]) == 0
    assert json.loads(capsys.readouterr().out)["total_cents"] == 120  # Kurzstrecke


def test_bill_text_and_fares_prefix(tmp_path, capsys):
    path = _write_trips(tmp_path, [_trip(SOEST_BF, LIPPSTADT_BF, "2026-03-02 07:00")])
    assert main(["fares", "bill", "--trips", path, "--format", "text"]) == 0
    assert "Total: 6,20 €" in capsys.readouterr().out


def test_quote_json(capsys):
    argv = ["quote", "--from", SOEST_BF, "--to", LIPPSTADT_BF, "--at", "2026-03-02T07:00"]
    assert main([*argv, "--rider", "child"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert (data["level"], data["price_cents"]) == ("4", 370)
    assert data["valid_from"] == at("2026-03-02 07:00")


def test_quote_kurzstrecke_and_eezy_as_text(capsys):
    argv = ["quote", "--from", SOEST_BF, "--to", SASSENDORF_KURPARK, "--at", "2026-03-02T07:00"]
    assert main([*argv, "--stops", "3", "--format", "text"]) == 0
    assert capsys.readouterr().out == (
        "Soest, Bahnhof → Bad Sassendorf, Kurpark: EinzelTicket Preisstufe K (adult) 1,20 €,"
        " valid 90 min\n"
    )
    assert main([*argv, "--tariff", "eezy_westfalen_2026", "--format", "text"]) == 0
    assert capsys.readouterr().out == (
        "Soest, Bahnhof → Bad Sassendorf, Kurpark: eezy Westfalen "
        "4.3 km → 5 started km: 1,40 € + 5 × 0,27 € (adult) 2,75 €\n"
    )


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        pytest.param(["bill"], "required: --trips", id="missing --trips"),
        pytest.param(["bill", "--trips", "/nonexistent.json"], "cannot be read", id="no file"),
        pytest.param(["frobnicate"], "invalid choice", id="unknown command"),
        pytest.param(
            ["quote", "--from", SOEST_BF, "--to", "de:1", "--at", "2026-03-02T07:00"],
            "to_stop='de:1': unknown_stop",
            id="unknown stop",
        ),
        pytest.param(
            ["quote", "--from", SOEST_BF, "--to", SOEST_BF, "--at", "yesterday"],
            "not an ISO time",
            id="bad time",
        ),
        pytest.param(
            ["quote", "--from", SOEST_BF, "--to", SOEST_BF, "--tariff", "nope_2026"],
            "nope_2026.toml: tariff_id: no such tariff",
            id="unknown tariff",
        ),
        pytest.param(
            ["bill", "--trips", "t.json", "--method", "guess"],
            "invalid choice: 'guess'",
            id="unknown method",
        ),
    ],
)
def test_errors_are_one_line_and_exit_2(capsys, argv, message):
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert message in captured.err
    assert captured.err.count("\n") == 1
    assert "Traceback" not in captured.err


@pytest.mark.parametrize(
    ("content", "message"),
    [
        pytest.param("not json", "trips: Invalid JSON", id="not json"),
        pytest.param(
            '[{"board_stop_id": "x"}]',
            "trips[0].alight_stop_id: Field required",
            id="missing field",
        ),
        pytest.param(
            json.dumps([_trip(SOEST_BF, LIPPSTADT_BF, "2026-03-02 07:00", rider="dog")]),
            "trip 0: rider_category='dog': unknown_rider_category",
            id="unknown rider",
        ),
        pytest.param(
            json.dumps([{**_trip(SOEST_BF, SOEST_BF, "2026-03-02 07:00"), "board_time": "x"}]),
            "trips[0].board_time",
            id="time not an int",
        ),
    ],
)
def test_bad_trips_file_is_one_line_and_exit_2(tmp_path, capsys, content, message):
    path = tmp_path / "trips.json"
    path.write_text(content, encoding="utf-8")
    assert main(["bill", "--trips", str(path)]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert err.count("\n") == 1
