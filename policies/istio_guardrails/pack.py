"""Thin adapters from the pure checks to pulumi-policy's policy classes.

A check is a plain function over `Resource` values and the rule's config that yields
violation messages, so it is unit-testable without gRPC. The adapters add what every
rule shares: the type filter, config defaults, and failing closed, i.e. a value
that is unknown during preview is reported as a violation of the rule that needed
it. (pulumi-policy itself would only log an advisory "can't run policy" note.)
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

from .values import Resource, UnknownValueError, k8s_type, unknown_message

ResourceCheck = Callable[[Resource, Mapping[str, Any]], Iterable[str]]
"""Yields one message per problem of one resource."""

StackCheck = Callable[[Sequence[Resource], Mapping[str, Any]], Iterable[tuple[str | None, str]]]
"""Yields (URN or None for the stack as a whole, message) per problem."""

ClustersCheck = Callable[
    [Sequence[tuple[str | None, Sequence[Resource]]], Mapping[str, Any]],
    Iterable[tuple[str | None, str]],
]
"""Yields (URN or None, message) per problem between the clusters `by_cluster` finds."""

ConfigSchema = dict[str, dict[str, Any]]
"""JSON schema of each config property; its `default` applies when none is configured."""

MANDATORY = EnforcementLevel.MANDATORY
ADVISORY = EnforcementLevel.ADVISORY


def _config(configured: Mapping[str, Any], schema: ConfigSchema | None) -> dict[str, Any]:
    # The Pulumi CLI fills schema defaults in before Configure; a pack driven without
    # config (or by an older CLI) must still see them.
    defaults = {key: prop["default"] for key, prop in (schema or {}).items() if "default" in prop}
    return {**defaults, **configured}


def _schema(schema: ConfigSchema | None) -> PolicyConfigSchema | None:
    return PolicyConfigSchema(properties=schema) if schema else None


def resource_policy(
    name: str,
    description: str,
    check: ResourceCheck,
    kinds: Collection[tuple[str, str]],
    enforcement: EnforcementLevel = MANDATORY,
    config: ConfigSchema | None = None,
) -> ResourceValidationPolicy:
    """A policy that runs `check` on each resource whose (API group, kind) is in `kinds`."""

    def validate(args: ResourceValidationArgs, report: ReportViolation) -> None:
        parsed = k8s_type(args.resource_type)
        if parsed is None or (parsed.group, parsed.kind) not in kinds:
            return
        resource = Resource(args.resource_type, args.urn, args.props)
        try:
            for message in check(resource, _config(args.get_config(), config)):
                report(message, None)
        except UnknownValueError as error:
            report(unknown_message(error), None)

    return ResourceValidationPolicy(
        name=name,
        description=description,
        validate=validate,
        enforcement_level=enforcement,
        config_schema=_schema(config),
    )


KUBERNETES_PROVIDER = "pulumi:providers:kubernetes"


def by_cluster(
    resources: Sequence[tuple[Resource, str | None]],
) -> list[tuple[str | None, list[Resource]]]:
    """The stack's resources cluster by cluster, for rules that judge one mesh each:
    `(kubernetes provider name, resources)` per provider, each with the resources no
    kubernetes provider places (pulumi-tls's, plain manifests). A stack of one cluster
    (or none known) is one group, named None: every rule sees the stack as before. A
    multi-cluster stack's mesh-wide STRICT policy, subsets or gateway selectors are
    each cluster's own: one cluster's cannot stand in for another's."""
    groups: dict[str, list[Resource]] = {}
    shared: list[Resource] = []
    for resource, provider in resources:
        if provider is None:
            shared.append(resource)
        else:
            groups.setdefault(provider, []).append(resource)
    if len(groups) <= 1:
        return [(None, [resource for resource, _ in resources])]
    return [(name, [*members, *shared]) for name, members in groups.items()]


def _kubernetes_provider(resource: Any) -> str | None:
    provider = getattr(resource, "provider", None)
    if provider is None or provider.resource_type != KUBERNETES_PROVIDER:
        return None
    return str(provider.name)


def stack_policy(
    name: str,
    description: str,
    check: StackCheck,
    enforcement: EnforcementLevel = MANDATORY,
    config: ConfigSchema | None = None,
) -> StackValidationPolicy:
    """A policy that runs `check` over the resources of the stack, once per cluster
    (`by_cluster`)."""

    def validate(args: StackValidationArgs, report: ReportViolation) -> None:
        configured = _config(args.get_config(), config)
        reported: set[tuple[str | None, str]] = set()
        for cluster, members in by_cluster(_placed(args)):
            # Stack checks catch unknowns per resource (`Findings.reading`); this is the
            # backstop for anything read outside such a block.
            try:
                found = list(check(members, configured))
            except UnknownValueError as error:
                found = [(None, unknown_message(error))]
            for urn, message in found:
                if urn is None and cluster is not None:
                    message = f"in the cluster of provider {cluster}: {message}"
                # A resource every cluster shares is judged once per cluster.
                if (urn, message) not in reported:
                    reported.add((urn, message))
                    report(message, urn)

    return _stack_validation(name, description, validate, enforcement, config)


def clusters_policy(
    name: str,
    description: str,
    check: ClustersCheck,
    enforcement: EnforcementLevel = MANDATORY,
) -> StackValidationPolicy:
    """A policy that runs `check` once over the stack's clusters (`by_cluster`), for
    rules about what the clusters of one mesh must agree on."""

    def validate(args: StackValidationArgs, report: ReportViolation) -> None:
        try:
            found = list(check(by_cluster(_placed(args)), _config(args.get_config(), None)))
        except UnknownValueError as error:
            found = [(None, unknown_message(error))]
        for urn, message in found:
            report(message, urn)

    return _stack_validation(name, description, validate, enforcement, None)


def _placed(args: StackValidationArgs) -> list[tuple[Resource, str | None]]:
    """Every resource of the stack with the kubernetes provider that places it."""
    return [
        (Resource(r.resource_type, r.urn, r.props), _kubernetes_provider(r)) for r in args.resources
    ]


def _stack_validation(
    name: str,
    description: str,
    validate: Callable[[StackValidationArgs, ReportViolation], None],
    enforcement: EnforcementLevel,
    config: ConfigSchema | None,
) -> StackValidationPolicy:
    return StackValidationPolicy(
        name=name,
        description=description,
        validate=validate,
        enforcement_level=enforcement,
        config_schema=_schema(config),
    )


def string_list_option(description: str, default: Sequence[str] = ()) -> dict[str, Any]:
    """The schema of a rule option that lists names (namespaces, `namespace/name`s)."""
    return {
        "type": "array",
        "items": {"type": "string"},
        "default": list(default),
        "description": description,
    }


SYSTEM_NAMESPACES: ConfigSchema = {
    "systemNamespaces": string_list_option(
        "Namespaces outside the mesh that this rule skips.",
        default=["kube-system", "kube-public", "kube-node-lease", "istio-system"],
    )
}
"""Config shared by the rules that leave Kubernetes' and Istio's own namespaces alone."""
