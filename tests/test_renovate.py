"""renovate.json: each manager finds what it should in this repository's own files."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from components.observability import ADDON_CHARTS
from tests.conftest import PROJECT_DIR

CONFIG = json.loads((PROJECT_DIR / "renovate.json").read_text())


def python_regex(javascript: str) -> re.Pattern[str]:
    """Renovate's (JavaScript) regex in Python's dialect: named groups `(?<x>` -> `(?P<x>`."""
    return re.compile(javascript.replace("(?<", "(?P<"))


def tracked_files() -> list[Path]:
    skip = ("venv", ".git", "out", "__pycache__", ".mypy_cache", ".ruff_cache", ".hypothesis")
    return [
        p
        for p in PROJECT_DIR.rglob("*")
        if p.is_file() and not any(part in skip for part in p.relative_to(PROJECT_DIR).parts)
    ]


def matched_files(manager: dict[str, Any]) -> list[Path]:
    patterns = [python_regex(pattern) for pattern in manager["fileMatch"]]
    return sorted(
        p
        for p in tracked_files()
        if any(x.search(str(p.relative_to(PROJECT_DIR))) for x in patterns)
    )


def found(manager: dict[str, Any]) -> list[dict[str, str]]:
    deps = []
    for path in matched_files(manager):
        text = path.read_text()
        for pattern in manager["matchStrings"]:
            deps += [m.groupdict() for m in python_regex(pattern).finditer(text)]
    return deps


def manager(description_start: str) -> dict[str, Any]:
    (chosen,) = [
        m for m in CONFIG["customManagers"] if m["description"].startswith(description_start)
    ]
    return chosen


def test_the_istio_manager_finds_dev_revisions_only() -> None:
    istio = manager("Istio revisions")
    assert [p.name for p in matched_files(istio)] == ["Pulumi.dev.yaml"]
    assert sorted(d["currentValue"] for d in found(istio)) == ["1.30.5", "1.31.1"]


def test_the_addon_manager_finds_every_pinned_chart() -> None:
    addons = manager("The add-on charts")
    assert {(d["registryUrl"], d["depName"], d["currentValue"]) for d in found(addons)} == set(
        ADDON_CHARTS.values()
    )


def test_the_python_requirements_are_watched() -> None:
    pip = {"fileMatch": CONFIG["pip_requirements"]["fileMatch"]}
    watched = [str(p.relative_to(PROJECT_DIR)) for p in matched_files(pip)]
    assert watched == ["policies/requirements.txt", "requirements-dev.txt", "requirements.txt"]


def test_every_action_is_pinned_to_a_sha_with_its_version_beside() -> None:
    pinned = re.compile(r"uses: [\w.-]+/[\w.-]+@[0-9a-f]{40} # v\d+\.\d+\.\d+$")
    for workflow in sorted((PROJECT_DIR / ".github" / "workflows").glob("*.yml")):
        for line in workflow.read_text().splitlines():
            if "uses:" in line:
                assert pinned.search(line.strip()), f"{workflow.name}: {line.strip()}"
