"""The pack's rules called in this process, without gRPC: what mutation testing runs.

`InProcessPack(config).check(resources)` gives the Diagnostics `PolicyPackProcess.check`
gives for the declared inputs: the same policies, the policy config reconciled the way
the CLI does it (`mesh.analyzer.reconcile_policy_config`), each policy's `validate`
called as pulumi-policy's server calls it. The pack has no remediations, so Remediate
is not modelled.

Mutation testing (`tests/mutation.py`) mutates a rule module inside the test process,
where a pack process would never see the mutant; the fixture tests therefore also run
through this pack (`test_rules.py`, view `in-process`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pulumi_policy import (
    Policy,
    PolicyProviderResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.policy import PolicyResource as ValidatedResource

from mesh.analyzer import Diagnostic, PolicyInfo, PolicyResource, reconcile_policy_config

NO_OPTIONS = PolicyResourceOptions(False, [], False, [], None, [], None)  # type: ignore[arg-type]
"""Resource options no rule reads (protect, ignoreChanges, ... all unset)."""


def _info(policy: Policy) -> PolicyInfo:
    schema = policy.config_schema
    return PolicyInfo(
        name=policy.name,
        description=policy.description or "",
        enforcement=(policy.enforcement_level.value if policy.enforcement_level else "advisory"),
        stack_policy=isinstance(policy, StackValidationPolicy),
        config_schema=dict(schema.properties) if schema else {},
        required=list(schema.required or []) if schema else [],
    )


class InProcessPack:
    """The policies of `istio_guardrails` as imported now, under one policy config."""

    def __init__(
        self, config: Mapping[str, Any] | None = None, *, defaults_filled: bool = True
    ) -> None:
        """`defaults_filled=False` hands each policy only what `config` sets, as a CLI
        that does not fill in schema defaults would (the rules must fill them)."""
        import istio_guardrails  # late: a mutant must be in place before the import

        self.policies: list[Policy] = list(istio_guardrails.POLICIES)
        self.settings = reconcile_policy_config([_info(p) for p in self.policies], config)
        if not defaults_filled:
            given = dict(config or {})
            self.settings = {
                name: (level, _given_properties(given.get(name)))
                for name, (level, _) in self.settings.items()
            }

    def check(self, resources: Sequence[PolicyResource]) -> list[Diagnostic]:
        found: list[Diagnostic] = []
        for policy in self.policies:
            level, props = self.settings[policy.name]
            if level == "disabled":
                continue
            report = _reporter(found, policy, level)
            if isinstance(policy, ResourceValidationPolicy):
                for resource in resources:
                    args = ResourceValidationArgs(
                        resource.type, resource.props, resource.urn, resource.name,
                        NO_OPTIONS, None, props,
                    )  # fmt: skip
                    # The server reports a resource policy's violations on that resource.
                    on_resource = functools.partial(_on, report, resource.urn)
                    policy.validate(args, on_resource)
            elif isinstance(policy, StackValidationPolicy):
                providers = _providers(resources)
                validated = [
                    ValidatedResource(
                        r.type,
                        r.props,
                        r.urn,
                        r.name,
                        NO_OPTIONS,
                        providers.get(r.provider) if r.provider else None,
                        None,
                        [],
                        {},
                    )
                    for r in resources
                ]
                policy.validate(StackValidationArgs(validated, props), report)
        return found


def _providers(resources: Sequence[PolicyResource]) -> dict[str, PolicyProviderResource]:
    """The provider a stack rule sees, by the reference (`URN::ID`) resources name it with."""
    by_urn = {r.urn: r for r in resources}
    found: dict[str, PolicyProviderResource] = {}
    for reference in {r.provider for r in resources if r.provider}:
        provider = by_urn.get(reference.rsplit("::", 1)[0])
        if provider is not None:
            found[reference] = PolicyProviderResource(
                provider.type, provider.props, provider.urn, provider.name
            )
    return found


def _given_properties(entry: Any) -> dict[str, Any]:
    if not isinstance(entry, Mapping):
        return {}
    return {key: value for key, value in entry.items() if key != "enforcementLevel"}


def _on(report: Callable[[str, str | None], None], urn: str, message: str, _: object) -> None:
    report(message, urn)


def _reporter(
    found: list[Diagnostic], policy: Policy, level: str
) -> Callable[[str, str | None], None]:
    """The `report_violation` callback of one policy: a Diagnostic per call."""

    def report(message: str, urn: str | None) -> None:
        found.append(
            Diagnostic(
                policy=policy.name,
                enforcement=level,
                urn=urn or "",
                message=message,
                description=policy.description or "",
            )
        )

    return report
