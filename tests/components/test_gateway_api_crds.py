"""The Gateway API's CRDs: read from the pinned release's manifest, checked, declared
before what uses them; a source that is not the release registers nothing."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
import yaml

from components.errors import ConfigError
from components.gateway_api_crds import (
    RELEASE_URL,
    SOURCE_ENV,
    GatewayApiSourceError,
    crd_manifests,
    crd_source,
    load_crds,
    read_source,
    resource_suffix,
)
from mesh.program import Registered, run_program

REFERENCE = os.environ.get("GATEWAY_API_REFERENCE", "")


def crd(name: str, version: str = "v1.5.1", channel: str = "standard") -> dict[str, object]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{name}.gateway.networking.k8s.io",
            "annotations": {
                "gateway.networking.k8s.io/bundle-version": version,
                "gateway.networking.k8s.io/channel": channel,
            },
        },
        "spec": {},
    }


def as_text(*documents: object) -> str:
    return yaml.safe_dump_all(documents)


def test_the_reference_release_has_the_standard_channels_crds() -> None:
    manifests = load_crds("1.5.1", REFERENCE)
    assert sorted(resource_suffix(m) for m in manifests) == [
        "backendtlspolicies",
        "gatewayclasses",
        "gateways",
        "grpcroutes",
        "httproutes",
        "listenersets",
        "referencegrants",
        "tlsroutes",
    ]


@pytest.mark.parametrize(
    ("documents", "message"),
    [
        ([crd("gateways", version="v1.4.0")], "v1.4.0 (standard channel), not v1.5.1"),
        ([crd("gateways", channel="experimental")], "experimental channel"),
        (
            [crd("gateways"), {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "x"}}],
            "Namespace x is not part",
        ),
        (["just text"], "not a Kubernetes object"),
        ([None], "no CustomResourceDefinition"),
        ([None, crd("gateways"), crd("routes", version="v1.0.0")], "routes.gateway"),
    ],
)
def test_a_manifest_that_is_not_the_pinned_release_is_refused(
    documents: list[object], message: str
) -> None:
    with pytest.raises(GatewayApiSourceError, match=re.escape(message)):
        crd_manifests(as_text(*documents), "1.5.1", "src")


def test_admission_policies_of_newer_releases_come_along() -> None:
    policy = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": "safe-upgrades.gateway.networking.k8s.io"},
    }
    manifests = crd_manifests(as_text(crd("gateways"), policy), "1.5.1", "src")
    assert [resource_suffix(m) for m in manifests] == [
        "gateways",
        "validatingadmissionpolicy-safe-upgrades.gateway.networking.k8s.io",
    ]


def test_the_source_is_the_stacks_then_the_environments_then_the_release(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(SOURCE_ENV, "/mirror/crds.yaml")
    assert crd_source("1.5.1", "https://mirror/x.yaml") == "https://mirror/x.yaml"
    assert crd_source("1.5.1", None) == "/mirror/crds.yaml"
    monkeypatch.delenv(SOURCE_ENV)
    assert crd_source("1.6.0", None) == RELEASE_URL.format(version="1.6.0")
    assert "/v1.6.0/standard-install.yaml" in crd_source("1.6.0", None)
    assert (
        crd_source("1.6.0", "https://m/gw/v{version}/crds.yaml") == "https://m/gw/v1.6.0/crds.yaml"
    )


def test_an_unreadable_source_says_where(tmp_path: Path) -> None:
    missing = tmp_path / "none.yaml"
    with pytest.raises(GatewayApiSourceError, match=f"from {missing}"):
        read_source(str(missing))
    with pytest.raises(GatewayApiSourceError, match="file://"):
        read_source(f"file://{missing}")


def test_a_release_is_read_over_http_too(tmp_path: Path) -> None:
    """As from GitHub or a mirror: here from a server on loopback."""
    import functools
    import http.server
    import threading

    (tmp_path / "v1.5.1").mkdir()
    (tmp_path / "v1.5.1" / "standard-install.yaml").write_text(as_text(crd("gateways")))
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/v{{version}}/standard-install.yaml"
        (manifest,) = load_crds("1.5.1", url)
    finally:
        server.shutdown()
        server.server_close()
    assert manifest["metadata"]["name"] == "gateways.gateway.networking.k8s.io"


def ambient_stack(source: str, **more: object) -> dict[str, str]:
    config = {
        "namespaces": [{"name": "store", "dataplane": "ambient"}],
        "gatewayApi": {"source": source},
        **more,
    }
    return {f"istio-mesh:{key}": json.dumps(value) for key, value in config.items()}


def test_a_stack_with_a_waypoint_declares_the_crds_before_istiod_and_the_waypoint() -> None:
    run = run_program("crds", ambient_stack(REFERENCE))
    crds = [r for r in run.resources if r.type.endswith("CustomResourceDefinition")]
    assert len(crds) == 8
    assert {r.name for r in crds} >= {"gateway-api-httproutes", "gateway-api-gateways"}
    urns = {r.urn for r in crds}
    waiting = {r.name for r in run.resources if urns <= set(r.depends_on)}
    assert {"istio-istiod-1-30-5", "namespace-store-waypoint"} <= waiting
    assert not any(r.protect for r in crds)
    (outputs,) = [o for urn, o in run.component_outputs.items() if "GatewayApiCrds" in urn]
    assert outputs == {"version": "1.5.1", "objects": 8}


def test_a_protected_mesh_protects_the_crds_every_route_depends_on() -> None:
    run = run_program(
        "crds",
        ambient_stack(REFERENCE, istio={"protect": True}) | {"kubernetes:context": "kind-x"},
    )
    crds = [r for r in run.resources if r.type.endswith("CustomResourceDefinition")]
    assert crds and all(r.protect and r.retain_on_delete for r in crds)


def test_a_source_that_is_not_the_release_registers_nothing(tmp_path: Path) -> None:
    wrong = tmp_path / "crds.yaml"
    wrong.write_text(as_text(crd("gateways", version="v1.2.0")))
    registered: list[Registered] = []
    with pytest.raises(ConfigError) as raised:
        run_program("crds", ambient_stack(str(wrong)), registered=registered)
    (problem,) = raised.value.problems
    assert problem.path == "istio-mesh:gatewayApi.source"
    assert "v1.2.0" in problem.message
    assert registered == []
