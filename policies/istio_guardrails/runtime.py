"""Set-up of the pack's process, so that pulumi-policy's server repeats less work per call.

The Pulumi CLI starts the pack once per preview and then, for every resource, calls
Remediate and Analyze on it one at a time; AnalyzeStack follows once with every
resource. Four costs of that server grow with the stack and are not the rules' own:

- At the start of every call pulumi-policy json-parses PULUMI_CONFIG, the whole stack
  config, and sets each key again (`_configure_runtime_settings`). For a 1000-service
  mesh that config is about 0.6 MB: 4 ms per call, over half a minute per preview.
  `python -m pulumi.policy` has already applied it when the pack starts, and the
  variable never changes while the process lives, so the pack applies it once more
  (through the public `pulumi.runtime` calls) and then removes the variable: the
  per-call re-parse finds nothing to do, and `pulumi.Config` reads the same values.
- The same per-call step rebuilds pulumi's runtime settings from PULUMI_PROJECT,
  PULUMI_STACK and PULUMI_DRY_RUN (a third of a millisecond per call). The pack leaves
  those variables alone: without them the rebuilt settings say project `project` and
  stack `stack` to any rule that asks (tests/policies/test_runtime.py).
- pulumi-policy turns a resource's properties into Python objects (protobuf to dict,
  then secrets and unknown-value proxies) once per policy: ten times per Analyze,
  and for AnalyzeStack once per stack rule for every resource. `share_decoding`
  makes each gRPC call decode a given message once and hand every policy the same
  read-only view; see `_CallScopedMemo`. About 70% of the pack's own time at 1000
  services. Remediate decodes the resource before it looks for a policy set to
  remediate; this pack has no remediations, and unless a policy's level is set to
  `remediate` the answer is empty whatever the resource, so the pack gives it at once.
- With Python's default collection threshold the cyclic garbage collector traverses
  the objects that survive during AnalyzeStack again and again. They are plain dicts
  and lists, freed by reference counting; a higher first-generation threshold keeps
  cycle collection but runs it far less often, and freezing what exists at start-up
  (pulumi, grpc, protobuf, the rules) keeps the collector from walking modules that
  live as long as the process anyway.

None changes what any rule sees or reports; tests/policies/test_runtime.py compares
the shared decoding with pulumi-policy's own on whole stacks.
"""

from __future__ import annotations

import functools
import gc
import os
import threading
from collections.abc import Callable
from typing import Any

import pulumi.runtime
import pulumi_policy.policy
from pulumi.runtime.proto import analyzer_pb2
from pulumi_policy import EnforcementLevel

GC_FIRST_GENERATION_THRESHOLD = 50_000
"""Allocations between young-generation collections (Python's default is 700)."""

"""What pulumi-policy reads at every call to configure the runtime again."""

SERVED_CALLS = ("Analyze", "AnalyzeStack", "Remediate")
"""The servicer methods that decode resource properties."""

DECODING_STEPS = ("deserialize_properties", "unknown_checking_proxy")
"""The functions pulumi-policy's servicer calls, by module global, to decode properties."""

DECODING_METHODS = ("_get_resource_options", "_get_provider_resource")
"""The servicer's own methods that decode a request's options and provider, per policy."""


def prepare_process() -> None:
    """Apply the stack config and settings once, share decoding, tune the GC; before serving."""
    apply_stack_config_once()
    share_decoding()
    tune_garbage_collector()


def apply_stack_config_once() -> None:
    """Set every PULUMI_CONFIG entry as Pulumi config, then drop the variable."""
    for key, value in pulumi.runtime.get_config_env().items():
        pulumi.runtime.set_config(key, value)
    os.environ.pop("PULUMI_CONFIG", None)


