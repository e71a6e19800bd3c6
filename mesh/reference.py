"""Validate what we emit against the reference data of the Istio release we run.

Istio rejects (or, worse, silently ignores) what it does not understand, and it does so only
when a resource reaches the cluster: the API server checks custom resources against the
OpenAPI schema and the CEL rules (`x-kubernetes-validations`) of Istio's CRDs, and Helm
ignores value keys a chart does not read (a typo such as `autoscaleMinn` just leaves the
default in place). This module moves both checks before `pulumi up`, without a cluster:

- `Reference.validate(obj)` checks one Istio custom resource the way the API server's strict
  field validation does: the CRD version must be served, unknown fields are errors, types,
  enums, bounds, lengths, patterns and `oneOf`/`anyOf`/`not` are checked, and every CEL rule
  is evaluated where it is attached (with `cel-python`, extended with the Kubernetes CEL
  functions the Istio CRDs use). A rule the library cannot run is recorded in
  `Reference.skipped_cel_rules`, never silently dropped and never reported as a failure.
- `Reference.missing_value_keys(chart, values)` checks that every Helm value key we set
  exists in that chart's `values.yaml` (and, for the gateway chart, validates the values
  against its `values.schema.json`).

The reference data is not part of this project: it is read from the directory named by the
environment variable `ISTIO_REFERENCE` (for example `.../istio-1.30.3`, holding
`crd-all.gen.yaml` and `charts/*.values.yaml`), so a user can point it at the files of the
Istio version they actually run.
"""

from __future__ import annotations

import base64
import binascii
import copy
import difflib
import functools
import ipaddress
import json
import os
import re
import sys
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import yaml

try:  # Go's regexp is RE2: prefer the same engine for `pattern` (cel-python depends on it).
    import re2 as _regex
except ImportError:  # pragma: no cover - re2 comes with cel-python
    _regex = re

__all__ = [
    "ENV_VAR",
    "GATEWAY_API_ENV_VAR",
    "Reference",
    "ReferenceUnavailable",
    "load_gateway_api_reference",
    "load_reference",
]

ENV_VAR: Final = "ISTIO_REFERENCE"

Json = Any
Schema = dict[str, Any]

_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class ReferenceUnavailable(RuntimeError):
    """The Istio reference data cannot be found or read."""


# --------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------


def load_reference(path: str | os.PathLike[str] | None = None) -> Reference:
    """Load (once per directory) the Istio reference data.

    `path` is the release folder (holding `crd-all.gen.yaml` and `charts/`); when None, the
    environment variable `ISTIO_REFERENCE` names it. Raises `ReferenceUnavailable` when it is
    unset or does not hold the expected files.
    """
    if path is None:
        env = os.environ.get(ENV_VAR, "").strip()
        if not env:
            raise ReferenceUnavailable(
                f"Istio reference data not configured: set {ENV_VAR} to the folder of an "
                "Istio release holding crd-all.gen.yaml and charts/*.values.yaml "
                "(for example .../reference/istio-1.30.3)"
            )
        path = env
    return _load_cached(str(Path(path).expanduser().resolve()))


@functools.lru_cache(maxsize=8)
def _load_cached(path: str) -> Reference:
    return Reference(Path(path))


GATEWAY_API_ENV_VAR: Final = "GATEWAY_API_REFERENCE"


@functools.lru_cache(maxsize=2)
def load_gateway_api_reference(path: str | None = None) -> Reference:
    """The Gateway API's CRDs (`standard-install.yaml` of the version Istio is built
    against) to validate Gateway API objects with; `path` or `GATEWAY_API_REFERENCE`."""
    found = path or os.environ.get(GATEWAY_API_ENV_VAR, "").strip()
    if not found:
        raise ReferenceUnavailable(
            f"Gateway API reference data not configured: set {GATEWAY_API_ENV_VAR} to a "
            "standard-install.yaml (for example .../reference/gateway-api-v1.5.1/"
            "standard-install.yaml)"
        )
    file = Path(found).expanduser().resolve()
    return Reference(file.parent, crd_file=file)


def _read_yaml_documents(path: Path) -> list[Any]:
    try:
        with path.open(encoding="utf-8") as stream:
            return [doc for doc in yaml.load_all(stream, Loader=_Loader) if doc is not None]
    except OSError as exc:
        raise ReferenceUnavailable(
            f"cannot read {path}: {exc.strerror or exc}; set {ENV_VAR} to the folder of an "
            "Istio release holding crd-all.gen.yaml and charts/*.values.yaml"
        ) from exc


def _defaulted(value: Json, schema: Mapping[str, Any]) -> Json:
    """`value` with the schema's `default`s filled in where a field is absent, as the API
    server does before it validates: CEL rules may read a defaulted field unguarded (the
    Gateway API's `parentRefs[].group`, `tls.mode`, `rules[].matches`)."""
    if isinstance(value, Mapping):
        properties = schema.get("properties") or {}
        filled = {key: _defaulted(item, properties.get(key) or {}) for key, item in value.items()}
        for key, sub in properties.items():
            if key not in filled and isinstance(sub, Mapping) and "default" in sub:
                filled[key] = _defaulted(copy.deepcopy(sub["default"]), sub)
        return filled
    if isinstance(value, list):
        items = schema.get("items") or {}
        return [_defaulted(item, items) for item in value]
    return value


# --------------------------------------------------------------------------------------
# Helpers for messages and paths
# --------------------------------------------------------------------------------------


def _show(value: Json, limit: int = 80) -> str:
    try:
        text = json.dumps(value, ensure_ascii=False, sort_keys=True, default=repr)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _field(path: str, name: str) -> str:
    if _IDENT.fullmatch(name):
        return f"{path}.{name}" if path else name
    return f"{path}[{name}]"


def _item(path: str, index: int | str) -> str:
    return f"{path}[{index}]"


def _suggest(name: str, candidates: list[str]) -> str:
    close = difflib.get_close_matches(name, candidates, n=1, cutoff=0.75)
    return f' (did you mean "{close[0]}"?)' if close else ""


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


_IDENT = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*")
_DNS1123_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_DNS1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_QUALIFIED_NAME = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
_LABEL_VALUE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")
_DATE_TIME = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})")

_INT_RANGES: Final[dict[str, tuple[int, int]]] = {
    "int32": (-(2**31), 2**31 - 1),
    "int64": (-(2**63), 2**63 - 1),
    "uint32": (0, 2**32 - 1),
    "uint64": (0, 2**64 - 1),
}

