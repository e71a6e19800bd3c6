"""The Istio control plane: base (CRDs), optional istio-cni, one istiod per revision, ztunnel.

Builders turn the typed `IstioSettings` into `ChartRelease` values and manifests;
`IstioControlPlane` registers them in Istio's install order, base -> cni -> istiod ->
ztunnel, through `depends_on`, so nothing is injected by an istiod that is not running.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi

from components import naming
from components.config import IstioSettings
from components.egress import API_SERVER_DISCOVERY
from components.helm import ChartRelease, register_release, spread_across_zones_and_hosts
from components.k8s import Manifest, child_options, register_manifest
from components.revision_tags import tag_service, tag_webhook
from components.security import mesh_strict_mtls

# Resource requests: istiod's chart default (500m / 2Gi) suits production; a dev cluster
# on a laptop cannot spare that per revision.
_DEV_ISTIOD_RESOURCES = {"requests": {"cpu": "100m", "memory": "256Mi"}}
_HA_ISTIOD_RESOURCES = {
    "requests": {"cpu": "500m", "memory": "2Gi"},
    "limits": {"memory": "4Gi"},
}
HA_MIN_REPLICAS = 2
"""istiod renders its PodDisruptionBudget only with autoscaleMin > 1."""


@dataclass(frozen=True)
class ClusterIdentity:
    """Where one control plane of a multi-primary mesh sits: istiod's `global` values."""

    mesh_id: str
    """`global.meshID`: the same in every cluster of the mesh."""
    cluster_name: str
    """`global.multiCluster.clusterName`: how the other clusters' istiod name it (the
    `networking.istio.io/cluster` of its remote secret)."""
    network: str
    """`global.network`: the network of its pods, which istiod gives its proxies."""

    def global_values(self) -> dict[str, Any]:
        return {
            "meshID": self.mesh_id,
            "multiCluster": {"clusterName": self.cluster_name},
            "network": self.network,
        }


def newest_version(istio: IstioSettings) -> str:
    """The newest Istio version of the stack: CRDs (base) must be at least that new."""
    return max((r.version for r in istio.revisions), key=naming.version_key)


def default_version(istio: IstioSettings) -> str:
    version = istio.default_version
    assert version is not None  # a validated config's defaultRevision is a revision
    return version


def revision_of_tags(istio: IstioSettings) -> dict[str, str]:
    """Tag -> the revision it points at, the `default` tag (whose webhook also serves
    namespaces labeled `istio-injection=enabled`) following the default revision."""
    return {naming.DEFAULT_TAG: istio.default_revision_name, **dict(sorted(istio.tag_map.items()))}


def revision_tag_manifests(istio: IstioSettings) -> dict[str, list[Manifest]]:
    """Tag -> its webhook and Service (components.revision_tags), outside every release."""
    return {
        tag: [tag_webhook(tag, revision), tag_service(tag, revision)]
        for tag, revision in revision_of_tags(istio).items()
    }


