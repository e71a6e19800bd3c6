"""The parts of the mesh a team may want alone: the control plane, a gateway, a mesh
namespace, and a namespace's services (routes and authorization).

Each takes the same settings as the matching key of the stack config (and of
`IstioMesh`), validates them with the stack config's checks (a problem names the arg's
path, `gateway.servers[0].hosts`, and registers nothing), and declares the component
the stack declares for it, under itself. They use the Kubernetes provider of their
`opts` (`providers=`), like any component; `IstioMesh` makes its own from
`kubernetesContext`. A part does not order itself after another: pass the control
plane in `depends_on` of what its istiod must inject (gateways, namespaces), as the
stack does.
"""

# No `from __future__ import annotations`: the schema is inferred from these at run time.
from collections.abc import Callable, Mapping
from typing import Any, Required, TypedDict

import pulumi

from components import naming
from components.catalog import ServiceCatalog, ServiceCatalogArgs
from components.config import PROJECT, MeshConfig, parse_config, service_placements
from components.control_plane import IstioControlPlane
from components.egress import API_SERVER_EGRESS
from components.errors import ConfigError, ConfigProblem
from components.gateway import GatewayArgs, IngressGateway, pod_selector
from components.namespace import MeshNamespace as NamespaceComponent
from components.namespace import MeshNamespaceArgs as NamespaceComponentArgs
from components.observability import tracing_provider
from istio_mesh.args import (
    GatewaySettings,
    IstioSettings,
    NamespaceSettings,
    ObservabilitySettings,
    ServiceConfig,
)
from istio_mesh.convert import has_outputs, model_to_config, unknown_paths


def validated(raw: Mapping[str, Any], renames: Mapping[str, str]) -> MeshConfig:
    """`raw` (Python names, as args) validated as a stack config whose problems are
    reported at the args' paths: `renames` maps a config path prefix to the arg path
    it came from (`istio-mesh:gateways[0]` -> `gateway`)."""
    try:
        return parse_config(model_to_config(MeshConfig, raw))
    except ConfigError as error:
        raise ConfigError(
            ConfigProblem(_renamed(problem.path, renames), problem.message)
            for problem in error.problems
        ) from None


def _renamed(path: str, renames: Mapping[str, str]) -> str:
    for prefix in sorted(renames, key=len, reverse=True):
        if path == prefix or path.startswith((f"{prefix}.", f"{prefix}[")):
            return renames[prefix] + path.removeprefix(prefix)
    return path.removeprefix(f"{PROJECT}:")


class _Part(pulumi.ComponentResource):
    """What every part does with its args: wait for the Outputs among them, fail on one
    still unknown in a preview, validate, then declare (`declare`, which returns the
    part's outputs by their schema names)."""

    TYPE = ""

    def _start(
        self,
        name: str,
        args: Any,
        opts: pulumi.ResourceOptions | None,
        declare: Callable[[Any], dict[str, Any]],
    ) -> pulumi.Output[dict[str, Any]]:
        if not has_outputs(args):
            declared = declare(args)  # validates before registering: bad args, nothing
            return pulumi.Output.from_input(declared)

        def when_known(resolved: Any) -> Any:
            paths = unknown_paths(resolved, "args")
            if paths:
                raise ConfigError(
                    ConfigProblem(
                        path.removeprefix("args."),
                        f"unknown until the resource it comes from exists: "
                        f"{type(self).__name__} validates its args before declaring "
                        "anything; pass a value known at preview",
                    )
                    for path in paths
                )
            return pulumi.Output.from_input(declare(resolved))

        self._register(name, opts)
        return pulumi.Output.from_input(args).apply(when_known, run_with_unknowns=True)

    def _register(self, name: str, opts: pulumi.ResourceOptions | None) -> None:
        if not getattr(self, "_registered", False):
            super().__init__(self.TYPE, name, None, opts)
            self._registered = True


def _item(outputs: pulumi.Output[dict[str, Any]], key: str) -> pulumi.Output[Any]:
    return outputs.apply(lambda values: values[key])


class ControlPlaneArgs(TypedDict, total=False):
    """The control plane's settings: the stack config's `istio` key (and the tracing
    backend istiod's mesh config names)."""

    istio: Required[pulumi.Input[IstioSettings]]
    """Revisions, tags, dataplane, mesh-wide settings: as the stack config's `istio`.
    `dataplane: ambient` installs istio-cni, ztunnel and the ambient profile."""
    observability: pulumi.Input[ObservabilitySettings]
    """Only its tracing backend matters here: the extension provider istiod's mesh
    config names (add-ons are IstioMesh's)."""


