"""The thin adapter between a schedule and a Trainer's optimizers.

:class:`ScheduleCallback` is the base of every lightning_clr schedule callback. At fit start it resolves
lengths given in epochs or percent, builds one pure schedule per param group and checks the set-up
against the Trainer; from train start on it writes ``param_group["lr"]`` (and the momentum, or Adam's
``betas[0]``) for the *next* optimizer step, computed from the optimizer-step clock. Because a value is a
function of the step count alone, resume and DDP are consistent by construction.

The parts, one a module: the clock (:class:`~lightning_clr.callbacks.clock.StepClock`: which step, with
its states and transitions), the per-batch work (:class:`~lightning_clr.callbacks.hot_path.HotPath`: the write
ahead, the safety net and the logging cadence, the hot path), the writer
(:class:`~lightning_clr.callbacks.writer.GroupWriter`: into the param groups), the logging
(:mod:`~lightning_clr.callbacks.logging`: names and values), the fit-start checks
(:mod:`~lightning_clr.callbacks.context`) and the checkpoint state with the read-only accessors
(:mod:`~lightning_clr.callbacks.state`). This module holds the hooks that connect them to a Trainer.
"""

from __future__ import annotations

import functools
from typing import Any

from typing_extensions import override

from lightning_clr._checks import check_int, check_number
from lightning_clr._param_groups import momentum_key
from lightning_clr._trainer import global_step_counter, is_automatic_optimization, run_size, unwrap_optimizer
from lightning_clr._warnings import warn
from lightning_clr.callbacks._hooks import StepHookOwner
from lightning_clr.callbacks.clock import StepClock
from lightning_clr.callbacks.context import (
    FitContext,
    GroupSchedules,
    OptimizerIndices,
    check_no_scheduler_conflict,
    check_no_sibling_conflict,
    driven_indices,
    find_range_test,
    per_group,
)
from lightning_clr.callbacks.hot_path import NEVER, HotPath
from lightning_clr.callbacks.logging import RateLog, logging_step
from lightning_clr.callbacks.state import ScheduleState, _Driven
from lightning_clr.callbacks.writer import GroupWriter

__all__ = ["FitContext", "GroupSchedules", "OptimizerIndices", "ScheduleCallback", "per_group"]


