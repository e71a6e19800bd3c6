"""`istio-mesh:serviceFiles`: the catalog in YAML files, read and checked like inline services.

The program runs from a project directory of its own (a copy of `__main__.py` in
tmp_path), so relative paths resolve as they would beside a real Pulumi.yaml.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pulumi
import pytest
import yaml

from components import service_files
from components.config import parse_config
from components.errors import ConfigError
from mesh.program import PROJECT_DIR, ProgramRun, Registered
from tests.conftest import run_config

VIRTUAL_SERVICE = "kubernetes:networking.istio.io/v1:VirtualService"

BASE: dict[str, Any] = {
    "istio": {"revisions": [{"version": "1.30.5"}]},
    "gateways": [
        {
            "name": "ingress",
            "servers": [{"hosts": ["shop.example.com"], "tls": {"credentialName": "shop-tls"}}],
        }
    ],
    "namespaces": [{"name": "shop"}, {"name": "payments"}],
}

CATALOG: list[dict[str, Any]] = [
    {
        "name": "productpage",
        "namespace": "shop",
        "port": 9080,
        "versions": {"v1": {"weight": 100}},
        "expose": {"gateway": "ingress", "host": "shop.example.com"},
    },
    {
        "name": "reviews",
        "namespace": "shop",
        "port": 9080,
        "versions": {"v1": {"weight": 80}, "v2": {"weight": 20}},
        "routes": [{"headers": {"x-canary": "true"}, "to": "v2"}],
        "retries": {"attempts": 3, "perTryTimeout": "2s"},
        "allowFrom": [{"namespace": "shop", "serviceAccount": "productpage"}],
    },
    {
        "name": "ratings",
        "namespace": "shop",
        "port": 9080,
        "allowFrom": [{"namespace": "shop", "serviceAccount": "reviews", "methods": ["GET"]}],
    },
    {
        "name": "ledger",
        "namespace": "payments",
        "port": 8080,
        "timeout": "5s",
        "allowFrom": [{"namespace": "shop", "serviceAccount": "productpage"}],
        "jwt": {"issuer": "https://auth.example.com", "jwksUri": "https://auth.example.com/jwks"},
    },
]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project directory of its own: the real `__main__.py`, service files beside it."""
    directory = tmp_path / "project"
    (directory / "services").mkdir(parents=True)
    shutil.copy(PROJECT_DIR / "__main__.py", directory)
    return directory


def write(project: Path, name: str, content: Any) -> str:
    """Write a service file (entries as YAML, or text or bytes as they are); returns
    `name`, the path relative to the project as a stack file lists it."""
    path = project / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content if isinstance(content, str) else yaml.safe_dump(content))
    return name


def run(
    project: Path, config: dict[str, Any], registered: list[Registered] | None = None
) -> ProgramRun:
    return run_config(config, program=project / "__main__.py", registered=registered)


def problems_of(project: Path, config: dict[str, Any]) -> list[str]:
    """Every problem of a config the program refuses, as `path: message`; nothing may have
    been registered."""
    registered: list[Registered] = []
    with pytest.raises(ConfigError) as raised:
        run(project, config, registered)
    assert registered == []
    return [str(problem) for problem in raised.value.problems]


def declared(run: ProgramRun) -> dict[str, str]:
    """URN -> properties of everything a run declared."""
    return {r.urn: json.dumps(r.props, sort_keys=True) for r in run.resources}


# --------------------------------------------------------------------------------------
# Services from files are services like any other
# --------------------------------------------------------------------------------------


def test_services_in_files_declare_exactly_what_the_same_services_inline_declare(
    project: Path,
) -> None:
    inline = run(project, {**BASE, "services": CATALOG})
    split = [
        write(project, "services/shop.yaml", CATALOG[:3]),
        write(project, "services/payments.yaml", CATALOG[3:]),
    ]
    from_files = run(project, {**BASE, "serviceFiles": split})
    rest = write(project, "services/rest.yaml", CATALOG[1:])
    mixed = run(project, {**BASE, "services": CATALOG[:1], "serviceFiles": [rest]})

    names = {r.props["metadata"]["name"] for r in inline.of_type(VIRTUAL_SERVICE)}
    assert names == {"productpage", "productpage-gateway", "reviews", "ratings", "ledger"}
    assert declared(from_files) == declared(inline)
    assert declared(mixed) == declared(inline)
    assert from_files.outputs == inline.outputs


