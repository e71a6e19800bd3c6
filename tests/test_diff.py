"""`mesh diff`: two stacks' objects compared object by object."""

from __future__ import annotations

import json
from pathlib import Path

from mesh.diff import compare
from tests.conftest import PROJECT_DIR, mesh_command


def test_compare_reports_objects_only_in_one_and_a_diff_per_changed_object() -> None:
    source = {("Namespace", "", "a"): {"metadata": {"name": "a"}}, ("Gateway", "x", "g"): {"v": 1}}
    target = {("Namespace", "", "b"): {"metadata": {"name": "b"}}, ("Gateway", "x", "g"): {"v": 2}}
    result = compare(source, target, ("dev", "prod"))
    assert result["onlyInFrom"] == ["Namespace a"] and result["onlyInTo"] == ["Namespace b"]
    (change,) = result["changed"]
    assert change["object"] == "Gateway x/g"
    assert "-v: 1\n+v: 2\n" in change["diff"]


def test_dev_against_prod_shows_what_a_promotion_reviewer_needs() -> None:
    result = mesh_command("diff", "--from", "dev", "--to", "prod", "--format", "json")
    assert result.returncode == 1, result.stderr  # they differ
    report = json.loads(result.stdout)
    assert "Release istio-system/istiod-1-31-1" in report["onlyInFrom"]  # the canary
    assert "Namespace istio-egress" in report["onlyInTo"]
    changed = {change["object"]: change["diff"] for change in report["changed"]}
    assert "+    - shop.example.com" in changed["Gateway istio-ingress/ingress"]


def test_a_stack_against_itself_differs_in_nothing(tmp_path: Path) -> None:
    copy = tmp_path / "Pulumi.dev.yaml"
    copy.write_text((PROJECT_DIR / "Pulumi.dev.yaml").read_text())
    result = mesh_command("diff", "--from", "dev", "--to-file", str(copy))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "declare the same objects" in result.stdout


def test_an_unknown_stack_is_refused() -> None:
    result = mesh_command("diff", "--from", "dev", "--to", "staging")
    assert result.returncode == 2 and "no stack 'staging'" in result.stderr