class ScheduleCallback(ScheduleState, StepHookOwner):
    """Base of the lightning_clr callbacks: drives optimizers' rates from pure schedules.

    Subclasses implement :meth:`_schedules_for` and :meth:`_arguments`.

    The clock of an optimizer (see :class:`~lightning_clr.callbacks.clock.StepClock` for its table):
    ``trainer.global_step`` under automatic optimization with ``count_skipped_steps=True`` (default); the
    count of real updates (torch's post-step hook; a step the AMP GradScaler skips runs none) with
    ``count_skipped_steps=False``; under manual optimization, each optimizer's own count of ``step()``
    calls, so two optimizers that step at different rates each follow their own schedule. Closure
    re-evaluations (LBFGS) never advance a clock.

    Several schedule callbacks on one Trainer must drive disjoint optimizers: give each its own
    ``optimizers=[...]``. Two callbacks of one class with the same ``optimizers`` share a checkpoint key,
    which Lightning refuses when the Trainer is built ("state_key must be unique").

    Args:
        optimizers: index or list of indices into ``trainer.optimizers`` of the optimizers to drive;
            ``None`` drives all of them.
        count_skipped_steps: whether a step that the AMP GradScaler skips (inf/NaN gradients) advances
            the schedule. ``True`` follows Lightning's ``global_step``; ``False`` counts real updates only.
        log_momentum: also log the momentum when it is cycled.
        logging_name: prefix of the logged names, e.g. ``"lr-clr"`` gives ``lr-clr-SGD``,
            ``lr-clr-SGD/pg1`` and ``lr-clr-SGD-momentum``. LearningRateMonitor logs ``lr-SGD``,
            so both can be attached.

    Raises:
        ValueError: if ``optimizers`` is not ``None``, a non-negative int or a list of them.
    """

    def __init__(
        self,
        optimizers: OptimizerIndices = None,
        count_skipped_steps: bool = True,
        log_momentum: bool = True,
        logging_name: str = "lr-clr",
    ) -> None:
        super().__init__()
        if optimizers is not None:
            indices = [optimizers] if isinstance(optimizers, int) else optimizers
            if (
                not isinstance(indices, (list, tuple))
                or not indices
                or any(isinstance(i, bool) or not isinstance(i, int) or i < 0 for i in indices)
            ):
                raise ValueError(
                    "Expected optimizers to be None (all), a non-negative int or a non-empty list of them, "
                    f"but got {optimizers!r}."
                )
            optimizers = sorted(set(indices))
        self.optimizers: list[int] | None = optimizers
        self.count_skipped_steps = bool(count_skipped_steps)
        self.log_momentum = bool(log_momentum)
        self.logging_name = logging_name
        self._driven: list[_Driven] = []
        self._handles: list[Any] = []
        self._use_global_step = True
        self._restored_counts: dict[int, int] = {}
        self._loaded_from_checkpoint = False
        self._warned_past_end = False
        self._trainer: Any = None
        self._pending_build: FitContext | None = None
        self._rate_scale = 1.0
        self._rate_log = RateLog(logging_name, self.log_momentum)  # rebuilt at train start
        self._before_step_idle = False  # nothing to do in on_before_optimizer_step (see _update_idle)
        self._hot = HotPath()  # the per-batch work: the write ahead, the safety net, the logging cadence

    # ------------------------------------------------------------------ to implement in subclasses (and _arguments)
    def _schedules_for(self, context: FitContext, num_groups: int, optimizer_name: str) -> GroupSchedules:
        """One ``(lr_schedule, momentum_schedule_or_None)`` for each of the ``num_groups`` param groups of
        the optimizer called ``optimizer_name`` in messages (e.g. ``"optimizer 0 (SGD)"``)."""
        raise NotImplementedError

    def _needs_range_test(self) -> bool:
        """Whether a value is ``"auto"`` and must come from an :class:`~lightning_clr.LRRangeTest`."""
        return False

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        # Runtime links to a fit (optimizers, hook handles, the Trainer) are rebuilt at the next fit start.
        state.update(_driven=[], _hot=HotPath(), _handles=[], _trainer=None, _pending_build=None,
                     _rate_log=RateLog(self.logging_name, self.log_momentum),
                     _restored_counts={**self._restored_counts, **{d.index: d.clock.count for d in self._driven}})
        return state

    # ------------------------------------------------------------------ fit start: check and build
    @override
    def on_fit_start(self, trainer: Any, pl_module: Any) -> None:
        self._remove_hooks()
        self._trainer = trainer
        self._warned_past_end = False
        self._hot = HotPath()
        owner = type(self).__name__
        others = [(type(cb).__name__, cb.optimizers) for cb in trainer.callbacks
                  if cb is not self and isinstance(cb, ScheduleCallback)]
        check_no_sibling_conflict(owner, self.optimizers, others)
        optimizers = [unwrap_optimizer(o) for o in trainer.optimizers]
        indices = driven_indices(owner, self.optimizers, len(optimizers))
        check_no_scheduler_conflict(owner, trainer, optimizers, indices)

        automatic = is_automatic_optimization(pl_module)
        self._use_global_step = automatic and self.count_skipped_steps
        mode = "global_step" if self._use_global_step else ("attempts" if self.count_skipped_steps else "updates")
        context = FitContext(*run_size(trainer), trainer=trainer, pl_module=pl_module, owner=type(self).__name__)
        # Own clocks continue from the checkpoint, or from an earlier fit of the same Trainer.
        counts = {**self._restored_counts, **{d.index: d.clock.count for d in self._driven}}
        if self._loaded_from_checkpoint:
            counts, self._loaded_from_checkpoint = dict(self._restored_counts), False
        self._driven = [_Driven(i, optimizers[i], StepClock(mode, counts.get(i, 0))) for i in indices]  # type: ignore[arg-type]
        # Values must be known now (bad set-ups fail at fit start), unless they come from a range test,
        # which needs the train loader and so runs at train start.
        if self._needs_range_test():
            find_range_test(owner, trainer)
            self._pending_build = context
        else:
            self._build(context)
        for driven in self._driven:
            self._handles += driven.clock.attach(driven.optimizer, functools.partial(self._write, driven))

    def _build(self, context: FitContext) -> None:
        for driven in self._driven:
            name = f"optimizer {driven.index} ({type(driven.optimizer).__name__})"
            param_groups = driven.optimizer.param_groups
            schedules = self._schedules_for(context, len(param_groups), name)
            lrs, momenta, keys = [], [], []
            no_momentum = False
            for params, (lr_schedule, momentum_schedule) in zip(param_groups, schedules, strict=False):
                key = None
                if momentum_schedule is not None:
                    key = momentum_key(params)
                    if key is None:
                        no_momentum, momentum_schedule = True, None
                lrs.append(lr_schedule)
                momenta.append(momentum_schedule)
                keys.append(key)
            if no_momentum:
                warn(
                    f"{type(self).__name__}: {name} has neither `momentum` nor `betas`, so only its learning rate "
                    "cycles. Pass cycle_momentum=False to silence this warning."
                )
            ends: list[Any] = [getattr(lr, "total_steps_or_none", None) for lr in lrs]
            driven.end = max(ends) if ends and all(e is not None for e in ends) else None
            driven.writer = GroupWriter(driven.optimizer, lrs, momenta, keys)
        self._update_idle()

    def _update_idle(self) -> None:
        """Under Lightning's clock ``on_before_optimizer_step`` has nothing to do until a step may be past a
        schedule's end (``on_train_batch_end`` arms it then), and nothing once that warning came."""
        hot = self._hot
        hot.set_writers([d.writer for d in self._driven if d.writer is not None])
        ends = [d.end for d in self._driven if d.end is not None]
        # The step from which on_before_optimizer_step must look for a step past an end (never once warned).
        hot.first_end = min(ends) if ends and not self._warned_past_end else NEVER
        self._before_step_idle = self._use_global_step and hot.seen < hot.first_end

    def _range_test_result(self, context: FitContext) -> Any:
        """The suggestion of the Trainer's :class:`~lightning_clr.LRRangeTest`, running it if needed."""
        test = find_range_test(type(self).__name__, context.trainer)
        return test.ensure_result(context.trainer, context.pl_module)

    # ------------------------------------------------------------------ the hooks of every step
    @override
    def on_before_optimizer_step(self, trainer: Any, pl_module: Any, optimizer: Any) -> None:
        if self._before_step_idle:
            return
        optimizer = unwrap_optimizer(optimizer)
        for driven in self._driven:
            if driven.optimizer is not optimizer:
                continue
            write_now = driven.clock.before_optimizer_step()
            if write_now is not None:  # GradScaler.step comes next and uses the rate written now, or skips
                self._write(driven, write_now)
            if driven.end is not None and not self._warned_past_end:
                step = self._step_now(driven, trainer)
                if step >= driven.end:
                    self._warned_past_end = True
                    self._update_idle()
                    warn(
                        f"{type(self).__name__}: optimizer {driven.index} takes step {step}, past the schedule's end "
                        f"({driven.end} steps); the final value is held. The run is longer than the schedule."
                    )

    def _step_now(self, driven: _Driven, trainer: Any) -> int:
        """The clock's step; under Lightning's clock, the step written last (``trainer.global_step`` as read at
        the last batch end or train start) instead of a second read."""
        writer = driven.writer
        if self._use_global_step and writer is not None and writer.written_step >= 0:
            return writer.written_step
        return driven.clock.now(trainer)

    @override
    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        if self._pending_build is not None:
            context, self._pending_build = self._pending_build, None
            self._build(context)
        self._rate_log = RateLog(self.logging_name, self.log_momentum)
        # the count is restored by now; None under an own clock (torch's step hooks write then)
        self._hot.start_fit(trainer, global_step_counter(trainer) if self._use_global_step else None)
        self._hot.scale = self._rate_scale  # a checkpoint may have restored it
        # On resume the optimizer's own lr was restored after on_fit_start: write from here on.
        self._write_all(trainer)

    @override
    def on_train_batch_start(self, trainer: Any, pl_module: Any, batch: Any, batch_idx: int) -> None:
        # The safety net (a rate replaced since the last write is rewritten) and the logging cadence: HotPath.start.
        if self._hot.start(trainer):
            if self._use_global_step and self._hot.seen != trainer.global_step:  # checks the cheap read, now and then
                self._hot.steps = global_step_counter(trainer)
                self._write_all(trainer)
            self._log(trainer)

    @override
    def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        # Under Lightning's clock, the values of the next step, once a batch has stepped (train start wrote the
        # first ones; set_rate_scale and a resume rewrite them): HotPath.end, the whole per-step work of that clock.
        if self._hot.end():
            self._before_step_idle = False  # the next step may be past a schedule's end: warn there

    # ------------------------------------------------------------------ writing the values
    def _write(self, driven: _Driven, step: int) -> None:
        if driven.writer is not None:
            driven.writer.write(step, self._rate_scale)

    def _write_all(self, trainer: Any) -> None:
        for driven in self._driven:
            self._write(driven, driven.clock.now(trainer))
        if self._use_global_step:
            self._hot.seen = step = trainer.global_step
            if step >= self._hot.first_end:
                self._before_step_idle = False  # a resume past a schedule's end: warn at the next step

    # ------------------------------------------------------------------ logging
    def _log(self, trainer: Any) -> None:
        if not trainer.is_global_zero:
            return
        metrics = self._rate_log.metrics(self._driven, trainer, self._rate_scale)
        step = logging_step(trainer)
        for logger in trainer.loggers:
            logger.log_metrics(metrics, step=step)

    def set_rate_scale(self, scale: float) -> None:
        """Multiplies the learning-rate schedules by ``scale`` from the next write on (the shape stays: the
        peak, the floor and every value between them are scaled alike; the momentum is not).

        Args:
            scale: the new factor, a finite number in (0, 1] (1 restores the schedule as built).

        Raises:
            ValueError: if ``scale`` is not in (0, 1].
        """
        self._rate_scale = self._hot.scale = check_number(scale, "scale", 0.0, 1.0, low_open=True)
        for driven in self._driven:
            if driven.writer is not None:
                driven.writer.written_step = -1  # the values in place are stale: write at the next hook
        if self._trainer is not None and self._driven:
            self._write_all(self._trainer)

    # ------------------------------------------------------------------ previews
    def schedules(self, steps_per_epoch: float | None = None, total_steps: float | None = None,
                  num_groups: int = 1) -> GroupSchedules:
        """The ``(lr, momentum)`` schedules this callback would use for an optimizer with ``num_groups``
        param groups, for a run of ``total_steps`` optimizer steps with ``steps_per_epoch`` per epoch.

        Raises:
            ValueError: if a length needs a count not given, or a bound is ``"auto"``.
        """
        if self._needs_range_test():
            raise ValueError(f"{type(self).__name__} has 'auto' bounds, known only after an LR range test.")
        num_groups = check_int(num_groups, "num_groups")
        context = FitContext(steps_per_epoch, total_steps, owner=type(self).__name__)
        return self._schedules_for(context, num_groups, "the preview optimizer")

    def plot(self, steps: int, steps_per_epoch: float | None = None, **kwargs: Any) -> Any:
        """Draws the schedule this callback would apply over ``steps`` optimizer steps (a run of that
        length, so percent lengths and ``total_steps=None`` refer to it) and returns the figure."""
        from lightning_clr.plotting import plot_schedule

        lr, momentum = self.schedules(steps_per_epoch=steps_per_epoch, total_steps=steps)[0]
        kwargs.setdefault("steps_per_epoch", steps_per_epoch)
        return plot_schedule(lr, steps, momentum=momentum, title=type(self).__name__, **kwargs)
