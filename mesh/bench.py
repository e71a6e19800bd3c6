"""`python -m mesh bench`: how the program and the policy pack scale with the mesh.

For each mesh size N (`--services`, default 50,200,1000) the bench generates a stack
of N services spread over namespaces of `SERVICES_PER_NAMESPACE`, each service with
two or three weighted subsets, retries, a circuit breaker and an authorization rule
(every tenth one also exposed through an ingress gateway), and measures, each in a
fresh interpreter so runs do not warm each other up:

- the program: the real `__main__.py` under the mock engine (`mesh.program`), as
  shipped (it tunes its process's garbage collector before it reads its config:
  `components/process.py`), wall time and memory (peak RSS of that interpreter during
  the run, and what the run added to it: `growth_mb`, also per resource);
- the floor: the same Kubernetes objects and Helm releases declared with plain
  `pulumi_kubernetes` calls under the same mocks, with no components, config model or
  builders, twice: with Python's default settings (`floor_s`: what a user writing plain
  code gets; `ratio_vs_floor` is ours as shipped against it) and with the collector
  tuned as ours is (`floor_tuned_s`; `ratio_layers`, ours against it, is what our
  layers cost on top of the SDK itself, the process being the same). Its memory is
  measured as the program's (`floor_growth_mb`, `ratio_memory_vs_floor`);
- the policy pack: `Remediate` and `Analyze` for every resource, one at a time, and
  `AnalyzeStack` once, over its gRPC protocol with the pack started as the Pulumi CLI
  starts it (start-up excluded, it does not grow with the mesh). Every request is
  built before the clock starts: the engine builds them in Go as registrations
  arrive, and the Python client's protobuf work is not the pack's. The time is the
  wall time of the calls (the pack's work plus the gRPC round trips); the pack's own
  CPU time is reported beside it. `policy / program` compares the wall time to the
  program time.

The generated services live in service files, one per namespace (`serviceFiles`), as
a large catalog must: the CLI hands the program and the pack the whole stack config in
one environment variable, which Linux caps at 128 KiB, about 220 services written
inline. So every size runs as the CLI could run it, the pack started with that size's
own config.

`growth` is the program time of the largest N over that of the smallest.
Both the program and the floor are warmed up (imports, first registrations) on a
one-service mesh before the clock starts. The runs of a size alternate (program, floor,
tuned floor, then again) so that a machine slowing down weighs on all three alike;
each run reports its time on stderr as it ends.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import cProfile
import importlib
import json
import multiprocessing
import re
import resource
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

from components.process import tune_for_preview
from mesh.program import SECRET_SIG, SIG_KEY, ProgramRun, Registered, run_program

BENCH_STACK = "bench"
SERVICES_PER_NAMESPACE = 25
EXPOSE_EVERY = 10
"""Every tenth service is also published through the ingress gateway."""
GATEWAY = "ingress"
DOMAIN = "bench.example.com"
DEFAULT_SIZES = (50, 200, 1000)
DEFAULT_REPEAT = 3
"""Times are the best of three: on a shared 2-core machine one run can be 20% slow."""
ENV_LIMIT_KB = 128
"""Linux's limit on one environment variable (MAX_ARG_STRLEN), which holds the config."""
POLICY_CONFIG = Path(__file__).resolve().parent.parent / "policies" / "config" / "dev.json"
"""The bench stack is judged as dev's previews are."""

KUBERNETES_PROVIDER = "pulumi:providers:kubernetes"
HELM_RELEASE = "kubernetes:helm.sh/v3:Release"


# -- the generated mesh --------------------------------------------------------------


def service_name(index: int) -> str:
    return f"svc-{index:04d}"


def namespace_name(index: int) -> str:
    return f"team-{index // SERVICES_PER_NAMESPACE:03d}"


