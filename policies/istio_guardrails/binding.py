"""What `istioctl analyze` checks across Gateways and VirtualServices, at preview.

- `virtual-service-matches-reachable` (IST0130 / IST0131): every HTTP, TLS and TCP route
  can match: none follows a catch-all route, no earlier match covers one of its matches.
- `virtual-service-gateway-bound` (IST0101 / IST0132): every Gateway a VirtualService
  binds to exists, and serves each of the VirtualService's hosts. Otherwise the routes
  are silently never applied at that gateway.
- `gateway-no-conflict` (IST0145): no two Gateways select the same workload on the same
  port for the same host: one of them silently loses.
- `gateway-certificate-unique` (IST0138, advisory): no two Gateways on one gateway
  workload share a TLS certificate: with HTTP/2 connection reuse a client sends requests
  for one Gateway's host on the other's connection and gets 404s.

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
    """No two Gateways select the same workload on the same port for the same host.

    Every Gateway of a conflict is reported (as istioctl does): which one loses depends
    on creation order, so the fix may belong in either.
    """
    findings = Findings()
    claims: dict[tuple[frozenset[tuple[str, str]], int, str], dict[str, Resource]] = {}
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
                    claims.setdefault((selector, number, host), {})[name] = resource
    for (_, number, host), gateways in claims.items():
        for name, resource in gateways.items():
            others = ", ".join(sorted(set(gateways) - {name}))
            if others:
                findings.add(
                    resource.urn,
                    f"Gateway {name} serves {host} on port {number} of the same gateway "
                    f"workload as Gateway {others} (IST0145): one of them is ignored; merge "
                    "the servers into one Gateway",
                )
    yield from findings.items


def certificate_violations(
    resources: Sequence[Resource], _config: Mapping[str, Any]
) -> Iterator[tuple[str | None, str]]:
    """No two Gateways on one gateway workload use the same TLS certificate.

    As istioctl judges it: Gateways share a workload when one's selector is contained in
    the other's; each Gateway whose selector is contained in another's that names the
    same `credentialName` is reported.
    """
    findings = Findings()
    by_credential: dict[str, dict[str, tuple[Resource, frozenset[tuple[str, str]]]]] = {}
    for resource in resources:
        if not kind_is(resource, NETWORKING, "Gateway"):
            continue
        with findings.reading(resource):
            name = f"{namespace_of(resource.props)}/{name_of(resource.props)}"
            selector = _selector_key(resource)
            spec = mapping(resource.props.get("spec"), "spec")
            for s, server in enumerate(sequence(spec.get("servers"), "spec.servers")):
                where = f"spec.servers[{s}]"
                tls = mapping(mapping(server, where).get("tls"), f"{where}.tls")
                credential = text(tls.get("credentialName"), f"{where}.tls.credentialName")
                if credential:
                    by_credential.setdefault(credential, {})[name] = (resource, selector)
    for credential, gateways in by_credential.items():
        for name, (resource, selector) in gateways.items():
            sharing = sorted(
                other
                for other, (_, other_selector) in gateways.items()
                if other != name and selector <= other_selector
            )
            if sharing:
                findings.add(
                    resource.urn,
                    f"Gateway {name} uses certificate {credential} on the same gateway workload "
                    f"as Gateway {', '.join(sharing)} (IST0138): HTTP/2 clients reuse one "
                    "connection for both and get 404s; give each Gateway its own certificate, "
                    "or merge them into one Gateway",
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
    return not _conditions(match) or _canonical(_conditions(match)) == _canonical(
        {"uri": {"prefix": "/"}}
    )


def _conditions(match: Mapping[str, Any]) -> dict[str, Any]:
    """A match's conditions: everything but its `name`, which matches nothing."""
    return {key: match[key] for key in match if key != "name"}


STRING_MATCHES = ("uri", "scheme", "method", "authority")
"""Match fields holding one StringMatch (`exact`, `prefix` or `regex`)."""
STRING_MAPS = ("headers", "queryParams")
"""Match fields holding a StringMatch per name."""


