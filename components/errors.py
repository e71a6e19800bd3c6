"""Config problems and the single error that reports all of them at once.

Validation never stops at the first problem: every check appends a `ConfigProblem`
with the config path it concerns, and the program ends with one `ConfigError`
listing them all. `ConfigError` is a `pulumi.RunError`, which the Pulumi language host
prints as a plain message (no traceback); `python -m mesh render` maps it to exit 2.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

import pulumi

_INDEX = re.compile(r"(\d+)")


@dataclass(frozen=True)
class ConfigProblem:
    """One thing wrong with the stack config; problems sort by path, then message."""

    path: str
    """Where, as the user writes it: `istio-mesh:services[2].versions`."""
    message: str
    """What is wrong and, where it helps, what would be right."""

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"

    def _sort_key(self) -> tuple[tuple[str | int, ...], str]:
        # Numbers in a path compare as numbers: `services[2]` before `services[10]`.
        # Splitting on a captured group alternates text (even places) and digits (odd).
        parts = _INDEX.split(self.path)
        return tuple(int(part) if i % 2 else part for i, part in enumerate(parts)), self.message

    def __lt__(self, other: ConfigProblem) -> bool:
        return self._sort_key() < other._sort_key()


class ConfigError(pulumi.RunError):
    """The stack config is unusable; nothing has been registered."""

    def __init__(self, problems: Iterable[ConfigProblem]) -> None:
        self.problems: list[ConfigProblem] = list(problems)
        lines = "\n".join(f"  - {problem}" for problem in self.problems)
        count = len(self.problems)
        noun = "problem" if count == 1 else "problems"
        super().__init__(f"invalid stack config ({count} {noun}):\n{lines}")
