"""Every rule against its pass and fail fixtures, through the pack's gRPC protocol.

Fixtures live in tests/fixtures/policies/<rule-id>/ (see its README): each file is
sent as one stack, Remediate and Analyze per resource and AnalyzeStack once, as the
Pulumi CLI does. Each fixture runs in three views: `declared` and `engine` through the
pack process, and `in-process` (tests/policies/in_process.py), the same rules called in
this process, which is what mutation testing mutates.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pytest
import yaml

from mesh.analyzer import Diagnostic, PolicyPackProcess
from mesh.check import manifest_resources

from .conftest import FIXTURES, PROD_CONFIG
from .in_process import InProcessPack

RULE_DIRS = sorted(path for path in FIXTURES.iterdir() if path.is_dir())
PASS_CASES = [(d.name, path) for d in RULE_DIRS for path in sorted(d.glob("pass*.yaml"))]
UNSEEN = "unseen by the engine"
"""expected.yaml key: per fail file, the resources whose violation a real preview hides
from the pack (mesh/engine_view.py: the provider's Check resolves a version range before
the pack sees it; the program's config checks exact versions instead)."""


def _expected(directory: Path) -> dict[str, dict[str, list[str]]]:
    """file -> {label -> the fragments its messages hold}, per fail file of expected.yaml.

    An entry is a label (`Kind ns/name`: violations of any number and wording) or a
    one-key mapping from a label to fragments: exactly one violation per fragment, each
    holding its fragment (the reason the resource fails, e.g. `IST0131`).
    """
    expected = yaml.safe_load((directory / "expected.yaml").read_text())
    found: dict[str, dict[str, list[str]]] = {}
    for name, entries in expected.items():
        if name == UNSEEN:
            continue
        found[name] = {}
        for entry in entries:
            label, fragments = next(iter(entry.items())) if isinstance(entry, dict) else (entry, [])
            found[name][label] = [str(f) for f in fragments]
    return found


def _unseen(directory: Path) -> dict[str, list[str]]:
    expected = yaml.safe_load((directory / "expected.yaml").read_text())
    return expected.get(UNSEEN) or {}


VIEWS = ("declared", "engine", "in-process")

FAIL_CASES = [
    (d.name, d / name, labels, view)
    for d in RULE_DIRS
    for name, labels in _expected(d).items()
    for view in VIEWS
]
PASS_CASES_BOTH = [(rule, path, view) for rule, path in PASS_CASES for view in VIEWS]


def violations_of(
    request: pytest.FixtureRequest, path: Path, rule: str, view: str = "declared"
) -> dict[str, list[Diagnostic]]:
    """Diagnostics of `rule` for the file, by `<Kind> <ns>/<name>` (or `(stack)`); `view`
    `engine` hands the pack what a real preview does (checked inputs, live outputs),
    `in-process` calls the rules here (the pack process is only started for the others)."""
    resources = manifest_resources([path], stack="prod")
    label = {r.urn: r.label.rsplit(" (", 1)[0] for r in resources}
    found: dict[str, list[Diagnostic]] = defaultdict(list)
    if view == "in-process":
        diagnostics = InProcessPack(PROD_CONFIG).check(resources)
    else:
        pack: PolicyPackProcess = request.getfixturevalue("prod_pack")
        diagnostics = pack.check(resources, engine_view=view == "engine")
    for diagnostic in diagnostics:
        if diagnostic.policy == rule:
            found[label[diagnostic.urn] if diagnostic.urn else "(stack)"].append(diagnostic)
    return found


@pytest.mark.parametrize(
    ("rule", "path", "view"),
    PASS_CASES_BOTH,
    ids=[f"{r}/{p.name}/{v}" for r, p, v in PASS_CASES_BOTH],
)
def test_pass_fixture_has_no_violation(
    request: pytest.FixtureRequest, rule: str, path: Path, view: str
) -> None:
    found = violations_of(request, path, rule, view)
    assert not found, {label: [d.message for d in ds] for label, ds in found.items()}


@pytest.mark.parametrize(
    ("rule", "path", "expected", "view"),
    FAIL_CASES,
    ids=[f"{r}/{p.name}/{v}" for r, p, _, v in FAIL_CASES],
)
def test_fail_fixture_flags_exactly_the_expected_resources(
    request: pytest.FixtureRequest,
    rule: str,
    path: Path,
    expected: dict[str, list[str]],
    view: str,
) -> None:
    found = violations_of(request, path, rule, view)
    hidden = _unseen(path.parent).get(path.name, []) if view == "engine" else []
    assert sorted(found) == sorted(label for label in expected if label not in hidden)
    for label, diagnostics in found.items():
        for diagnostic in diagnostics:
            assert diagnostic.enforcement == "mandatory"
            assert diagnostic.message and "\n" not in diagnostic.message
        messages = [d.message for d in diagnostics]
        if expected[label]:
            assert len(messages) == len(expected[label]), (label, messages)
            for fragment in expected[label]:
                holding = next((m for m in messages if fragment in m), None)
                assert holding is not None, f"{label}: no message holds {fragment!r}: {messages}"
                messages.remove(holding)
        # Fixture convention: objects named "unknown..." carry Pulumi's unknown sentinel
        # in a field the rule reads, and the rule must say it failed closed.
        if label.rpartition("/")[2].rpartition(" ")[2].startswith("unknown"):
            assert any("unknown during preview" in d.message for d in diagnostics), label


CLEAN = [FIXTURES / "clean.yaml", FIXTURES / "clean-ambient.yaml"]
"""Whole meshes (clean-ambient.yaml: what the stack emits for ambient namespaces, with and
without a waypoint, and a Gateway API ingress) that no rule of the pack may flag."""


@pytest.mark.parametrize(
    ("path", "view"),
    [(path, view) for path in CLEAN for view in VIEWS],
    ids=[f"{path.name}/{view}" for path in CLEAN for view in VIEWS],
)
def test_clean_meshes_pass_every_rule(
    request: pytest.FixtureRequest, path: Path, view: str
) -> None:
    resources = manifest_resources([path], stack="prod")
    if view == "in-process":
        diagnostics = InProcessPack(PROD_CONFIG).check(resources)
    else:
        pack: PolicyPackProcess = request.getfixturevalue("prod_pack")
        diagnostics = pack.check(resources, engine_view=view == "engine")
    assert len(resources) > 10
    assert [(d.policy, d.message) for d in diagnostics] == []


def test_every_rule_has_pass_and_fail_fixtures(prod_pack: PolicyPackProcess) -> None:
    rules = {policy.name for policy in prod_pack.policies}
    assert {d.name for d in RULE_DIRS} == rules
    for rule in rules:
        assert any(name == rule for name, _ in PASS_CASES), rule
        assert any(name == rule for name, _, _, _ in FAIL_CASES), rule
    for _, path, expected, _ in FAIL_CASES:
        assert path.exists() and expected, path
        assert set(_unseen(path.parent).get(path.name, [])) <= set(expected), path


@pytest.mark.parametrize(
    ("rule", "path", "expected", "view"),
    [case for case in FAIL_CASES if case[3] == "in-process"],
    ids=[f"{r}/{p.name}" for r, p, _, v in FAIL_CASES if v == "in-process"],
)
def test_rules_fill_in_their_config_defaults_themselves(
    rule: str, path: Path, expected: dict[str, list[str]], view: str
) -> None:
    # The CLI fills schema defaults in before Configure; a pack driven without them (an
    # older CLI, `mesh check` without a config) must judge the same.
    resources = manifest_resources([path], stack="prod")
    bare = InProcessPack(PROD_CONFIG, defaults_filled=False).check(resources)
    filled = InProcessPack(PROD_CONFIG).check(resources)
    assert [d.message for d in bare if d.policy == rule] == [
        d.message for d in filled if d.policy == rule
    ]
