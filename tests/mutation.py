"""Mutation testing: does a test fail for each small wrong change to the code?

    venv/bin/python -m tests.mutation                      # every target (make mutation)
    venv/bin/python -m tests.mutation components/naming.py # some of them
    venv/bin/python -m tests.mutation --jobs 1 --json out/mutation.json

A mutant is the module with one change an operator below makes (a comparison turned
around, `and` for `or`, a number off by one, a dictionary key misspelled, a regular
expression without an anchor, ...). It is killed when the module's tests fail (or hang)
with it in place, and survives when they pass: then no test notices that change.

How it runs, and why this way: the process imports the heavy libraries once, then forks
a child per mutant. The child serves the mutated module through an import hook, drops
every project module it had imported, and runs the module's tests with `pytest.main`:
no file is ever rewritten, so runs can go side by side. The policy pack's rules are
tested through their fixtures in this process (`tests/policies/in_process.py`), since a
pack process started by a test would import the rules from disk, unmutated.

Not generated: changes inside annotations, docstrings, decorators and `__future__`
imports; to other strings than dictionary keys, compared values and regular expressions;
and `return None` for a `return` of a falsy constant. EXCLUDED lists the mutants that
provably cannot change behaviour, each with its reason; they are reported, not run.
Exit status 1 when a target's kill rate is under `--minimum` (95%).
"""

from __future__ import annotations

import argparse
import ast
import importlib.abc
import importlib.machinery
import importlib.util
import json
import os
import select
import signal
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import CodeType, ModuleType

PROJECT = Path(__file__).resolve().parent.parent
PACK_DIR = PROJECT / "policies"

PACK_TESTS = (
    "tests/policies/test_rules.py",
    "tests/policies/test_checks.py",
    "tests/policies/test_config_schema.py",
    "-k",
    "in-process or test_checks or test_config_schema or defaults",
)
"""The pack's rules through every fixture in this process, the pure checks, and the
rules' config schemas."""


STACKS = ("tests/test_stacks.py", "tests/test_snapshots.py")
"""Every stack file's program run whole: the builders' values checked against Istio's
charts and CRDs, names, order and HA, and everything it declares against its snapshot."""


DEFAULTS = "tests/components/test_defaults.py"
"""Components used with only what they require, as in a platform team's own program."""


def _component(name: str, *more: str) -> tuple[str, ...]:
    own = PROJECT / "tests" / "components" / f"test_{name}.py"
    return (*([str(own.relative_to(PROJECT))] if own.exists() else []), *more)


TARGETS: dict[str, tuple[str, ...]] = {
    **{
        f"policies/istio_guardrails/{path.name}": PACK_TESTS
        for path in sorted((PACK_DIR / "istio_guardrails").glob("*.py"))
        if path.name not in ("__init__.py", "runtime.py")
    },
    "policies/istio_guardrails/runtime.py": ("tests/policies/test_runtime.py",),
    "components/naming.py": ("tests/components", "tests/test_config.py"),
    "components/traffic.py": _component("traffic"),
    "components/authorization.py": _component("authorization"),
    "components/security.py": ("tests/components/test_authorization.py", *STACKS),
    "components/gateway.py": _component("gateway", DEFAULTS, *STACKS),
    "components/control_plane.py": _component("control_plane", *STACKS),
    "components/revision_tags.py": _component("revision_tags", *STACKS),
    "components/namespace.py": _component("namespace", DEFAULTS, *STACKS),
    "components/egress.py": _component("egress", *STACKS),
    "components/observability.py": _component("observability", *STACKS),
    "components/catalog.py": _component("catalog", *STACKS),
    "components/helm.py": ("tests/components", *STACKS),
    "components/k8s.py": ("tests/components", *STACKS),
    "components/promotion.py": ("tests/test_promotion.py", *STACKS),
    "components/ca.py": _component("ca"),
    "components/ambient.py": _component("ambient", "tests/components/test_traffic.py"),
    "components/gateway_api.py": _component("gateway_api", "tests/components/test_traffic.py"),
    "components/gateway_api_crds.py": _component("gateway_api_crds"),
    "components/pki.py": _component("ca"),
    "istio_mesh/convert.py": ("tests/test_package.py",),
}
"""Module -> the tests that target it (pytest arguments). The builders of components/
and every rule module of the pack."""

