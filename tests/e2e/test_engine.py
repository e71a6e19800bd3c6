"""Check 3 and 6: the dev stack under the real Pulumi engine, against the API server.

`pulumi preview` and `pulumi up` succeed, every object is there as `mesh render` says, a
second `up` changes nothing, the policy pack passes under the real CLI and fails it on
PERMISSIVE mTLS; and what the mock harness renders is what the engine holds afterwards.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from e2e.cluster import Cluster
from e2e.tools import Completed, run, tool
from e2e.workspace import Workspace, differences, harness_differences
from tests.e2e.conftest import render_stack_file

POLICY_ARGS = ("--policy-pack", "policies", "--policy-pack-config", "policies/config/dev.json")


@pytest.fixture(scope="module")
def dev_up(workspace: Workspace) -> dict[str, Completed]:
    """preview, then up, of dev: once for the module."""
    preview = workspace.pulumi("preview", "--stack", "dev", "--diff")
    up = workspace.pulumi("up", "--stack", "dev", "--yes", "--skip-preview")
    return {"preview": preview, "up": up}


@pytest.fixture(scope="module")
def dev_render(workspace: Workspace, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`mesh render` of the very stack file the engine ran."""
    return render_stack_file(
        workspace.project / "Pulumi.dev.yaml", tmp_path_factory.mktemp("render-dev")
    )


def api_path(manifest: dict[str, Any]) -> str:
    """The REST path of an object (core and named groups; English plural of the kind, as
    every kind here forms it: `gateways`, `authorizationpolicies`, `telemetries`)."""
    api_version, kind = manifest["apiVersion"], manifest["kind"]
    lower = kind.lower()
    plural = lower[:-1] + "ies" if lower.endswith("y") and lower[-2] not in "aeiou" else lower + "s"
    base = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
    metadata = manifest["metadata"]
    namespace = metadata.get("namespace")
    scope = f"/namespaces/{namespace}" if namespace else ""
    return f"{base}{scope}/{plural}/{metadata['name']}"


def rendered_manifests(render: Path) -> list[dict[str, Any]]:
    return [yaml.safe_load(path.read_text()) for path in sorted(render.glob("manifests/*/*.yaml"))]


def test_preview_and_up_of_dev_succeed(dev_up: dict[str, Completed]) -> None:
    dev_up["preview"].check()
    dev_up["up"].check()


def test_every_object_is_in_the_cluster_as_rendered(
    dev_up: dict[str, Completed], dev_render: Path, cluster: Cluster
) -> None:
    dev_up["up"].check()
    manifests = rendered_manifests(dev_render)
    assert len(manifests) > 20
    for manifest in manifests:
        live = cluster.get(api_path(manifest))
        assert not differences(manifest, live), (api_path(manifest), differences(manifest, live))


def test_the_gateway_api_crds_enforce_their_cel_rules(
    dev_up: dict[str, Completed], cluster: Cluster
) -> None:
    """The CRDs the program installed carry their `x-kubernetes-validations` (which the
    provider renames on its way): the API server refuses an HTTPRoute breaking one."""
    dev_up["up"].check()
    route = {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": "slower-backend-than-request", "namespace": "store"},
        "spec": {
            "parentRefs": [{"group": "", "kind": "Service", "name": "storefront", "port": 8080}],
            "rules": [{"timeouts": {"request": "1s", "backendRequest": "2s"}}],
        },
    }
    status, answer = cluster.post(api_path(route).rsplit("/", 1)[0], route)
    assert status == 422, answer
    assert "backendRequest timeout cannot be longer than request timeout" in str(answer)


def test_every_release_is_deployed_at_its_version(
    dev_up: dict[str, Completed], dev_render: Path, workspace: Workspace, cluster: Cluster
) -> None:
    dev_up["up"].check()
    listed = run(
        [tool("helm"), "list", "--all-namespaces", "--output", "json"], env=workspace.env
    ).check()
    deployed = {(r["name"], r["namespace"]): r for r in json.loads(listed.stdout)}
    for path in sorted(dev_render.glob("releases/*.yaml")):
        release = yaml.safe_load(path.read_text())
        found = deployed[(release["name"], release["namespace"])]
        assert found["status"] == "deployed", found
        assert found["chart"] == f"{release['chart']}-{release['version']}", found
    # What the charts render is there too: each revision's istiod.
    for revision in ("1-30-5", "1-31-1"):
        assert cluster.exists(
            f"/apis/apps/v1/namespaces/istio-system/deployments/istiod-{revision}"
        )


def test_a_second_up_changes_nothing(dev_up: dict[str, Completed], workspace: Workspace) -> None:
    dev_up["up"].check()
    workspace.pulumi("up", "--stack", "dev", "--yes", "--expect-no-changes").check()


def test_the_policy_pack_passes_dev_under_the_real_cli(
    dev_up: dict[str, Completed], workspace: Workspace
) -> None:
    dev_up["up"].check()
    result = workspace.pulumi("preview", "--stack", "dev", *POLICY_ARGS).check()
    assert "istio-mesh-guardrails" in result.stdout + result.stderr or "Policies:" in result.stdout


def test_permissive_mtls_fails_the_policy_pack_under_the_real_cli(
    dev_up: dict[str, Completed], workspace: Workspace
) -> None:
    dev_up["up"].check()
    security = workspace.project / "components" / "security.py"
    original = security.read_text()
    assert '"mtls": {"mode": "STRICT"}' in original
    security.write_text(
        original.replace('"mtls": {"mode": "STRICT"}', '"mtls": {"mode": "PERMISSIVE"}')
    )
    try:
        result = workspace.pulumi("preview", "--stack", "dev", *POLICY_ARGS)
    finally:
        security.write_text(original)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "mandatory" in output and "peer-authentication-strict" in output, output


def test_the_harness_declares_what_the_engine_holds(
    dev_up: dict[str, Completed], dev_render: Path, workspace: Workspace
) -> None:
    """Check 6: the URNs and objects `mesh render` (the mock harness) writes are what
    `pulumi stack export` holds after a real `up`, modulo what the server fills in."""
    dev_up["up"].check()
    assert harness_differences(workspace.export("dev"), dev_render) == {}
