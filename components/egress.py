"""What the mesh may reach outside itself: the API server and the external hosts a stack
allows, registered for REGISTRY_ONLY and routed through the egress gateway.

Under `outboundTrafficPolicy: REGISTRY_ONLY` a proxy sends nowhere it has no service for,
and with `discoverySelectors` istiod only knows the namespaces labeled for it. Two gaps
follow, both closed here:

- `kubernetes.default.svc` lives in `default`, which no mesh namespace label reaches:
  istiod also discovers `default` (`API_SERVER_DISCOVERY`), and every namespace's
  `Sidecar` scope lists the API server's host (`API_SERVER_EGRESS`).
- Hosts outside the cluster are unknown: each `istio-mesh:externalHosts` entry is a
  `ServiceEntry` (MESH_EXTERNAL, DNS) in istio-system, visible to every namespace. With
  an egress gateway (Istio's egress-gateway pattern), a `Gateway` on it (TLS passed
  through by SNI; plain HTTP is refused there), a `VirtualService` sending the mesh's calls to the
  gateway and the gateway's on to the host, a `DestinationRule` keeping the hop to the
  gateway mutual TLS, and the gateway's ALLOW rules naming which namespaces may use
  which host: a pod can only leave through the gateway, and only where allowed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pulumi

from components import naming
from components.config import ExternalHost
from components.k8s import Manifest, child_options, register_manifest

API_SERVER_HOST = "kubernetes.default.svc.cluster.local"
API_SERVER_DISCOVERY = {"matchLabels": {"kubernetes.io/metadata.name": "default"}}
"""A discovery selector for `default`, where the API server's Service lives."""
API_SERVER_EGRESS = f"default/{API_SERVER_HOST}"
"""The API server's host in a `Sidecar` egress scope."""

GATEWAY_PORTS = {"TLS": 443}
"""Where the egress gateway (the gateway chart's Service) listens: TLS only."""


def slug(host: str) -> str:
    """A Kubernetes name for a host's objects: `api.stripe.com` -> `api-stripe-com`."""
    return host.replace(".", "-")[:63].rstrip("-")


def callers(external: ExternalHost, mesh_namespaces: Sequence[str]) -> list[str]:
    """The namespaces whose workloads may call `external`."""
    return sorted(external.namespaces if external.namespaces is not None else mesh_namespaces)


def service_entry(external: ExternalHost) -> Manifest:
    return {
        "apiVersion": naming.NETWORKING_API,
        "kind": "ServiceEntry",
        "metadata": {"name": f"external-{slug(external.host)}", "namespace": naming.ISTIO_SYSTEM},
        "spec": {
            "hosts": [external.host],
            "location": "MESH_EXTERNAL",
            "resolution": "DNS",
            "ports": [
                {
                    "number": port.number,
                    "name": f"{port.protocol.lower()}-{port.number}",
                    "protocol": port.protocol,
                }
                for port in external.ports
            ],
        },
    }


def _gateway_service(gateway: str) -> str:
    namespace = naming.gateway_namespace(gateway)
    return f"{naming.gateway_release(gateway)}.{namespace}.svc.cluster.local"


