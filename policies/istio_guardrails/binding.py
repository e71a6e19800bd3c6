"""What `istioctl analyze` checks across Gateways and VirtualServices, at preview.

- `virtual-service-matches-reachable` (IST0130 / IST0131): every HTTP route can match:
  none follows a catch-all route, no match repeats an earlier one.
- `virtual-service-gateway-bound` (IST0101 / IST0132): every Gateway a VirtualService
  binds to exists, and serves each of the VirtualService's hosts. Otherwise the routes
  are silently never applied at that gateway.
- `gateway-no-conflict` (IST0145): no two Gateways select the same workload on the same
  port for the same host: one of them silently loses.
- `gateway-certificate-unique` (IST0138, advisory): one TLS certificate is not shared by
  Gateways serving different hosts: with HTTP/2 connection reuse a client sends requests
  for one host on the other's connection and gets 404s.

Each indexes the stack once (by gateway name, by (workload, port), by certificate), so
it is linear in the stack's size like the other stack rules.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from .pack import ADVISORY, ConfigSchema, resource_policy, stack_policy
from .values import (
    NETWORKING,
    Findings,
    Resource,
    kind_is,
    mapping,
    name_of,
    namespace_of,
    sequence,
    string_map,
    text,
)
from .values import (
    number as number_of,
)

BINDING_CONFIG: ConfigSchema = {
    "externalGateways": {
        "type": "array",
        "items": {"type": "string"},
        "default": [],
        "description": "Gateways (`namespace/name`) installed outside this stack, which a "
        "VirtualService may bind to; their hosts are not judged.",
    }
}


def _host_matches(served: str, host: str) -> bool:
    """A Gateway server host (`*`, `*.example.com`, `shop.example.com`) covers `host`."""
    if served == "*" or served == host:
        return True
    return served.startswith("*.") and host.endswith(served[1:])


def _server_hosts(gateway: Resource) -> list[tuple[str, str]]:
    """(namespace part, host) of every server host: `ns/host` or `host` (any namespace)."""
    spec = mapping(gateway.props.get("spec"), "spec")
    hosts = []
    for s, server in enumerate(sequence(spec.get("servers"), "spec.servers")):
        where = f"spec.servers[{s}]"
        for h, value in enumerate(sequence(mapping(server, where).get("hosts"), f"{where}.hosts")):
            written = text(value, f"{where}.hosts[{h}]") or ""
            namespace, slash, host = written.rpartition("/")
            hosts.append((namespace if slash else "*", host))
    return hosts


def _serves(gateway: Resource, host: str, route_namespace: str) -> bool:
    gateway_namespace = namespace_of(gateway.props)
    for namespace, served in _server_hosts(gateway):
        visible = namespace in ("*", route_namespace) or (
            namespace == "." and route_namespace == gateway_namespace
        )
        if visible and _host_matches(served, host):
            return True
    return False


def binding_violations(
    resources: Sequence[Resource], config: Mapping[str, Any]
) -> Iterator[tuple[str | None, str]]:
    """Each VirtualService's gateways exist and serve its hosts."""
    findings = Findings()
    gateways: dict[str, Resource] = {}
    routes: list[Resource] = []
    for resource in resources:
        with findings.reading(resource):
            if kind_is(resource, NETWORKING, "Gateway"):
                gateways[f"{namespace_of(resource.props)}/{name_of(resource.props)}"] = resource
            elif kind_is(resource, NETWORKING, "VirtualService"):
                routes.append(resource)
    elsewhere = set(config["externalGateways"])
    for route in routes:
        with findings.reading(route):
            spec = mapping(route.props.get("spec"), "spec")
            namespace = namespace_of(route.props)
            hosts = [text(h, "spec.hosts") or "" for h in sequence(spec.get("hosts"), "spec.hosts")]
            for index, ref in enumerate(sequence(spec.get("gateways"), "spec.gateways")):
                written = text(ref, f"spec.gateways[{index}]") or ""
                if written == "mesh":
                    continue
                key = written if "/" in written else f"{namespace}/{written}"
                if key in elsewhere:
                    continue
                gateway = gateways.get(key)
                if gateway is None:
                    findings.add(
                        route.urn,
                        f"spec.gateways[{index}] is {written}, which no Gateway of this stack is "
                        "(IST0101): its routes never apply; fix the name or list the gateway in "
                        "the rule's externalGateways config",
                    )
                    continue
                for host in hosts:
                    if not _serves(gateway, host, namespace):
                        findings.add(
                            route.urn,
                            f"host {host} is not served by gateway {key} (IST0132): add it to "
                            "a server's hosts, or drop the gateway from spec.gateways",
                        )
    yield from findings.items


def _selector_key(gateway: Resource) -> frozenset[tuple[str, str]]:
    spec = mapping(gateway.props.get("spec"), "spec")
    return frozenset(
        string_map(mapping(spec.get("selector"), "spec.selector"), "spec.selector").items()
    )


