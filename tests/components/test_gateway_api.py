"""Gateway API builders: waypoints, service routes (GAMMA and ingress), the ingress.

Every object built here is also validated against the Gateway API release's CRDs
(`GATEWAY_API_REFERENCE`), schema and CEL, as the API server would.
"""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from components.config import GatewaySettings
from components.gateway_api import (
    gateway_api_duration,
    gateway_route,
    https_redirect,
    ingress_gateway,
    ingress_options,
    mesh_route,
    route_rules,
    version_service_manifest,
    waypoint,
)
from components.service_config import ServiceConfig, StringMatch
from mesh.reference import Reference, load_gateway_api_reference

STOREFRONT = ServiceConfig.model_validate(
    yaml.safe_load(
        """
name: storefront
namespace: store
port: 8080
versions: {v1: {weight: 90}, v2: {weight: 10}}
routes:
  - {headers: {x-canary: "true", user-agent: {regex: ".*Mobile.*"}}, to: v2}
  - {path: {exact: /beta}, to: v2, name: beta}
timeout: 1.5s
mirror: {to: v2, percent: 0.5}
expose: {gateway: web, host: store.example.com, pathPrefix: /store}
"""
    )
)

WEB = GatewaySettings.model_validate(
    {
        "name": "web",
        "api": "gateway-api",
        "replicas": {"min": 2, "max": 4},
        "servers": [
            {"hosts": ["a.example.com", "b.example.com"], "tls": {"credentialName": "ab-tls"}},
            {"hosts": ["c.example.com"], "tls": {"credentialName": "c-tls"}},
        ],
    }
)


@pytest.fixture(scope="module")
def reference() -> Reference:
    return load_gateway_api_reference()


@pytest.mark.parametrize(
    ("duration", "expected"),
    [
        ("10s", "10s"),
        ("1.5s", "1s500ms"),
        ("0.001s", "1ms"),
        ("5400s", "1h30m"),
        ("90061s", "25h1m1s"),
    ],
)
def test_durations_in_the_gateway_api_form(duration: str, expected: str) -> None:
    assert gateway_api_duration(duration) == expected


def test_mesh_route_parents_the_service_and_splits_between_version_services(
    reference: Reference,
) -> None:
    route = mesh_route(STOREFRONT)
    assert reference.validate(route) == []
    assert route["metadata"] == {"name": "storefront", "namespace": "store"}
    assert route["spec"]["parentRefs"] == [
        {"group": "", "kind": "Service", "name": "storefront", "port": 8080}
    ]
    header, beta, default = route["spec"]["rules"]
    assert header["name"] == "v2-0"
    assert header["matches"] == [
        {
            "headers": [
                {"type": "Exact", "name": "x-canary", "value": "true"},
                {"type": "RegularExpression", "name": "user-agent", "value": ".*Mobile.*"},
            ]
        }
    ]
    assert header["backendRefs"] == [{"name": "storefront-v2", "port": 8080}]
    assert beta["name"] == "beta"
    assert beta["matches"] == [{"path": {"type": "Exact", "value": "/beta"}}]
    assert default["name"] == "default"
    assert "matches" not in default
    assert default["backendRefs"] == [
        {"name": "storefront-v1", "port": 8080, "weight": 90},
        {"name": "storefront-v2", "port": 8080, "weight": 10},
    ]
    for rule in (header, beta, default):
        assert rule["timeouts"] == {"request": "1s500ms"}
        (mirror,) = rule["filters"]
        assert mirror["requestMirror"] == {
            "backendRef": {"name": "storefront-v2", "port": 8080},
            "fraction": {"numerator": 1, "denominator": 200},
        }


def test_a_whole_percent_mirror_and_a_service_without_versions() -> None:
    plain = STOREFRONT.model_copy(
        update={"versions": {}, "routes": [], "mirror": None, "timeout": None}
    )
    (rule,) = route_rules(plain)
    assert rule == {"name": "default", "backendRefs": [{"name": "storefront", "port": 8080}]}
    mirrored = STOREFRONT.model_copy(
        update={"mirror": STOREFRONT.mirror.model_copy(update={"percent": 5.0})}  # type: ignore[union-attr]
    )
    assert route_rules(mirrored)[0]["filters"][0]["requestMirror"]["percent"] == 5


