"""Every `Pulumi.<stack>.yaml`, run through the real `__main__.py` with exactly its config."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from components import naming
from mesh.program import ProgramRun, Registered, kubernetes_manifest
from tests.conftest import STACKS, stack_run

RELEASE = "kubernetes:helm.sh/v3:Release"
CHART_FILES = {
    "base": "base",
    "istiod": "istiod",
    "gateway": "gateway",
    "cni": "cni",
    "ztunnel": "ztunnel",
}


def releases(run: ProgramRun) -> dict[str, Registered]:
    return {r.props["name"]: r for r in run.of_type(RELEASE)}


def istio_releases(run: ProgramRun) -> dict[str, Registered]:
    """Releases of Istio's own charts (add-ons come from their upstream repositories)."""
    return {
        name: r
        for name, r in releases(run).items()
        if r.props["repositoryOpts"]["repo"] == naming.CHART_REPOSITORY
    }


def manifests(run: ProgramRun, kind: str) -> list[dict]:
    return [m for m in run.manifests() if m["kind"] == kind]


OUTSIDE_THE_MESH = {naming.ISTIO_SYSTEM, "observability"}
"""Namespaces the stacks create outside the mesh on purpose: the control plane, and the
add-ons (Prometheus scrapes plain-text metrics ports; proxies send spans in plain text)."""


def mesh_namespaces(run: ProgramRun) -> list[dict]:
    return [m for m in manifests(run, "Namespace") if m["metadata"]["name"] not in OUTSIDE_THE_MESH]


def test_both_stacks_exist() -> None:
    assert {"dev", "prod"} <= set(STACKS)


@pytest.mark.parametrize("stack", STACKS)
def test_every_istio_object_is_valid_against_the_reference_crds(
    stack: str, reference_dir: Path
) -> None:
    from mesh.reference import load_reference

    reference = load_reference(reference_dir)
    istio_objects = [m for m in stack_run(stack).manifests() if "istio.io" in m["apiVersion"]]
    assert istio_objects
    errors = [error for m in istio_objects for error in reference.validate(m)]
    assert errors == []


def test_every_gateway_api_object_is_valid_against_the_gateway_api_crds() -> None:
    """Waypoints, HTTPRoutes and the Gateway API ingress of the dev stack, against the
    Gateway API release's CRDs (schema defaults, then CEL), as the API server checks."""
    from mesh.reference import load_gateway_api_reference

    reference = load_gateway_api_reference()
    objects = [
        m
        for m in stack_run("dev").manifests()
        if m["apiVersion"].startswith(naming.GATEWAY_API_GROUP)
    ]
    assert {m["kind"] for m in objects} == {"Gateway", "HTTPRoute"}
    assert [error for m in objects for error in reference.validate(m)] == []


def test_the_ambient_namespace_gets_the_whole_ambient_data_plane() -> None:
    """One ambient namespace in a sidecar mesh brings istio-cni, ztunnel and the ambient
    profile on every revision (a tag may move it to either), plus its waypoint."""
    run = stack_run("dev")
    installed = {r.props["name"]: r.props for r in releases(run).values()}
    assert {"istio-cni", "ztunnel"} <= set(installed)
    istiods = [props for name, props in installed.items() if name.startswith("istiod-")]
    assert len(istiods) == 2
    assert all(props["values"]["profile"] == "ambient" for props in istiods)
    waypoints = [
        m
        for m in manifests(run, "Gateway")
        if m["spec"].get("gatewayClassName") == "istio-waypoint"
    ]
    assert [w["metadata"]["namespace"] for w in waypoints] == ["store"]


@pytest.mark.parametrize("stack", STACKS)
def test_every_helm_value_we_set_exists_in_its_chart(stack: str, reference_dir: Path) -> None:
    from mesh.reference import load_reference

    reference = load_reference(reference_dir)
    problems = []
    checked = istio_releases(stack_run(stack)).values()
    for release in checked:
        chart = release.props["chart"]
        problems += reference.missing_value_keys(CHART_FILES[chart], release.props["values"])
    assert problems == []
    assert {r.props["chart"] for r in checked} >= {"base", "istiod", "gateway"}


