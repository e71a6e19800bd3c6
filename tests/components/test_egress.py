"""External hosts and the API server under REGISTRY_ONLY: builders and config checks."""

from __future__ import annotations

import pytest

from components.config import ExternalHost, parse_config
from components.egress import (
    API_SERVER_EGRESS,
    caller_egress_entries,
    egress_allow_rules,
    external_manifests,
    slug,
)
from components.errors import ConfigError
from mesh.program import kubernetes_manifest
from tests.conftest import stack_run


def external(host: str = "api.stripe.com", **fields: object) -> ExternalHost:
    return ExternalHost.model_validate({"host": host, **fields})


def test_without_an_egress_gateway_a_host_is_only_registered() -> None:
    manifests = external_manifests([external()], egress_gateway=None)
    assert list(manifests) == ["api-stripe-com-service-entry"]
    entry = manifests["api-stripe-com-service-entry"]
    assert entry["metadata"] == {"name": "external-api-stripe-com", "namespace": "istio-system"}
    assert entry["spec"] == {
        "hosts": ["api.stripe.com"],
        "location": "MESH_EXTERNAL",
        "resolution": "DNS",
        "ports": [{"number": 443, "name": "tls-443", "protocol": "TLS"}],
    }


def test_tls_goes_through_the_egress_gateway_by_sni_never_decrypted() -> None:
    manifests = external_manifests([external()], egress_gateway="egress")
    gateway = manifests["api-stripe-com-gateway"]
    assert gateway["metadata"]["namespace"] == "istio-egress"
    assert gateway["spec"]["selector"] == {"istio": "egress"}
    (server,) = gateway["spec"]["servers"]
    assert server["tls"] == {"mode": "PASSTHROUGH"} and server["port"]["number"] == 443
    route = manifests["api-stripe-com-route"]["spec"]
    assert route["gateways"] == ["mesh", "istio-egress/egress-api-stripe-com"]
    to_gateway, to_host = route["tls"]
    assert to_gateway["match"][0]["gateways"] == ["mesh"]
    assert to_gateway["route"][0]["destination"]["host"] == (
        "istio-egress.istio-egress.svc.cluster.local"
    )
    assert to_host["match"][0]["sniHosts"] == ["api.stripe.com"]
    assert to_host["route"][0]["destination"] == {"host": "api.stripe.com", "port": {"number": 443}}
    mtls = manifests["egress-gateway-mtls"]["spec"]
    assert mtls["trafficPolicy"]["tls"]["mode"] == "ISTIO_MUTUAL"


def test_plain_http_is_only_registered_never_routed_through_the_egress_gateway() -> None:
    # Its servers would speak plain text, which gateway-server-tls refuses: a config error.
    with pytest.raises(ConfigError) as raised:
        parse_config(
            {
                "gateways": [{"name": "egress", "kind": "egress"}],
                "externalHosts": [{"host": "example.org", "ports": [{"protocol": "HTTP"}]}],
            }
        )
    (problem,) = raised.value.problems
    assert problem.path == "istio-mesh:externalHosts[0].ports[0].protocol"
    assert "plain HTTP is not routed through the egress gateway" in problem.message
    plain = external("example.org", ports=[{"number": 80, "protocol": "HTTP"}])
    assert list(external_manifests([plain], egress_gateway=None)) == ["example-org-service-entry"]


def test_the_egress_gateway_names_who_may_use_which_host() -> None:
    rules = egress_allow_rules(
        [external("api.stripe.com", namespaces=["shop"]), external("example.org")],
        mesh_namespaces=["shop", "billing"],
    )
    stripe, example = rules
    assert stripe["from"] == [{"source": {"namespaces": ["shop"]}}]
    assert stripe["when"] == [{"key": "connection.sni", "values": ["api.stripe.com"]}]
    assert stripe["to"] == [{"operation": {"ports": ["443"]}}]
    assert example["from"] == [{"source": {"namespaces": ["billing", "shop"]}}]
    assert example["when"] == [{"key": "connection.sni", "values": ["example.org"]}]


def test_callers_see_the_egress_gateways_namespace() -> None:
    hosts = [external(namespaces=["shop"])]
    assert caller_egress_entries(hosts, ["shop", "billing"], "egress") == {
        "shop": ["istio-egress/*"]
    }
    assert caller_egress_entries(hosts, ["shop"], None) == {}


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"host": "*.stripe.com"}, "wildcard host"),
        ({"host": "reviews.shop.svc.cluster.local"}, "is inside the cluster"),
        ({"host": "localhost"}, "is not a fully qualified host name"),
        (
            {"host": "api.stripe.com", "ports": [{"number": 443}, {"number": 443}]},
            "a port number is listed twice",
        ),
        ({"host": "api.stripe.com", "ports": [{"number": 443, "protocol": "UDP"}]}, "TLS"),
    ],
)
def test_bad_external_hosts_are_config_errors(entry: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_config({"externalHosts": [entry]})
    assert any(
        p.path.startswith("istio-mesh:externalHosts[0]") and message in p.message
        for p in raised.value.problems
    ), raised.value.problems


def test_callers_must_be_mesh_namespaces_and_hosts_listed_once() -> None:
    with pytest.raises(ConfigError) as raised:
        parse_config(
            {
                "namespaces": [{"name": "shop"}],
                "externalHosts": [
                    {"host": "api.stripe.com", "namespaces": ["shop", "nowhere"]},
                    {"host": "api.stripe.com"},
                ],
            }
        )
    problems = {p.path: p.message for p in raised.value.problems}
    assert "'nowhere' is not a namespace" in problems["istio-mesh:externalHosts[0].namespaces"]
    assert "already listed at externalHosts[0]" in problems["istio-mesh:externalHosts[1].host"]


def test_prod_reaches_the_api_server_and_its_payment_provider_through_the_egress_gateway() -> None:
    run = stack_run("prod")
    sidecars = [
        kubernetes_manifest(r) for r in run.of_type("kubernetes:networking.istio.io/v1:Sidecar")
    ]
    (shop,) = [s for s in sidecars if s and s["metadata"]["namespace"] == "shop"]
    hosts = shop["spec"]["egress"][0]["hosts"]
    assert API_SERVER_EGRESS in hosts and "istio-egress/*" in hosts
    policies = [
        kubernetes_manifest(r)
        for r in run.of_type("kubernetes:security.istio.io/v1:AuthorizationPolicy")
    ]
    (allow,) = [p for p in policies if p and p["metadata"]["name"] == "allow-egress"]
    (rule,) = allow["spec"]["rules"]
    assert rule["from"] == [{"source": {"namespaces": ["shop"]}}]
    assert rule["when"] == [{"key": "connection.sni", "values": ["api.payments.example.com"]}]


def test_a_host_slug_is_a_kubernetes_name_of_at_most_63_characters() -> None:
    assert slug("api.stripe.com") == "api-stripe-com"
    long_host = "a" * 62 + ".example.com"
    assert slug(long_host) == "a" * 62  # cut at 63, then the trailing "-" dropped
    assert slug("b" * 70 + ".com") == "b" * 63
