"""`python -m mesh graph`: the mesh as a picture, from the objects a stack declares.

    gateway --serves--> host --path--> service --weight--> subset
    waypoint --serves--> service
    caller identity ==may call==> service

Everything is read from rendered manifests, not from the stack config, so the picture
shows what Istio will be told: Istio's VirtualServices, DestinationRules and
AuthorizationPolicies (by `selector` for sidecars and ztunnel, by `targetRefs` for
waypoints), and the Kubernetes Gateway API's Gateways and HTTPRoutes (parented to a
Gateway for ingress, to a Service for ambient's waypoints), with the Namespaces and
version Services they name. `build_graph` is pure; `to_mermaid` (renders on
GitHub inside a ```mermaid block) and `to_dot` (Graphviz) only draw.

A stack with clusters (`istio-mesh:clusters`) declares the whole mesh once per cluster,
each on its own provider: `build_mesh_graph` draws each cluster as a box around its
namespaces, the east-west gateway of each cluster (its Istio `Gateway` with an
`AUTO_PASSTHROUGH` server) and, between the east-west gateways of clusters on different
networks (istio-system's `topology.istio.io/network`), the cross-network mTLS path.
A stack without clusters draws exactly as `build_graph` alone does.
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from components import naming
from components.authorization import WORKLOAD_LABEL, parse_principal, selected_workload
from components.service_config import VERSION_LABEL, parse_service_host

Manifest = Mapping[str, Any]


@dataclass(frozen=True, order=True)
class Node:
    kind: str
    """`gateway`, `host`, `waypoint`, `service`, `subset`, `caller` or `eastwest`."""
    key: str
    """Unique within its kind: `shop/reviews`, `shop/reviews/v1`, `shop.example.com`."""
    label: str
    namespace: str | None = None
    """Services and their subsets are drawn grouped by namespace."""
    cluster: str | None = None
    """The cluster of a stack with clusters (then the key starts with `<cluster>/`)."""


@dataclass(frozen=True, order=True)
class Edge:
    source: tuple[str, str]
    """(kind, key) of a node."""
    target: tuple[str, str]
    kind: str
    """`serves`, `route`, `mirror`, `allow` or `eastwest` (both ways)."""
    label: str = ""


@dataclass
class Graph:
    nodes: dict[tuple[str, str], Node] = field(default_factory=dict)
    edges: set[Edge] = field(default_factory=set)
    clusters: dict[str, str | None] = field(default_factory=dict)
    """Cluster -> its network (None: not labelled); empty for a stack without clusters."""

    def add(self, node: Node) -> tuple[str, str]:
        self.nodes.setdefault((node.kind, node.key), node)
        return node.kind, node.key

    def link(
        self, source: tuple[str, str], target: tuple[str, str], kind: str, label: str = ""
    ) -> None:
        self.edges.add(Edge(source, target, kind, label))


# --------------------------------------------------------------------------------------
# Reading manifests
# --------------------------------------------------------------------------------------


def _mapping(value: Any) -> dict[str, Any]:
    """`value` if it is a mapping, else an empty one (foreign manifests may be malformed)."""
    return value if isinstance(value, dict) else {}


def _dicts(value: Any) -> list[dict[str, Any]]:
    """The dict items of a list that may be missing or malformed (foreign manifests)."""
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _namespace(manifest: Manifest) -> str:
    namespace = _mapping(manifest.get("metadata")).get("namespace")
    return namespace if isinstance(namespace, str) and namespace else "default"


def _strings(value: Any) -> list[str]:
    return [item for item in value if isinstance(item, str)] if isinstance(value, list) else []


def _number(value: Any) -> str:
    """`80.0` -> `80`: weights come back from Pulumi's wire format as floats."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value)


def _service_node(graph: Graph, host: str, namespace: str) -> tuple[str, str]:
    """The node of a destination host; short names resolve in the manifest's namespace."""
    parsed = parse_service_host(host)
    if parsed is None and "." not in host:
        parsed = host, namespace
    if parsed is None:
        return graph.add(Node("service", host, host))
    name, service_namespace = parsed
    return graph.add(Node("service", f"{service_namespace}/{name}", name, service_namespace))


def _subset_node(graph: Graph, service: tuple[str, str], subset: str) -> tuple[str, str]:
    """A subset's key is its service's and its name: a `/` in the name (foreign manifests
    may be malformed) is escaped, so the key's last `/` still ends the service's."""
    parent = graph.nodes[service]
    key = f"{parent.key}/{subset.replace('%', '%25').replace('/', '%2F')}"
    return graph.add(Node("subset", key, subset, parent.namespace))


def _string_match(value: Any) -> str:
    if not isinstance(value, dict):
        return "?"
    if "exact" in value:
        return str(value["exact"])
    if "prefix" in value:
        return f"{value['prefix']}*"
    if "regex" in value:
        return f"~{value['regex']}"
    return "?"


