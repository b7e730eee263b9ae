"""Other libraries' LR-finder rules, on the same curves, for comparison: pure Python, no torch.

Each takes the sweep's rates and raw losses and returns one rate, as its library does:

- :func:`lightning_steepest`: Lightning's ``Tuner.lr_find`` suggestion, the steepest fall (``np.gradient``) of the
  bias-corrected moving average (``beta = 0.98``), skipping the first 10 points and the last one;
- :func:`fall90` (:func:`suggest_bounds`): lightning_clr 0.1's rule, one pair of bounds for every policy;
- fastai's ``lr_find`` suggestion functions, on the same smoothed losses trimmed to ``[n // 10 : -5]``:
  :func:`fastai_valley` (2/3 down the longest falling stretch), :func:`fastai_minimum` (a tenth of the rate
  at the lowest loss), :func:`fastai_steep` (the steepest fall against ``log(lr)``) and :func:`fastai_slide`
  (walking left from the end until the slope settles).

``python -m benchmarks.auto_bounds --rules`` scores them next to :mod:`lightning_clr.tuner.suggest`'s rules on
the recorded curves. Wrapped to read ``reading.lrs`` and ``reading.losses``, any of them can also be passed as a
rule (``LRRangeTest(rules={"one_cycle": lambda r: fastai_valley(r.lrs, r.losses)})``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from lightning_clr.tuner.curve import smooth_losses
from lightning_clr.tuner.suggest import MIN_FALL, RangeTestError, curve_turn, fall_point

__all__ = [
    "BASELINE_RULES",
    "BASE_FRACTION",
    "BASE_RATIO_RANGE",
    "MAX_FRACTION",
    "Suggestion",
    "fall90",
    "fastai_minimum",
    "fastai_slide",
    "fastai_steep",
    "fastai_valley",
    "lightning_steepest",
    "suggest_bounds",
]

BASE_FRACTION = 0.1
"""The 0.1 rule's ``base_lr``: where the analysis curve has made this share of its fall (before clamping)."""
MAX_FRACTION = 0.9
"""The 0.1 rule's ``max_lr``: where the analysis curve has made this share of its fall."""
BASE_RATIO_RANGE = (3.0, 10.0)
"""The 0.1 rule keeps ``base_lr`` between ``max_lr / 10`` and ``max_lr / 3``."""


def _gradient(values: Sequence[float]) -> list[float]:
    """``numpy.gradient`` with unit spacing: one-sided at the ends, centred inside."""
    n = len(values)
    if n < 2:
        return [0.0] * n
    out = [values[1] - values[0]]
    out += [(values[i + 1] - values[i - 1]) / 2 for i in range(1, n - 1)]
    return [*out, values[-1] - values[-2]]


def lightning_steepest(lrs: Sequence[float], losses: Sequence[float]) -> float:
    """Lightning's suggestion: the rate of the steepest fall of the smoothed loss (``skip_begin=10, skip_end=1``)."""
    smoothed = smooth_losses(losses, 0.02)[10:-1]
    if len(smoothed) < 2:
        return float(lrs[len(lrs) // 2])
    grad = _gradient(smoothed)
    return float(lrs[10 + min(range(len(grad)), key=grad.__getitem__)])


def _fastai_curve(lrs: Sequence[float], losses: Sequence[float]) -> tuple[list[float], list[float]]:
    smoothed = smooth_losses(losses, 0.02)
    start, stop = len(lrs) // 10, len(lrs) - 5
    if stop - start < 3:
        return list(lrs), smoothed
    return list(lrs[start:stop]), smoothed[start:stop]


def fastai_valley(lrs: Sequence[float], losses: Sequence[float]) -> float:
    """fastai's ``valley``: the longest stretch over which the loss keeps falling, a little past 2/3 into it."""
    x, y = _fastai_curve(lrs, losses)
    n = len(y)
    max_start, max_end = 0, 0
    lds = [1] * n
    for i in range(1, n):
        for j in range(i):
            if y[i] < y[j] and lds[i] < lds[j] + 1:
                lds[i] = lds[j] + 1
            if lds[max_end] < lds[i]:
                max_end = i
                max_start = max_end - lds[max_end]
    sections = (max_end - max_start) / 3
    return float(x[max_start + int(sections) + int(sections / 2)])


def fastai_minimum(lrs: Sequence[float], losses: Sequence[float]) -> float:
    """fastai's ``minimum``: a tenth of the rate at the lowest smoothed loss."""
    x, y = _fastai_curve(lrs, losses)
    return float(x[min(range(len(y)), key=y.__getitem__)]) / 10


def fastai_steep(lrs: Sequence[float], losses: Sequence[float]) -> float:
    """fastai's ``steep``: the rate of the steepest fall against ``log(lr)``."""
    x, y = _fastai_curve(lrs, losses)
    grads = [(y[i + 1] - y[i]) / (math.log(x[i + 1]) - math.log(x[i])) for i in range(len(y) - 1)]
    return float(x[min(range(len(grads)), key=grads.__getitem__)])


def fastai_slide(lrs: Sequence[float], losses: Sequence[float], lr_diff: int = 15, thresh: float = 0.005) -> float:
    """fastai's ``slide``: from the end, step left until the slopes ``lr_diff`` points apart agree within
    ``thresh``."""
    x, y = _fastai_curve(lrs, losses)
    grad = _gradient(y)
    n = len(y)
    r_idx, l_idx = n - 1, n - 1 - lr_diff
    if l_idx < 0:
        return float(x[0])
    local_min = x[l_idx]
    while l_idx >= 0 and abs(grad[r_idx] - grad[l_idx]) > thresh:
        local_min = x[l_idx]
        r_idx -= 1
        l_idx -= 1
    return float(local_min)


# ---------------------------------------------------------------------------------------------- lightning_clr 0.1
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
    hint = ". Raise num_steps, or lower max_lr if the test stopped early because the loss diverged."
    z, top, bottom = curve_turn(lrs, losses, smoothing, hint)
    fall = z[top] - z[bottom]
    if not fall >= MIN_FALL * max(abs(z[top]), 1e-12):
        raise RangeTestError(
            f"Expected the loss to fall during the range test, but its smoothed value went from {z[top]:.4g} at "
            f"most to {z[bottom]:.4g} at least (less than {MIN_FALL:.0%}) over rates {lrs[0]:.3g} to "
            f"{lrs[-1]:.3g}. Widen the range (raise max_lr), take more steps, or check that the model trains."
        )
    start = fall_point(z, top, bottom, BASE_FRACTION)
    peak = fall_point(z, top, bottom, MAX_FRACTION)
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


def fall90(lrs: Sequence[float], losses: Sequence[float]) -> float:
    """lightning_clr 0.1's ``max_lr`` (for every policy): where the analysis curve made 90% of its fall."""
    return suggest_bounds(lrs, losses).max_lr


BASELINE_RULES = {
    "lightning_clr_0.1": fall90,
    "lightning_steepest": lightning_steepest,
    "fastai_valley": fastai_valley,
    "fastai_minimum": fastai_minimum,
    "fastai_steep": fastai_steep,
    "fastai_slide": fastai_slide,
}
