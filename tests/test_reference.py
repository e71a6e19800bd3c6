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
from tests.reference_cases import INVALID, VALID, istio_object, object_label, with_value

if not os.environ.get("ISTIO_REFERENCE"):
    pytest.skip(
        "ISTIO_REFERENCE is not set: point it at the Istio reference data "
        "(shared/reference/istio-<version>) to validate against the CRDs and charts",
        allow_module_level=True,
    )


@pytest.fixture(scope="module")
def ref() -> Reference:
    return load_reference()


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
        obj = with_value(obj, path, value)
    errors = ref.validate(obj)
    wanted = f"{object_label(obj)}: {expected}"
    assert any(error.startswith(wanted) for error in errors), errors


def test_default_deny_and_mesh_wide_strict_mtls(ref: Reference) -> None:
    deny = istio_object("security.istio.io/v1", "AuthorizationPolicy", "default-deny", "shop", {})
    strict = istio_object(
        "security.istio.io/v1",
        "PeerAuthentication",
        "default",
        "istio-system",
        {"mtls": {"mode": "STRICT"}},
    )
    assert ref.validate(deny) == []
    assert ref.validate(strict) == []


def test_error_names_object_and_path(ref: Reference) -> None:
    obj = with_value(VALID["VirtualService"], "spec.http.0.route.0.weight", "80")
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
        obj = with_value(obj, path, value)
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
    nullable = with_value(
        VALID["VirtualService"], "spec.http.0.retries.retryRemoteLocalities", None
    )
    assert ref.validate(nullable) == []
    not_nullable = with_value(VALID["VirtualService"], "spec.http.0.timeout", None)
    [error] = ref.validate(not_nullable)
    assert "spec.http[0].timeout: null is not allowed" in error


def test_integral_float_is_an_integer_and_int32_range(ref: Reference) -> None:
    assert ref.validate(with_value(VALID["Gateway"], "spec.servers.0.port.number", 443.0)) == []
    [error] = ref.validate(
        with_value(VALID["VirtualService"], "spec.http.0.retries.attempts", 2**31)
    )
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
