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
FAIL_CASES = [
    (d.name, d / name, sorted(labels))
    for d in RULE_DIRS
    for name, labels in yaml.safe_load((d / "expected.yaml").read_text()).items()
]


def violations_of(pack: PolicyPackProcess, path: Path, rule: str) -> dict[str, list[Diagnostic]]:
    """Diagnostics of `rule` for the file, by `<Kind> <ns>/<name>` (or `(stack)`)."""
    resources = manifest_resources([path], stack="prod")
    label = {r.urn: r.label.rsplit(" (", 1)[0] for r in resources}
    found: dict[str, list[Diagnostic]] = defaultdict(list)
    for diagnostic in pack.check(resources):
        if diagnostic.policy == rule:
            found[label[diagnostic.urn] if diagnostic.urn else "(stack)"].append(diagnostic)
    return found


@pytest.mark.parametrize(("rule", "path"), PASS_CASES, ids=[f"{r}/{p.name}" for r, p in PASS_CASES])
def test_pass_fixture_has_no_violation(prod_pack: PolicyPackProcess, rule: str, path: Path) -> None:
    found = violations_of(prod_pack, path, rule)
    assert not found, {label: [d.message for d in ds] for label, ds in found.items()}


@pytest.mark.parametrize(
    ("rule", "path", "expected"), FAIL_CASES, ids=[f"{r}/{p.name}" for r, p, _ in FAIL_CASES]
)
def test_fail_fixture_flags_exactly_the_expected_resources(
    prod_pack: PolicyPackProcess, rule: str, path: Path, expected: list[str]
) -> None:
    found = violations_of(prod_pack, path, rule)
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
        assert any(name == rule for name, _, _ in FAIL_CASES), rule
    for _, path, expected in FAIL_CASES:
        assert path.exists() and expected, path
