"""The GitHub Actions pipelines in .github/workflows (docs/PIPELINES.md): they parse and
keep the guarantees users rely on (gate on every PR, prod only by hand behind approval)."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from mesh.program import PROJECT_DIR

WORKFLOWS = PROJECT_DIR / ".github" / "workflows"
PULUMI_ACTION = "pulumi/actions@"
"""The official action, pinned to a commit (the version in a comment beside it)."""

PULUMI_ACTION_INPUTS = frozenset(
    {
        "command",
        "stack-name",
        "pulumi-version",
        "pulumi-version-file",
        "work-dir",
        "comment-on-pr",
        "comment-on-pr-number",
        "comment-on-summary",
        "github-token",
        "cloud-url",
        "secrets-provider",
        "parallel",
        "message",
        "config-map",
        "expect-no-changes",
        "diff",
        "replace",
        "target",
        "target-dependents",
        "policyPacks",
        "policyPackConfigs",
        "refresh",
        "upsert",
        "remove",
        "edit-pr-comment",
        "color",
        "exclude-protected",
        "plan",
        "suppress-outputs",
        "suppress-progress",
        "always-include-summary",
    }
)
"""The inputs pulumi/actions declares in its action.yml: a misspelt input is only a
warning on GitHub, and the setting silently does nothing."""


def load(name: str) -> dict[str, Any]:
    document = yaml.safe_load((WORKFLOWS / name).read_text())
    assert isinstance(document, dict), name
    return document


def triggers(workflow: dict[str, Any]) -> dict[str, Any]:
    """The `on:` block (YAML 1.1, which PyYAML follows, reads the key `on` as True)."""
    on = workflow.get("on", workflow.get(True))
    return {on: None} if isinstance(on, str) else dict(on)


def steps(workflow: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(job id, step) for every step of every job."""
    return [(job_id, step) for job_id, job in workflow["jobs"].items() for step in job["steps"]]