def test_a_prefix_header_match_has_no_gateway_api_form() -> None:
    prefixed = ServiceConfig.model_validate(
        {
            "name": "a",
            "namespace": "b",
            "port": 80,
            "versions": {"v1": {"weight": 100}},
            "routes": [{"headers": {"x-a": {"prefix": "p"}}, "to": "v1"}],
        }
    )
    with pytest.raises(ValueError, match="prefix"):
        route_rules(prefixed)


def test_gateway_route_keeps_under_the_prefix_and_names_the_hosts_listener(
    reference: Reference,
) -> None:
    route = gateway_route(STOREFRONT, split=True)
    assert reference.validate(route) == []
    assert route["metadata"] == {"name": "storefront-gateway", "namespace": "store"}
    assert route["spec"]["parentRefs"] == [
        {
            "group": "gateway.networking.k8s.io",
            "kind": "Gateway",
            "name": "web",
            "namespace": "istio-web",
            "sectionName": "https-store.example.com",
        }
    ]
    assert route["spec"]["hostnames"] == ["store.example.com"]
    rules = route["spec"]["rules"]
    # A route with a path of its own keeps it; the others (and the default) get the prefix.
    assert [rule["matches"][0]["path"] for rule in rules] == [
        {"type": "PathPrefix", "value": "/store"},
        {"type": "Exact", "value": "/beta"},
        {"type": "PathPrefix", "value": "/store"},
    ]
    assert rules[-1]["backendRefs"][0]["name"] == "storefront-v1"


def test_gateway_route_into_an_ambient_namespace_hands_requests_to_the_service(
    reference: Reference,
) -> None:
    route = gateway_route(STOREFRONT, split=False)
    assert reference.validate(route) == []
    assert route["spec"]["rules"] == [
        {
            "name": "default",
            "matches": [{"path": {"type": "PathPrefix", "value": "/store"}}],
            "backendRefs": [{"name": "storefront", "port": 8080}],
        }
    ]
    unexposed = STOREFRONT.model_copy(update={"expose": None})
    with pytest.raises(ValueError, match="not exposed"):
        gateway_route(unexposed, split=False)


def test_version_service_selects_the_versions_pods() -> None:
    service = version_service_manifest(STOREFRONT, "v2")
    assert service["metadata"]["name"] == "storefront-v2"
    assert service["spec"]["selector"] == {"app": "storefront", "version": "v2"}
    assert service["spec"]["ports"] == [{"name": "http", "port": 8080, "targetPort": 8080}]


def test_waypoint_is_an_hbone_gateway_running_as_its_own_account(reference: Reference) -> None:
    gateway = waypoint("store")
    assert reference.validate(gateway) == []
    assert gateway["metadata"]["name"] == "waypoint"
    assert gateway["metadata"]["annotations"] == {"gateway.istio.io/service-account": "waypoint"}
    assert gateway["spec"] == {
        "gatewayClassName": "istio-waypoint",
        "listeners": [{"name": "mesh", "port": 15008, "protocol": "HBONE"}],
    }
    highly_available = waypoint("store", high_availability=True)
    assert reference.validate(highly_available) == []
    assert highly_available["spec"]["infrastructure"]["parametersRef"]["name"] == "waypoint-options"


def test_ingress_gateway_has_an_https_listener_per_host_and_http_for_the_redirect(
    reference: Reference,
) -> None:
    gateway = ingress_gateway(WEB, ["store", "shop", "store"])
    assert reference.validate(gateway) == []
    assert gateway["metadata"]["namespace"] == "istio-web"
    assert gateway["metadata"]["annotations"] == {
        "gateway.istio.io/service-account": "istio-web",
        "networking.istio.io/service-type": "LoadBalancer",
    }
    listeners = gateway["spec"]["listeners"]
    assert [(x["name"], x["port"], x["protocol"]) for x in listeners] == [
        ("http", 80, "HTTP"),
        ("https-a.example.com", 443, "HTTPS"),
        ("https-b.example.com", 443, "HTTPS"),
        ("https-c.example.com", 443, "HTTPS"),
    ]
    assert listeners[0]["allowedRoutes"] == {"namespaces": {"from": "Same"}}
    https = listeners[3]
    assert https["hostname"] == "c.example.com"
    assert https["tls"]["certificateRefs"] == [{"group": "", "kind": "Secret", "name": "c-tls"}]
    selector = https["allowedRoutes"]["namespaces"]["selector"]
    assert selector["matchExpressions"][0]["values"] == ["shop", "store"]
    redirect = https_redirect(WEB)
    assert reference.validate(redirect) == []
    assert redirect["spec"]["parentRefs"] == [{"name": "web", "sectionName": "http"}]
    (rule,) = redirect["spec"]["rules"]
    assert "backendRefs" not in rule


