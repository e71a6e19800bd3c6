"""Check 7: `istioctl analyze` and `mesh check` report the same objects, per family.

For each istioctl message family the pack judges (issue #20: IST0101, IST0127,
IST0130-0132, IST0138, IST0145, IST0165, IST0173), the two must name the same objects:

- on [agreement/mesh.yaml](agreement/mesh.yaml), a small mesh with one mistake per
  family beside clean objects of each kind, workloads included. istioctl analyzes it
  live: the objects are created in the API server (Istio's CRDs installed, pods as bare
  objects), as `istioctl analyze -A` sees a real cluster; offline it would skip the
  workload analyzers (check 2). `mesh check` reads the same file. No exception.
- on Istio's own analyzer test cases (`pkg/config/analysis/analyzers/analyzers_test.go`
  and its testdata, in the Go module cache istioctl was built from): `mesh check` over
  each case's input files reports exactly the objects the case expects of its analyzer,
  except the differences listed in ISTIO_CASE_DIFFERENCES, each with its reason.
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
    ("IST0165", None): "virtual-service-gateway-bound",
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


def mesh_check_findings(*files: Path, status: tuple[int, ...] = (0, 1)) -> dict[str, set[str]]:
    """rule -> the objects (`Kind ns/name`) `mesh check` reports of it over `files`;
    `status`: the exit statuses expected (1: mandatory violations found)."""
    python = PROJECT_DIR / "venv" / "bin" / "python"
    done = run([python, "-m", "mesh", "check", *files, "--format", "json"], cwd=PROJECT_DIR)
    assert done.returncode in status, done.stderr
    found: dict[str, set[str]] = defaultdict(set)
    for violation in json.loads(done.stdout):
        found[violation["policy"]].add(violation["resource"].rsplit(" (", 1)[0])
    return found


def test_istioctl_and_the_pack_report_the_same_objects(mesh_in_cluster: Cluster) -> None:
    theirs, ours = istioctl_findings(mesh_in_cluster), mesh_check_findings(MESH, status=(1,))
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


# --------------------------------------------------------------------------------------
# Istio's own analyzer test cases
# --------------------------------------------------------------------------------------

ANALYZER_RULES: dict[str, set[str]] = {
    "gateway.ConflictingGatewayAnalyzer": {"gateway-no-conflict"},
    "gateway.CertificateAnalyzer": {"gateway-certificate-unique"},
    "authz.AuthorizationPoliciesAnalyzer": {
        "authorization-selects-workloads",
        "authorization-source-namespaces-exist",
    },
    "destinationrule.PodNotSelectedAnalyzer": {"destination-rule-subsets-select-pods"},
    "virtualservice.GatewayAnalyzer": {"virtual-service-gateway-bound"},
    "schemaValidation.CollectionValidationAnalyzer": {"virtual-service-matches-reachable"},
}
"""The analyzers of the families, by the Go expression that names them in a case, and
the pack's rules for their families."""

MESSAGE_RULES = {
    "ConflictingGateways": "gateway-no-conflict",
    "GatewayDuplicateCertificate": "gateway-certificate-unique",
    "NoMatchingWorkloadsFound": "authorization-selects-workloads",
    "DestinationRuleSubsetNotSelectPods": "destination-rule-subsets-select-pods",
    "VirtualServiceHostNotFoundInGateway": "virtual-service-gateway-bound",
    "ReferencedInternalGateway": "virtual-service-gateway-bound",
    "VirtualServiceUnreachableRule": "virtual-service-matches-reachable",
    "VirtualServiceIneffectiveMatch": "virtual-service-matches-reachable",
}
"""istioctl message names (as the test cases spell them) -> the pack's rule."""

NOT_FOUND_RULES = {
    "virtualservice.GatewayAnalyzer": "virtual-service-gateway-bound",
    "authz.AuthorizationPoliciesAnalyzer": "authorization-source-namespaces-exist",
}
"""Whose family a ReferencedResourceNotFound (IST0101) is, by the analyzer that reports it."""

