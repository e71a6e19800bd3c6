"""Registering plain manifest dicts as pulumi-kubernetes resources.

Builders return manifests (dicts shaped exactly as `kubectl apply` takes them); this
module is the one place that turns a manifest into the matching pulumi-kubernetes
resource, so components never repeat the apiVersion/kind dispatch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
from pydantic.alias_generators import to_snake

Manifest = dict[str, Any]

SKIP_AWAIT = "pulumi.com/skipAwait"
"""Annotation telling the kubernetes provider not to wait for an object to be ready
(a Service's endpoints, say, which pods outside the stack provide)."""


TYPED_KINDS: dict[tuple[str, str], tuple[Callable[..., pulumi.CustomResource], tuple[str, ...]]] = {
    ("v1", "Namespace"): (k8s.core.v1.Namespace, ()),
    ("v1", "Service"): (k8s.core.v1.Service, ("spec",)),
    ("v1", "ConfigMap"): (k8s.core.v1.ConfigMap, ("data",)),
    ("v1", "Secret"): (k8s.core.v1.Secret, ("type", "stringData")),
    ("networking.k8s.io/v1", "NetworkPolicy"): (k8s.networking.v1.NetworkPolicy, ("spec",)),
    ("apiextensions.k8s.io/v1", "CustomResourceDefinition"): (
        k8s.apiextensions.v1.CustomResourceDefinition,
        ("spec",),  # not a release manifest's `status`: the API server writes that
    ),
    ("admissionregistration.k8s.io/v1", "MutatingWebhookConfiguration"): (
        k8s.admissionregistration.v1.MutatingWebhookConfiguration,
        ("webhooks",),
    ),
}
"""(apiVersion, kind) -> the typed class a built-in kind is declared with, and the
manifest's top-level fields it takes (the rest of a manifest is not ours to declare),
each as the argument of the same name in snake case (`stringData`: `string_data`)."""


def register_manifest(
    resource_name: str, manifest: Manifest, opts: pulumi.ResourceOptions
) -> pulumi.CustomResource:
    """Declare `manifest` as a Kubernetes object named `resource_name` in the stack.

    Built-in kinds use their typed classes (so the provider applies its own await and
    diff logic); everything else, Istio's kinds included, is a `CustomResource`.
    """
    api_version = manifest["apiVersion"]
    kind = manifest["kind"]
    metadata = manifest.get("metadata")
    typed = TYPED_KINDS.get((api_version, kind))
    if typed is not None:
        cls, names = typed
        fields = {to_snake(name): manifest[name] for name in names}
        return cls(resource_name, metadata=metadata, opts=opts, **fields)
    extra = {k: v for k, v in manifest.items() if k not in ("apiVersion", "kind", "metadata")}
    return k8s.apiextensions.CustomResource(
        resource_name, api_version=api_version, kind=kind, metadata=metadata, opts=opts, **extra
    )


def type_token(manifest: Manifest) -> str:
    """The Pulumi type of the resource `register_manifest` declares for `manifest`
    (`kubernetes:<group>/<version>:<Kind>`, the core group spelled `core`)."""
    api_version = manifest["apiVersion"]
    if "/" not in api_version:
        api_version = f"core/{api_version}"
    return f"kubernetes:{api_version}:{manifest['kind']}"


def child_options(
    parent: pulumi.Resource,
    opts: pulumi.ResourceOptions | None,
    after: Sequence[pulumi.Resource] = (),
    protect: bool = False,
    aliases: Sequence[str | pulumi.Alias] = (),
) -> pulumi.ResourceOptions:
    """Options of a component's child: parented, and ordered after what the component is.

    The engine does not pass a component's `depends_on` down to its children, so a
    gateway component declared after istiod would otherwise install its release right
    away. Children therefore inherit the component's dependencies, plus `after`.
    `protect` also retains the object when it leaves the program: a protected namespace
    or CRD release is never deleted by Pulumi. `aliases` name where the child lived
    before, so that moving it does not replace the live object.
    """
    inherited: Any = opts.depends_on if opts is not None else None
    if inherited is None:
        inherited = []
    elif not isinstance(inherited, list):
        inherited = [inherited]
    return pulumi.ResourceOptions(
        parent=parent,
        depends_on=[*inherited, *after],
        protect=protect,
        retain_on_delete=protect or None,
        aliases=list(aliases) or None,
    )
