"""The whole mesh from a validated stack config: provider, control plane, gateways,
namespaces; in one cluster, or in each of `istio-mesh:clusters` with the multi-cluster
parts between them (components.multicluster). `__main__.py` calls `declare` (the
promotion gate, then `declare_mesh`) through `istio_mesh.IstioMesh`, the public
component, and exports what it returns: `mesh_outputs`, and what only the declared
resources know (the plug-in CA's expiry dates).

`under`, where a function takes it, are the options of every resource declared at the
mesh's top level (the IstioMesh component as parent, and the alias to the stack's top
level where these resources lived before it): the components below it pass their own
children `parent=self`, and the engine carries the alias down to them."""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components import naming
from components.ca import (
    CertificateAuthorityArgs,
    MeshCertificateAuthority,
    PluginCa,
    ca_alert_rules,
    ca_output_names,
)
from components.catalog import ServiceCatalog, ServiceCatalogArgs
from components.config import PROJECT, ClusterSettings, MeshConfig, service_placements
from components.control_plane import ClusterIdentity, IstioControlPlane
from components.egress import API_SERVER_EGRESS, ExternalHosts, caller_egress_entries
from components.errors import ConfigError, ConfigProblem
from components.gateway import GatewayArgs, IngressGateway
from components.gateway_api_crds import GatewayApiCrds, GatewayApiSourceError, load_crds
from components.k8s import Manifest
from components.multicluster import (
    EastWestGateway,
    EastWestGatewayArgs,
    RemoteSecrets,
    RemoteSecretsArgs,
    remote_secret_pairs,
)
from components.namespace import MeshNamespace, MeshNamespaceArgs
from components.observability import (
    MeshObservability,
    enabled_addons,
    tracing_endpoint,
    tracing_provider,
)
from components.promotion import check_promotion
from components.service_config import ServiceConfig, caller_egress_hosts


def top_level(
    under: pulumi.ResourceOptions | None, opts: pulumi.ResourceOptions | None = None
) -> pulumi.ResourceOptions:
    """The options of a resource at the mesh's top level: `opts` under `under`."""
    return pulumi.ResourceOptions.merge(under or pulumi.ResourceOptions(), opts)


def kubernetes_provider(
    config: MeshConfig, under: pulumi.ResourceOptions | None = None
) -> k8s.Provider:
    """The explicit provider every resource uses (several clusters, one program).

    Always created, so that setting `kubernetes:context` later changes the provider's
    configuration instead of moving every resource to another provider. Its
    `clusterIdentifier` (the context, or the stack's name) is what says which cluster it
    is: without it the provider, and with it every resource, is replaced whenever the
    kubeconfig's active cluster entry changes (a new kubeconfig file, a rotated endpoint).
    """
    return k8s.Provider(
        naming.PROVIDER,
        context=config.kubernetes_context,
        cluster_identifier=config.kubernetes_context or pulumi.get_stack(),
        opts=top_level(under),
    )


def cluster_provider(
    cluster: ClusterSettings, under: pulumi.ResourceOptions | None = None
) -> k8s.Provider:
    """One cluster's provider: its context, which is also its `clusterIdentifier` (a
    moved kubeconfig entry then changes nothing; a changed context is another cluster)."""
    name, opts = placed(cluster, naming.PROVIDER, top_level(under))
    return k8s.Provider(
        name, context=cluster.context, cluster_identifier=cluster.context, opts=opts
    )


def placed(
    cluster: ClusterSettings | None, name: str, opts: pulumi.ResourceOptions
) -> tuple[str, pulumi.ResourceOptions]:
    """A top-level resource `name` in `cluster` (None: the one cluster of a stack without
    clusters): its name there, and `opts` with where the stack's one cluster had it when
    `cluster` is that cluster (`fromSingleCluster`): under the mesh, or at the stack's
    top level for a stack last updated before 0.4.0.

    The engine passes a found alias down to the children, their names' prefix renamed
    (`east-istio-base` is found as `istio-base`), and does not replace a resource whose
    provider was found under an alias: aliasing the provider and the top-level
    resources moves the whole cluster, live objects untouched."""
    prefixed = naming.cluster_resource_name(cluster.name if cluster else None, name)
    if cluster is None or not cluster.from_single_cluster:
        return prefixed, opts
    aliases = [
        pulumi.Alias(name=name),
        pulumi.Alias(name=name, parent=pulumi.ROOT_STACK_RESOURCE),
    ]
    return prefixed, pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(aliases=aliases))


