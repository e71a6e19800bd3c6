"""Bad stack configs end with one clear message naming each config path, and register nothing."""

from __future__ import annotations

import json
from typing import Any

import pytest

from components.config import CONFIG_KEYS, parse_config, raw_config_from_strings
from components.errors import ConfigError
from mesh.program import (
    PROJECT_DIR,
    Registered,
    load_stack_file,
    project_config_defaults,
    run_program,
)

ONE_REVISION = {"revisions": [{"version": "1.30.5"}]}
INGRESS = {
    "name": "ingress",
    "servers": [{"hosts": ["a.example.com"], "tls": {"credentialName": "a"}}],
}

BAD_CONFIGS: list[tuple[str, dict[str, Any], str, str]] = [
    (
        "empty trust domain (principals would match no identity)",
        {"istio": {**ONE_REVISION, "trustDomain": ""}},
        "istio-mesh:istio.trustDomain",
        "not a SPIFFE trust domain",
    ),
    (
        "empty tracing backend host",
        {"istio": ONE_REVISION, "observability": {"tracing": {"service": ""}}},
        "istio-mesh:observability.tracing.service",
        "'' is not a host name",
    ),
    (
        "unknown dataplane",
        {"istio": {**ONE_REVISION, "dataplane": "sidecarless"}},
        "istio-mesh:istio.dataplane",
        "'sidecar' or 'ambient'",
    ),
    (
        "tag on a missing revision",
        {"istio": {**ONE_REVISION, "tags": {"canary": "1-31-1"}}},
        "istio-mesh:istio.tags.canary",
        "not a revision of this stack",
    ),
    (
        "namespace on an unknown tag",
        {"istio": ONE_REVISION, "namespaces": [{"name": "shop", "revision": "beta"}]},
        "istio-mesh:namespaces[0].revision",
        "'beta' is not a tag",
    ),
    (
        "malformed version",
        {"istio": {"revisions": [{"version": "1.30"}]}},
        "istio-mesh:istio.revisions[0].version",
        "not an exact Istio version",
    ),
    (
        "version range",
        {"istio": {"revisions": [{"version": "~1.30.0"}]}},
        "istio-mesh:istio.revisions[0].version",
        "not an exact Istio version",
    ),
    (
        "duplicate namespace",
        {"namespaces": [{"name": "shop"}, {"name": "shop"}]},
        "istio-mesh:namespaces[1].name",
        "already used by istio-mesh:namespaces[0].name",
    ),
    (
        "duplicate revision",
        {"istio": {"revisions": [{"version": "1.30.5"}, {"version": "1.30.5"}]}},
        "istio-mesh:istio.revisions[1].version",
        "listed twice",
    ),
    (
        "duplicate gateway",
        {"gateways": [INGRESS, INGRESS]},
        "istio-mesh:gateways[1].name",
        "already used",
    ),
    (
        "namespace clashing with a gateway's",
        {"gateways": [INGRESS], "namespaces": [{"name": "istio-ingress"}]},
        "istio-mesh:namespaces[0].name",
        "already used by istio-mesh:gateways[0].name",
    ),
    (
        "system namespace",
        {"namespaces": [{"name": "kube-system"}]},
        "istio-mesh:namespaces[0].name",
        "by Kubernetes itself",
    ),
    (
        "invalid namespace name",
        {"namespaces": [{"name": "Shop_1"}]},
        "istio-mesh:namespaces[0].name",
        "not a valid Kubernetes name",
    ),
    (
        "injection label set by hand",
        {"namespaces": [{"name": "shop", "labels": {"istio-injection": "enabled"}}]},
        "istio-mesh:namespaces[0].labels",
        "managed",
    ),
    (
        "defaultRevision not a revision",
        {"istio": {**ONE_REVISION, "defaultRevision": "1-29-0"}},
        "istio-mesh:istio.defaultRevision",
        "not a revision of this stack",
    ),
    (
        "reserved default tag",
        {"istio": {**ONE_REVISION, "tags": {"default": "1-30-5"}}},
        "istio-mesh:istio.tags.default",
        "reserved",
    ),
    (
        "wildcard host",
        {
            "gateways": [
                {
                    "name": "ingress",
                    "servers": [{"hosts": ["*.example.com"], "tls": {"credentialName": "a"}}],
                }
            ]
        },
        "istio-mesh:gateways[0].servers[0].hosts",
        "wildcard",
    ),
    (
        "server without certificate",
        {"gateways": [{"name": "ingress", "servers": [{"hosts": ["a.example.com"]}]}]},
        "istio-mesh:gateways[0].servers[0].tls",
        "Field required",
    ),
    (
        "replicas min above max",
        {"gateways": [{**INGRESS, "replicas": {"min": 4, "max": 2}}]},
        "istio-mesh:gateways[0].replicas",
        "min is greater than max",
    ),
    (
        "unknown key in a section",
        {"istio": {**ONE_REVISION, "highAvailabilty": True}},
        "istio-mesh:istio.highAvailabilty",
        "unknown key",
    ),
    (
        "services whose resource names clash (a/b-c and a-b/c)",
        {
            "namespaces": [{"name": "a"}, {"name": "a-b"}],
            "services": [
                {"name": "b-c", "namespace": "a", "port": 80},
                {"name": "c", "namespace": "a-b", "port": 80},
            ],
        },
        "istio-mesh:services[1].name",
        "would both name their resources services-a-b-c-vs",
    ),
    (
        "service named like another one's gateway route",
        {
            "gateways": [INGRESS],
            "namespaces": [{"name": "shop"}],
            "services": [
                {"name": "reviews-gateway", "namespace": "shop", "port": 80},
                {
                    "name": "reviews",
                    "namespace": "shop",
                    "port": 80,
                    "expose": {"gateway": "ingress", "host": "a.example.com"},
                },
            ],
        },
        "istio-mesh:services[0].name",
        "VirtualService reviews-gateway",
    ),
    (
        "namespace sampling overridden twice",
        {
            "namespaces": [{"name": "shop"}],
            "observability": {
                "namespaces": [
                    {"namespace": "shop", "samplingPercent": 1},
                    {"namespace": "shop", "samplingPercent": 50},
                ]
            },
        },
        "istio-mesh:observability.namespaces[1].namespace",
        "already overridden by istio-mesh:observability.namespaces[0]",
    ),
    (
        "label key the API server refuses",
        {"namespaces": [{"name": "shop", "labels": {"cost center": "shop"}}]},
        "istio-mesh:namespaces[0].labels",
        "not a Kubernetes label key",
    ),
    (
        "label value the API server refuses",
        {"namespaces": [{"name": "shop", "labels": {"team": "Shop Floor"}}]},
        "istio-mesh:namespaces[0].labels",
        "not a Kubernetes label value",
    ),
    (
        "allowIngressFrom not a namespace name",
        {"namespaces": [{"name": "shop", "allowIngressFrom": ["Monitoring NS"]}]},
        "istio-mesh:namespaces[0].allowIngressFrom",
        "not a valid Kubernetes name",
    ),
    (
        "gateway name too long for its release",
        {"gateways": [{**INGRESS, "name": "edge-" + "x" * 43}]},
        "istio-mesh:gateways[0].name",
        "exceed Helm's 53 characters (at most 47 here)",
    ),
    (
        "one service file, not a list of them",
        {"serviceFiles": "services/shop.yaml"},
        "istio-mesh:serviceFiles",
        "must be a list of file paths: write [services/shop.yaml]",
    ),
    (
        "a service file that does not exist (relative: from the project directory)",
        {"serviceFiles": ["services/nowhere.yaml"]},
        "istio-mesh:serviceFiles[0] services/nowhere.yaml",
        f"cannot be read: no such file {PROJECT_DIR}/services/nowhere.yaml",
    ),
    ("unknown top-level key", {"gateway": []}, "istio-mesh:gateway", "unknown key"),
    ("misspelt serviceFiles", {"service_files": []}, "istio-mesh:service_files", "unknown key"),
    ("wrong type", {"gateways": {"name": "ingress"}}, "istio-mesh:gateways", "valid list"),
]


