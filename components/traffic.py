"""How requests reach a service: its VirtualService(s) and DestinationRule, built together.

The DestinationRule defines one subset per configured version and the VirtualService
routes only to those versions, so a route to a subset that does not exist cannot be
written (Istio would accept it and drop the traffic; `istioctl analyze` calls it
IST0101). Both come from the same `ServiceConfig`:

- the mesh VirtualService (`<name>`, host `<name>.<namespace>.svc.cluster.local`):
  header/path routes first, then the weighted split across versions;
- when the service is exposed, a second VirtualService (`<name>-gateway`) binds the
  same routes to the gateway host, kept under the exposed path prefix. Two objects
  rather than one bound to both: a VirtualService bound to `mesh` and to the public
  host would also capture in-mesh calls to that public host;
- the DestinationRule: `ISTIO_MUTUAL` TLS, connection pool and outlier detection.

Builders are pure; `ServiceRoute` registers their output.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi

from components import naming
from components.ambient import SIDECARS, Placement, placement_problems
from components.errors import ConfigError
from components.gateway_api import gateway_route, mesh_route, version_service_manifest
from components.k8s import Manifest, child_options, register_manifest
from components.service_config import (
    DEFAULT_ROUTE,
    CircuitBreaker,
    Route,
    ServiceConfig,
    StringMatch,
    check_service,
    route_name,
    service_host,
    subset_labels,
)


def gateway_virtual_service_name(service: str) -> str:
    """Name of the VirtualService binding a service to its gateway host."""
    return f"{service}-gateway"


# --------------------------------------------------------------------------------------
# Builders
# --------------------------------------------------------------------------------------


def _destination(service: ServiceConfig, subset: str | None) -> dict[str, Any]:
    destination: dict[str, Any] = {"host": service.host, "port": {"number": service.port}}
    if subset is not None:
        destination["subset"] = subset
    return destination


def _weighted(service: ServiceConfig) -> list[dict[str, Any]]:
    """The split across versions (every version listed, 0% ones too, so the split reads
    whole); the service itself when it has no versions."""
    if not service.versions:
        return [{"destination": _destination(service, None), "weight": 100}]
    return [
        {"destination": _destination(service, name), "weight": version.weight}
        for name, version in service.versions.items()
    ]


def _policies(service: ServiceConfig) -> dict[str, Any]:
    """What applies to every route of the service: timeout, retries, faults, mirroring.

    Built afresh for each route: shared dicts would come out as YAML anchors in rendered
    manifests and let a change to one route leak into the others.
    """
    policies: dict[str, Any] = {}
    if service.timeout is not None:
        policies["timeout"] = service.timeout
    if service.retries is not None:
        retries = service.retries
        policies["retries"] = {"attempts": retries.attempts}
        if retries.per_try_timeout is not None:
            policies["retries"]["perTryTimeout"] = retries.per_try_timeout
        if retries.retry_on is not None:
            policies["retries"]["retryOn"] = retries.retry_on
    fault = service.fault_injection
    if fault is not None:
        policies["fault"] = {}
        if fault.delay is not None:
            policies["fault"]["delay"] = {
                "fixedDelay": fault.delay.fixed_delay,
                "percentage": {"value": fault.delay.percent},
            }
        if fault.abort is not None:
            policies["fault"]["abort"] = {
                "httpStatus": fault.abort.http_status,
                "percentage": {"value": fault.abort.percent},
            }
    if service.mirror is not None:
        policies["mirror"] = _destination(service, service.mirror.to)
        policies["mirrorPercentage"] = {"value": service.mirror.percent}
    return policies


def _match(route: Route, uri: StringMatch | None) -> dict[str, Any]:
    match: dict[str, Any] = {}
    if route.headers:
        match["headers"] = {name: value.as_istio() for name, value in route.headers.items()}
    if uri is not None:
        match["uri"] = uri.as_istio()
    return match


def _http_routes(service: ServiceConfig, path_prefix: str | None) -> list[dict[str, Any]]:
    """Header/path routes in order, then the weighted default.

    With `path_prefix` (the gateway side of an exposed service) every route also
    requires it: a route without a path match gets the prefix as its path.
    """
    prefix = StringMatch(prefix=path_prefix) if path_prefix is not None else None
    routes = []
    for index, route in enumerate(service.routes):
        routes.append(
            {
                "name": route_name(route, index),
                "match": [_match(route, route.path or prefix)],
                "route": [{"destination": _destination(service, route.to), "weight": 100}],
                **_policies(service),
            }
        )
    default: dict[str, Any] = {"name": DEFAULT_ROUTE}
    if prefix is not None:
        default["match"] = [{"uri": prefix.as_istio()}]
    routes.append({**default, "route": _weighted(service), **_policies(service)})
    return routes


def _check(service: ServiceConfig) -> None:
    """Builders only accept services whose routes name existing versions."""
    problems = check_service(service, service.name)
    if problems:
        raise ConfigError(problems)


def build_virtual_service(service: ServiceConfig) -> Manifest:
    """The in-mesh VirtualService of `service`: routes, then the weighted split."""
    _check(service)
    return {
        "apiVersion": naming.NETWORKING_API,
        "kind": "VirtualService",
        "metadata": {"name": service.name, "namespace": service.namespace},
        "spec": {"hosts": [service.host], "http": _http_routes(service, None)},
    }


def _to_the_service(service: ServiceConfig, path_prefix: str | None) -> list[dict[str, Any]]:
    """One route handing every request (under `path_prefix`) to the service itself."""
    route: dict[str, Any] = {"name": DEFAULT_ROUTE}
    if path_prefix is not None:
        route["match"] = [{"uri": StringMatch(prefix=path_prefix).as_istio()}]
    return [{**route, "route": [{"destination": _destination(service, None)}]}]


def build_gateway_virtual_service(
    service: ServiceConfig, gateway: str, split: bool = True
) -> Manifest:
    """The VirtualService binding `service` to `service.expose.host` on `gateway`.

    `gateway` is the Istio `Gateway` object as `<namespace>/<name>`. `split`: the
    gateway applies the service's routes and split itself (sidecar namespaces); else it
    hands requests to the service, whose waypoint routes them (ambient).
    """
    _check(service)
    if service.expose is None:
        raise ValueError(f"service {service.name} is not exposed (no `expose`)")
    prefix = service.expose.path_prefix
    return {
        "apiVersion": naming.NETWORKING_API,
        "kind": "VirtualService",
        "metadata": {
            "name": gateway_virtual_service_name(service.name),
            "namespace": service.namespace,
        },
        "spec": {
            "hosts": [service.expose.host],
            "gateways": [gateway],
            "http": _http_routes(service, prefix) if split else _to_the_service(service, prefix),
        },
    }


def _circuit_breaking(breaker: CircuitBreaker) -> dict[str, Any]:
    """`connectionPool` and `outlierDetection`, with only the limits that are set."""
    tcp = {"maxConnections": breaker.max_connections}
    http = {
        "http1MaxPendingRequests": breaker.max_pending_requests,
        "http2MaxRequests": breaker.max_requests,
    }
    outlier = {
        "consecutive5xxErrors": breaker.consecutive_5xx_errors,
        "interval": breaker.interval,
        "baseEjectionTime": breaker.base_ejection_time,
        "maxEjectionPercent": breaker.max_ejection_percent,
    }
    pool = {
        key: {name: value for name, value in settings.items() if value is not None}
        for key, settings in (("tcp", tcp), ("http", http))
    }
    policy: dict[str, Any] = {}
    if any(pool.values()):
        policy["connectionPool"] = {key: value for key, value in pool.items() if value}
    outlier_set = {name: value for name, value in outlier.items() if value is not None}
    if outlier_set:
        policy["outlierDetection"] = outlier_set
    return policy


def _traffic_policy(service: ServiceConfig) -> dict[str, Any]:
    """Mutual TLS and circuit breaking.

    `ISTIO_MUTUAL` is explicit rather than left to auto-mTLS, so the intent survives a
    mesh-wide setting change and the policy pack can check it (a waypoint ignores it:
    HBONE is mutual TLS already).
    """
    policy: dict[str, Any] = {"tls": {"mode": "ISTIO_MUTUAL"}}
    if service.circuit_breaker is not None:
        policy |= _circuit_breaking(service.circuit_breaker)
    return policy


def build_destination_rule(service: ServiceConfig) -> Manifest:
    """The DestinationRule of `service`: mutual TLS, circuit breaking, one subset per version."""
    spec: dict[str, Any] = {"host": service.host, "trafficPolicy": _traffic_policy(service)}
    if service.versions:
        spec["subsets"] = [
            {"name": name, "labels": subset_labels(name)} for name in service.versions
        ]
    return {
        "apiVersion": naming.NETWORKING_API,
        "kind": "DestinationRule",
        "metadata": {"name": service.name, "namespace": service.namespace},
        "spec": spec,
    }


def build_version_destination_rule(service: ServiceConfig, version: str) -> Manifest:
    """The DestinationRule of one version's Service (components.gateway_api): the
    service's traffic policy, for the routes that reach the version through it."""
    name = naming.version_service(service.name, version)
    return {
        "apiVersion": naming.NETWORKING_API,
        "kind": "DestinationRule",
        "metadata": {"name": name, "namespace": service.namespace},
        "spec": {
            "host": service_host(name, service.namespace),
            "trafficPolicy": _traffic_policy(service),
        },
    }


