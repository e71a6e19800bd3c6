"""ServiceRoute: the VirtualService / DestinationRule builders and the component."""

from __future__ import annotations

import copy
import itertools
import os
import unittest
from pathlib import Path
from typing import Any

import pulumi
import pytest
import yaml
from google.protobuf import json_format
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pulumi.runtime.stack import wait_for_rpcs
from pydantic import ValidationError

from components.errors import ConfigError
from components.service_config import ServiceConfig, check_service
from components.traffic import (
    ServiceRoute,
    ServiceRouteArgs,
    build_destination_rule,
    build_gateway_virtual_service,
    build_virtual_service,
)
from mesh.program import forget_pending_outputs
from mesh.reference import Reference, load_reference

REVIEWS = """
name: reviews
namespace: shop
port: 9080
versions: {v1: {weight: 80}, v2: {weight: 20}}
routes:
  - {headers: {x-canary: "true"}, to: v2}
  - {path: {prefix: /reviews/beta}, to: v2, name: beta}
timeout: 10s
retries: {attempts: 3, perTryTimeout: 2s, retryOn: "5xx,connect-failure"}
circuitBreaker: {maxConnections: 100, maxPendingRequests: 10, consecutive5xxErrors: 5,
                 interval: 10s, baseEjectionTime: 30s, maxEjectionPercent: 50}
faultInjection: {delay: {percent: 10, fixedDelay: 5s}, abort: {percent: 5, httpStatus: 503}}
mirror: {to: v2, percent: 10}
expose: {gateway: ingress, host: shop.example.com, pathPrefix: /reviews}
"""
HOST = "reviews.shop.svc.cluster.local"


def with_changes(document: str, **changes: Any) -> dict[str, Any]:
    """A YAML service entry with `changes` applied by key (None removes the key)."""
    raw: dict[str, Any] = yaml.safe_load(document)
    raw.update(changes)
    return {key: value for key, value in raw.items() if value is not None}


def service(**changes: Any) -> ServiceConfig:
    return ServiceConfig.model_validate(with_changes(REVIEWS, **changes))


def destination(subset: str | None) -> dict[str, Any]:
    found = {"host": HOST, "port": {"number": 9080}}
    return found | {"subset": subset} if subset else found


# --------------------------------------------------------------------------------------
# Builders
# --------------------------------------------------------------------------------------


def test_header_and_path_routes_come_before_the_weighted_split() -> None:
    spec = build_virtual_service(service())["spec"]
    assert spec["hosts"] == [HOST]
    assert "gateways" not in spec  # bound to the mesh only
    canary, beta, default = spec["http"]
    assert canary["name"] == "v2-0"
    assert canary["match"] == [{"headers": {"x-canary": {"exact": "true"}}}]
    assert canary["route"] == [{"destination": destination("v2"), "weight": 100}]
    assert beta["name"] == "beta"
    assert beta["match"] == [{"uri": {"prefix": "/reviews/beta"}}]
    assert default["name"] == "default"
    assert "match" not in default
    assert default["route"] == [
        {"destination": destination("v1"), "weight": 80},
        {"destination": destination("v2"), "weight": 20},
    ]


def test_every_route_carries_the_traffic_policies_in_istio_field_names() -> None:
    for route in build_virtual_service(service())["spec"]["http"]:
        assert route["timeout"] == "10s"
        assert route["retries"] == {
            "attempts": 3,
            "perTryTimeout": "2s",
            "retryOn": "5xx,connect-failure",
        }
        assert route["fault"] == {
            "delay": {"fixedDelay": "5s", "percentage": {"value": 10}},
            "abort": {"httpStatus": 503, "percentage": {"value": 5}},
        }
        assert route["mirror"] == destination("v2")
        assert route["mirrorPercentage"] == {"value": 10}


def test_routes_do_not_share_policy_objects() -> None:
    """Shared dicts would render as YAML anchors and leak edits from route to route."""
    first, *others = build_virtual_service(service())["spec"]["http"]
    first["retries"]["attempts"] = 9
    assert all(route["retries"]["attempts"] == 3 for route in others)
    assert "&id" not in yaml.safe_dump(build_virtual_service(service()))