def _match_label(matches: list[dict[str, Any]]) -> str:
    """A route's conditions in a few words: `x-canary=true`, `/api*`."""
    alternatives = []
    for match in matches:
        parts = [
            f"{name}={_string_match(value)}"
            for name, value in sorted(_mapping(match.get("headers")).items())
        ]
        if "uri" in match:
            parts.append(_string_match(match["uri"]))
        if parts:
            alternatives.append(" ".join(parts))
    return " or ".join(alternatives)


def _paths_label(matches: list[dict[str, Any]]) -> str:
    """The paths a route takes: `/reviews*`, or `/*` without a path condition."""
    paths = sorted({_string_match(match["uri"]) for match in matches if "uri" in match})
    return " or ".join(paths) or "/*"


def _route_label(conditions: str, share: str, split: bool) -> str:
    """`x-canary=true`, `80%`, or both when a route with conditions is split."""
    parts = [conditions] if conditions else []
    if split or not conditions:
        parts.append(share)
    return " ".join(parts)


def _add_virtual_service(graph: Graph, manifest: Manifest) -> None:
    """Mesh-bound VirtualServices give the split into subsets; gateway-bound ones give
    gateway -> host -> service (the split behind a gateway is the service's own)."""
    spec = _mapping(manifest.get("spec"))
    namespace = _namespace(manifest)
    gateways = _strings(spec.get("gateways")) or ["mesh"]
    hosts = _strings(spec.get("hosts"))
    for route in _dicts(spec.get("http")):
        matches = _dicts(route.get("match"))
        destinations = [
            d["destination"] | ({"weight": d["weight"]} if "weight" in d else {})
            for d in _dicts(route.get("route"))
            if isinstance(d.get("destination"), dict)
            and isinstance(d["destination"].get("host"), str)
        ]
        services = [_service_node(graph, d["host"], namespace) for d in destinations]
        for gateway in (g for g in gateways if g != "mesh"):
            gateway_namespace = gateway.split("/")[0] if "/" in gateway else namespace
            gateway_node = graph.add(
                Node("gateway", gateway, f"gateway {gateway.split('/')[-1]}", gateway_namespace)
            )
            for host in hosts:
                host_node = graph.add(Node("host", host, host))
                graph.link(gateway_node, host_node, "serves")
                for service in services:
                    graph.link(host_node, service, "route", _paths_label(matches))
        if "mesh" not in gateways:
            continue
        conditions = _match_label(matches)
        for service, destination in zip(services, destinations, strict=True):
            if not isinstance(destination.get("subset"), str):
                continue
            share = f"{_number(destination.get('weight', 100))}%"
            subset = _subset_node(graph, service, destination["subset"])
            graph.link(service, subset, "route", _route_label(conditions, share, len(services) > 1))
        mirror = route.get("mirror")
        if isinstance(mirror, dict) and isinstance(mirror.get("host"), str):
            mirrored = _service_node(graph, mirror["host"], namespace)
            if isinstance(mirror.get("subset"), str):
                mirrored = _subset_node(graph, mirrored, mirror["subset"])
            percent = _mapping(route.get("mirrorPercentage")).get("value", 100)
            for service in services:
                graph.link(service, mirrored, "mirror", f"mirror {_number(percent)}%")


def _add_destination_rule(
    graph: Graph, manifest: Manifest, versions: Mapping[tuple[str, str], tuple[str, str]]
) -> None:
    """A DestinationRule's service and its subsets. The rule of a version Service
    (`versions`, from the Inventory) is the version's traffic policy, not a service."""
    spec = _mapping(manifest.get("spec"))
    namespace = _namespace(manifest)
    host = spec.get("host")
    if not isinstance(host, str):
        return
    parsed = parse_service_host(host)
    if parsed is not None and (parsed[1], parsed[0]) in versions:
        return
    service = _service_node(graph, host, namespace)
    for subset in _dicts(spec.get("subsets")):
        if isinstance(subset.get("name"), str):
            _subset_node(graph, service, subset["name"])


# --------------------------------------------------------------------------------------
# The Gateway API and ambient's waypoints
# --------------------------------------------------------------------------------------

USE_WAYPOINT_NAMESPACE = "istio.io/use-waypoint-namespace"
"""Beside `naming.USE_WAYPOINT_LABEL`: the waypoint's namespace, when it is not the
labelled one's."""
NO_WAYPOINT = "none"
"""`naming.USE_WAYPOINT_LABEL` on a Service: not through its namespace's waypoint."""

Ref = tuple[str, str]
"""(group, kind) of an object reference; the core group is `""`."""
SERVICE_REF: Ref = ("", "Service")
GATEWAY_REF: Ref = (naming.GATEWAY_API_GROUP, "Gateway")


@dataclass(frozen=True)
class Inventory:
    """What routes name but do not say, read from every manifest before any route is
    drawn (a stack's objects come in no particular order)."""

    versions: dict[tuple[str, str], tuple[str, str]] = field(default_factory=dict)
    """(namespace, Service) -> (service, version) of a version Service, e.g.
    `store/reviews-v1` -> (`reviews`, `v1`): a route to it is a route to a subset."""
    listeners: dict[tuple[str, str], dict[str, str | None]] = field(default_factory=dict)
    """(namespace, Gateway) -> listener name -> its hostname (None: any host)."""
    namespace_waypoints: dict[str, tuple[str, str]] = field(default_factory=dict)
    """Namespace -> (namespace, name) of the waypoint its services use."""
    service_waypoints: dict[tuple[str, str], tuple[str, str] | None] = field(default_factory=dict)
    """(namespace, Service) -> its own waypoint, overriding its namespace's; None: none."""