_OBJECT_META_FIELDS: Final = _words(
    "name generateName namespace selfLink uid resourceVersion generation creationTimestamp "
    "deletionTimestamp deletionGracePeriodSeconds labels annotations ownerReferences "
    "finalizers managedFields"
)


def _is_int(value: Json) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    # JSON has one number type: the API server accepts 3.0 for an integer field.
    return isinstance(value, float) and value.is_integer()


def _type_ok(value: Json, type_name: str) -> bool:
    if type_name == "object":
        return isinstance(value, Mapping)
    if type_name == "array":
        return isinstance(value, list | tuple)
    if type_name == "string":
        return isinstance(value, str)
    if type_name == "integer":
        return _is_int(value)
    if type_name == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if type_name == "boolean":
        return isinstance(value, bool)
    return True


def _json_type(value: Json) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, Mapping):
        return "object"
    if isinstance(value, list | tuple):
        return "array"
    return type(value).__name__


def _search(pattern: str, text: str) -> bool | None:
    """Unanchored regex search as Go does it; None when the pattern does not compile."""
    try:
        return _regex.search(pattern, text) is not None
    except Exception:  # re2 and re raise different error types
        try:
            return re.search(pattern, text) is not None
        except re.error:
            return None


# --------------------------------------------------------------------------------------
# Kubernetes CEL extensions for cel-python
# --------------------------------------------------------------------------------------

# Imported lazily: cel-python builds its parser at import / Environment time.
_celpy: Any = None
_celtypes: Any = None


def _cel_modules() -> tuple[Any, Any]:
    global _celpy, _celtypes
    if _celpy is None:
        import celpy
        import celpy.celtypes

        _celpy, _celtypes = celpy, celpy.celtypes
    return _celpy, _celtypes


_GO_DURATION = re.compile(r"([0-9]*(?:\.[0-9]*)?)(ns|us|µs|μs|ms|s|m|h)")
_GO_UNITS_NS: Final[dict[str, int]] = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,
    "μs": 1_000,
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
}


def _parse_go_duration(text: str) -> int:
    """Nanoseconds of a Go duration string (`time.ParseDuration`, what Kubernetes CEL uses)."""
    original = text
    sign = 1
    if text[:1] in "+-" and text:
        sign = -1 if text[0] == "-" else 1
        text = text[1:]
    if text == "0":
        return 0
    if not text:
        raise ValueError(f"invalid duration {original!r}")
    total = 0
    pos = 0
    while pos < len(text):
        match = _GO_DURATION.match(text, pos)
        if not match or match.group(1) in ("", "."):
            raise ValueError(f"invalid duration {original!r}")
        number, unit = match.groups()
        whole, _, frac = number.partition(".")
        scale = _GO_UNITS_NS[unit]
        total += int(whole or "0") * scale
        if frac:
            total += int(frac) * scale // (10 ** len(frac))
        pos = match.end()
    return sign * total


def _cel_duration(value: Any) -> Any:
    _, celtypes = _cel_modules()
    if isinstance(value, celtypes.DurationType):
        return value
    nanos = _parse_go_duration(str(value))
    seconds, rest = divmod(nanos, 1_000_000_000)
    return celtypes.DurationType(seconds, rest)


@dataclass(frozen=True)
class _CelURL:
    """Result of the Kubernetes CEL `url()` function (Go `url.ParseRequestURI`)."""

    scheme: str
    host: str
    path: str
    query: str


def _go_scheme(raw: str) -> tuple[str, str]:
    for index, char in enumerate(raw):
        if char.isascii() and char.isalpha():
            continue
        if char.isascii() and (char.isdigit() or char in "+-."):
            if index == 0:
                return "", raw
            continue
        if char == ":":
            if index == 0:
                raise ValueError("missing protocol scheme")
            return raw[:index].lower(), raw[index + 1 :]
        return "", raw
    return "", raw


def _parse_request_uri(raw: str) -> _CelURL:
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in raw):
        raise ValueError("invalid control character in URL")
    rest, _, query = raw.partition("?")
    scheme, rest = _go_scheme(rest)
    if not rest.startswith("/"):
        if scheme:
            return _CelURL(scheme, "", "", query)  # opaque URL, e.g. "mailto:x"
        raise ValueError(f"invalid URI for request: {raw!r}")
    host = ""
    if (scheme or not rest.startswith("///")) and rest.startswith("//"):
        authority, slash, path = rest[2:].partition("/")
        rest = slash + path
        host = authority.rpartition("@")[2]
        port = host.rpartition(":")[2] if ":" in host and not host.endswith("]") else ""
        if port and not port.isdigit():
            raise ValueError(f"invalid port {port!r} after host")
        if " " in host:
            raise ValueError("invalid character ' ' in host name")
    return _CelURL(scheme, host, rest, query)


def _cel_is_url(value: Any) -> Any:
    _, celtypes = _cel_modules()
    try:
        _parse_request_uri(str(value))
    except ValueError:
        return celtypes.BoolType(False)
    return celtypes.BoolType(True)


def _cel_url(value: Any) -> _CelURL:
    return _parse_request_uri(str(value))


def _url_hostname(url: _CelURL) -> str:
    host = url.host
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    return host.rpartition(":")[0] if ":" in host else host


def _url_port(url: _CelURL) -> str:
    host = url.host
    if host.startswith("["):
        tail = host[host.find("]") + 1 :] if "]" in host else ""
        return tail[1:] if tail.startswith(":") else ""
    return host.rpartition(":")[2] if ":" in host else ""


def _cel_substring(text: Any, start: Any, end: Any = None) -> Any:
    _, celtypes = _cel_modules()
    string = str(text)
    begin = int(start)
    stop = len(string) if end is None else int(end)
    if begin < 0 or stop > len(string) or begin > stop:
        raise ValueError(f"index out of range: substring({begin}, {stop}) of {len(string)}")
    return celtypes.StringType(string[begin:stop])


def _cel_char_at(text: Any, index: Any) -> Any:
    string, position = str(text), int(index)
    if position < 0 or position > len(string):
        raise ValueError(f"index out of range: {position}")
    return _s(string[position : position + 1])


def _cel_index_of(container: Any, item: Any, offset: Any = 0) -> Any:
    _, celtypes = _cel_modules()
    if isinstance(container, str):
        start = int(offset)
        if start < 0 or start > len(container):
            raise ValueError("index out of range")
        return celtypes.IntType(container.find(str(item), start))
    for index, element in enumerate(container):
        if element == item:
            return celtypes.IntType(index)
    return celtypes.IntType(-1)


