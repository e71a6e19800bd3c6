"""The public API's argument types: the stack config's keys, `pulumi.Input`-typed.

Written by `python -m istio_mesh.generate_args` from the config models
(components/config.py, components/service_config.py), which hold each key's type and
documentation; do not edit by hand. Keys are snake_case here and camelCase in the
package schema and in stack config (`high_availability` = `highAvailability`); what
they accept is checked when a component validates its args, as the stack checks its
config.
"""

from typing import Required, TypedDict

import pulumi


class Revision(TypedDict, total=False):
    """One istiod Helm release, running one Istio version."""

    version: Required[pulumi.Input[str]]
    """Exact Istio release, e.g. `1.30.5`; the revision name is derived from it (`1-30-5`)."""

    compatibility_version: pulumi.Input[str]
    """Keep an older minor's behaviour (`1.30`) in this revision until you opt in to the new
    defaults: istiod's `compatibilityVersion`. For a canary to a new minor; drop it once the
    release notes' behaviour changes are checked (docs/RUNBOOKS.md)."""


class IstioSettings(TypedDict, total=False):
    """`istio-mesh:istio`: the control plane."""

    revisions: pulumi.Input[list[pulumi.Input[Revision]]]
    """Control-plane revisions, one istiod release each. Two during a canary upgrade."""

    tags: pulumi.Input[dict[str, pulumi.Input[str]]]
    """Revision tag -> revision name. Default: `{stable: <defaultRevision>}`."""

    default_revision: pulumi.Input[str]
    """Revision that owns the validation webhook and the `default` tag (`istio-injection=enabled`
    namespaces). Default: the first revision."""

    dataplane: pulumi.Input[str]
    """`sidecar` (Envoy per pod) or `ambient` (ztunnel per node, plus istio-cni). One of:
    `sidecar`, `ambient`."""

    cni: pulumi.Input[bool]
    """Install istio-cni in sidecar mode too (no privileged init containers). Ambient mode always
    has it."""

    high_availability: pulumi.Input[bool]
    """Production profile: istiod autoscaleMin 2 (so its PDB renders), spread across zones and
    nodes, resource requests sized for production."""

    outbound_traffic_policy: pulumi.Input[str]
    """`REGISTRY_ONLY` blocks calls to hosts the mesh does not know (ServiceEntry needed). One
    of: `ALLOW_ANY`, `REGISTRY_ONLY`."""

    access_logs: pulumi.Input[bool]
    """Envoy access logs to stdout."""

    trust_domain: pulumi.Input[str]
    """SPIFFE trust domain of workload identities (`<trust domain>/ns/<ns>/sa/<sa>`)."""

    trust_domain_aliases: pulumi.Input[list[pulumi.Input[str]]]
    """Other trust domains whose identities count as this one's (mesh config
    `trustDomainAliases`): the old domain while workloads move to a new `trustDomain`
    (docs/RUNBOOKS.md), so policies naming either keep matching."""

    mesh_id: pulumi.Input[str]
    """The mesh's ID (istiod's `global.meshID`), shared by every cluster of `istio-
    mesh:clusters`; required there, and only there."""

    protect: pulumi.Input[bool]
    """Protect what deleting would destroy the mesh with: the istio-system namespace, the base
    release (the CRDs, and with them every Istio resource), mesh and gateway namespaces. Set
    in prod."""

    chart_repository: pulumi.Input[str]
    """Where Istio's charts come from: Istio's repository (default), an internal mirror
    (`https://...`), or an OCI registry (`oci://.../charts`). The policy pack's `istio-helm-
    release-pinned` must allow it."""

    hub: pulumi.Input[str]
    """Where istiod, the proxies (sidecars and gateways, injected from istiod's hub), istio-cni
    and ztunnel pull their images from: `global.hub` of every Istio chart. The released charts
    of 1.30 default to gcr.io/istio-release, which Istio retires in December 2026; a private
    mirror goes here."""

    await_releases: pulumi.Input[bool]
    """Wait for each Helm release's workloads to be ready before what depends on it (and roll a
    failed install back). `false` only where nothing can become ready, such as an API server
    without nodes (the e2e tier): ordering is then creation order."""