def _reference(ref: dict[str, Any], group: str, kind: str) -> Ref:
    """(group, kind) of a reference, `group` and `kind` filling in what it leaves out."""
    return ref.get("group", group), ref.get("kind", kind)


def _labels(manifest: Manifest) -> dict[str, Any]:
    return _mapping(_mapping(manifest.get("metadata")).get("labels"))


def _waypoint_of(labels: dict[str, Any], namespace: str) -> tuple[str, str] | None:
    """The waypoint `naming.USE_WAYPOINT_LABEL` names: (namespace, name), None for `none`."""
    name = labels[naming.USE_WAYPOINT_LABEL]
    if not isinstance(name, str) or name == NO_WAYPOINT:
        return None
    waypoint_namespace = labels.get(USE_WAYPOINT_NAMESPACE)
    return (waypoint_namespace if isinstance(waypoint_namespace, str) else namespace), name


def _note_namespace(inventory: Inventory, manifest: Manifest) -> None:
    name = _mapping(manifest.get("metadata")).get("name")
    labels = _labels(manifest)
    if isinstance(name, str) and naming.USE_WAYPOINT_LABEL in labels:
        waypoint = _waypoint_of(labels, name)
        if waypoint is not None:
            inventory.namespace_waypoints[name] = waypoint


def _note_service(inventory: Inventory, manifest: Manifest) -> None:
    name = _mapping(manifest.get("metadata")).get("name")
    if not isinstance(name, str):
        return
    key = _namespace(manifest), name
    labels = _labels(manifest)
    if naming.USE_WAYPOINT_LABEL in labels:
        inventory.service_waypoints[key] = _waypoint_of(labels, key[0])
    selector = _mapping(_mapping(manifest.get("spec")).get("selector"))
    service, version = selector.get(WORKLOAD_LABEL), selector.get(VERSION_LABEL)
    if isinstance(service, str) and isinstance(version, str):
        inventory.versions[key] = service, version


def _note_gateway(inventory: Inventory, manifest: Manifest) -> None:
    name = _mapping(manifest.get("metadata")).get("name")
    if not isinstance(name, str):
        return
    listeners = inventory.listeners.setdefault((_namespace(manifest), name), {})
    for listener in _dicts(_mapping(manifest.get("spec")).get("listeners")):
        hostname = listener.get("hostname")
        if isinstance(listener.get("name"), str):
            listeners[listener["name"]] = hostname if isinstance(hostname, str) else None


def _inventory(manifests: list[Manifest]) -> Inventory:
    inventory = Inventory()
    for manifest in manifests:
        api_version, kind = manifest.get("apiVersion"), manifest.get("kind")
        if (api_version, kind) == ("v1", "Namespace"):
            _note_namespace(inventory, manifest)
        elif (api_version, kind) == ("v1", "Service"):
            _note_service(inventory, manifest)
        elif _is_gateway_api(manifest) and kind == "Gateway":
            _note_gateway(inventory, manifest)
    return inventory


def _is_gateway_api(manifest: Manifest) -> bool:
    return str(manifest.get("apiVersion", "")).startswith(f"{naming.GATEWAY_API_GROUP}/")


def _service_of(node: tuple[str, str]) -> tuple[str, str]:
    """The service node of a subset node; a service node itself."""
    return ("service", node[1].rsplit("/", 1)[0]) if node[0] == "subset" else node


def _backend_node(
    graph: Graph, ref: dict[str, Any], namespace: str, inventory: Inventory
) -> tuple[str, str]:
    """The node of a `backendRef`: the subset a version Service selects, else a service."""
    backend_namespace = ref.get("namespace")
    if not isinstance(backend_namespace, str):
        backend_namespace = namespace
    version = inventory.versions.get((backend_namespace, ref["name"]))
    if _reference(ref, "", "Service") == SERVICE_REF and version is not None:
        service, subset = version
        return _subset_node(graph, _service_node(graph, service, backend_namespace), subset)
    return _service_node(graph, ref["name"], backend_namespace)


