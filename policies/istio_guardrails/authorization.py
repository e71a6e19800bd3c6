"""Authorization: every mesh namespace denies by default, no ALLOW policy allows all, and
every namespace a policy names as a source exists.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from .pack import (
    SYSTEM_NAMESPACES,
    ConfigSchema,
    resource_policy,
    stack_policy,
    string_list_option,
)
from .values import (
    SECURITY,
    Findings,
    Resource,
    UnknownValueError,
    is_unknown,
    kind_is,
    mapping,
    name_of,
    namespace_of,
    sequence,
    text,
)


def constrains_nothing(value: Any, where: str) -> bool:
    """Whether a rule (or part of one) is empty: no source, operation or condition.

    `{}`, `{from: []}`, `{from: [{source: {}}]}` all match every request. Any scalar
    (a principal, a port, a claim) is a constraint. Every value is read, so an
    unknown one anywhere fails closed.
    """
    if is_unknown(value):
        raise UnknownValueError(value, [where])
    if value is None:
        return True
    if isinstance(value, Mapping):
        return all(constrains_nothing(value[key], f"{where}.{key}") for key in value)
    if isinstance(value, Sequence) and not isinstance(value, str):
        return all(constrains_nothing(item, f"{where}[{i}]") for i, item in enumerate(value))
    return value == ""


def allow_all_violations(resource: Resource, _config: Mapping[str, Any]) -> Iterator[str]:
    """An ALLOW policy with a rule that matches every request opens the workload up."""
    spec = mapping(resource.props.get("spec"), "spec")
    action = text(spec.get("action"), "spec.action") or "ALLOW"
    if action != "ALLOW":
        return
    for index, rule in enumerate(sequence(spec.get("rules"), "spec.rules")):
        if constrains_nothing(rule, f"spec.rules[{index}]"):
            yield (
                f"spec.rules[{index}] is empty and allows every request; say who may call "
                "(from.source.principals / namespaces), what (to.operation) or when"
            )


def _is_default_deny(spec: Mapping[str, Any]) -> bool:
    """`spec: {}`: an ALLOW policy that matches nothing, for the whole namespace."""
    scoped = any(spec.get(key) for key in ("selector", "targetRef", "targetRefs"))
    action = text(spec.get("action"), "spec.action") or "ALLOW"
    return not scoped and action == "ALLOW" and not sequence(spec.get("rules"), "spec.rules")


def default_deny_violations(
    resources: Sequence[Resource], config: Mapping[str, Any]
) -> Iterator[tuple[str | None, str]]:
    """Each namespace the stack creates (system ones aside) has a default-deny policy."""
    findings = Findings()
    namespaces: list[tuple[Resource, str]] = []
    denied: set[str] = set()
    for resource in resources:
        with findings.reading(resource):
            if kind_is(resource, "", "Namespace"):
                name = name_of(resource.props)
                if name not in config["systemNamespaces"]:
                    namespaces.append((resource, name))
            elif kind_is(resource, SECURITY, "AuthorizationPolicy") and _is_default_deny(
                mapping(resource.props.get("spec"), "spec")
            ):
                denied.add(namespace_of(resource.props))
    for resource, name in namespaces:
        if name not in denied:
            findings.add(
                resource.urn,
                f"namespace {name} has no default-deny AuthorizationPolicy; add one with an "
                "empty spec (spec: {}) in the namespace, then ALLOW what is needed",
            )
    yield from findings.items


KUBERNETES_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
"""Namespaces every cluster has, whether or not the input holds them."""

NAMESPACES_CONFIG: ConfigSchema = {
    "externalNamespaces": string_list_option(
        "Namespaces created outside this stack that a policy may name as a source "
        "(callers deployed by another team or stack)."
    )
}


def namespace_matches(pattern: str, namespace: str) -> bool:
    """Istio's match of a `source.namespaces` entry: `*`, `prefix*`, `*suffix` or exact
    (`*` is the suffix pattern with an empty suffix)."""
    if pattern.startswith("*"):
        return namespace.endswith(pattern[1:])
    if pattern.endswith("*"):
        return namespace.startswith(pattern[:-1])
    return namespace == pattern


def _source_namespaces(spec: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """(path, entry) of every `namespaces` and `notNamespaces` entry of every source."""
    for r, rule in enumerate(sequence(spec.get("rules"), "spec.rules")):
        where = f"spec.rules[{r}]"
        for f, peer in enumerate(sequence(mapping(rule, where).get("from"), f"{where}.from")):
            source_at = f"{where}.from[{f}].source"
            source = mapping(mapping(peer, source_at).get("source"), source_at)
            for key in ("namespaces", "notNamespaces"):
                for n, entry in enumerate(sequence(source.get(key), f"{source_at}.{key}")):
                    path = f"{source_at}.{key}[{n}]"
                    yield path, text(entry, path) or ""


def source_namespace_violations(
    resources: Sequence[Resource], config: Mapping[str, Any]
) -> Iterator[tuple[str | None, str]]:
    """Every source namespace a policy names matches a namespace that exists.

    Judged where the input holds Namespaces (a stack always does): a lone policy file
    says nothing about the cluster's namespaces.
    """
    findings = Findings()
    existing = set(KUBERNETES_NAMESPACES) | set(config["externalNamespaces"])
    policies: list[Resource] = []
    declares_namespaces = False
    for resource in resources:
        with findings.reading(resource):
            if kind_is(resource, "", "Namespace"):
                existing.add(name_of(resource.props))
                declares_namespaces = True
            elif kind_is(resource, SECURITY, "AuthorizationPolicy"):
                existing.add(namespace_of(resource.props))
                policies.append(resource)
    if not declares_namespaces:
        return
    for policy in policies:
        with findings.reading(policy):
            spec = mapping(policy.props.get("spec"), "spec")
            for path, entry in _source_namespaces(spec):
                if not any(namespace_matches(entry, namespace) for namespace in existing):
                    findings.add(
                        policy.urn,
                        f"{path} is {entry}, which matches no namespace of this stack or of "
                        "Kubernetes (IST0101): an ALLOW rule then admits no one from it, a "
                        "DENY rule denies no one; fix the name, or list a namespace created "
                        "elsewhere in the rule's externalNamespaces config",
                    )
    yield from findings.items


POLICIES = [
    resource_policy(
        "authorization-no-allow-all",
        "An ALLOW AuthorizationPolicy must not contain an empty rule ({} or empty "
        "from/to/when), which allows every request: constrain each rule by source, "
        "operation or condition.",
        allow_all_violations,
        kinds={(SECURITY, "AuthorizationPolicy")},
    ),
    stack_policy(
        "namespace-default-deny",
        "Every namespace the stack creates (outside the system namespaces) must hold a "
        "default-deny AuthorizationPolicy (no selector, empty spec: `spec: {}`), with "
        "explicit ALLOW policies on top.",
        default_deny_violations,
        config=SYSTEM_NAMESPACES,
    ),
    stack_policy(
        "authorization-source-namespaces-exist",
        "Each `source.namespaces` / `notNamespaces` entry of an AuthorizationPolicy matches "
        "a namespace that exists: one the input holds, Kubernetes' own, or one listed in "
        "externalNamespaces (istioctl IST0101). Judged where the input holds Namespaces.",
        source_namespace_violations,
        config=NAMESPACES_CONFIG,
    ),
]
