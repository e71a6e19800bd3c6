"""Kubernetes label selectors (`matchLabels` and `matchExpressions`), matched as the API
server matches them.

A webhook's `namespaceSelector` and `objectSelector`, and a Gateway API listener's
`allowedRoutes.namespaces.selector`, are `metav1.LabelSelector`s: every `matchLabels`
entry and every expression must hold (`In`, `NotIn`, `Exists`, `DoesNotExist`; `NotIn`
and `DoesNotExist` hold for a label that is absent). An empty selector matches
everything. An operator Kubernetes does not know makes the selector match nothing, as
the API server refuses such an object.

A Namespace carries `kubernetes.io/metadata.name: <name>` whether or not its manifest
says so (the API server sets it): `labels_of_namespace` adds it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .values import Resource, labels_of, mapping, metadata, name_of, sequence, string_map, text

NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"


@dataclass(frozen=True)
class Requirement:
    key: str
    operator: str
    values: frozenset[str]

    def holds(self, labels: Mapping[str, str]) -> bool:
        if self.operator == "In":
            return self.key in labels and labels[self.key] in self.values
        if self.operator == "NotIn":
            return self.key not in labels or labels[self.key] not in self.values
        if self.operator == "Exists":
            return self.key in labels
        if self.operator == "DoesNotExist":
            return self.key not in labels
        return False


@dataclass(frozen=True)
class LabelSelector:
    requirements: tuple[Requirement, ...]

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(requirement.holds(labels) for requirement in self.requirements)


def label_selector(value: Any, where: str) -> LabelSelector:
    """The selector at `where` (missing: the empty selector, which matches everything),
    every value read so that an unknown one fails closed."""
    selector = mapping(value, where)
    at = f"{where}.matchLabels"
    requirements = [
        Requirement(key, "In", frozenset({label}))
        for key, label in string_map(mapping(selector.get("matchLabels"), at), at).items()
    ]
    at = f"{where}.matchExpressions"
    for index, item in enumerate(sequence(selector.get("matchExpressions"), at)):
        expression = mapping(item, f"{at}[{index}]")
        values = sequence(expression.get("values"), f"{at}[{index}].values")
        requirements.append(
            Requirement(
                key=text(expression.get("key"), f"{at}[{index}].key") or "",
                operator=text(expression.get("operator"), f"{at}[{index}].operator") or "",
                values=frozenset(
                    text(v, f"{at}[{index}].values[{i}]") or "" for i, v in enumerate(values)
                ),
            )
        )
    return LabelSelector(tuple(requirements))


def labels_of_namespace(namespace: Resource) -> dict[str, str]:
    """A Namespace's labels as the API server keeps them: its own, plus its name."""
    labels = string_map(labels_of(metadata(namespace.props)), "metadata.labels")
    return {**labels, NAMESPACE_NAME_LABEL: name_of(namespace.props)}
