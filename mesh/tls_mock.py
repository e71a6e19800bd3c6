"""What the TLS provider (pulumi-tls) returns, made for real under the mock engine.

The program's plug-in CA is a chain of pulumi-tls resources (a key, a self-signed root,
a key and a request for the intermediate, the root signing it). Echoing their inputs,
as the mocks do for everything else, would leave `certPem` empty and nothing to verify:
here each resource is what the provider makes, with `cryptography`: real keys, real
certificates with the subject, validity, CA flag and key usages asked for, so a test
can check that the `cacerts` Secret's chain ends in the root.

Renders must be repeatable (the same stack writes the same bytes), and a provider's
keys and clock are not: ECDSA keys are derived from the resource's name, signatures are
deterministic (RFC 6979), serial numbers come from the name, and time is `MOCK_CLOCK`.
An RSA key (which cannot be derived) is generated afresh each run.
"""

from __future__ import annotations

import datetime
import hashlib
from collections.abc import Callable, Mapping
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from components.pki import PrivateKey, rfc3339

MOCK_CLOCK = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
"""`now` for every certificate the mock provider makes."""

_CURVES: dict[str, ec.EllipticCurve] = {
    "P224": ec.SECP224R1(),
    "P256": ec.SECP256R1(),
    "P384": ec.SECP384R1(),
    "P521": ec.SECP521R1(),
}

_SUBJECT_FIELDS = {
    "commonName": x509.NameOID.COMMON_NAME,
    "organization": x509.NameOID.ORGANIZATION_NAME,
    "organizationalUnit": x509.NameOID.ORGANIZATIONAL_UNIT_NAME,
    "locality": x509.NameOID.LOCALITY_NAME,
    "province": x509.NameOID.STATE_OR_PROVINCE_NAME,
    "country": x509.NameOID.COUNTRY_NAME,
}

_KEY_USAGES = {
    "digital_signature": "digital_signature",
    "content_commitment": "content_commitment",
    "key_encipherment": "key_encipherment",
    "data_encipherment": "data_encipherment",
    "key_agreement": "key_agreement",
    "cert_signing": "key_cert_sign",
    "crl_signing": "crl_sign",
    "encipher_only": "encipher_only",
    "decipher_only": "decipher_only",
}
"""pulumi-tls `allowedUses` -> `x509.KeyUsage` field."""


def _seed(name: str) -> int:
    return int.from_bytes(hashlib.sha256(name.encode()).digest(), "big")


def _private_key(name: str, inputs: Mapping[str, Any]) -> PrivateKey:
    if inputs.get("algorithm", "RSA") == "ECDSA":
        curve = _CURVES[inputs.get("ecdsaCurve", "P224")]
        order = {
            "secp224r1": 2**224,
            "secp256r1": 2**256,
            "secp384r1": 2**384,
            "secp521r1": 2**521,
        }[curve.name]
        # Any scalar below the group order will do; half of 2^bits is always below it.
        return ec.derive_private_key(_seed(name) % (order // 2) + 1, curve)
    return rsa.generate_private_key(65537, int(inputs.get("rsaBits", 2048)))


def _pem(key: PrivateKey, private_format: serialization.PrivateFormat) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, private_format, serialization.NoEncryption()
    ).decode()


def _algorithm(key: PrivateKey) -> str:
    return "ECDSA" if isinstance(key, ec.EllipticCurvePrivateKey) else "RSA"


def _sign_options(key: PrivateKey) -> dict[str, Any]:
    return {"ecdsa_deterministic": True} if isinstance(key, ec.EllipticCurvePrivateKey) else {}


def private_key(name: str, inputs: Mapping[str, Any]) -> dict[str, Any]:
    key = _private_key(name, inputs)
    # The provider writes an ECDSA key as SEC1 and an RSA key as PKCS#1 in privateKeyPem.
    traditional = serialization.PrivateFormat.TraditionalOpenSSL
    public = key.public_key()
    return {
        "privateKeyPem": _pem(key, traditional),
        "privateKeyPemPkcs8": _pem(key, serialization.PrivateFormat.PKCS8),
        "publicKeyPem": public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode(),
    }


def _name(subject: Mapping[str, Any] | None) -> x509.Name:
    attributes = [
        x509.NameAttribute(oid, value)
        for field, oid in _SUBJECT_FIELDS.items()
        if (value := (subject or {}).get(field))
    ]
    return x509.Name(attributes)


def _load_key(pem: str) -> PrivateKey:
    key = serialization.load_pem_private_key(pem.encode(), password=None)
    assert isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey)
    return key


