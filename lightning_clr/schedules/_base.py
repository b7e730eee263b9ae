"""The schedules' common ground: the :class:`Schedule` protocol and :class:`ScheduleBase`'s conveniences.

Pure Python: no torch, no Lightning.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

__all__ = ["Schedule", "ScheduleBase"]


@runtime_checkable
class Schedule(Protocol):
    """Anything that maps a 0-based optimizer step to a value."""

    def __call__(self, step: int) -> float: ...


class ScheduleBase:
    """Shared conveniences of the built-in schedules: listing values, cycle ends and plotting.

    A built-in schedule is a frozen dataclass: its fields are all it holds, and ``__call__(step)`` works the value
    out from them in closed form, so equal fields give equal values, and a pickle or copy is the same schedule.
    """

    #: The first step past the schedule's end, from which it holds its final value; ``None`` if endless.
    @property
    def total_steps_or_none(self) -> int | None:
        return None

    def __call__(self, step: int) -> float:  # pragma: no cover - abstract
        raise NotImplementedError

    def values(self, steps: int, start: int = 0) -> list[float]:
        """The values at steps ``start .. start + steps - 1``, one call each (for plots and previews).

        Example::

            >>> from lightning_clr.schedules import CyclicSchedule
            >>> CyclicSchedule(0.0, 1.0, 2).values(3, start=1)
            [0.5, 1.0, 0.5]
        """
        return [self(step) for step in range(start, start + steps)]

    def cycle_ends(self, steps: int) -> list[int]:
        """Optimizer-step counts ``n <= steps`` at which a cycle ends: after ``n`` steps the schedule
        restarts (or, for a finite schedule, ends). A snapshot taken after step count ``n`` sits at a
        cycle's minimum."""
        return []

    def plot(self, steps: int, **kwargs: Any) -> Any:
        """Draws the schedule over ``steps`` optimizer steps with matplotlib and returns the figure.

        Keyword arguments go to :func:`lightning_clr.plotting.plot_schedule`.
        """
        from lightning_clr.plotting import plot_schedule

        return plot_schedule(self, steps, **kwargs)
