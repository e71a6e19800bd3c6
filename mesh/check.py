"""`python -m mesh check`: the policy pack on a stack or on plain Kubernetes YAML.

    python -m mesh check --stack NAME | --stack-file PATH | MANIFEST...
                         [--policy-config FILE] [--format text|json] [--reference NAME=FILE ...]

A stack runs under Pulumi mocks (`mesh.program`); manifests are typed the way
pulumi-kubernetes presents them to a pack (`kubernetes:<apiVersion>:<kind>`, the
manifest as properties). Either way the resources go to the real pack in `policies/`,
started and driven over gRPC exactly as `pulumi preview --policy-pack` does
(`mesh.analyzer`). With a named stack, `policies/config/<stack>.json` is the default
policy config.

Exit status: 0 no mandatory violation, 1 at least one, 2 unusable input (unreadable
file, bad YAML, unknown stack, bad config) or a pack that would not start.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import grpc
import yaml

from components.service_files import load_yaml_all, read_text_file
from mesh.analyzer import PACK_DIR, PROJECT, PolicyPackError, PolicyPackProcess, PolicyResource
from mesh.cli import add_stack_arguments, run_from_arguments
from mesh.program import ProgramRun, StackFileError, load_stack_file, stack_file_for

__all__ = [
    "PolicyResource",
    "Violation",
    "main",
    "manifest_resources",
    "program_resources",
    "run_policy_pack",
]

CONFIG_DIR = PACK_DIR / "config"
MANIFEST_STACK = "manifests"
"""PULUMI_STACK for a check of plain manifests (no stack is involved)."""

# Kinds without a namespace, named `<kind> <name>` rather than `<kind> <ns>/<name>`.
CLUSTER_SCOPED = frozenset(
    {
        "Namespace",
        "Node",
        "PersistentVolume",
        "ClusterRole",
        "ClusterRoleBinding",
        "CustomResourceDefinition",
        "StorageClass",
        "PriorityClass",
        "IngressClass",
        "RuntimeClass",
        "APIService",
        "MutatingWebhookConfiguration",
        "ValidatingWebhookConfiguration",
    }
)


class InputError(Exception):
    """Input `check` cannot use; reported with exit status 2."""


@dataclass(frozen=True)
class Violation:
    """One policy violation, as `check` reports it."""

    policy: str
    enforcement: str
    resource: str
    """The resource's URN, `<kind> <namespace>/<name> (<file>:<n>)` for a manifest, or
    `(stack)` for a violation of the stack as a whole."""
    message: str
    name: str = ""
    """How text output names the resource: `<Kind> <namespace>/<name>` (the URN stays in
    JSON); empty for `resource` itself."""

    def as_dict(self) -> dict[str, str]:
        return {k: v for k, v in asdict(self).items() if k != "name"}

    @property
    def shown(self) -> str:
        return self.name or self.resource


def kind_and_name(resource: PolicyResource) -> str:
    """How text names a resource: a manifest's own label; for a stack's Kubernetes
    resource, the same label built from its inputs (`VirtualService shop/reviews`);
    `<type> <name>` otherwise."""
    if resource.label:
        return resource.label
    kind = resource.type.rsplit(":", 1)[-1]
    if resource.type.startswith("kubernetes:"):
        return _manifest_label({"name": resource.name, **resource.props, "kind": kind})[0]
    return f"{kind} {resource.name}"


# -- resources -----------------------------------------------------------------------


def _type_token(api_version: str, kind: str) -> str:
    """`networking.istio.io/v1` + `VirtualService` -> pulumi-kubernetes' type token."""
    if "/" not in api_version:
        api_version = f"core/{api_version}"
    return f"kubernetes:{api_version}:{kind}"


def _plain(value: Any) -> Any:
    # YAML may hold dates and other non-JSON scalars; the wire carries JSON only.
    return json.loads(json.dumps(value, default=str))


def _manifest_label(document: Mapping[str, Any]) -> tuple[str, str]:
    """(`<kind> <ns>/<name>`, logical name) of a manifest."""
    kind = str(document.get("kind"))
    metadata = document.get("metadata")
    metadata = metadata if isinstance(metadata, dict) else {}
    # A Helm release written as YAML (apiVersion helm.sh/v3, kind Release) carries the
    # Release resource's inputs, name and namespace at the top level.
    name = str(metadata.get("name") or document.get("name") or "")
    namespace = metadata.get("namespace") or document.get("namespace")
    if kind in CLUSTER_SCOPED:
        return f"{kind} {name}", name
    namespace = str(namespace or "default")
    return f"{kind} {namespace}/{name}", f"{namespace}/{name}"


