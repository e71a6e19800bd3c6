"""Gateways: selectors that select an installed gateway, no `*` hosts (Istio and Gateway
API objects), HTTPS only."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from . import helm
from .gateway_api import GATEWAY_API, ROUTE_KINDS, gateway_listeners
from .injection import WORKLOAD_KINDS, pod_metadata
from .pack import ConfigSchema, resource_policy, stack_policy
from .values import (
    NETWORKING,
    Findings,
    Resource,
    boolean,
    k8s_type,
    kind_is,
    labels_of,
    mapping,
    name_of,
    sequence,
    string_map,
    text,
)


def _hosts(resource: Resource) -> Iterator[tuple[str, str]]:
    """(path, host) of every host a VirtualService, Gateway (Istio's: servers' hosts; the
    Gateway API's: listeners' hostnames) or Gateway API route serves."""
    spec = mapping(resource.props.get("spec"), "spec")
    listed = {"VirtualService": "hosts", "HTTPRoute": "hostnames", "GRPCRoute": "hostnames"}
    field = listed.get(resource.type.rpartition(":")[2])
    if field:
        for index, host in enumerate(sequence(spec.get(field), f"spec.{field}")):
            yield f"spec.{field}[{index}]", text(host, f"spec.{field}[{index}]") or ""
    elif kind_is(resource, GATEWAY_API, "Gateway"):
        for where, listener in gateway_listeners(resource):
            hostname = text(listener.get("hostname"), f"{where}.hostname")
            if hostname:  # none: every hostname its routes name, which are judged
                yield f"{where}.hostname", hostname
    else:
        for where, server in gateway_servers(resource):
            yield from server_hosts(where, server)


def gateway_servers(gateway: Resource) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """(path, server) of every server of an Istio Gateway."""
    spec = mapping(gateway.props.get("spec"), "spec")
    for index, server in enumerate(sequence(spec.get("servers"), "spec.servers")):
        where = f"spec.servers[{index}]"
        yield where, mapping(server, where)


def server_hosts(where: str, server: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """(path, host as written: `host` or `namespace/host`) of every host of a server."""
    for index, host in enumerate(sequence(server.get("hosts"), f"{where}.hosts")):
        yield f"{where}.hosts[{index}]", text(host, f"{where}.hosts[{index}]") or ""


WILDCARD_CONFIG: ConfigSchema = {
    "forbidAllWildcards": {
        "type": "boolean",
        "default": False,
        "description": "Refuse every wildcard host, `*.example.com` too.",
    }
}


def too_wide(host: str) -> bool:
    """`*`, `*.com`, `*.*`: a wildcard wider than one domain (`*.example.com` is not)."""
    if host == "*":
        return True
    if not host.startswith("*."):
        return False
    rest = host[2:]
    return "*" in rest or "." not in rest


EAST_WEST_MODE = "AUTO_PASSTHROUGH"
EAST_WEST_HOSTS = frozenset({"*.local"})
"""What a multi-network mesh's east-west gateway serves: the mesh's own services
(`<svc>.<ns>.svc.cluster.local`), passed through to the pod its SNI names."""
EAST_WEST_SELECTOR = {"istio": "eastwestgateway"}
"""The pod labels of the east-west gateway release (`istio-eastwestgateway`)."""


def _east_west_hosts(resource: Resource) -> set[str]:
    """Paths of the hosts of an Istio Gateway's AUTO_PASSTHROUGH servers, which
    `east-west-gateway-passthrough` judges instead of `no-wildcard-hosts`."""
    if not kind_is(resource, NETWORKING, "Gateway"):
        return set()
    paths = set()
    for where, server in gateway_servers(resource):
        tls = mapping(server.get("tls"), f"{where}.tls")
        if text(tls.get("mode"), f"{where}.tls.mode") == EAST_WEST_MODE:
            paths |= {path for path, _ in server_hosts(where, server)}
    return paths


def east_west_violations(resource: Resource, _config: Mapping[str, Any]) -> Iterator[str]:
    """An east-west gateway (an Istio Gateway selecting `istio: eastwestgateway`, or
    with an AUTO_PASSTHROUGH server) serves only the mesh's `*.local` hosts, each server
    AUTO_PASSTHROUGH: another network's traffic reaches nothing else through it."""
    spec = mapping(resource.props.get("spec"), "spec")
    selector = string_map(mapping(spec.get("selector"), "spec.selector"), "spec.selector")
    servers = list(gateway_servers(resource))
    modes = [
        text(mapping(server.get("tls"), f"{where}.tls").get("mode"), f"{where}.tls.mode")
        for where, server in servers
    ]
    if selector != EAST_WEST_SELECTOR and EAST_WEST_MODE not in modes:
        return
    for (where, server), mode in zip(servers, modes, strict=True):
        if mode != EAST_WEST_MODE:
            yield (
                f"{where} of an east-west gateway has tls.mode {mode}; use AUTO_PASSTHROUGH "
                "(mTLS passes through to the pod)"
            )
        for path, host in server_hosts(where, server):
            if host.rpartition("/")[2] not in EAST_WEST_HOSTS:
                yield (
                    f"{path} of an east-west gateway is {host}: it exposes only the mesh's "
                    "services, *.local"
                )


