"""Mesh-wide security manifests: STRICT mutual TLS and per-namespace default deny.

Per-service ALLOW rules and JWT live in `components.authorization`; this module holds
the baseline every namespace starts from.
"""

from __future__ import annotations

from components import naming
from components.k8s import Manifest
from components.naming import SECURITY_API


def mesh_strict_mtls() -> Manifest:
    """`PeerAuthentication` `default` in the root namespace: the whole mesh is STRICT.

    Istio reads the policy named `default` in its root namespace as the mesh-wide one;
    STRICT refuses plain-text traffic to every sidecar and ztunnel.
    """
    return {
        "apiVersion": SECURITY_API,
        "kind": "PeerAuthentication",
        "metadata": {"name": "default", "namespace": naming.ISTIO_SYSTEM},
        "spec": {"mtls": {"mode": "STRICT"}},
    }


def default_deny(namespace: str) -> Manifest:
    """An `AuthorizationPolicy` with an empty spec: nothing in `namespace` is allowed.

    An ALLOW policy that matches no request denies everything; services then open
    exactly what they need with their own ALLOW policies.
    """
    return {
        "apiVersion": SECURITY_API,
        "kind": "AuthorizationPolicy",
        "metadata": {"name": "default-deny", "namespace": namespace},
        "spec": {},
    }
