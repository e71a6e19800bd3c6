"""The Kubernetes Gateway API's own binding rules, judged at preview.

What `virtual-service-gateway-bound` and `gateway-no-conflict` check for Istio's API,
for `gateway.networking.k8s.io` objects. Istio reports these as status conditions once
the objects are applied (a route's `Accepted: False`, a listener's `Conflicted`); the
pack reports them before anything reaches a cluster.

- `gateway-api-route-parents`: each parent Gateway of an HTTPRoute or GRPCRoute exists
  and accepts the route (a listener the `sectionName`/`port` name, of an HTTP protocol,
  whose `allowedRoutes` admit the route's namespace and kind, whose hostname intersects
  the route's), and each of the route's hostnames is served by one of its Gateways.
- `gateway-api-listeners-no-conflict`: the listeners sharing a port of one Gateway can
  be told apart: one protocol family per port (HTTP, or HTTPS and TLS, which SNI
  separates, or one TCP / UDP listener), no hostname twice on a port.

Both index the stack once (Gateways by name, Namespaces by name), so they are linear in
its size like the other stack rules.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .hosts import hosts_overlap
from .pack import ConfigSchema, stack_policy, string_list_option
from .selectors import LabelSelector, label_selector, labels_of_namespace
from .values import (
    Findings,
    Resource,
    kind_is,
    mapping,
    name_of,
    namespace_of,
    port_number,
    sequence,
    text,
)

GATEWAY_API = "gateway.networking.k8s.io"
ROUTE_KINDS = ("HTTPRoute", "GRPCRoute")
"""Routes attached to HTTP and HTTPS listeners."""
ROUTE_PROTOCOLS = frozenset({"HTTP", "HTTPS"})
WAYPOINT_CLASS = "istio-waypoint"
"""The GatewayClass of Istio's waypoints (ambient mode's L7 proxies)."""

PARENTS_CONFIG: ConfigSchema = {
    "externalParents": string_list_option(
        "Gateway API Gateways (`namespace/name`) installed outside this stack, which a "
        "route may name as its parent; they are not judged."
    )
}


@dataclass(frozen=True)
class Listener:
    """What deciding whether a route attaches needs of one listener."""

    where: str  # spec.listeners[i]
    name: str
    port: int | None
    protocol: str
    hostname: str | None  # None: every hostname
    allowed_from: str  # Same, All or Selector
    namespace_selector: LabelSelector
    allowed_kinds: frozenset[str]  # empty: the kinds its protocol carries


def gateway_listeners(gateway: Resource) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """(path, listener) of every listener of a Gateway API Gateway."""
    spec = mapping(gateway.props.get("spec"), "spec")
    for index, value in enumerate(sequence(spec.get("listeners"), "spec.listeners")):
        where = f"spec.listeners[{index}]"
        yield where, mapping(value, where)


def listeners_of(gateway: Resource) -> list[Listener]:
    found = []
    for where, listener in gateway_listeners(gateway):
        allowed = mapping(listener.get("allowedRoutes"), f"{where}.allowedRoutes")
        namespaces = mapping(allowed.get("namespaces"), f"{where}.allowedRoutes.namespaces")
        kinds = sequence(allowed.get("kinds"), f"{where}.allowedRoutes.kinds")
        found.append(
            Listener(
                where=where,
                name=text(listener.get("name"), f"{where}.name") or "",
                port=port_number(listener.get("port"), f"{where}.port"),
                protocol=text(listener.get("protocol"), f"{where}.protocol") or "",
                hostname=text(listener.get("hostname"), f"{where}.hostname") or None,
                allowed_from=text(namespaces.get("from"), f"{where}.allowedRoutes") or "Same",
                namespace_selector=label_selector(
                    namespaces.get("selector"), f"{where}.allowedRoutes.namespaces.selector"
                ),
                allowed_kinds=frozenset(
                    text(mapping(kind, f"{where}.allowedRoutes.kinds").get("kind")) or ""
                    for kind in kinds
                ),
            )
        )
    return found


def hostnames_intersect(listener: str | None, route: str) -> bool:
    """Gateway API hostname matching (`hosts_overlap`); a listener without a hostname
    takes every hostname."""
    return listener is None or hosts_overlap(listener, route)


@dataclass(frozen=True)
class Route:
    resource: Resource
    kind: str
    namespace: str
    hostnames: list[str]


def _admits(
    listener: Listener,
    route: Route,
    gateway_namespace: str,
    namespace_labels: Mapping[str, Mapping[str, str]],
) -> bool:
    """Whether `listener` accepts `route` (hostnames aside)."""
    if listener.protocol not in ROUTE_PROTOCOLS:
        return False
    if listener.allowed_kinds and route.kind not in listener.allowed_kinds:
        return False
    if listener.allowed_from == "Same":
        return route.namespace == gateway_namespace
    if listener.allowed_from == "Selector":
        labels = namespace_labels.get(route.namespace)
        # A namespace the input does not hold: its labels cannot be judged.
        return labels is None or listener.namespace_selector.matches(labels)
    return listener.allowed_from == "All"


def parent_refs(route: Resource) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """(path, parentRef) of every parent of a route."""
    spec = mapping(route.props.get("spec"), "spec")
    for index, ref in enumerate(sequence(spec.get("parentRefs"), "spec.parentRefs")):
        yield f"spec.parentRefs[{index}]", mapping(ref, f"spec.parentRefs[{index}]")


def parent_gateway(ref: Mapping[str, Any], where: str, route_namespace: str) -> str | None:
    """`namespace/name` of the Gateway API Gateway a parentRef names (its group and kind
    default to the Gateway's, its namespace to the route's); None for another parent (a
    Service, GAMMA's, or another implementation's)."""
    group = text(ref.get("group"), f"{where}.group")
    kind = text(ref.get("kind"), f"{where}.kind") or "Gateway"
    if (group if group is not None else GATEWAY_API) != GATEWAY_API or kind != "Gateway":
        return None
    namespace = text(ref.get("namespace"), f"{where}.namespace") or route_namespace
    return f"{namespace}/{text(ref.get('name'), f'{where}.name') or ''}"


def route_parent_violations(
    resources: Sequence[Resource], config: Mapping[str, Any]
) -> Iterator[tuple[str | None, str]]:
    """Each route's parent Gateways exist and accept it, and serve each of its hostnames."""
    findings = Findings()
    gateways: dict[str, Resource] = {}
    namespace_labels: dict[str, Mapping[str, str]] = {}
    routes: list[Resource] = []
    for resource in resources:
        with findings.reading(resource):
            if kind_is(resource, GATEWAY_API, "Gateway"):
                gateways[f"{namespace_of(resource.props)}/{name_of(resource.props)}"] = resource
            elif kind_is(resource, GATEWAY_API, *ROUTE_KINDS):
                routes.append(resource)
            elif kind_is(resource, "", "Namespace"):
                namespace_labels[name_of(resource.props)] = labels_of_namespace(resource)
    elsewhere = set(config["externalParents"])
    listeners: dict[str, list[Listener]] = {}  # each Gateway's, read once
    for resource in routes:
        with findings.reading(resource):
            spec = mapping(resource.props.get("spec"), "spec")
            route = Route(
                resource=resource,
                kind=resource.type.rpartition(":")[2],
                namespace=namespace_of(resource.props),
                hostnames=[
                    text(value, "spec.hostnames") or ""
                    for value in sequence(spec.get("hostnames"), "spec.hostnames")
                ],
            )
            served: set[str] = set()
            has_gateway_parent = False
            judged = True  # every Gateway parent is in the stack and accepts the route
            for where, ref in parent_refs(resource):
                key = parent_gateway(ref, where, route.namespace)
                if key is None:
                    continue  # a Service (GAMMA) or another implementation's parent
                has_gateway_parent = True
                namespace = key.partition("/")[0]
                gateway = gateways.get(key)
                if gateway is None:
                    judged = False
                    if key not in elsewhere:
                        findings.add(
                            resource.urn,
                            f"{where} names Gateway {key}, which is not in this stack: the "
                            "route is never accepted; fix the name, or list a Gateway "
                            "installed elsewhere in the rule's externalParents config",
                        )
                    continue
                section = text(ref.get("sectionName"), f"{where}.sectionName")
                port = port_number(ref.get("port"), f"{where}.port")
                if key not in listeners:
                    listeners[key] = listeners_of(gateway)
                candidates = [
                    listener
                    for listener in listeners[key]
                    if (section is None or listener.name == section)
                    and (port is None or listener.port == port)
                    and _admits(listener, route, namespace, namespace_labels)
                ]
                attached = [
                    listener
                    for listener in candidates
                    if not route.hostnames
                    or any(hostnames_intersect(listener.hostname, h) for h in route.hostnames)
                ]
                if not attached:
                    judged = False  # one finding for this parent is enough
                    findings.add(
                        resource.urn,
                        f"{where}: no listener of Gateway {key} accepts this {route.kind} "
                        f"({_why_not(candidates)}): the route is never "
                        "served there",
                    )
                    continue
                served |= {
                    h
                    for h in route.hostnames
                    if any(hostnames_intersect(listener.hostname, h) for listener in attached)
                }
            if judged and has_gateway_parent:
                for hostname in route.hostnames:
                    if hostname not in served:
                        findings.add(
                            resource.urn,
                            f"hostname {hostname} is served by no listener of the route's "
                            "Gateways: requests for it never reach the route; add a listener "
                            "for it, or drop it from spec.hostnames",
                        )
    yield from findings.items