def _cel_last_index_of(container: Any, item: Any) -> Any:
    _, celtypes = _cel_modules()
    if isinstance(container, str):
        return celtypes.IntType(container.rfind(str(item)))
    for index in range(len(container) - 1, -1, -1):
        if container[index] == item:
            return celtypes.IntType(index)
    return celtypes.IntType(-1)


def _cel_split(text: Any, separator: Any, limit: Any = -1) -> Any:
    _, celtypes = _cel_modules()
    count = int(limit)
    if count == 0:
        return celtypes.ListType([])
    parts = str(text).split(str(separator), count - 1 if count > 0 else -1)
    return celtypes.ListType([celtypes.StringType(p) for p in parts])


def _cel_replace(text: Any, old: Any, new: Any, limit: Any = -1) -> Any:
    _, celtypes = _cel_modules()
    return celtypes.StringType(str(text).replace(str(old), str(new), int(limit)))


def _cel_ip(value: Any) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    text = str(value)
    if "%" in text:
        raise ValueError("IP address with zone value is not allowed")
    address = ipaddress.ip_address(text)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        raise ValueError("IPv4-mapped IPv6 address is not allowed")
    return address


def _cel_cidr(value: Any) -> ipaddress.IPv4Interface | ipaddress.IPv6Interface:
    return ipaddress.ip_interface(str(value))


def _cel_bool_of(check: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def wrapped(value: Any) -> Any:
        _, celtypes = _cel_modules()
        try:
            check(value)
        except ValueError:
            return celtypes.BoolType(False)
        return celtypes.BoolType(True)

    return wrapped


def _b(value: bool) -> Any:
    return _cel_modules()[1].BoolType(value)


def _s(value: str) -> Any:
    return _cel_modules()[1].StringType(value)


def _i(value: int) -> Any:
    return _cel_modules()[1].IntType(value)


def _cel_contains_ip(net: Any, address: Any) -> Any:
    ip = _cel_ip(address) if isinstance(address, str) else address
    return _b(ip in net.network)


def _cel_contains_cidr(net: Any, other: Any) -> Any:
    sub = _cel_cidr(other) if isinstance(other, str) else other
    return _b(sub.network.version == net.network.version and sub.network.subnet_of(net.network))


# Kubernetes CEL library functions (strings ext, URLs, IPs, durations) that cel-python lacks.
# cel-python dispatches `x.f(args)` to `f(x, args)`, so methods and functions share a table.
_K8S_CEL_FUNCTIONS: Final[dict[str, Callable[..., Any]]] = {
    "duration": _cel_duration,
    "substring": _cel_substring,
    "charAt": _cel_char_at,
    "indexOf": _cel_index_of,
    "lastIndexOf": _cel_last_index_of,
    "lowerAscii": lambda s: _s("".join(c.lower() if c.isascii() else c for c in str(s))),
    "upperAscii": lambda s: _s("".join(c.upper() if c.isascii() else c for c in str(s))),
    "trim": lambda s: _s(str(s).strip()),
    "split": _cel_split,
    "join": lambda items, sep="": _s(str(sep).join(str(i) for i in items)),
    "replace": _cel_replace,
    "isURL": _cel_is_url,
    "url": _cel_url,
    "getScheme": lambda u: _s(u.scheme),
    "getHost": lambda u: _s(u.host),
    "getHostname": lambda u: _s(_url_hostname(u)),
    "getPort": lambda u: _s(_url_port(u)),
    "getEscapedPath": lambda u: _s(u.path),
    "getQuery": lambda u: _cel_modules()[1].MapType(
        {
            _s(k): _cel_modules()[1].ListType([_s(x) for x in v])
            for k, v in urllib.parse.parse_qs(u.query, keep_blank_values=True).items()
        }
    ),
    "isIP": _cel_bool_of(_cel_ip),
    "ip": _cel_ip,
    "isCIDR": _cel_bool_of(_cel_cidr),
    "cidr": _cel_cidr,
    "family": lambda a: _i(a.version),
    "isLoopback": lambda a: _b(a.is_loopback),
    "isUnspecified": lambda a: _b(a.is_unspecified),
    "isLinkLocalUnicast": lambda a: _b(a.is_link_local),
    "isGlobalUnicast": lambda a: _b(
        not (a.is_unspecified or a.is_loopback or a.is_multicast or a.is_link_local)
        and str(a) != "255.255.255.255"
    ),
    "containsIP": _cel_contains_ip,
    "containsCIDR": _cel_contains_cidr,
    "prefixLength": lambda n: _i(n.network.prefixlen),
    "masked": lambda n: ipaddress.ip_interface(str(n.network)),
}

# Macros and functions cel-python implements itself (its `base_functions` are added at runtime).
_CEL_MACROS: Final = frozenset({"has", "all", "exists", "exists_one", "map", "filter"})

# Kubernetes escapes property names that are not CEL identifiers (or are reserved words)
# when it exposes an object to CEL: `x-y` -> `x__dash__y`, `namespace` -> `__namespace__`.
_CEL_RESERVED: Final = _words(
    "true false null in as break const continue else for function if import let loop package "
    "namespace return var void while"
)


def _cel_escape(name: str) -> str:
    if name in _CEL_RESERVED:
        return f"__{name}__"
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name) and "__" not in name:
        return name
    escaped = name.replace("__", "__underscores__")
    for char, word in ((".", "dot"), ("-", "dash"), ("/", "slash")):
        escaped = escaped.replace(char, f"__{word}__")
    return escaped


# Errors caused by the data (Kubernetes rejects the object), not by cel-python's limits.
_CEL_DATA_ERRORS: Final = (
    "no such member",
    "no such key",
    "<class 'ValueError'>",
    "<class 'KeyError'>",
    "<class 'IndexError'>",
    "<class 'ZeroDivisionError'>",
)


def _flatten_text(value: Any) -> str:
    if isinstance(value, tuple | list):
        return " ".join(_flatten_text(item) for item in value)
    return str(value)


def _cel_error_detail(exc: Exception, text: str) -> str:
    """The innermost useful message of a cel-python error."""
    args = exc.args
    if len(args) > 2 and args[1] in (ValueError, IndexError) and args[2]:
        detail = _flatten_text(args[2])
    elif member := re.search(r"no such (?:member in mapping|key): '[^']*'", text):
        detail = member.group(0)
    elif nested := re.search(r"<class '(?:ValueError|IndexError)'>, \((['\"])(.*?)\1,\)", text):
        detail = nested.group(2)
    else:
        detail = (str(args[0]) if args else str(exc)).split(" (in activation")[0]
    return re.sub(r"StringType\((.*?)\)", r"\1", detail)


