"""Property: any whole stack config ends in a config error or in a deployable stack.

Hypothesis writes complete `istio-mesh:*` configs (istio, gateways, namespaces,
services inline and in service files, observability, promotion): mostly realistic ones,
sampled from the shapes the stacks and the docs use and cross-referencing each other,
and mutated ones (wrong types, unknown keys, missing keys, bad names, bad weights,
references to namespaces, gateways, hosts and versions that do not exist, in the stack
file or in a service file). Each runs through the real `__main__.py` under Pulumi mocks,
and must end in exactly one of two ways:

- a `ConfigError` whose every problem names a config path that exists in the input
  (or a key missing from it; in a service file, the file and a path in it), with
  nothing managed registered: only the promotion
  gate's `StackReference` read (under the `IstioMesh` component) may precede its
  refusal;
- a stack that `pulumi up` could apply: unique URNs (the engine refuses duplicates),
  each Kubernetes object and Helm release declared once, every Istio object valid
  against the reference CRDs (schema and CEL), every Istio chart value key known to
  its chart, Kubernetes names and labels the API server accepts, no mandatory
  violation of the policy pack under `policies/config/dev.json`, protection exactly
  when `istio.protect` asks for it, and no secret outside a secret wrapper.

Any other exception fails the test. Examples are derandomized and the example
database is off, so CI runs the same examples every time; `PROPERTY_EXAMPLES=500`
explores further locally.
"""

from __future__ import annotations

import copy
import itertools
import json
import os
import re
import tempfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from components.config import MeshConfig, parse_config, raw_config_from_strings
from components.errors import ConfigError
from components.naming import CHART_REPOSITORY
from istio_mesh.mesh import TYPE as MESH_TYPE
from mesh.analyzer import PACK_DIR, PolicyPackProcess
from mesh.check import program_resources
from mesh.program import (
    STACK_REFERENCE_TYPE,
    ProgramRun,
    Registered,
    run_program,
)
from mesh.reference import Reference, load_reference
from tests.test_secrets import plain_strings, secret_values

if not os.environ.get("ISTIO_REFERENCE"):
    pytest.skip(
        "ISTIO_REFERENCE is not set: the property needs the reference CRDs and charts",
        allow_module_level=True,
    )

STACK = "property"
DEV_POLICY = json.loads((PACK_DIR / "config" / "dev.json").read_text())
RELEASE_TYPE = "kubernetes:helm.sh/v3:Release"
ISTIO_CHARTS = {"base", "istiod", "gateway", "cni", "ztunnel"}
"""Charts whose values the reference holds (the add-ons' upstream charts it does not)."""
EXAMPLES = int(os.environ.get("PROPERTY_EXAMPLES", "50"))
PROPERTY_SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# --------------------------------------------------------------------------------------
# Realistic configs
# --------------------------------------------------------------------------------------

# Versions the dev policy accepts (minimumVersion 1.30.0): an older one is a valid
# config the pack refuses by design, which is the pack's test, not this property's.
VERSIONS = ["1.30.5", "1.31.1", "1.30.3"]
TAGS = ["stable", "canary", "prod"]
# Names that nest into each other (`a` and `a-b`, `reviews` and `reviews-gateway`),
# because the program derives resource and object names by joining them with '-'.
NAMESPACES = ["shop", "a", "a-b", "payments"]
SERVICES = ["reviews", "reviews-gateway", "b-c", "c", "ratings", "productpage"]
GATEWAYS = ["ingress", "egress", "edge", "internal"]
HOSTS = ["shop.example.com", "api.example.com", "admin.example.com"]
SUBSETS = ["v1", "v2", "v3", "canary"]
DURATIONS = ["10s", "500ms", "2s", "1m30s", "0.25s"]


def optional(draw: st.DrawFn, document: dict[str, Any], key: str, value: Any) -> None:
    """Set `key` half of the time: defaults get exercised as much as explicit values."""
    if draw(st.booleans()):
        document[key] = value


