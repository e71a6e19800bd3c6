"""Snapshots of each stack: its URNs, and everything it declares.

URNs: a resource whose URN changes is deleted and recreated by `pulumi up`.

A URN is made of the stack, the project, the types of the resource and of its
parents, and its name. Renaming a resource, changing its type or moving it under
another component gives it a new URN, and Pulumi then deletes the live object and
creates a new one: for istio-base that deletes Istio's CRDs and every Istio object,
for a namespace everything in it. `tests/snapshots/<stack>.json` lists every URN each
`Pulumi.<stack>.yaml` declares; any difference fails here, and a disappeared URN is
accepted only when a resource declares it as an alias (`pulumi.Alias`), which is the
fix that keeps the live object.

Regenerate after an intended change (new resources, or a deletion you want):

    UPDATE_SNAPSHOTS=1 venv/bin/pytest tests/test_snapshots.py
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pytest

from mesh.program import ProgramRun, Registered, run_program
from mesh.render import redact, resources_document
from tests.conftest import STACKS, stack_run

SNAPSHOTS = Path(__file__).resolve().parent / "snapshots"
REGENERATE = "UPDATE_SNAPSHOTS=1 venv/bin/pytest tests/test_snapshots.py"


def snapshot_file(stack: str) -> Path:
    return SNAPSHOTS / f"{stack}.json"


def write_snapshot(stack: str, urns: Iterable[str]) -> None:
    SNAPSHOTS.mkdir(exist_ok=True)
    document = {"stack": stack, "regenerate": REGENERATE, "urns": sorted(set(urns))}
    snapshot_file(stack).write_text(json.dumps(document, indent=2) + "\n")


def read_snapshot(stack: str) -> list[str]:
    urns: list[str] = json.loads(snapshot_file(stack).read_text())["urns"]
    return urns


def inherited_alias(resource: Registered, parent_alias: str) -> str:
    """The alias the engine gives a child whose parent was found under `parent_alias`
    (pkg/resource/deploy/step_generator.go, inheritedChildAlias): the child under its
    parent's old URN, a name derived from the parent's (`<parent>-x`) following it."""
    parent_name = (resource.parent or "").split("::")[-1]
    name = resource.name
    if parent_name and name.startswith(parent_name):
        name = parent_alias.split("::")[-1] + name.removeprefix(parent_name)
    stack_project = "::".join(parent_alias.split("::")[:2])
    return f"{stack_project}::{parent_alias.split('::')[2]}${resource.type}::{name}"


def found_under_aliases(recorded: set[str], resources: Sequence[Registered]) -> dict[str, str]:
    """URN now -> the recorded URN the engine finds that resource under, for each
    resource found under an alias: its own aliases, then the one it inherits from the
    alias its parent was found under (the engine's generateAliases). Parents register
    before their children, so one pass in registration order sees each parent first."""
    found: dict[str, str] = {}
    for resource in resources:
        if resource.urn in recorded:
            continue
        candidates = list(resource.aliases)
        parent_alias = found.get(resource.parent or "")
        if parent_alias is not None:
            candidates.append(inherited_alias(resource, parent_alias))
        match = next((alias for alias in candidates if alias in recorded), None)
        if match is not None:
            found[resource.urn] = match
    return found


def reached(recorded: set[str], resources: Sequence[Registered]) -> dict[str, str]:
    """Recorded URN -> the URN of the resource the engine finds under it: under that
    very URN, or under an alias (`found_under_aliases`). A recorded URN missing here is
    one the engine would delete."""
    found = {old: new for new, old in found_under_aliases(recorded, resources).items()}
    return found | {r.urn: r.urn for r in resources if r.urn in recorded}


def urn_changes(stack: str, snapshot: Iterable[str], resources: Sequence[Registered]) -> str | None:
    """Why the live URNs differ from the snapshot; None when they do not.

    A snapshot URN the engine would find a resource under (one of its aliases, or one it
    inherits from its parent's) has not disappeared: that resource is the same live
    object under a new URN, and its new URN is expected.
    """
    recorded = set(snapshot)
    live = {resource.urn for resource in resources}
    kept = reached(recorded, resources)
    disappeared = sorted(recorded - kept.keys())
    appeared = sorted(live - set(kept.values()))
    if not disappeared and not appeared:
        return None
    lines = [f"the URNs of Pulumi.{stack}.yaml differ from {snapshot_file(stack).name}:"]
    if disappeared:
        lines += ["", "disappeared (`pulumi up` would DELETE these live resources):"]
        lines += [f"  - {urn}" for urn in disappeared]
    if appeared:
        lines += ["", "appeared (`pulumi up` would CREATE these):"]
        lines += [f"  + {urn}" for urn in appeared]
    if disappeared:
        lines += [
            "",
            "A rename (new name, type or parent) deletes and recreates the live resource:",
            "for istio-base every Istio CRD and object, for a namespace all it holds.",
            "Keep the live object by declaring its old URN as an alias on the renamed",
            "resource, e.g. opts=pulumi.ResourceOptions(aliases=[pulumi.Alias(name=",
            '"<old name>")]) (or parent=/type_= for a move); this test accepts an',
            "aliased URN. If the deletion is intended, regenerate the snapshot.",
        ]
    lines += ["", f"Regenerate after an intended change: {REGENERATE}"]
    return "\n".join(lines)


@pytest.mark.parametrize("stack", STACKS)
def test_urns_match_the_snapshot(stack: str) -> None:
    run = stack_run(stack)
    if os.environ.get("UPDATE_SNAPSHOTS") == "1":
        write_snapshot(stack, (resource.urn for resource in run.resources))
    if not snapshot_file(stack).exists():
        pytest.fail(f"no URN snapshot for stack {stack}; create it: {REGENERATE}", pytrace=False)
    message = urn_changes(stack, read_snapshot(stack), run.resources)
    if message is not None:
        pytest.fail(message, pytrace=False)


def test_every_snapshot_belongs_to_a_stack() -> None:
    """A snapshot of a deleted stack file would silently stop guarding anything."""
    assert sorted(path.stem for path in SNAPSHOTS.glob("*.json")) == STACKS


# -- the comparison itself, on a program that renames a resource -------------------------

PROGRAM = """
import pulumi

class Part(pulumi.ComponentResource):
    def __init__(self, name, opts=None):
        super().__init__("test:index:Part", name, None, opts)

parent = Part("parent")
Part({name!r}, pulumi.ResourceOptions(parent=parent, aliases={aliases}))
"""


def run_part(tmp_path: Path, name: str, aliases: str = "[]") -> ProgramRun:
    program = tmp_path / name / "__main__.py"
    program.parent.mkdir()
    program.write_text(PROGRAM.format(name=name, aliases=aliases))
    return run_program("dev", {}, program=program)


def test_a_rename_fails_with_what_disappeared_and_the_alias_fix(tmp_path: Path) -> None:
    before = run_part(tmp_path, "original")
    after = run_part(tmp_path, "renamed")
    message = urn_changes("dev", [r.urn for r in before.resources], after.resources)
    assert message is not None
    old = "urn:pulumi:dev::istio-mesh::test:index:Part$test:index:Part::original"
    new = "urn:pulumi:dev::istio-mesh::test:index:Part$test:index:Part::renamed"
    assert f"  - {old}" in message and f"  + {new}" in message
    assert "DELETE" in message and "pulumi.Alias" in message and REGENERATE in message


def test_a_rename_with_an_alias_passes(tmp_path: Path) -> None:
    before = run_part(tmp_path, "original")
    after = run_part(tmp_path, "renamed", aliases='[pulumi.Alias(name="original")]')
    assert urn_changes("dev", [r.urn for r in before.resources], after.resources) is None


def test_a_new_resource_fails_and_asks_for_a_regeneration(tmp_path: Path) -> None:
    run = run_part(tmp_path, "original")
    snapshot = [urn for urn in (r.urn for r in run.resources) if "original" not in urn]
    message = urn_changes("dev", snapshot, run.resources)
    assert message is not None
    assert "appeared" in message and "disappeared" not in message and REGENERATE in message


def test_aliases_are_recorded_as_the_engine_resolves_them(tmp_path: Path) -> None:
    run = run_part(tmp_path, "renamed", aliases='[pulumi.Alias(name="original")]')
    (renamed,) = [r for r in run.resources if r.name == "renamed"]
    assert renamed.aliases == [
        "urn:pulumi:dev::istio-mesh::test:index:Part$test:index:Part::original"
    ]


# -- what each stack declares, object by object ---------------------------------------

DECLARED = SNAPSHOTS / "declared"
"""`tests/snapshots/declared/<stack>.json`: every resource each stack declares, as
`mesh render` writes `resources.json` (inputs with secrets redacted, parent, provider,
dependencies, options), the stack's outputs and each component's registered outputs.
Any change to what a builder produces shows here as a diff to review; regenerate after
an intended one."""


CRD_TYPE = "kubernetes:apiextensions.k8s.io/v1:CustomResourceDefinition"


def without_crd_schemas(resources: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The resources, each CRD's spec (the Gateway API release's, read from its manifest,
    not ours to keep here) stated by its digest: a change to it still shows."""
    kept = []
    for resource in resources:
        if resource["type"] == CRD_TYPE:
            properties = dict(resource["properties"])
            spec = json.dumps(properties.pop("spec"), sort_keys=True).encode()
            properties["spec"] = f"sha256:{hashlib.sha256(spec).hexdigest()}"
            resource = {**resource, "properties": properties}
        kept.append(resource)
    return kept


def declared_document(stack: str) -> dict[str, object]:
    run = stack_run(stack)
    return {
        "stack": stack,
        "regenerate": REGENERATE,
        "outputs": redact(run.outputs),
        "componentOutputs": redact(run.component_outputs),
        "resources": without_crd_schemas(resources_document(run)),
    }


@pytest.mark.parametrize("stack", STACKS)
def test_declared_resources_match_the_snapshot(stack: str) -> None:
    path = DECLARED / f"{stack}.json"
    document = declared_document(stack)
    text = json.dumps(document, indent=2, sort_keys=True) + "\n"
    if os.environ.get("UPDATE_SNAPSHOTS") == "1":
        DECLARED.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    if not path.exists():
        pytest.fail(
            f"no declared snapshot for stack {stack}; create it: {REGENERATE}", pytrace=False
        )
    recorded = path.read_text()
    if recorded != text:
        diff = difflib.unified_diff(
            recorded.splitlines(), text.splitlines(), "snapshot", "declared now", lineterm="", n=2
        )
        lines = list(diff)
        shown = "\n".join(lines[:80]) + ("\n..." if len(lines) > 80 else "")
        pytest.fail(
            f"what Pulumi.{stack}.yaml declares differs from {path.name}:\n{shown}\n\n"
            f"Review the difference; after an intended change: {REGENERATE}",
            pytrace=False,
        )


def test_every_declared_snapshot_belongs_to_a_stack() -> None:
    assert sorted(path.stem for path in DECLARED.glob("*.json")) == STACKS


# -- stacks deployed before IstioMesh parented their resources -------------------------

STACK_REFERENCE = "pulumi:pulumi:StackReference"
BEFORE_ISTIO_MESH = SNAPSHOTS / "before-istio-mesh"
"""`tests/snapshots/before-istio-mesh/<stack>.json`: the URNs each stack had when its
resources sat at the stack's top level, before `IstioMesh` (0.4.0) became their parent.
Live stacks of that time must keep every resource: IstioMesh's children alias their old
place, and the engine carries the alias down to theirs."""


@pytest.mark.parametrize("stack", STACKS)
def test_stacks_from_before_istio_mesh_keep_every_resource(stack: str) -> None:
    recorded = set(json.loads((BEFORE_ISTIO_MESH / f"{stack}.json").read_text())["urns"])
    resources = stack_run(stack).resources
    live = {resource.urn for resource in resources}
    kept = reached(recorded, resources)
    # A StackReference is read, not created: under its new URN it is read again, and
    # nothing live goes with the old one (a read takes no aliases).
    references = {urn for urn in recorded | live if STACK_REFERENCE in urn.split("::")[2]}
    assert sorted(recorded - kept.keys() - references) == []
    # Nothing else is new: the component itself is the one resource `pulumi up` creates.
    assert sorted(live - set(kept.values()) - references) == [
        f"urn:pulumi:{stack}::istio-mesh::istio-mesh:index:IstioMesh::istio-mesh"
    ]


MOVED = """
import pulumi

class Part(pulumi.ComponentResource):
    def __init__(self, name, opts=None, child=True):
        super().__init__("test:index:Part", name, None, opts)
        if child:
            Part(f"{{name}}-child", pulumi.ResourceOptions(parent=self), child=False)

{declare}
"""


def run_moved(tmp_path: Path, folder: str, declare: str) -> ProgramRun:
    program = tmp_path / folder / "__main__.py"
    program.parent.mkdir()
    program.write_text(MOVED.format(declare=declare))
    return run_program("dev", {}, program=program)


def test_a_component_moved_under_a_new_parent_keeps_its_children_through_its_alias(
    tmp_path: Path,
) -> None:
    before = run_moved(tmp_path, "before", 'Part("part")')
    recorded = [resource.urn for resource in before.resources]
    moved = 'Part("part", pulumi.ResourceOptions(parent=Part("new", child=False){alias}))'
    aliased = run_moved(
        tmp_path, "aliased", moved.format(alias=", aliases=[pulumi.Alias(parent=None)]")
    )
    found = found_under_aliases(set(recorded), aliased.resources)
    part = "urn:pulumi:dev::istio-mesh::test:index:Part"
    assert found[f"{part}$test:index:Part$test:index:Part::part-child"] == (
        f"{part}$test:index:Part::part-child"
    )
    assert urn_changes("dev", recorded, aliased.resources) is not None  # "new" appeared
    assert "disappeared" not in (urn_changes("dev", recorded, aliased.resources) or "")
    unaliased = run_moved(tmp_path, "unaliased", moved.format(alias=""))
    message = urn_changes("dev", recorded, unaliased.resources)
    assert message is not None and "part-child" in message.split("would CREATE")[0]
