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

import pytest
import yaml

from e2e.tools import PROJECT_DIR, Completed, missing_tools, npm_cache, run, tool
from e2e.workspace import PROJECT_FILES, Workspace
from istio_mesh.host import PACKAGE, version
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
    for name, pinned in STAND_INS.items():
        folder = plugins / f"resource-{name}-v{pinned}"
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


@pytest.fixture(scope="module")
def checkout(workspace: Workspace, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A checkout of the package as `pulumi package add` gets one. The CLI makes its
    virtualenv itself (`python -m venv venv`, then requirements.txt), which the
    workspace's symlinked one cannot be."""
    with_stand_in_plugins(workspace)
    package = tmp_path_factory.mktemp("checkout") / "istio-mesh"
    package.mkdir()
    for name in PROJECT_FILES:
        source = PROJECT_DIR / name
        if source.is_dir():
            shutil.copytree(source, package / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(source, package / name)
    return package


def test_get_schema_of_the_project_directory_lists_every_component(
    workspace: Workspace, checkout: Path
) -> None:
    package = checkout
    # From outside the package: in it, the CLI finds Pulumi.yaml and PulumiPlugin.yaml
    # side by side and refuses ("detected both"), as the README says.
    result = run(
        [tool("pulumi"), "package", "get-schema", str(package), "--non-interactive"],
        env=workspace.env,
        cwd=package.parent,
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


# -- a YAML program consuming the package previews the Python stack's objects ------------

SMALL_MESH: dict[str, Any] = {
    "istio": {"revisions": [{"version": "1.30.5"}], "awaitReleases": False},
    "gateways": [
        {
            "name": "ingress",
            "serviceType": "ClusterIP",
            "servers": [{"hosts": ["shop.example.com"], "tls": {"credentialName": "shop-tls"}}],
        }
    ],
    "namespaces": [{"name": "shop"}],
    "services": [
        {
            "name": "reviews",
            "namespace": "shop",
            "port": 9080,
            "versions": {"v1": {"weight": 80}, "v2": {"weight": 20}},
            "timeout": "10s",
            "expose": {"gateway": "ingress", "host": "shop.example.com", "pathPrefix": "/reviews"},
            "allowFrom": [{"namespace": "shop", "serviceAccount": "productpage"}],
        }
    ],
}


def mesh_settings(chart_repository: str) -> dict[str, Any]:
    settings = json.loads(json.dumps(SMALL_MESH))
    settings["istio"]["chartRepository"] = chart_repository
    return settings


def previewed_objects(preview: str) -> dict[tuple[str, str], Any]:
    """Each Kubernetes object and Helm release a `pulumi preview --json` would create, by
    (type, name): its inputs as the provider checked them."""
    objects = {}
    for step in json.loads(preview)["steps"]:
        state = step.get("newState") or {}
        kind = state.get("type", "")
        if kind.startswith("kubernetes:") and state.get("custom"):
            name = step["urn"].split("::")[-1]
            objects[(kind, name)] = state.get("inputs")
    return objects


@pytest.fixture(scope="module")
def python_preview(workspace: Workspace) -> str:
    """`pulumi preview --json` of the repository's program with the small mesh's
    settings as its stack's config: what each consumer's preview is compared with."""
    settings = mesh_settings(workspace.chart_repository)
    workspace.write_stack(
        "small", {"config": {f"istio-mesh:{key}": value for key, value in settings.items()}}
    )
    workspace.init_stack("small")
    return workspace.pulumi("preview", "--stack", "small", "--json").check().stdout


def test_a_yaml_program_previews_the_objects_of_the_python_stack(
    workspace: Workspace, checkout: Path, python_preview: str, tmp_path: Path
) -> None:
    if missing_tools(["pulumi-language-yaml"]):
        pytest.skip("pulumi-language-yaml not built (built since 0.4.0): make e2e-tools")
    settings = mesh_settings(workspace.chart_repository)
    # The YAML program: the package added to it, IstioMesh with the same settings.
    consumer = tmp_path / "consumer"
    consumer.mkdir()
    program = {
        "name": "shop-platform",
        "runtime": "yaml",
        "resources": {"mesh": {"type": "istio-mesh:IstioMesh", "properties": settings}},
        "outputs": {"revisions": "${mesh.revisions}"},
    }
    (consumer / "Pulumi.yaml").write_text(yaml.safe_dump(program, sort_keys=False))

    def cli(*args: str) -> Completed:
        return run(
            [tool("pulumi"), *args, "--non-interactive"],
            env=workspace.env,
            cwd=consumer,
            timeout=900,
        )

    added = cli("package", "add", str(checkout))
    # The CLI installs the package and writes the YAML program's pin of it; then it asks
    # the YAML language host to link it, which v1.25.0 (the newest on the proxy) does
    # not implement. Linking a YAML program is one `packages` entry: written here.
    assert (consumer / "sdks" / "istio-mesh" / f"istio-mesh-{version()}.yaml").exists()
    if added.returncode != 0:
        assert "linking package: method Link not implemented" in added.stderr, added.stderr
        program["packages"] = {"istio-mesh": str(checkout)}
        (consumer / "Pulumi.yaml").write_text(yaml.safe_dump(program, sort_keys=False))
    cli("stack", "init", "small").check()
    consumed = cli("preview", "--stack", "small", "--json").check()
    assert_same_objects(python_preview, consumed.stdout)


def assert_same_objects(python: str, consumer: str) -> None:
    from_python = previewed_objects(python)
    from_consumer = previewed_objects(consumer)
    assert len(from_python) > 20
    differing = {
        f"{key[0]} {key[1]}": (from_python.get(key), from_consumer.get(key))
        for key in from_python.keys() | from_consumer.keys()
        if from_python.get(key) != from_consumer.get(key)
    }
    assert differing == {}, json.dumps(differing, indent=1, sort_keys=True, default=str)[:6000]


# -- a TypeScript program consuming the package previews the same objects ----------------

TYPESCRIPT_CONSUMER = Path(__file__).parent / "typescript_consumer"


def typescript_program(settings: dict[str, Any]) -> str:
    """The smallest TypeScript program declaring the mesh: IstioMesh with `settings`,
    written as a literal so that the compiler checks it against the generated args."""
    literal = json.dumps(settings, indent=4)
    return (
        'import * as istioMesh from "@pulumi/istio-mesh";\n\n'
        f'const mesh = new istioMesh.IstioMesh("mesh", {literal});\n\n'
        "export const revisions = mesh.revisions;\n"
    )


def npm_offline(env: dict[str, str]) -> dict[str, str]:
    """`env` with npm reading only the cache `make e2e-tools` filled: no registry."""
    return {
        **env,
        "npm_config_cache": str(npm_cache()),
        "npm_config_offline": "true",
        "npm_config_audit": "false",
        "npm_config_fund": "false",
        "npm_config_update_notifier": "false",
    }


def test_a_typescript_program_previews_the_objects_of_the_python_stack(
    workspace: Workspace, checkout: Path, python_preview: str, tmp_path: Path
) -> None:
    if missing_tools(["pulumi-language-nodejs"]) or not npm_cache().is_dir():
        pytest.skip("the Node.js host and npm cache not built (since 0.5.0): make e2e-tools")
    settings = mesh_settings(workspace.chart_repository)
    consumer = tmp_path / "consumer"
    shutil.copytree(TYPESCRIPT_CONSUMER, consumer)
    (consumer / "Pulumi.yaml").write_text(
        yaml.safe_dump({"name": "shop-platform-ts", "runtime": "nodejs"}, sort_keys=False)
    )
    (consumer / "index.ts").write_text(typescript_program(settings))
    env = npm_offline(workspace.env)

    def cli(*args: str) -> Completed:
        return run([tool("pulumi"), *args, "--non-interactive"], env=env, cwd=consumer, timeout=900)

    # Generates the TypeScript SDK into sdks/istio-mesh, links it into package.json and
    # runs `npm install`, which compiles it.
    cli("package", "add", str(checkout)).check()
    manifest = json.loads((consumer / "package.json").read_text())
    assert manifest["dependencies"]["@pulumi/istio-mesh"] == "file:sdks/istio-mesh"
    assert (consumer / "node_modules" / "@pulumi" / "istio-mesh" / "bin" / "index.js").exists()
    cli("stack", "init", "small").check()
    consumed = cli("preview", "--stack", "small", "--json").check()
    assert_same_objects(python_preview, consumed.stdout)
    # Each schema type gets one suffix in TypeScript, and the compiler holds a program
    # to the args' types: a port given as a string does not compile.
    inputs = (consumer / "sdks" / "istio-mesh" / "types" / "input.ts").read_text()
    assert "export interface ServiceConfigArgs {" in inputs
    assert "ArgsArgs" not in inputs
    settings["services"][0]["port"] = "9080"
    (consumer / "index.ts").write_text(typescript_program(settings))
    compiled = run(
        [consumer / "node_modules" / ".bin" / "tsc", "--noEmit", "-p", "."], env=env, cwd=consumer
    )
    assert compiled.returncode != 0
    assert "Type 'string' is not assignable to type 'Input<number>'" in compiled.stdout