def test_file_services_follow_the_inline_ones_in_the_order_the_files_are_listed(
    project: Path,
) -> None:
    first = write(project, "services/first.yaml", [CATALOG[2], CATALOG[1]])
    second = write(project, "services/second.yaml", [CATALOG[3]])

    config = parse_config(
        {**BASE, "services": CATALOG[:1], "serviceFiles": [second, first]}, root=project
    )

    assert [service.name for service in config.services] == [
        "productpage",
        "ledger",
        "ratings",
        "reviews",
    ]
    assert config.service_files == [second, first]


@pytest.mark.parametrize("content", ["", "# the payments team's services live here soon\n", "[]\n"])
def test_an_empty_file_or_list_holds_no_services(project: Path, content: str) -> None:
    empty = write(project, "services/empty.yaml", content)

    for listed in ([empty], []):
        done = run(project, {**BASE, "services": CATALOG[:1], "serviceFiles": listed})
        names = {r.props["metadata"]["name"] for r in done.of_type(VIRTUAL_SERVICE)}
        assert names == {"productpage", "productpage-gateway"}


# --------------------------------------------------------------------------------------
# Problems name the file, the entry's index in it, and the field
# --------------------------------------------------------------------------------------


def test_a_field_problem_names_the_file_the_entry_and_the_field(project: Path) -> None:
    shop = write(project, "services/shop.yaml", CATALOG[:3])
    bad = {**CATALOG[3], "port": "8080", "versions": {"v1": {"weight": 90}}}
    payments = write(project, "services/payments.yaml", [*CATALOG[3:], *CATALOG[3:], {}, bad])
    # (The copy at [1] would be reported once the fields are right: cross-checks come next.)

    found = problems_of(project, {**BASE, "serviceFiles": [shop, payments]})

    assert found == [
        "istio-mesh:serviceFiles[1] services/payments.yaml[2].name: Field required",
        "istio-mesh:serviceFiles[1] services/payments.yaml[2].namespace: Field required",
        "istio-mesh:serviceFiles[1] services/payments.yaml[2].port: Field required",
        "istio-mesh:serviceFiles[1] services/payments.yaml[3].port: Input should be a valid "
        "integer",
        "istio-mesh:serviceFiles[1] services/payments.yaml[3].versions: weights must sum to "
        "100, got 90",
    ]


def test_an_entry_in_a_file_is_validated_exactly_like_an_inline_one(project: Path) -> None:
    bad = {
        **CATALOG[1],
        "port": True,
        "colour": "blue",
        "timeout": "10",
        "routes": [{"to": "v3", "headers": {"X-Canary": "true"}}],
        "mirror": {"to": "v2", "percent": 101},
    }
    reviews = write(project, "services/reviews.yaml", [bad])

    inline = problems_of(project, {**BASE, "services": [bad]})
    in_file = problems_of(project, {**BASE, "serviceFiles": [reviews]})

    assert len(inline) == 5
    prefix = "istio-mesh:serviceFiles[0] services/reviews.yaml[0]"
    assert in_file == [problem.replace("istio-mesh:services[0]", prefix) for problem in inline]