@pytest.mark.parametrize(
    ("config", "path", "message"),
    [case[1:] for case in BAD_CONFIGS],
    ids=[case[0] for case in BAD_CONFIGS],
)
def test_bad_config_names_the_path_and_registers_nothing(
    config: dict[str, Any], path: str, message: str
) -> None:
    registered: list[Registered] = []
    with pytest.raises(ConfigError) as raised:
        run_program(
            "bad",
            {f"istio-mesh:{key}": json.dumps(value) for key, value in config.items()},
            registered=registered,
        )
    matching = [p for p in raised.value.problems if p.path == path]
    assert matching, raised.value
    assert any(message in p.message for p in matching), raised.value
    assert f"{path}: " in str(raised.value)
    assert registered == []


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(ConfigError) as raised:
        parse_config(
            {
                "istio": {**ONE_REVISION, "tags": {"canary": "1-31-1"}},
                "namespaces": [{"name": "shop", "revision": "beta"}, {"name": "shop"}],
            }
        )
    paths = [problem.path for problem in raised.value.problems]
    assert paths == [
        "istio-mesh:istio.tags.canary",
        "istio-mesh:namespaces[0].revision",
        "istio-mesh:namespaces[1].name",
        # `stable` is the default tag of a namespace, and this stack only defines `canary`.
        "istio-mesh:namespaces[1].revision",
    ]
    assert str(raised.value).startswith("invalid stack config (4 problems):")


