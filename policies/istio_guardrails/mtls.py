"""Mutual TLS: PeerAuthentication is STRICT, DestinationRules never turn TLS off."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from . import helm
from .hosts import in_mesh
from .pack import ConfigSchema, resource_policy, stack_policy
from .values import (
    NETWORKING,
    SECURITY,
    Findings,
    Resource,
    kind_is,
    mapping,
    name_of,
    namespace_of,
    sequence,
    text,
)

INHERITING = (None, "UNSET")
"""A mode that inherits the parent's: the namespace's, then the mesh-wide policy's, which
`mesh-wide-strict-mtls` requires to be STRICT (as Istio's own docs and Kyverno's policy
read it)."""


def peer_authentication_violations(resource: Resource, _config: Mapping[str, Any]) -> Iterator[str]:
    """Never PERMISSIVE or DISABLE: STRICT, or UNSET/absent (inheriting the mesh's STRICT),
    at the top level and on every port."""
    spec = mapping(resource.props.get("spec"), "spec")
    mode = text(mapping(spec.get("mtls"), "spec.mtls").get("mode"), "spec.mtls.mode")
    if mode not in (*INHERITING, "STRICT"):
        yield f"spec.mtls.mode is {mode}; set it to STRICT (or leave it unset to inherit)"
    ports = mapping(spec.get("portLevelMtls"), "spec.portLevelMtls")
    for port in ports:
        where = f"spec.portLevelMtls.{port}"
        port_mode = text(mapping(ports[port], where).get("mode"), f"{where}.mode")
        if port_mode not in (*INHERITING, "STRICT"):
            yield f"{where}.mode is {port_mode}; set it to STRICT (or remove the port entry)"


def _tls_settings(spec: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """Every `tls` block of a DestinationRule, with the path a user would look for."""
    policies: list[tuple[str, Any]] = [("spec.trafficPolicy", spec.get("trafficPolicy"))]
    for index, subset in enumerate(sequence(spec.get("subsets"), "spec.subsets")):
        where = f"spec.subsets[{index}]"
        policies.append((f"{where}.trafficPolicy", mapping(subset, where).get("trafficPolicy")))
    for where, policy_value in policies:
        policy = mapping(policy_value, where)
        yield f"{where}.tls", mapping(policy.get("tls"), f"{where}.tls")
        settings = sequence(policy.get("portLevelSettings"), f"{where}.portLevelSettings")
        for index, setting in enumerate(settings):
            at = f"{where}.portLevelSettings[{index}]"
            yield f"{at}.tls", mapping(mapping(setting, at).get("tls"), f"{at}.tls")


def destination_rule_tls_violations(
    resource: Resource, _config: Mapping[str, Any]
) -> Iterator[str]:
    """No DISABLE anywhere; toward in-mesh hosts only ISTIO_MUTUAL (or unset)."""
    spec = mapping(resource.props.get("spec"), "spec")
    host = text(spec.get("host"), "spec.host") or ""
    mesh_host = in_mesh(host, namespace_of(resource.props))
    for where, tls in _tls_settings(spec):
        mode = text(tls.get("mode"), f"{where}.mode")
        if mode == "DISABLE":
            yield f"{where}.mode is DISABLE; remove it or use ISTIO_MUTUAL"
        elif mesh_host and mode not in (None, "ISTIO_MUTUAL"):
            yield (
                f"{where}.mode is {mode} toward in-mesh host {host}; use ISTIO_MUTUAL or leave "
                "tls unset (the sidecars then use Istio mTLS and workload identities)"
            )


ROOT_NAMESPACE: ConfigSchema = {
    "rootNamespace": {
        "type": "string",
        "default": "istio-system",
        "description": "Istio's root namespace (meshConfig.rootNamespace).",
    }
}


def mesh_wide_strict_violations(
    resources: Sequence[Resource], config: Mapping[str, Any]
) -> Iterator[tuple[str | None, str]]:
    """A stack that installs istiod also holds PeerAuthentication `default` STRICT in root."""
    root = config["rootNamespace"]
    findings = Findings()
    control_plane = found = False
    for resource in resources:
        with findings.reading(resource):
            if helm.istio_chart(resource) == "istiod" or _istiod_deployment(resource, root):
                control_plane = True
            elif (
                kind_is(resource, SECURITY, "PeerAuthentication")
                and name_of(resource.props) == "default"
                and namespace_of(resource.props) == root
            ):
                spec = mapping(resource.props.get("spec"), "spec")
                mode = text(mapping(spec.get("mtls"), "spec.mtls").get("mode"), "spec.mtls.mode")
                # With a selector it is a workload policy, not the mesh-wide one.
                if mode == "STRICT" and not mapping(spec.get("selector"), "spec.selector"):
                    found = True
    yield from findings.items
    if control_plane and not found:
        yield (
            None,
            (
                f"the stack installs istiod but no PeerAuthentication `default` in {root} with "
                "spec.mtls.mode STRICT and no selector; add it to make the whole mesh STRICT"
            ),
        )


def _istiod_deployment(resource: Resource, root: str) -> bool:
    """istiod as rendered Helm output (`helm template istiod ...`) in plain manifests."""
    return (
        kind_is(resource, "apps", "Deployment")
        and namespace_of(resource.props) == root
        and name_of(resource.props).startswith("istiod")
    )


POLICIES = [
    resource_policy(
        "peer-authentication-strict",
        "PeerAuthentication must never weaken mutual TLS: spec.mtls.mode and every "
        "spec.portLevelMtls entry STRICT, or UNSET/absent to inherit the mesh-wide STRICT "
        "policy (never PERMISSIVE or DISABLE).",
        peer_authentication_violations,
        kinds={(SECURITY, "PeerAuthentication")},
    ),
    resource_policy(
        "destination-rule-tls",
        "DestinationRule TLS must never be DISABLE (top level, subsets, port-level settings), "
        "and toward in-mesh hosts (*.svc.cluster.local, short names, name.namespace) it must "
        "be ISTIO_MUTUAL or unset: remove the tls block or set mode ISTIO_MUTUAL.",
        destination_rule_tls_violations,
        kinds={(NETWORKING, "DestinationRule")},
    ),
    stack_policy(
        "mesh-wide-strict-mtls",
        "A stack that installs istiod must contain the mesh-wide PeerAuthentication: name "
        "`default`, in the root namespace (istio-system), no selector, spec.mtls.mode STRICT.",
        mesh_wide_strict_violations,
        config=ROOT_NAMESPACE,
    ),
]
