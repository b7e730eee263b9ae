"""Cosine decay with warm restarts (SGDR): cycles that may grow (or shrink) and peaks that may fall."""

from __future__ import annotations

import math
from dataclasses import dataclass

from lightning_clr._checks import check_int, check_number
from lightning_clr.schedules._base import ScheduleBase

__all__ = ["CosineRestartsSchedule"]


def _snap_to_step(value: float) -> float:
    """``value``, or the whole step it misses only through rounding.

    Rounding can put a whole-step cycle start a hair late (``21 * (0.1 - 1) / (0.1 - 1)`` is
    ``21.000000000000004``), which would leave that step at the end of the previous cycle.
    """
    nearest = round(value)
    return float(nearest) if abs(value - nearest) <= 1e-9 * max(1.0, abs(value)) else value


@dataclass(frozen=True)
class CosineRestartsSchedule(ScheduleBase):
    r"""Cosine decay with warm restarts (SGDR; Keras ``CosineDecayRestarts``).

    Cycle :math:`i` (0-based) starts at step :math:`s_i = F (m^i - 1) / (m - 1)` (:math:`s_i = F i` when
    :math:`m = 1`) and lasts :math:`T_i = F m^i` steps. With :math:`\tau = (t - s_i) / T_i`:

    .. math::
        v(t) = V \left( (1 - \alpha) \, \mu^i \, \tfrac{1}{2} (1 + \cos \pi \tau) + \alpha \right)

    Symbols: :math:`V` ``peak`` (Keras ``initial_learning_rate``), :math:`F` ``first_cycle``
    (``first_decay_steps``), :math:`m` ``t_mul``, :math:`\mu` ``m_mul``, :math:`\alpha` ``alpha`` (the floor
    as a fraction of :math:`V`). With :math:`\mu = 1` and an integer :math:`m` this is also torch's
    ``CosineAnnealingWarmRestarts(T_0=F, T_mult=m, eta_min=alpha * V)``. The cycle index is found in
    closed form and corrected against the exact cycle starts, so restarts never drift by a step through
    rounding.

    An optional linear warm-up of :math:`W` steps (``warmup_steps``) comes first, from :math:`\beta V`
    (``warmup_start``) towards the peak, and the cycles follow it (timm's ``warmup_t`` with
    ``warmup_prefix=True``): :math:`v(t) = V (\beta + (1 - \beta) \, t / W)` for :math:`t < W`, and the
    formula above at :math:`t - W` from then on, so the first cycle starts at its peak at step :math:`W`.
    Without it (:math:`W = 0`, the default) the values are Keras' and torch's, bit for bit.

    References:
        Loshchilov & Hutter, *SGDR: Stochastic Gradient Descent with Warm Restarts*, ICLR 2017.
        arXiv:1608.03983.
    """

    peak: float
    first_cycle: int
    t_mul: float = 1.0
    m_mul: float = 1.0
    alpha: float = 0.0
    warmup_steps: int = 0
    warmup_start: float = 0.0

    def __post_init__(self) -> None:
        for name in ("peak", "t_mul", "m_mul", "alpha"):
            check_number(getattr(self, name), name)
        check_int(self.first_cycle, "first_cycle", 1, "steps")
        check_number(self.t_mul, "t_mul", 0.0, low_open=True)
        check_number(self.m_mul, "m_mul", 0.0, 1.0, low_open=True, why="m_mul > 1 grows the peaks without bound")
        check_number(self.alpha, "alpha", 0.0, 1.0)
        check_int(self.warmup_steps, "warmup_steps", 0, "steps")
        check_number(self.warmup_start, "warmup_start", 0.0, 1.0)

    @property
    def _limit(self) -> float:
        """The step (counted from the end of the warm-up) where shrinking cycles (``t_mul < 1``) add up to their
        limit ``F / (1 - m)``, from which the floor holds; infinite for cycles that do not shrink."""
        return _snap_to_step(self.first_cycle / (1 - self.t_mul)) if self.t_mul < 1 else math.inf

    def cycle_start(self, index: int) -> float:
        """The step at which cycle ``index`` (0-based) begins (the first one, at the end of the warm-up)."""
        return self.warmup_steps + self._start(index)

    def _start(self, index: int) -> float:
        """The start of cycle ``index``, counted from the end of the warm-up."""
        if self.t_mul == 1:
            return float(self.first_cycle * index)
        return _snap_to_step(self.first_cycle * (self.t_mul**index - 1) / (self.t_mul - 1))

    def cycle_index(self, step: int) -> int:
        """The 0-based cycle that step ``step`` falls in (the warm-up counts as part of the first)."""
        return self._index(max(0, step - self.warmup_steps))

    def _index(self, step: int) -> int:
        """The cycle of ``step`` counted from the end of the warm-up (-1 beyond the limit of shrinking cycles)."""
        if self.t_mul == 1:
            return step // self.first_cycle
        if step >= self._limit:  # shrinking cycles (t_mul < 1) sum to F / (1 - m): past that, the final state
            return -1
        index = math.floor(math.log(1 + step / self.first_cycle * (self.t_mul - 1)) / math.log(self.t_mul))
        index = max(index, 0)
        while self._start(index + 1) <= step:
            index += 1
        while index > 0 and self._start(index) > step:
            index -= 1
        return index

    def __call__(self, step: int) -> float:
        if step < self.warmup_steps:
            return self.peak * (self.warmup_start + (1 - self.warmup_start) / self.warmup_steps * step)
        step -= self.warmup_steps
        index = self._index(step)
        if index < 0:  # beyond the limit of shrinking cycles: the floor
            return self.peak * self.alpha
        fraction = (step - self._start(index)) / (self.first_cycle * self.t_mul**index)
        cosine = 0.5 * self.m_mul**index * (1 + math.cos(math.pi * fraction))
        return self.peak * ((1 - self.alpha) * cosine + self.alpha)

    def cycle_ends(self, steps: int) -> list[int]:
        ends: list[int] = []
        index = 1
        while True:
            start = self._start(index)
            end = self.warmup_steps + start
            rounded = round(end)
            if rounded > steps:
                return ends
            # Not "stop once a rounded end repeats": a half step rounds to an end already listed (round half to
            # even), while a later start, the limit of shrinking cycles, can still be a whole step.
            if abs(end - rounded) < 1e-9 and (not ends or ends[-1] != rounded):
                ends.append(rounded)
            # Shrinking cycles approach their limit: from it on (or once a cycle is shorter than rounding can tell)
            # there is no restart left, also when the limit is not a whole step, which the test above never ends.
            if self.t_mul < 1 and (start >= self._limit or self.first_cycle * self.t_mul**index < 1e-9):
                return ends
            index += 1
