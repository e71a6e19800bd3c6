"""The istio-mesh CrossGuard policy pack.

Run by the Pulumi CLI (`pulumi preview --policy-pack policies`) or offline by
`python -m mesh check`. Constructing `PolicyPack` starts the pack's gRPC server and
never returns, so this file does nothing else: the rules live in `istio_guardrails`,
and `prepare_process` (why: `istio_guardrails/runtime.py`) runs just before serving.
"""

from istio_guardrails import PACK_NAME, POLICIES
from istio_guardrails.runtime import prepare_process
from pulumi_policy import EnforcementLevel, PolicyPack

prepare_process()
PolicyPack(
    name=PACK_NAME,
    policies=POLICIES,
    enforcement_level=EnforcementLevel.MANDATORY,
    description="Guardrails for a secure Istio mesh: mTLS, injection, routing, gateways, "
    "authorization and Istio's Helm releases.",
)
