"""Istio host names: which service a host means, and whether it is inside the mesh.

VirtualServices and DestinationRules name services by short name (`reviews`),
`name.namespace` (`reviews.shop`) or FQDN (`reviews.shop.svc.cluster.local`). To match a
route's destination with the DestinationRule that defines its subsets, both sides are
turned into the FQDN first, each relative to its own object's namespace (Istio resolves
short names that way).
"""

from __future__ import annotations

CLUSTER_DOMAIN = "svc.cluster.local"

# `reviews.shop` (name.namespace) and `example.com` look alike. A second label that is a
# well-known public top-level domain marks an external host; anything else is read as a
# namespace. Kubernetes namespaces are rarely named like TLDs, and a miss here only
# changes which TLS mode the destination-rule-tls rule expects.
_PUBLIC_TLDS = frozenset(
    {"com", "org", "net", "io", "dev", "app", "ai", "co", "cloud", "info", "biz", "me"}
    | {"tech", "gov", "edu", "mil", "int", "us", "uk", "eu", "de", "fr", "nl", "se", "no"}
    | {"fi", "dk", "ch", "at", "be", "es", "it", "pl", "cz", "pt", "ie", "jp", "cn", "in"}
    | {"au", "ca", "br", "ru"}
)


def fqdn(host: str, namespace: str) -> str:
    """The fully qualified service name `host` means in an object of `namespace`.

    Wildcard and external hosts come back unchanged (lower-cased, no trailing dot).
    """
    host = host.strip().lower().rstrip(".")
    if host.startswith("*") or not host:
        return host
    labels = host.split(".")
    if len(labels) == 1:
        return f"{host}.{namespace}.{CLUSTER_DOMAIN}"
    if len(labels) == 2 and labels[1] == "svc":
        return host  # `ns.svc` is not a service name; leave it alone
    if len(labels) == 2 and labels[1] not in _PUBLIC_TLDS:
        return f"{host}.{CLUSTER_DOMAIN}"
    if len(labels) == 3 and labels[2] == "svc":
        return f"{host}.cluster.local"
    return host


def in_mesh(host: str, namespace: str) -> bool:
    """Whether `host` names a Kubernetes service (so its sidecar speaks Istio mTLS)."""
    return fqdn(host, namespace).endswith("." + CLUSTER_DOMAIN)


def wildcard_parents(host: str) -> list[str]:
    """The wildcard hosts that would cover `host`, most specific first.

    `a.b.c` -> [`*.b.c`, `*.c`, `*`]: a DestinationRule for any of them also applies,
    and looking each up in an index keeps the subset check linear.
    """
    labels = host.split(".")
    return ["*." + ".".join(labels[i:]) for i in range(1, len(labels))] + ["*"]


def hosts_overlap(one: str, other: str) -> bool:
    """Two host names overlap: equal, `*`, or one a wildcard (`*.example.com`) the other
    falls under, as Istio matches a route's hosts with a gateway's (Istio and Gateway API
    alike)."""
    if one == other or "*" in (one, other):
        return True
    if one.startswith("*.") and other.endswith(one[1:]):
        return True
    return other.startswith("*.") and one.endswith(other[1:])
