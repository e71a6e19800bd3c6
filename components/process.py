"""The program's own Python process, set up for what a preview does.

Declaring a mesh creates the SDK's objects by the hundred thousand (an Output is an
asyncio Task, a Future and callbacks; each resource has dozens of them) and keeps
nearly all of them until the program ends. CPython's cyclic collector, left at its
default thresholds, walks every one of them again in each full collection, and makes a
full collection each time the heap has grown by a quarter: at 1000 services the full
collections took about 40% of the program's time and the young ones 5%; at 3000, 12 of
26 s (BENCHMARKS.md, "The collector"). Almost nothing they visit is garbage: the
program's peak memory is the same without them.

So full collections are made rare; young ones stay as they are (they are cheap, and
they reclaim the cyclic garbage the SDK makes on every call). `gc.freeze()` after the
config load was measured too and gained nothing on top: what it would spare the
collector is the imported modules, which only full collections visit.

CPython 3.14's incremental collector ignores the third threshold: there this is a
no-op, and its own increments do the work.
"""

from __future__ import annotations

import gc

Thresholds = tuple[int, int, int]

FULL_COLLECTION_AFTER = 1000
"""Middle-generation collections between two full ones (CPython's default: 10). At
the default young threshold that is a full collection per seven million surviving
allocations: none in a 3000-service preview, a rare one beyond."""


def preview_thresholds(current: Thresholds) -> Thresholds:
    """The collector thresholds a preview runs with: `current` ones for the young and
    middle generations, full collections rare."""
    young, middle, _ = current
    return young, middle, FULL_COLLECTION_AFTER


def tune_for_preview() -> None:
    """Set this process's collector for declaring a large stack (see the module doc).

    Process-wide and for the rest of the run, as the SDK's registrations go on after
    the program's code has returned. Changes no resource: only when memory is reclaimed.
    """
    gc.set_threshold(*preview_thresholds(gc.get_threshold()))
