"""Ingress and egress gateways: the `gateway` chart in an injected namespace of its own.

For an ingress gateway, an Istio `Gateway` object serves its hosts over HTTPS (443, a
certificate per server) and answers plain HTTP (80) only with a redirect. Its
selector is derived from the release name (`naming.gateway_selector`), so it always
matches the pods the chart creates.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi

from components import naming
from components.config import ExternalHost, GatewaySettings
from components.egress import egress_allow_rules
from components.gateway_api import (
    https_redirect,
    ingress_gateway,
    ingress_options,
    ingress_selector,
)
from components.helm import ChartRelease, register_release, spread_across_zones_and_hosts
from components.k8s import Manifest, child_options, register_manifest
from components.namespace import namespace_manifest
from components.naming import SECURITY_API
from components.security import default_deny

HTTPS_PORT = 443
HTTP_PORT = 80


@dataclass(frozen=True)
class GatewayArgs:
    """A gateway, resolved from the stack config."""

    settings: GatewaySettings
    """The `istio-mesh:gateways` entry."""
    version: str
    """Istio version of the revision that injects it (the chart is pinned to it)."""
    callers: Sequence[str] = ()
    """Egress gateways only: namespaces whose workloads may send traffic through it."""
    chart_repository: str = naming.CHART_REPOSITORY
    """Where the gateway chart comes from (`istio.chartRepository`)."""
    wait: bool = True
    """Wait for the gateway's pods before what depends on it (`istio.awaitReleases`)."""
    high_availability: bool = False
    """Spread the gateway's pods over zones and nodes (`istio.highAvailability`)."""
    external_hosts: Sequence[ExternalHost] = ()
    """Egress gateways only: the external hosts routed through it, whose callers its
    ALLOW rules name host by host (`istio-mesh:externalHosts`)."""
    route_namespaces: Sequence[str] = ()
    """`gateway-api` gateways only: the namespaces of the services exposed through it,
    whose HTTPRoutes its HTTPS listeners admit."""


def pod_selector(settings: GatewaySettings) -> dict[str, str]:
    """The labels of the gateway's pods: the chart's, or those istiod gives the pods of
    a Gateway API `Gateway` it deploys."""
    if settings.api == "gateway-api":
        return ingress_selector(settings.name)
    return naming.gateway_selector(settings.name)


def gateway_release(args: GatewayArgs) -> ChartRelease:
    """The gateway chart's release; its pods follow the namespace's revision label."""
    settings = args.settings
    replicas = settings.replicas
    values: dict[str, Any] = {
        "service": {"type": settings.effective_service_type},
        "resources": {
            "requests": {"cpu": "100m", "memory": "128Mi"},
            "limits": {"cpu": "2000m", "memory": "1Gi"},
        },
    }
    if replicas.max > replicas.min:
        values["autoscaling"] = {
            "enabled": True,
            "minReplicas": replicas.min,
            "maxReplicas": replicas.max,
        }
    else:
        values["autoscaling"] = {"enabled": False}
        values["replicaCount"] = replicas.min
    if replicas.min > 1:
        # Keep one pod serving through node drains and cluster upgrades.
        values["podDisruptionBudget"] = {"minAvailable": 1}
    if args.high_availability:
        values |= spread_across_zones_and_hosts(naming.gateway_selector(settings.name))
    name = settings.name
    return ChartRelease(
        name=naming.gateway_release(name),
        chart="gateway",
        version=args.version,
        namespace=naming.gateway_namespace(name),
        values=values,
        repository=args.chart_repository,
        wait=args.wait,
    )


def gateway_object(settings: GatewaySettings) -> Manifest:
    """The Istio `Gateway`: an HTTPS server per host set, and HTTP that only redirects."""
    servers: list[dict[str, Any]] = []
    for index, server in enumerate(settings.servers):
        servers.append(
            {
                "port": {"number": HTTPS_PORT, "name": f"https-{index}", "protocol": "HTTPS"},
                "hosts": list(server.hosts),
                "tls": {"mode": server.tls.mode, "credentialName": server.tls.credential_name},
            }
        )
    all_hosts = sorted({host for server in settings.servers for host in server.hosts})
    servers.append(
        {
            "port": {"number": HTTP_PORT, "name": "http-redirect", "protocol": "HTTP"},
            "hosts": all_hosts,
            "tls": {"httpsRedirect": True},
        }
    )
    return {
        "apiVersion": naming.NETWORKING_API,
        "kind": "Gateway",
        "metadata": {"name": settings.name, "namespace": naming.gateway_namespace(settings.name)},
        "spec": {"selector": naming.gateway_selector(settings.name), "servers": servers},
    }


