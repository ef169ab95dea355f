"""The package's public names load on first use (fare_engine/__init__.py)."""

import subprocess
import sys

import fare_engine


def test_every_public_name_resolves_from_its_home():
    for name in fare_engine.__all__:
        assert getattr(fare_engine, name).__module__.startswith("fare_engine.")
    assert sorted(fare_engine._HOMES) == sorted(fare_engine.__all__)


def test_geometry_alone_loads_no_solver():
    code = "import sys, fare_engine.geo; print('scipy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
