"""Shared fixtures: tiny models that record the rate each optimizer step really used."""

from __future__ import annotations

import os
import warnings

import pytest
import torch
from ports import reserve_port, restored_environ

torch.set_num_threads(1)
os.environ.setdefault("PL_DISABLE_FORK", "0")


@pytest.fixture(autouse=True)
def _quiet_lightning_warnings():
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*does not have many workers.*")
        warnings.filterwarnings("ignore", message=".*litlogger.*")
        yield

# pyproject turns this package's own warnings into errors. These tests trigger one on purpose, as a side effect
# of what they check, so each gets that one warning ignored by its message (owners: move these marks onto the
# tests themselves as `@pytest.mark.filterwarnings(...)`, then drop this table).
_NO_SUGGESTION = "ignore:LRRangeTest gave no suggestion:UserWarning"
_LONGER_THAN_THE_FIT = "ignore:.*longer than the whole fit:UserWarning"
_STILL_FALLING = "ignore:LRRangeTest. the loss was still falling:UserWarning"  # "." for the ":" (a separator)
_EXPECTED_OWN_WARNINGS = {
    # The range test's new note on short sweeps (tests that check the bounds, not the sweep's range):
    "test_with_auto_bounds_the_range_test_is_not_watched_and_the_found_peak_is_scaled": _STILL_FALLING,
    "test_auto_bounds_train_as_well_as_hand_tuned_bounds": _STILL_FALLING,
    # Short fits with a long cycle (the lead's new warning; the resume case looks like a false positive:
    # a resumed mid-epoch fit compares the length with the steps left, not with the whole fit).
    "test_checkpoint_holds_the_state_under_the_default_state_key": _LONGER_THAN_THE_FIT,
    "test_resumed_run_applies_exactly_the_uninterrupted_rates": _LONGER_THAN_THE_FIT,
    "test_auto_bounds_reach_the_schedules": (_LONGER_THAN_THE_FIT, _STILL_FALLING),
    "test_auto_step_size_needs_an_epoch_length": _LONGER_THAN_THE_FIT,
    "test_restores_adam_state_exactly": _NO_SUGGESTION,
    "test_training_after_the_test_equals_training_without_it": _NO_SUGGESTION,
    "test_auto_with_a_curve_without_suggestion_is_an_error": _NO_SUGGESTION,
    "test_huge_max_lr_stops_on_nan_and_nan_never_reaches_the_model": _NO_SUGGESTION,
    "test_one_cycle_snapshot_at_the_end_of_its_run": "ignore:OneCycleLR.*past the schedule's end:UserWarning",
}


# Tests in other files that start several processes (owners: mark them `@pytest.mark.multiprocess` there).
_MULTIPROCESS_ELSEWHERE = {
    "test_ddp_spawn_snapshots_written_once_by_rank_zero",
    "test_ddp_spawn_ranks_average_the_loss_and_agree",
}


def pytest_collection_modifyitems(config, items):
    for item in items:
        name = getattr(item, "originalname", None) or item.name
        if name in _EXPECTED_OWN_WARNINGS:
            filters = _EXPECTED_OWN_WARNINGS[name]
            for action in (filters,) if isinstance(filters, str) else filters:
                item.add_marker(pytest.mark.filterwarnings(action))
        if name in _MULTIPROCESS_ELSEWHERE:
            item.add_marker(pytest.mark.multiprocess)


@pytest.fixture(autouse=True)
def _reserved_master_port(request):
    """Every multiprocess test launches on a port the kernel never hands to another process meanwhile
    (``tests/ports.py``), instead of one Lightning finds by binding to port 0; the variables are restored."""
    if request.node.get_closest_marker("multiprocess") is None:
        yield
        return
    with restored_environ(("MASTER_ADDR", "MASTER_PORT")):
        os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(reserve_port()))
        yield


try:
    from hypothesis import settings

    # CI runs the same examples every time (a failure there reproduces); locally each run explores new ones.
    settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
    settings.register_profile("dev", deadline=None, print_blob=True)
    settings.load_profile("ci" if os.environ.get("CI") else "dev")
except ImportError:  # pragma: no cover - hypothesis is in the dev extra
    pass
