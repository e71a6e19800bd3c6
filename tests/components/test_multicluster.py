"""One mesh across clusters (issue 15, items 3-6): `istio-mesh:clusters` validation, the
multi-cluster builders (no Pulumi), and the two-cluster stack file under mocks: two
providers, the whole mesh in each, one root, remote secrets crossed, and the clusters'
kubeconfigs never in plain text."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

from components import naming, pki
from components.config import CLUSTERS_CA_KEY_COMMAND, CLUSTERS_KUBECONFIG_COMMAND, parse_config
from components.errors import ConfigError
from components.multicluster import (
    cross_network_gateway,
    east_west_release,
    remote_secret_manifest,
    remote_secret_pairs,
)
from istio_mesh.mesh import TYPE as MESH_TYPE
from mesh.program import (
    PROJECT_DIR,
    ProgramRun,
    Registered,
    is_wire_secret,
    load_stack_file,
    run_program,
    unwrap_secret,
)
from mesh.render import write_render
from tests.conftest import mesh_command, stack_run
from tests.pki_helpers import Issued, issue
from tests.test_snapshots import reached

MULTI = PROJECT_DIR / "tests" / "fixtures" / "stacks" / "Pulumi.multi.yaml"
SECRET_TYPE = "kubernetes:core/v1:Secret"
RELEASE_TYPE = "kubernetes:helm.sh/v3:Release"
PROVIDER_TYPE = "pulumi:providers:kubernetes"
CLUSTERS_KEY = "istio-mesh:clusters"


def kubeconfig(cluster: str) -> str:
    """A reader kubeconfig as `istioctl create-remote-secret` writes it; its token is
    what must never show."""
    return yaml.safe_dump(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": cluster, "cluster": {"server": f"https://{cluster}:6443"}}],
            "users": [{"name": cluster, "user": {"token": token(cluster)}}],
            "contexts": [{"name": cluster, "context": {"cluster": cluster, "user": cluster}}],
            "current-context": cluster,
        }
    )


def token(cluster: str) -> str:
    return f"reader-token-of-{cluster}-4f1c9e"


TWO = [
    {"name": "east", "context": "kind-east", "network": "net-east"},
    {"name": "west", "context": "kind-west", "network": "net-west"},
]
PLUGIN = {"mode": "plugin", "root": {"generate": True}}


def problems(
    raw: dict[str, Any], secret_keys: tuple[str, ...] | None = (CLUSTERS_KEY,)
) -> list[str]:
    try:
        parse_config(raw, secret_keys=secret_keys)
    except ConfigError as error:
        return [str(problem) for problem in error.problems]
    return []


def multi(**changes: Any) -> dict[str, Any]:
    return {"istio": {"meshId": "mesh1"}, "ca": PLUGIN, "clusters": TWO, **changes}


# -- config -------------------------------------------------------------------------------------


def test_a_two_cluster_config_is_valid_and_says_whether_networks_differ() -> None:
    assert problems(multi()) == []
    assert parse_config(multi()).multi_network
    one_network = [{**cluster, "network": "net"} for cluster in TWO]
    assert not parse_config(multi(clusters=one_network)).multi_network


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (
            {"ca": PLUGIN, "clusters": TWO},
            "istio-mesh:istio.meshId: required with istio-mesh:clusters",
        ),
        (
            {"istio": {"meshId": "mesh1"}},
            "istio-mesh:istio.meshId: applies with istio-mesh:clusters only",
        ),
        (multi(ca={}), "istio-mesh:ca.mode: clusters share one trust root: set mode: plugin"),
        (
            multi(clusters=[TWO[0], {**TWO[1], "name": "east"}]),
            "istio-mesh:clusters[1].name: 'east' is already clusters[0]",
        ),
        (
            multi(clusters=[TWO[0], {**TWO[1], "context": "kind-east"}]),
            "istio-mesh:clusters[1].context: 'kind-east' is already the context of clusters[0]",
        ),
        (
            multi(clusters=[TWO[0], {**TWO[1], "name": "East_1"}]),
            "istio-mesh:clusters[1].name: 'East_1' is not a valid Kubernetes name",
        ),
        (
            multi(clusters=[TWO[0], {**TWO[1], "name": "east-gateway"}]),
            "istio-mesh:clusters[1].name: 'east-gateway' starts with cluster 'east''s prefix east-",
        ),
        (
            multi(clusters=[TWO[0], {**TWO[1], "name": "ca"}]),
            "istio-mesh:clusters[1].name: 'ca' is the name of a resource the clusters share",
        ),
        (
            multi(clusters=[TWO[0], {**TWO[1], "network": "net west"}]),
            "istio-mesh:clusters[1].network: 'net west' is not a valid label value",
        ),
        (
            multi(kubernetes_context="kind-east"),
            "kubernetes:context: each cluster names its own context",
        ),
        (
            multi(gateways=[{"name": "eastwestgateway", "kind": "egress"}]),
            "istio-mesh:gateways[0].name: 'eastwestgateway' is the east-west gateway",
        ),
        (
            multi(namespaces=[{"name": "shop", "dataplane": "ambient", "revision": "stable"}]),
            "istio-mesh:clusters: ambient namespaces span one cluster only",
        ),
        (
            multi(clusters=[TWO[0], {**TWO[1], "kubeconfig": "clusters: []"}]),
            "istio-mesh:clusters[1].kubeconfig: is not a kubeconfig",
        ),
    ],
)
def test_a_multi_cluster_config_problem_names_its_path(raw: dict[str, Any], expected: str) -> None:
    found = problems(raw)
    assert any(problem.startswith(expected) for problem in found), found


def test_a_kubeconfig_in_plain_text_is_refused_and_never_quoted() -> None:
    clusters = [TWO[0], {**TWO[1], "kubeconfig": kubeconfig("west")}]
    found = problems(multi(clusters=clusters), secret_keys=())
    assert found == [
        "istio-mesh:clusters[1].kubeconfig: is plain text in the stack file: remove it and set "
        "it as a secret: " + CLUSTERS_KUBECONFIG_COMMAND.replace("<i>", "1")
    ]
    # A broken one is reported without its text either.
    broken = [TWO[0], {**TWO[1], "kubeconfig": f"token: {token('west')}\n  - ["}]
    assert not any(token("west") in problem for problem in problems(multi(clusters=broken)))
    encrypted = [TWO[0], {**TWO[1], "kubeconfig": {"secure": "v1:abc"}}]
    assert any("only the Pulumi CLI decrypts it" in p for p in problems(multi(clusters=encrypted)))


# -- a given root: each cluster its own intermediate ---------------------------------------------


@pytest.fixture(scope="module")
def org_root() -> Issued:
    return issue("Org Root CA")


@pytest.fixture(scope="module")
def intermediates(org_root: Issued) -> dict[str, Issued]:
    return {cluster: issue(f"{cluster} Intermediate CA", org_root) for cluster in ("east", "west")}


def given(intermediate: Issued, key: str | None = None) -> dict[str, str]:
    return {"certificate": intermediate.pem, "key": intermediate.key_pem if key is None else key}


def given_root_multi(
    root: Issued, intermediates: dict[str, Issued], **cluster_changes: dict[str, Any]
) -> dict[str, Any]:
    """Two clusters under a given root, each with its intermediate (prod's shape)."""
    clusters = [
        {**cluster, "intermediate": given(intermediates[cluster["name"]])}
        | cluster_changes.get(cluster["name"], {})
        for cluster in TWO
    ]
    return multi(ca={"mode": "plugin", "root": {"certificate": root.pem}}, clusters=clusters)


def test_a_given_root_takes_one_intermediate_per_cluster(
    org_root: Issued, intermediates: dict[str, Issued]
) -> None:
    raw = given_root_multi(org_root, intermediates)
    assert problems(raw) == []
    config = parse_config(raw)
    east, west = config.clusters
    assert east.intermediate is not None and west.intermediate is not None
    assert (east.intermediate.certificate, west.intermediate.certificate) == (
        intermediates["east"].pem,
        intermediates["west"].pem,
    )


def test_given_root_cluster_intermediate_problems_name_their_paths(
    org_root: Issued, intermediates: dict[str, Issued]
) -> None:
    stranger = issue("Stranger Intermediate CA", issue("Other Root CA"))
    at = "istio-mesh:clusters[1].intermediate"
    cases: list[tuple[dict[str, Any], str]] = [
        (
            given_root_multi(org_root, intermediates, west={"intermediate": None}),
            f"{at}: a given root needs each cluster's intermediate",
        ),
        (
            given_root_multi(org_root, intermediates, west={"intermediate": given(stranger)}),
            f"{at}.certificate: ",
        ),
        (
            given_root_multi(
                org_root, intermediates, west={"intermediate": given(intermediates["east"])}
            ),
            f"{at}.certificate: is clusters[0]'s intermediate: each cluster signs with its own",
        ),
        (
            given_root_multi(
                org_root,
                intermediates,
                west={"intermediate": given(intermediates["west"], intermediates["east"].key_pem)},
            ),
            f"{at}.key: is not the key of intermediate.certificate",
        ),
        (
            given_root_multi(
                org_root,
                intermediates,
                west={"intermediate": {"certificate": intermediates["west"].pem}},
            ),
            f"{at}.key: missing: set it as a secret: "
            + CLUSTERS_CA_KEY_COMMAND.replace("<i>", "1").replace("<cluster>", "west"),
        ),
        (
            given_root_multi(org_root, intermediates)
            | {
                "ca": {
                    "mode": "plugin",
                    "root": {"certificate": org_root.pem},
                    "intermediate": given(intermediates["east"]),
                }
            },
            "istio-mesh:ca.intermediate: with clusters, each cluster gives its own",
        ),
        (
            multi(clusters=[TWO[0], {**TWO[1], "intermediate": given(intermediates["west"])}]),
            f"{at}: the generated root signs each cluster's intermediate",
        ),
    ]
    for raw, expected in cases:
        found = problems(raw)
        assert any(problem.startswith(expected) for problem in found), (expected, found)
        # Only the broken cluster is named; the key never shows.
        assert not any("clusters[0]" in problem.split(":")[1] for problem in found), found
        assert not any("PRIVATE KEY" in problem for problem in found), found


def test_a_cluster_intermediate_key_in_plain_text_is_refused(
    org_root: Issued, intermediates: dict[str, Issued]
) -> None:
    found = problems(given_root_multi(org_root, intermediates), secret_keys=())
    assert found == [
        f"istio-mesh:clusters[{index}].intermediate.key: is plain text in the stack file: remove "
        "it and set it as a secret: "
        + CLUSTERS_CA_KEY_COMMAND.replace("<i>", str(index)).replace("<cluster>", name)
        for index, name in enumerate(("east", "west"))
    ]


def test_each_cluster_signs_with_its_given_intermediate(
    org_root: Issued, intermediates: dict[str, Issued]
) -> None:
    raw = given_root_multi(org_root, intermediates)
    config = {f"istio-mesh:{key}": json.dumps(value) for key, value in raw.items()}
    run = run_program("multi", config, secret_keys=[CLUSTERS_KEY])
    files = {
        cluster_of(r): r.props["stringData"]
        for r in run.of_type(SECRET_TYPE)
        if r.props["metadata"]["name"] == "cacerts"
    }
    assert set(files) == {"east", "west"}
    for cluster, data in files.items():
        assert is_wire_secret(data), cluster
        pem = unwrap_secret(data)
        assert pem["ca-cert.pem"] == intermediates[cluster].pem
        assert pem["ca-key.pem"] == intermediates[cluster].key_pem
        assert pem["root-cert.pem"] == org_root.pem
        assert pem["cert-chain.pem"] == intermediates[cluster].pem + org_root.pem
    # No root is generated, and the expiry dates are the given certificates'.
    assert not [r for r in run.resources if r.type.startswith("tls:")]
    assert run.outputs["caIntermediateNotAfter"] == {
        cluster: pki.not_after(intermediates[cluster].certificate) for cluster in ("east", "west")
    }


# -- builders -----------------------------------------------------------------------------------


def test_the_east_west_release_is_the_gateway_chart_as_a_network_gateway() -> None:
    release = east_west_release("1.30.5", "net-east", "1-30-5")
    assert (release.name, release.chart, release.namespace) == (
        "istio-eastwestgateway",
        "gateway",
        "istio-system",
    )
    # networkGateway: the chart opens 15021, 15443, 15012 and 15017 itself.
    assert release.values["networkGateway"] == "net-east"
    assert release.values["revision"] == "1-30-5"


def test_the_cross_network_gateway_passes_local_hosts_through_on_15443() -> None:
    gateway = cross_network_gateway()
    assert gateway["metadata"] == {"name": "cross-network-gateway", "namespace": "istio-system"}
    assert gateway["spec"]["selector"] == naming.gateway_selector(naming.EAST_WEST_GATEWAY)
    assert gateway["spec"]["selector"] == {"istio": "eastwestgateway"}
    (server,) = gateway["spec"]["servers"]
    assert server["port"]["number"] == 15443
    assert server["tls"] == {"mode": "AUTO_PASSTHROUGH"}
    assert server["hosts"] == ["*.local"]


def test_remote_secrets_are_what_istiod_watches() -> None:
    secret = remote_secret_manifest("west", "KUBECONFIG")
    assert secret["metadata"] == {
        "name": "istio-remote-secret-west",
        "namespace": "istio-system",
        "labels": {"istio/multiCluster": "true"},
        "annotations": {"networking.istio.io/cluster": "west"},
    }
    assert secret["stringData"] == {"west": "KUBECONFIG"}


def test_remote_secret_pairs_are_every_ordered_pair_with_a_kubeconfig() -> None:
    config = parse_config(
        multi(
            clusters=[
                {**TWO[0], "kubeconfig": kubeconfig("east")},
                {**TWO[1], "kubeconfig": kubeconfig("west")},
                {"name": "north", "context": "kind-north", "network": "net-east"},
            ]
        )
    )
    # north has no kubeconfig: the others cannot discover it, it discovers them.
    assert sorted(remote_secret_pairs(config.clusters)) == [
        ("east", "west"),
        ("north", "east"),
        ("north", "west"),
        ("west", "east"),
    ]


# -- the two-cluster stack under mocks ----------------------------------------------------------


def with_kubeconfigs() -> dict[str, str]:
    """The stack file's config with each cluster's kubeconfig, as the CLI hands secret
    config over: decrypted, its key marked secret."""
    config = load_stack_file(MULTI)
    clusters = json.loads(config[CLUSTERS_KEY])
    for cluster in clusters:
        cluster["kubeconfig"] = kubeconfig(cluster["name"])
    return {**config, CLUSTERS_KEY: json.dumps(clusters)}


@pytest.fixture(scope="module")
def two() -> ProgramRun:
    return run_program("multi", with_kubeconfigs(), secret_keys=[CLUSTERS_KEY])


def cluster_of(resource: Registered) -> str | None:
    assert resource.provider is not None
    return naming.cluster_of_provider(resource.provider.split("::")[-2])


def objects(run: ProgramRun, cluster: str) -> set[tuple[str, str, str]]:
    """(kind, namespace, name) of every Kubernetes object and release in `cluster`."""
    found = set()
    for resource in run.resources:
        if not resource.type.startswith("kubernetes:") or cluster_of(resource) != cluster:
            continue
        metadata = resource.props.get("metadata") or {}
        name = resource.props.get("name") or metadata.get("name")
        found.add(
            (resource.type, metadata.get("namespace") or resource.props.get("namespace"), name)
        )
    return found


def test_two_providers_each_its_own_cluster(two: ProgramRun) -> None:
    providers = {r.name: r for r in two.of_type(PROVIDER_TYPE)}
    assert set(providers) == {"east-kubernetes", "west-kubernetes"}
    for cluster in ("east", "west"):
        props = providers[f"{cluster}-kubernetes"].props
        assert (props["context"], props["clusterIdentifier"]) == (f"kind-{cluster}",) * 2
    kubernetes = [r for r in two.resources if r.type.startswith("kubernetes:")]
    assert {cluster_of(r) for r in kubernetes} == {"east", "west"}


def test_urns_are_unique_and_every_cluster_prefixes_its_names(two: ProgramRun) -> None:
    urns = Counter(r.urn for r in two.resources)
    assert [urn for urn, count in urns.items() if count > 1] == []
    for resource in two.resources:
        if resource.type.startswith("kubernetes:") and not resource.type.startswith("pulumi:"):
            assert resource.name.startswith(f"{cluster_of(resource)}-"), resource.name


def test_both_clusters_hold_the_same_mesh(two: ProgramRun) -> None:
    east, west = objects(two, "east"), objects(two, "west")
    # The same, but for the remote secrets: each cluster holds the other's.
    remote = {
        ("kubernetes:core/v1:Secret", "istio-system", naming.remote_secret(c))
        for c in ("east", "west")
    }
    assert east - remote == west - remote
    assert east & remote == {
        ("kubernetes:core/v1:Secret", "istio-system", "istio-remote-secret-west")
    }
    kinds = Counter(kind for kind, _, _ in east)
    assert kinds["kubernetes:helm.sh/v3:Release"] >= 5  # base, two istiods, gateways, add-ons
    names = {(namespace, name) for _, namespace, name in east}
    for expected in [
        ("shop", "shop"),  # namespaces: the Namespace objects carry no namespace
        ("istio-system", "istio-eastwestgateway"),
        ("istio-system", "cross-network-gateway"),
        ("istio-system", "cacerts"),
        ("shop", "reviews"),
        ("istio-system", "default"),  # mesh-wide STRICT
    ]:
        if expected[0] == expected[1]:
            assert (None, expected[1]) in names
        else:
            assert expected in names, expected


def test_each_istiod_knows_its_mesh_cluster_and_network(two: ProgramRun) -> None:
    istiods = [r for r in two.of_type(RELEASE_TYPE) if r.props["chart"] == "istiod"]
    assert len(istiods) == 4
    for istiod in istiods:
        cluster = cluster_of(istiod)
        assert istiod.props["values"]["global"] == {
            "hub": "docker.io/istio",
            "meshID": "mesh1",
            "multiCluster": {"clusterName": cluster},
            "network": f"net-{cluster}",
        }
    systems = [
        r
        for r in two.of_type("kubernetes:core/v1:Namespace")
        if r.props["metadata"]["name"] == "istio-system"
    ]
    assert {
        cluster_of(r): r.props["metadata"]["labels"][naming.NETWORK_LABEL] for r in systems
    } == {"east": "net-east", "west": "net-west"}
    gateways = [r for r in two.of_type(RELEASE_TYPE) if r.props["name"] == "istio-eastwestgateway"]
    assert {cluster_of(r): r.props["values"]["networkGateway"] for r in gateways} == {
        "east": "net-east",
        "west": "net-west",
    }


def test_every_cluster_chains_to_one_root_with_its_own_intermediate(two: ProgramRun) -> None:
    files = {
        cluster_of(r): unwrap_secret(r.props["stringData"])
        for r in two.of_type(SECRET_TYPE)
        if r.props["metadata"]["name"] == "cacerts"
    }
    assert set(files) == {"east", "west"}
    assert files["east"]["root-cert.pem"] == files["west"]["root-cert.pem"]
    (root,) = pki.load_certificates(files["east"]["root-cert.pem"])
    intermediates = {c: pki.load_certificates(f["ca-cert.pem"])[0] for c, f in files.items()}
    assert intermediates["east"] != intermediates["west"]
    for cluster, intermediate in intermediates.items():
        assert pki.issued_by(intermediate, root), cluster
        assert pki.same_public_key(intermediate, pki.load_private_key(files[cluster]["ca-key.pem"]))
    assert set(two.outputs["caIntermediateNotAfter"]) == {"east", "west"}
    # One root: one self-signed certificate in the stack.
    assert (
        len([r for r in two.resources if r.type == "tls:index/selfSignedCert:SelfSignedCert"]) == 1
    )


def test_remote_secrets_are_crossed_and_secret(two: ProgramRun) -> None:
    remote = [
        r
        for r in two.of_type(SECRET_TYPE)
        if r.props["metadata"]["name"].startswith("istio-remote-secret-")
    ]
    crossed = {
        (cluster_of(r), r.props["metadata"]["annotations"][naming.CLUSTER_ANNOTATION])
        for r in remote
    }
    assert crossed == {("east", "west"), ("west", "east")}
    for secret in remote:
        of = secret.props["metadata"]["annotations"][naming.CLUSTER_ANNOTATION]
        assert is_wire_secret(secret.props["stringData"])
        data = unwrap_secret(secret.props["stringData"])
        assert list(data) == [of]
        assert yaml.safe_load(data[of])["users"][0]["user"]["token"] == token(of)
        assert secret.props["metadata"]["labels"] == {"istio/multiCluster": "true"}


def test_no_kubeconfig_in_outputs_or_render_files(two: ProgramRun, tmp_path: Path) -> None:
    write_render(two, tmp_path)
    written = [path for path in tmp_path.rglob("*") if path.is_file()]
    assert (tmp_path / "clusters" / "east" / "manifests" / "istio-system").is_dir()
    assert (tmp_path / "clusters" / "west" / "releases" / "istio-eastwestgateway.yaml").is_file()
    for path in written:
        text = path.read_text()
        assert token("east") not in text and token("west") not in text, path
    assert token("east") not in json.dumps(two.outputs)
    secret = tmp_path / "clusters" / "east" / "manifests" / "istio-system"
    assert "[secret]" in (secret / "secret-istio-remote-secret-west.yaml").read_text()


def test_the_stack_file_renders_and_passes_the_pack(tmp_path: Path) -> None:
    # Without kubeconfigs (only the CLI can decrypt them): no remote secrets, the rest.
    render = mesh_command("render", "--stack-file", str(MULTI), "--out", str(tmp_path / "out"))
    assert render.returncode == 0, render.stderr
    assert not list((tmp_path / "out").rglob("secret-istio-remote-secret-*"))
    check = mesh_command(
        "check",
        "--stack-file",
        str(MULTI),
        "--policy-config",
        str(PROJECT_DIR / "policies" / "config" / "dev.json"),
    )
    assert check.returncode == 0, check.stdout + check.stderr


# -- a one-cluster stack becoming one cluster of the mesh -----------------------------------------


def as_one_cluster(config: dict[str, str], cluster: dict[str, Any]) -> dict[str, str]:
    """The stack before it had clusters: the same mesh in `cluster`, by its context."""
    one = {key: value for key, value in config.items() if key != CLUSTERS_KEY}
    istio = json.loads(one["istio-mesh:istio"])
    istio.pop("meshId")
    return {**one, "istio-mesh:istio": json.dumps(istio), "kubernetes:context": cluster["context"]}


def with_first_from_single_cluster(config: dict[str, str], flag: bool = True) -> dict[str, str]:
    clusters = json.loads(config[CLUSTERS_KEY])
    clusters[0]["fromSingleCluster"] = flag
    return {**config, CLUSTERS_KEY: json.dumps(clusters)}


@pytest.fixture(scope="module")
def one_cluster() -> ProgramRun:
    config = with_kubeconfigs()
    return run_program("multi", as_one_cluster(config, json.loads(config[CLUSTERS_KEY])[0]))


def test_from_single_cluster_keeps_every_resource_of_the_one_cluster_stack(
    one_cluster: ProgramRun,
) -> None:
    recorded = {r.urn for r in one_cluster.resources}
    config = with_first_from_single_cluster(with_kubeconfigs())
    moved = run_program("multi", config, secret_keys=[CLUSTERS_KEY])
    found = reached(recorded, moved.resources)
    # Everything the stack had, the provider and the CA's intermediate included, is
    # found: nothing is deleted, nothing replaced.
    assert recorded - found.keys() == set()
    by_urn = moved.by_urn()
    for old, new in found.items():
        resource = by_urn[new]
        if resource.type.startswith("kubernetes:"):
            assert cluster_of(resource) == "east", (old, new)
    # The provider is found under its alias, which the engine then takes for the same
    # provider: no resource is replaced for moving to it.
    provider = next(r for r in one_cluster.resources if r.type == PROVIDER_TYPE)
    assert found[provider.urn].endswith("::east-kubernetes")
    # A stack last updated before 0.4.0, its mesh at the stack's top level, too.
    top_level = {urn.replace(f"{MESH_TYPE}$", "") for urn in recorded}
    assert top_level - reached(top_level, moved.resources).keys() <= {
        urn for urn in top_level if urn.split("::")[2] == MESH_TYPE
    }


def test_without_from_single_cluster_the_one_cluster_resources_would_be_replaced(
    one_cluster: ProgramRun,
) -> None:
    recorded = {r.urn for r in one_cluster.resources}
    moved = run_program(
        "multi",
        with_first_from_single_cluster(with_kubeconfigs(), flag=False),
        secret_keys=[CLUSTERS_KEY],
    )
    lost = recorded - reached(recorded, moved.resources).keys()
    assert len(lost) > len(recorded) / 2
    assert any(urn.endswith("::kubernetes") for urn in lost)


def test_one_cluster_at_most_takes_over_the_one_cluster_stack() -> None:
    both = [{**cluster, "fromSingleCluster": True} for cluster in TWO]
    assert problems(multi(clusters=both)) == [
        "istio-mesh:clusters[1].fromSingleCluster: clusters[0] is already the stack's former "
        "single cluster: one cluster's resources can take over the one-cluster stack's"
    ]


def test_without_clusters_nothing_multi_cluster_is_declared() -> None:
    dev = stack_run("dev")
    assert [r.name for r in dev.of_type(PROVIDER_TYPE)] == ["kubernetes"]
    assert "clusters" not in dev.outputs
    istiod = next(r for r in dev.of_type(RELEASE_TYPE) if r.props["chart"] == "istiod")
    assert set(istiod.props["values"]["global"]) == {"hub"}


# -- the pack judges each cluster apart ---------------------------------------------------------


def policy_resource(kind: str, label: str, provider: str | None, props: dict[str, Any]) -> Any:
    """A resource as pulumi-policy hands it to a stack rule, with its provider."""
    from types import SimpleNamespace

    return SimpleNamespace(
        resource_type=f"kubernetes:{kind}",
        urn=f"urn:pulumi:s::p::kubernetes:{kind}::{provider}-{label}",
        props=props,
        provider=None
        if provider is None
        else SimpleNamespace(resource_type="pulumi:providers:kubernetes", name=provider),
    )


def test_mesh_wide_strict_is_required_in_every_cluster() -> None:
    from types import SimpleNamespace

    from policies.istio_guardrails import mtls

    (policy,) = [p for p in mtls.POLICIES if p.name == "mesh-wide-strict-mtls"]
    istiod = {"chart": "istiod", "name": "istiod-1-30-5", "namespace": "istio-system"}
    strict = {
        "metadata": {"name": "default", "namespace": "istio-system"},
        "spec": {"mtls": {"mode": "STRICT"}},
    }
    release, peer = "helm.sh/v3:Release", "security.istio.io/v1:PeerAuthentication"

    def violations(resources: list[Any]) -> list[tuple[str, str | None]]:
        found: list[tuple[str, str | None]] = []
        args = SimpleNamespace(resources=resources, get_config=lambda: {})
        policy.validate(args, lambda message, urn: found.append((message, urn)))
        return found

    both = [
        policy_resource(release, "istiod", "east-kubernetes", istiod),
        policy_resource(release, "istiod", "west-kubernetes", istiod),
        policy_resource(peer, "strict", "east-kubernetes", strict),
    ]
    # West's istiod has no STRICT policy of its own: east's does not cover it.
    (violation,) = violations(both)
    assert violation[0].startswith("in the cluster of provider west-kubernetes: the stack ")
    assert violations([*both, policy_resource(peer, "strict", "west-kubernetes", strict)]) == []
    # One cluster: judged as before, with no cluster named.
    (single,) = violations(both[:1])
    assert single[0].startswith("the stack installs istiod")
