"""Drive a CrossGuard policy pack over its gRPC protocol, the way the Pulumi CLI does.

The CLI starts a Python pack as `python -u -m pulumi.policy ENGINE_ADDRESS PACK_DIR`
in the pack directory, with PULUMI_PROJECT, PULUMI_STACK, PULUMI_DRY_RUN and
PULUMI_CONFIG in the environment, reads the port the pack prints on stdout and talks
to it as an `Analyzer`: GetAnalyzerInfo, Configure (the reconciled policy config),
ConfigureStack, then Remediate and Analyze per resource, one resource at a time, and
AnalyzeStack once with the whole stack. `PolicyPackProcess` does exactly that, so
`python -m mesh check`, the tests and the benchmark judge resources with the same pack
`pulumi preview --policy-pack` would run.

How the engine calls a pack (pulumi/pulumi `pkg/resource/deploy/step_generator.go`):
the step generator handles one resource registration at a time, and for each one calls
every pack's Remediate, then every pack's Analyze, and waits for each answer before it
moves on. A pack therefore never has two resource calls in flight, whatever its server's
thread pool; providers are registered, and analyzed, like any other resource.

The engine address: `pulumi.policy` (pulumi 3.x, pulumi-policy 1.x) parses it but
never dials it (its runtime settings carry no engine, so a pack's `pulumi.log` calls
go to stderr). A placeholder is passed; no engine service is needed.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import grpc
from google.protobuf import empty_pb2, json_format, struct_pb2
from pulumi.runtime.proto import analyzer_pb2, analyzer_pb2_grpc

from mesh.engine_view import checked_inputs, live_outputs

PACK_DIR = Path(__file__).resolve().parent.parent / "policies"
"""The project's policy pack."""

PROJECT = "istio-mesh"
ENGINE_PLACEHOLDER = "127.0.0.1:0"
"""Handed to the pack as ENGINE_ADDRESS; `pulumi.policy` does not connect to it."""

START_TIMEOUT = 60.0
"""Seconds to wait for the pack to print its port (first start compiles bytecode)."""

_MAX_MESSAGE = 400 * 1024 * 1024  # the limit pulumi-policy itself sets on its server
_CHANNEL_OPTIONS = [
    ("grpc.max_receive_message_length", _MAX_MESSAGE),
    ("grpc.max_send_message_length", _MAX_MESSAGE),
]

LEVELS = {
    "advisory": analyzer_pb2.ADVISORY,
    "mandatory": analyzer_pb2.MANDATORY,
    "remediate": analyzer_pb2.REMEDIATE,
    "disabled": analyzer_pb2.DISABLED,
}
LEVEL_NAMES = {number: name for name, number in LEVELS.items()}


class PolicyPackError(Exception):
    """The pack could not be started or configured (bad pack, bad policy config)."""


@dataclass(frozen=True)
class PolicyResource:
    """One resource as the engine describes it to a policy pack."""

    type: str
    """Pulumi type token: `kubernetes:networking.istio.io/v1:VirtualService`."""
    name: str
    """Logical name."""
    urn: str
    props: Mapping[str, Any]
    """Inputs in Pulumi's wire form (secrets and unknown sentinels as the engine sends them)."""
    parent: str | None = None
    dependencies: Sequence[str] = ()
    provider: str | None = None
    """Provider reference `URN::ID`."""
    protect: bool = False
    label: str = ""
    """How reports name the resource; the URN when empty."""

    @property
    def display(self) -> str:
        return self.label or self.urn


@dataclass(frozen=True)
class Diagnostic:
    """One violation as the pack reports it."""

    policy: str
    enforcement: str
    """`advisory`, `mandatory`, ... (the level after the policy config is applied)."""
    urn: str
    """The resource's URN; "" for a violation of the stack as a whole."""
    message: str
    """What is wrong with this resource (the description is not repeated)."""
    description: str
    """The policy's description: what it requires and how to fix it."""


@dataclass
class PolicyInfo:
    """What GetAnalyzerInfo says about one policy."""

    name: str
    description: str
    enforcement: str
    stack_policy: bool
    config_schema: dict[str, Any] = field(default_factory=dict)
    required: list[str] = field(default_factory=list)


