"""`istio-mesh:services` entries: field rules (pydantic) and cross-checks (check_services),
seen as the user sees them: `istio-mesh:services[i].<path>: <message>`."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from components import service_config
from components.config import config_path
from components.service_config import ServiceConfig, check_services
from tests.components.test_traffic import with_changes

BRIEF_ENTRY = """
name: reviews
namespace: shop
port: 9080
serviceAccount: reviews
versions: {v1: {weight: 80}, v2: {weight: 20}}
timeout: 10s
retries: {attempts: 3, perTryTimeout: 2s, retryOn: "5xx,connect-failure"}
circuitBreaker: {maxConnections: 100, maxPendingRequests: 10,
                 consecutive5xxErrors: 5, interval: 10s, baseEjectionTime: 30s,
                 maxEjectionPercent: 50}
faultInjection: {delay: {percent: 10, fixedDelay: 5s},
                 abort: {percent: 5, httpStatus: 503}}
expose: {gateway: ingress, host: shop.example.com, pathPrefix: /reviews}
allowFrom: [{namespace: shop, serviceAccount: productpage}]
jwt: {issuer: https://auth.example.com, jwksUri: https://auth.example.com/jwks.json}
"""

NAMESPACES = {"shop", "shop-canary"}
GATEWAY_HOSTS = {"ingress": {"shop.example.com", "*.apps.example.com", "shop/admin.example.com"}}


def entry(**changes: Any) -> dict[str, Any]:
    """The BRIEF's example entry with `changes` applied (None removes a key)."""
    return with_changes(BRIEF_ENTRY, **changes)


def problems(*entries: dict[str, Any]) -> list[str]:
    """Every problem of a catalog, as the stack reports it (pydantic's, then cross-checks)."""
    found: list[str] = []
    services = []
    for index, raw in enumerate(entries):
        try:
            services.append(ServiceConfig.model_validate(raw))
        except ValidationError as error:
            for item in error.errors():
                path = config_path(("services", index, *item["loc"]))
                found.append(f"{path}: {item['msg'].removeprefix('Value error, ')}")
    if found:
        return found
    return [
        str(problem)
        for problem in check_services(services, namespaces=NAMESPACES, gateway_hosts=GATEWAY_HOSTS)
    ]


def test_the_brief_example_is_valid() -> None:
    assert problems(entry()) == []
    service = ServiceConfig.model_validate(entry())
    assert service.host == "reviews.shop.svc.cluster.local"
    assert service.retries is not None and service.retries.per_try_timeout == "2s"
    assert service.circuit_breaker is not None
    assert service.circuit_breaker.consecutive_5xx_errors == 5


# The "done when" list, each with the exact message a user reads.
@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        (
            {"versions": {"v1": {"weight": 70}, "v2": {"weight": 20}}},
            "istio-mesh:services[1].versions: weights must sum to 100, got 90",
        ),
        (
            {"routes": [{"headers": {"x-canary": "true"}, "to": "v3"}]},
            "istio-mesh:services[1].routes[0].to: unknown version 'v3' (versions: v1, v2)",
        ),
        (
            {"retries": {"attempts": 0, "perTryTimeout": "2s"}},
            "istio-mesh:services[1].retries: perTryTimeout and retryOn need attempts > 0 "
            "(attempts 0 turns retries off)",
        ),
        (
            {"faultInjection": {"abort": {"percent": 150, "httpStatus": 503}}},
            "istio-mesh:services[1].faultInjection.abort.percent: must be between 0 and 100, "
            "got 150",
        ),
        (
            {"expose": {"gateway": "ingress", "host": "other.example.com"}},
            "istio-mesh:services[1].expose.host: gateway ingress does not serve "
            "other.example.com (it serves *.apps.example.com, shop.example.com, "
            "shop/admin.example.com)",
        ),
    ],
)
def test_bad_definitions_name_their_path(changes: dict[str, Any], expected: str) -> None:
    other = entry(name="ratings", expose=None)
    assert problems(other, entry(**changes)) == [expected]


def test_all_field_problems_are_reported_together() -> None:
    found = problems(
        entry(
            port=0,
            timeout="0.5ms",
            versions={"v1": {"weight": 50}},
            mirror={"to": "v1", "percent": -1},
        )
    )
    assert [line.split(":")[1] for line in found] == [
        "services[0].port",
        "services[0].versions",
        "services[0].timeout",
        "services[0].mirror.percent",
    ]


