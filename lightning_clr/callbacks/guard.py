"""``DivergenceGuard``: roll a diverging fit back to its last good state and go on with lower peaks.

The loss is summed on its device at every batch and read once a check window (one all-reduce under DDP, so every
rank decides alike); the window's mean and the scheduled rate go to the pure rule in
:mod:`lightning_clr.callbacks.guard_rule`. Good states (the weights and the optimizers' state) are copied to host
memory at train start and after clean keep intervals, and travel in the guard's checkpoint state. A rollback loads a
kept copy (the optimizers' hyperparameters stay the current step's), multiplies every lightning_clr schedule
callback's ``rate_scale`` by the cut, puts the rule's state back as it was at the keep, logs and warns; the step
count goes on. When the rollbacks run out, or the fit ends dead, it raises :class:`DivergenceError` (or warns, with
``on_failure="warn"``). ``docs/guard.md`` has the whole story: what it watches, its defaults and what it costs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Literal

import torch
from typing_extensions import override

from lightning_clr._checks import check_int, check_number
from lightning_clr._compat import CallbackBase
from lightning_clr._trainer import unwrap_optimizer
from lightning_clr._warnings import warn
from lightning_clr.callbacks.base import ScheduleCallback
from lightning_clr.callbacks.clock import remove_hooks
from lightning_clr.callbacks.guard_rule import (
    BLOW_UP,
    NO_PROGRESS,
    RELAPSE,
    LossMonitor,
    dead_message,
    describe_event,
    give_up_message,
    highest,
    newest_at_most,
    no_fall_message,
    rate_cut,
)

__all__ = ["DivergenceError", "DivergenceGuard"]

# 3: a list of kept copies, each with its step; 2: one copy, with the rule's state at the keep; 1: without it.
_STATE_VERSION = 3


class DivergenceError(RuntimeError):
    """The loss diverged again after `max_rollbacks` rollbacks: the fit stops."""


# ------------------------------------------------------------------ host copies of state_dict trees
def map_tensors(obj: Any, fn: Callable[[torch.Tensor], Any]) -> Any:
    """``obj`` with ``fn`` applied to every tensor in it (through dicts, lists and tuples)."""
    if isinstance(obj, torch.Tensor):
        return fn(obj)
    if isinstance(obj, dict):
        return {k: map_tensors(v, fn) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(map_tensors(v, fn) for v in obj)
    return obj


def to_host(tensor: torch.Tensor) -> torch.Tensor:
    """A detached copy of ``tensor`` in host memory (a copy even if it is there already)."""
    return tensor.detach().to("cpu", copy=True)


def all_finite(obj: Any) -> bool:
    """Whether every floating-point tensor in ``obj`` is finite (read on the host: call it on host copies)."""
    found: list[bool] = []
    map_tensors(obj, lambda t: found.append(not t.is_floating_point() or bool(torch.isfinite(t).all())))
    return all(found)


def take_copy(module: Any, optimizers: list[Any]) -> dict[str, Any]:
    """Host copies of ``module``'s and each optimizer's ``state_dict``: ``{"model": ..., "optimizers": [...]}``."""
    return {"model": map_tensors(module.state_dict(), to_host),
            "optimizers": [map_tensors(o.state_dict(), to_host) for o in optimizers]}


def restore_copy(copy: dict[str, Any], module: Any, optimizers: list[Any]) -> None:
    """Loads a :func:`take_copy` back into ``module`` and ``optimizers``, from clones (torch's
    ``Optimizer.load_state_dict`` keeps same-device tensors as they are, and the live state would then overwrite
    the copy). The optimizers' hyperparameters (rate, momentum, ...) stay those they have now."""
    module.load_state_dict(map_tensors(copy["model"], torch.Tensor.clone))
    for optimizer, saved in zip(optimizers, copy["optimizers"], strict=True):
        hyper = [{k: v for k, v in g.items() if k != "params"} for g in optimizer.param_groups]
        optimizer.load_state_dict(map_tensors(saved, torch.Tensor.clone))
        for group, values in zip(optimizer.param_groups, hyper, strict=True):
            group.update(values)


