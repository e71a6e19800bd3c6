"""The mesh's plug-in certificate authority (`istio-mesh:ca`, `mode: plugin`).

Istio's plug-in CA: istiod signs workload certificates with an intermediate CA it reads
from the `cacerts` Secret in `istio-system` (`ca-cert.pem`, `ca-key.pem`,
`root-cert.pem`, `cert-chain.pem`), instead of the self-signed root it makes for itself,
which Istio advises against beyond a trial. One root for the mesh; one intermediate per
cluster under it (multi-cluster meshes trust each other through the shared root).

- `MeshCertificateAuthority` is the root: generated with pulumi-tls (dev: its key lives
  encrypted in the stack's state) or the organisation's certificate (prod: its key
  never comes near the stack).
- `IstioCaCerts` is one cluster's intermediate and its `cacerts` Secret: generated and
  signed by a generated root, or given (certificate in config, key in secret config).

Builders (`cacerts_data`, `cert_chain`, `given_cacerts`, ...) are pure; the Secret's
data is a Pulumi secret from end to end.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_tls as tls

from components import naming, pki
from components.config import CaIntermediate, CaSettings
from components.k8s import Manifest, child_options, register_manifest

CACERTS_SECRET = "cacerts"
"""The Secret istiod mounts at /etc/cacerts when it exists (the istiod chart's volume)."""

CA_KEY_USAGES = ["cert_signing", "crl_signing", "digital_signature", "key_encipherment"]
"""Key usages of the root and the intermediates (Istio's plug-in CA certificates)."""

KEY_ALGORITHM, KEY_CURVE = "ECDSA", "P256"
"""The CA keys pulumi-tls generates: ECDSA P-256, which istiod signs with as it does
with RSA (`ParsePemEncodedKey`), at a fraction of RSA 4096's size and cost."""

ROOT_SUBJECT = tls.SelfSignedCertSubjectArgs(organization="Istio", common_name="Root CA")
INTERMEDIATE_SUBJECT = tls.CertRequestSubjectArgs(
    organization="Istio", common_name="Intermediate CA"
)
"""Subjects as Istio's own certificate tooling writes them (tools/certs)."""


def _ca_key(name: str, opts: pulumi.ResourceOptions) -> tls.PrivateKey:
    return tls.PrivateKey(name, algorithm=KEY_ALGORITHM, ecdsa_curve=KEY_CURVE, opts=opts)


HOURS_PER_DAY = 24


def cert_chain(ca_chain_pem: str, root_pem: str) -> str:
    """`cert-chain.pem`: the intermediate, the certificates between it and the root, then
    the root that signed the last of them (of a bundle, the one that did)."""
    chain = pki.load_certificates(ca_chain_pem)
    roots = [root for root in pki.load_certificates(root_pem) if pki.issued_by(chain[-1], root)]
    if not roots:
        raise ValueError("the intermediate is not signed by any certificate of the root bundle")
    return ca_chain_pem.rstrip("\n") + "\n" + pki.certificate_pem(roots[:1])


def cacerts_data(ca_cert: str, ca_key: str, root_cert: str, chain: str) -> dict[str, str]:
    """The `cacerts` Secret's files, as istiod reads them: its signing certificate and
    key, the roots it tells workloads to trust, and the chain it hands out with every
    certificate it signs."""
    return {
        "ca-cert.pem": ca_cert,
        "ca-key.pem": ca_key,
        "root-cert.pem": root_cert,
        "cert-chain.pem": chain,
    }


def cacerts_secret(data: Any) -> Manifest:
    """The `cacerts` Secret (`data`: `cacerts_data`, plain or an Output)."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": CACERTS_SECRET, "namespace": naming.ISTIO_SYSTEM},
        "type": "Opaque",
        "stringData": data,
    }


def root_not_after(root_pem: str) -> str:
    """When trust in a root bundle starts to break: the earliest expiry among its roots
    (during a root rotation, the old root's)."""
    return min(pki.not_after(root) for root in pki.load_certificates(root_pem))


@dataclass(frozen=True)
class GivenIntermediate:
    """A given intermediate's `cacerts` files, its key apart (a secret)."""

    ca_cert: str
    root_cert: str
    chain: str
    not_after: str


def given_intermediate(root_cert: str, intermediate: CaIntermediate) -> GivenIntermediate:
    """The files of a given root and intermediate (validated by the config)."""
    given = intermediate.certificate
    first = pki.load_certificates(given)[0]
    return GivenIntermediate(
        ca_cert=pki.certificate_pem([first]),
        root_cert=root_cert,
        chain=cert_chain(given, root_cert),
        not_after=pki.not_after(first),
    )


def hours(days: int) -> int:
    return days * HOURS_PER_DAY


RENEWAL_DAYS = 30
"""A generated intermediate is re-issued this long before it expires; the alert on
istiod's `citadel_server_cert_chain_expiry_timestamp` fires at the same mark."""


def renewal_days(validity_days: int) -> int:
    """How long before its expiry a generated intermediate is re-issued: `RENEWAL_DAYS`,
    or half the lifetime of a short one (else every `pulumi up` would re-issue it)."""
    return min(RENEWAL_DAYS, validity_days // 2)


@dataclass(frozen=True)
class CertificateAuthorityArgs:
    """Arguments of `MeshCertificateAuthority`."""

    settings: CaSettings
    """`istio-mesh:ca`, validated, `mode: plugin`."""
    protect: bool = False
    """Protect the generated root: replacing its key would leave every proxy trusting a
    root that no longer signs anything (prod)."""


class MeshCertificateAuthority(pulumi.ComponentResource):
    """The mesh's root CA: generated with pulumi-tls, or the organisation's certificate.

    `root_cert` is `root-cert.pem` (public), `not_after` its expiry (RFC 3339).
    `intermediate` issues one cluster's intermediate and its `cacerts` Secret.
    """

    root_cert: pulumi.Output[str]
    not_after: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        args: CertificateAuthorityArgs,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("istio-mesh:ca:MeshCertificateAuthority", name, None, opts)
        self._name = name
        self._args = args
        root = args.settings.root
        assert args.settings.mode == "plugin"
        assert root is not None
        self._root_key: pulumi.Output[str] | None = None
        if root.generate:
            options = pulumi.ResourceOptions(
                parent=self, protect=args.protect, retain_on_delete=args.protect or None
            )
            key = _ca_key(f"{name}-root-key", options)
            certificate = tls.SelfSignedCert(
                f"{name}-root",
                private_key_pem=key.private_key_pem,
                subject=ROOT_SUBJECT,
                validity_period_hours=hours(root.validity_days),
                is_ca_certificate=True,
                allowed_uses=CA_KEY_USAGES,
                set_subject_key_id=True,
                opts=options,
            )
            self._root_key = pulumi.Output.secret(key.private_key_pem)
            self.root_cert = certificate.cert_pem
            self.not_after = certificate.validity_end_time
        else:
            assert root.certificate is not None
            self.root_cert = pulumi.Output.from_input(root.certificate)
            self.not_after = pulumi.Output.from_input(root_not_after(root.certificate))
        self.register_outputs({"notAfter": self.not_after})

    def intermediate(
        self,
        name: str,
        opts: pulumi.ResourceOptions | None = None,
        given: CaIntermediate | None = None,
    ) -> IstioCaCerts:
        """One cluster's intermediate and `cacerts` Secret (`opts`: that cluster's
        provider, and what the Secret waits for: its istio-system namespace). `given`:
        that cluster's own intermediate under a given root (`clusters[].intermediate`);
        by default `ca.intermediate`, or one the generated root signs."""
        return IstioCaCerts(
            name,
            IstioCaCertsArgs(
                settings=self._args.settings,
                root_cert=self.root_cert,
                root_key=self._root_key,
                protect=self._args.protect,
                given=given or self._args.settings.intermediate,
            ),
            opts,
        )


@dataclass(frozen=True)
class IstioCaCertsArgs:
    """Arguments of `IstioCaCerts`."""

    settings: CaSettings
    """`istio-mesh:ca`, validated, `mode: plugin`."""
    root_cert: pulumi.Input[str]
    """`root-cert.pem`: the root (bundle) workloads trust."""
    root_key: pulumi.Input[str] | None = None
    """The generated root's key (a secret), which signs a generated intermediate; None
    for a given root, whose intermediate is given."""
    protect: bool = False
    """Protect the Secret: without it a restarted istiod signs with a self-signed root
    of its own, which no other proxy trusts."""
    given: CaIntermediate | None = None
    """The given intermediate under a given root (certificate, and its key as a
    secret); None when the generated root signs one."""


class IstioCaCerts(pulumi.ComponentResource):
    """One cluster's intermediate CA and the `cacerts` Secret istiod signs with.

    Generated: an ECDSA key, a certificate request, and the root's signature on it
    (CA, path length 0, `intermediateValidityDays`). Given: the certificate from config
    and its key from secret config. `secret` is what every istiod must wait for;
    `not_after` is the intermediate's expiry (RFC 3339).
    """

    secret: pulumi.Resource
    not_after: pulumi.Output[str]

    def __init__(
        self, name: str, args: IstioCaCertsArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("istio-mesh:ca:IstioCaCerts", name, None, opts)
        settings = args.settings
        child = pulumi.ResourceOptions(parent=self)
        if args.root_key is not None:
            key = _ca_key(f"{name}-key", child)
            request = tls.CertRequest(
                f"{name}-request",
                private_key_pem=key.private_key_pem,
                subject=INTERMEDIATE_SUBJECT,
                opts=child,
            )
            certificate = tls.LocallySignedCert(
                f"{name}-certificate",
                cert_request_pem=request.cert_request_pem,
                ca_private_key_pem=args.root_key,
                ca_cert_pem=args.root_cert,
                validity_period_hours=hours(settings.intermediate_validity_days),
                # In its last 30 days (when the expiry alert fires) the next `pulumi up`
                # re-issues it: the provider plans a replacement once it is due.
                early_renewal_hours=hours(renewal_days(settings.intermediate_validity_days)),
                is_ca_certificate=True,
                # Istio's intermediates sign workload certificates, never another CA.
                max_path_length=0,
                allowed_uses=CA_KEY_USAGES,
                set_subject_key_id=True,
                opts=child,
            )
            data: pulumi.Input[dict[str, str]] = pulumi.Output.all(
                certificate.cert_pem, key.private_key_pem, args.root_cert
            ).apply(lambda files: cacerts_data(files[0], files[1], files[2], files[0] + files[2]))
            self.not_after = certificate.validity_end_time
        else:
            root = settings.root
            assert root is not None
            assert root.certificate is not None
            assert args.given is not None
            assert args.given.key is not None
            given = given_intermediate(root.certificate, args.given)
            secret_key = args.given.key.get_secret_value()
            data = pulumi.Output.secret(secret_key).apply(
                lambda key: cacerts_data(given.ca_cert, key, given.root_cert, given.chain)
            )
            self.not_after = pulumi.Output.from_input(given.not_after)
        manifest = cacerts_secret(pulumi.Output.secret(data))
        self.secret = register_manifest(
            f"{name}-cacerts",
            manifest,
            # With what the component waits for (istio-system): the engine does not
            # hand a component's dependencies down to its children.
            child_options(self, opts, protect=args.protect),
        )
        self.register_outputs({"notAfter": self.not_after})


CaHook = Callable[[pulumi.Resource], Sequence[pulumi.Resource]]
"""What `IstioControlPlane` calls once istio-system exists: it returns the resources
every istiod release waits for."""


class PluginCa:
    """One cluster's plug-in CA, declared in two steps: the root now (or the mesh's
    `authority`, shared by every cluster), the intermediate `intermediate_name` (the
    cluster's `given` one under a given root) and its `cacerts` Secret when the control
    plane has made istio-system (`install`, an `IstioControlPlane` hook)."""

    def __init__(
        self,
        settings: CaSettings,
        protect: bool,
        opts: pulumi.ResourceOptions,
        authority: MeshCertificateAuthority | None = None,
        intermediate_name: str = naming.CA_INTERMEDIATE,
        given: CaIntermediate | None = None,
    ):
        self._opts = opts
        self._intermediate_name = intermediate_name
        self._given = given
        self.authority = authority or MeshCertificateAuthority(
            "ca", CertificateAuthorityArgs(settings, protect), opts
        )
        self.certs: IstioCaCerts | None = None

    def install(self, namespace: pulumi.Resource) -> list[pulumi.Resource]:
        after_namespace = pulumi.ResourceOptions.merge(
            self._opts, pulumi.ResourceOptions(depends_on=[namespace])
        )
        self.certs = self.authority.intermediate(
            self._intermediate_name, after_namespace, given=self._given
        )
        return [self.certs.secret]

    def outputs(self) -> dict[str, pulumi.Output[str]]:
        """The stack outputs `CA_OUTPUTS`, once `install` has run."""
        assert self.certs is not None, "install() runs with the control plane"
        return {
            "caRootNotAfter": self.authority.not_after,
            "caIntermediateNotAfter": self.certs.not_after,
        }


CA_OUTPUTS = ("caRootNotAfter", "caIntermediateNotAfter")
"""Stack outputs of a plug-in CA: the expiry dates (notAfter, RFC 3339) of the root and
of the intermediate."""


def ca_output_names(settings: CaSettings) -> tuple[str, ...]:
    return CA_OUTPUTS if settings.mode == "plugin" else ()


def ca_alert_rules() -> list[dict[str, Any]]:
    """Prometheus rules on istiod's own CA metrics (`security/pkg/server/ca`):
    `citadel_server_cert_chain_expiry_timestamp` is the expiry of the first certificate
    of `cert-chain.pem` (the intermediate), `citadel_server_root_cert_expiry_timestamp`
    that of the first root of `root-cert.pem`; both in Unix seconds."""
    return [
        {
            "alert": "IstioIntermediateCaExpiringSoon",
            "expr": (
                f"(citadel_server_cert_chain_expiry_timestamp - time()) < {RENEWAL_DAYS} * 86400"
            ),
            "for": "1h",
            "labels": {"severity": "warning"},
            "annotations": {
                "summary": "The intermediate CA istiod {{ $labels.pod }} signs with expires "
                f"within {RENEWAL_DAYS} days: rotate it (docs/RUNBOOKS.md)"
            },
        },
        {
            # A root is replaced with overlapping trust, in several steps: warn earlier.
            "alert": "IstioRootCaExpiringSoon",
            "expr": "(citadel_server_root_cert_expiry_timestamp - time()) < 90 * 86400",
            "for": "1h",
            "labels": {"severity": "warning"},
            "annotations": {
                "summary": "The mesh's root CA expires within 90 days: rotate it with "
                "overlapping trust (docs/RUNBOOKS.md)"
            },
        },
    ]