def test_a_service_without_versions_routes_to_its_host() -> None:
    bare = service(versions=None, routes=None, mirror=None)
    (default,) = build_virtual_service(bare)["spec"]["http"]
    assert default["route"] == [{"destination": destination(None), "weight": 100}]
    assert "subsets" not in build_destination_rule(bare)["spec"]


def test_optional_policies_are_left_out() -> None:
    plain = service(
        routes=None, timeout=None, retries=None, faultInjection=None, mirror=None, expose=None
    )
    (default,) = build_virtual_service(plain)["spec"]["http"]
    assert set(default) == {"name", "route"}
    only_delay = service(faultInjection={"delay": {"percent": 1, "fixedDelay": "1s"}})
    assert set(build_virtual_service(only_delay)["spec"]["http"][0]["fault"]) == {"delay"}


def test_destination_rule_subsets_tls_and_circuit_breaking() -> None:
    rule = build_destination_rule(service())
    assert rule["apiVersion"] == "networking.istio.io/v1"
    assert rule["metadata"] == {"name": "reviews", "namespace": "shop"}
    spec = rule["spec"]
    assert spec["host"] == HOST
    assert spec["subsets"] == [
        {"name": "v1", "labels": {"version": "v1"}},
        {"name": "v2", "labels": {"version": "v2"}},
    ]
    assert spec["trafficPolicy"] == {
        "tls": {"mode": "ISTIO_MUTUAL"},
        "connectionPool": {"tcp": {"maxConnections": 100}, "http": {"http1MaxPendingRequests": 10}},
        "outlierDetection": {
            "consecutive5xxErrors": 5,
            "interval": "10s",
            "baseEjectionTime": "30s",
            "maxEjectionPercent": 50,
        },
    }


def test_partial_circuit_breaker_sets_only_what_is_given() -> None:
    policy = build_destination_rule(service(circuitBreaker={"maxRequests": 500}))["spec"][
        "trafficPolicy"
    ]
    assert policy == {
        "tls": {"mode": "ISTIO_MUTUAL"},
        "connectionPool": {"http": {"http2MaxRequests": 500}},
    }
    without = build_destination_rule(service(circuitBreaker=None))["spec"]["trafficPolicy"]
    assert without == {"tls": {"mode": "ISTIO_MUTUAL"}}


def test_gateway_virtual_service_stays_under_the_exposed_prefix() -> None:
    manifest = build_gateway_virtual_service(service(), "istio-ingress/ingress")
    assert manifest["metadata"] == {"name": "reviews-gateway", "namespace": "shop"}
    spec = manifest["spec"]
    assert spec["hosts"] == ["shop.example.com"]
    assert spec["gateways"] == ["istio-ingress/ingress"]
    canary, beta, default = spec["http"]
    assert canary["match"] == [
        {"headers": {"x-canary": {"exact": "true"}}, "uri": {"prefix": "/reviews"}}
    ]
    assert beta["match"] == [{"uri": {"prefix": "/reviews/beta"}}]
    assert default["match"] == [{"uri": {"prefix": "/reviews"}}]
    assert default["route"] == build_virtual_service(service())["spec"]["http"][-1]["route"]


def test_gateway_virtual_service_of_a_whole_host_has_no_path_match() -> None:
    whole = service(routes=None, expose={"gateway": "ingress", "host": "shop.example.com"})
    (default,) = build_gateway_virtual_service(whole, "istio-ingress/ingress")["spec"]["http"]
    assert "match" not in default


def test_builders_refuse_routes_to_unknown_versions() -> None:
    broken = service(routes=[{"headers": {"x-canary": "true"}, "to": "v3"}])
    with pytest.raises(ConfigError, match=r"reviews\.routes\[0\]\.to: unknown version 'v3'"):
        build_virtual_service(broken)
    with pytest.raises(ValueError, match="not exposed"):
        build_gateway_virtual_service(service(expose=None), "istio-ingress/ingress")