class Replicas(TypedDict, total=False):
    """Horizontal autoscaling bounds."""

    min: pulumi.Input[int]
    """Fewest pods; at least 2 gives the gateway a PodDisruptionBudget."""

    max: pulumi.Input[int]
    """Most pods under load."""


class ServerTls(TypedDict, total=False):
    """TLS of an HTTPS server; the certificate lives in a Secret in the gateway namespace."""

    credential_name: Required[pulumi.Input[str]]
    """Name of the `kubernetes.io/tls` Secret in the gateway's namespace."""

    mode: pulumi.Input[str]
    """`MUTUAL` also requires client certificates. One of: `SIMPLE`, `MUTUAL`."""


class Server(TypedDict, total=False):
    """A set of hosts served over HTTPS on 443, with port 80 redirecting to HTTPS."""

    hosts: Required[pulumi.Input[list[pulumi.Input[str]]]]
    """Fully qualified host names; wildcards (`*`) are refused."""

    tls: Required[pulumi.Input[ServerTls]]
    """The certificate for these hosts."""


class GatewaySettings(TypedDict, total=False):
    """One entry of `istio-mesh:gateways`: a gateway Helm release in a namespace of its own."""

    name: Required[pulumi.Input[str]]
    """Short name: release and namespace are `istio-<name>`, pods labeled `istio: <name>`."""

    kind: pulumi.Input[str]
    """`egress` gateways are ClusterIP, for meshes with REGISTRY_ONLY outbound traffic. One of:
    `ingress`, `egress`."""

    api: pulumi.Input[str]
    """`istio`: the gateway Helm chart and an Istio `Gateway`. `gateway-api`: a Kubernetes
    Gateway API `Gateway` (class `istio`) that istiod deploys, with `HTTPRoute`s (ingress
    only). One of: `istio`, `gateway-api`."""

    revision: pulumi.Input[str]
    """Tag (preferred) or revision whose istiod injects the gateway pods."""

    service_type: pulumi.Input[str]
    """Kubernetes Service type. Default: LoadBalancer (ingress), ClusterIP (egress). One of:
    `LoadBalancer`, `NodePort`, `ClusterIP`."""

    replicas: pulumi.Input[Replicas]
    """Autoscaling bounds."""

    servers: pulumi.Input[list[pulumi.Input[Server]]]
    """Hosts served over HTTPS (ingress gateways)."""


class NamespaceSettings(TypedDict, total=False):
    """One entry of `istio-mesh:namespaces`: an application namespace in the mesh."""

    name: Required[pulumi.Input[str]]
    """Namespace name."""

    revision: pulumi.Input[str]
    """Tag (preferred) or revision injecting its pods; `default` gives the classic `istio-
    injection=enabled` label. Ambient namespaces name a tag (or `default`): it chooses the
    control plane of their waypoint."""

    dataplane: pulumi.Input[str]
    """Override the mesh's dataplane for this namespace. One of: `sidecar`, `ambient`."""

    waypoint: pulumi.Input[bool]
    """Ambient namespaces: a waypoint proxy for L7 routing and authorization (HTTPRoutes,
    methods, paths, JWT). Default true; without one, ztunnel enforces L4 only."""

    labels: pulumi.Input[dict[str, pulumi.Input[str]]]
    """Extra labels; the injection labels are managed and may not be set here."""

    allow_ingress_from: pulumi.Input[list[pulumi.Input[str]]]
    """Namespaces outside the mesh allowed through the NetworkPolicy (e.g. monitoring)."""


class Version(TypedDict, total=False):
    """One version of the service, run by pods labeled `version: <name>`: a subset."""

    weight: Required[pulumi.Input[int]]
    """Percent of the default traffic this version receives. The weights of all versions sum to
    100; 0 keeps the subset defined (for header routes, mirroring, a canary about to start)
    without sending it default traffic."""


class StringMatch(TypedDict, total=False):
    """Exactly one of `exact`, `prefix`, `regex`."""

    exact: pulumi.Input[str]
    """The whole value."""

    prefix: pulumi.Input[str]
    """The beginning of the value (`/api` also matches `/apis`)."""

    regex: pulumi.Input[str]
    """An RE2 regular expression the whole value matches."""