@pytest.mark.parametrize("stack", STACKS)
def test_charts_are_pinned_to_exact_versions(stack: str) -> None:
    from components.observability import ADDON_CHARTS

    upstream = {chart: (repo, version) for repo, chart, version in ADDON_CHARTS.values()}
    for release in releases(stack_run(stack)).values():
        props = release.props
        assert naming.VERSION_PATTERN.fullmatch(props["version"])
        assert props["atomic"] is True
        if props["chart"] in upstream:
            assert (props["repositoryOpts"]["repo"], props["version"]) == upstream[props["chart"]]
        else:
            assert props["repositoryOpts"]["repo"] == naming.CHART_REPOSITORY


@pytest.mark.parametrize("stack", STACKS)
def test_mesh_is_strict_mtls_from_the_root_namespace(stack: str) -> None:
    policies = manifests(stack_run(stack), "PeerAuthentication")
    mesh_wide = [
        p
        for p in policies
        if p["metadata"] == {"name": "default", "namespace": naming.ISTIO_SYSTEM}
    ]
    assert [p["spec"] for p in mesh_wide] == [{"mtls": {"mode": "STRICT"}}]


@pytest.mark.parametrize("stack", STACKS)
def test_every_mesh_namespace_joins_the_mesh_one_way(stack: str) -> None:
    """Sidecar namespaces carry exactly one injection label; ambient ones the dataplane
    mode and their tag, never istio-injection (which would override the tag)."""
    namespaces = mesh_namespaces(stack_run(stack))
    assert namespaces
    for namespace in namespaces:
        labels = namespace["metadata"]["labels"]
        joined = set(labels) & set(naming.INJECTION_LABELS)
        if labels.get(naming.DATAPLANE_MODE_LABEL) == "ambient":
            assert joined == {naming.DATAPLANE_MODE_LABEL, naming.REVISION_LABEL}, namespace
        else:
            assert len(joined) == 1, namespace
        assert labels[naming.DISCOVERY_LABEL[0]] == naming.DISCOVERY_LABEL[1]


@pytest.mark.parametrize("stack", STACKS)
def test_every_mesh_namespace_is_closed_by_default(stack: str) -> None:
    run = stack_run(stack)
    denied = {
        m["metadata"]["namespace"] for m in manifests(run, "AuthorizationPolicy") if m["spec"] == {}
    }
    assert denied == {m["metadata"]["name"] for m in mesh_namespaces(run)}


@pytest.mark.parametrize("stack", STACKS)
def test_gateway_selector_matches_the_pods_of_its_release(stack: str) -> None:
    run = stack_run(stack)
    installed = releases(run)
    # Istio's Gateways; istiod deploys the pods of the Gateway API's itself.
    gateways = [g for g in manifests(run, "Gateway") if g["apiVersion"] == naming.NETWORKING_API]
    assert gateways
    for gateway in gateways:
        namespace = gateway["metadata"]["namespace"]
        release = next(r for r in installed.values() if r.props["namespace"] == namespace)
        name = release.props["name"]
        # The gateway chart labels its pods app=<release>, istio=<release minus "istio-">.
        pod_labels = {"app": name, "istio": name.removeprefix("istio-")}
        selector = gateway["spec"]["selector"]
        assert selector.items() <= pod_labels.items()


def _depends(run: ProgramRun, dependent: Registered, dependency: Registered) -> bool:
    """Whether `dependent` waits for `dependency`, directly or through other resources."""
    by_urn = run.by_urn()
    seen, todo = set(), list(dependent.depends_on)
    while todo:
        urn = todo.pop()
        if urn == dependency.urn:
            return True
        if urn not in seen:
            seen.add(urn)
            todo += by_urn[urn].depends_on
    return False