@pytest.mark.parametrize(
    ("written", "stored"),
    [("10s", "10s"), ("1m30s", "90s"), ("250ms", "0.25s"), ("1h", "3600s"), ("1.5s", "1.5s"),
     ("1ms", "0.001s"), ("0.1s", "0.1s"), ("1s500ms", "1.5s")],
)  # fmt: skip
def test_durations_are_stored_as_seconds(written: str, stored: str) -> None:
    assert ServiceConfig.model_validate(entry(timeout=written)).timeout == stored


@pytest.mark.parametrize(
    ("written", "message"),
    [
        ("0s", "0s is shorter than 1ms"),
        ("999us", "999us is shorter than 1ms"),
        ("1.0005s", "1.0005s is not a whole number of milliseconds"),
        ("10", "'10' is not a duration such as 10s, 500ms or 1m30s"),
        (10, "must be a duration such as 10s, 500ms or 1m30s, got 10"),
        ("-1s", "'-1s' is not a duration"),
        ("1d", "'1d' is not a duration"),
        ("", "must be a duration"),
        ("99999999999999h", "longer than protobuf's 10,000 years"),
    ],
)
def test_bad_durations(written: object, message: str) -> None:
    (found,) = problems(entry(timeout=written))
    assert found.startswith("istio-mesh:services[0].timeout: ")
    assert message in found


def test_retry_on_accepts_istio_policies_and_status_codes() -> None:
    retries = {"attempts": 2, "retryOn": "5xx, connect-failure,503 ,unavailable"}
    service = ServiceConfig.model_validate(entry(retries=retries))
    assert service.retries is not None
    assert service.retries.retry_on == "5xx,connect-failure,503,unavailable"


@pytest.mark.parametrize(
    ("retry_on", "message"),
    [
        ("5xx,teapot", "'teapot' is not a retry policy"),
        ("999", "'999' is not a retry policy"),
        ("5xx,,reset", "has an empty entry"),
    ],
)
def test_retry_on_refuses_what_istio_refuses(retry_on: str, message: str) -> None:
    (found,) = problems(entry(retries={"attempts": 1, "retryOn": retry_on}))
    assert found.startswith("istio-mesh:services[0].retries.retryOn: ")
    assert message in found


def fault(**faults: Any) -> dict[str, Any]:
    return {"faultInjection": faults}


EXPOSE = {"gateway": "ingress", "host": "shop.example.com"}


@pytest.mark.parametrize(
    ("changes", "path"),
    [
        ({"retries": {"attempts": -1}}, "retries.attempts"),
        ({"retries": {"attempts": 0, "retryOn": "5xx"}}, "retries"),
        (fault(abort={"percent": 5, "httpStatus": 199}), "faultInjection.abort.httpStatus"),
        (fault(abort={"percent": 5, "httpStatus": 600}), "faultInjection.abort.httpStatus"),
        (fault(delay={"percent": 5, "fixedDelay": "0s"}), "faultInjection.delay.fixedDelay"),
        ({"faultInjection": {}}, "faultInjection"),
        ({"circuitBreaker": {"maxConnections": 0}}, "circuitBreaker.maxConnections"),
        ({"circuitBreaker": {"maxEjectionPercent": 101}}, "circuitBreaker.maxEjectionPercent"),
        ({"versions": {"V1": {"weight": 100}}}, "versions"),
        ({"versions": {"v1": {"weight": True}}}, "versions.v1.weight"),
        ({"versions": {"v1": {"weight": 101}}}, "versions.v1.weight"),
        ({"port": "9080"}, "port"),
        ({"name": "Reviews"}, "name"),
        ({"colour": "blue"}, "colour"),
        ({"routes": [{"to": "v2"}]}, "routes[0]"),
        ({"routes": [{"to": "v2", "headers": {"X-Canary": "true"}}]}, "routes[0].headers"),
        ({"routes": [{"to": "v2", "path": {"prefix": "/a", "exact": "/a"}}]}, "routes[0].path"),
        ({"routes": [{"to": "v2", "path": {"prefix": "api"}}]}, "routes[0].path"),
        ({"routes": [{"to": "v2", "headers": {"a": {"regex": "("}}}]}, "routes[0].headers.a"),
        ({"expose": {**EXPOSE, "pathPrefix": "x"}}, "expose.pathPrefix"),
        ({"allowFrom": [{"namespace": "shop", "methods": ["get"]}]}, "allowFrom[0].methods"),
        ({"allowFrom": [{"namespace": "shop", "paths": ["/a*b"]}]}, "allowFrom[0].paths"),
        ({"allowFrom": [{"namespace": "shop", "paths": ["api"]}]}, "allowFrom[0].paths"),
        ({"allowFrom": [{"namespace": "shop", "ports": [70000]}]}, "allowFrom[0].ports[0]"),
        ({"allowFrom": [{"serviceAccount": "x"}]}, "allowFrom[0].namespace"),
        ({"jwt": {"issuer": "x", "jwksUri": "ftp://x/jwks"}}, "jwt.jwksUri"),
        ({"jwt": {"issuer": "", "jwksUri": "https://x/jwks"}}, "jwt.issuer"),
    ],
)  # fmt: skip
def test_field_rules(changes: dict[str, Any], path: str) -> None:
    found = problems(entry(**changes))
    assert [line.split(": ", 1)[0] for line in found] == [f"istio-mesh:services[0].{path}"]


