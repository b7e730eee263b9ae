"""The thin adapter between a schedule and a Trainer's optimizers.

:class:`ScheduleCallback` is the base of every lightning_clr schedule callback. At fit start it resolves
lengths given in epochs or percent, builds one pure schedule per param group and checks the set-up
against the Trainer; from train start on it writes ``param_group["lr"]`` (and the momentum, or Adam's
``betas[0]``) for the *next* optimizer step, computed from the optimizer-step clock. Because a value is a
function of the step count alone, resume and DDP are consistent by construction.

The clock of an optimizer:

* automatic optimization with ``count_skipped_steps=True`` (default): ``trainer.global_step``, Lightning's
  own count of optimizer steps (restored by Lightning on resume);
* ``count_skipped_steps=False``: the optimizer's count of updates that really happened, advanced by a
  torch optimizer step hook (a step the AMP GradScaler skips runs no hook);
* manual optimization: each optimizer's own count of ``step()`` calls (counting GradScaler-skipped calls
  unless ``count_skipped_steps=False``), so two optimizers that step at different rates each follow their
  own schedule. Closure re-evaluations (LBFGS) never advance a clock.

Counts that Lightning does not keep are saved in the callback's ``state_dict``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Union

import torch
from typing_extensions import override

from lightning_clr._checks import check_number
from lightning_clr._compat import CallbackBase, rank_zero_warn
from lightning_clr._trainer import is_automatic_optimization, run_size, unwrap_optimizer
from lightning_clr.lengths import Length
from lightning_clr.schedules import ScheduleBase

__all__ = ["ScheduleCallback", "FitContext", "per_group", "OptimizerIndices"]

_STATE_VERSION = 1
OptimizerIndices = Union[int, list[int], None]


@dataclass
class FitContext:
    """What a callback knows about the fit when it builds its schedules.

    Attributes:
        steps_per_epoch: optimizer steps in one training epoch (per rank), or ``None`` if unknown.
        total_steps: optimizer steps in the whole fit (``trainer.estimated_stepping_batches``), or ``None``.
    """

    steps_per_epoch: Optional[float]
    total_steps: Optional[float]
    trainer: Any = field(default=None, repr=False)
    pl_module: Any = field(default=None, repr=False)

    def resolve(self, length: Length) -> int:
        return length.resolve(self.steps_per_epoch, self.total_steps)


@dataclass
class _Group:
    """One param group under a schedule; what the hot path needs, looked up once."""

    params: dict
    lr: Callable[[int], float]
    momentum: Optional[Callable[[int], float]]
    momentum_key: Optional[str]  # "momentum", "betas" or None
    written_lr: Any = None  # the object last stored in params["lr"] (a float, or the tensor filled in place)


@dataclass
class _Driven:
    """One optimizer this callback drives."""

    index: int
    optimizer: torch.optim.Optimizer
    groups: list[_Group]
    end: Optional[int]  # first step past the end of the schedule, if it ends
    step_count: int = 0  # own clock, when not trainer.global_step
    in_step: bool = False  # between the torch pre- and post-step hooks
    counted_in_step: bool = False  # this step was already counted as an attempt
    attempt_pending: bool = False  # counted before GradScaler.step, which may still skip it
    written_step: int = -1  # the step whose values were written last



def _eager(hook: Callable[..., None]) -> Callable[..., None]:
    """Runs an optimizer step hook outside ``torch.compile``: traced, its step counter would become a guard
    and every step would recompile a compiled ``optimizer.step()``."""
    disable = getattr(getattr(torch, "compiler", None), "disable", None)
    return disable(hook) if disable is not None else hook


def per_group(value: Any, num_groups: int, name: str, optimizer_name: str) -> list[Any]:
    if isinstance(value, (list, tuple)):
        if len(value) != num_groups:
            raise ValueError(
                f"Expected {name} to have one value per param group of {optimizer_name} ({num_groups}), "
                f"but got {len(value)} values: {list(value)!r}. Pass a single value to use it for every group."
            )
        return list(value)
    return [value] * num_groups


class ScheduleCallback(CallbackBase):
    """Base of the lightning_clr callbacks: drives optimizers' rates from pure schedules.

    Subclasses implement :meth:`_schedules_for` and :meth:`_arguments`.

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
        self.optimizers: Optional[list[int]] = optimizers
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
        self._pending_build: Optional[FitContext] = None
        self._rate_scale = 1.0

    # ------------------------------------------------------------------ to implement in subclasses
    def _schedules_for(
        self, context: FitContext, optimizer: torch.optim.Optimizer, optimizer_name: str
    ) -> list[tuple[Callable[[int], float], Optional[Callable[[int], float]]]]:
        """One ``(lr_schedule, momentum_schedule_or_None)`` per param group of ``optimizer``."""
        raise NotImplementedError

    def _arguments(self) -> dict[str, Any]:
        """The constructor's arguments as plain values, for the checkpoint fingerprint."""
        raise NotImplementedError

    def _needs_range_test(self) -> bool:
        """Whether a value is ``"auto"`` and must come from an :class:`~lightning_clr.LRRangeTest`."""
        return False

    # ------------------------------------------------------------------ identity and checkpoints
    @property
    @override
    def state_key(self) -> str:
        if self.optimizers is None:
            return self.__class__.__qualname__
        return self._generate_state_key(optimizers=self.optimizers)

    def fingerprint(self) -> str:
        """A short hash of the arguments: a resumed run compares it with the checkpoint's."""
        arguments = {"class": type(self).__qualname__, **self._arguments()}
        text = json.dumps(arguments, sort_keys=True, default=repr)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def _plain_arguments(self) -> dict[str, Any]:
        """The arguments as JSON values (non-JSON ones by ``repr``), as saved in and compared with a checkpoint."""
        return json.loads(json.dumps(self._arguments(), default=repr))

    @override
    def state_dict(self) -> dict[str, Any]:
        if self._driven and self._use_global_step and self._trainer is not None:
            # Lightning's clock drives every optimizer: save it, so a resume that switches to the own clock
            # (count_skipped_steps=False) continues from the same step.
            counts = {d.index: int(self._trainer.global_step) for d in self._driven}
        elif self._driven:
            counts = {d.index: d.step_count for d in self._driven}
        else:
            counts = dict(self._restored_counts)
        return {
            "version": _STATE_VERSION,
            "fingerprint": self.fingerprint(),
            "arguments": self._plain_arguments(),
            "step_counts": {str(k): v for k, v in counts.items()},
            "rate_scale": self._rate_scale,
        }

    @override
    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._restored_counts = {int(k): int(v) for k, v in state_dict.get("step_counts", {}).items()}
        self._loaded_from_checkpoint = True
        self._rate_scale = float(state_dict.get("rate_scale", 1.0))
        fingerprint = state_dict.get("fingerprint")
        if fingerprint is not None and fingerprint != self.fingerprint():
            saved = state_dict.get("arguments", {})
            changed = {k: (saved.get(k), v) for k, v in self._plain_arguments().items() if saved.get(k) != v}
            rank_zero_warn(
                f"{type(self).__name__} is resuming from a checkpoint saved with other arguments "
                f"(changed, as (saved, now): {changed}). The schedule continues from the restored step with "
                "the new arguments."
            )

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        # Runtime links to a fit (optimizers, hook handles, the Trainer) are rebuilt at the next fit start.
        state.update(_driven=[], _handles=[], _trainer=None, _pending_build=None,
                     _restored_counts={**self._restored_counts, **{d.index: d.step_count for d in self._driven}})
        return state

    # ------------------------------------------------------------------ fit start: check and build
    @override
    def on_fit_start(self, trainer: Any, pl_module: Any) -> None:
        self._remove_hooks()
        self._trainer = trainer
        self._warned_past_end = False
        self._check_no_sibling_conflict(trainer)
        optimizers = [unwrap_optimizer(o) for o in trainer.optimizers]
        indices = list(range(len(optimizers))) if self.optimizers is None else self.optimizers
        if not optimizers:
            raise ValueError(f"{type(self).__name__} found no optimizer: configure_optimizers returned none.")
        missing = [i for i in indices if i >= len(optimizers)]
        if missing:
            raise ValueError(
                f"{type(self).__name__}(optimizers={self.optimizers}) names optimizer indices {missing}, but "
                f"configure_optimizers returned {len(optimizers)} optimizer(s) (valid indices 0..{len(optimizers) - 1})."
            )
        self._check_no_scheduler_conflict(trainer, optimizers, indices)

        automatic = is_automatic_optimization(pl_module)
        self._use_global_step = automatic and self.count_skipped_steps
        context = FitContext(*run_size(trainer), trainer=trainer, pl_module=pl_module)
        # Own clocks continue from the checkpoint, or from an earlier fit of the same Trainer.
        counts = {**self._restored_counts, **{d.index: d.step_count for d in self._driven}}
        if self._loaded_from_checkpoint:
            counts, self._loaded_from_checkpoint = dict(self._restored_counts), False
        self._driven = [
            _Driven(index=i, optimizer=optimizers[i], groups=[], end=None, step_count=counts.get(i, 0))
            for i in indices
        ]
        # Values must be known now (bad set-ups fail at fit start), unless they come from a range test,
        # which needs the train loader and so runs at train start.
        if self._needs_range_test():
            self._find_range_test(trainer)
            self._pending_build = context
        else:
            self._build(context)

        if not self._use_global_step:
            for driven in self._driven:
                self._handles.append(driven.optimizer.register_step_pre_hook(self._make_pre_hook(driven)))
                self._handles.append(driven.optimizer.register_step_post_hook(self._make_post_hook(driven)))

    def _build(self, context: FitContext) -> None:
        for driven in self._driven:
            name = f"optimizer {driven.index} ({type(driven.optimizer).__name__})"
            schedules = self._schedules_for(context, driven.optimizer, name)
            groups: list[_Group] = []
            no_momentum = False
            for params, (lr_schedule, momentum_schedule) in zip(driven.optimizer.param_groups, schedules):
                key = None
                if momentum_schedule is not None:
                    key = "betas" if "betas" in params else ("momentum" if "momentum" in params else None)
                    if key is None:
                        no_momentum, momentum_schedule = True, None
                groups.append(_Group(params, lr_schedule, momentum_schedule, key))
            if no_momentum:
                rank_zero_warn(
                    f"{type(self).__name__}: {name} has neither `momentum` nor `betas`, so only its learning rate "
                    "cycles. Pass cycle_momentum=False to silence this warning."
                )
            ends = [getattr(g.lr, "total_steps_or_none", None) for g in groups]
            driven.end = max(ends) if ends and all(e is not None for e in ends) else None
            driven.groups = groups

    def _find_range_test(self, trainer: Any) -> Any:
        from lightning_clr.tuner.range_test import LRRangeTest

        tests = [cb for cb in trainer.callbacks if isinstance(cb, LRRangeTest)]
        if not tests:
            raise ValueError(
                f"{type(self).__name__} was given 'auto' bounds, which come from an LR range test, but the "
                "Trainer has no lightning_clr.LRRangeTest callback. Add LRRangeTest() to the Trainer's "
                "callbacks, or give the bounds as numbers."
            )
        return tests[0]

    def _range_test_result(self, context: FitContext) -> Any:
        """The suggestion of the Trainer's :class:`~lightning_clr.LRRangeTest`, running it if needed."""
        test = self._find_range_test(context.trainer)
        return test.ensure_result(context.trainer, context.pl_module)

    def _check_no_sibling_conflict(self, trainer: Any) -> None:
        mine = None if self.optimizers is None else set(self.optimizers)
        for other in trainer.callbacks:
            if other is self or not isinstance(other, ScheduleCallback):
                continue
            theirs = None if other.optimizers is None else set(other.optimizers)
            if mine is None or theirs is None or mine & theirs:
                raise ValueError(
                    f"{type(self).__name__}(optimizers={self.optimizers}) and {type(other).__name__}"
                    f"(optimizers={other.optimizers}) would both set the learning rate of the same optimizer. "
                    "Give each callback its own optimizers=[...] indices, or keep one of them."
                )

    def _check_no_scheduler_conflict(self, trainer: Any, optimizers: list, indices: list[int]) -> None:
        for config in getattr(trainer, "lr_scheduler_configs", None) or []:
            scheduler = config.scheduler
            scheduled = unwrap_optimizer(getattr(scheduler, "optimizer", None))
            for i in indices:
                if scheduled is optimizers[i]:
                    raise ValueError(
                        f"configure_optimizers (or LightningCLI's --lr_scheduler) returns the LR scheduler "
                        f"{type(scheduler).__name__} for optimizer {i} ({type(optimizers[i]).__name__}), which "
                        f"{type(self).__name__} also drives: both would set its learning rate. Return only the "
                        f"optimizer from configure_optimizers and let {type(self).__name__} schedule it, or pass "
                        f"{type(self).__name__}(optimizers=[...]) to drive the other optimizers only."
                    )

    # ------------------------------------------------------------------ the clock
    def _make_pre_hook(self, driven: _Driven) -> Callable[..., None]:
        def pre_hook(optimizer: Any, args: Any, kwargs: Any) -> None:
            driven.in_step, driven.counted_in_step, driven.attempt_pending = True, driven.attempt_pending, False

        return _eager(pre_hook)

    def _make_post_hook(self, driven: _Driven) -> Callable[..., None]:
        count_attempts = self.count_skipped_steps  # only reached in manual mode when True

        def post_hook(optimizer: Any, args: Any, kwargs: Any) -> None:
            if not count_attempts or not driven.counted_in_step:
                driven.step_count += 1
            driven.in_step = False
            self._write(driven, driven.step_count)

        return _eager(post_hook)

    @override
    def on_before_optimizer_step(self, trainer: Any, pl_module: Any, optimizer: Any) -> None:
        optimizer = unwrap_optimizer(optimizer)
        for driven in self._driven:
            if driven.optimizer is not optimizer:
                continue
            if not self._use_global_step and self.count_skipped_steps:
                # Manual optimization: count each attempted step once. Outside a real step this is an AMP
                # step (the closure runs before GradScaler.step, which may skip); inside one, only the first
                # closure evaluation counts (LBFGS evaluates it several times).
                if not driven.in_step:
                    # GradScaler.step comes next and uses the rate written now, or skips the update.
                    self._write(driven, driven.step_count)
                    driven.step_count += 1
                    driven.attempt_pending = True
                elif not driven.counted_in_step:
                    driven.counted_in_step = True
                    driven.step_count += 1
            if driven.end is not None and not self._warned_past_end:
                step = self._step(driven, trainer)
                if step >= driven.end:
                    self._warned_past_end = True
                    rank_zero_warn(
                        f"{type(self).__name__}: optimizer {driven.index} takes step {step}, past the schedule's end "
                        f"({driven.end} steps); the final value is held. The run is longer than the schedule."
                    )

    def _step(self, driven: _Driven, trainer: Any) -> int:
        if self._use_global_step:
            return trainer.global_step
        step = driven.step_count
        return step - 1 if driven.in_step and driven.counted_in_step else step

    # ------------------------------------------------------------------ writing the values
    def _write(self, driven: _Driven, step: int) -> None:
        # Optimizer.load_state_dict (a resume restores the optimizer after on_fit_start) replaces the
        # param_group dicts, so follow the optimizer's current ones instead of those seen at fit start.
        for group, params in zip(driven.groups, driven.optimizer.param_groups):
            group.params = params
            lr = group.lr(step) * self._rate_scale
            current = params["lr"]
            if isinstance(current, torch.Tensor):
                current.fill_(lr)
                group.written_lr = current
            else:
                params["lr"] = group.written_lr = lr
            if group.momentum is not None:
                momentum = group.momentum(step)
                if group.momentum_key == "betas":
                    betas = params["betas"]
                    if isinstance(betas[0], torch.Tensor):
                        betas[0].fill_(momentum)
                    else:
                        params["betas"] = (momentum, *betas[1:])
                else:
                    current = params["momentum"]
                    if isinstance(current, torch.Tensor):
                        current.fill_(momentum)
                    else:
                        params["momentum"] = momentum
        driven.written_step = step

    def _write_all(self, trainer: Any) -> None:
        for driven in self._driven:
            self._write(driven, self._step(driven, trainer))

    def _refresh_all(self, trainer: Any) -> None:
        """Writes the values for the current step unless they are in place already: same step, and each
        group's ``lr`` still the object written last (anything else that set a rate replaced it)."""
        for driven in self._driven:
            step = self._step(driven, trainer)
            in_place = step == driven.written_step
            if in_place:
                for group, params in zip(driven.groups, driven.optimizer.param_groups):
                    if params["lr"] is not group.written_lr:
                        in_place = False
                        break
            if not in_place:
                self._write(driven, step)

    @override
    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        if self._pending_build is not None:
            context, self._pending_build = self._pending_build, None
            self._build(context)
        # On resume the optimizer's own lr was restored after on_fit_start: write from here on.
        self._write_all(trainer)

    @override
    def on_train_batch_start(self, trainer: Any, pl_module: Any, batch: Any, batch_idx: int) -> None:
        if self._use_global_step:  # a safety net: the value was already written ahead
            self._refresh_all(trainer)
        if trainer.loggers and _should_log(trainer):
            self._log(trainer)

    @override
    def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        if self._use_global_step:  # after a stepping batch: the values for the next step
            self._refresh_all(trainer)

    @override
    def on_fit_end(self, trainer: Any, pl_module: Any) -> None:
        self._remove_hooks()

    @override
    def teardown(self, trainer: Any, pl_module: Any, stage: str) -> None:
        if stage == "fit":
            self._remove_hooks()

    def _remove_hooks(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []

    # ------------------------------------------------------------------ logging
    def _names(self) -> list[tuple[_Driven, list[str], Optional[str]]]:
        """Logged names per driven optimizer: one per param group, and the momentum's."""
        counts: dict[str, int] = {}
        result = []
        for driven in self._driven:
            base = type(driven.optimizer).__name__
            seen = counts.get(base, 0)
            counts[base] = seen + 1
            stem = f"{self.logging_name}-{base}" + (f"-{seen}" if seen else "")
            groups = driven.groups
            if len(groups) == 1:
                names = [stem]
            else:
                names = [f"{stem}/{g.params.get('name', f'pg{i + 1}')}" for i, g in enumerate(groups)]
            momentum = f"{stem}-momentum" if self.log_momentum and any(g.momentum for g in groups) else None
            result.append((driven, names, momentum))
        return result

    def _log(self, trainer: Any) -> None:
        if not trainer.is_global_zero:
            return
        # The schedules' own floats for the current step, i.e. what was written: reading a tensor rate back
        # from the optimizer would be a device sync.
        metrics: dict[str, float] = {}
        for driven, names, momentum_name in self._names():
            step = self._step(driven, trainer)
            for name, group in zip(names, driven.groups):
                metrics[name] = group.lr(step) * self._rate_scale
            if momentum_name is not None:
                moment_names = [momentum_name] if len(names) == 1 else [f"{n}-momentum" for n in names]
                for name, group in zip(moment_names, driven.groups):
                    if group.momentum is not None:
                        metrics[name] = group.momentum(step)
        step = _logging_step(trainer)
        for logger in trainer.loggers:
            logger.log_metrics(metrics, step=step)

    # ------------------------------------------------------------------ scaling the rates
    @property
    def rate_scale(self) -> float:
        """The factor every learning rate this callback writes is multiplied by: 1.0 unless lowered (e.g. by
        :class:`~lightning_clr.DivergenceGuard`). Saved in the checkpoint, so a resumed run writes the same rates."""
        return self._rate_scale

    def set_rate_scale(self, scale: float) -> None:
        """Multiplies the learning-rate schedules by ``scale`` from the next write on (the shape stays: the
        peak, the floor and every value between them are scaled alike; the momentum is not).

        Args:
            scale: the new factor, a finite number in (0, 1] (1 restores the schedule as built).

        Raises:
            ValueError: if ``scale`` is not in (0, 1].
        """
        self._rate_scale = check_number(scale, "scale", 0.0, 1.0, low_open=True)
        for driven in self._driven:
            driven.written_step = -1  # the values in place are stale: write at the next hook
        if self._trainer is not None and self._driven:
            self._write_all(self._trainer)

    # ------------------------------------------------------------------ read-only access for other callbacks
    def drives(self, optimizer_index: int) -> bool:
        """Whether this callback schedules optimizer ``optimizer_index`` of the Trainer."""
        return self.optimizers is None or optimizer_index in self.optimizers

    def step_schedule(self, optimizer_index: int = 0, group: int = 0) -> Optional[Callable[[int], float]]:
        """The learning-rate schedule built for param group ``group`` of optimizer ``optimizer_index`` in
        the current fit, or ``None`` before it is built (at fit start, or at train start with "auto" bounds)."""
        for driven in self._driven:
            if driven.index == optimizer_index and len(driven.groups) > group:
                return driven.groups[group].lr
        return None

    def step_momentum_schedule(self, optimizer_index: int = 0, group: int = 0) -> Optional[Callable[[int], float]]:
        """The momentum schedule of that param group, or ``None`` (not built yet, or the momentum is not cycled)."""
        for driven in self._driven:
            if driven.index == optimizer_index and len(driven.groups) > group:
                return driven.groups[group].momentum
        return None

    def current_step(self, trainer: Any, optimizer_index: int = 0) -> int:
        """The count of optimizer steps of ``optimizer_index`` taken so far: the step the schedule writes next.

        Raises:
            ValueError: if this callback does not drive that optimizer in the current fit.
        """
        for driven in self._driven:
            if driven.index == optimizer_index:
                return self._step(driven, trainer)
        raise ValueError(f"{type(self).__name__} does not drive optimizer {optimizer_index} in the current fit "
                         f"(it drives {[d.index for d in self._driven]}).")

    # ------------------------------------------------------------------ previews
    def schedules(self, steps_per_epoch: Optional[float] = None, total_steps: Optional[float] = None,
                  num_groups: int = 1) -> list[tuple[Callable[[int], float], Optional[Callable[[int], float]]]]:
        """The ``(lr, momentum)`` schedules this callback would use for an optimizer with ``num_groups``
        param groups, for a run of ``total_steps`` optimizer steps with ``steps_per_epoch`` per epoch.

        Raises:
            ValueError: if a length needs a count not given, or a bound is ``"auto"``.
        """
        if self._needs_range_test():
            raise ValueError(f"{type(self).__name__} has 'auto' bounds, known only after an LR range test.")
        optimizer = torch.optim.SGD([{"params": [torch.zeros(1, requires_grad=True)]} for _ in range(num_groups)],
                                    lr=0.0, momentum=0.9)
        return self._schedules_for(FitContext(steps_per_epoch, total_steps), optimizer, "the preview optimizer")

    def plot(self, steps: int, steps_per_epoch: Optional[float] = None, **kwargs: Any) -> Any:
        """Draws the schedule this callback would apply over ``steps`` optimizer steps (a run of that
        length, so percent lengths and ``total_steps=None`` refer to it) and returns the figure."""
        from lightning_clr.plotting import plot_schedule

        lr, momentum = self.schedules(steps_per_epoch=steps_per_epoch, total_steps=steps)[0]
        kwargs.setdefault("steps_per_epoch", steps_per_epoch)
        return plot_schedule(lr, steps, momentum=momentum, title=type(self).__name__, **kwargs)



def _should_log(trainer: Any) -> bool:
    connector = getattr(trainer, "_logger_connector", None)
    if connector is not None and hasattr(connector, "should_update_logs"):
        return bool(connector.should_update_logs)
    return trainer.global_step % max(1, trainer.log_every_n_steps) == 0  # pragma: no cover


def _logging_step(trainer: Any) -> int:
    loop = getattr(getattr(trainer, "fit_loop", None), "epoch_loop", None)
    return int(getattr(loop, "_batches_that_stepped", trainer.global_step))