@pytest.mark.parametrize("stack", STACKS)
def test_install_order_base_then_istiod_then_injected_workloads(stack: str) -> None:
    run = stack_run(stack)
    installed = releases(run)
    base = installed["istio-base"]
    istiods = [r for name, r in installed.items() if name.startswith("istiod-")]
    gateways = [r for r in installed.values() if r.props["chart"] == "gateway"]
    assert istiods and gateways
    for istiod in istiods:
        assert _depends(run, istiod, base)
        for gateway in gateways:
            assert _depends(run, gateway, istiod), "gateway pods are injected by istiod"
    for namespace in run.of_type("kubernetes:core/v1:Namespace"):
        if namespace.props["metadata"]["name"] != naming.ISTIO_SYSTEM:
            assert all(_depends(run, namespace, istiod) for istiod in istiods)
    # Once istiod has run, its validating webhook fails closed: every Istio resource
    # waits for istiod, the mesh-wide STRICT PeerAuthentication too.
    for kind in ("PeerAuthentication", "AuthorizationPolicy", "VirtualService", "Telemetry"):
        for istio_resource in (
            run.of_type(f"kubernetes:security.istio.io/v1:{kind}")
            + run.of_type(f"kubernetes:networking.istio.io/v1:{kind}")
            + run.of_type(f"kubernetes:telemetry.istio.io/v1:{kind}")
        ):
            assert all(_depends(run, istio_resource, istiod) for istiod in istiods), (
                istio_resource.name
            )


@pytest.mark.parametrize("stack", STACKS)
def test_every_kubernetes_resource_uses_the_explicit_provider(stack: str) -> None:
    run = stack_run(stack)
    (provider,) = run.of_type("pulumi:providers:kubernetes")
    for resource in run.resources:
        if resource.type.startswith("kubernetes:"):
            assert resource.provider is not None
            assert resource.provider.startswith(provider.urn + "::"), resource.name
        if resource.custom is False:
            assert resource.type.startswith("istio-mesh:")
    # The provider says which cluster it is: a new kubeconfig file naming the same
    # cluster differently must not replace it (and with it every resource).
    expected = {"dev": "kind-istio-dev", "prod": "istio-prod"}[stack]
    assert provider.props["clusterIdentifier"] == expected


def test_default_kubernetes_providers_are_disabled_for_every_stack() -> None:
    from mesh.program import project_config_defaults

    assert project_config_defaults()["pulumi:disable-default-providers"] == '["kubernetes"]'


@pytest.mark.parametrize("stack", STACKS)
def test_children_are_parented_to_their_component(stack: str) -> None:
    run = stack_run(stack)
    by_urn = run.by_urn()
    for resource in run.resources:
        if resource.type.startswith("kubernetes:"):
            assert resource.parent in by_urn, resource.name
            parent = by_urn[resource.parent]
            assert parent.type.startswith("istio-mesh:")
            assert resource.name.startswith(parent.name + "-")


@pytest.mark.parametrize("stack", STACKS)
def test_no_release_renders_a_revision_tag(stack: str) -> None:
    # A tag owned by a release changes owner when it moves (components.revision_tags).
    run = stack_run(stack)
    istiods = [r for r in releases(run).values() if r.props["chart"] == "istiod"]
    assert istiods
    assert all("revisionTags" not in r.props["values"] for r in istiods)


def tag_targets(run: ProgramRun) -> dict[str, str]:
    """Tag -> the istiod Service its webhook calls, from the registered webhooks."""
    targets = {}
    for webhook in run.of_type(
        "kubernetes:admissionregistration.k8s.io/v1:MutatingWebhookConfiguration"
    ):
        tag = webhook.props["metadata"]["labels"]["istio.io/tag"]
        services = {w["clientConfig"]["service"]["name"] for w in webhook.props["webhooks"]}
        (targets[tag],) = services
    return targets


def test_dev_runs_stable_and_canary_revisions_side_by_side() -> None:
    run = stack_run("dev")
    installed = releases(run)
    assert tag_targets(run) == {
        "default": "istiod-1-30-5",
        "stable": "istiod-1-30-5",
        "canary": "istiod-1-31-1",
    }
    assert installed["istio-base"].props["values"] == {"defaultRevision": "1-30-5"}
    # CRDs come from the newest revision's chart: older istiods tolerate newer CRDs.
    assert installed["istio-base"].props["version"] == "1.31.1"
    labels = {
        m["metadata"]["name"]: m["metadata"]["labels"].get(naming.REVISION_LABEL)
        for m in manifests(run, "Namespace")
    }
    assert labels["shop"] == "stable" and labels["shop-canary"] == "canary"


