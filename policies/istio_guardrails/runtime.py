"""Set-up of the pack's process, so that pulumi-policy's server repeats less work per call.

The Pulumi CLI starts the pack once per preview and then, for every resource, calls
Remediate and Analyze on it one at a time; AnalyzeStack follows once with every
resource. Two costs of that server grow with the stack and are not the rules' own:

- At the start of every call pulumi-policy json-parses PULUMI_CONFIG, the whole stack
  config, and sets each key again (`_configure_runtime_settings`). For a 1000-service
  mesh that config is about 0.6 MB: 4 ms per call, over half a minute per preview.
  `python -m pulumi.policy` has already applied it when the pack starts, and the
  variable never changes while the process lives, so the pack applies it once more
  (through the public `pulumi.runtime` calls) and then removes the variable: the
  per-call re-parse finds nothing to do, and `pulumi.Config` reads the same values.
- pulumi-policy turns every resource's properties into Python objects once per policy,
  and for AnalyzeStack keeps the whole stack's worth alive while a stack rule runs.
  With Python's default collection threshold the cyclic garbage collector traverses
  those surviving objects again and again: about half of AnalyzeStack's time at 1000
  services. They are plain dicts and lists, freed by reference counting; a higher
  first-generation threshold keeps cycle collection but runs it far less often, and
  freezing what exists at start-up (pulumi, grpc, protobuf, the rules) keeps the
  collector from walking modules that live as long as the process anyway.

Neither changes what any rule sees or reports.
"""

from __future__ import annotations

import gc
import os

import pulumi.runtime

GC_FIRST_GENERATION_THRESHOLD = 50_000
"""Allocations between young-generation collections (Python's default is 700)."""


def prepare_process() -> None:
    """Apply the stack config once and tune the garbage collector; call before serving."""
    apply_stack_config_once()
    tune_garbage_collector()


def apply_stack_config_once() -> None:
    """Set every PULUMI_CONFIG entry as Pulumi config, then drop the variable."""
    for key, value in pulumi.runtime.get_config_env().items():
        pulumi.runtime.set_config(key, value)
    os.environ.pop("PULUMI_CONFIG", None)


def tune_garbage_collector() -> None:
    _, second, third = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(GC_FIRST_GENERATION_THRESHOLD, second, third)
