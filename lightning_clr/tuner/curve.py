"""The analysis curve of an LR range test: the smoothings of its losses that every rule reads.

Pure Python (no torch, no Lightning). :func:`smooth_losses` is fastai's bias-corrected moving average (the
range test stops on it and records it as ``RangeTestResult.smoothed_losses``); :func:`analysis_curve` is the robust,
centred curve the suggestion (:mod:`lightning_clr.tuner.suggest`) reads its landmarks from.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence

__all__ = ["ANALYSIS_SMOOTHING_FACTOR", "MEDIAN_WINDOW", "analysis_curve", "smooth_losses", "zero_phase_smooth"]

MEDIAN_WINDOW = 5
"""Steps of the running median that removes single-step spikes before smoothing."""
ANALYSIS_SMOOTHING_FACTOR = 4.0
"""The zero-phase average of the analysis curve weighs a new loss ``ANALYSIS_SMOOTHING_FACTOR * smoothing``."""


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
        smoothing: the range test's `smoothing`.
    """
    n = len(losses)
    if n == 0:
        return []
    start = statistics.median(losses[: max(3, n // 20)])
    clipped = [min(float(loss), start) for loss in losses]
    half = MEDIAN_WINDOW // 2
    medians = [statistics.median(clipped[max(0, i - half): i + half + 1]) for i in range(n)]
    return zero_phase_smooth(medians, min(1.0, ANALYSIS_SMOOTHING_FACTOR * smoothing))
