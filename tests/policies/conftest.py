"""Policy pack fixtures: the pack's rule modules on sys.path, and a running pack.

Starting the pack is the slow part (a Python process importing pulumi), so each test
module starts it once, configures it once, and sends every fixture to that process.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from mesh.analyzer import PACK_DIR, PolicyPackProcess

# The pack's rules import as `istio_guardrails` (policies/ is the pack's working dir).
if str(PACK_DIR) not in sys.path:
    sys.path.insert(0, str(PACK_DIR))

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "policies"
PROD_CONFIG = json.loads((PACK_DIR / "config" / "prod.json").read_text())
DEV_CONFIG = json.loads((PACK_DIR / "config" / "dev.json").read_text())


@pytest.fixture(scope="module")
def prod_pack() -> Iterator[PolicyPackProcess]:
    """The pack as `pulumi preview` starts it for prod: dry run, prod policy config."""
    with PolicyPackProcess(stack="prod", dry_run=True) as pack:
        pack.configure(PROD_CONFIG)
        yield pack