def kept_copies(state_dict: dict[str, Any]) -> list[dict[str, Any]]:
    """The kept copies in a guard's checkpoint state, oldest first, each with its ``"step"``; a version-1 or
    version-2 state held one copy under ``"kept"`` with its step beside it, under ``"kept_step"``."""
    kept = state_dict.get("kept")
    if isinstance(kept, dict):
        return [{**kept, "step": state_dict.get("kept_step")}]
    return list(kept or [])


def _loss_of(outputs: Any) -> torch.Tensor | None:
    loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
    return loss if isinstance(loss, torch.Tensor) else None


class DivergenceGuard(CallbackBase):
    """Detects a diverging training loss (non-finite, back near its untrained level, or high while the scheduled rate
    holds or falls), rolls back to the last good state kept in host memory (the initial state counts) and lowers the
    peaks of the lightning_clr schedules; gives up with :class:`DivergenceError` (or a warning) after
    `max_rollbacks`, and says so when a fit ends dead. A loss that rises with the rate and falls with it is the
    cycle at work: a run with no event trains exactly as it would without the guard.

    Example::

        trainer = Trainer(max_epochs=16, callbacks=[OneCycleLR(max_lr=0.6), DivergenceGuard()])

    Args:
        check_every_n_steps: optimizer steps per check window; the loss is read (one sync) once a window.
        keep_every_n_steps: optimizer steps between two kept states (a multiple of `check_every_n_steps`): the
            weights and optimizer state copied to host memory, after an interval whose windows were all clean.
        spike_factor: a window whose mean loss is above this multiple of the reference level is high.
        patience: high windows in a row (or windows of only AMP-skipped steps) that make an event.
        smoothing: weight of the old smoothed level when a clean window updates it, in [0, 1).
        level_memory: the reference level is the lowest smoothed level of this many last clean windows.
        rate_factor: each rollback multiplies the schedules' rates (their peak and every other value) by this.
        max_rollbacks: rollbacks allowed; the next event raises `DivergenceError`.
        keep_count: kept states held in host memory (`keep_count` times the weights and optimizer state, in the
            checkpoint too). With more than one, a rollback goes to the newest copy kept at a scheduled rate no
            higher than the peak the lowered schedules have left (a higher rate may have damaged the weights
            before the loss showed it), or to the newest copy if none was.
        stall_patience: `0` (off), or checks in a row without a new low of the smoothed loss while the scheduled
            rate climbs above any it had (a 1cycle warm-up): an event (`"stall"`), a too-high peak's first sign.
        stall_min_delta: a new low of the smoothed loss counts only if it is below `1 - stall_min_delta` times
            the lowest before (relative, like `EarlyStopping`'s `min_delta`), so a plateau that drifts down counts.
        stall_fraction: after a stall, a relapse or a second rollback the cut is deeper than `rate_factor` if
            need be, so that the peak ahead is at most this fraction of the rate at which the loss last fell
            (`0`: `rate_factor` alone).
        rate_aware: a high window is forgiven while the scheduled rate climbs, or while the loss comes down
            (below `fall_ratio` times the previous window's): the cycle at work. Only a loss that stays high or
            keeps rising while the rate holds or falls counts (`False`: every high window counts).
        fall_ratio: with `rate_aware`, a window below this multiple of the previous one is a falling loss.
        relapse_share: after the run has learned (its smoothed loss fell to `learned_fraction` of its first
            window's), a window back within this share of what it learned from that first loss is a relapse
            (before it learned: a window above 1.5 times the first); `patience` of them in a row are an event, and
            a fit that ends at a relapse, or that never learned in 10 or more windows and ends within 5% of its
            lowest window, is reported; a run that has not learned after 10 windows is an event too ("no
            progress": dead from its first steps). When the retry from the initial state does not learn either,
            the guard warns, stops judging progress and puts the cut rates back (a fine-tune of a trained model
            looks like this; a fit that never learned is an error only if the guard saw it break). `0` turns
            these rules off.
        learned_fraction: the fraction of the first window's loss the smoothed loss must reach to have learned.
        on_failure: what happens when the guard gives up (`max_rollbacks` used up) or the fit ends back near its
            untrained loss: `"raise"` a `DivergenceError`, or `"warn"` (after giving up, the weights of the last
            kept state are put back and the fit stops).

    Raises:
        ValueError: if an argument is out of range, or `keep_every_n_steps` is not a multiple of
            `check_every_n_steps`.
        DivergenceError: (during the fit, with `on_failure="raise"`) after `max_rollbacks` rollbacks, or when the
            fit ends with its loss back near its untrained level.
    """

    def __init__(
        self,
        check_every_n_steps: int = 10,
        keep_every_n_steps: int = 100,
        spike_factor: float = 1.5,
        patience: int = 2,
        smoothing: float = 0.8,
        level_memory: int = 20,
        rate_factor: float = 0.5,
        max_rollbacks: int = 5,
        keep_count: int = 1,
        stall_patience: int = 3,
        stall_fraction: float = 0.65,
        stall_min_delta: float = 0.01,
        rate_aware: bool = True,
        fall_ratio: float = 0.9,
        relapse_share: float = 0.25,
        learned_fraction: float = 0.9,
        on_failure: Literal["raise", "warn"] = "raise",
    ) -> None:
        super().__init__()
        self.check_every_n_steps = check_int(check_every_n_steps, "check_every_n_steps", what="optimizer steps")
        self.keep_every_n_steps = check_int(keep_every_n_steps, "keep_every_n_steps", what="optimizer steps")
        if self.keep_every_n_steps % self.check_every_n_steps:
            raise ValueError(
                f"Expected keep_every_n_steps to be a multiple of check_every_n_steps ({check_every_n_steps}), "
                f"but got {keep_every_n_steps!r}: a state is kept only at a check that found the loss clean."
            )
        self.spike_factor = check_number(spike_factor, "spike_factor", 1.0, low_open=True)
        self.patience = check_int(patience, "patience", what="checks")
        self.smoothing = check_number(smoothing, "smoothing", 0.0, 1.0, high_open=True)
        self.level_memory = check_int(level_memory, "level_memory", what="checks")
        self.rate_factor = check_number(rate_factor, "rate_factor", 0.0, 1.0, low_open=True, high_open=True)
        self.max_rollbacks = check_int(max_rollbacks, "max_rollbacks", minimum=0)
        self.keep_count = check_int(keep_count, "keep_count", what="kept states")
        self.stall_patience = check_int(stall_patience, "stall_patience", minimum=0, what="checks")
        self.stall_fraction = check_number(stall_fraction, "stall_fraction", 0.0, 1.0)
        self.stall_min_delta = check_number(stall_min_delta, "stall_min_delta", 0.0, 1.0, high_open=True)
        self.rate_aware = bool(rate_aware)
        self.fall_ratio = check_number(fall_ratio, "fall_ratio", 0.0, 1.0, low_open=True)
        self.relapse_share = check_number(relapse_share, "relapse_share", 0.0, 1.0, high_open=True)
        self.learned_fraction = check_number(learned_fraction, "learned_fraction", 0.0, 1.0, low_open=True,
                                             high_open=True)
        if on_failure not in ("raise", "warn"):
            raise ValueError(f"Expected on_failure to be 'raise' or 'warn', but got {on_failure!r}.")
        self.on_failure = on_failure
        self._monitor = LossMonitor(spike_factor, patience, smoothing, level_memory, self.stall_patience,
                                    self.stall_min_delta, self.rate_aware, self.fall_ratio, self.relapse_share,
                                    self.learned_fraction)
        self.events: list[dict[str, Any]] = []
        self.rate_scale = 1.0
        self._kept: list[dict[str, Any]] = []  # oldest first, each with its "step"
        self._loaded = False
        self._partial: tuple[list[float], int] = ([], 0)  # restored per-rank sums and count of the open window
        self._reset_runtime()

    def _reset_runtime(self) -> None:
        self._sum: torch.Tensor | None = None
        self._count = 0
        self._checked_step = -1
        self._schedules: list[ScheduleCallback] = []
        self._optimizers: list[torch.optim.Optimizer] = []
        self._handles: list[Any] = []
        self._amp = False
        self._window: torch.Tensor | None = None
        self._window_count = 0
        self._updates = self._seen_updates = 0
        self._last_step = -1
        self._warned_no_loss = False
        self._pending_sum = 0.0
        self._trainer: Any = None
        self._given_up = False
        self._initial: torch.Tensor | None = None  # the first step's loss, read with the first check
        self._take_initial = False

    @property
    def kept_step(self) -> int | None:
        """The step of the newest kept state (``None`` before the first keep)."""
        return self._kept[-1]["step"] if self._kept else None

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state.update(_sum=None, _window=None, _schedules=[], _optimizers=[], _handles=[], _trainer=None)
        return state

    # ------------------------------------------------------------------ fit start
    @override
    def on_fit_start(self, trainer: Any, pl_module: Any) -> None:
        self._handles = remove_hooks(self._handles)
        self._reset_runtime()
        if not self._loaded:
            self._kept = []  # a new fit: new optimizers, maybe new weights
        self._trainer = trainer
        self._optimizers = [unwrap_optimizer(o) for o in trainer.optimizers]
        self._schedules = [cb for cb in trainer.callbacks if isinstance(cb, ScheduleCallback)]
        undriven = [i for i in range(len(self._optimizers)) if not any(cb.drives(i) for cb in self._schedules)]
        if undriven:
            warn(
                f"DivergenceGuard: optimizer(s) {undriven} have no lightning_clr schedule callback, so a rollback "
                "restores their weights and state but cannot lower their rate. Drive them with CyclicLR, "
                "OneCycleLR, CosineRestartsLR or ScheduledLR to have their peak lowered too."
            )
        self._amp = getattr(trainer.precision_plugin, "scaler", None) is not None
        if self._amp:  # a step the GradScaler skips runs no step hook
            for optimizer in self._optimizers:
                self._handles.append(optimizer.register_step_post_hook(self._count_update))

    @override
    def on_fit_end(self, trainer: Any, pl_module: Any) -> None:
        self._handles = remove_hooks(self._handles)

    @override
    def on_train_end(self, trainer: Any, pl_module: Any) -> None:
        """A fit that ends back near its untrained loss after it had learned is never silent."""
        if self._given_up:
            return
        reason = self._monitor.at_end()
        if reason is None:
            return
        # a loss that never fell, in a run the guard never saw break, may be a trained model's: never an error alone
        fatal = reason != NO_PROGRESS or any(e["reason"] != NO_PROGRESS for e in self.events)
        message = dead_message(reason, int(trainer.global_step), self._monitor.prev_mean, self._monitor.first,
                               self._monitor.lowest, self._peaks(trainer), self.events, self.rate_factor, fatal)
        if fatal:
            self._fail(message)
        elif self._monitor.judging_progress:  # else the in-fit warning has said it
            warn(message)

    @override
    def teardown(self, trainer: Any, pl_module: Any, stage: str) -> None:
        if stage == "fit":
            self._handles = remove_hooks(self._handles)

    def _count_update(self, optimizer: Any, args: Any, kwargs: Any) -> None:
        self._updates += 1

    @override
    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        # Runs after Lightning restored a checkpoint's weights, and (whatever the order) an LRRangeTest puts
        # the state back exactly, so this is the state training starts from.
        step = int(trainer.global_step)
        self._checked_step = self._last_step = step
        (sums, self._count), self._partial = self._partial, ([], 0)
        rank = int(trainer.global_rank)
        self._pending_sum = sums[rank] if rank < len(sums) else 0.0
        self._loaded = False
        self._take_initial = step == 0 and self._monitor.initial is None  # a fit from its start, not a resume
        if not self._kept:
            self._keep(pl_module, step)

    # ------------------------------------------------------------------ the hot path
    def _new_sum(self, loss: torch.Tensor) -> torch.Tensor:
        self._sum = torch.full((), self._pending_sum, dtype=torch.float32, device=loss.device)
        self._pending_sum = 0.0
        return self._sum

    @override
    def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        loss = _loss_of(outputs)
        step = trainer.global_step
        if self._take_initial and loss is not None:
            self._initial, self._take_initial = loss.detach().float().clone(), False  # before any update
        if loss is None:
            if not self._warned_no_loss:
                self._warned_no_loss = True
                warn("DivergenceGuard: training_step returned no loss tensor; those batches are not watched.")
        elif self._amp:
            self._add_amp(loss.detach(), step)
        else:
            (self._sum if self._sum is not None else self._new_sum(loss)).add_(loss.detach())
            self._count += 1
        if step % self.check_every_n_steps == 0 and step != self._checked_step and not self._given_up:
            self._check(trainer, pl_module, step)

    def _add_amp(self, loss: torch.Tensor, step: int) -> None:
        """Under a GradScaler: hold the window's losses until its step shows whether it really updated."""
        if self._window is None:
            self._window = torch.zeros((), dtype=torch.float32, device=loss.device)
        self._window.add_(loss)
        self._window_count += 1
        if step == self._last_step:  # accumulating gradients: no optimizer step in this batch
            return
        self._last_step = step
        if self._updates != self._seen_updates:
            self._seen_updates = self._updates
            (self._sum if self._sum is not None else self._new_sum(loss)).add_(self._window)
            self._count += self._window_count
        self._window.zero_()
        self._window_count = 0

    # ------------------------------------------------------------------ a check
    def _check(self, trainer: Any, pl_module: Any, step: int) -> None:
        self._checked_step = step
        if self._sum is None:
            if not self._amp:
                return  # nothing watched in this window
            self._sum = torch.zeros((), dtype=torch.float32, device=pl_module.device)
        parts = [self._sum, torch.tensor(float(self._count), device=self._sum.device)]
        if self._initial is not None:  # the first check: the first step's loss travels with the window's sums
            parts.append(self._initial.to(self._sum.device))
        stats = torch.stack(parts)
        if trainer.world_size > 1:
            stats = trainer.strategy.reduce(stats, reduce_op="sum")
        total, count, *initial = stats.tolist()  # the one sync of the window
        if initial:
            self._monitor.initial, self._initial = initial[0] / trainer.world_size, None
        self._sum.zero_()
        self._count = 0
        mean = total / count if count else None
        rate = self._rate_now(step) if self.stall_patience or self.rate_aware or self.relapse_share else None
        event = self._monitor.observe(mean, rate)
        if event == NO_PROGRESS and self.events and self.events[-1]["reason"] == NO_PROGRESS:
            self._no_fall(step, mean)
        elif event is not None:
            self._rollback(trainer, pl_module, step, event, mean)
        elif step % self.keep_every_n_steps == 0 and self._monitor.close_interval():
            self._keep(pl_module, step)

    def _driven_schedules(self) -> Iterator[tuple[Any, int, Any]]:
        """``(callback, optimizer index, its learning-rate schedule)`` for each optimizer a schedule callback drives."""
        for callback in self._schedules:
            for index in range(len(self._optimizers)):
                schedule = callback.step_schedule(index) if callback.drives(index) else None
                if schedule is not None:
                    yield callback, index, schedule

    def _rate_now(self, step: int, ahead: bool = False) -> float:
        """The highest scheduled rate at ``step`` (at the current scales) or, ``ahead``, from ``step`` on."""
        rates = [0.0]
        for callback, _, schedule in self._driven_schedules():
            end = (getattr(schedule, "total_steps_or_none", None) or step + 1) if ahead else step + 1
            rates.append(highest(schedule, step, max(end, step + 1)) * callback.rate_scale)
        return max(rates)

    def _keep(self, pl_module: Any, step: int) -> None:
        kept = {"step": step, "rate": self._rate_now(step) if self.keep_count > 1 else 0.0,
                **take_copy(pl_module, self._optimizers), "monitor": self._monitor.state_dict()}
        if all_finite(kept):  # a loss can be finite while the update it fed made the weights inf
            self._kept = [*self._kept, kept][-self.keep_count:]

    # ------------------------------------------------------------------ a rollback
    def _rollback(self, trainer: Any, pl_module: Any, step: int, reason: str, mean: float | None) -> None:
        ahead = self._rate_now(step, ahead=True)  # the highest rate still to come, at the current scales
        aim = reason in (RELAPSE, NO_PROGRESS, BLOW_UP) or bool(self.events)  # it broke, or the first cut failed
        factor = rate_cut(reason, self.rate_factor, self.stall_fraction, self._monitor.best_rate, ahead,
                          self._monitor.low_rate, aim)
        scale = self.rate_scale * factor
        event: dict[str, Any] = {"step": step, "reason": reason, "loss": mean, "level": self._monitor.reference,
                                 "kept_step": self.kept_step, "rate_scale": scale}
        self.events.append(event)
        if len(self.events) > self.max_rollbacks or not self._kept:
            message = self._give_up_message(trainer)
            if self._kept and self.on_failure == "warn":  # stop at the last good state rather than the broken one
                restore_copy(self._kept[-1], pl_module, self._optimizers)
                trainer.should_stop = True
            self._given_up = True
            self._fail(message)
            return
        index = len(self._kept) - 1
        if index:  # several copies: the choice needs the peak the cut schedules have left
            index = newest_at_most(self._kept, ahead * factor)
        kept = self._kept[index]
        event["kept_step"] = kept["step"]
        del self._kept[index + 1:]  # the later copies come from the run that led to this event
        restore_copy(kept, pl_module, self._optimizers)  # the rate and momentum stay the current step's
        self.rate_scale = scale
        for callback in self._schedules:
            callback.set_rate_scale(callback.rate_scale * factor)
        self._monitor.after_rollback(kept.get("monitor"))  # absent from a version-1 checkpoint
        what = self._describe(event)
        warn(f"DivergenceGuard: {what}. Rollback {len(self.events)} of at most {self.max_rollbacks}.")
        if trainer.is_global_zero:
            metrics = {"guard/rollbacks": float(len(self.events)), "guard/rate_scale": self.rate_scale,
                       "guard/kept_step": float(self.kept_step or 0), "guard/event_step": float(step)}
            for logger in trainer.loggers:
                logger.log_metrics(metrics, step=step)

    def _no_fall(self, step: int, mean: float | None) -> None:
        """No progress again at the cut rate: not the rate's fault (or a model trained before the fit began). The
        guard stops judging progress and puts back the rates the "no progress" rollback cut."""
        self._monitor.judging_progress = False
        before = self.events[-2]["rate_scale"] if len(self.events) > 1 else 1.0
        factor = before / self.rate_scale
        self.rate_scale = before
        for callback in self._schedules:
            callback.set_rate_scale(callback.rate_scale * factor)
        warn(no_fall_message(step, mean, self._monitor.first, self.learned_fraction, self.rate_scale))

    def _describe(self, event: dict[str, Any]) -> str:
        return describe_event(event, self.check_every_n_steps, self.spike_factor, self.patience, self.stall_patience)

    def _peaks(self, trainer: Any) -> list[tuple[str, float, float]]:
        """``(name, rate scale, peak)`` of each driven schedule, for the messages."""
        return [(f"{type(callback).__name__} optimizer {index}", callback.rate_scale,
                 highest(schedule, 0, getattr(schedule, "total_steps_or_none", None) or int(trainer.global_step) + 1))
                for callback, index, schedule in self._driven_schedules()]

    def _give_up_message(self, trainer: Any) -> str:
        return give_up_message(self.events, [self._describe(e) for e in self.events[:-1]], self._peaks(trainer),
                               self.rate_factor, self.max_rollbacks)

    def _fail(self, message: str) -> None:
        """Raises ``DivergenceError(message)``, or warns with ``on_failure="warn"``."""
        if self.on_failure == "raise":
            raise DivergenceError(message)
        warn(message)

    # ------------------------------------------------------------------ checkpoints
    @override
    def state_dict(self) -> dict[str, Any]:
        trainer = self._trainer
        partial = self._sum if self._sum is not None else torch.zeros(())
        # Every rank saves a checkpoint (Lightning requires it), so under DDP gather each rank's open window:
        # the resumed ranks then reach the next check with exactly the uninterrupted sums.
        if trainer is not None and trainer.world_size > 1 and self._sum is not None:
            sums = trainer.strategy.all_gather(partial).reshape(-1).tolist()
        else:
            sums = [float(partial)]
        return {"version": _STATE_VERSION, "rate_scale": self.rate_scale, "events": [dict(e) for e in self.events],
                "kept": self._kept, "monitor": self._monitor.state_dict(),
                "partial_sums": sums, "partial_count": self._count}

    @override
    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.rate_scale = float(state_dict.get("rate_scale", 1.0))
        self.events = [dict(e) for e in state_dict.get("events", [])]
        self._kept = kept_copies(state_dict)
        self._monitor.load_state_dict(state_dict.get("monitor", {}))
        sums = [float(s) for s in state_dict.get("partial_sums", [])]
        self._partial = (sums, int(state_dict.get("partial_count", 0)))
        self._loaded = True