def test_cross_check_problems_name_the_entries_in_their_files(project: Path) -> None:
    exposed = {"gateway": "ingress", "host": "shop.example.com", "pathPrefix": "/shop"}
    shop = write(
        project,
        "services/shop.yaml",
        [
            CATALOG[2],
            CATALOG[1],  # also inline
            {**CATALOG[2], "name": "cart", "expose": exposed},
        ],
    )
    other = write(
        project,
        "services/other.yaml",
        [
            {**CATALOG[2], "name": "basket", "expose": {**exposed, "pathPrefix": "/shop/basket"}},
            {**CATALOG[3], "namespace": "billing"},
        ],
    )

    found = problems_of(project, {**BASE, "services": [CATALOG[1]], "serviceFiles": [shop, other]})

    assert found == [
        "istio-mesh:serviceFiles[0] services/shop.yaml[1].name: shop/reviews is already defined "
        "by istio-mesh:services[0]",
        "istio-mesh:serviceFiles[1] services/other.yaml[1].namespace: 'billing' is not one of "
        "istio-mesh:namespaces (payments, shop)",
        "istio-mesh:serviceFiles[1] services/other.yaml[0].expose.pathPrefix: /shop/basket on "
        "shop.example.com overlaps /shop of istio-mesh:serviceFiles[0] services/shop.yaml[2]; "
        "Istio does not order the routes of separate VirtualServices, so give each service "
        "its own prefix",
    ]


FILE_PROBLEMS: list[tuple[str, dict[str, Any], Any, str, str]] = [
    # (id, files to write, serviceFiles, path of the problem, part of its message)
    (
        "missing file",
        {},
        ["services/shop.yaml"],
        "istio-mesh:serviceFiles[0] services/shop.yaml",
        "cannot be read: no such file {project}/services/shop.yaml",
    ),
    (
        "a directory",
        {},
        ["services"],
        "istio-mesh:serviceFiles[0] services",
        "cannot be read: {project}/services: Is a directory",
    ),
    (
        "not UTF-8",
        {"services/shop.yaml": b"- name: caf\xe9\n"},
        ["services/shop.yaml"],
        "istio-mesh:serviceFiles[0] services/shop.yaml",
        "not UTF-8 text",
    ),
    (
        "not YAML",
        {"services/shop.yaml": "- name: reviews\n  versions: {v1: {weight: 100}\n"},
        ["services/shop.yaml"],
        "istio-mesh:serviceFiles[0] services/shop.yaml",
        # libyaml and PyYAML's own parser word it differently; both name the problem.
        "expected ',' or '}'",
    ),
    (
        "a key written twice",
        {"services/shop.yaml": "- name: reviews\n  namespace: shop\n  port: 1\n  port: 2\n"},
        ["services/shop.yaml"],
        "istio-mesh:serviceFiles[0] services/shop.yaml",
        "not valid YAML: key 'port' is written twice in one mapping (line 4, column 3)",
    ),
    (
        "a mapping at the top",
        {"services/shop.yaml": CATALOG[1]},
        ["services/shop.yaml"],
        "istio-mesh:serviceFiles[0] services/shop.yaml",
        "must be a YAML list of service entries (each like an istio-mesh:services item), "
        "got a mapping",
    ),
    (
        "an entry that is not a mapping",
        {"services/shop.yaml": [CATALOG[1], "ratings"]},
        ["services/shop.yaml"],
        "istio-mesh:serviceFiles[0] services/shop.yaml[1]",
        "must be a mapping (one service), got a string",
    ),
    (
        "one path, not a list",
        {"services/shop.yaml": [CATALOG[1]]},
        "services/shop.yaml",
        "istio-mesh:serviceFiles",
        "must be a list of file paths: write [services/shop.yaml]",
    ),
    (
        "a mapping instead of a list",
        {},
        {"shop": "services/shop.yaml"},
        "istio-mesh:serviceFiles",
        "Input should be a valid list",
    ),
    ("a path that is not a string", {}, [3], "istio-mesh:serviceFiles[0]", "valid string"),
    ("an empty path", {}, [""], "istio-mesh:serviceFiles[0]", "at least 1 character"),
    (
        "one file listed twice",
        {"services/shop.yaml": [CATALOG[1]]},
        ["services/shop.yaml", "./services/../services/shop.yaml"],
        "istio-mesh:serviceFiles[1] ./services/../services/shop.yaml",
        "the same file as istio-mesh:serviceFiles[0] (services/shop.yaml): list each file "
        "once, or its services are defined twice",
    ),
]


