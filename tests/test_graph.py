"""`python -m mesh graph`: the graph read from manifests, and its Mermaid / DOT drawings."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from components import naming
from components.authorization import (
    allow_rules,
    build_allow_policy,
    build_request_authentication,
    build_require_jwt_policy,
    principal,
)
from components.multicluster import cross_network_gateway
from components.service_config import ServiceConfig
from components.traffic import (
    build_destination_rule,
    build_gateway_virtual_service,
    build_virtual_service,
)
from mesh import graph as mesh_graph
from mesh.graph import Edge, build_graph, build_mesh_graph, to_dot, to_json, to_mermaid
from mesh.program import ProgramRun, Registered
from mesh.reference import load_gateway_api_reference, load_reference

CATALOG = """
- name: reviews
  namespace: shop
  port: 9080
  versions: {v1: {weight: 80}, v2: {weight: 20}}
  routes: [{headers: {x-canary: "true"}, to: v2}]
  mirror: {to: v2, percent: 10}
  expose: {gateway: ingress, host: shop.example.com, pathPrefix: /reviews}
  allowFrom: [{namespace: shop, serviceAccount: productpage, methods: [GET]}, {namespace: batch}]
  jwt: {issuer: https://auth.example.com, jwksUri: https://auth.example.com/jwks.json}
- name: productpage
  namespace: shop
  port: 9080
  expose: {gateway: ingress, host: shop.example.com, pathPrefix: /product}
"""
GATEWAY = "istio-ingress/ingress"


def manifests() -> list[dict[str, Any]]:
    """What the catalog renders, built with the project's own builders."""
    found: list[dict[str, Any]] = []
    for raw in yaml.safe_load(CATALOG):
        service = ServiceConfig.model_validate(raw)
        found += [build_virtual_service(service), build_destination_rule(service)]
        if service.expose is not None:
            found.append(build_gateway_virtual_service(service, GATEWAY))
        rules = allow_rules(service, gateway_principal=principal("istio-ingress", "istio-ingress"))
        policy = build_allow_policy(service.name, service.namespace, rules)
        if policy is not None:
            found.append(policy)
        if service.jwt is not None:
            found.append(build_request_authentication(service.name, service.namespace, service.jwt))
            found.append(
                build_require_jwt_policy(service.name, service.namespace, service.jwt.issuer)
            )
    return found


CATALOG_MANIFESTS = manifests()
"""Built once for the property test (build_graph only reads them)."""


def edges_by_label(edges: set[Edge]) -> set[tuple[str, str, str, str]]:
    """(source key, kind, label, target key) of every edge."""
    return {(edge.source[1], edge.kind, edge.label, edge.target[1]) for edge in edges}


def test_gateways_hosts_services_subsets_and_callers() -> None:
    graph = build_graph(manifests())
    assert edges_by_label(graph.edges) == {
        # gateway -> host -> services, by path
        (GATEWAY, "serves", "", "shop.example.com"),
        ("shop.example.com", "route", "/reviews*", "shop/reviews"),
        ("shop.example.com", "route", "/product*", "shop/productpage"),
        # the split, the header route and the mirror
        ("shop/reviews", "route", "80%", "shop/reviews/v1"),
        ("shop/reviews", "route", "20%", "shop/reviews/v2"),
        ("shop/reviews", "route", "x-canary=true", "shop/reviews/v2"),
        ("shop/reviews", "mirror", "mirror 10%", "shop/reviews/v2"),
        # who may call whom
        ("shop/productpage", "allow", "GET", "shop/reviews"),
        ("batch/*", "allow", "", "shop/reviews"),
        ("istio-ingress/istio-ingress", "allow", "/reviews*", "shop/reviews"),
        ("istio-ingress/istio-ingress", "allow", "/product*", "shop/productpage"),
    }
    labels = {key: node.label for key, node in graph.nodes.items()}
    assert labels[("service", "shop/reviews")] == "reviews (JWT required)"
    assert labels[("service", "shop/productpage")] == "productpage"
    assert labels[("caller", "shop/productpage")] == "sa productpage"
    assert graph.nodes[("subset", "shop/reviews/v1")].namespace == "shop"


def test_weights_from_pulumi_wire_format_and_unrouted_subsets() -> None:
    virtual_service = {
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": {"name": "ratings", "namespace": "shop"},
        "spec": {
            "hosts": ["ratings"],
            "http": [
                {
                    "route": [
                        {"destination": {"host": "ratings", "subset": "v1"}, "weight": 50.0},
                        {"destination": {"host": "ratings", "subset": "v2"}, "weight": 50.0},
                    ]
                }
            ],
        },
    }
    rule = {
        "apiVersion": "networking.istio.io/v1",
        "kind": "DestinationRule",
        "metadata": {"name": "ratings", "namespace": "shop"},
        "spec": {
            "host": "ratings.shop.svc.cluster.local",
            "subsets": [{"name": name} for name in ("v1", "v2", "v3")],
        },
    }
    assert edges_by_label(build_graph([virtual_service, rule]).edges) == {
        ("shop/ratings", "route", "50%", "shop/ratings/v1"),
        ("shop/ratings", "route", "50%", "shop/ratings/v2"),
        ("shop/ratings", "route", "no route", "shop/ratings/v3"),
    }


@pytest.mark.parametrize(
    "junk",
    [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}},
        {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService"},
        {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService", "spec": {"http": 3}},
        {
            "apiVersion": "networking.istio.io/v1",
            "kind": "VirtualService",
            "spec": {"hosts": "x", "http": [{"route": [{"destination": "x"}, 5]}, None]},
        },
        {"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule", "spec": {"host": 1}},
        {"apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicy", "spec": {}},
        {
            "apiVersion": "security.istio.io/v1",
            "kind": "AuthorizationPolicy",
            "metadata": {"namespace": "shop"},
            "spec": {
                "selector": {"matchLabels": {"app": "x"}},
                "rules": [{"from": [{"source": {"principals": ["*"]}}]}],
            },
        },
        {
            "apiVersion": "networking.istio.io/v1",
            "kind": "DestinationRule",
            "metadata": {"namespace": "shop"},
            "spec": {"host": "reviews", "subsets": [{"name": "a/b"}, {"name": "%2F"}]},
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "x", "namespace": "shop", "labels": {"istio.io/use-waypoint": 3}},
            "spec": {"selector": {"app": "reviews", "version": "/"}},
        },
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop", "labels": []}},
        {
            "apiVersion": "gateway.networking.k8s.io/v1",
            "kind": "HTTPRoute",
            "metadata": {"namespace": "shop"},
            "spec": {
                "parentRefs": [{"name": "web", "sectionName": ["x"]}, {"kind": "Service"}],
                "rules": [
                    {
                        "matches": [{"path": {"type": ["x"]}, "headers": [{"value": 1}]}],
                        "backendRefs": [{"name": "a", "weight": "x"}, {"name": "b", "weight": -1}],
                        "filters": [
                            {
                                "type": "RequestMirror",
                                "requestMirror": {
                                    "backendRef": {"name": "c"},
                                    "fraction": {"numerator": "x", "denominator": 0},
                                },
                            }
                        ],
                    }
                ],
            },
        },
        {
            "apiVersion": "gateway.networking.k8s.io/v1",
            "kind": "Gateway",
            "metadata": {"name": "web"},
            "spec": {"gatewayClassName": "istio-waypoint", "listeners": [{"name": 1}, 2]},
        },
    ],
)
def test_foreign_or_malformed_objects_do_not_break_the_graph(junk: dict[str, Any]) -> None:
    drawn = build_graph([*manifests(), junk])
    assert ("service", "shop/reviews") in drawn.nodes
    to_mermaid(drawn)
    to_dot(drawn)


