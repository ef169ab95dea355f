"""axe-core, the accessibility engine, for the browser tests: npm's ``axe-core`` package,
installed once per checkout into ``.cache/axe-core/`` (git-ignored) with the machine's npm,
then injected into each page Playwright opens.

``AXE_VERSION`` pins the major version so the rule set only changes when we change it."""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any, NoReturn

import pytest

REPO = Path(__file__).resolve().parents[2]
CACHE = REPO / ".cache" / "axe-core"
AXE_VERSION = "4"
SCRIPT = CACHE / "node_modules" / "axe-core" / "axe.min.js"
BLOCKING = ("serious", "critical")
"""Impacts the pages must not have (WCAG 2.1 A and AA rules); minor and moderate findings
are printed, not failed."""
TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]


def _unavailable(reason: str) -> NoReturn:
    if os.environ.get("BIBO_REQUIRE_BROWSER") == "1":
        pytest.fail(f"BIBO_REQUIRE_BROWSER=1 but {reason}")
    pytest.skip(reason)


def axe_script() -> Path:
    """The path of ``axe.min.js``, installing the package with npm on first use."""
    if SCRIPT.exists():
        return SCRIPT
    npm = shutil.which("npm")
    if npm is None:
        _unavailable("npm is missing, so axe-core cannot be installed: apt-get install npm")
    CACHE.mkdir(parents=True, exist_ok=True)
    with (CACHE / ".lock").open("w") as lock:
        # Test processes running side by side (pytest -n) install it once.
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not SCRIPT.exists():
            _install(npm)
    if not SCRIPT.exists():
        _unavailable("npm install axe-core left no axe.min.js")
    return SCRIPT


def _install(npm: str) -> None:
    done = subprocess.run(
        [
            str(npm),
            "install",
            "--prefix",
            str(CACHE),
            "--no-audit",
            "--no-fund",
            "--no-save",
            f"axe-core@{AXE_VERSION}",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if done.returncode != 0:
        _unavailable(f"npm install axe-core failed: {done.stderr.strip()[-400:]}")


def blocking_violations(page: Any) -> list[dict[str, Any]]:
    """Run axe-core on the page Playwright shows; its serious and critical violations."""
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.add_script_tag(path=str(axe_script()))
    result = page.evaluate(
        "async (tags) => await axe.run(document, "
        "{runOnly: {type: 'tag', values: tags}, resultTypes: ['violations']})",
        TAGS,
    )
    violations: list[dict[str, Any]] = result["violations"]
    return [v for v in violations if v.get("impact") in BLOCKING]


def describe(violations: list[dict[str, Any]]) -> str:
    """One line per violation and node: rule, impact, the element, axe's summary."""
    lines = []
    for v in violations:
        for node in v["nodes"][:5]:
            target = " ".join(str(t) for t in node.get("target", []))
            lines.append(f"{v['id']} ({v['impact']}) at {target}: {v['help']}")
    return "\n".join(lines)
