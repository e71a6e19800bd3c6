"""Names derived from other names: each derivation lives here, and only here.

A revision name, a gateway's release, namespace and pod selector, the labels that put
a namespace in the mesh: every component and check asks this module rather than
re-deriving, so the facts cannot drift apart.
"""

from __future__ import annotations

import re

ISTIO_SYSTEM = "istio-system"
"""Istio's root namespace: istiod, the mesh-wide policies and the mesh config live here."""

CHART_REPOSITORY = "https://blob.istio.io/istio-release/charts"
"""Istio's current Helm repository. The older storage.googleapis.com one stops at 1.30."""

IMAGE_HUB = "docker.io/istio"
"""Where Istio's release images stay after December 2026."""
RETIRED_HUBS = ("gcr.io/istio-release", "registry.istio.io/release")
"""Image locations Istio retires in December 2026 (istio/istio#61467); the released 1.30
charts default to the first."""

DEFAULT_TAG = "default"
"""The revision tag that `istio-injection=enabled` namespaces follow (reserved by Istio)."""

DISCOVERY_LABEL = ("istio-mesh.io/discovery", "enabled")
"""Label on every namespace istiod should watch (`meshConfig.discoverySelectors`)."""

INJECTION_LABEL = "istio-injection"
REVISION_LABEL = "istio.io/rev"
DATAPLANE_MODE_LABEL = "istio.io/dataplane-mode"
INJECTION_LABELS = (INJECTION_LABEL, REVISION_LABEL, DATAPLANE_MODE_LABEL)
"""Labels that choose how a namespace joins the mesh: one of them, or (ambient) the
dataplane mode with the revision tag."""
USE_WAYPOINT_LABEL = "istio.io/use-waypoint"
INGRESS_USE_WAYPOINT_LABEL = "istio.io/ingress-use-waypoint"
"""Ambient: which waypoint serves the namespace's services, and whether traffic from
ingress gateways goes through it too (by default a gateway bypasses waypoints)."""
MANAGED_NAMESPACE_LABELS = (*INJECTION_LABELS, USE_WAYPOINT_LABEL, INGRESS_USE_WAYPOINT_LABEL)
"""Namespace labels the components set, which a stack's `labels` may not."""

WAYPOINT = "waypoint"
"""Name of an ambient namespace's waypoint (a Gateway API `Gateway`); its pods run as
the service account of the same name."""
WAYPOINT_CLASS = "istio-waypoint"
GATEWAY_CLASS = "istio"
"""Gateway API classes Istio implements: waypoints, and ingress gateways it deploys."""
GATEWAY_API_GROUP = "gateway.networking.k8s.io"
GATEWAY_API = f"{GATEWAY_API_GROUP}/v1"
GATEWAY_API_FOR_ISTIO = {(1, 30): "1.5.1", (1, 31): "1.6.0"}
"""The Gateway API release each Istio minor is built against (its go.mod)."""

DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
"""RFC 1123 label: what Kubernetes accepts as a namespace or Service name."""
DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
"""RFC 1123 subdomain: dot-separated labels (a host name, a label key's prefix); the
253-character limit Kubernetes adds is the caller's to check."""

NETWORKING_API = "networking.istio.io/v1"
SECURITY_API = "security.istio.io/v1"
"""API versions of the Istio objects the components emit."""

VERSION_PATTERN = re.compile(r"\d+\.\d+\.\d+(-[0-9A-Za-z.]+)?")
"""An exact Istio release (`1.30.5`, `1.31.0-beta.1`): charts are pinned, never ranged."""


SHARED_RESOURCE_NAMES = ("ca",)
"""Pulumi names a multi-cluster stack declares once, outside every cluster (the mesh's
root CA): no cluster may be named like them (`cluster_resource_name`)."""


def cluster_resource_name(cluster: str | None, name: str) -> str:
    """Pulumi name of one cluster's copy of a top-level resource: `east-istio`.

    Every cluster of a multi-cluster stack is prefixed, the first one too: names keyed
    by position would move the first cluster's resources onto another cluster's
    provider (a replacement) when the list is reordered. Without clusters (`None`),
    today's name.
    """
    return name if cluster is None else f"{cluster}-{name}"


PROVIDER = "kubernetes"
"""Pulumi name of the kubernetes provider (of each cluster's, after its prefix)."""
CA_INTERMEDIATE = "ca-intermediate"
"""Pulumi name of the plug-in CA's intermediate and `cacerts` (of each cluster's, after
its prefix)."""


def cluster_of_provider(provider_name: str) -> str | None:
    """The cluster whose provider is named `provider_name` (`east-kubernetes` -> `east`);
    None for the provider of a stack without clusters."""
    if provider_name == PROVIDER:
        return None
    return provider_name.removesuffix(f"-{PROVIDER}")


NETWORK_LABEL = "topology.istio.io/network"
"""The network of a namespace's pods (on istio-system: of the cluster's control plane)."""
EAST_WEST_GATEWAY = "eastwestgateway"
"""The east-west gateway of a multi-network mesh: release `istio-eastwestgateway` in
istio-system, pods `istio: eastwestgateway` (Istio's own multi-network names)."""
CROSS_NETWORK_GATEWAY = "cross-network-gateway"
"""The Istio `Gateway` that exposes a cluster's services to the other networks."""
MULTICLUSTER_SECRET_LABEL = ("istio/multiCluster", "true")
CLUSTER_ANNOTATION = "networking.istio.io/cluster"
"""What makes istiod read a Secret in istio-system as another cluster's kubeconfig
(`istioctl create-remote-secret` writes both)."""


