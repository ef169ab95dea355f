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


def _devices_file(tmp_path, key_b64="AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="):
    path = tmp_path / "devices.json"
    path.write_text(
        json.dumps(
            {
                "version": 1,
                "devices": [
                    {
                        "passenger_id": "pas_sim_p0001",
                        "device_id": "dev_sim_p0001",
                        "rider_category": "child",
                        "device_key": key_b64,
                    },
                ],
            }
        )
    )
    return path


def test_devices_import_is_idempotent(cli, tmp_path):
    path = _devices_file(tmp_path)
    assert cli("devices", "import", str(path))[1].strip() == "1 devices imported, 0 already present"
    assert cli("devices", "import", str(path))[1].strip() == "0 devices imported, 1 already present"


def test_devices_import_refuses_another_key_for_a_known_device(cli, tmp_path):
    cli("devices", "import", str(_devices_file(tmp_path)))
    other = _devices_file(tmp_path, key_b64="AQECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")
    code, _, err = cli("devices", "import", str(other))
    assert code == 2
    assert "dev_sim_p0001" in err


def test_devices_import_names_the_bad_field(cli, tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(
        json.dumps(
            {
                "version": 1,
                "devices": [
                    {
                        "passenger_id": "p",
                        "device_id": "d",
                        "rider_category": "adult",
                        "device_key": "AAEC",
                    },
                ],
            }
        )
    )
    code, _, err = cli("devices", "import", str(path))
    assert code == 2
    assert "devices.0.device_key" in err
    assert "32 bytes" in err
