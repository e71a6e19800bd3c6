"""Ambient namespaces, waypoints and Gateway API gateways in the stack config: what each
placement can carry, and the config errors (with paths) for what it cannot."""

from __future__ import annotations

from typing import Any

import pytest

from components.ambient import Placement, placement_problems
from components.config import MeshConfig, parse_config
from components.errors import ConfigError
from components.service_config import ServiceConfig

L7_SERVICE = ServiceConfig.model_validate(
    {
        "name": "catalog",
        "namespace": "store",
        "port": 8080,
        "versions": {"v1": {"weight": 50}, "v2": {"weight": 50}},
        "routes": [{"headers": {"x-beta": {"prefix": "y"}}, "to": "v2"}],
        "timeout": "2s",
        "retries": {"attempts": 2},
        "faultInjection": {"abort": {"percent": 1, "httpStatus": 503}},
        "mirror": {"to": "v2", "percent": 1},
        "circuitBreaker": {"maxConnections": 10},
        "jwt": {"issuer": "i", "jwksUri": "https://i/jwks"},
        "allowFrom": [
            {"namespace": "shop", "serviceAccount": "a"},
            {"namespace": "shop", "serviceAccount": "b", "paths": ["/x"]},
        ],
        "expose": {"gateway": "web", "host": "store.example.com"},
    }
)
L4_SERVICE = ServiceConfig.model_validate(
    {
        "name": "db",
        "namespace": "store",
        "port": 5432,
        "allowFrom": [{"namespace": "store", "serviceAccount": "catalog", "ports": [5432]}],
        "expose": {"gateway": "web", "host": "store.example.com", "pathPrefix": "/db"},
    }
)


def paths(service: ServiceConfig, placement: Placement) -> list[str]:
    return [problem.path for problem in placement_problems(service, "svc", placement)]


def test_without_a_waypoint_every_l7_setting_is_an_error_naming_the_service() -> None:
    problems = placement_problems(L7_SERVICE, "svc", Placement(ambient=True))
    assert [p.path for p in problems] == [
        "svc.versions",
        "svc.routes",
        "svc.timeout",
        "svc.retries",
        "svc.faultInjection",
        "svc.mirror",
        "svc.circuitBreaker",
        "svc.jwt",
        "svc.allowFrom[1]",
    ]
    assert all("service catalog" in p.message and "waypoint" in p.message for p in problems)
    # Exposure and L4 rules are ztunnel's to carry.
    assert paths(L4_SERVICE, Placement(ambient=True)) == []


def test_with_a_waypoint_only_what_has_no_gateway_api_form_is_an_error() -> None:
    problems = placement_problems(L7_SERVICE, "svc", Placement(ambient=True, waypoint=True))
    assert [p.path for p in problems] == [
        "svc.faultInjection",
        "svc.retries",
        "svc.routes[0].headers.x-beta",
    ]
    assert "experimental channel" in problems[1].message
    assert "waypoint" in problems[0].message


def test_sidecar_services_are_free_unless_a_gateway_api_ingress_carries_their_routes() -> None:
    assert paths(L7_SERVICE, Placement()) == []
    through_gateway_api = Placement(gateway_api_exposure=True)
    problems = placement_problems(L7_SERVICE, "svc", through_gateway_api)
    assert [p.path for p in problems] == [
        "svc.faultInjection",
        "svc.retries",
        "svc.routes[0].headers.x-beta",
    ]
    assert "gateway web" in problems[0].message
    # Into an ambient namespace the gateway only hands requests to the waypoint.
    assert (
        not Placement(ambient=True, waypoint=True, gateway_api_exposure=True)
        .of(L4_SERVICE, ["other"])
        .gateway_api_exposure
    )
    assert Placement().of(L4_SERVICE, ["web"]).gateway_api_exposure


BASE: dict[str, Any] = {
    "istio": {
        "revisions": [{"version": "1.30.5"}, {"version": "1.31.1"}],
        "tags": {"stable": "1-30-5", "canary": "1-31-1"},
    },
    "gateways": [
        {
            "name": "web",
            "api": "gateway-api",
            "servers": [{"hosts": ["store.example.com"], "tls": {"credentialName": "t"}}],
        }
    ],
    "namespaces": [{"name": "store", "dataplane": "ambient"}, {"name": "shop"}],
}


def config_with(**changes: Any) -> MeshConfig:
    return parse_config({**BASE, **changes})


def problems_of(**changes: Any) -> dict[str, str]:
    with pytest.raises(ConfigError) as raised:
        config_with(**changes)
    return {p.path: p.message for p in raised.value.problems}


def test_an_ambient_namespace_defaults_to_a_waypoint_and_needs_the_gateway_api() -> None:
    config = config_with()
    store, shop = config.namespaces
    assert config.ambient and config.has_waypoint(store) and not config.has_waypoint(shop)
    assert config.needs_gateway_api and config.installs_gateway_api
    assert config.gateway_api_version == "1.5.1"
    no_waypoint = config_with(
        namespaces=[{"name": "store", "dataplane": "ambient", "waypoint": False}], gateways=[]
    )
    assert no_waypoint.ambient and not no_waypoint.needs_gateway_api
    pinned = config_with(gatewayApi={"version": "v1.6.0", "install": False})
    assert pinned.gateway_api_version == "1.6.0" and not pinned.installs_gateway_api
    sidecar_only = config_with(namespaces=[{"name": "shop"}], gateways=[])
    assert not sidecar_only.ambient and not sidecar_only.installs_gateway_api


def test_ambient_and_gateway_api_config_errors_name_their_paths() -> None:
    problems = problems_of(
        namespaces=[
            {"name": "store", "dataplane": "ambient", "revision": "1-31-1"},
            {"name": "shop", "waypoint": True},
        ],
        gateways=[
            {"name": "out", "kind": "egress", "api": "gateway-api"},
            {
                "name": "web",
                "api": "gateway-api",
                "servers": [
                    {"hosts": ["a.example.com"], "tls": {"credentialName": "t", "mode": "MUTUAL"}}
                ],
            },
        ],
    )
    assert "sidecars in its pods" in problems["istio-mesh:namespaces[0].revision"]
    assert "ambient" in problems["istio-mesh:namespaces[1].waypoint"]
    assert "istio API" in problems["istio-mesh:gateways[0].api"]
    assert "MUTUAL" in problems["istio-mesh:gateways[1].servers[0].tls.mode"]


def test_an_unknown_istio_minor_must_pin_the_gateway_api() -> None:
    problems = problems_of(istio={"revisions": [{"version": "1.99.0"}]})
    assert "1.99.0" in problems["istio-mesh:gatewayApi.version"]
    assert "exact" in problems_of(gatewayApi={"version": "1.5"})["istio-mesh:gatewayApi.version"]


def test_services_in_ambient_namespaces_are_checked_where_they_are_written() -> None:
    problems = problems_of(
        namespaces=[{"name": "store", "dataplane": "ambient", "waypoint": False}],
        services=[{"name": "a", "namespace": "store", "port": 80, "timeout": "1s"}],
    )
    assert list(problems) == ["istio-mesh:services[0].timeout"]
    assert "without a waypoint" in problems["istio-mesh:services[0].timeout"]


def test_which_placements_route_with_an_httproute() -> None:
    assert Placement(ambient=True, waypoint=True).gateway_api_routes
    assert Placement(gateway_api_exposure=True).gateway_api_routes
    assert not Placement(ambient=True).gateway_api_routes
    assert not Placement(ambient=True, gateway_api_exposure=True).gateway_api_routes
    assert not Placement().gateway_api_routes
