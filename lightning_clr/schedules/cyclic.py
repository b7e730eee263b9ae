"""Smith's cyclical learning rate (CLR): a triangle wave between two values, in three modes."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, Optional

from lightning_clr._checks import CYCLIC_MODES, check_choice, check_int, check_number
from lightning_clr.schedules._base import ScheduleBase

__all__ = ["CyclicSchedule"]

CyclicMode = Literal["triangular", "triangular2", "exp_range"]


@dataclass(frozen=True)
class CyclicSchedule(ScheduleBase):
    r"""Cyclical learning rate (Smith, 2017): a triangle wave between ``start`` and ``peak``.

    .. math::
        c = \lfloor 1 + t / (u + d) \rfloor, \quad x = 1 + t / (u + d) - c, \\
        s = x / r \text{ if } x \le r \text{ else } (x - 1) / (r - 1), \quad r = u / (u + d), \\
        v(t) = v_0 + (v_1 - v_0) \, s \, f

    with :math:`f = 1` (``triangular``), :math:`f = 2^{-(c - 1)}` (``triangular2``, halving each cycle)
    or :math:`f = \gamma^t` (``exp_range``). This is ``torch.optim.lr_scheduler.CyclicLR``'s formula,
    evaluated in the same order, so the values agree to the last bits.

    Symbols: :math:`t` the 0-based optimizer step, :math:`u` ``step_size_up``, :math:`d`
    ``step_size_down``, :math:`v_0` ``start``, :math:`v_1` ``peak``, :math:`c` the 1-based cycle.

    For a rate, ``start`` is ``base_lr`` and ``peak`` is ``max_lr``. For momentum, ``start`` is
    ``max_momentum`` and ``peak`` is ``base_momentum``. Cycles end (at ``start``) after every
    ``u + d`` steps.

    References:
        Smith, *Cyclical Learning Rates for Training Neural Networks*, WACV 2017. arXiv:1506.01186.
    """

    start: float
    peak: float
    step_size_up: int = 2000
    step_size_down: Optional[int] = None  # noqa: UP045 - LightningCLI shows this form
    mode: CyclicMode = "triangular"
    gamma: float = 1.0

    def __post_init__(self) -> None:
        check_number(self.start, "start")
        check_number(self.peak, "peak")
        check_int(self.step_size_up, "step_size_up", 1, "steps")
        if self.step_size_down is not None:
            check_int(self.step_size_down, "step_size_down", 1, "steps")
        check_choice(self.mode, "mode", CYCLIC_MODES)
        check_number(self.gamma, "gamma", 0.0, 1.0, low_open=True, why="gamma > 1 grows the amplitude without bound")

    @property
    def cycle_length(self) -> int:
        down = self.step_size_up if self.step_size_down is None else self.step_size_down
        return self.step_size_up + down

    def __call__(self, step: int) -> float:
        total = self.step_size_up + (self.step_size_up if self.step_size_down is None else self.step_size_down)
        ratio = self.step_size_up / total
        fraction = step / total  # torch divides twice; the quotient is the same float
        cycle = math.floor(1 + fraction)
        x = 1.0 + fraction - cycle
        scale = x / ratio if x <= ratio else (x - 1) / (ratio - 1)
        height = (self.peak - self.start) * scale
        if self.mode == "triangular":
            return self.start + height  # torch's height * 1.0, exactly
        if self.mode == "triangular2":  # torch: 1 / 2.0 ** (cycle - 1), equal, but OverflowError past cycle 1025
            return self.start + height * 0.5 ** (cycle - 1)
        return self.start + height * self.gamma**step  # exp_range

    def cycle_ends(self, steps: int) -> list[int]:
        return list(range(self.cycle_length, steps + 1, self.cycle_length))