KEYS = st.sampled_from(
    ["hosts", "gateways", "http", "match", "route", "destination", "host", "subset", "weight",
     "headers", "uri", "prefix", "exact", "mirror", "mirrorPercentage", "value", "subsets",
     "name", "selector", "matchLabels", "app", "action", "rules", "from", "source",
     "principals", "namespaces", "notRequestPrincipals", "to", "operation", "paths",
     "parentRefs", "hostnames", "rules", "matches", "backendRefs", "filters", "type",
     "requestMirror", "backendRef", "percent", "fraction", "numerator", "denominator",
     "path", "method", "group", "kind", "namespace", "sectionName", "targetRefs",
     "targetRef", "labels", "istio.io/use-waypoint", "istio.io/use-waypoint-namespace",
     "version", "gatewayClassName", "listeners", "hostname"]
)  # fmt: skip
json_junk = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=5)),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(KEYS, inner, max_size=4)),
    max_leaves=25,
)
LABEL = r'"[^"\n]*"'
MERMAID_LINE = re.compile(
    rf"^  subgraph ns\d+\[{LABEL}\]$|^  end$"
    rf"|^ +n\d+(\{{\{{{LABEL}\}}\}}|\(\[{LABEL}\]\)|\[\[{LABEL}\]\]|\[{LABEL}\]|\({LABEL}\)"
    rf"|>{LABEL}\])$"
    rf"|^  n\d+ (-->|-\.->|==>)(\|{LABEL}\|)? n\d+$"
)
"""The lines `to_mermaid` writes: subgraphs, nodes of each shape, edges of each kind."""
junk_manifests = st.fixed_dictionaries(
    {
        "apiVersion": st.sampled_from(
            [
                "networking.istio.io/v1",
                "security.istio.io/v1",
                "gateway.networking.k8s.io/v1",
                "v1",
            ]
        ),
        "kind": st.sampled_from(
            [
                "VirtualService",
                "DestinationRule",
                "AuthorizationPolicy",
                "HTTPRoute",
                "Gateway",
                "Service",
                "Namespace",
            ]
        ),
        "metadata": st.one_of(json_junk, st.just({"name": "x", "namespace": "shop"})),
        "spec": json_junk,
    }
)