@pytest.mark.parametrize(
    "changes",
    [
        {"retries": {"attempts": 0}},
        {"faultInjection": {"abort": {"percent": 0, "httpStatus": 200}}},
        {"faultInjection": {"delay": {"percent": 100, "fixedDelay": "1ms"}}},
        {"versions": {"v1": {"weight": 100}, "v2": {"weight": 0}}, "routes": []},
        {"versions": None, "routes": None},
        {"allowFrom": [{"namespace": "other", "paths": ["/api/*", "*/info", "*"]}]},
        {"routes": [{"to": "v2", "headers": {"user-agent": {"regex": ".*Mobile.*"}}}]},
        {"routes": [{"to": "v2", "path": {"prefix": "/reviews/beta"}, "name": "beta"}]},
        {"expose": {"gateway": "ingress", "host": "shop.apps.example.com"}},
    ],
)
def test_edge_values_istio_accepts(changes: dict[str, Any]) -> None:
    assert problems(entry(**changes)) == []


def test_python_names_work_too() -> None:
    """A user's own program can write the model with Python names."""
    service = ServiceConfig(
        name="reviews",
        namespace="shop",
        port=9080,
        versions={"v1": service_config.Version(weight=100)},
        retries=service_config.Retries(attempts=1, per_try_timeout="500ms"),
    )
    assert service.retries is not None and service.retries.per_try_timeout == "0.5s"
    assert service.workload_service_account == "reviews"


def test_every_field_is_documented() -> None:
    models = [
        value
        for value in vars(service_config).values()
        if isinstance(value, type)
        and issubclass(value, BaseModel)
        and value.__module__ == service_config.__name__
    ]
    assert ServiceConfig in models
    undocumented = [
        f"{model.__name__}.{name}"
        for model in models
        for name, field in model.model_fields.items()
        if not field.description
    ]
    assert undocumented == []


# --------------------------------------------------------------------------------------
# Cross-checks
# --------------------------------------------------------------------------------------


def test_routes_must_stay_under_the_exposed_prefix() -> None:
    routes = [
        {"to": "v2", "path": {"prefix": "/other"}},
        {"to": "v2", "path": {"regex": "/reviews/.*"}},
        {"to": "v2", "path": {"exact": "/reviews/x"}},
    ]
    assert problems(entry(routes=routes)) == [
        "istio-mesh:services[0].routes[0].path: must start with expose.pathPrefix /reviews",
        "istio-mesh:services[0].routes[1].path: a regex path cannot be kept under "
        "expose.pathPrefix /reviews; use exact or prefix",
    ]


def test_mirror_needs_a_known_version() -> None:
    assert problems(entry(mirror={"to": "v9", "percent": 5})) == [
        "istio-mesh:services[0].mirror.to: unknown version 'v9' (versions: v1, v2)"
    ]


def test_catalog_rules() -> None:
    found = problems(
        entry(namespace="elsewhere", expose=None),
        entry(expose={"gateway": "egress", "host": "shop.example.com"}),
        entry(expose=None),
    )
    assert found == [
        "istio-mesh:services[0].namespace: 'elsewhere' is not one of istio-mesh:namespaces "
        "(shop, shop-canary)",
        "istio-mesh:services[1].expose.gateway: unknown gateway 'egress' "
        "(istio-mesh:gateways: ingress)",
        "istio-mesh:services[2].name: shop/reviews is already defined by istio-mesh:services[1]",
    ]