def pulumi_steps(workflow: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [
        (job, step)
        for job, step in steps(workflow)
        if str(step.get("uses", "")).startswith(PULUMI_ACTION)
    ]


def scripts(workflow: dict[str, Any], job: str | None = None) -> str:
    return "\n".join(
        step.get("run", "") for job_id, step in steps(workflow) if job in (None, job_id)
    )


@pytest.mark.parametrize("name", ["pull-request.yml", "deploy-dev.yml", "promote-prod.yml"])
def test_each_workflow_parses_and_uses_the_pulumi_action_correctly(name: str) -> None:
    workflow = load(name)
    assert workflow["jobs"] and triggers(workflow)
    for job in workflow["jobs"].values():
        assert job["runs-on"] and job["steps"]
    assert pulumi_steps(workflow), "every pipeline runs pulumi through the official action"
    for _, step in pulumi_steps(workflow):
        inputs = step["with"]
        assert set(inputs) <= PULUMI_ACTION_INPUTS, set(inputs) - PULUMI_ACTION_INPUTS
        assert inputs["policyPacks"] == "policies"
        named = inputs["stack-name"]
        for stack in ("dev", "prod") if "matrix" in named else (named,):
            assert (PROJECT_DIR / f"Pulumi.{stack}.yaml").is_file()
            config = inputs["policyPackConfigs"].replace("${{ matrix.stack }}", stack)
            assert (PROJECT_DIR / config).is_file(), config


@pytest.mark.parametrize("name", ["pull-request.yml", "deploy-dev.yml", "promote-prod.yml"])
def test_previews_skip_checkpoints_and_updates_keep_them(name: str) -> None:
    """A preview persists no state, so the per-step snapshot it would serialize for
    nothing is skipped (BENCHMARKS.md, "A real preview"); an `up` keeps its checkpoints,
    which are what a crashed update is recovered from."""
    for _, step in pulumi_steps(load(name)):
        skipped = (step.get("env") or {}).get("PULUMI_SKIP_CHECKPOINTS")
        if step["with"]["command"] == "preview":
            assert skipped == "true", step
        else:
            assert skipped is None, step


def test_pull_requests_run_the_tests_the_offline_gate_and_a_preview_per_stack() -> None:
    workflow = load("pull-request.yml")
    assert set(triggers(workflow)) == {"pull_request"}
    script = scripts(workflow, "test")
    assert "make test" in script
    assert "python -m mesh render --stack dev --out out/dev" in script
    assert "python -m mesh check --stack dev" in script
    assert "python -m mesh check --stack prod --reference dev=out/dev/stack.json" in script
    preview = workflow["jobs"]["preview"]
    assert preview["needs"] == "test"
    assert {entry["stack"] for entry in preview["strategy"]["matrix"]["include"]} == {"dev", "prod"}
    ((_, step),) = pulumi_steps(workflow)
    assert step["with"]["command"] == "preview"
    assert step["with"]["comment-on-pr"] is True
    # Least privilege: nothing at the workflow level, the comment right on the preview job.
    assert workflow["permissions"] == {}
    assert preview["permissions"] == {"contents": "read", "pull-requests": "write"}
    assert workflow["jobs"]["test"]["permissions"] == {"contents": "read"}


def test_dev_deploys_on_every_push_to_main() -> None:
    workflow = load("deploy-dev.yml")
    assert triggers(workflow) == {"push": {"branches": ["main"]}}
    ((_, step),) = pulumi_steps(workflow)
    assert (step["with"]["command"], step["with"]["stack-name"]) == ("up", "dev")


def test_prod_deploys_only_by_hand_after_the_gate_and_an_approval() -> None:
    workflow = load("promote-prod.yml")
    assert set(triggers(workflow)) == {"workflow_dispatch"}
    (deploy_job,) = [job for job, step in pulumi_steps(workflow) if step["with"]["command"] == "up"]
    deploy = workflow["jobs"][deploy_job]
    assert deploy["environment"] == "production"
    assert deploy["needs"] == "gate"
    assert "python -m mesh check --stack prod --reference dev=out/dev/stack.json" in scripts(
        workflow, "gate"
    )
    assert {step["with"]["stack-name"] for _, step in pulumi_steps(workflow)} == {"prod"}


@pytest.mark.parametrize("name", ["pull-request.yml", "deploy-dev.yml", "promote-prod.yml"])
def test_the_pipelines_run_the_cli_the_e2e_tier_runs(name: str) -> None:
    from e2e.tools import versions

    for _, step in pulumi_steps(load(name)):
        assert step["with"]["pulumi-version"] == versions()["PULUMI_VERSION"]


def test_the_prod_preview_runs_only_in_the_protected_environment() -> None:
    preview = load("pull-request.yml")["jobs"]["preview"]
    environments = {e["stack"]: e["environment"] for e in preview["strategy"]["matrix"]["include"]}
    assert environments == {"dev": "development", "prod": "production-preview"}
    assert preview["environment"] == "${{ matrix.environment }}"
    script_env = [step.get("env", {}) for step in preview["steps"]]
    kubeconfig = next(
        env["KUBECONFIG_CONTENT"] for env in script_env if "KUBECONFIG_CONTENT" in env
    )
    # Named secrets only: `secrets[...]` hands the job the whole secrets context.
    assert "secrets[" not in kubeconfig and "secrets.KUBECONFIG_PROD" in kubeconfig


def test_zizmor_finds_nothing_in_the_workflows() -> None:
    import subprocess
    import sys

    zizmor = PROJECT_DIR / "venv" / "bin" / "zizmor"
    if not zizmor.exists():
        zizmor = type(PROJECT_DIR)(sys.executable).parent / "zizmor"
    result = subprocess.run(
        [str(zizmor), "--offline", "--no-progress", str(PROJECT_DIR / ".github" / "workflows")],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No findings to report" in result.stdout + result.stderr


def test_prod_credentials_are_read_only_in_protected_environments() -> None:
    for name in ("pull-request.yml", "promote-prod.yml"):
        for job_id, job in load(name)["jobs"].items():
            if "KUBECONFIG_PROD" in yaml.safe_dump(job):
                assert str(job.get("environment", "")).startswith(
                    ("production", "${{ matrix.environment }}")
                ), (name, job_id)