@pytest.fixture
def reference(reference_dir: Path) -> Reference:
    """Istio's CRDs (skips when ISTIO_REFERENCE is unset)."""
    return load_reference(reference_dir)


def test_manifests_are_valid_for_istio(reference: Reference) -> None:
    for bare in (False, True):
        subject = service(versions=None, routes=None, mirror=None) if bare else service()
        manifests = [
            build_virtual_service(subject),
            build_gateway_virtual_service(subject, "istio-ingress/ingress"),
            build_destination_rule(subject),
        ]
        for manifest in manifests:
            assert reference.validate(manifest) == []


def test_the_reference_catches_a_misnamed_field(reference: Reference) -> None:
    """The check above would pass vacuously if the validator accepted anything."""
    manifest = build_virtual_service(service())
    manifest["spec"]["http"][0]["retries"]["perTryTimout"] = "2s"
    assert reference.validate(manifest) != []


# --------------------------------------------------------------------------------------
# Any definition: a consistent pair or a config error, never a crash
# --------------------------------------------------------------------------------------

junk = st.one_of(
    st.none(), st.booleans(), st.integers(-5, 300), st.floats(allow_nan=True), st.text(max_size=6)
)


def mostly(valid: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """`valid` 24 times in 25, junk otherwise: with a dozen fields per entry, enough
    definitions survive validation to exercise the builders, and junk still reaches
    every validator."""
    return st.integers(0, 24).flatmap(lambda n: junk if n == 13 else valid)


def record(
    required: dict[str, st.SearchStrategy[Any]], **optional: st.SearchStrategy[Any]
) -> st.SearchStrategy[dict[str, Any]]:
    """A YAML mapping: required keys present, optional ones sometimes; values mostly valid."""
    return st.fixed_dictionaries(
        {key: mostly(value) for key, value in required.items()},
        optional={key: mostly(value) for key, value in optional.items()},
    )


durations = st.sampled_from(["10s", "1ms", "1.5s", "1m", "2h", "250ms", "0s", "500us"])
percents = st.one_of(st.integers(0, 100), st.floats(0, 100), st.integers(-1, 160))
string_matches = st.one_of(
    st.sampled_from(["true", "jason"]),
    st.sampled_from(["true", "jason"]),
    record({"exact": st.text(max_size=3)}),
    record({"prefix": st.just("a")}),
    record({"regex": st.sampled_from(["a.*", "("])}, prefix=st.just("b")),
)


@st.composite
def raw_services(draw: st.DrawFn) -> dict[str, Any]:
    """An `istio-mesh:services` entry as YAML gives it: usually sensible, sometimes not."""
    versions = [*["v1", "v2", "v3", "canary"] * 4, "V1"]
    names = draw(st.lists(st.sampled_from(versions), unique=True, max_size=3))
    # Weights that usually sum to 100 (and sometimes do not).
    cuts = draw(st.lists(st.integers(0, 100), min_size=len(names), max_size=len(names)))
    bounds = [0, *sorted(cuts)[1:], 100]
    weights = [high - low for low, high in itertools.pairwise(bounds)][: len(names)]
    if names:
        weights[-1] += draw(st.sampled_from([0, 0, 0, 0, -10, 5]))
    # Routes and the mirror mostly name existing versions.
    subsets = st.sampled_from([*names, "v9"])
    headers = st.dictionaries(
        st.sampled_from(["x-canary", "end-user", "x-canary", "X-Up"]),
        string_matches,
        min_size=1,
        max_size=2,
    )
    path = st.one_of(
        record({"prefix": st.sampled_from(["/reviews/x", "/reviews", "/a", "a"])}),
        record({"regex": st.just("/reviews/.*")}),
    )
    name = st.sampled_from(["beta", "canary", "Beta"])
    route = st.one_of(
        record({"to": subsets, "headers": headers}, path=path, name=name),
        record({"to": subsets, "path": path}, name=name),
    )
    entry = record(
        {
            "name": st.sampled_from(["reviews", "ratings"]),
            "namespace": st.just("shop"),
            "port": st.integers(1, 65535),
            "versions": st.just(dict(zip(names, ({"weight": w} for w in weights), strict=True))),
        },
        routes=st.lists(route, max_size=3),
        timeout=durations,
        retries=record(
            {"attempts": st.integers(-1, 5)},
            perTryTimeout=durations,
            retryOn=st.sampled_from(["5xx", "5xx,reset", "503", "connect-failure", "bogus", ""]),
        ),
        faultInjection=record(
            {},
            delay=record({"percent": percents, "fixedDelay": durations}),
            abort=record({"percent": percents, "httpStatus": st.integers(150, 650)}),
        ),
        mirror=record({"to": subsets, "percent": percents}),
        circuitBreaker=record(
            {},
            maxConnections=st.integers(0, 10),
            maxPendingRequests=st.integers(1, 10),
            consecutive5xxErrors=st.integers(-1, 10),
            interval=durations,
            baseEjectionTime=durations,
            maxEjectionPercent=st.integers(0, 120),
        ),
        expose=record(
            {"gateway": st.just("ingress"), "host": st.just("shop.example.com")},
            pathPrefix=st.sampled_from(["/reviews", "/", "x"]),
        ),
    )
    return draw(entry)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw_services())
