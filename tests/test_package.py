"""The component package (istio_mesh, PulumiPlugin.yaml): its schema, and that its
components declare what the stacks declare.

The schema is inferred from the components' annotations and docstrings by the SDK's
component provider, as `pulumi package get-schema` gets it from the running plugin; a
consumer's SDK in any language is generated from it, so an untyped or undocumented
property there is one in every consumer's editor.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import grpc
import pytest
from pulumi.provider.experimental.component import ComponentProvider
from pulumi.runtime.proto import provider_pb2, provider_pb2_grpc
from pydantic import BaseModel

from components.config import MeshConfig, raw_config_from_strings
from components.errors import ConfigError
from istio_mesh import COMPONENTS
from istio_mesh.convert import to_config
from istio_mesh.generate_args import TARGET, generate
from istio_mesh.host import PACKAGE, version
from mesh.program import PROJECT_DIR, ProgramRun, Registered, load_stack_file, run_program
from tests.conftest import stack_run

ANY = "pulumi.json#/Any"


def package_schema() -> dict[str, Any]:
    provider = ComponentProvider(COMPONENTS, PACKAGE, version=version())
    assert provider.schema is not None
    schema: dict[str, Any] = json.loads(provider.schema)
    return schema


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    return package_schema()


def test_the_args_module_is_what_the_config_models_generate() -> None:
    assert TARGET.read_text() == generate(), (
        "istio_mesh/args.py is not what the config models say: "
        "venv/bin/python -m istio_mesh.generate_args"
    )


def test_every_public_component_is_in_the_schema_as_a_component(schema: dict[str, Any]) -> None:
    tokens = {f"{PACKAGE}:index:{component.__name__}" for component in COMPONENTS}
    assert set(schema["resources"]) == tokens
    for token in tokens:
        resource = schema["resources"][token]
        assert resource["isComponent"] is True
        assert resource["description"], f"{token} has no description"
        assert resource["inputProperties"], f"{token} takes no inputs"
        assert resource["properties"], f"{token} has no outputs"


def properties(schema: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every property of the schema (inputs, outputs, object types), with where it is."""
    for token, resource in schema["resources"].items():
        for kind in ("inputProperties", "properties"):
            for name, spec in resource.get(kind, {}).items():
                yield f"{token}.{kind}.{name}", spec
    for token, type_ in schema["types"].items():
        for name, spec in type_.get("properties", {}).items():
            yield f"{token}.{name}", spec


def type_problems(where: str, spec: dict[str, Any], types: Mapping[str, Any]) -> list[str]:
    """What is untyped in `spec`: no type, `Any`, a reference to nothing."""
    if "$ref" in spec:
        ref = spec["$ref"]
        if ref == ANY:
            return [f"{where}: Any"]
        token = ref.removeprefix("#/types/")
        return [] if token in types else [f"{where}: refers to the unknown type {ref}"]
    kind = spec.get("type")
    if kind == "array":
        return type_problems(f"{where}[]", spec.get("items", {}), types)
    if kind == "object":
        if "additionalProperties" not in spec:
            return [f"{where}: an object of no known shape"]
        return type_problems(f"{where}{{}}", spec["additionalProperties"], types)
    if kind in ("string", "integer", "number", "boolean"):
        return []
    return [f"{where}: no type"]


def test_every_property_is_typed(schema: dict[str, Any]) -> None:
    problems = [
        problem
        for where, spec in properties(schema)
        for problem in type_problems(where, spec, schema["types"])
    ]
    assert problems == []
    assert ANY not in json.dumps(schema)


def test_every_property_and_type_is_described(schema: dict[str, Any]) -> None:
    undescribed = [where for where, spec in properties(schema) if not spec.get("description")]
    undescribed += [token for token, type_ in schema["types"].items() if not type_["description"]]
    assert undescribed == []


def test_istio_mesh_takes_every_stack_config_key(schema: dict[str, Any]) -> None:
    """Its args are the stack config: one input per `istio-mesh:*` key, by its name,
    and `kubernetesContext` for `kubernetes:context`."""
    inputs = schema["resources"][f"{PACKAGE}:index:IstioMesh"]["inputProperties"]
    keys = {field.alias for field in MeshConfig.model_fields.values()}
    assert set(inputs) == keys
    assert "kubernetesContext" in inputs and "services" in inputs


def test_the_schema_says_which_inputs_are_required(schema: dict[str, Any]) -> None:
    revision = schema["types"][f"{PACKAGE}:index:Revision"]
    assert revision["required"] == ["version"]
    service = schema["types"][f"{PACKAGE}:index:ServiceConfig"]
    assert sorted(service["required"]) == ["name", "namespace", "port"]