class Route(TypedDict, total=False):
    """A match that sends requests to one version ahead of the weighted split."""

    to: Required[pulumi.Input[str]]
    """The version (subset) matching requests go to; one of `versions`."""

    headers: pulumi.Input[dict[str, pulumi.Input[StringMatch]]]
    """Request headers that must all match: `{x-canary: "true"}` (exact) or `{user-agent: {regex:
    ".*Mobile.*"}}`. Names are lower case."""

    path: pulumi.Input[StringMatch]
    """The request path: `{prefix: /api/v2}`, `{exact: /login}` or `{regex: ...}`."""

    name: pulumi.Input[str]
    """Route name in Istio's stats and logs. Default: `<to>-<index>`."""


class Retries(TypedDict, total=False):
    """How the caller's proxy retries a failed request."""

    attempts: Required[pulumi.Input[int]]
    """Retries after the first try; 0 turns retries off (Istio retries twice by default)."""

    per_try_timeout: pulumi.Input[str]
    """Time limit of each try, e.g. `2s`."""

    retry_on: pulumi.Input[str]
    """When to retry, comma-separated: Envoy policies such as `5xx`, `gateway-error`, `connect-
    failure`, `refused-stream`, `retriable-4xx`, gRPC ones such as `unavailable`, or HTTP
    status codes (`503`)."""


class Delay(TypedDict, total=False):
    """Delay some requests before forwarding them."""

    percent: Required[pulumi.Input[float]]
    """Percent of requests delayed."""

    fixed_delay: Required[pulumi.Input[str]]
    """How long, e.g. `5s`."""


class Abort(TypedDict, total=False):
    """Answer some requests with an error instead of forwarding them."""

    percent: Required[pulumi.Input[float]]
    """Percent of requests aborted."""

    http_status: Required[pulumi.Input[int]]
    """Status code returned, 200-599 (e.g. 503)."""


class FaultInjection(TypedDict, total=False):
    """Faults injected by the caller's proxy, to test resilience."""

    delay: pulumi.Input[Delay]
    """Added latency."""

    abort: pulumi.Input[Abort]
    """Failed requests."""


class Mirror(TypedDict, total=False):
    """Send a copy of requests to a version too; its responses are discarded."""

    to: Required[pulumi.Input[str]]
    """The version (subset) receiving the copies; one of `versions`."""

    percent: Required[pulumi.Input[float]]
    """Percent of requests copied."""


class CircuitBreaker(TypedDict, total=False):
    """Connection limits and ejection of failing pods (DestinationRule traffic policy)."""

    max_connections: pulumi.Input[int]
    """Most TCP connections to the service per caller proxy (`connectionPool.tcp`)."""

    max_pending_requests: pulumi.Input[int]
    """Most requests waiting for a connection (`connectionPool.http.http1MaxPendingRequests`)."""

    max_requests: pulumi.Input[int]
    """Most concurrent requests (`connectionPool.http.http2MaxRequests`)."""

    consecutive_5xx_errors: pulumi.Input[int]
    """Consecutive 5xx answers after which a pod is ejected; 0 disables it."""

    interval: pulumi.Input[str]
    """How often pods are checked for ejection, e.g. `10s`."""

    base_ejection_time: pulumi.Input[str]
    """Minimum ejection time, multiplied by the number of ejections, e.g. `30s`."""

    max_ejection_percent: pulumi.Input[int]
    """Most pods ejected at once, in percent."""


class Expose(TypedDict, total=False):
    """Serve the service through a gateway, on a host that gateway serves."""

    gateway: Required[pulumi.Input[str]]
    """The `istio-mesh:gateways` entry (its `name`)."""

    host: Required[pulumi.Input[str]]
    """One of the hosts the gateway serves, e.g. `shop.example.com`."""

    path_prefix: pulumi.Input[str]
    """Only requests whose path starts with this (`/reviews`) reach the service. Default: the
    whole host."""


class AllowFrom(TypedDict, total=False):
    """Callers allowed in (the namespace denies everything else)."""

    namespace: Required[pulumi.Input[str]]
    """The callers' namespace; any namespace, in the catalog or not."""

    service_account: pulumi.Input[str]
    """The callers' Kubernetes service account. Default: every workload of `namespace`."""

    methods: pulumi.Input[list[pulumi.Input[str]]]
    """HTTP methods allowed (`GET`, `POST`, ...). Default: all."""

    paths: pulumi.Input[list[pulumi.Input[str]]]
    """Paths allowed: exact (`/api/info`), prefix (`/api/*`), suffix (`*/info`) or `*`. Default:
    all."""

    ports: pulumi.Input[list[pulumi.Input[int]]]
    """Ports of the service's pods (container ports, not the Service port). Default: all."""


