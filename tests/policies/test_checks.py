"""The pure checks, without gRPC: host names, value reading, linear stack rules."""

from __future__ import annotations

import base64
import functools
import json
import os
from collections.abc import Callable
from typing import Any

import pulumi.runtime
import pytest
from istio_guardrails import (
    authorization,
    binding,
    clusters,
    gateways,
    hosts,
    mtls,
    runtime,
    selection,
    traffic,
)
from istio_guardrails.values import (
    UNKNOWN,
    Resource,
    UnknownValueError,
    boolean,
    from_manifest,
    k8s_type,
    number,
    text,
)
from pulumi_policy.proxy import unknown_checking_proxy


@pytest.mark.parametrize(
    ("host", "namespace", "expected"),
    [
        ("reviews", "shop", "reviews.shop.svc.cluster.local"),
        ("reviews.shop", "web", "reviews.shop.svc.cluster.local"),
        ("reviews.shop.svc", "web", "reviews.shop.svc.cluster.local"),
        ("Reviews.Shop.svc.cluster.local.", "web", "reviews.shop.svc.cluster.local"),
        ("example.com", "shop", "example.com"),
        ("api.example.com", "shop", "api.example.com"),
        ("*.shop.svc.cluster.local", "web", "*.shop.svc.cluster.local"),
        ("*", "web", "*"),
        ("", "web", ""),
        (" ", "web", ""),
        ("shop.svc", "web", "shop.svc"),
        ("reviews.svc.x", "web", "reviews.svc.x"),
        ("a.b.c.svc", "web", "a.b.c.svc"),
        ("reviews.shop.cluster", "web", "reviews.shop.cluster"),
    ],
)
def test_fqdn(host: str, namespace: str, expected: str) -> None:
    assert hosts.fqdn(host, namespace) == expected


def test_in_mesh() -> None:
    assert hosts.in_mesh("reviews", "shop")
    assert hosts.in_mesh("reviews.billing", "shop")
    assert not hosts.in_mesh("github.com", "shop")
    assert not hosts.in_mesh("api.example.com", "shop")
    assert hosts.wildcard_parents("a.b.c") == ["*.b.c", "*.c", "*"]


def test_type_tokens() -> None:
    assert k8s_type("kubernetes:core/v1:Namespace") == ("", "v1", "Namespace")
    assert k8s_type("kubernetes:networking.istio.io/v1alpha3:Gateway") == (
        "networking.istio.io",
        "v1alpha3",
        "Gateway",
    )
    assert k8s_type("istio-mesh:gateway:IngressGateway") is None
    assert from_manifest({"apiVersion": "v1", "kind": "Pod"}).type == "kubernetes:core/v1:Pod"


def test_values_fail_closed_on_plain_data_too() -> None:
    # Plain dicts (no proxy): the helpers still refuse to read a sentinel as a value.
    with pytest.raises(UnknownValueError):
        text(UNKNOWN)
    with pytest.raises(UnknownValueError):
        number("3eeb2bf0-c639-47a8-9e75-3b44932eb421")
    assert text(False) == "false"
    assert text(80.0) == "80"
    assert number(True) is None


def peer_authentication(spec: Any) -> Resource:
    return from_manifest(
        {
            "apiVersion": "security.istio.io/v1",
            "kind": "PeerAuthentication",
            "metadata": {"name": "default", "namespace": "shop"},
            "spec": spec,
        }
    )


def test_peer_authentication_messages() -> None:
    ok = peer_authentication(
        {"mtls": {"mode": "STRICT"}, "portLevelMtls": {"80": {"mode": "UNSET"}}}
    )
    assert list(mtls.peer_authentication_violations(ok, {})) == []
    bad = peer_authentication(
        {"mtls": {"mode": "STRICT"}, "portLevelMtls": {"80": {"mode": "PERMISSIVE"}}}
    )
    assert list(mtls.peer_authentication_violations(bad, {})) == [
        "spec.portLevelMtls.80.mode is PERMISSIVE; set it to STRICT (or remove the port entry)"
    ]


def test_the_pack_proxy_reports_the_full_path_of_an_unknown() -> None:
    resource = peer_authentication({"mtls": {"mode": UNKNOWN}})
    proxied = resource._replace(props=unknown_checking_proxy(dict(resource.props)))
    with pytest.raises(UnknownValueError) as raised:
        list(mtls.peer_authentication_violations(proxied, {}))
    assert raised.value.props == ["spec", "mtls", "mode"]


