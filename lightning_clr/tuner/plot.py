"""The figure of an LR range test: the loss against the rate on a log axis, with the suggested bounds.

Built with ``matplotlib.figure.Figure`` (not ``pyplot``): nothing opens on screen and no global figure is left
behind. matplotlib is an optional dependency (``pip install 'lightning-clr[plot]'``); only plotting needs it.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lightning_clr.tuner.result import RangeTestResult

from lightning_clr._figure import new_figure

__all__ = ["plot_range_test"]



def _loss_limits(result: RangeTestResult) -> tuple[float, float] | None:
    """Y limits that show the fall of the loss and not the whole explosion at the end."""
    values = result.analysis_losses
    if not values:
        return None
    low = min(min(values), min(result.losses))
    high = max(values)
    span = high - low
    if span <= 0:
        return None
    return low - 0.1 * span, high + 0.35 * span


_POLICY_STYLE = {"one_cycle": ("C3", "-", "OneCycleLR max_lr"), "cyclic": ("C2", "--", "CyclicLR max_lr"),
                 "cosine_restarts": ("C4", "-.", "CosineRestartsLR max_lr")}


def _mark_suggestions(ax: Any, result: RangeTestResult) -> None:
    """Every suggestion the test made: each policy's peak, CLR's band, and the landmarks they come from (the knee,
    the lowest loss, the divergence)."""
    cyclic = result.suggest("cyclic")
    if cyclic.base_lr is not None:
        ax.axvspan(cyclic.base_lr, cyclic.max_lr, color="C2", alpha=0.10,
                   label=f"CyclicLR base_lr..max_lr = {cyclic.base_lr:.3g}..{cyclic.max_lr:.3g}")
    for policy, (color, style, name) in _POLICY_STYLE.items():
        bounds = result.suggest(policy)
        ax.axvline(bounds.max_lr, color=color, linestyle=style, linewidth=1.3, label=f"{name} = {bounds.max_lr:.3g}")
    if result.knee_lr is not None:
        ax.axvline(result.knee_lr, color="0.55", linestyle=(0, (5, 2, 1, 2)), linewidth=1.0,
                   label=f"knee (90% of the fall) at lr = {result.knee_lr:.3g}")
    if result.min_loss_lr is not None:
        ax.axvline(result.min_loss_lr, color="0.4", linestyle=":", linewidth=1.0,
                   label=f"lowest smoothed loss at lr = {result.min_loss_lr:.3g}")
    if result.divergence_lr is not None:
        ax.axvline(result.divergence_lr, color="k", linestyle=(0, (1, 3)), linewidth=1.0,
                   label=f"diverged at lr = {result.divergence_lr:.3g}")


def plot_range_test(result: RangeTestResult, path: str | os.PathLike | None = None, ax: Any = None,
                    title: str | None = None) -> Any:
    """Draws ``result``'s loss against the rate and marks every suggestion it made.

    The grey line is the raw loss of each step, the blue one the curve the suggestion is read from
    (:func:`~lightning_clr.tuner.suggest.analysis_curve`); the y axis spans that curve, so the explosion at the end
    runs off the top.

    Args:
        result: a :class:`~lightning_clr.RangeTestResult`.
        path: also save the figure there (the format follows the extension, e.g. ``.png``).
        ax: a matplotlib axes to draw on; by default a new figure.
        title: the title; by default the test's cost (the suggestions are in the legend: a schedule may use
            other values than suggested, so the title does not repeat them).

    Returns:
        The matplotlib figure.

    Raises:
        ImportError: if matplotlib is not installed.
    """
    if ax is None:
        figure = new_figure((7.0, 4.2), "the LR range test")
        ax = figure.add_subplot()
    else:
        figure = ax.figure
    ax.plot(result.lrs, result.losses, color="0.7", linewidth=0.8, label="loss")
    ax.plot(result.lrs, result.analysis_losses, color="C0", linewidth=1.8, label="smoothed loss (centred)")
    if result.mode == "exponential":
        ax.set_xscale("log")
    if result.has_suggestion:
        _mark_suggestions(ax, result)
    limits = _loss_limits(result)
    if limits is not None:
        ax.set_ylim(*limits)
    ax.set_xlabel("learning rate" + (" (log scale)" if result.mode == "exponential" else ""))
    ax.set_ylabel("training loss")
    ax.grid(True, which="both", alpha=0.25)
    ax.legend(loc="upper left", fontsize="small")
    if title is None:
        title = (f"LR range test: {len(result.lrs)} steps, {result.seconds:.1f} s"
                 + (f", {result.optimizer} rules" if result.has_suggestion else ", no suggestion"))
    ax.set_title(title, fontsize="medium")
    if path is not None:
        figure.savefig(os.fspath(path), dpi=110)
    return figure
