"""Istio's real charts under `helm template`, with exactly the values the program passes.

Pure helpers for the e2e checks of tests/e2e/test_charts.py and test_analyze.py: read a
`mesh render` folder's releases, template each Istio release once with the real `helm`
against the chart archive `make e2e-tools` packaged, parse the output into objects, name
objects the way the API server does ((group, kind, namespace, name)), and write the stack
files of the canary runbook's steps (docs/RUNBOOKS.md, "Canary upgrade of Istio").

Only Istio's own charts (base, istiod, gateway, cni, ztunnel) are templated. The add-on
releases (prometheus, grafana, jaeger, kiali) come from other repositories whose charts
the e2e tier does not build: they are skipped here, so their objects are neither checked
for clashes with Istio's nor judged by `mesh check` / `istioctl analyze`.
"""

from __future__ import annotations

import copy
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import yaml

from e2e.tools import PROJECT_DIR, chart_archive, run, tool

ISTIO_CHARTS = frozenset({"base", "istiod", "gateway", "cni", "ztunnel"})
# The owner of our own manifests (Pulumi applies them), beside the releases' names.
PROGRAM = "the program's own manifests"
# `helm template` renders for this cluster: the API server the e2e tier runs (v1.34), so
# version-gated templates (e.g. the base chart's ValidatingAdmissionPolicy) render as they
# would on a current cluster. helm's default API version set already holds every built-in
# group of that version (policy/v1, autoscaling/v2, admissionregistration.k8s.io/v1).
KUBE_VERSION = "1.34.0"
# Kinds without a namespace. Every cluster-scoped kind Istio's charts or our program emit is
# here (the API server's `kubectl api-resources --namespaced=false` for these groups).
CLUSTER_SCOPED_KINDS = frozenset(
    {
        ("", "Namespace"),
        ("", "Node"),
        ("", "PersistentVolume"),
        ("apiextensions.k8s.io", "CustomResourceDefinition"),
        ("apiregistration.k8s.io", "APIService"),
        ("rbac.authorization.k8s.io", "ClusterRole"),
        ("rbac.authorization.k8s.io", "ClusterRoleBinding"),
        ("admissionregistration.k8s.io", "MutatingWebhookConfiguration"),
        ("admissionregistration.k8s.io", "ValidatingWebhookConfiguration"),
        ("admissionregistration.k8s.io", "ValidatingAdmissionPolicy"),
        ("admissionregistration.k8s.io", "ValidatingAdmissionPolicyBinding"),
        ("admissionregistration.k8s.io", "MutatingAdmissionPolicy"),
        ("admissionregistration.k8s.io", "MutatingAdmissionPolicyBinding"),
        ("scheduling.k8s.io", "PriorityClass"),
        ("storage.k8s.io", "StorageClass"),
        ("storage.k8s.io", "CSIDriver"),
        ("node.k8s.io", "RuntimeClass"),
        ("networking.k8s.io", "IngressClass"),
        ("gateway.networking.k8s.io", "GatewayClass"),
    }
)

Obj = dict[str, Any]
# libyaml's safe loader where PyYAML has it: the base chart's CRDs are ~1 MB of YAML.
SAFE_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class ObjectId(NamedTuple):
    """How the API server (and Helm's ownership check) names an object."""

    group: str
    kind: str
    namespace: str | None
    name: str

    def __str__(self) -> str:
        kind = f"{self.kind}.{self.group}" if self.group else self.kind
        return f"{kind} {self.namespace}/{self.name}" if self.namespace else f"{kind} {self.name}"


def api_group(api_version: str) -> str:
    """`networking.istio.io/v1` -> `networking.istio.io`; `v1` -> `` (the core group)."""
    group, _, _ = api_version.rpartition("/")
    return group


def object_id(obj: Mapping[str, Any], default_namespace: str | None) -> ObjectId:
    """(group, kind, namespace, name); a namespaced object without one lands in
    `default_namespace` (the release's, as `helm install --namespace` applies it)."""
    group = api_group(str(obj.get("apiVersion", "")))
    kind = str(obj.get("kind", ""))
    metadata = obj.get("metadata") or {}
    namespace = None
    if (group, kind) not in CLUSTER_SCOPED_KINDS:
        namespace = metadata.get("namespace") or default_namespace
    return ObjectId(group, kind, namespace, str(metadata.get("name", "")))


