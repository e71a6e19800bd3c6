"""Ambient mode: ambient pods get no sidecar, and every policy has an enforcer.

- `ambient-namespace-not-injected`: no sidecar injector webhook of the input would
  inject the pods of an ambient namespace. A revision tag's webhook selects namespaces
  by `istio.io/rev`, which ambient namespaces carry too (it chooses their waypoints'
  control plane): without `istio.io/dataplane-mode NotIn [ambient]` in its
  namespaceSelector it puts sidecars into ambient pods (istio/istio#60313).
- `ambient-l7-policy-needs-waypoint`: in an ambient namespace, ztunnel enforces the
  policies without `targetRefs` and knows only L4 attributes; a waypoint enforces the
  policies attached to it with `targetRefs`. So a ztunnel policy must stay L4 (Istio's
  ambient conversion drops the rules of an ALLOW policy that use HTTP attributes: its
  callers are denied), a RequestAuthentication needs `targetRefs` (ztunnel reads no
  JWT), and a policy with `targetRefs` needs a waypoint in its namespace.

Both index the stack once (ambient namespaces by name), so they are linear in its size;
the webhook rule compares each injector webhook with each ambient namespace (a stack has
a handful of webhooks).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from .gateway_api import GATEWAY_API, WAYPOINT_CLASS
from .injection import DATAPLANE_MODE, INJECTION
from .pack import stack_policy
from .selectors import LabelSelector, label_selector, labels_of_namespace
from .values import (
    SECURITY,
    Findings,
    Resource,
    kind_is,
    mapping,
    name_of,
    namespace_of,
    sequence,
    text,
)

ADMISSION = "admissionregistration.k8s.io"
INJECTOR = "sidecar-injector.istio.io"
"""What the name of each of Istio's sidecar injector webhooks ends with."""
USE_WAYPOINT = "istio.io/use-waypoint"


def is_istio_label(key: str) -> bool:
    """`istio-injection`, or a key in Istio's domain (`istio.io/rev`,
    `sidecar.istio.io/inject`)."""
    prefix, slash, _ = key.rpartition("/")
    istio_domain = prefix == "istio.io" or prefix.endswith(".istio.io")
    return key == INJECTION or (bool(slash) and istio_domain)


def selects_plain_pods(selector: LabelSelector) -> bool:
    """Whether a pod that carries no Istio label can meet `selector`: each requirement on
    an Istio label holds for a pod without it (NotIn, DoesNotExist); requirements on
    other labels are met by some pod."""
    return all(r.holds({}) for r in selector.requirements if is_istio_label(r.key))


def _ambient(labels: Mapping[str, str]) -> bool:
    return labels.get(DATAPLANE_MODE) == "ambient"


def injection_violations(
    resources: Sequence[Resource], _config: Mapping[str, Any]
) -> Iterator[tuple[str | None, str]]:
    """No Istio injector webhook selects an ambient namespace and pods without Istio labels."""
    findings = Findings()
    ambient: dict[str, dict[str, str]] = {}
    configurations: list[Resource] = []
    for resource in resources:
        with findings.reading(resource):
            if kind_is(resource, "", "Namespace"):
                labels = labels_of_namespace(resource)
                if _ambient(labels):
                    ambient[name_of(resource.props)] = labels
            elif kind_is(resource, ADMISSION, "MutatingWebhookConfiguration"):
                configurations.append(resource)
    for configuration in configurations:
        with findings.reading(configuration):
            for index, item in enumerate(sequence(configuration.props.get("webhooks"), "webhooks")):
                where = f"webhooks[{index}]"
                webhook = mapping(item, where)
                name = text(webhook.get("name"), f"{where}.name") or ""
                if not name.endswith(INJECTOR):
                    continue
                namespaces = label_selector(
                    webhook.get("namespaceSelector"), f"{where}.namespaceSelector"
                )
                pods = label_selector(webhook.get("objectSelector"), f"{where}.objectSelector")
                injected = sorted(ns for ns, found in ambient.items() if namespaces.matches(found))
                if injected and selects_plain_pods(pods):
                    findings.add(
                        configuration.urn,
                        f"{where} ({name}) would inject sidecars into the pods of ambient "
                        f"namespace {', '.join(injected)}: its namespaceSelector matches the "
                        "namespace's labels and its objectSelector a pod without Istio labels, "
                        "so the pods leave ztunnel; add {key: istio.io/dataplane-mode, "
                        "operator: NotIn, values: [ambient]} to its "
                        "namespaceSelector.matchExpressions (istio/istio#60313)",
                    )
    yield from findings.items


