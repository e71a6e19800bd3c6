"""Kubernetes Gateway API objects: ambient waypoints, service routes, and ingress.

Istio treats the Gateway API as its traffic API for ambient mode, where a waypoint (a
`Gateway` of class `istio-waypoint`) does a namespace's L7 work, and as an alternative
to its own `Gateway` at the ingress (class `istio`, deployed by istiod itself).

Builders here are pure, from the same `ServiceConfig` the Istio-API builders read
(components.traffic), so a service reads the same in either API:

- a service's mesh route is an `HTTPRoute` parented to its own Service (GAMMA), served
  by the namespace's waypoint; the exposure route is one parented to the ingress
  `Gateway`'s HTTPS listener for the host;
- a Gateway API route splits traffic between Services, not subsets, so each version of
  a routed service gets a Service of its own (`reviews-v2`, pods `app: reviews,
  version: v2`), and the service's traffic policy (a DestinationRule) covers each;
- settings with no standard-channel form are refused at config time
  (components.ambient), never dropped here.
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from typing import Any

import yaml

from components import naming
from components.authorization import WORKLOAD_LABEL
from components.config import GatewaySettings
from components.helm import spread_across_zones_and_hosts
from components.k8s import SKIP_AWAIT, Manifest
from components.service_config import (
    DEFAULT_ROUTE,
    Mirror,
    ServiceConfig,
    StringMatch,
    route_name,
    subset_labels,
)

HBONE_PORT = 15008
"""The port waypoints (and ztunnel) receive mesh traffic on, tunnelled in HBONE."""

SERVICE_ACCOUNT_ANNOTATION = "gateway.istio.io/service-account"
SERVICE_TYPE_ANNOTATION = "networking.istio.io/service-type"
"""Annotations on a `Gateway` istiod reads when it deploys it: the pods' service account
(named here, so the principal policies name is derived in one place, not from istiod's
`<name>-<class>` default) and the Service type."""

GATEWAY_NAME_LABEL = "gateway.networking.k8s.io/gateway-name"
"""The label istiod gives the pods of a Gateway it deploys."""

_UNITS_MS = (("h", 3_600_000), ("m", 60_000), ("s", 1_000), ("ms", 1))


def gateway_api_duration(duration: str) -> str:
    """An Istio duration as the components store it (`10s`, `1.5s`) in the Gateway
    API's form (GEP-2257: whole units h/m/s/ms, at most 5 digits each): `1s500ms`."""
    milliseconds = int(Fraction(duration.removesuffix("s")) * 1000)
    parts = []
    for unit, size in _UNITS_MS:
        count, milliseconds = divmod(milliseconds, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts) or "0s"


def _service_ref(name: str, port: int, weight: int | None = None) -> dict[str, Any]:
    ref: dict[str, Any] = {"name": name, "port": port}
    if weight is not None:
        ref["weight"] = weight
    return ref


def _path_match(path: StringMatch) -> dict[str, str]:
    """An Istio path match as an `HTTPPathMatch`. A `prefix` becomes `PathPrefix`, which
    matches whole path segments: `/api` matches `/api/x` but not `/apis`."""
    if path.exact is not None:
        return {"type": "Exact", "value": path.exact}
    if path.prefix is not None:
        return {"type": "PathPrefix", "value": path.prefix}
    assert path.regex is not None
    return {"type": "RegularExpression", "value": path.regex}


def _header_match(name: str, match: StringMatch) -> dict[str, str]:
    if match.exact is not None:
        return {"type": "Exact", "name": name, "value": match.exact}
    if match.regex is not None:
        return {"type": "RegularExpression", "name": name, "value": match.regex}
    # components.ambient refuses prefix header matches before anything is built.
    raise ValueError(f"header {name}: the Gateway API has no prefix match")


