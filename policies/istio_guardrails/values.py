"""Reading resource properties safely: missing, mistyped and unknown values.

The pack hands rules the resource inputs wrapped in pulumi-policy's unknown-checking
proxy (a `Mapping`/`Sequence`, not a `dict`/`list`): reading a value that is unknown
during preview raises `UnknownValueError`. The helpers here keep that behaviour for
plain dicts too (the unknown sentinels are just strings there), so a rule reads a
security-relevant field only through them and can never mistake "unknown" for "unset".
The adapters (`pack.py`) turn the exception into a violation: the pack fails closed.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import cache
from typing import Any, NamedTuple

from pulumi_policy.proxy import UnknownValueError as UnknownValueError

SECURITY = "security.istio.io"
NETWORKING = "networking.istio.io"
"""Istio API groups; rules match any version of them."""

UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"
"""Pulumi's wire sentinel for an unknown string (the one tests and fixtures use)."""

# Every sentinel Pulumi uses for a value that is not known until the update runs.
_UNKNOWN_SENTINELS = frozenset(
    {
        "1c4a061d-8072-4f0a-a4cb-0ff528b18fe7",  # boolean
        "3eeb2bf0-c639-47a8-9e75-3b44932eb421",  # number
        UNKNOWN,  # string
        "6a19a0b0-7e62-4c92-b797-7f8e31da9cc2",  # array
        "030794c1-ac77-496b-92df-f27374a8bd58",  # asset
        "e48ece36-62e2-4504-bad9-02848725956a",  # archive
        "dd056dcd-154b-4c76-9bd3-c8f88648b5ff",  # object
    }
)

DEFAULT_NAMESPACE = "default"
"""Where Kubernetes puts a namespaced object whose manifest names no namespace."""


class Resource(NamedTuple):
    """What a stack rule needs of one resource (a `pulumi_policy.PolicyResource`'s core)."""

    type: str
    urn: str
    props: Mapping[str, Any]


class K8sType(NamedTuple):
    """`kubernetes:networking.istio.io/v1:VirtualService` -> group, version, kind."""

    group: str
    version: str
    kind: str


@cache  # every rule asks for every resource; a stack has a few dozen distinct types
def k8s_type(resource_type: str) -> K8sType | None:
    """Parse a pulumi-kubernetes type token; None for anything else.

    The core group is spelled `core/v1` in type tokens and `v1` in manifests; both give
    group "". Any version is accepted, so Istio's v1alpha3, v1beta1 and v1 all match.
    """
    parts = resource_type.split(":")
    if len(parts) != 3 or parts[0] != "kubernetes":
        return None
    api_version, kind = parts[1], parts[2]
    group, _, version = api_version.rpartition("/")
    if group == "core":
        group = ""
    return K8sType(group, version, kind)


def is_unknown(value: Any) -> bool:
    return isinstance(value, str) and value in _UNKNOWN_SENTINELS


def _known(value: Any, where: str) -> Any:
    if is_unknown(value):
        raise UnknownValueError(value, [where])
    return value


def mapping(value: Any, where: str = "value") -> Mapping[str, Any]:
    """`value` as a mapping; {} when missing or not a mapping."""
    value = _known(value, where)
    return value if isinstance(value, Mapping) else {}


def sequence(value: Any, where: str = "value") -> Sequence[Any]:
    """`value` as a list; [] when missing or not a list (a string is not a list here)."""
    value = _known(value, where)
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        return value
    return []


def text(value: Any, where: str = "value") -> str | None:
    """`value` as a string; YAML booleans and numbers become their manifest spelling."""
    value = _known(value, where)
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(int(value)) if float(value).is_integer() else str(value)
    return value if isinstance(value, str) else None


def number(value: Any, where: str = "value") -> float | None:
    """`value` as a number (gRPC carries every number as a float); None if not one."""
    value = _known(value, where)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def port_number(value: Any, where: str = "value") -> int | None:
    """`value` as a port number (gRPC carries it as a float); None if not a number."""
    found = number(value, where)
    return None if found is None else int(found)


def boolean(value: Any, where: str = "value") -> bool | None:
    """`value` as a boolean, accepting the strings Helm `--set` would produce."""
    value = _known(value, where)
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return None


def metadata(props: Mapping[str, Any]) -> Mapping[str, Any]:
    return mapping(props.get("metadata"), "metadata")


def name_of(props: Mapping[str, Any]) -> str:
    return text(metadata(props).get("name"), "metadata.name") or ""


def namespace_of(props: Mapping[str, Any]) -> str:
    return text(metadata(props).get("namespace"), "metadata.namespace") or DEFAULT_NAMESPACE


def labels_of(meta: Mapping[str, Any]) -> Mapping[str, Any]:
    return mapping(meta.get("labels"), "metadata.labels")


def string_map(value: Mapping[str, Any], where: str) -> dict[str, str]:
    """A label-like map as plain strings, failing closed on an unknown value."""
    return {key: text(value[key], f"{where}.{key}") or "" for key in value}


def kind_is(resource: Resource, group: str, *kinds: str) -> bool:
    """Whether `resource` is a Kubernetes object of `group` and one of `kinds`."""
    parsed = k8s_type(resource.type)
    return parsed is not None and parsed.group == group and parsed.kind in kinds


def from_manifest(manifest: Mapping[str, Any], urn: str = "") -> Resource:
    """A `Resource` for a plain manifest, typed the way pulumi-kubernetes types it."""
    api_version = str(manifest.get("apiVersion", ""))
    if "/" not in api_version:
        api_version = f"core/{api_version}"
    return Resource(f"kubernetes:{api_version}:{manifest.get('kind', '')}", urn, manifest)


def unknown_message(error: UnknownValueError) -> str:
    """The violation text for a value this rule could not see during preview."""
    path = ".".join(str(p) for p in error.props)
    return (
        f"{path} is unknown during preview, so this rule cannot verify it and fails closed; "
        "make the value known at preview time (do not compute it from another "
        "resource's outputs)"
    )


class Findings:
    """Collects (urn, message) pairs of a stack rule, unknown values included.

    `with findings.reading(resource):` wraps everything a stack rule reads from one
    resource: an unknown value becomes a violation on that resource, and the rule goes
    on with the rest of the stack instead of giving up.
    """

    def __init__(self) -> None:
        self.items: list[tuple[str | None, str]] = []

    def add(self, urn: str | None, message: str) -> None:
        self.items.append((urn, message))

    @contextmanager
    def reading(self, resource: Resource) -> Iterator[None]:
        try:
            yield
        except UnknownValueError as error:
            self.add(resource.urn, unknown_message(error))