def wildcard_host_violations(resource: Resource, config: Mapping[str, Any]) -> Iterator[str]:
    """No host wider than one domain (all wildcards with `forbidAllWildcards`); a
    Gateway's `namespace/host` form is judged by its host part. An east-west gateway's
    `*.local` is `east-west-gateway-passthrough`'s to judge."""
    east_west = _east_west_hosts(resource)
    for where, host in _hosts(resource):
        if where in east_west and host.rpartition("/")[2] in EAST_WEST_HOSTS:
            continue
        name = host.rpartition("/")[2].strip()
        if too_wide(name):
            yield (
                f"{where} is {host}: it captures hosts of more than one domain; list the host "
                "names this object serves"
            )
        elif config.get("forbidAllWildcards") and "*" in name:
            yield f"{where} is {host}: wildcard hosts are forbidden here; list the host names"


_TERMINATING_MODES = (None, "SIMPLE", "MUTUAL", "OPTIONAL_MUTUAL")


def server_tls_violations(resource: Resource, _config: Mapping[str, Any]) -> Iterator[str]:
    """HTTPS servers terminate TLS with a credential; plain HTTP servers only redirect."""
    for where, server in gateway_servers(resource):
        port = mapping(server.get("port"), f"{where}.port")
        protocol = (text(port.get("protocol"), f"{where}.port.protocol") or "").upper()
        tls = mapping(server.get("tls"), f"{where}.tls")
        if protocol == "HTTPS":
            mode = text(tls.get("mode"), f"{where}.tls.mode")
            credential = text(tls.get("credentialName"), f"{where}.tls.credentialName")
            credentials = sequence(tls.get("credentialNames"), f"{where}.tls.credentialNames")
            if mode not in _TERMINATING_MODES:
                yield f"{where} is HTTPS with tls.mode {mode}; use SIMPLE or MUTUAL"
            elif not credential and not credentials:
                yield (
                    f"{where} is HTTPS without tls.credentialName; name the Kubernetes "
                    "secret holding the certificate"
                )
        elif protocol == "HTTP":
            redirect = boolean(tls.get("httpsRedirect"), f"{where}.tls.httpsRedirect")
            if redirect is not True:
                yield (
                    f"{where} serves plain HTTP; set tls.httpsRedirect: true so it only "
                    "redirects to HTTPS"
                )


GATEWAY_CONFIG: ConfigSchema = {
    "externalGateways": {
        "type": "array",
        "items": {"type": "object", "additionalProperties": {"type": "string"}},
        "default": [],
        "description": "Pod labels of gateways installed outside this stack.",
    }
}


def gateway_pod_labels(resource: Resource) -> dict[str, str]:
    """Pod labels the `gateway` chart gives its pods, from the release's inputs.

    The chart names pods after `values.name` or else the release: `app: <name>`,
    `istio: <name without "istio-">`, plus every `values.labels` entry (which may
    override those two).
    """
    values = mapping(resource.props.get("values"), "values")
    name = (
        text(values.get("name"), "values.name")
        or text(resource.props.get("name"), "name")
        or name_of(resource.props)
    )
    labels = {"app": name, "istio": name.removeprefix("istio-")} if name else {}
    labels.update(string_map(mapping(values.get("labels"), "values.labels"), "values.labels"))
    return labels


