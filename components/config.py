"""The stack config, parsed into typed models and validated before anything is declared.

Key names are the contract with users (BRIEF section 3): `istio-mesh:istio`,
`istio-mesh:gateways`, `istio-mesh:namespaces`, `istio-mesh:services`,
`istio-mesh:serviceFiles`, `istio-mesh:observability`, `istio-mesh:promotion`. Field
checks live on the models; checks that relate one part of the config to another live in
`_cross_check`. Every problem is collected with its config path and reported together by
`ConfigError`. Services kept in files (`serviceFiles`) are read by
`components.service_files` and validated here exactly like inline ones.
"""

from __future__ import annotations

import datetime
import json
import re
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

import pulumi.runtime.config
import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from components import naming, pki
from components.ambient import Placement, placement_problems
from components.errors import ConfigError, ConfigProblem
from components.service_config import (
    INT32_MAX,
    ServiceConfig,
    check_services,
    service_path,
)
from components.service_files import (
    FileEntry,
    ReadText,
    project_directory,
    read_service_files,
    read_utf8,
)

PROJECT = "istio-mesh"
DEFAULT_ISTIO_VERSION = "1.30.5"
DEFAULT_STABLE_TAG = "stable"

HELM_RELEASE_NAME_MAX = 53
"""Helm refuses longer release names."""

SYSTEM_NAMESPACES = frozenset({"kube-system", "kube-public", "kube-node-lease", "default"})


class Model(BaseModel):
    """Base of every config model: camelCase keys as written in YAML, unknown keys rejected."""

    model_config = ConfigDict(
        extra="forbid", populate_by_name=True, frozen=True, alias_generator=to_camel
    )


class Revision(Model):
    """One istiod Helm release, running one Istio version."""

    version: str
    """Exact Istio release, e.g. `1.30.5`; the revision name is derived from it (`1-30-5`)."""

    @field_validator("version")
    @classmethod
    def _exact_version(cls, value: str) -> str:
        if not naming.VERSION_PATTERN.fullmatch(value):
            raise ValueError(
                f"{value!r} is not an exact Istio version such as 1.30.5 (charts are pinned)"
            )
        return value

    compatibility_version: str | None = None
    """Keep an older minor's behaviour (`1.30`) in this revision until you opt in to the
    new defaults: istiod's `compatibilityVersion`. For a canary to a new minor; drop it
    once the release notes' behaviour changes are checked (docs/RUNBOOKS.md)."""

    @model_validator(mode="after")
    def _older_minor(self) -> Revision:
        wanted = self.compatibility_version
        if wanted is None:
            return self
        major, minor, _ = naming.version_key(self.version)
        match = _MINOR.fullmatch(wanted)
        if not match or (int(match[1]), int(match[2])) >= (major, minor):
            raise ValueError(
                f"compatibilityVersion {wanted!r} must be an older minor than {self.version} "
                f"(such as {major}.{minor - 1})"
            )
        return self

    @property
    def name(self) -> str:
        return naming.revision_name(self.version)


class IstioSettings(Model):
    """`istio-mesh:istio`: the control plane."""

    revisions: Annotated[list[Revision], Field(min_length=1)] = [
        Revision(version=DEFAULT_ISTIO_VERSION)
    ]
    """Control-plane revisions, one istiod release each. Two during a canary upgrade."""
    tags: dict[str, str] | None = None
    """Revision tag -> revision name. Default: `{stable: <defaultRevision>}`."""
    default_revision: str | None = None
    """Revision that owns the validation webhook and the `default` tag
    (`istio-injection=enabled` namespaces). Default: the first revision."""
    dataplane: Literal["sidecar", "ambient"] = "sidecar"
    """`sidecar` (Envoy per pod) or `ambient` (ztunnel per node, plus istio-cni)."""
    cni: bool = False
    """Install istio-cni in sidecar mode too (no privileged init containers).
    Ambient mode always has it."""
    high_availability: bool = False
    """Production profile: istiod autoscaleMin 2 (so its PDB renders), spread across zones
    and nodes, resource requests sized for production."""
    outbound_traffic_policy: Literal["ALLOW_ANY", "REGISTRY_ONLY"] = "ALLOW_ANY"
    """`REGISTRY_ONLY` blocks calls to hosts the mesh does not know (ServiceEntry needed)."""
    access_logs: bool = True
    """Envoy access logs to stdout."""
    trust_domain: str = "cluster.local"
    """SPIFFE trust domain of workload identities (`<trust domain>/ns/<ns>/sa/<sa>`)."""

    @field_validator("trust_domain")
    @classmethod
    def _spiffe_trust_domain(cls, value: str) -> str:
        # SPIFFE allows lower-case letters, digits, '.', '-' and '_'; an empty one
        # would make every principal `/ns/<ns>/sa/<sa>`, which no identity matches.
        if not _TRUST_DOMAIN.fullmatch(value):
            raise ValueError(
                f"{value!r} is not a SPIFFE trust domain (lower-case letters, digits, "
                "'.', '-' and '_', e.g. cluster.local)"
            )
        return value

    trust_domain_aliases: list[str] = []
    """Other trust domains whose identities count as this one's (mesh config
    `trustDomainAliases`): the old domain while workloads move to a new `trustDomain`
    (docs/RUNBOOKS.md), so policies naming either keep matching."""

    @field_validator("trust_domain_aliases")
    @classmethod
    def _alias_domains(cls, aliases: list[str]) -> list[str]:
        for alias in aliases:
            if not _TRUST_DOMAIN.fullmatch(alias):
                raise ValueError(f"{alias!r} is not a SPIFFE trust domain (e.g. old.example.com)")
        if len(set(aliases)) != len(aliases):
            raise ValueError("an alias is listed twice")
        return aliases

    @model_validator(mode="after")
    def _alias_is_not_the_domain(self) -> IstioSettings:
        if self.trust_domain in self.trust_domain_aliases:
            raise ValueError(
                f"trustDomainAliases lists the trust domain itself ({self.trust_domain})"
            )
        return self

    mesh_id: str | None = None
    """The mesh's ID (istiod's `global.meshID`), shared by every cluster of
    `istio-mesh:clusters`; required there, and only there."""

    @field_validator("mesh_id")
    @classmethod
    def _mesh_id(cls, value: str | None) -> str | None:
        return None if value is None else naming.dns_label(value)

    protect: bool = False
    """Protect what deleting would destroy the mesh with: the istio-system namespace,
    the base release (the CRDs, and with them every Istio resource), mesh and gateway
    namespaces. Set in prod."""
    chart_repository: str = naming.CHART_REPOSITORY
    """Where Istio's charts come from: Istio's repository (default), an internal mirror
    (`https://...`), or an OCI registry (`oci://.../charts`). The policy pack's
    `istio-helm-release-pinned` must allow it."""

    @field_validator("chart_repository")
    @classmethod
    def _repository_url(cls, value: str) -> str:
        if not _REPOSITORY_URL.fullmatch(value):
            raise ValueError(
                f"{value!r} is not a chart repository URL (https://host/path, or "
                "oci://registry/path; http:// only on a loopback address)"
            )
        return value.rstrip("/")

    hub: str = naming.IMAGE_HUB
    """Where istiod, the proxies (sidecars and gateways, injected from istiod's hub),
    istio-cni and ztunnel pull their images from: `global.hub` of every Istio chart. The
    released charts of 1.30 default to gcr.io/istio-release, which Istio retires in
    December 2026; a private mirror goes here."""

    @field_validator("hub")
    @classmethod
    def _current_hub(cls, value: str) -> str:
        value = value.rstrip("/")
        if value in naming.RETIRED_HUBS:
            raise ValueError(
                f"{value} is retired by Istio in December 2026: use {naming.IMAGE_HUB} "
                "or a mirror of it"
            )
        if not value or any(c.isspace() for c in value):
            raise ValueError(f"{value!r} is not an image registry path (e.g. {naming.IMAGE_HUB})")
        return value

    await_releases: bool = True
    """Wait for each Helm release's workloads to be ready before what depends on it
    (and roll a failed install back). `false` only where nothing can become ready, such
    as an API server without nodes (the e2e tier): ordering is then creation order."""

    @property
    def default_revision_name(self) -> str:
        return self.default_revision or self.revisions[0].name

    @property
    def default_version(self) -> str | None:
        """The default revision's Istio version; None while `defaultRevision` names no
        revision of the stack (a config error of its own)."""
        default = self.revision_by_name().get(self.default_revision_name)
        return default.version if default is not None else None

    @property
    def tag_map(self) -> dict[str, str]:
        """Tags as configured, or `stable` pointing at the default revision."""
        if self.tags is None:
            return {DEFAULT_STABLE_TAG: self.default_revision_name}
        return dict(self.tags)

    def revision_by_name(self) -> dict[str, Revision]:
        return {revision.name: revision for revision in self.revisions}

    def resolve(self, tag_or_revision: str) -> str | None:
        """The revision a tag or revision name designates; None when it designates none."""
        if tag_or_revision == naming.DEFAULT_TAG:
            return self.default_revision_name
        if tag_or_revision in self.revision_by_name():
            return tag_or_revision
        return self.tag_map.get(tag_or_revision)


