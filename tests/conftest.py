"""Shared fixtures: tiny models that record the rate each optimizer step really used."""

from __future__ import annotations

import os
import warnings

import pytest
import torch

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
_EXPECTED_OWN_WARNINGS = {
    "test_restores_adam_state_exactly": "ignore:LRRangeTest gave no suggestion:UserWarning",
    "test_training_after_the_test_equals_training_without_it": "ignore:LRRangeTest gave no suggestion:UserWarning",
    "test_auto_with_a_curve_without_suggestion_is_an_error": "ignore:LRRangeTest gave no suggestion:UserWarning",
    "test_huge_max_lr_stops_on_nan_and_nan_never_reaches_the_model": "ignore:LRRangeTest gave no suggestion:UserWarning",
    "test_one_cycle_snapshot_at_the_end_of_its_run": "ignore:OneCycleLR.*past the schedule's end:UserWarning",
}


def pytest_collection_modifyitems(config, items):
    for item in items:
        name = getattr(item, "originalname", None) or item.name
        if name in _EXPECTED_OWN_WARNINGS:
            item.add_marker(pytest.mark.filterwarnings(_EXPECTED_OWN_WARNINGS[name]))


try:
    from hypothesis import settings

    # CI runs the same examples every time (a failure there reproduces); locally each run explores new ones.
    settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
    settings.register_profile("dev", deadline=None, print_blob=True)
    settings.load_profile("ci" if os.environ.get("CI") else "dev")
except ImportError:  # pragma: no cover - hypothesis is in the dev extra
    pass
