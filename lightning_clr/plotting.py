"""Figures of schedules with matplotlib: the rate, the momentum where it cycles, and the cycle ends.

Figures are built with ``matplotlib.figure.Figure``, not ``pyplot``: nothing is opened on screen, no global
figure is left behind, and it works on a machine with no display. A notebook shows a returned figure; a
script saves it with ``path=`` or ``fig.savefig(...)``.

Example::

    from lightning_clr import CyclicLR

    CyclicLR(base_lr=1e-3, max_lr=0.1, step_size_up=500).plot(steps=3000, path="clr.png")
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Sequence
from typing import Any

from lightning_clr.preview import SchedulePreview, preview_schedule

__all__ = ["new_figure", "plot_previews", "plot_schedule"]

_LR_COLOR = "C0"
_MOMENTUM_COLOR = "C1"
_END_COLOR = "0.55"
# Below the axes, so that it never hides a curve.
_LEGEND = dict(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=4, fontsize="small", frameon=False)


def new_figure(figsize: tuple[float, float], what: str = "a figure") -> Any:
    """A constrained-layout ``Figure`` of ``figsize`` inches: the one place a matplotlib figure is made.

    Figures are ``matplotlib.figure.Figure`` objects (not ``pyplot``): nothing opens on screen and no global
    figure is left behind. matplotlib is an optional dependency, imported here on first use.

    Args:
        figsize: `(width, height)` in inches.
        what: what is being drawn, for the error message (e.g. `"the LR range test"`).

    Raises:
        ImportError: if matplotlib is not installed, saying how to install it.
    """
    try:
        from matplotlib.figure import Figure
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError(
            f"Plotting {what} needs matplotlib: pip install 'lightning-clr[plot]' (or matplotlib)."
        ) from error
    return Figure(figsize=figsize, layout="constrained")



def _scale(value: float, factor: float) -> float:
    return value * factor


def _right_edge(steps: int) -> float:
    """A little room right of the last step, so that a cycle end at the run's end shows."""
    return steps + max(0.5, 0.01 * steps)


def _held(values: Sequence[float]) -> tuple[list[int], list[float]]:
    """Points of a step plot: the value of step ``k`` holds over ``[k, k + 1)``, up to ``x = len(values)``."""
    return list(range(len(values) + 1)), [*values, values[-1]]


def _draw(ax: Any, preview: SchedulePreview, *, log_scale: bool = False, title: str | None = None,
          mark_cycle_ends: bool = True, color: str = _LR_COLOR, label: str | None = None,
          momentum: bool = True) -> None:
    """Draws one preview on ``ax``: the rate, the cycle ends and (on a twin axis) the momentum."""
    steps, lr = _held(preview.lr)
    ax.plot(steps, lr, color=color, linewidth=1.5, drawstyle="steps-post", label=label or "learning rate")
    if mark_cycle_ends:
        for i, end in enumerate(preview.cycle_ends):
            ax.axvline(end, color=_END_COLOR, linestyle="--", linewidth=0.8, label="cycle end" if i == 0 else None)
    ax.set_xlim(0, _right_edge(preview.steps))
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("learning rate")
    if log_scale:
        ax.set_yscale("log")
    ax.grid(True, alpha=0.3)
    if preview.steps_per_epoch:
        per_epoch = float(preview.steps_per_epoch)
        top = ax.secondary_xaxis("top", functions=(functools.partial(_scale, factor=1 / per_epoch),
                                                   functools.partial(_scale, factor=per_epoch)))
        top.set_xlabel("epoch")
    handles, labels = ax.get_legend_handles_labels()
    if momentum and preview.momentum is not None:
        twin = ax.twinx()
        twin.plot(steps, _held(preview.momentum)[1], color=_MOMENTUM_COLOR, linewidth=1.0, alpha=0.9,
                  drawstyle="steps-post", label="momentum")
        twin.set_ylabel("momentum", color=_MOMENTUM_COLOR)
        twin.tick_params(axis="y", colors=_MOMENTUM_COLOR)
        more_handles, more_labels = twin.get_legend_handles_labels()
        handles, labels = handles + more_handles, labels + more_labels
    ax.legend(handles, labels, **_LEGEND)
    if title:
        ax.set_title(title)