def _why_not(candidates: list[Listener]) -> str:
    if candidates:
        return "no listener hostname intersects the route's hostnames"
    return (
        "none that its sectionName and port name is an HTTP or HTTPS listener whose "
        "allowedRoutes admit the route's namespace and kind"
    )


def _protocol_family(protocol: str) -> str:
    """Listeners of one family can share a port: HTTPS and TLS are told apart by SNI."""
    return {"HTTPS": "TLS"}.get(protocol, protocol)


def listener_conflict_violations(
    resources: Sequence[Resource], _config: Mapping[str, Any]
) -> Iterator[tuple[str | None, str]]:
    """The listeners sharing a port of one Gateway can be told apart."""
    findings = Findings()
    for gateway in resources:
        if not kind_is(gateway, GATEWAY_API, "Gateway"):
            continue
        with findings.reading(gateway):
            family: dict[int | None, Listener] = {}
            hostnames: dict[tuple[int | None, str | None], Listener] = {}
            for listener in listeners_of(gateway):
                first = family.setdefault(listener.port, listener)
                if _protocol_family(first.protocol) != _protocol_family(listener.protocol):
                    findings.add(
                        gateway.urn,
                        f"{listener.where} ({listener.protocol}) shares port {listener.port} "
                        f"with {first.where} ({first.protocol}): a port carries one protocol, "
                        "so one of them is Conflicted and not served; move one to its own port",
                    )
                    continue
                owner = hostnames.setdefault((listener.port, listener.hostname), listener)
                if owner is not listener:
                    shown = listener.hostname or "every hostname"
                    findings.add(
                        gateway.urn,
                        f"{listener.where} serves {shown} on port {listener.port}, as "
                        f"{owner.where} does: the gateway cannot tell their traffic apart, so "
                        "one of them is Conflicted; give each its own hostname or port",
                    )
    yield from findings.items


POLICIES = [
    stack_policy(
        "gateway-api-route-parents",
        "Each parent Gateway of an HTTPRoute or GRPCRoute exists (or is listed in "
        "externalParents) and accepts the route: a listener matching sectionName and port, "
        "of protocol HTTP or HTTPS, whose allowedRoutes admit the route's namespace and kind "
        "and whose hostname intersects the route's; and each of the route's hostnames is "
        "served by one of its Gateways. Otherwise the route is silently never served.",
        route_parent_violations,
        config=PARENTS_CONFIG,
    ),
    stack_policy(
        "gateway-api-listeners-no-conflict",
        "The listeners sharing a port of one Gateway API Gateway can be told apart: one "
        "protocol family per port (HTTP; HTTPS and TLS; TCP; UDP) and no hostname twice on a "
        "port. Otherwise Istio marks one Conflicted and does not serve it.",
        listener_conflict_violations,
    ),
]