class Replicas(Model):
    """Horizontal autoscaling bounds."""

    min: Annotated[int, Field(ge=1, le=INT32_MAX)] = 1
    """Fewest pods; at least 2 gives the gateway a PodDisruptionBudget."""
    max: Annotated[int, Field(ge=1, le=INT32_MAX)] = 3
    """Most pods under load."""


class ServerTls(Model):
    """TLS of an HTTPS server; the certificate lives in a Secret in the gateway namespace."""

    credential_name: Annotated[str, Field(min_length=1)]
    """Name of the `kubernetes.io/tls` Secret in the gateway's namespace."""
    mode: Literal["SIMPLE", "MUTUAL"] = "SIMPLE"
    """`MUTUAL` also requires client certificates."""


class Server(Model):
    """A set of hosts served over HTTPS on 443, with port 80 redirecting to HTTPS."""

    hosts: Annotated[list[str], Field(min_length=1)]
    """Fully qualified host names; wildcards (`*`) are refused."""
    tls: ServerTls
    """The certificate for these hosts."""

    @field_validator("hosts")
    @classmethod
    def _no_wildcards(cls, hosts: list[str]) -> list[str]:
        for host in hosts:
            if "*" in host:
                raise ValueError(f"wildcard host {host!r}: list the host names served")
            if "/" in host or not host or host != host.lower():
                raise ValueError(f"{host!r} is not a lower-case host name")
        if len(set(hosts)) != len(hosts):
            raise ValueError("hosts are listed twice")
        return hosts


class GatewaySettings(Model):
    """One entry of `istio-mesh:gateways`: a gateway Helm release in a namespace of its own."""

    name: str
    """Short name: release and namespace are `istio-<name>`, pods labeled `istio: <name>`."""
    kind: Literal["ingress", "egress"] = "ingress"
    """`egress` gateways are ClusterIP, for meshes with REGISTRY_ONLY outbound traffic."""
    api: Literal["istio", "gateway-api"] = "istio"
    """`istio`: the gateway Helm chart and an Istio `Gateway`. `gateway-api`: a Kubernetes
    Gateway API `Gateway` (class `istio`) that istiod deploys, with `HTTPRoute`s
    (ingress only)."""
    revision: str = DEFAULT_STABLE_TAG
    """Tag (preferred) or revision whose istiod injects the gateway pods."""
    service_type: Literal["LoadBalancer", "NodePort", "ClusterIP"] | None = None
    """Kubernetes Service type. Default: LoadBalancer (ingress), ClusterIP (egress)."""
    replicas: Replicas = Replicas()
    """Autoscaling bounds."""
    servers: list[Server] = []
    """Hosts served over HTTPS (ingress gateways)."""

    @field_validator("name")
    @classmethod
    def _release_name(cls, value: str) -> str:
        naming.dns_label(value)
        release = naming.gateway_release(value)
        # The release name is also the namespace's (63) and Helm's limit is 53.
        if len(release) > HELM_RELEASE_NAME_MAX:
            raise ValueError(
                f"{value!r} is too long: its release {release} would exceed Helm's "
                f"{HELM_RELEASE_NAME_MAX} characters (at most "
                f"{HELM_RELEASE_NAME_MAX - len(naming.gateway_release(''))} here)"
            )
        return value

    @property
    def effective_service_type(self) -> str:
        return self.service_type or ("LoadBalancer" if self.kind == "ingress" else "ClusterIP")


_LABEL_VALUE = re.compile(r"([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?")
"""A Kubernetes label value, and the name part of a label key (at most 63 characters)."""


_TRUST_DOMAIN = re.compile(r"[a-z0-9._-]+")
_MINOR = re.compile(r"(\d+)\.(\d+)")

_REPOSITORY_URL = re.compile(
    r"https://[^\s/]+(/\S*)?|oci://[^\s/]+/\S+|http://(127\.\d+\.\d+\.\d+|localhost|\[::1\])(:\d+)?(/\S*)?"
)
"""A Helm chart repository: https, OCI, or plain http on loopback (a test mirror)."""


def _label_value_ok(value: str) -> bool:
    return len(value) <= 63 and bool(_LABEL_VALUE.fullmatch(value))


