"""Closed-form learning-rate (and momentum) schedules.

Every schedule is a small frozen dataclass whose ``__call__(step)`` returns the value to use at the
0-based optimizer step ``step``. They hold no state, import neither torch nor Lightning, pickle, and fit
LightningCLI's ``class_path``/``init_args`` (``class_path: lightning_clr.schedules.CyclicSchedule``). Lengths
here are plain step counts; the callbacks resolve lengths given in epochs or percent before they build a
schedule. Arguments are checked once, in ``__post_init__``; ``__call__`` never raises for a non-negative step,
and past the end of a finite schedule it holds the final value.

Each schedule is written for any quantity that cycles between two values, so the same classes give the
momentum schedules (momentum falls while the rate rises: swap the two values); only
:class:`WarmupStableDecaySchedule`, a rate schedule, asks for ``floor <= peak``.

One module per family, each class's docstring holding its formula, its symbols and its paper:

* :mod:`~lightning_clr.schedules.cyclic`: :class:`CyclicSchedule` (Smith's CLR);
* :mod:`~lightning_clr.schedules.one_cycle`: :class:`OneCycleSchedule` (1cycle);
* :mod:`~lightning_clr.schedules.cosine_restarts`: :class:`CosineRestartsSchedule` (SGDR);
* :mod:`~lightning_clr.schedules.wsd`: :class:`WarmupStableDecaySchedule` (WSD, with its shapes
  :data:`WSD_SHAPES`);
* :mod:`~lightning_clr.schedules.ramps`: :class:`ConstantSchedule`, :class:`LinearRamp`,
  :class:`ExponentialRamp`;
* :mod:`~lightning_clr.schedules.sequence`: :class:`SequenceSchedule` (schedules one after another, optax's
  ``join_schedules``) and :func:`with_warmup` (a linear warm-up in front of any schedule);
* ``_base``: the :class:`Schedule` protocol and :class:`ScheduleBase`, shared by all.
"""

from __future__ import annotations

from lightning_clr._checks import ANNEAL_STRATEGIES, CYCLIC_MODES
from lightning_clr.schedules._base import Schedule, ScheduleBase
from lightning_clr.schedules.cosine_restarts import CosineRestartsSchedule
from lightning_clr.schedules.cyclic import CyclicSchedule
from lightning_clr.schedules.one_cycle import OneCycleSchedule
from lightning_clr.schedules.ramps import ConstantSchedule, ExponentialRamp, LinearRamp
from lightning_clr.schedules.sequence import SequenceSchedule, with_warmup
from lightning_clr.schedules.wsd import WSD_SHAPES, WarmupStableDecaySchedule

__all__ = [
    "ANNEAL_STRATEGIES",
    "CYCLIC_MODES",
    "WSD_SHAPES",
    "ConstantSchedule",
    "CosineRestartsSchedule",
    "CyclicSchedule",
    "ExponentialRamp",
    "LinearRamp",
    "OneCycleSchedule",
    "Schedule",
    "ScheduleBase",
    "SequenceSchedule",
    "WarmupStableDecaySchedule",
    "with_warmup",
]
