"""The Kubernetes Gateway API's CRDs, installed pinned from the release's manifest.

Kubernetes does not ship the Gateway API; Istio expects the cluster to have it (its base
chart has no copy). A stack that declares waypoints or `gateway-api` gateways installs
the standard channel's CRDs of one release (`gatewayApi.version`, by default the one the
default revision's Istio is built against), read from the release's
`standard-install.yaml`: on GitHub, or a mirror (`gatewayApi.source`, or the
`ISTIO_MESH_GATEWAY_API_CRDS` environment variable for offline renders and tests).
Each CRD is checked to be of that release and channel before anything is declared, and
registered as an object of its own, so the preview, the policy pack and `mesh render`
see every one, and what uses them waits for them.
"""

from __future__ import annotations

import os
import urllib.request
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

import pulumi
import yaml

from components import naming
from components.k8s import Manifest, child_options, register_manifest

RELEASE_URL = (
    "https://github.com/kubernetes-sigs/gateway-api/releases/download/"
    "v{version}/standard-install.yaml"
)
SOURCE_ENV = "ISTIO_MESH_GATEWAY_API_CRDS"
"""A file or URL read instead of the release on GitHub when the stack names no
`gatewayApi.source` (offline renders, the tests, an air-gapped CI)."""
BUNDLE_VERSION = "gateway.networking.k8s.io/bundle-version"
CHANNEL = "gateway.networking.k8s.io/channel"
_ADMISSION = "admissionregistration.k8s.io/v1"
ALLOWED_KINDS = {
    ("apiextensions.k8s.io/v1", "CustomResourceDefinition"),
    # Newer releases ship a policy refusing CRD downgrades beside the CRDs.
    (_ADMISSION, "ValidatingAdmissionPolicy"),
    (_ADMISSION, "ValidatingAdmissionPolicyBinding"),
}


class GatewayApiSourceError(ValueError):
    """The CRD manifest could not be read, or is not the pinned release's."""


def crd_source(version: str, source: str | None) -> str:
    """Where the release's manifest is read from: the stack's, the environment's, or
    the release on GitHub. `{version}` in a source stands for the release (`1.5.1`), so
    one mirror URL serves every release."""
    chosen = source or os.environ.get(SOURCE_ENV) or RELEASE_URL
    return chosen.replace("{version}", version)


@cache
def read_source(source: str) -> str:
    """The text at `source` (an https:// or file URL, or a path); read once per run."""
    try:
        if source.startswith(("https://", "http://", "file://")):
            with urllib.request.urlopen(source, timeout=60) as response:
                return str(response.read().decode("utf-8"))
        return Path(source).read_text(encoding="utf-8")
    except (OSError, ValueError) as error:
        raise GatewayApiSourceError(
            f"cannot read the Gateway API CRDs from {source}: {error}"
        ) from None


def crd_manifests(text: str, version: str, source: str) -> list[Manifest]:
    """The objects of a `standard-install.yaml`, checked to be the standard channel of
    `version`; raises `GatewayApiSourceError` naming the first that is not."""
    manifests = []
    for document in yaml.safe_load_all(text):
        if document is None:
            continue
        if not isinstance(document, Mapping):
            raise GatewayApiSourceError(f"{source}: a document is not a Kubernetes object")
        kind = (document.get("apiVersion"), document.get("kind"))
        name = (document.get("metadata") or {}).get("name")
        if kind not in ALLOWED_KINDS:
            raise GatewayApiSourceError(
                f"{source}: {kind[1]} {name} is not part of the Gateway API's CRD install"
            )
        if kind[1] == "CustomResourceDefinition":
            annotations = (document.get("metadata") or {}).get("annotations") or {}
            found = (annotations.get(BUNDLE_VERSION), annotations.get(CHANNEL))
            if found != (f"v{version}", "standard"):
                raise GatewayApiSourceError(
                    f"{source}: CRD {name} is {found[0]} ({found[1]} channel), not "
                    f"v{version} (standard channel) as gatewayApi.version pins"
                )
        manifests.append(dict(document))
    if not any(m["kind"] == "CustomResourceDefinition" for m in manifests):
        raise GatewayApiSourceError(f"{source}: holds no CustomResourceDefinition")
    return manifests


def load_crds(version: str, source: str | None = None) -> list[Manifest]:
    """The pinned release's CRD install, read and checked."""
    where = crd_source(version, source)
    return crd_manifests(read_source(where), version, where)


def resource_suffix(manifest: Mapping[str, Any]) -> str:
    """A CRD's child name: its plural (`httproutes`); other objects by kind and name."""
    name = str(manifest["metadata"]["name"])
    if manifest["kind"] == "CustomResourceDefinition":
        return name.removesuffix(f".{naming.GATEWAY_API_GROUP}")
    return f"{manifest['kind'].lower()}-{name}"


class GatewayApiCrds(pulumi.ComponentResource):
    """The Gateway API release's CRDs (and admission policies), one child each, named
    `<name>-<plural>`. `ready` lists them: anything declaring a Gateway API object
    depends on it. Protected with the mesh (`protect`): deleting a CRD deletes every
    route and gateway of its kind."""

    ready: list[pulumi.Resource]

    def __init__(
        self,
        name: str,
        manifests: list[Manifest],
        version: str,
        protect: bool,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("istio-mesh:gateway-api:GatewayApiCrds", name, None, opts)
        self.ready = [
            register_manifest(
                f"{name}-{resource_suffix(manifest)}",
                manifest,
                child_options(self, opts, protect=protect),
            )
            for manifest in manifests
        ]
        self.register_outputs({"version": version, "objects": len(manifests)})
