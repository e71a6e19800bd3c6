"""mesh.engine_view: what a real preview hands the pack, emulated offline."""

from __future__ import annotations

import pytest

from mesh.engine_view import checked_inputs, live_outputs, resolved_version
from tests.conftest import mesh_command

RELEASE = "kubernetes:helm.sh/v3:Release"
UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"


@pytest.mark.parametrize(
    ("declared", "checked"),
    [
        ("1.30.5", "1.30.5"),
        ("1.31.0-beta.1", "1.31.0-beta.1"),
        ("~1.30.0", "1.30.0"),
        ("^1.30", "1.30.0"),
        (">=1.30.2", "1.30.2"),
        ("1.30.x", "1.30.0"),
        (UNKNOWN, UNKNOWN),  # unknown during preview: the provider does not resolve it
    ],
)
def test_a_version_range_arrives_resolved(declared: str, checked: str) -> None:
    assert resolved_version(declared) == checked


def test_the_release_check_drops_compat_and_fills_the_timeout_of_a_waiting_release() -> None:
    declared = {"chart": "istiod", "version": "~1.30.0", "compat": "true", "atomic": True}
    assert checked_inputs(RELEASE, declared) == {
        "chart": "istiod",
        "version": "1.30.0",
        "atomic": True,
        "timeout": 300,
    }
    waiting_not = checked_inputs(RELEASE, {"chart": "base", "skipAwait": True})
    assert "timeout" not in waiting_not
    other = {"metadata": {"name": "x"}, "compat": "kept"}
    assert checked_inputs("kubernetes:core/v1:Namespace", other) is other


def test_stack_rules_see_live_objects_and_release_status() -> None:
    namespace = live_outputs("kubernetes:core/v1:Namespace", "shop", {"metadata": {"name": "shop"}})
    assert namespace["metadata"]["name"] == "shop"
    assert {"uid", "resourceVersion", "creationTimestamp", "managedFields"} <= set(
        namespace["metadata"]
    )
    release = live_outputs(RELEASE, "istiod", {"name": "istiod-1-30-5", "version": "1.30.5"})
    assert release["status"]["status"] == "deployed"
    assert release["status"]["version"] == "1.30.5"


def test_check_judges_the_stacks_in_the_engines_view_too() -> None:
    for stack in ("dev",):
        result = mesh_command("check", "--stack", stack, "--engine-view", "--format", "json")
        assert result.returncode == 0, result.stdout + result.stderr
