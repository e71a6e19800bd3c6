"""What a service may ask for where the Gateway API or ztunnel carries its traffic.

Ambient pods have no proxy of their own. Without a waypoint, ztunnel handles their
traffic at L4 only: it drops ALLOW rules with HTTP attributes (so under default deny
their callers are denied) and applies no VirtualService or DestinationRule. With a
waypoint, routing is a Gateway API `HTTPRoute` (VirtualServices on waypoints are alpha
and must not be mixed with HTTPRoutes), and some Istio settings have no standard-channel
form at all. Each such setting is a config error naming the service, never a route or
policy that silently does nothing.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, replace

from components.errors import ConfigProblem
from components.service_config import ServiceConfig


@dataclass(frozen=True)
class Placement:
    """How a service's traffic is carried, from its namespace and its gateway."""

    ambient: bool = False
    """Its namespace is ambient."""
    waypoint: bool = False
    """Its (ambient) namespace has a waypoint."""
    gateway_api_exposure: bool = False
    """It is exposed through a `gateway-api` gateway."""

    def of(self, service: ServiceConfig, gateway_api_gateways: Collection[str]) -> Placement:
        """The namespace's placement as it applies to `service`, whose exposure is
        through the Gateway API when its gateway is one of `gateway_api_gateways`."""
        exposed = service.expose is not None and service.expose.gateway in gateway_api_gateways
        return replace(self, gateway_api_exposure=exposed)

    @property
    def gateway_api_routes(self) -> bool:
        """Whether an `HTTPRoute` carries the service's own routes and split: the
        waypoint's, or (sidecar namespaces) the Gateway API ingress's."""
        return (self.ambient and self.waypoint) or (self.gateway_api_exposure and not self.ambient)

    @property
    def l7(self) -> bool:
        """Whether anything enforces HTTP-level settings for the service."""
        return not self.ambient or self.waypoint


SIDECARS = Placement()
"""The placement of a sidecar namespace's services: every proxy is an Envoy."""


def _l7_settings(service: ServiceConfig) -> list[str]:
    """The service's settings that only an L7 proxy applies."""
    found = [
        key
        for key, value in (
            ("versions", service.versions),
            ("routes", service.routes),
            ("timeout", service.timeout),
            ("retries", service.retries),
            ("faultInjection", service.fault_injection),
            ("mirror", service.mirror),
            ("circuitBreaker", service.circuit_breaker),
            ("jwt", service.jwt),
        )
        if value
    ]
    for index, caller in enumerate(service.allow_from):
        if caller.methods or caller.paths:
            found.append(f"allowFrom[{index}]")
    return found


def placement_problems(
    service: ServiceConfig, path: str, placement: Placement
) -> list[ConfigProblem]:
    """Settings `placement` cannot honour, at `path` (the service's config path)."""
    problems = []
    if not placement.l7:
        for key in _l7_settings(service):
            problems.append(
                ConfigProblem(
                    f"{path}.{key}",
                    f"service {service.name} is in ambient namespace {service.namespace} "
                    "without a waypoint: ztunnel enforces L4 only and would ignore this "
                    "(or, for HTTP rules, deny every caller); set waypoint: true on the "
                    "namespace or remove it",
                )
            )
        return problems
    if not placement.gateway_api_routes:
        return problems
    gateway = service.expose.gateway if service.expose else ""
    where = (
        "its namespace's waypoint routes it with an HTTPRoute"
        if placement.ambient
        else f"gateway {gateway} routes it with an HTTPRoute"
    )
    if service.fault_injection is not None:
        problems.append(
            ConfigProblem(
                f"{path}.faultInjection",
                f"service {service.name}: {where}, and the Gateway API has no fault "
                "injection (waypoints do not apply VirtualService faults)",
            )
        )
    if service.retries is not None:
        problems.append(
            ConfigProblem(
                f"{path}.retries",
                f"service {service.name}: {where}, and HTTPRoute retries exist only in the "
                "Gateway API's experimental channel (the standard CRDs drop the field)",
            )
        )
    for index, route in enumerate(service.routes):
        for header, match in route.headers.items():
            if match.prefix is not None:
                problems.append(
                    ConfigProblem(
                        f"{path}.routes[{index}].headers.{header}",
                        f"service {service.name}: {where}, whose header matches are exact "
                        "or regex: write it as {regex: '<prefix>.*'}",
                    )
                )
    return problems
