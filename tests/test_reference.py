"""mesh.reference: Istio objects against crd-all.gen.yaml, Helm values against the charts.

Reads Istio's reference data through ISTIO_REFERENCE (CI always sets it); no network.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import pytest

from mesh.reference import Reference, ReferenceUnavailable, load_reference

if not os.environ.get("ISTIO_REFERENCE"):
    pytest.skip(
        "ISTIO_REFERENCE is not set: point it at the Istio reference data "
        "(shared/reference/istio-<version>) to validate against the CRDs and charts",
        allow_module_level=True,
    )


@pytest.fixture(scope="module")
def ref() -> Reference:
    return load_reference()


def _obj(api_version: str, kind: str, name: str, namespace: str, spec: Any) -> dict[str, Any]:
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
    "VirtualService": _obj(
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
    "DestinationRule": _obj(
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
    "Gateway": _obj(
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
    "PeerAuthentication": _obj(
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
    "AuthorizationPolicy": _obj(
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
    "RequestAuthentication": _obj(
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
    "Sidecar": _obj(
        "networking.istio.io/v1",
        "Sidecar",
        "default",
        "shop",
        {
            "egress": [{"hosts": ["./*", "istio-system/*"]}],
            "outboundTrafficPolicy": {"mode": "REGISTRY_ONLY"},
        },
    ),
    "Telemetry": _obj(
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


def _label(obj: dict[str, Any]) -> str:
    meta = obj["metadata"]
    return f"{obj['apiVersion']} {obj['kind']} {meta['namespace']}/{meta['name']}"


def _set(obj: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
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


def test_every_kind_has_cases() -> None:
    assert set(INVALID) == set(VALID)
    for kind, cases in INVALID.items():
        names = [name for name, _, _ in cases]
        for required in ("unknown-field", "wrong-type"):
            assert required in names, (kind, required)
        assert "enum" in names or kind == "RequestAuthentication", kind
        assert sum(name.startswith("cel-") for name in names) >= 2, kind


@pytest.mark.parametrize("kind", sorted(VALID))
def test_valid_object_passes(ref: Reference, kind: str) -> None:
    assert ref.validate(VALID[kind]) == []


@pytest.mark.parametrize(
    ("kind", "mutations", "expected"),
    [
        pytest.param(kind, mutations, expected, id=f"{kind}-{name}")
        for kind, cases in INVALID.items()
        for name, mutations, expected in cases
    ],
)
def test_invalid_object_is_caught(
    ref: Reference, kind: str, mutations: dict[str, Any], expected: str
) -> None:
    obj = VALID[kind]
    for path, value in mutations.items():
        obj = _set(obj, path, value)
    errors = ref.validate(obj)
    wanted = f"{_label(obj)}: {expected}"
    assert any(error.startswith(wanted) for error in errors), errors


def test_default_deny_and_mesh_wide_strict_mtls(ref: Reference) -> None:
    deny = _obj("security.istio.io/v1", "AuthorizationPolicy", "default-deny", "shop", {})
    strict = _obj(
        "security.istio.io/v1",
        "PeerAuthentication",
        "default",
        "istio-system",
        {"mtls": {"mode": "STRICT"}},
    )
    assert ref.validate(deny) == []
    assert ref.validate(strict) == []


def test_error_names_object_and_path(ref: Reference) -> None:
    obj = _set(VALID["VirtualService"], "spec.http.0.route.0.weight", "80")
    assert ref.validate(obj) == [
        "networking.istio.io/v1 VirtualService shop/reviews: "
        "spec.http[0].route[0].weight: \"80\" is not of type 'integer' (got string)"
    ]


def test_several_errors_are_all_reported(ref: Reference) -> None:
    obj = VALID["PeerAuthentication"]
    for path, value in {
        "spec.mtls.mode": "ON",
        "spec.portLevelMtls": {"0": {"mode": "STRICT"}},
        "spec.selector.matchLabels": {"app": "*"},
    }.items():
        obj = _set(obj, path, value)
    errors = ref.validate(obj)
    assert len(errors) == 3, errors


def test_older_served_versions_and_unserved_ones(ref: Reference) -> None:
    old = {**VALID["VirtualService"], "apiVersion": "networking.istio.io/v1beta1"}
    assert ref.validate(old) == []
    alpha = {**VALID["VirtualService"], "apiVersion": "networking.istio.io/v1alpha3"}
    assert ref.validate(alpha) == []
    unknown = {**VALID["VirtualService"], "apiVersion": "networking.istio.io/v2"}
    [error] = ref.validate(unknown)
    assert "version v2 is not served" in error


def test_unknown_kind_and_non_istio_object(ref: Reference) -> None:
    [error] = ref.validate({**VALID["Gateway"], "kind": "Gateways"})
    assert (
        'no CRD for kind Gateways in group networking.istio.io (did you mean "Gateway"?)' in error
    )
    ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}}
    [error] = ref.validate(ns)
    assert "not an Istio kind" in error
    assert not Reference.is_istio(ns)
    assert Reference.is_istio(VALID["Gateway"])


def test_metadata_is_checked(ref: Reference) -> None:
    obj = copy.deepcopy(VALID["Sidecar"])
    obj["metadata"] = {
        "namespace": "shop",
        "labels": {"version": 1, "bad key!": "x"},
        "annotation": {},
    }
    errors = ref.validate(obj)
    assert any("metadata.name: must be a non-empty string" in e for e in errors), errors
    assert any("metadata.labels[version]: must be a string" in e for e in errors), errors
    assert any('"bad key!" is not a valid label key' in e for e in errors), errors
    assert any(
        'metadata.annotation: unknown field (did you mean "annotations"?)' in e for e in errors
    )
    obj["metadata"] = {"name": "Default_Sidecar", "namespace": "shop"}
    [error] = ref.validate(obj)
    assert "metadata.name" in error and "DNS-1123" in error


def test_top_level_unknown_field_and_status(ref: Reference) -> None:
    obj = {**VALID["Sidecar"], "specs": {}, "status": {}}
    errors = ref.validate(obj)
    assert any("specs: unknown field" in e for e in errors), errors
    assert any("status: written by Istio" in e for e in errors), errors


def test_null_only_where_nullable(ref: Reference) -> None:
    nullable = _set(VALID["VirtualService"], "spec.http.0.retries.retryRemoteLocalities", None)
    assert ref.validate(nullable) == []
    not_nullable = _set(VALID["VirtualService"], "spec.http.0.timeout", None)
    [error] = ref.validate(not_nullable)
    assert "spec.http[0].timeout: null is not allowed" in error


def test_integral_float_is_an_integer_and_int32_range(ref: Reference) -> None:
    assert ref.validate(_set(VALID["Gateway"], "spec.servers.0.port.number", 443.0)) == []
    [error] = ref.validate(_set(VALID["VirtualService"], "spec.http.0.retries.attempts", 2**31))
    assert "out of range for int32" in error


def test_cel_rules_are_mostly_evaluated(ref: Reference) -> None:
    total = len(ref.cel_rules)
    skipped = ref.skipped_cel_rules
    evaluable = total - len(skipped & ref.cel_rules)
    print(
        f"\nCEL: {ref.cel_rule_locations} rule locations, {total} distinct (kind, rule) pairs, "
        f"{evaluable} evaluable, {len(skipped)} skipped"
    )
    for (kind, rule), why in sorted(ref.skipped_cel_reasons.items()):
        print(f"  skipped {kind}: {rule!r}: {why}")
    assert total > 50
    assert evaluable > total / 2
    # The valid objects above exercise real rules end to end.
    for obj in VALID.values():
        ref.validate(obj)
    assert len(ref.evaluated_cel_rules) >= 10


_UNSUPPORTED_CRD = """\
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.istio.io
spec:
  group: example.istio.io
  names: {kind: Widget, plural: widgets}
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            x-kubernetes-validations:
            - rule: format.dns1123Label().validate(self.name).hasValue() == false
              message: name must be a DNS label
            - rule: self.name == oldSelf.name
              message: name is immutable
            - rule: self.name.lowerAscii() == self.name
              message: name must be lowercase
            properties:
              name: {type: string}