def _mirror_filter(service: ServiceConfig, mirror: Mirror) -> dict[str, Any]:
    """A copy of `mirror.percent` of the requests to the version's Service."""
    percent = Fraction(str(mirror.percent))
    share: dict[str, Any]
    if percent.denominator == 1:
        share = {"percent": int(percent)}
    else:  # 0.5% is 1/200: the Gateway API states fractions as numerator/denominator
        of_one = percent / 100
        share = {"fraction": {"numerator": of_one.numerator, "denominator": of_one.denominator}}
    return {
        "type": "RequestMirror",
        "requestMirror": {
            "backendRef": _service_ref(
                naming.version_service(service.name, mirror.to), service.port
            ),
            **share,
        },
    }


def _rule_extras(service: ServiceConfig) -> dict[str, Any]:
    """What every rule of the service carries: mirroring and the timeout."""
    extras: dict[str, Any] = {}
    if service.mirror is not None:
        extras["filters"] = [_mirror_filter(service, service.mirror)]
    if service.timeout is not None:
        extras["timeouts"] = {"request": gateway_api_duration(service.timeout)}
    return extras


def _weighted_refs(service: ServiceConfig) -> list[dict[str, Any]]:
    """The split across the versions' Services (0% ones too, so the split reads whole);
    the service itself when it has no versions."""
    if not service.versions:
        return [_service_ref(service.name, service.port)]
    return [
        _service_ref(naming.version_service(service.name, name), service.port, version.weight)
        for name, version in service.versions.items()
    ]


def route_rules(service: ServiceConfig, path_prefix: str | None = None) -> list[dict[str, Any]]:
    """Header/path routes in order, then the weighted default, as `HTTPRouteRule`s.

    With `path_prefix` (the gateway side of an exposed service) every rule also requires
    it, as the Istio-API gateway route does (components.traffic).
    """
    prefix = StringMatch(prefix=path_prefix) if path_prefix is not None else None
    rules = []
    for index, route in enumerate(service.routes):
        match: dict[str, Any] = {}
        path = route.path or prefix
        if path is not None:
            match["path"] = _path_match(path)
        if route.headers:
            match["headers"] = [_header_match(n, m) for n, m in route.headers.items()]
        rules.append(
            {
                "name": route_name(route, index),
                "matches": [match],
                "backendRefs": [
                    _service_ref(naming.version_service(service.name, route.to), service.port)
                ],
                **_rule_extras(service),
            }
        )
    default: dict[str, Any] = {"name": DEFAULT_ROUTE}
    if prefix is not None:
        default["matches"] = [{"path": _path_match(prefix)}]
    rules.append({**default, "backendRefs": _weighted_refs(service), **_rule_extras(service)})
    return rules


def mesh_route(service: ServiceConfig) -> Manifest:
    """The service's in-mesh `HTTPRoute`: parented to its own Service (GAMMA), so the
    namespace's waypoint applies it to every request sent to the service."""
    return {
        "apiVersion": naming.GATEWAY_API,
        "kind": "HTTPRoute",
        "metadata": {"name": service.name, "namespace": service.namespace},
        "spec": {
            "parentRefs": [
                {"group": "", "kind": "Service", "name": service.name, "port": service.port}
            ],
            "rules": route_rules(service),
        },
    }


def gateway_route(service: ServiceConfig, split: bool) -> Manifest:
    """The `HTTPRoute` exposing `service` on its host through a Gateway API ingress.

    `split`: the route carries the service's own routes and split (sidecar namespaces,
    where nothing after the gateway would apply them); otherwise it hands every request
    under the path prefix to the Service, whose waypoint routes it (ambient).
    """
    expose = service.expose
    if expose is None:
        raise ValueError(f"service {service.name} is not exposed (no `expose`)")
    if split:
        rules = route_rules(service, expose.path_prefix)
    else:
        rule: dict[str, Any] = {"name": DEFAULT_ROUTE}
        if expose.path_prefix is not None:
            rule["matches"] = [{"path": _path_match(StringMatch(prefix=expose.path_prefix))}]
        rules = [{**rule, "backendRefs": [_service_ref(service.name, service.port)]}]
    return {
        "apiVersion": naming.GATEWAY_API,
        "kind": "HTTPRoute",
        "metadata": {
            "name": f"{service.name}-gateway",
            "namespace": service.namespace,
        },
        "spec": {
            "parentRefs": [
                {
                    "group": naming.GATEWAY_API_GROUP,
                    "kind": "Gateway",
                    "name": expose.gateway,
                    "namespace": naming.gateway_namespace(expose.gateway),
                    "sectionName": naming.https_listener(expose.host),
                }
            ],
            "hostnames": [expose.host],
            "rules": rules,
        },
    }


