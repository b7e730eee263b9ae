"""``CyclicLR``: Leslie Smith's cyclical learning rates as a Lightning callback."""

from __future__ import annotations

from typing import Any, Literal, Union

from lightning_clr._checks import AUTO, CYCLIC_MODES, check_bound, check_choice, check_momentum_bounds, check_number
from lightning_clr.callbacks.base import ScheduleCallback
from lightning_clr.callbacks.context import FitContext, GroupSchedules, OptimizerIndices, per_group
from lightning_clr.lengths import parse_length, parse_optional_length
from lightning_clr.schedules import CyclicSchedule, Schedule, with_warmup

__all__ = ["CyclicLR"]

Bound = Union[float, list[float], Literal["auto"]]  # noqa: UP007 - LightningCLI shows this form


def _check_max_above_base(base_lr: Any, max_lr: Any) -> None:
    """``max_lr > base_lr`` in every param group (lists are per group; a single value serves every group)."""
    lists = [v for v in (base_lr, max_lr) if isinstance(v, (list, tuple))]
    n = max((len(v) for v in lists), default=1)
    if len(lists) == 2 and len(base_lr) != len(max_lr):
        raise ValueError(f"Expected base_lr and max_lr to have one value per param group each, but got "
                         f"{len(base_lr)} and {len(max_lr)} values: base_lr={base_lr!r}, max_lr={max_lr!r}.")
    bases = per_group(base_lr, n, "base_lr", "max_lr's list")
    maxes = per_group(max_lr, n, "max_lr", "base_lr's list")
    for index, (b, m) in enumerate(zip(bases, maxes, strict=False)):
        if not m > b:
            where = f" in param group {index}" if lists else ""
            raise ValueError(f"Expected max_lr > base_lr{where}, but got base_lr={b!r}, max_lr={m!r}"
                             + (f" (base_lr={base_lr!r}, max_lr={max_lr!r})." if lists else "."))


