"""`python -m mesh render`: write what a stack declares, without a cluster.

Output folder layout (the folder, default out/<stack>, is replaced by each render; one
holding files render did not write is refused):
  manifests/<namespace or _cluster>/<kind>-<name>.yaml   one per Kubernetes object
  releases/<release>.yaml     the Release's inputs (chart, version, repositoryOpts, values, ...)
                              as `apiVersion: helm.sh/v3`, `kind: Release`: `mesh check` reads them
  resources.json              every resource: type, name, urn, parent, options, properties
  stack.json                  the stack's outputs in `pulumi stack export` format
A stack with clusters (`istio-mesh:clusters`) writes each cluster's objects and releases
under clusters/<cluster>/manifests and clusters/<cluster>/releases instead: every
cluster holds the same names.
Secret values are written as a placeholder, never in plain text.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import yaml

from components import naming
from mesh.cli import add_stack_arguments, run_from_arguments
from mesh.engine_view import RELEASE_TYPE
from mesh.program import (
    PROJECT,
    STACK_TYPE,
    ProgramRun,
    is_wire_secret,
    kubernetes_manifest,
    stack_name,
)

SECRET_PLACEHOLDER = "[secret]"


def redact(value: Any) -> Any:
    """`value` with every secret replaced by the placeholder."""
    if is_wire_secret(value):
        return SECRET_PLACEHOLDER
    if isinstance(value, dict):
        return {key: redact(item) for key, item in value.items()}
    if isinstance(value, list):
        return [redact(item) for item in value]
    return value


def release_document(props: dict[str, Any]) -> dict[str, Any]:
    """A Helm release as `mesh check` reads one: `apiVersion: helm.sh/v3`, `kind: Release`
    and the Release resource's inputs (name, namespace, chart, version, repositoryOpts,
    values, and how it waits), so a render's files check as the stack does."""
    return {"apiVersion": "helm.sh/v3", "kind": "Release", **props}


def export_document(run: ProgramRun, outputs: dict[str, Any]) -> dict[str, Any]:
    """The stack's outputs shaped like `pulumi stack export`, for `--reference`."""
    urn = f"urn:pulumi:{run.stack}::{PROJECT}::{STACK_TYPE}::{PROJECT}-{run.stack}"
    return {
        "version": 3,
        "deployment": {
            "manifest": {"magic": "", "version": ""},
            "resources": [{"urn": urn, "custom": False, "type": STACK_TYPE, "outputs": outputs}],
        },
    }


def _dump(path: Path, document: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(document, sort_keys=False, default_flow_style=False))


def resources_document(run: ProgramRun) -> list[dict[str, Any]]:
    """Every resource the stack declares, as `resources.json` holds it: ordered by URN,
    with its inputs (secrets redacted), parent, provider, dependencies and options."""
    return [
        {
            "type": r.type,
            "name": r.name,
            "urn": r.urn,
            "parent": r.parent,
            "custom": r.custom,
            "provider": r.provider,
            "dependsOn": sorted(r.depends_on),
            "protect": r.protect,
            "retainOnDelete": r.retain_on_delete,
            "aliases": sorted(r.aliases),
            "properties": redact(r.props),
        }
        for r in sorted(run.resources, key=lambda r: r.urn)
    ]


def _cluster_folder(out: Path, provider: str | None) -> Path:
    """Where a resource's files go: `out`, or its cluster's folder (by its provider)."""
    if provider is None:
        return out
    # A provider reference is `<provider URN>::<id>`; the URN ends with its name.
    cluster = naming.cluster_of_provider(provider.split("::")[-2])
    return out if cluster is None else out / "clusters" / cluster


def write_render(run: ProgramRun, out: Path) -> dict[str, int]:
    """Write `run` into `out`; returns how many files of each sort were written."""
    counts = {"manifests": 0, "releases": 0}
    ordered = sorted(run.resources, key=lambda r: r.urn)  # same stack, same bytes
    for resource in ordered:
        props = redact(resource.props)
        base = _cluster_folder(out, resource.provider)
        if resource.type == RELEASE_TYPE:
            document = release_document(props)
            _dump(base / "releases" / f"{document['name']}.yaml", document)
            counts["releases"] += 1
            continue
        manifest = kubernetes_manifest(resource)
        if manifest is None:
            continue
        manifest = redact(manifest)
        metadata = manifest.get("metadata") or {}
        folder = metadata.get("namespace") or "_cluster"
        name = metadata.get("name") or resource.name
        _dump(base / "manifests" / folder / f"{manifest['kind'].lower()}-{name}.yaml", manifest)
        counts["manifests"] += 1
    (out / "resources.json").write_text(json.dumps(resources_document(run), indent=2) + "\n")
    stack = export_document(run, redact(run.outputs))
    (out / "stack.json").write_text(json.dumps(stack, indent=2) + "\n")
    return counts


RENDER_MARKER = ".mesh-render"
"""Written into every render's folder: a folder with it is render's to replace."""


def _not_a_render(out: Path) -> str | None:
    """Why render may not replace `out`: it holds files and no render marker."""
    if out.is_dir() and any(out.iterdir()) and not (out / RENDER_MARKER).is_file():
        return "holds files mesh render did not write; name a new or empty folder"
    return None


def _unusable_folder(out: Path) -> str | None:
    """Why `out` cannot be (made into) an output folder; None when it can."""
    existing = out
    while not existing.exists():
        if existing.parent == existing:
            break
        existing = existing.parent
    if not existing.is_dir():
        return f"{existing} is a file, not a folder"
    if not os.access(existing, os.W_OK | os.X_OK):
        return f"{existing} is not writable"
    return None


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="mesh render",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,  # the layout above, as written
    )
    add_stack_arguments(parser)
    parser.add_argument(
        "--format",
        choices=("text", "json"),
        default="text",
        help="text: one summary line on stderr; json: the summary on stdout, for scripts",
    )
    parser.add_argument(
        "--out",
        type=Path,
        help="output folder, replaced by each render (default: out/<stack>); a folder "
        "holding anything render did not write is refused",
    )
    args = parser.parse_args(argv)
    if args.out is None:
        stack = args.stack or stack_name(args.stack_file)
        args.out = Path("out") / stack
    # The output folder must be usable before anything runs, and is replaced only once
    # the stack has run: bad input leaves nothing behind, and no earlier render's files
    # stay beside this one's.
    unusable = _unusable_folder(args.out) or _not_a_render(args.out)
    if unusable:
        print(f"render: --out {args.out}: {unusable}", file=sys.stderr)
        return 2
    run = run_from_arguments(args)
    if isinstance(run, int):
        return run
    try:
        if args.out.exists():
            shutil.rmtree(args.out)
        args.out.mkdir(parents=True)
        (args.out / RENDER_MARKER).write_text(f"mesh render of stack {run.stack}\n")
    except OSError as error:
        print(f"render: --out {args.out}: {error.strerror or error}", file=sys.stderr)
        return 2
    counts = write_render(run, args.out)
    if args.format == "json":
        summary = {"stack": run.stack, "out": str(args.out), "resources": len(run.resources)}
        print(json.dumps({**summary, **counts}, indent=2))
        return 0
    print(
        f"{run.stack}: {len(run.resources)} resources, {counts['manifests']} manifests, "
        f"{counts['releases']} Helm releases -> {args.out}",
        file=sys.stderr,
    )
    return 0