@dataclass
class _CelRule:
    kind: str
    rule: str
    message: str | None
    message_expression: str | None
    field_path: str | None
    program: Any = None
    message_program: Any = None
    skip_reason: str | None = None


class _CelEngine:
    """Compiles each distinct CEL rule once and evaluates it with cel-python."""

    def __init__(self) -> None:
        celpy, _ = _cel_modules()
        self._celpy = celpy
        limit = sys.getrecursionlimit()
        self._env = celpy.Environment()
        sys.setrecursionlimit(max(limit, sys.getrecursionlimit()))
        from celpy.evaluation import base_functions

        self._known = frozenset(base_functions) | frozenset(_K8S_CEL_FUNCTIONS) | _CEL_MACROS
        self._programs: dict[str, tuple[Any, str | None]] = {}

    def compile(self, text: str) -> tuple[Any, str | None]:
        """(program, None) or (None, why it cannot run)."""
        cached = self._programs.get(text)
        if cached is not None:
            return cached
        result: tuple[Any, str | None]
        if re.search(r"\boldSelf\b", text):
            result = (None, "transition rule (oldSelf): needs the previous object")
        else:
            try:
                ast = self._env.compile(text)
            except Exception as exc:
                result = (None, f"cel-python cannot parse it: {str(exc).splitlines()[0]}")
            else:
                unknown = sorted(self._called_functions(ast) - self._known)
                if unknown:
                    result = (None, f"uses functions cel-python lacks: {', '.join(unknown)}")
                else:
                    result = (self._env.program(ast, functions=dict(_K8S_CEL_FUNCTIONS)), None)
        self._programs[text] = result
        return result

    @staticmethod
    def _called_functions(ast: Any) -> set[str]:
        names: set[str] = set()
        for node in ast.iter_subtrees():
            if node.data == "member_dot_arg":
                names.add(str(node.children[1]))
            elif node.data == "ident_arg":
                names.add(str(node.children[0]))
        return names

    def to_cel(self, value: Json, schema: Schema | None) -> Any:
        """Convert a JSON value as Kubernetes exposes it to CEL (escaping property names)."""
        _, celtypes = _cel_modules()
        if isinstance(value, Mapping):
            props = (schema or {}).get("properties")
            if isinstance(props, dict):
                return celtypes.MapType(
                    {
                        celtypes.StringType(_cel_escape(str(k))): self.to_cel(v, props.get(k))
                        for k, v in value.items()
                    }
                )
            extra = (schema or {}).get("additionalProperties")
            child = extra if isinstance(extra, dict) else None
            return celtypes.MapType(
                {celtypes.StringType(str(k)): self.to_cel(v, child) for k, v in value.items()}
            )
        if isinstance(value, list | tuple):
            items = (schema or {}).get("items")
            return celtypes.ListType([self.to_cel(v, items) for v in value])
        return self._celpy.json_to_cel(value)

    def evaluate(self, program: Any, activation: Any) -> tuple[Any, str | None, bool]:
        """(result, error, library_limit) of one evaluation.

        An error caused by the data (a missing field, a failed conversion) is an `error`;
        one caused by cel-python (an unsupported overload or construct) is a library limit.
        """
        celpy = self._celpy
        try:
            return program.evaluate({"self": activation}), None, False
        except celpy.CELEvalError as exc:
            # cel-python folds nested errors into the text of the outer one (`a && b` with
            # both sides in error becomes "no matching overload for _&&_"): classify on it.
            text = _flatten_text(exc.args)
            if "undeclared reference" in text:
                return None, _cel_error_detail(exc, text), True
            if any(marker in text for marker in _CEL_DATA_ERRORS):
                return None, _cel_error_detail(exc, text), False
            return None, _cel_error_detail(exc, text), True
        except Exception as exc:  # cel-python internals (unsupported construct, bug)
            return None, f"{type(exc).__name__}: {exc}", True


# --------------------------------------------------------------------------------------
# The reference
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CrdVersion:
    """One version of one Istio CRD."""

    group: str
    kind: str
    version: str
    served: bool
    deprecated: bool
    status_subresource: bool
    schema: Schema


_CHART_FILES: Final[dict[str, str]] = {
    "base": "base.values.yaml",
    "istiod": "istiod.values.yaml",
    "gateway": "gateway.values.yaml",
    "cni": "istio-cni.values.yaml",
    "ztunnel": "ztunnel.values.yaml",
}

# Keys every chart reads in its templates (templates/zzz_profile.yaml) without listing
# them in values.yaml.
_PROFILE_KEYS: Final[dict[str, Any]] = {
    "profile": "",
    "platform": "",
    "compatibilityVersion": "",
    "global": {"profile": "", "platform": ""},
}

# Kubernetes structures and free-form maps the charts pass through verbatim (`toYaml`):
# their defaults show examples (`podAnnotations`, `resources.requests`), not the full set.
_FREE_FORM_KEYS: Final = _words(
    "meshConfig resources defaultResources podAnnotations podLabels annotations labels "
    "nodeSelector env affinity tolerations securityContext containerSecurityContext "
    "seccompProfile seLinuxOptions strategy updateStrategy readinessProbe lifecycle "
    "autoscaleBehavior serviceAnnotations serviceAccountAnnotations deploymentLabels "
    "deploymentAnnotations daemonSetLabels selectorLabels dnsConfig injectedAnnotations "
    "templates meshNetworks"
)

_FREE: Final = ("free", None)


@dataclass
class _Walk:
    """State of one `validate` call."""

    kind: str
    errors: list[str] = field(default_factory=list)


