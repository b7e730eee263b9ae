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

try:
    from hypothesis import settings

    # CI runs the same examples every time (a failure there reproduces); locally each run explores new ones.
    settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
    settings.register_profile("dev", deadline=None, print_blob=True)
    settings.load_profile("ci" if os.environ.get("CI") else "dev")
except ImportError:  # pragma: no cover - hypothesis is in the dev extra
    pass