def _amount(value: Any, default: float) -> float:
    """A weight or a fraction's part: a number from 0 up, else `default` (foreign
    manifests may be malformed)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return default
    try:
        amount = float(value)
    except OverflowError:
        return default
    return amount if 0 <= amount < float("inf") else default


def _share(weight: float, total: float) -> str:
    """A backend's share of a rule's traffic, in percent of `total` (0 or more)."""
    return f"{_number(round(100 * weight / total, 1)) if total else 0}%"


def _backends(
    graph: Graph, rule: dict[str, Any], namespace: str, inventory: Inventory
) -> list[tuple[tuple[str, str], str]]:
    """(node, share) of each of a rule's `backendRefs`. Gateway API weights are relative
    and default to 1: `80, 20` and `4, 1` are both 80% and 20%."""
    refs = [ref for ref in _dicts(rule.get("backendRefs")) if isinstance(ref.get("name"), str)]
    weights = [_amount(ref.get("weight"), 1) for ref in refs]
    return [
        (_backend_node(graph, ref, namespace, inventory), _share(weight, sum(weights)))
        for ref, weight in zip(refs, weights, strict=True)
    ]


def _mirrors(
    graph: Graph, rule: dict[str, Any], namespace: str, inventory: Inventory
) -> list[tuple[tuple[str, str], str]]:
    """(node, `mirror 10%`) of each RequestMirror filter of a rule."""
    found = []
    for rule_filter in _dicts(rule.get("filters")):
        mirror = _mapping(rule_filter.get("requestMirror"))
        ref = _mapping(mirror.get("backendRef"))
        if rule_filter.get("type") != "RequestMirror" or not isinstance(ref.get("name"), str):
            continue
        fraction = _mapping(mirror.get("fraction"))
        if "numerator" in fraction:
            numerator = _amount(fraction["numerator"], 0)
            percent = _share(numerator, _amount(fraction.get("denominator"), 100))
        else:
            percent = f"{_number(mirror.get('percent', 100))}%"
        found.append((_backend_node(graph, ref, namespace, inventory), f"mirror {percent}"))
    return found


def _http_string_match(value: Any) -> str:
    """A Gateway API path or header value as `_string_match` writes Istio's."""
    match = _mapping(value)
    kind = {"Exact": "exact", "PathPrefix": "prefix", "RegularExpression": "regex"}
    match_type = match.get("type", "Exact")
    key = kind.get(match_type, "?") if isinstance(match_type, str) else "?"
    return _string_match({key: match.get("value")})


def _http_match_label(matches: list[dict[str, Any]], with_path: bool = True) -> str:
    """An HTTPRoute rule's conditions as `_match_label` writes a VirtualService's."""
    alternatives = []
    for match in matches:
        parts = [
            f"{header.get('name')}={_http_string_match(header)}"
            for header in sorted(_dicts(match.get("headers")), key=lambda h: str(h.get("name")))
        ]
        if isinstance(match.get("method"), str):
            parts.append(match["method"])
        if with_path and "path" in match:
            parts.append(_http_string_match({"type": "PathPrefix"} | _mapping(match["path"])))
        if parts:
            alternatives.append(" ".join(parts))
    return " or ".join(alternatives)


def _http_paths_label(matches: list[dict[str, Any]]) -> str:
    """The paths an HTTPRoute rule takes: `/reviews*`, or `/*` without a path match."""
    paths = {
        _http_string_match({"type": "PathPrefix"} | _mapping(match["path"]))
        for match in matches
        if "path" in match
    }
    return " or ".join(sorted(paths)) or "/*"


def _add_mesh_rule(
    graph: Graph,
    service: tuple[str, str],
    rule: dict[str, Any],
    namespace: str,
    inventory: Inventory,
) -> None:
    """A rule of an HTTPRoute parented to `service` (GAMMA, served by its waypoint): the
    split into versions, as a mesh-bound VirtualService's."""
    backends = _backends(graph, rule, namespace, inventory)
    conditions = _http_match_label(_dicts(rule.get("matches")))
    for target, share in backends:
        if target != service:  # a rule for timeouts or retries only, not a split
            graph.link(service, target, "route", _route_label(conditions, share, len(backends) > 1))
    for mirrored, label in _mirrors(graph, rule, namespace, inventory):
        graph.link(service, mirrored, "mirror", label)


def _add_gateway_rule(
    graph: Graph,
    gateway: tuple[str, str],
    hosts: list[str],
    rule: dict[str, Any],
    namespace: str,
    inventory: Inventory,
) -> None:
    """A rule of an HTTPRoute parented to an ingress Gateway: gateway -> host -> service,
    by path, and the split into versions when it routes to version Services."""
    backends = _backends(graph, rule, namespace, inventory)
    if not backends:
        return  # the HTTP listener's redirect to HTTPS: no service behind it
    matches = _dicts(rule.get("matches"))
    services = [_service_of(target) for target, _ in backends]
    for host in hosts:
        host_node = graph.add(Node("host", host, host))
        graph.link(gateway, host_node, "serves")
        for service in services:
            graph.link(host_node, service, "route", _http_paths_label(matches))
    conditions = _http_match_label(matches, with_path=False)
    for (target, share), service in zip(backends, services, strict=True):
        if target != service:
            graph.link(service, target, "route", _route_label(conditions, share, len(backends) > 1))
    for mirrored, label in _mirrors(graph, rule, namespace, inventory):
        for service in services:
            graph.link(service, mirrored, "mirror", label)


def _route_hosts(
    spec: dict[str, Any], parent: dict[str, Any], gateway: tuple[str, str], inventory: Inventory
) -> list[str]:
    """The hosts a route serves on a Gateway: its `hostnames`, else those of the listeners
    it attaches to (`*` for a listener without one, or a Gateway not in the input)."""
    hostnames = _strings(spec.get("hostnames"))
    if hostnames:
        return hostnames
    listeners = inventory.listeners.get(gateway, {})
    section = parent.get("sectionName")
    chosen = list(listeners.values())
    if isinstance(section, str) and section in listeners:
        chosen = [listeners[section]]
    return sorted({host or "*" for host in chosen}) or ["*"]


