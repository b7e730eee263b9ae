"""lightning_clr: cyclical learning rates for PyTorch Lightning, as one callback."""

from lightning_clr.callback import FitContext, ScheduleCallback, ScheduledLR
from lightning_clr.cosine_restarts import CosineRestartsLR
from lightning_clr.cyclic import CyclicLR
from lightning_clr.lengths import Length, parse_length
from lightning_clr.one_cycle import OneCycleLR
from lightning_clr.range_test import LRRangeTest, RangeTestError, RangeTestResult, lr_range_test
from lightning_clr.ensemble import SnapshotEnsemble
from lightning_clr.snapshot import SnapshotCheckpoint
from lightning_clr.preview_logger import SchedulePreviewLogger
from lightning_clr.schedules import (
    ConstantSchedule,
    CosineRestartsSchedule,
    CyclicSchedule,
    ExponentialRamp,
    LinearRamp,
    OneCycleSchedule,
    Schedule,
    ScheduleBase,
)

__version__ = "0.1.0"

__all__ = [
    "CyclicLR",
    "OneCycleLR",
    "CosineRestartsLR",
    "ScheduledLR",
    "LRRangeTest",
    "RangeTestResult",
    "RangeTestError",
    "lr_range_test",
    "ScheduleCallback",
    "SnapshotCheckpoint",
    "SnapshotEnsemble",
    "SchedulePreviewLogger",
    "FitContext",
    "Schedule",
    "ScheduleBase",
    "CyclicSchedule",
    "OneCycleSchedule",
    "CosineRestartsSchedule",
    "ConstantSchedule",
    "LinearRamp",
    "ExponentialRamp",
    "Length",
    "parse_length",
]