def installed_pod_labels(resources: Sequence[Resource], findings: Findings) -> list[dict[str, str]]:
    """Pod labels of every gateway release (`gateway_pod_labels`) and every workload the
    input holds: the pods a Gateway's selector may pick."""
    pods = []
    for resource in resources:
        with findings.reading(resource):
            parsed = k8s_type(resource.type)
            if helm.istio_chart(resource) == "gateway":
                pods.append(gateway_pod_labels(resource))
            elif parsed and (parsed.group, parsed.kind) in WORKLOAD_KINDS:
                where, meta = pod_metadata(resource)
                pods.append(string_map(labels_of(meta), f"{where}.labels"))
    return pods


def selector_violations(
    resources: Sequence[Resource], config: Mapping[str, Any]
) -> Iterator[tuple[str | None, str]]:
    """Every Gateway selector is a subset of the pod labels of an installed gateway.

    Installed gateways are the stack's `gateway` chart releases, any workload whose pod
    template carries the labels (rendered Helm output), and `externalGateways`. Label
    sets are indexed by (key, value), so each selector is looked up, not compared with
    every workload.
    """
    findings = Findings()
    pods = [dict(labels) for labels in config["externalGateways"]]
    pods += installed_pod_labels(resources, findings)
    gateways: list[tuple[Resource, dict[str, str]]] = []
    for resource in resources:
        if kind_is(resource, NETWORKING, "Gateway"):
            with findings.reading(resource):
                spec = mapping(resource.props.get("spec"), "spec")
                selector = mapping(spec.get("selector"), "spec.selector")
                gateways.append((resource, string_map(selector, "spec.selector")))
    by_label: dict[tuple[str, str], list[int]] = defaultdict(list)
    for index, labels in enumerate(pods):
        for pair in labels.items():
            by_label[pair].append(index)
    for resource, selector in gateways:
        if not selector:
            findings.add(resource.urn, "spec.selector is empty; select the gateway's pods")
            continue
        # Only pods carrying the selector's rarest label can match: check those alone.
        candidates = min((by_label.get(pair, []) for pair in selector.items()), key=len)
        if not any(selector.items() <= pods[i].items() for i in candidates):
            wanted = ", ".join(f"{k}={v}" for k, v in selector.items())
            findings.add(
                resource.urn,
                f"spec.selector {wanted} matches no gateway this stack installs; use the "
                "labels of a gateway release (istio: <release without istio->) or list "
                "gateways installed elsewhere in the rule's externalGateways config",
            )
    yield from findings.items


POLICIES = [
    resource_policy(
        "no-wildcard-hosts",
        "VirtualServices, Gateways (Istio's and the Gateway API's) and HTTPRoutes and "
        'GRPCRoutes must not serve a wildcard host wider than one domain ("*", "*.com", '
        '"*.*"; a Gateway host "namespace/*" counts by its host part), nor any wildcard with '
        "forbidAllWildcards: list the host names explicitly.",
        wildcard_host_violations,
        kinds={(NETWORKING, "VirtualService"), (NETWORKING, "Gateway"), (GATEWAY_API, "Gateway")}
        | {(GATEWAY_API, kind) for kind in ROUTE_KINDS},
        config=WILDCARD_CONFIG,
    ),
    resource_policy(
        "east-west-gateway-passthrough",
        "An east-west gateway (an Istio Gateway selecting istio: eastwestgateway, or with an "
        "AUTO_PASSTHROUGH server) exposes only *.local hosts, every server with tls.mode "
        "AUTO_PASSTHROUGH: another network reaches the mesh's services through it, nothing "
        "else.",
        east_west_violations,
        kinds={(NETWORKING, "Gateway")},
    ),
    resource_policy(
        "gateway-server-tls",
        "Gateway HTTPS servers must terminate TLS with a certificate (tls.mode SIMPLE or "
        "MUTUAL and tls.credentialName), and plain HTTP servers may only redirect to HTTPS "
        "(tls.httpsRedirect: true).",
        server_tls_violations,
        kinds={(NETWORKING, "Gateway")},
    ),
    stack_policy(
        "gateway-selector-matches",
        "A Gateway's spec.selector must match the pods of a gateway the stack installs (the "
        "gateway chart labels pods app: <release> and istio: <release without istio->), or "
        "one listed in this rule's externalGateways config.",
        selector_violations,
        config=GATEWAY_CONFIG,
    ),
]
