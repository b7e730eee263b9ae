"""``CosineRestartsLR``: SGDR, cosine decay with warm restarts (Keras ``CosineDecayRestarts``)."""

from __future__ import annotations

from typing import Literal, Union

from lightning_clr._checks import AUTO, check_bound, check_number
from lightning_clr.callbacks.base import ScheduleCallback
from lightning_clr.callbacks.context import FitContext, GroupSchedules, OptimizerIndices, per_group
from lightning_clr.lengths import parse_length, parse_optional_length
from lightning_clr.schedules import CosineRestartsSchedule

__all__ = ["CosineRestartsLR"]


class CosineRestartsLR(ScheduleCallback):
    r"""Cosine decay from `max_lr` with warm restarts (Loshchilov & Hutter, 2017), set every optimizer step.

    The rate at optimizer step :math:`t` equals Keras ``CosineDecayRestarts(initial_learning_rate=max_lr,
    first_decay_steps=first_cycle, t_mul, m_mul, alpha)`` at step :math:`t`, and with ``m_mul=1`` and an
    integer ``t_mul``, torch's ``CosineAnnealingWarmRestarts(T_0=first_cycle, T_mult=t_mul,
    eta_min=alpha * max_lr)`` stepped once per optimizer step. See
    :class:`~lightning_clr.schedules.CosineRestartsSchedule` for the formula.

    Example::

        trainer = Trainer(callbacks=[CosineRestartsLR(max_lr=0.1, first_cycle="1 epochs", t_mul=2)])
        # a 5% linear warm-up from 0 first (timm's warmup_t), then the cycles
        trainer = Trainer(callbacks=[CosineRestartsLR(max_lr=0.1, first_cycle="1 epochs", t_mul=2, warmup="5%")])

    Args:
        max_lr: the rate at each (first) restart; a float, one per param group, or `"auto"`.
        first_cycle: the first cycle's length: an int, `"N steps"`, `"N epochs"` or `"P%"`.
        t_mul: each cycle is `t_mul` times as long as the one before (any float > 0).
        m_mul: each restart's peak is `m_mul` times the one before.
        alpha: the floor, as a fraction of `max_lr`, in [0, 1].
        optimizers: indices of the optimizers to drive; `None` drives all. Two schedule callbacks on one
            Trainer (two of this class, too) need disjoint `optimizers=[...]`.
        count_skipped_steps: whether AMP steps skipped by the GradScaler advance the schedule.
        logging_name: prefix of the logged names (`lr-clr-SGD`).
        warmup: a linear warm-up before the first cycle, `0` (none, the default: Keras' and torch's schedule) or
            a length as for `first_cycle`; the cycles follow it. A warm-up lets a high peak start an untrained
            network safely (`docs/benchmarks/auto_bounds.md`).
        warmup_start: the warm-up's first rate as a fraction of `max_lr`, in [0, 1].

    Raises:
        ValueError: `max_lr` not positive, a bad `first_cycle` or `warmup`, `t_mul <= 0`, `m_mul` outside
            (0, 1], or `alpha` or `warmup_start` outside [0, 1].
    """

    _FINGERPRINTED_WHEN_SET = ("warmup", "warmup_start")  # added later: older checkpoints match without them

    def __init__(
        self,
        max_lr: Union[float, list[float], Literal["auto"]],  # noqa: UP007 - LightningCLI shows this form
        first_cycle: Union[int, float, str],  # noqa: UP007
        t_mul: float = 1.0,
        m_mul: float = 1.0,
        alpha: float = 0.0,
        optimizers: OptimizerIndices = None,
        count_skipped_steps: bool = True,
        logging_name: str = "lr-clr",
        warmup: Union[int, float, str] = 0,  # noqa: UP007
        warmup_start: float = 0.0,
    ) -> None:
        super().__init__(optimizers, count_skipped_steps, log_momentum=False, logging_name=logging_name)
        check_bound(max_lr, "max_lr", allow_auto=True, positive=True)
        self._first_cycle = parse_length(first_cycle, "first_cycle")
        check_number(t_mul, "t_mul", 0.0, low_open=True)
        check_number(m_mul, "m_mul", 0.0, 1.0, low_open=True, why="m_mul > 1 grows the peaks without bound")
        check_number(alpha, "alpha", 0.0, 1.0)
        check_number(warmup_start, "warmup_start", 0.0, 1.0)
        self._warmup = parse_optional_length(warmup, "warmup")
        self.max_lr = max_lr
        self.first_cycle = first_cycle
        self.t_mul = float(t_mul)
        self.m_mul = float(m_mul)
        self.alpha = float(alpha)
        self.warmup = warmup
        self.warmup_start = float(warmup_start)

    def _needs_range_test(self) -> bool:
        return self.max_lr == AUTO

    def _schedules_for(self, context: FitContext, num_groups: int, optimizer_name: str) -> GroupSchedules:
        first = context.resolve(self._first_cycle, "first_cycle", self.first_cycle)
        warmup = 0 if self._warmup is None else context.resolve(self._warmup, "warmup", self.warmup)
        max_lr = self.max_lr
        if max_lr == AUTO:
            max_lr = self._range_test_result(context).for_policy("cosine_restarts").max_lr
            self._resolved = {"max_lr": max_lr}
        return [
            (CosineRestartsSchedule(float(peak), first, self.t_mul, self.m_mul, self.alpha, warmup, self.warmup_start),
             None)
            for peak in per_group(max_lr, num_groups, "max_lr", optimizer_name)
        ]