L4_SOURCE = frozenset(
    {"principals", "namespaces", "serviceAccounts", "ipBlocks"}
    | {"notPrincipals", "notNamespaces", "notServiceAccounts", "notIpBlocks"}
)
"""Source fields ztunnel enforces (Istio's ambient conversion); `requestPrincipals` (a
JWT) and `remoteIpBlocks` (X-Forwarded-For) need HTTP."""
L4_OPERATION = frozenset({"ports", "notPorts"})
L4_CONDITIONS = frozenset(
    {"source.ip", "source.namespace", "source.principal", "destination.ip", "destination.port"}
)
"""`when` keys ztunnel enforces; any other (`request.*`, `remote.ip`, ...) needs HTTP."""
ZTUNNEL_ACTIONS = frozenset({"ALLOW", "DENY"})


def _fields(item: Any, where: str, key: str) -> Iterator[str]:
    """Names of the fields of `item[key]` (a source or an operation) that hold a value."""
    part = mapping(mapping(item, where).get(key), f"{where}.{key}")
    for field in part:
        if sequence(part[field], f"{where}.{key}.{field}"):
            yield field


def http_attributes(spec: Mapping[str, Any]) -> list[str]:
    """What of an AuthorizationPolicy ztunnel cannot enforce: an action other than ALLOW
    or DENY, and each rule's HTTP attributes (as Istio's status message names them)."""
    found: list[str] = []
    action = text(spec.get("action"), "spec.action") or "ALLOW"
    if action not in ZTUNNEL_ACTIONS:
        found.append(f"action {action}")
    for r, rule in enumerate(sequence(spec.get("rules"), "spec.rules")):
        where = f"spec.rules[{r}]"
        rule = mapping(rule, where)
        for f, peer in enumerate(sequence(rule.get("from"), f"{where}.from")):
            fields = _fields(peer, f"{where}.from[{f}]", "source")
            found += [x for x in fields if x not in L4_SOURCE]
        for t, target in enumerate(sequence(rule.get("to"), f"{where}.to")):
            fields = _fields(target, f"{where}.to[{t}]", "operation")
            found += [x for x in fields if x not in L4_OPERATION]
        for w, condition in enumerate(sequence(rule.get("when"), f"{where}.when")):
            key = text(mapping(condition, f"{where}.when[{w}]").get("key"), f"{where}.when[{w}]")
            if key not in L4_CONDITIONS:
                found.append(f"when {key}")
    return sorted(set(found))


def target_refs(spec: Mapping[str, Any]) -> list[tuple[str, Mapping[str, Any]]]:
    """(path, reference) of `targetRefs` and of the older single `targetRef`."""
    refs = [
        (f"spec.targetRefs[{i}]", mapping(ref, f"spec.targetRefs[{i}]"))
        for i, ref in enumerate(sequence(spec.get("targetRefs"), "spec.targetRefs"))
    ]
    single = mapping(spec.get("targetRef"), "spec.targetRef")
    return refs + ([("spec.targetRef", single)] if single else [])


def _waypoint_label(labels: Mapping[str, str]) -> bool:
    return labels.get(USE_WAYPOINT, "none") not in ("", "none")


