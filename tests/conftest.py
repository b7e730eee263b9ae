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
