"""The pack's process set-up (`istio_guardrails/runtime.py`) changes no answer.

The shared decoding wraps pulumi-policy's servicer in place; each wrapped method keeps
pulumi-policy's own as `__wrapped__`. Here both answer the same requests, in-process,
for whole stacks and for every rule fixture (violations, unknowns, secrets included),
and their answers must be equal message for message.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any

import pytest
from google.protobuf import empty_pb2
from istio_guardrails import PACK_NAME, POLICIES, runtime
from pulumi.runtime.proto import analyzer_pb2
from pulumi_policy import EnforcementLevel
from pulumi_policy.policy import _PolicyAnalyzerServicer

from mesh.analyzer import PolicyResource, Preview, configure_request, policy_infos
from mesh.check import manifest_resources, program_resources
from tests.conftest import stack_run

from .conftest import DEV_CONFIG, FIXTURES, PROD_CONFIG, SECRET, peer_authentication

runtime.share_decoding()

CALLS = ("Remediate", "Analyze", "AnalyzeStack")


def servicer(policy_config: dict[str, Any]) -> _PolicyAnalyzerServicer:
    """The pack's servicer, configured as the CLI would configure it."""
    served = _PolicyAnalyzerServicer(
        PACK_NAME,
        "0.0.1",
        POLICIES,
        EnforcementLevel.MANDATORY,
        None,
        None,
        None,
        None,
        None,
        None,
        None,
    )
    infos = policy_infos(served.GetAnalyzerInfo(empty_pb2.Empty(), None))
    served.Configure(configure_request(infos, policy_config), None)
    return served


def answers(
    served: _PolicyAnalyzerServicer, resources: Sequence[PolicyResource], call: Any
) -> list[Any]:
    """Every answer of one preview, with `call(name)` giving the servicer method to use."""
    preview = Preview(resources)
    found: list[Any] = []
    for request in preview.requests:
        found.append(call("Remediate")(served, request, None))
        found.append(call("Analyze")(served, request, None))
    found.append(call("AnalyzeStack")(served, preview.stack, None))
    return found


def shared(name: str) -> Callable[..., Any]:
    return getattr(_PolicyAnalyzerServicer, name)


def pulumi_policys_own(name: str) -> Callable[..., Any]:
    return inspect.unwrap(getattr(_PolicyAnalyzerServicer, name))


def secret_resource() -> PolicyResource:
    return peer_authentication({**SECRET, "value": "PERMISSIVE"})


STACKS = {
    "dev": lambda: program_resources(stack_run("dev")),
    "prod": lambda: program_resources(stack_run("prod")),
    "fixtures": lambda: manifest_resources(
        sorted(p for p in FIXTURES.glob("*/*.yaml") if p.name != "expected.yaml"), stack="prod"
    ),
    "secret": lambda: [secret_resource()],
}


def test_the_installed_pulumi_policy_is_shaped_as_the_set_up_expects() -> None:
    # A pulumi-policy release that renames what runtime.py wraps leaves the pack correct
    # but slow again; this is where that shows.
    for name in CALLS:
        assert shared(name) is not pulumi_policys_own(name), name


@pytest.mark.parametrize("stack", sorted(STACKS))
@pytest.mark.parametrize("config", [DEV_CONFIG, PROD_CONFIG], ids=["dev", "prod"])
def test_shared_decoding_answers_exactly_as_pulumi_policy(
    stack: str, config: dict[str, Any]
) -> None:
    served = servicer(config)
    resources = STACKS[stack]()
    own = answers(served, resources, pulumi_policys_own)
    assert answers(served, resources, shared) == own
    if stack == "fixtures":
        analyzed = [answer for answer in own if isinstance(answer, analyzer_pb2.AnalyzeResponse)]
        assert any(answer.diagnostics for answer in analyzed), "the fixtures have violations"


def test_a_policy_set_to_remediate_still_gets_pulumi_policys_remediate() -> None:
    # This pack has no remediations: pulumi-policy answers "not applicable" for a
    # policy configured to remediate, and the shortcut must not hide that.
    served = servicer({**PROD_CONFIG, "peer-authentication-strict": "remediate"})
    resources = [secret_resource()]
    own = answers(served, resources, pulumi_policys_own)
    assert answers(served, resources, shared) == own
    assert [n.policy_name for n in own[0].not_applicable] == ["peer-authentication-strict"]


