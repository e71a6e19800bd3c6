"""The pack over gRPC: catalogue, policy config, failing closed, secrets."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import pytest

from mesh.analyzer import (
    PACK_DIR,
    PolicyPackError,
    PolicyPackProcess,
    PolicyResource,
    reconcile_policy_config,
)

from .conftest import DEV_CONFIG, PROD_CONFIG, SECRET, UNKNOWN, peer_authentication


def test_unknown_security_field_fails_closed(prod_pack: PolicyPackProcess) -> None:
    # pulumi-policy alone would log an advisory "can't run policy" note and move on.
    assert prod_pack.dry_run
    diagnostics = prod_pack.analyze(peer_authentication(UNKNOWN))
    [violation] = [d for d in diagnostics if d.policy == "peer-authentication-strict"]
    assert violation.enforcement == "mandatory"
    assert violation.urn == peer_authentication(UNKNOWN).urn
    assert "spec.mtls.mode is unknown during preview" in violation.message
    assert prod_pack.analyze(peer_authentication("STRICT")) == []


def test_unknown_in_a_stack_rule_fails_closed_on_that_resource(
    prod_pack: PolicyPackProcess,
) -> None:
    release = PolicyResource(
        type="kubernetes:helm.sh/v3:Release",
        name="istiod",
        urn="urn:pulumi:prod::istio-mesh::kubernetes:helm.sh/v3:Release::istiod",
        props={"chart": "istiod", "version": "1.30.5", "name": "istiod"},
    )
    policy = peer_authentication(UNKNOWN)
    root = PolicyResource(
        policy.type,
        policy.name,
        policy.urn,
        {**policy.props, "metadata": {"name": "default", "namespace": "istio-system"}},
    )
    found = {(d.policy, d.urn) for d in prod_pack.analyze_stack([release, root])}
    assert ("mesh-wide-strict-mtls", root.urn) in found
    assert ("mesh-wide-strict-mtls", "") in found


def test_secret_values_are_judged_by_their_plain_value(prod_pack: PolicyPackProcess) -> None:
    assert prod_pack.analyze(peer_authentication({**SECRET, "value": "STRICT"})) == []
    [violation] = prod_pack.analyze(peer_authentication({**SECRET, "value": "PERMISSIVE"}))
    assert violation.policy == "peer-authentication-strict"
    assert "PERMISSIVE" in violation.message


def test_catalogue_lists_each_rule_with_a_fix_and_a_level(prod_pack: PolicyPackProcess) -> None:
    assert prod_pack.name == "istio-mesh-guardrails"
    names = [policy.name for policy in prod_pack.policies]
    assert len(names) == len(set(names)) >= 14
    for policy in prod_pack.policies:
        assert re.fullmatch(r"[a-z][a-z0-9-]+", policy.name)
        assert len(policy.description) > 60
        assert policy.enforcement in ("mandatory", "advisory")
    stack_rules = {policy.name for policy in prod_pack.policies if policy.stack_policy}
    assert stack_rules == {
        "mesh-wide-strict-mtls",
        "virtual-service-subsets-exist",
        "gateway-selector-matches",
        "namespace-default-deny",
        "virtual-service-gateway-bound",
        "gateway-no-conflict",
        "gateway-certificate-unique",
        "destination-rule-subsets-select-pods",
        "authorization-selects-workloads",
        "authorization-source-namespaces-exist",
        "gateway-api-route-parents",
        "gateway-api-listeners-no-conflict",
        "gateway-api-http-redirects",
        "ambient-namespace-not-injected",
        "ambient-l7-policy-needs-waypoint",
        "clusters-share-trust",
    }


def test_readme_catalogue_matches_the_pack(prod_pack: PolicyPackProcess) -> None:
    readme = (PACK_DIR / "README.md").read_text()
    rows = re.findall(r"^\| `([a-z0-9-]+)` \|.*\| (mandatory|advisory) \|$", readme, re.M)
    assert dict(rows) == {policy.name: policy.enforcement for policy in prod_pack.policies}


def test_project_readme_catalogue_is_the_packs() -> None:
    # The project README repeats the pack's catalogue: the two copies stay equal.
    def rows(path: Path) -> list[str]:
        return [
            line
            for line in path.read_text().splitlines()
            if re.fullmatch(r"\| `[a-z0-9-]+` \|.*\| (mandatory|advisory) \|", line)
        ]

    assert rows(PACK_DIR.parent / "README.md") == rows(PACK_DIR / "README.md")


def test_prod_config_makes_every_rule_mandatory(prod_pack: PolicyPackProcess) -> None:
    reconciled = reconcile_policy_config(prod_pack.policies, PROD_CONFIG)
    assert set(PROD_CONFIG) == set(reconciled)  # every rule named explicitly
    assert {level for level, _ in reconciled.values()} == {"mandatory"}


def test_dev_config_makes_only_istiod_ha_advisory(prod_pack: PolicyPackProcess) -> None:
    reconciled = reconcile_policy_config(prod_pack.policies, DEV_CONFIG)
    advisory = {name for name, (level, _) in reconciled.items() if level == "advisory"}
    assert advisory == {"istiod-high-availability"}


def test_config_defaults_come_from_the_schema(prod_pack: PolicyPackProcess) -> None:
    reconciled = reconcile_policy_config(prod_pack.policies, None)
    _, props = reconciled["istio-helm-release-pinned"]
    assert props["minimumVersion"] == "1.30.0"
    assert "https://blob.istio.io/istio-release/charts" in props["allowedRepositories"]
    assert not any("googleapis" in repo for repo in props["allowedRepositories"])


@pytest.mark.parametrize(
    ("config", "error"),
    [
        ({"no-such-rule": "mandatory"}, "unknown policies: no-such-rule"),
        ({"all": "blocking"}, "unknown enforcement level 'blocking'"),
        ({"istio-helm-release-pinned": {"minimumVersion": 1.3}}, "minimumVersion"),
        ({"peer-authentication-strict": {"mode": "STRICT"}}, "peer-authentication-strict"),
    ],
)
def test_bad_policy_config_is_refused(
    prod_pack: PolicyPackProcess, config: dict[str, Any], error: str
) -> None:
    with pytest.raises(PolicyPackError, match=re.escape(error)):
        reconcile_policy_config(prod_pack.policies, config)


def test_configured_properties_reach_the_rules() -> None:
    release = PolicyResource(
        type="kubernetes:helm.sh/v3:Release",
        name="istiod",
        urn="urn:pulumi:dev::istio-mesh::kubernetes:helm.sh/v3:Release::istiod",
        props={
            "chart": "istiod",
            "version": "1.30.5",
            "repositoryOpts": {"repo": "https://charts.example.com/istio"},
            "values": {"global": {"hub": "docker.io/istio"}},
        },
    )
    config = {
        "istio-helm-release-pinned": {
            "allowedRepositories": ["https://charts.example.com/istio"],
            "minimumVersion": "1.31.0",
        }
    }
    with PolicyPackProcess(stack="dev", dry_run=False) as pack:
        pack.configure(config)
        [violation] = [d for d in pack.analyze(release) if d.policy != "istiod-high-availability"]
        pack.configure({"all": "disabled"})
        assert pack.analyze(release) == []
    assert violation.policy == "istio-helm-release-pinned"
    assert "older than the oldest supported version 1.31.0" in violation.message


def test_a_pack_that_cannot_start_is_reported(tmp_path: Path) -> None:
    (tmp_path / "__main__.py").write_text("import no_such_module_here\n")
    with pytest.raises(PolicyPackError, match="no_such_module_here"):
        PolicyPackProcess(tmp_path, stack="dev").start()


PROBE_PACK = """
from pulumi_policy import (
    EnforcementLevel,
    PolicyPack,
    ResourceValidationPolicy,
    StackValidationPolicy,
)