def _add_http_route(graph: Graph, manifest: Manifest, inventory: Inventory) -> None:
    spec = _mapping(manifest.get("spec"))
    namespace = _namespace(manifest)
    rules = _dicts(spec.get("rules"))
    for parent in _dicts(spec.get("parentRefs")):
        name = parent.get("name")
        parent_namespace = parent.get("namespace")
        if not isinstance(name, str):
            continue
        if not isinstance(parent_namespace, str):
            parent_namespace = namespace
        target = _reference(parent, naming.GATEWAY_API_GROUP, "Gateway")
        if target == SERVICE_REF:
            service = _service_node(graph, name, parent_namespace)
            for rule in rules:
                _add_mesh_rule(graph, service, rule, namespace, inventory)
        elif target == GATEWAY_REF:
            gateway = graph.add(
                Node("gateway", f"{parent_namespace}/{name}", f"gateway {name}", parent_namespace)
            )
            hosts = _route_hosts(spec, parent, (parent_namespace, name), inventory)
            for rule in rules:
                _add_gateway_rule(graph, gateway, hosts, rule, namespace, inventory)


def _waypoint_node(graph: Graph, namespace: str, name: str) -> tuple[str, str]:
    # The usual name is `waypoint`: "waypoint waypoint" would say it twice.
    label = "waypoint" if name == "waypoint" else f"waypoint {name}"
    return graph.add(Node("waypoint", f"{namespace}/{name}", label, namespace))


def _add_waypoint(graph: Graph, manifest: Manifest) -> None:
    """A waypoint Gateway is drawn even when no service uses it yet."""
    name = _mapping(manifest.get("metadata")).get("name")
    spec = _mapping(manifest.get("spec"))
    if spec.get("gatewayClassName") == naming.WAYPOINT_CLASS and isinstance(name, str):
        _waypoint_node(graph, _namespace(manifest), name)


def _link_waypoints(graph: Graph, inventory: Inventory) -> None:
    """Waypoint -> each service its traffic passes through: the waypoint the Service's own
    label names, else its namespace's. Drawn instead of the namespace-wide ALLOW for the
    waypoint's identity, which would make the waypoint a caller of every service."""
    for node in [node for node in graph.nodes.values() if node.kind == "service"]:
        if node.namespace is None:
            continue
        key = node.namespace, node.key.removeprefix(f"{node.namespace}/")
        default = inventory.namespace_waypoints.get(node.namespace)
        waypoint = inventory.service_waypoints.get(key, default)
        if waypoint is not None:
            graph.link(_waypoint_node(graph, *waypoint), (node.kind, node.key), "serves")


# --------------------------------------------------------------------------------------
# Who may call whom
# --------------------------------------------------------------------------------------


def _operation_label(rule: dict[str, Any]) -> str:
    parts = []
    for to in _dicts(rule.get("to")):
        operation = _mapping(to.get("operation"))
        for key in ("methods", "paths", "ports"):
            parts += _strings(operation.get(key))
    return " ".join(parts)


def _policy_targets(graph: Graph, spec: dict[str, Any], namespace: str) -> list[tuple[str, str]]:
    """The services a policy applies to: its `selector`'s workload (sidecars, ztunnel) or
    the Services of its `targetRefs` (waypoints). None for a namespace-wide policy (default
    deny, the waypoint's way in) or one bound to a Gateway: they say nothing about one
    service."""
    workload = selected_workload(spec.get("selector"))
    if workload is not None:
        return [_service_node(graph, workload, namespace)]
    refs = [*_dicts(spec.get("targetRefs")), *_dicts([spec.get("targetRef")])]
    return [
        _service_node(graph, ref["name"], namespace)
        for ref in refs
        if _reference(ref, "", "") == SERVICE_REF and isinstance(ref.get("name"), str)
    ]


def _callers(source: dict[str, Any]) -> list[Node]:
    """The callers one `from.source` of an ALLOW rule names."""
    fields = _mapping(source.get("source"))
    callers = []
    for value in _strings(fields.get("principals")):
        parsed = parse_principal(value)
        if parsed is None:
            callers.append(Node("caller", value, value))
        else:
            caller_namespace, account = parsed
            callers.append(
                Node("caller", f"{caller_namespace}/{account}", f"sa {account}", caller_namespace)
            )
    for caller_namespace in _strings(fields.get("namespaces")):
        callers.append(Node("caller", f"{caller_namespace}/*", "any workload", caller_namespace))
    return callers


