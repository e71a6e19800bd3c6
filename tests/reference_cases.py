"""Istio objects for validation tests: one valid object per kind, as our builders emit
them, and invalid variants with the error `mesh.reference` reports for each. Shared by
the fast tier (tests/test_reference.py) and the e2e tier, which asks the API server for
its verdict on the same objects (tests/e2e/test_reference_verdicts.py).
"""

from __future__ import annotations

import copy
from typing import Any


def istio_object(
    api_version: str, kind: str, name: str, namespace: str, spec: Any
) -> dict[str, Any]:
    return {
        "apiVersion": api_version,
        "kind": kind,
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


# --------------------------------------------------------------------------------------
# One valid object per kind, as our builders emit them
# --------------------------------------------------------------------------------------

VALID: dict[str, dict[str, Any]] = {
    "VirtualService": istio_object(
        "networking.istio.io/v1",
        "VirtualService",
        "reviews",
        "shop",
        {
            "hosts": ["reviews.shop.svc.cluster.local"],
            "http": [
                {
                    "match": [{"uri": {"prefix": "/reviews"}}],
                    "route": [
                        {
                            "destination": {
                                "host": "reviews.shop.svc.cluster.local",
                                "subset": "v1",
                                "port": {"number": 9080},
                            },
                            "weight": 80,
                        },
                        {
                            "destination": {
                                "host": "reviews.shop.svc.cluster.local",
                                "subset": "v2",
                            },
                            "weight": 20,
                        },
                    ],
                    "timeout": "10s",
                    "retries": {"attempts": 3, "perTryTimeout": "2s", "retryOn": "5xx"},
                    "fault": {
                        "delay": {"percentage": {"value": 10.0}, "fixedDelay": "5s"},
                        "abort": {"percentage": {"value": 5}, "httpStatus": 503},
                    },
                }
            ],
        },
    ),
    "DestinationRule": istio_object(
        "networking.istio.io/v1",
        "DestinationRule",
        "reviews",
        "shop",
        {
            "host": "reviews.shop.svc.cluster.local",
            "trafficPolicy": {
                "connectionPool": {
                    "tcp": {"maxConnections": 100},
                    "http": {"http1MaxPendingRequests": 10, "idleTimeout": "30s"},
                },
                "outlierDetection": {
                    "consecutive5xxErrors": 5,
                    "interval": "10s",
                    "baseEjectionTime": "30s",
                    "maxEjectionPercent": 50,
                },
                "tls": {"mode": "ISTIO_MUTUAL"},
            },
            "subsets": [
                {"name": "v1", "labels": {"version": "v1"}},
                {"name": "v2", "labels": {"version": "v2"}},
            ],
        },
    ),
    "Gateway": istio_object(
        "networking.istio.io/v1",
        "Gateway",
        "ingress",
        "istio-ingress",
        {
            "selector": {"istio": "ingress"},
            "servers": [
                {
                    "port": {"number": 443, "name": "https", "protocol": "HTTPS"},
                    "hosts": ["shop.example.com"],
                    "tls": {"mode": "SIMPLE", "credentialName": "shop-example-com-tls"},
                },
                {
                    "port": {"number": 80, "name": "http", "protocol": "HTTP"},
                    "hosts": ["shop.example.com"],
                    "tls": {"httpsRedirect": True},
                },
            ],
        },
    ),
    "PeerAuthentication": istio_object(
        "security.istio.io/v1",
        "PeerAuthentication",
        "default",
        "istio-system",
        {
            "selector": {"matchLabels": {"app": "reviews"}},
            "mtls": {"mode": "STRICT"},
            "portLevelMtls": {"9080": {"mode": "STRICT"}},
        },
    ),
    "AuthorizationPolicy": istio_object(
        "security.istio.io/v1",
        "AuthorizationPolicy",
        "reviews",
        "shop",
        {
            "action": "ALLOW",
            "selector": {"matchLabels": {"app": "reviews"}},
            "rules": [
                {
                    "from": [{"source": {"principals": ["cluster.local/ns/shop/sa/productpage"]}}],
                    "to": [{"operation": {"methods": ["GET"], "ports": ["9080"]}}],
                }
            ],
        },
    ),
    "RequestAuthentication": istio_object(
        "security.istio.io/v1",
        "RequestAuthentication",
        "reviews",
        "shop",
        {
            "selector": {"matchLabels": {"app": "reviews"}},
            "jwtRules": [
                {
                    "issuer": "https://auth.example.com",
                    "jwksUri": "https://auth.example.com/jwks.json",
                    "forwardOriginalToken": True,
                    "timeout": "5s",
                }
            ],
        },
    ),
    "Sidecar": istio_object(
        "networking.istio.io/v1",
        "Sidecar",
        "default",
        "shop",
        {
            "egress": [{"hosts": ["./*", "istio-system/*"]}],
            "outboundTrafficPolicy": {"mode": "REGISTRY_ONLY"},
        },
    ),
    "Telemetry": istio_object(
        "telemetry.istio.io/v1",
        "Telemetry",
        "mesh-default",
        "istio-system",
        {
            "accessLogging": [{"providers": [{"name": "envoy"}]}],
            "tracing": [{"providers": [{"name": "jaeger"}], "randomSamplingPercentage": 100.0}],
            "metrics": [
                {
                    "providers": [{"name": "prometheus"}],
                    "overrides": [
                        {
                            "match": {"metric": "REQUEST_COUNT", "mode": "CLIENT_AND_SERVER"},
                            "tagOverrides": {
                                "request_host": {"operation": "UPSERT", "value": "request.host"},
                                "destination_port": {"operation": "REMOVE"},
                            },
                        }
                    ],
                }
            ],
        },
    ),
}


def object_label(obj: dict[str, Any]) -> str:
    meta = obj["metadata"]
    return f"{obj['apiVersion']} {obj['kind']} {meta['namespace']}/{meta['name']}"


def with_value(obj: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A copy of obj with `value` at a dotted path (`spec.http.0.timeout`); `...=DELETE`."""
    result = copy.deepcopy(obj)
    *parents, last = path.split(".")
    node: Any = result
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node.setdefault(part, {})
    if isinstance(node, list):
        node[int(last)] = value
    elif value is DELETE:
        del node[last]
    else:
        node[last] = value
    return result


DELETE = object()

# kind -> [(case, mutations, expected message fragment (after the object label))]
INVALID: dict[str, list[tuple[str, dict[str, Any], str]]] = {
    "VirtualService": [
        (
            "unknown-field",
            {"spec.http.0.route.0.wieght": 80},
            'spec.http[0].route[0].wieght: unknown field (did you mean "weight"?)',
        ),
        (
            "wrong-type",
            {"spec.http.0.retries.attempts": "3"},
            "spec.http[0].retries.attempts: \"3\" is not of type 'integer'",
        ),
        (
            "enum",
            {"spec.http.0.redirect": {"derivePort": "FROM_NOWHERE"}},
            'spec.http[0].redirect.derivePort: "FROM_NOWHERE" is not one of',
        ),
        (
            "cel-duration-too-short",
            {"spec.http.0.timeout": "0.5ms"},
            "spec.http[0].timeout: must be a valid duration greater than 1ms",
        ),
        (
            "cel-duration-unparsable",
            {"spec.http.0.retries.perTryTimeout": "2 seconds"},
            "spec.http[0].retries.perTryTimeout: must be a valid duration greater than 1ms",
        ),
        (
            "cel-duration-go-has-no-days",
            {"spec.http.0.fault.delay.fixedDelay": "1d"},
            "spec.http[0].fault.delay.fixedDelay: must be a valid duration greater than 1ms",
        ),
        (
            "oneof-uri",
            {"spec.http.0.match.0.uri.exact": "/reviews"},
            "spec.http[0].match[0].uri: at most one of exact, prefix, regex may be set",
        ),
    ],
    "DestinationRule": [
        (
            "unknown-field",
            {"spec.trafficPolicy.conectionPool": {}},
            'spec.trafficPolicy.conectionPool: unknown field (did you mean "connectionPool"?)',
        ),
        (
            "wrong-type",
            {"spec.trafficPolicy.connectionPool.tcp.maxConnections": "100"},
            'spec.trafficPolicy.connectionPool.tcp.maxConnections: "100" is not of type',
        ),
        (
            "enum",
            {"spec.trafficPolicy.tls.mode": "STRICT"},
            'spec.trafficPolicy.tls.mode: "STRICT" is not one of',
        ),
        (
            "cel-label-key-wildcard",
            {"spec.workloadSelector": {"matchLabels": {"app*": "reviews"}}},
            "spec.workloadSelector.matchLabels: wildcard not allowed in label key match",
        ),
        (
            "cel-label-value-wildcard",
            {"spec.workloadSelector": {"matchLabels": {"app": "rev*"}}},
            "spec.workloadSelector.matchLabels[app]: wildcard not allowed in label value match",
        ),
        (
            "cel-idle-timeout",
            {"spec.trafficPolicy.connectionPool.http.idleTimeout": "0s"},
            "spec.trafficPolicy.connectionPool.http.idleTimeout: must be a valid duration",
        ),
    ],
    "Gateway": [
        (
            "unknown-field",
            {"spec.servers.0.hostnames": ["shop.example.com"]},
            "spec.servers[0].hostnames: unknown field",
        ),
        (
            "wrong-type",
            {"spec.servers.0.port.number": "443"},
            "spec.servers[0].port.number: \"443\" is not of type 'integer'",
        ),
        (
            "enum",
            {"spec.servers.0.tls.mode": "STRICT"},
            'spec.servers[0].tls.mode: "STRICT" is not one of',
        ),
        (
            "cel-credential-name-and-names",
            {"spec.servers.0.tls.credentialNames": ["a", "b"]},
            "spec.servers[0].tls: only one of credentialName or credentialNames can be set",
        ),
        (
            "cel-credential-names-and-certificates",
            {
                "spec.servers.0.tls.credentialName": DELETE,
                "spec.servers.0.tls.credentialNames": ["a"],
                "spec.servers.0.tls.tlsCertificates": [
                    {"serverCertificate": "/etc/c.pem", "privateKey": "/etc/k.pem"}
                ],
            },
            "spec.servers[0].tls: only one of credentialNames or tlsCertificates can be set",
        ),
        (
            "missing-required",
            {"spec.servers.0.port": DELETE},
            'spec.servers[0]: required field "port" is missing',
        ),
    ],
    "PeerAuthentication": [
        ("unknown-field", {"spec.mtls.mod": "STRICT"}, "spec.mtls.mod: unknown field"),
        ("wrong-type", {"spec.mtls": "STRICT"}, "spec.mtls: \"STRICT\" is not of type 'object'"),
        ("enum", {"spec.mtls.mode": "ENABLED"}, 'spec.mtls.mode: "ENABLED" is not one of'),
        (
            "cel-port-level-needs-selector",
            {"spec.selector": DELETE},
            "spec: portLevelMtls requires selector",
        ),
        (
            "cel-port-range",
            {"spec.portLevelMtls": {"0": {"mode": "DISABLE"}}},
            "spec.portLevelMtls: port must be between 1-65535",
        ),
        (
            "cel-port-not-a-number",
            {"spec.portLevelMtls": {"http": {"mode": "DISABLE"}}},
            "spec.portLevelMtls: port must be between 1-65535 (rule evaluation error",
        ),
    ],
    "AuthorizationPolicy": [
        (
            "unknown-field",
            {"spec.rules.0.from.0.source.principal": ["x"]},
            'spec.rules[0].from[0].source.principal: unknown field (did you mean "principals"?)',
        ),
        (
            "wrong-type",
            {"spec.rules.0.to.0.operation.ports": [9080]},
            "spec.rules[0].to[0].operation.ports[0]: 9080 is not of type 'string'",
        ),
        ("enum", {"spec.action": "PERMIT"}, 'spec.action: "PERMIT" is not one of'),
        (
            "cel-service-accounts-with-namespaces",
            {
                "spec.rules.0.from.0.source": {
                    "serviceAccounts": ["shop/sa"],
                    "namespaces": ["shop"],
                }
            },
            "spec.rules[0].from[0].source: "
            "Cannot set serviceAccounts with namespaces or principals",
        ),
        (
            "cel-selector-and-target-ref",
            {
                "spec.targetRef": {
                    "kind": "Gateway",
                    "group": "gateway.networking.k8s.io",
                    "name": "w",
                }
            },
            "spec: only one of targetRefs or selector can be set",
        ),
        (
            "cel-cross-namespace-target",
            {
                "spec.selector": DELETE,
                "spec.targetRefs": [{"kind": "Service", "name": "reviews", "namespace": "other"}],
            },
            "spec.targetRefs[0].namespace: cross namespace referencing is not currently supported",
        ),
    ],
    "RequestAuthentication": [
        (
            "unknown-field",
            {"spec.jwtRules.0.jwksURL": "https://x"},
            "spec.jwtRules[0].jwksURL: unknown field",
        ),
        (
            "wrong-type",
            {"spec.jwtRules.0.forwardOriginalToken": "yes"},
            "spec.jwtRules[0].forwardOriginalToken: \"yes\" is not of type 'boolean'",
        ),
        # RequestAuthentication's spec has no enum in Istio 1.30: check a pattern instead.
        (
            "pattern",
            {
                "spec.selector": DELETE,
                "spec.targetRef": {"kind": "Gate way", "group": "", "name": "waypoint"},
            },
            'spec.targetRef.kind: "Gate way" does not match',
        ),
        (
            "cel-jwks-uri-scheme",
            {"spec.jwtRules.0.jwksUri": "ftp://auth.example.com/jwks.json"},
            "spec.jwtRules[0].jwksUri: url must have scheme http:// or https://",
        ),
        (
            "cel-jwks-and-jwks-uri",
            {"spec.jwtRules.0.jwks": '{"keys": []}'},
            "spec.jwtRules[0]: only one of jwks or jwksUri can be set",
        ),
        (
            "cel-timeout",
            {"spec.jwtRules.0.timeout": "500us"},
            "spec.jwtRules[0].timeout: must be a valid duration greater than 1ms",
        ),
    ],
    "Sidecar": [
        ("unknown-field", {"spec.egres": []}, 'spec.egres: unknown field (did you mean "egress"?)'),
        (
            "wrong-type",
            {"spec.egress.0.hosts": "./*"},
            "spec.egress[0].hosts: \"./*\" is not of type 'array'",
        ),
        (
            "enum",
            {"spec.outboundTrafficPolicy.mode": "DENY"},
            'spec.outboundTrafficPolicy.mode: "DENY" is not one of ["REGISTRY_ONLY", "ALLOW_ANY"]',
        ),
        (
            "cel-selector-wildcard",
            {"spec.workloadSelector": {"labels": {"app": "rev*"}}},
            "spec.workloadSelector.labels[app]: wildcard is not supported in selector",
        ),
        (
            "cel-ingress-tls",
            {
                "spec.ingress": [
                    {
                        "port": {"number": 9443, "protocol": "HTTPS", "name": "https"},
                        "defaultEndpoint": "127.0.0.1:9080",
                        "tls": {"mode": "SIMPLE", "credentialName": "a", "credentialNames": ["b"]},
                    }
                ]
            },
            "spec.ingress[0].tls: only one of credentialName or credentialNames can be set",
        ),
        (
            "cel-inbound-idle-timeout",
            {"spec.inboundConnectionPool": {"http": {"idleTimeout": "0.1ms"}}},
            "spec.inboundConnectionPool.http.idleTimeout: must be a valid duration",
        ),
    ],
    "Telemetry": [
        (
            "unknown-field",
            {"spec.tracing.0.samplingPercentage": 10},
            "spec.tracing[0].samplingPercentage: unknown field",
        ),
        (
            "wrong-type",
            {"spec.tracing.0.randomSamplingPercentage": "100"},
            "spec.tracing[0].randomSamplingPercentage: \"100\" is not of type 'number'",
        ),
        (
            "enum",
            {"spec.metrics.0.overrides.0.match.metric": "REQUESTS"},
            'spec.metrics[0].overrides[0].match.metric: "REQUESTS" is not one of',
        ),
        (
            "cel-upsert-needs-value",
            {"spec.metrics.0.overrides.0.tagOverrides.request_host": {"operation": "UPSERT"}},
            "spec.metrics[0].overrides[0].tagOverrides[request_host]: "
            "value must be set when operation is UPSERT",
        ),
        (
            "cel-remove-has-no-value",
            {
                "spec.metrics.0.overrides.0.tagOverrides.destination_port": {
                    "operation": "REMOVE",
                    "value": "x",
                }
            },
            "spec.metrics[0].overrides[0].tagOverrides[destination_port]: "
            "value must not be set when operation is REMOVE",
        ),
        (
            "cel-selector-and-target-refs",
            {
                "spec.selector": {"matchLabels": {"app": "reviews"}},
                "spec.targetRefs": [{"kind": "Service", "name": "reviews"}],
            },
            "spec: only one of targetRefs or selector can be set",
        ),
    ],
}