class CyclicLR(ScheduleCallback):
    r"""Cycles the learning rate between `base_lr` and `max_lr` (Smith, 2017), set at every optimizer step.

    The rate at optimizer step :math:`t` is :class:`~lightning_clr.schedules.CyclicSchedule`'s, which equals
    ``torch.optim.lr_scheduler.CyclicLR`` stepped once after every optimizer step. When ``cycle_momentum``
    is on, the momentum (SGD, RMSprop) or Adam's ``betas[0]`` moves the other way, from ``max_momentum``
    down to ``base_momentum`` as the rate rises.

    Example::

        trainer = Trainer(callbacks=[CyclicLR(base_lr=1e-3, max_lr=1e-1, step_size_up="2 epochs")])

    Args:
        base_lr: the lower bound (the rate at the start of each cycle); a float, a list with one per
            param group, or `"auto"` to take it from the Trainer's `LRRangeTest`.
        max_lr: the upper bound; as `base_lr`.
        step_size_up: steps from `base_lr` to `max_lr`: an int, `"N steps"`, `"N epochs"`, `"P%"`
            of the fit, or `"auto"` (the range test's suggestion).
        step_size_down: steps back down; `None` means `step_size_up`.
        mode: `"triangular"` (constant amplitude), `"triangular2"` (amplitude halves every cycle) or
            `"exp_range"` (amplitude scaled by `gamma ** step`).
        gamma: the decay of `"exp_range"`.
        cycle_momentum: cycle the momentum inversely to the rate.
        base_momentum: the momentum at the rate's peak.
        max_momentum: the momentum at the rate's floor.
        optimizers: indices of the optimizers to drive; `None` drives all. Two schedule callbacks on one
            Trainer (two of this class, too) need disjoint `optimizers=[...]`.
        count_skipped_steps: whether AMP steps skipped by the GradScaler advance the schedule.
        log_momentum: also log the momentum when it is cycled.
        logging_name: prefix of the logged names (`lr-clr-SGD`).
        warmup: a linear warm-up before the first cycle: `0` (none, the default: torch's schedule) or a length
            as for `step_size_up`; the rate rises from `warmup_start * base_lr` to `base_lr`, the momentum holds
            `max_momentum`, and the cycles follow it.
        warmup_start: the warm-up's first rate as a fraction of `base_lr`, in [0, 1].

    Raises:
        ValueError: `base_lr` negative, `max_lr <= base_lr`, a bad length, unknown `mode`,
            `gamma` outside (0, 1] or momentum bounds outside `[0, 1)`.
    """

    _FINGERPRINTED_WHEN_SET = ("warmup", "warmup_start")  # added later: older checkpoints match without them

    def __init__(
        self,
        base_lr: Bound,
        max_lr: Bound,
        step_size_up: Union[int, float, str] = 2000,  # noqa: UP007 - LightningCLI shows this form
        step_size_down: Union[int, float, str, None] = None,  # noqa: UP007
        mode: Literal["triangular", "triangular2", "exp_range"] = "triangular",
        gamma: float = 1.0,
        cycle_momentum: bool = True,
        base_momentum: float = 0.8,
        max_momentum: float = 0.9,
        optimizers: OptimizerIndices = None,
        count_skipped_steps: bool = True,
        log_momentum: bool = True,
        logging_name: str = "lr-clr",
        warmup: Union[int, float, str] = 0,  # noqa: UP007
        warmup_start: float = 0.0,
    ) -> None:
        super().__init__(optimizers, count_skipped_steps, log_momentum, logging_name)
        check_bound(base_lr, "base_lr", allow_auto=True)
        check_bound(max_lr, "max_lr", allow_auto=True, positive=True)
        if AUTO not in (base_lr, max_lr):
            _check_max_above_base(base_lr, max_lr)
        self._step_size_up = None if step_size_up == AUTO else parse_length(step_size_up, "step_size_up")
        self._step_size_down = None if step_size_down is None else parse_length(step_size_down, "step_size_down")
        check_choice(mode, "mode", CYCLIC_MODES)
        check_number(gamma, "gamma", 0.0, 1.0, low_open=True, why="gamma > 1 grows the amplitude without bound")
        if cycle_momentum:
            check_momentum_bounds(base_momentum, max_momentum)
        self._warmup = parse_optional_length(warmup, "warmup")
        check_number(warmup_start, "warmup_start", 0.0, 1.0)
        self.base_lr = base_lr
        self.max_lr = max_lr
        self.step_size_up = step_size_up
        self.step_size_down = step_size_down
        self.mode = mode
        self.gamma = float(gamma)
        self.cycle_momentum = bool(cycle_momentum)
        self.base_momentum = float(base_momentum)
        self.max_momentum = float(max_momentum)
        self.warmup = warmup
        self.warmup_start = float(warmup_start)

    def _needs_range_test(self) -> bool:
        return AUTO in (self.base_lr, self.max_lr, self.step_size_up)

    def _schedules_for(self, context: FitContext, num_groups: int, optimizer_name: str) -> GroupSchedules:
        base_lr, max_lr = self.base_lr, self.max_lr
        up: int | None = (None if self._step_size_up is None
                             else context.resolve(self._step_size_up, "step_size_up", self.step_size_up))
        if self._needs_range_test():
            result = self._range_test_result(context).for_policy("cyclic")
            base_lr = result.base_lr if base_lr == AUTO else base_lr
            max_lr = result.max_lr if max_lr == AUTO else max_lr
            if up is None and result.step_size_up is None:
                raise ValueError(
                    "CyclicLR(step_size_up='auto') takes a number of epochs from the range test, but the epoch "
                    "length is unknown (a train loader without __len__). Give step_size_up in steps."
                )
            up = int(result.step_size_up) if up is None else up
            self._resolved = {k: v for k, v in (("base_lr", base_lr), ("max_lr", max_lr), ("step_size_up", up))
                              if getattr(self, k) == AUTO}
        if up is None:  # pragma: no cover - "auto" is the only way to leave it unset, and was resolved above
            raise ValueError("CyclicLR: step_size_up is unknown.")
        down = (None if self._step_size_down is None
                else context.resolve(self._step_size_down, "step_size_down", self.step_size_down))
        bases = per_group(base_lr, num_groups, "base_lr", optimizer_name)
        maxes = per_group(max_lr, num_groups, "max_lr", optimizer_name)
        warmup = 0 if self._warmup is None else context.resolve(self._warmup, "warmup", self.warmup)
        momentum: Schedule | None = None
        if self.cycle_momentum:
            momentum = CyclicSchedule(self.max_momentum, self.base_momentum, up, down, self.mode, self.gamma)
            momentum = with_warmup(momentum, warmup, momentum(0)) if warmup else momentum
        schedules: GroupSchedules = []
        for index, (b, m) in enumerate(zip(bases, maxes, strict=False)):
            if not m > b:
                where = f" in param group {index} of {optimizer_name}" if num_groups > 1 else ""
                raise ValueError(f"Expected max_lr > base_lr{where}, but got base_lr={b!r}, max_lr={m!r}.")
            lr: Schedule = CyclicSchedule(float(b), float(m), up, down, self.mode, self.gamma)
            schedules.append((with_warmup(lr, warmup, self.warmup_start * b) if warmup else lr, momentum))
        return schedules