def _add_authorization_policy(graph: Graph, manifest: Manifest, jwt: set[str]) -> None:
    spec = _mapping(manifest.get("spec"))
    services = _policy_targets(graph, spec, _namespace(manifest))
    action = spec.get("action", "ALLOW")
    if action == "DENY":
        # The require-JWT policy: denies requests without a request principal.
        if any(
            _strings(_mapping(source.get("source")).get("notRequestPrincipals"))
            for rule in _dicts(spec.get("rules"))
            for source in _dicts(rule.get("from"))
        ):
            jwt.update(service[1] for service in services)
        return
    if action != "ALLOW":
        return
    for rule in _dicts(spec.get("rules")):
        label = _operation_label(rule)
        for source in _dicts(rule.get("from")):
            for caller in _callers(source):
                for service in services:
                    graph.link(graph.add(caller), service, "allow", label)


def build_graph(manifests: Iterable[Manifest]) -> Graph:
    """Gateways, hosts, waypoints, services, subsets and callers of the Istio and Gateway
    API objects in `manifests`.

    Other kinds are ignored, so every object a stack renders can be passed in.
    """
    objects = list(manifests)
    inventory = _inventory(objects)
    graph = Graph()
    jwt_required: set[str] = set()
    for manifest in objects:
        kind = manifest.get("kind")
        if _is_gateway_api(manifest):
            if kind == "HTTPRoute":
                _add_http_route(graph, manifest, inventory)
            elif kind == "Gateway":
                _add_waypoint(graph, manifest)
            continue
        if not str(manifest.get("apiVersion", "")).endswith("istio.io/v1"):
            continue
        if kind == "VirtualService":
            _add_virtual_service(graph, manifest)
        elif kind == "DestinationRule":
            _add_destination_rule(graph, manifest, inventory.versions)
        elif kind == "AuthorizationPolicy":
            _add_authorization_policy(graph, manifest, jwt_required)
    # A version Service is a subset, as a DestinationRule's is, routed to or not.
    for (namespace, _), (app, version) in sorted(inventory.versions.items()):
        _subset_node(graph, _service_node(graph, app, namespace), version)
    _link_waypoints(graph, inventory)
    for key in jwt_required:
        node = graph.nodes[("service", key)]
        graph.nodes[("service", key)] = replace(node, label=f"{node.label} (JWT required)")
    # Subsets a DestinationRule defines but no route sends traffic to.
    routed = {edge.target for edge in graph.edges}
    for node in list(graph.nodes.values()):
        if node.kind == "subset" and (node.kind, node.key) not in routed:
            service = ("service", node.key.rsplit("/", 1)[0])
            graph.link(service, (node.kind, node.key), "route", "no route")
    return graph


# --------------------------------------------------------------------------------------
# Clusters and the east-west path
# --------------------------------------------------------------------------------------

PASSTHROUGH = "AUTO_PASSTHROUGH"
"""The TLS mode of an east-west gateway's server: mTLS passed through to the pod the SNI
names, across networks."""


def cluster_of(provider: str | None) -> str | None:
    """The cluster of a resource's provider reference (`<provider URN>::<id>`); None for
    the default provider or the single provider of a stack without clusters."""
    if provider is None or "::" not in provider:
        return None
    return naming.cluster_of_provider(provider.split("::")[-2])


def manifests_by_cluster(resources: Iterable[Any]) -> dict[str | None, list[Manifest]]:
    """The Kubernetes objects of recorded resources (`Registered`), by their cluster."""
    from mesh.program import kubernetes_manifest

    grouped: dict[str | None, list[Manifest]] = {}
    for resource in resources:
        manifest = kubernetes_manifest(resource)
        if manifest:
            grouped.setdefault(cluster_of(resource.provider), []).append(manifest)
    return grouped


def _network(manifests: list[Manifest], namespace: str) -> str | None:
    """The network `namespace` is labelled with (istio-system: the cluster's)."""
    for manifest in manifests:
        if (manifest.get("apiVersion"), manifest.get("kind")) != ("v1", "Namespace"):
            continue
        if _mapping(manifest.get("metadata")).get("name") != namespace:
            continue
        network = _labels(manifest).get(naming.NETWORK_LABEL)
        if isinstance(network, str) and network:
            return network
    return None


def _east_west(manifest: Manifest) -> list[str]:
    """The ports of an Istio `Gateway`'s AUTO_PASSTHROUGH servers: an east-west gateway's
    (`15443`); none for any other object."""
    if manifest.get("kind") != "Gateway" or not str(manifest.get("apiVersion", "")).endswith(
        "istio.io/v1"
    ):
        return []
    return [
        _number(_mapping(server.get("port")).get("number", "?"))
        for server in _dicts(_mapping(manifest.get("spec")).get("servers"))
        if _mapping(server.get("tls")).get("mode") == PASSTHROUGH
    ]


def _into(merged: Graph, part: Graph, cluster: str | None) -> None:
    """Copy `part` into `merged`, its keys prefixed with `cluster/`."""

    def moved(node: tuple[str, str]) -> tuple[str, str]:
        return node if cluster is None else (node[0], f"{cluster}/{node[1]}")

    for node in part.nodes.values():
        if cluster is None:
            merged.add(node)
        else:
            merged.add(replace(node, key=f"{cluster}/{node.key}", cluster=cluster))
    for edge in part.edges:
        merged.link(moved(edge.source), moved(edge.target), edge.kind, edge.label)