def test_unknown_in_one_resource_does_not_hide_the_others() -> None:
    rules = [
        from_manifest(
            {
                "apiVersion": "networking.istio.io/v1",
                "kind": "DestinationRule",
                "metadata": {"name": name, "namespace": "shop"},
                "spec": {"host": host, "subsets": [{"name": "v1"}]},
            },
            urn=name,
        )
        for name, host in (("known", "reviews"), ("unknown", UNKNOWN))
    ]
    route = from_manifest(
        {
            "apiVersion": "networking.istio.io/v1",
            "kind": "VirtualService",
            "metadata": {"name": "vs", "namespace": "shop"},
            "spec": {"http": [{"route": [{"destination": {"host": "reviews", "subset": "v2"}}]}]},
        },
        urn="vs",
    )
    found = list(traffic.subset_violations([*rules, route], {}))
    assert [urn for urn, _ in found] == ["unknown", "vs"]


@functools.cache
def generated_mesh(services: int) -> list[Resource]:
    """A stack of `services` services spread over 20 namespaces, each with route,
    subsets, namespace, default deny and gateway objects."""
    resources: list[Resource] = []
    for index in range(services):
        namespace = f"ns-{index % 20}"
        name = f"svc-{index}"

        def add(kind: str, api: str, meta_name: str, spec: Any, ns: str | None = namespace) -> None:
            metadata = {"name": meta_name, **({"namespace": ns} if ns else {})}
            resources.append(
                from_manifest(
                    {"apiVersion": api, "kind": kind, "metadata": metadata, "spec": spec},
                    urn=f"{kind}/{ns}/{meta_name}",
                )
            )

        subsets = [{"name": "v1"}, {"name": "v2"}]
        add("DestinationRule", "networking.istio.io/v1", name, {"host": name, "subsets": subsets})
        route = [
            {"destination": {"host": name, "subset": "v1"}, "weight": 80},
            {"destination": {"host": name, "subset": "v2"}, "weight": 20},
        ]
        add(
            "VirtualService",
            "networking.istio.io/v1",
            name,
            {"hosts": [name], "http": [{"route": route}]},
        )
        add("Gateway", "networking.istio.io/v1", name, {"selector": {"istio": f"gw-{index % 5}"}})
        add(
            "Deployment",
            "apps/v1",
            name,
            {"template": {"metadata": {"labels": {"istio": f"gw-{index % 5}", "app": name}}}},
        )
        add("Namespace", "v1", f"{name}-ns", {}, ns=None)
        add("AuthorizationPolicy", "security.istio.io/v1", "default-deny", {}, ns=f"{name}-ns")
    return resources


STACK_CHECKS: dict[str, Callable[..., Any]] = {
    "virtual-service-subsets-exist": traffic.subset_violations,
    "gateway-selector-matches": gateways.selector_violations,
    "namespace-default-deny": authorization.default_deny_violations,
    "mesh-wide-strict-mtls": mtls.mesh_wide_strict_violations,
}
CONFIG = {"externalGateways": [], "systemNamespaces": [], "rootNamespace": "istio-system"}


@pytest.mark.parametrize("rule", sorted(STACK_CHECKS))
def test_stack_rules_pass_a_large_clean_mesh(rule: str) -> None:
    # Their cost as the mesh grows is measured by the benchmark, not by a timed test.
    assert list(STACK_CHECKS[rule](generated_mesh(400), CONFIG)) == []


