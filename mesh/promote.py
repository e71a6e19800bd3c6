"""`python -m mesh promote`: copy the promotable settings of one stack file into another.

    python -m mesh promote --from dev --to prod [--dry-run] [--keep-previous]
    python -m mesh promote --from-file PATH --to-file PATH [--dry-run] [--keep-previous]

Prod runs what dev has run: after a change has proven itself in dev, this command
brings it into `Pulumi.prod.yaml`, keeping prod's comments, key order and its own
settings, prints the diff of the target file and writes it (not with `--dry-run`).

What is promoted:

- Istio versions, through revision tags. For every tag the target defines, the target
  gets the revision the source's tag points at (`stable: 1-31-1`), and the source's
  `defaultRevision`. A tag the target does not define is not added (prod usually has
  no `canary`); a target tag the source lacks keeps its revision. The target's
  `revisions` then list exactly the revisions its tags and `defaultRevision` point at:
  the source's canary revision does not reach prod before a prod tag points at it, and
  a revision no prod tag points at any more is removed. Pods injected by a removed
  revision lose their istiod until restarted; `--keep-previous` also keeps the revisions
  the target's tags pointed at before, for the restart, and a later promotion without
  it removes them (docs/RUNBOOKS.md).
- Route weights: `services[*].versions[*].weight` of the services (same name and
  namespace) and versions both stacks have, wherever each stack writes them: inline in
  `istio-mesh:services` or in a file of `istio-mesh:serviceFiles` (relative paths from
  the project directory). A target service kept in a file is updated in that file, and
  the diff shows every file that changes. Services and versions are never added.

Never promoted: gateways, namespaces, highAvailability, protect, outboundTrafficPolicy,
observability, promotion, `kubernetes:context`, and everything else.

The result must still be a valid stack config (`components.config.parse_config`, as
the program reads it, service files included); otherwise no file is written.

Exit status: 0 promoted, or nothing to promote; 2 unusable input (missing file, bad
YAML, an invalid stack config before or after promotion).
"""

from __future__ import annotations

import argparse
import copy
import difflib
import io
import json
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml as pyyaml
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError

from components.config import IstioSettings, MeshConfig, parse_config, raw_config_from_strings
from components.errors import ConfigError
from components.service_files import read_text_file, read_utf8, resolve_service_file
from mesh.cli import add_from_to_arguments
from mesh.program import PROJECT_DIR, StackFileError, load_stack_file, stack_file_for

ISTIO_KEY = "istio-mesh:istio"
SERVICES_KEY = "istio-mesh:services"

INDENTS = ((2, 4, 2), (2, 2, 0), (4, 4, 2), (4, 6, 4), (4, 4, 0))
"""(mapping, sequence, offset) styles tried in turn: ruamel cannot detect a file's
indentation, so the one that writes the target back closest to how it is is used."""


class PromoteError(Exception):
    """Input promotion cannot use; reported with exit status 2."""


# --------------------------------------------------------------------------------------
# Reading and writing stack files
# --------------------------------------------------------------------------------------


def read_config(path: Path) -> MeshConfig:
    """The stack file's `istio-mesh:*` config, read and validated as the program does:
    its service files included, relative ones from the project directory (as for
    `mesh render --stack-file`)."""
    try:
        return parse_config(raw_config_from_strings(load_stack_file(path)), root=PROJECT_DIR)
    except StackFileError as error:
        raise PromoteError(str(error)) from None
    except ConfigError as error:
        raise PromoteError(f"{path}: {error}") from None


def check_text(text: str, name: str, service_files: Mapping[Path, str] | None = None) -> None:
    """Raise `ConfigError` when `text` would not be a valid stack file, reading the
    service files in `service_files` (resolved path -> text) from there, not from disk.

    The text goes through `load_stack_file` (in a scratch directory) so it is read exactly
    as the Pulumi CLI hands config to the program: PyYAML, values as JSON strings.
    """
    pending = service_files or {}

    def read_text(path: Path) -> str:
        return pending[path] if path in pending else read_utf8(path)

    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / name
        path.write_text(text)
        raw = raw_config_from_strings(load_stack_file(path))
        parse_config(raw, root=PROJECT_DIR, read_text=read_text)


