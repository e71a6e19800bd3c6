"""Check 4: the canary runbook (docs/RUNBOOKS.md, "Canary upgrade of Istio") in dev, one
real `pulumi up` per state: every step succeeds, nothing is replaced, and every revision
tag's webhook exists at every moment of every step and calls the revision it should."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from e2e.cluster import Cluster
from e2e.workspace import Workspace, stack_file_config
from tests.e2e.charts import DEV_CANARY_STEPS

TAGS = "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/istio-revision-tag-"
REPLACING = {"replace", "create-replacement", "delete-replaced"}


def canary_documents(chart_repo: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """(step, the e2e dev stack file in that state), in runbook order (tests/e2e/charts.py
    says what each state is)."""
    base = stack_file_config("dev", chart_repo)
    for step in DEV_CANARY_STEPS:
        yield step.name, {**base, "config": step.config(base["config"])}


def istio_settings(document: dict[str, Any]) -> dict[str, Any]:
    settings: dict[str, Any] = document["config"]["istio-mesh:istio"]
    return settings


@contextmanager
def watching_tags(cluster: Cluster, tags: list[str]) -> Iterator[list[str]]:
    """Poll each tag's webhook while the block runs; yields the moments one was absent."""
    gaps: list[str] = []
    stop = threading.Event()

    def poll() -> None:
        while not stop.is_set():
            for tag in tags:
                try:
                    present = cluster.exists(TAGS + tag)
                except urllib.error.URLError as error:
                    gaps.append(f"{tag}: {error}")
                    continue
                if not present:
                    gaps.append(f"{tag} absent at {time.strftime('%H:%M:%S')}")
            stop.wait(0.05)

    watcher = threading.Thread(target=poll, daemon=True)
    watcher.start()
    try:
        yield gaps
    finally:
        stop.set()
        watcher.join()


def tag_revisions(document: dict[str, Any]) -> dict[str, str]:
    """Tag -> revision as the stack says (`default` follows defaultRevision)."""
    istio = istio_settings(document)
    return {"default": istio["defaultRevision"], **istio["tags"]}


def test_the_canary_runbook_step_by_step(
    workspace: Workspace, cluster: Cluster, chart_repo: str
) -> None:
    previous_tags: dict[str, str] = {}
    for step, document in canary_documents(chart_repo):
        workspace.write_stack("dev", document)
        preview = workspace.pulumi("preview", "--stack", "dev", "--json").check()
        steps = json.loads(preview.stdout).get("steps", [])
        replaced = [s["urn"] for s in steps if s.get("op") in REPLACING]
        assert not replaced, f"{step} replaces {replaced}"
        # Tags there before and after the step must never be missing during it.
        kept = [tag for tag in tag_revisions(document) if tag in previous_tags]
        with watching_tags(cluster, kept) as gaps:
            workspace.pulumi("up", "--stack", "dev", "--yes", "--skip-preview").check()
        assert not gaps, f"{step}: a tag webhook was missing: {gaps[:5]}"
        for tag, revision in tag_revisions(document).items():
            webhook = cluster.get(TAGS + tag)
            services = {hook["clientConfig"]["service"]["name"] for hook in webhook["webhooks"]}
            assert services == {f"istiod-{revision}"}, (step, tag, services)
        previous_tags = tag_revisions(document)
    # After step 7 only 1.31.1's istiod is left.
    assert not cluster.exists("/apis/apps/v1/namespaces/istio-system/deployments/istiod-1-30-5")
    assert cluster.exists("/apis/apps/v1/namespaces/istio-system/deployments/istiod-1-31-1")
