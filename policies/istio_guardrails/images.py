"""Istio's images from locations Istio keeps: none from what it retires in December 2026.

Istio retires every artifact it hosted on Google Cloud (istio/istio#61467):
`gcr.io/istio-release` and `registry.istio.io/release` stop serving images, and
docker.io/istio keeps them. The released 1.30 charts default their hub to
gcr.io/istio-release, so an Istio release that does not set its hub pulls from there.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from .helm import HELM_KINDS, istio_chart
from .injection import WORKLOAD_KINDS, pod_template_part
from .pack import resource_policy
from .values import Resource, mapping, sequence, text

RETIRED_HUBS = ("gcr.io/istio-release", "registry.istio.io/release")
"""As `components.naming.RETIRED_HUBS` says (the pack runs in its own virtualenv and keeps
its own copy; tests/policies/test_rules.py holds the two equal)."""
CURRENT_HUB = "docker.io/istio"

HUB_KEYS = {"istiod": ("global", "hub"), "cni": ("global", "hub"), "ztunnel": ("hub",)}
"""Where each Istio chart with images of its own reads its hub. `base` has no image;
`gateway` pods are injected (`image: auto`) with istiod's."""


def retired(image: str) -> bool:
    return any(image == hub or image.startswith(hub + "/") for hub in RETIRED_HUBS)


def _release_violations(chart: str, props: Mapping[str, Any]) -> Iterator[str]:
    path = HUB_KEYS.get(chart)
    if path is None:
        return
    node: Mapping[str, Any] = mapping(props.get("values"), "values")
    where = "values"
    for key in path[:-1]:
        where += f".{key}"
        node = mapping(node.get(key), where)
    where += f".{path[-1]}"
    hub = text(node.get(path[-1]), where)
    if hub is None:
        yield (
            f"Istio chart {chart} leaves {where} to the chart's default (gcr.io/istio-release "
            f"in the released 1.30 charts, retired in December 2026); set it to {CURRENT_HUB}"
        )
    elif retired(hub.rstrip("/")):
        yield f"{where} is {hub}, which Istio retires in December 2026; use {CURRENT_HUB}"
    image = text(mapping(props.get("values"), "values").get("image"), "values.image")
    if image is not None and retired(image):
        yield f"values.image is {image}, which Istio retires in December 2026; use {CURRENT_HUB}"


def _workload_violations(resource: Resource) -> Iterator[str]:
    spec_path, spec = pod_template_part(resource, "spec")
    for field in ("initContainers", "containers"):
        for index, container in enumerate(sequence(spec.get(field), f"{spec_path}.{field}")):
            here = f"{spec_path}.{field}[{index}].image"
            image = text(mapping(container, here).get("image"), here)
            if image is not None and retired(image):
                yield f"{here} is {image}, which Istio retires in December 2026; use {CURRENT_HUB}"


def image_violations(resource: Resource, _config: Mapping[str, Any]) -> Iterator[str]:
    """No Istio image from a location Istio retires; Istio's releases name their hub."""
    chart = istio_chart(resource)
    if chart is not None:
        yield from _release_violations(chart, resource.props)
        return
    # Not an Istio release: a workload (the policy's kinds), or another chart's release,
    # which has no pod template to read.
    yield from _workload_violations(resource)


POLICIES = [
    resource_policy(
        "istio-images-current-hub",
        "Istio images must not come from gcr.io/istio-release or registry.istio.io/release, "
        "which Istio retires in December 2026: Istio's Helm releases set their hub "
        "(values.global.hub; ztunnel: values.hub) to docker.io/istio or a mirror, and no "
        "workload runs an image from a retired location.",
        image_violations,
        kinds=HELM_KINDS | WORKLOAD_KINDS,
    ),
]
