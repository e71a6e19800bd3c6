"""One mesh across clusters: every cluster trusts the others' workload certificates.

A multi-cluster mesh (one kubernetes provider per cluster) holds together only if each
cluster's workloads accept the certificates the other clusters' istiod sign: each
istiod signs with the intermediate of its `cacerts` Secret, whose `cert-chain.pem` ends
with the root it chains to, and every cluster's `root-cert.pem` must hold that root. A
cluster without `cacerts` signs with istiod's own self-signed root, which no other
cluster trusts. And the SPIFFE identities (`spiffe://<trust domain>/ns/...`) that
authorization policies name are one cluster's only if every istiod says the same
`meshConfig.trustDomain`.

Certificates are compared as PEM blocks, not parsed: the pack runs without a crypto
library, and a root is trusted when the very same certificate is in the bundle.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from . import helm
from .pack import clusters_policy
from .values import Findings, Resource, kind_is, mapping, name_of, namespace_of, text

CACERTS = ("istio-system", "cacerts")
"""The Secret istiod reads its plug-in CA from (namespace, name)."""
DEFAULT_TRUST_DOMAIN = "cluster.local"
"""istiod's trust domain when `meshConfig.trustDomain` is not set."""

_PEM_BLOCK = re.compile(r"-----BEGIN CERTIFICATE-----(.*?)-----END CERTIFICATE-----", re.S)


def certificates(pem: str) -> list[str]:
    """The certificates of a PEM bundle, each as its base64 body without whitespace."""
    return ["".join(body.split()) for body in _PEM_BLOCK.findall(pem)]


def cacerts_file(secret: Resource, file: str) -> str | None:
    """A file of the `cacerts` Secret: from `stringData` as declared, or from base64
    `data` as the live object (and the engine's view of it) holds it."""
    where = f"stringData.{file}"
    declared = text(mapping(secret.props.get("stringData"), "stringData").get(file), where)
    if declared is not None:
        return declared
    encoded = text(mapping(secret.props.get("data"), "data").get(file), f"data.{file}")
    if encoded is None:
        return None
    try:
        return base64.b64decode(encoded, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None


def _is_cacerts(resource: Resource) -> bool:
    return (
        kind_is(resource, "", "Secret")
        and (
            namespace_of(resource.props),
            name_of(resource.props),
        )
        == CACERTS
    )


def _cluster_label(cluster: str | None) -> str:
    return f"cluster of provider {cluster}"


def trust_violations(
    clusters: Sequence[tuple[str | None, Sequence[Resource]]], _config: Mapping[str, Any]
) -> Iterator[tuple[str | None, str]]:
    """Every cluster's signing root is in every other cluster's trusted roots, and every
    istiod of the mesh names one trust domain. One cluster: nothing to agree on."""
    if len(clusters) < 2:
        return
    findings = Findings()
    domains: dict[str, list[str]] = {}
    signing: dict[str | None, tuple[Resource, str]] = {}
    trusted: dict[str | None, set[str]] = {}
    for cluster, members in clusters:
        istiods = [r for r in members if helm.istio_chart(r) == "istiod"]
        for istiod in istiods:
            with findings.reading(istiod):
                values = mapping(istiod.props.get("values"), "values")
                mesh_config = mapping(values.get("meshConfig"), "values.meshConfig")
                domain = text(mesh_config.get("trustDomain"), "values.meshConfig.trustDomain")
                domains.setdefault(domain or DEFAULT_TRUST_DOMAIN, []).append(str(cluster))
        secret = next((r for r in members if _is_cacerts(r)), None)
        if secret is None:
            if istiods:
                findings.add(
                    None,
                    f"the {_cluster_label(cluster)} has no cacerts Secret in istio-system: its "
                    "istiod signs with a self-signed root no other cluster trusts; give every "
                    "cluster an intermediate under the mesh's root (ca.mode: plugin)",
                )
            continue
        with findings.reading(secret):
            chain = certificates(cacerts_file(secret, "cert-chain.pem") or "")
            roots = certificates(cacerts_file(secret, "root-cert.pem") or "")
            if not chain or not roots:
                findings.add(
                    secret.urn,
                    f"cacerts in the {_cluster_label(cluster)} has no cert-chain.pem or no "
                    "root-cert.pem: istiod cannot serve its intermediate (Istio's plug-in CA "
                    "needs ca-cert.pem, ca-key.pem, cert-chain.pem and root-cert.pem)",
                )
                continue
            signing[cluster] = (secret, chain[-1])
            trusted[cluster] = set(roots)
    for cluster, (secret, root) in signing.items():
        distrusting = sorted(
            str(other) for other, roots in trusted.items() if other != cluster and root not in roots
        )
        if distrusting:
            findings.add(
                secret.urn,
                f"the {_cluster_label(cluster)} signs with an intermediate whose root is not in "
                f"the root-cert.pem of the cluster(s) of provider {', '.join(distrusting)}: "
                "their workloads refuse this cluster's certificates; every cluster's "
                "intermediate must chain to one root that every cluster's root-cert.pem holds",
            )
    if len(domains) > 1:
        named = "; ".join(
            f"{domain} ({', '.join(sorted(set(owners)))})"
            for domain, owners in sorted(domains.items())
        )
        findings.add(
            None,
            f"the clusters' istiod releases name different trust domains: {named}; the "
            "identities one cluster issues are not those the others' authorization policies "
            "allow: set one values.meshConfig.trustDomain everywhere (trustDomainAliases "
            "during a change)",
        )
    yield from findings.items


POLICIES = [
    clusters_policy(
        "clusters-share-trust",
        "Every cluster of a multi-cluster mesh must trust the others: each istiod signs "
        "with an intermediate (the cacerts Secret in istio-system) whose root is in every "
        "cluster's root-cert.pem, and every istiod names the same meshConfig.trustDomain.",
        trust_violations,
    ),
]
