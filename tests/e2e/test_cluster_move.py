"""A one-cluster stack becoming one cluster of a multi-cluster mesh, under the real engine.

The stack comes up with the two-cluster stack file's mesh in one cluster (`east`, its
`kubernetes:context`), the organisation's root and an intermediate given. Then its
config gains `clusters`: east, marked `fromSingleCluster`, keeping the same intermediate,
and a new cluster, west. The engine must find every resource the stack had under the
aliases east's resources declare, provider included: nothing the stack had is deleted or
replaced (a deleted namespace takes its workloads with it), and the live objects keep
their identity. Without the mark, the same change would delete them all and create them
again under their new names: the test asks the engine that too.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from e2e.cluster import Cluster
from e2e.workspace import Workspace, stack_file_config
from tests.e2e.test_multicluster import (
    CLUSTERS,
    STACK_FILE,
    merged_kubeconfig,
    one_root_two_intermediates,
    two_api_servers,
)
from tests.pki_helpers import Issued

STACK = "grow"
KEEPING = {"same", "update"}
"""Step kinds that keep a resource's live object."""


@pytest.fixture(scope="module")
def clusters(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Cluster]]:
    with two_api_servers(tmp_path_factory, "grow") as both:
        yield both


@pytest.fixture(scope="module")
def pki() -> dict[str, Issued]:
    return one_root_two_intermediates()


def write_config(space: Workspace, config: dict[str, Any], secrets: dict[str, str]) -> None:
    """The stack file's config replaced (its secrets salt kept), then `secrets` set."""
    stack_file = space.project / f"Pulumi.{STACK}.yaml"
    document = yaml.safe_load(stack_file.read_text()) if stack_file.exists() else {}
    space.write_stack(STACK, {**(document or {}), "config": config})
    for key, value in secrets.items():
        space.set_secret(STACK, key, value)


@pytest.fixture(scope="module")
def grown(
    tmp_path_factory: pytest.TempPathFactory,
    clusters: dict[str, Cluster],
    chart_repo: str,
    pki: dict[str, Issued],
) -> dict[str, Any]:
    """The one-cluster stack up; then previews of the two-cluster config without and
    with `fromSingleCluster`, and the `up` of the latter."""
    root = tmp_path_factory.mktemp("grow-workspace")
    space = Workspace(root, merged_kubeconfig(clusters, root / "kubeconfig"), chart_repo)
    multi = stack_file_config(STACK, chart_repo, STACK_FILE)["config"]
    given_root = {"certificate": pki["root"].pem}

    one = {key: value for key, value in multi.items() if key != "istio-mesh:clusters"}
    one["istio-mesh:istio"] = {k: v for k, v in multi["istio-mesh:istio"].items() if k != "meshId"}
    one["kubernetes:context"] = "kind-east"
    one["istio-mesh:ca"] = {
        "mode": "plugin",
        "root": given_root,
        "intermediate": {"certificate": pki["east"].pem},
    }
    space.init_stack(STACK)
    write_config(space, one, {"istio-mesh:ca.intermediate.key": pki["east"].key_pem})
    space.pulumi("up", "--stack", STACK, "--yes", "--skip-preview").check()
    before = {
        "state": space.export(STACK),
        "shop": clusters["east"].get("/api/v1/namespaces/shop")["metadata"]["uid"],
        "cacerts": clusters["east"].get("/api/v1/namespaces/istio-system/secrets/cacerts"),
    }

    def two_clusters(from_single_cluster: bool) -> None:
        config = dict(multi)
        config["istio-mesh:ca"] = {"mode": "plugin", "root": given_root}
        config["istio-mesh:clusters"] = [
            {**cluster, "intermediate": {"certificate": pki[cluster["name"]].pem}}
            for cluster in multi["istio-mesh:clusters"]
        ]
        config["istio-mesh:clusters"][0]["fromSingleCluster"] = from_single_cluster
        write_config(
            space,
            config,
            {
                f"istio-mesh:clusters[{index}].intermediate.key": pki[name].key_pem
                for index, name in enumerate(CLUSTERS)
            },
        )

    two_clusters(from_single_cluster=False)
    unmarked = space.pulumi("preview", "--stack", STACK, "--json", "--show-sames").check()
    two_clusters(from_single_cluster=True)
    marked = space.pulumi("preview", "--stack", STACK, "--json", "--show-sames").check()
    up = space.pulumi("up", "--stack", STACK, "--yes", "--skip-preview")
    return {"before": before, "unmarked": unmarked, "marked": marked, "up": up, "space": space}


def step_kinds(preview: str) -> dict[str, str]:
    """URN the stack had -> what the preview would do to that resource (`--show-sames`:
    a resource that stays the same is a step too); a resource found under an alias is
    given under the URN it had."""
    kinds: dict[str, str] = {}
    for step in json.loads(preview)["steps"]:
        old = (step.get("oldState") or {}).get("urn") or step["urn"]
        kinds[old] = step["op"]
    return kinds


def had(grown: dict[str, Any]) -> list[str]:
    """The URN of every resource of the one-cluster stack but the stack itself."""
    return [
        resource["urn"]
        for resource in grown["before"]["state"]["deployment"]["resources"]
        if resource["type"] != "pulumi:pulumi:Stack"
    ]


def test_unmarked_the_engine_would_delete_the_one_cluster_stack(grown: dict[str, Any]) -> None:
    kinds = step_kinds(grown["unmarked"].stdout)
    dropped = [urn for urn in had(grown) if kinds.get(urn) not in KEEPING]
    # Each is deleted, and created again under its new name and provider.
    assert {kinds.get(urn) for urn in dropped} == {"delete"}
    assert len(dropped) > len(had(grown)) / 2
    namespaces = [urn for urn in had(grown) if "kubernetes:core/v1:Namespace::" in urn]
    assert namespaces
    assert set(namespaces) <= set(dropped)


def test_marked_every_resource_the_stack_had_is_kept(grown: dict[str, Any]) -> None:
    kinds = step_kinds(grown["marked"].stdout)
    kept = {urn: kinds.get(urn) for urn in had(grown)}
    assert {urn: kind for urn, kind in kept.items() if kind not in KEEPING} == {}
    provider = next(urn for urn in kept if urn.endswith("::kubernetes"))
    assert kept[provider] == "same"


def test_the_move_comes_up_with_the_live_objects_untouched(
    grown: dict[str, Any], clusters: dict[str, Cluster]
) -> None:
    grown["up"].check()
    east, west = clusters["east"], clusters["west"]
    assert east.get("/api/v1/namespaces/shop")["metadata"]["uid"] == grown["before"]["shop"]
    cacerts = east.get("/api/v1/namespaces/istio-system/secrets/cacerts")
    before = grown["before"]["cacerts"]
    assert cacerts["metadata"]["uid"] == before["metadata"]["uid"]
    assert cacerts["data"] == before["data"]
    # east now knows its place in the mesh, and west holds the whole mesh.
    system = east.get("/api/v1/namespaces/istio-system")
    assert system["metadata"]["labels"]["topology.istio.io/network"] == "net-east"
    assert "shop" in {item["metadata"]["name"] for item in west.get("/api/v1/namespaces")["items"]}
    grown["space"].pulumi("up", "--stack", STACK, "--yes", "--expect-no-changes").check()