def test_the_stack_config_is_applied_once_then_not_parsed_per_call(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # pulumi-policy re-parses PULUMI_CONFIG at the start of every call; the pack applies
    # it once at start-up, so those re-parses find nothing while the values stay set.
    key = "istio-mesh:policy-probe"
    monkeypatch.setenv("PULUMI_CONFIG", json.dumps({key: '{"services": []}'}))
    try:
        runtime.apply_stack_config_once()
        assert "PULUMI_CONFIG" not in os.environ
        assert pulumi.runtime.get_config_env() == {}
        assert pulumi.runtime.get_config(key) == '{"services": []}'
    finally:
        pulumi.runtime.config.CONFIG.get().pop(key, None)


def test_the_pack_and_the_program_retire_the_same_image_hubs() -> None:
    # The pack runs in its own virtualenv with its own copy (STYLE: copies held equal).
    from istio_guardrails import images

    from components import naming

    assert images.RETIRED_HUBS == naming.RETIRED_HUBS
    assert images.CURRENT_HUB == naming.IMAGE_HUB


def test_an_image_is_retired_by_its_location_not_by_a_prefix_of_a_name() -> None:
    from istio_guardrails.images import retired

    assert retired("gcr.io/istio-release/pilot:1.30.5")
    assert retired("registry.istio.io/release")
    assert not retired("gcr.io/istio-release-mirror/pilot:1.30.5")
    assert not retired("docker.io/istio/pilot:1.30.5")


def test_forbid_all_wildcards_refuses_even_one_domain_wildcards() -> None:
    resource = from_manifest(
        {
            "apiVersion": "networking.istio.io/v1",
            "kind": "VirtualService",
            "metadata": {"name": "static", "namespace": "shop"},
            "spec": {"hosts": ["*.static.example.com", "shop.example.com"]},
        }
    )
    assert list(gateways.wildcard_host_violations(resource, {})) == []
    [violation] = gateways.wildcard_host_violations(resource, {"forbidAllWildcards": True})
    assert violation.startswith("spec.hosts[0] is *.static.example.com: wildcard hosts are")


def _virtual_service(http: list[dict[str, Any]]) -> Resource:
    return from_manifest(
        {
            "apiVersion": "networking.istio.io/v1",
            "kind": "VirtualService",
            "metadata": {"name": "vs", "namespace": "shop"},
            "spec": {"hosts": ["reviews"], "http": http},
        }
    )


def _route(*matches: dict[str, Any]) -> dict[str, Any]:
    return {"match": list(matches), "route": [{"destination": {"host": "reviews"}}]}


def test_a_match_is_covered_only_when_every_earlier_condition_follows_from_it() -> None:
    def covered(earlier: dict[str, Any], later: dict[str, Any]) -> list[str]:
        return list(
            binding.match_violations(_virtual_service([_route(earlier), _route(later)]), {})
        )

    api = {"uri": {"prefix": "/api"}}
    [message] = covered(api, {"uri": {"prefix": "/api/v2"}, "method": {"exact": "GET"}})
    assert message.startswith("spec.http[1].match[0] is covered by the earlier match ")
    assert "spec.http[0].match[0]" in message and "IST0131" in message
    assert covered(api, {"uri": {"exact": "/api/cart"}})
    assert covered({**api, "name": "a"}, {**api, "name": "b"})[0].startswith(
        "spec.http[1].match[0] repeats the match spec.http[0].match[0]"
    )
    # The later match must meet every condition of the earlier one.
    assert not covered({**api, "port": 8080}, {"uri": {"prefix": "/api/v2"}})
    assert not covered({"uri": {"prefix": "/api/v2"}}, api)
    assert not covered({"uri": {"exact": "/api"}}, {"uri": {"prefix": "/api"}})
    assert not covered({"uri": {"regex": "/api.*"}}, {"uri": {"prefix": "/api"}})
    header = {"headers": {"x-team": {"prefix": "a"}}}
    assert covered(header, {"headers": {"x-team": {"exact": "ab"}, "x-other": {"exact": "1"}}})
    assert not covered(header, {"headers": {"x-other": {"exact": "ab"}}})
    assert not covered(header, {"headers": {"x-team": {"exact": "b"}}})


@pytest.mark.parametrize(
    ("pattern", "namespace", "matches"),
    [
        ("*", "anything", True),
        ("team-*", "team-a", True),
        ("team-*", "a-team", False),
        ("*-team", "a-team", True),
        ("*-team", "team-a", False),
        ("shop", "shop", True),
        ("shop", "shop-2", False),
        ("shop", "2-shop", False),
        ("*-shop", "shop", False),
        ("shop-*", "shop", False),
    ],
)
def test_source_namespace_patterns_match_as_istio_does(
    pattern: str, namespace: str, matches: bool
) -> None:
    assert authorization.namespace_matches(pattern, namespace) is matches


def test_source_namespaces_are_judged_only_where_the_input_holds_namespaces() -> None:
    policy = from_manifest(
        {
            "apiVersion": "security.istio.io/v1",
            "kind": "AuthorizationPolicy",
            "metadata": {"name": "p", "namespace": "shop"},
            "spec": {"rules": [{"from": [{"source": {"namespaces": ["monitoring"]}}]}]},
        },
        urn="p",
    )
    namespace = from_manifest({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "x"}})
    check = authorization.source_namespace_violations
    assert list(check([policy], {"externalNamespaces": []})) == []
    [(urn, message)] = check([namespace, policy], {"externalNamespaces": []})
    assert urn == "p" and message.startswith("spec.rules[0].from[0].source.namespaces[0] is ")
    assert list(check([namespace, policy], {"externalNamespaces": ["monitoring"]})) == []


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (True, True),
        (False, False),
        ("true", True),
        ("False", False),
        ("TRUE", True),
        ("yes", None),
        ("", None),
        (1, None),
        (None, None),
    ],
)
def test_booleans_as_helm_set_writes_them(value: Any, expected: bool | None) -> None:
    assert boolean(value) is expected