def waypoint_violations(
    resources: Sequence[Resource], _config: Mapping[str, Any]
) -> Iterator[tuple[str | None, str]]:
    """In ambient namespaces: ztunnel policies L4 only, JWT rules and policies with
    targetRefs on a waypoint."""
    findings = Findings()
    waypoint: dict[str, bool] = {}  # ambient namespace -> whether a waypoint serves it
    gateways: dict[str, set[str]] = {}  # namespace -> names of Gateways (waypoints aside)
    waypoints: set[str] = set()  # namespaces holding a waypoint Gateway
    policies: list[Resource] = []
    for resource in resources:
        with findings.reading(resource):
            if kind_is(resource, "", "Namespace"):
                labels = labels_of_namespace(resource)
                if _ambient(labels):
                    waypoint[name_of(resource.props)] = _waypoint_label(labels)
            elif kind_is(resource, GATEWAY_API, "Gateway"):
                spec = mapping(resource.props.get("spec"), "spec")
                namespace = namespace_of(resource.props)
                if text(spec.get("gatewayClassName"), "spec.gatewayClassName") == WAYPOINT_CLASS:
                    waypoints.add(namespace)
                else:
                    gateways.setdefault(namespace, set()).add(name_of(resource.props))
            elif kind_is(resource, SECURITY, "AuthorizationPolicy", "RequestAuthentication"):
                policies.append(resource)
    for policy in policies:
        with findings.reading(policy):
            namespace = namespace_of(policy.props)
            if namespace not in waypoint:
                continue
            served = waypoint[namespace] or namespace in waypoints
            spec = mapping(policy.props.get("spec"), "spec")
            refs = target_refs(spec)
            kind = policy.type.rpartition(":")[2]
            and_a_waypoint = "" if served else f", and give namespace {namespace} a waypoint"
            if refs:
                if served:
                    continue
                for where, ref in refs:
                    ref_kind = text(ref.get("kind"), f"{where}.kind") or ""
                    ref_name = text(ref.get("name"), f"{where}.name") or ""
                    if ref_kind == "Gateway" and ref_name in gateways.get(namespace, set()):
                        continue  # an ingress gateway of its own: it enforces the policy
                    findings.add(
                        policy.urn,
                        f"{where} attaches the {kind} to {ref_kind} {ref_name}, but ambient "
                        f"namespace {namespace} has no waypoint (no {USE_WAYPOINT} label, no "
                        f"{WAYPOINT_CLASS} Gateway): nothing enforces it; give the namespace a "
                        "waypoint, or use a selector with L4 attributes only",
                    )
            elif kind == "RequestAuthentication":
                findings.add(
                    policy.urn,
                    f"the RequestAuthentication in ambient namespace {namespace} has no "
                    "targetRefs, so ztunnel would enforce it and ztunnel reads no JWT: tokens "
                    "are never validated; attach it with targetRefs to the Service or the "
                    f"waypoint Gateway{and_a_waypoint}",
                )
            else:
                found = http_attributes(spec)
                if found:
                    findings.add(
                        policy.urn,
                        f"the AuthorizationPolicy in ambient namespace {namespace} has no "
                        f"targetRefs, so ztunnel enforces it, and ztunnel cannot enforce "
                        f"{', '.join(found)}: an ALLOW rule with them never matches, so under "
                        "default-deny its callers are denied; attach it with targetRefs to the "
                        f"Service or the waypoint Gateway{and_a_waypoint}, or keep to L4 "
                        "attributes (principals, namespaces, ipBlocks, ports)",
                    )
    yield from findings.items


POLICIES = [
    stack_policy(
        "ambient-namespace-not-injected",
        "No Istio sidecar injector webhook (a revision tag's MutatingWebhookConfiguration) "
        "would inject the pods of an ambient namespace: its namespaceSelector must not match "
        "the namespace's labels while its objectSelector matches pods without Istio labels; "
        "add istio.io/dataplane-mode NotIn [ambient] to its namespaceSelector.",
        injection_violations,
    ),
    stack_policy(
        "ambient-l7-policy-needs-waypoint",
        "In an ambient namespace, an AuthorizationPolicy enforced by ztunnel (selector, or "
        "namespace-wide) uses only L4 attributes and the ALLOW or DENY action; a "
        "RequestAuthentication attaches with targetRefs; and a policy with targetRefs needs "
        "a waypoint in its namespace (istio.io/use-waypoint, or an istio-waypoint Gateway). "
        "Otherwise ztunnel drops the HTTP rules and callers are denied, or nothing enforces "
        "the policy.",
        waypoint_violations,
    ),
]
