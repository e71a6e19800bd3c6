"""Shared test fixtures: stack runs under Pulumi mocks, and Istio's reference data."""

from __future__ import annotations

import functools
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from mesh.program import PROJECT_DIR, ProgramRun, Registered, load_stack_file, run_program

# Stacks with waypoints or Gateway API gateways install the Gateway API's CRDs, read from
# the release on GitHub unless told otherwise: the tests read the reference copy instead
# (the same release, and no test reaches beyond loopback).
if os.environ.get("GATEWAY_API_REFERENCE"):
    os.environ.setdefault("ISTIO_MESH_GATEWAY_API_CRDS", os.environ["GATEWAY_API_REFERENCE"])

STACKS = sorted(
    p.name.removeprefix("Pulumi.").removesuffix(".yaml") for p in PROJECT_DIR.glob("Pulumi.*.yaml")
)


@functools.cache
def stack_run(stack: str) -> ProgramRun:
    """The real `__main__.py` run with exactly `Pulumi.<stack>.yaml`'s config (cached:
    a run is deterministic and tests only read it).

    A stack that trails another (`promotion.fromStack`) reads that stack's outputs,
    as rendered by the same program, the way `--reference dev=out/dev/stack.json` does.
    """
    import json

    config = load_stack_file(PROJECT_DIR / f"Pulumi.{stack}.yaml")
    promotion = json.loads(config.get("istio-mesh:promotion", "null")) or {}
    references = {}
    if "fromStack" in promotion:
        source = promotion["fromStack"]
        references[source] = stack_run(source.rsplit("/", 1)[-1]).outputs
    return run_program(stack, config, references)


def run_config(
    config: dict[str, Any],
    stack: str = "test",
    program: Path | None = None,
    registered: list[Registered] | None = None,
    secret_keys: tuple[str, ...] = (),
) -> ProgramRun:
    """Run the program with `istio-mesh:*` keys given as Python values (a string as it is,
    as the CLI hands a plain string). `program`: a copy of `__main__.py` elsewhere, whose
    directory is then the project directory; `registered` and `secret_keys` (full keys,
    `istio-mesh:ca`) as for `run_program`."""
    import json

    return run_program(
        stack,
        {
            (key if ":" in key else f"istio-mesh:{key}"): (
                value if isinstance(value, str) else json.dumps(value)
            )
            for key, value in config.items()
        },
        program=program,
        registered=registered,
        secret_keys=secret_keys,
    )


def mesh_command(*args: str) -> subprocess.CompletedProcess[str]:
    """`python -m mesh ...` as a user runs it, from the project directory."""
    return subprocess.run(
        [sys.executable, "-m", "mesh", *args],
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    path = os.environ.get("ISTIO_REFERENCE")
    if not path:
        pytest.skip("ISTIO_REFERENCE is not set (point it at shared/reference/istio-<version>)")
    return Path(path)