class Jwt(TypedDict, total=False):
    """End-user authentication: every request must carry a valid JWT of this issuer."""

    issuer: Required[pulumi.Input[str]]
    """The `iss` claim, e.g. `https://auth.example.com`."""

    jwks_uri: Required[pulumi.Input[str]]
    """Where the issuer publishes its signing keys (http or https URL)."""

    audiences: pulumi.Input[list[pulumi.Input[str]]]
    """Accepted `aud` claims. Default: any."""


class ServiceConfig(TypedDict, total=False):
    """One entry of `istio-mesh:services`: a Kubernetes Service of the mesh."""

    name: Required[pulumi.Input[str]]
    """The Kubernetes Service name; its pods carry the label `app: <name>`."""

    namespace: Required[pulumi.Input[str]]
    """Its namespace, one of `istio-mesh:namespaces`."""

    port: Required[pulumi.Input[int]]
    """The Service port traffic is routed to."""

    service_account: pulumi.Input[str]
    """The Kubernetes service account its pods run as. Default: `name`."""

    versions: pulumi.Input[dict[str, pulumi.Input[Version]]]
    """Subsets by name (`{v1: {weight: 80}, v2: {weight: 20}}`), pods labeled `version: <name>`;
    weights sum to 100. Default: no subsets, every pod alike."""

    routes: pulumi.Input[list[pulumi.Input[Route]]]
    """Header or path matches sending requests to one version, tried in order before the weighted
    split (e.g. `{headers: {x-canary: "true"}, to: v2}`)."""

    timeout: pulumi.Input[str]
    """Time limit of a request, retries included. Default: none."""

    retries: pulumi.Input[Retries]
    """Retry policy. Default: Istio's (2 attempts)."""

    fault_injection: pulumi.Input[FaultInjection]
    """Delays and errors injected for resilience tests."""

    mirror: pulumi.Input[Mirror]
    """Copy a share of the requests to one version."""

    circuit_breaker: pulumi.Input[CircuitBreaker]
    """Connection limits and outlier ejection."""

    expose: pulumi.Input[Expose]
    """Reachable from outside through a gateway host (and path prefix)."""

    allow_from: pulumi.Input[list[pulumi.Input[AllowFrom]]]
    """Who may call it. Default: nobody (the namespace denies by default)."""

    jwt: pulumi.Input[Jwt]
    """Require a valid end-user JWT on every request."""


class TracingSettings(TypedDict, total=False):
    """Where proxies send spans, and how many."""

    sampling_percent: pulumi.Input[float]
    """Share of requests traced, 0-100 (dev 100, prod 1)."""

    provider: pulumi.Input[str]
    """Protocol to the backend: OTLP for `jaeger` and `opentelemetry`, or Zipkin. One of:
    `jaeger`, `opentelemetry`, `zipkin`."""

    service: pulumi.Input[str]
    """Backend host (FQDN); default: the Jaeger add-on's collector."""

    port: pulumi.Input[int]
    """Backend port; default 4317 (OTLP/gRPC) or 9411 (Zipkin)."""


class AddonSettings(TypedDict, total=False):
    """Add-ons from their upstream Helm charts."""

    prometheus: pulumi.Input[bool]
    """Prometheus, scraping every proxy and istiod, with the mesh's alerting rules."""

    grafana: pulumi.Input[bool]
    """Grafana with Istio's dashboards, reading the Prometheus add-on."""

    jaeger: pulumi.Input[bool]
    """Jaeger, the default tracing backend (OTLP)."""

    kiali: pulumi.Input[bool]
    """Kiali, the mesh's console (login: `kialiAuth`)."""


class NamespaceTelemetry(TypedDict, total=False):
    """A namespace whose tracing sampling differs from the mesh's."""

    namespace: Required[pulumi.Input[str]]
    """The namespace (one of `istio-mesh:namespaces`)."""

    sampling_percent: Required[pulumi.Input[float]]
    """Share of its requests traced, 0-100."""