def parse_documents(text: str) -> list[Obj]:
    """The objects of a multi-document YAML stream (empty documents dropped, `List`s
    flattened into their items)."""
    objects: list[Obj] = []
    for document in yaml.load_all(text, Loader=SAFE_LOADER):
        if not isinstance(document, dict):
            continue
        if document.get("kind") == "List" and isinstance(document.get("items"), list):
            objects.extend(item for item in document["items"] if isinstance(item, dict))
        else:
            objects.append(document)
    return objects


@dataclass(frozen=True)
class Release:
    """One Helm release as `mesh render` wrote it (releases/<name>.yaml)."""

    name: str
    chart: str
    repository: str | None
    version: str
    namespace: str
    values: Mapping[str, Any]
    wait: bool = True

    @property
    def is_istio(self) -> bool:
        return self.chart in ISTIO_CHARTS

    @classmethod
    def load(cls, path: Path) -> Release:
        """A render's release file: the Release resource's inputs (mesh/render.py)."""
        data = yaml.safe_load(path.read_text())
        chart = str(data["chart"])
        repository = (data.get("repositoryOpts") or {}).get("repo")
        if repository is None and chart.startswith("oci://"):
            repository, _, chart = chart.rpartition("/")
        return cls(
            name=str(data["name"]),
            chart=chart,
            repository=repository,
            version=str(data["version"]),
            namespace=str(data["namespace"]),
            values=data.get("values") or {},
            wait=not data.get("skipAwait", False),
        )


def load_releases(render_dir: Path) -> dict[str, Release]:
    """Every release of a render, by name."""
    releases = (Release.load(path) for path in sorted((render_dir / "releases").glob("*.yaml")))
    return {release.name: release for release in releases}


def istio_releases(render_dir: Path) -> dict[str, Release]:
    """The releases of Istio's own charts (the add-ons are skipped: see the module doc)."""
    return {name: rel for name, rel in load_releases(render_dir).items() if rel.is_istio}


def load_manifests(render_dir: Path) -> list[tuple[Path, Obj]]:
    """Our own Kubernetes / Istio objects of a render (manifests/**/*.yaml), with their file."""
    return [
        (path, obj)
        for path in sorted((render_dir / "manifests").rglob("*.yaml"))
        for obj in parse_documents(path.read_text())
    ]


def helm_template(release: Release, workdir: Path, label: str = "") -> str:
    """`helm template` of `release` against its packaged chart, with exactly its values
    (written to `workdir/<release><label>.values.yaml`)."""
    archive = chart_archive(release.chart, release.version)
    if not archive.is_file():
        raise AssertionError(f"no packaged chart {archive} for release {release.name}")
    workdir.mkdir(parents=True, exist_ok=True)
    values = workdir / f"{release.name}{label}.values.yaml"
    values.write_text(yaml.safe_dump(dict(release.values), sort_keys=False))
    done = run(
        [
            tool("helm"),
            "template",
            release.name,
            archive,
            "--namespace",
            release.namespace,
            "--values",
            values,
            "--kube-version",
            KUBE_VERSION,
            "--include-crds",
        ],
        timeout=120,
    ).check()
    return done.stdout


@dataclass
class TemplatedRelease:
    """A release and what its chart renders."""

    release: Release
    objects: list[Obj]
    path: Path  # the chart output, as one multi-document file

    def ids(self) -> dict[ObjectId, Obj]:
        return {object_id(obj, self.release.namespace): obj for obj in self.objects}

    def find(self, kind: str, group: str | None = None) -> list[Obj]:
        return [
            obj
            for obj in self.objects
            if obj.get("kind") == kind
            and (group is None or api_group(str(obj.get("apiVersion", ""))) == group)
        ]


@dataclass
class TemplatedStack:
    """Every Istio release of one render, templated; chart output under `charts_dir`."""

    render_dir: Path
    releases: dict[str, TemplatedRelease] = field(default_factory=dict)

    @property
    def charts_dir(self) -> Path:
        return self.render_dir / "charts"

    @property
    def manifests_dir(self) -> Path:
        return self.render_dir / "manifests"

    @property
    def work_dir(self) -> Path:
        """Values and other inputs of the tools (outside what is checked or analyzed)."""
        return self.render_dir / "e2e-work"

    def owners(self) -> dict[ObjectId, list[str]]:
        """Each object of the stack -> who applies it: the releases whose charts render it,
        and PROGRAM for our own manifests (Pulumi applies those, in `default` when they
        name no namespace)."""
        owners: dict[ObjectId, list[str]] = defaultdict(list)
        for name, templated in sorted(self.releases.items()):
            for oid in templated.ids():
                owners[oid].append(name)
        for _, obj in load_manifests(self.render_dir):
            owners[object_id(obj, "default")].append(PROGRAM)
        return dict(owners)

    def release_of_file(self, path: Path) -> TemplatedRelease | None:
        for templated in self.releases.values():
            if templated.path.resolve() == path.resolve():
                return templated
        return None


