"""`python -m mesh bench --engine real`: a real `pulumi preview` of generated meshes.

Needs the e2e tier's tools (`make e2e-tools`). For each mesh size, an API server on
loopback (e2e/cluster.py) and a workspace of the project on a local backend
(e2e/workspace.py) preview the same generated stack as the mock bench, with its services
in service files, once without and once with the policy pack, then both again the way
the pipelines preview (`SKIP_CHECKPOINTS`). Each preview's wall time
is measured, and where its CPU time went, process by process: the Pulumi engine, the
program (Python, under the SDK's executor), the kubernetes provider, the policy pack
and the language host. CPU is read from /proc while the preview runs (every
`SAMPLE_SECONDS`; a process's last moments are lost, under one sample each).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from e2e.cluster import chart_repository, running_cluster
from e2e.tools import missing_tools
from e2e.workspace import Workspace

SAMPLE_SECONDS = 0.1
SKIP_CHECKPOINTS = {"PULUMI_SKIP_CHECKPOINTS": "true"}
"""How the pipelines preview (.github/workflows): a preview persists nothing, but by
default the CLI still serializes the whole snapshot after every step, only to discard
it (its SnapshotManager's default loop); this makes it save once, at the end."""
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PARTS = ("engine", "program", "provider", "pack", "language host", "other")


def part_of(command: list[str]) -> str:
    """Which part of a preview a process is, from its command line."""
    line = " ".join(command)
    if "pulumi.policy" in line:
        return "pack"
    if "pulumi-language-python-exec" in line:
        return "program"
    name = Path(command[0]).name if command else ""
    if name == "pulumi":
        return "engine"
    if name == "pulumi-resource-kubernetes":
        return "provider"
    if name == "pulumi-language-python":
        return "language host"
    return "other"


def _descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(parent, []).append(int(entry))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo += children.get(pid, [])
    return found


def _cpu_seconds(pid: int) -> tuple[list[str], float] | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    user, system = int(fields[11]), int(fields[12])
    return [part.decode() for part in command if part], (user + system) / CLOCK_TICKS


def timed_preview(run: Callable[[], subprocess.Popen[str]]) -> dict[str, Any]:
    """Start a preview, sample its process tree's CPU until it ends; wall and CPU times."""
    start = time.perf_counter()
    process = run()
    seen: dict[int, tuple[str, float]] = {}
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            for pid in _descendants(process.pid):
                read = _cpu_seconds(pid)
                if read is None:
                    continue
                # An exited process (a zombie until reaped) has an empty command line:
                # it stays what it was while it ran.
                part = part_of(read[0]) if read[0] or pid not in seen else seen[pid][0]
                seen[pid] = (part, read[1])
            stop.wait(SAMPLE_SECONDS)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    output, _ = process.communicate()
    wall = time.perf_counter() - start
    stop.set()
    sampler.join()
    if process.returncode != 0:
        raise RuntimeError(f"pulumi preview failed:\n{output[-4000:]}")
    cpu = dict.fromkeys(PARTS, 0.0)
    for part, seconds in seen.values():
        cpu[part] += seconds
    return {"wall_s": round(wall, 2), "cpu_s": {k: round(v, 2) for k, v in cpu.items() if v}}


def stack_document(config: dict[str, str], chart_repo: str) -> dict[str, Any]:
    """The bench's generated config as a stack file, its charts from the loopback mirror
    and its releases not awaited (no pod can start without nodes)."""
    values = {key: json.loads(text) for key, text in config.items()}
    istio = values["istio-mesh:istio"]
    istio["chartRepository"] = chart_repo
    istio["awaitReleases"] = False
    return {"config": values}


def preview_size(services: int, scratch: Path, chart_repo: str) -> dict[str, Any]:
    from mesh.bench import BENCH_STACK, _in_fresh_interpreter, _program_worker, generate_config

    with running_cluster(scratch / "cluster") as cluster:
        workspace = Workspace(scratch / "workspace", cluster.kubeconfig, chart_repo)
        service_dir = workspace.project / "services"
        service_dir.mkdir()
        config = generate_config(services, service_dir)
        mock = _in_fresh_interpreter(_program_worker, dict(config), None)
        # Service files are listed relative to the project, as a user writes them.
        files = json.loads(config["istio-mesh:serviceFiles"])
        relative = [str(Path(path).relative_to(workspace.project)) for path in files]
        config["istio-mesh:serviceFiles"] = json.dumps(relative)
        workspace.write_stack(BENCH_STACK, stack_document(config, chart_repo))
        policy_config = workspace.write_policy_config("dev")
        workspace.init_stack(BENCH_STACK)

        def preview(*extra: str, **env: str) -> Callable[[], subprocess.Popen[str]]:
            return lambda: workspace.start_pulumi(
                "preview", "--stack", BENCH_STACK, *extra, env=env
            )

        pack = (
            "--policy-pack",
            "policies",
            "--policy-pack-config",
            str(policy_config.relative_to(workspace.project)),
        )
        without_pack = timed_preview(preview())
        with_pack = timed_preview(preview(*pack))
        skipping_without_pack = timed_preview(preview(**SKIP_CHECKPOINTS))
        skipping = timed_preview(preview(*pack, **SKIP_CHECKPOINTS))
    return {
        "services": services,
        "resources": len(mock["resources"]),
        "mock_program_s": round(mock["seconds"], 2),
        "preview": without_pack,
        "preview_with_pack": with_pack,
        "preview_skip_checkpoints_without_pack": skipping_without_pack,
        "preview_skip_checkpoints": skipping,
    }


def real_bench(sizes: list[int]) -> dict[str, Any]:
    """A real preview per size, with and without the pack; the `--format json` document."""
    missing = missing_tools()
    if missing:
        raise RuntimeError(f"the e2e tools are not built ({', '.join(missing)}): make e2e-tools")
    runs = []
    with (
        tempfile.TemporaryDirectory(prefix="bench-real-") as root,
        chart_repository(Path(root) / "charts") as repo,
    ):
        for services in sizes:
            scratch = Path(root) / str(services)
            runs.append(preview_size(services, scratch, repo))
            print(f"bench: real preview of {services} services", file=sys.stderr, flush=True)
    for run in runs:
        without, with_pack = run["preview"]["wall_s"], run["preview_with_pack"]["wall_s"]
        run["pack_share_of_preview"] = round((with_pack - without) / with_pack, 2)
        skip_without = run["preview_skip_checkpoints_without_pack"]["wall_s"]
        skip_with = run["preview_skip_checkpoints"]["wall_s"]
        run["skip_checkpoints_speedup"] = round(with_pack / skip_with, 1)
        run["pack_share_skipping_checkpoints"] = round((skip_with - skip_without) / skip_with, 2)
    return {"engine": "real", "runs": runs}


def format_real(result: dict[str, Any]) -> str:
    """One line per size: wall times, the pack's share, and where the CPU went."""
    lines = []
    for run in result["runs"]:
        cpu = run["preview_with_pack"]["cpu_s"]
        parts = ", ".join(f"{part} {seconds:.1f}" for part, seconds in cpu.items())
        lines.append(
            f"{run['services']} services ({run['resources']} resources): "
            f"mock program {run['mock_program_s']:.1f} s, "
            f"preview {run['preview']['wall_s']:.1f} s, "
            f"with the pack {run['preview_with_pack']['wall_s']:.1f} s "
            f"(pack share {run['pack_share_of_preview']:.2f}); CPU s: {parts}; "
            f"skipping checkpoints {run['preview_skip_checkpoints']['wall_s']:.1f} s "
            f"(x{run['skip_checkpoints_speedup']:.1f}, pack share "
            f"{run['pack_share_skipping_checkpoints']:.2f})"
        )
    return "\n".join(lines)
