"""The ``bibo`` command line as DESIGN §4 writes it."""

from __future__ import annotations

import json
import re

import pytest

from backend.cli import main


@pytest.fixture
def cli(database_url, engine, monkeypatch, capsys):
    monkeypatch.setenv("BIBO_DATABASE_URL", database_url)

    def run(*argv: str) -> tuple[int, str, str]:
        code = main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    return run


def test_vehicles_add_prints_the_secret_alone_on_the_last_line(cli):
    code, out, _ = cli("vehicles", "add", "RLG-4711")
    assert code == 0
    assert re.fullmatch(r"[0-9a-f]{64}", out.strip().splitlines()[-1])


def test_vehicles_add_twice_is_a_one_line_error(cli):
    cli("vehicles", "add", "RLG-4711")
    code, _out, err = cli("vehicles", "add", "RLG-4711")
    assert code == 2
    assert err.strip() == "bibo: vehicle 'RLG-4711' is already registered"


def test_operators_add_prints_a_token_on_the_last_line(cli):
    code, out, _ = cli("operators", "add", "Leitstelle Unna")
    assert code == 0
    assert re.fullmatch(r"op_[\w-]{20,}", out.strip().splitlines()[-1])


def test_trips_json_is_a_list(cli):
    code, out, _ = cli("trips", "--day", "2026-11-21", "--format", "json")
    assert code == 0
    assert json.loads(out) == []


def test_reconcile_reports_the_day(cli):
    code, out, _ = cli("reconcile", "--day", "2026-11-21")
    assert code == 0
    assert "2026-11-21" in out


def test_stops_json_matches_the_api_shape(cli):
    code, out, _ = cli("stops", "--format", "json")
    assert code == 0
    stops = json.loads(out)
    assert {"stop_id": "de:05978:2001", "name": "Unna, Bahnhof"}.items() <= next(
        s for s in stops if s["stop_id"] == "de:05978:2001"
    ).items()


def test_bad_day_is_exit_2_without_traceback(cli):
    with pytest.raises(SystemExit) as exc:
        cli("trips", "--day", "21.11.2026")
    assert exc.value.code == 2