def mesh_config(
    istio: IstioSettings, extension_providers: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """Istio MeshConfig shared by every revision (set through the istiod chart).

    Access logs are switched on and off by the mesh `Telemetry` (provider `envoy`);
    the encoding chosen here applies to them.
    """
    key, value = naming.DISCOVERY_LABEL
    config: dict[str, Any] = {
        "trustDomain": istio.trust_domain,
        "outboundTrafficPolicy": {"mode": istio.outbound_traffic_policy},
        # istiod only watches labeled namespaces: less memory and push load, and a
        # namespace outside the mesh cannot leak its services into it.
        # ... and `default`, for the API server's Service (components.egress says why).
        "discoverySelectors": [{"matchLabels": {key: value}}, API_SERVER_DISCOVERY],
        # No `holdApplicationUntilProxyStarts`: Istio injects the proxy as a native sidecar
        # (an init container that runs for the pod's life, ENABLE_NATIVE_SIDECARS=auto) on
        # every Kubernetes it supports, and a native sidecar starts before the app anyway;
        # the setting does nothing there.
    }
    if istio.access_logs:
        config["accessLogEncoding"] = "JSON"
    if istio.trust_domain_aliases:
        # Identities of these domains count as this one's (a trust-domain move).
        config["trustDomainAliases"] = list(istio.trust_domain_aliases)
    if extension_providers:
        config["extensionProviders"] = extension_providers
    return config


def istiod_release(
    istio: IstioSettings,
    version: str,
    extension_providers: list[dict[str, Any]] | None = None,
    ambient: bool | None = None,
    cluster: ClusterIdentity | None = None,
) -> ChartRelease:
    """The istiod release of one revision, with the HA profile when asked; `cluster`:
    its place in a multi-primary mesh (none: a one-cluster mesh, the chart's defaults).

    `ambient` (default: the mesh-wide dataplane is ambient) gives every revision the
    ambient profile: any revision may serve an ambient namespace once a tag moves to it,
    and the profile keeps serving sidecars too.
    """
    if ambient is None:
        ambient = istio.dataplane == "ambient"
    revision = naming.revision_name(version)
    settings = next(r for r in istio.revisions if r.version == version)
    values: dict[str, Any] = {
        "revision": revision,
        # Also the hub of every proxy istiod injects (sidecars, gateways: `image: auto`).
        "global": {"hub": istio.hub, **(cluster.global_values() if cluster else {})},
        # No release renders a tag (components.revision_tags says why): `revisionTags`
        # stays the chart's empty default. (An explicit `[]` is lost on the way anyway:
        # the e2e tier saw the engine store the release's values without it.)
        "meshConfig": mesh_config(istio, extension_providers),
    }
    if settings.compatibility_version is not None:
        values["compatibilityVersion"] = settings.compatibility_version
    if ambient:
        values["profile"] = "ambient"
    elif istio.cni:
        values["cni"] = {"enabled": True}
    if istio.high_availability:
        pod_labels = {"app": "istiod", naming.REVISION_LABEL: revision}
        values |= {
            "autoscaleEnabled": True,
            "autoscaleMin": HA_MIN_REPLICAS,
            "autoscaleMax": 5,
            "resources": _HA_ISTIOD_RESOURCES,
            **spread_across_zones_and_hosts(pod_labels),
        }
    else:
        values |= {"autoscaleMin": 1, "autoscaleMax": 2, "resources": _DEV_ISTIOD_RESOURCES}
    return ChartRelease(
        name=naming.istiod_release(revision),
        chart="istiod",
        version=version,
        namespace=naming.ISTIO_SYSTEM,
        values=values,
        repository=istio.chart_repository,
        wait=istio.await_releases,
    )


def control_plane_releases(
    istio: IstioSettings,
    extension_providers: list[dict[str, Any]] | None = None,
    ambient: bool | None = None,
    cluster: ClusterIdentity | None = None,
) -> dict[str, ChartRelease]:
    """Every control-plane release, keyed by its role (`base`, `cni`, `istiod-<rev>`, ...).

    `ambient`: some namespace is ambient (default: the mesh-wide dataplane is), which
    needs istio-cni and ztunnel on every node whatever the other namespaces run.
    """
    if ambient is None:
        ambient = istio.dataplane == "ambient"
    releases = {
        "base": ChartRelease(
            name="istio-base",
            chart="base",
            version=newest_version(istio),
            namespace=naming.ISTIO_SYSTEM,
            values={"defaultRevision": istio.default_revision_name},
            repository=istio.chart_repository,
            wait=istio.await_releases,
        )
    }
    if ambient or istio.cni:
        cni_values: dict[str, Any] = {
            "revision": istio.default_revision_name,
            "global": {"hub": istio.hub},
        }
        if ambient:
            cni_values["profile"] = "ambient"
        releases["cni"] = ChartRelease(
            name="istio-cni",
            chart="cni",
            version=default_version(istio),
            namespace=naming.ISTIO_SYSTEM,
            values=cni_values,
            repository=istio.chart_repository,
            wait=istio.await_releases,
        )
    for revision in istio.revisions:
        release = istiod_release(istio, revision.version, extension_providers, ambient, cluster)
        releases[release.name] = release
    if ambient:
        releases["ztunnel"] = ChartRelease(
            name="ztunnel",
            chart="ztunnel",
            version=default_version(istio),
            namespace=naming.ISTIO_SYSTEM,
            # ztunnel's chart reads its hub at the top level.
            values={"revision": istio.default_revision_name, "hub": istio.hub},
            repository=istio.chart_repository,
            wait=istio.await_releases,
        )
    return releases


def system_namespace(network: str | None = None) -> Manifest:
    """istio-system; in a multi-network mesh labeled with the cluster's network, which
    istiod reads as its own (and its gateways')."""
    key, value = naming.DISCOVERY_LABEL
    labels = {key: value}
    if network is not None:
        labels[naming.NETWORK_LABEL] = network
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": naming.ISTIO_SYSTEM, "labels": labels},
    }