def round_trip_yaml(text: str) -> tuple[YAML, Any]:
    """`text` loaded in ruamel's round-trip mode (comments, key order and flow style are
    kept), and the YAML object set to write it back with the fewest changed lines (none,
    for most files). Raises ruamel's `YAMLError`."""
    yaml = YAML()
    yaml.preserve_quotes = True
    yaml.width = 4096  # never re-wrap the user's long lines
    # `[{version: 1.30.5}]` stays so; ruamel's default writes `[version: 1.30.5]`.
    yaml.brace_single_entry_mapping_in_flow_sequence = True
    document = yaml.load(text)
    lines = text.splitlines()
    best: tuple[int, tuple[int, int, int]] | None = None
    for indent in INDENTS:
        mapping, sequence, offset = indent
        yaml.indent(mapping=mapping, sequence=sequence, offset=offset)
        differing = len(set(lines).symmetric_difference(dump(yaml, document).splitlines()))
        if differing == 0:
            return yaml, document
        if best is None or differing < best[0]:
            best = (differing, indent)
    assert best is not None
    mapping, sequence, offset = best[1]
    yaml.indent(mapping=mapping, sequence=sequence, offset=offset)
    return yaml, document


def dump(yaml: YAML, document: Any) -> str:
    stream = io.StringIO()
    yaml.dump(document, stream)
    return stream.getvalue()


@dataclass(frozen=True)
class Rewrite:
    """A target file before and after the promotion (the same text when untouched)."""

    path: Path
    before: str
    after: str


@dataclass
class _Editable:
    """A YAML file the promotion edits in place: its text, the round-trip document the
    edits go into, and that document as ruamel writes it untouched, so that a file ruamel
    cannot reproduce byte for byte does not count as changed."""

    path: Path
    text: str
    yaml: YAML
    document: Any
    baseline: str

    @classmethod
    def load(cls, path: Path, shape: Callable[[Any], Any] = lambda document: document) -> _Editable:
        """Read `path`; `shape` gives the document to edit from the one read. Raises
        `PromoteError`."""
        try:
            text = read_utf8(path)
            yaml, document = round_trip_yaml(text)
        except (OSError, UnicodeDecodeError) as error:
            raise PromoteError(f"{path}: {error}") from None
        except YAMLError as error:  # e.g. a duplicate key, which PyYAML lets pass
            raise PromoteError(f"{error}") from None
        document = shape(document)
        return cls(path, text, yaml, document, dump(yaml, document))

    def rewrite(self) -> Rewrite:
        promoted = dump(self.yaml, self.document)
        if promoted == self.baseline:
            return Rewrite(self.path, self.text, self.text)
        return Rewrite(self.path, self.text, keep_layout(self.text, self.baseline, promoted))


def _with_config_mapping(document: Any) -> CommentedMap:
    """A stack document with a `config` mapping to promote into (made when missing)."""
    if not isinstance(document, CommentedMap):
        document = CommentedMap()
    if not isinstance(document.get("config"), CommentedMap):
        document["config"] = CommentedMap()
    return document


def _position(opcodes: Sequence[tuple[str, int, int, int, int]], line: int, last: bool) -> int:
    """Where baseline line boundary `line` falls in the other text of a SequenceMatcher
    (the first or the last place, when lines were inserted right there)."""
    places = []
    for tag, i1, i2, j1, j2 in opcodes:
        if tag == "equal" and i1 <= line <= i2:
            places.append(j1 + line - i1)
        elif line in (i1, i2):
            places.append(j1 if line == i1 else j2)
    if not places:
        raise ValueError(f"line {line} is inside a changed block")
    return max(places) if last else min(places)


