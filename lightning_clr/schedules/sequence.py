"""Schedules one after another (optax's ``join_schedules``), and a linear warm-up in front of any schedule."""

from __future__ import annotations

import bisect
import itertools
from dataclasses import dataclass

from lightning_clr._checks import check_int, check_number
from lightning_clr.schedules._base import Schedule, ScheduleBase
from lightning_clr.schedules.ramps import LinearRamp

__all__ = ["SequenceSchedule", "with_warmup"]


@dataclass(frozen=True)
class SequenceSchedule(ScheduleBase):
    r"""Schedules one after another: ``schedules[i]`` runs from step ``boundaries[i - 1]`` (0 for the first) up to
    ``boundaries[i]``, each counting its steps from its own start.

    .. math::
        v(t) = f_i(t - b_{i-1}) \quad \text{for } b_{i-1} \le t < b_i, \qquad b_{-1} = 0, \; b_{n-1} = \infty

    Symbols: :math:`t` the 0-based optimizer step, :math:`f_i` ``schedules[i]``, :math:`b_i` ``boundaries[i]``,
    :math:`n` the number of schedules. This is optax's ``join_schedules(schedules, boundaries)``: at a boundary
    the next schedule starts, at its own step 0. A part that ends before its boundary holds its last value up to
    it; the last part runs on, so the sequence ends where the last part ends (``total_steps_or_none``: the last
    boundary plus the last part's length, ``None`` if that part is endless).

    ``schedules`` and ``boundaries`` may be given as lists (as a LightningCLI config gives them); they are kept as
    tuples, so that a sequence is hashable and equal to another with the same parts.

    Example::

        >>> from lightning_clr.schedules import ConstantSchedule, LinearRamp
        >>> s = SequenceSchedule([LinearRamp(0.0, 1.0, 3), ConstantSchedule(0.5)], [3])
        >>> s.values(6)
        [0.0, 0.5, 1.0, 0.5, 0.5, 0.5]

    References:
        optax, ``optax.join_schedules`` (https://optax.readthedocs.io, "Optimizer Schedules").
    """

    schedules: tuple[Schedule, ...]
    boundaries: tuple[int, ...]

    def __post_init__(self) -> None:
        schedules, boundaries = self.schedules, self.boundaries
        if not isinstance(schedules, (list, tuple)) or not schedules:
            raise ValueError(f"Expected schedules to be a non-empty list of schedules, but got {schedules!r}.")
        for index, schedule in enumerate(schedules):
            if not callable(schedule):
                raise ValueError(f"Expected schedules[{index}] to be a schedule (a callable step -> value), but got "
                                 f"{schedule!r}.")
        if not isinstance(boundaries, (list, tuple)) or len(boundaries) != len(schedules) - 1:
            raise ValueError(f"Expected boundaries to be a list of {len(schedules) - 1} step(s) (one fewer than the "
                             f"schedules), but got {boundaries!r}.")
        for index, boundary in enumerate(boundaries):
            check_int(boundary, f"boundaries[{index}]", 0, "steps")
        if any(later <= earlier for earlier, later in itertools.pairwise(boundaries)):
            raise ValueError(f"Expected boundaries to be strictly increasing, but got {boundaries!r}.")
        # The fields themselves, as tuples: a list (from a config) would make the frozen value unhashable.
        object.__setattr__(self, "schedules", tuple(schedules))
        object.__setattr__(self, "boundaries", tuple(boundaries))

    @property
    def total_steps_or_none(self) -> int | None:
        last: int | None = getattr(self.schedules[-1], "total_steps_or_none", None)
        return None if last is None else self._start(len(self.schedules) - 1) + last

    def _start(self, index: int) -> int:
        """The step at which ``schedules[index]`` starts."""
        return self.boundaries[index - 1] if index else 0

    def __call__(self, step: int) -> float:
        index = bisect.bisect_right(self.boundaries, step)
        return self.schedules[index](step - self._start(index))

    def cycle_ends(self, steps: int) -> list[int]:
        """Each part's cycle ends within its span, shifted by its start.

        A boundary is listed only where the part before it ends a cycle there by its own ``cycle_ends`` (a
        ``OneCycleSchedule`` of the part's length, a cyclic part cut at a cycle's end), not where a part is
        merely cut: the end of a warm-up ramp is the top of the climb, no cycle's minimum.
        """
        ends: list[int] = []
        for index, schedule in enumerate(self.schedules):
            start = self._start(index)
            if start > steps:
                break
            horizon = steps - start
            if index < len(self.boundaries):
                horizon = min(horizon, self.boundaries[index] - start)
            ends_of = getattr(schedule, "cycle_ends", None)
            if ends_of is not None:
                ends += [start + end for end in ends_of(horizon) if end > 0]
        return sorted(set(ends))


def with_warmup(schedule: Schedule, warmup_steps: int, start: float = 0.0) -> SequenceSchedule:
    r"""``schedule`` after a linear warm-up of ``warmup_steps`` steps from ``start`` to ``schedule(0)``.

    .. math::
        v(t) = a + (f(0) - a) \, t / W \quad (t < W), \qquad v(t) = f(t - W) \quad (t \ge W)

    Symbols: :math:`f` ``schedule``, :math:`W` ``warmup_steps``, :math:`a` ``start``. Step 0 gives ``start``,
    and step :math:`W`, where ``schedule`` begins (at its own step 0), gives ``schedule(0)``, the end of the
    climb; a schedule's cycles (and cycle ends) come :math:`W` steps later. The result is
    ``SequenceSchedule((LinearRamp(start, schedule(0), W + 1), schedule), (W,))``: the ramp reaches its end one
    step after the last warm-up step, where ``schedule`` takes over.

    Example::

        >>> from lightning_clr.schedules import CyclicSchedule
        >>> with_warmup(CyclicSchedule(0.5, 1.0, 2), 4).values(9)
        [0.0, 0.125, 0.25, 0.375, 0.5, 0.75, 1.0, 0.75, 0.5]
    """
    if not callable(schedule):
        raise ValueError(f"Expected schedule to be a schedule (a callable step -> value), but got {schedule!r}.")
    check_int(warmup_steps, "warmup_steps", 1, "steps")
    check_number(start, "start")
    ramp = LinearRamp(start, float(schedule(0)), warmup_steps + 1)
    return SequenceSchedule((ramp, schedule), (warmup_steps,))
