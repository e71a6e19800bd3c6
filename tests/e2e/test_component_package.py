"""The component package (issue 19) under the real Pulumi CLI and engine.

- `pulumi package get-schema` of the project directory (which is also the stack
  program) starts the plugin as the CLI does and prints the schema the fast tier checks;
- a stack deployed by the program as it was before `IstioMesh` parented its resources
  (0.3.0) upgrades to today's program creating only the component: the engine finds
  every other resource under its alias, or the one it inherits from its parent's.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from e2e.tools import PROJECT_DIR, run, tool
from e2e.workspace import PROJECT_FILES, Workspace
from istio_mesh.host import PACKAGE
from tests.test_package import package_schema

BEFORE_ISTIO_MESH = '''"""istio-mesh 0.3.0's stack program: the mesh at the stack's top level."""

import pulumi

from components.config import load_stack_config
from components.mesh import declare

for name, value in declare(load_stack_config()).items():
    pulumi.export(name, value)
'''

# The package's Python side depends on pulumi-random and pulumi-tls, so installing it
# installs their plugins; the module proxy serves neither (README, e2e tier) and the
# schema needs neither (no type of theirs is in it): the CLI gets stand-ins that are
# never started.
STAND_INS = {"random": "4.21.4", "tls": "5.6.2"}


def with_stand_in_plugins(workspace: Workspace) -> None:
    plugins = Path(workspace.env["PULUMI_HOME"]) / "plugins"
    for name, version in STAND_INS.items():
        folder = plugins / f"resource-{name}-v{version}"
        folder.mkdir(parents=True, exist_ok=True)
        binary = folder / f"pulumi-resource-{name}"
        binary.write_text("#!/bin/sh\necho 'a stand-in: not needed for a schema' >&2\nexit 1\n")
        binary.chmod(0o755)


def essence(schema: dict[str, Any]) -> dict[str, Any]:
    """What a consumer's SDK is generated from: each component's and type's properties,
    with their types and descriptions."""

    def described(properties: dict[str, Any]) -> dict[str, Any]:
        return {
            name: (spec.get("type"), spec.get("$ref"), spec.get("description"))
            for name, spec in properties.items()
        }

    return {
        "resources": {
            token: (
                resource.get("description"),
                described(resource.get("inputProperties", {})),
                described(resource.get("properties", {})),
            )
            for token, resource in schema["resources"].items()
        },
        "types": {
            token: (type_.get("description"), described(type_.get("properties", {})))
            for token, type_ in schema["types"].items()
        },
        "version": schema["version"],
    }


def test_get_schema_of_the_project_directory_lists_every_component(
    workspace: Workspace, tmp_path: Path
) -> None:
    with_stand_in_plugins(workspace)
    # A checkout as `pulumi package add` gets it: the CLI makes the package's virtualenv
    # itself (`python -m venv venv`, then requirements.txt), which the workspace's
    # symlinked one cannot be.
    package = tmp_path / "istio-mesh"
    package.mkdir()
    for name in PROJECT_FILES:
        source = PROJECT_DIR / name
        if source.is_dir():
            shutil.copytree(source, package / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(source, package / name)
    # From outside the package: in it, the CLI finds Pulumi.yaml and PulumiPlugin.yaml
    # side by side and refuses ("detected both"), as the README says.
    result = run(
        [tool("pulumi"), "package", "get-schema", str(package), "--non-interactive"],
        env=workspace.env,
        cwd=tmp_path,
        timeout=900,
    ).check()
    schema = json.loads(result.stdout)
    # The CLI prints the schema it bound (required lists, object types filled in): the
    # same components, properties, types and descriptions as the fast tier's.
    assert essence(schema) == essence(package_schema())
    assert sorted(schema["resources"]) == [
        f"{PACKAGE}:index:{name}"
        for name in ("ControlPlane", "Gateway", "IstioMesh", "MeshNamespace", "Services")
    ]


def test_a_stack_from_before_istio_mesh_upgrades_creating_only_the_component(
    workspace: Workspace,
) -> None:
    program = workspace.project / "__main__.py"
    today = program.read_text()
    program.write_text(BEFORE_ISTIO_MESH)
    try:
        workspace.pulumi("up", "--stack", "dev", "--yes", "--skip-preview").check()
    finally:
        program.write_text(today)
    preview = workspace.pulumi("preview", "--stack", "dev", "--json").check()
    summary = json.loads(preview.stdout)["changeSummary"]
    assert summary.get("create") == 1, summary
    assert set(summary) <= {"create", "same"}, summary
    up = workspace.pulumi("up", "--stack", "dev", "--yes", "--skip-preview").check()
    assert "1 created" in up.stdout or "+ 1 created" in up.stdout, up.stdout[-2000:]
    workspace.pulumi("up", "--stack", "dev", "--yes", "--expect-no-changes").check()