def _version_backends(service: ServiceConfig) -> dict[str, Manifest]:
    """Each version's Service and its DestinationRule: what Gateway API routes split
    between (they name Services, not subsets)."""
    manifests = {}
    for version in service.versions:
        manifests[f"service-{version}"] = version_service_manifest(service, version)
        manifests[f"dr-{version}"] = build_version_destination_rule(service, version)
    return manifests


def routes_requests(service: ServiceConfig) -> bool:
    """Whether the service asks for anything a route does: a route that only hands
    requests to the service itself would be an object that does nothing. (Header and
    path routes name versions, so a service with routes has versions.)"""
    return bool(service.versions or service.timeout is not None or service.mirror is not None)


def route_manifests(
    service: ServiceConfig,
    gateway: str | None,
    path: str,
    placement: Placement = SIDECARS,
) -> dict[str, Manifest]:
    """A service's route objects by child-name suffix. Raises `ConfigError`, problems
    reported under `path`, when a route or the mirror names an unknown version, or the
    service asks for what its `placement` cannot do (components.ambient).

    Sidecar namespaces: `vs` and `dr`. Ambient with a waypoint: `route` (the waypoint's
    HTTPRoute, when there is something to route) and `dr` when it routes to the service
    itself. Ambient without a
    waypoint: nothing (ztunnel routes no requests). Versions an HTTPRoute splits
    between get `service-<v>` and `dr-<v>`. Exposed services: `gateway-vs`
    bound to `gateway` (default: the project's gateway named by `expose.gateway`), or
    `gateway-route` through a `gateway-api` gateway.
    """
    problems = check_service(service, path) + placement_problems(service, path, placement)
    if problems:
        raise ConfigError(problems)
    manifests: dict[str, Manifest] = {}
    if not placement.ambient:
        manifests["vs"] = build_virtual_service(service)
        manifests["dr"] = build_destination_rule(service)
    elif placement.waypoint:
        if routes_requests(service):
            manifests["route"] = mesh_route(service)
        if not service.versions:
            manifests["dr"] = build_destination_rule(service)
    if placement.gateway_api_routes:
        manifests |= _version_backends(service)
    if service.expose is None:
        return manifests
    if placement.gateway_api_exposure:
        manifests["gateway-route"] = gateway_route(service, split=not placement.ambient)
    else:
        gateway = gateway or naming.gateway_ref(service.expose.gateway)
        manifests["gateway-vs"] = build_gateway_virtual_service(
            service, gateway, split=not placement.ambient
        )
    return manifests


