"""Every rule against its pass and fail fixtures, through the pack's gRPC protocol.

Fixtures live in tests/fixtures/policies/<rule-id>/ (see its README): each file is
sent as one stack, Remediate and Analyze per resource and AnalyzeStack once, as the
Pulumi CLI does.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pytest
import yaml

from mesh.analyzer import Diagnostic, PolicyPackProcess
from mesh.check import manifest_resources

from .conftest import FIXTURES

RULE_DIRS = sorted(path for path in FIXTURES.iterdir() if path.is_dir())
PASS_CASES = [(d.name, path) for d in RULE_DIRS for path in sorted(d.glob("pass*.yaml"))]
UNSEEN = "unseen by the engine"
"""expected.yaml key: per fail file, the resources whose violation a real preview hides
from the pack (mesh/engine_view.py: the provider's Check resolves a version range before
the pack sees it; the program's config checks exact versions instead)."""


def _expected(directory: Path) -> dict[str, list[str]]:
    expected: dict[str, list[str]] = yaml.safe_load((directory / "expected.yaml").read_text())
    return {name: labels for name, labels in expected.items() if name != UNSEEN}


def _unseen(directory: Path) -> dict[str, list[str]]:
    expected = yaml.safe_load((directory / "expected.yaml").read_text())
    return expected.get(UNSEEN) or {}


FAIL_CASES = [
    (d.name, d / name, sorted(labels), view)
    for d in RULE_DIRS
    for name, labels in _expected(d).items()
    for view in ("declared", "engine")
]
PASS_CASES_BOTH = [
    (rule, path, view) for rule, path in PASS_CASES for view in ("declared", "engine")
]


def violations_of(
    pack: PolicyPackProcess, path: Path, rule: str, view: str = "declared"
) -> dict[str, list[Diagnostic]]:
    """Diagnostics of `rule` for the file, by `<Kind> <ns>/<name>` (or `(stack)`); `view`
    `engine` hands the pack what a real preview does (checked inputs, live outputs)."""
    resources = manifest_resources([path], stack="prod")
    label = {r.urn: r.label.rsplit(" (", 1)[0] for r in resources}
    found: dict[str, list[Diagnostic]] = defaultdict(list)
    for diagnostic in pack.check(resources, engine_view=view == "engine"):
        if diagnostic.policy == rule:
            found[label[diagnostic.urn] if diagnostic.urn else "(stack)"].append(diagnostic)
    return found


@pytest.mark.parametrize(
    ("rule", "path", "view"),
    PASS_CASES_BOTH,
    ids=[f"{r}/{p.name}/{v}" for r, p, v in PASS_CASES_BOTH],
)
def test_pass_fixture_has_no_violation(
    prod_pack: PolicyPackProcess, rule: str, path: Path, view: str
) -> None:
    found = violations_of(prod_pack, path, rule, view)
    assert not found, {label: [d.message for d in ds] for label, ds in found.items()}


@pytest.mark.parametrize(
    ("rule", "path", "expected", "view"),
    FAIL_CASES,
    ids=[f"{r}/{p.name}/{v}" for r, p, _, v in FAIL_CASES],
)
def test_fail_fixture_flags_exactly_the_expected_resources(
    prod_pack: PolicyPackProcess, rule: str, path: Path, expected: list[str], view: str
) -> None:
    found = violations_of(prod_pack, path, rule, view)
    if view == "engine":
        hidden = _unseen(path.parent).get(path.name, [])
        expected = [label for label in expected if label not in hidden]
    assert sorted(found) == expected
    for label, diagnostics in found.items():
        for diagnostic in diagnostics:
            assert diagnostic.enforcement == "mandatory"
            assert diagnostic.message and "\n" not in diagnostic.message
        # Fixture convention: objects named "unknown..." carry Pulumi's unknown sentinel
        # in a field the rule reads, and the rule must say it failed closed.
        if label.rpartition("/")[2].rpartition(" ")[2].startswith("unknown"):
            assert any("unknown during preview" in d.message for d in diagnostics), label


def test_every_rule_has_pass_and_fail_fixtures(prod_pack: PolicyPackProcess) -> None:
    rules = {policy.name for policy in prod_pack.policies}
    assert {d.name for d in RULE_DIRS} == rules
    for rule in rules:
        assert any(name == rule for name, _ in PASS_CASES), rule
        assert any(name == rule for name, _, _, _ in FAIL_CASES), rule
    for _, path, expected, _ in FAIL_CASES:
        assert path.exists() and expected, path
        assert set(_unseen(path.parent).get(path.name, [])) <= set(expected), path
