"""`istio-mesh:serviceFiles`: the service catalog, kept in YAML files beside the stack.

Why files: the Pulumi CLI hands a program (and every policy pack) the whole stack config
in one environment variable, PULUMI_CONFIG, and Linux caps a single environment string
at 128 KiB (MAX_ARG_STRLEN). At roughly 220 services written inline in
`istio-mesh:services` that variable is larger, exec fails with E2BIG and the program
never starts (pulumi/pulumi#20402). Files also give each team its own part of the
catalog (CODEOWNERS per file).

Each file is a YAML list of entries shaped exactly like `istio-mesh:services` items.
Relative paths resolve against the project directory, the one holding Pulumi.yaml. This
module only reads the files; `components.config` validates their entries exactly as it
validates inline ones. Every problem names the file as the config lists it and the
entry's index in that file:

    istio-mesh:serviceFiles[1] services/payments.yaml[3].port: ...
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import yaml

from components.errors import ConfigProblem

SERVICE_FILES_KEY = "istio-mesh:serviceFiles"
"""Where the list of files lives in the stack config; the root of every path reported here."""

ReadText = Callable[[Path], str]
"""How a file's text is read: from disk, or (for `mesh promote`) from a pending rewrite."""


# --------------------------------------------------------------------------------------
# Where files are, and where their entries are as the user sees them
# --------------------------------------------------------------------------------------


def project_directory() -> Path:
    """The directory relative `serviceFiles` resolve against: the project's (Pulumi.yaml's).

    The language host tells the program (`pulumi.get_root_directory()`). Without one (an
    old CLI, a program started by hand) the working directory stands in, which is the
    project directory whenever `pulumi` runs there. Outside a language host the SDK
    answers a placeholder (`root_directory`), not a path: only an absolute path counts.
    """
    root = pulumi.get_root_directory()
    return Path(root) if root and Path(root).is_absolute() else Path.cwd()


def resolve_service_file(listed: str, root: Path) -> Path:
    """The file `listed` names (relative to `root` unless absolute), symlinks resolved, so
    that two spellings of one file are recognised as one."""
    return (root / listed).resolve()


def file_path(index: int, listed: str) -> str:
    """`istio-mesh:serviceFiles[1] services/payments.yaml`: file `index` of the list, named
    as the config writes it."""
    return f"{SERVICE_FILES_KEY}[{index}] {listed}"


def file_entry_path(index: int, listed: str, entry: int) -> str:
    """`istio-mesh:serviceFiles[1] services/payments.yaml[3]`: entry `entry` of that file."""
    return f"{file_path(index, listed)}[{entry}]"


def listed_files(value: Any) -> list[tuple[int, str]]:
    """(index, path) of each usable item of a raw `serviceFiles` value.

    Anything else (not a list, an item that is not a non-empty string) is reported by the
    config model, where `serviceFiles` is typed; the usable items are read all the same,
    so that their problems come in the same report.
    """
    if not isinstance(value, list):
        return []
    return [(index, item) for index, item in enumerate(value) if isinstance(item, str) and item]


# --------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FileEntry:
    """One entry of a service file, not yet validated."""

    path: str
    """Where it is, as the user sees it: `istio-mesh:serviceFiles[1] services/payments.yaml[3]`."""
    raw: dict[str, Any]
    """The entry as YAML gives it, shaped like an `istio-mesh:services` item."""


@dataclass(frozen=True)
class ServiceFiles:
    """What the listed files hold: their entries in order, or what is wrong with them."""

    entries: list[FileEntry] = field(default_factory=list)
    problems: list[ConfigProblem] = field(default_factory=list)


