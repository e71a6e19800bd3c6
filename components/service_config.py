"""`istio-mesh:services`: one typed entry per service of the catalog.

A `ServiceConfig` describes how a service is reached (versions and their weights,
header/path routes, timeouts, retries, faults, mirroring, circuit breaking, exposure
through a gateway) and who may call it (`allowFrom`, `jwt`). The same model is the
argument of the `ServiceRoute`, `ServiceAuthorization` and `JwtAuthentication`
components, so a user's own Pulumi program describes a service exactly as a stack
file does.

Checks come in two layers:

- on the models, everything one field (or one small object) can say about itself,
  following Istio's own validation: durations of at least 1ms in whole milliseconds,
  percentages 0-100, abort status 200-599, `attempts: 0` without `perTryTimeout` or
  `retryOn`, weights summing to 100. They raise `ValueError`, which pydantic reports
  at the field's location.
- `check_service` (one entry, fields against each other: a route to an unknown subset)
  and `check_services` (entries against each other and against the rest of the stack:
  namespaces, gateways and the hosts they serve) return `ConfigProblem`s with exact
  config paths: `istio-mesh:services[2]...` for an inline entry, the file and the index
  in it for an entry of `istio-mesh:serviceFiles` (`components.service_files`).
"""

from __future__ import annotations

import http
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from fractions import Fraction
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from components import naming
from components.errors import ConfigProblem

SERVICES_KEY = "istio-mesh:services"
"""Where the inline catalog lives in the stack config; the root of its entries' paths."""

CLUSTER_DOMAIN = "cluster.local"
"""Kubernetes cluster DNS domain of service host names."""

VERSION_LABEL = "version"
"""Pod label that puts a pod in a subset: subset `v2` selects pods labeled `version: v2`."""

_HTTP_METHOD = re.compile(r"[A-Z]+")
_HEADER_NAME = re.compile(r"[a-z0-9!#$%&'*+.^_`|~-]+")
"""An HTTP header name (RFC 9110 token), lower case as HTTP/2 and Envoy see it."""

RETRY_ON_POLICIES = frozenset(
    {
        # Envoy's x-envoy-retry-on policies Istio accepts ...
        "5xx",
        "gateway-error",
        "reset",
        "reset-before-request",
        "connect-failure",
        "retriable-4xx",
        "refused-stream",
        "retriable-status-codes",
        "retriable-headers",
        "envoy-ratelimited",
        "http3-post-connect-failure",
        # ... and its x-envoy-retry-grpc-on policies.
        "cancelled",
        "deadline-exceeded",
        "internal",
        "resource-exhausted",
        "unavailable",
    }
)
"""`retries.retryOn` values Istio's validation accepts besides HTTP status codes."""

INT32_MAX = 2**31 - 1


# --------------------------------------------------------------------------------------
# Names every module derives the same way
# --------------------------------------------------------------------------------------


def service_host(name: str, namespace: str) -> str:
    """The in-mesh host of a Kubernetes Service: `<name>.<namespace>.svc.cluster.local`."""
    return f"{name}.{namespace}.svc.{CLUSTER_DOMAIN}"


def parse_service_host(host: str) -> tuple[str, str] | None:
    """(name, namespace) of a `service_host`; None for any other host."""
    parts = host.split(".")
    if len(parts) == 4 + CLUSTER_DOMAIN.count(".") and host.endswith(f".svc.{CLUSTER_DOMAIN}"):
        return parts[0], parts[1]
    return None


DEFAULT_ROUTE = "default"
"""Name of the weighted route every request that no header/path route took follows."""


def route_name(route: Route, index: int) -> str:
    """A header/path route's name in Istio's stats and logs, whichever API carries it:
    its `name`, or `<to>-<index>`."""
    return route.name or f"{route.to}-{index}"


def subset_labels(version: str) -> dict[str, str]:
    """Pod labels of a subset: `{version: <name>}`."""
    return {VERSION_LABEL: version}


# --------------------------------------------------------------------------------------
# Field types
# --------------------------------------------------------------------------------------

_DURATION_PART = re.compile(r"(\d+\.?\d*|\.\d+)(ns|us|µs|ms|s|m|h)")
_NANOSECONDS = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
}
_MILLISECOND = 1_000_000
_MAX_SECONDS = 315_576_000_000
"""The longest duration protobuf can carry (10,000 years)."""


