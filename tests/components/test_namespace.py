"""Mesh namespace builders: one injection label, default deny, egress scope, NetworkPolicy."""

from __future__ import annotations

from components.namespace import MeshNamespaceArgs, mesh_namespace_manifests
from tests.conftest import run_config


def labels(args: MeshNamespaceArgs) -> dict[str, str]:
    return mesh_namespace_manifests(args)["namespace"]["metadata"]["labels"]


def test_sidecar_namespace_follows_its_revision_tag() -> None:
    assert labels(MeshNamespaceArgs(name="shop", revision="canary"))["istio.io/rev"] == "canary"


def test_default_revision_uses_the_classic_label_and_never_both() -> None:
    found = labels(MeshNamespaceArgs(name="shop", revision="default"))
    assert found["istio-injection"] == "enabled"
    assert "istio.io/rev" not in found


def test_ambient_namespace_has_no_sidecar_scope_and_admits_rewritten_probes() -> None:
    manifests = mesh_namespace_manifests(MeshNamespaceArgs(name="shop", dataplane="ambient"))
    assert manifests["namespace"]["metadata"]["labels"]["istio.io/dataplane-mode"] == "ambient"
    assert "sidecar" not in manifests
    sources = manifests["network-policy"]["spec"]["ingress"][0]["from"]
    assert {"ipBlock": {"cidr": "169.254.7.127/32"}} in sources


def test_sidecar_scope_keeps_the_namespace_and_istio_system() -> None:
    manifest = mesh_namespace_manifests(MeshNamespaceArgs(name="shop", egress_hosts=["ratings/*"]))[
        "sidecar"
    ]
    assert manifest["spec"]["egress"] == [{"hosts": ["./*", "istio-system/*", "ratings/*"]}]


def test_extra_labels_are_kept() -> None:
    assert labels(MeshNamespaceArgs(name="shop", labels={"team": "a"}))["team"] == "a"


def test_component_children_wait_for_the_namespace() -> None:
    run = run_config({"namespaces": [{"name": "shop", "revision": "default"}]})
    (namespace,) = [r for r in run.resources if r.name == "namespace-shop-namespace"]
    children = [r for r in run.resources if r.parent and r.parent.endswith("::namespace-shop")]
    assert len(children) == 4
    for child in children:
        if child is not namespace:
            assert namespace.urn in child.depends_on


def test_an_ambient_namespace_names_its_tag_and_a_waypoint_serves_it() -> None:
    args = MeshNamespaceArgs(name="store", dataplane="ambient", revision="canary", waypoint=True)
    manifests = mesh_namespace_manifests(args)
    assert labels(args) == {
        "istio-mesh.io/discovery": "enabled",
        "istio.io/dataplane-mode": "ambient",
        "istio.io/rev": "canary",
        "istio.io/use-waypoint": "waypoint",
        "istio.io/ingress-use-waypoint": "true",
    }
    assert manifests["waypoint"]["spec"]["gatewayClassName"] == "istio-waypoint"
    assert manifests["default-deny"]["spec"] == {}
    allow = manifests["allow-waypoint"]["spec"]
    assert "selector" not in allow and "targetRefs" not in allow  # ztunnel, every pod
    assert allow["rules"] == [
        {"from": [{"source": {"principals": ["cluster.local/ns/store/sa/waypoint"]}}]}
    ]
    assert manifests["waypoint-default-deny"]["spec"] == {
        "targetRefs": [
            {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "waypoint"}
        ]
    }
    without = mesh_namespace_manifests(MeshNamespaceArgs(name="store", dataplane="ambient"))
    assert not {"waypoint", "allow-waypoint", "waypoint-default-deny"} & set(without)


def test_a_waypoint_in_a_sidecar_namespace_is_refused() -> None:
    import pytest

    with pytest.raises(ValueError, match="ambient namespaces only"):
        mesh_namespace_manifests(MeshNamespaceArgs(name="shop", waypoint=True))


def test_a_highly_available_waypoint_autoscales_from_two_spread_pods() -> None:
    import yaml

    args = MeshNamespaceArgs(
        name="store", dataplane="ambient", waypoint=True, high_availability=True
    )
    manifests = mesh_namespace_manifests(args)
    options = manifests["waypoint-options"]
    assert options["metadata"] == {"name": "waypoint-options", "namespace": "store"}
    assert manifests["waypoint"]["spec"]["infrastructure"] == {
        "parametersRef": {"group": "", "kind": "ConfigMap", "name": "waypoint-options"}
    }
    data = {key: yaml.safe_load(text) for key, text in options["data"].items()}
    assert data["horizontalPodAutoscaler"] == {"spec": {"minReplicas": 2, "maxReplicas": 5}}
    assert data["podDisruptionBudget"] == {"spec": {"minAvailable": 1}}
    spread = data["deployment"]["spec"]["template"]["spec"]["topologySpreadConstraints"]
    assert spread[0]["labelSelector"] == {
        "matchLabels": {"gateway.networking.k8s.io/gateway-name": "waypoint"}
    }
    # Without HA, istiod's defaults: one pod, no options.
    plain = mesh_namespace_manifests(
        MeshNamespaceArgs(name="s", dataplane="ambient", waypoint=True)
    )
    assert "waypoint-options" not in plain and "infrastructure" not in plain["waypoint"]["spec"]


def test_a_highly_available_waypoint_waits_for_its_options() -> None:
    run = run_config(
        {
            "istio": {"highAvailability": True},
            "namespaces": [{"name": "store", "dataplane": "ambient"}],
        }
    )
    by_name = {r.name: r for r in run.resources}
    options = by_name["namespace-store-waypoint-options"]
    assert options.urn in by_name["namespace-store-waypoint"].depends_on