def mesh_peers(config: MeshConfig) -> list[str]:
    """Namespaces whose pods belong to the mesh: apps and gateways."""
    return sorted(
        [namespace.name for namespace in config.namespaces]
        + [naming.gateway_namespace(gateway.name) for gateway in config.gateways]
    )


def mesh_outputs(config: MeshConfig) -> dict[str, Any]:
    """What the stack exports: what it runs, for people and for the stacks that trail it."""
    istio = config.istio
    return {
        "istioVersions": [revision.version for revision in istio.revisions],
        "revisions": [revision.name for revision in istio.revisions],
        "tags": istio.tag_map,
        "defaultRevision": istio.default_revision_name,
        "gateways": {
            gateway.name: naming.gateway_release(gateway.name) for gateway in config.gateways
        },
        "namespaces": [namespace.name for namespace in config.namespaces],
    } | (
        {"clusters": {cluster.name: cluster.network for cluster in config.clusters}}
        if config.clusters
        else {}
    )


def declare(config: MeshConfig, under: pulumi.ResourceOptions | None = None) -> dict[str, Any]:
    """Declare the mesh, behind the promotion gate when the stack has one; return the
    stack's outputs.

    The gate needs the source stack's outputs, which only an Output delivers: the whole
    mesh is then declared once they are known (they are, in preview too), and not at all
    when the gate refuses. Outputs that come from declared resources are named up front
    (`ca_output_names`) and resolve once the mesh is declared.
    """
    outputs = mesh_outputs(config)
    if config.promotion is None:
        declared = pulumi.Output.all(**declare_mesh(config, under))
    else:
        source_name = config.promotion.qualified(pulumi.get_organization(), pulumi.get_project())
        source = pulumi.StackReference(source_name, opts=top_level(under))

        def gated(outputs: dict[str, Any]) -> pulumi.Output[dict[str, Any]]:
            check_promotion(config, outputs, source_name)
            return pulumi.Output.all(**declare_mesh(config, under))

        declared = source.outputs.apply(gated)
    for name in ca_output_names(config.ca):
        outputs[name] = _item(declared, name)
    return outputs


def _item(values: pulumi.Output[dict[str, Any]], name: str) -> pulumi.Output[Any]:
    return values.apply(lambda resolved: resolved[name])


def gateway_api_crds(config: MeshConfig) -> list[Manifest]:
    """The Gateway API CRDs the stack installs (none unless it needs them and may);
    raises `ConfigError` at `gatewayApi` when they cannot be read or are not the pinned
    release's, before anything is declared."""
    version = config.gateway_api_version
    if not config.installs_gateway_api or version is None:
        return []
    try:
        return load_crds(version, config.gateway_api.source)
    except GatewayApiSourceError as error:
        raise ConfigError([ConfigProblem(f"{PROJECT}:gatewayApi.source", str(error))]) from None