def test_any_definition_is_a_consistent_pair_or_a_config_error(raw: dict[str, Any]) -> None:
    try:
        subject = ServiceConfig.model_validate(raw)
    except ValidationError:
        return
    if check_service(subject, "service"):
        with pytest.raises(ConfigError):
            build_virtual_service(subject)
        return

    virtual_services = [build_virtual_service(subject)]
    if subject.expose is not None:
        virtual_services.append(build_gateway_virtual_service(subject, "istio-ingress/ingress"))
    rule = build_destination_rule(subject)
    subsets = {subset["name"] for subset in rule["spec"].get("subsets", [])}
    assert subsets == set(subject.versions)
    for virtual_service in virtual_services:
        for route in virtual_service["spec"]["http"]:
            destinations = route["route"]
            assert sum(item["weight"] for item in destinations) == 100
            referenced = [item["destination"] for item in destinations]
            referenced += [route["mirror"]] if "mirror" in route else []
            for target in referenced:
                assert target["host"] == rule["spec"]["host"]
                assert target.get("subset", next(iter(subsets), None)) in subsets | {None}
                assert ("subset" in target) == bool(subsets)
    if os.environ.get("ISTIO_REFERENCE"):
        for manifest in [*virtual_services, rule]:
            assert load_reference().validate(manifest) == []


# --------------------------------------------------------------------------------------
# The component, under Pulumi mocks
# --------------------------------------------------------------------------------------


class RecordingMocks(pulumi.runtime.Mocks):
    """Every resource echoes its inputs; registrations are kept for the test to read."""

    def __init__(self) -> None:
        self.resources: list[pulumi.runtime.MockResourceArgs] = []

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        self.resources.append(args)
        return f"{args.name}-id", dict(args.inputs)

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], None]:
        return {}, None


class PulumiMockCase(unittest.IsolatedAsyncioTestCase):
    """Each test on its own event loop, with fresh mocks (Python 3.11 to 3.14)."""

    async def asyncSetUp(self) -> None:
        self.mocks = RecordingMocks()
        pulumi.runtime.set_mocks(self.mocks, project="istio-mesh", stack="test", preview=False)
        forget_pending_outputs()
        # Components' `register_outputs`, by URN: the mocks take them and keep nothing.
        self.outputs: dict[str, dict[str, Any]] = {}
        monitor = pulumi.runtime.settings.get_monitor()
        register = monitor.RegisterResourceOutputs

        def record(request: Any) -> Any:
            self.outputs[request.urn] = json_format.MessageToDict(request.outputs)
            return register(request)

        monitor.RegisterResourceOutputs = record

    async def outputs_of(self, component: pulumi.ComponentResource) -> dict[str, Any]:
        """What `component` registered as its outputs."""
        await wait_for_rpcs()
        urn = await component.urn.future()
        assert urn is not None
        return self.outputs[urn]

    async def registered(self) -> dict[str, pulumi.runtime.MockResourceArgs]:
        """What the test declared, by resource name, once every registration finished."""
        await wait_for_rpcs()
        return {resource.name: resource for resource in self.mocks.resources}

    @staticmethod
    async def parent_type(resource: pulumi.Resource) -> str:
        """The type of `resource`'s parent, read from its URN (`...::Parent$Child::name`)."""
        urn = await resource.urn.future()
        assert urn is not None
        return urn.split("::")[2].split("$")[-2]


