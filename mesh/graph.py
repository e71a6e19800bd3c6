"""`python -m mesh graph`: the mesh as a picture, from the objects a stack declares.

    gateway --serves--> host --path--> service --weight--> subset
    caller identity ==may call==> service

Everything is read from rendered manifests (VirtualServices, DestinationRules,
AuthorizationPolicies, RequestAuthentications), not from the stack config, so the
picture shows what Istio will be told. `build_graph` is pure; `to_mermaid` (renders on
GitHub inside a ```mermaid block) and `to_dot` (Graphviz) only draw.
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from components.authorization import parse_principal, selected_workload
from components.service_config import parse_service_host

Manifest = Mapping[str, Any]


@dataclass(frozen=True, order=True)
class Node:
    kind: str
    """`gateway`, `host`, `service`, `subset` or `caller`."""
    key: str
    """Unique within its kind: `shop/reviews`, `shop/reviews/v1`, `shop.example.com`."""
    label: str
    namespace: str | None = None
    """Services and their subsets are drawn grouped by namespace."""


@dataclass(frozen=True, order=True)
class Edge:
    source: tuple[str, str]
    """(kind, key) of a node."""
    target: tuple[str, str]
    kind: str
    """`serves`, `route`, `mirror` or `allow`."""
    label: str = ""


@dataclass
class Graph:
    nodes: dict[tuple[str, str], Node] = field(default_factory=dict)
    edges: set[Edge] = field(default_factory=set)

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
    parent = graph.nodes[service]
    return graph.add(Node("subset", f"{parent.key}/{subset}", subset, parent.namespace))


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
            parts = [conditions] if conditions else []
            if len(destinations) > 1 or not conditions:
                parts.append(f"{_number(destination.get('weight', 100))}%")
            subset = _subset_node(graph, service, destination["subset"])
            graph.link(service, subset, "route", " ".join(parts))
        mirror = route.get("mirror")
        if isinstance(mirror, dict) and isinstance(mirror.get("host"), str):
            mirrored = _service_node(graph, mirror["host"], namespace)
            if isinstance(mirror.get("subset"), str):
                mirrored = _subset_node(graph, mirrored, mirror["subset"])
            percent = _mapping(route.get("mirrorPercentage")).get("value", 100)
            for service in services:
                graph.link(service, mirrored, "mirror", f"mirror {_number(percent)}%")


def _add_destination_rule(graph: Graph, manifest: Manifest) -> None:
    spec = _mapping(manifest.get("spec"))
    namespace = _namespace(manifest)
    host = spec.get("host")
    if not isinstance(host, str):
        return
    service = _service_node(graph, host, namespace)
    for subset in _dicts(spec.get("subsets")):
        if isinstance(subset.get("name"), str):
            _subset_node(graph, service, subset["name"])


def _operation_label(rule: dict[str, Any]) -> str:
    parts = []
    for to in _dicts(rule.get("to")):
        operation = _mapping(to.get("operation"))
        for key in ("methods", "paths", "ports"):
            parts += _strings(operation.get(key))
    return " ".join(parts)


def _add_authorization_policy(graph: Graph, manifest: Manifest, jwt: set[str]) -> None:
    spec = _mapping(manifest.get("spec"))
    namespace = _namespace(manifest)
    workload = selected_workload(spec.get("selector"))
    if workload is None:
        return  # namespace-wide policies (default deny) say nothing about one service
    service = _service_node(graph, workload, namespace)
    action = spec.get("action", "ALLOW")
    if action == "DENY":
        # The require-JWT policy: denies requests without a request principal.
        if any(
            _strings(_mapping(source.get("source")).get("notRequestPrincipals"))
            for rule in _dicts(spec.get("rules"))
            for source in _dicts(rule.get("from"))
        ):
            jwt.add(service[1])
        return
    if action != "ALLOW":
        return
    for rule in _dicts(spec.get("rules")):
        label = _operation_label(rule)
        for source in _dicts(rule.get("from")):
            fields = _mapping(source.get("source"))
            callers = []
            for value in _strings(fields.get("principals")):
                parsed = parse_principal(value)
                if parsed is None:
                    callers.append(Node("caller", value, value))
                else:
                    caller_namespace, account = parsed
                    callers.append(
                        Node(
                            "caller",
                            f"{caller_namespace}/{account}",
                            f"sa {account}",
                            caller_namespace,
                        )
                    )
            for caller_namespace in _strings(fields.get("namespaces")):
                callers.append(
                    Node("caller", f"{caller_namespace}/*", "any workload", caller_namespace)
                )
            for caller in callers:
                graph.link(graph.add(caller), service, "allow", label)


def build_graph(manifests: Iterable[Manifest]) -> Graph:
    """Gateways, hosts, services, subsets and callers of the Istio objects in `manifests`.

    Other kinds are ignored, so every object a stack renders can be passed in.
    """
    graph = Graph()
    jwt_required: set[str] = set()
    for manifest in manifests:
        kind = manifest.get("kind")
        if not str(manifest.get("apiVersion", "")).endswith("istio.io/v1"):
            continue
        if kind == "VirtualService":
            _add_virtual_service(graph, manifest)
        elif kind == "DestinationRule":
            _add_destination_rule(graph, manifest)
        elif kind == "AuthorizationPolicy":
            _add_authorization_policy(graph, manifest, jwt_required)
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
# Drawing
# --------------------------------------------------------------------------------------

_KIND_ORDER = {"gateway": 0, "host": 1, "caller": 2, "service": 3, "subset": 4}


def _ordered(graph: Graph) -> tuple[list[Node], list[Edge], dict[tuple[str, str], str]]:
    """Nodes and edges in a stable order, and a short id per node."""
    nodes = sorted(graph.nodes.values(), key=lambda node: (_KIND_ORDER.get(node.kind, 9), node.key))
    ids = {(node.kind, node.key): f"n{index}" for index, node in enumerate(nodes)}
    edges = sorted(graph.edges, key=lambda edge: (_KIND_ORDER.get(edge.source[0], 9), edge))
    return nodes, edges, ids


def _namespaces(nodes: list[Node]) -> dict[str | None, list[Node]]:
    grouped: dict[str | None, list[Node]] = {}
    for node in nodes:
        grouped.setdefault(node.namespace, []).append(node)
    return grouped


_MERMAID_SHAPES = {
    "gateway": ("{{", "}}"),
    "host": ("([", "])"),
    "service": ("[", "]"),
    "subset": ("(", ")"),
    "caller": (">", "]"),
}
_MERMAID_ARROWS = {"serves": "-->", "route": "-->", "mirror": "-.->", "allow": "==>"}


def _mermaid_text(text: str) -> str:
    """Text inside a quoted Mermaid label: on one line, quotes and `#` as entity codes."""
    return " ".join(text.split()).replace("#", "#35;").replace('"', "#quot;")


def to_mermaid(graph: Graph) -> str:
    """A Mermaid flowchart, left to right, services grouped by namespace."""
    nodes, edges, ids = _ordered(graph)
    lines = ["flowchart LR"]
    for index, (namespace, members) in enumerate(_namespaces(nodes).items()):
        indent = "  "
        if namespace is not None:
            lines.append(f'  subgraph ns{index}["namespace {_mermaid_text(namespace)}"]')
            indent = "    "
        for node in members:
            opening, closing = _MERMAID_SHAPES[node.kind]
            label = _mermaid_text(node.label)
            lines.append(f'{indent}{ids[(node.kind, node.key)]}{opening}"{label}"{closing}')
        if namespace is not None:
            lines.append("  end")
    for edge in edges:
        arrow = _MERMAID_ARROWS[edge.kind]
        label = f'|"{_mermaid_text(edge.label)}"|' if edge.label else ""
        lines.append(f"  {ids[edge.source]} {arrow}{label} {ids[edge.target]}")
    return "\n".join(lines) + "\n"


_DOT_SHAPES = {
    "gateway": "hexagon",
    "host": "oval",
    "service": "box",
    "subset": "box, style=rounded",
    "caller": "cds",
}
_DOT_STYLES = {"serves": "", "route": "", "mirror": ", style=dashed", "allow": ", style=bold"}


def _dot_text(text: str) -> str:
    return '"' + re.sub(r'(["\\])', r"\\\1", text) + '"'


def to_dot(graph: Graph) -> str:
    """A Graphviz digraph, left to right, services grouped by namespace."""
    nodes, edges, ids = _ordered(graph)
    lines = ["digraph mesh {", "  rankdir=LR;"]
    for index, (namespace, members) in enumerate(_namespaces(nodes).items()):
        indent = "  "
        if namespace is not None:
            lines.append(f"  subgraph cluster_{index} {{")
            lines.append(f"    label={_dot_text('namespace ' + namespace)};")
            indent = "    "
        for node in members:
            shape = _DOT_SHAPES[node.kind]
            node_id = ids[(node.kind, node.key)]
            lines.append(f"{indent}{node_id} [label={_dot_text(node.label)}, shape={shape}];")
        if namespace is not None:
            lines.append("  }")
    for edge in edges:
        label = f"label={_dot_text(edge.label)}" if edge.label else 'label=""'
        lines.append(
            f"  {ids[edge.source]} -> {ids[edge.target]} [{label}{_DOT_STYLES[edge.kind]}];"
        )
    lines.append("}")
    return "\n".join(lines) + "\n"


def to_json(graph: Graph) -> str:
    """The graph as data: nodes (kind, key, label, namespace) and edges between keys."""
    nodes, edges, _ = _ordered(graph)
    document = {
        "nodes": [
            {"kind": n.kind, "key": n.key, "label": n.label, "namespace": n.namespace}
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
        description="Draw gateways, hosts, services, subsets (with weights) and who may "
        "call whom, from the objects a stack declares.",
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
    graph = build_graph(run.manifests())
    draw = {"mermaid": to_mermaid, "dot": to_dot, "json": to_json}[args.format]
    print(draw(graph), end="")
    return 0
