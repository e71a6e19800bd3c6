"""Run the project's `__main__.py` under Pulumi mocks and record what it declares.

This is how every offline command (render, check, graph, bench) and the tests see a
stack without a Pulumi CLI or a cluster: the real program runs with exactly the config
of a `Pulumi.<stack>.yaml`, against a mock resource monitor that records each
registration as the engine would receive it (type, name, parent, options, and the
properties in Pulumi's wire form, so secrets stay marked as secrets).
"""

from __future__ import annotations

import asyncio
import contextvars
import gc
import json
import runpy
import sys
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import yaml
from google.protobuf import json_format, struct_pb2
from pulumi.runtime import mocks, settings
from pulumi.runtime.settings import get_project, get_stack
from pulumi.runtime.stack import run_in_stack

from components.service_files import load_yaml, read_text_file
from mesh import tls_mock
from mesh.engine_view import RELEASE_CHECK_DROPS, RELEASE_TYPE

PROJECT_DIR = Path(__file__).resolve().parent.parent
PROJECT = "istio-mesh"
SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"
SIG_KEY = "4dabf18193072939515e22adb298388d"
STACK_TYPE = "pulumi:pulumi:Stack"
STACK_REFERENCE_TYPE = "pulumi:pulumi:StackReference"
SELF_MANAGED_ORGANIZATION = "organization"
"""What `pulumi.get_organization()` is on a self-managed (file or object store) backend;
on Pulumi Cloud it is the stack's organization."""
RANDOM_PASSWORD_TYPE = "random:index/randomPassword:RandomPassword"


class StackFileError(Exception):
    """A stack file that cannot be read; not a config problem of the program's."""


@dataclass
class Registered:
    """One resource as the engine would receive it."""

    type: str
    name: str
    urn: str
    parent: str | None
    custom: bool
    props: dict[str, Any]
    """Inputs in wire form: secrets as `{SIG_KEY: SECRET_SIG, "value": ...}`."""
    provider: str | None = None
    depends_on: list[str] = field(default_factory=list)
    protect: bool = False
    retain_on_delete: bool = False
    aliases: list[str] = field(default_factory=list)


@dataclass
class ProgramRun:
    """What one run of the program declared."""

    stack: str
    resources: list[Registered]
    outputs: dict[str, Any]
    """Stack outputs in wire form."""
    component_outputs: dict[str, Any] = field(default_factory=dict)
    """What each component registered as its outputs (`register_outputs`), by URN."""

    def of_type(self, type_: str) -> list[Registered]:
        return [r for r in self.resources if r.type == type_]

    def manifests(self) -> list[dict[str, Any]]:
        """Every Kubernetes object declared, as `kubectl apply` would take it."""
        return [manifest for r in self.resources if (manifest := kubernetes_manifest(r))]

    def by_urn(self) -> dict[str, Registered]:
        return {r.urn: r for r in self.resources}


def kubernetes_manifest(resource: Registered) -> dict[str, Any] | None:
    """The manifest of a Kubernetes object resource; None for Helm releases and others."""
    if not resource.type.startswith("kubernetes:") or resource.type.startswith(
        ("kubernetes:helm.sh/", "pulumi:providers:")
    ):
        return None
    _, api_version, kind = resource.type.split(":")
    api_version = api_version.removeprefix("core/")
    manifest = {"apiVersion": api_version, "kind": kind}
    manifest |= {k: v for k, v in resource.props.items() if k not in ("apiVersion", "kind")}
    return manifest


