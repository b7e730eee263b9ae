"""What an LR range test recorded, and the bounds it suggests: :class:`RangeTestResult`, and its figure.

Pure Python (no torch): a result is plain data that pickles, travels through ``strategy.broadcast``, is saved in
a checkpoint as a plain dict and can be rebuilt offline from a saved curve. Its figure (:func:`plot_range_test`,
``result.plot()``) is a ``matplotlib.figure.Figure`` (not ``pyplot``: nothing opens on screen, no global figure is
left behind); matplotlib is an optional dependency (``pip install 'lightning-clr[plot]'``), imported on first use.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from lightning_clr.plotting import new_figure
from lightning_clr.tuner.curve import analysis_curve, smooth_losses
from lightning_clr.tuner.suggest import (
    POLICIES,
    PolicyBounds,
    RangeTestError,
    Rule,
    fitted_step_size,
    read_curve,
    suggest,
)

__all__ = ["RangeTestResult", "build_result", "plot_range_test"]


@dataclass(frozen=True, repr=False)
class RangeTestResult:
    """What an LR range test recorded, and the bounds it suggests.

    Its ``repr`` is a summary (steps, the rates' span, the suggestions, why the test ended); the curve itself is
    in :attr:`lrs` and :attr:`losses`, and :meth:`to_dict` has every field.

    Attributes:
        lrs: the rate of each recorded optimizer step.
        losses: the training loss of each step (the mean of its accumulated batches, averaged over ranks).
        smoothed_losses: the bias-corrected moving average of ``losses`` (the curve divergence is checked on).
        base_lr: CLR's suggested lower bound (``suggestions["cyclic"]``), or ``None`` if the curve gave no
            suggestion.
        max_lr: 1cycle's suggested peak (``suggestions["one_cycle"]``), or ``None``; each policy's own bounds
            are in :attr:`suggestions` (:meth:`suggest`, :meth:`for_policy`).
        step_size_up: CLR's suggested half cycle in optimizer steps: about ``step_size_epochs`` epochs, fitted so
            that the run ends at the end of a cycle (:func:`~lightning_clr.tuner.suggest.fitted_step_size`), or
            ``None`` if the epoch length is unknown.
        steps_per_epoch: optimizer steps in one epoch of the real training, or ``None``.
        stopped_early: whether the test ended before ``num_steps``.
        reason: why the test ended.
        min_loss_lr: the rate at the lowest point of the analysis curve, or ``None``.
        steepest_lr: the rate of the steepest fall of the analysis curve, or ``None``.
        suggestion_error: why there is no suggestion, or ``None``.
        note: a remark on the curve, e.g. that the loss was still falling at the end or that the bounds come
            from the conservative fallback rule, or ``None``.
        mode: ``"exponential"`` or ``"linear"``.
        smoothing: the moving average's weight of a new loss.
        suggestions: per policy (``"one_cycle"``, ``"cyclic"``, ``"cosine_restarts"``), its bounds as a plain
            dict (``max_lr``, ``base_lr``, ``rule``).
        optimizer: ``"sgd"`` or ``"adam"`` (an optimizer with ``betas``), which the rules may depend on.
        divergence_lr: the rate where the loss diverged, or ``None``.
        knee_lr: the first rate where the analysis curve made 90% of its fall (the rules' landmark), or ``None``.
        total_steps: optimizer steps of the real training, or ``None`` if unknown.
        seconds: how long the test took.
    """

    lrs: list[float]
    losses: list[float]
    smoothed_losses: list[float]
    base_lr: float | None
    max_lr: float | None
    step_size_up: int | None
    steps_per_epoch: int | None
    stopped_early: bool
    reason: str
    min_loss_lr: float | None = None
    steepest_lr: float | None = None
    suggestion_error: str | None = None
    note: str | None = None
    mode: str = "exponential"
    smoothing: float = 0.05
    suggestions: dict[str, dict[str, Any]] = field(default_factory=dict)
    optimizer: str = "sgd"
    divergence_lr: float | None = None
    total_steps: int | None = None
    knee_lr: float | None = None
    seconds: float = field(default=0.0, compare=False)

    def __repr__(self) -> str:
        span = f"lr {self.lrs[0]:.3g}..{self.lrs[-1]:.3g}" if self.lrs else "no lr"
        parts = [f"{len(self.lrs)} steps", span]
        if self.has_suggestion:
            for policy in POLICIES:
                bounds = self.suggest(policy)
                low = "" if bounds.base_lr is None else f"base_lr={bounds.base_lr:.3g}, "
                parts.append(f"{policy}: {low}max_lr={bounds.max_lr:.3g}")
            if self.step_size_up is not None:
                parts.append(f"step_size_up={self.step_size_up}")
        else:
            parts.append(f"no suggestion: {self.suggestion_error}")
        parts.append(f"ended: {self.reason}")
        if self.note:
            parts.append(f"note: {self.note}")
        return f"RangeTestResult({'; '.join(parts)})"

    @property
    def analysis_losses(self) -> list[float]:
        """The curve the suggestion is read from (:func:`~lightning_clr.tuner.curve.analysis_curve`)."""
        return analysis_curve(self.losses, self.smoothing)

    @property
    def has_suggestion(self) -> bool:
        """Whether the curve gave ``base_lr`` and ``max_lr``."""
        return self.base_lr is not None and self.max_lr is not None

    def require_suggestion(self) -> RangeTestResult:
        """Returns this result if it has a suggestion.

        Raises:
            RangeTestError: if it has none, with the reason.
        """
        if not self.has_suggestion:
            raise RangeTestError(f"The LR range test gave no suggestion: {self.suggestion_error} "
                                 f"(the test ended: {self.reason}).", self)
        return self

    def suggest(self, policy: str) -> PolicyBounds:
        """The bounds suggested for ``policy`` (``"one_cycle"``, ``"cyclic"`` or ``"cosine_restarts"``).

        Raises:
            RangeTestError: if the curve gave no suggestion.
            ValueError: an unknown policy.
        """
        if policy not in POLICIES:
            raise ValueError(f"Expected policy to be one of {POLICIES}, but got {policy!r}.")
        self.require_suggestion()
        if policy not in self.suggestions:  # a result saved before per-policy suggestions: its one pair
            return PolicyBounds(policy, float(self.max_lr), self.base_lr, "saved")  # type: ignore[arg-type]
        return PolicyBounds(**self.suggestions[policy])

    def for_policy(self, policy: str) -> RangeTestResult:
        """This result with ``base_lr`` and ``max_lr`` set to ``policy``'s own suggestion (what a schedule
        callback of that policy reads).

        Raises:
            RangeTestError: if the curve gave no suggestion.
            ValueError: an unknown policy.
        """
        bounds = self.suggest(policy)
        return replace(self, max_lr=bounds.max_lr, base_lr=self.base_lr if bounds.base_lr is None else bounds.base_lr)

    def to_dict(self) -> dict[str, Any]:
        """The result as plain JSON-able values."""
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> RangeTestResult:
        """The result saved by :meth:`to_dict` (unknown keys are ignored)."""
        names = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in values.items() if k in names})

    def plot(self, path: str | os.PathLike | None = None, ax: Any = None, title: str | None = None) -> Any:
        """Draws the loss against the rate (log axis) with the suggested bounds and returns the figure.

        Args:
            path: also save the figure there (e.g. `"range_test.png"`).
            ax: a matplotlib axes to draw on; a new figure by default.
            title: the title; a summary of the suggestion by default.

        Raises:
            ImportError: if matplotlib is not installed.
        """
        return plot_range_test(self, path=path, ax=ax, title=title)


def build_result(lrs: list[float], losses: list[float], smoothing: float, stopped_early: bool, reason: str,
                 steps_per_epoch: int | None, step_size_epochs: float, mode: str, *, optimizer: str = "sgd",
                 total_steps: int | None = None, seconds: float = 0.0,
                 rules: Mapping[str, Rule] | None = None) -> RangeTestResult:
    """The :class:`RangeTestResult` of a recorded curve: each policy's suggestion, or why there is none.

    Args:
        lrs: the rate of each recorded step.
        losses: the raw loss of each step.
        smoothing: the range test's `smoothing`.
        stopped_early: whether the sweep stopped because the loss diverged.
        reason: why the sweep ended.
        steps_per_epoch: optimizer steps in an epoch of the real training, or `None`.
        step_size_epochs: the CLR half cycle to aim for, in epochs.
        mode: the sweep's `mode`.
        optimizer: `"sgd"` or `"adam"`.
        total_steps: optimizer steps of the real training, or `None`.
        seconds: how long the test took.
        rules: per policy, a peak rule replacing the built-in one.
    """
    values: dict[str, Any] = {}
    suggestions: dict[str, dict[str, Any]] = {}
    try:
        reading = read_curve(lrs, losses, smoothing, stopped_early, optimizer)
        for policy in POLICIES:
            suggestions[policy] = asdict(suggest(reading, policy, (rules or {}).get(policy)))
    except RangeTestError as exc:
        values["suggestion_error"] = str(exc)
    else:
        values.update(base_lr=suggestions["cyclic"]["base_lr"], max_lr=suggestions["one_cycle"]["max_lr"],
                      min_loss_lr=reading.min_loss_lr, steepest_lr=reading.steepest_lr,
                      divergence_lr=reading.divergence_lr, note=reading.fallback or reading.note,
                      knee_lr=reading.knee_lr)
    return RangeTestResult(
        lrs=list(lrs), losses=list(losses), smoothed_losses=smooth_losses(losses, smoothing),
        base_lr=values.get("base_lr"), max_lr=values.get("max_lr"),
        step_size_up=fitted_step_size(total_steps, steps_per_epoch, step_size_epochs),
        steps_per_epoch=steps_per_epoch, stopped_early=stopped_early, reason=reason,
        min_loss_lr=values.get("min_loss_lr"), steepest_lr=values.get("steepest_lr"),
        suggestion_error=values.get("suggestion_error"), note=values.get("note"), mode=mode, smoothing=smoothing,
        suggestions=suggestions, optimizer=optimizer, divergence_lr=values.get("divergence_lr"),
        total_steps=total_steps, knee_lr=values.get("knee_lr"), seconds=seconds,
    )


# ------------------------------------------------------------------ the figure
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
    the lowest loss, the divergence). Marks at the same rate (1cycle's and CLR's peaks are often the knee itself)
    are one line with one label naming them all, in the style of the first."""
    cyclic = result.suggest("cyclic")
    if cyclic.base_lr is not None:
        ax.axvspan(cyclic.base_lr, cyclic.max_lr, color="C2", alpha=0.10,
                   label=f"CyclicLR base_lr..max_lr = {cyclic.base_lr:.3g}..{cyclic.max_lr:.3g}")
    # (rate, colour, line style, width, name alone, name beside others)
    marks: list[tuple[float, Any, Any, float, str, str]] = []
    for policy, (color, style, name) in _POLICY_STYLE.items():
        marks.append((result.suggest(policy).max_lr, color, style, 1.3, name, name))
    landmarks: list[tuple[float | None, str, Any, str]] = [
        (result.knee_lr, "0.55", (0, (5, 2, 1, 2)), "knee (90% of the fall)"),
        (result.min_loss_lr, "0.4", ":", "lowest smoothed loss"),
        (result.divergence_lr, "k", (0, (1, 3)), "diverged"),
    ]
    for rate, shade, dashes, landmark in landmarks:
        if rate is not None:
            marks.append((rate, shade, dashes, 1.0, f"{landmark} at lr", landmark))
    groups: list[list[tuple[float, Any, Any, float, str, str]]] = []
    for mark in marks:
        same = next((g for g in groups if math.isclose(g[0][0], mark[0], rel_tol=1e-9)), None)
        if same is None:
            groups.append([mark])
        else:
            same.append(mark)
    for group in groups:
        rate, color, style, width, alone, _ = group[0]
        label = alone if len(group) == 1 else " = ".join(mark[5] for mark in group)
        ax.axvline(rate, color=color, linestyle=style, linewidth=width, label=f"{label} = {rate:.3g}")


def plot_range_test(result: RangeTestResult, path: str | os.PathLike | None = None, ax: Any = None,
                    title: str | None = None) -> Any:
    """Draws ``result``'s loss against the rate and marks every suggestion it made.

    The grey line is the raw loss of each step, the blue one the curve the suggestion is read from
    (:func:`~lightning_clr.tuner.curve.analysis_curve`); the y axis spans that curve, so the explosion at the end
    runs off the top.

    Args:
        result: a `RangeTestResult`.
        path: also save the figure there (the format follows the extension, e.g. `.png`).
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
