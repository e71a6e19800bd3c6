"""Authorization: every mesh namespace denies by default, no ALLOW policy allows all."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from .pack import SYSTEM_NAMESPACES, resource_policy, stack_policy
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
]
