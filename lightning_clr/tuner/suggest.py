"""The curve analysis and the suggestion rules of the LR range test: pure Python, no torch, no Lightning.

A range test records, for each optimizer step of a sweep, the rate it used and the training loss. Everything
here reads such a curve (two lists of floats), so the rules can be tested, compared and replaced offline on
recorded curves.

The suggestion (:func:`suggest_bounds`) is read off a robust, centred smoothing of the recorded losses
(:func:`analysis_curve`: clipped to the starting level, a 5-step running median, then the moving average run
forward and backward, so it is not ~``1/smoothing`` steps late like the one-sided average):

1. ``bottom`` is the lowest point of that curve, ``top`` the highest before it; the loss must fall by at
   least 2% between them, over at least :data:`MIN_POINTS` recorded steps;
2. ``max_lr`` is the first rate where the curve has made 90% of its fall from ``top`` to ``bottom``: the
   loss is about to stop falling, a little before its lowest point and the ragged region past it;
3. ``base_lr`` is the first rate where it has made 10% of its fall (the loss starts to fall), kept between
   ``max_lr / 10`` and ``max_lr / 3``.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lightning_clr.tuner.result import RangeTestResult

__all__ = [
    "BASE_FRACTION",
    "BASE_RATIO_RANGE",
    "MAX_FRACTION",
    "MIN_FALL",
    "MIN_POINTS",
    "RangeTestError",
    "Suggestion",
    "analysis_curve",
    "smooth_losses",
    "suggest_bounds",
    "zero_phase_smooth",
]

MIN_POINTS = 10
"""The fewest recorded steps a suggestion is made from."""
BASE_FRACTION = 0.1
"""``base_lr``: where the analysis curve has made this share of its fall (before clamping)."""
MAX_FRACTION = 0.9
"""``max_lr``: where the analysis curve has made this share of its fall."""
BASE_RATIO_RANGE = (3.0, 10.0)
"""``base_lr`` is kept between ``max_lr / 10`` and ``max_lr / 3``."""
MIN_FALL = 0.02
"""The loss must fall by at least this share of its highest smoothed value for a suggestion."""
MEDIAN_WINDOW = 5
"""Steps of the running median that removes single-step spikes before smoothing."""
ANALYSIS_SMOOTHING_FACTOR = 4.0
"""The zero-phase average of the analysis curve weighs a new loss ``ANALYSIS_SMOOTHING_FACTOR * smoothing``."""


class RangeTestError(ValueError):
    """The range test gave no suggestion. ``error.result`` holds the curve recorded so far (or ``None``)."""

    def __init__(self, message: str, result: RangeTestResult | None = None) -> None:
        super().__init__(message)
        self.result = result


def smooth_losses(losses: Sequence[float], smoothing: float) -> list[float]:
    """The exponential moving average of ``losses`` with bias correction (as fastai's LR finder).

    ``avg_k = (1 - smoothing) * avg_{k-1} + smoothing * loss_k`` and the value is ``avg_k / (1 - (1 - smoothing)
    ** (k + 1))``, so the first value is the first loss.

    Args:
        losses: the raw losses, in order.
        smoothing: the weight of a new loss, in (0, 1]; 1 means no smoothing.
    """
    beta = 1.0 - smoothing
    avg, out = 0.0, []
    for k, loss in enumerate(losses):
        avg = beta * avg + smoothing * float(loss)
        out.append(avg / (1.0 - beta ** (k + 1)))
    return out


def zero_phase_smooth(losses: Sequence[float], smoothing: float) -> list[float]:
    """:func:`smooth_losses` run forward and then backward: a symmetric filter that is not late.

    Args:
        losses: the raw losses, in order.
        smoothing: the weight of a new loss, in (0, 1].
    """
    forward = smooth_losses(losses, smoothing)
    return smooth_losses(forward[::-1], smoothing)[::-1]


def analysis_curve(losses: Sequence[float], smoothing: float = 0.05) -> list[float]:
    """The curve the suggestion is read from: robust to spikes and to the explosion at the end, and not late.

    1. Losses above the starting level (the median of the first ``max(3, n // 20)``) are clipped to it, so
       that the diverging tail weighs no more than "as bad as at the start";
    2. a running median over :data:`MEDIAN_WINDOW` steps removes single-step spikes;
    3. the zero-phase moving average (:func:`zero_phase_smooth`) with weight ``min(1, 4 * smoothing)``
       (0.2 by default): run in both directions, it is centred on each step instead of ~``1/smoothing``
       steps late, and it smooths over about +-6 steps.

    Args:
        losses: the raw losses, in order (finite).
        smoothing: the range test's ``smoothing``.
    """
    n = len(losses)
    if n == 0:
        return []
    start = statistics.median(losses[: max(3, n // 20)])
    clipped = [min(float(loss), start) for loss in losses]
    half = MEDIAN_WINDOW // 2
    medians = [statistics.median(clipped[max(0, i - half): i + half + 1]) for i in range(n)]
    return zero_phase_smooth(medians, min(1.0, ANALYSIS_SMOOTHING_FACTOR * smoothing))


@dataclass(frozen=True)
class Suggestion:
    """The bounds :func:`suggest_bounds` reads off a curve.

    Attributes:
        base_lr: the suggested lower bound.
        max_lr: the suggested upper bound.
        min_loss_lr: the rate at the lowest point of the analysis curve.
        steepest_lr: the rate where the analysis curve falls fastest against ``log(lr)`` (the suggestion of
            Lightning's ``Tuner.lr_find``).
        note: a remark on the curve, or ``None``.
    """

    base_lr: float
    max_lr: float
    min_loss_lr: float
    steepest_lr: float
    note: str | None = None


def _first_at_or_below(values: Sequence[float], level: float, start: int, stop: int) -> int:
    for i in range(start, stop + 1):
        if values[i] <= level:
            return i
    return stop


def suggest_bounds(lrs: Sequence[float], losses: Sequence[float], smoothing: float = 0.05) -> Suggestion:
    """The suggested ``base_lr`` and ``max_lr`` of a range test's curve.

    The rule, on the :func:`analysis_curve` ``z`` of the losses:

    1. ``bottom`` is the lowest point of ``z``, ``top`` the highest point before it, and the fall
       ``z[top] - z[bottom]`` must be at least :data:`MIN_FALL` (2%) of ``|z[top]|``;
    2. ``max_lr`` is the first rate after ``top`` where ``z`` has made :data:`MAX_FRACTION` (90%) of its
       fall: the loss is about to stop falling, a little before its lowest point and the ragged region past it;
    3. ``base_lr`` is the first rate where ``z`` has made :data:`BASE_FRACTION` (10%) of its fall (the loss
       starts to fall), kept between ``max_lr / 10`` and ``max_lr / 3``: Smith's cycles span 3 to 10
       times, and a wider one spends much of each cycle at rates that barely train.

    Args:
        lrs: the rate of each recorded step, increasing.
        losses: the raw loss of each step (finite), as many as ``lrs``.
        smoothing: the range test's ``smoothing``, in (0, 1].

    Returns:
        The :class:`Suggestion`.

    Raises:
        RangeTestError: fewer than :data:`MIN_POINTS` points, or a loss that does not fall.
        ValueError: ``lrs`` and ``losses`` of different lengths.
    """
    if len(lrs) != len(losses):
        raise ValueError(f"Expected as many losses as rates, but got {len(losses)} losses and {len(lrs)} rates.")
    if len(lrs) < MIN_POINTS:
        raise RangeTestError(
            f"Expected at least {MIN_POINTS} recorded steps for a suggestion, but got {len(lrs)}. Raise num_steps, "
            "or lower max_lr if the test stopped early because the loss diverged."
        )
    z = analysis_curve(losses, smoothing)
    bottom = min(range(len(z)), key=z.__getitem__)
    top = max(range(bottom + 1), key=z.__getitem__)
    fall = z[top] - z[bottom]
    if not fall >= MIN_FALL * max(abs(z[top]), 1e-12):
        raise RangeTestError(
            f"Expected the loss to fall during the range test, but its smoothed value went from {z[top]:.4g} at "
            f"most to {z[bottom]:.4g} at least (less than {MIN_FALL:.0%}) over rates {lrs[0]:.3g} to "
            f"{lrs[-1]:.3g}. Widen the range (raise max_lr), take more steps, or check that the model trains."
        )
    start = _first_at_or_below(z, z[top] - BASE_FRACTION * fall, top, bottom)
    peak = _first_at_or_below(z, z[top] - MAX_FRACTION * fall, top, bottom)
    log_lrs = [math.log(lr) for lr in lrs]

    def slope(i: int) -> float:
        left, right = max(i - 1, top), min(i + 1, bottom)
        return (z[right] - z[left]) / max(log_lrs[right] - log_lrs[left], 1e-300)

    steepest = min(range(top, bottom + 1), key=slope)
    max_lr = float(lrs[peak])
    base_lr = min(max(float(lrs[start]), max_lr / BASE_RATIO_RANGE[1]), max_lr / BASE_RATIO_RANGE[0])
    note = None
    if bottom == len(z) - 1:
        note = ("the loss was still falling at the largest rate tried, so max_lr may be low: raise the test's "
                "max_lr to see where the loss stops falling")
    elif start <= max(3, len(z) // 20):
        note = "the loss was falling from the first step: lower the test's min_lr to see where it starts to fall"
    return Suggestion(base_lr, max_lr, float(lrs[bottom]), float(lrs[steepest]), note)