PROVIDER_KEY = "provider"
"""A document's top-level key naming the kubernetes provider that places it (in a
multi-cluster stack, its cluster's): not part of the object, as in the fixtures of the
rules that compare clusters."""
KUBERNETES_PROVIDER = "pulumi:providers:kubernetes"


class _Providers:
    """The kubernetes providers manifests name (`PROVIDER_KEY`), each declared once."""

    def __init__(self, stack: str) -> None:
        self._stack = stack
        self._declared: dict[str, PolicyResource] = {}

    @property
    def resources(self) -> list[PolicyResource]:
        return list(self._declared.values())

    def reference(self, name: str) -> str:
        """The provider reference (`URN::ID`) of provider `name`, declared on first use."""
        urn = f"urn:pulumi:{self._stack}::{PROJECT}::{KUBERNETES_PROVIDER}::{name}"
        self._declared.setdefault(
            name, PolicyResource(type=KUBERNETES_PROVIDER, name=name, urn=urn, props={}, label=name)
        )
        return f"{urn}::{name}-id"


def manifest_resources(paths: Sequence[Path], stack: str = MANIFEST_STACK) -> list[PolicyResource]:
    """Every object of the YAML files, as pulumi-kubernetes would present it to a pack.

    `kind: List` documents are unpacked. Raises `InputError` for an unreadable file,
    bad YAML or a document that is not a Kubernetes object.
    """
    resources: list[PolicyResource] = []
    urns: set[str] = set()
    providers = _Providers(stack)
    for path in paths:
        try:
            documents = [d for d in load_yaml_all(read_text_file(path)) if d is not None]
        except OSError as error:
            raise InputError(f"{path}: {error.strerror or error}") from None
        except ValueError as error:  # not UTF-8 text
            raise InputError(str(error)) from None
        except yaml.YAMLError as error:
            raise InputError(f"{path}: not valid YAML: {error}") from None
        for index, document in enumerate(documents, start=1):
            items = [document]
            if isinstance(document, dict) and document.get("kind") == "List":
                items = document.get("items") or []
            for item_index, item in enumerate(items, start=1):
                source = f"{path}:{index}" + (f".{item_index}" if len(items) > 1 else "")
                if not (isinstance(item, dict) and item.get("apiVersion") and item.get("kind")):
                    raise InputError(f"{source}: not a Kubernetes object (apiVersion and kind)")
                item = dict(item)
                provider = item.pop(PROVIDER_KEY, None)
                type_ = _type_token(str(item["apiVersion"]), str(item["kind"]))
                label, name = _manifest_label(item)
                urn = f"urn:pulumi:{stack}::{PROJECT}::{type_}::{name}"
                if provider is not None:
                    urn = f"urn:pulumi:{stack}::{PROJECT}::{type_}::{provider}-{name}"
                    label = f"{label} in {provider}"
                if urn in urns:  # the same object twice: keep both, apart
                    urn, name = f"{urn}@{source}", f"{name}@{source}"
                urns.add(urn)
                resources.append(
                    PolicyResource(
                        type=type_,
                        name=name,
                        urn=urn,
                        props=_plain(item),
                        label=f"{label} ({source})",
                        provider=None if provider is None else providers.reference(str(provider)),
                    )
                )
    resources += providers.resources
    if not resources:
        # A gate fed nothing (a failed `helm template`, a wrong glob) must not go green.
        names = ", ".join(str(path) for path in paths)
        raise InputError(f"{names}: no Kubernetes object to check (empty input)")
    return resources


def program_resources(run: ProgramRun) -> list[PolicyResource]:
    """The resources a `mesh.program.ProgramRun` registered, as the engine sends them."""
    return [
        PolicyResource(
            type=resource.type,
            name=resource.name,
            urn=resource.urn,
            props=resource.props,
            parent=resource.parent,
            dependencies=tuple(resource.depends_on),
            provider=resource.provider,
            protect=resource.protect,
        )
        for resource in run.resources
    ]


# -- running the pack ----------------------------------------------------------------