def test_smallest_stack_file_works() -> None:
    config = parse_config({"istio": {"revisions": [{"version": "1.30.5"}]}})
    assert config.istio.tag_map == {"stable": "1-30-5"}
    assert config.istio.default_revision_name == "1-30-5"
    run = run_program(
        "tiny", {"istio-mesh:istio": json.dumps({"revisions": [{"version": "1.30.5"}]})}
    )
    assert {r.props.get("name") for r in run.of_type("kubernetes:helm.sh/v3:Release")} == {
        "istio-base",
        "istiod-1-30-5",
    }


def test_observability_and_promotion_sections_are_not_rejected() -> None:
    config = parse_config(
        {
            "observability": {"tracing": {"samplingPercent": 1}},
            "promotion": {"fromStack": "org/istio-mesh/dev"},
        }
    )
    assert config.observability is not None


def test_pulumi_yaml_declares_every_key_with_a_default_that_means_unset() -> None:
    # The CLI refuses a stack that omits a declared key without a default, and hands
    # the default to a stack that omits the key: each default must read as "not set".
    import yaml

    declared = yaml.safe_load((PROJECT_DIR / "Pulumi.yaml").read_text())["config"]
    project_keys = {key for key in declared if ":" not in key}
    assert project_keys == set(CONFIG_KEYS)
    assert [key for key in CONFIG_KEYS if declared[key].get("default") is None] == []
    defaults = project_config_defaults()
    ours = {key for key in defaults if key.startswith("istio-mesh:")}
    assert ours == {f"istio-mesh:{key}" for key in CONFIG_KEYS}
    assert parse_config(raw_config_from_strings(defaults)) == parse_config({})


def test_a_stack_file_gets_the_project_default_of_each_key_it_omits(tmp_path: Any) -> None:
    stack_file = tmp_path / "Pulumi.lab.yaml"
    stack_file.write_text(
        "config:\n  istio-mesh:promotion:\n    fromStack: organization/istio-mesh/dev\n"
    )
    config = load_stack_file(stack_file)
    assert config["istio-mesh:services"] == "[]"
    assert config["istio-mesh:istio"] == "{}"
    assert json.loads(config["istio-mesh:promotion"]) == {
        "fromStack": "organization/istio-mesh/dev"
    }
    # dev sets no promotion gate; the default it is handed keeps it without one.
    dev = load_stack_file(PROJECT_DIR / "Pulumi.dev.yaml")
    assert dev["istio-mesh:promotion"] == "{}"
    assert parse_config(raw_config_from_strings(dev)).promotion is None


