"""One mesh on two clusters under the real engine (issue 15): the repository's
two-cluster stack file (tests/fixtures/stacks/Pulumi.multi.yaml) comes up on two API
servers on loopback, each reached through its own provider and kubeconfig context, and
the policy pack passes it.

The stack file generates its root with pulumi-tls, which the Go module proxy does not
serve (tests/e2e/test_plugin_ca.py): here the organisation's root is given instead, with
each cluster's own intermediate, their keys and the clusters' kubeconfigs set as secret
config as the README says. Everything else is the stack file's.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from e2e.cluster import Cluster, running_cluster
from e2e.tools import PROJECT_DIR, Completed
from e2e.workspace import Workspace, stack_file_config
from tests.pki_helpers import DAY, NOW, Issued, issue

STACK = "multi"
STACK_FILE = PROJECT_DIR / "tests" / "fixtures" / "stacks" / "Pulumi.multi.yaml"
CLUSTERS = ("east", "west")
POLICY_ARGS = ("--policy-pack", "policies", "--policy-pack-config", "policies/config/dev.json")


@contextmanager
def two_api_servers(
    tmp_path_factory: pytest.TempPathFactory, label: str
) -> Iterator[dict[str, Cluster]]:
    """Two API servers, each with its own etcd, known by the stack file's contexts."""
    with (
        running_cluster(tmp_path_factory.mktemp(f"{label}-east"), context="kind-east") as east,
        running_cluster(tmp_path_factory.mktemp(f"{label}-west"), context="kind-west") as west,
    ):
        yield {"east": east, "west": west}


def one_root_two_intermediates() -> dict[str, Issued]:
    """The organisation's root, and an intermediate under it for each cluster."""
    root = issue("istio-mesh e2e root", not_after=NOW + 3650 * DAY)
    return {"root": root} | {name: issue(f"{name} intermediate", issuer=root) for name in CLUSTERS}


@pytest.fixture(scope="module")
def clusters(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Cluster]]:
    with two_api_servers(tmp_path_factory, "multi") as both:
        yield both


def merged_kubeconfig(clusters: dict[str, Cluster], path: Path) -> Path:
    """One kubeconfig holding both clusters' contexts, as an operator's would."""
    merged: dict[str, Any] = {"apiVersion": "v1", "kind": "Config", "clusters": [], "users": []}
    merged["contexts"] = []
    for name, cluster in clusters.items():
        own = yaml.safe_load(cluster.kubeconfig.read_text())
        merged["clusters"].append({"name": name, "cluster": own["clusters"][0]["cluster"]})
        merged["users"].append({"name": name, "user": own["users"][0]["user"]})
        context = own["contexts"][0]["name"]
        merged["contexts"].append({"name": context, "context": {"cluster": name, "user": name}})
    merged["current-context"] = merged["contexts"][0]["name"]
    path.write_text(yaml.safe_dump(merged))
    return path


@pytest.fixture(scope="module")
def pki() -> dict[str, Issued]:
    return one_root_two_intermediates()


@pytest.fixture(scope="module")
def multi_workspace(
    tmp_path_factory: pytest.TempPathFactory,
    clusters: dict[str, Cluster],
    chart_repo: str,
    pki: dict[str, Issued],
) -> Workspace:
    root = tmp_path_factory.mktemp("multi-workspace")
    kubeconfig = merged_kubeconfig(clusters, root / "kubeconfig")
    space = Workspace(root, kubeconfig, chart_repo)
    document = stack_file_config(STACK, chart_repo, STACK_FILE)
    config = document["config"]
    config["istio-mesh:ca"] = {"mode": "plugin", "root": {"certificate": pki["root"].pem}}
    config["istio-mesh:clusters"] = [
        {**cluster, "intermediate": {"certificate": pki[cluster["name"]].pem}}
        for cluster in config["istio-mesh:clusters"]
    ]
    space.write_stack(STACK, document)
    space.write_policy_config("dev")
    space.init_stack(STACK)
    for index, name in enumerate(CLUSTERS):
        space.set_secret(STACK, f"istio-mesh:clusters[{index}].intermediate.key", pki[name].key_pem)
        space.set_secret(
            STACK, f"istio-mesh:clusters[{index}].kubeconfig", clusters[name].kubeconfig.read_text()
        )
    return space


@pytest.fixture(scope="module")
def multi_up(multi_workspace: Workspace) -> dict[str, Completed]:
    """Preview with the pack, `up`, and a second `up` that must change nothing."""
    preview = multi_workspace.pulumi("preview", "--stack", STACK, *POLICY_ARGS)
    up = multi_workspace.pulumi("up", "--stack", STACK, "--yes", "--skip-preview")
    again = multi_workspace.pulumi("up", "--stack", STACK, "--yes", "--expect-no-changes")
    return {"preview": preview, "up": up, "again": again}