def keep_layout(original: str, baseline: str, promoted: str) -> str:
    """`promoted`, with the original's layout wherever the promotion changed nothing.

    ruamel cannot write every layout back as it read it (a flow mapping wrapped over two
    lines comes back on one). `baseline` is the untouched document as ruamel writes it:
    baseline -> original is ruamel's reformatting, baseline -> promoted the promotion.
    This applies the promotion's hunks to the original (a three-way merge); a hunk that
    touches reformatted lines takes them over in ruamel's layout. If the merge would not
    mean the same as `promoted`, `promoted` is returned as it is.
    """
    base, old, new = (text.splitlines(keepends=True) for text in (baseline, original, promoted))
    layout = difflib.SequenceMatcher(None, base, old, autojunk=False).get_opcodes()
    edits = difflib.SequenceMatcher(None, base, new, autojunk=False).get_opcodes()
    reformatted = [(i1, i2) for tag, i1, i2, _, _ in layout if tag != "equal"]

    hunks: list[tuple[int, int]] = []  # baseline line ranges the promotion rewrites
    for tag, start, end, _, _ in edits:
        if tag == "equal":
            continue
        for r1, r2 in reformatted:  # sorted and disjoint: one pass widens completely
            if r1 < end and start < r2:
                start, end = min(start, r1), max(end, r2)
        if hunks and start <= hunks[-1][1]:
            start, end = min(start, hunks[-1][0]), max(end, hunks.pop()[1])
        hunks.append((start, end))

    merged: list[str] = []
    cursor = 0
    try:
        for start, end in hunks:
            # Lines only the original has, right at a hunk's edge, stay outside it.
            old_start = _position(layout, start, last=True)
            old_end = _position(layout, end, last=False) if end > start else old_start
            merged += old[cursor:old_start]
            merged += new[_position(edits, start, last=False) : _position(edits, end, last=True)]
            cursor = old_end
    except ValueError:
        return promoted
    merged += old[cursor:]
    result = "".join(merged)
    return result if pyyaml.safe_load(result) == pyyaml.safe_load(promoted) else promoted


# --------------------------------------------------------------------------------------
# Istio revisions, tags and defaultRevision
# --------------------------------------------------------------------------------------


def _put(mapping: CommentedMap, key: str, value: Any, after: Sequence[str] = ()) -> None:
    """Set `key`: in place when present (its comments stay), else right after the first
    key of `after` the mapping has (or first)."""
    if key in mapping:
        mapping[key] = value
        return
    keys = list(mapping)
    position = next((keys.index(k) + 1 for k in after if k in mapping), 0)
    mapping.insert(position, key, value)


def _revision_entries(raw: Any, settings: IstioSettings) -> dict[str, Any]:
    """Revision name -> its `revisions` entry as written (a default one when unwritten)."""
    written = raw.get("revisions") if isinstance(raw, dict) else None
    if isinstance(written, list):
        # `settings` was parsed from this same list, entry for entry.
        return {typed.name: entry for typed, entry in zip(settings.revisions, written, strict=True)}
    return {typed.name: CommentedMap(version=typed.version) for typed in settings.revisions}


def _without_comments(entry: Any) -> Any:
    """A source entry for the target: its data, not its comments (they describe the source)."""
    if isinstance(entry, dict):
        return CommentedMap((key, copy.deepcopy(value)) for key, value in entry.items())
    return copy.deepcopy(entry)


def promote_istio(
    source: IstioSettings,
    source_raw: Any,
    target: IstioSettings,
    target_config: CommentedMap,
    names: tuple[str, str],
    keep_previous: bool = False,
) -> list[str]:
    """Promote tags, defaultRevision and the revisions they need into `target_config`
    (the target's `config` mapping, edited in place). Returns notes for the user.

    `keep_previous` also keeps the revisions the target's tags and defaultRevision point
    at before the promotion: their pods keep a control plane until they are restarted.
    """
    src, dst = names
    notes: list[str] = []
    source_tags, target_tags = source.tag_map, target.tag_map
    tags: dict[str, str] = {}
    for tag, revision in target_tags.items():
        if tag in source_tags:
            tags[tag] = source_tags[tag]
        else:
            tags[tag] = revision
            notes.append(f"{dst} tag {tag!r} is not defined in {src}: it stays at {revision}")
    for tag in source_tags.keys() - target_tags.keys():
        notes.append(
            f"{src} tag {tag!r} (-> {source_tags[tag]}) is not defined in {dst}: not added"
        )
    default = source.default_revision_name
    needed = {default, *tags.values()}
    if keep_previous:
        previous = {target.default_revision_name, *target_tags.values()} - needed
        needed |= previous
        notes += [
            f"revision {name} stays in {dst} until its pods are restarted: promote again "
            "without --keep-previous to remove it"
            for name in sorted(previous)
        ]

    # Revisions the target keeps stay in its order; new ones follow in the source's.
    current = [revision.name for revision in target.revisions]
    names_in_source = [revision.name for revision in source.revisions]
    revisions = [name for name in current if name in needed]
    revisions += [name for name in names_in_source if name in needed and name not in revisions]
    for name in current:
        if name not in needed:
            notes.append(
                f"revision {name} leaves {dst}: pods still on it lose their istiod, so "
                "restart them first (--keep-previous) or right after `pulumi up` "
                "(kubectl get pods -A -L istio.io/rev; docs/RUNBOOKS.md)"
            )

    if revisions == current and tags == target_tags and default == target.default_revision_name:
        return notes
    istio = target_config.get(ISTIO_KEY)
    if not isinstance(istio, CommentedMap):
        istio = CommentedMap()
        _put(target_config, ISTIO_KEY, istio, after=["kubernetes:context"])
    if revisions != current:
        target_entries = _revision_entries(istio, target)
        source_entries = _revision_entries(source_raw, source)
        listed = CommentedSeq(
            target_entries[name]
            if name in target_entries
            else _without_comments(source_entries[name])
            for name in revisions
        )
        old = istio.get("revisions")
        if isinstance(old, CommentedSeq) and old.fa.flow_style():
            # `revisions: [{version: 1.30.5}]` stays on one line, new entries included.
            listed.fa.set_flow_style()
            for entry in listed:
                if isinstance(entry, CommentedMap):
                    entry.fa.set_flow_style()
        _put(istio, "revisions", listed)

    written_tags = istio.get("tags")
    if isinstance(written_tags, dict):
        for tag, revision in tags.items():
            if written_tags[tag] != revision:
                written_tags[tag] = revision
    elif tags != {"stable": default}:
        # The target relied on the implicit `{stable: <defaultRevision>}`, which no longer
        # says what it runs.
        _put(istio, "tags", CommentedMap(tags), after=["revisions"])

    # An unwritten defaultRevision means the first revision: write it when that is wrong.
    written = "defaultRevision" in istio
    if (written or default != revisions[0]) and istio.get("defaultRevision") != default:
        _put(istio, "defaultRevision", default, after=["tags", "revisions"])
    return notes


