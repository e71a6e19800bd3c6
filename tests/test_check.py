"""`python -m mesh check`: manifests and stacks through the real policy pack.

Each `main()` call starts the pack as the Pulumi CLI would (about half a second), so
these tests check what only the command does: reading input, choosing the policy
config, reporting, exit codes. The rules themselves are tested in tests/policies/.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from mesh import check
from mesh.analyzer import PACK_DIR
from mesh.program import run_stack
from tests.conftest import mesh_command

FIXTURES = Path(__file__).resolve().parent / "fixtures"
VIOLATIONS = FIXTURES / "policies" / "violations.yaml"
CLEAN = FIXTURES / "policies" / "clean.yaml"
BROKEN_STACK = FIXTURES / "broken-stack.yaml"
PROD_CONFIG = json.loads((PACK_DIR / "config" / "prod.json").read_text())


def run_json(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> tuple[int, list[dict[str, Any]]]:
    status = check.main([*argv, "--format", "json"])
    out = capsys.readouterr().out
    return status, json.loads(out) if out.strip() else []


def labels(violations: list[dict[str, Any]]) -> set[tuple[str, str]]:
    """(policy, `<Kind> <ns>/<name>`) of each violation, without the file position."""
    return {(v["policy"], v["resource"].rsplit(" (", 1)[0]) for v in violations}


def test_each_done_when_violation_is_flagged(capsys: pytest.CaptureFixture[str]) -> None:
    status, violations = run_json([str(VIOLATIONS)], capsys)
    assert status == 1
    assert labels(violations) == {
        ("peer-authentication-strict", "PeerAuthentication shop/permissive"),
        ("peer-authentication-strict", "PeerAuthentication shop/port-disable"),
        ("destination-rule-tls", "DestinationRule shop/reviews"),
        ("workload-injection-enabled", "Deployment shop/legacy"),
        ("namespace-injection", "Namespace outside"),
        ("namespace-default-deny", "Namespace outside"),
        ("virtual-service-subsets-exist", "VirtualService shop/ratings"),
    }
    for violation in violations:
        assert set(violation) == {"policy", "enforcement", "resource", "message"}
        assert violation["enforcement"] == "mandatory"
    assert violations[0]["resource"] == (f"PeerAuthentication shop/permissive ({VIOLATIONS}:1)")


@pytest.mark.parametrize("index", range(6))
def test_each_violation_alone_exits_1(
    index: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    document = list(yaml.safe_load_all(VIOLATIONS.read_text()))[index]
    path = tmp_path / "one.yaml"
    path.write_text(yaml.safe_dump(document))
    status, violations = run_json([str(path)], capsys)
    assert status == 1 and violations


def test_clean_manifests_exit_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert check.main([str(CLEAN)]) == 0
    assert capsys.readouterr().out.strip() == "no violations in 11 resources"


def test_text_output_is_one_line_per_violation_and_a_summary(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert check.main([str(VIOLATIONS), str(CLEAN)]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 8
    assert lines[0].startswith(
        "mandatory: [peer-authentication-strict] PeerAuthentication shop/permissive ("
    )
    # A second file is part of the same check: its DestinationRule shop/reviews and
    # Namespace shop are judged alongside the first file's objects.
    assert lines[-1] == "7 violation(s), 7 mandatory, in 17 resources"


def test_policy_config_sets_the_enforcement(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "lenient.json"
    config.write_text(json.dumps({"all": "advisory", "namespace-default-deny": "disabled"}))
    status, violations = run_json([str(VIOLATIONS), "--policy-config", str(config)], capsys)
    assert status == 0
    assert {v["enforcement"] for v in violations} == {"advisory"}
    assert "namespace-default-deny" not in {v["policy"] for v in violations}
    assert len(violations) == 6


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "No such file"),
        ("kind: [unclosed", "not valid YAML"),
        ("just: a mapping\n", "not a Kubernetes object"),
        ("- a\n- list\n", "not a Kubernetes object"),
    ],
)
def test_unusable_manifests_exit_2(
    tmp_path: Path, content: str | None, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "input.yaml"
    if content is not None:
        path.write_text(content)
    assert check.main([str(path)]) == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["--stack", "dev", str(CLEAN)],
        ["--stack", "no-such-stack"],
        ["--stack-file", "does-not-exist.yaml"],
        ["--format", "xml", str(CLEAN)],
        [str(CLEAN), "--policy-config", "does-not-exist.json"],
    ],
)
def test_unusable_arguments_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert check.main(argv) == 2
    assert capsys.readouterr().err


def test_bad_policy_config_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "typo.json"
    config.write_text(json.dumps({"peer-authentication-strikt": "mandatory"}))
    assert check.main([str(CLEAN), "--policy-config", str(config)]) == 2
    assert "unknown policies: peer-authentication-strikt" in capsys.readouterr().err


def test_python_dash_m_mesh_check_runs_the_command() -> None:
    result = mesh_command("check", str(VIOLATIONS), "--format", "json")
    assert result.returncode == 1, result.stderr
    assert len(json.loads(result.stdout)) == 7


# -- stacks --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dev_export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """dev rendered offline: prod's promotion gate reads it as the `dev` stack."""
    from mesh import render

    out = tmp_path_factory.mktemp("dev")
    assert render.main(["--stack", "dev", "--out", str(out)]) == 0
    return out / "stack.json"


