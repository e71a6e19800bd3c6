"""Gateway API ingress: HTTPS with a certificate, plain HTTP only redirecting.

What `gateway-server-tls` checks for Istio's Gateway, for `gateway.networking.k8s.io`
Gateways (waypoints, class `istio-waypoint`, aside: they carry HBONE, not ingress):

- `gateway-api-listener-tls`: every HTTPS listener terminates TLS with a certificate
  (`tls.certificateRefs`) for a hostname. The Gateway API's own CRD refuses a mode other
  than Terminate; it accepts an HTTPS listener without `tls`, without a certificate
  (`tls.options` alone) and without a hostname.
- `gateway-api-http-redirects`: every route attached to a plain HTTP listener (its
  parentRef's sectionName names the listener, or it names none and its port, if any,
  is the listener's) only redirects: each rule's filters hold a RequestRedirect to
  scheme https and it has no backendRefs. Attachment is judged by the parentRef alone,
  not the listener's allowedRoutes or hostnames: a route that asks for a plain HTTP
  listener is reported, whether or not `gateway-api-route-parents` finds it accepted.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from .gateway_api import (
    GATEWAY_API,
    ROUTE_KINDS,
    WAYPOINT_CLASS,
    gateway_listeners,
    parent_gateway,
    parent_refs,
)
from .pack import resource_policy, stack_policy
from .values import (
    Findings,
    Resource,
    kind_is,
    mapping,
    name_of,
    namespace_of,
    port_number,
    sequence,
    text,
)


def _ingress(gateway: Resource) -> bool:
    """Whether a Gateway API Gateway is an ingress (or egress) gateway, not a waypoint."""
    spec = mapping(gateway.props.get("spec"), "spec")
    return text(spec.get("gatewayClassName"), "spec.gatewayClassName") != WAYPOINT_CLASS


def listener_tls_violations(resource: Resource, _config: Mapping[str, Any]) -> Iterator[str]:
    """HTTPS listeners name a certificate and a hostname."""
    if not _ingress(resource):
        return
    for where, listener in gateway_listeners(resource):
        if text(listener.get("protocol"), f"{where}.protocol") != "HTTPS":
            continue
        tls = mapping(listener.get("tls"), f"{where}.tls")
        if not sequence(tls.get("certificateRefs"), f"{where}.tls.certificateRefs"):
            yield (
                f"{where} is HTTPS without tls.certificateRefs: it has no certificate to "
                "terminate TLS with; name the Secret holding it (tls.mode Terminate)"
            )
        if not text(listener.get("hostname"), f"{where}.hostname"):
            yield (
                f"{where} is HTTPS without a hostname: it answers every SNI with one "
                "certificate; set the hostname its certificate is for"
            )


def _http_listeners(gateway: Resource) -> list[tuple[str, int | None]]:
    """(name, port) of each plain HTTP listener of a Gateway."""
    found = []
    for where, listener in gateway_listeners(gateway):
        if text(listener.get("protocol"), f"{where}.protocol") == "HTTP":
            name = text(listener.get("name"), f"{where}.name") or ""
            found.append((name, port_number(listener.get("port"), f"{where}.port")))
    return found


def _redirects_to_https(rule: Mapping[str, Any], where: str) -> bool:
    for index, item in enumerate(sequence(rule.get("filters"), f"{where}.filters")):
        at = f"{where}.filters[{index}]"
        step = mapping(item, at)
        redirect = mapping(step.get("requestRedirect"), f"{at}.requestRedirect")
        if (
            text(step.get("type"), f"{at}.type") == "RequestRedirect"
            and text(redirect.get("scheme"), f"{at}.requestRedirect.scheme") == "https"
        ):
            return True
    return False


def _not_redirecting(route: Resource) -> Iterator[tuple[str, str]]:
    """(path, what is wrong) of each rule of a route that does more than redirect."""
    spec = mapping(route.props.get("spec"), "spec")
    for index, item in enumerate(sequence(spec.get("rules"), "spec.rules")):
        where = f"spec.rules[{index}]"
        rule = mapping(item, where)
        problems = []
        if sequence(rule.get("backendRefs"), f"{where}.backendRefs"):
            problems.append("has backendRefs")
        if not _redirects_to_https(rule, where):
            problems.append("has no RequestRedirect filter to scheme https")
        if problems:
            yield where, " and ".join(problems)


def http_redirect_violations(
    resources: Sequence[Resource], _config: Mapping[str, Any]
) -> Iterator[tuple[str | None, str]]:
    """Every route attached to a plain HTTP listener only redirects to HTTPS."""
    findings = Findings()
    listeners: dict[str, list[tuple[str, int | None]]] = {}  # Gateway -> HTTP listeners
    routes: list[Resource] = []
    for resource in resources:
        with findings.reading(resource):
            if kind_is(resource, GATEWAY_API, "Gateway") and _ingress(resource):
                key = f"{namespace_of(resource.props)}/{name_of(resource.props)}"
                listeners[key] = _http_listeners(resource)
            elif kind_is(resource, GATEWAY_API, *ROUTE_KINDS):
                routes.append(resource)
    for route in routes:
        with findings.reading(route):
            attached = []
            for where, ref in parent_refs(route):
                parent = parent_gateway(ref, where, namespace_of(route.props))
                section = text(ref.get("sectionName"), f"{where}.sectionName")
                port = port_number(ref.get("port"), f"{where}.port")
                attached += [
                    f"{name} of Gateway {parent}"
                    for name, number in listeners.get(parent or "", [])
                    if (section is None or section == name) and (port is None or port == number)
                ]
            if not attached:
                continue
            for where, problem in _not_redirecting(route):
                findings.add(
                    route.urn,
                    f"{where} {problem}, and the route is attached to the plain HTTP listener "
                    f"{', '.join(attached)}: it would serve content unencrypted; make its only "
                    "filter a RequestRedirect with scheme https and drop its backendRefs, or "
                    "attach the route to an HTTPS listener (parentRefs sectionName)",
                )
    yield from findings.items


POLICIES = [
    resource_policy(
        "gateway-api-listener-tls",
        "Gateway API HTTPS listeners (of a Gateway that is not a waypoint) must terminate TLS "
        "with a certificate (tls.certificateRefs) for a hostname (hostname).",
        listener_tls_violations,
        kinds={(GATEWAY_API, "Gateway")},
    ),
    stack_policy(
        "gateway-api-http-redirects",
        "Every HTTPRoute or GRPCRoute attached to a plain HTTP listener of a Gateway API "
        "Gateway (by sectionName, or by no sectionName and a matching or no port) only "
        "redirects: each rule has a RequestRedirect filter to scheme https and no "
        "backendRefs. Plain HTTP must not serve content.",
        http_redirect_violations,
    ),
]
