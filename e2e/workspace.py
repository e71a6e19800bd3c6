"""The real Pulumi CLI on a local backend, running this project against the e2e cluster.

A `Workspace` is a copy of the project (program, components, policy pack; the virtualenv
linked, not copied) with e2e stack files, a `file://` backend and a PULUMI_HOME of its
own holding the built kubernetes provider as an installed plugin. Nothing reaches the
network: automatic plugin downloads are off, and charts come from the loopback
repository.

The e2e stack files are the repository's `Pulumi.<stack>.yaml` with three changes, each
forced by what this machine lacks (README, "The e2e tier"):
  - `istio.chartRepository`: the loopback Helm repository of Istio's charts;
  - `istio.awaitReleases: false`: no pod can become ready without nodes;
  - `observability.addons` off: their charts live in repositories this machine cannot
    reach.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from e2e.cluster import GATEWAY_API_PATH
from e2e.tools import PROJECT_DIR, Completed, bin_dir, run, tool, versions
from mesh.engine_view import RELEASE_TYPE

PASSPHRASE = "e2e-only"
PROJECT_FILES = (
    "Pulumi.yaml",
    "PulumiPlugin.yaml",
    "__main__.py",
    "pyproject.toml",
    "requirements.txt",
    "components",
    "istio_mesh",
)
POLICY_DIR = "policies"


def stack_file_config(
    stack: str, chart_repository: str, path: Path | None = None
) -> dict[str, Any]:
    """The repository's stack file for `stack` (or the one at `path`), with the e2e
    changes above, and the Gateway API's CRDs read from the loopback server
    (e2e.cluster.chart_repository)."""
    path = path or PROJECT_DIR / f"Pulumi.{stack}.yaml"
    document = yaml.safe_load(path.read_text())
    config = document["config"]
    istio = dict(config.get("istio-mesh:istio") or {})
    istio["chartRepository"] = chart_repository
    istio["awaitReleases"] = False
    config["istio-mesh:istio"] = istio
    observability = dict(config.get("istio-mesh:observability") or {})
    if observability.get("addons"):
        observability["addons"] = dict.fromkeys(observability["addons"], False)
        observability.pop("kialiAuth", None)
    config["istio-mesh:observability"] = observability
    # The Gateway API's CRDs downloaded over HTTP as from the release, from loopback.
    gateway_api = dict(config.get("istio-mesh:gatewayApi") or {})
    gateway_api.setdefault("source", f"{chart_repository}/{GATEWAY_API_PATH}")
    config["istio-mesh:gatewayApi"] = gateway_api
    return document


class Workspace:
    """A project copy, a local backend and the environment the CLI runs in."""

    def __init__(self, root: Path, kubeconfig: Path, chart_repository: str) -> None:
        self.root = root
        self.project = root / "project"
        self.chart_repository = chart_repository
        self.project.mkdir(parents=True)
        for name in PROJECT_FILES:
            source = PROJECT_DIR / name
            if source.is_dir():
                shutil.copytree(source, self.project / name, ignore=_no_caches)
            else:
                shutil.copy(source, self.project / name)
        shutil.copytree(
            PROJECT_DIR / POLICY_DIR,
            self.project / POLICY_DIR,
            ignore=shutil.ignore_patterns("venv", "__pycache__"),
        )
        # The program's and the pack's virtualenvs: the project's own (the CLI creates
        # neither for a local policy pack; the README says how to).
        (self.project / "venv").symlink_to(PROJECT_DIR / "venv")
        (self.project / POLICY_DIR / "venv").symlink_to(PROJECT_DIR / "venv")
        home = root / "pulumi-home"
        kubernetes = versions()["PULUMI_KUBERNETES_VERSION"]
        plugin = home / "plugins" / f"resource-kubernetes-v{kubernetes}"
        plugin.mkdir(parents=True)
        (plugin / "pulumi-resource-kubernetes").symlink_to(tool("pulumi-resource-kubernetes"))
        (root / "state").mkdir()
        self.env = {
            "PATH": f"{bin_dir()}:{os.environ.get('PATH', '/usr/bin:/bin')}",
            "HOME": str(root),
            "PULUMI_HOME": str(home),
            "PULUMI_BACKEND_URL": f"file://{root / 'state'}",
            "PULUMI_CONFIG_PASSPHRASE": PASSPHRASE,
            "PULUMI_SKIP_UPDATE_CHECK": "true",
            "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
            # Plugins from PULUMI_HOME at their exact versions, not whatever is on PATH.
            "PULUMI_IGNORE_AMBIENT_PLUGINS": "true",
            "PULUMI_AUTOMATION_API_SKIP_VERSION_CHECK": "true",
            "KUBECONFIG": str(kubeconfig),
            "ISTIO_REFERENCE": os.environ.get("ISTIO_REFERENCE", ""),
        }

    def write_stack(self, stack: str, document: Mapping[str, Any]) -> Path:
        path = self.project / f"Pulumi.{stack}.yaml"
        path.write_text(yaml.safe_dump(dict(document), sort_keys=False))
        return path

    def write_policy_config(self, stack: str) -> Path:
        """policies/config/<stack>.json, allowing the loopback chart repository too."""
        path = self.project / POLICY_DIR / "config" / f"{stack}.json"
        config = json.loads(path.read_text())
        pinned = config["istio-helm-release-pinned"]
        pinned["allowedRepositories"] = [*pinned["allowedRepositories"], self.chart_repository]
        path.write_text(json.dumps(config, indent=2))
        return path

    def pulumi(self, *args: str, kubeconfig: Path | None = None, timeout: float = 900) -> Completed:
        """`pulumi ARGS` in the project, non-interactive; against another cluster than the
        workspace's when `kubeconfig` says so."""
        env = self.env if kubeconfig is None else {**self.env, "KUBECONFIG": str(kubeconfig)}
        return run(
            [tool("pulumi"), *args, "--non-interactive"], env=env, cwd=self.project, timeout=timeout
        )

    def start_pulumi(
        self, *args: str, env: Mapping[str, str] | None = None
    ) -> subprocess.Popen[str]:
        """`pulumi ARGS` started in the project, its output (both streams) piped; `env`
        adds to the workspace's environment."""
        return subprocess.Popen(
            [str(tool("pulumi")), *args, "--non-interactive"],
            env={**self.env, **(env or {})},
            cwd=self.project,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def set_secret(self, stack: str, path: str, value: str) -> None:
        """`pulumi config set --secret --path PATH` with the value piped in, as the
        README says to set a key or kubeconfig: never on a command line."""
        run(
            [tool("pulumi"), "config", "set", "--stack", stack, "--secret", "--path", path,
             "--non-interactive"],
            env=self.env, cwd=self.project, input_text=value,
        ).check()  # fmt: skip

    def init_stack(self, stack: str) -> None:
        self.pulumi("stack", "init", stack).check()

    def export(self, stack: str) -> dict[str, Any]:
        result = self.pulumi("stack", "export", "--stack", stack).check()
        exported: dict[str, Any] = json.loads(result.stdout)
        return exported


def _no_caches(directory: str, names: list[str]) -> list[str]:
    return [name for name in names if name in ("__pycache__", ".mypy_cache")]


def differences(expected: Any, actual: Any, path: str = "") -> list[str]:
    """Where `actual` lacks or changes what `expected` has (fields the server fills in,
    which `expected` does not have, are not differences)."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        found = []
        for key, value in expected.items():
            if key not in actual:
                found.append(f"{path}.{key}: missing")
            else:
                found += differences(value, actual[key], f"{path}.{key}")
        return found
    if isinstance(expected, list) and isinstance(actual, list) and len(expected) == len(actual):
        return [
            d
            for i, pair in enumerate(zip(expected, actual, strict=True))
            for d in differences(*pair, f"{path}[{i}]")
        ]
    return [] if expected == actual else [f"{path}: {expected!r} != {actual!r}"]


def dashed(value: Any) -> Any:
    """`value` with the kubernetes provider's `x_kubernetes_*` keys dashed again: the
    provider checkpoints a CRD's `x-kubernetes-*` schema fields underscored (they are its
    SDKs' property names) and sends them dashed (pulumi-kubernetes provider.go,
    `checkpointObject`); the API server holds them dashed."""
    if isinstance(value, dict):
        return {
            (key.replace("_", "-") if key.startswith("x_kubernetes_") else key): dashed(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [dashed(item) for item in value]
    return value


def harness_differences(export: dict[str, Any], render: Path) -> dict[str, Any]:
    """Where `mesh render`'s resources.json (the mock harness) and `pulumi stack export`
    after a real `up` disagree: URNs only one has, and, per resource, declared fields
    the engine holds otherwise (a Release's checked inputs; an object's live state,
    whose server-filled fields are no difference)."""
    engine = {
        r["urn"]: r for r in export["deployment"]["resources"] if r["type"] != "pulumi:pulumi:Stack"
    }
    harness = {r["urn"]: r for r in json.loads((render / "resources.json").read_text())}
    found: dict[str, Any] = {}
    if set(harness) - set(engine):
        found["declared by the harness only"] = sorted(set(harness) - set(engine))
    if set(engine) - set(harness):
        found["held by the engine only"] = sorted(set(engine) - set(harness))
    for urn, declared in harness.items():
        if urn not in engine or not declared["custom"]:
            continue
        if declared["type"].startswith("pulumi:providers:"):
            continue
        held = dashed(engine[urn]["inputs" if declared["type"] == RELEASE_TYPE else "outputs"])
        mismatched = differences(declared["properties"], held)
        if mismatched:
            found[urn] = mismatched
    return found
