"""The plain shapes: a constant, and linear and exponential ramps that hold their end (the LR range test
sweeps with them)."""

from __future__ import annotations

from dataclasses import dataclass

from lightning_clr._checks import check_int, check_number
from lightning_clr.schedules._base import ScheduleBase

__all__ = ["ConstantSchedule", "ExponentialRamp", "LinearRamp"]


@dataclass(frozen=True)
class ConstantSchedule(ScheduleBase):
    """The same value at every step."""

    value: float

    def __post_init__(self) -> None:
        check_number(self.value, "value")

    def __call__(self, step: int) -> float:
        return self.value


@dataclass(frozen=True)
class LinearRamp(ScheduleBase):
    r"""From ``start`` at step 0 to ``end`` at step :math:`n - 1` in equal increments, then ``end``.

    .. math:: v(t) = a + (b - a) \min(t, n - 1) / (n - 1)
    """

    start: float
    end: float
    num_steps: int

    def __post_init__(self) -> None:
        check_number(self.start, "start")
        check_number(self.end, "end")
        check_int(self.num_steps, "num_steps", 1, "steps")

    @property
    def total_steps_or_none(self) -> int | None:
        return self.num_steps

    def __call__(self, step: int) -> float:
        last = self.num_steps - 1
        if step >= last:  # exactly ``end``: the formula can miss it by an ulp
            return self.end
        return self.start + (self.end - self.start) * step / last


@dataclass(frozen=True)
class ExponentialRamp(ScheduleBase):
    r"""From ``start`` at step 0 to ``end`` at step :math:`n - 1` in equal ratios, then ``end``
    (the LR range test's usual sweep).

    .. math:: v(t) = a (b / a)^{\min(t, n - 1) / (n - 1)}
    """

    start: float
    end: float
    num_steps: int

    def __post_init__(self) -> None:
        check_number(self.start, "start")
        check_number(self.end, "end")
        if self.start <= 0 or self.end <= 0:
            raise ValueError(f"Expected start > 0 and end > 0, but got start={self.start!r}, end={self.end!r}.")
        check_int(self.num_steps, "num_steps", 1, "steps")

    @property
    def total_steps_or_none(self) -> int | None:
        return self.num_steps

    def __call__(self, step: int) -> float:
        last = self.num_steps - 1
        if step >= last:  # exactly ``end``: the formula can miss it by an ulp
            return self.end
        return self.start * (self.end / self.start) ** (step / last)
