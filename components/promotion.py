"""The promotion gate: a stack may only run Istio versions its source stack runs.

Prod trails dev: prod's config names dev in `promotion.fromStack`, the program reads
dev's outputs through a `StackReference`, and refuses (one message, nothing declared)
any version or revision dev does not run. Without readable outputs the gate fails
closed: an unverifiable promotion is a refused promotion.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from components.config import MeshConfig, config_path
from components.errors import ConfigError, ConfigProblem

PROMOTED_OUTPUTS = ("istioVersions", "revisions")
"""Outputs a source stack exports for the stacks that trail it (see `mesh_outputs`)."""


def promotion_problems(
    config: MeshConfig, source: Mapping[str, Any] | None, source_name: str | None = None
) -> list[ConfigProblem]:
    """What in `config` the source stack (its outputs) has not run; [] when promotable.
    `source_name` is the stack as referenced (default: as `promotion.fromStack` says)."""
    assert config.promotion is not None
    from_stack = source_name or config.promotion.from_stack
    where = config_path(("promotion", "fromStack"))
    versions = (source or {}).get("istioVersions")
    if not isinstance(versions, list):
        return [
            ConfigProblem(
                where,
                f"cannot read the Istio versions stack {from_stack} runs, so this promotion "
                "cannot be verified (deploy that stack first; offline, pass "
                f"--reference {from_stack.rpartition('/')[2]}=FILE with its "
                "`pulumi stack export` or the stack.json of `mesh render`)",
            )
        ]
    runs = ", ".join(map(str, versions)) or "nothing"
    problems = []
    for index, revision in enumerate(config.istio.revisions):
        if revision.version in versions:
            continue
        if "revisions" in config.istio.model_fields_set:
            where_written = config_path(("istio", "revisions", index, "version"))
            problems.append(
                ConfigProblem(
                    where_written,
                    f"{revision.version} has not run in {from_stack} (it runs {runs}): "
                    "promote through it first",
                )
            )
        else:
            # The stack left istio.revisions to its default: name the gate it wrote.
            problems.append(
                ConfigProblem(
                    where,
                    f"the default Istio revision {revision.version} (istio.revisions is not "
                    f"set) has not run in {from_stack} (it runs {runs}): set istio.revisions "
                    "to a version it runs, or promote through it first",
                )
            )
    return problems


def check_promotion(
    config: MeshConfig, source: Mapping[str, Any] | None, source_name: str | None = None
) -> None:
    problems = promotion_problems(config, source, source_name)
    if problems:
        raise ConfigError(problems)
