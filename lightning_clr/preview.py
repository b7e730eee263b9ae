"""The numbers behind a schedule preview: values, cycle ends, first/last and min/max, as a table.

A preview needs no model, no data and no Trainer: a schedule is a pure function of the optimizer step, so
listing it over a run of ``steps`` optimizer steps shows exactly what training will apply. The figures of
:mod:`lightning_clr.plotting` and the ``lightning-clr preview`` command draw and print these numbers.

Example::

    from lightning_clr import CosineRestartsLR
    from lightning_clr.preview import format_table, preview_callback

    preview = preview_callback(CosineRestartsLR(max_lr=0.1, first_cycle=100, t_mul=2), steps=700)
    preview.cycle_ends  # (100, 300, 700)
    print(format_table([preview]))
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from lightning_clr._checks import check_int

__all__ = ["SchedulePreview", "format_table", "preview_callback", "preview_schedule"]


@dataclass(frozen=True)
class SchedulePreview:
    """A schedule listed over ``steps`` optimizer steps.

    Attributes:
        name: a label (the callback's or schedule's class name).
        steps: the run's length in optimizer steps.
        lr: the rate at each 0-based optimizer step ``0 .. steps - 1``.
        momentum: the momentum (or Adam ``betas[0]``) at each step, or ``None`` when it is not cycled.
        cycle_ends: the step counts ``n <= steps`` after which a cycle ends (a snapshot's position).
        steps_per_epoch: optimizer steps per epoch, if known (for an epoch axis).
    """

    name: str
    steps: int
    lr: tuple[float, ...]
    momentum: tuple[float, ...] | None
    cycle_ends: tuple[int, ...]
    steps_per_epoch: float | None = None

    @property
    def num_cycles(self) -> int:
        """Cycles that end within the run."""
        return len(self.cycle_ends)

    @property
    def ends_mid_cycle(self) -> bool:
        """Whether steps follow the last cycle end: the run stops inside a cycle.

        ``False`` when no cycle ends within the run (a ramp, a constant, or a run shorter than one cycle).
        """
        if not self.cycle_ends:
            return False
        return self.cycle_ends[-1] < self.steps

    @property
    def min_lr(self) -> float:
        return min(self.lr)

    @property
    def max_lr(self) -> float:
        return max(self.lr)


def _cycle_ends(schedule: Any, steps: int) -> tuple[int, ...]:
    method = getattr(schedule, "cycle_ends", None)
    return tuple(int(n) for n in method(steps)) if callable(method) else ()


def preview_schedule(
    schedule: Callable[[int], float],
    steps: int,
    momentum: Callable[[int], float] | None = None,
    name: str | None = None,
    steps_per_epoch: float | None = None,
) -> SchedulePreview:
    """Lists a schedule (any callable ``step -> value``) over ``steps`` optimizer steps.

    Args:
        schedule: the learning-rate schedule. Its cycle ends come from its `cycle_ends(steps)` method when
            it has one (every built-in schedule does); a plain function has none.
        steps: the run's length in optimizer steps.
        momentum: the momentum schedule, if the momentum is cycled.
        name: a label; the schedule's class name by default.
        steps_per_epoch: optimizer steps per epoch, for an epoch axis on the figure.

    Raises:
        ValueError: if ``steps`` is not a positive int.
    """
    steps = check_int(steps, "steps", 1, "optimizer steps")
    return SchedulePreview(
        name=name or type(schedule).__name__,
        steps=steps,
        lr=tuple(float(schedule(step)) for step in range(steps)),
        momentum=None if momentum is None else tuple(float(momentum(step)) for step in range(steps)),
        cycle_ends=_cycle_ends(schedule, steps),
        steps_per_epoch=steps_per_epoch,
    )


def preview_callback(
    callback: Any,
    steps: int,
    steps_per_epoch: float | None = None,
    name: str | None = None,
) -> SchedulePreview:
    """Lists the schedule a lightning_clr callback would apply in a run of ``steps`` optimizer steps.

    Lengths in percent, and ``OneCycleLR(total_steps=None)``, refer to that run; lengths in epochs need
    ``steps_per_epoch``. The preview is the one of param group 0 of the first optimizer it drives.

    Args:
        callback: a `ScheduleCallback` (`CyclicLR`, `OneCycleLR`, ...).
        steps: the run's length in optimizer steps.
        steps_per_epoch: optimizer steps per epoch (`batches / accumulate_grad_batches`).
        name: a label; the callback's class name by default.

    Raises:
        ValueError: if ``steps`` is not a positive int, a length needs ``steps_per_epoch`` and it is not given,
            or a bound is ``"auto"`` (it comes from an LR range test, which needs the model and data).
    """
    steps = check_int(steps, "steps", 1, "optimizer steps")
    lr, momentum = callback.schedules(steps_per_epoch=steps_per_epoch, total_steps=steps)[0]
    return preview_schedule(lr, steps, momentum=momentum, name=name or type(callback).__name__,
                            steps_per_epoch=steps_per_epoch)


def _number(value: float) -> str:
    if value == 0 or not math.isfinite(value):
        return f"{value:g}"
    return f"{value:.4g}" if 1e-3 <= abs(value) < 1e4 else f"{value:.3e}"


def _ends_text(preview: SchedulePreview, shown: int = 4) -> str:
    ends = preview.cycle_ends
    if not ends:
        return "-"
    text = ", ".join(str(n) for n in ends[:shown])
    return text + (f", ... ({len(ends)})" if len(ends) > shown else "")


def format_table(previews: Sequence[SchedulePreview]) -> str:
    """A plain-text table of each preview: length, cycles, cycle ends, first/last/min/max rate, momentum range.

    Args:
        previews: the previews, one row each.
    """
    header = ("schedule", "steps", "cycles", "cycle ends", "first lr", "last lr", "min lr", "max lr", "momentum")
    rows = [header]
    for p in previews:
        cycles = f"{p.num_cycles}" + (" + part" if p.ends_mid_cycle else "")
        momentum = "-" if p.momentum is None else f"{_number(min(p.momentum))}..{_number(max(p.momentum))}"
        rows.append((p.name, str(p.steps), cycles, _ends_text(p), _number(p.lr[0]), _number(p.lr[-1]),
                     _number(p.min_lr), _number(p.max_lr), momentum))
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)