def _string_implies(later: Any, earlier: Any) -> bool:
    """Whether every value `later` (a StringMatch) accepts, `earlier` accepts too."""
    later, earlier = _canonical(later), _canonical(earlier)
    if later == earlier:
        return True
    prefix = (
        dict(earlier).get("prefix") if isinstance(earlier, tuple) and len(earlier) == 1 else None
    )
    if not isinstance(prefix, str) or not isinstance(later, tuple) or len(later) != 1:
        return False
    ((kind, value),) = later
    return kind in ("prefix", "exact") and isinstance(value, str) and value.startswith(prefix)


def _covers(earlier: Mapping[str, Any], later: Mapping[str, Any]) -> bool:
    """Whether every request `later` matches, `earlier` matches first.

    Each condition of `earlier` must follow from one of `later`: the same condition, or
    a prefix of what `later` requires (`uri: {prefix: /api}` covers `/api/v2` and the
    exact path `/api/cart`). Conditions `later` adds only narrow it further.
    """
    for key, condition in _conditions(earlier).items():
        if key not in later:
            return False
        if key in STRING_MATCHES:
            if not _string_implies(later[key], condition):
                return False
        elif key in STRING_MAPS and isinstance(condition, Mapping):
            wanted = later[key] if isinstance(later[key], Mapping) else {}
            if not all(n in wanted and _string_implies(wanted[n], condition[n]) for n in condition):
                return False
        elif _canonical(later[key]) != _canonical(condition):
            return False
    return True


def _route_matches(
    spec: Mapping[str, Any], section: str
) -> Iterator[tuple[str, list[tuple[str, Mapping[str, Any]]]]]:
    """(route path, [(match path, match)]) of each route of `spec.<section>`."""
    for index, route in enumerate(sequence(spec.get(section), f"spec.{section}")):
        where = f"spec.{section}[{index}]"
        matches = sequence(mapping(route, where).get("match"), f"{where}.match")
        yield (
            where,
            [
                (f"{where}.match[{m}]", mapping(match, f"{where}.match[{m}]"))
                for m, match in enumerate(matches)
            ],
        )


def match_violations(resource: Resource, _config: Mapping[str, Any]) -> Iterator[str]:
    """No route after a catch-all (IST0130), no match an earlier one covers (IST0131).

    HTTP, TLS and TCP routes alike: Envoy takes the first route whose match a request
    meets, so a match an earlier one already covers never applies.
    """
    spec = mapping(resource.props.get("spec"), "spec")
    for section in ("http", "tls", "tcp"):
        earlier: list[tuple[str, Mapping[str, Any]]] = []
        catch_all: str | None = None
        for where, matches in _route_matches(spec, section):
            if catch_all is not None:
                yield (
                    f"{where} can never match: {catch_all} before it takes every request "
                    "(IST0130); move the catch-all route last"
                )
                continue
            if not matches or any(_catch_all(match) for _, match in matches):
                catch_all = where
            for path, match in matches:
                cover = next((e for e in earlier if _covers(e[1], match)), None)
                if cover is None:
                    earlier.append((path, match))
                elif _canonical(_conditions(cover[1])) == _canonical(_conditions(match)):
                    yield (
                        f"{path} repeats the match {cover[0]}, which already takes those "
                        "requests (IST0131); remove or change it"
                    )
                else:
                    yield (
                        f"{path} is covered by the earlier match {cover[0]}, which takes every "
                        "request it matches (IST0131); put the narrower match first"
                    )


POLICIES = [
    resource_policy(
        "virtual-service-matches-reachable",
        "Every HTTP, TLS and TCP route of a VirtualService can match: none after a catch-all "
        "route (no match, or only uri prefix /), and no match that an earlier one covers, the "
        "same match or a narrower one (uri prefix /api/v2 after /api, with the same other "
        "conditions) (istioctl IST0130, IST0131): such routes silently never apply.",
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
        "No two Gateways on one gateway workload (one's selector contained in the other's) "
        "use the same TLS certificate (credentialName) (istioctl IST0138): HTTP/2 connection "
        "reuse sends requests to the wrong server. Advisory: a deliberate wildcard "
        "certificate may be shared.",
        certificate_violations,
        enforcement=ADVISORY,
    ),
]