ISTIO_CASE_DIFFERENCES: dict[tuple[str, str], str] = {
    (
        "authorizationpolicies",
        "AuthorizationPolicy httpbin-empty/httpbin-empty-namespace-wide",
    ): "a namespace-wide policy in a namespace without workloads: the pack judges only "
    "namespaces whose workloads the input holds, since a stack never holds any",
    (
        "dupmatches",
        "VirtualService default/non-method-get",
    ): "a prefix match beside a broader one in the same route (istioctl: Info): same "
    "destination, so harmless; the pack reports covered matches of earlier routes only",
    (
        "dupmatches",
        "VirtualService default/overlapping-in-single-match",
    ): "as non-method-get: an overlap inside one route",
    (
        "DestinationRuleEmptyTopologyLabels",
        "DestinationRule default/empty-topology-labels",
    ): "a subset by a topology label (empty value): pods get topology labels from their "
    "node at run time, so the pack does not judge them",
}
"""(case name, `Kind ns/name`) where `mesh check` and the case's expectation differ."""

CASE = re.compile(
    r"\{\s*name:\s*\"(?P<name>[^\"]+)\",\s*inputFiles:\s*\[\]string\{(?P<files>[^}]*)\},"
    r"(?P<rest>.*?)\n\t\},",
    re.S,
)
ANALYZER = re.compile(r"analyzer:\s*&?(?P<analyzer>[\w.]+)")
EXPECTED = re.compile(r"\{msg\.(?P<message>\w+),\s*\"(?P<origin>[^\"]+)\"")


def istio_analyzers_dir() -> Path:
    """The analyzers package of the Istio module istioctl is built from."""
    versions = dict(
        line.split("=", 1)
        for line in (PROJECT_DIR / "e2e" / "versions.env").read_text().splitlines()
        if "=" in line and not line.startswith("#")
    )
    cache = run(["go", "env", "GOMODCACHE"]).check().stdout.strip()
    module = Path(cache) / f"istio.io/istio@{versions['ISTIOCTL_MODULE']}"
    directory = module / "pkg" / "config" / "analysis" / "analyzers"
    assert (directory / "analyzers_test.go").is_file(), f"{module}: run make e2e-tools"
    return directory


def istio_cases(directory: Path) -> list[tuple[str, list[Path], set[str], dict[str, set[str]]]]:
    """(name, input files, rules judged, rule -> objects expected) of each case whose
    analyzer is one of the families'."""
    cases = []
    for case in CASE.finditer((directory / "analyzers_test.go").read_text()):
        found = ANALYZER.search(case["rest"])
        analyzer = found["analyzer"] if found else ""
        if analyzer not in ANALYZER_RULES:
            continue
        expected: dict[str, set[str]] = defaultdict(set)
        for message in EXPECTED.finditer(case["rest"]):
            name = message["message"]
            rule = (
                NOT_FOUND_RULES.get(analyzer)
                if name == "ReferencedResourceNotFound"
                else MESSAGE_RULES.get(name)
            )
            if rule is not None:
                kind, _, obj = message["origin"].partition(" ")
                expected[rule].add(f"{kind} {obj if '/' in obj else 'default/' + obj}")
        files = [directory / f.strip().strip('"') for f in case["files"].split(",") if f.strip()]
        cases.append((case["name"], files, ANALYZER_RULES[analyzer], expected))
    return cases


def test_the_pack_reports_what_istios_own_analyzer_cases_expect() -> None:
    cases = istio_cases(istio_analyzers_dir())
    differences, listed, expected_total = [], set(), 0
    for name, files, rules, expected in cases:
        ours = mesh_check_findings(*files)
        for rule in sorted(rules):
            expected_total += len(expected[rule])
            for origin in sorted(expected[rule] ^ ours[rule]):
                if (name, origin) in ISTIO_CASE_DIFFERENCES:
                    listed.add((name, origin))
                    continue
                side = "expected by Istio only" if origin in expected[rule] else "pack only"
                differences.append(f"{name} [{rule}]: {origin} ({side})")
    print(f"{len(cases)} Istio analyzer cases, {expected_total} expected findings")
    assert len(cases) >= 15, "the test cases were not found: has analyzers_test.go changed?"
    assert not differences, "mesh check and Istio's analyzer cases differ:\n" + "\n".join(
        differences
    )
    # A listed difference that no longer occurs is stale: drop it from the list.
    assert listed == set(ISTIO_CASE_DIFFERENCES), set(ISTIO_CASE_DIFFERENCES) - listed