"""


def test_rules_cel_python_cannot_run_are_recorded_not_failed(tmp_path: Path) -> None:
    (tmp_path / "crd-all.gen.yaml").write_text(_UNSUPPORTED_CRD)
    widgets = load_reference(tmp_path)
    obj = {
        "apiVersion": "example.istio.io/v1",
        "kind": "Widget",
        "metadata": {"name": "w", "namespace": "shop"},
        "spec": {"name": "Bad_Name"},
    }
    assert widgets.validate(obj) == [
        "example.istio.io/v1 Widget shop/w: spec: name must be lowercase"
    ]
    reasons = widgets.skipped_cel_reasons
    assert {rule for _, rule in widgets.skipped_cel_rules} == {
        "format.dns1123Label().validate(self.name).hasValue() == false",
        "self.name == oldSelf.name",
    }
    assert any("transition rule" in why for why in reasons.values())
    assert any("dns1123Label" in why for why in reasons.values())


def test_load_reference_is_cached_and_needs_the_variable(
    ref: Reference, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert load_reference(os.environ["ISTIO_REFERENCE"]) is ref
    monkeypatch.delenv("ISTIO_REFERENCE")
    with pytest.raises(ReferenceUnavailable, match="ISTIO_REFERENCE"):
        load_reference()
    with pytest.raises(ReferenceUnavailable, match="ISTIO_REFERENCE"):
        load_reference(tmp_path / "missing")


# --------------------------------------------------------------------------------------
# Helm values
# --------------------------------------------------------------------------------------

ISTIOD_VALUES: dict[str, Any] = {
    "revision": "1-30-5",
    "autoscaleEnabled": True,
    "autoscaleMin": 2,
    "autoscaleMax": 5,
    "resources": {"requests": {"cpu": "500m", "memory": "2Gi"}, "limits": {"memory": "4Gi"}},
    "podAnnotations": {"cluster-autoscaler.kubernetes.io/safe-to-evict": "false"},
    "env": {"PILOT_ENABLE_STATUS": "true"},
    "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "kubernetes.io/hostname"}],
    "pdb": {"minAvailable": 1},
    "meshConfig": {
        "accessLogFile": "/dev/stdout",
        "outboundTrafficPolicy": {"mode": "REGISTRY_ONLY"},
        "defaultConfig": {"tracing": {"sampling": 100.0}},
        "extensionProviders": [{"name": "jaeger", "opentelemetry": {"port": 4317}}],
        "discoverySelectors": [{"matchLabels": {"istio-discovery": "enabled"}}],
    },
    "global": {
        "istioNamespace": "istio-system",
        "hub": "docker.io/istio",
        "tag": "1.30.5",
        "proxy": {"resources": {"requests": {"cpu": "100m"}}},
        "defaultPodDisruptionBudget": {"enabled": True},
    },
    "profile": "default",
}

GATEWAY_VALUES: dict[str, Any] = {
    "name": "istio-ingress",
    "revision": "stable",
    "service": {
        "type": "LoadBalancer",
        "ports": [{"name": "http2", "port": 80, "targetPort": 80, "protocol": "TCP"}],
    },
    "autoscaling": {"enabled": True, "minReplicas": 1, "maxReplicas": 3},
    "labels": {"istio": "ingress"},
    "podAnnotations": {"proxy.istio.io/config": "{}"},
    "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}},
    "podDisruptionBudget": {"minAvailable": 1},
}

BASE_VALUES: dict[str, Any] = {
    "defaultRevision": "1-30-5",
    "base": {"enableCRDTemplates": True},
    "global": {"istioNamespace": "istio-system"},
}


@pytest.mark.parametrize(
    ("chart", "values"),
    [
        ("istiod", ISTIOD_VALUES),
        ("gateway", GATEWAY_VALUES),
        ("base", BASE_VALUES),
        ("cni", {"profile": "ambient", "ambient": {"enabled": True}, "resources": {}}),
        ("ztunnel", {"revision": "1-30-5", "podAnnotations": {"a": "b"}, "logLevel": "info"}),
    ],
)
def test_valid_values_pass(ref: Reference, chart: str, values: dict[str, Any]) -> None:
    assert ref.missing_value_keys(chart, values) == []


def test_istiod_typo_is_reported(ref: Reference) -> None:
    values = {**ISTIOD_VALUES, "autoscaleMinn": 2}
    assert ref.missing_value_keys("istiod", values) == [
        'istiod: autoscaleMinn is not a value of the chart (did you mean "autoscaleMin"?)'
    ]


def test_istiod_values_are_flat_not_under_pilot(ref: Reference) -> None:
    # istioctl's `values.pilot.*` layout is silently ignored by the istiod Helm chart.
    problems = ref.missing_value_keys("istiod", {"pilot": {"autoscaleMinn": 2}})
    assert problems == [
        "istiod: pilot.autoscaleMinn is not a value of the chart (the chart has no key pilot)"
    ]


def test_nested_typo_and_shape_mismatch(ref: Reference) -> None:
    values = {"global": {"proxy": {"resorces": {}}}, "hub": {"name": "x"}, "pdb": 2}
    assert ref.missing_value_keys("istiod", values) == [
        'istiod: global.proxy.resorces is not a value of the chart (did you mean "resources"?)',
        "istiod: hub.name is not a value of the chart (hub is a string there, not a map)",
        "istiod: pdb is a map in the chart, got integer 2",
    ]


def test_internal_defaults_must_not_be_set(ref: Reference) -> None:
    [problem] = ref.missing_value_keys("base", {"_internal_defaults_do_not_set": {"a": 1}})
    assert "set its keys at the top level" in problem


def test_gateway_typo_is_reported(ref: Reference) -> None:
    problems = ref.missing_value_keys("gateway", {**GATEWAY_VALUES, "replicaCont": 2})
    assert (
        'gateway: replicaCont is not a value of the chart (did you mean "replicaCount"?)'
        in problems
    )
    assert any("'replicaCont' was unexpected" in p for p in problems), problems


def test_gateway_schema_violation_is_reported(ref: Reference) -> None:
    values = {**GATEWAY_VALUES, "kind": "StatefulSet", "autoscaling": {"minReplicas": "1"}}
    problems = ref.missing_value_keys("gateway", values)
    assert problems == [
        "gateway: autoscaling.minReplicas: '1' is not of type 'integer' (values.schema.json)",
        "gateway: kind: 'StatefulSet' is not one of ['Deployment', 'DaemonSet'] "
        "(values.schema.json)",
    ]


def test_gateway_schema_only_keys_are_accepted(ref: Reference) -> None:
    # networkGatewayPorts is a map in values.schema.json; its values.yaml lists 4 examples.
    values = {"networkGatewayPorts": {"http2": {"port": 80}}, "unprivilegedPort": "auto"}
    assert ref.missing_value_keys("gateway", values) == []


def test_base_typo_is_reported(ref: Reference) -> None:
    assert ref.missing_value_keys("base", {**BASE_VALUES, "defaultRevison": "x"}) == [
        'base: defaultRevison is not a value of the chart (did you mean "defaultRevision"?)'
    ]


def test_unknown_chart(ref: Reference) -> None:
    with pytest.raises(ValueError, match="unknown chart"):
        ref.missing_value_keys("istio-ingress", {})


@pytest.mark.parametrize(
    ("rule", "value"),
    [
        ('self.substring(7, 8) == "/"', "unix:///run/x.sock"),
        ('self.charAt(1) == "b" && self.indexOf("c") == 2', "abc"),
        ('self.split(",").size() == 3 && self.lowerAscii() == "a,b,c"', "A,B,C"),
        ('url(self).getScheme() == "https" && url(self).getHostname() == "x.io"', "https://x.io/j"),
        ('isURL(self) == false && isURL("http://" + self)', "ghcr.io/istio/x:1"),
        ('ip(self).family() == 4 && cidr("10.0.0.0/8").containsIP(self)', "10.1.2.3"),
        ('duration(self) == duration("90m") && duration("1.5s") > duration("1s")', "1h30m"),
    ],
)
def test_kubernetes_cel_extensions(rule: str, value: Any) -> None:
    from mesh.reference import _CelEngine

    engine = _CelEngine()
    program, why = engine.compile(rule)
    assert why is None
    assert engine.evaluate(program, engine.to_cel(value, None)) == (True, None, False)
