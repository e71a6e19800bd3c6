"""Where the e2e tier's real systems are, and how to start them on loopback.

`make e2e-tools` (e2e/build-tools.sh) builds them into a cache outside the repository;
the versions are pinned in e2e/versions.env, which this module reads too.
"""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parents[1]
VERSIONS_FILE = PROJECT_DIR / "e2e" / "versions.env"
TOOLS = (
    "pulumi",
    "pulumi-language-python",
    "pulumi-language-python-exec",
    "pulumi-resource-kubernetes",
    "helm",
    "istioctl",
    "kube-apiserver",
    "etcd",
    "actionlint",
)


@cache
def versions() -> dict[str, str]:
    """e2e/versions.env as a dict (KEY=value lines; comments and blank lines skipped)."""
    pinned = {}
    for line in VERSIONS_FILE.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            pinned[key.strip()] = value.strip()
    return pinned


def cache_dir() -> Path:
    """The tools' cache: $E2E_CACHE, or ~/.cache/istio-mesh-e2e (as build-tools.sh)."""
    return Path(os.environ.get("E2E_CACHE") or Path.home() / ".cache" / "istio-mesh-e2e")


def bin_dir() -> Path:
    return cache_dir() / "bin"


def npm_cache() -> Path:
    """npm's cache holding the TypeScript consumer's packages (build-tools.sh npm_cache)."""
    return cache_dir() / "npm"


def tool(name: str) -> Path:
    return bin_dir() / name


def gateway_api_crds(version: str) -> Path:
    """The standard CRDs of a Gateway API release, as build-tools.sh assembles them."""
    return cache_dir() / "gateway-api" / f"v{version}" / "standard-install.yaml"


def missing_tools(names: Sequence[str] = TOOLS) -> list[str]:
    """The tools of `names` not built yet (and `gateway-api` while a pinned release's
    CRDs are not assembled)."""
    missing = [name for name in names if not os.access(tool(name), os.X_OK)]
    releases = versions().get("GATEWAY_API_VERSIONS", "").split(",")
    if any(not gateway_api_crds(v).is_file() for v in releases if v):
        missing.append("gateway-api")
    return missing


def chart_versions() -> dict[str, str]:
    """Istio release version -> the folder holding its packaged charts."""
    pinned = versions()
    return {
        pinned[key]: str(cache_dir() / "charts" / pinned[key])
        for key in pinned
        if key.endswith("_CHART_VERSION")
    }


def chart_archive(chart: str, version: str) -> Path:
    """The packaged chart `chart` (base, istiod, gateway, cni, ztunnel) of an Istio release."""
    return cache_dir() / "charts" / version / f"{chart}-{version}.tgz"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Completed:
    """A finished command: what it printed and how it ended."""

    args: list[str]
    returncode: int
    stdout: str
    stderr: str

    def check(self) -> Completed:
        if self.returncode != 0:
            raise AssertionError(
                f"{' '.join(self.args)} exited {self.returncode}\n"
                f"stdout:\n{self.stdout[-6000:]}\nstderr:\n{self.stderr[-6000:]}"
            )
        return self


def run(
    args: Sequence[str | Path],
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = 600,
    input_text: str | None = None,
) -> Completed:
    """Run a command to its end; never raises on a non-zero exit (see `Completed.check`)."""
    argv = [str(arg) for arg in args]
    done = subprocess.run(
        argv,
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        input=input_text,
        check=False,
    )
    return Completed(argv, done.returncode, done.stdout, done.stderr)
