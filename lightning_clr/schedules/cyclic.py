"""Smith's cyclical learning rate (CLR): a triangle wave between two values, in three modes."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, Optional

from lightning_clr._checks import CYCLIC_MODES, check_choice, check_int, check_number
from lightning_clr.schedules._base import ScheduleBase, _Precomputed

_floor = math.floor  # a module global: a step's evaluation looks up no attribute of math

__all__ = ["CyclicSchedule"]


def _rise_end(total: int, ratio: float, cycle: int, lo: int, hi: int, guess: int) -> int:
    """The first step of ``lo .. hi - 1`` (one cycle) where ``__call__``'s ``x <= r`` fails (``hi`` if none), found
    from ``guess`` (the exact-arithmetic one, start + u + 1): ``x`` grows with the step within a cycle, so the
    steps of the rise come first, and rounding moves the cut by a step at most from the guess."""
    mid = min(max(guess, lo), hi)
    while mid > lo and 1.0 + (mid - 1) / total - cycle > ratio:
        mid -= 1
    while mid < hi and 1.0 + mid / total - cycle <= ratio:
        mid += 1
    return mid

CyclicMode = Literal["triangular", "triangular2", "exp_range"]


@dataclass(frozen=True)
class CyclicSchedule(_Precomputed, ScheduleBase):
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
        self._precompute()

    def _precompute(self) -> None:
        total = self.cycle_length
        ratio = self.step_size_up / total
        self._cache(_total=total, _ratio=ratio, _ratio_down=ratio - 1, _amplitude=self.peak - self.start,
                    _mode=CYCLIC_MODES.index(self.mode))

    @property
    def cycle_length(self) -> int:
        down = self.step_size_up if self.step_size_down is None else self.step_size_down
        return self.step_size_up + down

    def __call__(self, step: int) -> float:
        ratio = self._ratio
        fraction = step / self._total  # torch divides twice; the quotient is the same float
        cycle = _floor(1 + fraction)
        x = 1.0 + fraction - cycle
        scale = x / ratio if x <= ratio else (x - 1) / self._ratio_down
        height = self._amplitude * scale
        mode = self._mode
        if mode == 0:  # triangular
            return self.start + height  # height * 1.0, exactly
        if mode == 1:  # triangular2; torch: 1 / 2.0 ** (cycle - 1), equal, but OverflowError past cycle 1025
            return self.start + height * 0.5 ** (cycle - 1)
        return self.start + height * self.gamma**step  # exp_range

    def values(self, steps: int, start: int = 0) -> list[float]:
        # __call__'s arithmetic a cycle at a time (the cycle number and triangular2's factor read once), cut where
        # __call__'s floor would move; within a cycle, one list comprehension for the rise (x <= r) and one for the
        # fall, each with __call__'s operations in __call__'s order, so the floats are the same.
        total, ratio, ratio_down, amplitude = self._total, self._ratio, self._ratio_down, self._amplitude
        base, mode, gamma = self.start, self._mode, self.gamma
        out: list[float] = []
        stop = start + steps
        lo = start
        while lo < stop:
            cycle = _floor(1 + lo / total)
            hi = min(stop, cycle * total)  # step cycle * total begins the next cycle, exactly
            if hi <= lo or _floor(1 + (hi - 1) / total) != cycle:  # rounding at astronomic steps: one step
                hi = lo + 1
            mid = _rise_end(total, ratio, cycle, lo, hi, (cycle - 1) * total + self.step_size_up + 1)
            if mode == 0:
                out += [base + amplitude * ((1.0 + s / total - cycle) / ratio) for s in range(lo, mid)]
                out += [base + amplitude * ((1.0 + s / total - cycle - 1) / ratio_down) for s in range(mid, hi)]
            elif mode == 1:
                f = 0.5 ** (cycle - 1)
                out += [base + amplitude * ((1.0 + s / total - cycle) / ratio) * f for s in range(lo, mid)]
                out += [base + amplitude * ((1.0 + s / total - cycle - 1) / ratio_down) * f for s in range(mid, hi)]
            else:
                out += [base + amplitude * ((1.0 + s / total - cycle) / ratio) * gamma**s for s in range(lo, mid)]
                out += [base + amplitude * ((1.0 + s / total - cycle - 1) / ratio_down) * gamma**s
                        for s in range(mid, hi)]
            lo = hi
        return out

    def cycle_ends(self, steps: int) -> list[int]:
        return list(range(self.cycle_length, steps + 1, self.cycle_length))