class IstioControlPlane(pulumi.ComponentResource):
    """Istio's control plane, installed from its Helm charts in dependency order.

    Children: the `istio-system` namespace, `istio-base`, optional `istio-cni`, one
    `istiod-<revision>` per revision, `ztunnel` in ambient mode, each revision tag's
    webhook and Service, and the mesh-wide STRICT mTLS `PeerAuthentication`.
    `ready` lists the istiod releases: anything whose pods get injected depends on it.
    `istiod_needs` is called with the istio-system namespace and returns what every
    istiod release waits for (the plug-in CA's `cacerts` Secret, components.ca).
    `cluster`: the control plane's place in a multi-primary mesh; `namespace` is
    istio-system, which a cluster's remote secrets and east-west gateway wait for.
    """

    releases: dict[str, pulumi.Resource]
    ready: list[pulumi.Resource]

    def __init__(
        self,
        name: str,
        istio: IstioSettings,
        extension_providers: list[dict[str, Any]] | None = None,
        opts: pulumi.ResourceOptions | None = None,
        ambient: bool | None = None,
        istiod_needs: Callable[[pulumi.Resource], Sequence[pulumi.Resource]] | None = None,
        cluster: ClusterIdentity | None = None,
    ) -> None:
        """`ambient`: some namespace is ambient (default: `istio.dataplane` is)."""
        super().__init__("istio-mesh:control-plane:IstioControlPlane", name, None, opts)
        namespace = register_manifest(
            f"{name}-namespace",
            system_namespace(cluster.network if cluster else None),
            child_options(self, opts, protect=istio.protect),
        )
        # What istiod must find in istio-system when it starts (the plug-in CA's
        # `cacerts` Secret: without it istiod makes a self-signed root of its own).
        needed = list(istiod_needs(namespace)) if istiod_needs else []
        plan = control_plane_releases(istio, extension_providers, ambient, cluster)
        self.namespace = namespace
        self.releases = {}

        def install(
            role: str, after: list[pulumi.Resource], protect: bool = False
        ) -> pulumi.Resource:
            options = child_options(self, opts, after, protect=protect)
            release = register_release(f"{name}-{role}", plan[role], options)
            self.releases[role] = release
            return release

        # The base release carries the CRDs: deleting it deletes every Istio resource.
        base = install("base", [namespace], protect=istio.protect)
        before_istiod = [install("cni", [base])] if "cni" in plan else [base]
        self.ready = [
            install(naming.istiod_release(revision.name), [*before_istiod, *needed])
            for revision in istio.revisions
        ]
        if "ztunnel" in plan:
            self.ready.append(install("ztunnel", self.ready))
        # A tag is named after itself, never after its revision: moving it updates its
        # objects in place. After every istiod release, so that a release upgraded from a
        # version that still rendered tags has let go of them first.
        istiod_releases = [self.releases[naming.istiod_release(r.name)] for r in istio.revisions]
        for tag, manifests in revision_tag_manifests(istio).items():
            for manifest in manifests:
                kind = (
                    "webhook" if manifest["kind"] == "MutatingWebhookConfiguration" else "service"
                )
                register_manifest(
                    f"{name}-tag-{tag}-{kind}",
                    manifest,
                    child_options(self, opts, istiod_releases),
                )
        # After istiod, like every Istio resource: once an istiod has run, its validating
        # webhook fails closed, and a reinstall would refuse the policy until it is up.
        self.strict_mtls = register_manifest(
            f"{name}-strict-mtls",
            mesh_strict_mtls(),
            child_options(self, opts, self.ready),
        )
        self.register_outputs(
            {
                "releases": {role: release.name for role, release in plan.items()},
                "revisions": [revision.name for revision in istio.revisions],
            }
        )
