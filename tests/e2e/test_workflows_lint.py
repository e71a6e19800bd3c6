"""actionlint over the GitHub workflows we ship (zizmor runs in the fast tier)."""

from __future__ import annotations

from e2e.tools import PROJECT_DIR, run, tool

E2E_TOOLS = ("actionlint",)
"""What this module needs built (conftest skips it otherwise)."""


def test_actionlint_finds_nothing_in_the_workflows() -> None:
    workflows = sorted((PROJECT_DIR / ".github" / "workflows").glob("*.yml"))
    assert workflows
    result = run([tool("actionlint"), "-no-color", *workflows], cwd=PROJECT_DIR)
    assert result.returncode == 0, result.stdout + result.stderr
