"""``OneCycleLR``: the 1cycle policy of super-convergence as a Lightning callback."""

from __future__ import annotations

from typing import Literal, Union

from lightning_clr._checks import (
    ANNEAL_STRATEGIES,
    AUTO,
    check_bound,
    check_choice,
    check_momentum_bounds,
    check_number,
)
from lightning_clr.callbacks.base import ScheduleCallback
from lightning_clr.callbacks.context import FitContext, GroupSchedules, OptimizerIndices, per_group
from lightning_clr.lengths import parse_length
from lightning_clr.schedules import OneCycleSchedule

__all__ = ["OneCycleLR"]


class OneCycleLR(ScheduleCallback):
    r"""The 1cycle policy (Smith & Topin, 2019): warm up to `max_lr`, then anneal far below the start.

    The rate at optimizer step :math:`t` is :class:`~lightning_clr.schedules.OneCycleSchedule`'s, which
    equals ``torch.optim.lr_scheduler.OneCycleLR`` stepped once after every optimizer step; unlike torch,
    steps past ``total_steps`` hold the final rate (with one warning) instead of raising
    "Tried to step X times". The momentum (or Adam's ``betas[0]``) moves inversely, from ``max_momentum``
    to ``base_momentum`` and back.

    Example::

        trainer = Trainer(max_epochs=5, callbacks=[OneCycleLR(max_lr=0.1)])  # total_steps: the whole fit

    Args:
        max_lr: the peak rate; a float, one per param group, or `"auto"` (from an LRRangeTest).
        total_steps: the cycle's length: `None` (the whole fit, `trainer.estimated_stepping_batches`),
            an int, `"N steps"`, `"N epochs"` or `"P%"`.
        pct_start: the share of the cycle spent rising, in (0, 1).
        anneal_strategy: `"cos"` or `"linear"`.
        div_factor: the initial rate is `max_lr / div_factor`.
        final_div_factor: the final rate is `initial / final_div_factor`.
        three_phase: rise, fall back to the initial rate symmetrically, then anneal to the final rate.
        cycle_momentum: cycle the momentum inversely to the rate.
        base_momentum: the momentum at the rate's peak.
        max_momentum: the momentum at the start and the end.
        optimizers: indices of the optimizers to drive; `None` drives all. Two schedule callbacks on one
            Trainer (two of this class, too) need disjoint `optimizers=[...]`.
        count_skipped_steps: whether AMP steps skipped by the GradScaler advance the schedule.
        log_momentum: also log the momentum when it is cycled.
        logging_name: prefix of the logged names (`lr-clr-SGD`).

    Raises:
        ValueError: `max_lr` not positive, a bad length, `pct_start` outside (0, 1), unknown
            `anneal_strategy`, non-positive division factors or momentum bounds outside `[0, 1)`.
    """

    def __init__(
        self,
        max_lr: Union[float, list[float], Literal["auto"]],  # noqa: UP007 - LightningCLI shows this form
        total_steps: Union[int, float, str, None] = None,  # noqa: UP007
        pct_start: float = 0.3,
        anneal_strategy: Literal["cos", "linear"] = "cos",
        div_factor: float = 25.0,
        final_div_factor: float = 1e4,
        three_phase: bool = False,
        cycle_momentum: bool = True,
        base_momentum: float = 0.85,
        max_momentum: float = 0.95,
        optimizers: OptimizerIndices = None,
        count_skipped_steps: bool = True,
        log_momentum: bool = True,
        logging_name: str = "lr-clr",
    ) -> None:
        super().__init__(optimizers, count_skipped_steps, log_momentum, logging_name)
        check_bound(max_lr, "max_lr", allow_auto=True, positive=True)
        self._total_steps = None if total_steps is None else parse_length(total_steps, "total_steps")
        check_number(pct_start, "pct_start", 0.0, 1.0, low_open=True, high_open=True)
        check_choice(anneal_strategy, "anneal_strategy", ANNEAL_STRATEGIES)
        check_number(div_factor, "div_factor", 0.0, low_open=True)
        check_number(final_div_factor, "final_div_factor", 0.0, low_open=True)
        if cycle_momentum:
            check_momentum_bounds(base_momentum, max_momentum)
        self.max_lr = max_lr
        self.total_steps = total_steps
        self.pct_start = float(pct_start)
        self.anneal_strategy = anneal_strategy
        self.div_factor = float(div_factor)
        self.final_div_factor = float(final_div_factor)
        self.three_phase = bool(three_phase)
        self.cycle_momentum = bool(cycle_momentum)
        self.base_momentum = float(base_momentum)
        self.max_momentum = float(max_momentum)

    def _needs_range_test(self) -> bool:
        return self.max_lr == AUTO

    def _schedules_for(self, context: FitContext, num_groups: int, optimizer_name: str) -> GroupSchedules:
        if self._total_steps is None:
            whole = context.whole_run("total_steps=None")
            if whole is None:
                raise ValueError(
                    "OneCycleLR(total_steps=None) takes the whole fit, but the fit's length is unknown "
                    f"(estimated_stepping_batches={context.total_steps}). Set max_epochs or max_steps, or give "
                    "total_steps explicitly."
                )
            total: int = int(whole)
        else:
            total = context.resolve(self._total_steps, "total_steps", self.total_steps)
        max_lr = self.max_lr
        if max_lr == AUTO:
            max_lr = self._range_test_result(context).for_policy("one_cycle").max_lr
            self._resolved = {"max_lr": max_lr}
        momentum: OneCycleSchedule | None = None
        if self.cycle_momentum:
            momentum = OneCycleSchedule(self.max_momentum, self.base_momentum, self.max_momentum, total,
                                        self.pct_start, self.anneal_strategy, self.three_phase)
        schedules: GroupSchedules = []
        for peak in per_group(max_lr, num_groups, "max_lr", optimizer_name):
            initial = float(peak) / self.div_factor
            lr = OneCycleSchedule(initial, float(peak), initial / self.final_div_factor, total, self.pct_start,
                                  self.anneal_strategy, self.three_phase)
            schedules.append((lr, momentum))
        return schedules