class AlertSettings(TypedDict, total=False):
    """Thresholds of the Prometheus alerting rules."""

    error_ratio: pulumi.Input[float]
    """Share of 5xx responses per service that fires `IstioHigh5xxRatio`."""

    p99_latency_ms: pulumi.Input[int]
    """p99 latency per service that fires `IstioHighP99Latency`."""


class ObservabilitySettings(TypedDict, total=False):
    """`istio-mesh:observability`: telemetry and add-ons.

    Tracing is on when there is a backend: the Jaeger add-on or `tracing.service`."""

    namespace: pulumi.Input[str]
    """Namespace of the add-ons."""

    tracing: pulumi.Input[TracingSettings]
    """Tracing: sampling and backend."""

    addons: pulumi.Input[AddonSettings]
    """Add-ons to install (all off by default)."""

    namespaces: pulumi.Input[list[pulumi.Input[NamespaceTelemetry]]]
    """Per-namespace sampling overrides."""

    alerts: pulumi.Input[AlertSettings]
    """Thresholds of the alerting rules."""

    kiali_auth: pulumi.Input[str]
    """Kiali login; `anonymous` only on a laptop cluster. One of: `anonymous`, `token`, `openid`."""


class ExternalPort(TypedDict, total=False):
    """A port of an external host, and what speaks on it."""

    number: pulumi.Input[int]
    """Port number, 1-65535."""

    protocol: pulumi.Input[str]
    """`TLS` (HTTPS and any TLS: routed by SNI, never decrypted) or `HTTP` (plain; only where no
    egress gateway routes it, since its servers never speak plain text). One of: `TLS`,
    `HTTP`."""


class ExternalHost(TypedDict, total=False):
    """One entry of `istio-mesh:externalHosts`: a host outside the cluster the mesh may call.
    Under REGISTRY_ONLY nothing else outside is reachable."""

    host: Required[pulumi.Input[str]]
    """Fully qualified host name (`api.stripe.com`); no wildcard."""

    ports: pulumi.Input[list[pulumi.Input[ExternalPort]]]
    """Ports and protocols; default 443/TLS."""

    namespaces: pulumi.Input[list[pulumi.Input[str]]]
    """Mesh namespaces whose workloads may call it; default: every mesh namespace."""


class PromotionSettings(TypedDict, total=False):
    """`istio-mesh:promotion`: the stack this one trails."""

    from_stack: Required[pulumi.Input[str]]
    """The stack whose outputs list what it runs: `dev` (this project, this stack's
    organization), `project/dev`, or `organization/project/dev`."""


class GatewayApiSettings(TypedDict, total=False):
    """`istio-mesh:gatewayApi`: the Kubernetes Gateway API's CRDs (standard channel)."""

    install: pulumi.Input[bool]
    """Install the CRDs. Default: when the stack needs them (a waypoint or a `gateway-api`
    gateway); `false` where the cluster's owner installs them."""

    version: pulumi.Input[str]
    """The Gateway API release, pinned. Default: the one the default revision's Istio release is
    built against (1.30: 1.5.1, 1.31: 1.6.0)."""

    source: pulumi.Input[str]
    """Where the release's `standard-install.yaml` is read from: a URL or a file (an internal
    mirror). Default: the release on GitHub."""


class CaRoot(TypedDict, total=False):
    """The mesh's trust anchor: generated (dev) or the organisation's (prod)."""

    generate: pulumi.Input[bool]
    """Generate the root with pulumi-tls; its key lives in the stack's state (encrypted). For dev
    and test meshes, whose trust nobody outside shares."""

    certificate: pulumi.Input[str]
    """The organisation's root certificate, PEM (public; its key stays offline). During a root
    rotation, both roots, one after the other: every proxy then trusts either."""

    validity_days: pulumi.Input[int]
    """Lifetime of a generated root."""


class CaIntermediate(TypedDict, total=False):
    """A given intermediate CA, issued by the organisation's root for this cluster."""

    certificate: Required[pulumi.Input[str]]
    """The intermediate's certificate, PEM; then, if the root did not sign it directly, the
    certificates between it and the root, each followed by its issuer."""

    key: pulumi.Input[str]
    """The intermediate's private key, PEM, unencrypted: secret config only (`pulumi config set
    --secret --path ...`), kept a secret from there to the `cacerts` Secret. A secret: pass it
    as a secret Output."""


