"""One mesh across clusters (Istio multi-primary, on one network or several).

Every cluster runs its own control plane (components.control_plane with a
`ClusterIdentity`), and learns the other clusters' endpoints through remote secrets:
a Secret in its istio-system per other cluster, holding a kubeconfig for it, which
istiod watches (`istio/multiCluster: "true"`). Where the clusters' networks differ,
pods cannot reach each other's pods directly: each cluster's east-west gateway
(the gateway chart with `networkGateway`) accepts mTLS traffic for its services on
15443 and passes it through to the pod, its SNI naming the destination
(`AUTO_PASSTHROUGH`); istiod sends cross-network traffic to the other network's
gateway.

Builders (`east_west_release`, `cross_network_gateway`, `remote_secret_manifest`,
`remote_secret_pairs`) are pure; `EastWestGateway` and `RemoteSecrets` register them.
The kubeconfigs stay Pulumi secrets from config to the Secret.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi

from components import naming
from components.config import ClusterSettings
from components.helm import ChartRelease, register_release
from components.k8s import Manifest, child_options, register_manifest

CROSS_NETWORK_PORT = 15443
"""The east-west gateway's mTLS port (the gateway chart's `tls` network port)."""
CROSS_NETWORK_HOSTS = ["*.local"]
"""What the east-west gateway exposes: the services of the mesh's clusters
(`<svc>.<ns>.svc.cluster.local`), nothing from outside."""


def east_west_release(
    version: str,
    network: str,
    revision: str,
    repository: str = naming.CHART_REPOSITORY,
    wait: bool = True,
) -> ChartRelease:
    """The east-west gateway's release in istio-system. `networkGateway` makes the chart
    label its pods and Service with the network, ask istiod for the mesh-wide network
    view, and open the network ports instead of `service.ports`: 15021 (status),
    15443 (cross-network mTLS), 15012 (istiod) and 15017 (webhooks), as Istio's
    multi-network installation does."""
    return ChartRelease(
        name=naming.gateway_release(naming.EAST_WEST_GATEWAY),
        chart="gateway",
        version=version,
        namespace=naming.ISTIO_SYSTEM,
        values={
            "networkGateway": network,
            # istio-system has no injection label: the pods ask for their revision.
            "revision": revision,
            # Reached from the other networks: an address outside the cluster.
            "service": {"type": "LoadBalancer"},
        },
        repository=repository,
        wait=wait,
    )


def cross_network_gateway() -> Manifest:
    """The Istio `Gateway` exposing the cluster's services to the other networks: TLS on
    15443, passed through to the pod named by the SNI, for `*.local` hosts only."""
    return {
        "apiVersion": naming.NETWORKING_API,
        "kind": "Gateway",
        "metadata": {"name": naming.CROSS_NETWORK_GATEWAY, "namespace": naming.ISTIO_SYSTEM},
        "spec": {
            "selector": naming.gateway_selector(naming.EAST_WEST_GATEWAY),
            "servers": [
                {
                    "port": {"number": CROSS_NETWORK_PORT, "name": "tls", "protocol": "TLS"},
                    "tls": {"mode": "AUTO_PASSTHROUGH"},
                    "hosts": list(CROSS_NETWORK_HOSTS),
                }
            ],
        },
    }


def remote_secret_manifest(cluster: str, kubeconfig: Any) -> Manifest:
    """The Secret that tells one cluster's istiod how to read `cluster` (as
    `istioctl create-remote-secret` writes it): one key, the cluster's name, holding
    its kubeconfig (`kubeconfig`: a string, or a secret Output)."""
    key, value = naming.MULTICLUSTER_SECRET_LABEL
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": naming.remote_secret(cluster),
            "namespace": naming.ISTIO_SYSTEM,
            "labels": {key: value},
            "annotations": {naming.CLUSTER_ANNOTATION: cluster},
        },
        "type": "Opaque",
        "stringData": {cluster: kubeconfig},
    }


def remote_secret_pairs(clusters: Sequence[ClusterSettings]) -> list[tuple[str, str]]:
    """(in, of): every ordered pair of distinct clusters where `of` has a kubeconfig;
    the Secret lives in `in` and names `of`."""
    return [
        (into.name, of.name)
        for into in clusters
        for of in clusters
        if into.name != of.name and of.kubeconfig is not None
    ]


@dataclass(frozen=True)
class EastWestGatewayArgs:
    """Arguments of `EastWestGateway`."""

    version: str
    """Istio version of the revision that injects it (the chart is pinned to it)."""
    network: str
    """The cluster's network (`global.network`)."""
    revision: str
    """The revision whose istiod injects the gateway's pods."""
    chart_repository: str = naming.CHART_REPOSITORY
    wait: bool = True
    """Wait for the gateway's pods (`istio.awaitReleases`)."""


class EastWestGateway(pulumi.ComponentResource):
    """A cluster's east-west gateway: the gateway chart with `networkGateway`, and the
    `cross-network-gateway` that exposes the cluster's services on 15443."""

    def __init__(
        self, name: str, args: EastWestGatewayArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("istio-mesh:multicluster:EastWestGateway", name, None, opts)
        release = register_release(
            f"{name}-release",
            east_west_release(
                args.version, args.network, args.revision, args.chart_repository, args.wait
            ),
            child_options(self, opts),
        )
        register_manifest(f"{name}-gateway", cross_network_gateway(), child_options(self, opts))
        self.register_outputs({"release": release.name})


@dataclass(frozen=True)
class RemoteSecretsArgs:
    """Arguments of `RemoteSecrets`."""

    kubeconfigs: dict[str, pulumi.Input[str]]
    """Other cluster's name -> its kubeconfig (a secret)."""


class RemoteSecrets(pulumi.ComponentResource):
    """The remote secrets of one cluster: one per other cluster it discovers. Their
    data is a Pulumi secret: encrypted in the state, never in an output."""

    def __init__(
        self, name: str, args: RemoteSecretsArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("istio-mesh:multicluster:RemoteSecrets", name, None, opts)
        for cluster, kubeconfig in sorted(args.kubeconfigs.items()):
            manifest = remote_secret_manifest(cluster, pulumi.Output.secret(kubeconfig))
            register_manifest(f"{name}-{cluster}", manifest, child_options(self, opts))
        self.register_outputs({"clusters": sorted(args.kubeconfigs)})
