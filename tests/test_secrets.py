"""Nothing secret in plain text: not in `mesh render` files, outputs or logs.

The secrets a stack holds are Grafana's generated admin password (a `RandomPassword`,
whose `result` the mocks set to `mock-<name>-password`) and whatever the program
wraps as a secret (Kubernetes Secret `data`/`stringData`, passwords in Helm values).
The engine carries a secret as `{SIG_KEY: SECRET_SIG, "value": ...}`: every such
value must stay inside its wrapper in the stack outputs, and `render`, `check` and
the program's own logging must never print it. TLS material and tokens have no way
into the config (certificates are Secrets named by `credentialName`); the files are
also searched for their shapes, so that one carried in later is caught.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mesh.program import (
    PROJECT_DIR,
    RANDOM_PASSWORD_TYPE,
    SECRET_SIG,
    SIG_KEY,
    ProgramRun,
    load_stack_file,
    run_program,
)
from mesh.render import SECRET_PLACEHOLDER, write_render
from tests.conftest import STACKS, mesh_command, stack_run

SECRET_SHAPES = {
    "PEM block (certificate or key)": re.compile(r"-----BEGIN [A-Z ]+-----"),
    "JSON Web Token": re.compile(r"\beyJ[\w-]{8,}\.eyJ[\w-]{8,}\.[\w-]+"),
}


def plain_strings(value: Any) -> Iterator[str]:
    """Every string of a wire-form value outside secret wrappers, keys included."""
    if isinstance(value, dict):
        if value.get(SIG_KEY) == SECRET_SIG:
            return
        for key, item in value.items():
            yield str(key)
            yield from plain_strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from plain_strings(item)
    elif isinstance(value, str):
        yield value


def wrapped_strings(value: Any, inside: bool = False) -> Iterator[str]:
    """Every string inside a secret wrapper of a wire-form value."""
    if isinstance(value, dict):
        inside = inside or value.get(SIG_KEY) == SECRET_SIG
        for key, item in value.items():
            if key != SIG_KEY:
                yield from wrapped_strings(item, inside)
    elif isinstance(value, list):
        for item in value:
            yield from wrapped_strings(item, inside)
    elif isinstance(value, str) and inside:
        yield value


def secret_values(run: ProgramRun) -> set[str]:
    """What must never appear in plain text: generated passwords, and every string the
    program passed as a secret (long enough not to match ordinary words)."""
    values = {f"mock-{r.name}-password" for r in run.of_type(RANDOM_PASSWORD_TYPE)}
    for resource in run.resources:
        values |= {s for s in wrapped_strings(resource.props) if len(s) >= 8}
    return values


def leaks(text: str, secrets: set[str]) -> list[str]:
    found = [f"secret {secret!r}" for secret in sorted(secrets) if secret in text]
    found += [shape for shape, pattern in SECRET_SHAPES.items() if pattern.search(text)]
    return found


def source_stack(stack: str) -> str | None:
    """The stack a stack trails (`promotion.fromStack`), by its short name."""
    config = load_stack_file(PROJECT_DIR / f"Pulumi.{stack}.yaml")
    promotion = json.loads(config.get("istio-mesh:promotion", "null")) or {}
    source = promotion.get("fromStack")
    return source.rsplit("/", 1)[-1] if source else None


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, str]]:
    """Each stack rendered by `python -m mesh render`: (output folder, what it printed).
    A stack that trails another reads that one's render, as in `make demo`."""
    root = tmp_path_factory.mktemp("render")
    results: dict[str, tuple[Path, str]] = {}
    pending = list(STACKS)
    while pending:
        stack = next(s for s in pending if source_stack(s) in (None, *results))
        pending.remove(stack)
        source = source_stack(stack)
        reference = ["--reference", f"{source}={root / source / 'stack.json'}"] if source else []
        result = mesh_command("render", "--stack", stack, "--out", str(root / stack), *reference)
        assert result.returncode == 0, result.stderr
        results[stack] = (root / stack, result.stdout + result.stderr)
    return results