def gateway_allow(args: GatewayArgs) -> Manifest:
    """ALLOW policy of the gateway pods, under the namespace's default deny.

    Ingress: anyone may reach the listener ports (clients outside the mesh carry no
    identity). Egress: each external host only from the namespaces that may call it;
    with no external host, workloads of the mesh's own namespaces.
    """
    settings = args.settings
    rules: list[dict[str, Any]]
    if settings.kind == "ingress":
        rules = [{"to": [{"operation": {"ports": [str(HTTP_PORT), str(HTTPS_PORT)]}}]}]
    elif args.external_hosts:
        rules = egress_allow_rules(args.external_hosts, args.callers)
    else:
        rules = [{"from": [{"source": {"namespaces": sorted(args.callers)}}]}]
    return {
        "apiVersion": SECURITY_API,
        "kind": "AuthorizationPolicy",
        "metadata": {
            "name": f"allow-{settings.kind}",
            "namespace": naming.gateway_namespace(settings.name),
        },
        "spec": {
            "selector": {"matchLabels": pod_selector(settings)},
            "action": "ALLOW",
            "rules": rules,
        },
    }


def gateway_manifests(args: GatewayArgs) -> dict[str, Manifest]:
    """The gateway's Kubernetes and Istio objects (its chart aside), keyed by name suffix."""
    settings = args.settings
    namespace = naming.gateway_namespace(settings.name)
    manifests = {
        "namespace": namespace_manifest(
            namespace, naming.injection_labels("sidecar", settings.revision)
        ),
        "default-deny": default_deny(namespace),
        "allow": gateway_allow(args),
    }
    if settings.api == "gateway-api":
        manifests["gateway"] = ingress_gateway(settings, args.route_namespaces)
        manifests["https-redirect"] = https_redirect(settings)
        manifests["options"] = ingress_options(settings, args.high_availability)
    elif settings.kind == "ingress":
        manifests["gateway"] = gateway_object(settings)
    return manifests


class IngressGateway(pulumi.ComponentResource):
    """A gateway Helm release in its own injected namespace, with its Istio `Gateway`.

    Also serves egress gateways (`kind: egress`): same chart, ClusterIP, no `Gateway`;
    and `api: gateway-api` ingresses: a Gateway API `Gateway` istiod deploys (its
    options ConfigMap, no chart) and the HTTP listener's redirect route.
    Pass the control plane's istiod releases in `depends_on`: the chart's pods are
    injected (`image: auto`) and come up broken if istiod is not running yet.
    """

    release: pulumi.Resource

    def __init__(
        self,
        name: str,
        args: GatewayArgs,
        protect: bool = False,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("istio-mesh:gateway:IngressGateway", name, None, opts)
        manifests = gateway_manifests(args)
        namespace = register_manifest(
            f"{name}-namespace",
            manifests.pop("namespace"),
            child_options(self, opts, protect=protect),
        )
        settings = args.settings
        if settings.api == "gateway-api":
            # istiod deploys the pods from the Gateway: no chart. The options first, so
            # its first Deployment already has them.
            options = register_manifest(
                f"{name}-options", manifests.pop("options"), child_options(self, opts, [namespace])
            )
            self.release = options
            outputs = {"namespace": naming.gateway_namespace(settings.name)}
        else:
            release = gateway_release(args)
            self.release = register_release(
                f"{name}-release", release, child_options(self, opts, [namespace])
            )
            outputs = {"release": release.name, "namespace": release.namespace}
        for suffix, manifest in manifests.items():
            register_manifest(
                f"{name}-{suffix}", manifest, child_options(self, opts, [self.release])
            )
        self.register_outputs({**outputs, "selector": pod_selector(settings)})