def cert_request(name: str, inputs: Mapping[str, Any]) -> dict[str, Any]:
    key = _load_key(inputs["privateKeyPem"])
    builder = x509.CertificateSigningRequestBuilder().subject_name(_name(inputs.get("subject")))
    request = builder.sign(key, hashes.SHA256(), **_sign_options(key))
    return {
        "certRequestPem": request.public_bytes(serialization.Encoding.PEM).decode(),
        "keyAlgorithm": _algorithm(key),
    }


def _certificate(
    name: str,
    inputs: Mapping[str, Any],
    subject: x509.Name,
    public_key: Any,
    issuer: x509.Name,
    issuer_key: PrivateKey,
) -> dict[str, Any]:
    """A certificate as the provider issues it: validity from now, the key usages
    asked for (critical), basic constraints, subject key id when asked."""
    hours = int(inputs["validityPeriodHours"])
    end = MOCK_CLOCK + datetime.timedelta(hours=hours)
    usages = set(inputs.get("allowedUses") or [])
    ca = bool(inputs.get("isCaCertificate"))
    path_length = inputs.get("maxPathLength")
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number((_seed(f"serial:{name}") >> 128) or 1)
        .not_valid_before(MOCK_CLOCK)
        .not_valid_after(end)
        .add_extension(
            x509.BasicConstraints(
                ca=ca, path_length=int(path_length) if ca and path_length is not None else None
            ),
            critical=True,
        )
    )
    key_usage = {field: usage in usages for usage, field in _KEY_USAGES.items()}
    if any(key_usage.values()):
        builder = builder.add_extension(x509.KeyUsage(**key_usage), critical=True)
    if inputs.get("setSubjectKeyId"):
        builder = builder.add_extension(
            x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False
        )
    certificate = builder.sign(issuer_key, hashes.SHA256(), **_sign_options(issuer_key))
    return {
        "certPem": certificate.public_bytes(serialization.Encoding.PEM).decode(),
        "validityStartTime": rfc3339(MOCK_CLOCK),
        "validityEndTime": rfc3339(end),
        "readyForRenewal": False,
    }


def self_signed_cert(name: str, inputs: Mapping[str, Any]) -> dict[str, Any]:
    key = _load_key(inputs["privateKeyPem"])
    subject = _name(inputs.get("subject"))
    made = _certificate(name, inputs, subject, key.public_key(), subject, key)
    return {**made, "keyAlgorithm": _algorithm(key)}


def locally_signed_cert(name: str, inputs: Mapping[str, Any]) -> dict[str, Any]:
    request = x509.load_pem_x509_csr(inputs["certRequestPem"].encode())
    ca_key = _load_key(inputs["caPrivateKeyPem"])
    ca_cert = x509.load_pem_x509_certificate(inputs["caCertPem"].encode())
    made = _certificate(
        name, inputs, request.subject, request.public_key(), ca_cert.subject, ca_key
    )
    return {**made, "caKeyAlgorithm": _algorithm(ca_key)}


MAKERS: dict[str, Callable[[str, Mapping[str, Any]], dict[str, Any]]] = {
    "tls:index/privateKey:PrivateKey": private_key,
    "tls:index/certRequest:CertRequest": cert_request,
    "tls:index/selfSignedCert:SelfSignedCert": self_signed_cert,
    "tls:index/locallySignedCert:LocallySignedCert": locally_signed_cert,
}
"""Type token -> what the provider adds to a resource's inputs."""