_TEMPLATED: dict[Path, TemplatedStack] = {}


def template_stack(render_dir: Path) -> TemplatedStack:
    """`helm template` of every Istio release of a render, once per render folder per
    process; each release's output is written to `<render_dir>/charts/<release>.yaml`, its
    values to `<render_dir>/e2e-work/`."""
    key = render_dir.resolve()
    if key not in _TEMPLATED:
        stack = TemplatedStack(render_dir)
        work = stack.work_dir
        stack.charts_dir.mkdir(parents=True, exist_ok=True)
        for name, release in istio_releases(render_dir).items():
            output = helm_template(release, work)
            path = stack.charts_dir / f"{name}.yaml"
            path.write_text(output)
            stack.releases[name] = TemplatedRelease(release, parse_documents(output), path)
        _TEMPLATED[key] = stack
    return _TEMPLATED[key]


def shared_objects(stack: TemplatedStack) -> dict[ObjectId, list[str]]:
    """Objects two owners of one stack apply: two releases (Helm installs only one), or a
    release and the program (whichever comes second fails: "already exists" or "invalid
    ownership metadata")."""
    return {oid: names for oid, names in stack.owners().items() if len(names) > 1}


class OwnerChange(NamedTuple):
    object: ObjectId
    before: str
    after: str

    def __str__(self) -> str:
        return f"{self.object}: release {self.before} -> {self.after}"


def owner_changes(before: TemplatedStack, after: TemplatedStack) -> list[OwnerChange]:
    """Objects applied both before and after a step, by a different owner: Helm's upgrade of
    the new owner fails ("invalid ownership metadata") while the old one owns it, and the
    old owner going first deletes the object."""
    old, new = before.owners(), after.owners()
    return [
        OwnerChange(oid, ", ".join(old[oid]), ", ".join(new[oid]))
        for oid in sorted(old.keys() & new.keys())
        if old[oid] != new[oid]
    ]


# --- labels and selectors ---------------------------------------------------------------


def pod_template_labels(workload: Mapping[str, Any]) -> dict[str, str]:
    template = (workload.get("spec") or {}).get("template") or {}
    return dict((template.get("metadata") or {}).get("labels") or {})


def selector_matches(selector: Mapping[str, Any], labels: Mapping[str, Any]) -> bool:
    """A map selector (Istio `Gateway.spec.selector`, `matchLabels`) matches `labels`;
    an empty selector matches nothing here (Istio would take it as every workload)."""
    return bool(selector) and all(labels.get(key) == value for key, value in selector.items())


# --- stacks: config of a stack file and the canary runbook's steps ---------------------

PROJECT_KEY = "istio-mesh"


def stack_file(stack: str) -> Path:
    return PROJECT_DIR / f"Pulumi.{stack}.yaml"


def load_stack_config(path: Path) -> dict[str, Any]:
    """The `config:` block of a Pulumi.<stack>.yaml."""
    return dict(yaml.safe_load(path.read_text())["config"])


def istio_config(config: Mapping[str, Any]) -> dict[str, Any]:
    return dict(config.get(f"{PROJECT_KEY}:istio") or {})


def revision_of(version: str) -> str:
    """1.31.1 -> 1-31-1 (as the program derives revision names)."""
    return version.replace(".", "-")


Edit = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class CanaryStep:
    """A state of a stack file along docs/RUNBOOKS.md "Canary upgrade of Istio"."""

    stack: str
    name: str  # e.g. "dev step 3"
    summary: str
    edits: tuple[Edit, ...] = ()

    def config(self, base: Mapping[str, Any]) -> dict[str, Any]:
        config = copy.deepcopy(dict(base))
        for edit in self.edits:
            edit(config)
        return config


def _istio(config: dict[str, Any]) -> dict[str, Any]:
    istio: dict[str, Any] = config.setdefault(f"{PROJECT_KEY}:istio", {})
    return istio


def set_revisions(*versions: str) -> Edit:
    def edit(config: dict[str, Any]) -> None:
        _istio(config)["revisions"] = [{"version": version} for version in versions]

    return edit


def set_tags(**tags: str) -> Edit:
    def edit(config: dict[str, Any]) -> None:
        _istio(config)["tags"] = dict(tags)

    return edit


