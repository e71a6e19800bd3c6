"""Every service of one namespace, its routes, authorization and JWT, under one component.

The stack declares each namespace's services with one `ServiceCatalog`. It used to
declare a `ServiceRoute`, a `ServiceAuthorization` (and a `JwtAuthentication`) per
service; the objects are the same, built by the same functions,
but a component per service and concern doubled what the engine registers in a large
mesh and made each child costlier (`python -m mesh bench`, BENCHMARKS.md), for a
preview that showed nothing more. Each child carries an alias to its name under the
per-service component it lived under, so stacks deployed with that layout keep their live objects:
without it `pulumi up` would create each object anew and delete the old one, and a
VirtualService or AuthorizationPolicy missing for a moment is an outage.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi

from components.ambient import SIDECARS, Placement
from components.authorization import (
    AUTHORIZATION_TYPE,
    JWT_TYPE,
    TRUST_DOMAIN,
    authorization_manifests,
    jwt_manifests,
)
from components.k8s import Manifest, child_options, register_manifest, type_token
from components.service_config import ServiceConfig
from components.traffic import ROUTE_TYPE, route_manifests

CATALOG_TYPE = "istio-mesh:catalog:ServiceCatalog"


@dataclass(frozen=True)
class ServiceGroup:
    """A service's objects of one concern, and the per-service component that held
    them before catalogs (named `<previous_name>`, children `<previous_name>-<suffix>`)."""

    previous_type: str
    previous_name: str
    manifests: dict[str, Manifest]
    """By child-name suffix."""

    def previous_urn(self, suffix: str) -> str:
        """The URN the child `suffix` had: its old name under its old component, which
        the stack declared at its top level.

        A URN rather than a `pulumi.Alias(name=..., parent=...)`: the SDK resolves an
        `Alias` through several Outputs per resource, which made the aliases cost more
        than everything else the catalog does (`python -m mesh bench`).
        """
        child_type = type_token(self.manifests[suffix])
        return (
            f"urn:pulumi:{pulumi.get_stack()}::{pulumi.get_project()}::"
            f"{self.previous_type}${child_type}::{self.previous_name}-{suffix}"
        )


def service_groups(
    service: ServiceConfig, trust_domain: str, placement: Placement = SIDECARS
) -> list[ServiceGroup]:
    """Route, authorization and JWT objects of a service. Raises `ConfigError` when a
    route or the mirror names an unknown version, or `placement` cannot carry it."""
    stem = f"{service.namespace}-{service.name}"
    route = f"service-{stem}"
    return [
        ServiceGroup(ROUTE_TYPE, route, route_manifests(service, None, route, placement)),
        ServiceGroup(
            AUTHORIZATION_TYPE,
            f"authz-{stem}",
            authorization_manifests(service, trust_domain=trust_domain, placement=placement),
        ),
        ServiceGroup(JWT_TYPE, f"jwt-{stem}", jwt_manifests(service, placement)),
    ]


@dataclass(frozen=True)
class ServiceCatalogArgs:
    """What `ServiceCatalog` needs: one namespace's services and the mesh's identities."""

    namespace: str
    """The namespace every service lives in."""
    services: Sequence[ServiceConfig]
    """The services; each exposed one through this project's gateway `expose.gateway`."""
    trust_domain: str = TRUST_DOMAIN
    """The mesh's trust domain (`istio-mesh:istio.trustDomain`)."""
    placement: Placement = SIDECARS
    """How the namespace carries traffic (ambient, waypoint); default: sidecars."""
    gateway_api_gateways: Sequence[str] = ()
    """Gateways of `istio-mesh:gateways` that are `api: gateway-api`: services exposed
    through them get an HTTPRoute instead of a VirtualService."""


class ServiceCatalog(pulumi.ComponentResource):
    """The route, authorization and JWT objects of every service of a namespace.

    Children per service, named `<name>-<service>-<suffix>`: `vs`, `dr`, and
    `gateway-vs` when exposed; `allow` when anyone may call it; `request-authentication`
    and `require-jwt` with `jwt`. Raises (and registers nothing) when a service is in
    another namespace or a route names an unknown version.
    """

    objects: dict[str, pulumi.CustomResource]
    """Every child, by resource name."""

    def __init__(
        self,
        resource_name: str,
        args: ServiceCatalogArgs,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        strangers = [s.name for s in args.services if s.namespace != args.namespace]
        if strangers:
            raise ValueError(
                f"services {', '.join(strangers)} are not in namespace {args.namespace}"
            )
        # Build everything first: a bad service leaves nothing registered.
        groups = [
            (f"{resource_name}-{service.name}", group)
            for service in args.services
            for group in service_groups(
                service, args.trust_domain, args.placement.of(service, args.gateway_api_gateways)
            )
        ]
        super().__init__(CATALOG_TYPE, resource_name, None, opts)
        self.objects = {}
        for prefix, group in groups:
            for suffix, manifest in group.manifests.items():
                options = child_options(self, opts, aliases=[group.previous_urn(suffix)])
                name = f"{prefix}-{suffix}"
                self.objects[name] = register_manifest(name, manifest, options)
        self.register_outputs({"services": [service.name for service in args.services]})