def version_service_manifest(service: ServiceConfig, version: str) -> Manifest:
    """The Service of one version: the service's pods of that version, same port."""
    selector = {WORKLOAD_LABEL: service.name, **subset_labels(version)}
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": naming.version_service(service.name, version),
            "namespace": service.namespace,
            "labels": dict(selector),
            # Pulumi would wait for endpoints: the version's pods, which the application's
            # own deployment brings, maybe later (a version about to start, at 0%).
            "annotations": {SKIP_AWAIT: "true"},
        },
        "spec": {
            "selector": selector,
            # `http` names the protocol for Istio, which would otherwise sniff it.
            "ports": [{"name": "http", "port": service.port, "targetPort": service.port}],
        },
    }


# --------------------------------------------------------------------------------------
# Waypoints
# --------------------------------------------------------------------------------------


WAYPOINT_HA_REPLICAS = (2, 5)
"""A highly available mesh's waypoints: every request of the namespace passes one."""


def waypoint_options(namespace: str) -> Manifest:
    """A highly available waypoint: autoscaled from two pods, spread over zones and nodes,
    a PodDisruptionBudget (istiod deploys one pod and nothing else by default)."""
    minimum, maximum = WAYPOINT_HA_REPLICAS
    return deployment_options(naming.WAYPOINT, namespace, minimum, maximum, True)


def waypoint(namespace: str, high_availability: bool = False) -> Manifest:
    """The namespace's waypoint: istiod deploys it (class `istio-waypoint`) and sends it
    the traffic of every service of a namespace labeled `istio.io/use-waypoint`. In HA,
    deployed with `waypoint_options`."""
    _, account = naming.waypoint_service_account(namespace)
    spec: dict[str, Any] = {"gatewayClassName": naming.WAYPOINT_CLASS}
    if high_availability:
        spec["infrastructure"] = {
            "parametersRef": {
                "group": "",
                "kind": "ConfigMap",
                "name": options_config_map_name(naming.WAYPOINT),
            }
        }
    spec["listeners"] = [{"name": "mesh", "port": HBONE_PORT, "protocol": "HBONE"}]
    return {
        "apiVersion": naming.GATEWAY_API,
        "kind": "Gateway",
        "metadata": {
            "name": naming.WAYPOINT,
            "namespace": namespace,
            # Service traffic only (Istio's default): workloads addressed by pod IP keep
            # going straight to ztunnel.
            "labels": {"istio.io/waypoint-for": "service"},
            "annotations": {SERVICE_ACCOUNT_ANNOTATION: account},
        },
        "spec": spec,
    }


# --------------------------------------------------------------------------------------
# Ingress
# --------------------------------------------------------------------------------------


def ingress_selector(gateway: str) -> dict[str, str]:
    """The pods istiod deploys for the Gateway API ingress `gateway`."""
    return {GATEWAY_NAME_LABEL: gateway}


def options_config_map_name(gateway: str) -> str:
    return f"{gateway}-options"