class ControlPlane(_Part):
    """Istio's control plane from its Helm charts: the istio-system namespace,
    istio-base (CRDs), one istiod per revision, revision tags, istio-cni and ztunnel in
    ambient mode, and mesh-wide STRICT mTLS; charts pinned to each revision's version."""

    TYPE = "istio-mesh:index:ControlPlane"

    revisions: pulumi.Output[list[str]]
    """The revision names (`1-30-5` for 1.30.5), one istiod release each."""
    tags: pulumi.Output[dict[str, str]]
    """Revision tag -> the revision it points at."""
    default_revision: pulumi.Output[str]
    """The revision that owns the validation webhook and the `default` tag."""
    namespace: pulumi.Output[str]
    """The control plane's namespace (`istio-system`)."""

    def __init__(
        self, name: str, args: ControlPlaneArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        def declare(resolved: Any) -> dict[str, Any]:
            config = validated(resolved, {})
            self._register(name, opts)
            observability = config.observability
            providers = [tracing_provider(observability)] if observability.tracing_enabled else []
            IstioControlPlane(
                name,
                config.istio,
                extension_providers=providers,
                opts=pulumi.ResourceOptions(parent=self),
                ambient=config.ambient,
            )
            istio = config.istio
            return {
                "revisions": [revision.name for revision in istio.revisions],
                "tags": istio.tag_map,
                "defaultRevision": istio.default_revision_name,
                "namespace": naming.ISTIO_SYSTEM,
            }

        outputs = self._start(name, args, opts, declare)
        self.revisions = _item(outputs, "revisions")
        self.tags = _item(outputs, "tags")
        self.default_revision = _item(outputs, "defaultRevision")
        self.namespace = _item(outputs, "namespace")
        self.register_outputs(
            {
                "revisions": self.revisions,
                "tags": self.tags,
                "defaultRevision": self.default_revision,
                "namespace": self.namespace,
            }
        )


class GatewayComponentArgs(TypedDict, total=False):
    """One gateway: the settings of an entry of the stack config's `gateways`."""

    gateway: Required[pulumi.Input[GatewaySettings]]
    """The gateway, as an entry of the stack config's `gateways`."""
    istio: pulumi.Input[IstioSettings]
    """The control plane it runs under (its `revision` names one of its revisions or
    tags; the chart is pinned to that revision's version): as the stack config's
    `istio`. Default: the stack config's defaults."""
    callers: pulumi.Input[list[pulumi.Input[str]]]
    """Egress gateways: the namespaces whose workloads may send traffic through it."""
    route_namespaces: pulumi.Input[list[pulumi.Input[str]]]
    """`gateway-api` gateways: the namespaces whose HTTPRoutes its listeners admit."""


class Gateway(_Part):
    """A gateway: Istio's gateway chart in its own injected namespace with an Istio
    `Gateway` (HTTPS per server, port 80 redirecting), or a Gateway API `Gateway`
    istiod deploys; default-deny plus an ALLOW for its listeners. Declare it after the
    control plane (`depends_on`): its pods are injected by istiod."""

    TYPE = "istio-mesh:index:Gateway"

    release: pulumi.Output[str]
    """The Helm release of the gateway chart (`istio-<name>`); empty for a Gateway API
    gateway, which istiod deploys."""
    namespace: pulumi.Output[str]
    """The gateway's namespace (`istio-<name>`)."""
    selector: pulumi.Output[dict[str, str]]
    """The labels of the gateway's pods."""

    def __init__(
        self,
        name: str,
        args: GatewayComponentArgs,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        def declare(resolved: Any) -> dict[str, Any]:
            raw = {"istio": resolved.get("istio", {}), "gateways": [resolved.get("gateway")]}
            config = validated(raw, {f"{PROJECT}:gateways[0]": "gateway"})
            self._register(name, opts)
            settings = config.gateways[0]
            istio = config.istio
            revision = istio.resolve(settings.revision)
            assert revision is not None  # checked by the config's cross-checks
            versions = {r.name: r.version for r in istio.revisions}
            component = IngressGateway(
                name,
                GatewayArgs(
                    settings=settings,
                    version=versions[revision],
                    callers=sorted(resolved.get("callers", [])),
                    chart_repository=istio.chart_repository,
                    wait=istio.await_releases,
                    high_availability=istio.high_availability,
                    route_namespaces=sorted(resolved.get("route_namespaces", [])),
                ),
                protect=istio.protect,
                opts=pulumi.ResourceOptions(parent=self),
            )
            release = component.release.name if settings.api != "gateway-api" else ""  # type: ignore[attr-defined]
            return {
                "release": release,
                "namespace": naming.gateway_namespace(settings.name),
                "selector": pod_selector(settings),
            }

        outputs = self._start(name, args, opts, declare)
        self.release = _item(outputs, "release")
        self.namespace = _item(outputs, "namespace")
        self.selector = _item(outputs, "selector")
        self.register_outputs(
            {"release": self.release, "namespace": self.namespace, "selector": self.selector}
        )


class MeshNamespaceComponentArgs(TypedDict, total=False):
    """One application namespace: an entry of the stack config's `namespaces`."""

    namespace: Required[pulumi.Input[NamespaceSettings]]
    """The namespace, as an entry of the stack config's `namespaces`."""
    istio: pulumi.Input[IstioSettings]
    """The control plane whose revision or tag injects it, its dataplane and trust
    domain: as the stack config's `istio`. Default: the stack config's defaults."""
    peers: pulumi.Input[list[pulumi.Input[str]]]
    """Other namespaces whose pods may call into this one (its NetworkPolicy); gateways'
    namespaces included. Its own and istio-system's always may."""
    egress_hosts: pulumi.Input[list[pulumi.Input[str]]]
    """What its sidecars may reach beyond their own namespace and istio-system
    (`<namespace>/<host>` entries of its `Sidecar`); the API server always."""


class MeshNamespace(_Part):
    """An application namespace in the mesh and closed by default: exactly one
    injection label (or ambient mode, with its waypoint), a default-deny
    AuthorizationPolicy, a NetworkPolicy admitting only the mesh, and a Sidecar egress
    scope. Declare it after the control plane (`depends_on`)."""

    TYPE = "istio-mesh:index:MeshNamespace"

    name: pulumi.Output[str]
    """The namespace's name."""

    def __init__(
        self,
        name: str,
        args: MeshNamespaceComponentArgs,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        def declare(resolved: Any) -> dict[str, Any]:
            raw = {"istio": resolved.get("istio", {}), "namespaces": [resolved.get("namespace")]}
            config = validated(raw, {f"{PROJECT}:namespaces[0]": "namespace"})
            self._register(name, opts)
            settings = config.namespaces[0]
            istio = config.istio
            peers = set(resolved.get("peers", [])) | set(settings.allow_ingress_from)
            NamespaceComponent(
                name,
                NamespaceComponentArgs(
                    name=settings.name,
                    dataplane=config.mesh_dataplane(settings),
                    revision=settings.revision,
                    peers=sorted(peers),
                    egress_hosts=[API_SERVER_EGRESS, *resolved.get("egress_hosts", [])],
                    labels=dict(settings.labels),
                    waypoint=config.has_waypoint(settings),
                    trust_domain=istio.trust_domain,
                    high_availability=istio.high_availability,
                ),
                protect=istio.protect,
                opts=pulumi.ResourceOptions(parent=self),
            )
            return {"name": settings.name}

        outputs = self._start(name, args, opts, declare)
        self.name = _item(outputs, "name")
        self.register_outputs({"name": self.name})


class ServicesArgs(TypedDict, total=False):
    """The services of one namespace: entries of the stack config's `services`."""

    namespace: Required[pulumi.Input[NamespaceSettings]]
    """The namespace they live in (its dataplane and waypoint decide how traffic is
    routed), as an entry of the stack config's `namespaces`."""
    services: Required[pulumi.Input[list[pulumi.Input[ServiceConfig]]]]
    """The services, each as an entry of the stack config's `services`, all in
    `namespace`."""
    gateways: pulumi.Input[list[pulumi.Input[GatewaySettings]]]
    """The gateways services are exposed through (`expose.gateway` names one), as
    entries of the stack config's `gateways`."""
    istio: pulumi.Input[IstioSettings]
    """The control plane (its trust domain names the callers): as the stack config's
    `istio`. Default: the stack config's defaults."""


class Services(_Part):
    """The routes and authorization of a namespace's services: per service a
    VirtualService and DestinationRule built together (every routed subset exists), or
    HTTPRoutes where a waypoint or Gateway API gateway carries them; ALLOW rules from
    `allowFrom`; JWT authentication with `jwt`."""

    TYPE = "istio-mesh:index:Services"

    services: pulumi.Output[list[str]]
    """The names of the services declared."""

    def __init__(
        self, name: str, args: ServicesArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        def declare(resolved: Any) -> dict[str, Any]:
            raw = {
                "istio": resolved.get("istio", {}),
                "namespaces": [resolved.get("namespace")],
                "gateways": resolved.get("gateways", []),
                "services": resolved.get("services", []),
            }
            renames = {
                f"{PROJECT}:namespaces[0]": "namespace",
                f"{PROJECT}:gateways": "gateways",
                f"{PROJECT}:services": "services",
            }
            config = validated(raw, renames)
            self._register(name, opts)
            namespace = config.namespaces[0].name
            ServiceCatalog(
                name,
                ServiceCatalogArgs(
                    namespace=namespace,
                    services=config.services,
                    trust_domain=config.istio.trust_domain,
                    placement=service_placements(config)[namespace],
                    gateway_api_gateways=config.gateway_api_gateways,
                ),
                opts=pulumi.ResourceOptions(parent=self),
            )
            return {"services": [service.name for service in config.services]}

        outputs = self._start(name, args, opts, declare)
        self.services = _item(outputs, "services")
        self.register_outputs({"services": self.services})