def test_dev_stack_passes_every_mandatory_rule(capsys: pytest.CaptureFixture[str]) -> None:
    status, violations = run_json(["--stack", "dev"], capsys)
    assert [v for v in violations if v["enforcement"] == "mandatory"] == []
    assert status == 0
    # policies/config/dev.json applies: dev's single istiod replica is only advisory.
    advisory = {v["policy"] for v in violations}
    assert advisory == {"istiod-high-availability"}
    assert all(v["resource"].startswith("urn:pulumi:dev::istio-mesh::") for v in violations)


def test_prod_stack_passes_every_rule(dev_export: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, violations = run_json(["--stack", "prod", "--reference", f"dev={dev_export}"], capsys)
    assert (status, violations) == (0, [])


def test_broken_stack_fails_with_exactly_the_expected_rules(
    capsys: pytest.CaptureFixture[str],
) -> None:
    config = str(PACK_DIR / "config" / "prod.json")
    status, violations = run_json(
        ["--stack-file", str(BROKEN_STACK), "--policy-config", config], capsys
    )
    assert status == 1
    found = {(v["policy"], v["resource"].rsplit("::", 1)[1]) for v in violations}
    assert found == {
        ("istio-helm-release-pinned", "istio-base"),
        ("istio-helm-release-pinned", "istio-istiod-1-29-4"),
        ("istio-helm-release-pinned", "gateway-ingress-release"),
        ("istiod-high-availability", "istio-istiod-1-29-4"),
    }


def test_a_weakened_stack_is_caught_on_its_urns() -> None:
    """The stack path end to end: the real dev program, then two edits a careless
    change could make, judged through `run_policy_pack` as the benchmark calls it."""
    edited = []
    for resource in check.program_resources(run_stack("dev")):
        props = json.loads(json.dumps(resource.props))
        if resource.type.endswith(":PeerAuthentication"):
            props["spec"]["mtls"]["mode"] = "PERMISSIVE"
        if resource.name == "namespace-shop-default-deny":
            continue
        edited.append(dataclasses.replace(resource, props=props))
    violations = check.run_policy_pack(edited, "dev", PROD_CONFIG)
    found = {(v.policy, v.resource.rsplit("::", 1)[-1]) for v in violations}
    assert ("peer-authentication-strict", "istio-strict-mtls") in found
    assert ("namespace-default-deny", "namespace-shop-namespace") in found
    assert "mesh-wide-strict-mtls" in {v.policy for v in violations if v.resource == "(stack)"}