def read_utf8(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def read_service_files(value: Any, root: Path, read_text: ReadText = read_utf8) -> ServiceFiles:
    """The entries of every file a raw `serviceFiles` value lists, in list order then file
    order, with each file problem (unreadable, not YAML, not a list of mappings, listed
    twice). `root` is the directory relative paths resolve against."""
    entries: list[FileEntry] = []
    problems: list[ConfigProblem] = []
    first_listed: dict[Path, tuple[int, str]] = {}
    for index, listed in listed_files(value):
        where = file_path(index, listed)
        try:
            path = resolve_service_file(listed, root)
        except ValueError as error:  # a NUL character: no file system takes it
            problems.append(ConfigProblem(where, f"not a file path: {error}"))
            continue
        if path in first_listed:
            problems.append(ConfigProblem(where, _listed_twice(*first_listed[path])))
            continue
        first_listed[path] = (index, listed)
        try:
            document = load_yaml(read_text(path))
        except (OSError, UnicodeDecodeError) as error:
            problems.append(ConfigProblem(where, _unreadable(error, path)))
            continue
        except yaml.YAMLError as error:
            problems.append(ConfigProblem(where, _not_yaml(error)))
            continue
        found, wrong = _entries(document, index, listed)
        entries += found
        problems += wrong
    return ServiceFiles(entries, problems)


def _entries(document: Any, index: int, listed: str) -> tuple[list[FileEntry], list[ConfigProblem]]:
    """A file's entries, or the problems of a document that is not a list of mappings.
    An empty file (or `[]`) holds no services, which is fine."""
    if document is None:
        return [], []
    if not isinstance(document, list):
        return [], [
            ConfigProblem(
                file_path(index, listed),
                "must be a YAML list of service entries (each like an istio-mesh:services "
                f"item), got {_kind(document)}",
            )
        ]
    entries, problems = [], []
    for position, raw in enumerate(document):
        where = file_entry_path(index, listed, position)
        if isinstance(raw, dict):
            entries.append(FileEntry(where, raw))
        else:
            problems.append(
                ConfigProblem(where, f"must be a mapping (one service), got {_kind(raw)}")
            )
    return entries, problems


def _kind(value: Any) -> str:
    """What a YAML value is, in YAML's words."""
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "a mapping" if isinstance(value, dict) else "a list"


def _listed_twice(first_index: int, first_listed: str) -> str:
    return (
        f"the same file as {SERVICE_FILES_KEY}[{first_index}] ({first_listed}): "
        "list each file once, or its services are defined twice"
    )


def _unreadable(error: OSError | UnicodeDecodeError, path: Path) -> str:
    if isinstance(error, UnicodeDecodeError):
        return f"cannot be read: {path} is not UTF-8 text"
    if isinstance(error, FileNotFoundError):
        # The resolved path shows which directory a relative path was taken from.
        return f"cannot be read: no such file {path}"
    return f"cannot be read: {path}: {error.strerror or error}"


def _not_yaml(error: yaml.YAMLError) -> str:
    """`not valid YAML: <what> (line L, column C)`, lines and columns counted from 1."""
    if isinstance(error, yaml.MarkedYAMLError) and error.problem_mark is not None:
        mark = error.problem_mark
        return f"not valid YAML: {error.problem} (line {mark.line + 1}, column {mark.column + 1})"
    return f"not valid YAML: {error}"


# --------------------------------------------------------------------------------------
# YAML, as strict as the Pulumi CLI is with a stack file
# --------------------------------------------------------------------------------------


_SafeLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
"""libyaml's parser where PyYAML has it (its wheels do): a 1000-service catalog loads in
under a second instead of about four."""


class _UniqueKeyLoader(_SafeLoader):  # type: ignore[valid-type,misc]  # a base chosen at import
    """PyYAML's safe loader, refusing a key written twice in one mapping.

    PyYAML silently keeps the last one (a second `port:` at the end of an entry would win
    unnoticed); the Pulumi CLI refuses such a stack file, and a service in a file must not
    mean what the same service written inline could not."""


_MERGE_TAG = "tag:yaml.org,2002:merge"


def _mapping_with_unique_keys(loader: _UniqueKeyLoader, node: yaml.MappingNode) -> Any:
    seen: set[Hashable] = set()
    for key_node, _ in node.value:
        if key_node.tag == _MERGE_TAG:
            continue  # `<<: *shared` may be overridden by the keys beside it: not a repeat
        key = loader.construct_object(key_node)
        if not isinstance(key, Hashable):
            continue  # construct_mapping refuses it, as PyYAML always does
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"key {key!r} is written twice in one mapping", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node)


_UniqueKeyLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_with_unique_keys
)


def load_yaml(text: str) -> Any:
    """One YAML document as plain data, refusing a key written twice in a mapping."""
    return yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader: plain data only


def load_yaml_all(text: str) -> list[Any]:
    """Every document of a YAML stream (`---`-separated), as strict as `load_yaml`."""
    return list(yaml.load_all(text, Loader=_UniqueKeyLoader))


def read_text_file(path: Path) -> str:
    """A file's text; `ValueError` naming the file when it is not UTF-8 text."""
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise ValueError(
            f"{path}: not UTF-8 text (byte {error.start}: {error.object[error.start]:#04x})"
        ) from None
