"""`python -m mesh render` as a user runs it."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import yaml

from mesh.program import SECRET_SIG, SIG_KEY, ProgramRun, Registered
from mesh.render import SECRET_PLACEHOLDER, write_render
from tests.conftest import mesh_command


def test_render_dev_writes_manifests_releases_and_resources(tmp_path: Path) -> None:
    result = mesh_command("render", "--stack", "dev", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    gateway = yaml.safe_load(
        (tmp_path / "manifests/istio-ingress/gateway-ingress.yaml").read_text()
    )
    assert gateway["spec"]["selector"] == {"istio": "ingress"}
    release = yaml.safe_load((tmp_path / "releases/istiod-1-31-1.yaml").read_text())
    assert release["apiVersion"] == "helm.sh/v3" and release["kind"] == "Release"
    assert release["repositoryOpts"] == {"repo": "https://blob.istio.io/istio-release/charts"}
    assert release["atomic"] is True and "skipAwait" not in release and "compat" not in release
    assert release["version"] == "1.31.1"
    resources = json.loads((tmp_path / "resources.json").read_text())
    assert {"type", "name", "parent", "properties"} <= set(resources[0])
    stack = json.loads((tmp_path / "stack.json").read_text())
    (root,) = stack["deployment"]["resources"]
    assert root["outputs"]["istioVersions"] == ["1.30.5", "1.31.1"]


def test_bad_stack_file_exits_2_with_the_path_and_no_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "Pulumi.bad.yaml"
    bad.write_text("config:\n  istio-mesh:namespaces:\n    - name: shop\n      revision: beta\n")
    result = mesh_command("render", "--stack-file", str(bad), "--out", str(tmp_path / "out"))
    assert result.returncode == 2
    assert "istio-mesh:namespaces[0].revision" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()


def test_unknown_stack_exits_2(tmp_path: Path) -> None:
    result = mesh_command("render", "--stack", "nope", "--out", str(tmp_path))
    assert result.returncode == 2
    assert "Pulumi.nope.yaml" in result.stderr


def test_secrets_are_written_as_a_placeholder(tmp_path: Path) -> None:
    secret = {SIG_KEY: SECRET_SIG, "value": "hunter2"}
    run = ProgramRun(
        stack="t",
        resources=[
            Registered(
                type="kubernetes:core/v1:Secret",
                name="s",
                urn="urn:s",
                parent=None,
                custom=True,
                props={"metadata": {"name": "s", "namespace": "n"}, "stringData": {"p": secret}},
            )
        ],
        outputs={"password": secret},
    )
    write_render(run, tmp_path)
    written = "".join(p.read_text() for p in tmp_path.rglob("*") if p.is_file())
    assert "hunter2" not in written
    assert SECRET_PLACEHOLDER in written


def test_what_render_writes_checks_as_the_stack_does(tmp_path: Path) -> None:
    """`mesh check` over a render's files finds what `mesh check --stack` finds."""
    out = tmp_path / "dev"
    assert mesh_command("render", "--stack", "dev", "--out", str(out)).returncode == 0
    config = ("--policy-config", "policies/config/dev.json", "--format", "json")
    by_stack = mesh_command("check", "--stack", "dev", *config)
    files = sorted(str(p) for p in [*out.glob("manifests/*/*.yaml"), *out.glob("releases/*.yaml")])
    by_files = mesh_command("check", *files, *config)
    assert by_stack.returncode == by_files.returncode == 0, by_files.stderr

    def found(result: subprocess.CompletedProcess[str]) -> list[tuple[str, str, str]]:
        return sorted(
            (v["policy"], v["enforcement"], v["message"]) for v in json.loads(result.stdout)
        )

    assert found(by_stack) == found(by_files)
    assert found(by_stack), "dev has advisory findings (istiod HA) to compare"
