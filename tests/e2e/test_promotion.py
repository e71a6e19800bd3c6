"""Check 5 and 6 (prod): prod's promotion gate reads dev through a real StackReference
on the local backend; and prod itself comes up in a cluster of its own."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from e2e.cluster import Cluster, running_cluster
from e2e.tools import Completed
from e2e.workspace import Workspace, harness_differences, stack_file_config
from tests.e2e.conftest import render_stack_file


@pytest.fixture(scope="module")
def prod_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """Prod runs in a cluster of its own, as it does for real."""
    context = stack_file_config("prod", "")["config"]["kubernetes:context"]
    with running_cluster(tmp_path_factory.mktemp("prod-cluster"), context) as running:
        yield running


@pytest.fixture(scope="module")
def dev_deployed(workspace: Workspace) -> Completed:
    return workspace.pulumi("up", "--stack", "dev", "--yes", "--skip-preview")


def prod_preview(workspace: Workspace, prod_cluster: Cluster) -> Completed:
    return workspace.pulumi("preview", "--stack", "prod", kubeconfig=prod_cluster.kubeconfig)


def test_prod_trails_dev_through_a_stack_reference(
    dev_deployed: Completed, workspace: Workspace, prod_cluster: Cluster
) -> None:
    dev_deployed.check()
    prod_preview(workspace, prod_cluster).check()


@pytest.mark.parametrize("from_stack", ["dev", "istio-mesh/dev", "organization/istio-mesh/dev"])
def test_every_spelling_of_the_source_stack_resolves_on_a_self_managed_backend(
    from_stack: str,
    dev_deployed: Completed,
    workspace: Workspace,
    prod_cluster: Cluster,
    chart_repo: str,
) -> None:
    dev_deployed.check()
    document = stack_file_config("prod", chart_repo)
    document["config"]["istio-mesh:promotion"] = {"fromStack": from_stack}
    workspace.write_stack("prod", document)
    try:
        prod_preview(workspace, prod_cluster).check()
    finally:
        workspace.write_stack("prod", stack_file_config("prod", chart_repo))


def test_prod_refuses_a_version_dev_has_not_run(
    dev_deployed: Completed, workspace: Workspace, prod_cluster: Cluster, chart_repo: str
) -> None:
    dev_deployed.check()
    document = stack_file_config("prod", chart_repo)
    istio = document["config"]["istio-mesh:istio"]
    istio["revisions"] = [{"version": "1.31.2"}]
    istio["tags"] = {"stable": "1-31-2"}
    istio["defaultRevision"] = "1-31-2"
    workspace.write_stack("prod", document)
    try:
        result = prod_preview(workspace, prod_cluster)
    finally:
        workspace.write_stack("prod", stack_file_config("prod", chart_repo))
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "1.31.2 has not run in organization/istio-mesh/dev" in output, output
    assert "Traceback" not in output, output


def test_prod_comes_up_in_its_own_cluster(
    dev_deployed: Completed, workspace: Workspace, prod_cluster: Cluster
) -> None:
    dev_deployed.check()
    workspace.pulumi(
        "up", "--stack", "prod", "--yes", "--skip-preview", kubeconfig=prod_cluster.kubeconfig
    ).check()
    assert prod_cluster.exists("/apis/apps/v1/namespaces/istio-system/deployments/istiod-1-30-5")
    assert prod_cluster.exists("/api/v1/namespaces/istio-egress")


def test_the_harness_declares_what_the_engine_holds_for_prod(
    dev_deployed: Completed,
    workspace: Workspace,
    prod_cluster: Cluster,
    tmp_path: Path,
) -> None:
    """Check 6 for prod: `mesh render`, trailing dev's real `pulumi stack export`, writes
    the URNs and objects the engine holds after prod's `up`."""
    dev_deployed.check()
    workspace.pulumi(
        "up", "--stack", "prod", "--yes", "--skip-preview", kubeconfig=prod_cluster.kubeconfig
    ).check()
    dev_export = tmp_path / "dev.json"
    dev_export.write_text(json.dumps(workspace.export("dev")))
    render = render_stack_file(
        workspace.project / "Pulumi.prod.yaml", tmp_path / "render", f"dev={dev_export}"
    )
    assert harness_differences(workspace.export("prod"), render) == {}
