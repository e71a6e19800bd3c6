"""What `istioctl analyze` checks against workloads, where the input holds workloads.

- `destination-rule-subsets-select-pods` (IST0173): each subset's labels select a pod of
  its host; otherwise traffic routed to the subset has nowhere to go.
- `authorization-selects-workloads` (IST0127): an AuthorizationPolicy's selector selects
  a workload of its namespace (of the mesh, in the root namespace); otherwise the policy
  protects nothing.

A stack declares the mesh, not the applications: it holds no Deployments, so these rules
stay silent for a namespace whose workloads the input does not hold (or, for a subset,
whose host's Service it does not hold either). They judge manifests that hold them
(`mesh check k8s/*.yaml`, `helm template` output), and a stack can declare workloads
that live elsewhere (`externalWorkloads`), as `externalGateways` does for gateways.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from .hosts import CLUSTER_DOMAIN, fqdn
from .injection import WORKLOAD_KINDS, pod_metadata
from .mtls import ROOT_NAMESPACE
from .pack import ConfigSchema, stack_policy
from .values import (
    NETWORKING,
    SECURITY,
    Findings,
    Resource,
    k8s_type,
    kind_is,
    labels_of,
    mapping,
    name_of,
    namespace_of,
    sequence,
    string_map,
    text,
)

WORKLOADS_CONFIG: ConfigSchema = {
    "externalWorkloads": {
        "type": "array",
        "items": {
            "type": "object",
            "properties": {
                "namespace": {"type": "string"},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
            },
            "required": ["namespace", "labels"],
        },
        "default": [],
        "description": "Pod labels of workloads deployed outside this stack, by namespace.",
    },
}


def _pods_by_namespace(
    resources: Sequence[Resource], config: Mapping[str, Any], findings: Findings
) -> dict[str, list[dict[str, str]]]:
    """Pod labels of every workload the input holds (or the config declares), by namespace."""
    pods: dict[str, list[dict[str, str]]] = defaultdict(list)
    for declared in config["externalWorkloads"]:
        pods[str(declared["namespace"])].append(dict(declared["labels"]))
    for resource in resources:
        parsed = k8s_type(resource.type)
        if parsed is None or (parsed.group, parsed.kind) not in WORKLOAD_KINDS:
            continue
        with findings.reading(resource):
            where, meta = pod_metadata(resource)
            pods[namespace_of(resource.props)].append(
                string_map(labels_of(meta), f"{where}.labels")
            )
    return pods


def _selects(selector: Mapping[str, str], pods: Sequence[Mapping[str, str]]) -> bool:
    return any(selector.items() <= pod.items() for pod in pods)


TOPOLOGY_LABELS = frozenset(
    {
        "topology.kubernetes.io/region",
        "topology.kubernetes.io/zone",
        "topology.istio.io/subzone",
        "topology.istio.io/cluster",
        "topology.istio.io/network",
        "kubernetes.io/hostname",
    }
)
"""Labels Istio adds to a pod's own from its node and cluster: a subset may select by
them, but no manifest says which pod gets which, so they are not judged."""


def _service_selectors(
    resources: Sequence[Resource], findings: Findings
) -> dict[str, dict[str, str]]:
    """`<name>.<namespace>.svc.<domain>` -> the pod selector of each Service of the input."""
    selectors = {}
    for resource in resources:
        if kind_is(resource, "", "Service"):
            with findings.reading(resource):
                spec = mapping(resource.props.get("spec"), "spec")
                host = fqdn(name_of(resource.props), namespace_of(resource.props))
                selectors[host] = string_map(
                    mapping(spec.get("selector"), "spec.selector"), "spec.selector"
                )
    return selectors


def subset_violations(
    resources: Sequence[Resource], config: Mapping[str, Any]
) -> Iterator[tuple[str | None, str]]:
    """Every subset selects a pod, where the input holds the host's namespace's workloads
    or the host's Service (manifests that hold a Service hold its workloads too).

    As Istio picks a subset's endpoints: the pods of the host's Service (its selector,
    where the input holds the Service) that carry the subset's labels.
    """
    findings = Findings()
    pods = _pods_by_namespace(resources, config, findings)
    services = _service_selectors(resources, findings)
    for resource in resources:
        if not kind_is(resource, NETWORKING, "DestinationRule"):
            continue
        with findings.reading(resource):
            spec = mapping(resource.props.get("spec"), "spec")
            host = fqdn(text(spec.get("host"), "spec.host") or "", namespace_of(resource.props))
            if not host.endswith("." + CLUSTER_DOMAIN):
                continue  # an external host has no pods here
            namespace = host.split(".")[1]
            if namespace not in pods and host not in services:
                continue  # neither its workloads nor its Service in the input: cannot judge
            for index, subset in enumerate(sequence(spec.get("subsets"), "spec.subsets")):
                where = f"spec.subsets[{index}]"
                labels = string_map(
                    mapping(mapping(subset, where).get("labels"), f"{where}.labels"),
                    f"{where}.labels",
                )
                judged = {k: v for k, v in labels.items() if k not in TOPOLOGY_LABELS}
                selector = {**services.get(host, {}), **judged}
                if judged and not _selects(selector, pods.get(namespace, [])):
                    wanted = ", ".join(f"{k}={v}" for k, v in sorted(judged.items()))
                    findings.add(
                        resource.urn,
                        f"{where} ({mapping(subset, where).get('name')}) selects no pod of "
                        f"{host} ({wanted}; IST0173): traffic routed to it fails; fix the "
                        "labels or deploy the version",
                    )
    yield from findings.items


def authorization_violations(
    resources: Sequence[Resource], config: Mapping[str, Any]
) -> Iterator[tuple[str | None, str]]:
    """A policy's selector selects a workload, in namespaces whose workloads are known."""
    findings = Findings()
    pods = _pods_by_namespace(resources, config, findings)
    for policy in resources:
        if not kind_is(policy, SECURITY, "AuthorizationPolicy"):
            continue
        with findings.reading(policy):
            namespace = namespace_of(policy.props)
            spec = mapping(policy.props.get("spec"), "spec")
            selector = mapping(spec.get("selector"), "spec.selector")
            where = "spec.selector.matchLabels"
            labels = string_map(mapping(selector.get("matchLabels"), where), where)
            if namespace == config["rootNamespace"]:
                # In the root namespace the policy applies mesh-wide: any pod may match.
                scope, candidates = "the mesh", [pod for found in pods.values() for pod in found]
            else:
                scope, candidates = namespace, pods.get(namespace, [])
            if labels and candidates and not _selects(labels, candidates):
                wanted = ", ".join(f"{k}={v}" for k, v in sorted(labels.items()))
                findings.add(
                    policy.urn,
                    f"spec.selector ({wanted}) selects no workload of {scope} (IST0127): "
                    "the policy protects nothing; fix the labels",
                )
    yield from findings.items


POLICIES = [
    stack_policy(
        "destination-rule-subsets-select-pods",
        "Each DestinationRule subset's labels select a pod of its host's namespace (istioctl "
        "IST0173). Judged where the input holds that namespace's workloads (manifests, or "
        "externalWorkloads); silent for a stack, which declares no applications.",
        subset_violations,
        config=WORKLOADS_CONFIG,
    ),
    stack_policy(
        "authorization-selects-workloads",
        "An AuthorizationPolicy's selector selects a workload of its namespace, or of the "
        "mesh for a policy in the root namespace (istioctl IST0127), judged where the input "
        "holds those workloads (manifests, or externalWorkloads); silent for a stack, which "
        "declares no applications.",
        authorization_violations,
        config={**WORKLOADS_CONFIG, **ROOT_NAMESPACE},
    ),
]
