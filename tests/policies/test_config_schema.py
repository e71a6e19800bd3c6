"""Each rule's config options: named as documented, typed, described, defaulted, and a
value of the wrong shape refused before any rule runs (the CLI validates the policy
config against these schemas; `mesh.analyzer.reconcile_policy_config` does the same)."""

from __future__ import annotations

from typing import Any

import pytest

from mesh.analyzer import PolicyPackError

from .in_process import InProcessPack

OPTIONS: dict[str, dict[str, Any]] = {
    "mesh-wide-strict-mtls": {"rootNamespace": "istio-system"},
    "authorization-selects-workloads": {
        "rootNamespace": "istio-system",
        "externalWorkloads": [{"namespace": "billing", "labels": {"app": "invoices"}}],
    },
    "destination-rule-subsets-select-pods": {
        "externalWorkloads": [{"namespace": "billing", "labels": {"app": "invoices"}}],
    },
    "namespace-injection": {"systemNamespaces": ["kube-system"]},
    "workload-injection-enabled": {"systemNamespaces": ["kube-system"]},
    "namespace-default-deny": {"systemNamespaces": ["kube-system"]},
    "no-wildcard-hosts": {"forbidAllWildcards": True},
    "gateway-selector-matches": {"externalGateways": [{"istio": "edge"}]},
    "virtual-service-gateway-bound": {"externalGateways": ["istio-edge/edge"]},
    "gateway-api-route-parents": {"externalParents": ["istio-edge/edge"]},
    "authorization-source-namespaces-exist": {"externalNamespaces": ["monitoring"]},
    "istio-helm-release-pinned": {
        "allowedRepositories": ["https://charts.example.com/istio"],
        "minimumVersion": "1.31.0",
    },
}
"""Every rule's options, each with a valid value (README and policies/README.md document
them in the rule catalogue)."""


def wrong_values(option: str, good: Any) -> list[Any]:
    """Values of the wrong shape for an option whose valid value is `good`."""
    if isinstance(good, bool):
        return ["yes"]
    if isinstance(good, str):
        return [
            1,
            *(["1.31", "latest", "1.31.0 ", "v1.31.0"] if option == "minimumVersion" else []),
        ]
    if isinstance(good[0], str):  # a list of names
        return ["not a list", [1], [{}]]
    if good[0].keys() == {"istio"}:  # a list of label maps
        return ["not a list", ["x"], [{"k": 1}]]
    return [  # a list of {namespace, labels}
        "not a list",
        ["x"],
        [{"namespace": "billing"}],
        [{"labels": {"app": "x"}}],
        [{"namespace": 1, "labels": {}}],
        [{"namespace": "billing", "labels": {"app": 1}}],
        [{"namespace": "billing", "labels": "app=x"}],
    ]


WRONG: list[tuple[str, str, Any]] = [
    (rule, option, bad)
    for rule, options in OPTIONS.items()
    for option, good in options.items()
    for bad in wrong_values(option, good)
]
"""(rule, option, a value of the wrong shape): wrong type, wrong item type, an item
without a required key, a version that is not exact."""


@pytest.fixture(scope="module")
def pack() -> InProcessPack:
    return InProcessPack()


def test_every_rule_with_options_is_listed_with_exactly_its_options(pack: InProcessPack) -> None:
    declared = {
        policy.name: set(policy.config_schema.properties)
        for policy in pack.policies
        if policy.config_schema
    }
    assert declared == {rule: set(options) for rule, options in OPTIONS.items()}


def test_every_option_is_described_and_has_a_default(pack: InProcessPack) -> None:
    for policy in pack.policies:
        for option, schema in (
            policy.config_schema.properties if policy.config_schema else {}
        ).items():
            assert len(schema.get("description", "")) > 20, (policy.name, option)
            assert "default" in schema, (policy.name, option)
            assert pack.settings[policy.name][1][option] == schema["default"]


def test_valid_options_are_accepted() -> None:
    configured = InProcessPack(
        {rule: {"enforcementLevel": "mandatory", **o} for rule, o in OPTIONS.items()}
    )
    for rule, options in OPTIONS.items():
        assert configured.settings[rule] == ("mandatory", options)


@pytest.mark.parametrize(
    ("rule", "option", "bad"), WRONG, ids=[f"{r}.{o}={b!r}" for r, o, b in WRONG]
)
def test_an_option_of_the_wrong_shape_is_refused(rule: str, option: str, bad: Any) -> None:
    with pytest.raises(PolicyPackError, match=f"policy config for {rule}: {option}"):
        InProcessPack({rule: {option: bad}})