def build_mesh_graph(clusters: Mapping[str | None, Iterable[Manifest]]) -> Graph:
    """The graph of a stack's objects by cluster (`manifests_by_cluster`): without
    clusters (only None), `build_graph`'s; else each cluster's graph in its box, an
    east-west gateway per cluster that has one, and the path between the east-west
    gateways of every two clusters on different networks."""
    objects = {cluster: list(manifests) for cluster, manifests in clusters.items()}
    if set(objects) <= {None}:
        return build_graph(objects.get(None, []))
    merged = Graph()
    gateways: dict[str, list[tuple[tuple[str, str], list[str]]]] = {}
    for cluster, manifests in sorted(objects.items(), key=lambda item: item[0] or ""):
        part = build_graph(manifests)
        for manifest in manifests:
            ports = _east_west(manifest)
            name = _mapping(manifest.get("metadata")).get("name")
            if ports and isinstance(name, str):
                namespace = _namespace(manifest)
                node = Node("eastwest", f"{namespace}/{name}", "east-west gateway", namespace)
                gateways.setdefault(cluster or "", []).append((part.add(node), ports))
        _into(merged, part, cluster)
        if cluster is not None:
            merged.clusters[cluster] = _network(manifests, naming.ISTIO_SYSTEM)
    named = sorted(c for c in gateways if c in merged.clusters)
    for index, first in enumerate(named):
        for second in named[index + 1 :]:
            networks = merged.clusters[first], merged.clusters[second]
            if None in networks or networks[0] == networks[1]:
                continue  # one network: istiod sends traffic to the pods themselves
            for (source, ports), (target, _) in (
                (a, b) for a in gateways[first] for b in gateways[second]
            ):
                merged.link(
                    (source[0], f"{first}/{source[1]}"),
                    (target[0], f"{second}/{target[1]}"),
                    "eastwest",
                    f"{networks[0]} <-> {networks[1]} {' '.join(ports)} mTLS passthrough",
                )
    return merged


# --------------------------------------------------------------------------------------
# Drawing
# --------------------------------------------------------------------------------------

_KIND_ORDER = {
    "gateway": 0,
    "host": 1,
    "waypoint": 2,
    "caller": 3,
    "service": 4,
    "subset": 5,
    "eastwest": 6,
}


def _ordered(graph: Graph) -> tuple[list[Node], list[Edge], dict[tuple[str, str], str]]:
    """Nodes and edges in a stable order, and a short id per node."""
    nodes = sorted(
        graph.nodes.values(),
        key=lambda node: (node.cluster or "", _KIND_ORDER.get(node.kind, 9), node.key),
    )
    ids = {(node.kind, node.key): f"n{index}" for index, node in enumerate(nodes)}
    edges = sorted(graph.edges, key=lambda edge: (_KIND_ORDER.get(edge.source[0], 9), edge))
    return nodes, edges, ids


def _namespaces(nodes: list[Node]) -> dict[str | None, list[Node]]:
    grouped: dict[str | None, list[Node]] = {}
    for node in nodes:
        grouped.setdefault(node.namespace, []).append(node)
    return grouped


def _clusters(graph: Graph, nodes: list[Node]) -> list[tuple[str | None, str, list[Node]]]:
    """(cluster, its box's title, its nodes) in drawing order; one (None, "", all nodes)
    for a stack without clusters."""
    grouped: dict[str | None, list[Node]] = {}
    for node in nodes:
        grouped.setdefault(node.cluster, []).append(node)
    boxes = []
    for cluster, members in grouped.items():
        network = graph.clusters.get(cluster) if cluster is not None else None
        title = "" if cluster is None else f"cluster {cluster}"
        boxes.append((cluster, f"{title} ({network})" if network else title, members))
    return boxes or [(None, "", [])]


_MERMAID_SHAPES = {
    "gateway": ("{{", "}}"),
    "host": ("([", "])"),
    "waypoint": ("[[", "]]"),
    "service": ("[", "]"),
    "subset": ("(", ")"),
    "caller": (">", "]"),
    "eastwest": ("{{", "}}"),
}
_MERMAID_ARROWS = {
    "serves": "-->",
    "route": "-->",
    "mirror": "-.->",
    "allow": "==>",
    "eastwest": "<-->",
}


def _mermaid_text(text: str) -> str:
    """Text inside a quoted Mermaid label: on one line, quotes and `#` as entity codes."""
    return " ".join(text.split()).replace("#", "#35;").replace('"', "#quot;")


