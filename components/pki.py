"""X.509 checks for the mesh's certificate authority, on PEM text, without Pulumi.

The config validates what a user hands the plug-in CA (`istio-mesh:ca`) with these
functions: that a PEM holds what its field says, that a CA certificate is one, that the
intermediate's key is the intermediate's and the chain ends in the root. istiod runs the
same checks on the `cacerts` Secret when it starts (`pkg/pki/util.KeyCertBundle.Verify`)
and refuses to sign anything when they fail: here they fail before `pulumi up`.

No message quotes the PEM it judges: a private key must never reach a log or an error.
"""

from __future__ import annotations

import datetime
import itertools
import re
from collections.abc import Sequence

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
"""The key types istiod's CA signs with (`ParsePemEncodedKey`: RSA and ECDSA)."""

_PEM_BLOCK = re.compile(r"-----BEGIN ([A-Z0-9 ]+)-----")


def _block_types(pem: str) -> list[str]:
    return _PEM_BLOCK.findall(pem)


def load_certificates(pem: str) -> list[x509.Certificate]:
    """Every certificate of a PEM bundle, in order; `ValueError` saying what is wrong.

    A private key pasted into a certificate field is refused by name: it is the mistake
    that would put a key in plain text into the stack file.
    """
    blocks = _block_types(pem)
    if any(block.endswith("PRIVATE KEY") for block in blocks):
        raise ValueError(
            "holds a private key: only certificates go here (a key is set with "
            "`pulumi config set --secret`)"
        )
    if not blocks:
        raise ValueError("is not PEM text (-----BEGIN CERTIFICATE-----)")
    others = sorted({block for block in blocks if block != "CERTIFICATE"})
    if others:
        raise ValueError(f"holds a {others[0]} block: only CERTIFICATE blocks go here")
    try:
        return x509.load_pem_x509_certificates(pem.encode())
    except ValueError:
        raise ValueError("holds a CERTIFICATE block that is no X.509 certificate") from None


def load_private_key(pem: str) -> PrivateKey:
    """The one RSA or ECDSA private key of `pem`; `ValueError` saying what is wrong, never
    what the text holds."""
    blocks = _block_types(pem)
    if len(blocks) != 1 or not blocks[0].endswith("PRIVATE KEY"):
        raise ValueError("must be one PEM private key (PKCS#8, or PKCS#1 RSA, or SEC1 EC)")
    if blocks[0] == "ENCRYPTED PRIVATE KEY" or "Proc-Type: 4,ENCRYPTED" in pem:
        raise ValueError("is encrypted: istiod reads its CA key without a passphrase")
    try:
        key = serialization.load_pem_private_key(pem.encode(), password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise ValueError("is not a readable PEM private key") from None
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise ValueError("must be an RSA or ECDSA key: istiod's CA signs with nothing else")
    return key


def is_ca(certificate: x509.Certificate) -> bool:
    """A certificate that may sign others: basicConstraints CA:TRUE, and keyCertSign
    among its key usages when it lists any."""
    try:
        extensions = certificate.extensions
    except (ValueError, x509.DuplicateExtension):  # malformed: istiod refuses it too
        return False
    try:
        constraints = extensions.get_extension_for_class(x509.BasicConstraints)
    except x509.ExtensionNotFound:
        return False
    if not constraints.value.ca:
        return False
    try:
        usage = extensions.get_extension_for_class(x509.KeyUsage)
    except x509.ExtensionNotFound:
        return True
    return usage.value.key_cert_sign


def issued_by(certificate: x509.Certificate, issuer: x509.Certificate) -> bool:
    """Whether `issuer` signed `certificate` (names match and the signature verifies)."""
    try:
        certificate.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False
    return True


def rfc3339(moment: datetime.datetime) -> str:
    """`2027-01-01T00:00:00Z`: UTC, whole seconds, as the TLS provider writes its times."""
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def not_after(certificate: x509.Certificate) -> str:
    """The certificate's expiry (`notAfter`), RFC 3339."""
    return rfc3339(certificate.not_valid_after_utc)


def validity_problem(certificate: x509.Certificate, now: datetime.datetime) -> str | None:
    """Why `certificate` is not valid at `now`; None when it is."""
    if certificate.not_valid_after_utc <= now:
        return f"expired on {not_after(certificate)}"
    if certificate.not_valid_before_utc > now:
        return f"is not valid before {rfc3339(certificate.not_valid_before_utc)}"
    return None


def same_public_key(certificate: x509.Certificate, key: PrivateKey) -> bool:
    """Whether `key` is the private key of `certificate`."""
    der = serialization.Encoding.DER
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    return certificate.public_key().public_bytes(der, spki) == key.public_key().public_bytes(
        der, spki
    )


def chain_problem(
    chain: Sequence[x509.Certificate], roots: Sequence[x509.Certificate]
) -> str | None:
    """Why `chain` (the CA certificate first, then each certificate that issued the one
    before it) does not lead to one of `roots`; None when it does."""
    for index, (certificate, issuer) in enumerate(itertools.pairwise(chain)):
        if not issued_by(certificate, issuer):
            return f"certificate {index + 1} is not signed by certificate {index + 2} after it"
    if not any(issued_by(chain[-1], root) for root in roots):
        return "is not signed by the root (`ca.root.certificate`)"
    return None


def certificate_pem(certificates: Sequence[x509.Certificate]) -> str:
    """Certificates as one PEM bundle."""
    return "".join(c.public_bytes(serialization.Encoding.PEM).decode() for c in certificates)