EXCLUDED: dict[tuple[str, str, str], str] = {
    (
        "policies/istio_guardrails/runtime.py",
        "GC_FIRST_GENERATION_THRESHOLD = 50_000",
        "50000 -> 50001",
    ): "a garbage collector threshold: it moves when collections happen, never what a rule answers",
    (
        "policies/istio_guardrails/gateways.py",
        "candidates = min((by_label.get(pair, []) for pair in selector.items()), key=len)",
        "min -> max",
    ): "the shortest candidate list is picked for speed: a pod the selector matches "
    "carries every one of its labels, so it is in the longest list too",
    (
        "components/gateway_api_crds.py",
        "with urllib.request.urlopen(source, timeout=60) as response:",
        "60 -> 61",
    ): "how long a download may take: a second more changes no object the program declares",
}
"""(module, the mutated line as written, mutant as `old -> new`) -> why it cannot change
behaviour. Keyed by the line's text, not its number, so edits elsewhere keep it."""


# --------------------------------------------------------------------------------------
# Mutants
# --------------------------------------------------------------------------------------

SWAPPED_COMPARISONS: dict[type[ast.cmpop], type[ast.cmpop]] = {
    ast.Eq: ast.NotEq,
    ast.NotEq: ast.Eq,
    ast.Lt: ast.LtE,
    ast.LtE: ast.Lt,
    ast.Gt: ast.GtE,
    ast.GtE: ast.Gt,
    ast.In: ast.NotIn,
    ast.NotIn: ast.In,
    ast.Is: ast.IsNot,
    ast.IsNot: ast.Is,
}
SWAPPED_OPERATORS: dict[type[ast.operator], type[ast.operator]] = {
    ast.Add: ast.Sub,
    ast.Sub: ast.Add,
    ast.Mult: ast.FloorDiv,
    ast.FloorDiv: ast.Mult,
    ast.BitOr: ast.BitAnd,
    ast.BitAnd: ast.BitOr,
}
SWAPPED_CALLS = {"any": "all", "all": "any", "min": "max", "max": "min"}
REGEX_CALLS = {"compile", "match", "fullmatch", "search"}

Change = Callable[[ast.AST], ast.AST | None]
"""Turns a node into its mutant (in place, or a replacement); None removes a statement."""


@dataclass(frozen=True)
class Site:
    """One mutant: which node (pre-order index) and what change."""

    index: int
    line: int
    describe: str  # `old -> new`
    change: Change


def _misspelt(value: str) -> str:
    return f"XX{value}XX"


def _string_sites(node: ast.Constant, context: str) -> Iterator[tuple[str, Change]]:
    """A compared value, a key or a regular expression: the strings whose spelling matters."""
    value = node.value
    assert isinstance(value, str)
    if context == "regex":
        if value.startswith("^"):
            yield f"{value!r} -> {value[1:]!r}", lambda n: _with_value(n, value[1:])
        if value.endswith("$") and not value.endswith("\\$"):
            yield f"{value!r} -> {value[:-1]!r}", lambda n: _with_value(n, value[:-1])
    elif value:
        yield f"{value!r} -> {_misspelt(value)!r}", lambda n: _with_value(n, _misspelt(value))


def _with_value(node: ast.AST, value: object) -> ast.AST:
    assert isinstance(node, ast.Constant)
    node.value = value
    return node


