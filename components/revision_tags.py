"""Revision tags as objects of their own, so that moving a tag is an update in place.

A tag (`stable`, `canary`, `default`) is a cluster-wide MutatingWebhookConfiguration
`istio-revision-tag-<tag>` (and a Service `istiod-revision-tag-<tag>`) that sends the
pods of namespaces labeled `istio.io/rev: <tag>` to one revision's istiod for injection.
The istiod chart can render them (`revisionTags`), but then the release of the revision
the tag points at owns them: moving a tag makes two releases claim one object in the
same `pulumi up`. Helm refuses to adopt an object another release owns ("invalid
ownership metadata") when the new owner goes first, and deletes the webhook when the
old owner goes first, leaving a gap in which new pods get no sidecar.

So no istiod release renders a tag. Each tag is one Pulumi resource, named after the
tag and never after the revision: moving the tag changes which istiod its webhook calls
(an update of the same object, which never disappears). The objects are those the
istiod chart's `revision-tags-mwc.yaml` and `revision-tags-svc.yaml` render for the tag
(with the chart's defaults: injection path `/inject`, reinvocation `Never`, no
namespaces injected by default), less Helm's ownership labels, plus one exclusion: a
namespace labeled `istio.io/dataplane-mode=ambient` is never injected, though it carries
the tag. The e2e tier compares them with the chart's own rendering. The webhook has no
`caBundle`: istiod fills it in for the webhooks labeled with its revision, as it does
for the chart's.
"""

from __future__ import annotations

from typing import Any

from components import naming
from components.k8s import SKIP_AWAIT, Manifest

TAG_LABEL = "istio.io/tag"
INJECTION_PATH = "/inject"


def tag_webhook_name(tag: str) -> str:
    """The tag's MutatingWebhookConfiguration, as the chart names it in istio-system."""
    return f"istio-revision-tag-{tag}"


def tag_service_name(tag: str) -> str:
    return f"istiod-revision-tag-{tag}"


def _labels(tag: str, revision: str) -> dict[str, str]:
    return {
        TAG_LABEL: tag,
        naming.REVISION_LABEL: revision,
        "app.kubernetes.io/name": "istiod",
    }


def _injector(prefix: str, revision: str, namespace_selector: Any, object_selector: Any) -> Any:
    return {
        "name": f"{prefix}sidecar-injector.istio.io",
        "clientConfig": {
            "service": {
                "name": naming.istiod_service(revision),
                "namespace": naming.ISTIO_SYSTEM,
                "path": INJECTION_PATH,
                "port": 443,
            }
        },
        "sideEffects": "None",
        "rules": [
            {
                "operations": ["CREATE"],
                "apiGroups": [""],
                "apiVersions": ["v1"],
                "resources": ["pods"],
            }
        ],
        "failurePolicy": "Fail",
        "reinvocationPolicy": "Never",
        "admissionReviewVersions": ["v1"],
        "namespaceSelector": {"matchExpressions": namespace_selector},
        "objectSelector": {"matchExpressions": object_selector},
    }


def _label(key: str, operator: str, *values: str) -> dict[str, Any]:
    expression: dict[str, Any] = {"key": key, "operator": operator}
    if values:
        expression["values"] = list(values)
    return expression


def tag_webhook(tag: str, revision: str) -> Manifest:
    """The webhook that injects pods of `tag`'s namespaces (and pods labeled with the tag)
    from `revision`'s istiod; the `default` tag also serves `istio-injection=enabled`."""
    rev, injection = naming.REVISION_LABEL, naming.INJECTION_LABEL
    not_opted_out = _label("sidecar.istio.io/inject", "NotIn", "false")
    webhooks = [
        _injector(
            "rev.namespace.",
            revision,
            [
                _label(rev, "In", tag),
                _label(injection, "DoesNotExist"),
                # Ambient namespaces carry the tag to choose their waypoint's control
                # plane, not to get sidecars: without this their pods would get one
                # (the chart's tag webhook has no such exclusion, istio/istio#60313).
                _label(naming.DATAPLANE_MODE_LABEL, "NotIn", "ambient"),
            ],
            [not_opted_out],
        ),
        _injector(
            "rev.object.",
            revision,
            [_label(rev, "DoesNotExist"), _label(injection, "DoesNotExist")],
            [not_opted_out, _label(rev, "In", tag)],
        ),
    ]
    if tag == naming.DEFAULT_TAG:
        webhooks += [
            _injector(
                "namespace.", revision, [_label(injection, "In", "enabled")], [not_opted_out]
            ),
            _injector(
                "object.",
                revision,
                [_label(injection, "DoesNotExist"), _label(rev, "DoesNotExist")],
                [_label("sidecar.istio.io/inject", "In", "true"), _label(rev, "DoesNotExist")],
            ),
        ]
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration",
        "metadata": {
            "name": tag_webhook_name(tag),
            "labels": {**_labels(tag, revision), "app": "sidecar-injector"},
        },
        "webhooks": webhooks,
    }


def tag_service(tag: str, revision: str) -> Manifest:
    """The tag's Service: `revision`'s istiod under the tag's name."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": tag_service_name(tag),
            "namespace": naming.ISTIO_SYSTEM,
            "labels": {**_labels(tag, revision), "app": "istiod", "istio": "pilot"},
            # Pulumi would wait for the Service's endpoints: istiod's pods, which its
            # release already waits for (or, with awaitReleases false, never will).
            "annotations": {SKIP_AWAIT: "true"},
        },
        "spec": {
            "ports": [
                {"port": 15010, "name": "grpc-xds", "protocol": "TCP"},
                {"port": 15012, "name": "https-dns", "protocol": "TCP"},
                {"port": 443, "name": "https-webhook", "targetPort": 15017, "protocol": "TCP"},
                {"port": 15014, "name": "http-monitoring", "protocol": "TCP"},
            ],
            "selector": {"app": "istiod", naming.REVISION_LABEL: revision},
        },
    }