def test_decoding_is_shared_only_inside_a_call() -> None:
    memo = runtime._CallScopedMemo()
    calls: list[object] = []

    def decode(value: object) -> dict[str, object]:
        calls.append(value)
        return {"decoded": value}

    remembered = memo.step(decode)
    message = object()
    assert remembered(message) is not remembered(message)  # no call open: decoded each time

    def call() -> tuple[object, object, object]:
        return remembered(message), remembered(message), remembered(object())

    first, again, other = memo.scoped(call)()
    assert first is again and other is not first
    assert len(calls) == 2 + 2


def test_remediate_answers_at_once_when_no_policy_remediates() -> None:
    def remediate(*_args: object) -> object:
        raise AssertionError("decoded a resource no policy would remediate")

    answer = runtime._only_when_a_policy_remediates(remediate)
    request = Preview([secret_resource()]).requests[0]
    assert answer(servicer(PROD_CONFIG), request, None) == analyzer_pb2.RemediateResponse()
    with pytest.raises(AssertionError, match="decoded"):
        answer(servicer({"peer-authentication-strict": "remediate"}), request, None)


PROBE_PACK = """
import sys
sys.path.insert(0, {pack_dir!r})
import pulumi
from istio_guardrails.runtime import prepare_process
from pulumi_policy import EnforcementLevel, PolicyPack, ResourceValidationPolicy


def probe(args, report_violation):
    report_violation(
        f"project={{pulumi.get_project()}} stack={{pulumi.get_stack()}} "
        f"dry_run={{pulumi.runtime.is_dry_run()}}"
    )


prepare_process()
PolicyPack(
    "probe",
    [ResourceValidationPolicy(name="probe", description="where am I", validate=probe)],
    EnforcementLevel.MANDATORY,
)
"""


def test_a_rule_still_knows_its_project_stack_and_dry_run_once_the_variables_are_gone(
    tmp_path: Any,
) -> None:
    # prepare_process drops PULUMI_PROJECT/STACK/DRY_RUN after pulumi.policy applied
    # them: a rule asking the runtime must still get the CLI's answers.
    from mesh.analyzer import PACK_DIR, PolicyPackProcess

    (tmp_path / "__main__.py").write_text(PROBE_PACK.format(pack_dir=str(PACK_DIR)))
    resource = PolicyResource(
        type="kubernetes:core/v1:Namespace",
        name="shop",
        urn="urn:pulumi:prod::istio-mesh::kubernetes:core/v1:Namespace::shop",
        props={"metadata": {"name": "shop"}},
    )
    with PolicyPackProcess(tmp_path, stack="prod", dry_run=True) as pack:
        first, second = pack.analyze(resource), pack.analyze(resource)
    for diagnostics in (first, second):
        [diagnostic] = diagnostics
        assert "project=istio-mesh stack=prod dry_run=True" in diagnostic.message


def _fresh_pulumi_policy(monkeypatch: pytest.MonkeyPatch, without: str = "") -> Any:
    """pulumi_policy.policy as before `share_decoding`, on a throwaway servicer class
    (without the attribute `without`, if it names one of the servicer's)."""
    import google.protobuf.json_format
    import pulumi_policy.policy as module

    monkeypatch.setattr(module, "json_format", google.protobuf.json_format)
    members = {
        name: getattr(_PolicyAnalyzerServicer, name)
        for name in (*runtime.SERVED_CALLS, *runtime.DECODING_METHODS)
        if name != without
    }
    monkeypatch.setattr(module, "_PolicyAnalyzerServicer", type("Servicer", (), members))
    return module


def test_shared_decoding_applies_to_the_expected_pulumi_policy(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    module = _fresh_pulumi_policy(monkeypatch)
    runtime.share_decoding()
    assert type(module.json_format).__name__ == "_MessageToDict"


@pytest.mark.parametrize("missing", ["_PolicyAnalyzerServicer", *runtime.DECODING_STEPS])
def test_shared_decoding_leaves_an_unexpected_pulumi_policy_alone(
    monkeypatch: pytest.MonkeyPatch, missing: str
) -> None:
    module = _fresh_pulumi_policy(monkeypatch)
    json_format = module.json_format
    monkeypatch.delattr(module, missing)
    runtime.share_decoding()
    assert module.json_format is json_format


@pytest.mark.parametrize("missing", [*runtime.SERVED_CALLS, *runtime.DECODING_METHODS])
def test_shared_decoding_leaves_a_servicer_of_another_shape_alone(
    monkeypatch: pytest.MonkeyPatch, missing: str
) -> None:
    module = _fresh_pulumi_policy(monkeypatch, without=missing)
    json_format = module.json_format
    runtime.share_decoding()
    assert module.json_format is json_format
