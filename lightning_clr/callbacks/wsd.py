"""``WarmupStableDecayLR``: warmup-stable-decay, a constant rate with a short cool-down at the end of the run."""

from __future__ import annotations

from typing import Literal, Optional, Union

from lightning_clr._checks import check_bound, check_choice, check_number
from lightning_clr._warnings import warn
from lightning_clr.callbacks.base import ScheduleCallback
from lightning_clr.callbacks.context import FitContext, GroupSchedules, OptimizerIndices, per_group
from lightning_clr.lengths import parse_length, parse_optional_length
from lightning_clr.schedules import WSD_SHAPES, ConstantSchedule, WarmupStableDecaySchedule

__all__ = ["WarmupStableDecayLR"]

Shape = Literal["linear", "cosine", "1-sqrt"]


class WarmupStableDecayLR(ScheduleCallback):
    r"""Warmup-stable-decay (WSD): a warm-up to `max_lr`, `max_lr` for most of the run, then a short
    cool-down to `floor` over the last `decay` of the run, set at every optimizer step.

    The rate at optimizer step :math:`t` is :class:`~lightning_clr.schedules.WarmupStableDecaySchedule`'s (which
    equals transformers' ``get_wsd_schedule``), with ``warmup`` and ``decay`` resolved against the fit and the
    stable phase filling the rest: :math:`S = T - W - D` for a fit of :math:`T` optimizer steps.

    **One run, several budgets.** The stable phase needs no run length fixed in advance, so a checkpoint saved in
    it can be resumed with another ``max_steps`` (or ``max_epochs``): the resumed fit keeps the steps already
    taken and cools down over the last ``decay`` of the *new* run. Train once to the longest budget with periodic
    checkpoints, then branch a cool-down from the checkpoint before each shorter budget (``docs/wsd.md``). A
    resume that cannot be re-planned without changing the past says so in one warning and keeps the past exact:
    from a checkpoint already in its cool-down, the old plan is kept; where the new run's cool-down should have
    begun before the checkpoint's step, it begins at that step, over the steps left.

    Example::

        trainer = Trainer(max_steps=10_000, callbacks=[WarmupStableDecayLR(max_lr=3e-4, warmup=500, decay="20%")])

    Args:
        max_lr: the stable rate; a float or one per param group.
        warmup: the warm-up's length: `0` (none), an int, `"N steps"`, `"N epochs"` or `"P%"` of the fit.
        decay: the cool-down's length, as `warmup` (`"P%"` is a share of the current fit, also on resume).
        floor: the rate before the warm-up and after the cool-down (an absolute rate, below every `max_lr`).
        warmup_shape: `"linear"`, `"cosine"` or `"1-sqrt"`.
        decay_shape: `"1-sqrt"` (Hägele et al.'s best), `"linear"` or `"cosine"`.
        momentum: a momentum (or Adam's `betas[0]`) to hold during the fit, or `None` to leave it alone.
        optimizers: indices of the optimizers to drive; `None` drives all.
        count_skipped_steps: whether AMP steps skipped by the GradScaler advance the schedule.
        log_momentum: also log the momentum when it is set.
        logging_name: prefix of the logged names (`lr-clr-SGD`).

    Raises:
        ValueError: `max_lr` not positive, `floor` negative, a bad length or shape, or `momentum` outside
            [0, 1). At fit start: a fit of unknown length, or `warmup` and `decay` longer than the fit.
    """

    def __init__(
        self,
        max_lr: Union[float, list[float]],  # noqa: UP007 - LightningCLI shows this form
        warmup: Union[int, float, str] = 0,  # noqa: UP007
        decay: Union[int, float, str] = "20%",  # noqa: UP007
        floor: float = 0.0,
        warmup_shape: Shape = "linear",
        decay_shape: Shape = "1-sqrt",
        momentum: Optional[float] = None,  # noqa: UP045
        optimizers: OptimizerIndices = None,
        count_skipped_steps: bool = True,
        log_momentum: bool = True,
        logging_name: str = "lr-clr",
    ) -> None:
        super().__init__(optimizers, count_skipped_steps, log_momentum, logging_name)
        check_bound(max_lr, "max_lr", positive=True)
        check_number(floor, "floor", 0.0, why="the rate before the warm-up and after the cool-down")
        peaks = max_lr if isinstance(max_lr, (list, tuple)) else [max_lr]
        if any(not floor < peak for peak in peaks):
            raise ValueError(f"Expected floor below max_lr, but got floor={floor!r}, max_lr={max_lr!r}.")
        self._warmup = parse_optional_length(warmup, "warmup")
        self._decay = parse_length(decay, "decay")
        check_choice(warmup_shape, "warmup_shape", WSD_SHAPES)
        check_choice(decay_shape, "decay_shape", WSD_SHAPES)
        if momentum is not None:
            check_number(momentum, "momentum", 0.0, 1.0, high_open=True)
        self.max_lr = max_lr
        self.warmup = warmup
        self.decay = decay
        self.floor = float(floor)
        self.warmup_shape = warmup_shape
        self.decay_shape = decay_shape
        self.momentum = None if momentum is None else float(momentum)

    def _schedules_for(self, context: FitContext, num_groups: int, optimizer_name: str) -> GroupSchedules:
        total = context.total_steps
        if total is None:
            raise ValueError(
                "WarmupStableDecayLR cools down over the last part of the fit, but the fit's length is unknown "
                "(an endless run). Give the Trainer max_steps or max_epochs; to extend or shorten the run later, "
                "resume from a checkpoint with another max_steps."
            )
        warmup = 0 if self._warmup is None else context.resolve(self._warmup, "warmup", self.warmup)
        decay = context.resolve(self._decay, "decay", self.decay, replan=True)
        stable = int(total) - warmup - decay
        if stable < 0:
            raise ValueError(
                f"WarmupStableDecayLR: warmup={self.warmup!r} ({warmup} steps) and decay={self.decay!r} ({decay} "
                f"steps) are longer together than the fit ({int(total)} optimizer steps). Shorten them or lengthen "
                "the fit."
            )
        if context.run_changed and context.resumed_step is not None and context.planned_total is not None:
            stable, decay = self._replan(context, warmup, stable, decay)
        momentum = None if self.momentum is None else ConstantSchedule(self.momentum)
        return [
            (WarmupStableDecaySchedule(float(peak), warmup, stable, decay, self.floor, self.warmup_shape,
                                       self.decay_shape), momentum)
            for peak in per_group(self.max_lr, num_groups, "max_lr", optimizer_name)
        ]

    def _replan(self, context: FitContext, warmup: int, stable: int, decay: int) -> tuple[int, int]:
        """The stable and decay lengths of a resumed fit whose length differs from the checkpoint's run, such that
        the steps already taken keep their values."""
        step, planned = context.resumed_step or 0, int(context.planned_total or 0)
        old_decay = self._decay.resolve(context.steps_per_epoch, planned)
        old_start = planned - old_decay  # the checkpoint's run began its cool-down here
        if step > old_start:
            warn(f"WarmupStableDecayLR: the checkpoint (step {step}) is in the cool-down its run began at step "
                 f"{old_start}; the fit keeps that plan (ending at step {planned}), so that the steps already taken "
                 "stay exact. Resume from a checkpoint of the stable phase to plan a cool-down anew.")
            return old_start - warmup, old_decay
        if step > warmup + stable:
            warn(f"WarmupStableDecayLR: the new fit's cool-down ({decay} steps) would have begun at step "
                 f"{warmup + stable}, before the checkpoint's step {step}; it begins at step {step} and lasts the "
                 f"{int(context.total_steps or 0) - step} steps left.")
            return step - warmup, int(context.total_steps or 0) - step
        return stable, decay
