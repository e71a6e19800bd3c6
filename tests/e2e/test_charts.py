"""Check 1 of the e2e tier: Istio's real charts under `helm template` with our values.

For every Istio release of every stack (dev, prod) and of every state of the canary
runbook (docs/RUNBOOKS.md "Canary upgrade of Istio"), `helm template` against the chart
archives `make e2e-tools` packaged, with exactly the values `mesh render` writes:

- no object (group, kind, namespace, name) is rendered by two releases of one state, and
  none changes owner release between two consecutive states (BRIEF section 9: Helm
  refuses to adopt an object another release owns);
- every Istio `Gateway` selects the pods of its gateway release's Deployment;
- istiod's PodDisruptionBudget is rendered exactly when the stack is HA;
- `mesh check` over the chart output plus our manifests finds no mandatory violation,
  except the explicit EXEMPTIONS below (none today).

The add-on releases (prometheus, grafana, jaeger, kiali) are not templated: their charts
come from other repositories the e2e tier does not build (tests/e2e/charts.py).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from components import naming
from e2e.tools import PROJECT_DIR, run
from tests.e2e.charts import (
    DEV_CANARY_STEPS,
    NEW,
    NEW_REV,
    OLD,
    OLD_REV,
    PROD_CANARY_STEPS,
    CanaryStep,
    ObjectId,
    TemplatedStack,
    describe,
    helm_template,
    istio_config,
    load_manifests,
    load_stack_config,
    mesh_render,
    object_id,
    owner_changes,
    parse_documents,
    pod_template_labels,
    selector_matches,
    shared_objects,
    stack_file,
    template_stack,
    write_stack_file,
    yaml_files,
)

E2E_TOOLS = ("helm", "istioctl")
"""What this module needs built (conftest skips it otherwise)."""

STACKS = ("dev", "prod")
# What each committed stack is meant to be; the PDB check holds the render to it, so that
# dropping prod's highAvailability fails here and not only in production.
EXPECTED_HA = {"dev": False, "prod": True}


# --- canary runbook states ---------------------------------------------------------------


class CanaryRenders:
    """`mesh render` of each canary state, on demand, once per session. Dev step 1 and
    prod before step 4 are the committed stack files: they reuse the `rendered` fixture."""

    def __init__(self, base: Path, rendered: dict[str, Path]) -> None:
        self.base = base
        self.rendered = rendered
        self.renders: dict[str, Path] = {}

    def render(self, step: CanaryStep) -> Path:
        if step.name in self.renders:
            return self.renders[step.name]
        if not step.edits:
            out = self.rendered[step.stack]
        else:
            folder = self.base / step.name.replace(" ", "-")
            config = step.config(load_stack_config(stack_file(step.stack)))
            path = write_stack_file(step.stack, config, folder / "stack")
            references = {}
            if step.stack == "prod":
                # prod trails dev: dev at step 3 has run both versions and moved the tags.
                dev = self.render(DEV_CANARY_STEPS[2])
                references["dev"] = dev / "stack.json"
            out = mesh_render(folder / "render", stack_path=path, references=references)
        self.renders[step.name] = out
        return out


@pytest.fixture(scope="session")
def canary(tmp_path_factory: pytest.TempPathFactory, rendered: dict[str, Path]) -> CanaryRenders:
    return CanaryRenders(tmp_path_factory.mktemp("canary"), rendered)


def test_stack_files_are_where_the_runbook_starts() -> None:
    """The canary states are edits of the committed stack files: dev must be at step 1
    (1.30.5 stable, 1.31.1 canary) and prod before step 4 (1.30.5 only), as the runbook
    says; otherwise the states below no longer are the runbook's."""
    dev = istio_config(load_stack_config(stack_file("dev")))
    prod = istio_config(load_stack_config(stack_file("prod")))
    assert [rev["version"] for rev in dev["revisions"]] == [OLD, NEW]
    assert dev["tags"] == {"stable": OLD_REV, "canary": NEW_REV}
    assert dev["defaultRevision"] == OLD_REV
    assert [rev["version"] for rev in prod["revisions"]] == [OLD]
    assert prod["tags"] == {"stable": OLD_REV}


ALL_STATES = DEV_CANARY_STEPS + PROD_CANARY_STEPS


@pytest.mark.parametrize("step", ALL_STATES, ids=[step.name for step in ALL_STATES])
def test_no_object_rendered_by_two_releases(step: CanaryStep, canary: CanaryRenders) -> None:
    """Within one state (which includes today's dev and prod), an object has one owner: two
    releases, or a release and the program's own manifests, applying it means the second
    fails ("invalid ownership metadata" from Helm, "already exists" from Pulumi)."""
    stack = template_stack(canary.render(step))
    shared = shared_objects(stack)
    assert not shared, f"{step.name} ({step.summary}): objects with two owners:\n" + (
        describe([f"{oid}: {', '.join(names)}" for oid, names in sorted(shared.items())])
    )