def declare_mesh(
    config: MeshConfig, under: pulumi.ResourceOptions | None = None
) -> dict[str, pulumi.Output[Any]]:
    """Declare every resource of the mesh, in one cluster or in each of
    `istio-mesh:clusters`; return the outputs only they know (the plug-in CA's expiry
    dates)."""
    # Read first: a source that fails is a config error, and nothing is registered yet.
    crd_manifests = gateway_api_crds(config)
    if not config.clusters:
        provider = kubernetes_provider(config, under)
        with_provider = top_level(under, pulumi.ResourceOptions(providers=[provider]))
        plugin_ca = None
        if config.ca.mode == "plugin":
            plugin_ca = PluginCa(config.ca, config.istio.protect, with_provider)
        declare_cluster(config, None, provider, plugin_ca, crd_manifests, under)
        return plugin_ca.outputs() if plugin_ca else {}
    # One root for every cluster (the config requires a plug-in CA): each cluster's
    # intermediate chains to it, so each cluster's workloads trust the others'.
    authority = MeshCertificateAuthority(
        "ca", CertificateAuthorityArgs(config.ca, config.istio.protect), top_level(under)
    )
    cas: dict[str, PluginCa] = {}
    control_planes: dict[str, IstioControlPlane] = {}
    providers: dict[str, k8s.Provider] = {}
    for cluster in config.clusters:
        provider = cluster_provider(cluster, under)
        providers[cluster.name] = provider
        intermediate, opts = placed(
            cluster,
            naming.CA_INTERMEDIATE,
            top_level(under, pulumi.ResourceOptions(providers=[provider])),
        )
        cas[cluster.name] = PluginCa(
            config.ca,
            config.istio.protect,
            opts,
            authority=authority,
            intermediate_name=intermediate,
            given=cluster.intermediate,
        )
        control_planes[cluster.name] = declare_cluster(
            config, cluster, provider, cas[cluster.name], crd_manifests, under
        )
    kubeconfigs = {
        cluster.name: pulumi.Output.secret(cluster.kubeconfig.get_secret_value())
        for cluster in config.clusters
        if cluster.kubeconfig is not None
    }
    discovers: dict[str, list[str]] = {}
    for into, of in remote_secret_pairs(config.clusters):
        discovers.setdefault(into, []).append(of)
    for into, others in discovers.items():
        RemoteSecrets(
            naming.cluster_resource_name(into, "remote-secrets"),
            RemoteSecretsArgs(kubeconfigs={of: kubeconfigs[of] for of in others}),
            opts=top_level(
                under,
                pulumi.ResourceOptions(
                    providers=[providers[into]], depends_on=[control_planes[into].namespace]
                ),
            ),
        )
    return {
        "caRootNotAfter": authority.not_after,
        "caIntermediateNotAfter": pulumi.Output.all(
            **{name: ca.outputs()["caIntermediateNotAfter"] for name, ca in cas.items()}
        ),
    }