def tag(args):
    return {**args.props, "tagged": "yes"}


def report_what_was_seen(args, report):
    provider = f" provider tagged={args.provider.props.get('tagged')}" if args.provider else ""
    report(f"{args.resource_type} tagged={args.props.get('tagged')}{provider}")


def report_what_the_stack_saw(args, report):
    for resource in args.resources:
        report(f"stack saw tagged={resource.props.get('tagged')}", resource.urn)


PolicyPack(
    name="probe",
    enforcement_level=EnforcementLevel.ADVISORY,
    policies=[
        ResourceValidationPolicy(
            name="tag",
            description="Adds a tag.",
            remediate=tag,
            enforcement_level=EnforcementLevel.REMEDIATE,
        ),
        ResourceValidationPolicy(
            name="seen", description="Reports what Analyze saw.", validate=report_what_was_seen
        ),
        StackValidationPolicy(
            name="stack-seen",
            description="Reports what AnalyzeStack saw.",
            validate=report_what_the_stack_saw,
        ),
    ],
)
"""


def test_check_remediates_then_analyzes_every_resource_like_the_engine(tmp_path: Path) -> None:
    # The engine's step generator sends each resource, providers included, to Remediate
    # and then Analyze, with the remediated properties: from then on they are what
    # later resources see of their provider, and what AnalyzeStack sees.
    (tmp_path / "__main__.py").write_text(PROBE_PACK)
    provider = PolicyResource(
        type="pulumi:providers:kubernetes",
        name="cluster",
        urn="urn:pulumi:dev::istio-mesh::pulumi:providers:kubernetes::cluster",
        props={},
    )
    policy = dataclasses.replace(peer_authentication("STRICT"), provider=f"{provider.urn}::id")
    with PolicyPackProcess(tmp_path, stack="dev") as pack:
        pack.configure(None)
        seen = [(d.policy, d.urn, d.message) for d in pack.check([provider, policy])]
    assert seen == [
        ("seen", provider.urn, "pulumi:providers:kubernetes tagged=yes"),
        ("seen", policy.urn, f"{policy.type} tagged=yes provider tagged=yes"),
        ("stack-seen", provider.urn, "stack saw tagged=yes"),
        ("stack-seen", policy.urn, "stack saw tagged=yes"),
    ]
