"""ServiceAuthorization and JwtAuthentication: principals, ALLOW rules, JWT objects."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from components.authorization import (
    AllowRule,
    JwtAuthentication,
    JwtAuthenticationArgs,
    ServiceAuthorization,
    ServiceAuthorizationArgs,
    allow_rules,
    authorization_manifests,
    build_allow_policy,
    build_request_authentication,
    build_require_jwt_policy,
    jwt_manifests,
    parse_principal,
    principal,
    selected_workload,
    workload_selector,
)
from components.service_config import ServiceConfig
from mesh.reference import load_reference
from tests.components.test_traffic import PulumiMockCase, with_changes

REVIEWS = """
name: reviews
namespace: shop
port: 9080
allowFrom:
  - {namespace: shop, serviceAccount: productpage}
  - {namespace: batch, methods: [GET], paths: ["/reviews/*"], ports: [9080]}
expose: {gateway: ingress, host: shop.example.com, pathPrefix: /reviews}
jwt: {issuer: https://auth.example.com, jwksUri: https://auth.example.com/jwks.json}
"""
GATEWAY = "cluster.local/ns/istio-ingress/sa/istio-ingress"


def service(**changes: Any) -> ServiceConfig:
    return ServiceConfig.model_validate(with_changes(REVIEWS, **changes))


def test_principal_is_the_spiffe_path_of_a_service_account() -> None:
    assert principal("shop", "productpage") == "cluster.local/ns/shop/sa/productpage"
    assert principal("shop", "productpage", "corp.example") == "corp.example/ns/shop/sa/productpage"
    assert parse_principal(principal("shop", "productpage", "corp.example")) == (
        "shop",
        "productpage",
    )
    for other in ("*", "cluster.local/ns/shop", "cluster.local/ns//sa/x", "https://iss/sub"):
        assert parse_principal(other) is None


def test_workload_selector_round_trip() -> None:
    assert workload_selector("reviews") == {"matchLabels": {"app": "reviews"}}
    assert selected_workload(workload_selector("reviews")) == "reviews"
    assert selected_workload({"matchLabels": {"istio": "ingress"}}) is None
    assert selected_workload(None) is None


def test_one_rule_per_caller_and_one_for_the_gateway() -> None:
    rules = allow_rules(service(), gateway_principal=GATEWAY)
    policy = build_allow_policy("reviews", "shop", rules)
    assert policy == {
        "apiVersion": "security.istio.io/v1",
        "kind": "AuthorizationPolicy",
        "metadata": {"name": "reviews-allow", "namespace": "shop"},
        "spec": {
            "selector": {"matchLabels": {"app": "reviews"}},
            "action": "ALLOW",
            "rules": [
                {"from": [{"source": {"principals": ["cluster.local/ns/shop/sa/productpage"]}}]},
                {
                    "from": [{"source": {"namespaces": ["batch"]}}],
                    "to": [
                        {
                            "operation": {
                                "methods": ["GET"],
                                "paths": ["/reviews/*"],
                                "ports": ["9080"],
                            }
                        }
                    ],
                },
                {
                    "from": [{"source": {"principals": [GATEWAY]}}],
                    "to": [{"operation": {"paths": ["/reviews*"]}}],
                },
            ],
        },
    }


def test_trust_domain_reaches_every_principal() -> None:
    rules = allow_rules(service(expose=None), trust_domain="corp.example")
    assert rules[0].principals == ["corp.example/ns/shop/sa/productpage"]


def test_a_gateway_serving_the_whole_host_may_reach_every_path() -> None:
    whole = service(allowFrom=None, expose={"gateway": "ingress", "host": "shop.example.com"})
    (rule,) = allow_rules(whole, gateway_principal=GATEWAY)
    assert rule.as_istio() == {"from": [{"source": {"principals": [GATEWAY]}}]}


def test_an_exposed_service_needs_its_gateway_principal() -> None:
    with pytest.raises(ValueError, match="exposed"):
        allow_rules(service())


def test_nobody_allowed_means_no_policy() -> None:
    assert (
        build_allow_policy("reviews", "shop", allow_rules(service(allowFrom=None, expose=None)))
        is None
    )


def test_a_rule_without_callers_is_refused() -> None:
    """`rules: [{}]` would allow everyone: the builder never writes one."""
    with pytest.raises(ValueError, match="allow anyone"):
        build_allow_policy("reviews", "shop", [AllowRule(methods=["GET"])])


def test_jwt_objects() -> None:
    jwt = service(jwt={**yaml.safe_load(REVIEWS)["jwt"], "audiences": ["shop"]}).jwt
    assert jwt is not None
    authentication = build_request_authentication("reviews", "shop", jwt)
    assert authentication["metadata"] == {"name": "reviews-jwt", "namespace": "shop"}
    assert authentication["spec"] == {
        "selector": {"matchLabels": {"app": "reviews"}},
        "jwtRules": [
            {
                "issuer": "https://auth.example.com",
                "jwksUri": "https://auth.example.com/jwks.json",
                "audiences": ["shop"],
            }
        ],
    }
    requirement = build_require_jwt_policy("reviews", "shop", jwt.issuer)
    assert requirement["spec"] == {
        "selector": {"matchLabels": {"app": "reviews"}},
        "action": "DENY",
        "rules": [{"from": [{"source": {"notRequestPrincipals": ["https://auth.example.com/*"]}}]}],
    }


def test_a_service_without_jwt_has_no_jwt_objects() -> None:
    assert jwt_manifests(service(jwt=None)) == {}


def test_manifests_are_valid_for_istio(reference_dir: Path) -> None:
    reference = load_reference(reference_dir)
    subject = service()
    assert subject.jwt is not None
    manifests = [
        build_allow_policy("reviews", "shop", allow_rules(subject, gateway_principal=GATEWAY)),
        build_request_authentication("reviews", "shop", subject.jwt),
        build_require_jwt_policy("reviews", "shop", subject.jwt.issuer),
    ]
    for manifest in manifests:
        assert manifest is not None
        assert reference.validate(manifest) == []


# --------------------------------------------------------------------------------------
# Components, under Pulumi mocks
# --------------------------------------------------------------------------------------


class ServiceAuthorizationTest(PulumiMockCase):
    async def test_allow_policy_with_the_project_gateway_by_default(self) -> None:
        component = ServiceAuthorization("shop-reviews", ServiceAuthorizationArgs(service()))
        resources = await self.registered()
        assert resources["shop-reviews"].typ == "istio-mesh:security:ServiceAuthorization"
        policy = resources["shop-reviews-allow"]
        assert policy.typ == "kubernetes:security.istio.io/v1:AuthorizationPolicy"
        expected = build_allow_policy(
            "reviews", "shop", allow_rules(service(), gateway_principal=GATEWAY)
        )
        assert expected is not None
        assert policy.inputs["spec"] == expected["spec"]
        assert component.policy is not None
        assert (
            await self.parent_type(component.policy) == "istio-mesh:security:ServiceAuthorization"
        )
        assert await self.outputs_of(component) == {"rules": len(expected["spec"]["rules"])}

    async def test_gateway_principal_and_trust_domain_are_arguments(self) -> None:
        ServiceAuthorization(
            "a",
            ServiceAuthorizationArgs(
                service(), gateway_principal="corp/ns/edge/sa/edge", trust_domain="corp"
            ),
        )
        resources = await self.registered()
        rules = resources["a-allow"].inputs["spec"]["rules"]
        principals = [
            p for rule in rules for s in rule["from"] for p in s["source"].get("principals", [])
        ]
        assert principals == ["corp/ns/shop/sa/productpage", "corp/ns/edge/sa/edge"]

    async def test_no_callers_registers_no_policy(self) -> None:
        component = ServiceAuthorization(
            "quiet", ServiceAuthorizationArgs(service(allowFrom=None, expose=None))
        )
        resources = await self.registered()
        assert set(resources) == {"quiet"}
        assert component.policy is None
        assert await self.outputs_of(component) == {"rules": 0}


class JwtAuthenticationTest(PulumiMockCase):
    async def test_request_authentication_and_the_policy_requiring_a_token(self) -> None:
        component = JwtAuthentication("shop-reviews", JwtAuthenticationArgs(service()))
        resources = await self.registered()
        assert resources["shop-reviews"].typ == "istio-mesh:security:JwtAuthentication"
        authentication = resources["shop-reviews-request-authentication"]
        assert authentication.typ == "kubernetes:security.istio.io/v1:RequestAuthentication"
        assert authentication.inputs["spec"]["jwtRules"][0]["issuer"] == "https://auth.example.com"
        requirement = resources["shop-reviews-require-jwt"]
        assert requirement.inputs["spec"]["action"] == "DENY"
        for child in (component.request_authentication, component.require_jwt):
            assert await self.parent_type(child) == "istio-mesh:security:JwtAuthentication"
        assert await self.outputs_of(component) == {"issuer": "https://auth.example.com"}

    async def test_a_service_without_jwt_is_a_usage_error(self) -> None:
        with self.assertRaises(ValueError):
            JwtAuthentication("x", JwtAuthenticationArgs(service(jwt=None)))
        assert await self.registered() == {}


# -- ambient: where each policy attaches ---------------------------------------------

AMBIENT_SERVICE = ServiceConfig.model_validate(
    {
        "name": "catalog",
        "namespace": "store",
        "port": 8080,
        "allowFrom": [{"namespace": "shop", "serviceAccount": "web", "methods": ["GET"]}],
        "jwt": {"issuer": "https://auth.example.com", "jwksUri": "https://auth.example.com/k"},
        "expose": {"gateway": "ingress", "host": "a.example.com", "pathPrefix": "/catalog"},
    }
)


def test_with_a_waypoint_every_policy_of_the_service_attaches_to_it() -> None:
    from components.ambient import Placement

    placement = Placement(ambient=True, waypoint=True)
    (allow,) = authorization_manifests(AMBIENT_SERVICE, placement=placement).values()
    target = [{"group": "", "kind": "Service", "name": "catalog"}]
    assert allow["spec"]["targetRefs"] == target and "selector" not in allow["spec"]
    # The gateway keeps to its path: the waypoint enforces it.
    assert allow["spec"]["rules"][-1]["to"] == [{"operation": {"paths": ["/catalog*"]}}]
    jwt = jwt_manifests(AMBIENT_SERVICE, placement)
    assert [m["spec"]["targetRefs"] for m in jwt.values()] == [target, target]
    assert all("selector" not in m["spec"] for m in jwt.values())


def test_without_a_waypoint_ztunnel_gets_l4_rules_on_the_pods() -> None:
    from components.ambient import Placement

    l4 = AMBIENT_SERVICE.model_copy(update={"allow_from": [], "jwt": None})
    (allow,) = authorization_manifests(l4, placement=Placement(ambient=True)).values()
    assert allow["spec"]["selector"] == {"matchLabels": {"app": "catalog"}}
    # ztunnel cannot read paths: the gateway's own route keeps it under its prefix.
    assert allow["spec"]["rules"] == [
        {"from": [{"source": {"principals": ["cluster.local/ns/istio-ingress/sa/istio-ingress"]}}]}
    ]


def test_a_waypoint_gets_in_through_ztunnel_and_allows_nothing_itself() -> None:
    from components.authorization import waypoint_policies

    assert waypoint_policies("store", "example.org") == {
        "allow-waypoint": {
            "apiVersion": "security.istio.io/v1",
            "kind": "AuthorizationPolicy",
            "metadata": {"name": "allow-waypoint", "namespace": "store"},
            "spec": {
                "action": "ALLOW",
                "rules": [
                    {"from": [{"source": {"principals": ["example.org/ns/store/sa/waypoint"]}}]}
                ],
            },
        },
        "waypoint-default-deny": {
            "apiVersion": "security.istio.io/v1",
            "kind": "AuthorizationPolicy",
            "metadata": {"name": "waypoint-default-deny", "namespace": "store"},
            "spec": {
                "targetRefs": [
                    {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "waypoint"}
                ]
            },
        },
    }
