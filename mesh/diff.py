"""`mesh diff --from dev --to prod`: what differs between two stacks' objects, by object.

Both stacks run under Pulumi mocks (as `render` runs them); their Kubernetes objects and
Helm releases are matched by kind, namespace and name, and each pair that differs is
shown as a unified diff of its YAML, the way a reviewer reads a promotion. A target that
trails the source (`promotion.fromStack`) reads the source's outputs from this very run.

Exit status: 0 the same objects, 1 differences, 2 unusable input (as `diff` does).
"""

from __future__ import annotations

import argparse
import difflib
import json
import sys
from collections.abc import Mapping
from typing import Any

import yaml

from components.errors import ConfigError
from mesh.cli import add_from_to_arguments, parse_references
from mesh.engine_view import RELEASE_TYPE
from mesh.program import ProgramRun, StackFileError, run_stack
from mesh.render import redact, release_document

Key = tuple[str, str, str]
"""(kind, namespace, name) of an object."""


def objects(run: ProgramRun) -> dict[Key, dict[str, Any]]:
    """Every Kubernetes object and Helm release of a run, by (kind, namespace, name)."""
    found: dict[Key, dict[str, Any]] = {}
    for manifest in run.manifests():
        metadata = manifest.get("metadata") or {}
        key = (manifest["kind"], metadata.get("namespace") or "", metadata.get("name") or "")
        found[key] = redact(manifest)
    for resource in run.resources:
        if resource.type == RELEASE_TYPE:
            release = release_document(redact(resource.props))
            found[("Release", str(release.get("namespace")), str(release.get("name")))] = release
    return found


def label(key: Key) -> str:
    kind, namespace, name = key
    return f"{kind} {namespace}/{name}" if namespace else f"{kind} {name}"


def compare(
    source: Mapping[Key, dict[str, Any]],
    target: Mapping[Key, dict[str, Any]],
    names: tuple[str, str],
) -> dict[str, Any]:
    """What is only in each stack, and a unified diff of each object in both that differs."""
    changed = []
    for key in sorted(set(source) & set(target)):
        if source[key] == target[key]:
            continue
        before = yaml.safe_dump(source[key], sort_keys=True).splitlines(keepends=True)
        after = yaml.safe_dump(target[key], sort_keys=True).splitlines(keepends=True)
        diff = "".join(difflib.unified_diff(before, after, names[0], names[1]))
        changed.append({"object": label(key), "diff": diff})
    return {
        "from": names[0],
        "to": names[1],
        "onlyInFrom": [label(key) for key in sorted(set(source) - set(target))],
        "onlyInTo": [label(key) for key in sorted(set(target) - set(source))],
        "changed": changed,
    }


def format_text(result: Mapping[str, Any]) -> str:
    lines = [f"only in {result['from']}: {item}" for item in result["onlyInFrom"]]
    lines += [f"only in {result['to']}: {item}" for item in result["onlyInTo"]]
    for change in result["changed"]:
        lines.append(f"changed: {change['object']}")
        lines += ["  " + line for line in change["diff"].splitlines()]
    if not lines:
        lines.append(f"{result['from']} and {result['to']} declare the same objects")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="mesh diff",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_from_to_arguments(parser)
    parser.add_argument(
        "--reference",
        action="append",
        default=[],
        metavar="NAME=FILE",
        help="a stack either one trails, from a `pulumi stack export` file (the source's "
        "own outputs are used for the target without it)",
    )
    parser.add_argument("--format", choices=("text", "json"), default="text")
    args = parser.parse_args(argv)
    try:
        references = parse_references(args.reference)
        before = run_stack(args.source, args.from_file, references)
        # The target may trail the source: hand it the outputs just computed.
        after = run_stack(args.target, args.to_file, references, {before.stack: before.outputs})
    except (ConfigError, StackFileError) as error:
        print(f"diff: {error}", file=sys.stderr)
        return 2
    result = compare(objects(before), objects(after), (before.stack, after.stack))
    print(json.dumps(result, indent=2) if args.format == "json" else format_text(result))
    same = not (result["onlyInFrom"] or result["onlyInTo"] or result["changed"])
    return 0 if same else 1