def egress_gateway_route(external: ExternalHost, gateway: str) -> list[Manifest]:
    """The Gateway and VirtualService that send calls to `external` through `gateway`:
    TLS only, passed through by SNI and never decrypted (the config refuses plain HTTP
    through the gateway, whose servers gateway-server-tls keeps off plain text)."""
    namespace = naming.gateway_namespace(gateway)
    name = f"egress-{slug(external.host)}"
    gateway_ref = f"{namespace}/{name}"
    listen = GATEWAY_PORTS["TLS"]
    to_gateway = {"destination": {"host": _gateway_service(gateway), "port": {"number": listen}}}
    servers = []
    routes: list[dict[str, Any]] = []
    for port in external.ports:
        to_host = {"destination": {"host": external.host, "port": {"number": port.number}}}
        servers.append(
            {
                "port": {"number": listen, "name": f"tls-{port.number}", "protocol": "TLS"},
                "hosts": [external.host],
                "tls": {"mode": "PASSTHROUGH"},
            }
        )
        sni = [external.host]
        routes += [
            {
                "match": [{"gateways": ["mesh"], "port": port.number, "sniHosts": sni}],
                "route": [to_gateway],
            },
            {
                "match": [{"gateways": [gateway_ref], "port": listen, "sniHosts": sni}],
                "route": [to_host],
            },
        ]
    return [
        {
            "apiVersion": naming.NETWORKING_API,
            "kind": "Gateway",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"selector": naming.gateway_selector(gateway), "servers": servers},
        },
        {
            "apiVersion": naming.NETWORKING_API,
            "kind": "VirtualService",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"hosts": [external.host], "gateways": ["mesh", gateway_ref], "tls": routes},
        },
    ]


def egress_gateway_mutual_tls(gateway: str) -> Manifest:
    """The hop from a sidecar to the egress gateway is mutual TLS, said explicitly."""
    return {
        "apiVersion": naming.NETWORKING_API,
        "kind": "DestinationRule",
        "metadata": {"name": "egress-gateway", "namespace": naming.gateway_namespace(gateway)},
        "spec": {
            "host": _gateway_service(gateway),
            "trafficPolicy": {"tls": {"mode": "ISTIO_MUTUAL"}},
        },
    }


def egress_allow_rules(
    hosts: Sequence[ExternalHost], mesh_namespaces: Sequence[str]
) -> list[dict[str, Any]]:
    """The egress gateway's ALLOW rules: who may use which host (by the SNI it names)."""
    return [
        {
            "from": [{"source": {"namespaces": callers(external, mesh_namespaces)}}],
            "to": [{"operation": {"ports": [str(GATEWAY_PORTS["TLS"])]}}],
            "when": [{"key": "connection.sni", "values": [external.host]}],
        }
        for external in hosts
    ]


def external_manifests(
    hosts: Sequence[ExternalHost], egress_gateway: str | None
) -> dict[str, Manifest]:
    """Every object of the external hosts, keyed by the suffix of its resource name."""
    manifests: dict[str, Manifest] = {}
    for external in hosts:
        key = slug(external.host)
        manifests[f"{key}-service-entry"] = service_entry(external)
        if egress_gateway is not None:
            gateway, route = egress_gateway_route(external, egress_gateway)
            manifests[f"{key}-gateway"] = gateway
            manifests[f"{key}-route"] = route
    if hosts and egress_gateway is not None:
        manifests["egress-gateway-mtls"] = egress_gateway_mutual_tls(egress_gateway)
    return manifests


def caller_egress_entries(
    hosts: Sequence[ExternalHost], mesh_namespaces: Sequence[str], egress_gateway: str | None
) -> dict[str, list[str]]:
    """Namespace -> the `Sidecar` egress entries it needs: the egress gateway's namespace
    (where the routes live) for the namespaces that call an external host through it."""
    if egress_gateway is None:
        return {}
    entries: dict[str, list[str]] = {}
    for external in hosts:
        for caller in callers(external, mesh_namespaces):
            entries[caller] = [f"{naming.gateway_namespace(egress_gateway)}/*"]
    return entries


class ExternalHosts(pulumi.ComponentResource):
    """The external hosts of `istio-mesh:externalHosts`: their ServiceEntries and, with an
    egress gateway, the routes through it. Pass the egress gateway in `depends_on`: its
    routes live in its namespace."""

    def __init__(
        self,
        name: str,
        hosts: Sequence[ExternalHost],
        egress_gateway: str | None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("istio-mesh:egress:ExternalHosts", name, None, opts)
        for suffix, manifest in external_manifests(hosts, egress_gateway).items():
            register_manifest(f"{name}-{suffix}", manifest, child_options(self, opts))
        self.register_outputs({"hosts": [external.host for external in hosts]})