@st.composite
def istio_settings(draw: st.DrawFn) -> dict[str, Any]:
    versions = draw(st.lists(st.sampled_from(VERSIONS), min_size=1, max_size=2, unique=True))
    revisions = [version.replace(".", "-") for version in versions]
    istio: dict[str, Any] = {"revisions": [{"version": version} for version in versions]}
    if draw(st.booleans()):
        tags = draw(st.lists(st.sampled_from(TAGS), min_size=1, max_size=2, unique=True))
        istio["tags"] = {tag: draw(st.sampled_from(revisions)) for tag in tags}
    optional(draw, istio, "defaultRevision", draw(st.sampled_from(revisions)))
    optional(draw, istio, "dataplane", draw(st.sampled_from(["sidecar", "ambient"])))
    for key in ("cni", "highAvailability", "accessLogs", "protect"):
        optional(draw, istio, key, draw(st.booleans()))
    optional(
        draw, istio, "outboundTrafficPolicy", draw(st.sampled_from(["ALLOW_ANY", "REGISTRY_ONLY"]))
    )
    optional(draw, istio, "trustDomain", draw(st.sampled_from(["cluster.local", "example.org"])))
    return istio


def designators(istio: dict[str, Any]) -> list[str]:
    """What may inject a gateway or namespace: the tags, the revisions, `default`."""
    revisions = [r["version"].replace(".", "-") for r in istio["revisions"]]
    return [*(istio.get("tags") or {"stable": None}), *revisions, "default"]


def choose_revision(draw: st.DrawFn, istio: dict[str, Any], entry: dict[str, Any]) -> None:
    """Set `revision` (a tag, a revision or `default`), or leave the default `stable`
    when the stack has that tag."""
    if "stable" not in (istio.get("tags") or {"stable": None}) or draw(st.booleans()):
        entry["revision"] = draw(st.sampled_from(designators(istio)))


@st.composite
def gateways(draw: st.DrawFn, istio: dict[str, Any]) -> list[dict[str, Any]]:
    names = draw(st.lists(st.sampled_from(GATEWAYS), max_size=2, unique=True))
    hosts = iter(draw(st.permutations(HOSTS)))
    entries = []
    for name in names:
        kind = "egress" if name == "egress" else "ingress"
        gateway: dict[str, Any] = {"name": name}
        if kind == "egress" or draw(st.booleans()):
            gateway["kind"] = kind
        choose_revision(draw, istio, gateway)
        optional(draw, gateway, "serviceType", draw(st.sampled_from(["LoadBalancer", "NodePort"])))
        low = draw(st.integers(1, 3))
        optional(draw, gateway, "replicas", {"min": low, "max": low + draw(st.integers(0, 3))})
        if kind == "ingress":
            served = list(itertools.islice(hosts, draw(st.integers(1, 2)))) or ["x.example.com"]
            tls: dict[str, Any] = {"credentialName": f"{name}-tls"}
            optional(draw, tls, "mode", draw(st.sampled_from(["SIMPLE", "MUTUAL"])))
            gateway["servers"] = [{"hosts": served, "tls": tls}]
        entries.append(gateway)
    return entries


@st.composite
def namespaces(draw: st.DrawFn, istio: dict[str, Any]) -> list[dict[str, Any]]:
    names = draw(st.lists(st.sampled_from(NAMESPACES), max_size=3, unique=True))
    entries = []
    for name in names:
        namespace: dict[str, Any] = {"name": name}
        choose_revision(draw, istio, namespace)
        optional(draw, namespace, "dataplane", draw(st.sampled_from(["sidecar", "ambient"])))
        labels = {"team": name, "app.kubernetes.io/part-of": "bookinfo"}
        optional(draw, namespace, "labels", labels)
        optional(draw, namespace, "allowIngressFrom", ["monitoring"])
        entries.append(namespace)
    return entries


@st.composite
def versions(draw: st.DrawFn) -> dict[str, dict[str, int]]:
    """Subsets whose weights sum to 100 (splitting 100 at random cut points)."""
    names = draw(st.lists(st.sampled_from(SUBSETS), max_size=3, unique=True))
    cuts = sorted(draw(st.lists(st.integers(0, 100), min_size=max(len(names) - 1, 0))))
    bounds = [0, *cuts[: max(len(names) - 1, 0)], 100]
    weights = [high - low for low, high in itertools.pairwise(bounds)]
    return {name: {"weight": weight} for name, weight in zip(names, weights, strict=False)}


