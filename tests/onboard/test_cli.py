"""``bibo onboard``: argument errors are one line and exit code 2; the secret never shows."""

from __future__ import annotations

import pytest

from onboard.cli import main

SECRET_HEX = "ab" * 32


@pytest.fixture
def secret_file(tmp_path):
    path = tmp_path / "secret"
    path.write_text(SECRET_HEX + "\n")
    return path


def run_args(secret_file, *extra: str) -> list[str]:
    return [
        "run",
        "--vehicle",
        "RLG-4711",
        "--backend",
        "http://127.0.0.1:9",
        "--secret-file",
        str(secret_file),
        *extra,
    ]


def assert_one_line_error(capsys: pytest.CaptureFixture[str], *needles: str) -> str:
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1
    assert err.startswith("bibo onboard: error: ")
    for needle in needles:
        assert needle in err
    assert "Traceback" not in err
    return err


def test_no_command_is_a_usage_error(capsys):
    assert main([]) == 2
    assert_one_line_error(capsys)


def test_missing_required_option_is_named(capsys):
    assert main(["run", "--vehicle", "RLG-4711"]) == 2
    assert_one_line_error(capsys, "--backend")


def test_help_exits_zero(capsys):
    assert main(["run", "--help"]) == 0
    assert "--secret-file" in capsys.readouterr().out


def test_missing_secret_file(tmp_path, capsys):
    assert main(run_args(tmp_path / "nope")) == 2
    assert_one_line_error(capsys, "--secret-file", "nope")


def test_secret_that_is_not_hex_is_refused_without_echoing_it(tmp_path, capsys):
    path = tmp_path / "secret"
    path.write_text("hunter2-is-my-secret")

    assert main(run_args(path)) == 2
    err = assert_one_line_error(capsys, "expected hex")
    assert "hunter2" not in err


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (["--unit-id", "bad id with spaces"], "--unit-id"),
        (["--upload-interval-s", "0"], "--upload-interval-s"),
        (["--service-uuid", "not-a-uuid"], "service_uuid"),
        (["--adapter", "/dev/hci0"], "--adapter"),
        (["--outbox-cap-mb", "0"], "--outbox-cap-mb"),
        (["--max-batches-per-s", "-1"], "--max-batches-per-s"),
        (["--max-batches-per-s", "nan"], "--max-batches-per-s"),
        (["--watchdog-s", "0"], "--watchdog-s"),
        (["--reset-adapter-after", "-2"], "--reset-adapter-after"),
        (["--gpsd", "localhost:gps"], "--gpsd"),
        (["--gpsd", "localhost:99999"], "--gpsd"),
        (["--vehicle-feed", "127.0.0.1"], "--vehicle-feed"),
        (["--metrics", "nowhere"], "--metrics"),
    ],
)
def test_bad_options_are_named(secret_file, capsys, extra, needle):
    assert main(run_args(secret_file, *extra)) == 2
    err = assert_one_line_error(capsys, needle)
    assert SECRET_HEX not in err


def test_bad_vehicle_and_backend_are_named(secret_file, capsys):
    args = run_args(secret_file)
    args[2] = "RLG 4711"
    assert main(args) == 2
    assert_one_line_error(capsys, "--vehicle")

    args = run_args(secret_file)
    args[4] = "ftp://x"
    assert main(args) == 2
    assert_one_line_error(capsys, "--backend")


def test_unreadable_outbox_is_one_line(secret_file, tmp_path, capsys):
    assert main(run_args(secret_file, "--outbox", str(tmp_path / "missing-dir" / "o.db"))) == 2
    assert_one_line_error(capsys, "outbox")


def test_status_of_a_missing_outbox_is_one_line(tmp_path, capsys):
    assert main(["status", "--outbox", str(tmp_path / "nope.sqlite3")]) == 2
    assert_one_line_error(capsys, "--outbox", "nope.sqlite3")


def test_address_parsing():
    from onboard.cli import _address

    assert _address("127.0.0.1:8472", "--x") == ("127.0.0.1", 8472)
    assert _address("[::1]:2947", "--x") == ("::1", 2947)
    assert _address("gps.local", "--gpsd", 2947) == ("gps.local", 2947)
    assert _address("[::1]", "--gpsd", 2947) == ("::1", 2947)