def remote_secret(cluster: str) -> str:
    """Name of the Secret holding the kubeconfig of `cluster`, in every other cluster."""
    return f"istio-remote-secret-{cluster}"


def dns_label(value: str) -> str:
    """`value` if it is a valid RFC 1123 label (at most 63 characters); ValueError otherwise.

    Usable as a pydantic validator: the message reads well after a config path.
    """
    if len(value) > 63 or not DNS_LABEL.fullmatch(value):
        raise ValueError(
            f"{value!r} is not a valid Kubernetes name "
            "(lower-case letters, digits and '-', at most 63 characters)"
        )
    return value


def revision_name(version: str) -> str:
    """Istio revision for a release: `1.31.1` -> `1-31-1` (revisions may not contain dots)."""
    return version.replace(".", "-")


def version_key(version: str) -> tuple[int, int, int]:
    """Sortable (major, minor, patch) of an exact version; pre-release suffixes ignored."""
    major, minor, patch = version.partition("-")[0].split(".")
    return int(major), int(minor), int(patch)


def istiod_release(revision: str) -> str:
    """Helm release name of one control-plane revision."""
    return f"istiod-{revision}"


def istiod_service(revision: str) -> str:
    """The Service of a revision's istiod (injection, validation, xDS): like its release."""
    return istiod_release(revision)


def gateway_release(gateway: str) -> str:
    """Helm release name of a gateway: `ingress` -> `istio-ingress`."""
    return f"istio-{gateway}"


def gateway_namespace(gateway: str) -> str:
    """Each gateway runs in a namespace of its own, named like its release."""
    return gateway_release(gateway)


def gateway_selector(gateway: str) -> dict[str, str]:
    """Pod labels the gateway chart gives its pods, as an Istio `Gateway.selector`.

    The chart labels pods `istio: <release without the "istio-" prefix>`, so the
    selector is derived from the release name rather than written by hand.
    """
    release = gateway_release(gateway)
    return {"istio": release.removeprefix("istio-")}


def gateway_service_account(gateway: str) -> tuple[str, str]:
    """(namespace, service account) of a gateway's pods: the chart names it after the release."""
    return gateway_namespace(gateway), gateway_release(gateway)


def gateway_ref(gateway: str) -> str:
    """How a VirtualService names the Istio `Gateway` object of a gateway: `<ns>/<name>`."""
    return f"{gateway_namespace(gateway)}/{gateway}"


def injection_labels(dataplane: str, revision: str, waypoint: bool = False) -> dict[str, str]:
    """The labels that put a namespace in the mesh.

    Sidecar namespaces are injected by the revision a tag designates (`istio.io/rev`),
    except `default`, which uses the classic `istio-injection=enabled` (it follows the
    default revision). Never both: Istio lets `istio-injection` override `istio.io/rev`,
    which silently pins the wrong revision.

    Ambient namespaces are captured by ztunnel and still carry `istio.io/rev`: the tag
    chooses the control plane that programs their waypoint, so a canary moves them
    like any other namespace. (The tags' injectors skip ambient namespaces:
    components.revision_tags.) With a waypoint, their services use it, for traffic from
    ingress gateways too.
    """
    if dataplane == "ambient":
        labels = {DATAPLANE_MODE_LABEL: "ambient", REVISION_LABEL: revision}
        if waypoint:
            labels |= {USE_WAYPOINT_LABEL: WAYPOINT, INGRESS_USE_WAYPOINT_LABEL: "true"}
        return labels
    if revision == DEFAULT_TAG:
        return {INJECTION_LABEL: "enabled"}
    return {REVISION_LABEL: revision}


def waypoint_service_account(namespace: str) -> tuple[str, str]:
    """(namespace, service account) of a namespace's waypoint pods."""
    return namespace, WAYPOINT


def https_listener(host: str) -> str:
    """Name of a Gateway API ingress's HTTPS listener for `host`, which the routes of the
    host's services name as their `sectionName` (a host is a valid section name)."""
    return f"https-{host}"


HTTP_LISTENER = "http"
"""The Gateway API ingress's plain-HTTP listener: it only redirects to HTTPS."""


def version_service(service: str, version: str) -> str:
    """The Service of one version of a service: Gateway API routes split traffic between
    Services, not subsets (`reviews-v2`)."""
    return f"{service}-{version}"


def catalog_resource_name(namespace: str) -> str:
    """Pulumi name of the `ServiceCatalog` holding a namespace's services."""
    return f"services-{namespace}"


def service_resource_name(namespace: str, service: str) -> str:
    """Prefix of a service's objects in its catalog: `services-<namespace>-<name>-vs`,
    `-dr`, `-gateway-vs`, `-allow`, `-request-authentication`, `-require-jwt`."""
    return f"{catalog_resource_name(namespace)}-{service}"