class NamespaceSettings(Model):
    """One entry of `istio-mesh:namespaces`: an application namespace in the mesh."""

    name: str
    """Namespace name."""
    revision: str = DEFAULT_STABLE_TAG
    """Tag (preferred) or revision injecting its pods; `default` gives the classic
    `istio-injection=enabled` label. Ambient namespaces name a tag (or `default`): it
    chooses the control plane of their waypoint."""
    dataplane: Literal["sidecar", "ambient"] | None = None
    """Override the mesh's dataplane for this namespace."""
    waypoint: bool | None = None
    """Ambient namespaces: a waypoint proxy for L7 routing and authorization (HTTPRoutes,
    methods, paths, JWT). Default true; without one, ztunnel enforces L4 only."""
    labels: dict[str, str] = {}
    """Extra labels; the injection labels are managed and may not be set here."""
    allow_ingress_from: list[str] = []
    """Namespaces outside the mesh allowed through the NetworkPolicy (e.g. monitoring)."""

    _name = field_validator("name")(naming.dns_label)

    @field_validator("allow_ingress_from")
    @classmethod
    def _namespace_names(cls, namespaces: list[str]) -> list[str]:
        # Values of the NetworkPolicy's namespace selector: anything else is refused there.
        for namespace in namespaces:
            naming.dns_label(namespace)
        return namespaces

    @field_validator("labels")
    @classmethod
    def _no_injection_labels(cls, labels: dict[str, str]) -> dict[str, str]:
        managed = sorted(set(labels) & set(naming.MANAGED_NAMESPACE_LABELS))
        if managed:
            raise ValueError(
                f"label {managed[0]!r} is managed from `revision`/`dataplane`/`waypoint`; remove it"
            )
        # The API server refuses the Namespace otherwise, in the middle of `pulumi up`.
        for key, value in labels.items():
            prefix, slash, name = key.rpartition("/")
            prefix_ok = not slash or (len(prefix) <= 253 and naming.DNS_SUBDOMAIN.fullmatch(prefix))
            if not (prefix_ok and name and _label_value_ok(name)):
                raise ValueError(
                    f"{key!r} is not a Kubernetes label key ([prefix/]name: a name of at most "
                    "63 letters, digits, '-', '_' or '.', starting and ending alphanumeric)"
                )
            if not _label_value_ok(value):
                raise ValueError(
                    f"label {key}: {value!r} is not a Kubernetes label value (at most 63 "
                    "letters, digits, '-', '_' or '.', starting and ending alphanumeric)"
                )
        return labels


class TracingSettings(Model):
    """Where proxies send spans, and how many."""

    sampling_percent: Annotated[float, Field(ge=0, le=100)] = 1.0
    """Share of requests traced, 0-100 (dev 100, prod 1)."""
    provider: Literal["jaeger", "opentelemetry", "zipkin"] = "jaeger"
    """Protocol to the backend: OTLP for `jaeger` and `opentelemetry`, or Zipkin."""
    service: str | None = None
    """Backend host (FQDN); default: the Jaeger add-on's collector."""

    @field_validator("service")
    @classmethod
    def _host_name(cls, value: str | None) -> str | None:
        if value is not None and not naming.DNS_SUBDOMAIN.fullmatch(value):
            raise ValueError(f"{value!r} is not a host name (e.g. jaeger-collector.tracing.svc)")
        return value

    port: Annotated[int, Field(ge=1, le=65535)] | None = None
    """Backend port; default 4317 (OTLP/gRPC) or 9411 (Zipkin)."""


class AddonSettings(Model):
    """Add-ons from their upstream Helm charts."""

    prometheus: bool = False
    """Prometheus, scraping every proxy and istiod, with the mesh's alerting rules."""
    grafana: bool = False
    """Grafana with Istio's dashboards, reading the Prometheus add-on."""
    jaeger: bool = False
    """Jaeger, the default tracing backend (OTLP)."""
    kiali: bool = False
    """Kiali, the mesh's console (login: `kialiAuth`)."""


class NamespaceTelemetry(Model):
    """A namespace whose tracing sampling differs from the mesh's."""

    namespace: str
    """The namespace (one of `istio-mesh:namespaces`)."""
    sampling_percent: Annotated[float, Field(ge=0, le=100)]
    """Share of its requests traced, 0-100."""


class AlertSettings(Model):
    """Thresholds of the Prometheus alerting rules."""

    error_ratio: Annotated[float, Field(gt=0, le=1)] = 0.05
    """Share of 5xx responses per service that fires `IstioHigh5xxRatio`."""
    p99_latency_ms: Annotated[int, Field(ge=1, le=INT32_MAX)] = 1000
    """p99 latency per service that fires `IstioHighP99Latency`."""


class ObservabilitySettings(Model):
    """`istio-mesh:observability`: telemetry and add-ons.

    Tracing is on when there is a backend: the Jaeger add-on or `tracing.service`."""

    namespace: str = "observability"
    """Namespace of the add-ons."""
    tracing: TracingSettings = TracingSettings()
    """Tracing: sampling and backend."""
    addons: AddonSettings = AddonSettings()
    """Add-ons to install (all off by default)."""
    namespaces: list[NamespaceTelemetry] = []
    """Per-namespace sampling overrides."""
    alerts: AlertSettings = AlertSettings()
    """Thresholds of the alerting rules."""
    kiali_auth: Literal["anonymous", "token", "openid"] = "token"
    """Kiali login; `anonymous` only on a laptop cluster."""

    _namespace = field_validator("namespace")(naming.dns_label)

    @property
    def tracing_enabled(self) -> bool:
        has_backend = self.addons.jaeger or self.tracing.service is not None
        return has_backend and self.tracing.sampling_percent > 0


class ExternalPort(Model):
    """A port of an external host, and what speaks on it."""

    number: Annotated[int, Field(ge=1, le=65535)] = 443
    """Port number, 1-65535."""
    protocol: Literal["TLS", "HTTP"] = "TLS"
    """`TLS` (HTTPS and any TLS: routed by SNI, never decrypted) or `HTTP` (plain; only
    where no egress gateway routes it, since its servers never speak plain text)."""


class ExternalHost(Model):
    """One entry of `istio-mesh:externalHosts`: a host outside the cluster the mesh may
    call. Under REGISTRY_ONLY nothing else outside is reachable."""

    host: str
    """Fully qualified host name (`api.stripe.com`); no wildcard."""
    ports: Annotated[list[ExternalPort], Field(min_length=1)] = [ExternalPort()]
    """Ports and protocols; default 443/TLS."""
    namespaces: list[str] | None = None
    """Mesh namespaces whose workloads may call it; default: every mesh namespace."""

    @field_validator("host")
    @classmethod
    def _external_host(cls, value: str) -> str:
        if "*" in value:
            raise ValueError(f"wildcard host {value!r}: list the host names called")
        if len(value) > 253 or "." not in value or not naming.DNS_SUBDOMAIN.fullmatch(value):
            raise ValueError(f"{value!r} is not a fully qualified host name (api.example.com)")
        if value.endswith(".svc") or ".svc." in value or value.endswith(".local"):
            raise ValueError(f"{value!r} is inside the cluster: it needs no entry here")
        return value

    @field_validator("ports")
    @classmethod
    def _distinct_ports(cls, ports: list[ExternalPort]) -> list[ExternalPort]:
        if len({port.number for port in ports}) != len(ports):
            raise ValueError("a port number is listed twice")
        return ports


