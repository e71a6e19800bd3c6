"""Application namespaces in the mesh: injection, default deny, egress scope, NetworkPolicy."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pulumi

from components import naming
from components.authorization import TRUST_DOMAIN, waypoint_policies
from components.gateway_api import waypoint, waypoint_options
from components.k8s import Manifest, child_options, register_manifest
from components.security import default_deny

AMBIENT_PROBE_SOURCE = "169.254.7.127/32"
"""In ambient mode istio-cni rewrites kubelet probes to come from this link-local address;
a NetworkPolicy must admit it or every probe fails."""


@dataclass(frozen=True)
class MeshNamespaceArgs:
    """What `MeshNamespace` needs to know, already resolved from the stack config."""

    name: str
    """Namespace name."""
    dataplane: str = "sidecar"
    """`sidecar` or `ambient`."""
    revision: str = "stable"
    """Revision tag (or revision, or `default`) that injects sidecars."""
    peers: Sequence[str] = ()
    """Namespaces whose pods may open connections into this one (the NetworkPolicy)."""
    egress_hosts: Sequence[str] = ()
    """Extra `namespace/host` entries of the Sidecar egress scope, beyond `./*` and
    `istio-system/*` (e.g. the namespaces of services this one calls)."""
    labels: dict[str, str] = field(default_factory=dict)
    """Extra namespace labels."""
    waypoint: bool = False
    """Ambient only: a waypoint serves the namespace's services (L7 routing and policy)."""
    trust_domain: str = TRUST_DOMAIN
    """The mesh's trust domain: the waypoint's identity is in it."""
    high_availability: bool = False
    """The waypoint autoscales from two pods, spread over zones and nodes, with a PDB."""


def namespace_manifest(
    name: str, injection: dict[str, str], labels: dict[str, str] | None = None
) -> Manifest:
    """A namespace istiod discovers, with exactly one injection label."""
    key, value = naming.DISCOVERY_LABEL
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": name, "labels": {**(labels or {}), key: value, **injection}},
    }


def sidecar_scope(namespace: str, extra_hosts: Sequence[str] = ()) -> Manifest:
    """`Sidecar` `default`: proxies only learn about their own namespace and istio-system.

    Without it every proxy receives the configuration of every service in the mesh,
    which costs memory per pod and push time on every change.
    """
    hosts = ["./*", f"{naming.ISTIO_SYSTEM}/*", *sorted(set(extra_hosts))]
    return {
        "apiVersion": naming.NETWORKING_API,
        "kind": "Sidecar",
        "metadata": {"name": "default", "namespace": namespace},
        "spec": {"egress": [{"hosts": hosts}]},
    }


def network_policy(namespace: str, peers: Sequence[str], ambient: bool) -> Manifest:
    """Kubernetes NetworkPolicy admitting ingress only from the mesh's own namespaces.

    A second layer under Istio's authorization: should a proxy be bypassed, pods
    outside the mesh still cannot reach these pods.
    """
    allowed = sorted({namespace, naming.ISTIO_SYSTEM, *peers})
    sources: list[dict] = [
        {
            "namespaceSelector": {
                "matchExpressions": [
                    {"key": "kubernetes.io/metadata.name", "operator": "In", "values": allowed}
                ]
            }
        }
    ]
    if ambient:
        sources.append({"ipBlock": {"cidr": AMBIENT_PROBE_SOURCE}})
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "ingress-from-mesh", "namespace": namespace},
        "spec": {"podSelector": {}, "policyTypes": ["Ingress"], "ingress": [{"from": sources}]},
    }


def mesh_namespace_manifests(args: MeshNamespaceArgs) -> dict[str, Manifest]:
    """Every object of a mesh namespace, keyed by the suffix of its resource name."""
    ambient = args.dataplane == "ambient"
    if args.waypoint and not ambient:
        raise ValueError(f"namespace {args.name}: waypoints serve ambient namespaces only")
    injection = naming.injection_labels(args.dataplane, args.revision, args.waypoint)
    manifests = {
        "namespace": namespace_manifest(args.name, injection, args.labels),
        "default-deny": default_deny(args.name),
        "network-policy": network_policy(args.name, args.peers, ambient),
    }
    if not ambient:  # a Sidecar resource does nothing to ambient pods
        manifests["sidecar"] = sidecar_scope(args.name, args.egress_hosts)
    if args.waypoint:
        if args.high_availability:
            manifests["waypoint-options"] = waypoint_options(args.name)
        manifests["waypoint"] = waypoint(args.name, args.high_availability)
        manifests |= waypoint_policies(args.name, args.trust_domain)
    return manifests


class MeshNamespace(pulumi.ComponentResource):
    """An application namespace that is in the mesh and closed by default."""

    namespace: pulumi.Resource

    def __init__(
        self,
        name: str,
        args: MeshNamespaceArgs,
        protect: bool = False,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("istio-mesh:namespace:MeshNamespace", name, None, opts)
        manifests = mesh_namespace_manifests(args)
        self.namespace = register_manifest(
            f"{name}-namespace",
            manifests.pop("namespace"),
            child_options(self, opts, protect=protect),
        )
        inside = child_options(self, opts, [self.namespace])
        registered: dict[str, pulumi.Resource] = {}
        for suffix, manifest in manifests.items():
            options = inside
            if suffix == "waypoint" and "waypoint-options" in registered:
                # istiod deploys the waypoint as soon as it sees it: options first.
                options = child_options(
                    self, opts, [self.namespace, registered["waypoint-options"]]
                )
            registered[suffix] = register_manifest(f"{name}-{suffix}", manifest, options)
        self.register_outputs({"name": args.name})
