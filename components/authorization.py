"""Who may call a service: ALLOW rules on top of the namespace's default deny, and JWT.

Every mesh namespace denies all requests by default (`components.security.default_deny`);
a service opens exactly what its `allowFrom` lists (plus its gateway, when exposed) with
one ALLOW `AuthorizationPolicy`. Callers are identified by their mTLS principal,
`<trust domain>/ns/<namespace>/sa/<service account>`, derived in `principal` only.

JWT needs two objects: a `RequestAuthentication` validates tokens that are present, but
lets a request without a token through (with no request principal); a DENY policy for
requests without a principal of the issuer closes that gap.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi

from components import naming
from components.ambient import SIDECARS, Placement
from components.k8s import Manifest, child_options, register_manifest
from components.naming import SECURITY_API
from components.service_config import Jwt, ServiceConfig

TRUST_DOMAIN = "cluster.local"
"""Istio's default SPIFFE trust domain."""

WORKLOAD_LABEL = "app"
"""Pod label naming the workload behind a service: `app: <service name>`."""


def principal(namespace: str, service_account: str, trust_domain: str = TRUST_DOMAIN) -> str:
    """The mTLS identity of pods running as `service_account` in `namespace`."""
    return f"{trust_domain}/ns/{namespace}/sa/{service_account}"


def parse_principal(value: str) -> tuple[str, str] | None:
    """(namespace, service account) of a `principal`; None for anything else."""
    _, ns_marker, rest = value.partition("/ns/")
    namespace, sa_marker, service_account = rest.partition("/sa/")
    if not ns_marker or not sa_marker or not namespace or not service_account:
        return None
    return namespace, service_account


def workload_selector(service: str) -> dict[str, Any]:
    """The `selector` of a policy applying to the pods of `service`."""
    return {"matchLabels": {WORKLOAD_LABEL: service}}


def service_target(service: str) -> list[dict[str, str]]:
    """The `targetRefs` of a policy the namespace's waypoint enforces for `service`."""
    return [{"group": "", "kind": "Service", "name": service}]


def attachment(service: str, waypoint: bool) -> dict[str, Any]:
    """Where a policy of `service` applies: its pods (`selector`: sidecars, or ztunnel in
    ambient namespaces without a waypoint) or its waypoint (`targetRefs`).

    With a waypoint every policy of the service goes there, L4-only ones too: traffic
    then reaches the pods from the waypoint, so the pods' ztunnel sees the waypoint's
    identity, never the caller's, and a caller-based rule there would deny everyone.
    """
    if waypoint:
        return {"targetRefs": service_target(service)}
    return {"selector": workload_selector(service)}


def waypoint_policies(namespace: str, trust_domain: str = TRUST_DOMAIN) -> dict[str, Manifest]:
    """The two policies a namespace's waypoint needs under its default deny, by suffix.

    `allow-waypoint`: ztunnel (which enforces the namespace's `default-deny` on every
    pod) lets the waypoint in; the waypoint has checked the caller already.
    `waypoint-default-deny`: the waypoint itself allows nothing that no service's
    policy allows (an ALLOW policy without rules, attached to it).
    """
    waypoint = principal(*naming.waypoint_service_account(namespace), trust_domain)
    return {
        "allow-waypoint": {
            "apiVersion": SECURITY_API,
            "kind": "AuthorizationPolicy",
            "metadata": {"name": "allow-waypoint", "namespace": namespace},
            "spec": {
                "action": "ALLOW",
                "rules": [{"from": [{"source": {"principals": [waypoint]}}]}],
            },
        },
        "waypoint-default-deny": {
            "apiVersion": SECURITY_API,
            "kind": "AuthorizationPolicy",
            "metadata": {"name": "waypoint-default-deny", "namespace": namespace},
            "spec": {
                "targetRefs": [
                    {
                        "group": naming.GATEWAY_API_GROUP,
                        "kind": "Gateway",
                        "name": naming.WAYPOINT,
                    }
                ]
            },
        },
    }


def selected_workload(selector: Any) -> str | None:
    """The service a `workload_selector` designates; None for other selectors."""
    labels = selector.get("matchLabels") if isinstance(selector, dict) else None
    if isinstance(labels, dict) and set(labels) == {WORKLOAD_LABEL}:
        workload = labels[WORKLOAD_LABEL]
        return workload if isinstance(workload, str) else None
    return None


