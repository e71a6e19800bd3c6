"""Check 2 of the e2e tier: `istioctl analyze`, offline, over each whole rendered mesh.

The input is everything a stack puts in the cluster that the e2e tier can render: the
`helm template` output of every Istio release (tests/e2e/charts.py; the add-on releases
are skipped, their charts are not built here) plus our own manifests. It is analyzed once
per istiod revision, with that revision's mesh config (the `mesh` key of the ConfigMap
`istio-<revision>` the istiod chart renders) as `--meshConfigFile`, so the analyzers see
our extension providers, discoverySelectors and outbound policy, not istioctl's defaults.

No Error and no Warning may remain except the ACCEPTED messages below; Info messages are
printed. Offline, istioctl reads no Pod, Service, Namespace, Node or Secret from files, and
skips every analyzer that needs one (gateway selectors and secrets, destination hosts,
subsets selecting pods, injection, ...): the skipped list is printed. Check 1 covers the
gateway selectors; the rest need the API server (check 3).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from e2e.tools import run, tool
from tests.e2e.charts import TemplatedStack, describe, template_stack

E2E_TOOLS = ("helm", "istioctl")
"""What this module needs built (conftest skips it otherwise)."""

STACKS = ("dev", "prod")


@dataclass(frozen=True)
class Accepted:
    """An analyzer message we keep, and why (README, e2e section, lists the same)."""

    code: str  # IST0xxx
    origin: str  # a regular expression over the message's origin ("Kind namespace/name")
    message: str  # a fragment of the message
    reason: str


# Nothing is accepted today: the dev and prod meshes analyze without an Error or Warning.
ACCEPTED: tuple[Accepted, ...] = ()


def accepted(message: dict[str, Any]) -> Accepted | None:
    for entry in ACCEPTED:
        if (
            entry.code == message.get("code")
            and re.fullmatch(entry.origin, str(message.get("origin", "")))
            and entry.message in str(message.get("message", ""))
        ):
            return entry
    return None


def mesh_configs(charts: TemplatedStack) -> dict[str, Path]:
    """revision -> a file holding the mesh config istiod of that revision runs with."""
    configs = {}
    for name, templated in sorted(charts.releases.items()):
        if templated.release.chart != "istiod":
            continue
        revision = str(templated.release.values.get("revision") or "default")
        configmap = f"istio-{revision}" if revision != "default" else "istio"
        found = [
            obj
            for obj in templated.find("ConfigMap")
            if (obj.get("metadata") or {}).get("name") == configmap
        ]
        assert len(found) == 1, f"{name}: no ConfigMap {configmap} rendered"
        mesh = (found[0].get("data") or {}).get("mesh")
        assert isinstance(mesh, str) and yaml.safe_load(mesh), f"{name}: empty mesh config"
        path = charts.work_dir / f"{name}.meshconfig.yaml"
        path.write_text(mesh)
        configs[revision] = path
    assert configs, "no istiod release"
    return configs


SKIPPED = re.compile(r"Skipped analyzers:\n((?:\t .*\n)*)")


def analyze(charts: TemplatedStack, revision: str, mesh_config: Path) -> list[dict[str, Any]]:
    done = run(
        [
            tool("istioctl"),
            "analyze",
            "--use-kube=false",
            "--all-namespaces",
            "--revision",
            revision,
            "--meshConfigFile",
            mesh_config,
            "--output",
            "json",
            "--verbose",
            "--color=false",
            charts.charts_dir,
            charts.manifests_dir,
        ],
        timeout=300,
    )
    # With -o json the exit code does not reflect the messages; a file istioctl cannot
    # read is reported on stderr only, and would silently shrink the input.
    assert done.returncode == 0, f"istioctl analyze exited {done.returncode}:\n{done.stderr}"
    for failure in ("Error(s) adding files", "could not be parsed"):
        assert failure not in done.stderr, f"istioctl could not read its input:\n{done.stderr}"
    skipped = SKIPPED.search(done.stderr)
    if skipped:
        names = ", ".join(line.strip() for line in skipped[1].splitlines())
        print(f"revision {revision}: analyzers skipped offline: {names}")
    messages: list[dict[str, Any]] = json.loads(done.stdout)
    return messages


@pytest.mark.parametrize("stack", STACKS)
def test_istioctl_analyze_finds_no_error_or_warning(stack: str, rendered: dict[str, Path]) -> None:
    charts = template_stack(rendered[stack])
    seen: dict[tuple[str, str, str], dict[str, Any]] = {}
    for revision, mesh_config in mesh_configs(charts).items():
        for message in analyze(charts, revision, mesh_config):
            key = (str(message.get("code")), str(message.get("origin")), str(message["message"]))
            revisions = seen.setdefault(key, {**message, "revisions": []})["revisions"]
            if revision not in revisions:
                revisions.append(revision)
    remaining, kept = [], []
    for (code, origin, text), message in sorted(seen.items()):
        line = (
            f"{message.get('level')} [{code}] ({origin} {message.get('reference', '')}) {text}"
            f" [revision {', '.join(message['revisions'])}]"
        )
        if message.get("level") not in ("Error", "Warning"):
            print(f"{stack}: {line}")
            continue
        entry = accepted(message)
        if entry is None:
            remaining.append(line)
        else:
            kept.append(f"{line} (accepted: {entry.reason})")
    for line in kept:
        print(f"{stack}: {line}")
    assert not remaining, f"{stack}: istioctl analyze reports:\n" + describe(remaining)