def set_default_revision(revision: str) -> Edit:
    def edit(config: dict[str, Any]) -> None:
        _istio(config)["defaultRevision"] = revision

    return edit


def drop_namespaces_on(tag: str) -> Edit:
    """Remove the namespaces (and their services) on revision tag `tag`."""

    def edit(config: dict[str, Any]) -> None:
        key = f"{PROJECT_KEY}:namespaces"
        dropped = {ns["name"] for ns in config.get(key) or [] if ns.get("revision") == tag}
        config[key] = [ns for ns in config.get(key) or [] if ns["name"] not in dropped]
        services = f"{PROJECT_KEY}:services"
        if services in config:
            config[services] = [
                svc for svc in config[services] if svc.get("namespace") not in dropped
            ]

    return edit


OLD, NEW = "1.30.5", "1.31.1"
OLD_REV, NEW_REV = revision_of(OLD), revision_of(NEW)

# Dev, in runbook order. Step 1 is Pulumi.dev.yaml as committed (the runbook says so);
# step 2 (the shop-canary namespace) is already part of it, so it is the same state.
DEV_CANARY_STEPS: tuple[CanaryStep, ...] = (
    CanaryStep(
        "dev",
        "dev before step 1",
        f"only {OLD}; stable -> {OLD_REV}",
        (
            set_revisions(OLD),
            set_tags(stable=OLD_REV),
            set_default_revision(OLD_REV),
            drop_namespaces_on("canary"),
        ),
    ),
    CanaryStep("dev", "dev step 1", f"{NEW} next to {OLD} behind `canary` (Pulumi.dev.yaml)"),
    CanaryStep(
        "dev",
        "dev step 3",
        f"stable and defaultRevision -> {NEW_REV}",
        (set_tags(stable=NEW_REV, canary=NEW_REV), set_default_revision(NEW_REV)),
    ),
    CanaryStep(
        "dev",
        "dev step 7",
        f"{OLD} removed",
        (
            set_tags(stable=NEW_REV, canary=NEW_REV),
            set_default_revision(NEW_REV),
            set_revisions(NEW),
        ),
    ),
)

# Prod: Pulumi.prod.yaml as committed, step 4 (promotion with --keep-previous), step 6.
PROD_CANARY_STEPS: tuple[CanaryStep, ...] = (
    CanaryStep("prod", "prod before step 4", f"only {OLD} (Pulumi.prod.yaml)"),
    CanaryStep(
        "prod",
        "prod step 4",
        f"{NEW} added, stable and defaultRevision -> {NEW_REV}",
        (set_revisions(OLD, NEW), set_tags(stable=NEW_REV), set_default_revision(NEW_REV)),
    ),
    CanaryStep(
        "prod",
        "prod step 6",
        f"{OLD} removed",
        (set_revisions(NEW), set_tags(stable=NEW_REV), set_default_revision(NEW_REV)),
    ),
)


def write_stack_file(stack: str, config: Mapping[str, Any], folder: Path) -> Path:
    """`folder/Pulumi.<stack>.yaml` holding `config` (the stack name comes from the file
    name, as `mesh render --stack-file` reads it)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"Pulumi.{stack}.yaml"
    path.write_text(yaml.safe_dump({"config": dict(config)}, sort_keys=False))
    return path


def mesh_render(
    out: Path,
    *,
    stack: str | None = None,
    stack_path: Path | None = None,
    references: Mapping[str, Path] | None = None,
) -> Path:
    """`python -m mesh render` of a stack (by name or file) into `out`; returns `out`."""
    python = PROJECT_DIR / "venv" / "bin" / "python"
    if stack_path is not None:
        source: list[str | Path] = ["--stack-file", stack_path]
    elif stack is not None:
        source = ["--stack", stack]
    else:
        raise ValueError("mesh_render needs a stack or a stack file")
    args: list[str | Path] = [python, "-m", "mesh", "render", *source, "--out", out]
    for name, path in (references or {}).items():
        args += ["--reference", f"{name}={path}"]
    run(args, cwd=PROJECT_DIR, timeout=300).check()
    return out


def yaml_files(folders: Iterable[Path]) -> list[Path]:
    """Every *.yaml under `folders`, sorted per folder."""
    return [path for folder in folders for path in sorted(folder.rglob("*.yaml"))]


def describe(items: Sequence[object]) -> str:
    return "\n".join(f"  - {item}" for item in items) or "  (none)"
