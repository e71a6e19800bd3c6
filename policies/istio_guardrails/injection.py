"""Sidecar injection: every namespace is in the mesh, no workload opts out."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from .pack import SYSTEM_NAMESPACES, resource_policy
from .values import Resource, k8s_type, labels_of, mapping, name_of, namespace_of, text

INJECTION = "istio-injection"
REVISION = "istio.io/rev"
DATAPLANE_MODE = "istio.io/dataplane-mode"
INJECT = "sidecar.istio.io/inject"
INJECT_TEMPLATES = "inject.istio.io/templates"

# Istio parses `sidecar.istio.io/inject` with Go's strconv.ParseBool.
_FALSE = frozenset({"false", "0", "f"})


def namespace_injection_violations(resource: Resource, config: Mapping[str, Any]) -> Iterator[str]:
    """In the mesh through istio-injection=enabled, istio.io/rev, or ambient dataplane mode
    (with or without istio.io/rev, whose tag chooses the control plane of the namespace's
    waypoints); istio-injection never beside either of the others."""
    name = name_of(resource.props)
    if name in config["systemNamespaces"]:
        return
    labels = labels_of(mapping(resource.props.get("metadata"), "metadata"))
    injection = text(labels.get(INJECTION), f"metadata.labels.{INJECTION}")
    revision = text(labels.get(REVISION), f"metadata.labels.{REVISION}")
    dataplane = text(labels.get(DATAPLANE_MODE), f"metadata.labels.{DATAPLANE_MODE}")
    ambient = dataplane == "ambient"
    if injection is not None and revision is not None:
        # istio-injection wins over istio.io/rev, silently pinning the default revision.
        yield (
            f"namespace {name} has both {INJECTION}={injection} and {REVISION}={revision}; "
            f"keep only {REVISION} (istio-injection overrides it)"
        )
    elif injection is not None and ambient:
        # The default tag's injector serves istio-injection: sidecars in ambient pods.
        yield (
            f"namespace {name} has both {INJECTION}={injection} and {DATAPLANE_MODE}=ambient; "
            f"remove {INJECTION} (ambient pods take no sidecar; enabled would inject one) "
            f"and choose the control plane with {REVISION}=<tag>"
        )
    elif injection != "enabled" and not revision and not ambient:
        yield (
            f"namespace {name} is not in the mesh; label it {REVISION}=<tag>, "
            f"{INJECTION}=enabled or {DATAPLANE_MODE}=ambient (with {REVISION}=<tag>)"
        )


# Where a workload keeps the pod template whose metadata Istio's injector reads: at
# `spec.template` (Deployment, StatefulSet, DaemonSet, ReplicaSet, ReplicationController,
# Job), except these.
POD_TEMPLATES: dict[str, tuple[str, ...]] = {
    "Pod": (),
    "CronJob": ("spec", "jobTemplate", "spec", "template"),
}
WORKLOAD_KINDS = (
    {("", "Pod"), ("", "ReplicationController")}
    | {("apps", kind) for kind in ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet")}
    | {("batch", "Job"), ("batch", "CronJob")}
)


def pod_template_part(resource: Resource, part: str) -> tuple[str, Mapping[str, Any]]:
    """(path, value) of the `metadata` or `spec` of a workload's pod template."""
    parsed = k8s_type(resource.type)
    path = POD_TEMPLATES.get(parsed.kind if parsed else "", ("spec", "template"))
    node: Mapping[str, Any] = resource.props
    walked: list[str] = []
    for key in (*path, part):
        walked.append(key)
        node = mapping(node.get(key), ".".join(walked))
    return ".".join(walked), node


def pod_metadata(resource: Resource) -> tuple[str, Mapping[str, Any]]:
    """(path, metadata) of the pod template of a workload."""
    return pod_template_part(resource, "metadata")


def workload_injection_violations(resource: Resource, config: Mapping[str, Any]) -> Iterator[str]:
    """No pod template carries sidecar.istio.io/inject "false" (annotation or label)."""
    if namespace_of(resource.props) in config["systemNamespaces"]:
        return
    where, meta = pod_metadata(resource)
    for field in ("annotations", "labels"):
        values = mapping(meta.get(field), f"{where}.{field}")
        value = text(values.get(INJECT), f"{where}.{field}.{INJECT}")
        if value is not None and value.lower() in _FALSE:
            yield f'{where}.{field} sets {INJECT}: "{value}"; remove it so the pod is injected'
    labels = mapping(meta.get("labels"), f"{where}.labels")
    annotations = mapping(meta.get("annotations"), f"{where}.annotations")
    mode = text(labels.get(DATAPLANE_MODE), f"{where}.labels.{DATAPLANE_MODE}")
    if mode == "none" and not _injected_gateway(labels, annotations):
        yield f"{where}.labels sets {DATAPLANE_MODE}: none; remove it so ztunnel captures the pod"


def _injected_gateway(labels: Mapping[str, Any], annotations: Mapping[str, Any]) -> bool:
    """A gateway pod (Istio's gateway chart): injected with the `gateway` template, its
    own Envoy is its place in the mesh, so it stays out of ztunnel (`dataplane-mode:
    none`, the chart's default) to be captured once, not twice."""
    injected = str(labels.get(INJECT, "")).lower() == "true"
    templates = str(annotations.get(INJECT_TEMPLATES, "")).split(",")
    return injected and "gateway" in (template.strip() for template in templates)


POLICIES = [
    resource_policy(
        "namespace-injection",
        "Every namespace outside the system namespaces must be in the mesh: label "
        "istio.io/rev=<tag>, istio-injection=enabled, or istio.io/dataplane-mode=ambient "
        "(with istio.io/rev=<tag> to choose the control plane of its waypoints); never "
        "istio-injection together with istio.io/rev or with ambient mode.",
        namespace_injection_violations,
        kinds={("", "Namespace")},
        config=SYSTEM_NAMESPACES,
    ),
    resource_policy(
        "workload-injection-enabled",
        'No workload may opt out of the mesh: remove sidecar.istio.io/inject: "false" (and '
        "istio.io/dataplane-mode: none) from the pod template's annotations and labels.",
        workload_injection_violations,
        kinds=WORKLOAD_KINDS,
        config=SYSTEM_NAMESPACES,
    ),
]
