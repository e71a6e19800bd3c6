"""The e2e tier builds the real systems at the versions the Python SDKs are pinned to."""

from __future__ import annotations

import re

from e2e.tools import PROJECT_DIR, versions


def pinned(requirements: str) -> dict[str, str]:
    text = (PROJECT_DIR / requirements).read_text()
    return dict(re.findall(r"^([a-z-]+)==(\S+)", text, re.MULTILINE))


def test_the_kubernetes_provider_is_built_at_the_python_sdk_version() -> None:
    assert (
        versions()["PULUMI_KUBERNETES_VERSION"] == pinned("requirements.txt")["pulumi-kubernetes"]
    )


def test_the_cli_is_at_least_the_python_sdk_version() -> None:
    # pkg/v3 is not served at every release: the CLI is the nearest one not older.
    def key(version: str) -> tuple[int, ...]:
        return tuple(int(part) for part in version.split("."))

    sdk = pinned("requirements.txt")["pulumi"]
    assert key(versions()["PULUMI_VERSION"]) >= key(sdk)
    assert key(versions()["PULUMI_VERSION"])[:2] <= (key(sdk)[0], key(sdk)[1] + 5)


def test_the_policy_pack_runs_on_the_programs_pulumi() -> None:
    program, pack = pinned("requirements.txt"), pinned("policies/requirements.txt")
    assert pack["pulumi"] == program["pulumi"]
    assert pack["pulumi-policy"] == program["pulumi-policy"]


def test_each_stack_version_has_its_charts_packaged() -> None:
    pinned_versions = {v for k, v in versions().items() if k.endswith("_CHART_VERSION")}
    assert pinned_versions == {"1.30.5", "1.31.1"}