def _changes(node: ast.AST, context: str) -> Iterator[tuple[str, Change]]:
    """Every mutant of one node (`context`: how its parent uses it)."""
    if isinstance(node, ast.Compare):
        for position, op in enumerate(node.ops):
            swapped = SWAPPED_COMPARISONS.get(type(op))
            if swapped is not None:
                old, new = _op_text(op), _op_text(swapped())

                def swap(n: ast.AST, p: int = position, s: type[ast.cmpop] = swapped) -> ast.AST:
                    assert isinstance(n, ast.Compare)
                    n.ops[p] = s()
                    return n

                yield f"{old} -> {new}", swap
    elif isinstance(node, ast.BoolOp):
        new_op: ast.boolop = ast.Or() if isinstance(node.op, ast.And) else ast.And()
        yield f"{_op_text(node.op)} -> {_op_text(new_op)}", lambda n: _set(n, "op", new_op)
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        yield "not x -> x", lambda n: n.operand  # type: ignore[attr-defined,no-any-return]
    elif isinstance(node, ast.BinOp) and type(node.op) in SWAPPED_OPERATORS:
        new_bin = SWAPPED_OPERATORS[type(node.op)]()
        yield f"{_op_text(node.op)} -> {_op_text(new_bin)}", lambda n: _set(n, "op", new_bin)
    elif isinstance(node, ast.Constant):
        value = node.value
        if isinstance(value, bool):
            yield f"{value} -> {not value}", lambda n: _with_value(n, not value)
        elif isinstance(value, int):
            yield f"{value} -> {value + 1}", lambda n: _with_value(n, value + 1)
            if context == "index" and value == 0:
                yield "[0] -> [-1]", lambda n: _with_value(n, -1)
        elif isinstance(value, str) and context in ("compared", "key", "regex"):
            yield from _string_sites(node, context)
    elif isinstance(node, ast.Return) and node.value is not None:
        # `return False` (or another falsy constant) as `return None` is the same answer
        # to every caller that tests the result's truth, which is what callers do here.
        if not (isinstance(node.value, ast.Constant) and not node.value.value):
            yield "return x -> return None", lambda n: _set(n, "value", None)
    elif isinstance(node, ast.Break):
        yield "break -> continue", lambda n: ast.copy_location(ast.Continue(), n)
    elif isinstance(node, ast.Continue):
        yield "continue -> break", lambda n: ast.copy_location(ast.Break(), n)
    elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        other = SWAPPED_CALLS.get(node.func.id)
        if other is not None:
            yield f"{node.func.id} -> {other}", lambda n: _rename_call(n, other)


def _set(node: ast.AST, attribute: str, value: object) -> ast.AST:
    setattr(node, attribute, value)
    return node


def _rename_call(node: ast.AST, name: str) -> ast.AST:
    assert isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
    node.func.id = name
    return node


def _op_text(op: ast.AST) -> str:
    return {
        ast.Eq: "==", ast.NotEq: "!=", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">",
        ast.GtE: ">=", ast.In: "in", ast.NotIn: "not in", ast.Is: "is", ast.IsNot: "is not",
        ast.And: "and", ast.Or: "or", ast.Add: "+", ast.Sub: "-", ast.Mult: "*",
        ast.FloorDiv: "//", ast.BitOr: "|", ast.BitAnd: "&",
    }[type(op)]  # fmt: skip


def _is_docstring(parent: ast.AST, field: str, position: int, child: ast.AST) -> bool:
    return (
        field == "body"
        and isinstance(child, ast.Expr)
        and isinstance(child.value, ast.Constant)
        and isinstance(child.value.value, str)
        and (position == 0 or isinstance(parent, ast.Module | ast.ClassDef))
    )


def _context(parent: ast.AST, field: str, position: int, child: ast.AST) -> str:
    if isinstance(parent, ast.Compare):
        return "compared"
    if isinstance(parent, ast.Subscript) and field == "slice":
        return "index" if isinstance(child, ast.Constant) and type(child.value) is int else "key"
    if isinstance(parent, ast.Call) and field == "args" and position == 0:
        func = parent.func
        called = func.attr if isinstance(func, ast.Attribute) else ""
        if called == "get":
            return "key"
        on_re = isinstance(func, ast.Attribute) and ast.unparse(func.value) == "re"
        if called in REGEX_CALLS and on_re:
            return "regex"
    if isinstance(parent, ast.Dict) and field == "keys":
        return "key"
    return "other"


def _skipped(node: ast.AST) -> bool:
    """Subtrees no mutant is made in: `from __future__`, `if TYPE_CHECKING:` blocks."""
    if isinstance(node, ast.ImportFrom):
        return True
    return (
        isinstance(node, ast.If)
        and isinstance(node.test, ast.Name)
        and node.test.id == "TYPE_CHECKING"
    )


def _walk(tree: ast.AST) -> Iterator[tuple[int, str, ast.AST, ast.AST | None, str, int]]:
    """Pre-order (index, context, node, parent, field, position) of every node."""
    counter = 0
    stack: list[tuple[str, ast.AST, ast.AST | None, str, int]] = [("other", tree, None, "", 0)]
    while stack:
        context, node, parent, name, position = stack.pop()
        yield counter, context, node, parent, name, position
        counter += 1
        if _skipped(node):
            continue
        children = []
        for field_name, value in ast.iter_fields(node):
            if field_name in ("annotation", "returns", "decorator_list", "type_comment"):
                continue
            items = value if isinstance(value, list) else [value]
            for pos, child in enumerate(items):
                if isinstance(child, ast.AST) and not _is_docstring(node, field_name, pos, child):
                    ctx = _context(node, field_name, pos, child)
                    children.append((ctx, child, node, field_name, pos))
        stack.extend(reversed(children))