# --------------------------------------------------------------------------------------
# ALLOW rules
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AllowRule:
    """Requests from these callers, to these operations, are allowed.

    Callers are `principals` or `namespaces` (at least one: a rule without a source
    would allow anyone). Empty operation lists mean any method, path or port.
    """

    principals: Sequence[str] = ()
    """mTLS identities (see `principal`)."""
    namespaces: Sequence[str] = ()
    """Any workload of these namespaces."""
    methods: Sequence[str] = ()
    """HTTP methods."""
    paths: Sequence[str] = ()
    """Paths: exact, `prefix*`, `*suffix`."""
    ports: Sequence[int] = ()
    """Ports of the workload's pods."""

    def as_istio(self) -> dict[str, Any]:
        if not self.principals and not self.namespaces:
            raise ValueError("an ALLOW rule needs principals or namespaces (it would allow anyone)")
        source: dict[str, Any] = {}
        if self.principals:
            source["principals"] = list(self.principals)
        if self.namespaces:
            source["namespaces"] = list(self.namespaces)
        rule: dict[str, Any] = {"from": [{"source": source}]}
        operation: dict[str, Any] = {}
        if self.methods:
            operation["methods"] = list(self.methods)
        if self.paths:
            operation["paths"] = list(self.paths)
        if self.ports:
            operation["ports"] = [str(port) for port in self.ports]
        if operation:
            rule["to"] = [{"operation": operation}]
        return rule


def allow_rules(
    service: ServiceConfig,
    *,
    gateway_principal: str | None = None,
    trust_domain: str = TRUST_DOMAIN,
    l7: bool = True,
) -> list[AllowRule]:
    """The rules of a service: one per `allowFrom` entry, and its gateway when exposed.

    The gateway may only reach the exposed path prefix (defense in depth: its routes
    already stay under it), where something enforces paths (`l7`; not ztunnel alone).
    """
    rules = []
    for caller in service.allow_from:
        account = caller.service_account
        rules.append(
            AllowRule(
                # A service account names one identity; without one, the whole namespace.
                principals=[principal(caller.namespace, account, trust_domain)] if account else [],
                namespaces=[] if account else [caller.namespace],
                methods=caller.methods,
                paths=caller.paths,
                ports=caller.ports,
            )
        )
    if service.expose is not None:
        if gateway_principal is None:
            raise ValueError(f"service {service.name} is exposed: name its gateway's principal")
        prefix = service.expose.path_prefix
        rules.append(
            AllowRule(
                principals=[gateway_principal],
                paths=[f"{prefix}*"] if prefix is not None and l7 else [],
            )
        )
    return rules


def allow_policy_name(service: str) -> str:
    return f"{service}-allow"


def build_allow_policy(
    service: str, namespace: str, rules: Iterable[AllowRule], waypoint: bool = False
) -> Manifest | None:
    """The ALLOW `AuthorizationPolicy` of `service` (its pods, or its waypoint: see
    `attachment`); None without rules (the namespace's default deny then keeps every
    caller out)."""
    istio_rules = [rule.as_istio() for rule in rules]
    if not istio_rules:
        return None
    return {
        "apiVersion": SECURITY_API,
        "kind": "AuthorizationPolicy",
        "metadata": {"name": allow_policy_name(service), "namespace": namespace},
        "spec": {
            **attachment(service, waypoint),
            "action": "ALLOW",
            "rules": istio_rules,
        },
    }


# --------------------------------------------------------------------------------------
# JWT
# --------------------------------------------------------------------------------------


def build_request_authentication(
    service: str, namespace: str, jwt: Jwt, waypoint: bool = False
) -> Manifest:
    """Validate JWTs of `jwt.issuer` on requests to `service` (present ones only)."""
    rule: dict[str, Any] = {"issuer": jwt.issuer, "jwksUri": jwt.jwks_uri}
    if jwt.audiences:
        rule["audiences"] = list(jwt.audiences)
    return {
        "apiVersion": SECURITY_API,
        "kind": "RequestAuthentication",
        "metadata": {"name": f"{service}-jwt", "namespace": namespace},
        "spec": {**attachment(service, waypoint), "jwtRules": [rule]},
    }


def build_require_jwt_policy(
    service: str, namespace: str, issuer: str, waypoint: bool = False
) -> Manifest:
    """Deny requests to `service` that carry no valid JWT of `issuer`.

    A request principal is `<iss>/<sub>`; DENY wins over every ALLOW, so the callers
    `allowFrom` admits must also present a token.
    """
    return {
        "apiVersion": SECURITY_API,
        "kind": "AuthorizationPolicy",
        "metadata": {"name": f"{service}-require-jwt", "namespace": namespace},
        "spec": {
            **attachment(service, waypoint),
            "action": "DENY",
            "rules": [{"from": [{"source": {"notRequestPrincipals": [f"{issuer}/*"]}}]}],
        },
    }