def _struct(value: Mapping[str, Any]) -> struct_pb2.Struct:
    struct = struct_pb2.Struct()
    struct.update(dict(value))
    return struct


class _Wire:
    """The protobuf messages for one set of resources, each property Struct built once.

    Converting a resource's properties to a `Struct` is the client's main cost. Every
    resource's properties go out three times (Remediate, Analyze, AnalyzeStack) and
    one provider's with nearly every resource, so each is converted once and copied
    into the requests (a copy of a built message is cheap).
    """

    def __init__(self, resources: Sequence[PolicyResource], engine_view: bool = False) -> None:
        self.by_urn = {resource.urn: resource for resource in resources}
        self.engine_view = engine_view
        # Keyed by object identity: the resources outlive this cache, and a URN could
        # in principle be shared by two inputs (check's manifests keep them apart).
        self._structs: dict[int, struct_pb2.Struct] = {}
        self._outputs: dict[int, struct_pb2.Struct] = {}

    def properties(self, resource: PolicyResource) -> struct_pb2.Struct:
        """What Analyze gets: the inputs (in the engine view, after the provider's Check)."""
        struct = self._structs.get(id(resource))
        if struct is None:
            props = resource.props
            if self.engine_view:
                props = checked_inputs(resource.type, props)
            struct = self._structs[id(resource)] = _struct(props)
        return struct

    def outputs(self, resource: PolicyResource) -> struct_pb2.Struct:
        """What AnalyzeStack gets: the inputs, or in the engine view the live outputs."""
        if not self.engine_view:
            return self.properties(resource)
        struct = self._outputs.get(id(resource))
        if struct is None:
            props = live_outputs(resource.type, resource.name, resource.props)
            struct = self._outputs[id(resource)] = _struct(props)
        return struct

    def provider(self, resource: PolicyResource) -> analyzer_pb2.AnalyzerProviderResource | None:
        if not resource.provider:
            return None
        urn = resource.provider.rsplit("::", 1)[0]
        provider = self.by_urn.get(urn)
        if provider is None:
            return None
        return analyzer_pb2.AnalyzerProviderResource(
            type=provider.type, properties=self.properties(provider), urn=urn, name=provider.name
        )

    def _described(self, resource: PolicyResource) -> dict[str, Any]:
        """The fields an `AnalyzeRequest` and a stack's `AnalyzerResource` share."""
        return {
            "type": resource.type,
            "properties": self.properties(resource),
            "urn": resource.urn,
            "name": resource.name,
            "options": _options(resource),
            "provider": self.provider(resource),
        }

    def analyze_request(self, resource: PolicyResource) -> analyzer_pb2.AnalyzeRequest:
        """What the engine sends to Remediate and Analyze for one resource (its inputs)."""
        return analyzer_pb2.AnalyzeRequest(**self._described(resource))

    def stack_request(
        self, resources: Sequence[PolicyResource]
    ) -> analyzer_pb2.AnalyzeStackRequest:
        """What the engine sends to AnalyzeStack: every resource, with its relations."""
        return analyzer_pb2.AnalyzeStackRequest(
            resources=[
                analyzer_pb2.AnalyzerResource(
                    **{**self._described(resource), "properties": self.outputs(resource)},
                    parent=resource.parent or "",
                    dependencies=list(resource.dependencies),
                )
                for resource in resources
            ]
        )


class Preview:
    """Every request one preview sends the pack, built before the first is sent.

    The engine builds each request (in Go) as the registration arrives; building them
    all here first keeps the Python client's own protobuf work apart from the calls,
    so a timed `PolicyPackProcess.send` is the pack's answering time plus the gRPC
    round trips. A preview is used once: remediations rewrite its requests.
    """

    def __init__(self, resources: Sequence[PolicyResource], engine_view: bool = False) -> None:
        """`engine_view`: present checked inputs and live outputs, as a real preview does
        (mesh/engine_view.py); otherwise the declared inputs throughout."""
        wire = _Wire(resources, engine_view)
        self.resources = list(resources)
        self.requests = [wire.analyze_request(resource) for resource in self.resources]
        self.stack = wire.stack_request(self.resources)

    def remediate(self, index: int, properties: struct_pb2.Struct) -> None:
        """Use remediated properties for the rest of this preview, as the engine does.

        They replace the resource's inputs in its own requests and, if it is a provider,
        in the provider part of the requests still to be sent.
        """
        urn = self.resources[index].urn
        self.requests[index].properties.CopyFrom(properties)
        self.stack.resources[index].properties.CopyFrom(properties)
        for later in (*self.requests[index + 1 :], *self.stack.resources):
            if later.HasField("provider") and later.provider.urn == urn:
                later.provider.properties.CopyFrom(properties)