def run_policy_pack(
    resources: Iterable[PolicyResource],
    stack: str,
    policy_config: Mapping[str, Any] | None = None,
    *,
    dry_run: bool = True,
    config: Mapping[str, str] | None = None,
    engine_view: bool = False,
) -> list[Violation]:
    """Judge `resources` as one stack with the project's pack; every violation found.

    Starts the pack the way the Pulumi CLI does, sends `policy_config` (the
    `--policy-pack-config` format; None for the pack's defaults), analyzes each
    resource, then the whole stack, and stops the pack.
    """
    resources = list(resources)
    with PolicyPackProcess(stack=stack, dry_run=dry_run, config=config) as pack:
        pack.configure(policy_config)
        try:
            diagnostics = pack.check(resources, engine_view)
        except grpc.RpcError as error:  # a rule raised: the pack logged the traceback
            details = error.details() if isinstance(error, grpc.Call) else str(error)
            raise PolicyPackError(f"the policy pack failed: {details}\n{pack.stderr}") from None
    display = {resource.urn: resource.display for resource in resources}
    names = {resource.urn: kind_and_name(resource) for resource in resources}
    violations = [
        Violation(
            policy=d.policy,
            enforcement=d.enforcement,
            resource=display.get(d.urn, d.urn) if d.urn else "(stack)",
            message=d.message,
            name=names.get(d.urn, "") if d.urn else "",
        )
        for d in diagnostics
    ]
    # The same input gives the same bytes: manifests in the order of their files and
    # documents; a stack's resources (registered from several threads, in no fixed
    # order) by URN; stack rules last.
    position = {r.display: index for index, r in enumerate(resources) if r.label}
    return sorted(
        violations,
        key=lambda v: (
            v.resource == "(stack)",
            position.get(v.resource, 0),
            v.resource,
            v.policy,
            v.message,
        ),
    )


def load_policy_config(path: Path) -> dict[str, Any]:
    try:
        config = json.loads(path.read_text())
    except OSError as error:
        raise InputError(f"{path}: {error.strerror or error}") from None
    except ValueError as error:
        raise InputError(f"{path}: not valid JSON: {error}") from None
    if not isinstance(config, dict):
        raise InputError(f"{path}: a policy config is a JSON object")
    return config


# -- command line --------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mesh check",
        description="Run the policy pack on a stack (--stack, --stack-file) or on Kubernetes "
        "YAML files (MANIFEST...), as the Pulumi CLI runs it at preview.",
        epilog="exit status: 0 no mandatory violation; 1 at least one mandatory violation; "
        "2 unusable input (unreadable or empty files, bad YAML, an unknown stack, a bad "
        "stack or policy config)",
    )
    parser.add_argument(
        "manifests",
        nargs="*",
        type=Path,
        metavar="MANIFEST",
        help="Kubernetes YAML files (`helm template` output, a render's manifests and "
        "releases), judged as one stack",
    )
    add_stack_arguments(parser, required=False)
    parser.add_argument(
        "--policy-config",
        type=Path,
        help="policy config (--policy-pack-config format); default with a stack: "
        "policies/config/<stack>.json",
    )
    parser.add_argument(
        "--format",
        choices=("text", "json"),
        default="text",
        help="text: a line per violation (`Kind namespace/name`) and a summary; json: a list "
        "of {policy, enforcement, resource (the URN for a stack), message}",
    )
    parser.add_argument(
        "--engine-view",
        action="store_true",
        help="hand the pack what a real preview hands it: inputs after the providers' "
        "Check (a Helm version range resolved), live outputs to AnalyzeStack",
    )
    return parser


def _stack_resources(args: argparse.Namespace) -> tuple[str, list[PolicyResource], dict[str, str]]:
    """Run the stack the arguments name: (stack name, resources, its config)."""
    problems: list[str] = []
    run = run_from_arguments(args, report=problems.append)
    if isinstance(run, int):
        raise InputError("\n".join(problems) or "the stack could not be run")
    try:
        config = load_stack_file(args.stack_file or stack_file_for(run.stack))
    except StackFileError:
        config = {}
    return run.stack, program_resources(run), config


def _report_text(violations: Sequence[Violation], checked: int) -> str:
    lines = [f"{v.enforcement}: [{v.policy}] {v.shown}: {v.message}" for v in violations]
    mandatory = sum(v.enforcement == "mandatory" for v in violations)
    if violations:
        lines.append(
            f"{len(violations)} violation(s), {mandatory} mandatory, in {checked} resources"
        )
    else:
        lines.append(f"no violations in {checked} resources")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    from_stack = bool(args.stack or args.stack_file)
    if from_stack == bool(args.manifests):
        parser.print_usage(sys.stderr)
        print("check: give --stack, --stack-file or manifest files (exactly one)", file=sys.stderr)
        return 2
    try:
        if from_stack:
            stack, resources, config = _stack_resources(args)
        else:
            stack, resources, config = MANIFEST_STACK, manifest_resources(args.manifests), {}
        config_path = args.policy_config
        if config_path is None and from_stack and (CONFIG_DIR / f"{stack}.json").exists():
            config_path = CONFIG_DIR / f"{stack}.json"
        policy_config = load_policy_config(config_path) if config_path else None
        violations = run_policy_pack(
            resources, stack, policy_config, config=config, engine_view=args.engine_view
        )
    except (InputError, PolicyPackError) as error:
        print(f"check: {error}", file=sys.stderr)
        return 2
    if args.format == "json":
        print(json.dumps([v.as_dict() for v in violations], indent=2))
    else:
        print(_report_text(violations, len(resources)))
    return 1 if any(v.enforcement == "mandatory" for v in violations) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