class _CallScopedMemo:
    """Remembers, within one gRPC call, what each decoding step made of each input.

    pulumi-policy's servicer decodes `request.properties` (and the provider's) with
    `deserialize_properties(json_format.MessageToDict(message))` and wraps the result
    in `unknown_checking_proxy`, once for every policy. Inside a call those inputs do
    not change, so the second policy on can have the first one's result. Outside a
    call (no scope open on this thread) every step runs as pulumi-policy wrote it.

    Entries are keyed by the inputs' identities and keep the inputs alive, so an id is
    never reused within the scope; the scope is per thread because the server runs
    calls on a pool of threads. Sharing is safe because no rule writes to the
    properties it is given: rules read them through `values.py`, which only reads.
    """

    def __init__(self) -> None:
        self._local = threading.local()

    def step(self, function: Callable[..., Any]) -> Callable[..., Any]:
        """`function`, remembering its result per arguments (by identity) while a scope is open."""

        @functools.wraps(function)
        def remembered(*args: Any) -> Any:
            entries: dict[tuple[int, ...], tuple[Any, Any]] | None = getattr(
                self._local, "entries", None
            )
            if entries is None:
                return function(*args)
            key = (id(function), *map(id, args))
            entry = entries.get(key)
            if entry is None:
                entry = entries[key] = (args, function(*args))
            return entry[1]

        return remembered

    def scoped(self, method: Callable[..., Any]) -> Callable[..., Any]:
        """`method`, run with a fresh scope that is dropped when it returns."""

        @functools.wraps(method)
        def in_scope(*args: Any) -> Any:
            self._local.entries = {}
            try:
                return method(*args)
            finally:
                self._local.entries = None

        return in_scope


class _MessageToDict:
    """Stands in for the `json_format` module in pulumi_policy.policy, which uses only this."""

    def __init__(self, memo: _CallScopedMemo, json_format: Any) -> None:
        self.MessageToDict = memo.step(json_format.MessageToDict)


def share_decoding() -> None:
    """Make each call of the pack's servicer decode every properties message once.

    Does nothing, and so keeps pulumi-policy's own behaviour, if its servicer is not
    shaped as this expects (tests/policies/test_runtime.py fails for such a version).
    """
    module: Any = pulumi_policy.policy
    servicer = getattr(module, "_PolicyAnalyzerServicer", None)
    json_format = getattr(module, "json_format", None)
    if (
        servicer is None
        or json_format is None
        or isinstance(json_format, _MessageToDict)
        or not all(hasattr(module, name) for name in DECODING_STEPS)
        or not all(hasattr(servicer, name) for name in SERVED_CALLS + DECODING_METHODS)
    ):
        return
    memo = _CallScopedMemo()
    module.json_format = _MessageToDict(memo, json_format)
    for name in DECODING_STEPS:
        setattr(module, name, memo.step(getattr(module, name)))
    for name in DECODING_METHODS:
        setattr(servicer, name, memo.step(getattr(servicer, name)))
    for name in SERVED_CALLS:
        setattr(servicer, name, memo.scoped(getattr(servicer, name)))
    servicer.Remediate = _only_when_a_policy_remediates(servicer.Remediate)


def _only_when_a_policy_remediates(remediate: Callable[..., Any]) -> Callable[..., Any]:
    """Remediate, or an empty answer straight away when no policy's level is `remediate`.

    pulumi-policy's Remediate answers only for policies at that level; for every other
    policy it skips, so with none at that level its answer is empty for any resource.
    """

    @functools.wraps(remediate)
    def remediate_if_configured(servicer: Any, request: Any, context: Any) -> Any:
        policies = getattr(servicer, "_PolicyAnalyzerServicer__policies", None)
        if policies is not None and not any(
            servicer._get_enforcement_level(policy) == EnforcementLevel.REMEDIATE
            for policy in policies
        ):
            return analyzer_pb2.RemediateResponse()
        return remediate(servicer, request, context)

    return remediate_if_configured


def tune_garbage_collector() -> None:
    _, second, third = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(GC_FIRST_GENERATION_THRESHOLD, second, third)