STEP_PAIRS = [
    pytest.param(DEV_CANARY_STEPS[0], DEV_CANARY_STEPS[1], id="dev before step 1 -> step 1"),
    pytest.param(DEV_CANARY_STEPS[1], DEV_CANARY_STEPS[2], id="dev step 1 -> 3"),
    pytest.param(DEV_CANARY_STEPS[2], DEV_CANARY_STEPS[3], id="dev step 3 -> 7"),
    pytest.param(PROD_CANARY_STEPS[0], PROD_CANARY_STEPS[1], id="prod -> step 4"),
    pytest.param(PROD_CANARY_STEPS[1], PROD_CANARY_STEPS[2], id="prod step 4 -> 6"),
]


@pytest.mark.parametrize(("before", "after"), STEP_PAIRS)
def test_no_object_changes_owner_across_a_canary_step(
    before: CanaryStep, after: CanaryStep, canary: CanaryRenders
) -> None:
    """An object applied before and after a step keeps its owner (a release, or the program
    itself): Helm cannot move it (the new owner's install fails with "invalid ownership
    metadata"; the old owner going first deletes it, leaving a gap: new pods without a
    sidecar). Up to e4e22c1 the tag webhooks istio-revision-tag-stable/-default moved from
    release istiod-1-30-5 to istiod-1-31-1 at dev step 3 and prod step 4 (BRIEF section 9)."""
    old = template_stack(canary.render(before))
    new = template_stack(canary.render(after))
    changes = owner_changes(old, new)
    assert not changes, (
        f"{before.name} -> {after.name} ({after.summary}): objects change owner release:\n"
        + describe(changes)
    )


# --- revision tags: our objects are the chart's ------------------------------------------

TAG_LABEL = "istio.io/tag"
REV_LABEL = "istio.io/rev"


AMBIENT_EXCLUSION = {"key": "istio.io/dataplane-mode", "operator": "NotIn", "values": ["ambient"]}


def skipping_ambient_namespaces(webhooks: Any) -> Any:
    """The chart's tag webhooks with our one deliberate difference: the namespace-wide
    injector skips ambient namespaces, which carry the tag too (components.revision_tags)."""
    if webhooks is None:  # a Service
        return None
    adjusted = []
    for webhook in webhooks:
        if str(webhook.get("name", "")).startswith("rev.namespace."):
            selector = webhook.get("namespaceSelector") or {}
            expressions = [*selector.get("matchExpressions", []), AMBIENT_EXCLUSION]
            webhook = {
                **webhook,
                "namespaceSelector": {**selector, "matchExpressions": expressions},
            }
        adjusted.append(webhook)
    return adjusted


@pytest.mark.parametrize("stack", STACKS)
def test_revision_tags_are_what_the_istiod_chart_renders(
    stack: str, rendered: dict[str, Path]
) -> None:
    """The program declares each revision tag's webhook and Service itself (no release owns
    a tag, so moving one is an update in place). They must be what the istiod chart of the
    tag's revision renders with `revisionTags: [<tag>, ...]`: same objects, same webhooks
    and Service spec, and our labels (istiod finds its webhooks by `istio.io/rev`) as the
    chart sets them. Helm's own labels aside."""
    charts = template_stack(rendered[stack])
    ours: dict[ObjectId, dict[str, Any]] = {}
    for _, obj in load_manifests(rendered[stack]):
        if TAG_LABEL in ((obj.get("metadata") or {}).get("labels") or {}):
            ours[object_id(obj, "default")] = obj
    assert ours, f"{stack}: the program declares no revision tag object"
    by_revision: dict[str, set[str]] = {}
    for obj in ours.values():
        labels = obj["metadata"]["labels"]
        by_revision.setdefault(str(labels.get(REV_LABEL)), set()).add(str(labels[TAG_LABEL]))
    chart_objects: dict[ObjectId, dict[str, Any]] = {}
    for revision, tags in sorted(by_revision.items()):
        release = charts.releases.get(f"istiod-{revision}")
        assert release is not None, f"{stack}: tags {sorted(tags)} point at no istiod release"
        with_tags = replace(
            release.release, values={**release.release.values, "revisionTags": sorted(tags)}
        )
        output = parse_documents(helm_template(with_tags, charts.work_dir, ".tags"))
        plain = release.ids()
        for obj in output:
            oid = object_id(obj, release.release.namespace)
            if oid not in plain:
                chart_objects[oid] = obj
    problems = [
        f"{oid}: the chart renders it, the program does not"
        for oid in sorted(chart_objects)
        if oid not in ours
    ]
    for oid, obj in sorted(ours.items()):
        chart = chart_objects.get(oid)
        if chart is None:
            problems.append(f"{oid}: the program declares it, the chart renders no such object")
            continue
        for key in ("webhooks", "spec"):
            expected = chart.get(key)
            if key == "webhooks":
                expected = skipping_ambient_namespaces(expected)
            if obj.get(key) != expected:
                problems.append(
                    f"{oid}: {key} differs\n    ours:  {obj.get(key)}\n    chart: {chart.get(key)}"
                )
        chart_labels = (chart.get("metadata") or {}).get("labels") or {}
        for label, value in sorted(obj["metadata"]["labels"].items()):
            if chart_labels.get(label) != value:
                problems.append(
                    f"{oid}: label {label}={value}, the chart sets {chart_labels.get(label)}"
                )
    assert not problems, f"{stack}:\n" + describe(problems)


