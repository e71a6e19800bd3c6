"""ServiceCatalog: a namespace's services under one component, moved without replacement."""

from __future__ import annotations

from typing import Any

import pytest

from components.authorization import authorization_manifests, jwt_manifests
from components.catalog import ServiceCatalog, ServiceCatalogArgs
from components.errors import ConfigError
from components.traffic import route_manifests
from tests.components.test_traffic import PulumiMockCase, service
from tests.conftest import run_config

JWT = {"issuer": "https://auth.example.com", "jwksUri": "https://auth.example.com/jwks"}


class ServiceCatalogTest(PulumiMockCase):
    async def test_children_are_named_from_the_catalog_and_built_by_the_same_functions(
        self,
    ) -> None:
        reviews = service(jwt=JWT)
        ratings = service(name="ratings", expose=None, mirror=None, allowFrom=None)
        catalog = ServiceCatalog("services-shop", ServiceCatalogArgs("shop", [reviews, ratings]))
        resources = await self.registered()
        expected: dict[str, Any] = {}
        for subject in (reviews, ratings):
            prefix = f"services-shop-{subject.name}"
            manifests = {
                **route_manifests(subject, None, "x"),
                **authorization_manifests(subject),
                **jwt_manifests(subject),
            }
            expected |= {f"{prefix}-{suffix}": m for suffix, m in manifests.items()}
        assert set(resources) == {"services-shop", *expected}
        assert resources["services-shop"].typ == "istio-mesh:catalog:ServiceCatalog"
        for name, manifest in expected.items():
            assert resources[name].inputs["spec"] == manifest["spec"]
            assert await self.parent_type(catalog.objects[name]) == (
                "istio-mesh:catalog:ServiceCatalog"
            )
        # Nobody may call ratings: no ALLOW policy (the namespace denies by default).
        assert "services-shop-ratings-allow" not in resources
        assert {"services-shop-reviews-allow", "services-shop-reviews-require-jwt"} <= set(
            resources
        )

    async def test_a_service_of_another_namespace_registers_nothing(self) -> None:
        with self.assertRaises(ValueError) as raised:
            ServiceCatalog("services-shop", ServiceCatalogArgs("shop", [service(namespace="ops")]))
        assert "reviews" in str(raised.exception) and "shop" in str(raised.exception)
        assert await self.registered() == {}

    async def test_a_route_to_an_unknown_version_registers_nothing(self) -> None:
        good = service(name="ratings")
        broken = service(mirror={"to": "v7", "percent": 1})
        with self.assertRaises(ConfigError) as raised:
            ServiceCatalog("services-shop", ServiceCatalogArgs("shop", [good, broken]))
        assert "mirror.to: unknown version 'v7'" in str(raised.exception)
        assert await self.registered() == {}


STACK = {
    "istio": {"revisions": [{"version": "1.30.5"}]},
    "gateways": [
        {
            "name": "ingress",
            "servers": [{"hosts": ["shop.example.com"], "tls": {"credentialName": "shop-tls"}}],
        }
    ],
    "namespaces": [{"name": "shop"}],
    "services": [
        {
            "name": "reviews",
            "namespace": "shop",
            "port": 9080,
            "versions": {"v1": {"weight": 100}},
            "expose": {"gateway": "ingress", "host": "shop.example.com"},
            "allowFrom": [{"namespace": "shop", "serviceAccount": "productpage"}],
            "jwt": JWT,
        }
    ],
}

PREVIOUS = {
    # child suffix: (the per-service component it lived under, its name there)
    "vs": ("istio-mesh:traffic:ServiceRoute", "service-shop-reviews"),
    "dr": ("istio-mesh:traffic:ServiceRoute", "service-shop-reviews"),
    "gateway-vs": ("istio-mesh:traffic:ServiceRoute", "service-shop-reviews"),
    "allow": ("istio-mesh:security:ServiceAuthorization", "authz-shop-reviews"),
    "request-authentication": ("istio-mesh:security:JwtAuthentication", "jwt-shop-reviews"),
    "require-jwt": ("istio-mesh:security:JwtAuthentication", "jwt-shop-reviews"),
}


@pytest.mark.parametrize("suffix", sorted(PREVIOUS))
def test_each_child_aliases_its_urn_under_the_per_service_components(suffix: str) -> None:
    """Stacks deployed before catalogs keep their live objects: the engine matches each
    child to the URN it had (old name, under `ServiceRoute`, ... at the stack's top)."""
    run = run_config(STACK, stack="dev")
    (child,) = [r for r in run.resources if r.name == f"services-shop-reviews-{suffix}"]
    component, old_name = PREVIOUS[suffix]
    assert child.aliases == [
        f"urn:pulumi:dev::istio-mesh::{component}${child.type}::{old_name}-{suffix}"
    ]
