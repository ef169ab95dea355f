"""The ``bibo`` command line as docs/contracts.md (Command line) writes it."""

from __future__ import annotations

import io
import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import pytest
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from backend import models
from backend.cli import main
from backend.db import (
    DatabaseUrlError,
    DatabaseUrlReason,
    check_database_url,
    make_sessionmaker,
    mask_password,
)
from tests.backend.conftest import Vehicle, batch_body, post_batch


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


def _company_of(engine, vehicle_id: str) -> str | None:
    with make_sessionmaker(engine)() as session:
        return session.scalars(
            select(models.Vehicle.company).where(models.Vehicle.vehicle_id == vehicle_id)
        ).one()


def test_vehicles_add_stores_the_operator(cli, engine):
    code, out, _ = cli("vehicles", "add", "RLG-4711", "--operator", "RLG")
    assert code == 0
    assert "vehicle RLG-4711 (operator RLG) registered" in out
    assert re.fullmatch(r"[0-9a-f]{64}", out.strip().splitlines()[-1])
    assert _company_of(engine, "RLG-4711") == "RLG"
    assert cli("vehicles", "add", "VKU-0002")[0] == 0
    assert _company_of(engine, "VKU-0002") is None


@pytest.mark.parametrize("company", ["rlg", "", "-RLG", "R" * 17, "RLG VKU", "RLG\n", "ÄVG"])
def test_vehicles_add_refuses_a_bad_operator_in_one_line(cli, capsys, engine, company):
    with pytest.raises(SystemExit) as exc:
        cli("vehicles", "add", "RLG-4711", f"--operator={company}")
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "expected 1-16 upper-case letters, digits, '_' or '-'" in err
    with make_sessionmaker(engine)() as session:
        assert session.get(models.Vehicle, "RLG-4711") is None


def test_vehicles_set_operator_changes_and_clears_the_company(cli, engine):
    cli("vehicles", "add", "BUS-7")
    code, out, _ = cli("vehicles", "set-operator", "BUS-7", "VKU")
    assert code == 0
    assert "vehicle BUS-7: operator VKU" in out
    assert _company_of(engine, "BUS-7") == "VKU"
    assert cli("vehicles", "set-operator", "BUS-7", "DB-REGIO_NRW")[0] == 0
    assert _company_of(engine, "BUS-7") == "DB-REGIO_NRW"
    assert cli("vehicles", "set-operator", "BUS-7", "--none")[0] == 0
    assert _company_of(engine, "BUS-7") is None


def test_vehicles_set_operator_refusals_are_one_line(cli, capsys):
    code, _out, err = cli("vehicles", "set-operator", "NOPE-1", "RLG")
    assert code == 2
    assert err == "bibo: vehicle 'NOPE-1' is not registered\n"
    cli("vehicles", "add", "BUS-7")
    for argv in (["BUS-7"], ["BUS-7", "RLG", "--none"]):
        code, _out, err = cli("vehicles", "set-operator", *argv)
        assert code == 2
        assert err == "bibo: vehicles set-operator: give the operator (e.g. RLG) or --none\n"
    with pytest.raises(SystemExit) as exc:
        cli("vehicles", "set-operator", "BUS-7", "vku")
    assert exc.value.code == 2
    assert "upper-case" in capsys.readouterr().err


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


# --- the command line as a new user meets it (issue 11, item 8) ---------------------------

PASSWORD = "hunter2-secret"

BAD_DATABASE_URLS = [
    pytest.param("sqlite:////nonexistent/dir/bibo.db", "directory /nonexistent/dir", id="no dir"),
    pytest.param(
        f"postgresql://postgres:{PASSWORD}@127.0.0.1:1/bibo",
        "cannot connect to PostgreSQL at 127.0.0.1:1 (connection refused)",
        id="pg refused",
    ),
    pytest.param(
        f"postgresql://postgres:{PASSWORD}@127.0.0.1:5432/bibo_no_such_database",
        "PostgreSQL at 127.0.0.1:5432",
        id="pg no database",
    ),
    pytest.param(f"mysql://bibo:{PASSWORD}@db/bibo", "'mysql' is not supported", id="mysql"),
    pytest.param(
        f"postgresql+psycopg2://bibo:{PASSWORD}@db/bibo", "is not supported", id="psycopg2"
    ),
    pytest.param("not a url", "is not a database URL", id="garbage"),
    pytest.param("", "is not a database URL", id="empty"),
    pytest.param(f"postgresql://bibo:{PASSWORD}@db:port/bibo", "port", id="bad port"),
    pytest.param(f"postgresql://bibo:{PASSWORD}@x@db/bibo", "%40", id="unencoded @"),
]