def to_mermaid(graph: Graph) -> str:
    """A Mermaid flowchart, left to right, services grouped by namespace (and namespaces
    by cluster in a stack with clusters)."""
    nodes, edges, ids = _ordered(graph)
    lines = ["flowchart LR"]
    for box, (cluster, title, cluster_nodes) in enumerate(_clusters(graph, nodes)):
        outer, prefix = "  ", "ns"
        if cluster is not None:
            lines.append(f'  subgraph c{box}["{_mermaid_text(title)}"]')
            outer, prefix = "    ", f"c{box}ns"
        for index, (namespace, members) in enumerate(_namespaces(cluster_nodes).items()):
            indent = outer
            if namespace is not None:
                namespace_title = _mermaid_text(namespace)
                lines.append(f'{outer}subgraph {prefix}{index}["namespace {namespace_title}"]')
                indent = outer + "  "
            for node in members:
                opening, closing = _MERMAID_SHAPES[node.kind]
                label = _mermaid_text(node.label)
                lines.append(f'{indent}{ids[(node.kind, node.key)]}{opening}"{label}"{closing}')
            if namespace is not None:
                lines.append(f"{outer}end")
        if cluster is not None:
            lines.append("  end")
    for edge in edges:
        arrow = _MERMAID_ARROWS[edge.kind]
        label = f'|"{_mermaid_text(edge.label)}"|' if edge.label else ""
        lines.append(f"  {ids[edge.source]} {arrow}{label} {ids[edge.target]}")
    return "\n".join(lines) + "\n"


_DOT_SHAPES = {
    "gateway": "hexagon",
    "host": "oval",
    "waypoint": "component",
    "service": "box",
    "subset": "box, style=rounded",
    "caller": "cds",
    "eastwest": "hexagon, peripheries=2",
}
_DOT_STYLES = {
    "serves": "",
    "route": "",
    "mirror": ", style=dashed",
    "allow": ", style=bold",
    "eastwest": ", dir=both, style=bold",
}


def _dot_text(text: str) -> str:
    return '"' + re.sub(r'(["\\])', r"\\\1", text) + '"'


def to_dot(graph: Graph) -> str:
    """A Graphviz digraph, left to right, services grouped by namespace (and namespaces
    by cluster in a stack with clusters)."""
    nodes, edges, ids = _ordered(graph)
    lines = ["digraph mesh {", "  rankdir=LR;"]
    for box, (cluster, title, cluster_nodes) in enumerate(_clusters(graph, nodes)):
        outer, prefix = "  ", "cluster_"
        if cluster is not None:
            lines.append(f"  subgraph cluster_c{box} {{")
            lines.append(f"    label={_dot_text(title)};")
            outer, prefix = "    ", f"cluster_c{box}_"
        for index, (namespace, members) in enumerate(_namespaces(cluster_nodes).items()):
            indent = outer
            if namespace is not None:
                lines.append(f"{outer}subgraph {prefix}{index} {{")
                lines.append(f"{outer}  label={_dot_text('namespace ' + namespace)};")
                indent = outer + "  "
            for node in members:
                shape = _DOT_SHAPES[node.kind]
                node_id = ids[(node.kind, node.key)]
                lines.append(f"{indent}{node_id} [label={_dot_text(node.label)}, shape={shape}];")
            if namespace is not None:
                lines.append(f"{outer}}}")
        if cluster is not None:
            lines.append("  }")
    for edge in edges:
        label = f"label={_dot_text(edge.label)}" if edge.label else 'label=""'
        lines.append(
            f"  {ids[edge.source]} -> {ids[edge.target]} [{label}{_DOT_STYLES[edge.kind]}];"
        )
    lines.append("}")
    return "\n".join(lines) + "\n"


def to_json(graph: Graph) -> str:
    """The graph as data: nodes (kind, key, label, namespace, and cluster in a stack with
    clusters) and edges between keys; with clusters, also each cluster's network."""
    nodes, edges, _ = _ordered(graph)
    document: dict[str, Any] = {} if not graph.clusters else {"clusters": graph.clusters}
    document |= {
        "nodes": [
            {"kind": n.kind, "key": n.key, "label": n.label, "namespace": n.namespace}
            | ({} if n.cluster is None else {"cluster": n.cluster})
            for n in nodes
        ],
        "edges": [
            {
                "from": {"kind": e.source[0], "key": e.source[1]},
                "to": {"kind": e.target[0], "key": e.target[1]},
                "kind": e.kind,
                "label": e.label,
            }
            for e in edges
        ],
    }
    return json.dumps(document, indent=2) + "\n"


# --------------------------------------------------------------------------------------
# Command
# --------------------------------------------------------------------------------------


def main(argv: list[str]) -> int:
    """`python -m mesh graph --stack NAME | --stack-file PATH [--format mermaid|dot]`."""
    from mesh.cli import add_stack_arguments, run_from_arguments  # runs the whole program

    parser = argparse.ArgumentParser(
        prog="mesh graph",
        description="Draw gateways, hosts, waypoints, services, subsets (with weights) and who may "
        "call whom, from the objects a stack declares; with clusters, each cluster's box and "
        "the east-west path between clusters on different networks.",
    )
    add_stack_arguments(parser)
    parser.add_argument(
        "--format",
        choices=("mermaid", "dot", "json"),
        default="mermaid",
        help="mermaid (default; paste into a ```mermaid block on GitHub), dot (Graphviz) or "
        "json (nodes and edges, for scripts)",
    )
    args = parser.parse_args(argv)
    run = run_from_arguments(args)
    if isinstance(run, int):
        return run
    graph = build_mesh_graph(manifests_by_cluster(run.resources))
    draw = {"mermaid": to_mermaid, "dot": to_dot, "json": to_json}[args.format]
    print(draw(graph), end="")
    return 0