def authorization_manifests(
    service: ServiceConfig,
    *,
    gateway_principal: str | None = None,
    trust_domain: str = TRUST_DOMAIN,
    placement: Placement = SIDECARS,
) -> dict[str, Manifest]:
    """A service's authorization objects by child-name suffix: `allow`, absent when
    nobody may call the service (the namespace's default deny already says so).

    `gateway_principal` is the identity of the gateway of `service.expose`; default:
    the pods of this project's gateway named by `expose.gateway`. `placement` says
    whether a waypoint enforces the policy (components.ambient).
    """
    if gateway_principal is None and service.expose is not None:
        namespace, account = naming.gateway_service_account(service.expose.gateway)
        gateway_principal = principal(namespace, account, trust_domain)
    rules = allow_rules(
        service, gateway_principal=gateway_principal, trust_domain=trust_domain, l7=placement.l7
    )
    manifest = build_allow_policy(service.name, service.namespace, rules, placement.waypoint)
    return {} if manifest is None else {"allow": manifest}


def jwt_manifests(service: ServiceConfig, placement: Placement = SIDECARS) -> dict[str, Manifest]:
    """The JWT objects of a service with a `jwt` section, by child-name suffix:
    `request-authentication` and `require-jwt`; none without one. Both attach to the
    service's waypoint when it has one (ztunnel reads no JWT)."""
    if service.jwt is None:
        return {}
    waypoint = placement.waypoint
    return {
        "request-authentication": build_request_authentication(
            service.name, service.namespace, service.jwt, waypoint
        ),
        "require-jwt": build_require_jwt_policy(
            service.name, service.namespace, service.jwt.issuer, waypoint
        ),
    }


# --------------------------------------------------------------------------------------
# Components
# --------------------------------------------------------------------------------------

AUTHORIZATION_TYPE = "istio-mesh:security:ServiceAuthorization"
JWT_TYPE = "istio-mesh:security:JwtAuthentication"


@dataclass(frozen=True)
class ServiceAuthorizationArgs:
    """What `ServiceAuthorization` needs: the service and the mesh's identities."""

    service: ServiceConfig
    """The service; its `allowFrom` and `expose` decide who may call it."""
    gateway_principal: str | None = None
    """Identity of the gateway of `service.expose`. Default: the pods of this project's
    gateway named by `expose.gateway` (service account `istio-<gateway>` in namespace
    `istio-<gateway>`)."""
    trust_domain: str = TRUST_DOMAIN
    """The mesh's trust domain (`istio-mesh:istio.trustDomain`)."""


class ServiceAuthorization(pulumi.ComponentResource):
    """The ALLOW `AuthorizationPolicy` of one service (child `<name>-allow`).

    Registers no policy when nobody may call the service: the namespace's default deny
    already says so.
    """

    policy: pulumi.CustomResource | None

    def __init__(
        self,
        resource_name: str,
        args: ServiceAuthorizationArgs,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        manifests = authorization_manifests(
            args.service, gateway_principal=args.gateway_principal, trust_domain=args.trust_domain
        )
        super().__init__(AUTHORIZATION_TYPE, resource_name, None, opts)
        self.policy = None
        if "allow" in manifests:
            self.policy = register_manifest(
                f"{resource_name}-allow", manifests["allow"], child_options(self, opts)
            )
        rules = manifests["allow"]["spec"]["rules"] if "allow" in manifests else []
        self.register_outputs({"rules": len(rules)})


@dataclass(frozen=True)
class JwtAuthenticationArgs:
    """What `JwtAuthentication` needs: a service with a `jwt` section."""

    service: ServiceConfig
    """The service; `service.jwt` names the issuer and its keys."""


class JwtAuthentication(pulumi.ComponentResource):
    """Require a valid JWT on every request to a service.

    Children: `<name>-request-authentication` (validates tokens) and `<name>-require-jwt`
    (denies requests without one).
    """

    request_authentication: pulumi.CustomResource
    require_jwt: pulumi.CustomResource

    def __init__(
        self,
        resource_name: str,
        args: JwtAuthenticationArgs,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        service = args.service
        if service.jwt is None:
            raise ValueError(f"service {service.name} has no `jwt` section")
        manifests = jwt_manifests(service)
        super().__init__(JWT_TYPE, resource_name, None, opts)
        children = {
            suffix: register_manifest(
                f"{resource_name}-{suffix}", manifest, child_options(self, opts)
            )
            for suffix, manifest in manifests.items()
        }
        self.request_authentication = children["request-authentication"]
        self.require_jwt = children["require-jwt"]
        self.register_outputs({"issuer": service.jwt.issuer})