def test_cross_checks_name_each_entry_where_it_is_written() -> None:
    exposed = {"gateway": "ingress", "host": "shop.example.com", "pathPrefix": "/reviews"}
    services = [
        ServiceConfig.model_validate(raw)
        for raw in (
            entry(expose=None),
            entry(expose=exposed),
            entry(name="ratings", expose={**exposed, "pathPrefix": "/reviews/ratings"}),
        )
    ]
    paths = [
        "istio-mesh:services[0]",
        "istio-mesh:serviceFiles[0] services/shop.yaml[4]",
        "istio-mesh:serviceFiles[1] services/ratings.yaml[0]",
    ]

    found = check_services(
        services, namespaces=NAMESPACES, gateway_hosts=GATEWAY_HOSTS, paths=paths
    )

    assert [str(problem) for problem in found] == [
        "istio-mesh:serviceFiles[0] services/shop.yaml[4].name: shop/reviews is already "
        "defined by istio-mesh:services[0]",
        "istio-mesh:serviceFiles[1] services/ratings.yaml[0].expose.pathPrefix: "
        "/reviews/ratings on shop.example.com overlaps /reviews of istio-mesh:serviceFiles[0] "
        "services/shop.yaml[4]; Istio does not order the routes of separate VirtualServices, "
        "so give each service its own prefix",
    ]
    with pytest.raises(ValueError, match="3 services but 2 paths"):
        check_services(
            services, namespaces=NAMESPACES, gateway_hosts=GATEWAY_HOSTS, paths=paths[:2]
        )


def test_same_name_in_two_namespaces_is_fine() -> None:
    assert problems(entry(expose=None), entry(namespace="shop-canary", expose=None)) == []


def test_namespace_scoped_gateway_hosts() -> None:
    admin = {"gateway": "ingress", "host": "admin.example.com"}
    assert problems(entry(expose=admin)) == []
    (found,) = problems(entry(namespace="shop-canary", expose=admin))
    assert found.startswith("istio-mesh:services[0].expose.host: gateway ingress does not serve")


def test_overlapping_exposures_are_refused() -> None:
    def exposed(name: str, prefix: str | None) -> dict[str, Any]:
        expose = {"gateway": "ingress", "host": "shop.example.com", "pathPrefix": prefix}
        return entry(name=name, expose={k: v for k, v in expose.items() if v is not None})

    assert problems(exposed("a", "/a"), exposed("b", "/b"), exposed("ab", "/ab/")) == [
        "istio-mesh:services[2].expose.pathPrefix: /ab/ on shop.example.com overlaps /a of "
        "istio-mesh:services[0]; Istio does not order the routes of separate VirtualServices, "
        "so give each service its own prefix"
    ]
    found = problems(exposed("root", None), exposed("a", "/a"), exposed("b", "/b"))
    assert [line.split(":")[1] for line in found] == [
        "services[1].expose.pathPrefix",
        "services[2].expose.pathPrefix",
    ]
    assert all("overlaps / of istio-mesh:services[0]" in line for line in found)


def test_allow_from_may_name_namespaces_outside_the_catalog() -> None:
    allow = [{"namespace": "batch", "serviceAccount": "nightly-report"}]
    assert problems(entry(allowFrom=allow)) == []


def test_service_host_round_trip() -> None:
    host = service_config.service_host("reviews", "shop")
    assert host == "reviews.shop.svc.cluster.local"
    assert service_config.parse_service_host(host) == ("reviews", "shop")
    assert service_config.parse_service_host("shop.example.com") is None
    assert service_config.parse_service_host("a.b.svc.cluster.local.evil.com") is None


def test_caller_namespaces_get_egress_to_the_services_they_may_call() -> None:
    allow = [
        {"namespace": "batch", "serviceAccount": "report"},
        {"namespace": "batch"},
        {"namespace": "shop", "serviceAccount": "productpage"},
    ]
    services = [
        ServiceConfig.model_validate(entry(allowFrom=allow)),
        ServiceConfig.model_validate(entry(name="ratings", allowFrom=allow[:1])),
        ServiceConfig.model_validate(entry(name="details", allowFrom=None)),
    ]
    assert service_config.caller_egress_hosts(services) == {
        "batch": [
            "shop/ratings.shop.svc.cluster.local",
            "shop/reviews.shop.svc.cluster.local",
        ]
    }