def declare_cluster(
    config: MeshConfig,
    cluster: ClusterSettings | None,
    provider: k8s.Provider,
    plugin_ca: PluginCa | None,
    crd_manifests: list[Manifest],
    under: pulumi.ResourceOptions | None = None,
) -> IstioControlPlane:
    """Declare the whole mesh in one cluster (`cluster`: one of `istio-mesh:clusters`,
    its resources' names prefixed with its name; None: the one cluster of a stack
    without clusters, today's names). Namespaces, gateways and services are the same
    in every cluster: Istio's namespace sameness, a service is one service mesh-wide.
    `crd_manifests`: the Gateway API CRDs (`gateway_api_crds`), read once. Returns the
    cluster's control plane."""
    istio = config.istio
    observability = config.observability
    with_provider = top_level(under, pulumi.ResourceOptions(providers=[provider]))
    # Before istiod, which then finds the Gateway API's kinds from its start.
    crds: list[pulumi.Resource] = []
    if crd_manifests:
        name, opts = placed(cluster, "gateway-api", with_provider)
        crds = GatewayApiCrds(
            name,
            crd_manifests,
            str(config.gateway_api_version),
            protect=istio.protect,
            opts=opts,
        ).ready
    tracing = observability.tracing_enabled
    identity = None
    if cluster is not None:
        assert istio.mesh_id is not None  # checked by the config
        identity = ClusterIdentity(istio.mesh_id, cluster.name, cluster.network)
    name, opts = placed(
        cluster,
        "istio",
        pulumi.ResourceOptions.merge(with_provider, pulumi.ResourceOptions(depends_on=crds)),
    )
    control_plane = IstioControlPlane(
        name,
        istio,
        extension_providers=[tracing_provider(observability)] if tracing else [],
        opts=opts,
        ambient=config.ambient,
        istiod_needs=plugin_ca.install if plugin_ca else None,
        cluster=identity,
    )
    after_istiod = pulumi.ResourceOptions.merge(
        with_provider, pulumi.ResourceOptions(depends_on=[*control_plane.ready, *crds])
    )
    versions = {revision.name: revision.version for revision in istio.revisions}
    if cluster is not None and config.multi_network:
        name, opts = placed(cluster, "east-west", after_istiod)
        EastWestGateway(
            name,
            EastWestGatewayArgs(
                version=versions[istio.default_revision_name],
                network=cluster.network,
                revision=istio.default_revision_name,
                chart_repository=istio.chart_repository,
                wait=istio.await_releases,
            ),
            opts=opts,
        )
    peers = mesh_peers(config)
    name, opts = placed(cluster, "observability", after_istiod)
    MeshObservability(
        name,
        observability,
        istio,
        versions[istio.default_revision_name],
        opts=opts,
        extra_alerts=ca_alert_rules() if plugin_ca else (),
    )
    # Prometheus scrapes every pod; proxies reach the tracing backend.
    scrapers = [observability.namespace] if enabled_addons(observability) else []
    tracing_host = tracing_endpoint(observability)[0].split(".")
    egress = [f"{tracing_host[1]}/*"] if tracing and len(tracing_host) > 1 else []

    apps = [namespace.name for namespace in config.namespaces]
    externals = [
        external
        if external.namespaces is not None
        else external.model_copy(update={"namespaces": apps})
        for external in config.external_hosts
    ]
    egress_gateway = next((g.name for g in config.gateways if g.kind == "egress"), None)
    gateways = {}
    for gateway in config.gateways:
        revision = istio.resolve(gateway.revision)
        assert revision is not None  # checked by the config's cross-checks
        name, opts = placed(cluster, f"gateway-{gateway.name}", after_istiod)
        gateways[gateway.name] = IngressGateway(
            name,
            GatewayArgs(
                settings=gateway,
                version=versions[revision],
                callers=peers,
                chart_repository=istio.chart_repository,
                wait=istio.await_releases,
                high_availability=istio.high_availability,
                external_hosts=externals if gateway.kind == "egress" else (),
                route_namespaces=sorted(
                    {
                        service.namespace
                        for service in config.services
                        if service.expose is not None and service.expose.gateway == gateway.name
                    }
                ),
            ),
            protect=istio.protect,
            opts=opts,
        )
    if externals:
        # The routes live in the egress gateway's namespace: after the gateway.
        through = [gateways[egress_gateway]] if egress_gateway else []
        name, opts = placed(
            cluster,
            "external-hosts",
            pulumi.ResourceOptions.merge(after_istiod, pulumi.ResourceOptions(depends_on=through)),
        )
        ExternalHosts(name, externals, egress_gateway, opts=opts)
    calls_into = caller_egress_hosts(config.services)
    outside = caller_egress_entries(externals, apps, egress_gateway)
    namespaces = {}
    for namespace in config.namespaces:
        name, opts = placed(cluster, f"namespace-{namespace.name}", after_istiod)
        namespaces[namespace.name] = MeshNamespace(
            name,
            MeshNamespaceArgs(
                name=namespace.name,
                dataplane=config.mesh_dataplane(namespace),
                revision=namespace.revision,
                peers=sorted(set(peers) | set(namespace.allow_ingress_from) | set(scrapers)),
                egress_hosts=[
                    API_SERVER_EGRESS,
                    *egress,
                    *calls_into.get(namespace.name, []),
                    *outside.get(namespace.name, []),
                ],
                labels=dict(namespace.labels),
                waypoint=config.has_waypoint(namespace),
                trust_domain=istio.trust_domain,
                high_availability=istio.high_availability,
            ),
            protect=istio.protect,
            opts=opts,
        )
    placements = service_placements(config)
    services_in: dict[str, list[ServiceConfig]] = {}
    for service in config.services:
        services_in.setdefault(service.namespace, []).append(service)
    for namespace_name, services in services_in.items():
        # Routes and policies live in the namespace: create them once it exists.
        name, opts = placed(
            cluster,
            naming.catalog_resource_name(namespace_name),
            pulumi.ResourceOptions.merge(
                with_provider,
                pulumi.ResourceOptions(depends_on=[namespaces[namespace_name].namespace]),
            ),
        )
        ServiceCatalog(
            name,
            ServiceCatalogArgs(
                namespace=namespace_name,
                services=services,
                trust_domain=istio.trust_domain,
                placement=placements[namespace_name],
                gateway_api_gateways=config.gateway_api_gateways,
            ),
            opts=opts,
        )
    return control_plane