def test_the_package_version_is_pyprojects(schema: dict[str, Any]) -> None:
    assert schema["version"] == version()
    text = (PROJECT_DIR / "pyproject.toml").read_text()
    assert f'version = "{version()}"' in text
    assert f"## {version()}" in (PROJECT_DIR / "CHANGELOG.md").read_text()


def test_the_plugin_directory_serves_the_schema_as_the_language_host_runs_it() -> None:
    """pulumi-language-python runs a plugin directory holding a `__main__.py` as
    `python <directory> <engine address>`: the stack's `__main__.py` then serves the
    components over the provider protocol (it declares the stack only as a program)."""
    plugin = subprocess.Popen(
        [sys.executable, str(PROJECT_DIR), "127.0.0.1:1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert plugin.stdout is not None
        port = int(plugin.stdout.readline())
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = provider_pb2_grpc.ResourceProviderStub(channel)
            served = stub.GetSchema(provider_pb2.GetSchemaRequest(version=0), timeout=60)
    finally:
        plugin.kill()
        plugin.communicate()
    assert json.loads(served.schema) == package_schema()


# -- the components declare what the stacks declare -------------------------------------


def python_names(model: type[BaseModel], value: Any) -> Any:
    """A config value (camelCase keys) as a model's args (Python names): what a Python
    program passes. The inverse of istio_mesh.convert."""
    if not isinstance(value, dict):
        return value
    by_alias = {field.alias or name: (name, field) for name, field in model.model_fields.items()}
    return {
        by_alias[key][0]: args_value(by_alias[key][1].annotation, element)
        for key, element in value.items()
    }


def args_value(annotation: Any, value: Any) -> Any:
    from typing import get_args, get_origin

    from istio_mesh.convert import strip_optional

    annotation = strip_optional(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return python_names(annotation, value)
    if get_origin(annotation) is list and isinstance(value, list):
        return [args_value(get_args(annotation)[0], element) for element in value]
    if get_origin(annotation) is dict and isinstance(value, dict):
        return {key: args_value(get_args(annotation)[1], item) for key, item in value.items()}
    return value


def stack_args(stack: str) -> dict[str, Any]:
    """`IstioMeshArgs` equal to `Pulumi.<stack>.yaml`'s config."""
    raw = raw_config_from_strings(load_stack_file(PROJECT_DIR / f"Pulumi.{stack}.yaml"))
    context = raw.pop("kubernetes_context", None)
    args = python_names(MeshConfig, raw)
    return args | ({"kubernetes_context": context} if context else {})


def run_args_program(tmp_path: Path, body: str, **kwargs: Any) -> ProgramRun:
    program = tmp_path / "__main__.py"
    program.write_text(textwrap.dedent(body))
    return run_program("dev", {}, program=program, **kwargs)


def declared(resources: list[Registered]) -> list[tuple[str, str | None, Any]]:
    return sorted((r.urn, r.parent, json.dumps(r.props, sort_keys=True)) for r in resources)


def test_istio_mesh_from_args_declares_what_the_dev_stack_declares(tmp_path: Path) -> None:
    (tmp_path / "args.json").write_text(json.dumps(stack_args("dev")))
    run = run_args_program(
        tmp_path,
        """
        import json
        from pathlib import Path
        from istio_mesh import IstioMesh

        IstioMesh("istio-mesh", json.loads((Path(__file__).parent / "args.json").read_text()))
        """,
    )
    assert declared(run.resources) == declared(stack_run("dev").resources)


def test_args_that_are_outputs_are_awaited_and_declare_the_same(tmp_path: Path) -> None:
    args = stack_args("dev")
    (tmp_path / "args.json").write_text(json.dumps(args))
    run = run_args_program(
        tmp_path,
        """
        import json
        from pathlib import Path
        import pulumi
        from istio_mesh import IstioMesh

        args = json.loads((Path(__file__).parent / "args.json").read_text())
        # As another resource's outputs arrive: a whole key, and a value deep inside.
        args["namespaces"] = pulumi.Output.from_input(args["namespaces"])
        first = args["istio"]["revisions"][0]
        first["version"] = pulumi.Output.secret(first["version"])
        IstioMesh("istio-mesh", args)
        """,
    )
    assert declared(run.resources) == declared(stack_run("dev").resources)


def test_bad_args_register_nothing_and_name_the_key(tmp_path: Path) -> None:
    registered: list[Registered] = []
    with pytest.raises(ConfigError) as raised:
        run_args_program(
            tmp_path,
            """
            from istio_mesh import IstioMesh

            IstioMesh("mesh", {
                "namespaces": [{"name": "shop"}],
                "services": [{"name": "reviews", "namespace": "shop", "port": 9080,
                              "versions": {"v1": {"weight": 80}, "v2": {"weight": 10}}}],
                "istio": {"outbound_traffic_policy": "NOPE"},
            })
            """,
            registered=registered,
        )
    paths = [problem.path for problem in raised.value.problems]
    assert "istio-mesh:istio.outboundTrafficPolicy" in paths
    assert registered == []


def test_an_unknown_arg_in_preview_fails_naming_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as raised:
        run_args_program(
            tmp_path,
            """
            import pulumi
            from pulumi.output import UNKNOWN
            from istio_mesh import IstioMesh

            # As the engine hands over a value in a preview, before its resource exists.
            unknown = pulumi.Output.from_input(UNKNOWN)
            IstioMesh("mesh", {"namespaces": [{"name": "shop", "revision": unknown}]})
            """,
            preview=True,
        )
    (problem,) = raised.value.problems
    assert problem.path == "istio-mesh:namespaces[0].revision"
    assert "unknown" in problem.message


def test_numbers_from_the_wire_become_the_integers_the_models_take() -> None:
    converted = to_config(MeshConfig, {"services": [{"port": 9080.0, "allow_from": []}]})
    assert converted == {"services": [{"port": 9080, "allowFrom": []}]}
    assert isinstance(converted["services"][0]["port"], int)


# -- the parts declare what the mesh declares for them -----------------------------------

SMALL_MESH = {
    "istio": {"revisions": [{"version": "1.30.5"}], "high_availability": True},
    "gateways": [
        {
            "name": "ingress",
            "servers": [{"hosts": ["shop.example.com"], "tls": {"credential_name": "shop-tls"}}],
        }
    ],
    "namespaces": [{"name": "shop"}],
    "services": [
        {
            "name": "reviews",
            "namespace": "shop",
            "port": 9080,
            "versions": {"v1": {"weight": 80}, "v2": {"weight": 20}},
            "retries": {"attempts": 3, "per_try_timeout": "2s"},
            "expose": {"gateway": "ingress", "host": "shop.example.com", "path_prefix": "/r"},
            "allow_from": [{"namespace": "shop", "service_account": "productpage"}],
        }
    ],
}


def objects(run: ProgramRun) -> dict[tuple[str, str], str]:
    """The Kubernetes objects and Helm releases declared, by (type, name): their inputs."""
    return {
        (r.type, r.name): json.dumps(r.props, sort_keys=True)
        for r in run.resources
        if r.custom and r.type.startswith("kubernetes:")
    }


def test_the_parts_declare_what_istio_mesh_declares_for_them(tmp_path: Path) -> None:
    whole = tmp_path / "whole"
    parts = tmp_path / "parts"
    for folder in (whole, parts):
        folder.mkdir()
        (folder / "mesh.json").write_text(json.dumps(SMALL_MESH))
    mesh_run = run_args_program(
        whole,
        """
        import json
        from pathlib import Path
        from istio_mesh import IstioMesh

        IstioMesh("istio-mesh", json.loads((Path(__file__).parent / "mesh.json").read_text()))
        """,
    )
    parts_run = run_args_program(
        parts,
        """
        import json
        from pathlib import Path
        import pulumi
        import pulumi_kubernetes as k8s
        from istio_mesh import ControlPlane, Gateway, MeshNamespace, Services

        mesh = json.loads((Path(__file__).parent / "mesh.json").read_text())
        istio = mesh["istio"]
        cluster = pulumi.ResourceOptions(providers=[k8s.Provider("kubernetes")])
        control_plane = ControlPlane("istio", {"istio": istio}, cluster)
        after = pulumi.ResourceOptions.merge(
            cluster, pulumi.ResourceOptions(depends_on=[control_plane])
        )
        Gateway("gateway-ingress", {"gateway": mesh["gateways"][0], "istio": istio}, after)
        MeshNamespace(
            "namespace-shop",
            {"namespace": mesh["namespaces"][0], "istio": istio,
             "peers": ["istio-ingress", "shop"]},
            after,
        )
        Services(
            "services-shop",
            {"namespace": mesh["namespaces"][0], "services": mesh["services"],
             "gateways": mesh["gateways"], "istio": istio},
            after,
        )
        """,
    )
    declared_by_parts = objects(parts_run)
    declared_by_mesh = objects(mesh_run)
    assert len(declared_by_parts) > 20
    differing = {
        key for key, props in declared_by_parts.items() if declared_by_mesh.get(key) != props
    }
    assert differing == set()
    # What only the mesh declares is what no part covers: its observability.
    only_mesh = {name for (_, name) in declared_by_mesh.keys() - declared_by_parts.keys()}
    assert only_mesh and all(name.startswith("observability-") for name in only_mesh)


def test_a_part_reports_a_problem_at_its_args_path(tmp_path: Path) -> None:
    registered: list[Registered] = []
    with pytest.raises(ConfigError) as raised:
        run_args_program(
            tmp_path,
            """
            from istio_mesh import Gateway

            Gateway("gateway-ingress", {"gateway": {"name": "ingress", "servers": [
                {"hosts": ["*"], "tls": {"credential_name": "t"}}]}})
            """,
            registered=registered,
        )
    assert [problem.path for problem in raised.value.problems] == ["gateway.servers[0].hosts"]
    assert registered == []


def test_maps_are_taken_in_key_order_whatever_order_they_arrive_in() -> None:
    """The engine's wire keeps no map order: a YAML or TypeScript program's `versions`
    may arrive v2 first; the route's destinations must not follow that."""
    written = {"services": [{"versions": {"v2": {"weight": 20}, "v1": {"weight": 80}}}]}
    converted = to_config(MeshConfig, written)
    assert list(converted["services"][0]["versions"]) == ["v1", "v2"]


def test_numbers_are_integers_inside_optional_and_annotated_fields_too() -> None:
    """`retries` is `Retries | None`, `allowFrom[].ports` a list of `Annotated[int, ...]`
    and `istio.revisions` an `Annotated[list[Revision], ...]`: the conversion sees
    through both wrappers to the ints and models inside (the models accept either name,
    but a strict model refuses 3.0 for 3)."""
    written = {
        "istio": {"revisions": [{"version": "1.30.5", "compatibility_version": "1.29"}]},
        "services": [
            {
                "retries": {"attempts": 3.0, "per_try_timeout": "2s"},
                "allow_from": [{"namespace": "shop", "ports": [9080.0, 15008.0]}],
            }
        ],
    }
    converted = to_config(MeshConfig, written)
    assert converted == {
        "istio": {"revisions": [{"version": "1.30.5", "compatibilityVersion": "1.29"}]},
        "services": [
            {
                "retries": {"attempts": 3, "perTryTimeout": "2s"},
                "allowFrom": [{"namespace": "shop", "ports": [9080, 15008]}],
            }
        ],
    }
    retries = converted["services"][0]["retries"]
    ports = converted["services"][0]["allowFrom"][0]["ports"]
    assert isinstance(retries["attempts"], int) and all(isinstance(p, int) for p in ports)


def test_a_union_of_several_types_is_left_as_it_is() -> None:
    from istio_mesh.convert import strip_optional

    assert strip_optional(int | str) == int | str
    assert strip_optional(int | str | None) == int | str | None
    assert strip_optional(int | None) is int


def test_what_does_not_fit_the_models_is_left_for_them_to_report() -> None:
    # A string where a list goes, a list where a string goes, an unknown key beside a
    # known one: unchanged (the models name each problem at its path), never a crash.
    assert to_config(MeshConfig, {"namespaces": "shop"}) == {"namespaces": "shop"}
    assert to_config(MeshConfig, {"istio": {"dataplane": ["x"]}}) == {"istio": {"dataplane": ["x"]}}
    assert to_config(MeshConfig, {"istio": {"tags": "stable", "dataplane": {"a": 1}}}) == {
        "istio": {"tags": "stable", "dataplane": {"a": 1}}
    }
    assert to_config(MeshConfig, {"istio": {"nope": 1, "high_availability": True}}) == {
        "istio": {"nope": 1, "highAvailability": True}
    }


def test_an_output_anywhere_in_the_args_is_found() -> None:
    import asyncio

    from pulumi.output import Output

    from istio_mesh.convert import has_outputs

    async def later() -> str:
        return "1.30.5"

    loop = asyncio.new_event_loop()  # an Output is made on one, as in a program
    try:
        asyncio.set_event_loop(loop)
        assert has_outputs({"namespaces": [{"name": "shop"}, {"name": Output.from_input("x")}]})
        assert has_outputs([1, Output.from_input(2)])
    finally:
        asyncio.set_event_loop(None)
        loop.close()
    awaitable = later()
    assert has_outputs({"istio": {"revisions": [{"version": awaitable}]}})
    assert has_outputs(["shop", awaitable])
    awaitable.close()
    assert not has_outputs({"namespaces": [{"name": "shop", "labels": {"team": "a"}}]})


def test_an_unknown_value_is_named_by_its_config_path() -> None:
    from pulumi.output import UNKNOWN

    from istio_mesh.convert import unknown_error

    args = {"namespaces": [{"name": "shop", "labels": {"istio-mesh.io/team": UNKNOWN}}]}
    error = unknown_error(to_config(MeshConfig, args), "IstioMesh")
    assert error is not None
    assert [problem.path for problem in error.problems] == [
        "istio-mesh:namespaces[0].labels.istio-mesh.io/team"
    ]
    assert unknown_error(to_config(MeshConfig, {"namespaces": [{"name": "shop"}]}), "X") is None