class ServiceRouteTest(PulumiMockCase):
    async def test_registers_both_objects_and_the_gateway_route(self) -> None:
        route = ServiceRoute("shop-reviews", ServiceRouteArgs(service()))
        resources = await self.registered()
        assert resources["shop-reviews"].typ == "istio-mesh:traffic:ServiceRoute"
        children = {
            "shop-reviews-vs": build_virtual_service(service()),
            "shop-reviews-dr": build_destination_rule(service()),
            "shop-reviews-gateway-vs": build_gateway_virtual_service(
                service(), "istio-ingress/ingress"
            ),
        }
        assert set(resources) == {"shop-reviews", *children}
        for name, manifest in children.items():
            resource = resources[name]
            assert resource.typ == f"kubernetes:networking.istio.io/v1:{manifest['kind']}"
            assert resource.inputs["metadata"] == manifest["metadata"]
            assert resource.inputs["spec"] == manifest["spec"]
        assert route.gateway_virtual_service is not None
        for child in (route.virtual_service, route.destination_rule, route.gateway_virtual_service):
            assert await self.parent_type(child) == "istio-mesh:traffic:ServiceRoute"
        assert route.host == HOST
        assert await self.outputs_of(route) == {
            "host": HOST,
            "subsets": ["v1", "v2"],
            "exposed": True,
        }

    async def test_an_explicit_gateway_and_no_exposure(self) -> None:
        ServiceRoute("a", ServiceRouteArgs(service(), gateway="edge/public"))
        b = ServiceRoute("b", ServiceRouteArgs(service(name="ratings", expose=None)))
        resources = await self.registered()
        assert resources["a-gateway-vs"].inputs["spec"]["gateways"] == ["edge/public"]
        assert {name for name in resources if name.startswith("b")} == {"b", "b-vs", "b-dr"}
        assert (await self.outputs_of(b))["exposed"] is False

    async def test_an_unknown_version_registers_nothing(self) -> None:
        broken = service(mirror={"to": "v7", "percent": 1})
        with self.assertRaises(ConfigError) as raised:
            ServiceRoute("shop-reviews", ServiceRouteArgs(broken))
        assert [str(p) for p in raised.exception.problems] == [
            "shop-reviews.mirror.to: unknown version 'v7' (versions: v1, v2)"
        ]
        assert await self.registered() == {}

    async def test_children_use_the_provider_given_to_the_component(self) -> None:
        import pulumi_kubernetes as k8s

        provider = k8s.Provider("cluster-b", context="b")
        options = pulumi.ResourceOptions(providers=[provider])
        ServiceRoute("r", ServiceRouteArgs(service(expose=None)), options)
        resources = await self.registered()
        reference = f"{await provider.urn.future()}::{await provider.id.future()}"
        for name in ("r-vs", "r-dr"):
            assert resources[name].provider == reference


def test_component_input_is_not_mutated_by_building() -> None:
    subject = service()
    before = copy.deepcopy(subject.model_dump())
    build_virtual_service(subject)
    build_destination_rule(subject)
    assert subject.model_dump() == before


# -- where the routes live: sidecars, waypoints, Gateway API ingress -----------------