def conflict_violations(
    resources: Sequence[Resource], _config: Mapping[str, Any]
) -> Iterator[tuple[str | None, str]]:
    """No two Gateways select the same workload on the same port for the same host."""
    findings = Findings()
    first: dict[tuple[frozenset[tuple[str, str]], int, str], str] = {}
    for resource in resources:
        if not kind_is(resource, NETWORKING, "Gateway"):
            continue
        with findings.reading(resource):
            selector = _selector_key(resource)
            name = f"{namespace_of(resource.props)}/{name_of(resource.props)}"
            spec = mapping(resource.props.get("spec"), "spec")
            for s, server in enumerate(sequence(spec.get("servers"), "spec.servers")):
                where = f"spec.servers[{s}]"
                port = mapping(mapping(server, where).get("port"), f"{where}.port")
                number = int(number_of(port.get("number"), f"{where}.port.number") or 0)
                hosts = sequence(mapping(server, where).get("hosts"), f"{where}.hosts")
                for h, value in enumerate(hosts):
                    host = (text(value, f"{where}.hosts[{h}]") or "").rpartition("/")[2]
                    owner = first.setdefault((selector, number, host), name)
                    if owner != name:
                        findings.add(
                            resource.urn,
                            f"{where} serves {host} on port {number} of the same gateway "
                            f"workload as Gateway {owner} (IST0145): one of them is ignored; "
                            "merge the servers into one Gateway",
                        )
    yield from findings.items


def certificate_violations(
    resources: Sequence[Resource], _config: Mapping[str, Any]
) -> Iterator[tuple[str | None, str]]:
    """A TLS certificate (`credentialName`) is used for one set of hosts only."""
    findings = Findings()
    seen: dict[str, tuple[str, frozenset[str]]] = {}
    for resource in resources:
        if not kind_is(resource, NETWORKING, "Gateway"):
            continue
        with findings.reading(resource):
            name = f"{namespace_of(resource.props)}/{name_of(resource.props)}"
            spec = mapping(resource.props.get("spec"), "spec")
            for s, server in enumerate(sequence(spec.get("servers"), "spec.servers")):
                where = f"spec.servers[{s}]"
                tls = mapping(mapping(server, where).get("tls"), f"{where}.tls")
                credential = text(tls.get("credentialName"), f"{where}.tls.credentialName")
                if not credential:
                    continue
                hosts = frozenset(
                    (text(h, f"{where}.hosts") or "").rpartition("/")[2]
                    for h in sequence(mapping(server, where).get("hosts"), f"{where}.hosts")
                )
                owner, owner_hosts = seen.setdefault(credential, (name, hosts))
                if owner_hosts != hosts:
                    findings.add(
                        resource.urn,
                        f"{where} reuses certificate {credential} of Gateway {owner} for other "
                        "hosts (IST0138): HTTP/2 clients reuse the connection and get 404s; "
                        "give each host set its own certificate",
                    )
    yield from findings.items


def _canonical(value: Any) -> Any:
    """Plain, ordered data of a (read-only view of a) value, to compare two matches."""
    if isinstance(value, Mapping):
        return tuple(sorted((str(k), _canonical(v)) for k, v in value.items()))
    if isinstance(value, Sequence) and not isinstance(value, str):
        return tuple(_canonical(item) for item in value)
    return value


def _catch_all(match: Mapping[str, Any]) -> bool:
    """A match that every request meets: nothing, or only `uri: {prefix: /}`."""
    return not match or _canonical(match) == _canonical({"uri": {"prefix": "/"}})


def match_violations(resource: Resource, _config: Mapping[str, Any]) -> Iterator[str]:
    """No HTTP route after a catch-all (IST0130), no match repeated (IST0131)."""
    spec = mapping(resource.props.get("spec"), "spec")
    seen: dict[str, int] = {}
    catch_all: int | None = None
    for index, route in enumerate(sequence(spec.get("http"), "spec.http")):
        where = f"spec.http[{index}]"
        if catch_all is not None:
            yield (
                f"{where} can never match: spec.http[{catch_all}] before it takes every "
                "request (IST0130); move the catch-all route last"
            )
            continue
        matches = sequence(mapping(route, where).get("match"), f"{where}.match")
        if not matches or any(_catch_all(mapping(m, f"{where}.match")) for m in matches):
            catch_all = index
        for m, match in enumerate(matches):
            key = repr(_canonical(mapping(match, f"{where}.match[{m}]")))
            if key in seen:
                yield (
                    f"{where}.match[{m}] repeats a match of spec.http[{seen[key]}], which "
                    "already takes those requests (IST0131); remove or change it"
                )
            seen.setdefault(key, index)


POLICIES = [
    resource_policy(
        "virtual-service-matches-reachable",
        "Every HTTP route of a VirtualService can match: none after a catch-all route (no "
        "match, or only uri prefix /), and no match repeated from an earlier route (istioctl "
        "IST0130, IST0131): such routes silently never apply.",
        match_violations,
        kinds={(NETWORKING, "VirtualService")},
    ),
    stack_policy(
        "virtual-service-gateway-bound",
        "A VirtualService's spec.gateways name Gateways of the stack (or its "
        "externalGateways), and each serves every host of the VirtualService (istioctl "
        "IST0101, IST0132): otherwise the routes never apply there.",
        binding_violations,
        config=BINDING_CONFIG,
    ),
    stack_policy(
        "gateway-no-conflict",
        "No two Gateways select the same gateway workload on the same port for the same host "
        "(istioctl IST0145): one of them is silently ignored.",
        conflict_violations,
    ),
    stack_policy(
        "gateway-certificate-unique",
        "A TLS certificate (credentialName) serves one set of hosts (istioctl IST0138): "
        "shared across hosts, HTTP/2 connection reuse sends requests to the wrong server. "
        "Advisory: a deliberate wildcard certificate may be shared.",
        certificate_violations,
        enforcement=ADVISORY,
    ),
]