def overlays(options: dict[str, Any]) -> dict[str, Any]:
    return {key: yaml.safe_load(text) for key, text in options["data"].items()}


def test_ingress_options_autoscale_keep_a_pod_through_drains_and_spread_in_ha() -> None:
    data = overlays(ingress_options(WEB, high_availability=True))
    assert data["horizontalPodAutoscaler"] == {"spec": {"minReplicas": 2, "maxReplicas": 4}}
    assert data["podDisruptionBudget"] == {"spec": {"minAvailable": 1}}
    pod = data["deployment"]["spec"]["template"]["spec"]
    assert "replicas" not in data["deployment"]["spec"]  # the autoscaler owns them
    spread = pod["topologySpreadConstraints"][0]["labelSelector"]
    assert spread == {"matchLabels": {"gateway.networking.k8s.io/gateway-name": "web"}}


def test_ingress_options_of_a_fixed_single_pod() -> None:
    single = WEB.model_copy(
        update={"replicas": WEB.replicas.model_copy(update={"max": 2, "min": 2})}
    )
    data = overlays(ingress_options(single, high_availability=False))
    assert set(data) == {"deployment", "podDisruptionBudget"}
    assert data["deployment"]["spec"]["replicas"] == 2
    assert "affinity" not in data["deployment"]["spec"]["template"]["spec"]
    one = WEB.model_copy(update={"replicas": WEB.replicas.model_copy(update={"max": 1, "min": 1})})
    assert set(overlays(ingress_options(one, high_availability=False))) == {"deployment"}


def test_a_regex_path_route_and_an_exact_one() -> None:
    service = STOREFRONT.model_copy(
        update={
            "routes": [
                STOREFRONT.routes[1].model_copy(
                    update={"path": StringMatch(regex="/v[0-9]+/.*"), "name": "versioned"}
                )
            ]
        }
    )
    (versioned, _) = route_rules(service)
    assert versioned["matches"] == [{"path": {"type": "RegularExpression", "value": "/v[0-9]+/.*"}}]


def test_version_service_is_a_plain_service_pulumi_does_not_wait_for() -> None:
    assert version_service_manifest(STOREFRONT, "v1") == {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": "storefront-v1",
            "namespace": "store",
            "labels": {"app": "storefront", "version": "v1"},
            "annotations": {"pulumi.com/skipAwait": "true"},
        },
        "spec": {
            "selector": {"app": "storefront", "version": "v1"},
            "ports": [{"name": "http", "port": 8080, "targetPort": 8080}],
        },
    }


def test_the_redirect_is_permanent_to_https() -> None:
    (rule,) = https_redirect(WEB)["spec"]["rules"]
    assert rule == {
        "filters": [
            {"type": "RequestRedirect", "requestRedirect": {"scheme": "https", "statusCode": 301}}
        ]
    }


def test_ingress_options_are_a_config_map_beside_the_gateway_with_sized_proxies() -> None:
    options = ingress_options(WEB, high_availability=False)
    assert {key: options[key] for key in ("apiVersion", "kind", "metadata")} == {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "web-options", "namespace": "istio-web"},
    }
    assert options["data"]["podDisruptionBudget"] == "spec:\n  minAvailable: 1\n"
    (proxy,) = overlays(options)["deployment"]["spec"]["template"]["spec"]["containers"]
    assert proxy == {
        "name": "istio-proxy",
        "resources": {
            "requests": {"cpu": "100m", "memory": "128Mi"},
            "limits": {"cpu": "2000m", "memory": "1Gi"},
        },
    }
    # Written with sorted keys: the same stack gives the same ConfigMap, byte for byte.
    autoscaler = options["data"]["horizontalPodAutoscaler"]
    assert autoscaler == "spec:\n  maxReplicas: 4\n  minReplicas: 2\n"


def test_waypoint_options_of_a_highly_available_mesh() -> None:
    from components.gateway_api import waypoint_options

    data = overlays(waypoint_options("store"))
    assert data["horizontalPodAutoscaler"] == {"spec": {"minReplicas": 2, "maxReplicas": 5}}
    assert data["podDisruptionBudget"] == {"spec": {"minAvailable": 1}}
    pod = data["deployment"]["spec"]["template"]["spec"]
    assert pod["affinity"]["podAntiAffinity"]  # spread: HA always
