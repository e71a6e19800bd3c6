"""The program's process tuning (`components/process.py`): what it sets, that the
program applies it, and that the harness gives the setting back after each run."""

from __future__ import annotations

import gc

import pytest

from components import config, process
from mesh.program import run_stack


def test_preview_thresholds_keep_young_collections_and_make_full_ones_rare() -> None:
    assert process.preview_thresholds((700, 10, 10)) == (700, 10, process.FULL_COLLECTION_AFTER)
    assert process.preview_thresholds((2000, 5, 3)) == (2000, 5, process.FULL_COLLECTION_AFTER)
    assert process.FULL_COLLECTION_AFTER > 10  # CPython's default: rarer, not more frequent


def test_the_program_tunes_its_process_and_the_harness_gives_the_setting_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tuned: list[tuple[int, int, int]] = []
    tune = process.tune_for_preview

    def recording() -> None:
        tune()
        tuned.append(gc.get_threshold())

    monkeypatch.setattr(process, "tune_for_preview", recording)
    before = gc.get_threshold()
    run_stack("dev")
    assert tuned == [process.preview_thresholds(before)]
    assert gc.get_threshold() == before


def test_the_program_tunes_its_process_before_it_loads_its_config(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Loading a large catalog allocates enough for full collections of its own (two
    at 1000 services, 0.13 s), which the tuned thresholds spare."""
    seen: list[tuple[int, int, int]] = []
    load = config.load_stack_config

    def recording() -> object:
        seen.append(gc.get_threshold())
        return load()

    monkeypatch.setattr(config, "load_stack_config", recording)
    before = gc.get_threshold()
    run_stack("dev")
    assert seen == [process.preview_thresholds(before)]