@pytest.mark.parametrize("stack", STACKS)
def test_render_writes_secrets_as_the_placeholder(
    stack: str, rendered: dict[str, tuple[Path, str]]
) -> None:
    out, printed = rendered[stack]
    secrets = secret_values(stack_run(stack))
    files = {path: path.read_text() for path in sorted(out.rglob("*")) if path.is_file()}
    assert files
    found = {str(path.relative_to(out)): leaks(text, secrets) for path, text in files.items()}
    assert {path: what for path, what in found.items() if what} == {}
    assert leaks(printed, secrets) == []
    if secrets:
        # Redacted, not dropped: the reader sees that a value is set, and where.
        assert any(SECRET_PLACEHOLDER in text for text in files.values())


def test_the_stacks_hold_a_secret_to_look_for() -> None:
    """Both stacks run Grafana with a generated password: the searches above have
    something to find, and it is a secret in the wire form."""
    for stack in ("dev", "prod"):
        run = stack_run(stack)
        (grafana,) = [
            r for r in run.of_type("kubernetes:helm.sh/v3:Release") if r.name.endswith("grafana")
        ]
        password = grafana.props["values"]["adminPassword"]
        assert password == {
            SIG_KEY: SECRET_SIG,
            "value": "mock-observability-grafana-admin-password",
        }
        assert "mock-observability-grafana-admin-password" in secret_values(run)


@pytest.mark.parametrize("stack", STACKS)
def test_stack_outputs_keep_secrets_wrapped(
    stack: str, rendered: dict[str, tuple[Path, str]]
) -> None:
    run = stack_run(stack)
    secrets = secret_values(run)
    assert [s for s in plain_strings(run.outputs) if s in secrets] == []
    exported = json.loads((rendered[stack][0] / "stack.json").read_text())
    assert leaks(json.dumps(exported), secrets) == []


@pytest.mark.parametrize("stack", STACKS)
def test_check_prints_no_secret(stack: str, rendered: dict[str, tuple[Path, str]]) -> None:
    source = source_stack(stack)
    reference = ["--reference", f"{source}={rendered[source][0] / 'stack.json'}"] if source else []
    result = mesh_command("check", "--stack", stack, "--format", "json", *reference)
    assert result.returncode == 0, result.stderr
    assert leaks(result.stdout + result.stderr, secret_values(stack_run(stack))) == []


def test_the_program_logs_no_secret(
    caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    """Pulumi's own log records (every level) and anything printed while the dev program
    runs in this process."""
    config = load_stack_file(PROJECT_DIR / "Pulumi.dev.yaml")
    with caplog.at_level(logging.DEBUG):
        run = run_program("dev", config)
    captured = capfd.readouterr()
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert leaks(captured.out + captured.err + logged, secret_values(run)) == []


SECRET_PROGRAM = """
import pulumi_kubernetes as k8s

k8s.core.v1.Secret(
    "tls",
    metadata={"name": "shop-tls", "namespace": "istio-ingress"},
    type="kubernetes.io/tls",
    string_data={"tls.key": "-----BEGIN PRIVATE KEY-----\\nplain-key-material\\n"},
    data={"tls.crt": "cGxhaW4tY2VydGlmaWNhdGU="},
)
"""


def test_a_kubernetes_secret_is_rendered_as_the_placeholder(tmp_path: Path) -> None:
    """A Secret declared as pulumi-kubernetes declares it: `data` and `stringData`
    arrive wrapped, and every file `render` writes shows only the placeholder."""
    program = tmp_path / "program" / "__main__.py"
    program.parent.mkdir()
    program.write_text(SECRET_PROGRAM)
    run = run_program("dev", {}, program=program)
    secrets = secret_values(run)
    assert {"plain-key-material", "cGxhaW4tY2VydGlmaWNhdGU="} <= {
        part for secret in secrets for part in (secret, *secret.split("\n"))
    }
    write_render(run, tmp_path / "out")
    written = "".join(p.read_text() for p in (tmp_path / "out").rglob("*") if p.is_file())
    assert leaks(written, secrets) == []
    assert "plain-key-material" not in written and "cGxhaW4tY2VydGlmaWNhdGU=" not in written
    manifest = (
        tmp_path / "out" / "manifests" / "istio-ingress" / "secret-shop-tls.yaml"
    ).read_text()
    assert manifest.count(SECRET_PLACEHOLDER) == 2
