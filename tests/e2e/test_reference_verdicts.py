"""Check 6 (validator): `mesh.reference`, the fast tier's offline validator, gives the API
server's verdict on every Istio object of every stack and on every invalid object the
fast tier uses: both accept, or both reject naming the same field.

The API server holds the very CRDs the validator reads (ISTIO_REFERENCE's
crd-all.gen.yaml) and judges each object as `kubectl apply --dry-run=server` does, with
strict field validation (unknown fields are errors, as they are offline).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from e2e.cluster import Cluster
from mesh.reference import Reference, load_reference
from tests.reference_cases import INVALID, VALID, with_value

E2E_TOOLS = ("etcd", "kube-apiserver")
"""What this module needs built (conftest skips it otherwise)."""


@pytest.fixture(scope="module")
def reference() -> Reference:
    return load_reference()


@pytest.fixture(scope="module")
def plurals(cluster: Cluster) -> dict[tuple[str, str], str]:
    """Install the reference CRDs; (group/version, kind) -> plural."""
    return cluster.install_crds(Path(os.environ["ISTIO_REFERENCE"]) / "crd-all.gen.yaml")


def verdict(cluster: Cluster, plurals: dict[tuple[str, str], str], obj: dict[str, Any]) -> str:
    """'' when the API server accepts `obj` (dry run), its message otherwise."""
    metadata = obj["metadata"]
    namespace = metadata.get("namespace")
    if namespace:
        cluster.post(
            "/api/v1/namespaces",
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}},
        )
    plural = plurals[(obj["apiVersion"], obj["kind"])]
    scope = f"/namespaces/{namespace}" if namespace else ""
    path = f"/apis/{obj['apiVersion']}{scope}/{plural}?dryRun=All&fieldValidation=Strict"
    status, answer = cluster.post(path, obj)
    return "" if status in (200, 201) else str(answer.get("message", answer))


def offline_field(errors: list[str]) -> str:
    """The field path of the validator's first error (`<object>: <path>: <message>`)."""
    return errors[0].split(": ", 2)[1]


def stack_objects(rendered: dict[str, Path], reference: Reference) -> list[dict[str, Any]]:
    objects = []
    for render in rendered.values():
        for path in sorted(render.glob("manifests/*/*.yaml")):
            obj = yaml.safe_load(path.read_text())
            if reference.is_istio(obj):
                objects.append(obj)
    return objects


def invalid_objects() -> list[tuple[str, dict[str, Any]]]:
    cases = []
    for kind, variants in INVALID.items():
        for name, mutations, _ in variants:
            obj = VALID[kind]
            for path, value in mutations.items():
                obj = with_value(obj, path, value)
            cases.append((f"{kind}-{name}", obj))
    return cases


def test_the_api_server_accepts_every_istio_object_of_every_stack(
    cluster: Cluster,
    plurals: dict[tuple[str, str], str],
    reference: Reference,
    rendered: dict[str, Path],
) -> None:
    objects = stack_objects(rendered, reference) + list(VALID.values())
    assert len(objects) > 20
    for obj in objects:
        assert reference.validate(obj) == []
        assert verdict(cluster, plurals, obj) == "", obj["metadata"]


@pytest.mark.parametrize(("case", "obj"), invalid_objects(), ids=[c for c, _ in invalid_objects()])
def test_the_api_server_rejects_what_the_validator_rejects_at_the_same_field(
    case: str,
    obj: dict[str, Any],
    cluster: Cluster,
    plurals: dict[tuple[str, str], str],
    reference: Reference,
) -> None:
    errors = reference.validate(obj)
    assert errors, case
    message = verdict(cluster, plurals, obj)
    assert message, f"{case}: the validator rejects it ({errors[0]}), the API server accepts it"
    field = offline_field(errors).removesuffix(".")
    # The API server spells list items `[0]` too, and names the object's own fields
    # from the top (`spec.x`, or `.spec.x` for strict decoding).
    assert field in message, f"{case}: validator names {field!r}; API server says {message}"
