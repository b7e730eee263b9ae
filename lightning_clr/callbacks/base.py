"""The thin adapter between pure schedules and a Trainer's optimizers: :class:`ScheduleCallback`, whole.

At fit start it resolves lengths given in epochs or percent, builds one pure schedule per param group and checks
the set-up against the Trainer (:mod:`~lightning_clr.callbacks.context`). From train start on it writes each
optimizer's ``param_group["lr"]`` (and the momentum, or Adam's ``betas[0]``) for the *next* optimizer step,
through one :class:`~lightning_clr.callbacks.writer.GroupWriter` per optimizer, at the step its
:class:`~lightning_clr.callbacks.clock.StepClock` gives. A value is a function of the step count alone, so
resume and DDP are consistent by construction.

What happens at a step, under Lightning's clock (automatic optimization, the default):

====================================  ============================================================================
hook                                  work
====================================  ============================================================================
``on_train_batch_start``              a rate replaced since the last write (by anything) is written again; the
                                      rates are logged if Lightning logs this batch
``on_before_optimizer_step``          nothing, until a step may be past a schedule's end (then: warn once)
``on_train_batch_end``                once the batch has stepped, the next step's values are written
====================================  ============================================================================

Under an own clock (``count_skipped_steps=False``, or manual optimization) torch's optimizer step hooks write
after each update instead (see :class:`~lightning_clr.callbacks.clock.StepClock`).

The checkpoint state (format version 1): ``version``, ``fingerprint`` (a hash of the arguments), ``arguments``
(as JSON values), ``step_counts`` (optimizer index -> the clock's count), ``rate_scale`` and ``total_steps`` (the
run length the schedules were built for; older checkpoints lack it and still load).
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from lightning_utilities.core.rank_zero import rank_zero_info
from typing_extensions import override

from lightning_clr._checks import check_int, check_number
from lightning_clr._compat import CallbackBase, arguments_repr
from lightning_clr._param_groups import momentum_key
from lightning_clr._trainer import (
    LogCadence,
    global_step_counter,
    is_automatic_optimization,
    logging_step,
    run_size,
    unwrap_optimizer,
)
from lightning_clr._warnings import warn
from lightning_clr.callbacks.clock import ClockMode, StepClock, remove_hooks
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
from lightning_clr.callbacks.writer import GroupWriter

__all__ = ["FitContext", "GroupSchedules", "OptimizerIndices", "ScheduleCallback", "metric_names", "per_group"]

_STATE_VERSION = 1


@dataclass
class _Driven:
    """One optimizer this callback drives: its clock, and (once built) the writer of its groups."""

    index: int
    optimizer: Any
    clock: StepClock
    writer: GroupWriter | None = None
    end: int | None = None  # first step past the end of the schedule, if it ends


def metric_names(logging_name: str, optimizers: Sequence[tuple[str, list[dict], bool]],
                 log_momentum: bool) -> list[tuple[list[str], list[str] | None]]:
    """The logged names of each driven optimizer: one per param group, and one per group for the momentum
    (``stem-momentum`` with one group, ``stem/pgN-momentum`` with several), or ``None`` if it is not logged.

    ``<logging_name>-<Optimizer>`` for an optimizer with one param group, ``<logging_name>-<Optimizer>/<group name
    or pgN>`` per group otherwise, a ``-N`` suffix for the N-th further optimizer of one class, and ``-momentum``
    after the name for the momentum.

    Args:
        logging_name: the callback's prefix, e.g. `"lr-clr"`.
        optimizers: per driven optimizer, `(class name, its param-group dicts, whether a momentum cycles)`.
        log_momentum: whether the momentum is logged.
    """
    counts: dict[str, int] = {}
    result = []
    for base, params, cycles_momentum in optimizers:
        seen = counts.get(base, 0)
        counts[base] = seen + 1
        stem = f"{logging_name}-{base}" + (f"-{seen}" if seen else "")
        names = [stem] if len(params) == 1 else [f"{stem}/{p.get('name', f'pg{i + 1}')}" for i, p in enumerate(params)]
        moments = None
        if log_momentum and cycles_momentum:
            moments = [f"{stem}-momentum"] if len(params) == 1 else [f"{name}-momentum" for name in names]
        result.append((names, moments))
    return result


class ScheduleCallback(CallbackBase):
    """Base of the lightning_clr callbacks: drives optimizers' rates from pure schedules.

    Subclasses implement :meth:`_schedules_for` (and :meth:`_needs_range_test` where a value can be "auto").

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
        optimizers: index or list of indices into `trainer.optimizers` of the optimizers to drive;
            `None` drives all of them.
        count_skipped_steps: whether a step that the AMP GradScaler skips (inf/NaN gradients) advances
            the schedule. `True` follows Lightning's `global_step`; `False` counts real updates only.
        log_momentum: also log the momentum when it is cycled.
        logging_name: prefix of the logged names, e.g. `"lr-clr"` gives `lr-clr-SGD`,
            `lr-clr-SGD/pg1` and `lr-clr-SGD-momentum`. LearningRateMonitor logs `lr-SGD`,
            so both can be attached.

    Raises:
        ValueError: if `optimizers` is not `None`, a non-negative int or a list of them.
    """

    #: Arguments that change what is logged, not the rates: left out of the checkpoint's fingerprint.
    _NOT_FINGERPRINTED: tuple[str, ...] = ("log_momentum", "logging_name")
    #: Arguments added after checkpoints of the class existed: in the fingerprint only when one of them differs
    #: from its default, so that an older checkpoint still matches.
    _FINGERPRINTED_WHEN_SET: tuple[str, ...] = ()

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
        self._rate_scale = 1.0
        self._restored_counts: dict[int, int] = {}  # optimizer index -> own clock's count, from a checkpoint
        self._restored_total: float | None = None  # the run length the checkpoint's schedules were built for
        self._built_total: float | None = None  # the run length this fit's schedules were built for
        self._loaded_from_checkpoint = False
        self._resolved: dict[str, Any] = {}  # "auto" values as the range test resolved them
        self._noted_monitor = False
        self._reset_fit()

    def _reset_fit(self) -> None:
        """The links to one fit (optimizers, hook handles, the Trainer), rebuilt at every fit start."""
        self._driven: list[_Driven] = []
        self._writers: list[GroupWriter] = []
        self._handles: list[Any] = []
        self._trainer: Any = None
        self._pending_build: FitContext | None = None
        self._use_global_step = True
        self._steps: Any = None  # trainer.global_step's counter under Lightning's clock (else None)
        self._written = -1  # the step written last under Lightning's clock
        self._first_end: float = float("inf")  # the first step past a schedule's end (inf: none, or warned)
        self._watch_before_step = True  # on_before_optimizer_step has work (own clocks, or near an end)
        self._cadence: LogCadence | None = None
        self._names: list[tuple[list[str], list[str] | None]] = []
        self._named_groups: list[Any] = []  # the param_groups lists the names were made for

    # ------------------------------------------------------------------ to implement in subclasses
    def _schedules_for(self, context: FitContext, num_groups: int, optimizer_name: str) -> GroupSchedules:
        """One ``(lr_schedule, momentum_schedule_or_None)`` for each of the ``num_groups`` param groups of
        the optimizer called ``optimizer_name`` in messages (e.g. ``"optimizer 0 (SGD)"``)."""
        raise NotImplementedError

    def _needs_range_test(self) -> bool:
        """Whether a value is "auto" and must come from an :class:`~lightning_clr.LRRangeTest`."""
        return False

    # ------------------------------------------------------------------ identity
    def __repr__(self) -> str:
        text = arguments_repr(self)
        if self._resolved:
            shown = ", ".join(f"{k}={v!r}" for k, v in self._resolved.items())
            text = f"{text[:-1]}; resolved: {shown})"
        return text

    def __getstate__(self) -> dict[str, Any]:
        """The arguments and the restored state, with the own clocks' counts (``ddp_spawn`` pickles the callback
        into each rank); the links to a fit are those of a callback before its first fit (the next fit start
        rebuilds them)."""
        counts = {**self._restored_counts, **{d.index: d.clock.count for d in self._driven}}
        unfitted = ScheduleCallback.__new__(ScheduleCallback)
        unfitted._reset_fit()
        return {**self.__dict__, **unfitted.__dict__, "_restored_counts": counts}

    @property
    @override
    def state_key(self) -> str:
        """The key of this callback's state in a checkpoint: the class name, with ``optimizers`` if given.
        Two callbacks of one class on one Trainer need different ``optimizers=[...]``."""
        if self.optimizers is None:
            return self.__class__.__qualname__
        return self._generate_state_key(optimizers=self.optimizers)

    def _arguments(self) -> dict[str, Any]:
        """The constructor's arguments that shape the rates, read back from the attributes of the same name."""
        parameters = list(inspect.signature(type(self).__init__).parameters.values())[1:]
        arguments = {p.name: getattr(self, p.name) for p in parameters if p.name not in self._NOT_FINGERPRINTED}
        optional = {p.name: p.default for p in parameters if p.name in self._FINGERPRINTED_WHEN_SET}
        if all(arguments[name] == default for name, default in optional.items()):
            for name in optional:
                del arguments[name]
        return arguments

    def fingerprint(self) -> str:
        """A short hash of the arguments: a resumed run compares it with the checkpoint's."""
        arguments = {"class": type(self).__qualname__, **self._arguments()}
        text = json.dumps(arguments, sort_keys=True, default=repr)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def _plain_arguments(self) -> dict[str, Any]:
        """The arguments as JSON values (non-JSON ones by ``repr``), as saved in and compared with a checkpoint."""
        return json.loads(json.dumps(self._arguments(), default=repr))

    # ------------------------------------------------------------------ fit start: check and build
    @override
    def on_fit_start(self, trainer: Any, pl_module: Any) -> None:
        counts = {**self._restored_counts, **{d.index: d.clock.count for d in self._driven}}
        planned_total, resumed_step = None, None
        if self._loaded_from_checkpoint:  # own clocks continue from the checkpoint, or from an earlier fit
            counts, self._loaded_from_checkpoint = dict(self._restored_counts), False
            planned_total, resumed_step = self._restored_total, max(counts.values(), default=0)
        remove_hooks(self._handles)
        self._reset_fit()
        self._trainer = trainer
        owner = type(self).__name__
        others = [(type(cb).__name__, cb.optimizers) for cb in trainer.callbacks
                  if cb is not self and isinstance(cb, ScheduleCallback)]
        check_no_sibling_conflict(owner, self.optimizers, others)
        optimizers = [unwrap_optimizer(o) for o in trainer.optimizers]
        indices = driven_indices(owner, self.optimizers, len(optimizers))
        check_no_scheduler_conflict(owner, trainer, optimizers, indices)
        self._warn_beside_schedule_free(optimizers, indices)
        self._note_beside_lr_monitor(trainer)

        self._use_global_step = is_automatic_optimization(pl_module) and self.count_skipped_steps
        own: ClockMode = "attempts" if self.count_skipped_steps else "updates"
        mode: ClockMode = "global_step" if self._use_global_step else own
        context = FitContext(*run_size(trainer), trainer=trainer, pl_module=pl_module, owner=owner,
                             planned_total=planned_total, resumed_step=resumed_step)
        self._driven = [_Driven(i, optimizers[i], StepClock(mode, counts.get(i, 0))) for i in indices]
        # Values must be known now (bad set-ups fail at fit start), unless they come from a range test,
        # which needs the train loader and so runs at train start.
        if self._needs_range_test():
            find_range_test(owner, trainer)
            self._pending_build = context
        else:
            self._build(context)
        for driven in self._driven:
            self._handles += driven.clock.attach(driven.optimizer, functools.partial(self._write, driven))

    def _warn_beside_schedule_free(self, optimizers: list[Any], indices: list[int]) -> None:
        for i in indices:
            name = type(optimizers[i]).__name__
            if "schedulefree" in type(optimizers[i]).__module__.lower():
                warn(f"{type(self).__name__}: optimizer {i} ({name}) is a schedule-free optimizer, which brings its "
                     "own schedule (it averages the iterates and expects a constant rate after its warm-up). "
                     "A schedule on top of it is rarely what is meant: drop the schedule callback, or use a plain "
                     "optimizer.")

    def _note_beside_lr_monitor(self, trainer: Any) -> None:
        """One line (an info, not a warning: both together work) where a LearningRateMonitor logs the rate too."""
        monitors = [cb for cb in trainer.callbacks if type(cb).__name__ == "LearningRateMonitor"]
        if monitors and trainer.loggers and not self._noted_monitor:
            self._noted_monitor = True
            rank_zero_info(f"{type(self).__name__} already logs the rate it applies ({self.logging_name}-<Optimizer>); "
                           "the LearningRateMonitor logs it again, as lr-<Optimizer>. Remove the LearningRateMonitor "
                           "unless you want both.")

    def _build(self, context: FitContext) -> None:
        for driven in self._driven:
            name = f"optimizer {driven.index} ({type(driven.optimizer).__name__})"
            groups = driven.optimizer.param_groups
            schedules = self._schedules_for(context, len(groups), name)
            lrs = [lr for lr, _ in schedules]
            momenta = [momentum for _, momentum in schedules]
            key = momentum_key(groups[0])
            if key is None and any(m is not None for m in momenta):
                warn(f"{type(self).__name__}: {name} has neither `momentum` nor `betas`, so only its learning rate "
                     "cycles. Pass cycle_momentum=False to silence this warning.")
            ends: list[Any] = [getattr(lr, "total_steps_or_none", None) for lr in lrs]
            driven.end = max(ends) if ends and all(e is not None for e in ends) else None
            driven.writer = GroupWriter(driven.optimizer, lrs, momenta, key)
        self._built_total = context.total_steps
        if context.kept:
            kept = ", ".join(dict.fromkeys(context.kept))
            warn(f"{type(self).__name__}: the resumed fit is {int(context.total_steps or 0)} optimizer steps long, the "
                 f"checkpoint's was {int(context.planned_total or 0)}; {kept} keep their length from the checkpoint's "
                 "run, so that the steps already taken stay exact. Give lengths in steps or epochs to plan them anew.")
        self._writers = [d.writer for d in self._driven if d.writer is not None]
        ends = [d.end for d in self._driven if d.end is not None]
        self._first_end = min(ends) if ends else float("inf")
        self._watch_before_step = not self._use_global_step

    def _range_test_result(self, context: FitContext) -> Any:
        """The suggestion of the Trainer's :class:`~lightning_clr.LRRangeTest`, running it if needed."""
        test = find_range_test(type(self).__name__, context.trainer)
        return test.ensure_result(context.trainer, context.pl_module)

    @override
    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        if self._pending_build is not None:
            context, self._pending_build = self._pending_build, None
            self._build(context)
        self._cadence = LogCadence(trainer)
        # the count is restored by now; None under an own clock (torch's step hooks write then)
        self._steps = global_step_counter(trainer) if self._use_global_step else None
        # On resume the optimizer's own lr was restored after on_fit_start: write from here on.
        self._write_all(trainer)

    @override
    def on_fit_end(self, trainer: Any, pl_module: Any) -> None:
        self._handles = remove_hooks(self._handles)

    @override
    def teardown(self, trainer: Any, pl_module: Any, stage: str) -> None:
        if stage == "fit":
            self._handles = remove_hooks(self._handles)

    # ------------------------------------------------------------------ the hooks of every step
    @override
    def on_train_batch_start(self, trainer: Any, pl_module: Any, batch: Any, batch_idx: int) -> None:
        if self._steps is not None:  # the safety net: a rate replaced since the last write is written again
            for writer in self._writers:
                if not writer.is_current(self._written):
                    writer.write(self._written, self._rate_scale)
        if self._cadence is not None and self._cadence.due():
            if self._steps is not None and self._written != trainer.global_step:  # the cheap counter, checked
                self._steps = global_step_counter(trainer)
                self._write_all(trainer)
            self._log(trainer)

    @override
    def on_before_optimizer_step(self, trainer: Any, pl_module: Any, optimizer: Any) -> None:
        if not self._watch_before_step:
            return
        optimizer = unwrap_optimizer(optimizer)
        for driven in self._driven:
            if driven.optimizer is not optimizer:
                continue
            write_now = driven.clock.before_optimizer_step()
            if write_now is not None:  # GradScaler.step comes next and uses the rate written now, or skips
                self._write(driven, write_now)
            step = self._written if self._use_global_step else driven.clock.now(trainer)
            if driven.end is not None and step >= driven.end and self._first_end != float("inf"):
                self._first_end = float("inf")  # once
                self._watch_before_step = not self._use_global_step
                warn(f"{type(self).__name__}: optimizer {driven.index} takes step {step}, past the schedule's end "
                     f"({driven.end} steps); the final value is held. The run is longer than the schedule.")

    @override
    def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        # Under Lightning's clock: the values of the next step, once a batch has stepped.
        if self._steps is None:
            return
        step = self._steps.completed
        if step == self._written:  # a batch that accumulated gradients only
            return
        self._written = step
        for writer in self._writers:
            writer.write(step, self._rate_scale)
        if step >= self._first_end:
            self._watch_before_step = True  # the next step may be past a schedule's end: warn there

    # ------------------------------------------------------------------ writing the values
    def _write(self, driven: _Driven, step: int) -> None:
        if driven.writer is not None:
            driven.writer.write(step, self._rate_scale)

    def _write_all(self, trainer: Any) -> None:
        for driven in self._driven:
            self._write(driven, driven.clock.now(trainer))
        if self._use_global_step:
            self._written = step = trainer.global_step
            if step >= self._first_end:
                self._watch_before_step = True  # a resume past a schedule's end: warn at the next step

    def set_rate_scale(self, scale: float) -> None:
        """Multiplies the learning-rate schedules by ``scale`` from the next write on (the shape stays: the
        peak, the floor and every value between them are scaled alike; the momentum is not).

        Args:
            scale: the new factor, a finite number in (0, 1] (1 restores the schedule as built).

        Raises:
            ValueError: if `scale` is not in (0, 1].
        """
        self._rate_scale = check_number(scale, "scale", 0.0, 1.0, low_open=True)
        for writer in self._writers:
            writer.invalidate()  # the values in place are stale: written again at the next hook
        if self._trainer is not None and self._driven:
            self._write_all(self._trainer)

    @property
    def rate_scale(self) -> float:
        """The factor every learning rate this callback writes is multiplied by: 1.0 unless lowered (e.g. by
        :class:`~lightning_clr.DivergenceGuard`). Saved in the checkpoint, so a resumed run writes the same rates."""
        return self._rate_scale

    # ------------------------------------------------------------------ logging
    def _log(self, trainer: Any) -> None:
        if not trainer.is_global_zero:
            return
        groups = [d.optimizer.param_groups for d in self._driven]
        if len(groups) != len(self._named_groups) or any(
                a is not b for a, b in zip(groups, self._named_groups, strict=True)):
            described = [(type(d.optimizer).__name__, [] if d.writer is None else d.optimizer.param_groups[:len(
                d.writer.lr)], d.writer is not None and d.writer.momentum_key is not None) for d in self._driven]
            self._names = metric_names(self.logging_name, described, self.log_momentum)
            self._named_groups = groups
        metrics: dict[str, float] = {}
        for driven, (names, moment_names) in zip(self._driven, self._names, strict=True):
            if driven.writer is None:
                continue
            lrs, momenta = driven.writer.values(driven.clock.now(trainer), self._rate_scale)
            metrics.update(zip(names, lrs, strict=True))
            if moment_names is not None:
                metrics.update((n, m) for n, m in zip(moment_names, momenta, strict=True) if m is not None)
        step = logging_step(trainer)
        for logger in trainer.loggers:
            logger.log_metrics(metrics, step=step)

    # ------------------------------------------------------------------ checkpoints
    @override
    def state_dict(self) -> dict[str, Any]:
        if self._driven and self._use_global_step and self._trainer is not None:
            # Lightning's clock drives every optimizer: save it, so a resume that switches to the own clock
            # (count_skipped_steps=False) continues from the same step.
            counts = {d.index: int(self._trainer.global_step) for d in self._driven}
        elif self._driven:
            counts = {d.index: d.clock.count for d in self._driven}
        else:
            counts = dict(self._restored_counts)
        return {
            "version": _STATE_VERSION,
            "fingerprint": self.fingerprint(),
            "arguments": self._plain_arguments(),
            "step_counts": {str(k): v for k, v in counts.items()},
            "rate_scale": self._rate_scale,
            "total_steps": self._built_total if self._driven else self._restored_total,
        }

    @override
    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._restored_counts = {int(k): int(v) for k, v in state_dict.get("step_counts", {}).items()}
        self._loaded_from_checkpoint = True
        self._rate_scale = float(state_dict.get("rate_scale", 1.0))
        self._restored_total = state_dict.get("total_steps")  # absent from older checkpoints: nothing is kept
        fingerprint = state_dict.get("fingerprint")
        if fingerprint is not None and fingerprint != self.fingerprint():
            saved = state_dict.get("arguments", {})
            changed = {k: (saved.get(k), v) for k, v in self._plain_arguments().items() if saved.get(k) != v}
            warn(
                f"{type(self).__name__} is resuming from a checkpoint saved with other arguments "
                f"(changed, as (saved, now): {changed}). The schedule continues from the restored step with "
                "the new arguments."
            )

    # ------------------------------------------------------------------ read-only access for other callbacks
    def drives(self, optimizer_index: int) -> bool:
        """Whether this callback schedules optimizer ``optimizer_index`` of the Trainer."""
        return self.optimizers is None or optimizer_index in self.optimizers

    def _built(self, optimizer_index: int, group: int) -> GroupWriter | None:
        for driven in self._driven:
            if driven.index == optimizer_index and driven.writer is not None and len(driven.writer.lr) > group:
                return driven.writer
        return None

    def step_schedule(self, optimizer_index: int = 0, group: int = 0) -> Callable[[int], float] | None:
        """The learning-rate schedule built for param group ``group`` of optimizer ``optimizer_index`` in
        the current fit, or ``None`` before it is built (at fit start, or at train start with "auto" bounds)."""
        writer = self._built(optimizer_index, group)
        return None if writer is None else writer.lr[group]

    def step_momentum_schedule(self, optimizer_index: int = 0, group: int = 0) -> Callable[[int], float] | None:
        """The momentum schedule of that param group, or ``None`` (not built yet, or the momentum is not cycled)."""
        writer = self._built(optimizer_index, group)
        return None if writer is None else writer.momentum[group]

    def current_step(self, trainer: Any, optimizer_index: int = 0) -> int:
        """The count of optimizer steps of ``optimizer_index`` taken so far: the step the schedule writes next.

        Raises:
            ValueError: if this callback does not drive that optimizer in the current fit.
        """
        for driven in self._driven:
            if driven.index == optimizer_index:
                return driven.clock.now(trainer)
        raise ValueError(f"{type(self).__name__} does not drive optimizer {optimizer_index} in the current fit "
                         f"(it drives {[d.index for d in self._driven]}).")

    # ------------------------------------------------------------------ previews
    def schedules(self, steps_per_epoch: float | None = None, total_steps: float | None = None,
                  num_groups: int = 1) -> GroupSchedules:
        """The ``(lr, momentum)`` schedules this callback would use for an optimizer with ``num_groups``
        param groups, for a run of ``total_steps`` optimizer steps with ``steps_per_epoch`` per epoch.

        Raises:
            ValueError: if a length needs a count not given, or a bound is "auto".
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