@settings(max_examples=300, deadline=None)
@given(st.lists(junk_manifests, max_size=4))
def test_any_objects_give_a_graph_never_a_crash(objects: list[dict[str, Any]]) -> None:
    drawn = build_graph([*CATALOG_MANIFESTS, *objects])
    assert ("service", "shop/reviews") in drawn.nodes
    first, *lines = to_mermaid(drawn).splitlines()
    assert first == "flowchart LR"
    assert all(MERMAID_LINE.match(line) for line in lines), lines
    assert to_dot(drawn).startswith("digraph mesh {")


def test_mermaid_declares_every_node_it_links() -> None:
    text = to_mermaid(build_graph(manifests()))
    lines = text.splitlines()
    assert lines[0] == "flowchart LR"
    declared = set(re.findall(r"^\s+(n\d+)[\[\(\{>]", text, re.MULTILINE))
    linked = re.findall(r"^\s+(n\d+) [-=.]+>(?:\|\"[^\"]*\"\|)? (n\d+)$", text, re.MULTILINE)
    assert len(linked) == len(build_graph(manifests()).edges)
    assert {node for pair in linked for node in pair} <= declared
    assert text.count("subgraph") == text.count("\n  end")
    assert '{{"gateway ingress"}}' in text
    assert '-.->|"mirror 10%"|' in text


def test_labels_are_escaped() -> None:
    policy = {
        "apiVersion": "security.istio.io/v1",
        "kind": "AuthorizationPolicy",
        "metadata": {"namespace": "shop"},
        "spec": {
            "selector": {"matchLabels": {"app": "x"}},
            "rules": [
                {
                    "from": [{"source": {"namespaces": ["a"]}}],
                    "to": [{"operation": {"paths": ['/q"#1']}}],
                }
            ],
        },
    }
    drawn = build_graph([policy])
    assert '|"/q#quot;#35;1"|' in to_mermaid(drawn)
    assert 'label="/q\\"#1"' in to_dot(drawn)


def test_dot_is_a_digraph_with_clusters_per_namespace() -> None:
    text = to_dot(build_graph(manifests()))
    assert text.startswith("digraph mesh {\n  rankdir=LR;")
    assert text.count("{") == text.count("}")
    assert 'label="namespace shop";' in text
    assert "style=dashed" in text  # the mirror


def test_drawings_are_stable() -> None:
    assert to_mermaid(build_graph(manifests())) == to_mermaid(build_graph(reversed(manifests())))


# --------------------------------------------------------------------------------------
# The command
# --------------------------------------------------------------------------------------


def registered(manifest: dict[str, Any]) -> Registered:
    """A manifest as the program under mocks records it."""
    type_ = f"kubernetes:{manifest['apiVersion']}:{manifest['kind']}"
    name = manifest["metadata"]["name"]
    return Registered(type_, name, f"urn:{name}", None, True, dict(manifest))


