"""Check 7: `istioctl analyze` and `mesh check` report the same objects, per family.

For each istioctl message family the pack judges (BRIEF, issue #20: IST0101, IST0127,
IST0130-0132, IST0138, IST0145, IST0173), the two must name exactly the same objects
on the same mesh: [agreement/mesh.yaml](agreement/mesh.yaml), a small mesh with one
mistake per family beside clean objects of each kind, workloads included.

istioctl analyzes it live: the objects are created in the API server (Istio's CRDs
installed, pods as bare objects), as `istioctl analyze -A` sees a real cluster; offline
it would skip the workload analyzers (check 2). `mesh check` reads the same file.
"""

from __future__ import annotations

import json
import os
import re
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
import yaml

from e2e.cluster import Cluster
from e2e.tools import PROJECT_DIR, run, tool

E2E_TOOLS = ("etcd", "kube-apiserver", "istioctl")
"""What this module needs built (conftest skips it otherwise)."""

MESH = Path(__file__).parent / "agreement" / "mesh.yaml"

FAMILIES: dict[tuple[str, str | None], str] = {
    ("IST0101", "gateway"): "virtual-service-gateway-bound",
    ("IST0132", None): "virtual-service-gateway-bound",
    ("IST0145", None): "gateway-no-conflict",
    ("IST0138", None): "gateway-certificate-unique",
    ("IST0173", None): "destination-rule-subsets-select-pods",
    ("IST0130", None): "virtual-service-matches-reachable",
    ("IST0131", None): "virtual-service-matches-reachable",
    ("IST0127", None): "authorization-selects-workloads",
    ("IST0101", "namespace"): "authorization-source-namespaces-exist",
}
"""istioctl (code, what IST0101 found missing) -> the pack's rule for that family."""

EXCEPTIONS: dict[tuple[str, str], str] = {}
"""(rule, `Kind ns/name`) one side reports and the other does not, and why. None today:
the two agree on every object of the mesh."""

REFERENCED = re.compile(r"^Referenced (\S+) not found")


def family(message: dict[str, Any]) -> str | None:
    """The pack rule of an istioctl message's family; None outside the families."""
    code = str(message.get("code"))
    missing = REFERENCED.match(str(message.get("message", "")))
    return FAMILIES.get((code, missing[1] if missing and code == "IST0101" else None))


@pytest.fixture(scope="module")
def mesh_in_cluster(cluster: Cluster) -> Cluster:
    plurals = cluster.install_crds(Path(os.environ["ISTIO_REFERENCE"]) / "crd-all.gen.yaml")
    for obj in yaml.safe_load_all(MESH.read_text()):
        cluster.create(obj, plurals)
    return cluster


def istioctl_findings(cluster: Cluster) -> dict[str, set[str]]:
    done = run(
        [
            tool("istioctl"),
            "analyze",
            "--kubeconfig",
            cluster.kubeconfig,
            "--all-namespaces",
            "--output",
            "json",
            "--color=false",
        ],
        timeout=300,
    )
    assert done.returncode == 0, f"istioctl analyze exited {done.returncode}:\n{done.stderr}"
    found: dict[str, set[str]] = defaultdict(set)
    for message in json.loads(done.stdout):
        rule = family(message)
        if rule is not None:
            found[rule].add(str(message["origin"]))
    return found


def pack_findings() -> dict[str, set[str]]:
    python = PROJECT_DIR / "venv" / "bin" / "python"
    done = run([python, "-m", "mesh", "check", MESH, "--format", "json"], cwd=PROJECT_DIR)
    assert done.returncode == 1, done.stderr  # the mesh holds mandatory violations
    found: dict[str, set[str]] = defaultdict(set)
    rules = set(FAMILIES.values())
    for violation in json.loads(done.stdout):
        if violation["policy"] in rules:
            found[violation["policy"]].add(violation["resource"].rsplit(" (", 1)[0])
    return found


def test_istioctl_and_the_pack_report_the_same_objects(mesh_in_cluster: Cluster) -> None:
    theirs, ours = istioctl_findings(mesh_in_cluster), pack_findings()
    differences = []
    for rule in sorted(set(FAMILIES.values())):
        # Each family's mistake is in the mesh: silence on both sides would prove nothing.
        assert theirs[rule], f"istioctl reports nothing for {rule}'s family"
        for origin in sorted(theirs[rule] ^ ours[rule]):
            if (rule, origin) in EXCEPTIONS:
                continue
            side = "istioctl only" if origin in theirs[rule] else "mesh check only"
            differences.append(f"{rule}: {origin} ({side})")
    assert not differences, "istioctl analyze and mesh check disagree:\n" + "\n".join(differences)
