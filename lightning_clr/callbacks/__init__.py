"""The Lightning callbacks: the schedule adapter and everything that hangs on it.

* :mod:`~lightning_clr.callbacks.base`: :class:`ScheduleCallback`, the thin adapter, whole (hooks, build,
  logging, checkpoint state), with its collaborators that stand alone: the clock
  (:mod:`~lightning_clr.callbacks.clock`), the writer (:mod:`~lightning_clr.callbacks.writer`) and the
  fit-start context and checks (:mod:`~lightning_clr.callbacks.context`);
* :mod:`~lightning_clr.callbacks.scheduled`, :mod:`~lightning_clr.callbacks.cyclic`,
  :mod:`~lightning_clr.callbacks.one_cycle`, :mod:`~lightning_clr.callbacks.cosine_restarts`,
  :mod:`~lightning_clr.callbacks.wsd`: the public
  schedule callbacks, one a module;
* :mod:`~lightning_clr.callbacks.guard` with its rule :mod:`~lightning_clr.callbacks.guard_rule`,
  :mod:`~lightning_clr.callbacks.snapshot`, :mod:`~lightning_clr.callbacks.preview_logger`: callbacks that
  read a schedule callback.
"""

from lightning_clr.callbacks.base import FitContext, ScheduleCallback
from lightning_clr.callbacks.cosine_restarts import CosineRestartsLR
from lightning_clr.callbacks.cyclic import CyclicLR
from lightning_clr.callbacks.guard import DivergenceGuard
from lightning_clr.callbacks.one_cycle import OneCycleLR
from lightning_clr.callbacks.preview_logger import SchedulePreviewLogger
from lightning_clr.callbacks.scheduled import ScheduledLR
from lightning_clr.callbacks.snapshot import SnapshotCheckpoint
from lightning_clr.callbacks.wsd import WarmupStableDecayLR

__all__ = [
    "CosineRestartsLR",
    "CyclicLR",
    "DivergenceGuard",
    "FitContext",
    "OneCycleLR",
    "ScheduleCallback",
    "SchedulePreviewLogger",
    "ScheduledLR",
    "SnapshotCheckpoint",
    "WarmupStableDecayLR",
]
