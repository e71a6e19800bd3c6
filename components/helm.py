"""Helm releases as plain data, and the one place they become Pulumi resources.

Builders return `ChartRelease` values (tested without Pulumi); components register
them with `register_release`. Every Istio chart comes from one repository, at an exact
version, under an explicit release name (no random suffix), so what runs in the cluster
is what the config says.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.naming import CHART_REPOSITORY


@dataclass(frozen=True)
class ChartRelease:
    """One Helm release: which chart, which exact version, where, with which values."""

    name: str
    """Release name, as `helm list` shows it."""
    chart: str
    """Chart name in the repository (`base`, `istiod`, `gateway`, `cni`, `ztunnel`, ...)."""
    version: str
    """Exact chart version."""
    namespace: str
    """Namespace the release is installed in (created separately, never by Helm)."""
    values: dict[str, Any] = field(default_factory=dict)
    """Chart values; only keys the chart defines."""
    repository: str = CHART_REPOSITORY
    """Chart repository URL (`https://...`, or `oci://...` where the chart is pulled from)."""
    wait: bool = True
    """Wait until the release's workloads are ready, rolling a failed install back."""

    @property
    def chart_reference(self) -> str:
        """`chart` as Helm is asked for it: OCI charts carry their registry in the name."""
        if self.repository.startswith("oci://"):
            return f"{self.repository}/{self.chart}"
        return self.chart


def register_release(
    resource_name: str, release: ChartRelease, opts: pulumi.ResourceOptions
) -> k8s.helm.v3.Release:
    """Declare `release` as a Helm release managed by Pulumi.

    When the release waits, the provider waits for its workloads to be ready, which is
    what makes `depends_on` on a release mean "after it is running", and `atomic` rolls
    a failed install or upgrade back instead of leaving it half-applied (Helm makes
    atomic wait, so a release that does not wait is not atomic).
    """
    oci = release.repository.startswith("oci://")
    return k8s.helm.v3.Release(
        resource_name,
        name=release.name,
        chart=release.chart_reference,
        version=release.version,
        namespace=release.namespace,
        repository_opts=None if oci else k8s.helm.v3.RepositoryOptsArgs(repo=release.repository),
        values=release.values,
        atomic=release.wait,
        skip_await=None if release.wait else True,
        cleanup_on_fail=True,
        opts=opts,
    )


def spread_across_zones_and_hosts(pod_labels: dict[str, str]) -> dict[str, Any]:
    """Chart values (istiod's and the gateway chart's share the keys) that spread the
    pods labeled `pod_labels` over zones and keep them off each other's nodes, so one
    zone or node going down leaves the others serving. Preferences, not requirements:
    a small cluster still schedules them all."""
    selector = {"matchLabels": dict(pod_labels)}
    return {
        "topologySpreadConstraints": [
            {
                "maxSkew": 1,
                "topologyKey": "topology.kubernetes.io/zone",
                "whenUnsatisfiable": "ScheduleAnyway",
                "labelSelector": selector,
            }
        ],
        "affinity": {
            "podAntiAffinity": {
                "preferredDuringSchedulingIgnoredDuringExecution": [
                    {
                        "weight": 100,
                        "podAffinityTerm": {
                            "topologyKey": "kubernetes.io/hostname",
                            "labelSelector": selector,
                        },
                    }
                ]
            }
        },
    }
