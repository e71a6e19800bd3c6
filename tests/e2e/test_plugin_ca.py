"""The plug-in CA under the real engine: the organisation's root and the intermediate it
issued, the intermediate's key as secret config, land in istio-system's `cacerts` as
istiod reads them, and the key is nowhere in plain text.

The generated root (`root: {generate: true}`) needs `pulumi-resource-tls`, which the Go
module proxy does not serve (neither `github.com/pulumi/pulumi-tls/provider/v5` at any
version nor the Terraform provider its shim replaces), so this tier checks the given
root, the mode production uses; the mocks check the generated one.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from e2e.cluster import Cluster
from e2e.tools import Completed
from e2e.workspace import Workspace, stack_file_config
from tests.pki_helpers import DAY, NOW, issue

STACK = "ca"


@pytest.fixture(scope="module")
def pki() -> dict[str, Any]:
    root = issue("istio-mesh e2e root", not_after=NOW + 3650 * DAY)
    intermediate = issue("istio-mesh e2e intermediate", issuer=root)
    return {"root": root, "intermediate": intermediate}


@pytest.fixture(scope="module")
def ca_up(workspace: Workspace, pki: dict[str, Any]) -> dict[str, Completed]:
    """`up` of a small stack with the plug-in CA, its key set as the README says; twice."""
    document = stack_file_config("dev", workspace.chart_repository)
    config = document["config"]
    document["config"] = {
        "kubernetes:context": config["kubernetes:context"],
        "istio-mesh:istio": {
            "revisions": [{"version": "1.30.5"}],
            "chartRepository": workspace.chart_repository,
            "awaitReleases": False,
        },
        "istio-mesh:ca": {
            "mode": "plugin",
            "root": {"certificate": pki["root"].pem},
            "intermediate": {"certificate": pki["intermediate"].pem},
        },
    }
    workspace.write_stack(STACK, document)
    workspace.init_stack(STACK)
    workspace.set_secret(STACK, "istio-mesh:ca.intermediate.key", pki["intermediate"].key_pem)
    up = workspace.pulumi("up", "--stack", STACK, "--yes", "--skip-preview")
    again = workspace.pulumi("up", "--stack", STACK, "--yes", "--expect-no-changes")
    return {"up": up, "again": again}


def test_the_plug_in_ca_comes_up_and_a_second_up_changes_nothing(
    ca_up: dict[str, Completed],
) -> None:
    ca_up["up"].check()
    ca_up["again"].check()


def test_cacerts_holds_the_given_chain_and_key_as_istiod_reads_them(
    ca_up: dict[str, Completed], cluster: Cluster, pki: dict[str, Any]
) -> None:
    ca_up["up"].check()
    secret = cluster.get("/api/v1/namespaces/istio-system/secrets/cacerts")
    files = {name: base64.b64decode(value).decode() for name, value in secret["data"].items()}
    assert set(files) == {"ca-cert.pem", "ca-key.pem", "root-cert.pem", "cert-chain.pem"}
    root = x509.load_pem_x509_certificate(files["root-cert.pem"].encode())
    intermediate = x509.load_pem_x509_certificate(files["ca-cert.pem"].encode())
    chain = x509.load_pem_x509_certificates(files["cert-chain.pem"].encode())
    assert root == pki["root"].certificate
    assert intermediate == pki["intermediate"].certificate
    assert chain == [intermediate, root]
    intermediate.verify_directly_issued_by(root)
    key = serialization.load_pem_private_key(files["ca-key.pem"].encode(), password=None)
    assert key.public_key() == intermediate.public_key()


def test_the_key_is_secret_in_the_state_and_the_outputs_say_when_it_expires(
    ca_up: dict[str, Completed], workspace: Workspace, pki: dict[str, Any]
) -> None:
    ca_up["up"].check()
    state = json.dumps(workspace.export(STACK))
    key = pki["intermediate"].key_pem
    body = "".join(key.splitlines()[1:-1])
    assert body[:40] not in state
    assert base64.b64encode(key.encode()).decode()[:40] not in state
    outputs = json.loads(
        workspace.pulumi("stack", "output", "--stack", STACK, "--json").check().stdout
    )
    expiry = pki["intermediate"].certificate.not_valid_after_utc
    assert outputs["caIntermediateNotAfter"].startswith(expiry.strftime("%Y-%m-%dT%H:%M"))
