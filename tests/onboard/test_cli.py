"""``bibo onboard``: argument errors are one line and exit code 2; the secret never shows."""

from __future__ import annotations

import logging
import math
import re
from pathlib import Path

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
        (["--beacon", "--beacon-uuid", "not-a-uuid"], "--beacon-uuid"),
        (["--beacon", "--beacon-power", "200"], "--beacon-power"),
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


def _no_placeholder(text: str) -> None:
    """A missing figure is said in words: no ``-``, ``None`` or ``nan`` next to a unit."""
    for line in text.splitlines():
        value = line[21:]
        assert not re.search(r"(^|\s)-(\s|$)", value), line
        assert "None" not in value, line
        assert "nan" not in value.lower(), line


def test_status_of_an_empty_outbox_says_none(tmp_path, capsys):
    from onboard.outbox import Outbox

    path = tmp_path / "outbox.sqlite3"
    Outbox(path, "RLG-4711", "obu-1", "boot-1").close()
    assert main(["status", "--outbox", str(path), "--metrics", "off"]) == 0
    out = capsys.readouterr().out
    assert "oldest unsent data   none\n" in out
    assert "last delivery        never\n" in out
    _no_placeholder(out)


@pytest.mark.parametrize(
    "live",
    [
        {},  # reachable, but the agent has no figures yet
        {
            "bibo_onboard_adverts_per_second": math.nan,
            "bibo_onboard_last_successful_upload_timestamp_seconds": math.nan,
            "bibo_onboard_clock_offset_seconds": math.nan,
        },
    ],
    ids=["no figures", "NaN figures"],
)
def test_status_never_shows_a_missing_value_as_a_number(live):
    from onboard.cli import _format_text, status_report
    from onboard.outbox import OutboxHealth

    health = OutboxHealth(
        pending_batches=0,
        quarantined_batches=0,
        unbatched_events=0,
        unbatched_sightings=0,
        oldest_pending_age_ms=None,
    )
    text = _format_text(status_report(health, live, 1_795_421_200_000), Path("o"), ("h", 1))
    _no_placeholder(text)
    agent = text.splitlines()[-1]
    assert agent == "agent                running: adverts/s unknown, no upload yet"


def test_status_shows_the_figures_it_has():
    from onboard.cli import _format_text, status_report
    from onboard.outbox import OutboxHealth

    health = OutboxHealth(1, 0, 2, 3, 4_000, oldest_unsent_age_ms=12_000)
    live = {
        "bibo_onboard_adverts_per_second": 12.5,
        "bibo_onboard_last_successful_upload_timestamp_seconds": 1_795_421_190.0,
        "bibo_onboard_clock_offset_seconds": -0.25,
        "bibo_onboard_scanner_restarts_total": 0.0,
    }
    text = _format_text(status_report(health, live, 1_795_421_200_000), Path("o"), ("h", 1))
    assert "oldest unsent data   12 s old\n" in text
    assert text.splitlines()[-1] == (
        "agent                running: 12.5 adverts/s, last upload 10 s ago, "
        "clock offset -0.2 s, 0 scanner restarts"
    )


async def test_run_says_when_the_backend_cannot_be_reached(caplog):
    import httpx

    from onboard.cli import UNREACHABLE_LOG_INTERVAL_S, _ReportingUploader

    down = True

    def backend(request: httpx.Request) -> httpx.Response:
        if down:
            raise httpx.ConnectError("All connection attempts failed", request=request)
        return httpx.Response(200, json={"detail": "stored"})

    now = [0.0]
    async with httpx.AsyncClient(transport=httpx.MockTransport(backend)) as client:
        uploader = _ReportingUploader(
            client, "http://127.0.0.1:1", "RLG-4711", b"s" * 32, lambda: 0, monotonic=lambda: now[0]
        )
        caplog.set_level(logging.INFO, logger="onboard")
        for step in (0.0, 1.0, UNREACHABLE_LOG_INTERVAL_S):
            now[0] += step
            await uploader.send(b"{}")
        down = False
        await uploader.send(b"{}")
    said = [r for r in caplog.records if r.name == "onboard"]
    assert [r.levelno for r in said] == [logging.WARNING, logging.WARNING, logging.INFO]
    assert "cannot reach the backend at http://127.0.0.1:1/" in said[0].getMessage()
    assert said[0].getMessage().endswith("retrying (attempt 1)")
    assert said[1].getMessage().endswith("retrying (attempt 3)")
    assert said[2].getMessage() == "the backend answers again after 3 failed attempts"
