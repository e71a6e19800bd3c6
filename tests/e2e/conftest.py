"""The e2e tier: real Helm, istioctl, Pulumi engine and API server (BRIEF section 10).

Every test here needs tools that `make e2e-tools` builds; without them the tier is
skipped with one reason naming what is missing. `make test` does not collect this
folder; `make e2e` runs it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from e2e.cluster import Cluster, chart_repository, running_cluster
from e2e.tools import PROJECT_DIR, TOOLS, cache_dir, gateway_api_crds, missing_tools
from e2e.tools import run as run_command
from e2e.workspace import Workspace, stack_file_config

# Renders here walk the canary too, whose default revision moves the stacks' Gateway API
# release from 1.5.1 to 1.6.0: both come from the releases build-tools.sh assembled.
os.environ["ISTIO_MESH_GATEWAY_API_CRDS"] = str(gateway_api_crds("{version}"))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip each e2e test whose tools are not built: a module lists the ones it needs in
    `E2E_TOOLS` (default: all of them)."""
    here = Path(__file__).parent
    for item in items:
        if not Path(str(item.fspath)).is_relative_to(here):
            continue
        missing = missing_tools(getattr(item.module, "E2E_TOOLS", TOOLS))
        if missing:
            reason = f"e2e tools not built in {cache_dir()} ({', '.join(missing)}): make e2e-tools"
            item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(scope="session")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    """`mesh render` of dev and prod (prod trailing dev's render), as a user runs it."""
    out = tmp_path_factory.mktemp("render")
    python = PROJECT_DIR / "venv" / "bin" / "python"
    run_command(
        [python, "-m", "mesh", "render", "--stack", "dev", "--out", out / "dev"], cwd=PROJECT_DIR
    ).check()
    run_command(
        [
            python,
            "-m",
            "mesh",
            "render",
            "--stack",
            "prod",
            "--out",
            out / "prod",
            "--reference",
            f"dev={out / 'dev' / 'stack.json'}",
        ],
        cwd=PROJECT_DIR,
    ).check()
    yield {"dev": out / "dev", "prod": out / "prod"}


def render_stack_file(stack_file: Path, out: Path, *references: str) -> Path:
    """`mesh render --stack-file` of an e2e stack file, as the fast tier's harness sees it."""
    python = PROJECT_DIR / "venv" / "bin" / "python"
    args: list[str | Path] = [python, "-m", "mesh", "render", "--stack-file", stack_file]
    args += ["--out", out]
    for reference in references:
        args += ["--reference", reference]
    run_command(args, cwd=PROJECT_DIR).check()
    return out


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """An API server of the test module's own (they start in seconds)."""
    with running_cluster(tmp_path_factory.mktemp("cluster")) as running:
        yield running


@pytest.fixture(scope="session")
def chart_repo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with chart_repository(tmp_path_factory.mktemp("charts")) as url:
        yield url


@pytest.fixture(scope="module")
def workspace(
    tmp_path_factory: pytest.TempPathFactory, cluster: Cluster, chart_repo: str
) -> Workspace:
    """The project on a local backend of its own, with the e2e `dev` and `prod` stacks."""
    space = Workspace(tmp_path_factory.mktemp("workspace"), cluster.kubeconfig, chart_repo)
    for stack in ("dev", "prod"):
        space.write_stack(stack, stack_file_config(stack, chart_repo))
        space.write_policy_config(stack)
        space.init_stack(stack)
    return space