def test_main_draws_what_the_stack_declares(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    seen: dict[str, Any] = {}

    def run_stack(**arguments: Any) -> ProgramRun:
        seen.update(arguments)
        return ProgramRun("dev", [registered(m) for m in manifests()], {})

    monkeypatch.setattr("mesh.cli.run_stack", run_stack)
    assert mesh_graph.main(["--stack", "dev"]) == 0
    assert seen["stack"] == "dev"
    assert capsys.readouterr().out == to_mermaid(build_graph(manifests()))
    assert mesh_graph.main(["--stack-file", "Pulumi.dev.yaml", "--format", "dot"]) == 0
    assert seen["stack_file"] == Path("Pulumi.dev.yaml")
    assert capsys.readouterr().out == to_dot(build_graph(manifests()))


def test_main_reports_a_missing_stack(capsys: pytest.CaptureFixture[str]) -> None:
    assert mesh_graph.main(["--stack", "no-such-stack"]) == 2
    assert (
        "no stack 'no-such-stack': Pulumi.no-such-stack.yaml is not in" in capsys.readouterr().err
    )


def test_main_on_the_real_dev_stack(capsys: pytest.CaptureFixture[str]) -> None:
    assert mesh_graph.main(["--stack", "dev"]) == 0
    assert capsys.readouterr().out.startswith("flowchart LR\n")


# --------------------------------------------------------------------------------------
# Ambient's waypoints and the Gateway API
# --------------------------------------------------------------------------------------

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "graph"


def fixture(name: str) -> list[dict[str, Any]]:
    """The objects of `tests/fixtures/graph/<name>.yaml`, shaped as the stack emits them."""
    return [doc for doc in yaml.safe_load_all((FIXTURES / f"{name}.yaml").read_text()) if doc]


def gateway_api(kind: str, name: str, namespace: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": kind,
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def core(kind: str, name: str, labels: dict[str, str], **metadata: str) -> dict[str, Any]:
    """A Namespace or Service with `labels` (a Service's `spec.selector` too)."""
    spec = {"selector": labels} if kind == "Service" else {}
    return {
        "apiVersion": "v1",
        "kind": kind,
        "metadata": {"name": name, "labels": labels, **metadata},
        "spec": spec,
    }


def mesh_route(service: str, backends: list[dict[str, Any]], **rule: Any) -> dict[str, Any]:
    """An HTTPRoute in `store` parented to the Service `service` (GAMMA)."""
    parent = {"group": "", "kind": "Service", "name": service, "port": 9080}
    return gateway_api(
        "HTTPRoute",
        service,
        "store",
        {"parentRefs": [parent], "rules": [{"backendRefs": backends, **rule}]},
    )


def nodes_of(graph: mesh_graph.Graph, kind: str) -> set[str]:
    return {key for node_kind, key in graph.nodes if node_kind == kind}


AMBIENT_EDGES = {
    # the waypoint serves the namespace's services
    ("store/waypoint", "serves", "", "store/reviews"),
    ("store/waypoint", "serves", "", "store/ratings"),
    # the HTTPRoute parented to the Service: header route, split, mirror
    ("store/reviews", "route", "x-canary=true /x*", "store/reviews/v2"),
    ("store/reviews", "route", "80%", "store/reviews/v1"),
    ("store/reviews", "route", "20%", "store/reviews/v2"),
    ("store/reviews", "mirror", "mirror 10%", "store/reviews/v2"),
    # callers, from policies attached with targetRefs
    ("shop/productpage", "allow", "GET /reviews*", "store/reviews"),
    ("batch/*", "allow", "", "store/ratings"),
}


def test_an_ambient_namespace_with_its_waypoint_and_httproutes() -> None:
    graph = build_graph(fixture("ambient"))
    assert edges_by_label(graph.edges) == AMBIENT_EDGES
    waypoint = graph.nodes[("waypoint", "store/waypoint")]
    assert (waypoint.label, waypoint.namespace) == ("waypoint", "store")
    # Version Services are the subsets of the service their selector's `app` names.
    assert nodes_of(graph, "service") == {"store/reviews", "store/ratings"}
    assert nodes_of(graph, "subset") == {"store/reviews/v1", "store/reviews/v2"}
    # The waypoint's way in (allow-waypoint) and its default deny are plumbing: no caller
    # `sa waypoint` for every service, no service named after the waypoint Gateway.
    assert nodes_of(graph, "caller") == {"shop/productpage", "batch/*"}
    assert graph.nodes[("service", "store/reviews")].label == "reviews (JWT required)"
    assert graph.nodes[("service", "store/ratings")].label == "ratings"


INGRESS_EDGES = {
    ("istio-web/web", "serves", "", "shop.example.com"),
    ("shop.example.com", "route", "/reviews*", "store/reviews"),
    ("shop.example.com", "route", "/ or /product*", "shop/productpage"),
}


def test_a_gateway_api_ingress_with_its_routes() -> None:
    versions = [doc for doc in fixture("ambient") if doc["kind"] == "Service"]
    graph = build_graph([*fixture("gateway-api-ingress"), *versions])
    assert edges_by_label(graph.edges) == INGRESS_EDGES | {
        # the split at the gateway, across version Services
        ("store/reviews", "route", "80%", "store/reviews/v1"),
        ("store/reviews", "route", "20%", "store/reviews/v2"),
    }
    gateway = graph.nodes[("gateway", "istio-web/web")]
    assert (gateway.label, gateway.namespace) == ("gateway web", "istio-web")
    # The HTTP listener's redirect route draws nothing: no host `*`, no service.
    assert nodes_of(graph, "host") == {"shop.example.com"}
    assert nodes_of(graph, "service") == {"store/reviews", "shop/productpage"}


def test_a_version_service_not_in_the_input_is_a_service_of_its_own() -> None:
    graph = build_graph(fixture("gateway-api-ingress"))
    assert edges_by_label(graph.edges) == {
        ("istio-web/web", "serves", "", "shop.example.com"),
        ("shop.example.com", "route", "/reviews*", "store/reviews-v1"),
        ("shop.example.com", "route", "/reviews*", "store/reviews-v2"),
        ("shop.example.com", "route", "/ or /product*", "shop/productpage"),
    }


def test_a_sidecar_namespace_beside_an_ambient_one() -> None:
    """VirtualServices in `shop`, HTTPRoutes and a waypoint in `store`, one ingress of
    each API: each drawn as alone, and the waypoint serves `store` only."""
    alone = [
        build_graph(manifests()),
        build_graph(fixture("ambient")),
        build_graph(fixture("gateway-api-ingress") + fixture("ambient")),
    ]
    everything = [*manifests(), *fixture("ambient"), *fixture("gateway-api-ingress")]
    mixed = build_graph(everything)
    assert edges_by_label(mixed.edges) == set().union(*(edges_by_label(g.edges) for g in alone))
    assert {edge.target[1] for edge in mixed.edges if edge.source[0] == "waypoint"} == {
        "store/reviews",
        "store/ratings",
    }
    assert nodes_of(mixed, "gateway") == {GATEWAY, "istio-web/web"}
    # Routes come before the Services and Gateways they name: the same picture.
    assert to_mermaid(mixed) == to_mermaid(build_graph(reversed(everything)))


def test_the_fixtures_are_valid_against_the_reference_crds(reference_dir: Path) -> None:
    """Drawn from objects Istio and the Gateway API accept, not from look-alikes."""
    istio, gateway_api_crds = load_reference(reference_dir), load_gateway_api_reference()
    objects = [*fixture("ambient"), *fixture("gateway-api-ingress")]
    checked = 0
    for obj in objects:
        group = obj["apiVersion"].split("/")[0]
        reference = {"gateway.networking.k8s.io": gateway_api_crds}.get(group)
        if reference is None and group.endswith("istio.io"):
            reference = istio
        if reference is not None:
            assert reference.validate(obj) == [], obj["metadata"]
            checked += 1
    assert checked == len([o for o in objects if o["apiVersion"] != "v1"]) >= 10


def test_httproute_weights_are_relative_and_default_to_one() -> None:
    two = [{"name": "ratings-v1", "port": 9080}, {"name": "ratings-v2", "port": 9080}]
    versions = [
        core("Service", f"ratings-{v}", {"app": "ratings", "version": v}, namespace="store")
        for v in ("v1", "v2", "v3")
    ]
    cases = {
        "default": mesh_route("ratings", two),
        "relative": mesh_route("ratings", [two[0] | {"weight": 4}, two[1] | {"weight": 1}]),
        "alone": mesh_route("ratings", [two[0] | {"weight": 7}]),
        "thirds": mesh_route("ratings", [*two, {"name": "ratings-v3", "port": 9080}]),
        "none": mesh_route("ratings", [two[0] | {"weight": 0}, two[1] | {"weight": 0}]),
        "self": mesh_route("ratings", [{"name": "ratings", "port": 9080}]),
        "mixed": mesh_route("ratings", [two[0] | {"weight": 3}, two[1]]),
        "other namespace": mesh_route(
            "ratings", [{"name": "ratings-v1", "namespace": "shop"}, {"name": "ratings-v2"}]
        ),
        # Not weights (foreign manifests): each counts as the default.
        "junk": mesh_route(
            "ratings",
            [two[0] | {"weight": w} for w in ("x", float("inf"), 10**400, -1, True)],
        ),
        "conditions": mesh_route("ratings", two, matches=[{"method": "POST"}]),
    }
    drawn = {
        name: {
            (edge.label, edge.target[1])
            for edge in build_graph([route, *versions]).edges
            if edge.label != "no route"
        }
        for name, route in cases.items()
    }
    assert drawn == {
        "default": {("50%", "store/ratings/v1"), ("50%", "store/ratings/v2")},
        "relative": {("80%", "store/ratings/v1"), ("20%", "store/ratings/v2")},
        "alone": {("100%", "store/ratings/v1")},
        "thirds": {("33.3%", f"store/ratings/{v}") for v in ("v1", "v2", "v3")},
        "none": {("0%", "store/ratings/v1"), ("0%", "store/ratings/v2")},
        # A route to the Service itself (timeouts, retries) splits nothing.
        "self": set(),
        "mixed": {("75%", "store/ratings/v1"), ("25%", "store/ratings/v2")},
        "other namespace": {("50%", "shop/ratings-v1"), ("50%", "store/ratings/v2")},
        "junk": {("20%", "store/ratings/v1")},
        "conditions": {("POST 50%", "store/ratings/v1"), ("POST 50%", "store/ratings/v2")},
    }
    # Version Services no rule routes to are drawn as unrouted subsets.
    alone = edges_by_label(build_graph([cases["alone"], *versions]).edges)
    assert ("store/ratings", "route", "no route", "store/ratings/v2") in alone


def test_httproute_matches_and_mirror_fractions() -> None:
    route = mesh_route(
        "ratings",
        [{"name": "ratings-v2", "port": 9080}],
        matches=[
            {
                "headers": [
                    {"name": "x-user", "value": "^a.*", "type": "RegularExpression"},
                    {"name": "x-canary", "value": "true"},
                ],
                "method": "GET",
            },
            {"path": {"type": "Exact", "value": "/health"}},
            {"path": {"value": "/api"}},
        ],
        filters=[
            # Only RequestMirror filters mirror, whatever else a filter carries.
            {"type": "ExtensionRef", "requestMirror": {"backendRef": {"name": "not-this"}}},
            {
                "type": "RequestMirror",
                "requestMirror": {
                    "backendRef": {"name": "ratings-v1", "port": 9080},
                    "fraction": {"numerator": 1, "denominator": 4},
                },
            },
            {"type": "RequestMirror", "requestMirror": {"backendRef": {"name": "shadow"}}},
            {"type": "RequestMirror", "requestMirror": {"fraction": {"numerator": 5}}},
            {
                "type": "RequestMirror",
                "requestMirror": {"backendRef": {"name": "twin"}, "fraction": {"numerator": 5}},
            },
        ],
    )
    assert edges_by_label(build_graph([route]).edges) == {
        (
            "store/ratings",
            "route",
            "x-canary=true x-user=~^a.* GET or /health or /api*",
            "store/ratings-v2",
        ),
        ("store/ratings", "mirror", "mirror 25%", "store/ratings-v1"),
        ("store/ratings", "mirror", "mirror 100%", "store/shadow"),
        ("store/ratings", "mirror", "mirror 5%", "store/twin"),
    }


def test_which_waypoint_serves_a_service() -> None:
    """The namespace's label, unless the Service's own names another waypoint or `none`;
    a namespace without the label has no waypoint, even beside a waypoint Gateway."""
    objects = [
        core("Namespace", "store", {"istio.io/use-waypoint": "waypoint"}),
        core("Namespace", "batch", {"istio.io/dataplane-mode": "ambient"}),
        core(
            "Namespace",
            "cart",
            {"istio.io/use-waypoint": "shared", "istio.io/use-waypoint-namespace": "infra"},
        ),
        core("Service", "ratings", {"istio.io/use-waypoint": "none"}, namespace="store"),
        core("Service", "details", {"istio.io/use-waypoint": "details-wp"}, namespace="store"),
        gateway_api("Gateway", "waypoint", "batch", {"gatewayClassName": "istio-waypoint"}),
        gateway_api("Gateway", "web", "batch", {"gatewayClassName": "istio"}),
        # A service known by its host name only, drawn first: in no namespace, no waypoint.
        mesh_route(
            "reviews", [{"group": "networking.istio.io", "kind": "Hostname", "name": "a.io"}]
        ),
        *[
            mesh_route(name, [{"name": name}]) | {"metadata": {"name": name, "namespace": ns}}
            for name, ns in [
                ("reviews", "store"),
                ("ratings", "store"),
                ("details", "store"),
                ("jobs", "batch"),
                ("checkout", "cart"),
            ]
        ],
    ]
    graph = build_graph(objects)
    assert edges_by_label(graph.edges) == {
        ("store/reviews", "route", "100%", "a.io"),
        ("store/waypoint", "serves", "", "store/reviews"),
        ("store/details-wp", "serves", "", "store/details"),
        ("infra/shared", "serves", "", "cart/checkout"),
    }
    assert graph.nodes[("waypoint", "store/details-wp")].label == "waypoint details-wp"
    assert graph.nodes[("waypoint", "infra/shared")].namespace == "infra"
    # A waypoint Gateway is drawn though nothing uses it; an ingress Gateway is not.
    assert nodes_of(graph, "waypoint") == {
        "store/waypoint",
        "store/details-wp",
        "infra/shared",
        "batch/waypoint",
    }
    assert nodes_of(graph, "gateway") == set()


def test_a_route_without_hostnames_serves_its_listeners_hosts() -> None:
    gateway = fixture("gateway-api-ingress")[0]
    parent = {"name": "web", "namespace": "istio-web"}
    backends = [{"name": "productpage", "port": 9080}]
    cases = {
        "all listeners": parent,
        "http": parent | {"sectionName": "http"},
        "https-0": parent | {"sectionName": "https-0"},
        "unknown gateway": {"name": "other", "namespace": "istio-web"},
        "own hostnames": parent | {"sectionName": "https-0"},
    }
    hosts = {
        name: nodes_of(
            build_graph(
                [
                    gateway,
                    gateway_api(
                        "HTTPRoute",
                        "productpage",
                        "shop",
                        {
                            "parentRefs": [{"namespace": "unnamed"}, ref],
                            "rules": [{"backendRefs": backends}],
                        }
                        | ({"hostnames": ["api.example.com"]} if name == "own hostnames" else {}),
                    ),
                ]
            ),
            "host",
        )
        for name, ref in cases.items()
    }
    assert hosts == {
        "all listeners": {"*", "shop.example.com"},
        "http": {"*"},
        "https-0": {"shop.example.com"},
        "unknown gateway": {"*"},
        "own hostnames": {"api.example.com"},
    }


def test_policies_attach_by_selector_or_by_service_target_refs_only() -> None:
    def policy(**spec: Any) -> dict[str, Any]:
        rules = [{"from": [{"source": {"namespaces": ["batch"]}}]}]
        return {
            "apiVersion": "security.istio.io/v1",
            "kind": "AuthorizationPolicy",
            "metadata": {"name": "p", "namespace": "store"},
            "spec": {"action": "ALLOW", "rules": rules, **spec},
        }

    graph = build_graph(
        [
            policy(targetRef={"kind": "Service", "name": "details"}),
            policy(targetRefs=[{"kind": "Service", "name": "a"}, {"kind": "Service", "name": "b"}]),
            policy(
                targetRefs=[{"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "w"}]
            ),
            policy(targetRefs=[{"group": "apps", "kind": "Service", "name": "odd"}]),
            policy(),
        ]
    )
    assert edges_by_label(graph.edges) == {
        ("batch/*", "allow", "", f"store/{name}") for name in ("details", "a", "b")
    }


def test_mermaid_and_dot_draw_waypoints() -> None:
    graph = build_graph(fixture("ambient"))
    mermaid, dot = to_mermaid(graph), to_dot(graph)
    waypoint = re.search(r'^    (n\d+)\[\["waypoint"\]\]$', mermaid, re.MULTILINE)
    assert waypoint is not None
    assert mermaid.count(f"  {waypoint[1]} --> ") == 2
    assert re.search(r'\[label="waypoint", shape=component\];', dot)


def test_a_gateway_route_splits_by_headers_and_weights() -> None:
    """At a gateway, the path labels host -> service; other conditions and the shares
    label service -> version, as a mesh route's do."""
    parent = {"name": "web", "namespace": "istio-web"}
    versions = [
        core("Service", f"reviews-{v}", {"app": "reviews", "version": v}, namespace="store")
        for v in ("v1", "v2")
    ]
    canary = {"headers": [{"name": "x-canary", "value": "true"}], "path": {"value": "/r"}}
    rules = [
        {"matches": [canary], "backendRefs": [{"name": "reviews-v2"}]},
        {
            "matches": [{"headers": [{"name": "x-beta", "value": "1"}]}],
            "backendRefs": [{"name": "reviews-v1"}, {"name": "reviews-v2", "weight": 3}],
            "filters": [
                {
                    "type": "RequestMirror",
                    "requestMirror": {"backendRef": {"name": "shadow"}, "percent": 10},
                }
            ],
        },
    ]
    route = gateway_api("HTTPRoute", "reviews", "store", {"parentRefs": [parent], "rules": rules})
    assert edges_by_label(build_graph([route, *versions]).edges) == {
        ("istio-web/web", "serves", "", "*"),
        ("*", "route", "/r*", "store/reviews"),
        ("*", "route", "/*", "store/reviews"),
        ("store/reviews", "route", "x-canary=true", "store/reviews/v2"),
        ("store/reviews", "route", "x-beta=1 25%", "store/reviews/v1"),
        ("store/reviews", "route", "x-beta=1 75%", "store/reviews/v2"),
        ("store/reviews", "mirror", "mirror 10%", "store/shadow"),
    }


def test_the_destination_rule_of_a_version_service_is_the_versions_not_a_service() -> None:
    """The stack gives each version Service the service's traffic policy: that rule must
    not draw `storefront-v1` as a service of its own beside version v1 of storefront."""
    from tests.conftest import stack_run

    nodes = build_graph(stack_run("dev").manifests()).nodes
    services = {key for kind, key in nodes if kind == "service"}
    assert "store/storefront" in services
    assert not {key for key in services if key.startswith("store/storefront-")}
    assert {key for kind, key in nodes if kind == "subset" and "storefront" in key} == {
        "store/storefront/v1",
        "store/storefront/v2",
    }


# --------------------------------------------------------------------------------------
# Clusters and the east-west path (issue 15)
# --------------------------------------------------------------------------------------

MULTI = Path(__file__).resolve().parent / "fixtures" / "stacks" / "Pulumi.multi.yaml"


def system_namespace(network: str | None) -> dict[str, Any]:
    labels = {} if network is None else {naming.NETWORK_LABEL: network}
    return core("Namespace", naming.ISTIO_SYSTEM, labels)


def cluster_objects(network: str | None, east_west: bool = True) -> list[dict[str, Any]]:
    """One cluster's objects: the catalog, istio-system with its network, and the
    east-west gateway's `cross-network-gateway` where there is one."""
    gateway = [cross_network_gateway()] if east_west else []
    return [*manifests(), system_namespace(network), *gateway]


def on_provider(manifest: dict[str, Any], provider: str) -> Registered:
    """A manifest as the program records it on a cluster's kubernetes provider."""
    found = registered(manifest)
    found.provider = f"urn:pulumi:s::istio-mesh::pulumi:providers:kubernetes::{provider}::id"
    return found


def test_a_stack_with_clusters_draws_a_box_per_cluster_and_the_east_west_path() -> None:
    graph = build_mesh_graph(
        {"east": cluster_objects("net-east"), "west": cluster_objects("net-west")}
    )
    assert graph.clusters == {"east": "net-east", "west": "net-west"}
    single = build_graph(manifests())
    for cluster in ("east", "west"):
        nodes = {key for key, node in graph.nodes.items() if node.cluster == cluster}
        # the whole mesh in each cluster, and its east-west gateway
        assert nodes == {(kind, f"{cluster}/{key}") for kind, key in single.nodes} | {
            ("eastwest", f"{cluster}/istio-system/cross-network-gateway")
        }
    assert {edge for edge in graph.edges if edge.kind == "eastwest"} == {
        Edge(
            ("eastwest", "east/istio-system/cross-network-gateway"),
            ("eastwest", "west/istio-system/cross-network-gateway"),
            "eastwest",
            "net-east <-> net-west 15443 mTLS passthrough",
        )
    }
    mermaid = to_mermaid(graph)
    assert '  subgraph c0["cluster east (net-east)"]' in mermaid
    assert '  subgraph c1["cluster west (net-west)"]' in mermaid
    assert '    subgraph c0ns0["namespace istio-ingress"]' in mermaid
    assert mermaid.count('"namespace shop"') == 2
    assert mermaid.count('{{"east-west gateway"}}') == 2
    assert re.search(
        r'\n  n\d+ <-->\|"net-east <-> net-west 15443 mTLS passthrough"\| n\d+\n', mermaid
    )
    assert mermaid.count("subgraph") == mermaid.count("end\n")
    dot = to_dot(graph)
    assert '  subgraph cluster_c0 {\n    label="cluster east (net-east)";' in dot
    assert '    subgraph cluster_c1_0 {\n      label="namespace istio-ingress";' in dot
    assert dot.count("{") == dot.count("}")
    assert 'label="net-east <-> net-west 15443 mTLS passthrough", dir=both' in dot
    document = json.loads(to_json(graph))
    assert document["clusters"] == {"east": "net-east", "west": "net-west"}
    assert {node["cluster"] for node in document["nodes"]} == {"east", "west"}
    assert [edge["kind"] for edge in document["edges"]].count("eastwest") == 1


def test_clusters_on_one_network_have_no_east_west_path() -> None:
    graph = build_mesh_graph(
        {
            "east": cluster_objects("net-1"),
            "west": cluster_objects("net-1"),
            "north": cluster_objects(None),  # istio-system without a network label
            "south": cluster_objects("net-2", east_west=False),
        }
    )
    assert graph.clusters == {"east": "net-1", "west": "net-1", "north": None, "south": "net-2"}
    assert not [edge for edge in graph.edges if edge.kind == "eastwest"]
    assert '  subgraph c0["cluster east (net-1)"]' in to_mermaid(graph)
    assert '["cluster north"]' in to_mermaid(graph)


def test_an_east_west_path_per_pair_of_networks() -> None:
    graph = build_mesh_graph({name: cluster_objects(f"net-{name}") for name in ("a", "b", "c")})
    assert sorted(
        (edge.source[1].split("/")[0], edge.target[1].split("/")[0], edge.label)
        for edge in graph.edges
        if edge.kind == "eastwest"
    ) == [
        ("a", "b", "net-a <-> net-b 15443 mTLS passthrough"),
        ("a", "c", "net-a <-> net-c 15443 mTLS passthrough"),
        ("b", "c", "net-b <-> net-c 15443 mTLS passthrough"),
    ]


def test_only_an_istio_gateway_with_auto_passthrough_is_an_east_west_gateway() -> None:
    ingress = cross_network_gateway()
    ingress["spec"]["servers"][0]["tls"] = {"mode": "SIMPLE"}
    foreign = {**cross_network_gateway(), "apiVersion": "gateway.networking.k8s.io/v1"}
    objects = [system_namespace("net-a"), ingress, foreign]
    graph = build_mesh_graph({"a": objects, "b": [system_namespace("net-b"), ingress]})
    assert graph.clusters == {"a": "net-a", "b": "net-b"}
    assert nodes_of(graph, "eastwest") == set()
    assert not graph.edges


def test_a_stack_without_clusters_draws_as_before() -> None:
    single = build_mesh_graph({None: manifests()})
    assert single == build_graph(manifests())
    assert single.clusters == {}
    assert to_mermaid(single) == to_mermaid(build_graph(manifests()))
    assert to_dot(single) == to_dot(build_graph(manifests()))
    assert '"cluster"' not in to_json(single)
    assert build_mesh_graph({}) == mesh_graph.Graph()
    # resources on the single provider of a stack without clusters have no cluster
    assert mesh_graph.cluster_of(None) is None
    assert (
        mesh_graph.cluster_of("urn:pulumi:s::p::pulumi:providers:kubernetes::kubernetes::id")
        is None
    )
    assert (
        mesh_graph.cluster_of("urn:pulumi:s::p::pulumi:providers:kubernetes::east-kubernetes::id")
        == "east"
    )


def test_main_draws_each_cluster_from_its_provider(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    resources = [
        on_provider(manifest, f"{cluster}-kubernetes")
        for cluster in ("east", "west")
        for manifest in cluster_objects(f"net-{cluster}")
    ]
    resources.append(
        Registered("random:index/randomPassword:RandomPassword", "p", "urn:p", None, True, {})
    )
    monkeypatch.setattr("mesh.cli.run_stack", lambda **_: ProgramRun("multi", resources, {}))
    assert mesh_graph.main(["--stack", "multi"]) == 0
    expected = build_mesh_graph(
        {"east": cluster_objects("net-east"), "west": cluster_objects("net-west")}
    )
    out = capsys.readouterr().out
    assert out == to_mermaid(expected)
    assert '["cluster east (net-east)"]' in out
    assert '["cluster west (net-west)"]' in out


def test_main_on_the_two_cluster_stack_file(capsys: pytest.CaptureFixture[str]) -> None:
    assert mesh_graph.main(["--stack-file", str(MULTI), "--format", "json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["clusters"] == {"east": "net-east", "west": "net-west"}
    east_west = [edge for edge in document["edges"] if edge["kind"] == "eastwest"]
    assert [(e["from"]["key"], e["to"]["key"], e["label"]) for e in east_west] == [
        (
            "east/istio-system/cross-network-gateway",
            "west/istio-system/cross-network-gateway",
            "net-east <-> net-west 15443 mTLS passthrough",
        )
    ]
    for cluster in ("east", "west"):
        services = {
            node["key"]
            for node in document["nodes"]
            if node["kind"] == "service" and node.get("cluster") == cluster
        }
        assert services == {
            f"{cluster}/shop/{name}" for name in ("details", "productpage", "ratings", "reviews")
        }
