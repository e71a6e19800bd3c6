"""The mutation runner's own parts: which mutants it makes, and that each is what it says."""

from __future__ import annotations

import pytest

from tests import mutation

SOURCE = '''
"""Module docstring: "not mutated"."""
import re

PATTERN = re.compile(r"^[a-z]+$")


def f(a: int, b: int, items: list[int], config: dict[str, int]) -> object:
    """Docstring."""
    if a < b and not a:
        return config["limit"]
    for item in items:
        if item == 0:
            continue
        break
    return any(x > 1 for x in items) or items[0] + 1
'''


def run(site: mutation.Site, *args: object) -> object:
    namespace: dict[str, object] = {}
    exec(mutation.mutated(SOURCE, site, "<test>"), namespace)
    function = namespace["f"]
    assert callable(function)
    return function(*args)


def test_the_mutants_of_a_module() -> None:
    described = sorted((site.line, site.describe) for site in mutation.sites(SOURCE))
    assert described == sorted(
        [
            (5, "'^[a-z]+$' -> '[a-z]+$'"),
            (5, "'^[a-z]+$' -> '^[a-z]+'"),
            (10, "< -> <="),
            (10, "and -> or"),
            (10, "not x -> x"),
            (11, "return x -> return None"),
            (11, "'limit' -> 'XXlimitXX'"),
            (13, "== -> !="),
            (13, "0 -> 1"),
            (14, "continue -> break"),
            (15, "break -> continue"),
            (16, "return x -> return None"),
            (16, "any -> all"),
            (16, "> -> >="),
            (16, "1 -> 2"),
            (16, "or -> and"),
            (16, "[0] -> [-1]"),
            (16, "0 -> 1"),
            (16, "+ -> -"),
            (16, "1 -> 2"),
        ]
    )


@pytest.mark.parametrize(
    ("describe", "args", "original", "mutant"),
    [
        ("< -> <=", (0, 0, [5], {"limit": 7}), True, 7),
        ("not x -> x", (0, 1, [5], {"limit": 7}), 7, True),
        ("[0] -> [-1]", (1, 0, [1, 0], {}), 2, 1),
        ("+ -> -", (1, 0, [1], {}), 2, 0),
        ("any -> all", (1, 0, [3, 1], {}), True, 4),
    ],
)
def test_each_mutant_changes_what_it_says(
    describe: str, args: tuple[object, ...], original: object, mutant: object
) -> None:
    [site] = [s for s in mutation.sites(SOURCE) if s.describe == describe]
    assert run(mutation.Site(-1, 0, "none", lambda n: n), *args) == original
    assert run(site, *args) == mutant


def test_targets_import_by_the_names_the_tests_use() -> None:
    assert mutation.module_name("components/naming.py") == "components.naming"
    assert mutation.module_name("policies/istio_guardrails/mtls.py") == "istio_guardrails.mtls"
    assert all((mutation.PROJECT / target).is_file() for target in mutation.TARGETS)
