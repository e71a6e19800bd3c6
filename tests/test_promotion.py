"""The promotion gate: prod runs only Istio versions dev runs, and fails closed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from components.errors import ConfigError
from istio_mesh.mesh import TYPE as MESH_TYPE
from mesh.program import PROJECT_DIR, Registered, load_stack_file, run_program
from tests.conftest import mesh_command, stack_run

PROD = load_stack_file(PROJECT_DIR / "Pulumi.prod.yaml")
SOURCE = "organization/istio-mesh/dev"


def run_prod(source_outputs: dict | None, registered: list[Registered] | None = None):
    references = {} if source_outputs is None else {SOURCE: source_outputs}
    return run_program("prod", PROD, references, registered=registered)


def test_prod_runs_when_dev_runs_its_version() -> None:
    run = run_prod(stack_run("dev").outputs)
    assert any(r.props.get("name") == "istiod-1-30-5" for r in run.resources)


def test_prod_refuses_a_version_dev_has_not_run() -> None:
    registered: list[Registered] = []
    with pytest.raises(ConfigError) as raised:
        run_prod({"istioVersions": ["1.31.1"], "revisions": ["1-31-1"]}, registered)
    (problem,) = raised.value.problems
    assert problem.path == "istio-mesh:istio.revisions[0].version"
    assert "1.30.5 has not run in organization/istio-mesh/dev" in problem.message
    kinds = {r.type for r in registered}
    # Only the read (and the built-in provider the engine reads it with) under the mesh
    # component that holds it, which declares no object of its own: nothing managed.
    assert kinds == {MESH_TYPE, "pulumi:pulumi:StackReference", "pulumi:providers:pulumi"}


def test_a_refused_default_revision_is_reported_at_the_gate_the_stack_wrote() -> None:
    # No istio.revisions in the stack: the default version is what the source lacks,
    # and the only key the stack wrote for it is the gate itself.
    config = {k: v for k, v in PROD.items() if k != "istio-mesh:istio"}
    references = {SOURCE: {"istioVersions": ["0.0.1"], "revisions": ["0-0-1"]}}
    with pytest.raises(ConfigError) as raised:
        run_program("prod", config, references)
    (problem,) = raised.value.problems
    assert problem.path == "istio-mesh:promotion.fromStack"
    assert problem.message.startswith("the default Istio revision ")
    assert "has not run in organization/istio-mesh/dev (it runs 0.0.1)" in problem.message


def test_prod_fails_closed_without_the_source_stack() -> None:
    registered: list[Registered] = []
    with pytest.raises(ConfigError) as raised:
        run_prod(None, registered)
    assert "--reference dev=FILE" in str(raised.value)
    assert {r.type for r in registered} == {
        MESH_TYPE,
        "pulumi:pulumi:StackReference",
        "pulumi:providers:pulumi",
    }


def test_offline_prod_render_trails_an_offline_dev_render(tmp_path: Path) -> None:
    assert mesh_command("render", "--stack", "dev", "--out", str(tmp_path / "dev")).returncode == 0
    dev_state = tmp_path / "dev" / "stack.json"
    ok = mesh_command(
        "render",
        "--stack",
        "prod",
        "--out",
        str(tmp_path / "prod"),
        "--reference",
        f"dev={dev_state}",
    )
    assert ok.returncode == 0, ok.stderr
    missing = mesh_command("render", "--stack", "prod", "--out", str(tmp_path / "p2"))
    assert missing.returncode == 2
    assert "istio-mesh:promotion.fromStack" in missing.stderr
    assert "Traceback" not in missing.stderr
    old = tmp_path / "old.json"
    state = json.loads(dev_state.read_text())
    state["deployment"]["resources"][0]["outputs"]["istioVersions"] = ["1.29.9"]
    old.write_text(json.dumps(state))
    refused = mesh_command(
        "render", "--stack", "prod", "--out", str(tmp_path / "p3"), "--reference", f"dev={old}"
    )
    assert refused.returncode == 2
    assert "1.30.5 has not run" in refused.stderr


def test_every_revision_must_have_run_in_the_source_stack() -> None:
    from components.config import parse_config
    from components.promotion import promotion_problems

    config = parse_config(
        {
            "istio": {"revisions": [{"version": "1.30.5"}, {"version": "1.31.1"}]},
            "promotion": {"fromStack": "dev"},
        }
    )
    [problem] = promotion_problems(config, {"istioVersions": ["1.30.5"]}, "dev")
    assert problem.path == "istio-mesh:istio.revisions[1].version"
    assert "1.31.1 has not run in" in problem.message
    [unread] = promotion_problems(config, {}, "dev")
    assert "--reference dev=FILE" in unread.message