# --------------------------------------------------------------------------------------
# Route weights
# --------------------------------------------------------------------------------------


def _services_by_key(services: Any) -> dict[tuple[str, str], dict[str, Any]]:
    """(namespace, name) -> the entry, for entries that are mappings."""
    if not isinstance(services, list):
        return {}
    return {
        (str(entry.get("namespace")), str(entry.get("name"))): entry
        for entry in services
        if isinstance(entry, dict)
    }


def _versions(service: dict[str, Any]) -> dict[str, Any]:
    versions = service.get("versions")
    return versions if isinstance(versions, dict) else {}


def promote_weights(
    source_services: Any, target_services: Any, names: tuple[str, str]
) -> list[str]:
    """Copy the weights of the services and versions both lists have into
    `target_services` (edited in place). Returns notes for the user."""
    src, dst = names
    notes: list[str] = []
    source_by_key = _services_by_key(source_services)
    target_by_key = _services_by_key(target_services)
    if not source_by_key or not target_by_key:
        return notes
    for key, target_service in target_by_key.items():
        where = "/".join(key)
        source_service = source_by_key.get(key)
        if source_service is None:
            notes.append(f"{dst} service {where} is not in {src}: its weights stay")
            continue
        source_versions, target_versions = _versions(source_service), _versions(target_service)
        for version, target_version in target_versions.items():
            source_version = source_versions.get(version)
            if not isinstance(source_version, dict) or not isinstance(target_version, dict):
                notes.append(f"{dst} service {where} version {version} is not in {src}")
                continue
            if "weight" in source_version and source_version["weight"] != target_version.get(
                "weight"
            ):
                target_version["weight"] = source_version["weight"]
        for version in source_versions.keys() - target_versions.keys():
            notes.append(f"{src} service {where} version {version} is not in {dst}: not added")
    for key in source_by_key.keys() - target_by_key.keys():
        notes.append(f"{src} service {'/'.join(key)} is not in {dst}: not added")
    return notes


# --------------------------------------------------------------------------------------
# The command
# --------------------------------------------------------------------------------------


def _entries(value: Any) -> list[Any]:
    """The items of a list of service entries as written (none for anything else)."""
    return list(value) if isinstance(value, list) else []