class CaSettings(TypedDict, total=False):
    """`istio-mesh:ca`: who signs the workloads' certificates."""

    mode: pulumi.Input[str]
    """`istiod`: istiod's own self-signed root (Istio's default, fine for a trial). `plugin`: an
    intermediate under the mesh's root, in the `cacerts` Secret that istiod reads at start
    (Istio's plug-in CA). One of: `istiod`, `plugin`."""

    root: pulumi.Input[CaRoot]
    """The root (`plugin` only)."""

    intermediate: pulumi.Input[CaIntermediate]
    """The given intermediate, with a given root (prod). With a generated root the intermediate
    is generated and signed by it."""

    intermediate_validity_days: pulumi.Input[int]
    """Lifetime of a generated intermediate. Rotate before it ends (docs/RUNBOOKS.md); an alert
    fires 30 days ahead."""


class ClusterSettings(TypedDict, total=False):
    """One entry of `istio-mesh:clusters`: a cluster of a multi-primary mesh."""

    name: Required[pulumi.Input[str]]
    """The cluster's name in the mesh (istiod's `global.multiCluster.clusterName`) and the prefix
    of its resources' Pulumi names (`east-istio`)."""

    context: Required[pulumi.Input[str]]
    """The kubeconfig context the stack reaches the cluster with; also its provider's
    `clusterIdentifier`."""

    network: Required[pulumi.Input[str]]
    """The cluster's network (`global.network`): clusters on different networks reach each
    other's pods through east-west gateways."""

    kubeconfig: pulumi.Input[str]
    """A kubeconfig for this cluster as the other clusters' istiod read it (a reader service
    account's token, as `istioctl create-remote-secret` makes it): secret config only. Without
    it, the other clusters do not discover this one's endpoints. A secret: pass it as a secret
    Output."""

    intermediate: pulumi.Input[CaIntermediate]
    """This cluster's intermediate CA under a given root (`ca.root.certificate`), its key as
    secret config: each cluster signs with its own, so a leaked key spoils one cluster only.
    With a generated root the stack generates one per cluster."""

    from_single_cluster: pulumi.Input[bool]
    """This cluster is the one the stack managed before it had `clusters` (with
    `kubernetes:context` this cluster's `context`): its resources keep their live objects,
    found under their one-cluster names and provider, instead of being deleted and created
    again under their new names. On one cluster at most; it may stay after the move."""


class IstioMeshArgs(TypedDict, total=False):
    """The whole `istio-mesh:*` config of a stack."""

    istio: pulumi.Input[IstioSettings]
    """The control plane: revisions, tags, dataplane, mesh-wide settings."""

    gateways: pulumi.Input[list[pulumi.Input[GatewaySettings]]]
    """Ingress and egress gateways."""

    namespaces: pulumi.Input[list[pulumi.Input[NamespaceSettings]]]
    """Application namespaces in the mesh."""

    services: pulumi.Input[list[pulumi.Input[ServiceConfig]]]
    """Service catalog: routes, subsets, resilience and authorization per service. After
    `parse_config`, the whole catalog: `istio-mesh:services`, then the entries of each file of
    `serviceFiles`, in the order listed."""

    service_files: pulumi.Input[list[pulumi.Input[str]]]
    """YAML files holding more of the catalog, each a list of `services`-shaped entries (a
    stack's config must stay under the 128 KiB the CLI can hand a program)."""

    observability: pulumi.Input[ObservabilitySettings]
    """Telemetry and add-ons."""

    external_hosts: pulumi.Input[list[pulumi.Input[ExternalHost]]]
    """Hosts outside the cluster the mesh may call: registered (ServiceEntry), and routed through
    the egress gateway when the stack has one."""

    promotion: pulumi.Input[PromotionSettings]
    """Promotion gate (prod)."""

    gateway_api: pulumi.Input[GatewayApiSettings]
    """The Gateway API's CRDs, for waypoints and `gateway-api` gateways."""

    ca: pulumi.Input[CaSettings]
    """The mesh's certificate authority (istiod's own, or a plug-in CA)."""

    clusters: pulumi.Input[list[pulumi.Input[ClusterSettings]]]
    """The clusters of a multi-primary mesh, each with the whole mesh; none: one cluster,
    `kubernetes:context`."""

    kubernetes_context: pulumi.Input[str]
    """`kubernetes:context`: the kubeconfig context of the target cluster."""