class Reference:
    """The CRDs and chart values of one Istio release, ready to validate against.

    Use `load_reference()` (cached) rather than building one directly.
    """

    def __init__(
        self, root: str | os.PathLike[str], crd_file: str | os.PathLike[str] | None = None
    ) -> None:
        """`root`: an Istio release folder; `crd_file`: another file of CRDs to validate
        against instead of the release's (the Gateway API's `standard-install.yaml`)."""
        self.root = Path(root)
        crd_file = Path(crd_file) if crd_file is not None else self.root / "crd-all.gen.yaml"
        if not crd_file.is_file():
            raise ReferenceUnavailable(
                f"{crd_file} not found: set {ENV_VAR} to the folder of an Istio release "
                "holding crd-all.gen.yaml and charts/*.values.yaml"
            )
        self._crds: dict[tuple[str, str], dict[str, CrdVersion]] = {}
        for doc in _read_yaml_documents(crd_file):
            if not isinstance(doc, dict) or doc.get("kind") != "CustomResourceDefinition":
                continue
            spec = doc["spec"]
            group, kind = spec["group"], spec["names"]["kind"]
            versions = self._crds.setdefault((group, kind), {})
            for version in spec.get("versions", []):
                schema = (version.get("schema") or {}).get("openAPIV3Schema") or {}
                versions[version["name"]] = CrdVersion(
                    group=group,
                    kind=kind,
                    version=version["name"],
                    served=bool(version.get("served", False)),
                    deprecated=bool(version.get("deprecated", False)),
                    status_subresource="status" in (version.get("subresources") or {}),
                    schema=schema,
                )
        self._charts: dict[str, dict[str, Any]] = {}
        self._gateway_schema: Schema | None = None
        self._cel = _CelEngine()
        self._rules: dict[int, list[_CelRule]] = {}
        self.cel_rule_locations = 0
        """How many `x-kubernetes-validations` entries the CRDs hold (all versions)."""
        self.skipped_cel_reasons: dict[tuple[str, str], str] = {}
        """(kind, rule) -> why it is not evaluated."""
        self.evaluated_cel_rules: set[tuple[str, str]] = set()
        """(kind, rule) pairs that ran on at least one value so far."""
        for versions in self._crds.values():
            for crd in versions.values():
                self._prepare_rules(crd.kind, crd.schema)

    # ---- CEL bookkeeping ------------------------------------------------------------

    def _prepare_rules(self, kind: str, schema: Any) -> None:
        if isinstance(schema, list):
            for sub in schema:
                self._prepare_rules(kind, sub)
            return
        if not isinstance(schema, dict):
            return
        prepared: list[_CelRule] = []
        for raw in schema.get("x-kubernetes-validations") or []:
            self.cel_rule_locations += 1
            rule = _CelRule(
                kind=kind,
                rule=str(raw.get("rule", "")),
                message=raw.get("message"),
                message_expression=raw.get("messageExpression"),
                field_path=raw.get("fieldPath"),
            )
            rule.program, rule.skip_reason = self._cel.compile(rule.rule)
            if rule.message_expression:
                rule.message_program, _ = self._cel.compile(rule.message_expression)
            if rule.skip_reason:
                self.skipped_cel_reasons.setdefault((kind, rule.rule), rule.skip_reason)
            prepared.append(rule)
        if prepared:
            self._rules[id(schema)] = prepared
        for key, value in schema.items():
            if key == "properties" and isinstance(value, dict):
                for sub in value.values():
                    self._prepare_rules(kind, sub)
            elif key in ("items", "additionalProperties", "not", "allOf", "anyOf", "oneOf"):
                self._prepare_rules(kind, value)

    @property
    def cel_rules(self) -> frozenset[tuple[str, str]]:
        """Every distinct (kind, rule) pair in the CRDs."""
        return frozenset((r.kind, r.rule) for rules in self._rules.values() for r in rules)

    @property
    def skipped_cel_rules(self) -> set[tuple[str, str]]:
        """(kind, rule) pairs cel-python cannot compile or evaluate (see skipped_cel_reasons)."""
        return set(self.skipped_cel_reasons)

    def kinds(self) -> list[str]:
        """`group/Kind` of every CRD, sorted."""
        return sorted(f"{group}/{kind}" for group, kind in self._crds)

    def crd(self, api_version: str, kind: str) -> CrdVersion | None:
        """The CRD version for an apiVersion and kind, or None."""
        group, _, version = api_version.rpartition("/")
        return self._crds.get((group, kind), {}).get(version)

    @staticmethod
    def is_istio(obj: Mapping[str, Any]) -> bool:
        """Whether the object's apiVersion group is an Istio one (`*.istio.io`)."""
        api_version = obj.get("apiVersion")
        if not isinstance(api_version, str):
            return False
        group = api_version.rpartition("/")[0]
        return group == "istio.io" or group.endswith(".istio.io")

    # ---- Kubernetes objects ---------------------------------------------------------

    def validate(self, obj: Mapping[str, Any]) -> list[str]:
        """Problems of one Istio custom resource, each naming the object and field path.

        An empty list means the API server (strict field validation) would accept it, as far
        as the CRD schema and the CEL rules cel-python can run tell.
        """
        if not isinstance(obj, Mapping):
            return [f"not a Kubernetes object: {_show(obj)}"]
        api_version, kind = obj.get("apiVersion"), obj.get("kind")
        metadata = obj.get("metadata")
        name = "<unnamed>"
        if isinstance(metadata, Mapping) and isinstance(metadata.get("name"), str):
            name = metadata["name"]
            if isinstance(metadata.get("namespace"), str):
                name = f"{metadata['namespace']}/{name}"
        label = f"{api_version} {kind} {name}"
        groups = {known for known, _ in self._crds}
        if not self.is_istio(obj) and str(api_version).rpartition("/")[0] not in groups:
            if any(known.endswith("istio.io") for known in groups):
                return [f"{label}: not an Istio kind (the apiVersion group must end in istio.io)"]
            return [f"{label}: no CRD here for its group (these CRDs: {', '.join(sorted(groups))})"]
        if not isinstance(kind, str) or not kind:
            return [f"{label}: kind must be a non-empty string, got {_show(kind)}"]
        group, _, version = str(api_version).rpartition("/")
        versions = self._crds.get((group, kind))
        if versions is None:
            known = [k for g, k in self._crds if g == group]
            return [f"{label}: no CRD for kind {kind} in group {group}{_suggest(kind, known)}"]
        crd = versions.get(version)
        if crd is None or not crd.served:
            served = sorted(v for v, c in versions.items() if c.served)
            return [f"{label}: version {version} is not served (served: {', '.join(served)})"]

        walk = _Walk(kind=kind)
        self._check_metadata(metadata, walk)
        rest = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind", "metadata")}
        if "status" in rest and crd.status_subresource:
            # With the status subresource the API server drops `status` from a create or
            # update: setting it in a manifest only makes Pulumi fight istiod over it.
            walk.errors.append("status: written by Istio (status subresource); leave it out")
            del rest["status"]
        self._check(_defaulted(rest, crd.schema), crd.schema, "", walk, junctor=False)
        return [f"{label}: {error}" for error in walk.errors]

    @staticmethod
    def _check_metadata(metadata: Any, walk: _Walk) -> None:
        errors = walk.errors
        if not isinstance(metadata, Mapping):
            errors.append(f"metadata: must be an object with a name, got {_show(metadata)}")
            return
        for key in metadata:
            if key not in _OBJECT_META_FIELDS:
                errors.append(
                    f"{_field('metadata', str(key))}: unknown field"
                    f"{_suggest(str(key), sorted(_OBJECT_META_FIELDS))}"
                )
        name = metadata.get("name")
        generated = name is None and isinstance(metadata.get("generateName"), str)
        if generated:
            pass  # the API server derives the name
        elif not isinstance(name, str) or not name:
            errors.append(f"metadata.name: must be a non-empty string, got {_show(name)}")
        elif len(name) > 253 or not _DNS1123_SUBDOMAIN.fullmatch(name):
            errors.append(
                f"metadata.name: {_show(name)} is not a DNS-1123 subdomain (lowercase "
                "alphanumerics, '-' and '.', at most 253 characters)"
            )
        if "namespace" in metadata:
            namespace = metadata["namespace"]
            if not isinstance(namespace, str):
                errors.append(f"metadata.namespace: must be a string, got {_show(namespace)}")
            elif len(namespace) > 63 or not _DNS1123_LABEL.fullmatch(namespace):
                errors.append(f"metadata.namespace: {_show(namespace)} is not a DNS-1123 label")
        for section in ("labels", "annotations"):
            if section not in metadata:
                continue
            entries = metadata[section]
            where = f"metadata.{section}"
            if not isinstance(entries, Mapping):
                errors.append(f"{where}: must be a map of strings, got {_show(entries)}")
                continue
            for key, value in entries.items():
                path = _item(where, str(key))
                if not isinstance(key, str) or not _label_key_ok(key):
                    errors.append(f"{path}: {_show(key)} is not a valid {section[:-1]} key")
                if not isinstance(value, str):
                    errors.append(f"{path}: must be a string, got {_show(value)}")
                elif section == "labels" and (len(value) > 63 or not _LABEL_VALUE.fullmatch(value)):
                    errors.append(f"{path}: {_show(value)} is not a valid label value")

    def _check(self, value: Json, schema: Schema, path: str, walk: _Walk, junctor: bool) -> None:
        """Validate `value` against an OpenAPI v3 structural schema node.

        `junctor` is True inside allOf/anyOf/oneOf/not: those sub-schemas only constrain
        values, so unknown-field checks and CEL rules do not apply there.
        """
        errors = walk.errors
        where = path or "(root)"
        if value is None:
            if not schema.get("nullable") and not junctor and schema:
                errors.append(f"{where}: null is not allowed (drop the field instead)")
            return

        type_name = schema.get("type")
        if schema.get("x-kubernetes-int-or-string"):
            if not (_is_int(value) or isinstance(value, str)):
                errors.append(f"{where}: {_show(value)} must be an integer or a string")
                return
        elif isinstance(type_name, str) and not _type_ok(value, type_name):
            errors.append(
                f"{where}: {_show(value)} is not of type '{type_name}' (got {_json_type(value)})"
            )
            return

        self._check_scalar(value, schema, where, errors)

        if isinstance(value, list | tuple):
            self._check_array(value, schema, path, walk, junctor)
        elif isinstance(value, Mapping):
            self._check_object(value, schema, path, walk, junctor)

        self._check_junctors(value, schema, path, walk)

        if not junctor:
            for rule in self._rules.get(id(schema), ()):
                self._run_rule(rule, value, schema, path, walk)

    @staticmethod
    def _check_scalar(value: Json, schema: Schema, where: str, errors: list[str]) -> None:
        enum = schema.get("enum")
        if enum is not None and value not in enum:
            errors.append(f"{where}: {_show(value)} is not one of {_show(enum, 200)}")
        if isinstance(value, int | float) and not isinstance(value, bool):
            fmt = schema.get("format")
            if fmt in _INT_RANGES and _is_int(value):
                low, high = _INT_RANGES[fmt]
                if not low <= value <= high:
                    errors.append(f"{where}: {_show(value)} is out of range for {fmt}")
            minimum, maximum = schema.get("minimum"), schema.get("maximum")
            if minimum is not None:
                if schema.get("exclusiveMinimum") and value <= minimum:
                    errors.append(f"{where}: {_show(value)} must be greater than {minimum}")
                elif value < minimum:
                    errors.append(f"{where}: {_show(value)} is less than the minimum of {minimum}")
            if maximum is not None:
                if schema.get("exclusiveMaximum") and value >= maximum:
                    errors.append(f"{where}: {_show(value)} must be less than {maximum}")
                elif value > maximum:
                    errors.append(
                        f"{where}: {_show(value)} is greater than the maximum of {maximum}"
                    )
            multiple = schema.get("multipleOf")
            if multiple and (value / multiple) != int(value / multiple):
                errors.append(f"{where}: {_show(value)} is not a multiple of {multiple}")
        if isinstance(value, str):
            max_length, min_length = schema.get("maxLength"), schema.get("minLength")
            if max_length is not None and len(value) > max_length:
                errors.append(f"{where}: {_show(value)} is longer than {max_length} characters")
            if min_length is not None and len(value) < min_length:
                errors.append(f"{where}: {_show(value)} is shorter than {min_length} characters")
            pattern = schema.get("pattern")
            if pattern is not None and _search(pattern, value) is False:
                errors.append(f"{where}: {_show(value)} does not match {_show(pattern)}")
            fmt = schema.get("format")
            if fmt == "date-time" and not _DATE_TIME.fullmatch(value):
                errors.append(f"{where}: {_show(value)} is not an RFC 3339 date-time")
            elif fmt == "byte":
                try:
                    base64.b64decode(value, validate=True)
                except (binascii.Error, ValueError):
                    errors.append(f"{where}: {_show(value)} is not base64-encoded")

    def _check_array(
        self,
        value: list[Any] | tuple[Any, ...],
        schema: Schema,
        path: str,
        walk: _Walk,
        junctor: bool,
    ) -> None:
        errors = walk.errors
        where = path or "(root)"
        max_items, min_items = schema.get("maxItems"), schema.get("minItems")
        if max_items is not None and len(value) > max_items:
            errors.append(f"{where}: has {len(value)} items, more than the maximum of {max_items}")
        if min_items is not None and len(value) < min_items:
            errors.append(f"{where}: has {len(value)} items, fewer than the minimum of {min_items}")
        items = schema.get("items")
        if isinstance(items, dict):
            for index, item in enumerate(value):
                self._check(item, items, _item(path, index), walk, junctor)
        if junctor:
            return
        list_type = schema.get("x-kubernetes-list-type")
        if list_type in ("set", "map"):
            keys = schema.get("x-kubernetes-list-map-keys") or []
            seen: set[str] = set()
            for index, item in enumerate(value):
                if list_type == "map" and isinstance(item, Mapping):
                    identity = _show({k: item.get(k) for k in keys}, 200)
                else:
                    identity = _show(item, 10_000)
                if identity in seen:
                    errors.append(f"{_item(path, index)}: duplicate entry {identity}")
                seen.add(identity)

    def _check_object(
        self, value: Mapping[str, Any], schema: Schema, path: str, walk: _Walk, junctor: bool
    ) -> None:
        errors = walk.errors
        where = path or "(root)"
        for name in schema.get("required") or []:
            if name not in value:
                errors.append(f"{where}: required field {_show(name)} is missing")
        max_props, min_props = schema.get("maxProperties"), schema.get("minProperties")
        if max_props is not None and len(value) > max_props:
            errors.append(f"{where}: has {len(value)} entries, more than {max_props}")
        if min_props is not None and len(value) < min_props:
            errors.append(f"{where}: has {len(value)} entries, fewer than {min_props}")
        properties = schema.get("properties")
        extra = schema.get("additionalProperties")
        preserve = bool(schema.get("x-kubernetes-preserve-unknown-fields"))
        for key, child in value.items():
            key_text = str(key)
            if not isinstance(key, str):
                errors.append(f"{where}: key {_show(key)} is not a string")
            if isinstance(properties, dict) and key in properties:
                self._check(child, properties[key], _field(path, key_text), walk, junctor)
            elif isinstance(extra, dict):
                self._check(child, extra, _item(path, key_text), walk, junctor)
            elif junctor or preserve or extra is True:
                continue
            else:
                hint = _suggest(key_text, sorted(properties or {}))
                errors.append(f"{_field(path, key_text)}: unknown field{hint}")

    def _check_junctors(self, value: Json, schema: Schema, path: str, walk: _Walk) -> None:
        errors = walk.errors
        where = path or "(root)"
        for sub in schema.get("allOf") or []:
            self._check(value, sub, path, walk, junctor=True)
        any_of = schema.get("anyOf")
        if (
            any_of
            and not schema.get("x-kubernetes-int-or-string")
            and not any(self._matches(value, sub, path) for sub in any_of)
        ):
            errors.append(f"{where}: {_show(value)} matches none of the anyOf alternatives")
        one_of = schema.get("oneOf")
        if one_of:
            matched = sum(1 for sub in one_of if self._matches(value, sub, path))
            if matched != 1:
                fields = _exclusive_fields(one_of)
                if fields is not None and isinstance(value, Mapping):
                    present = [f for f in fields if f in value]
                    errors.append(
                        f"{where}: at most one of {', '.join(fields)} may be set, "
                        f"got {', '.join(present)}"
                    )
                else:
                    errors.append(
                        f"{where}: must match exactly one of the oneOf alternatives, "
                        f"matched {matched}"
                    )
        negated = schema.get("not")
        if isinstance(negated, dict) and self._matches(value, negated, path):
            errors.append(f"{where}: {_show(value)} must not match {_show(negated)}")

    def _matches(self, value: Json, schema: Schema, path: str) -> bool:
        probe = _Walk(kind="")
        self._check(value, schema, path, probe, junctor=True)
        return not probe.errors

    def _run_rule(
        self, rule: _CelRule, value: Json, schema: Schema, path: str, walk: _Walk
    ) -> None:
        if rule.program is None:
            return
        key = (rule.kind, rule.rule)
        activation = self._cel.to_cel(value, schema)
        result, error, library_limit = self._cel.evaluate(rule.program, activation)
        if library_limit:
            self.skipped_cel_reasons.setdefault(key, f"cel-python cannot evaluate it: {error}")
            return
        where = path or "(root)"
        if rule.field_path and rule.field_path.startswith("."):
            where = f"{path}{rule.field_path}"
        if error is not None:
            # Kubernetes rejects an object when a rule errors on it (a missing field, a
            # malformed duration): report it with the rule's message.
            self.evaluated_cel_rules.add(key)
            message = rule.message or f"failed rule: {rule.rule}"
            walk.errors.append(f"{where}: {message} (rule evaluation error: {error})")
            return
        _, celtypes = _cel_modules()
        if not isinstance(result, bool | celtypes.BoolType):
            self.skipped_cel_reasons.setdefault(
                key, f"rule returned {type(result).__name__}, not a boolean"
            )
            return
        self.evaluated_cel_rules.add(key)
        if not result:
            walk.errors.append(f"{where}: {self._rule_message(rule, activation)}")

    def _rule_message(self, rule: _CelRule, activation: Any) -> str:
        if rule.message_program is not None:
            text, error, _ = self._cel.evaluate(rule.message_program, activation)
            if error is None and isinstance(text, str) and text.strip():
                return str(text)
        if rule.message:
            return rule.message
        return f"failed rule: {rule.rule}"

    # ---- Helm values ----------------------------------------------------------------

    def chart_values(self, chart: str) -> dict[str, Any]:
        """The reference values of a chart, `_internal_defaults_do_not_set` folded in."""
        if chart not in _CHART_FILES:
            raise ValueError(f"unknown chart {chart!r}: expected one of {', '.join(_CHART_FILES)}")
        cached = self._charts.get(chart)
        if cached is None:
            docs = _read_yaml_documents(self.root / "charts" / _CHART_FILES[chart])
            raw = docs[0] if docs and isinstance(docs[0], dict) else {}
            internal = raw.get("_internal_defaults_do_not_set")
            top = {k: v for k, v in raw.items() if k != "_internal_defaults_do_not_set"}
            cached = _deep_merge(internal if isinstance(internal, dict) else {}, top)
            self._charts[chart] = cached
        return cached

    def gateway_values_schema(self) -> Schema:
        """The gateway chart's values.schema.json."""
        if self._gateway_schema is None:
            file = self.root / "charts" / "gateway.values.schema.json"
            try:
                self._gateway_schema = json.loads(file.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise ReferenceUnavailable(f"cannot read {file}: {exc}") from exc
        return self._gateway_schema

    def missing_value_keys(self, chart: str, values: Mapping[str, Any]) -> list[str]:
        """Value keys we set that the chart does not have, plus (gateway) schema violations.

        A key path must exist in the chart's values (top level or under
        `_internal_defaults_do_not_set`); below a free-form map (an empty `{}` default, a
        list, a null default, `meshConfig`, Kubernetes pass-through structures such as
        `resources` or `podAnnotations`) anything is accepted.
        """
        reference = self.chart_values(chart)
        problems: list[str] = []
        starts: list[tuple[str, Any]] = [("values", reference), ("values", _PROFILE_KEYS)]
        if chart == "gateway":
            starts.append(("schema", self.gateway_values_schema()))
        if "_internal_defaults_do_not_set" in values:
            problems.append(
                f"{chart}: _internal_defaults_do_not_set must not be set: set its keys at the "
                "top level"
            )
            values = {k: v for k, v in values.items() if k != "_internal_defaults_do_not_set"}
        self._walk_values(chart, values, starts, "", problems)
        if chart == "gateway":
            problems.extend(self._gateway_schema_errors(values))
        return problems

    def _walk_values(
        self,
        chart: str,
        values: Mapping[str, Any],
        positions: list[tuple[str, Any]],
        path: str,
        problems: list[str],
    ) -> None:
        for key, value in values.items():
            key_path = f"{path}.{key}" if path else str(key)
            nexts = [p for p in (_step(pos, str(key), self) for pos in positions) if p is not None]
            if not nexts:
                candidates = sorted({k for pos in positions for k in _position_keys(pos, self)})
                hint = _suggest(str(key), candidates)
                for leaf in _leaf_paths(value, key_path):
                    why = hint if leaf == key_path else f" (the chart has no key {key_path}){hint}"
                    problems.append(f"{chart}: {leaf} is not a value of the chart{why}")
                continue
            if _FREE in nexts:
                continue
            if isinstance(value, Mapping):
                if all(kind == "scalar" for kind, _ in nexts):
                    shown = _json_type(nexts[0][1])
                    for leaf in _leaf_paths(value, key_path):
                        problems.append(
                            f"{chart}: {leaf} is not a value of the chart "
                            f"({key_path} is a {shown} there, not a map)"
                        )
                    continue
                self._walk_values(chart, value, nexts, key_path, problems)
            elif value is not None and all(
                kind == "values" and isinstance(node, dict) for kind, node in nexts
            ):
                problems.append(
                    f"{chart}: {key_path} is a map in the chart, got {_json_type(value)} "
                    f"{_show(value)}"
                )

    def _gateway_schema_errors(self, values: Mapping[str, Any]) -> list[str]:
        import jsonschema

        schema = self.gateway_values_schema()
        validator = jsonschema.Draft202012Validator(schema)
        problems: list[str] = []
        for error in sorted(validator.iter_errors(dict(values)), key=lambda e: list(e.path)):
            where = ".".join(str(p) for p in error.absolute_path) or "(root)"
            problems.append(f"gateway: {where}: {error.message} (values.schema.json)")
        return problems


def _label_key_ok(key: str) -> bool:
    prefix, slash, name = key.rpartition("/")
    if slash and (not prefix or len(prefix) > 253 or not _DNS1123_SUBDOMAIN.fullmatch(prefix)):
        return False
    return 0 < len(name) <= 63 and bool(_QUALIFIED_NAME.fullmatch(name))


def _exclusive_fields(alternatives: list[Any]) -> list[str] | None:
    """Fields of Istio's `oneOf: [not anyOf required..., required a, required b]` idiom."""
    fields: list[str] = []
    for alt in alternatives:
        if not isinstance(alt, dict):
            return None
        if set(alt) == {"required"} and len(alt["required"]) == 1:
            if alt["required"][0] not in fields:
                fields.append(alt["required"][0])
        elif set(alt) == {"not"} and isinstance(alt["not"], dict) and set(alt["not"]) == {"anyOf"}:
            continue
        else:
            return None
    return fields or None


def _deep_merge(base: dict[str, Any], overlay: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in overlay.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _leaf_paths(value: Any, path: str) -> list[str]:
    if isinstance(value, Mapping) and value:
        leaves: list[str] = []
        for key, child in value.items():
            leaves.extend(_leaf_paths(child, f"{path}.{key}"))
        return leaves
    return [path]


def _resolve_ref(node: Any, reference: Reference) -> Any:
    seen = 0
    while isinstance(node, dict) and isinstance(node.get("$ref"), str) and seen < 16:
        ref = node["$ref"]
        if not ref.startswith("#/"):
            break
        target: Any = reference.gateway_values_schema()
        for part in ref[2:].split("/"):
            target = target.get(part) if isinstance(target, dict) else None
        node = target
        seen += 1
    return node


def _step(position: tuple[str, Any], key: str, reference: Reference) -> tuple[str, Any] | None:
    """Move a reference cursor one key down; None when the key does not exist there."""
    kind, node = position
    if kind == "free":
        return _FREE
    if kind == "values":
        if not isinstance(node, dict):
            return None
        if not node:
            return _FREE
        if key not in node:
            return None
        child = node[key]
        if key in _FREE_FORM_KEYS or child is None or isinstance(child, list) or child == {}:
            return _FREE
        if isinstance(child, dict):
            return ("values", child)
        return ("scalar", child)
    if kind == "schema":
        node = _resolve_ref(node, reference)
        if not isinstance(node, dict):
            return None
        properties = node.get("properties")
        extra = node.get("additionalProperties")
        if isinstance(properties, dict) and key in properties:
            child_schema = _resolve_ref(properties[key], reference)
        elif isinstance(extra, dict):
            child_schema = extra
        elif extra is True or (properties is None and extra is None):
            return _FREE
        else:
            return None
        if key in _FREE_FORM_KEYS:
            return _FREE
        return ("schema", child_schema)
    return None  # scalar: nothing below


def _position_keys(position: tuple[str, Any], reference: Reference) -> list[str]:
    kind, node = position
    if kind == "values" and isinstance(node, dict):
        return [str(k) for k in node]
    if kind == "schema":
        node = _resolve_ref(node, reference)
        if isinstance(node, dict) and isinstance(node.get("properties"), dict):
            return [str(k) for k in node["properties"]]
    return []