@pytest.mark.parametrize(
    ("files", "listed", "path", "message"),
    [case[1:] for case in FILE_PROBLEMS],
    ids=[case[0] for case in FILE_PROBLEMS],
)
def test_a_file_problem_is_a_config_problem_and_nothing_is_registered(
    project: Path, files: dict[str, Any], listed: Any, path: str, message: str
) -> None:
    for name, content in files.items():
        write(project, name, content)

    found = problems_of(project, {**BASE, "serviceFiles": listed})

    expected = message.replace("{project}", str(project))
    assert any(p.startswith(f"{path}: ") and expected in p for p in found), found


def test_every_problem_of_every_file_is_reported_at_once(project: Path) -> None:
    broken = write(project, "services/broken.yaml", "- {name: [\n")
    entries = write(project, "services/entries.yaml", [{**CATALOG[2], "port": 0}, "ratings"])

    found = problems_of(
        project,
        {
            **BASE,
            "services": [{**CATALOG[1], "port": 70000}],
            "serviceFiles": [broken, "services/missing.yaml", entries],
        },
    )

    assert [problem.split(": ")[0] for problem in found] == [
        "istio-mesh:serviceFiles[0] services/broken.yaml",
        "istio-mesh:serviceFiles[1] services/missing.yaml",
        "istio-mesh:serviceFiles[2] services/entries.yaml[0].port",
        "istio-mesh:serviceFiles[2] services/entries.yaml[1]",
        "istio-mesh:services[0].port",
    ]


# --------------------------------------------------------------------------------------
# Relative paths: from the project directory, as the Pulumi CLI runs a program
# --------------------------------------------------------------------------------------


def test_relative_paths_resolve_against_the_project_directory_not_the_working_directory(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    listed = write(project, "services/shop.yaml", [CATALOG[1]])
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "services").mkdir(parents=True)
    write(elsewhere, listed, [CATALOG[2]])  # the same relative path, other services
    monkeypatch.chdir(elsewhere)

    done = run(project, {**BASE, "serviceFiles": [listed]})

    assert [r.props["metadata"]["name"] for r in done.of_type(VIRTUAL_SERVICE)] == ["reviews"]
    # The project's own program, run from the directory holding that file, still looks in
    # its own project directory.
    monkeypatch.chdir(project)
    with pytest.raises(ConfigError) as raised:
        run_config({**BASE, "serviceFiles": [listed]})
    assert f"no such file {PROJECT_DIR}/services/shop.yaml" in str(raised.value)


def test_a_run_keeps_its_project_directory_to_itself(project: Path) -> None:
    before = pulumi.get_root_directory()

    run(project, {**BASE, "serviceFiles": [write(project, "services/shop.yaml", CATALOG[:1])]})

    assert pulumi.get_root_directory() == before


@pytest.mark.parametrize("given", [None, "", "root_directory"])
def test_without_a_language_host_the_working_directory_stands_in(
    given: str | None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(service_files.pulumi, "get_root_directory", lambda: given)

    assert service_files.project_directory() == tmp_path


def test_the_language_hosts_project_directory_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(service_files.pulumi, "get_root_directory", lambda: str(tmp_path))

    assert service_files.project_directory() == tmp_path


def test_anchors_and_merge_keys_are_not_keys_written_twice(project: Path) -> None:
    listed = write(
        project,
        "services/shop.yaml",
        "- &bookinfo\n"
        "  name: reviews\n"
        "  namespace: shop\n"
        "  port: 9080\n"
        "- <<: *bookinfo\n"
        "  name: ratings\n",
    )

    config = parse_config({**BASE, "serviceFiles": [listed]}, root=project)

    assert [(s.name, s.namespace, s.port) for s in config.services] == [
        ("reviews", "shop", 9080),
        ("ratings", "shop", 9080),
    ]
