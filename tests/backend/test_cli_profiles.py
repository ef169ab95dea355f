"""The ``bibo`` console script and the install profiles (pyproject's extras).

A bus installs ``bibo[onboard]`` only: the script must start without the server's or the
simulator's modules, and a command whose profile is missing says which to install.
``tests/install/check_onboard_profile.sh`` proves it in a real onboard-only install.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from backend import cli

ROOT = Path(__file__).resolve().parents[2]

SERVER_OR_SIMULATOR = ("sqlalchemy", "fastapi", "alembic", "scipy", "matplotlib", "simulator")


def _extra(extras: dict[str, list[str]], name: str) -> set[str]:
    """The distribution names an extra installs, through ``bibo[...]`` self-references."""
    names: set[str] = set()
    for requirement in extras[name]:
        dist = re.match(r"[A-Za-z0-9._-]+", requirement)
        assert dist is not None, requirement
        if dist.group() == "bibo":
            inner = re.search(r"\[(.*)\]", requirement)
            assert inner is not None, requirement
            for other in inner.group(1).split(","):
                names |= _extra(extras, other.strip())
        else:
            names.add(dist.group().lower().replace("_", "-"))
    return names


def test_every_command_has_a_profile():
    parser = cli.build_parser()
    [commands] = [a for a in parser._actions if a.dest == "command"]
    assert set(cli.COMMAND_PROFILE) == set(commands.choices)
    assert set(cli.COMMAND_PROFILE.values()) <= set(cli.PROFILES)


def test_each_profiles_probe_modules_come_from_that_extra():
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    provided_by = importlib.metadata.packages_distributions()
    for profile, (_, modules) in cli.PROFILES.items():
        installs = _extra(extras, profile)
        for module in modules:
            dists = {d.lower().replace("_", "-") for d in provided_by[module]}
            assert dists & installs, f"{module} ({dists}) is not in bibo[{profile}]"
    for profile, included in cli.PROFILE_INCLUDES.items():
        for other in included:
            assert _extra(extras, other) <= _extra(extras, profile)


def test_onboard_profile_installs_no_server_or_numerics():
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    base = {re.split(r"[<>=\[; ]", r)[0].lower() for r in extras["dependencies"]}
    onboard = _extra(extras["optional-dependencies"], "onboard") | base
    for forbidden in ("fastapi", "sqlalchemy", "psycopg", "scipy", "matplotlib", "numpy"):
        assert forbidden not in onboard


def test_importing_the_console_script_loads_no_server_or_simulator_module():
    code = (
        "import sys, backend.cli\n"
        f"loaded = [m for m in {SERVER_OR_SIMULATOR!r} if m in sys.modules]\n"
        "print(','.join(loaded))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == ""


@pytest.fixture
def without(monkeypatch):
    """Make ``find_spec`` report the named modules as not installed."""
    real = importlib.util.find_spec

    def hide(*names: str) -> None:
        def find_spec(name: str, package: str | None = None):
            return None if name in names else real(name, package)

        monkeypatch.setattr(importlib.util, "find_spec", find_spec)

    return hide


@pytest.mark.parametrize(
    ("argv", "hidden", "profile", "named"),
    [
        (["evaluate", "--worlds"], "matplotlib", "sim", "the simulator"),
        (["demo"], "sqlalchemy", "sim", "the simulator"),
        (["serve", "--port", "0"], "fastapi", "server", "the server"),
        (["trips", "--day", "2026-05-04"], "sqlalchemy", "server", "the server"),
        (["fares", "quote", "--from", "a", "--to", "b"], "scipy", "server", "the server"),
        (["onboard", "run", "--help"], "bleak", "onboard", "the onboard agent"),
    ],
)
def test_a_command_without_its_profile_names_the_profile_to_install(
    argv, hidden, profile, named, without, capsys
):
    without(hidden)
    assert cli.main(argv) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err == (
        f"bibo: {argv[0]} needs {named}, which is not installed here "
        f"(no module {hidden!r}): pip install 'bibo[{profile}]'\n"
    )


def test_help_and_onboard_commands_need_no_server(without, capsys):
    without(*cli.PROFILES["server"][1], *cli.PROFILES["sim"][1])
    with pytest.raises(SystemExit) as exc:
        cli.main(["--help"])
    assert exc.value.code == 0
    out, _ = capsys.readouterr()
    for command in cli.COMMAND_PROFILE:
        assert command in out
    assert cli.main(["onboard", "run", "--help"]) == 0
    assert "--secret-file" in capsys.readouterr().out
