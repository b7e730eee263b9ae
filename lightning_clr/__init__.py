"""lightning_clr: cyclical learning rates for PyTorch Lightning, as one callback.

The public names are importable from here; they load on first use (PEP 562), so that
``import lightning_clr.schedules`` and the CLI's ``--help`` stay free of torch and Lightning.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name -> the module that defines it
_EXPORTS: dict[str, str] = {
    "CyclicLR": "lightning_clr.callbacks.cyclic",
    "OneCycleLR": "lightning_clr.callbacks.one_cycle",
    "CosineRestartsLR": "lightning_clr.callbacks.cosine_restarts",
    "ScheduledLR": "lightning_clr.callbacks.scheduled",
    "WarmupStableDecayLR": "lightning_clr.callbacks.wsd",
    "ScheduleCallback": "lightning_clr.callbacks.base",
    "FitContext": "lightning_clr.callbacks.base",
    "SnapshotCheckpoint": "lightning_clr.callbacks.snapshot",
    "SchedulePreviewLogger": "lightning_clr.callbacks.preview_logger",
    "DivergenceGuard": "lightning_clr.callbacks.guard",
    "DivergenceError": "lightning_clr.callbacks.guard",
    "LRRangeTest": "lightning_clr.tuner.range_test",
    "RangeTestResult": "lightning_clr.tuner.result",
    "RangeTestError": "lightning_clr.tuner.suggest",
    "lr_range_test": "lightning_clr.tuner.function",
    "SnapshotEnsemble": "lightning_clr.ensemble",
    "Schedule": "lightning_clr.schedules",
    "ScheduleBase": "lightning_clr.schedules",
    "CyclicSchedule": "lightning_clr.schedules",
    "OneCycleSchedule": "lightning_clr.schedules",
    "CosineRestartsSchedule": "lightning_clr.schedules",
    "ConstantSchedule": "lightning_clr.schedules",
    "LinearRamp": "lightning_clr.schedules",
    "ExponentialRamp": "lightning_clr.schedules",
    "SequenceSchedule": "lightning_clr.schedules",
    "WarmupStableDecaySchedule": "lightning_clr.schedules",
    "LightningCLRWarning": "lightning_clr._warnings",
    "Length": "lightning_clr.lengths",
    "parse_length": "lightning_clr.lengths",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'lightning_clr' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])


if TYPE_CHECKING:  # for type checkers and IDEs, which do not run __getattr__: the same names, imported eagerly
    from lightning_clr._warnings import LightningCLRWarning
    from lightning_clr.callbacks.base import FitContext, ScheduleCallback
    from lightning_clr.callbacks.cosine_restarts import CosineRestartsLR
    from lightning_clr.callbacks.cyclic import CyclicLR
    from lightning_clr.callbacks.guard import DivergenceError, DivergenceGuard
    from lightning_clr.callbacks.one_cycle import OneCycleLR
    from lightning_clr.callbacks.preview_logger import SchedulePreviewLogger
    from lightning_clr.callbacks.scheduled import ScheduledLR
    from lightning_clr.callbacks.snapshot import SnapshotCheckpoint
    from lightning_clr.callbacks.wsd import WarmupStableDecayLR
    from lightning_clr.ensemble import SnapshotEnsemble
    from lightning_clr.lengths import Length, parse_length
    from lightning_clr.schedules import (
        ConstantSchedule,
        CosineRestartsSchedule,
        CyclicSchedule,
        ExponentialRamp,
        LinearRamp,
        OneCycleSchedule,
        Schedule,
        ScheduleBase,
        SequenceSchedule,
        WarmupStableDecaySchedule,
    )
    from lightning_clr.tuner.function import lr_range_test
    from lightning_clr.tuner.range_test import LRRangeTest
    from lightning_clr.tuner.result import RangeTestResult
    from lightning_clr.tuner.suggest import RangeTestError