def reconcile_policy_config(
    policies: Sequence[PolicyInfo], config: Mapping[str, Any] | None
) -> dict[str, tuple[str, dict[str, Any]]]:
    """Each policy's (enforcement level, properties), as the CLI computes them.

    Start from the pack's levels and the schema defaults, apply `all` (a level for
    every policy), then each policy's own entry: a level string, or an object with an
    optional `enforcementLevel` and properties. Properties are validated against the
    policy's config schema. This is the `--policy-pack-config` file format.
    """
    config = dict(config or {})
    known = {policy.name: policy for policy in policies}
    unknown = sorted(set(config) - set(known) - {"all"})
    if unknown:
        raise PolicyPackError(f"policy config names unknown policies: {', '.join(unknown)}")
    result: dict[str, tuple[str, dict[str, Any]]] = {}
    for policy in policies:
        level = policy.enforcement
        props = {
            key: schema["default"]
            for key, schema in policy.config_schema.items()
            if isinstance(schema, dict) and "default" in schema
        }
        for entry in (config.get("all"), config.get(policy.name)):
            if isinstance(entry, str):
                level = entry
            elif isinstance(entry, dict):
                level = entry.get("enforcementLevel", level)
                props.update({k: v for k, v in entry.items() if k != "enforcementLevel"})
            elif entry is not None:
                raise PolicyPackError(
                    f"policy config for {policy.name}: expected a level or object"
                )
        if level not in LEVELS:
            raise PolicyPackError(
                f"policy config for {policy.name}: unknown enforcement level {level!r} "
                f"(one of {', '.join(LEVELS)})"
            )
        _validate_properties(policy, props)
        result[policy.name] = (level, props)
    return result


def policy_infos(info: analyzer_pb2.AnalyzerInfo) -> list[PolicyInfo]:
    """The policies a GetAnalyzerInfo answer lists."""
    return [
        PolicyInfo(
            name=policy.name,
            description=policy.description,
            enforcement=LEVEL_NAMES.get(policy.enforcementLevel, "advisory"),
            stack_policy=policy.policy_type == analyzer_pb2.POLICY_TYPE_STACK,
            config_schema=json_format.MessageToDict(policy.configSchema.properties),
            required=list(policy.configSchema.required),
        )
        for policy in info.policies
    ]


def configure_request(
    policies: Sequence[PolicyInfo], policy_config: Mapping[str, Any] | None
) -> analyzer_pb2.ConfigureAnalyzerRequest:
    """What the CLI sends to Configure for a `--policy-pack-config` file's contents."""
    return analyzer_pb2.ConfigureAnalyzerRequest(
        policyConfig={
            name: analyzer_pb2.PolicyConfig(
                enforcementLevel=LEVELS[level], properties=_struct(props)
            )
            for name, (level, props) in reconcile_policy_config(policies, policy_config).items()
        }
    )


def _validate_properties(policy: PolicyInfo, props: Mapping[str, Any]) -> None:
    try:
        import jsonschema  # a dev dependency; the CLI validates too, so skip if absent
    except ImportError:  # pragma: no cover
        return
    schema: dict[str, Any] = {
        "type": "object",
        "properties": policy.config_schema,
        "required": policy.required,
    }
    if not policy.config_schema:
        schema["additionalProperties"] = False
    errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(dict(props)), key=str)
    if errors:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in error.absolute_path) or '(config)'}: {error.message}"
            for error in errors
        )
        raise PolicyPackError(f"policy config for {policy.name}: {problems}")