def promote_file(
    source_path: Path, target_path: Path, names: tuple[str, str], keep_previous: bool = False
) -> tuple[list[Rewrite], list[str]]:
    """(rewrites of the target stack file, then of each of its service files; notes).
    Raises `PromoteError`."""
    source, target = read_config(source_path), read_config(target_path)
    try:
        source_doc = YAML().load(read_text_file(source_path))
    except YAMLError as error:  # e.g. a duplicate key
        raise PromoteError(f"{error}") from None
    except ValueError as error:  # not UTF-8 text
        raise PromoteError(str(error)) from None
    # read_config has checked both are mappings with a mapping (or nothing) as `config`.
    source_config = (source_doc or {}).get("config") or {}
    stack = _Editable.load(target_path, _with_config_mapping)
    target_config = stack.document["config"]
    # read_config has checked each is a list of mappings (or empty).
    service_files = [
        _Editable.load(resolve_service_file(listed, PROJECT_DIR)) for listed in target.service_files
    ]

    notes = promote_istio(
        source.istio,
        source_config.get(ISTIO_KEY),
        target.istio,
        target_config,
        names,
        keep_previous,
    )
    # The source's whole catalog as it runs it, inline and from files alike; the target's
    # entries as written, so that each weight changes where it is written.
    target_services = _entries(target_config.get(SERVICES_KEY))
    for service_file in service_files:
        target_services += _entries(service_file.document)
    notes += promote_weights(
        [service.model_dump(by_alias=True) for service in source.services],
        target_services,
        names,
    )
    return [stack.rewrite(), *(service_file.rewrite() for service_file in service_files)], notes


def _display(path: Path) -> str:
    """The path as the user would type it: relative below the working directory."""
    absolute = path.absolute()
    return (
        str(absolute.relative_to(Path.cwd())) if absolute.is_relative_to(Path.cwd()) else str(path)
    )


def _stack_name(path: Path) -> str:
    """`Pulumi.prod.yaml` -> `prod`; any other file name as it is."""
    name = path.name
    if name.startswith("Pulumi.") and name.endswith((".yaml", ".yml")):
        return name.removeprefix("Pulumi.").rsplit(".", 1)[0]
    return name


def parse_arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="mesh promote",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_from_to_arguments(parser)
    parser.add_argument("--dry-run", action="store_true", help="print the diff, write nothing")
    parser.add_argument(
        "--format",
        choices=("text", "json"),
        default="text",
        help="text: the unified diff; json: {from, to, notes, changes [{file, diff}], written}",
    )
    parser.add_argument(
        "--keep-previous",
        action="store_true",
        help="keep the revisions the target's tags point at now, until its pods are restarted",
    )
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse_arguments(argv)
    try:
        source_path = args.from_file or stack_file_for(args.source)
        target_path = args.to_file or stack_file_for(args.target)
    except StackFileError as error:
        print(f"promote: {error}", file=sys.stderr)
        return 2
    names = (_stack_name(source_path), _stack_name(target_path))
    if source_path.resolve() == target_path.resolve():
        print(f"{_display(source_path)}: source and target are the same file", file=sys.stderr)
        return 2
    try:
        rewrites, notes = promote_file(source_path, target_path, names, args.keep_previous)
    except PromoteError as error:
        print(error, file=sys.stderr)
        return 2
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    changed = [rewrite for rewrite in rewrites if rewrite.after != rewrite.before]
    # --format json: what text mode prints, as one document on stdout at the end.
    report: dict[str, Any] = {"from": names[0], "to": names[1], "notes": notes, "changes": []}

    def finish(written: bool) -> None:
        if args.format == "json":
            print(json.dumps({**report, "written": written}, indent=2))

    if not changed:
        print(f"nothing to promote: {names[1]} is up to date with {names[0]}", file=sys.stderr)
        finish(False)
        return 0

    for rewrite in changed:
        shown = _display(rewrite.path)
        diff = "".join(
            difflib.unified_diff(
                rewrite.before.splitlines(keepends=True),
                rewrite.after.splitlines(keepends=True),
                fromfile=f"{shown} ({names[1]})",
                tofile=f"{shown} (promoted from {names[0]})",
            )
        )
        report["changes"].append({"file": shown, "diff": diff})
        if args.format == "text":
            sys.stdout.write(diff)
    shown = ", ".join(_display(rewrite.path) for rewrite in changed)
    stack, *service_files = rewrites
    try:
        check_text(stack.after, target_path.name, {r.path: r.after for r in service_files})
    except ConfigError as error:
        print(
            f"the promoted {names[1]} config would be invalid; {shown} not written:\n{error}",
            file=sys.stderr,
        )
        return 2
    if args.dry_run:
        print(f"dry run: {shown} not written", file=sys.stderr)
        finish(False)
        return 0
    for rewrite in changed:
        rewrite.path.write_text(rewrite.after, encoding="utf-8")
    print(f"wrote {shown}: review and commit; the promotion workflow deploys it", file=sys.stderr)
    finish(True)
    return 0