class GatewayApiSettings(Model):
    """`istio-mesh:gatewayApi`: the Kubernetes Gateway API's CRDs (standard channel)."""

    install: bool | None = None
    """Install the CRDs. Default: when the stack needs them (a waypoint or a `gateway-api`
    gateway); `false` where the cluster's owner installs them."""
    version: str | None = None
    """The Gateway API release, pinned. Default: the one the default revision's Istio
    release is built against (1.30: 1.5.1, 1.31: 1.6.0)."""
    source: str | None = None
    """Where the release's `standard-install.yaml` is read from: a URL or a file (an
    internal mirror). Default: the release on GitHub."""

    @field_validator("version")
    @classmethod
    def _exact_version(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not naming.VERSION_PATTERN.fullmatch(value.removeprefix("v")):
            raise ValueError(f"{value!r} is not an exact Gateway API release such as 1.5.1")
        return value.removeprefix("v")


class PromotionSettings(Model):
    """`istio-mesh:promotion`: the stack this one trails."""

    from_stack: Annotated[str, Field(min_length=1)]
    """The stack whose outputs list what it runs: `dev` (this project, this stack's
    organization), `project/dev`, or `organization/project/dev`."""

    @field_validator("from_stack")
    @classmethod
    def _stack_name(cls, value: str) -> str:
        parts = value.split("/")
        if len(parts) > 3 or not all(parts):
            raise ValueError(
                f"{value!r} is not a stack name "
                "(`dev`, `project/dev` or `organization/project/dev`)"
            )
        return value

    def qualified(self, organization: str, project: str) -> str:
        """`from_stack` as a StackReference names it: `organization/project/stack`, with
        what the stack left out taken from the running stack. On Pulumi Cloud the
        organization is the stack's own; on a self-managed backend it is `organization`."""
        parts = self.from_stack.split("/")
        return "/".join([organization, project][: 3 - len(parts)] + parts)


CA_KEY_COMMAND = (
    "pulumi config set --secret --path 'istio-mesh:ca.intermediate.key' < intermediate-key.pem"
)
"""How the intermediate's key gets into a stack: encrypted, never as plain text."""


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _check_ca_certificates(pem: str) -> str:
    """Each certificate of a root bundle is a self-signed CA, valid today."""
    certificates = pki.load_certificates(pem)
    for index, certificate in enumerate(certificates):
        which = f"certificate {index + 1} of {len(certificates)}"
        if not pki.is_ca(certificate):
            raise ValueError(f"{which} is not a CA certificate (basicConstraints CA:TRUE)")
        if not pki.issued_by(certificate, certificate):
            raise ValueError(f"{which} is not self-signed: a root signs itself")
        if (problem := pki.validity_problem(certificate, _now())) is not None:
            raise ValueError(f"{which} {problem}")
    return pem


class CaRoot(Model):
    """The mesh's trust anchor: generated (dev) or the organisation's (prod)."""

    generate: bool = False
    """Generate the root with pulumi-tls; its key lives in the stack's state (encrypted).
    For dev and test meshes, whose trust nobody outside shares."""
    certificate: str | None = None
    """The organisation's root certificate, PEM (public; its key stays offline). During a
    root rotation, both roots, one after the other: every proxy then trusts either."""
    validity_days: Annotated[int, Field(ge=1, le=36500)] = 3650
    """Lifetime of a generated root."""

    _certificate = field_validator("certificate")(
        lambda value: None if value is None else _check_ca_certificates(value)
    )

    @model_validator(mode="after")
    def _one_source(self) -> CaRoot:
        if self.generate == (self.certificate is not None):
            raise ValueError(
                "either generate: true (dev) or certificate: <PEM> (prod), not both or neither"
            )
        if not self.generate and "validity_days" in self.model_fields_set:
            raise ValueError("validityDays applies to a generated root only")
        return self


def _not_encrypted_config(value: Any) -> Any:
    # A stack file's `secure:` value reaches the program decrypted when the Pulumi CLI
    # runs it; read from the file as it is (`python -m mesh`), it is ciphertext.
    if isinstance(value, dict) and set(value) == {"secure"}:
        raise ValueError(
            "is encrypted (`secure:`): only the Pulumi CLI decrypts it (`pulumi preview`); "
            "`mesh render` and `mesh check` cannot"
        )
    return value


def _check_private_key(key: SecretStr) -> SecretStr:
    pki.load_private_key(key.get_secret_value())
    return key


class CaIntermediate(Model):
    """A given intermediate CA, issued by the organisation's root for this cluster."""

    # The key must not reach an error either: pydantic quotes the input otherwise.
    model_config = ConfigDict(hide_input_in_errors=True)

    certificate: str
    """The intermediate's certificate, PEM; then, if the root did not sign it directly,
    the certificates between it and the root, each followed by its issuer."""
    key: Annotated[SecretStr | None, BeforeValidator(_not_encrypted_config)] = None
    """The intermediate's private key, PEM, unencrypted: secret config only
    (`pulumi config set --secret --path ...`), kept a secret from there to the
    `cacerts` Secret."""

    @field_validator("certificate")
    @classmethod
    def _ca_chain(cls, value: str) -> str:
        chain = pki.load_certificates(value)
        for index, certificate in enumerate(chain):
            which = "the certificate" if index == 0 else f"certificate {index + 1}"
            if not pki.is_ca(certificate):
                raise ValueError(f"{which} is not a CA certificate (basicConstraints CA:TRUE)")
            if (problem := pki.validity_problem(certificate, _now())) is not None:
                raise ValueError(f"{which} {problem}")
        return value

    _key = field_validator("key")(lambda key: None if key is None else _check_private_key(key))


class CaSettings(Model):
    """`istio-mesh:ca`: who signs the workloads' certificates."""

    mode: Literal["istiod", "plugin"] = "istiod"
    """`istiod`: istiod's own self-signed root (Istio's default, fine for a trial).
    `plugin`: an intermediate under the mesh's root, in the `cacerts` Secret that
    istiod reads at start (Istio's plug-in CA)."""
    root: CaRoot | None = None
    """The root (`plugin` only)."""
    intermediate: CaIntermediate | None = None
    """The given intermediate, with a given root (prod). With a generated root the
    intermediate is generated and signed by it."""
    intermediate_validity_days: Annotated[int, Field(ge=1, le=3650)] = 365
    """Lifetime of a generated intermediate. Rotate before it ends (docs/RUNBOOKS.md);
    an alert fires 30 days ahead."""


def _check_ca(
    ca: CaSettings, key_is_secret: bool | None, clustered: bool = False
) -> list[ConfigProblem]:
    """How the parts of `istio-mesh:ca` fit together. `key_is_secret` says whether the
    CLI handed `istio-mesh:ca` over as secret config (None: not known, not checked).
    `clustered`: the stack has `istio-mesh:clusters`, whose entries give their own
    intermediates under a given root (`_check_clusters`)."""
    problems: list[ConfigProblem] = []

    def add(path: tuple[int | str, ...], message: str) -> None:
        problems.append(ConfigProblem(config_path(("ca", *path)), message))

    root, intermediate = ca.root, ca.intermediate
    if ca.mode == "istiod":
        for key, value in (("root", root), ("intermediate", intermediate)):
            if value is not None:
                add((key,), "applies to mode: plugin only (istiod signs with its own root)")
        return problems
    if root is None:
        add(("root",), "mode plugin needs a root: {generate: true} or {certificate: <PEM>}")
        return problems
    if root.generate:
        if intermediate is not None:
            add(
                ("intermediate",),
                "a generated root signs a generated intermediate: remove it, or give the "
                "root's certificate",
            )
        elif ca.intermediate_validity_days > root.validity_days:
            add(
                ("intermediateValidityDays",),
                f"{ca.intermediate_validity_days} days outlive the root "
                f"({root.validity_days} days)",
            )
        return problems
    assert root.certificate is not None  # CaRoot: generate or certificate
    if "intermediate_validity_days" in ca.model_fields_set:
        add(
            ("intermediateValidityDays",),
            "applies to a generated intermediate only: a given one lasts as its certificate says",
        )
    if clustered:
        if intermediate is not None:
            add(
                ("intermediate",),
                "with clusters, each cluster gives its own: move it to "
                "istio-mesh:clusters[<i>].intermediate",
            )
        return problems
    if intermediate is None:
        add(
            ("intermediate",),
            "a given root needs a given intermediate: {certificate: <PEM>, key: <secret>} "
            "(the root's key never comes near the stack)",
        )
        return problems
    return problems + _given_intermediate_problems(
        intermediate, root.certificate, key_is_secret, ("ca", "intermediate"), CA_KEY_COMMAND
    )


def _given_intermediate_problems(
    intermediate: CaIntermediate,
    root_certificate: str,
    key_is_secret: bool | None,
    at: tuple[int | str, ...],
    key_command: str,
) -> list[ConfigProblem]:
    """A given intermediate (at config path `at`) against the given root: the chain
    reaches the root, the key is there, is the certificate's, and is secret config
    (`key_command` sets it so)."""
    problems: list[ConfigProblem] = []

    def add(path: tuple[int | str, ...], message: str) -> None:
        problems.append(ConfigProblem(config_path((*at, *path)), message))

    chain = pki.load_certificates(intermediate.certificate)
    problem = pki.chain_problem(chain, pki.load_certificates(root_certificate))
    if problem is not None:
        add(("certificate",), problem)
    if intermediate.key is None:
        add(("key",), f"missing: set it as a secret: {key_command}")
        return problems
    private_key = pki.load_private_key(intermediate.key.get_secret_value())
    if not pki.same_public_key(chain[0], private_key):
        add(("key",), "is not the key of intermediate.certificate (their public keys differ)")
    if key_is_secret is False:
        add(
            ("key",),
            f"is plain text in the stack file: remove it and set it as a secret: {key_command}",
        )
    return problems


CLUSTERS_KUBECONFIG_COMMAND = (
    "pulumi config set --secret --path 'istio-mesh:clusters[<i>].kubeconfig' < <cluster>.kubeconfig"
)
"""How a cluster's kubeconfig gets into a stack: encrypted, never as plain text."""
CLUSTERS_CA_KEY_COMMAND = (
    "pulumi config set --secret --path 'istio-mesh:clusters[<i>].intermediate.key' "
    "< <cluster>-intermediate-key.pem"
)
"""How a cluster's intermediate key gets into a stack."""


def _check_kubeconfig(value: SecretStr) -> SecretStr:
    # Shape only, and never quoted: the message must not carry the token.
    try:
        parsed = yaml.safe_load(value.get_secret_value())
    except yaml.YAMLError:
        parsed = None
    if not isinstance(parsed, dict) or not parsed.get("clusters") or not parsed.get("users"):
        raise ValueError("is not a kubeconfig (YAML with clusters and users)")
    return value


class ClusterSettings(Model):
    """One entry of `istio-mesh:clusters`: a cluster of a multi-primary mesh."""

    # The kubeconfig must not reach an error: pydantic quotes the input otherwise.
    model_config = ConfigDict(hide_input_in_errors=True)

    name: str
    """The cluster's name in the mesh (istiod's `global.multiCluster.clusterName`) and
    the prefix of its resources' Pulumi names (`east-istio`)."""
    context: Annotated[str, Field(min_length=1)]
    """The kubeconfig context the stack reaches the cluster with; also its provider's
    `clusterIdentifier`."""
    network: str
    """The cluster's network (`global.network`): clusters on different networks reach
    each other's pods through east-west gateways."""
    kubeconfig: Annotated[SecretStr | None, BeforeValidator(_not_encrypted_config)] = None
    """A kubeconfig for this cluster as the other clusters' istiod read it (a reader
    service account's token, as `istioctl create-remote-secret` makes it): secret
    config only. Without it, the other clusters do not discover this one's endpoints."""
    intermediate: CaIntermediate | None = None
    """This cluster's intermediate CA under a given root (`ca.root.certificate`), its
    key as secret config: each cluster signs with its own, so a leaked key spoils one
    cluster only. With a generated root the stack generates one per cluster."""
    from_single_cluster: bool = False
    """This cluster is the one the stack managed before it had `clusters` (with
    `kubernetes:context` this cluster's `context`): its resources keep their live
    objects, found under their one-cluster names and provider, instead of being
    deleted and created again under their new names. On one cluster at most; it may
    stay after the move."""

    _name = field_validator("name")(lambda value: naming.dns_label(value))
    _kubeconfig = field_validator("kubeconfig")(
        lambda value: None if value is None else _check_kubeconfig(value)
    )

    @field_validator("network")
    @classmethod
    def _network_label(cls, value: str) -> str:
        # It becomes the value of topology.istio.io/network.
        if not value or not _label_value_ok(value):
            raise ValueError(f"{value!r} is not a valid label value (a network name like net-east)")
        return value


def _cluster_intermediate_problems(
    root: CaRoot, clusters: Sequence[ClusterSettings], clusters_secret: bool | None
) -> list[ConfigProblem]:
    """Each cluster's intermediate: given, its own and under the given root; none where
    the generated root signs them."""
    problems: list[ConfigProblem] = []
    first_with: dict[str, int] = {}
    for index, cluster in enumerate(clusters):
        at: tuple[int | str, ...] = ("clusters", index, "intermediate")
        given = cluster.intermediate
        if root.generate:
            if given is not None:
                problems.append(
                    ConfigProblem(
                        config_path(at),
                        "the generated root signs each cluster's intermediate: remove it, or "
                        "give the root's certificate (ca.root.certificate)",
                    )
                )
            continue
        assert root.certificate is not None  # CaRoot: generate or certificate
        if given is None:
            problems.append(
                ConfigProblem(
                    config_path(at),
                    "a given root needs each cluster's intermediate: "
                    "{certificate: <PEM>, key: <secret>}",
                )
            )
            continue
        leaf = pki.certificate_pem(pki.load_certificates(given.certificate)[:1])
        if leaf in first_with:
            problems.append(
                ConfigProblem(
                    config_path((*at, "certificate")),
                    f"is clusters[{first_with[leaf]}]'s intermediate: each cluster signs with "
                    "its own, so that a leaked key spoils one cluster only",
                )
            )
        first_with.setdefault(leaf, index)
        command = CLUSTERS_CA_KEY_COMMAND.replace("<i>", str(index)).replace(
            "<cluster>", cluster.name
        )
        problems += _given_intermediate_problems(
            given, root.certificate, clusters_secret, at, command
        )
    return problems


def _check_clusters(config: MeshConfig, clusters_secret: bool | None) -> list[ConfigProblem]:
    """What a multi-cluster mesh needs from the rest of the config. `clusters_secret`:
    whether the CLI handed `istio-mesh:clusters` over as secret config (None: unknown)."""
    problems: list[ConfigProblem] = []

    def add(path: tuple[int | str, ...], message: str) -> None:
        problems.append(ConfigProblem(config_path(path), message))

    clusters = config.clusters
    if not clusters:
        if config.istio.mesh_id is not None:
            add(("istio", "meshId"), "applies with istio-mesh:clusters only")
        return problems
    if config.istio.mesh_id is None:
        add(("istio", "meshId"), "required with istio-mesh:clusters: the mesh's ID (mesh1)")
    # One trust root: workloads of one cluster accept the others' certificates only if
    # both chain to the same root, which istiod's own self-signed roots never do.
    if config.ca.mode != "plugin":
        add(
            ("ca", "mode"),
            "clusters share one trust root: set mode: plugin (each istiod's own "
            "self-signed root is trusted by no other cluster)",
        )
    elif config.ca.root is not None:
        problems += _cluster_intermediate_problems(config.ca.root, clusters, clusters_secret)
    if config.ambient:
        add(
            ("clusters",),
            "ambient namespaces span one cluster only (Istio's ambient multi-network is alpha)",
        )
    if config.kubernetes_context:
        problems.append(
            ConfigProblem(
                "kubernetes:context",
                "each cluster names its own context (istio-mesh:clusters[].context): remove it",
            )
        )
    names: dict[str, int] = {}
    contexts: dict[str, int] = {}
    adopting = [index for index, cluster in enumerate(clusters) if cluster.from_single_cluster]
    for index in adopting[1:]:
        add(
            ("clusters", index, "fromSingleCluster"),
            f"clusters[{adopting[0]}] is already the stack's former single cluster: "
            "one cluster's resources can take over the one-cluster stack's",
        )
    for index, cluster in enumerate(clusters):
        if cluster.name in names:
            add(
                ("clusters", index, "name"),
                f"{cluster.name!r} is already clusters[{names[cluster.name]}]",
            )
        names.setdefault(cluster.name, index)
        if cluster.context in contexts:
            add(
                ("clusters", index, "context"),
                f"{cluster.context!r} is already the context of "
                f"clusters[{contexts[cluster.context]}]",
            )
        contexts.setdefault(cluster.context, index)
        if cluster.name in naming.SHARED_RESOURCE_NAMES:
            add(
                ("clusters", index, "name"),
                f"{cluster.name!r} is the name of a resource the clusters share",
            )
    # Resource names are `<cluster>-<name>`: clusters `east` and `east-gateway` would
    # both own `east-gateway-istio` (east's gateway `istio`, east-gateway's control plane).
    for index, cluster in enumerate(clusters):
        for other in names:
            if cluster.name.startswith(f"{other}-"):
                add(
                    ("clusters", index, "name"),
                    f"{cluster.name!r} starts with cluster {other!r}'s prefix {other}-: their "
                    "resource names could collide",
                )
    if len({cluster.network for cluster in clusters}) > 1:
        for index, gateway in enumerate(config.gateways):
            if gateway.name == naming.EAST_WEST_GATEWAY:
                add(
                    ("gateways", index, "name"),
                    f"{gateway.name!r} is the east-west gateway of a multi-network mesh",
                )
    if clusters_secret is False:
        for index, cluster in enumerate(clusters):
            if cluster.kubeconfig is not None:
                add(
                    ("clusters", index, "kubeconfig"),
                    "is plain text in the stack file: remove it and set it as a secret: "
                    + CLUSTERS_KUBECONFIG_COMMAND.replace("<i>", str(index)),
                )
    return problems


def _empty_is_unset(value: Any) -> Any:
    # Pulumi.yaml declares `{}` as the key's default (a declared key without one would be
    # required in every stack), and the CLI hands that to each stack that omits the key.
    return None if value == {} else value


def _a_list_of_paths(value: Any) -> Any:
    # `serviceFiles: services/shop.yaml` is the likely slip; say how to write it.
    if isinstance(value, str):
        raise ValueError(f"must be a list of file paths: write [{value}]")
    return value


ServiceFileList = Annotated[
    list[Annotated[str, Field(min_length=1)]], BeforeValidator(_a_list_of_paths)
]
"""Paths of YAML files of service entries; relative ones from the project directory."""


class MeshConfig(Model):
    """The whole `istio-mesh:*` config of a stack."""

    istio: IstioSettings = IstioSettings()
    """The control plane: revisions, tags, dataplane, mesh-wide settings."""
    gateways: list[GatewaySettings] = []
    """Ingress and egress gateways."""
    namespaces: list[NamespaceSettings] = []
    """Application namespaces in the mesh."""
    services: list[ServiceConfig] = []
    """Service catalog: routes, subsets, resilience and authorization per service. After
    `parse_config`, the whole catalog: `istio-mesh:services`, then the entries of each
    file of `serviceFiles`, in the order listed."""
    service_files: ServiceFileList = []
    """YAML files holding more of the catalog, each a list of `services`-shaped entries
    (a stack's config must stay under the 128 KiB the CLI can hand a program)."""
    observability: ObservabilitySettings = ObservabilitySettings()
    """Telemetry and add-ons."""
    external_hosts: list[ExternalHost] = []
    """Hosts outside the cluster the mesh may call: registered (ServiceEntry), and routed
    through the egress gateway when the stack has one."""
    promotion: Annotated[PromotionSettings | None, BeforeValidator(_empty_is_unset)] = None
    """Promotion gate (prod)."""
    gateway_api: GatewayApiSettings = GatewayApiSettings()
    """The Gateway API's CRDs, for waypoints and `gateway-api` gateways."""
    ca: CaSettings = CaSettings()
    """The mesh's certificate authority (istiod's own, or a plug-in CA)."""
    clusters: list[ClusterSettings] = []
    """The clusters of a multi-primary mesh, each with the whole mesh; none: one
    cluster, `kubernetes:context`."""

    @property
    def multi_network(self) -> bool:
        """Whether clusters sit on different networks (east-west gateways needed)."""
        return len({cluster.network for cluster in self.clusters}) > 1

    kubernetes_context: str | None = Field(default=None, exclude=True)
    """`kubernetes:context`: the kubeconfig context of the target cluster."""

    def mesh_dataplane(self, namespace: NamespaceSettings) -> str:
        return namespace.dataplane or self.istio.dataplane

    def has_waypoint(self, namespace: NamespaceSettings) -> bool:
        """Ambient namespaces have a waypoint unless they say `waypoint: false`."""
        ambient = self.mesh_dataplane(namespace) == "ambient"
        return ambient and namespace.waypoint is not False

    @property
    def ambient(self) -> bool:
        """Whether any namespace is ambient: the control plane then needs istio-cni,
        ztunnel and istiod's ambient profile, whatever the mesh-wide dataplane says."""
        return self.istio.dataplane == "ambient" or any(
            self.mesh_dataplane(namespace) == "ambient" for namespace in self.namespaces
        )

    @property
    def gateway_api_gateways(self) -> list[str]:
        """The gateways that are Gateway API `Gateway`s (`api: gateway-api`)."""
        return [gateway.name for gateway in self.gateways if gateway.api == "gateway-api"]

    @property
    def needs_gateway_api(self) -> bool:
        """Whether anything declared is a Gateway API object (waypoints, gateways)."""
        return bool(self.gateway_api_gateways) or any(
            self.has_waypoint(namespace) for namespace in self.namespaces
        )

    @property
    def gateway_api_version(self) -> str | None:
        """The pinned Gateway API release: configured, or the default revision's."""
        if self.gateway_api.version is not None:
            return self.gateway_api.version
        default = self.istio.default_version
        if default is None:
            return None
        return naming.GATEWAY_API_FOR_ISTIO.get(naming.version_key(default)[:2])

    @property
    def installs_gateway_api(self) -> bool:
        if self.gateway_api.install is None:
            return self.needs_gateway_api
        return self.gateway_api.install


CONFIG_KEYS = tuple(
    field.alias or name
    for name, field in MeshConfig.model_fields.items()
    if name != "kubernetes_context"
)
"""Keys as written after `istio-mesh:` (camelCase)."""


def location_suffix(loc: Sequence[int | str]) -> str:
    """`(0, 'replicas', 'min')` -> `[0].replicas.min`."""
    return "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in loc)


def config_path(loc: tuple[int | str, ...]) -> str:
    """`('gateways', 0, 'replicas', 'min')` -> `istio-mesh:gateways[0].replicas.min`."""
    path = f"{PROJECT}:{loc[0]}" if loc else PROJECT
    return path + location_suffix(loc[1:])


def _problems_from(error: ValidationError, entry_path: str | None = None) -> list[ConfigProblem]:
    """The problems of a failed validation, at their config paths. `entry_path` is where
    the validated object is when it is not the whole config (an entry of a service file)."""
    problems = []
    for item in error.errors():
        loc = tuple(part for part in item["loc"] if not str(part).startswith("function-"))
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = "unknown key"
        path = config_path(loc) if entry_path is None else entry_path + location_suffix(loc)
        problems.append(ConfigProblem(path, message))
    return problems


def _file_services(
    entries: Sequence[FileEntry],
) -> tuple[list[ServiceConfig], list[ConfigProblem]]:
    """The entries of the service files as `ServiceConfig`s, validated exactly like inline
    `istio-mesh:services` items; or their problems, at `<entry path>.<field>`."""
    services, problems = [], []
    for entry in entries:
        try:
            services.append(ServiceConfig.model_validate(entry.raw))
        except ValidationError as error:
            problems += _problems_from(error, entry.path)
    return services, problems


def _cross_check(config: MeshConfig, service_paths: Sequence[str]) -> list[ConfigProblem]:
    """Rules relating parts of the config to each other. `service_paths` says where each
    of `config.services` is written (inline or in a file), for the messages."""
    problems: list[ConfigProblem] = []
    istio = config.istio

    def add(path: tuple[int | str, ...], message: str) -> None:
        problems.append(ConfigProblem(config_path(path), message))

    revisions = istio.revision_by_name()
    for index, revision in enumerate(istio.revisions):
        if [r.name for r in istio.revisions].index(revision.name) != index:
            add(("istio", "revisions", index, "version"), f"{revision.version} is listed twice")
    known = ", ".join(sorted(revisions))
    if istio.default_revision is not None and istio.default_revision not in revisions:
        add(
            ("istio", "defaultRevision"),
            f"{istio.default_revision!r} is not a revision of this stack (revisions: {known})",
        )
    for tag, target in (istio.tags or {}).items():
        if tag == naming.DEFAULT_TAG:
            add(
                ("istio", "tags", tag),
                "the `default` tag is reserved: it follows defaultRevision",
            )
        elif not naming.DNS_LABEL.fullmatch(tag):
            add(("istio", "tags", tag), f"{tag!r} is not a valid tag name")
        if tag in revisions:
            add(("istio", "tags", tag), "a tag may not be named like a revision")
        if target not in revisions:
            add(
                ("istio", "tags", tag),
                f"points at {target!r}, which is not a revision of this stack (revisions: {known})",
            )

    choices = f"a tag ({', '.join(sorted(istio.tag_map))}), a revision ({known}) or `default`"
    taken: dict[str, tuple[int | str, ...]] = {naming.ISTIO_SYSTEM: ("istio",)}
    taken |= {system: () for system in SYSTEM_NAMESPACES}

    def claim(namespace: str, path: tuple[int | str, ...]) -> None:
        owner = taken.get(namespace)
        if owner is None:
            taken[namespace] = path
            return
        where = f"by {config_path(owner)}" if owner else "by Kubernetes itself"
        add(path, f"namespace {namespace!r} is already used {where}")

    for index, gateway in enumerate(config.gateways):
        if istio.resolve(gateway.revision) is None:
            add(("gateways", index, "revision"), f"{gateway.revision!r} is not {choices}")
        claim(naming.gateway_namespace(gateway.name), ("gateways", index, "name"))
        if gateway.replicas.min > gateway.replicas.max:
            add(("gateways", index, "replicas"), "min is greater than max")
        if gateway.kind == "egress" and gateway.servers:
            add(("gateways", index, "servers"), "egress gateways serve no inbound hosts")
        if gateway.kind == "ingress" and not gateway.servers:
            add(("gateways", index, "servers"), "an ingress gateway needs at least one server")
    served: dict[str, int] = {}
    for index, gateway in enumerate(config.gateways):
        for server_index, server in enumerate(gateway.servers):
            for host in server.hosts:
                if host in served and served[host] != index:
                    add(
                        ("gateways", index, "servers", server_index, "hosts"),
                        f"{host} is already served by gateway {config.gateways[served[host]].name}",
                    )
                served.setdefault(host, index)

    observability = config.observability
    if observability.addons.kiali and not observability.addons.prometheus:
        add(("observability", "addons", "kiali"), "Kiali needs the prometheus add-on")
    if observability.addons.grafana and not observability.addons.prometheus:
        add(("observability", "addons", "grafana"), "Grafana needs the prometheus add-on")
    if any(observability.addons.model_dump().values()):
        claim(observability.namespace, ("observability", "namespace"))
    app_names = {app.name for app in config.namespaces}
    overridden: dict[str, int] = {}
    for index, override in enumerate(observability.namespaces):
        if override.namespace not in app_names:
            add(
                ("observability", "namespaces", index, "namespace"),
                f"{override.namespace!r} is not a namespace of istio-mesh:namespaces",
            )
        # One Telemetry `namespace-default` per namespace: a second would be the same object.
        if override.namespace in overridden:
            first = config_path(("observability", "namespaces", overridden[override.namespace]))
            add(
                ("observability", "namespaces", index, "namespace"),
                f"{override.namespace!r} is already overridden by {first}",
            )
        overridden.setdefault(override.namespace, index)

    if istio.protect and not config.kubernetes_context and not config.clusters:
        add(
            ("istio", "protect"),
            "a protected mesh must name its cluster: set kubernetes:context, so the stack "
            "never lands on whatever cluster the kubeconfig points at",
        )
    egress_gateways = [g.name for g in config.gateways if g.kind == "egress"]
    if len(egress_gateways) > 1:
        add(("gateways",), f"at most one egress gateway: {', '.join(egress_gateways)}")
    for index, external in enumerate(config.external_hosts):
        for port_index, port in enumerate(external.ports):
            if egress_gateways and port.protocol == "HTTP":
                # The gateway would serve plain HTTP, which gateway-server-tls refuses.
                add(
                    ("externalHosts", index, "ports", port_index, "protocol"),
                    "plain HTTP is not routed through the egress gateway (its servers "
                    "speak TLS only); call the host over TLS",
                )
    seen_hosts: dict[str, int] = {}
    for index, external in enumerate(config.external_hosts):
        if external.host in seen_hosts:
            add(
                ("externalHosts", index, "host"),
                f"{external.host} is already listed at externalHosts[{seen_hosts[external.host]}]",
            )
        seen_hosts.setdefault(external.host, index)
        for caller in external.namespaces or []:
            if caller not in app_names:
                add(
                    ("externalHosts", index, "namespaces"),
                    f"{caller!r} is not a namespace of istio-mesh:namespaces",
                )
    for index, app in enumerate(config.namespaces):
        claim(app.name, ("namespaces", index, "name"))
        if istio.resolve(app.revision) is None:
            add(("namespaces", index, "revision"), f"{app.revision!r} is not {choices}")
        elif config.mesh_dataplane(app) == "ambient" and app.revision in revisions:
            add(
                ("namespaces", index, "revision"),
                f"an ambient namespace names a tag ({', '.join(sorted(istio.tag_map))}) or "
                f"`default`: the injector of revision {app.revision} would put sidecars in "
                "its pods (the tags' injectors skip ambient namespaces)",
            )
        if app.waypoint is not None and config.mesh_dataplane(app) == "sidecar":
            add(
                ("namespaces", index, "waypoint"),
                "waypoints serve ambient namespaces; this one runs sidecars",
            )
    for index, gateway in enumerate(config.gateways):
        if gateway.api != "gateway-api":
            continue
        if gateway.kind == "egress":
            add(("gateways", index, "api"), "egress gateways use the istio API")
        for server_index, server in enumerate(gateway.servers):
            if server.tls.mode == "MUTUAL":
                add(
                    ("gateways", index, "servers", server_index, "tls", "mode"),
                    "client certificates (MUTUAL) are served by `api: istio` gateways only",
                )
    if config.installs_gateway_api and config.gateway_api_version is None:
        add(
            ("gatewayApi", "version"),
            f"no known Gateway API release for Istio {istio.default_version}: set it",
        )
    placements = service_placements(config)
    gateway_apis = config.gateway_api_gateways
    problems += check_services(
        config.services,
        namespaces=app_names,
        gateway_hosts={
            gateway.name: [host for server in gateway.servers for host in server.hosts]
            for gateway in config.gateways
        },
        paths=service_paths,
    )
    for service, path in zip(config.services, service_paths, strict=True):
        placement = placements.get(service.namespace)
        if placement is not None:
            problems += placement_problems(service, path, placement.of(service, gateway_apis))
    return problems


def service_placements(config: MeshConfig) -> dict[str, Placement]:
    """How each namespace carries its services' traffic (ambient, waypoint)."""
    return {
        namespace.name: Placement(
            ambient=config.mesh_dataplane(namespace) == "ambient",
            waypoint=config.has_waypoint(namespace),
        )
        for namespace in config.namespaces
    }


def parse_config(
    raw: Mapping[str, Any],
    root: Path | None = None,
    read_text: ReadText = read_utf8,
    secret_keys: Collection[str] | None = None,
) -> MeshConfig:
    """Validate the raw `istio-mesh:*` values (key without the project prefix -> value),
    and the service files `serviceFiles` lists.

    `root` is the directory relative `serviceFiles` resolve against (default: the
    project directory, `service_files.project_directory`); `read_text` reads a file.
    Raises `ConfigError` listing every problem found; returns the typed config otherwise,
    whose `services` are the inline ones followed by those of the files. `secret_keys`:
    the config keys the CLI marked secret (a secret is refused in plain text), when known.
    """
    problems = [
        ConfigProblem(config_path((key,)), f"unknown key (known: {', '.join(CONFIG_KEYS)})")
        for key in raw
        if key not in CONFIG_KEYS and key != "kubernetes_context"
    ]
    known = {key: value for key, value in raw.items() if key in CONFIG_KEYS}
    files = read_service_files(known.get("serviceFiles"), root or project_directory(), read_text)
    file_services, entry_problems = _file_services(files.entries)
    # Like a field problem inline, a problem in a file stops the run before the
    # cross-checks, which need every entry.
    field_problems = files.problems + entry_problems
    try:
        inline = MeshConfig.model_validate(
            {**known, "kubernetes_context": raw.get("kubernetes_context")}
        )
    except ValidationError as error:
        raise ConfigError(sorted(problems + field_problems + _problems_from(error))) from None
    if field_problems:
        raise ConfigError(sorted(problems + field_problems))
    config = inline.model_copy(update={"services": [*inline.services, *file_services]})
    service_paths = [service_path(index) for index in range(len(inline.services))]
    service_paths += [entry.path for entry in files.entries]
    problems += _cross_check(config, service_paths)
    ca_secret = None if secret_keys is None else f"{PROJECT}:ca" in secret_keys
    problems += _check_ca(config.ca, key_is_secret=ca_secret, clustered=bool(config.clusters))
    clusters_secret = None if secret_keys is None else f"{PROJECT}:clusters" in secret_keys
    problems += _check_clusters(config, clusters_secret)
    if problems:
        raise ConfigError(problems)
    return config


def raw_config_from_strings(values: Mapping[str, str]) -> dict[str, Any]:
    """The `istio-mesh:*` entries of a Pulumi config map, keys without the project prefix.

    Pulumi hands structured values to the program as JSON text; a value that is not JSON
    is a plain string. `kubernetes:context` is carried along as `kubernetes_context`.
    """
    raw: dict[str, Any] = {}
    for full_key, text in values.items():
        namespace, _, key = full_key.partition(":")
        if full_key == "kubernetes:context":
            raw["kubernetes_context"] = text
        elif namespace == PROJECT:
            try:
                raw[key] = json.loads(text)
            except ValueError:
                raw[key] = text
    return raw


def load_stack_config() -> MeshConfig:
    """Parse and validate the running stack's config; raises `ConfigError`.

    Reads every config key of the stack (not only the known ones) so that a misspelt
    key such as `istio-mesh:gateway` is reported instead of silently ignored.
    """
    values = pulumi.runtime.config.CONFIG.get()
    return parse_config(
        raw_config_from_strings(values),
        secret_keys=[key for key in values if pulumi.runtime.config.is_config_secret(key)],
    )
