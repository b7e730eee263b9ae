"""The 1cycle policy: one rise and one long fall (optionally back down first), in torch's phases."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from lightning_clr._checks import ANNEAL_STRATEGIES, check_choice, check_int, check_number
from lightning_clr.schedules._base import ScheduleBase

__all__ = ["OneCycleSchedule"]

AnnealStrategy = Literal["cos", "linear"]


@dataclass(frozen=True)
class OneCycleSchedule(ScheduleBase):
    r"""The 1cycle policy (Smith & Topin, 2019): one rise and one long fall over ``total_steps``.

    Two phases (default): ``initial`` to ``peak`` over the first :math:`p T - 1` steps, then ``peak`` to
    ``final`` by step :math:`T - 1`. Three phases: ``initial`` to ``peak`` by :math:`p T - 1`, back to
    ``initial`` by :math:`2 p T - 2`, then to ``final`` by :math:`T - 1`. Within a phase running from
    value :math:`a` at step :math:`t_0` to :math:`b` at :math:`t_1`, with :math:`\pi_t = (t - t_0) / (t_1 - t_0)`:

    .. math::
        v_{\cos}(t) = b + \frac{a - b}{2} (1 + \cos \pi \pi_t), \qquad v_{\text{lin}}(t) = (b - a) \pi_t + a

    Symbols: :math:`T` ``total_steps``, :math:`p` ``pct_start``. These are
    ``torch.optim.lr_scheduler.OneCycleLR``'s phases and formulas. From step :math:`T - 1` on the value
    stays at ``final`` (torch raises "Tried to step X times" instead).

    For a rate: ``initial = max_lr / div_factor``, ``peak = max_lr``, ``final = initial / final_div_factor``.
    For momentum: ``initial = final = max_momentum``, ``peak = base_momentum``.

    References:
        Smith & Topin, *Super-Convergence: Very Fast Training of Neural Networks Using Large Learning
        Rates*, 2019. arXiv:1708.07120.
    """

    initial: float
    peak: float
    final: float
    total_steps: int
    pct_start: float = 0.3
    anneal_strategy: AnnealStrategy = "cos"
    three_phase: bool = False

    def __post_init__(self) -> None:
        for name in ("initial", "peak", "final", "pct_start"):
            check_number(getattr(self, name), name)
        check_int(self.total_steps, "total_steps", 1, "steps")
        check_number(self.pct_start, "pct_start", 0.0, 1.0, low_open=True, high_open=True)
        check_choice(self.anneal_strategy, "anneal_strategy", ANNEAL_STRATEGIES)

    @property
    def total_steps_or_none(self) -> int | None:
        return self.total_steps

    def _phases(self) -> tuple[tuple[float, float, float], ...]:
        """``(end_step, start_value, end_value)`` for each phase, as torch builds them."""
        rise_end = float(self.pct_start * self.total_steps) - 1
        if self.three_phase:
            return (
                (rise_end, self.initial, self.peak),
                (float(2 * self.pct_start * self.total_steps) - 2, self.peak, self.initial),
                (self.total_steps - 1, self.initial, self.final),
            )
        return ((rise_end, self.initial, self.peak), (self.total_steps - 1, self.peak, self.final))

    def __call__(self, step: int) -> float:
        step = min(step, self.total_steps - 1)
        # torch's phase search: the first phase whose end is >= step. The last ends at T - 1 >= step, so one
        # always matches; with pct_start > 0.5 three phases' ends are out of order and the second one matches.
        phases = self._phases()
        index = 0
        while index < len(phases) - 1 and step > phases[index][0]:
            index += 1
        end_step, start_value, end_value = phases[index]
        start_step = phases[index - 1][0] if index else 0.0
        span = end_step - start_step
        pct = (step - start_step) / span if span != 0 else 1.0
        if self.anneal_strategy == "cos":
            return end_value + (start_value - end_value) / 2.0 * (math.cos(math.pi * pct) + 1)
        return (end_value - start_value) * pct + start_value

    def cycle_ends(self, steps: int) -> list[int]:
        return [self.total_steps] if self.total_steps <= steps else []