def test_problems_are_listed_in_the_order_of_their_entries() -> None:
    # Indexes compare as numbers: services[2] is reported before services[10].
    services = [
        {"name": f"svc-{i}", "namespace": "shop", "port": 80 if i not in (2, 10) else -1}
        for i in range(12)
    ]
    with pytest.raises(ConfigError) as error:
        parse_config({"namespaces": [{"name": "shop"}], "services": services})
    paths = [problem.path for problem in error.value.problems]
    assert [path.split(".")[0] for path in paths] == [
        "istio-mesh:services[2]",
        "istio-mesh:services[10]",
    ]


@pytest.mark.parametrize(
    "repository",
    [
        "http://charts.example.com/istio",  # plain http beyond loopback
        "ftp://charts.example.com",
        "oci://ghcr.io",  # a registry without a path to the charts
        "https://",
        "blob.istio.io/istio-release/charts",
    ],
)
def test_a_chart_repository_must_be_a_usable_url(repository: str) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_config({"istio": {"chartRepository": repository}})
    (problem,) = raised.value.problems
    assert problem.path == "istio-mesh:istio.chartRepository"
    assert "not a chart repository URL" in problem.message


@pytest.mark.parametrize(
    "repository",
    ["http://127.0.0.1:8879", "http://localhost:8879/charts", "oci://ghcr.io/istio/release/charts"],
)
def test_loopback_mirrors_and_oci_registries_are_chart_repositories(repository: str) -> None:
    assert parse_config({"istio": {"chartRepository": repository}}).istio.chart_repository


@pytest.mark.parametrize(
    ("from_stack", "qualified"),
    [
        ("dev", "acme/istio-mesh/dev"),
        ("platform/dev", "acme/platform/dev"),
        ("other-org/platform/dev", "other-org/platform/dev"),
    ],
)
def test_from_stack_is_completed_from_the_running_stack(from_stack: str, qualified: str) -> None:
    promotion = parse_config({"promotion": {"fromStack": from_stack}}).promotion
    assert promotion is not None
    assert promotion.qualified("acme", "istio-mesh") == qualified


@pytest.mark.parametrize("from_stack", ["a/b/c/d", "/dev", "org//dev", "dev/"])
def test_from_stack_must_be_a_stack_name(from_stack: str) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_config({"promotion": {"fromStack": from_stack}})
    (problem,) = raised.value.problems
    assert problem.path == "istio-mesh:promotion.fromStack"
    assert "is not a stack name" in problem.message


@pytest.mark.parametrize("wanted", ["1.31", "1.32", "1.30.5", "latest"])
def test_compatibility_version_is_an_older_minor(wanted: str) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_config(
            {"istio": {"revisions": [{"version": "1.31.1", "compatibilityVersion": wanted}]}}
        )
    (problem,) = raised.value.problems
    assert problem.path == "istio-mesh:istio.revisions[0]"
    assert "must be an older minor than 1.31.1 (such as 1.30)" in problem.message


@pytest.mark.parametrize("hub", ["gcr.io/istio-release", "registry.istio.io/release/"])
def test_a_retired_image_hub_is_refused(hub: str) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_config({"istio": {"hub": hub}})
    (problem,) = raised.value.problems
    assert problem.path == "istio-mesh:istio.hub"
    assert "retired by Istio in December 2026" in problem.message


def test_a_protected_mesh_must_name_its_cluster() -> None:
    with pytest.raises(ConfigError) as raised:
        parse_config({"istio": {"protect": True}})
    (problem,) = raised.value.problems
    assert problem.path == "istio-mesh:istio.protect"
    assert "must name its cluster: set kubernetes:context" in problem.message
    protected = parse_config({"istio": {"protect": True}, "kubernetes_context": "istio-prod"})
    assert protected.istio.protect