def _integral(value: Any) -> Any:
    """Protobuf carries every number as a double; give whole numbers back their int type."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {key: _integral(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_integral(item) for item in value]
    return value


def _wire(struct: Any) -> dict[str, Any]:
    """Properties as the engine receives them (secret and unknown markers included)."""
    return _integral(json_format.MessageToDict(struct)) if struct is not None else {}


def engine_urn(stack: str, project: str, parent: str, type_: str, name: str) -> str:
    """`urn:pulumi:<stack>::<project>::<parent types>$<type>::<name>`, as the engine
    builds it (a child of the root stack has no parent types)."""
    if parent:
        parent_type = parent.split("::")[2]
        if parent_type != STACK_TYPE:
            type_ = f"{parent_type}${type_}"
    return f"urn:pulumi:{stack}::{project}::{type_}::{name}"


def _alias_urns(request: Any) -> list[str]:
    """The URNs a registration's aliases stand for, resolved as the engine resolves
    alias specs (unset fields default to the resource's own)."""
    urns = list(request.aliasURNs)
    for alias in request.aliases:
        if alias.urn:
            urns.append(alias.urn)
            continue
        spec = alias.spec
        parent = "" if spec.noParent else spec.parentUrn or request.parent
        urns.append(
            engine_urn(
                spec.stack or get_stack(),
                spec.project or get_project(),
                parent,
                spec.type or request.type,
                spec.name or request.name,
            )
        )
    return urns


class _RecordingMonitor(mocks.MockMonitor):
    """The SDK's mock monitor, also keeping every registration's options."""

    def __init__(self, mock: mocks.Mocks, registered: list[Registered]) -> None:
        super().__init__(mock)
        self.registered = registered
        self.stack_outputs: dict[str, Any] = {}
        self.component_outputs: dict[str, Any] = {}
        self.thread_loops: list[asyncio.AbstractEventLoop] = []
        """Event loops made for the executor threads the monitor's calls run in."""
        self._default_providers: set[str] = set()
        self._providers_lock = threading.Lock()

    def _thread_loop(self) -> None:
        """Give this executor thread its event loop before the SDK's mock makes one
        (it needs one to deserialize resource references), and keep it to be closed
        with the run: a loop left to the garbage collector complains when its
        self-pipe was collected first."""
        try:
            asyncio.get_event_loop()
        except RuntimeError:
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            self.thread_loops.append(loop)

    def make_urn(self, parent: str, type_: str, name: str) -> str:
        """The URN the engine gives a resource: its type qualified by all its parents'
        types but the root stack's. (The SDK's mock keeps only the direct parent's
        last type and includes the stack's.) Snapshots and aliases name these URNs,
        the ones `pulumi stack --show-urns` prints."""
        return engine_urn(get_stack(), get_project(), parent, type_, name)

    def Invoke(self, request: Any) -> Any:
        self._thread_loop()
        return super().Invoke(request)

    def RegisterResource(self, request: Any) -> Any:
        self._thread_loop()
        response = super().RegisterResource(request)
        _mark_secret_outputs(response.object, request.additionalSecretOutputs)
        if request.type != STACK_TYPE:
            self._record(
                request,
                response.urn,
                custom=request.custom,
                props=checked_inputs(request.type, _wire(request.object)),
                protect=request.protect,
                retain_on_delete=request.retainOnDelete,
                aliases=_alias_urns(request),
            )
        return response

    def ReadResource(self, request: Any) -> Any:
        self._thread_loop()
        response = super().ReadResource(request)
        self._record(request, response.urn, custom=True, props=_wire(request.properties))
        return response

    def _record(self, request: Any, urn: str, **fields: Any) -> None:
        """Keep a registration or read: what both requests say alike, plus `fields`."""
        if fields.get("custom") and not request.provider:
            self._default_provider(request)
        self.registered.append(
            Registered(
                type=request.type,
                name=request.name,
                urn=urn,
                parent=request.parent or None,
                provider=request.provider or None,
                depends_on=list(request.dependencies),
                **fields,
            )
        )

    def _default_provider(self, request: Any) -> None:
        """The engine gives a custom resource registered without a provider its package's
        default provider (`pulumi:providers:<package>::default[_<version>]`, made once per
        stack): the e2e tier found the harness missing the one a StackReference uses."""
        package = request.type.split(":", 1)[0]
        if package == "pulumi" and request.type.startswith("pulumi:providers:"):
            return
        version = getattr(request, "version", "")
        name = (
            "default"
            if package == "pulumi" or not version
            else ("default_" + version.replace(".", "_").replace("-", "_"))
        )
        urn = engine_urn(get_stack(), get_project(), "", f"pulumi:providers:{package}", name)
        with self._providers_lock:  # registrations arrive on several threads
            if urn in self._default_providers:
                return
            self._default_providers.add(urn)
        self.registered.append(
            Registered(
                type=f"pulumi:providers:{package}",
                name=name,
                urn=urn,
                parent=None,
                custom=True,
                props={"version": version} if version else {},
            )
        )

    def RegisterResourceOutputs(self, request: Any) -> Any:
        # `set_mocks` registers a root stack of its own, with the same URN and no
        # outputs, and the monitor's calls run on several threads: its empty outputs
        # can arrive after the program's. Only the program's stack exports anything.
        if request.urn.split("::")[2] != STACK_TYPE:
            self.component_outputs[request.urn] = _wire(request.outputs)
        elif request.outputs.fields:
            self.stack_outputs = _wire(request.outputs)
        return super().RegisterResourceOutputs(request)


def _mark_secret_outputs(outputs: Any, names: Any) -> None:
    """Wrap the outputs a registration lists in `additionalSecretOutputs` as secrets, as
    the engine does: the TLS provider's SDK asks for its private keys this way, and the
    SDK's mock monitor leaves it to the engine, so a generated key would otherwise come
    back in plain text."""
    for name in names:
        if name not in outputs.fields or _is_secret(outputs.fields[name]):
            continue
        value = struct_pb2.Value()
        value.CopyFrom(outputs.fields[name])
        wrapper = outputs.fields[name].struct_value
        wrapper.Clear()
        wrapper.fields[SIG_KEY].string_value = SECRET_SIG
        wrapper.fields["value"].CopyFrom(value)


def _is_secret(value: Any) -> bool:
    fields = value.struct_value.fields if value.HasField("struct_value") else {}
    return SIG_KEY in fields and fields[SIG_KEY].string_value == SECRET_SIG


def is_wire_secret(value: Any) -> bool:
    """Whether `value` (wire form, as `Registered.props` hold it) is a secret's wrapper."""
    return isinstance(value, dict) and value.get(SIG_KEY) == SECRET_SIG


def unwrap_secret(value: Any) -> Any:
    """A wire value with its secret wrapper (if any) taken off."""
    return value["value"] if is_wire_secret(value) else value


def _unwrap_secrets(value: Any) -> Any:
    """Inputs as a provider sees them: secret wrappers removed."""
    if is_wire_secret(value):
        return _unwrap_secrets(value.get("value"))
    if isinstance(value, dict):
        return {key: _unwrap_secrets(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_unwrap_secrets(item) for item in value]
    return value


CHECKED_AWAY: dict[str, tuple[str, ...]] = {RELEASE_TYPE: RELEASE_CHECK_DROPS}
"""Inputs a provider's Check drops before the engine stores them and a policy pack sees
them. The e2e tier found these: the Helm Release provider decodes its inputs into a
struct of its own, which has no `compat` (an SDK marker)."""


def checked_inputs(type_: str, props: dict[str, Any]) -> dict[str, Any]:
    """`props` as the provider's Check hands them back to the engine."""
    dropped = CHECKED_AWAY.get(type_, ())
    return {key: value for key, value in props.items() if key not in dropped}


class _Mocks(mocks.Mocks):
    """Resources echo their inputs; stack references read exported stack files."""

    def __init__(self, references: Mapping[str, dict[str, Any]]) -> None:
        self.references = references

    def new_resource(self, args: mocks.MockResourceArgs) -> tuple[str | None, dict]:
        if args.typ == STACK_REFERENCE_TYPE:
            name = args.inputs.get("name", args.name)
            outputs = resolve_reference(self.references, name)
            return name, {"name": name, "outputs": outputs or {}, "secretOutputNames": []}
        state = dict(args.inputs)
        if args.typ == RANDOM_PASSWORD_TYPE:
            # The provider generates `result`; a fixed stand-in keeps renders repeatable.
            state["result"] = f"mock-{args.name}-password"
        if args.typ in tls_mock.MAKERS:
            # Keys and certificates made for real, repeatably (mesh/tls_mock.py).
            state |= tls_mock.MAKERS[args.typ](args.name, _unwrap_secrets(args.inputs))
        return f"{args.name}-id", state

    def call(self, args: mocks.MockCallArgs) -> tuple[dict, list[tuple[str, str]] | None]:
        return {}, None


def resolve_reference(references: Mapping[str, dict[str, Any]], name: str) -> dict[str, Any] | None:
    """Outputs of the stack `name` (`org/project/stack`, `project/stack` or `stack`)."""
    for candidate in (name, *(name.split("/", i)[-1] for i in (1, 2))):
        if candidate in references:
            return references[candidate]
    return None


def _config_text(value: Any) -> str:
    """A config value as the CLI hands it to a program: strings as they are, the rest JSON."""
    return value if isinstance(value, str) else json.dumps(value)


def project_config_defaults(project_file: Path = PROJECT_DIR / "Pulumi.yaml") -> dict[str, str]:
    """The `default` of every key Pulumi.yaml declares, and the project-wide `value` of
    other namespaces' keys, by full key (`istio-mesh:istio`, `pulumi:...`).

    The CLI gives a stack that omits a declared key that key's default before the
    program starts (and refuses a stack that omits one without a default).
    """
    document = _read_yaml(project_file) or {}
    declared = document.get("config") or {}
    defaults = {}
    for key, declaration in declared.items():
        if not isinstance(declaration, dict):
            continue
        # A project key declares a `default`; another namespace's key (`pulumi:...`)
        # can only be given a project-wide `value`.
        given = declaration.get("default", declaration.get("value"))
        if given is not None:
            defaults[key if ":" in key else f"{PROJECT}:{key}"] = _config_text(given)
    return defaults


def _read_yaml(path: Path) -> Any:
    """A Pulumi.yaml or stack file, as strictly as the Pulumi CLI reads it: UTF-8 text,
    no key written twice in a mapping; `StackFileError` saying what is wrong and where."""
    try:
        return load_yaml(read_text_file(path))
    except FileNotFoundError:
        raise StackFileError(f"{path}: no such file") from None
    except OSError as error:
        raise StackFileError(f"{path}: {error.strerror or error}") from None
    except ValueError as error:  # not UTF-8
        raise StackFileError(str(error)) from None
    except yaml.YAMLError as error:
        raise StackFileError(f"{path}: not valid YAML: {error}") from None


def load_stack_file(path: Path) -> dict[str, str]:
    """A `Pulumi.<stack>.yaml` file's config, as the Pulumi CLI hands it to a program:
    every value a string, structured values as JSON, and the project's default for
    each declared key the file does not set."""
    document = _read_yaml(path) or {}
    if not isinstance(document, dict):
        raise StackFileError(f"{path}: not a Pulumi stack file (expected a mapping)")
    config = document.get("config") or {}
    if not isinstance(config, dict):
        raise StackFileError(f"{path}: `config` must be a mapping")
    return {
        **project_config_defaults(),
        **{key: _config_text(value) for key, value in config.items()},
    }


def load_exported_outputs(path: Path) -> dict[str, Any]:
    """The root stack's outputs in a `pulumi stack export` file."""
    try:
        document = json.loads(path.read_text())
        resources = document["deployment"].get("resources") or []
    except (OSError, ValueError, KeyError, AttributeError, TypeError) as error:
        raise StackFileError(f"{path}: not a `pulumi stack export` file ({error})") from None
    for resource in resources:
        if resource.get("type") == STACK_TYPE:
            return dict(resource.get("outputs") or {})
    raise StackFileError(f"{path}: the export holds no stack resource")


def _run_path(program: Path) -> None:
    runpy.run_path(str(program), run_name="__main__")


def stack_name(path: Path) -> str:
    """`Pulumi.prod.yaml` -> `prod`: the stack a stack file is for."""
    return path.name.removeprefix("Pulumi.").removesuffix(".yaml")


def stack_file_for(stack: str) -> Path:
    """`Pulumi.<stack>.yaml` of the project; `StackFileError` listing the stacks there
    when it does not exist."""
    path = PROJECT_DIR / f"Pulumi.{stack}.yaml"
    if not path.exists():
        known = sorted(
            p.name.removeprefix("Pulumi.").removesuffix(".yaml")
            for p in PROJECT_DIR.glob("Pulumi.*.yaml")
        )
        raise StackFileError(
            f"no stack {stack!r}: {path.name} is not in {PROJECT_DIR} "
            f"(stacks: {', '.join(known) or 'none'})"
        )
    return path


def forget_pending_outputs() -> None:
    """Drop the outputs the SDK waits for before a program ends. It keeps them in one
    set for the whole process, not per run: a run that failed leaves its tasks there,
    bound to its closed loop, and the next run on a new loop would wait for them
    ("Event loop is closed"). Call it after `set_mocks`, before a run declares."""
    settings.SETTINGS.outputs.clear()


def run_program(
    stack: str,
    config: Mapping[str, str],
    references: Mapping[str, dict[str, Any]] | None = None,
    program: Path | None = None,
    preview: bool = False,
    registered: list[Registered] | None = None,
    secret_keys: Sequence[str] = (),
) -> ProgramRun:
    """Run `program` (the project's `__main__.py`) as stack `stack` with `config`.

    `secret_keys` are the config keys the CLI would hand over as secrets (those whose
    stack-file value holds a `secure:` one), their values in `config` decrypted.

    Exceptions of the program (a `ConfigError` above all) propagate unchanged. Each
    run gets a fresh event loop and a fresh copy of Pulumi's runtime settings, so runs
    do not leak into each other. Pass `registered` to see what a failed run registered.
    The program may tune its process's garbage collector (ours does, as a real preview's
    process is its own: `components/process.py`); each run gives the setting back, as
    the tests, render and check run many programs in one process.
    """
    program = program or PROJECT_DIR / "__main__.py"
    mock = _Mocks(references or {})
    monitor = _RecordingMonitor(mock, registered if registered is not None else [])

    def run() -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            mocks.set_mocks(
                mock,
                project=PROJECT,
                stack=stack,
                preview=preview,
                monitor=monitor,
                organization=SELF_MANAGED_ORGANIZATION,
            )
            # set_mocks creates and finishes a root stack of its own; the program's
            # stack (the one whose outputs we record) is created by run_in_stack.
            settings.ROOT.set(None)
            forget_pending_outputs()
            # The language host tells a program its project directory, the one holding
            # Pulumi.yaml (`pulumi.get_root_directory()`; relative `serviceFiles` resolve
            # against it); set_mocks does not. Here it is the program's directory. Like
            # every setting, it lives in this run's own context.
            settings.SETTINGS.root_directory = str(program.parent)
            pulumi.runtime.set_all_config(dict(config), list(secret_keys))
            added = str(program.parent) not in sys.path
            if added:
                sys.path.insert(0, str(program.parent))
            try:
                loop.run_until_complete(run_in_stack(lambda: _run_path(program)))
            finally:
                if added:
                    sys.path.remove(str(program.parent))
        finally:
            asyncio.set_event_loop(None)
            loop.close()  # also joins the executor threads the mock monitor ran in
            for thread_loop in monitor.thread_loops:
                thread_loop.close()

    collector = gc.get_threshold()
    try:
        contextvars.Context().run(run)
    finally:
        gc.set_threshold(*collector)
    return ProgramRun(
        stack=stack,
        resources=monitor.registered,
        outputs=monitor.stack_outputs,
        component_outputs=monitor.component_outputs,
    )


def run_stack(
    stack: str | None = None,
    stack_file: Path | None = None,
    references: Mapping[str, Path] | None = None,
    outputs: Mapping[str, dict[str, Any]] | None = None,
) -> ProgramRun:
    """Run the program for a named stack (`Pulumi.<stack>.yaml`) or a stack file.

    `references` maps a stack name (as in `promotion.fromStack`, or its last segment)
    to a `pulumi stack export` file that a `StackReference` to it reads; `outputs` maps
    a stack name to outputs already at hand (another run's), the files winning.
    """
    if stack_file is None:
        if stack is None:
            raise ValueError("name a stack or a stack file")
        stack_file = stack_file_for(stack)
    name = stack or stack_name(stack_file)
    read = {key: load_exported_outputs(path) for key, path in (references or {}).items()}
    return run_program(name, load_stack_file(stack_file), {**(outputs or {}), **read})
