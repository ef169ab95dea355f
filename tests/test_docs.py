"""The repository stands alone: its references point at files inside it (docs/*.md)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
THIS = Path(__file__).resolve().relative_to(ROOT).as_posix()

OUTSIDE_REFERENCES = (
    "../shared",
    "/work/shared",
    "DESIGN.md",
    "STYLE.md",
    "TARIFF-SOURCES.md",
    "DESIGN §",
    "STYLE item",
)
"""Names of documents that lived outside the repository, which a clone does not have."""

DOCS_PATH = re.compile(r"(?<![\w.-])docs/[\w.-]+\.md")
BACKTICKED = re.compile(r"`([^`\s]+)`")
MD_LINK = re.compile(r"\]\(([^)\s]+)\)")
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*$", re.MULTILINE)
FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)


@pytest.fixture(scope="module")
def tracked() -> dict[str, str]:
    """Every tracked file's text (undecodable bytes dropped), by path from the repo root."""
    if shutil.which("git") is None:
        pytest.skip("git is not installed: cannot list the tracked files")
    result = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=False, timeout=60
    )
    if result.returncode != 0:
        reason = result.stderr.decode(errors="replace").strip()
        pytest.skip(f"not a git work tree ({reason})")
    texts = {}
    for name in result.stdout.decode().split("\0"):
        path = ROOT / name
        if name and path.is_file():
            texts[name] = path.read_bytes().decode("utf-8", errors="ignore")
    return texts


def _docs(tracked: dict[str, str]) -> dict[str, str]:
    return {
        name: text
        for name, text in tracked.items()
        if name.startswith("docs/") and name.endswith(".md")
    }


def _anchors(markdown: str) -> set[str]:
    """GitHub's anchors for the headings of a markdown text (code blocks left out)."""
    anchors = set()
    for title in HEADING.findall(FENCE.sub("", markdown)):
        slug = re.sub(r"[^\w\- ]", "", title.strip().lower()).replace(" ", "-")
        anchors.add(slug)
    return anchors


def test_no_reference_points_outside_the_repository(tracked):
    found = [
        f"{name}:{number}: {line.strip()}"
        for name, text in tracked.items()
        if name != THIS
        for number, line in enumerate(text.splitlines(), 1)
        if any(ref in line for ref in OUTSIDE_REFERENCES)
    ]
    assert not found, "references to documents outside the repository:\n" + "\n".join(found)


def test_there_are_docs(tracked):
    assert {"docs/architecture.md", "docs/contracts.md", "docs/operations.md"} <= set(
        _docs(tracked)
    )


def test_every_docs_path_mentioned_exists(tracked):
    missing = sorted(
        f"{name}: {path}"
        for name, text in tracked.items()
        if name != THIS
        for path in set(DOCS_PATH.findall(text))
        if not (ROOT / path).is_file()
    )
    assert not missing, "docs/ files mentioned but missing:\n" + "\n".join(missing)


def test_every_file_path_in_the_docs_exists(tracked):
    missing = sorted(
        f"{name}: {path}"
        for name, text in _docs(tracked).items()
        for path in set(BACKTICKED.findall(text))
        if "/" in path and path.endswith((".py", ".md", ".toml")) and not (ROOT / path).is_file()
    )
    assert not missing, "paths in docs/ that do not exist:\n" + "\n".join(missing)


def test_every_link_in_the_docs_leads_somewhere(tracked):
    broken = []
    for name, text in _docs(tracked).items():
        for target in MD_LINK.findall(text):
            if "://" in target:
                continue
            file_part, _, anchor = target.partition("#")
            path = (ROOT / name).parent / file_part if file_part else ROOT / name
            if not path.is_file():
                broken.append(f"{name}: {target} (no such file)")
            elif anchor and path.suffix == ".md" and anchor not in _anchors(path.read_text()):
                broken.append(f"{name}: {target} (no such heading)")
    assert not broken, "broken links in docs/:\n" + "\n".join(broken)