def test_prod_istiod_is_highly_available() -> None:
    values = releases(stack_run("prod"))["istiod-1-30-5"].props["values"]
    assert values["autoscaleMin"] >= 2  # the chart renders its PDB only above 1
    assert values["topologySpreadConstraints"]
    assert values["affinity"]["podAntiAffinity"]
    assert values["resources"]["requests"]
    assert values["meshConfig"]["outboundTrafficPolicy"] == {"mode": "REGISTRY_ONLY"}


def test_prod_gateways_survive_node_drains() -> None:
    installed = releases(stack_run("prod"))
    ingress = installed["istio-ingress"].props["values"]
    assert ingress["autoscaling"]["minReplicas"] >= 2
    assert ingress["podDisruptionBudget"] == {"minAvailable": 1}
    assert installed["istio-egress"].props["values"]["service"] == {"type": "ClusterIP"}


def test_prod_protects_what_deleting_would_destroy_the_mesh_with() -> None:
    run = stack_run("prod")
    protected = {r.name for r in run.resources if r.protect and r.retain_on_delete}
    namespaces = {
        r.name
        for r in run.of_type("kubernetes:core/v1:Namespace")
        if r.props["metadata"]["name"] != "observability"  # add-ons: recreated at will
    }
    base = {r.name for r in run.of_type(RELEASE) if r.props["name"] == "istio-base"}
    assert namespaces | base <= protected
    assert namespaces and base


def test_dev_protects_nothing() -> None:
    assert not any(r.protect for r in stack_run("dev").resources)


@pytest.mark.parametrize("stack", STACKS)
def test_network_policy_admits_only_mesh_namespaces(stack: str) -> None:
    run = stack_run(stack)
    gateway_namespaces = {
        r.props["namespace"] for r in run.of_type(RELEASE) if r.props["chart"] == "gateway"
    }
    for policy in manifests(run, "NetworkPolicy"):
        (rule,) = policy["spec"]["ingress"]
        (source,) = [s for s in rule["from"] if "namespaceSelector" in s]
        (expression,) = source["namespaceSelector"]["matchExpressions"]
        allowed = set(expression["values"])
        assert naming.ISTIO_SYSTEM in allowed
        assert gateway_namespaces <= allowed
        assert policy["spec"]["policyTypes"] == ["Ingress"]


def test_manifest_of_a_release_is_none() -> None:
    run = stack_run("dev")
    assert all(kubernetes_manifest(r) is None for r in run.of_type(RELEASE))


QUANTITY = re.compile(r"(\d+(?:\.\d+)?)(m|Ki|Mi|Gi|Ti)?")
UNITS = {None: 1.0, "m": 0.001, "Ki": 2.0**10, "Mi": 2.0**20, "Gi": 2.0**30, "Ti": 2.0**40}


def _resource_blocks(values: Any, where: str) -> Iterator[tuple[str, Any]]:
    """(path, value) of every `resources` key in a release's values."""
    if isinstance(values, dict):
        for key, value in values.items():
            if key == "resources":
                yield f"{where}.resources", value
            else:
                yield from _resource_blocks(value, f"{where}.{key}")


@pytest.mark.parametrize("stack", STACKS)
def test_every_container_resources_block_is_valid_and_requests_cpu_and_memory(
    stack: str,
) -> None:
    # The charts copy `resources` into the pod spec as it is: a misspelt key or resource
    # name reaches the API server, and a pod without requests is scheduled blind.
    blocks = [
        block
        for release in istio_releases(stack_run(stack)).values()
        for block in _resource_blocks(release.props.get("values"), release.props["name"])
    ]
    assert blocks
    for where, block in blocks:
        assert set(block) <= {"requests", "limits"} and "requests" in block, where
        assert set(block["requests"]) == {"cpu", "memory"}, where
        for kind in block:
            for name, quantity in block[kind].items():
                assert name in ("cpu", "memory"), f"{where}.{kind}.{name}"
                assert QUANTITY.fullmatch(quantity), f"{where}.{kind}.{name}: {quantity}"
        for name, limit in block.get("limits", {}).items():
            request = block["requests"][name]
            assert _amount(request) <= _amount(limit), f"{where}: {name} {request} > {limit}"


def _amount(quantity: str) -> float:
    found = QUANTITY.fullmatch(quantity)
    assert found is not None
    return float(found[1]) * UNITS[found[2]]
