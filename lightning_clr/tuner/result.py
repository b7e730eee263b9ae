"""What an LR range test recorded, and the bounds it suggests: :class:`RangeTestResult`.

Pure Python (no torch): a result is plain data that pickles, travels through ``strategy.broadcast``, is saved in
a checkpoint as a plain dict and can be rebuilt offline from a saved curve.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from typing import Any

from lightning_clr.tuner.suggest import RangeTestError, analysis_curve, smooth_losses, suggest_bounds

__all__ = ["RangeTestResult", "build_result"]


@dataclass(frozen=True)
class RangeTestResult:
    """What an LR range test recorded, and the bounds it suggests.

    Attributes:
        lrs: the rate of each recorded optimizer step.
        losses: the training loss of each step (the mean of its accumulated batches, averaged over ranks).
        smoothed_losses: the bias-corrected moving average of ``losses`` (the curve divergence is checked on).
        base_lr: the suggested lower bound, or ``None`` if the curve gave no suggestion.
        max_lr: the suggested upper bound (and 1cycle's peak), or ``None``.
        step_size_up: optimizer steps of a half cycle: ``step_size_epochs`` epochs of the real training, or
            ``None`` if the epoch length is unknown.
        steps_per_epoch: optimizer steps in one epoch of the real training, or ``None``.
        stopped_early: whether the test ended before ``num_steps``.
        reason: why the test ended.
        min_loss_lr: the rate at the lowest zero-phase smoothed loss, or ``None``.
        steepest_lr: the rate of the steepest fall of the smoothed loss (Lightning's ``lr_find`` suggestion).
        suggestion_error: why there is no suggestion, or ``None``.
        note: a remark on the curve, e.g. that the loss was still falling at the end, or ``None``.
        mode: ``"exponential"`` or ``"linear"``.
        smoothing: the moving average's weight of a new loss.
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

    @property
    def analysis_losses(self) -> list[float]:
        """The curve the suggestion is read from (:func:`~lightning_clr.tuner.suggest.analysis_curve`)."""
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
            path: also save the figure there (e.g. ``"range_test.png"``).
            ax: a matplotlib axes to draw on; a new figure by default.
            title: the title; a summary of the suggestion by default.

        Raises:
            ImportError: if matplotlib is not installed.
        """
        from lightning_clr.tuner.plot import plot_range_test

        return plot_range_test(self, path=path, ax=ax, title=title)


def build_result(lrs: list[float], losses: list[float], smoothing: float, stopped_early: bool, reason: str,
                 steps_per_epoch: int | None, step_size_epochs: float, mode: str) -> RangeTestResult:
    """The :class:`RangeTestResult` of a recorded curve: the suggestion, or why there is none."""
    base = maximum = min_loss = steepest = error = note = None
    try:
        suggestion = suggest_bounds(lrs, losses, smoothing)
    except RangeTestError as exc:
        error = str(exc)
    else:
        base, maximum = suggestion.base_lr, suggestion.max_lr
        min_loss, steepest, note = suggestion.min_loss_lr, suggestion.steepest_lr, suggestion.note
    step_size_up = None if steps_per_epoch is None else max(1, round(step_size_epochs * steps_per_epoch))
    return RangeTestResult(
        lrs=list(lrs), losses=list(losses), smoothed_losses=smooth_losses(losses, smoothing), base_lr=base,
        max_lr=maximum, step_size_up=step_size_up, steps_per_epoch=steps_per_epoch, stopped_early=stopped_early,
        reason=reason, min_loss_lr=min_loss, steepest_lr=steepest, suggestion_error=error, note=note, mode=mode,
        smoothing=smoothing,
    )