def test_external_workloads_count_as_pods_of_their_namespace() -> None:
    rule = from_manifest(
        {
            "apiVersion": "networking.istio.io/v1",
            "kind": "DestinationRule",
            "metadata": {"name": "ratings", "namespace": "ratings"},
            "spec": {"host": "ratings", "subsets": [{"name": "v1", "labels": {"version": "v1"}}]},
        },
        urn="dr",
    )
    config = {"externalWorkloads": [{"namespace": "ratings", "labels": {"version": "v1"}}]}
    assert list(selection.subset_violations([rule], config)) == []
    config = {"externalWorkloads": [{"namespace": "ratings", "labels": {"version": "v2"}}]}
    [(urn, message)] = selection.subset_violations([rule], config)
    assert urn == "dr" and "(v1)" in message


def _pem(tag: str) -> str:
    return f"-----BEGIN CERTIFICATE-----\n{tag}\n-----END CERTIFICATE-----\n"


def _cacerts(chain: str, roots: str, stored: bool = False) -> Resource:
    files = {"cert-chain.pem": chain, "root-cert.pem": roots}
    field = "stringData"
    if stored:  # as the API server keeps it, and AnalyzeStack shows it
        field = "data"
        files = {name: base64.b64encode(value.encode()).decode() for name, value in files.items()}
    return from_manifest(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "cacerts", "namespace": "istio-system"},
            field: files,
        },
        urn=f"cacerts-{chain}",
    )


def test_cacerts_files_are_read_declared_or_stored() -> None:
    declared = _cacerts(_pem("EAST") + _pem("ROOT"), _pem("ROOT"))
    stored = _cacerts(_pem("EAST") + _pem("ROOT"), _pem("ROOT"), stored=True)
    for secret in (declared, stored):
        assert clusters.cacerts_file(secret, "root-cert.pem") == _pem("ROOT")
        assert clusters.certificates(clusters.cacerts_file(secret, "cert-chain.pem") or "") == [
            "EAST",
            "ROOT",
        ]
    assert clusters.cacerts_file(stored, "ca-key.pem") is None
    not_base64 = from_manifest(
        {"apiVersion": "v1", "kind": "Secret", "data": {"root-cert.pem": "%%%"}}
    )
    assert clusters.cacerts_file(not_base64, "root-cert.pem") is None


def test_clusters_are_judged_past_a_broken_one() -> None:
    groups = [
        ("a", [_cacerts("", _pem("ROOT"), stored=True)]),
        ("b", [_cacerts(_pem("B") + _pem("ROOT"), _pem("ROOT"), stored=True)]),
        ("c", [_cacerts(_pem("C") + _pem("OTHER"), _pem("OTHER"), stored=True)]),
    ]
    found = list(clusters.trust_violations(groups, {}))
    assert [urn for urn, _ in found] == [
        groups[0][1][0].urn,
        groups[1][1][0].urn,
        groups[2][1][0].urn,
    ]
    assert "no cert-chain.pem" in found[0][1]
    assert "provider c" in found[1][1] and "provider b" in found[2][1]
    # A cluster without istiod or cacerts (nothing of the mesh there yet) is passed over.
    assert list(clusters.trust_violations([("none", []), *groups], {})) == found