class PolicyPackProcess:
    """A running policy pack and a gRPC client for it. Use as a context manager.

    Start once, `configure` once, then `check` (or `analyze` / `analyze_stack`) any
    number of resource sets; `close` kills the pack process.
    """

    def __init__(
        self,
        pack_dir: Path = PACK_DIR,
        *,
        stack: str,
        project: str = PROJECT,
        dry_run: bool = True,
        config: Mapping[str, str] | None = None,
        python: str = sys.executable,
    ) -> None:
        self.pack_dir = pack_dir
        self.stack = stack
        self.project = project
        self.dry_run = dry_run
        self.config = dict(config or {})
        self.python = python
        self._process: subprocess.Popen[bytes] | None = None
        self._channel: grpc.Channel | None = None
        self._stub: analyzer_pb2_grpc.AnalyzerStub | None = None
        self._stderr: list[bytes] = []
        self.policies: list[PolicyInfo] = []
        self.name = ""

    # -- process -------------------------------------------------------------------

    def start(self) -> PolicyPackProcess:
        env = {
            **os.environ,
            "PULUMI_PROJECT": self.project,
            "PULUMI_STACK": self.stack,
            "PULUMI_DRY_RUN": "true" if self.dry_run else "false",
            "PULUMI_CONFIG": json.dumps(self.config),
        }
        command = [self.python, "-u", "-m", "pulumi.policy", ENGINE_PLACEHOLDER, str(self.pack_dir)]
        try:
            self._process = subprocess.Popen(
                command,
                cwd=self.pack_dir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
        except OSError as error:
            raise PolicyPackError(f"cannot start the policy pack: {error}") from None
        assert self._process.stdout is not None and self._process.stderr is not None
        port = self._read_port(self._process.stdout)
        # Keep draining both pipes, or a chatty pack would block on a full pipe.
        _drain(self._process.stderr, self._stderr)
        _drain(self._process.stdout, [])
        self._channel = grpc.insecure_channel(f"127.0.0.1:{port}", options=_CHANNEL_OPTIONS)
        try:
            grpc.channel_ready_future(self._channel).result(timeout=START_TIMEOUT)
        except grpc.FutureTimeoutError:
            self.close()
            raise PolicyPackError(f"policy pack did not answer on port {port}") from None
        self._stub = analyzer_pb2_grpc.AnalyzerStub(self._channel)
        self._load_info()
        return self

    def _read_port(self, stdout: IO[bytes]) -> int:
        lines: queue.Queue[bytes] = queue.Queue()
        threading.Thread(target=lambda: lines.put(stdout.readline()), daemon=True).start()
        try:
            line = lines.get(timeout=START_TIMEOUT)
        except queue.Empty:
            line = b""
        try:
            return int(line.strip())
        except ValueError:
            assert self._process is not None
            self._process.kill()
            _, stderr = self._process.communicate(timeout=10)
            detail = (line + stderr).decode(errors="replace").strip()
            raise PolicyPackError(
                f"policy pack in {self.pack_dir} failed to start:\n{detail}"
            ) from None

    def close(self) -> None:
        if self._channel is not None:
            self._channel.close()
            self._channel = None
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait(timeout=10)
        self._process = None

    def __enter__(self) -> PolicyPackProcess:
        return self.start() if self._process is None else self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def cpu_seconds(self) -> float:
        """CPU time (user and system) the pack's process has used so far; Linux only."""
        if self._process is None:
            raise PolicyPackError("the policy pack is not running")
        fields = Path(f"/proc/{self._process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        # utime and stime are fields 14 and 15 of proc(5), 12 and 13 after the ")".
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    @property
    def stderr(self) -> str:
        """What the pack printed on stderr so far (its logs, tracebacks)."""
        return b"".join(self._stderr).decode(errors="replace")

    @property
    def stub(self) -> analyzer_pb2_grpc.AnalyzerStub:
        if self._stub is None:
            raise PolicyPackError("the policy pack is not running")
        return self._stub

    # -- protocol ------------------------------------------------------------------

    def _load_info(self) -> None:
        info = self.stub.GetAnalyzerInfo(empty_pb2.Empty())
        self.name = info.name
        self.policies = policy_infos(info)

    def configure(self, policy_config: Mapping[str, Any] | None = None) -> None:
        """Send the policy config (`--policy-pack-config` format) and the stack settings."""
        self.stub.Configure(configure_request(self.policies, policy_config))
        self.stub.ConfigureStack(
            analyzer_pb2.AnalyzerStackConfigureRequest(
                stack=self.stack,
                project=self.project,
                organization="organization",
                dry_run=self.dry_run,
                config=self.config,
            )
        )

    def analyze(
        self, resource: PolicyResource, by_urn: Mapping[str, PolicyResource] | None = None
    ) -> list[Diagnostic]:
        """Run the resource policies on one resource (Analyze alone, no remediation)."""
        by_urn = by_urn or {}
        wire = _Wire([resource, *by_urn.values()])
        response = self.stub.Analyze(wire.analyze_request(resource))
        return self._diagnostics(response, default_urn=resource.urn)

    def analyze_stack(self, resources: Sequence[PolicyResource]) -> list[Diagnostic]:
        """Run the stack policies once over every resource."""
        request = _Wire(resources).stack_request(resources)
        return self._diagnostics(self.stub.AnalyzeStack(request), default_urn="")

    def check(
        self, resources: Sequence[PolicyResource], engine_view: bool = False
    ) -> list[Diagnostic]:
        """Judge `resources` as one preview does: per resource, then the stack;
        `engine_view` as for `Preview`."""
        return self.send(Preview(resources, engine_view))

    def send(self, preview: Preview) -> list[Diagnostic]:
        """Send a preview's calls in the engine's order; the diagnostics in that order.

        As in the engine's step generator, each resource (providers included) gets
        Remediate and then Analyze, each call waiting for its answer before the next is
        sent, so the pack serves one call at a time; remediated properties (none with
        this pack) replace the inputs from there on. AnalyzeStack follows once.
        """
        diagnostics: list[Diagnostic] = []
        for index, (resource, request) in enumerate(
            zip(preview.resources, preview.requests, strict=True)
        ):
            remediated = self.stub.Remediate(request)
            for remediation in remediated.remediations:
                if remediation.diagnostic:
                    # The engine shows a remediation that could not run as advisory.
                    diagnostics.append(
                        Diagnostic(
                            policy=remediation.policyName,
                            enforcement="advisory",
                            urn=resource.urn,
                            message=remediation.diagnostic,
                            description=remediation.description,
                        )
                    )
                elif remediation.HasField("properties"):
                    preview.remediate(index, remediation.properties)
            response = self.stub.Analyze(request)
            diagnostics += self._diagnostics(response, default_urn=resource.urn)
        response = self.stub.AnalyzeStack(preview.stack)
        return diagnostics + self._diagnostics(response, default_urn="")

    def _diagnostics(
        self, response: analyzer_pb2.AnalyzeResponse, default_urn: str
    ) -> list[Diagnostic]:
        found = []
        for diagnostic in response.diagnostics:
            # pulumi-policy sends "<description>\n<message>"; keep the two apart.
            message = diagnostic.message
            if message.startswith(diagnostic.description):
                message = message[len(diagnostic.description) :].lstrip("\n")
            found.append(
                Diagnostic(
                    policy=diagnostic.policyName,
                    enforcement=LEVEL_NAMES.get(diagnostic.enforcementLevel, "advisory"),
                    urn=diagnostic.urn or default_urn,
                    message=message or diagnostic.description,
                    description=diagnostic.description,
                )
            )
        return found


def _options(resource: PolicyResource) -> analyzer_pb2.AnalyzerResourceOptions:
    return analyzer_pb2.AnalyzerResourceOptions(
        protect=resource.protect, parent=resource.parent or ""
    )


def _drain(pipe: IO[bytes], sink: list[bytes]) -> None:
    def pump() -> None:
        for chunk in iter(lambda: pipe.read1(65536), b""):  # type: ignore[attr-defined]
            sink.append(chunk)

    threading.Thread(target=pump, daemon=True).start()