DATABASE_COMMANDS = [
    ["vehicles", "add", "RLG-4711"],
    ["operators", "add", "Leitstelle Unna", "--password-stdin"],
    ["devices", "import", "/nonexistent/devices.json"],
    ["reconcile", "--day", "2026-11-21"],
    ["trips", "--day", "2026-11-21"],
    ["worker", "--once"],
    ["retention"],
]


def assert_one_line(err: str, *needles: str) -> None:
    assert err.count("\n") == 1, err
    assert err.startswith("bibo: ")
    assert "Traceback" not in err
    for needle in needles:
        assert needle in err


@pytest.mark.parametrize(("url", "needle"), BAD_DATABASE_URLS)
@pytest.mark.parametrize("argv", DATABASE_COMMANDS, ids=lambda argv: " ".join(argv[:2]))
def test_a_bad_database_url_is_one_line_before_any_work(
    monkeypatch, capsys, tmp_path, url, needle, argv
):
    monkeypatch.setenv("BIBO_DATABASE_URL", url)
    monkeypatch.setattr("sys.stdin", io.StringIO("a-long-enough-password\n"))
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert_one_line(err, "bibo: BIBO_DATABASE_URL: ", needle)
    assert PASSWORD not in err
    assert list(tmp_path.iterdir()) == []  # nothing was created


def _unusable_sqlite_paths(tmp_path: Path) -> list[tuple[str, str]]:
    not_a_db = tmp_path / "notes.txt"
    not_a_db.write_text("not a database\n")
    cases = [
        (str(tmp_path), "is a directory"),
        (str(not_a_db), "file is not a database"),
        (str(not_a_db / "bibo.db"), "does not exist"),
    ]
    if os.geteuid() != 0:  # root may write anywhere
        read_only = tmp_path / "read-only"
        read_only.mkdir(mode=0o555)
        cases.append((str(read_only / "bibo.db"), "not writable"))
    return cases


def test_unusable_sqlite_files_are_one_line(monkeypatch, capsys, tmp_path):
    for path, needle in _unusable_sqlite_paths(tmp_path):
        monkeypatch.setenv("BIBO_DATABASE_URL", f"sqlite:///{path}")
        assert main(["trips", "--day", "2026-11-21"]) == 2, path
        assert_one_line(capsys.readouterr().err, f"SQLite file {path}: ", needle)