def placed(placement_args: dict[str, bool], **changes: Any) -> dict[str, Any]:
    from components.ambient import Placement
    from components.traffic import route_manifests

    service = ServiceConfig.model_validate(
        {**yaml.safe_load(REVIEWS), "retries": None, "faultInjection": None, **changes}
    )
    return route_manifests(service, None, "svc", Placement(**placement_args))


def test_sidecar_namespaces_keep_virtual_services_and_destination_rules() -> None:
    assert set(placed({}, expose=None)) == {"vs", "dr"}


def test_a_waypoint_routes_with_an_httproute_between_version_services() -> None:
    manifests = placed({"ambient": True, "waypoint": True}, expose=None)
    assert set(manifests) == {"route", "service-v1", "service-v2", "dr-v1", "dr-v2"}
    assert manifests["route"]["kind"] == "HTTPRoute"
    rule = manifests["dr-v2"]["spec"]
    assert rule["host"] == "reviews-v2.shop.svc.cluster.local"
    assert rule["trafficPolicy"]["tls"] == {"mode": "ISTIO_MUTUAL"}
    # Nothing to route: no route, and the service's own rule carries its policy.
    plain = placed(
        {"ambient": True, "waypoint": True},
        expose=None,
        versions={},
        routes=[],
        timeout=None,
        mirror=None,
    )
    assert set(plain) == {"dr"}


def test_ztunnel_alone_routes_nothing_and_a_gateway_hands_requests_to_the_service() -> None:
    bare = {"versions": {}, "routes": [], "timeout": None, "mirror": None, "circuitBreaker": None}
    assert placed({"ambient": True}, expose=None, **bare) == {}
    exposed = placed({"ambient": True}, **bare)
    (route,) = exposed["gateway-vs"]["spec"]["http"]
    assert route == {
        "name": "default",
        "match": [{"uri": {"prefix": "/reviews"}}],
        "route": [
            {"destination": {"host": "reviews.shop.svc.cluster.local", "port": {"number": 9080}}}
        ],
    }
    whole_host = placed({"ambient": True}, expose={"gateway": "ingress", "host": "a.b"}, **bare)
    assert "match" not in whole_host["gateway-vs"]["spec"]["http"][0]


def test_a_gateway_api_ingress_routes_sidecar_services_itself() -> None:
    manifests = placed({"gateway_api_exposure": True})
    assert {"vs", "dr", "gateway-route", "service-v1", "service-v2"} <= set(manifests)
    assert "gateway-vs" not in manifests
    backends = manifests["gateway-route"]["spec"]["rules"][-1]["backendRefs"]
    assert [b["name"] for b in backends] == ["reviews-v1", "reviews-v2"]


def test_what_a_placement_cannot_carry_fails_before_anything_is_built() -> None:
    with pytest.raises(ConfigError) as raised:
        placed({"ambient": True, "waypoint": True}, retries={"attempts": 2})
    assert [p.path for p in raised.value.problems] == ["svc.retries"]


def test_a_version_services_destination_rule_carries_the_services_policy() -> None:
    from components.traffic import build_version_destination_rule

    service = ServiceConfig.model_validate(yaml.safe_load(REVIEWS))
    rule = build_version_destination_rule(service, "v2")
    assert rule == {
        "apiVersion": "networking.istio.io/v1",
        "kind": "DestinationRule",
        "metadata": {"name": "reviews-v2", "namespace": "shop"},
        "spec": {
            "host": "reviews-v2.shop.svc.cluster.local",
            "trafficPolicy": build_destination_rule(service)["spec"]["trafficPolicy"],
        },
    }
    assert "subsets" not in rule["spec"]


@pytest.mark.parametrize(
    "changes",
    [
        {"routes": [], "timeout": None, "mirror": None},  # versions alone
        {"versions": {}, "routes": [], "mirror": None},  # a timeout alone
    ],
)
def test_a_waypoint_route_for_versions_alone_or_a_timeout_alone(changes: dict[str, Any]) -> None:
    manifests = placed({"ambient": True, "waypoint": True}, expose=None, **changes)
    assert "route" in manifests
