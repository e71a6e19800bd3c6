"""Bad input to `mesh`: one clear line naming what and where, exit 2, no traceback."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import PROJECT_DIR, mesh_command

DEV = (PROJECT_DIR / "Pulumi.dev.yaml").read_text()


def refused(result: subprocess.CompletedProcess[str], *expected: str) -> str:
    """Assert exit 2, no traceback, every `expected` fragment in stderr."""
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout
    for fragment in expected:
        assert fragment in result.stderr, result.stderr
    return result.stderr


def test_a_key_written_twice_in_a_stack_file_is_refused(tmp_path: Path) -> None:
    stack = tmp_path / "Pulumi.twice.yaml"
    stack.write_text(DEV + "  istio-mesh:istio:\n    revisions: [{version: 1.31.1}]\n")
    refused(
        mesh_command("render", "--stack-file", str(stack), "--out", str(tmp_path / "out")),
        "'istio-mesh:istio' is written twice",
    )


def test_a_key_written_twice_in_a_manifest_is_refused(tmp_path: Path) -> None:
    manifest = tmp_path / "ns.yaml"
    manifest.write_text("apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\nkind: Pod\n")
    refused(mesh_command("check", str(manifest)), "'kind' is written twice")


def test_a_file_that_is_not_utf8_text_is_named(tmp_path: Path) -> None:
    binary = tmp_path / "Pulumi.binary.yaml"
    binary.write_bytes(b"config:\n  istio-mesh:istio: {}\n\xff\xfe\x00")
    out = str(tmp_path / "out")
    refused(mesh_command("render", "--stack-file", str(binary), "--out", out), "not UTF-8 text")
    refused(mesh_command("graph", "--stack-file", str(binary)), "not UTF-8 text")
    refused(mesh_command("check", "--stack-file", str(binary)), "not UTF-8 text")
    refused(mesh_command("check", str(binary)), "not UTF-8 text")


@pytest.mark.parametrize("out", ["README.md", "/dev/null/x"])
def test_render_refuses_an_output_folder_it_cannot_write(out: str) -> None:
    refused(mesh_command("render", "--stack", "dev", "--out", out), f"--out {out}")


@pytest.mark.parametrize("content", ["", "---\n", "---\n---\n"])
def test_check_refuses_empty_input(tmp_path: Path, content: str) -> None:
    empty = tmp_path / "empty.yaml"
    empty.write_text(content)
    refused(mesh_command("check", str(empty)), "no Kubernetes object to check (empty input)")


@pytest.mark.parametrize("number", ["2147483648", "12345678901234567890123456789012"])
def test_integers_have_kubernetes_bounds(tmp_path: Path, number: str) -> None:
    stack = tmp_path / "Pulumi.big.yaml"
    stack.write_text(
        DEV.replace("replicas: {min: 1, max: 2}", f"replicas: {{min: 1, max: {number}}}")
    )
    refused(
        mesh_command("render", "--stack-file", str(stack), "--out", str(tmp_path / "out")),
        "istio-mesh:gateways[0].replicas.max",
    )


def test_a_command_is_required_and_the_version_is_one_flag_away() -> None:
    refused(mesh_command(), "no command given")
    version = mesh_command("--version")
    assert version.returncode == 0 and version.stdout.startswith("mesh ")


def test_a_missing_stack_lists_the_stacks_there() -> None:
    refused(mesh_command("render", "--stack", "staging"), "no stack 'staging'", "stacks: dev, prod")
    refused(
        mesh_command("promote", "--from", "dev", "--to", "staging"),
        "no stack 'staging'",
        "stacks: dev, prod",
    )


def test_tests_stop_at_once_without_the_reference_data(tmp_path: Path) -> None:
    started = time.monotonic()
    result = subprocess.run(
        ["make", "-s", "reference-data", f"ISTIO_REFERENCE={tmp_path}"],
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert f"Istio reference data not found in {tmp_path}" in result.stderr
    assert time.monotonic() - started < 10


def test_the_same_stack_renders_and_checks_to_the_same_bytes(tmp_path: Path) -> None:
    outputs = []
    for run in ("a", "b"):
        out = tmp_path / run
        assert mesh_command("render", "--stack", "dev", "--out", str(out)).returncode == 0
        checked = mesh_command("check", "--stack", "dev", "--format", "json")
        files = {p.relative_to(out): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}
        outputs.append((files, checked.stdout))
    assert outputs[0] == outputs[1]


def test_render_replaces_its_own_folder_and_refuses_anyone_elses(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert mesh_command("render", "--stack", "dev", "--out", str(out)).returncode == 0
    assert (out / "releases" / "istiod-1-31-1.yaml").exists()
    # prod into the same folder (reading dev's outputs from it first): dev's releases do
    # not stay behind.
    prod = mesh_command(
        "render", "--stack", "prod", "--out", str(out), "--reference", f"dev={out}/stack.json"
    )
    assert prod.returncode == 0, prod.stderr
    assert not (out / "releases" / "istiod-1-31-1.yaml").exists()
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    refused(mesh_command("render", "--stack", "dev", "--out", str(foreign)), "did not write")
    assert (foreign / "notes.txt").read_text() == "keep me"


def test_text_names_resources_by_kind_and_name_json_keeps_the_urn() -> None:
    import json as json_module

    text = mesh_command("check", "--stack", "dev")
    assert "urn:pulumi:" not in text.stdout
    assert "[istiod-high-availability] Release istio-system/istiod-1-30-5:" in text.stdout
    data = json_module.loads(mesh_command("check", "--stack", "dev", "--format", "json").stdout)
    assert all(v["resource"].startswith("urn:pulumi:dev::") for v in data)


def test_render_graph_and_promote_speak_json(tmp_path: Path) -> None:
    import json as json_module

    render = mesh_command(
        "render", "--stack", "dev", "--out", str(tmp_path / "dev"), "--format", "json"
    )
    summary = json_module.loads(render.stdout)
    assert summary["stack"] == "dev" and summary["manifests"] > 0 and summary["releases"] > 0
    graph = json_module.loads(mesh_command("graph", "--stack", "dev", "--format", "json").stdout)
    assert {"gateway", "service", "subset"} <= {node["kind"] for node in graph["nodes"]}
    assert any(edge["kind"] == "route" and edge["label"] for edge in graph["edges"])
    promote = mesh_command(
        "promote", "--from", "dev", "--to", "prod", "--dry-run", "--format", "json"
    )
    report = json_module.loads(promote.stdout)
    assert report["from"] == "dev" and report["to"] == "prod" and report["written"] is False
    assert all(set(change) == {"file", "diff"} for change in report["changes"])


def test_help_documents_arguments_and_exit_codes() -> None:
    check = mesh_command("check", "--help").stdout
    assert "exit status: 0 no mandatory violation; 1 at least one" in check
    assert "MANIFEST" in check and "--engine-view" in check
    render = mesh_command("render", "--help").stdout
    assert "  manifests/<namespace or _cluster>/<kind>-<name>.yaml" in render  # layout kept


def test_mesh_runs_from_any_directory(tmp_path: Path) -> None:
    import sys

    # The project is installed in its virtualenv (make install: pip install -e .).
    for command in ([sys.executable, "-m", "mesh"], [str(Path(sys.executable).parent / "mesh")]):
        result = subprocess.run(
            [*command, "--version"], cwd=tmp_path, capture_output=True, text=True, check=False
        )
        assert result.returncode == 0 and result.stdout.startswith("mesh "), result.stderr