def _service(index: int) -> dict[str, Any]:
    namespace = namespace_name(index)
    if index % 2:
        versions = {"v1": {"weight": 90}, "v2": {"weight": 10}}
    else:
        versions = {"v1": {"weight": 70}, "v2": {"weight": 20}, "v3": {"weight": 10}}
    # The first service of a namespace is called through the gateway or from outside
    # the namespace; every other one by its predecessor, a chain per namespace.
    first = index % SERVICES_PER_NAMESPACE == 0
    caller = (
        {"namespace": namespace_name(index - 1), "serviceAccount": service_name(index - 1)}
        if first and index
        else {"namespace": namespace, "serviceAccount": service_name(max(index - 1, 0))}
    )
    service: dict[str, Any] = {
        "name": service_name(index),
        "namespace": namespace,
        "port": 8080,
        "versions": versions,
        "timeout": "5s",
        "retries": {"attempts": 2, "perTryTimeout": "2s", "retryOn": "5xx,connect-failure"},
        "circuitBreaker": {
            "maxConnections": 100,
            "maxPendingRequests": 10,
            "consecutive5xxErrors": 5,
            "interval": "10s",
            "baseEjectionTime": "30s",
            "maxEjectionPercent": 50,
        },
        "allowFrom": [{**caller, "methods": ["GET", "POST"]}],
    }
    if index % EXPOSE_EVERY == 0:
        service["expose"] = {"gateway": GATEWAY, "host": exposed_host(index)}
    return service


def exposed_host(index: int) -> str:
    return f"{service_name(index)}.{DOMAIN}"


def generate_config(services: int, service_dir: Path | None = None) -> dict[str, str]:
    """A stack config (as the Pulumi CLI hands it to the program) for `services` services.

    With `service_dir`, the services go into one service file per namespace there (as a
    team per file would keep them) and the config lists the files: a large catalog has
    to live outside the config, which the CLI passes in one 128 KiB environment string.
    Without it, they are inline in `istio-mesh:services`.
    """
    if services < 1:
        raise ValueError("a generated mesh needs at least one service")
    namespaces = sorted({namespace_name(i) for i in range(services)})
    hosts = [exposed_host(i) for i in range(0, services, EXPOSE_EVERY)]
    config: dict[str, Any] = {
        "istio": {
            "revisions": [{"version": "1.30.5"}],
            "tags": {"stable": "1-30-5"},
            "defaultRevision": "1-30-5",
        },
        "gateways": [
            {
                "name": GATEWAY,
                "revision": "stable",
                "servers": [{"hosts": hosts, "tls": {"credentialName": "bench-example-com-tls"}}],
            }
        ],
        "namespaces": [{"name": name, "revision": "stable"} for name in namespaces],
    }
    catalog = [_service(i) for i in range(services)]
    if service_dir is None:
        config["services"] = catalog
    else:
        config["serviceFiles"] = _write_service_files(catalog, service_dir)
    return {f"istio-mesh:{key}": json.dumps(value) for key, value in config.items()}


def _write_service_files(catalog: list[dict[str, Any]], directory: Path) -> list[str]:
    """One `<namespace>.yaml` per namespace of `catalog`; their absolute paths."""
    by_namespace: dict[str, list[dict[str, Any]]] = {}
    for service in catalog:
        by_namespace.setdefault(service["namespace"], []).append(service)
    paths = []
    for namespace, services in sorted(by_namespace.items()):
        path = directory / f"{namespace}.yaml"
        path.write_text(yaml.safe_dump(services, sort_keys=False))
        paths.append(str(path))
    return paths