def ingress_gateway(settings: GatewaySettings, route_namespaces: Sequence[str]) -> Manifest:
    """The ingress `Gateway`: an HTTPS listener per host (its certificate from the
    server's Secret), and plain HTTP that only the redirect route attaches to.

    Routes come from the namespaces of the services exposed through it
    (`route_namespaces`) and nowhere else; the redirect lives beside the Gateway.
    """
    name = settings.name
    https_routes = {
        "namespaces": {
            "from": "Selector",
            "selector": {
                "matchExpressions": [
                    {
                        "key": "kubernetes.io/metadata.name",
                        "operator": "In",
                        "values": sorted(set(route_namespaces)) or [naming.gateway_namespace(name)],
                    }
                ]
            },
        }
    }
    listeners: list[dict[str, Any]] = [
        {
            "name": naming.HTTP_LISTENER,
            "port": 80,
            "protocol": "HTTP",
            "allowedRoutes": {"namespaces": {"from": "Same"}},
        }
    ]
    for server in settings.servers:
        for host in server.hosts:
            listeners.append(
                {
                    "name": naming.https_listener(host),
                    "hostname": host,
                    "port": 443,
                    "protocol": "HTTPS",
                    "tls": {
                        "mode": "Terminate",
                        "certificateRefs": [
                            {"group": "", "kind": "Secret", "name": server.tls.credential_name}
                        ],
                    },
                    "allowedRoutes": https_routes,
                }
            )
    _, account = naming.gateway_service_account(name)
    return {
        "apiVersion": naming.GATEWAY_API,
        "kind": "Gateway",
        "metadata": {
            "name": name,
            "namespace": naming.gateway_namespace(name),
            "annotations": {
                SERVICE_ACCOUNT_ANNOTATION: account,
                SERVICE_TYPE_ANNOTATION: settings.effective_service_type,
            },
        },
        "spec": {
            "gatewayClassName": naming.GATEWAY_CLASS,
            "infrastructure": {
                "parametersRef": {
                    "group": "",
                    "kind": "ConfigMap",
                    "name": options_config_map_name(name),
                }
            },
            "listeners": listeners,
        },
    }


def https_redirect(settings: GatewaySettings) -> Manifest:
    """The one route of the HTTP listener: every request redirected to HTTPS."""
    name = settings.name
    return {
        "apiVersion": naming.GATEWAY_API,
        "kind": "HTTPRoute",
        "metadata": {"name": f"{name}-https-redirect", "namespace": naming.gateway_namespace(name)},
        "spec": {
            "parentRefs": [{"name": name, "sectionName": naming.HTTP_LISTENER}],
            "rules": [
                {
                    "filters": [
                        {
                            "type": "RequestRedirect",
                            "requestRedirect": {"scheme": "https", "statusCode": 301},
                        }
                    ]
                }
            ],
        },
    }


def deployment_options(
    gateway: str, namespace: str, minimum: int, maximum: int, high_availability: bool
) -> Manifest:
    """What istiod merges into the Deployment it creates for a Gateway (the ConfigMap its
    `infrastructure.parametersRef` names): replicas or an autoscaler, a
    PodDisruptionBudget from two pods, the proxy's resources and, in HA, the spread over
    zones and nodes the chart gateways get."""
    pod: dict[str, Any] = {
        "containers": [
            {
                "name": "istio-proxy",
                "resources": {
                    "requests": {"cpu": "100m", "memory": "128Mi"},
                    "limits": {"cpu": "2000m", "memory": "1Gi"},
                },
            }
        ]
    }
    if high_availability:
        pod |= spread_across_zones_and_hosts(ingress_selector(gateway))
    deployment: dict[str, Any] = {"template": {"spec": pod}}
    data = {"deployment": {"spec": deployment}}
    if maximum > minimum:
        # istiod creates the autoscaler only when given one; it then owns the replicas.
        data["horizontalPodAutoscaler"] = {"spec": {"minReplicas": minimum, "maxReplicas": maximum}}
    else:
        deployment["replicas"] = minimum
    if minimum > 1:
        # Keep one pod serving through node drains and cluster upgrades.
        data["podDisruptionBudget"] = {"spec": {"minAvailable": 1}}
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": options_config_map_name(gateway), "namespace": namespace},
        "data": {key: yaml.safe_dump(value, sort_keys=True) for key, value in data.items()},
    }


def ingress_options(settings: GatewaySettings, high_availability: bool) -> Manifest:
    """The ingress's Deployment options: `replicas` from the stack config."""
    replicas = settings.replicas
    namespace = naming.gateway_namespace(settings.name)
    return deployment_options(
        settings.name, namespace, replicas.min, replicas.max, high_availability
    )