def plot_schedule(
    schedule: Callable[[int], float],
    steps: int,
    momentum: Callable[[int], float] | None = None,
    title: str | None = None,
    path: str | os.PathLike | None = None,
    ax: Any = None,
    *,
    steps_per_epoch: float | None = None,
    log_scale: bool = False,
    mark_cycle_ends: bool = True,
    figsize: tuple[float, float] = (8.0, 3.5),
    dpi: int = 120,
) -> Any:
    """Draws a schedule over ``steps`` optimizer steps and returns the matplotlib figure.

    The value of 0-based optimizer step ``k`` is drawn over ``[k, k + 1)`` (a step plot, exact at any
    scale); the momentum, when given, on a second y axis; each cycle end ``n`` (from the schedule's
    ``cycle_ends``) as a dashed line at ``x = n``: after ``n`` steps the cycle is over, and a snapshot taken
    there holds the model trained down to the cycle's minimum rate.

    Args:
        schedule: the learning-rate schedule (any callable `step -> value`).
        steps: how many optimizer steps to draw.
        momentum: the momentum schedule, drawn on a second axis, or `None`.
        title: the axes' title; the schedule's class name by default.
        path: if given, the figure is also saved there (PNG, SVG or PDF by the suffix).
        ax: draw into these axes instead of a new figure.
        steps_per_epoch: if given, an epoch axis is added on top.
        log_scale: a logarithmic rate axis.
        mark_cycle_ends: draw the cycle ends.
        figsize: the new figure's size in inches.
        dpi: the saved image's resolution.

    Returns:
        The ``matplotlib.figure.Figure`` (the one of ``ax`` if given).

    Raises:
        ValueError: if ``steps`` is not a positive int.
        ImportError: if matplotlib is not installed.
    """
    preview = preview_schedule(schedule, steps, momentum=momentum, steps_per_epoch=steps_per_epoch)
    figure = new_figure(figsize, "a schedule") if ax is None else ax.figure
    if ax is None:
        ax = figure.add_subplot()
    _draw(ax, preview, log_scale=log_scale, title=title or preview.name, mark_cycle_ends=mark_cycle_ends)
    if path is not None:
        figure.savefig(path, dpi=dpi)
    return figure


def plot_previews(
    previews: Sequence[SchedulePreview],
    path: str | os.PathLike | None = None,
    overlay: bool = False,
    *,
    log_scale: bool = False,
    dpi: int = 120,
) -> Any:
    """Draws several previews: one panel each (stacked), or all rates on one panel with ``overlay=True``.

    Args:
        previews: from `preview_callback` or `preview_schedule` (in `lightning_clr.preview`).
        path: if given, the figure is also saved there.
        overlay: draw every rate on one panel (momenta are then left out; cycle ends are drawn in the
            colour of their schedule).
        log_scale: a logarithmic rate axis.
        dpi: the saved image's resolution.

    Returns:
        The ``matplotlib.figure.Figure``.

    Raises:
        ValueError: if ``previews`` is empty.
        ImportError: if matplotlib is not installed.
    """
    if not previews:
        raise ValueError("Expected at least one schedule preview to plot, but got none.")
    if overlay or len(previews) == 1:
        figure = new_figure((8.0, 3.5), "a schedule")
        ax = figure.add_subplot()
        if len(previews) == 1:
            _draw(ax, previews[0], log_scale=log_scale, title=previews[0].name)
        else:
            for i, preview in enumerate(previews):
                color = f"C{i % 10}"
                ax.plot(*_held(preview.lr), color=color, linewidth=1.5, drawstyle="steps-post", label=preview.name)
                for end in preview.cycle_ends:
                    ax.axvline(end, color=color, linestyle="--", linewidth=0.7, alpha=0.6)
            ax.set_xlim(0, _right_edge(max(p.steps for p in previews)))
            ax.set_xlabel("optimizer step")
            ax.set_ylabel("learning rate")
            if log_scale:
                ax.set_yscale("log")
            ax.grid(True, alpha=0.3)
            ax.legend(**_LEGEND)
            ax.set_title("learning-rate schedules (dashed: cycle ends)")
    else:
        figure = new_figure((8.0, 2.8 * len(previews)), "schedules")
        axes = figure.subplots(len(previews), 1, squeeze=False)[:, 0]
        for ax, preview in zip(axes, previews, strict=False):
            _draw(ax, preview, log_scale=log_scale, title=preview.name)
    if path is not None:
        figure.savefig(path, dpi=dpi)
    return figure