# -- the floor: the same objects, plain pulumi_kubernetes calls -------------------------


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _inputs(value: Any) -> Any:
    """Wire-form properties back to program inputs (secret markers to secret Outputs)."""
    import pulumi

    if isinstance(value, dict):
        if value.get(SIG_KEY) == SECRET_SIG:
            return pulumi.Output.secret(_inputs(value.get("value")))
        return {key: _inputs(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_inputs(item) for item in value]
    return value


def _has_secret(value: Any) -> bool:
    if isinstance(value, dict):
        return value.get(SIG_KEY) == SECRET_SIG or any(map(_has_secret, value.values()))
    if isinstance(value, list):
        return any(map(_has_secret, value))
    return False


def _kubernetes_class(type_: str) -> tuple[Any, bool]:
    """The pulumi_kubernetes class for a type token, and whether it is a custom resource.

    Built-in API groups (`core`, `apps`, `*.k8s.io`) have typed classes; every other
    group (Istio's among them) is declared as an `apiextensions.CustomResource`.
    """
    import pulumi_kubernetes as k8s

    if type_ == HELM_RELEASE:
        return k8s.helm.v3.Release, False
    _, group_version, kind = type_.split(":")
    group, _, version = group_version.rpartition("/")
    if "." in group and not group.endswith(".k8s.io"):
        return k8s.apiextensions.CustomResource, True
    module = importlib.import_module(f"pulumi_kubernetes.{group.split('.')[0]}.{version}")
    return getattr(module, kind), False


FLOOR_PROGRAM = Path(__file__).resolve().parent / "floor_program.py"
"""The floor as a program file, run by the same harness (and as deep a call stack) as
the project's `__main__.py`: the SDK records a stack trace per resource, so the depth
at which resources are declared is part of what each one costs."""

_floor: list[tuple[Any, str, dict[str, Any], str | None, list[str]]] = []
"""What `declare_floor` declares, each as (class, name, keyword arguments in wire form,
provider reference: the one used, or for a provider its own, the arguments holding a
secret); prepared before the clock starts, so the floor does no more than construct."""


def _floor_entry(
    cls: Any, name: str, kwargs: dict[str, Any], provider: str | None
) -> tuple[Any, str, dict[str, Any], str | None, list[str]]:
    return cls, name, kwargs, provider, [key for key, value in kwargs.items() if _has_secret(value)]


def prepare_floor(resources: Sequence[Registered]) -> None:
    """Turn the Kubernetes provider, objects and Helm releases among `resources` into
    the constructor calls `declare_floor` makes (classes imported, arguments built)."""
    import pulumi_kubernetes as k8s

    _floor.clear()
    for registered in resources:
        props = dict(registered.props)
        if registered.type == KUBERNETES_PROVIDER:
            kwargs = {_snake(key): value for key, value in props.items()}
            # Resources name their provider `URN::ID`; the mocks' IDs are `<name>-id`.
            reference = f"{registered.urn}::{registered.name}-id"
            _floor.append(_floor_entry(k8s.Provider, registered.name, kwargs, reference))
            continue
        if not registered.type.startswith("kubernetes:"):
            continue  # components, random passwords: not Kubernetes objects
        cls, custom = _kubernetes_class(registered.type)
        props.pop("compat", None)  # a Helm release's: the SDK sets it itself
        api_version, kind = props.pop("apiVersion", None), props.pop("kind", None)
        if custom:
            kwargs = {"api_version": api_version, "kind": kind, **props}
        else:
            kwargs = {_snake(key): value for key, value in props.items()}
        _floor.append(_floor_entry(cls, registered.name, kwargs, registered.provider))


def declare_floor() -> None:
    """Declare what `prepare_floor` prepared, directly under the stack: plain
    pulumi_kubernetes constructor calls, no component, no dependency but the provider."""
    import pulumi
    import pulumi_kubernetes as k8s

    providers: dict[str, pulumi.ProviderResource] = {}
    for cls, name, wire_kwargs, provider, secret_keys in _floor:
        # Secret Outputs belong to the running program's event loop: made here, only
        # for the few arguments that hold one.
        kwargs = {**wire_kwargs, **{key: _inputs(wire_kwargs[key]) for key in secret_keys}}
        if cls is k8s.Provider:
            providers[provider or ""] = cls(name, **kwargs)
            continue
        opts = pulumi.ResourceOptions(provider=providers.get(provider or ""))
        cls(name, opts=opts, **kwargs)


# -- measurements, each in a fresh interpreter ----------------------------------------


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _reset_peak() -> None:
    """Start this interpreter's peak RSS afresh, so that the peak is the timed run's and
    not the warm-up's (Linux: writing 5 to `clear_refs` resets it, `ru_maxrss` too).
    Where that cannot be done the peak stays the interpreter's own."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def _rss_mb() -> float:
    """This interpreter's resident memory now (Linux), or its peak where unknown."""
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        return _peak_mb()
    found = re.search(r"^VmRSS:\s*(\d+) kB", status, re.MULTILINE)
    return int(found.group(1)) / 1024 if found else _peak_mb()


def _measured(run: Callable[[], Any], profile: Path | None) -> tuple[Any, dict[str, float]]:
    """`run`'s result, its wall time, and the interpreter's peak RSS during it and what
    the run added to the RSS it started with."""
    _reset_peak()
    before_mb = _rss_mb()
    result, elapsed = _timed(run, profile)
    peak_mb = _peak_mb()
    return result, {"seconds": elapsed, "peak_mb": peak_mb, "growth_mb": peak_mb - before_mb}


def _timed(run: Callable[[], Any], profile: Path | None) -> tuple[Any, float]:
    profiler = cProfile.Profile() if profile else None
    start = time.perf_counter()
    result = profiler.runcall(run) if profiler else run()
    elapsed = time.perf_counter() - start
    if profiler and profile:
        profiler.dump_stats(profile)
    return result, elapsed


def _warm_up() -> None:
    """Run the program and the floor once on a one-service mesh, untimed.

    pulumi_kubernetes imports its API modules on first use (`core.v1` alone takes a
    second) and the first registration of each kind compiles code paths; neither grows
    with the mesh, and both would otherwise land in whichever run came first.
    """
    with tempfile.TemporaryDirectory(prefix="bench-warm-up-") as service_dir:
        small = run_program(BENCH_STACK, generate_config(1, Path(service_dir)))
    prepare_floor(small.resources)
    run_program(BENCH_STACK, {}, program=FLOOR_PROGRAM)


def _program_worker(config: dict[str, str], profile: Path | None) -> dict[str, Any]:
    """The program as shipped: it tunes its own process before it reads its config."""
    _warm_up()
    run, figures = _measured(lambda: run_program(BENCH_STACK, config), profile)
    return {**figures, "resources": run.resources}


def _floor_worker(resources: list[Registered], tuned: bool, profile: Path | None) -> dict[str, Any]:
    """The floor with Python's default settings, or `tuned` as the program tunes itself
    (the harness gives every run's setting back, so the warm-up leaves the defaults)."""
    _warm_up()
    prepare_floor(resources)
    if tuned:
        tune_for_preview()
    run, figures = _measured(lambda: run_program(BENCH_STACK, {}, program=FLOOR_PROGRAM), profile)
    return {**figures, "resources": len(run.resources)}


def _in_fresh_interpreter(function: Callable[..., dict[str, Any]], *args: Any) -> dict[str, Any]:
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        return pool.submit(function, *args).result()


@dataclass
class BenchRun:
    """One mesh size's figures."""

    services: int
    resources: int
    """Resources the program registers (components included)."""
    program_s: float
    """The program as shipped: its process tuned (`components/process.py`)."""
    floor_s: float
    """The floor with Python's default settings: plain code as a user would run it."""
    ratio_vs_floor: float
    """Ours as shipped against plain code with default settings."""
    floor_tuned_s: float
    """The floor with the collector tuned as the program tunes it."""
    ratio_layers: float
    """Ours against the tuned floor: what our layers cost, the process being the same."""
    policy_s: float
    """Wall time of every Remediate, Analyze and AnalyzeStack call of one preview."""
    policy_pack_cpu_s: float
    """CPU time the pack's process spent on them; the rest is the client and gRPC."""
    ratio_policy_vs_program: float
    peak_mb: float
    """Peak RSS of the interpreter that ran the program, during the run."""
    growth_mb: float
    """What the run added to the RSS it started with, at its peak."""
    floor_peak_mb: float
    """The same for the floor with default settings (its interpreter also holds the
    prepared constructor arguments, so compare growths)."""
    floor_growth_mb: float
    ratio_memory_vs_floor: float | None
    """`growth_mb / floor_growth_mb`: ours as shipped against plain code (None when the
    floor's run added nothing measurable, as in a mesh of one service)."""
    program_ms_per_resource: float
    kb_per_resource: float
    """`growth_mb` per resource."""
    floor_resources: int
    """Resources the floor registers: the same Kubernetes objects, no components."""
    violations: int
    """Mandatory policy violations in the generated stack (a valid mesh has none)."""
    stack_config_kb: float
    """Size of the stack config as the CLI hands it to a policy pack (`PULUMI_CONFIG`)."""


RUNS = ("program", "floor", "tuned floor")
"""What one repeat runs, in this order, each in a fresh interpreter: the program as
shipped, the floor with default settings, the floor tuned as the program is."""


def progress_line(services: int, what: str, attempt: int, repeat: int, seconds: float) -> str:
    """What the bench says on stderr when one run has ended."""
    return f"bench: {services} services: {what} {attempt}/{repeat}: {seconds:.2f} s"


def _to_stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def measure(
    services: int,
    service_dir: Path,
    repeat: int = DEFAULT_REPEAT,
    profile_dir: Path | None = None,
    progress: Callable[[str], None] = _to_stderr,
) -> BenchRun:
    """Measure one mesh size, its service files written to `service_dir`; times are the
    best of `repeat` runs, each reported to `progress` as it ends."""
    from mesh.analyzer import PolicyPackProcess, Preview
    from mesh.check import load_policy_config, program_resources

    def profile(what: str) -> Path | None:
        name = f"bench-{services}-{what.replace(' ', '-')}.prof"
        return profile_dir / name if profile_dir else None

    config = generate_config(services, service_dir)
    runs: dict[str, list[dict[str, Any]]] = {what: [] for what in RUNS}
    for attempt in range(1, repeat + 1):
        for what in RUNS:
            if what == "program":
                result = _in_fresh_interpreter(_program_worker, config, profile(what))
            else:  # the floor declares what the first program run registered
                registered: list[Registered] = runs["program"][0]["resources"]
                tuned = what == "tuned floor"
                result = _in_fresh_interpreter(_floor_worker, registered, tuned, profile(what))
            runs[what].append(result)
            progress(progress_line(services, what, attempt, repeat, result["seconds"]))
    policy_resources = program_resources(ProgramRun(BENCH_STACK, registered, {}))
    policy_times = []
    pack_cpu_times = []
    mandatory = 0
    with PolicyPackProcess(stack=BENCH_STACK, config=config) as pack:
        pack.configure(load_policy_config(POLICY_CONFIG))
        for attempt in range(1, repeat + 1):
            preview = Preview(policy_resources)
            cpu_before = pack.cpu_seconds()
            start = time.perf_counter()
            diagnostics = pack.send(preview)
            policy_times.append(time.perf_counter() - start)
            pack_cpu_times.append(pack.cpu_seconds() - cpu_before)
            mandatory = sum(d.enforcement == "mandatory" for d in diagnostics)
            progress(progress_line(services, "policy pack", attempt, repeat, policy_times[-1]))

    program_s, floor_s, floor_tuned_s = (min(r["seconds"] for r in runs[what]) for what in RUNS)
    policy_s = min(policy_times)
    # Memory barely varies between runs: the first run's figures stand for all.
    first, floor = runs["program"][0], runs["floor"][0]
    return BenchRun(
        services=services,
        resources=len(registered),
        program_s=round(program_s, 3),
        floor_s=round(floor_s, 3),
        ratio_vs_floor=round(program_s / floor_s, 2),
        floor_tuned_s=round(floor_tuned_s, 3),
        ratio_layers=round(program_s / floor_tuned_s, 2),
        policy_s=round(policy_s, 3),
        policy_pack_cpu_s=round(min(pack_cpu_times), 3),
        ratio_policy_vs_program=round(policy_s / program_s, 2),
        peak_mb=round(first["peak_mb"], 1),
        growth_mb=round(first["growth_mb"], 1),
        floor_peak_mb=round(floor["peak_mb"], 1),
        floor_growth_mb=round(floor["growth_mb"], 1),
        ratio_memory_vs_floor=(
            round(first["growth_mb"] / floor["growth_mb"], 2) if floor["growth_mb"] > 0 else None
        ),
        program_ms_per_resource=round(1000 * program_s / len(registered), 3),
        kb_per_resource=round(1024 * first["growth_mb"] / len(registered), 1),
        floor_resources=floor["resources"],
        violations=mandatory,
        stack_config_kb=round(len(json.dumps(config).encode()) / 1024, 1),
    )


def bench(
    sizes: Sequence[int],
    repeat: int = DEFAULT_REPEAT,
    profile_dir: Path | None = None,
    progress: Callable[[str], None] = _to_stderr,
) -> dict[str, Any]:
    """Measure every size, each run reported to `progress`; the `--format json` document."""
    runs = []
    with tempfile.TemporaryDirectory(prefix="bench-services-") as scratch:
        for services in sizes:
            service_dir = Path(scratch) / str(services)
            service_dir.mkdir()
            runs.append(measure(services, service_dir, repeat, profile_dir, progress))
            progress(f"bench: {services} services measured")
    smallest = min(runs, key=lambda r: r.services)
    largest = max(runs, key=lambda r: r.services)
    return {
        "runs": [asdict(run) for run in runs],
        "growth": round(largest.program_s / smallest.program_s, 2),
        "growth_services": [smallest.services, largest.services],
    }


# -- command line --------------------------------------------------------------------


COLUMNS = (
    ("services", "services", "{}"),
    ("resources", "resources", "{}"),
    ("program_s", "program s", "{:.2f}"),
    ("program_ms_per_resource", "ms/res", "{:.2f}"),
    ("floor_s", "floor s", "{:.2f}"),
    ("ratio_vs_floor", "ours/floor", "{:.2f}"),
    ("floor_tuned_s", "tuned floor s", "{:.2f}"),
    ("ratio_layers", "layers", "{:.2f}"),
    ("policy_s", "policy s", "{:.2f}"),
    ("policy_pack_cpu_s", "pack cpu s", "{:.2f}"),
    ("ratio_policy_vs_program", "policy/program", "{:.2f}"),
    ("peak_mb", "peak MB", "{:.0f}"),
    ("growth_mb", "growth MB", "{:.0f}"),
    ("floor_growth_mb", "floor growth MB", "{:.0f}"),
    ("kb_per_resource", "KB/res", "{:.1f}"),
)


def format_table(result: dict[str, Any]) -> str:
    rows = [[label for _, label, _ in COLUMNS]]
    rows += [[fmt.format(run[key]) for key, _, fmt in COLUMNS] for run in result["runs"]]
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    lines = [
        "  ".join(cell.rjust(width) for cell, width in zip(row, widths, strict=True))
        for row in rows
    ]
    low, high = result["growth_services"]
    lines.append(f"growth: time({high}) / time({low}) = {result['growth']:.2f}")
    bad = [run["services"] for run in result["runs"] if run["violations"]]
    if bad:
        lines.append(f"warning: mandatory policy violations in the meshes of {bad} services")
    return "\n".join(lines)


def _sizes(value: str) -> list[int]:
    try:
        sizes = [int(part) for part in value.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r}: expected numbers like 50,200,1000") from None
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"{value!r}: every size must be at least 1")
    return sizes


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m mesh bench",
        description="Measure the program, its SDK floor and the policy pack on generated meshes.",
    )
    parser.add_argument(
        "--services",
        type=_sizes,
        default=list(DEFAULT_SIZES),
        help="comma-separated mesh sizes (default 50,200,1000)",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=DEFAULT_REPEAT,
        help=f"best of R runs, each in a fresh interpreter (default {DEFAULT_REPEAT})",
    )
    parser.add_argument("--format", choices=("text", "json"), default="text")
    parser.add_argument(
        "--engine",
        choices=("mock", "real"),
        default="mock",
        help="mock: the program, its floor and the pack in-process (default); real: a real "
        "`pulumi preview` against a local API server (needs make e2e-tools)",
    )
    parser.add_argument(
        "--profile", type=Path, metavar="DIR", help="write cProfile stats of each run to DIR"
    )
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    if args.repeat < 1:
        print("bench: --repeat must be at least 1", file=sys.stderr)
        return 2
    if args.engine == "real":
        from mesh.engine_bench import format_real, real_bench

        try:
            real = real_bench(args.services)
        except RuntimeError as error:
            print(f"bench: {error}", file=sys.stderr)
            return 2
        print(json.dumps(real, indent=2) if args.format == "json" else format_real(real))
        return 0
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
    result = bench(args.services, args.repeat, args.profile)
    print(json.dumps(result, indent=2) if args.format == "json" else format_table(result))
    return 0