@st.composite
def services(
    draw: st.DrawFn, namespaces: list[dict[str, Any]], gateways: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    homes = [namespace["name"] for namespace in namespaces]
    if not homes:
        return []
    exposures = [
        (gateway["name"], host)
        for gateway in gateways
        for server in gateway.get("servers", [])
        for host in server["hosts"]
    ]
    entries = []
    for name in draw(st.lists(st.sampled_from(SERVICES), max_size=4, unique=True)):
        service: dict[str, Any] = {
            "name": name,
            "namespace": draw(st.sampled_from(homes)),
            "port": draw(st.sampled_from([9080, 8080, 443])),
        }
        subsets = draw(versions())
        if subsets:
            service["versions"] = subsets
            to = st.sampled_from(sorted(subsets))
            routes = [{"headers": {"x-canary": "true"}, "to": draw(to)}]
            optional(draw, service, "routes", routes)
            optional(draw, service, "mirror", {"to": draw(to), "percent": 10})
        optional(draw, service, "timeout", draw(st.sampled_from(DURATIONS)))
        retries = {"attempts": 3, "perTryTimeout": "2s", "retryOn": "5xx,connect-failure"}
        optional(draw, service, "retries", retries)
        breaker = {"maxConnections": 100, "consecutive5xxErrors": 5, "interval": "10s"}
        optional(draw, service, "circuitBreaker", breaker)
        faults = {"delay": {"percent": 10, "fixedDelay": "2s"}}
        optional(draw, service, "faultInjection", faults)
        if exposures and draw(st.booleans()):
            gateway, host = draw(st.sampled_from(exposures))
            # A prefix per service: exposures of one host may not overlap.
            service["expose"] = {"gateway": gateway, "host": host, "pathPrefix": f"/{name}/"}
        callers = [{"namespace": service["namespace"], "serviceAccount": "productpage"}]
        callers.append({"namespace": "monitoring", "methods": ["GET"], "paths": ["/metrics"]})
        optional(draw, service, "allowFrom", draw(st.lists(st.sampled_from(callers), max_size=2)))
        jwt = {"issuer": "https://auth.example.com", "jwksUri": "https://auth.example.com/jwks"}
        optional(draw, service, "jwt", jwt)
        entries.append(service)
    return entries


@st.composite
def split_catalog(
    draw: st.DrawFn, catalog: list[dict[str, Any]]
) -> tuple[list[dict[str, Any]], list[list[dict[str, Any]]]]:
    """(inline entries, service files' entries): the catalog inline, in two files (one may
    be empty) or split between both. Where a stack writes its services changes nothing."""
    where = draw(st.sampled_from(["inline", "files", "both"]))
    if where == "inline" or not catalog:
        return catalog, []
    cut = 0 if where == "files" else draw(st.integers(0, len(catalog)))
    rest = catalog[cut:]
    second = draw(st.integers(0, len(rest)))
    return catalog[:cut], [rest[:second], rest[second:]]


@st.composite
def observability(draw: st.DrawFn, namespaces: list[dict[str, Any]]) -> dict[str, Any]:
    document: dict[str, Any] = {}
    tracing: dict[str, Any] = {"samplingPercent": draw(st.sampled_from([0, 1, 10.5, 100]))}
    provider = draw(st.sampled_from(["jaeger", "opentelemetry", "zipkin"]))
    optional(draw, tracing, "provider", provider)
    if draw(st.booleans()):
        tracing["service"] = "otel-collector.tracing.svc.cluster.local"
        optional(draw, tracing, "port", 4317)
    optional(draw, document, "tracing", tracing)
    prometheus = draw(st.booleans())
    addons = {
        "prometheus": prometheus,
        "grafana": prometheus and draw(st.booleans()),
        "jaeger": draw(st.booleans()),
        "kiali": prometheus and draw(st.booleans()),
    }
    optional(draw, document, "addons", addons)
    optional(draw, document, "namespace", draw(st.sampled_from(["observability", "monitoring"])))
    if namespaces:
        chosen = draw(st.lists(st.sampled_from(namespaces), max_size=2, unique_by=str))
        overrides = [{"namespace": n["name"], "samplingPercent": 50} for n in chosen]
        optional(draw, document, "namespaces", overrides)
    optional(draw, document, "alerts", {"errorRatio": 0.1, "p99LatencyMs": 500})
    optional(draw, document, "kialiAuth", draw(st.sampled_from(["token", "anonymous"])))
    return document


SOURCE_STACK = "organization/istio-mesh/dev"


@st.composite
def promotion(
    draw: st.DrawFn, istio: dict[str, Any]
) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """The promotion gate, and the outputs the source stack's StackReference reads:
    the same versions (passes), one fewer (refused), none (fails closed), garbage."""
    if draw(st.integers(0, 4)) > 0:
        return None, {}
    versions = [revision["version"] for revision in istio["revisions"]]
    outputs = draw(
        st.sampled_from(
            [
                {"istioVersions": versions, "revisions": [v.replace(".", "-") for v in versions]},
                {"istioVersions": versions[1:]},
                None,
                {"istioVersions": "1.30.5"},
            ]
        )
    )
    return {"fromStack": SOURCE_STACK}, ({SOURCE_STACK: outputs} if outputs is not None else {})


@st.composite
def realistic_configs(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, Any]]:
    """(config as Python values by short key, stack references) of a plausible stack.

    `serviceFiles` holds each file's entries (a list) rather than its path, so that
    mutations reach into the files; `with_service_files` writes them out."""
    istio = draw(istio_settings())
    config: dict[str, Any] = {"istio": istio}
    entries = draw(gateways(istio))
    apps = draw(namespaces(istio))
    inline, files = draw(split_catalog(draw(services(apps, entries))))
    # An empty list or no key at all: the same stack, written two ways.
    for key, value in (("gateways", entries), ("namespaces", apps), ("services", inline)):
        if value or draw(st.booleans()):
            config[key] = value
    if files:
        config["serviceFiles"] = files
    optional(draw, config, "observability", draw(observability(apps)))
    gate, references = draw(promotion(istio))
    if gate is not None:
        config["promotion"] = gate
    optional(draw, config, "kubernetes:context", "kind-istio-dev")
    return config, references


