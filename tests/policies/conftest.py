"""Policy pack fixtures: the pack's rule modules on sys.path, and a running pack.

Starting the pack is the slow part (a Python process importing pulumi), so each test
module starts it once, configures it once, and sends every fixture to that process.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mesh.analyzer import PACK_DIR, PolicyPackProcess, PolicyResource

# The pack's rules import as `istio_guardrails` (policies/ is the pack's working dir).
if str(PACK_DIR) not in sys.path:
    sys.path.insert(0, str(PACK_DIR))

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "policies"
PROD_CONFIG = json.loads((PACK_DIR / "config" / "prod.json").read_text())
DEV_CONFIG = json.loads((PACK_DIR / "config" / "dev.json").read_text())

UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"
"""Pulumi's wire sentinel for a string that is unknown during preview."""
SECRET = {"4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270"}
"""The wire marker of a secret; `{**SECRET, "value": ...}` is a secret value."""


def peer_authentication(mode: Any) -> PolicyResource:
    """shop's namespace-wide PeerAuthentication with `mode` as its mTLS mode."""
    return PolicyResource(
        type="kubernetes:security.istio.io/v1:PeerAuthentication",
        name="shop-default",
        urn="urn:pulumi:prod::istio-mesh::kubernetes:security.istio.io/v1:PeerAuthentication::shop",
        props={
            "apiVersion": "security.istio.io/v1",
            "kind": "PeerAuthentication",
            "metadata": {"name": "default", "namespace": "shop"},
            "spec": {"mtls": {"mode": mode}},
        },
    )


@pytest.fixture(scope="module")
def prod_pack() -> Iterator[PolicyPackProcess]:
    """The pack as `pulumi preview` starts it for prod: dry run, prod policy config."""
    with PolicyPackProcess(stack="prod", dry_run=True) as pack:
        pack.configure(PROD_CONFIG)
        yield pack
