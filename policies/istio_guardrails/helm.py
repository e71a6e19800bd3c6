"""Istio Helm releases: exact versions from approved repositories; istiod HA in prod.

Helm `Release` children are invisible to CrossGuard, so what a chart will install is
judged from the release's inputs (chart, version, repository, values).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from .pack import ADVISORY, ConfigSchema, resource_policy
from .values import Resource, boolean, kind_is, mapping, number, text

HELM = "helm.sh"
HELM_KINDS = {(HELM, "Release"), (HELM, "Chart")}
"""`kubernetes:helm.sh/v3:Release` (and v4 `Chart`, which takes the same inputs)."""

ISTIO_CHARTS = frozenset({"base", "istiod", "gateway", "cni", "ztunnel"})

EXACT_VERSION = re.compile(r"^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$")
"""`1.30.5` or `1.31.0-beta.1`; never a range (`~1.30`, `>=1.30.0`, `1.30.x`) or empty."""


def chart_location(props: Mapping[str, Any]) -> tuple[str, str | None]:
    """(chart name, repository) of a release; the repository is None if not given.

    An OCI chart carries its repository in the chart reference itself
    (`oci://ghcr.io/istio/release/charts/istiod`).
    """
    chart = text(props.get("chart"), "chart") or ""
    repo_opts = mapping(props.get("repositoryOpts"), "repositoryOpts")
    repo = text(repo_opts.get("repo"), "repositoryOpts.repo")
    if chart.startswith("oci://"):
        oci_repo, _, name = chart.rpartition("/")
        return name, oci_repo
    # `istio/istiod` names a chart through a local `helm repo add` alias.
    return chart.rpartition("/")[2], repo


def _is_istio_repo(repo: str | None) -> bool:
    return repo is not None and ("/istio/release/charts" in repo or "istio-release" in repo)


def istio_chart(resource: Resource) -> str | None:
    """The Istio chart (`istiod`, `gateway`, ...) a Helm resource installs, else None."""
    if not kind_is(resource, HELM, "Release", "Chart"):
        return None
    name, repo = chart_location(resource.props)
    return name if name in ISTIO_CHARTS or _is_istio_repo(repo) else None


def _version_key(version: str) -> tuple[int, int, int, int]:
    # A pre-release sorts before its release: 1.30.0-beta.1 < 1.30.0 (False < True).
    core, _, pre = version.partition("-")
    major, minor, patch = (int(part) for part in core.split("."))
    return major, minor, patch, int(pre == "")


HELM_CONFIG: ConfigSchema = {
    "allowedRepositories": {
        "type": "array",
        "items": {"type": "string"},
        "default": [
            "https://blob.istio.io/istio-release/charts",
            "oci://ghcr.io/istio/release/charts",
        ],
        "description": "Chart repositories Istio charts may come from.",
    },
    "minimumVersion": {
        "type": "string",
        "pattern": EXACT_VERSION.pattern,
        "default": "1.30.0",
        "description": "Oldest Istio version still supported (N-1 until 6 weeks after N+2).",
    },
}


def helm_release_violations(resource: Resource, config: Mapping[str, Any]) -> Iterator[str]:
    """Exact version, inside the supported window, from an allowed repository."""
    chart = istio_chart(resource)
    if chart is None:
        return
    allowed = [repo.rstrip("/") for repo in config["allowedRepositories"]]
    _, repo = chart_location(resource.props)
    if repo is None:
        yield (
            f"Istio chart {chart} names no repository; set repositoryOpts.repo to one of "
            f"{', '.join(allowed)}"
        )
    elif repo.rstrip("/") not in allowed:
        yield f"Istio chart {chart} comes from {repo}; use one of {', '.join(allowed)}"
    version = resource.props.get("version")
    version_text = text(version, "version")
    if not isinstance(version, str) or not version_text or not EXACT_VERSION.match(version_text):
        yield (
            f"Istio chart {chart} has version {version_text or 'unset'}; pin an exact "
            "version such as 1.30.5 (no range, no empty)"
        )
        return
    minimum = config["minimumVersion"]
    if _version_key(version_text) < _version_key(minimum):
        yield (
            f"Istio chart {chart} version {version_text} is older than the oldest supported "
            f"version {minimum}; upgrade (canary revision) to a supported release"
        )


def _istiod_value(values: Mapping[str, Any], key: str) -> Any:
    # istiod reads its settings at the top level; `pilot.<key>` is the older spelling
    # the chart still merges in.
    if key in values:
        return values.get(key)
    return mapping(values.get("pilot"), "values.pilot").get(key)


def istiod_ha_violations(resource: Resource, _config: Mapping[str, Any]) -> Iterator[str]:
    """istiod runs at least two replicas, so the chart also renders a PodDisruptionBudget."""
    if istio_chart(resource) != "istiod":
        return
    values = mapping(resource.props.get("values"), "values")
    autoscale = boolean(_istiod_value(values, "autoscaleEnabled"), "values.autoscaleEnabled")
    if autoscale is False:
        replicas = number(_istiod_value(values, "replicaCount"), "values.replicaCount")
        replicas = 1.0 if replicas is None else replicas  # the chart's default
        if replicas < 2:
            yield (
                f"istiod runs {replicas:g} replica with autoscaling off; set "
                "values.replicaCount >= 2"
            )
        return
    minimum = number(_istiod_value(values, "autoscaleMin"), "values.autoscaleMin")
    minimum = 1.0 if minimum is None else minimum  # the chart's default
    if minimum < 2:
        yield (
            f"istiod autoscales from {minimum:g} replica; set values.autoscaleMin >= 2 "
            "(the chart renders a PodDisruptionBudget only then)"
        )


POLICIES = [
    resource_policy(
        "istio-helm-release-pinned",
        "Istio Helm charts (base, istiod, gateway, cni, ztunnel) must be pinned to an exact "
        "version (e.g. 1.30.5) inside the supported window, from an approved repository "
        "(https://blob.istio.io/istio-release/charts or oci://ghcr.io/istio/release/charts; "
        "not istio-release.storage.googleapis.com).",
        helm_release_violations,
        kinds=HELM_KINDS,
        config=HELM_CONFIG,
    ),
    resource_policy(
        "istiod-high-availability",
        "istiod must be highly available: set values.autoscaleMin >= 2 (or "
        "values.autoscaleEnabled false with values.replicaCount >= 2), so a node drain never "
        "removes the last control-plane pod and the chart renders a PodDisruptionBudget.",
        istiod_ha_violations,
        kinds=HELM_KINDS,
        enforcement=ADVISORY,
    ),
]