def sites(source: str) -> list[Site]:
    """Every mutant of a module's source."""
    found = []
    for index, context, node, _, _, _ in _walk(ast.parse(source)):
        for describe, change in _changes(node, context):
            found.append(Site(index, getattr(node, "lineno", 0), describe, change))
    return found


def mutated(source: str, site: Site, filename: str) -> CodeType:
    """The module's code with one mutant in place."""
    tree = ast.parse(source)
    for index, _, node, parent, name, position in _walk(tree):
        if index != site.index:
            continue
        replacement = site.change(node)
        if replacement is not node and parent is not None:
            container = getattr(parent, name)
            if isinstance(container, list):
                container[position] = replacement
            else:
                setattr(parent, name, replacement)
        break
    return compile(ast.fix_missing_locations(tree), filename, "exec")


# --------------------------------------------------------------------------------------
# Running
# --------------------------------------------------------------------------------------


def module_name(path: str) -> str:
    """The name the tests import a target by."""
    relative = Path(path).with_suffix("")
    if relative.parts[0] == "policies":  # the pack's rules import from policies/
        relative = relative.relative_to("policies")
    return ".".join(relative.parts)


class _MutantFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def __init__(self, name: str, path: Path, code: CodeType) -> None:
        self.name, self.path, self.code = name, path, code

    def find_spec(
        self, fullname: str, path: object = None, target: object = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != self.name:
            return None
        return importlib.util.spec_from_file_location(fullname, self.path, loader=self)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return None

    def exec_module(self, module: ModuleType) -> None:
        exec(self.code, module.__dict__)


PROJECT_PACKAGES = (
    "components",
    "istio_mesh",
    "istio_guardrails",
    "mesh",
    "tests",
    "e2e",
    "__main__",
)


def _run_tests(arguments: tuple[str, ...], code: CodeType | None, target: str) -> int:
    """In a forked child: the target's tests, with `code` served for the target."""
    import pytest

    if code is not None:
        sys.meta_path.insert(0, _MutantFinder(module_name(target), PROJECT / target, code))
    for name in list(sys.modules):
        if name.split(".")[0] in PROJECT_PACKAGES and name != "tests.mutation":
            del sys.modules[name]
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    options = ["-x", "-q", "-p", "no:cacheprovider", "-p", "no:randomly", "--no-header"]
    return int(pytest.main([*options, *arguments]))


@dataclass
class Result:
    site: Site
    outcome: str  # killed, survived, timeout, excluded


@dataclass
class Report:
    target: str
    results: list[Result] = field(default_factory=list)
    seconds: float = 0.0

    def count(self, outcome: str) -> int:
        return sum(1 for r in self.results if r.outcome == outcome)

    @property
    def rate(self) -> float:
        judged = len(self.results) - self.count("excluded")
        return 100.0 * (judged - self.count("survived")) / judged if judged else 100.0


def _fork(arguments: tuple[str, ...], code: CodeType | None, target: str) -> int:
    pid = os.fork()
    if pid == 0:  # the child
        status = 3
        try:
            status = _run_tests(arguments, code, target)
        finally:
            os._exit(status)
    return pid


def _wait_all(
    running: dict[int, tuple[float, Callable[[int | None], None]]], timeout: float
) -> None:
    """Reap finished children (calling their callbacks); kill those over `timeout`."""
    while running:
        pid, status = os.waitpid(-1, os.WNOHANG)
        if pid:
            _, done = running.pop(pid)
            done(os.waitstatus_to_exitcode(status))
            return
        now = time.monotonic()
        for pid, (started, done) in list(running.items()):
            if now - started > timeout:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                running.pop(pid)
                done(None)
                return
        select.select([], [], [], 0.05)


def exclusion_key(target: str, lines: list[str], site: Site) -> tuple[str, str, str]:
    """The EXCLUDED key of a mutant; `lines`: the target's source lines."""
    return target, lines[site.line - 1].strip(), site.describe


def mutate(target: str, jobs: int, say: Callable[[str], None]) -> Report:
    arguments = TARGETS[target]
    source = (PROJECT / target).read_text()
    report = Report(target)
    started = time.monotonic()
    baseline: list[int | None] = []
    running: dict[int, tuple[float, Callable[[int | None], None]]] = {}
    running[_fork(arguments, None, target)] = (time.monotonic(), baseline.append)
    _wait_all(running, timeout=600)
    if baseline != [0]:
        raise SystemExit(f"{target}: its tests fail without any mutant ({arguments})")
    timeout = max(30.0, 5 * (time.monotonic() - started))
    all_sites = sites(source)
    lines = source.splitlines()
    name = str(PROJECT / target)
    for number, site in enumerate(all_sites, 1):
        key = exclusion_key(target, lines, site)
        if key in EXCLUDED:
            report.results.append(Result(site, "excluded"))
            continue
        while len(running) >= jobs:
            _wait_all(running, timeout)

        def done(status: int | None, site: Site = site) -> None:
            outcome = "timeout" if status is None else "survived" if status == 0 else "killed"
            report.results.append(Result(site, outcome))
            if outcome == "survived":
                say(f"  survived: {target}:{site.line}: {site.describe}")

        running[_fork(arguments, mutated(source, site, name), target)] = (time.monotonic(), done)
        if number % 50 == 0:
            say(f"  {target}: {number}/{len(all_sites)}")
    while running:
        _wait_all(running, timeout)
    report.results.sort(key=lambda r: (r.site.line, r.site.index, r.site.describe))
    report.seconds = time.monotonic() - started
    return report


def summary(reports: list[Report]) -> str:
    lines = [
        "| module | mutants | killed | survived | excluded | kill rate | seconds |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in reports:
        killed = r.count("killed") + r.count("timeout")
        lines.append(
            f"| `{r.target}` | {len(r.results)} | {killed} | {r.count('survived')} | "
            f"{r.count('excluded')} | {r.rate:.1f}% | {r.seconds:.0f} |"
        )
    for r in reports:
        for result in r.results:
            if result.outcome == "survived":
                lines.append(f"- survived `{r.target}:{result.site.line}`: {result.site.describe}")
            elif result.outcome == "excluded":
                source_lines = (PROJECT / r.target).read_text().splitlines()
                key = exclusion_key(r.target, source_lines, result.site)
                lines.append(
                    f"- excluded `{r.target}:{result.site.line}` {result.site.describe}: "
                    f"{EXCLUDED[key]}"
                )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.mutation", description=__doc__)
    parser.add_argument("targets", nargs="*", help="modules (default: every target)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--minimum", type=float, default=95.0, help="kill rate, percent")
    parser.add_argument("--json", type=Path, help="write every mutant's outcome here")
    parser.add_argument("--list", action="store_true", help="list the mutants, run nothing")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.targets) - set(TARGETS))
    if unknown:
        parser.error(f"not a target: {', '.join(unknown)} (targets: {', '.join(TARGETS)})")
    targets = args.targets or list(TARGETS)
    if args.list:
        for target in targets:
            for site in sites((PROJECT / target).read_text()):
                print(f"{target}:{site.line}: {site.describe}")
        return 0
    os.chdir(PROJECT)
    for directory in (str(PROJECT), str(PACK_DIR)):
        if directory not in sys.path:
            sys.path.insert(0, directory)
    # Import the heavy libraries once, here: every child starts with them loaded.
    import pulumi  # noqa: F401
    import pulumi_kubernetes  # noqa: F401
    import pulumi_policy  # noqa: F401
    import pytest  # noqa: F401

    def say(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    reports = []
    for target in targets:
        say(f"{target}: {len(sites((PROJECT / target).read_text()))} mutants")
        reports.append(mutate(target, args.jobs, say))
    print(summary(reports))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(
            json.dumps(
                {
                    r.target: [
                        {"line": x.site.line, "mutant": x.site.describe, "outcome": x.outcome}
                        for x in r.results
                    ]
                    for r in reports
                },
                indent=2,
            )
        )
    return 0 if all(r.rate >= args.minimum for r in reports) else 1


if __name__ == "__main__":
    sys.exit(main())