def test_the_two_cluster_stack_passes_the_pack_comes_up_and_stays(
    multi_up: dict[str, Completed],
) -> None:
    multi_up["preview"].check()
    assert "clusters-share-trust" not in multi_up["preview"].stdout
    multi_up["up"].check()
    multi_up["again"].check()


def names(cluster: Cluster, path: str) -> set[str]:
    return {item["metadata"]["name"] for item in cluster.get(path)["items"]}


def test_each_cluster_holds_the_whole_mesh(
    multi_up: dict[str, Completed], clusters: dict[str, Cluster]
) -> None:
    multi_up["up"].check()
    for name, cluster in clusters.items():
        assert {"istio-system", "istio-ingress", "shop", "shop-canary"} <= names(
            cluster, "/api/v1/namespaces"
        ), name
        system = cluster.get("/api/v1/namespaces/istio-system")
        assert system["metadata"]["labels"]["topology.istio.io/network"] == f"net-{name}"
        assert "reviews" in names(
            cluster, "/apis/networking.istio.io/v1/namespaces/shop/virtualservices"
        ), name
        gateways = names(cluster, "/apis/networking.istio.io/v1/namespaces/istio-system/gateways")
        assert "cross-network-gateway" in gateways, name
        # Helm keeps each release in a Secret: both istiods and the east-west gateway.
        releases = {
            secret["metadata"]["labels"]["name"]
            for secret in cluster.get("/api/v1/namespaces/istio-system/secrets")["items"]
            if secret.get("type") == "helm.sh/release.v1"
        }
        assert {"istiod-1-30-5", "istiod-1-31-1", "istio-eastwestgateway"} <= releases, name


def cacerts(cluster: Cluster) -> dict[str, str]:
    secret = cluster.get("/api/v1/namespaces/istio-system/secrets/cacerts")
    return {name: base64.b64decode(value).decode() for name, value in secret["data"].items()}


def test_each_cluster_signs_with_its_own_intermediate_under_the_one_root(
    multi_up: dict[str, Completed], clusters: dict[str, Cluster], pki: dict[str, Issued]
) -> None:
    multi_up["up"].check()
    for name, cluster in clusters.items():
        files = cacerts(cluster)
        assert x509.load_pem_x509_certificate(files["ca-cert.pem"].encode()) == (
            pki[name].certificate
        )
        chain = x509.load_pem_x509_certificates(files["cert-chain.pem"].encode())
        assert chain == [pki[name].certificate, pki["root"].certificate]
        assert files["root-cert.pem"] == pki["root"].pem
        # `pulumi config set` reads the key from stdin without its last newline.
        key = serialization.load_pem_private_key(files["ca-key.pem"].encode(), password=None)
        assert key.public_key() == pki[name].certificate.public_key()


def test_remote_secrets_are_crossed_and_hold_the_other_clusters_kubeconfig(
    multi_up: dict[str, Completed], clusters: dict[str, Cluster]
) -> None:
    multi_up["up"].check()
    for name, cluster in clusters.items():
        (other,) = (c for c in CLUSTERS if c != name)
        secret = cluster.get(f"/api/v1/namespaces/istio-system/secrets/istio-remote-secret-{other}")
        assert secret["metadata"]["labels"] == {"istio/multiCluster": "true"}
        held = base64.b64decode(secret["data"][other]).decode()
        assert yaml.safe_load(held)["clusters"][0]["cluster"]["server"] == clusters[other].server


def test_nothing_secret_in_plain_text_and_secrets_as_the_engine_stores_them(
    multi_up: dict[str, Completed], multi_workspace: Workspace, pki: dict[str, Issued]
) -> None:
    """No key in the state in the clear; and a Secret's outputs are the live object's,
    `stringData` folded into base64 `data` (what AnalyzeStack hands the pack, modelled
    by mesh/engine_view.py `secret_as_stored`)."""
    multi_up["up"].check()
    state = multi_workspace.export(STACK)
    text = json.dumps(state)
    for name in CLUSTERS:
        body = "".join(pki[name].key_pem.splitlines()[1:-1])
        assert body[:40] not in text
    resources = state["deployment"]["resources"]
    (east_cacerts,) = (
        r
        for r in resources
        if r["type"] == "kubernetes:core/v1:Secret"
        and r["urn"].endswith("::east-ca-intermediate-cacerts")
    )
    outputs = east_cacerts["outputs"]
    assert "stringData" not in outputs
    assert outputs["data"]["4dabf18193072939515e22adb298388d"] == "1b47061264138c4ac30d75fd1eb44270"
