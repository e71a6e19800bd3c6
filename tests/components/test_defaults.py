"""What the components do when a program passes only what they require: the defaults a
platform team relies on when it uses them in its own program."""

from __future__ import annotations

from pathlib import Path

import pytest

from mesh.program import ProgramRun, run_program

PROGRAM = """
from components.config import parse_config
from components.gateway import GatewayArgs, IngressGateway
from components.namespace import MeshNamespace, MeshNamespaceArgs

server = {"hosts": ["shop.example.com"], "tls": {"credentialName": "shop-tls"}}
config = parse_config({"gateways": [{"name": "ingress", "servers": [server]}]})
IngressGateway("gateway", GatewayArgs(settings=config.gateways[0], version="1.30.5"))
MeshNamespace("shop", MeshNamespaceArgs(name="shop"))
"""


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> ProgramRun:
    program = tmp_path_factory.mktemp("defaults") / "__main__.py"
    program.write_text(PROGRAM)
    return run_program("dev", {}, program=Path(program))


def test_nothing_is_protected_unless_asked(run: ProgramRun) -> None:
    assert run.resources
    assert not any(resource.protect or resource.retain_on_delete for resource in run.resources)


def test_the_gateway_release_waits_for_its_pods(run: ProgramRun) -> None:
    [release] = run.of_type("kubernetes:helm.sh/v3:Release")
    assert release.props.get("skipAwait") is not True
    assert release.props.get("atomic") is True


def test_a_namespace_joins_the_mesh_by_the_stable_tag(run: ProgramRun) -> None:
    [namespace] = [
        m for m in run.manifests() if m["kind"] == "Namespace" and m["metadata"]["name"] == "shop"
    ]
    assert namespace["metadata"]["labels"]["istio.io/rev"] == "stable"