# --------------------------------------------------------------------------------------
# Component
# --------------------------------------------------------------------------------------

ROUTE_TYPE = "istio-mesh:traffic:ServiceRoute"


@dataclass(frozen=True)
class ServiceRouteArgs:
    """What `ServiceRoute` needs: the service, and where its gateway is."""

    service: ServiceConfig
    """The service: name, namespace, port, versions, routes and traffic policies."""
    gateway: str | None = None
    """The Istio `Gateway` serving `service.expose.host`, as `<namespace>/<name>`.
    Default: the gateway of this project named by `expose.gateway`
    (`istio-<gateway>/<gateway>`)."""


class ServiceRoute(pulumi.ComponentResource):
    """A service's VirtualService(s) and DestinationRule, from one `ServiceConfig`.

    Children: `<name>-vs`, `<name>-dr` and, when exposed, `<name>-gateway-vs`.
    Raises `ConfigError` (and registers nothing) when a route or the mirror names an
    unknown version.
    """

    virtual_service: pulumi.CustomResource
    destination_rule: pulumi.CustomResource
    gateway_virtual_service: pulumi.CustomResource | None
    host: str
    """The in-mesh host the routes serve."""

    def __init__(
        self,
        resource_name: str,
        args: ServiceRouteArgs,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        manifests = route_manifests(args.service, args.gateway, resource_name)
        super().__init__(ROUTE_TYPE, resource_name, None, opts)
        children = {
            suffix: register_manifest(
                f"{resource_name}-{suffix}", manifest, child_options(self, opts)
            )
            for suffix, manifest in manifests.items()
        }
        service = args.service
        self.virtual_service = children["vs"]
        self.destination_rule = children["dr"]
        self.gateway_virtual_service = children.get("gateway-vs")
        self.host = service.host
        self.register_outputs(
            {
                "host": self.host,
                "subsets": list(service.versions),
                "exposed": service.expose is not None,
            }
        )