# --------------------------------------------------------------------------------------
# Mutations
# --------------------------------------------------------------------------------------

BAD_NAMES = ["Shop", "-shop", "shop-", "shop_1", "", "a" * 64, "edge-" + "x" * 55, "nowhere"]
GARBAGE = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 2**40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(BAD_NAMES),
    st.sampled_from(["beta", "1-99-0", "v9", "other.example.com", "*", "/", "10", "1.30"]),
    st.text(max_size=6),
    st.lists(st.integers(0, 3), max_size=2),
    st.dictionaries(st.sampled_from(["name", "colour", "x"]), st.integers(0, 3), max_size=2),
)
UNKNOWN_KEYS = ["colour", "revison", "Name", "namespaces", "weight", "extra"]


def locations(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every position in a document, containers first: what a mutation may touch."""
    yield path
    if isinstance(value, dict):
        for key, item in value.items():
            yield from locations(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from locations(item, (*path, index))


def at(document: Any, path: tuple[Any, ...]) -> Any:
    for step in path:
        document = document[step]
    return document


@st.composite
def mutated(
    draw: st.DrawFn, case: tuple[dict[str, Any], dict[str, Any]]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """`case` with one to three edits a person (or a bad merge) could make."""
    config, references = copy.deepcopy(case[0]), case[1]
    for _ in range(draw(st.integers(1, 3))):
        paths = [path for path in locations(config) if path]
        operation = draw(st.sampled_from(["replace", "replace", "delete", "add", "top"]))
        if operation == "top":
            # The whole key: a plain string, or a misspelt or foreign key.
            key = draw(st.sampled_from([*config, "istio-mesh:gateway", "istio-mesh:Istio"]))
            config[key] = draw(st.one_of(st.sampled_from(["yes", "[1, 2", "{}", "null"]), GARBAGE))
            continue
        path = draw(st.sampled_from(paths))
        parent, last = at(config, path[:-1]), path[-1]
        if operation == "replace":
            parent[last] = draw(GARBAGE)
        elif operation == "delete":
            del parent[last]
        else:
            target = at(config, path)
            if isinstance(target, dict):
                target[draw(st.sampled_from(UNKNOWN_KEYS))] = draw(GARBAGE)
            elif isinstance(target, list):
                target.append(draw(GARBAGE))
    return config, references


stack_configs = st.one_of(realistic_configs(), realistic_configs().flatmap(mutated))


# --------------------------------------------------------------------------------------
# The property
# --------------------------------------------------------------------------------------


def with_service_files(config: dict[str, Any], directory: Path) -> dict[str, Any]:
    """`config` as a stack file says it: each list in `serviceFiles` (a file's entries)
    written to a file in `directory` and listed by its path; anything else left as it is,
    for the program to refuse."""
    listed = config.get("serviceFiles")
    if not isinstance(listed, list):
        return config
    paths = []
    for index, item in enumerate(listed):
        if isinstance(item, list):
            path = directory / f"services-{index}.yaml"
            path.write_text(yaml.safe_dump(item))
            item = str(path)
        paths.append(item)
    return {**config, "serviceFiles": paths}


_IN_A_SERVICE_FILE = re.compile(r"^istio-mesh:serviceFiles\[(\d+)\] ")


def as_case_path(path: str, listed: Any) -> str:
    """A problem path in a service file as a path into the case, whose `serviceFiles[i]`
    holds that file's entries: `istio-mesh:serviceFiles[1] /tmp/x/services-1.yaml[3].port`
    -> `istio-mesh:serviceFiles[1][3].port`, if `listed` (the paths the stack file listed)
    names that file at that index. Other paths are returned as they are."""
    match = _IN_A_SERVICE_FILE.match(path)
    if match is None or not isinstance(listed, list):
        return path
    index, rest = int(match.group(1)), path[match.end() :]
    name = listed[index] if index < len(listed) else None
    if not isinstance(name, str) or not rest.startswith(name):
        return path
    return f"istio-mesh:serviceFiles[{index}]{rest[len(name) :]}"


def config_strings(config: dict[str, Any]) -> dict[str, str]:
    """As the Pulumi CLI hands config to a program: strings, structured values as JSON."""
    return {
        (key if ":" in key else f"istio-mesh:{key}"): (
            value if isinstance(value, str) else json.dumps(value)
        )
        for key, value in config.items()
    }


def _field_names(model: type[BaseModel], seen: set[type[BaseModel]]) -> set[str]:
    names: set[str] = set()
    if model in seen:
        return names
    seen.add(model)
    for name, info in model.model_fields.items():
        names |= {name, info.alias or name}
        for argument in _annotation_models(info.annotation):
            names |= _field_names(argument, seen)
    return names


def _annotation_models(annotation: Any) -> Iterator[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation
    for argument in getattr(annotation, "__args__", ()):
        yield from _annotation_models(argument)
    for argument in getattr(annotation, "__metadata__", ()):
        yield from _annotation_models(argument)
    origin = getattr(annotation, "__origin__", None)
    if origin is not None and origin is not annotation:
        yield from _annotation_models(origin)


CONFIG_FIELDS = _field_names(MeshConfig, set())
"""Every key the config models define (camelCase and Python names)."""


def _resolves(node: Any, rest: str) -> bool:
    """Whether `rest` (`.istio.tags.canary`, `[2].name`) leads through `node`; a last
    step may also name a key the models define that the input leaves out."""
    if not rest:
        return True
    if rest.startswith("["):
        index, _, after = rest[1:].partition("]")
        return (
            isinstance(node, list)
            and index.isdigit()
            and int(index) < len(node)
            and _resolves(node[int(index)], after)
        )
    if not rest.startswith(".") or not isinstance(node, dict):
        return False
    rest = rest[1:]
    # Keys may hold dots (label keys): try every key the rest starts with.
    for key in node:
        if (rest == key or rest.startswith((f"{key}.", f"{key}["))) and _resolves(
            node[key], rest[len(key) :]
        ):
            return True
    return rest in CONFIG_FIELDS


def names_the_input(path: str, raw: dict[str, Any]) -> bool:
    """Whether a problem's config path points into the config as given."""
    if path == "istio-mesh":
        return True
    project, colon, rest = path.partition(":")
    return project == "istio-mesh" and bool(colon) and _resolves(raw, f".{rest}")


def raw_document(config: dict[str, Any]) -> dict[str, Any]:
    """The config as the program reads it (short keys; values parsed as JSON if they are)."""
    raw: dict[str, Any] = {}
    for key, text in config_strings(config).items():
        project, _, short = key.partition(":")
        if project != "istio-mesh":
            continue
        try:
            raw[short] = json.loads(text)
        except ValueError:
            raw[short] = text
    return raw


_LABEL_NAME = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
HELM_RELEASE_NAME_MAX = 53
"""Helm refuses longer release names (they become label values with a suffix)."""


def label_value_ok(value: Any) -> bool:
    return isinstance(value, str) and len(value) <= 63 and bool(_LABEL_NAME.match(value))


def label_key_ok(key: str) -> bool:
    prefix, slash, name = key.rpartition("/")
    if slash and not (len(prefix) <= 253 and _DNS_SUBDOMAIN.fullmatch(prefix)):
        return False
    return bool(name) and label_value_ok(name)


def kubernetes_problems(run: ProgramRun) -> list[str]:
    """Names, labels and selectors of the built-in objects and releases that the API
    server (or Helm) would refuse; the Istio objects are the reference's job."""
    problems = []
    for manifest in run.manifests():
        metadata = manifest["metadata"]
        name, namespace = metadata.get("name", ""), metadata.get("namespace")
        where = f"{manifest['kind']} {namespace}/{name}"
        if len(name) > 63 or not _DNS_LABEL.fullmatch(name):
            problems.append(f"{where}: name is not a DNS label")
        if namespace is not None and (len(namespace) > 63 or not _DNS_LABEL.fullmatch(namespace)):
            problems.append(f"{where}: namespace is not a DNS label")
        for key, value in (metadata.get("labels") or {}).items():
            if not label_key_ok(key) or not label_value_ok(value):
                problems.append(f"{where}: label {key}={value!r} is not valid")
        if manifest["kind"] == "NetworkPolicy":
            for rule in manifest["spec"].get("ingress", []):
                for source in rule.get("from", []):
                    selector = source.get("namespaceSelector") or {}
                    for expression in selector.get("matchExpressions", []):
                        bad = [v for v in expression["values"] if not label_value_ok(v)]
                        if bad:
                            problems.append(f"{where}: selector values {bad} are not labels")
    for release in run.of_type(RELEASE_TYPE):
        name, namespace = release.props["name"], release.props["namespace"]
        if len(name) > HELM_RELEASE_NAME_MAX or not _DNS_LABEL.fullmatch(name):
            problems.append(f"Helm release {namespace}/{name}: not a valid release name")
    return problems


def duplicates(items: list[Any]) -> list[Any]:
    return [item for item, count in Counter(items).items() if count > 1]


def protection_problems(run: ProgramRun, config: MeshConfig) -> list[str]:
    """`istio.protect` protects and retains istio-base and every namespace but the
    add-ons' (recreated at will); without it, nothing is protected."""
    if not config.istio.protect:
        return [f"{r.urn} is protected" for r in run.resources if r.protect]
    wanted = [
        r
        for r in run.of_type("kubernetes:core/v1:Namespace")
        if r.props["metadata"]["name"] != config.observability.namespace
    ]
    wanted += [r for r in run.of_type(RELEASE_TYPE) if r.props["name"] == "istio-base"]
    return [f"{r.urn} is not protected" for r in wanted if not (r.protect and r.retain_on_delete)]


def policy_config(config: MeshConfig) -> dict[str, Any]:
    """dev.json, with the stack's add-on namespace as a system namespace (the checked-in
    files name `observability`, the namespace the dev and prod stacks use), and
    `monitoring`, where the generated callers live, as a namespace created elsewhere."""
    policy = copy.deepcopy(DEV_POLICY)
    for rule in ("namespace-injection", "namespace-default-deny"):
        exempt = policy[rule]["systemNamespaces"]
        if config.observability.namespace not in exempt:
            exempt.append(config.observability.namespace)
    policy["authorization-source-namespaces-exist"] = {
        "enforcementLevel": "mandatory",
        "externalNamespaces": ["monitoring"],
    }
    return policy


@pytest.fixture(scope="module")
def reference() -> Reference:
    return load_reference()


@pytest.fixture(scope="module")
def pack() -> Iterator[PolicyPackProcess]:
    """One pack for every example (starting one takes about a second)."""
    with PolicyPackProcess(stack=STACK, dry_run=True) as process:
        yield process


def outcome(
    case: tuple[dict[str, Any], dict[str, Any]], reference: Reference, pack: PolicyPackProcess
) -> str:
    """Run one config, its service files written out; assert the property; return
    "config error" or "rendered"."""
    with tempfile.TemporaryDirectory() as directory:
        return outcome_with_files(case, Path(directory), reference, pack)


def outcome_with_files(
    case: tuple[dict[str, Any], dict[str, Any]],
    directory: Path,
    reference: Reference,
    pack: PolicyPackProcess,
) -> str:
    written, references = case
    config = with_service_files(written, directory)
    registered: list[Registered] = []
    try:
        run = run_program(STACK, config_strings(config), references, registered=registered)
    except ConfigError as error:
        # The read of the source stack (and the built-in provider that reads it) is not
        # a managed resource, nor is the mesh component holding it (no object of its own).
        reads = (STACK_REFERENCE_TYPE, "pulumi:providers:pulumi", MESH_TYPE)
        managed = [r.urn for r in registered if r.type not in reads]
        assert managed == [], f"registered before the config error: {managed}"
        assert error.problems
        raw = raw_document(written)
        for problem in error.problems:
            assert problem.message
            path = as_case_path(problem.path, config.get("serviceFiles"))
            assert names_the_input(path, raw), f"{problem.path} is not in {raw}"
            assert f"{problem.path}: {problem.message}" in str(error)
        return "config error"

    settings_ = parse_config(raw_config_from_strings(config_strings(config)))
    urns = [r.urn for r in run.resources]
    assert duplicates(urns) == [], "the engine refuses duplicate URNs"
    objects = [
        (m["apiVersion"], m["kind"], m["metadata"].get("namespace"), m["metadata"]["name"])
        for m in run.manifests()
    ]
    assert duplicates(objects) == [], "two resources manage one Kubernetes object"
    releases = [(r.props["namespace"], r.props["name"]) for r in run.of_type(RELEASE_TYPE)]
    assert duplicates(releases) == [], "two resources manage one Helm release"

    istio_objects = [m for m in run.manifests() if reference.is_istio(m)]
    assert [error for m in istio_objects for error in reference.validate(m)] == []
    value_problems = []
    for release in run.of_type(RELEASE_TYPE):
        chart = release.props["chart"]
        if chart in ISTIO_CHARTS and release.props["repositoryOpts"]["repo"] == CHART_REPOSITORY:
            value_problems += reference.missing_value_keys(chart, release.props["values"])
    assert value_problems == []
    assert kubernetes_problems(run) == []
    assert protection_problems(run, settings_) == []

    secrets = secret_values(run)
    for resource in run.resources:
        leaked = [s for s in plain_strings(resource.props) if s in secrets]
        assert leaked == [], f"{resource.urn} holds a secret in plain text"
    assert [s for s in plain_strings(run.outputs) if s in secrets] == []

    pack.configure(policy_config(settings_))
    diagnostics = pack.check(program_resources(run))
    mandatory = [d for d in diagnostics if d.enforcement == "mandatory"]
    assert mandatory == [], "\n".join(f"{d.policy} {d.urn}: {d.message}" for d in mandatory)
    return "rendered"


def test_any_stack_config_is_a_config_error_or_a_deployable_stack(
    reference: Reference, pack: PolicyPackProcess
) -> None:
    seen: Counter[str] = Counter()

    @PROPERTY_SETTINGS
    @given(stack_configs)
    def property_holds(case: tuple[dict[str, Any], dict[str, Any]]) -> None:
        seen[outcome(case, reference, pack)] += 1

    property_holds()
    # Both ends must be reached, or the strategies have drifted into testing one side.
    assert seen["rendered"] >= EXAMPLES // 5, seen
    assert seen["config error"] >= EXAMPLES // 5, seen
