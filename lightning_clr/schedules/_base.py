"""The schedules' common ground: the :class:`Schedule` protocol, :class:`ScheduleBase`'s conveniences, and the
machinery that works a frozen schedule's step-independent constants out once (:class:`_Precomputed`).

Pure Python: no torch, no Lightning.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any, Protocol, runtime_checkable

__all__ = ["Schedule", "ScheduleBase"]


@runtime_checkable
class Schedule(Protocol):
    """Anything that maps a 0-based optimizer step to a value."""

    def __call__(self, step: int) -> float: ...


class ScheduleBase:
    """Shared conveniences of the built-in schedules: listing values, cycle ends and plotting."""

    #: The first step past the schedule's end, from which it holds its final value; ``None`` if endless.
    @property
    def total_steps_or_none(self) -> int | None:
        return None

    def __call__(self, step: int) -> float:  # pragma: no cover - abstract
        raise NotImplementedError

    def values(self, steps: int, start: int = 0) -> list[float]:
        """The values at steps ``start .. start + steps - 1``: the floats ``self(step)`` gives, bit for bit.

        The built-in schedules work them out a phase (``OneCycleSchedule``) or a cycle (``CosineRestartsSchedule``,
        ``CyclicSchedule``) at a time, about 1.5-2.5x faster than calls one at a time; the callbacks fill their
        rate tables with it.

        Example::

            >>> from lightning_clr.schedules import CyclicSchedule
            >>> CyclicSchedule(0.0, 1.0, 2).values(3, start=1)
            [0.5, 1.0, 0.5]
        """
        return list(map(self.__call__, range(start, start + steps)))

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


class _Precomputed:
    """A frozen schedule with step-independent constants worked out once, in :meth:`_precompute` (called
    from ``__post_init__``). They live in ``__dict__`` beside the fields, but are no fields: equality and
    ``repr`` ignore them, and a pickle (or copy) holds the fields only and works them out again."""

    # The constants, by name (each schedule sets those it uses); declared here, outside the dataclasses, so
    # that they are no fields.
    _total: int
    _ratio: float
    _ratio_down: float
    _amplitude: float
    _mode: int
    _table: tuple[tuple[float, float, float, float, float, float], ...]
    _cos: bool
    _last: int
    _limit: float
    _log_t_mul: float
    _floor: float
    _cycle: tuple[int, float, float, float, float]
    _delta: float

    def _precompute(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _cache(self, **values: Any) -> None:
        for name, value in values.items():
            object.__setattr__(self, name, value)

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return type(self), tuple(getattr(self, f.name) for f in fields(self))  # type: ignore[arg-type]


def _snap_to_step(value: float) -> float:
    """``value``, or the whole step it misses only through rounding.

    Rounding can put a whole-step cycle start a hair late (``21 * (0.1 - 1) / (0.1 - 1)`` is
    ``21.000000000000004``), which would leave that step at the end of the previous cycle.
    """
    nearest = round(value)
    return float(nearest) if abs(value - nearest) <= 1e-9 * max(1.0, abs(value)) else value
