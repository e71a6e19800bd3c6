"""Istio guardrails: the rules of the istio-mesh CrossGuard policy pack.

One module per rule group; each holds pure check functions (plain data in, violation
messages out) and its `POLICIES`, built by the adapters in `pack.py`. The pack's
`__main__.py` only hands `POLICIES` to `PolicyPack`.
"""

from __future__ import annotations

from pulumi_policy import Policy

from . import (
    ambient,
    authorization,
    binding,
    clusters,
    gateway_api,
    gateway_api_ingress,
    gateways,
    helm,
    images,
    injection,
    mtls,
    selection,
    traffic,
)

PACK_NAME = "istio-mesh-guardrails"

POLICIES: list[Policy] = [
    *mtls.POLICIES,
    *clusters.POLICIES,
    *injection.POLICIES,
    *ambient.POLICIES,
    *traffic.POLICIES,
    *gateways.POLICIES,
    *binding.POLICIES,
    *gateway_api.POLICIES,
    *gateway_api_ingress.POLICIES,
    *selection.POLICIES,
    *authorization.POLICIES,
    *helm.POLICIES,
    *images.POLICIES,
]