def test_serve_checks_the_database_url_first(tmp_path):
    url = f"postgresql://postgres:{PASSWORD}@127.0.0.1:1/bibo"
    done = subprocess.run(
        [sys.executable, "-m", "backend.cli", "serve", "--port", "0"],
        env={**os.environ, "BIBO_DATABASE_URL": url},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr == (
        "bibo: BIBO_DATABASE_URL: cannot connect to PostgreSQL at 127.0.0.1:1 "
        "(connection refused); is the server running?\n"
    )


def test_check_database_url_classifies_and_masks():
    with pytest.raises(DatabaseUrlError) as exc:
        check_database_url(f"mysql://u:{PASSWORD}@h/x", source="DB")
    assert exc.value.reason is DatabaseUrlReason.UNSUPPORTED
    assert str(exc.value).startswith("DB: 'mysql://u:***@h/x'")
    assert mask_password(f"postgresql://u:{PASSWORD}@h/x") == "postgresql://u:***@h/x"
    assert PASSWORD not in mask_password(f"nonsense://u:{PASSWORD}@h:x/y z")
    check_database_url("sqlite://")  # in memory: nothing to check


def test_a_bad_setting_is_one_line_naming_the_variable(cli, monkeypatch, capsys):
    monkeypatch.setenv("BIBO_SIGHTINGS_RETENTION_DAYS", "a fortnight")
    code, _, err = cli("retention")
    assert code == 2
    assert_one_line(err, "BIBO_SIGHTINGS_RETENTION_DAYS='a fortnight'")
    monkeypatch.delenv("BIBO_SIGHTINGS_RETENTION_DAYS")
    monkeypatch.setenv("BIBO_ENVIRONMENT", "production")
    monkeypatch.setenv("BIBO_SECRET_KEY", "changeme")
    code, _, err = cli("worker", "--once")
    assert code == 2
    assert_one_line(err, "BIBO_SECRET_KEY")
    assert "changeme" not in err


def _bibo_into_a_closed_pipe(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    """Run ``bibo ARGV`` with stdout a pipe whose reader is gone (``bibo … | head`` after
    head exited), so the first write fails however little is written."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        return subprocess.run(
            [sys.executable, "-m", "backend.cli", *argv],
            stdout=write_end,
            stderr=subprocess.PIPE,
            env=env,
            text=True,
            timeout=120,
            check=False,
        )
    finally:
        os.close(write_end)


@pytest.mark.parametrize(
    "argv",
    [
        ["stops", "--format", "text"],
        ["stops", "--format", "json"],
        ["--help"],
        ["vehicles", "add", "RLG-4711"],
        ["fares", "quote", "--from", "de:05978:2001", "--to", "de:05974:1001"],
        ["simulate", "--list"],
        ["onboard", "status", "--outbox", "{outbox}", "--metrics", "off"],
    ],
    ids=lambda argv: " ".join(argv[:2]),
)
def test_a_closed_pipe_is_quiet(tmp_path, argv):
    from onboard.outbox import Outbox

    outbox = tmp_path / "outbox.sqlite3"
    Outbox(outbox, "RLG-4711", "obu-1", "boot-1").close()
    env = {**os.environ, "BIBO_DATABASE_URL": f"sqlite:///{tmp_path / 'bibo.sqlite3'}"}
    argv = [a.replace("{outbox}", str(outbox)) for a in argv]
    done = _bibo_into_a_closed_pipe(argv, env)
    assert done.stderr == ""
    # 141 as for a program killed by SIGPIPE (argparse's --help ignores the pipe and rich
    # exits 1): never a usage error or a crash.
    assert done.returncode in (0, 1, 141)


def test_stops_into_head_is_quiet():
    for _ in range(5):  # head exits at different moments of the writer's output
        done = subprocess.run(
            f"{sys.executable} -m backend.cli stops --format text | head -n 1",
            shell=True,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.stdout.count("\n") == 1
        assert done.stderr == ""


def test_ctrl_c_is_one_line_and_exit_130(monkeypatch, capsys):
    def interrupted(*_args):
        raise KeyboardInterrupt

    monkeypatch.setattr("backend.cli.cmd_stops", interrupted)
    assert main(["stops"]) == 130
    assert capsys.readouterr().err == "bibo: interrupted\n"
    monkeypatch.setattr("backend.fares_cli.main", interrupted)
    assert main(["fares", "quote"]) == 130
    assert capsys.readouterr().err == "bibo: interrupted\n"


def test_a_database_lost_mid_command_is_one_line(cli, monkeypatch):
    def lost(*_args):
        cause = Exception("server closed the connection unexpectedly\nThis probably means")
        raise OperationalError("SELECT 1", {}, cause)

    monkeypatch.setattr("backend.trips.repository.day_trips", lost)
    code, _, err = cli("trips", "--day", "2026-11-21")
    assert code == 2
    assert_one_line(err, "database error: server closed the connection unexpectedly")


def test_a_programming_error_keeps_its_traceback(monkeypatch):
    def broken(*_args):
        raise RuntimeError("a bug")

    monkeypatch.setattr("backend.cli.cmd_stops", broken)
    with pytest.raises(RuntimeError, match="a bug"):
        main(["stops"])


@pytest.mark.parametrize(
    "vehicle_id",
    ["bad id/with space", "<script>alert(1)</script>", "", "x" * 65, "RLG\t4711", "a/b", "€"],
)
def test_vehicle_ids_the_api_refuses_are_refused(cli, capsys, vehicle_id):
    with pytest.raises(SystemExit) as exc:
        cli("vehicles", "add", vehicle_id)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "expected 1-64 letters, digits or '_', '.', ':', '-'" in err


@pytest.mark.parametrize("vehicle_id", ["RLG-4711", "a.b:c_d", "x" * 64])
async def test_a_vehicle_the_cli_registers_can_upload(cli, client, vehicle_id):
    code, out, _ = cli("vehicles", "add", vehicle_id)
    assert code == 0
    vehicle = Vehicle(vehicle_id, bytes.fromhex(out.strip().splitlines()[-1]))
    response = await post_batch(
        client, vehicle, batch_body(vehicle_id), path_vehicle=quote(vehicle_id, safe=":")
    )
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    "name", ["", "   ", "x" * 201, "Leit\x1b[31mstelle", "two\nlines", "RLO\u202eevil"]
)
def test_operator_names_are_bounded_and_printable(cli, capsys, name):
    with pytest.raises(SystemExit) as exc:
        cli("operators", "add", name)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "argument name" in err


def _role_of(engine, name: str) -> str:
    with make_sessionmaker(engine)() as session:
        return session.scalars(
            select(models.Operator.role).where(models.Operator.name == name)
        ).one()


def test_operators_add_defaults_to_the_least_privileged_role(cli, engine):
    code, out, _ = cli("operators", "add", "x" * 200)
    assert code == 0
    assert "(viewer)" in out
    assert _role_of(engine, "x" * 200) == "viewer"
    assert cli("operators", "add", "Zoë", "--role", "agent")[0] == 0
    assert _role_of(engine, "Zoë") == "agent"


def test_serve_refuses_a_port_it_cannot_listen_on(cli, capsys):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        code, _, err = cli("serve", "--port", str(port))
    assert code == 2
    assert_one_line(err, f"--port {port}: cannot listen there")
    with pytest.raises(SystemExit) as exc:
        cli("serve", "--port", "99999")
    assert exc.value.code == 2
    assert "expected a TCP port 0-65535" in capsys.readouterr().err


def test_serve_keeps_idle_connections_open_longer_than_any_client_of_bibo(cli, monkeypatch):
    """The client closes an idle connection first: a request sent just as the server
    closed it would get no answer (a lost upload until the retry)."""
    import httpx
    import uvicorn

    from onboard.const import HTTP_KEEPALIVE_EXPIRY_S

    ran: dict[str, object] = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: ran.update(options))
    # (serve's logging set-up would outlive this test's captured stderr)
    monkeypatch.setattr("backend.observability.configure_logging", lambda level: None)
    assert cli("serve", "--port", "0")[0] == 0
    keep_alive = ran["timeout_keep_alive"]
    assert isinstance(keep_alive, (int, float))
    nginx_upstream_s = 60
    default_client = httpx.Limits().keepalive_expiry
    assert default_client is not None
    assert keep_alive > max(HTTP_KEEPALIVE_EXPIRY_S, default_client, nginx_upstream_s)


def test_reconciling_a_day_past_retention_is_one_line_and_exit_2(cli, engine):
    import datetime as dt

    from backend.db import transaction
    from backend.maintenance.service import apply_retention

    with transaction(make_sessionmaker(engine)) as session:
        apply_retention(
            session, dt.date(2026, 12, 2), 14, 365, dt.datetime(2026, 12, 2, tzinfo=dt.UTC)
        )
    code, out, err = cli("reconcile", "--day", "2026-11-04")
    assert code == 2
    assert out == ""
    assert len(err.strip().splitlines()) == 1
    assert "service day 2026-11-04 is final" in err
    code, out, _ = cli("reconcile", "--day", "2026-11-30")  # kept: reconciled as usual
    assert code == 0
    assert "service day 2026-11-30" in out


def test_retention_refuses_a_day_in_the_future(cli):
    code, out, err = cli("retention", "--today", "2999-01-01")
    assert code == 2
    assert out == ""
    assert "--today 2999-01-01: must not be after today" in err


def test_vehicles_add_registers_a_fleet_at_once_with_one_secret_line_each(cli, engine):
    code, out, _ = cli("vehicles", "add", "VKU-1", "VKU-2", "VKU-3", "--operator", "VKU")
    assert code == 0
    assert out.splitlines()[0].startswith("3 vehicles (operator VKU) registered")
    lines = [line.split() for line in out.strip().splitlines()[1:]]
    assert [vid for vid, _ in lines] == ["VKU-1", "VKU-2", "VKU-3"]
    assert len({secret for _, secret in lines}) == 3
    with make_sessionmaker(engine)() as session:
        for vid, secret in lines:
            vehicle = session.get(models.Vehicle, vid)
            assert vehicle is not None
            assert (vehicle.secret.hex(), vehicle.company) == (secret, "VKU")


@pytest.mark.parametrize(
    ("argv", "error"),
    [
        (["BUS-1", "BUS-7"], "vehicle 'BUS-7' is already registered"),
        (["BUS-1", "BUS-1"], "vehicle 'BUS-1' is given more than once"),
    ],
)
def test_vehicles_add_of_a_fleet_is_all_or_none(cli, engine, argv, error):
    cli("vehicles", "add", "BUS-7")
    code, out, err = cli("vehicles", "add", *argv)
    assert (code, out, err.strip()) == (2, "", f"bibo: {error}; no vehicle registered")
    with make_sessionmaker(engine)() as session:
        assert session.get(models.Vehicle, "BUS-1") is None
