"""`python -m mesh graph`: the graph read from manifests, and its Mermaid / DOT drawings."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from components.authorization import (
    allow_rules,
    build_allow_policy,
    build_request_authentication,
    build_require_jwt_policy,
    principal,
)
from components.service_config import ServiceConfig
from components.traffic import (
    build_destination_rule,
    build_gateway_virtual_service,
    build_virtual_service,
)
from mesh import graph as mesh_graph
from mesh.graph import Edge, build_graph, to_dot, to_mermaid
from mesh.program import ProgramRun, Registered

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
     "principals", "namespaces", "notRequestPrincipals", "to", "operation", "paths"]
)  # fmt: skip
json_junk = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=5)),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(KEYS, inner, max_size=4)),
    max_leaves=25,
)
LABEL = r'"[^"\n]*"'
MERMAID_LINE = re.compile(
    rf"^  subgraph ns\d+\[{LABEL}\]$|^  end$"
    rf"|^ +n\d+(\{{\{{{LABEL}\}}\}}|\(\[{LABEL}\]\)|\[{LABEL}\]|\({LABEL}\)|>{LABEL}\])$"
    rf"|^  n\d+ (-->|-\.->|==>)(\|{LABEL}\|)? n\d+$"
)
"""The lines `to_mermaid` writes: subgraphs, nodes of each shape, edges of each kind."""
junk_manifests = st.fixed_dictionaries(
    {
        "apiVersion": st.sampled_from(["networking.istio.io/v1", "security.istio.io/v1"]),
        "kind": st.sampled_from(["VirtualService", "DestinationRule", "AuthorizationPolicy"]),
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
