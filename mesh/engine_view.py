"""What the real engine shows a policy pack, where it differs from what a program declares.

The engine does not send a pack the inputs a program registered (BRIEF section 9):

- `Analyze` (and Remediate) get each resource's inputs *after its provider's Check*. The
  Helm Release provider resolves `version` to the chart version it found (a range such
  as `~1.30.0` arrives as an exact version), drops inputs its own struct does not know
  (`compat`), and fills in defaults (`timeout` when the release waits).
- `AnalyzeStack` gets each resource's *outputs*: the live object, with what the API
  server filled in (uid, resourceVersion, creationTimestamp, managedFields), and for a
  Release its `status` besides.

`mesh check --engine-view` (and `Preview(..., engine_view=True)`) presents resources this
way, so the rules are judged on what a real preview would hand them; the e2e tier shows
the engine doing it (tests/e2e). A range cannot be resolved offline: it stands for the
lowest version it admits, which is exactly what a rule can no longer tell from a pin;
that is why exact Istio versions are also a config check of the program
(`istio.revisions[].version`).
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from typing import Any

RELEASE_TYPE = "kubernetes:helm.sh/v3:Release"
RELEASE_CHECK_DROPS = ("compat",)
"""Inputs the Release provider's Check drops (the mock harness records inputs without
them too: mesh/program.py `CHECKED_AWAY`)."""
UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"
"""Pulumi's unknown-value sentinel: stays unknown in any encoding."""
DEFAULT_RELEASE_TIMEOUT = 300
"""Seconds the Release provider waits when a release awaits and sets no timeout."""

_RANGE = re.compile(r"\s*(?:[~^]|[<>]=?|=)?\s*v?(\d+)(?:\.(\d+|[xX*]))?(?:\.(\d+|[xX*]))?\s*")
"""A single-bound range Helm resolves (`~1.30.0`, `^1.30`, `>=1.30.0`, `1.30.x`)."""


def resolved_version(version: str) -> str:
    """A chart version as the provider's Check reports it: exact versions as they are; a
    range as the lowest version it admits (offline there is no repository to ask)."""
    if re.fullmatch(r"\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?", version):
        return version
    match = _RANGE.fullmatch(version)
    if match is None:
        return version  # not a range we can read (or an unknown value): left as it is
    parts = [p if p and p.isdigit() else "0" for p in match.groups()]
    return ".".join(parts)


def checked_inputs(type_: str, props: Mapping[str, Any]) -> Mapping[str, Any]:
    """`props` as the engine stores and analyzes them after the provider's Check."""
    if type_ != RELEASE_TYPE:
        return props
    checked = {k: v for k, v in props.items() if k not in RELEASE_CHECK_DROPS}
    if isinstance(checked.get("version"), str):
        checked["version"] = resolved_version(checked["version"])
    if not checked.get("skipAwait") and "timeout" not in checked:
        checked["timeout"] = DEFAULT_RELEASE_TIMEOUT
    return checked


SECRET_TYPE = "kubernetes:core/v1:Secret"


def secret_as_stored(props: Mapping[str, Any]) -> dict[str, Any]:
    """A Secret as the API server keeps it: `stringData` is write-only, merged into
    `data` base64-encoded (over a `data` key of the same name)."""
    encoded = {
        key: value if value == UNKNOWN else base64.b64encode(str(value).encode()).decode()
        for key, value in props["stringData"].items()
    }
    stored = {key: value for key, value in props.items() if key != "stringData"}
    return {**stored, "data": {**(props.get("data") or {}), **encoded}}


def live_outputs(type_: str, name: str, props: Mapping[str, Any]) -> Mapping[str, Any]:
    """`props` as AnalyzeStack gets them: the resource's outputs after an update."""
    outputs = checked_inputs(type_, props)
    if type_ == RELEASE_TYPE:
        return {
            **outputs,
            "status": {
                "name": outputs.get("name", name),
                "namespace": outputs.get("namespace", "default"),
                "chart": outputs.get("chart"),
                "version": outputs.get("version"),
                "revision": 1,
                "status": "deployed",
            },
        }
    if not type_.startswith("kubernetes:"):
        return outputs
    if type_ == SECRET_TYPE and isinstance(outputs.get("stringData"), Mapping):
        outputs = secret_as_stored(outputs)
    metadata = dict(outputs.get("metadata") or {})
    metadata.setdefault("name", name)
    metadata |= {
        "uid": "00000000-0000-0000-0000-000000000000",
        "resourceVersion": "1",
        "creationTimestamp": "2026-01-01T00:00:00Z",
        "generation": 1,
        "managedFields": [{"manager": "pulumi-kubernetes", "operation": "Apply"}],
    }
    return {**outputs, "metadata": metadata}
