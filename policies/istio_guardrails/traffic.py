"""Routing: weights add up (VirtualServices and Gateway API routes), and every routed
subset is defined by a DestinationRule.

Istio accepts both mistakes and only `istioctl analyze` (IST0101) notices a missing
subset later, as 503s in production; the pack catches them before anything is applied.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from .gateway_api import GATEWAY_API, ROUTE_KINDS
from .hosts import fqdn, wildcard_parents
from .pack import resource_policy, stack_policy
from .values import (
    NETWORKING,
    Findings,
    Resource,
    kind_is,
    mapping,
    namespace_of,
    number,
    sequence,
    text,
)

ROUTE_SECTIONS = ("http", "tcp", "tls")


def _route_lists(spec: Mapping[str, Any]) -> Iterator[tuple[str, Sequence[Any]]]:
    """(path, destinations) of each route of a VirtualService."""
    for protocol in ROUTE_SECTIONS:
        for index, route in enumerate(sequence(spec.get(protocol), f"spec.{protocol}")):
            where = f"spec.{protocol}[{index}]"
            yield f"{where}.route", sequence(mapping(route, where).get("route"), f"{where}.route")


def weight_violations(resource: Resource, _config: Mapping[str, Any]) -> Iterator[str]:
    """Per route: no negative weight, and weights sum to 100 once a split is declared."""
    spec = mapping(resource.props.get("spec"), "spec")
    for where, destinations in _route_lists(spec):
        weights = [
            number(mapping(d, f"{where}[{i}]").get("weight"), f"{where}[{i}].weight")
            for i, d in enumerate(destinations)
        ]
        for index, weight in enumerate(weights):
            if weight is not None and weight < 0:
                yield f"{where}[{index}].weight is {weight:g}; weights cannot be negative"
        # A single destination without a weight takes all traffic; anything else is a
        # split that must say exactly where every request goes.
        if len(destinations) > 1 or any(weight is not None for weight in weights):
            total = sum(weight or 0 for weight in weights)
            if total != 100:
                yield (
                    f"{where} weights sum to {total:g}, not 100; give every destination a "
                    "weight so they add up to 100"
                )


def route_weight_violations(resource: Resource, _config: Mapping[str, Any]) -> Iterator[str]:
    """Per HTTPRoute or GRPCRoute rule: several backends each carry a weight, the weights
    sum to 100 (percentages, as a VirtualService's), and they are not all zero."""
    spec = mapping(resource.props.get("spec"), "spec")
    for index, rule in enumerate(sequence(spec.get("rules"), "spec.rules")):
        where = f"spec.rules[{index}].backendRefs"
        backends = sequence(mapping(rule, f"spec.rules[{index}]").get("backendRefs"), where)
        weights = [
            number(mapping(b, f"{where}[{i}]").get("weight"), f"{where}[{i}].weight")
            for i, b in enumerate(backends)
        ]
        missing = [f"{where}[{i}]" for i, weight in enumerate(weights) if weight is None]
        total = sum(weight or 0 for weight in weights)
        if weights and not missing and total == 0:
            yield (
                f"{where} weights are all 0: the rule sends traffic nowhere and answers with "
                "errors; give the backends weights summing to 100"
            )
        elif len(backends) > 1 and missing:
            yield (
                f"{', '.join(missing)} carry no weight (the Gateway API reads it as 1, not as "
                "a share of 100): give every backend a weight, summing to 100"
            )
        elif len(backends) > 1 and total != 100:
            yield (
                f"{where} weights sum to {total:g}, not 100; give the backends weights that "
                "read as percentages, summing to 100"
            )


def _destinations(spec: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """(path, destination) of every destination a VirtualService sends traffic to."""
    for where, destinations in _route_lists(spec):
        for index, entry in enumerate(destinations):
            at = f"{where}[{index}]"
            yield f"{at}.destination", mapping(mapping(entry, at).get("destination"), at)
    for index, route in enumerate(sequence(spec.get("http"), "spec.http")):
        where = f"spec.http[{index}]"
        http = mapping(route, where)
        mirror = http.get("mirror")
        if mirror is not None:
            yield f"{where}.mirror", mapping(mirror, f"{where}.mirror")
        for m, mirror in enumerate(sequence(http.get("mirrors"), f"{where}.mirrors")):
            at = f"{where}.mirrors[{m}]"
            yield f"{at}.destination", mapping(mapping(mirror, at).get("destination"), at)


def subset_violations(
    resources: Sequence[Resource], _config: Mapping[str, Any]
) -> Iterator[tuple[str | None, str]]:
    """Each (host, subset) a VirtualService routes to is defined for that host.

    One pass builds host -> subsets from the DestinationRules, a second looks every
    routed subset up: linear in the number of resources.
    """
    findings = Findings()
    subsets: dict[str, set[str]] = defaultdict(set)
    routed: list[tuple[Resource, str, str, str]] = []  # (vs, path, host fqdn, subset)
    for resource in resources:
        with findings.reading(resource):
            if kind_is(resource, NETWORKING, "DestinationRule"):
                spec = mapping(resource.props.get("spec"), "spec")
                host = fqdn(text(spec.get("host"), "spec.host") or "", namespace_of(resource.props))
                for i, subset in enumerate(sequence(spec.get("subsets"), "spec.subsets")):
                    name = text(mapping(subset, f"spec.subsets[{i}]").get("name"), "name")
                    subsets[host].add(name or "")
            elif kind_is(resource, NETWORKING, "VirtualService"):
                namespace = namespace_of(resource.props)
                spec = mapping(resource.props.get("spec"), "spec")
                for where, destination in _destinations(spec):
                    subset = text(destination.get("subset"), f"{where}.subset")
                    if subset:
                        host = text(destination.get("host"), f"{where}.host") or ""
                        routed.append((resource, where, fqdn(host, namespace), subset))
    for resource, where, host, subset in routed:
        # The most specific DestinationRule for the host is the one Istio applies.
        candidates = [key for key in (host, *wildcard_parents(host)) if key in subsets]
        defined = subsets[candidates[0]] if candidates else set()
        if subset not in defined:
            known = ", ".join(sorted(defined)) or "none"
            findings.add(
                resource.urn,
                f"{where} routes to subset {subset} of {host}, which no DestinationRule "
                f"defines (defined subsets: {known}); add the subset to the host's "
                "DestinationRule or route to a defined one",
            )
    yield from findings.items


POLICIES = [
    resource_policy(
        "virtual-service-weights",
        "VirtualService route weights must be non-negative and sum to 100 per route (every "
        "http/tcp/tls route with several destinations, or with any weight set); a single "
        "destination may omit its weight.",
        weight_violations,
        kinds={(NETWORKING, "VirtualService")},
    ),
    resource_policy(
        "gateway-api-route-weights",
        "In an HTTPRoute or GRPCRoute rule with several backendRefs every backend carries an "
        "explicit weight and the weights sum to 100 (they read as percentages, like a "
        "VirtualService's); no rule's weights are all zero.",
        route_weight_violations,
        kinds={(GATEWAY_API, kind) for kind in ROUTE_KINDS},
    ),
    stack_policy(
        "virtual-service-subsets-exist",
        "Every subset a VirtualService routes or mirrors to must be defined in a "
        "DestinationRule for that host in the same stack (short hosts resolve against the "
        "VirtualService's namespace); add the subset to the DestinationRule.",
        subset_violations,
    ),
]