# --- gateways ----------------------------------------------------------------------------


def istio_gateways(render_dir: Path) -> list[tuple[Path, dict[str, Any]]]:
    return [
        (path, obj)
        for path, obj in load_manifests(render_dir)
        if obj.get("kind") == "Gateway"
        and str(obj.get("apiVersion", "")).startswith("networking.istio.io/")
    ]


@pytest.mark.parametrize("stack", STACKS)
def test_gateway_selector_matches_gateway_pods(stack: str, rendered: dict[str, Path]) -> None:
    """Each Istio Gateway selects the pods the gateway chart renders for the release in
    the Gateway's namespace (each gateway has a namespace of its own; the egress gateway's
    also holds the Gateways of the external hosts routed through it)."""
    charts = template_stack(rendered[stack])
    gateways = istio_gateways(rendered[stack])
    assert gateways, f"{stack}: no Istio Gateway in the render (nothing to check)"
    by_namespace = {
        templated.release.namespace: name
        for name, templated in charts.releases.items()
        if templated.release.chart == "gateway"
    }
    problems = []
    for path, gateway in gateways:
        oid = object_id(gateway, None)
        selector = (gateway.get("spec") or {}).get("selector") or {}
        release_name = by_namespace.get(oid.namespace or "")
        if release_name is None:
            problems.append(f"{oid} ({path.name}): no gateway-chart release in {oid.namespace}")
            continue
        templated = charts.releases[release_name]
        deployments = templated.find("Deployment", "apps")
        if len(deployments) != 1:
            problems.append(f"{release_name}: {len(deployments)} Deployments rendered, not 1")
            continue
        labels = pod_template_labels(deployments[0])
        if not selector_matches(selector, labels):
            problems.append(
                f"{oid}: selector {selector} does not match the pod labels of Deployment "
                f"{release_name}: {labels}"
            )
    served = {by_namespace.get(object_id(gw, None).namespace or "") for _, gw in gateways}
    idle = sorted(
        name
        for name, templated in charts.releases.items()
        if templated.release.chart == "gateway" and name not in served
    )
    if idle:
        print(f"{stack}: gateway releases without an Istio Gateway: {', '.join(idle)}")
    assert not problems, f"{stack}:\n" + describe(problems)


# --- istiod's PodDisruptionBudget --------------------------------------------------------


