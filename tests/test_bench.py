"""`python -m mesh bench`: what it generates and compares, and what it prints.

Nothing here times anything: the figures live in BENCHMARKS.md. These tests make sure
the figures mean what they say: the generated mesh is a valid stack of the shape the
bench claims, and the floor declares exactly the program's Kubernetes objects.
"""

from __future__ import annotations

import contextlib
import io
import json
from collections import Counter
from typing import Any

import pytest

from mesh import bench
from mesh.check import load_policy_config, program_resources, run_policy_pack
from mesh.program import run_program


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """60 services as the bench runs them: one service file per namespace."""
    config = bench.generate_config(60, tmp_path_factory.mktemp("services"))
    return run_program(bench.BENCH_STACK, config)


def test_the_service_files_hold_the_catalog_the_inline_config_would(generated: Any) -> None:
    inline = run_program(bench.BENCH_STACK, bench.generate_config(60))
    # The same resources; registration order is the SDK's and varies from run to run.
    assert {r.urn: r.props for r in generated.resources} == {
        r.urn: r.props for r in inline.resources
    }
    assert len(generated.resources) == len(inline.resources)


def test_a_thousand_service_config_stays_far_below_the_environment_limit(tmp_path: Any) -> None:
    config = bench.generate_config(1000, tmp_path)
    assert len(json.loads(config["istio-mesh:serviceFiles"])) == 40  # a file per namespace
    assert len(json.dumps(config)) < bench.ENV_LIMIT_KB * 1024 / 10
    assert len(json.dumps(bench.generate_config(1000))) > bench.ENV_LIMIT_KB * 1024


def test_generated_services_span_namespaces_with_subsets_breakers_and_authorization(
    generated: Any,
) -> None:
    namespaces = {m["metadata"]["name"] for m in generated.manifests() if m["kind"] == "Namespace"}
    assert {"team-000", "team-001", "team-002"} <= namespaces  # 60 services, 25 a namespace
    rules = [m for m in generated.manifests() if m["kind"] == "DestinationRule"]
    assert len(rules) == 60
    assert Counter(len(rule["spec"]["subsets"]) for rule in rules) == {2: 30, 3: 30}
    assert all("outlierDetection" in rule["spec"]["trafficPolicy"] for rule in rules)
    allows = [
        m
        for m in generated.manifests()
        if m["kind"] == "AuthorizationPolicy" and m["spec"].get("action") == "ALLOW"
    ]
    assert {m["metadata"]["name"] for m in allows} >= {f"svc-{i:04d}-allow" for i in range(60)}
    exposed = [m for m in generated.manifests() if m["metadata"]["name"].endswith("-gateway")]
    assert len(exposed) == 6  # every tenth service


def test_the_generated_mesh_passes_the_mandatory_policies(generated: Any) -> None:
    violations = run_policy_pack(
        program_resources(generated),
        bench.BENCH_STACK,
        load_policy_config(bench.POLICY_CONFIG),
    )
    assert [v for v in violations if v.enforcement == "mandatory"] == []


def test_the_floor_declares_exactly_the_programs_kubernetes_objects(generated: Any) -> None:
    bench.prepare_floor(generated.resources)
    floor = run_program(bench.BENCH_STACK, {}, program=bench.FLOOR_PROGRAM)

    def objects(resources: Any) -> dict[tuple[str, str], Any]:
        return {
            (r.type, r.name): (r.props, r.provider is not None)
            for r in resources
            if r.type.startswith(("kubernetes:", "pulumi:providers:kubernetes"))
        }

    ours = objects(generated.resources)
    assert objects(floor.resources) == ours
    # ... and nothing else: no component, no dependency but the provider.
    assert len(floor.resources) == len(ours)
    assert all(not r.depends_on for r in floor.resources)


@pytest.fixture(scope="module")
def bench_cli() -> tuple[int, str, str]:
    """`mesh bench --services 2,1 --repeat 2 --format json`: exit code, stdout, stderr."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = bench.main(["--services", "2,1", "--repeat", "2", "--format", "json"])
    return code, out.getvalue(), err.getvalue()


def test_json_output_has_the_documented_shape(bench_cli: tuple[int, str, str]) -> None:
    code, out, _ = bench_cli
    assert code == 0
    result = json.loads(out)
    keys = {
        "services",
        "resources",
        "program_s",
        "floor_s",
        "ratio_vs_floor",
        "floor_tuned_s",
        "ratio_layers",
        "policy_s",
        "ratio_policy_vs_program",
        "peak_mb",
        "growth_mb",
        "floor_peak_mb",
        "floor_growth_mb",
        "ratio_memory_vs_floor",
    }
    assert [run["services"] for run in result["runs"]] == [2, 1]
    for run in result["runs"]:
        assert keys <= set(run)
        assert run["ratio_vs_floor"] == pytest.approx(run["program_s"] / run["floor_s"], rel=0.05)
        assert run["ratio_layers"] == pytest.approx(
            run["program_s"] / run["floor_tuned_s"], rel=0.05
        )
        assert 0 <= run["growth_mb"] <= run["peak_mb"]
        assert 0 <= run["floor_growth_mb"] <= run["floor_peak_mb"]
        if run["ratio_memory_vs_floor"] is not None:
            assert run["ratio_memory_vs_floor"] == pytest.approx(
                run["growth_mb"] / run["floor_growth_mb"], rel=0.05, abs=0.01
            )
        assert run["violations"] == 0
        # The pack's CPU time is part of the calls' wall time (plus tick rounding: the
        # kernel counts user and system time in 10 ms ticks).
        assert 0 <= run["policy_pack_cpu_s"] <= run["policy_s"] + 0.02
        assert 0 < run["stack_config_kb"] < bench.ENV_LIMIT_KB
    smallest, largest = result["runs"][1], result["runs"][0]
    assert result["growth"] == pytest.approx(largest["program_s"] / smallest["program_s"], rel=0.05)
    assert result["growth_services"] == [1, 2]


def test_every_run_of_every_size_is_reported_on_stderr_as_it_ends(
    bench_cli: tuple[int, str, str],
) -> None:
    _, out, err = bench_cli
    lines = err.splitlines()
    expected = []
    for services in (2, 1):
        for attempt in (1, 2):
            expected += [f"{services} services: {what} {attempt}/2: " for what in bench.RUNS]
        expected += [f"{services} services: policy pack {attempt}/2: " for attempt in (1, 2)]
        expected.append(f"{services} services measured")
    assert len(lines) == len(expected)
    for line, start in zip(lines, expected, strict=True):
        assert line.startswith(f"bench: {start}")
        if not start.endswith("measured"):
            assert float(line.removeprefix(f"bench: {start}").removesuffix(" s")) >= 0
    assert "bench:" not in out  # progress never mixes with the JSON


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--services", "0,10"], "every size must be at least 1"),
        (["--services", "ten"], "expected numbers like 50,200,1000"),
        (["--repeat", "0"], "--repeat must be at least 1"),
    ],
)
def test_bad_arguments_exit_2_with_the_reason(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert bench.main(argv) == 2
    assert message in capsys.readouterr().err