def _duration(value: Any) -> str:
    """A duration as Istio accepts it, written back as seconds (`90s`, `0.25s`).

    Input uses Go's syntax (`1h30m`, `500ms`), as Kubernetes' CEL rules and Istio's
    docs do. Output is always `<seconds>s`, the one form every parser on the way
    (protobuf JSON, Go, CEL) reads. Istio refuses durations under 1ms and those that
    are not whole milliseconds.
    """
    example = "such as 10s, 500ms or 1m30s"
    if not isinstance(value, str) or not value:
        raise ValueError(f"must be a duration {example}, got {value!r}")
    parts = _DURATION_PART.findall(value)
    if "".join(number + unit for number, unit in parts) != value:
        raise ValueError(f"{value!r} is not a duration {example}")
    # Exact arithmetic: `0.1s` is exactly 100ms, however many digits are written.
    nanoseconds = sum(Fraction(number) * _NANOSECONDS[unit] for number, unit in parts)
    if nanoseconds < _MILLISECOND:
        raise ValueError(f"{value} is shorter than 1ms")
    if nanoseconds % _MILLISECOND:
        raise ValueError(f"{value} is not a whole number of milliseconds")
    if nanoseconds > _MAX_SECONDS * _NANOSECONDS["s"]:
        raise ValueError(f"{value} is longer than protobuf's 10,000 years")
    milliseconds = int(nanoseconds // _MILLISECOND)
    seconds, fraction = divmod(milliseconds, 1000)
    return f"{seconds}s" if not fraction else f"{seconds}.{fraction:03d}".rstrip("0") + "s"


def _percent(value: float) -> float:
    if not 0 <= value <= 100:  # also refuses NaN
        raise ValueError(f"must be between 0 and 100, got {value:g}")
    return value


def _dns_subdomain(value: str) -> str:
    if len(value) > 253 or not naming.DNS_SUBDOMAIN.fullmatch(value):
        raise ValueError(f"{value!r} is not a valid name (lower-case letters, digits, '-' and '.')")
    return value


def _path(value: str) -> str:
    if not value.startswith("/") or any(char.isspace() for char in value):
        raise ValueError(f"{value!r} is not a URL path (starts with '/', no spaces)")
    return value


Duration = Annotated[str, BeforeValidator(_duration)]
"""`10s`, `500ms`, `1m30s`: at least 1ms, whole milliseconds; stored as seconds."""
Percent = Annotated[float, AfterValidator(_percent)]
"""0 to 100, fractions allowed (`0.5`)."""
Name = Annotated[str, AfterValidator(naming.dns_label)]
"""A Kubernetes name: lower-case letters, digits and '-', at most 63 characters."""
Port = Annotated[int, Field(ge=1, le=65535)]
Count = Annotated[int, Field(ge=1, le=INT32_MAX)]
"""A limit; 0 would mean "Istio's default" to Istio, so leave it out instead."""


class _Model(BaseModel):
    """camelCase keys as written in YAML, unknown keys refused, no silent type coercion
    (`weight: true` or `port: "80"` are errors, not 1 and 80)."""

    model_config = ConfigDict(
        extra="forbid",
        populate_by_name=True,
        frozen=True,
        alias_generator=to_camel,
        strict=True,
        use_attribute_docstrings=True,
    )


# --------------------------------------------------------------------------------------
# Traffic
# --------------------------------------------------------------------------------------


class Version(_Model):
    """One version of the service, run by pods labeled `version: <name>`: a subset."""

    weight: Annotated[int, Field(ge=0, le=100)]
    """Percent of the default traffic this version receives. The weights of all versions
    sum to 100; 0 keeps the subset defined (for header routes, mirroring, a canary
    about to start) without sending it default traffic."""


class StringMatch(_Model):
    """Exactly one of `exact`, `prefix`, `regex`."""

    exact: str | None = None
    """The whole value."""
    prefix: str | None = None
    """The beginning of the value (`/api` also matches `/apis`)."""
    regex: str | None = None
    """An RE2 regular expression the whole value matches."""

    @model_validator(mode="after")
    def _exactly_one(self) -> StringMatch:
        given = {
            key: value
            for key, value in (
                ("exact", self.exact),
                ("prefix", self.prefix),
                ("regex", self.regex),
            )
            if value is not None
        }
        if len(given) != 1:
            raise ValueError("set exactly one of exact, prefix, regex")
        ((kind, value),) = given.items()
        if kind != "exact" and not value:
            raise ValueError(f"{kind} may not be empty")
        if kind == "regex":
            # Python's `re` stands in for RE2 here: it catches typos such as an
            # unbalanced bracket, not RE2's few refusals (e.g. look-arounds).
            try:
                re.compile(value)
            except re.error as error:
                raise ValueError(f"regex {value!r} does not compile: {error}") from None
        return self

    def as_istio(self) -> dict[str, str]:
        """The Istio `StringMatch`: `{exact: ...}`, `{prefix: ...}` or `{regex: ...}`."""
        return self.model_dump(exclude_none=True)


def _exact_shorthand(value: Any) -> Any:
    """`x-canary: "true"` is short for `x-canary: {exact: "true"}`."""
    return {"exact": value} if isinstance(value, str) else value


HeaderMatch = Annotated[StringMatch, BeforeValidator(_exact_shorthand)]


class Route(_Model):
    """A match that sends requests to one version ahead of the weighted split."""

    to: str
    """The version (subset) matching requests go to; one of `versions`."""
    headers: dict[str, HeaderMatch] = {}
    """Request headers that must all match: `{x-canary: "true"}` (exact) or
    `{user-agent: {regex: ".*Mobile.*"}}`. Names are lower case."""
    path: StringMatch | None = None
    """The request path: `{prefix: /api/v2}`, `{exact: /login}` or `{regex: ...}`."""
    name: Name | None = None
    """Route name in Istio's stats and logs. Default: `<to>-<index>`."""

    @field_validator("headers")
    @classmethod
    def _header_names(cls, headers: dict[str, StringMatch]) -> dict[str, StringMatch]:
        for header in headers:
            if not _HEADER_NAME.fullmatch(header):
                raise ValueError(f"{header!r} is not a lower-case HTTP header name")
        return headers

    @field_validator("path")
    @classmethod
    def _path_is_a_path(cls, path: StringMatch | None) -> StringMatch | None:
        if path is not None and path.regex is None:
            _path(path.exact if path.exact is not None else path.prefix or "")
        return path

    @model_validator(mode="after")
    def _matches_something(self) -> Route:
        if not self.headers and self.path is None:
            raise ValueError(
                "a route needs `headers` or `path`; without a match it would take all "
                "traffic (use the version weights for that)"
            )
        return self


class Retries(_Model):
    """How the caller's proxy retries a failed request."""

    attempts: Annotated[int, Field(ge=0, le=INT32_MAX)]
    """Retries after the first try; 0 turns retries off (Istio retries twice by default)."""
    per_try_timeout: Duration | None = None
    """Time limit of each try, e.g. `2s`."""
    retry_on: str | None = None
    """When to retry, comma-separated: Envoy policies such as `5xx`, `gateway-error`,
    `connect-failure`, `refused-stream`, `retriable-4xx`, gRPC ones such as `unavailable`,
    or HTTP status codes (`503`)."""

    @field_validator("retry_on")
    @classmethod
    def _known_policies(cls, value: str | None) -> str | None:
        if value is None:
            return None
        policies = [policy.strip() for policy in value.split(",")]
        for policy in policies:
            if not policy:
                raise ValueError(f"{value!r} has an empty entry")
            if policy not in RETRY_ON_POLICIES and not _http_status(policy):
                known = ", ".join(sorted(RETRY_ON_POLICIES))
                raise ValueError(
                    f"{policy!r} is not a retry policy ({known}) nor an HTTP status code"
                )
        return ",".join(policies)

    @model_validator(mode="after")
    def _nothing_without_attempts(self) -> Retries:
        if self.attempts == 0 and (self.per_try_timeout or self.retry_on):
            raise ValueError(
                "perTryTimeout and retryOn need attempts > 0 (attempts 0 turns retries off)"
            )
        return self


def _http_status(text: str) -> bool:
    """Whether `text` is a known HTTP status code (Istio asks Go's `http.StatusText`)."""
    if not text.isdigit():
        return False
    try:
        http.HTTPStatus(int(text))
    except ValueError:
        return False
    return True


class Delay(_Model):
    """Delay some requests before forwarding them."""

    percent: Percent
    """Percent of requests delayed."""
    fixed_delay: Duration
    """How long, e.g. `5s`."""


class Abort(_Model):
    """Answer some requests with an error instead of forwarding them."""

    percent: Percent
    """Percent of requests aborted."""
    http_status: Annotated[int, Field(ge=200, le=599)]
    """Status code returned, 200-599 (e.g. 503)."""


class FaultInjection(_Model):
    """Faults injected by the caller's proxy, to test resilience."""

    delay: Delay | None = None
    """Added latency."""
    abort: Abort | None = None
    """Failed requests."""

    @model_validator(mode="after")
    def _some_fault(self) -> FaultInjection:
        if self.delay is None and self.abort is None:
            raise ValueError("set delay, abort or both")
        return self


class Mirror(_Model):
    """Send a copy of requests to a version too; its responses are discarded."""

    to: str
    """The version (subset) receiving the copies; one of `versions`."""
    percent: Percent
    """Percent of requests copied."""


class CircuitBreaker(_Model):
    """Connection limits and ejection of failing pods (DestinationRule traffic policy)."""

    max_connections: Count | None = None
    """Most TCP connections to the service per caller proxy (`connectionPool.tcp`)."""
    max_pending_requests: Count | None = None
    """Most requests waiting for a connection (`connectionPool.http.http1MaxPendingRequests`)."""
    max_requests: Count | None = None
    """Most concurrent requests (`connectionPool.http.http2MaxRequests`)."""
    consecutive_5xx_errors: Annotated[int, Field(ge=0, le=2**32 - 1)] | None = Field(
        default=None, alias="consecutive5xxErrors"
    )
    """Consecutive 5xx answers after which a pod is ejected; 0 disables it."""
    interval: Duration | None = None
    """How often pods are checked for ejection, e.g. `10s`."""
    base_ejection_time: Duration | None = None
    """Minimum ejection time, multiplied by the number of ejections, e.g. `30s`."""
    max_ejection_percent: Annotated[int, Field(ge=0, le=100)] | None = None
    """Most pods ejected at once, in percent."""


class Expose(_Model):
    """Serve the service through a gateway, on a host that gateway serves."""

    gateway: Name
    """The `istio-mesh:gateways` entry (its `name`)."""
    host: Annotated[str, AfterValidator(_dns_subdomain)]
    """One of the hosts the gateway serves, e.g. `shop.example.com`."""
    path_prefix: Annotated[str, AfterValidator(_path)] | None = None
    """Only requests whose path starts with this (`/reviews`) reach the service.
    Default: the whole host."""


# --------------------------------------------------------------------------------------
# Security
# --------------------------------------------------------------------------------------


class AllowFrom(_Model):
    """Callers allowed in (the namespace denies everything else)."""

    namespace: Name
    """The callers' namespace; any namespace, in the catalog or not."""
    service_account: Annotated[str, AfterValidator(_dns_subdomain)] | None = None
    """The callers' Kubernetes service account. Default: every workload of `namespace`."""
    methods: list[str] = []
    """HTTP methods allowed (`GET`, `POST`, ...). Default: all."""
    paths: list[str] = []
    """Paths allowed: exact (`/api/info`), prefix (`/api/*`), suffix (`*/info`) or `*`.
    Default: all."""
    ports: list[Port] = []
    """Ports of the service's pods (container ports, not the Service port). Default: all."""

    @field_validator("methods")
    @classmethod
    def _methods(cls, methods: list[str]) -> list[str]:
        for method in methods:
            if not _HTTP_METHOD.fullmatch(method):
                raise ValueError(f"{method!r} is not an upper-case HTTP method such as GET")
        return methods

    @field_validator("paths")
    @classmethod
    def _paths(cls, paths: list[str]) -> list[str]:
        for path in paths:
            if path == "*":
                continue
            if path.count("*") > 1 or "*" in path[1:-1]:
                raise ValueError(f"{path!r}: a path is exact, or has one '*' at its start or end")
            if not path.startswith(("/", "*")):
                raise ValueError(f"{path!r} is not a URL path (starts with '/')")
        return paths


class Jwt(_Model):
    """End-user authentication: every request must carry a valid JWT of this issuer."""

    issuer: Annotated[str, Field(min_length=1)]
    """The `iss` claim, e.g. `https://auth.example.com`."""
    jwks_uri: Annotated[str, Field(min_length=1, max_length=2048)]
    """Where the issuer publishes its signing keys (http or https URL)."""
    audiences: list[Annotated[str, Field(min_length=1)]] = []
    """Accepted `aud` claims. Default: any."""

    @field_validator("jwks_uri")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not re.match(r"^https?://[^/\s]+", value) or any(c.isspace() for c in value):
            raise ValueError(f"{value!r} is not an http:// or https:// URL")
        return value


# --------------------------------------------------------------------------------------
# The service
# --------------------------------------------------------------------------------------


class ServiceConfig(_Model):
    """One entry of `istio-mesh:services`: a Kubernetes Service of the mesh."""

    name: Name
    """The Kubernetes Service name; its pods carry the label `app: <name>`."""
    namespace: Name
    """Its namespace, one of `istio-mesh:namespaces`."""
    port: Port
    """The Service port traffic is routed to."""
    service_account: Annotated[str, AfterValidator(_dns_subdomain)] | None = None
    """The Kubernetes service account its pods run as. Default: `name`."""
    versions: dict[str, Version] = {}
    """Subsets by name (`{v1: {weight: 80}, v2: {weight: 20}}`), pods labeled
    `version: <name>`; weights sum to 100. Default: no subsets, every pod alike."""
    routes: list[Route] = []
    """Header or path matches sending requests to one version, tried in order before
    the weighted split (e.g. `{headers: {x-canary: "true"}, to: v2}`)."""
    timeout: Duration | None = None
    """Time limit of a request, retries included. Default: none."""
    retries: Retries | None = None
    """Retry policy. Default: Istio's (2 attempts)."""
    fault_injection: FaultInjection | None = None
    """Delays and errors injected for resilience tests."""
    mirror: Mirror | None = None
    """Copy a share of the requests to one version."""
    circuit_breaker: CircuitBreaker | None = None
    """Connection limits and outlier ejection."""
    expose: Expose | None = None
    """Reachable from outside through a gateway host (and path prefix)."""
    allow_from: list[AllowFrom] = []
    """Who may call it. Default: nobody (the namespace denies by default)."""
    jwt: Jwt | None = None
    """Require a valid end-user JWT on every request."""

    @field_validator("versions")
    @classmethod
    def _versions(cls, versions: dict[str, Version]) -> dict[str, Version]:
        for name in versions:
            naming.dns_label(name)
        total = sum(version.weight for version in versions.values())
        if versions and total != 100:
            raise ValueError(f"weights must sum to 100, got {total}")
        return versions

    @property
    def host(self) -> str:
        """The in-mesh host name: `<name>.<namespace>.svc.cluster.local`."""
        return service_host(self.name, self.namespace)

    @property
    def workload_service_account(self) -> str:
        """The service account its pods run as."""
        return self.service_account or self.name


# --------------------------------------------------------------------------------------
# Checks across fields and entries
# --------------------------------------------------------------------------------------


def service_path(index: int) -> str:
    """`istio-mesh:services[2]`: the config path of the catalog entry `index`."""
    return f"{SERVICES_KEY}[{index}]"


def check_service(service: ServiceConfig, path: str) -> list[ConfigProblem]:
    """Rules relating fields of one service; `path` is where the entry is (for messages).

    Every subset a route or the mirror names must be one of `versions`, and route paths
    must stay under `expose.pathPrefix`, so that the gateway never routes outside it.
    """
    problems: list[ConfigProblem] = []
    known = ", ".join(service.versions) or "none defined"

    def subset_exists(subset: str, where: str) -> None:
        if subset not in service.versions:
            problems.append(
                ConfigProblem(f"{path}.{where}", f"unknown version {subset!r} (versions: {known})")
            )

    prefix = service.expose.path_prefix if service.expose else None
    for index, route in enumerate(service.routes):
        subset_exists(route.to, f"routes[{index}].to")
        if prefix is None or route.path is None:
            continue
        where = f"{path}.routes[{index}].path"
        if route.path.regex is not None:
            problems.append(
                ConfigProblem(
                    where,
                    f"a regex path cannot be kept under expose.pathPrefix {prefix}; "
                    "use exact or prefix",
                )
            )
        elif not (route.path.exact or route.path.prefix or "").startswith(prefix):
            problems.append(ConfigProblem(where, f"must start with expose.pathPrefix {prefix}"))
    if service.mirror is not None:
        subset_exists(service.mirror.to, "mirror.to")
    return problems


def gateway_serves(patterns: Iterable[str], host: str, namespace: str) -> bool:
    """Whether a gateway whose servers list `patterns` serves `host` to `namespace`.

    A pattern is a host (`shop.example.com`), a wildcard (`*.example.com` matches any
    subdomain), optionally behind `<namespace>/`, which limits the VirtualServices
    that may bind to it (`*/` means any namespace).
    """
    for pattern in patterns:
        scope, _, pattern_host = pattern.rpartition("/")
        if scope not in ("", "*", namespace):
            continue
        if pattern_host == host or pattern_host == "*":
            return True
        if pattern_host.startswith("*.") and host.endswith(pattern_host[1:]):
            return True
    return False


def check_services(
    services: Sequence[ServiceConfig],
    *,
    namespaces: Iterable[str],
    gateway_hosts: Mapping[str, Iterable[str]],
    paths: Sequence[str] | None = None,
) -> list[ConfigProblem]:
    """Rules relating the catalog to itself and to the rest of the stack.

    `namespaces` are the mesh namespaces of the stack; `gateway_hosts` maps each gateway
    name to the hosts its servers list. Each service must live in a mesh namespace and
    appear once; an exposed service must name a gateway serving its host; two services
    may not claim overlapping paths of one gateway host. `allowFrom` may name any
    namespace (callers outside the catalog are common).

    `paths` says where each entry is written, for the messages; default: all inline,
    `istio-mesh:services[<index>]`.
    """
    if paths is None:
        paths = [service_path(index) for index in range(len(services))]
    if len(paths) != len(services):
        raise ValueError(f"{len(services)} services but {len(paths)} paths")
    known_namespaces = set(namespaces)
    hosts_of = {gateway: list(hosts) for gateway, hosts in gateway_hosts.items()}
    problems: list[ConfigProblem] = []
    first_index: dict[tuple[str, str], int] = {}
    # (gateway, host) -> [(path prefix, entry index)] to find overlapping exposures.
    exposures: dict[tuple[str, str], list[tuple[str, int]]] = defaultdict(list)

    for index, service in enumerate(services):
        path = paths[index]
        problems += check_service(service, path)
        if service.namespace not in known_namespaces:
            listed = ", ".join(sorted(known_namespaces)) or "none"
            problems.append(
                ConfigProblem(
                    f"{path}.namespace",
                    f"{service.namespace!r} is not one of istio-mesh:namespaces ({listed})",
                )
            )
        key = (service.namespace, service.name)
        if key in first_index:
            problems.append(
                ConfigProblem(
                    f"{path}.name",
                    f"{service.namespace}/{service.name} is already defined by "
                    f"{paths[first_index[key]]}",
                )
            )
        first_index.setdefault(key, index)

        expose = service.expose
        if expose is None:
            continue
        if expose.gateway not in hosts_of:
            listed = ", ".join(sorted(hosts_of)) or "none"
            problems.append(
                ConfigProblem(
                    f"{path}.expose.gateway",
                    f"unknown gateway {expose.gateway!r} (istio-mesh:gateways: {listed})",
                )
            )
        elif not gateway_serves(hosts_of[expose.gateway], expose.host, service.namespace):
            served = ", ".join(sorted(hosts_of[expose.gateway])) or "no hosts"
            problems.append(
                ConfigProblem(
                    f"{path}.expose.host",
                    f"gateway {expose.gateway} does not serve {expose.host} (it serves {served})",
                )
            )
        else:
            exposures[(expose.gateway, expose.host)].append((expose.path_prefix or "", index))

    for (_, host), claims in exposures.items():
        problems += _overlapping_exposures(host, claims, paths)
    problems += _clashing_resource_names(services, first_index, paths)
    return problems


def resource_stem(service: ServiceConfig) -> str:
    """The prefix of the Pulumi names of a service's objects (`<stem>-vs`, `<stem>-dr`,
    `<stem>-gateway-vs`, `<stem>-allow`, ...)."""
    return naming.service_resource_name(service.namespace, service.name)


def _clashing_resource_names(
    services: Sequence[ServiceConfig],
    first_index: Mapping[tuple[str, str], int],
    paths: Sequence[str],
) -> list[ConfigProblem]:
    """Entries whose resources would get another entry's names.

    Pulumi refuses two resources of one type with one name, and joining names with '-'
    is ambiguous: `a/b-c` and `a-b/c` share the stem `services-a-b-c`; and an entry whose stem is
    an exposed entry's stem plus `-gateway` gets the name of that entry's gateway
    VirtualService (in one namespace, the Kubernetes object `<name>-gateway` too).
    Entries defined twice are reported by `check_services` already.
    """
    problems = []
    owners: dict[str, int] = {}
    for index, service in enumerate(services):
        if first_index[(service.namespace, service.name)] != index:
            continue
        stem = resource_stem(service)
        if stem in owners:
            other = services[owners[stem]]
            problems.append(
                ConfigProblem(
                    f"{paths[index]}.name",
                    f"{service.namespace}/{service.name} and {other.namespace}/{other.name} "
                    f"({paths[owners[stem]]}) would both name their resources "
                    f"{stem}-vs, {stem}-allow, ...; rename one",
                )
            )
        owners.setdefault(stem, index)
    for index, service in enumerate(services):
        clash = owners.get(f"{resource_stem(service)}-gateway")
        if service.expose is None or clash is None:
            continue
        other = services[clash]
        problems.append(
            ConfigProblem(
                f"{paths[clash]}.name",
                f"{other.namespace}/{other.name} would name its resources like the gateway "
                f"route of {service.namespace}/{service.name} ({paths[index]}, "
                f"VirtualService {service.name}-gateway, resource "
                f"{resource_stem(service)}-gateway-vs); rename one",
            )
        )
    return problems


def _overlapping_exposures(
    host: str, claims: list[tuple[str, int]], paths: Sequence[str]
) -> list[ConfigProblem]:
    """Problems for exposures of one gateway host whose path prefixes overlap.

    Each service binds its own VirtualService to the host, and Istio does not guarantee
    the order in which it tries the routes of separate VirtualServices: with `/` and
    `/reviews` on one host, `/` may take the requests meant for `/reviews`.
    Sorted, a prefix overlaps another only if it starts with one of the prefixes it is
    nested in, which a stack of the enclosing prefixes tracks in one pass.
    """
    problems = []
    enclosing: list[tuple[str, int]] = []
    for prefix, index in sorted(claims):
        while enclosing and not prefix.startswith(enclosing[-1][0]):
            enclosing.pop()
        if enclosing:
            other_prefix, other = enclosing[-1]
            problems.append(
                ConfigProblem(
                    f"{paths[index]}.expose.pathPrefix",
                    f"{prefix or '/'} on {host} overlaps {other_prefix or '/'} of "
                    f"{paths[other]}; Istio does not order the routes of separate "
                    "VirtualServices, so give each service its own prefix",
                )
            )
        enclosing.append((prefix, index))
    return problems


def caller_egress_hosts(services: Iterable[ServiceConfig]) -> dict[str, list[str]]:
    """Sidecar egress entries (`<namespace>/<host>`) each caller namespace needs.

    A namespace's `Sidecar` only lets its proxies see their own namespace (and
    istio-system); a namespace that `allowFrom` admits into another namespace's service
    must also see that service, or its calls fail before authorization is even asked.
    """
    hosts: dict[str, set[str]] = defaultdict(set)
    for service in services:
        for caller in service.allow_from:
            if caller.namespace != service.namespace:
                hosts[caller.namespace].add(f"{service.namespace}/{service.host}")
    return {namespace: sorted(entries) for namespace, entries in sorted(hosts.items())}