@pytest.mark.parametrize("stack", STACKS)
def test_istiod_pdb_rendered_exactly_when_ha(stack: str, rendered: dict[str, Path]) -> None:
    """istiod renders a PDB only with autoscaleMin > 1 (or replicaCount > 1 without
    autoscaling): an HA stack must get one per revision, a non-HA stack none."""
    ha = bool(istio_config(load_stack_config(stack_file(stack))).get("highAvailability"))
    assert ha == EXPECTED_HA[stack], (
        f"Pulumi.{stack}.yaml: highAvailability is {ha}, the {stack} stack must be "
        f"{'HA' if EXPECTED_HA[stack] else 'non-HA'}"
    )
    charts = template_stack(rendered[stack])
    istiods = {name: t for name, t in charts.releases.items() if t.release.chart == "istiod"}
    assert istiods, f"{stack}: no istiod release"
    problems = []
    for name, templated in sorted(istiods.items()):
        pdbs = templated.find("PodDisruptionBudget", "policy")
        if not ha:
            if pdbs:
                problems.append(f"{name}: PDB rendered on a non-HA stack")
            continue
        if len(pdbs) != 1:
            problems.append(f"{name}: {len(pdbs)} PodDisruptionBudgets rendered, want 1 (HA)")
            continue
        deployments = [d for d in templated.find("Deployment", "apps")]
        selector = ((pdbs[0].get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
        if not any(selector_matches(selector, pod_template_labels(d)) for d in deployments):
            problems.append(f"{name}: PDB selector {selector} selects no istiod pod")
    assert not problems, f"{stack} (highAvailability: {ha}):\n" + describe(problems)


# --- images ------------------------------------------------------------------------------

IMAGE_HUB = naming.IMAGE_HUB
WORKLOADS = ("Deployment", "DaemonSet", "StatefulSet")


@pytest.mark.parametrize("stack", STACKS)
def test_images_come_from_docker_io_istio(stack: str, rendered: dict[str, Path]) -> None:
    """Every image Istio's charts run (istiod, cni, ztunnel) and every proxy istiod injects
    (the injector's `global.hub`; gateway pods are injected too) comes from docker.io/istio,
    not from the chart's default (released 1.30 charts: gcr.io/istio-release, retired in
    December 2026; the source-packaged charts here: registry.istio.io/testing)."""
    charts = template_stack(rendered[stack])
    problems = []
    for name, templated in sorted(charts.releases.items()):
        for kind in WORKLOADS:
            for workload in templated.find(kind):
                pod = ((workload.get("spec") or {}).get("template") or {}).get("spec") or {}
                for container in [*pod.get("containers", []), *pod.get("initContainers", [])]:
                    image = str(container.get("image", ""))
                    if image != "auto" and not image.startswith(f"{IMAGE_HUB}/"):
                        problems.append(
                            f"{name}: {kind} container {container.get('name')}: {image}"
                        )
        for configmap in templated.find("ConfigMap"):
            if not str(configmap["metadata"]["name"]).startswith("istio-sidecar-injector"):
                continue
            hub = json.loads(configmap["data"]["values"]).get("global", {}).get("hub")
            if hub != IMAGE_HUB:
                problems.append(f"{name}: injected proxies come from {hub}")
    assert not problems, f"{stack}:\n" + describe(problems)


# --- the policy pack over chart output plus our manifests --------------------------------


@dataclass(frozen=True)
class Exemption:
    """A mandatory violation Istio's own chart output is allowed to have."""

    policy: str
    chart: str  # the Istio chart whose output carries it (our manifests get none)
    kind: str
    message: str  # a fragment of the violation's message
    reason: str


EXEMPTIONS: tuple[Exemption, ...] = ()
"""Empty: the one Istio chart output that tripped a rule (the gateway chart's pods,
labeled `istio.io/dataplane-mode: none` as Envoys injected with the `gateway` template)
showed the rule was wrong, and `workload-injection-enabled` now knows gateway pods."""

_WHERE = re.compile(r"^(?P<kind>\S+) .*\((?P<path>[^()]+):(?P<line>\d+)\)$")


def exemption_for(violation: dict[str, Any], charts: TemplatedStack) -> Exemption | None:
    where = _WHERE.match(str(violation.get("resource", "")))
    if where is None:
        return None
    templated = charts.release_of_file(Path(where["path"]))
    if templated is None:
        return None  # our own manifests: never exempt
    for exemption in EXEMPTIONS:
        if (
            exemption.policy == violation.get("policy")
            and exemption.chart == templated.release.chart
            and exemption.kind == where["kind"]
            and exemption.message in str(violation.get("message", ""))
        ):
            return exemption
    return None


@pytest.mark.parametrize("stack", STACKS)
def test_mesh_check_passes_on_chart_output_and_manifests(
    stack: str, rendered: dict[str, Path]
) -> None:
    charts = template_stack(rendered[stack])
    files = yaml_files([charts.charts_dir, charts.manifests_dir])
    done = run(
        [
            PROJECT_DIR / "venv" / "bin" / "python",
            "-m",
            "mesh",
            "check",
            "--policy-config",
            PROJECT_DIR / "policies" / "config" / f"{stack}.json",
            "--format",
            "json",
            *files,
        ],
        cwd=PROJECT_DIR,
        timeout=300,
    )
    assert done.returncode in (0, 1), f"mesh check crashed ({done.returncode}):\n{done.stderr}"
    violations: list[dict[str, Any]] = json.loads(done.stdout)
    blocking, exempted = [], []
    for violation in violations:
        line = f"[{violation['policy']}] {violation['resource']}: {violation['message']}"
        if violation.get("enforcement") != "mandatory":
            print(f"{stack}: {violation.get('enforcement')}: {line}")
            continue
        exemption = exemption_for(violation, charts)
        if exemption is None:
            blocking.append(line)
        else:
            exempted.append(f"{line} (exempt: {exemption.reason})")
    for line in exempted:
        print(f"{stack}: exempted: {line}")
    assert not blocking, f"{stack}: mandatory violations:\n" + describe(blocking)
