"""The curve analysis and the suggestion rules of the LR range test: pure Python, no torch, no Lightning.

A range test records, for each optimizer step of a sweep, the rate it used and the training loss. Everything
here reads such a curve (two lists of floats), so a rule can be tested and replaced offline on recorded curves.

Reading a curve (:func:`read_curve`) finds its landmarks on a robust, centred smoothing of the losses
(:func:`~lightning_clr.tuner.curve.analysis_curve`: clipped to the starting level, a 5-step running median, then
the moving average run forward and backward, so that it is not ~``1/smoothing`` steps late like the one-sided
average): its knee (the first rate where it has made 90% of its fall, :attr:`CurveReading.knee_lr`), its lowest
point, how far it fell and where it diverged.

The rule of each policy (:func:`default_peak`) is a multiple of the knee (:data:`PEAK_FACTORS`), per optimizer
family, from ``python -m benchmarks.auto_bounds`` (five families; ``docs/benchmarks/auto_bounds.md``):

- the knee is the steadiest landmark of a curve (across seeds it moves 1.3-1.8x; the lowest point 1.8-2.7x,
  fastai's ``valley`` and Lightning's steepest point up to 10x: they read the slope of a noisy curve);
- SGD (plain, momentum, Nesterov) peaks at the knee itself (x1): past it, a network without normalisation dies
  later in the run, and BatchNorm networks gain nothing;
- Adam-family optimizers peak at three times the knee: their curves fall early and far, so the knee comes early,
  and their tuned 1cycle peaks sit 2-5x above it;
- CLR's ``max_lr`` is 1cycle's peak, its ``base_lr`` a quarter of it (Smith: 3 to 4 times below), and its
  ``step_size_up`` is fitted so that the run ends at the end of a cycle (:func:`fitted_step_size`);
- SGDR (``CosineRestartsLR``) starts at its peak on the untrained network, with no warm-up, so its peak is half
  of 1cycle's with SGD and 1.5x the knee with Adam.

A curve that barely fell (less than :data:`MIN_FALL`) but diverged gets the conservative fallback, a tenth of the
divergence rate, with a note (the callbacks warn); only a curve that neither fell nor diverged, or that
diverged within its first :data:`MIN_POINTS` steps, is an error, and its message says what to change.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from lightning_clr.tuner.curve import analysis_curve

__all__ = [
    "CYCLIC_RATIO",
    "FALLBACK_DIVISOR",
    "KNEE_FRACTION",
    "MIN_FALL",
    "MIN_POINTS",
    "PEAK_FACTORS",
    "POLICIES",
    "CurveReading",
    "PolicyBounds",
    "RangeTestError",
    "Rule",
    "curve_turn",
    "default_peak",
    "fall_point",
    "fitted_step_size",
    "knee_peak",
    "read_curve",
    "suggest",
]

MIN_POINTS = 10
"""The fewest recorded steps a suggestion is made from."""
MIN_FALL = 0.02
"""The loss must fall by at least this share of its highest smoothed value for a suggestion."""


class RangeTestError(ValueError):
    """The range test gave no suggestion. ``error.result`` holds the curve recorded so far, a
    :class:`~lightning_clr.RangeTestResult`, or ``None`` (typed ``Any``: the result's module imports this one, so
    this one does not import it back)."""

    def __init__(self, message: str, result: Any = None) -> None:
        super().__init__(message)
        self.result = result


# ---------------------------------------------------------------------------------------------- reading a curve
@dataclass(frozen=True)
class CurveReading:
    """The landmarks of a range test's curve that the rules read, found once.

    Attributes:
        lrs: the rate of each recorded step.
        losses: the raw losses.
        analysis: the :func:`analysis_curve` of the losses.
        optimizer: ``"sgd"`` (plain or momentum SGD and other non-adaptive optimizers) or ``"adam"`` (an
            optimizer with ``betas``: Adam, AdamW, NAdam...).
        min_loss_lr: the rate at the lowest point of the analysis curve.
        knee_lr: the first rate where the analysis curve has made :data:`KNEE_FRACTION` (90%) of its fall from
            its highest point to its lowest: the loss is about to stop falling.
        fall: how far the analysis curve fell from its highest point before the lowest one, as a share of that
            highest value.
        divergence_lr: the rate where the loss diverged (the sweep's last rate when it stopped early), or
            where the analysis curve climbed back to its starting level; ``None`` if it did neither.
        fallback: why the curve is read with the conservative fallback rule, or ``None``.
        note: a remark on the curve (e.g. still falling at the largest rate), or ``None``.
    """

    lrs: list[float]
    losses: list[float]
    analysis: list[float]
    optimizer: str
    min_loss_lr: float
    knee_lr: float
    fall: float
    divergence_lr: float | None
    fallback: str | None = None
    note: str | None = None

    @property
    def steepest_lr(self) -> float:
        """The rate where the analysis curve falls fastest against ``log(lr)`` before its lowest point."""
        z, lrs = self.analysis, self.lrs
        bottom = min(range(len(z)), key=z.__getitem__)
        if bottom == 0:
            return float(lrs[0])
        slopes = [(z[i + 1] - z[i]) / max(math.log(lrs[i + 1] / lrs[i]), 1e-300) for i in range(bottom)]
        return float(lrs[min(range(len(slopes)), key=slopes.__getitem__)])


def curve_turn(lrs: Sequence[float], losses: Sequence[float], smoothing: float, too_short: str,
               ) -> tuple[list[float], int, int]:
    """The :func:`analysis_curve` ``z`` of a curve, its highest point before its lowest (``top``) and its lowest
    (``bottom``), between which every rule reads the fall. ``too_short`` ends the :class:`RangeTestError` for fewer
    than :data:`MIN_POINTS` steps (what to do); ``lrs`` and ``losses`` of different lengths raise ``ValueError``."""
    if len(lrs) != len(losses):
        raise ValueError(f"Expected as many losses as rates, but got {len(losses)} losses and {len(lrs)} rates.")
    if len(lrs) < MIN_POINTS:
        raise RangeTestError(f"Expected at least {MIN_POINTS} recorded steps for a suggestion, but got {len(lrs)}"
                             + too_short)
    z = analysis_curve(losses, smoothing)
    bottom = min(range(len(z)), key=z.__getitem__)
    return z, max(range(bottom + 1), key=z.__getitem__), bottom


def fall_point(z: Sequence[float], top: int, bottom: int, share: float) -> int:
    """The first step from ``top`` to ``bottom`` where the curve ``z`` has made ``share`` of its fall
    ``z[top] - z[bottom]``; ``bottom`` if rounding leaves none (``share`` 1)."""
    level = z[top] - share * (z[top] - z[bottom])
    return next((i for i in range(top, bottom + 1) if z[i] <= level), bottom)


def read_curve(lrs: Sequence[float], losses: Sequence[float], smoothing: float = 0.05, stopped_early: bool = False,
               optimizer: str = "sgd") -> CurveReading:
    """Finds the landmarks of a curve, or says why it cannot be read.

    Args:
        lrs: the rate of each recorded step, increasing.
        losses: the raw loss of each step (finite), as many as `lrs`.
        smoothing: the range test's `smoothing`, in (0, 1].
        stopped_early: whether the sweep ended because the loss diverged (or was NaN/inf).
        optimizer: `"sgd"` or `"adam"`.

    Raises:
        RangeTestError: fewer than :data:`MIN_POINTS` steps (the loss diverged at once: lower ``min_lr``), or a
            loss that neither fell by :data:`MIN_FALL` nor diverged over the whole range (the model does not
            train at any rate tried).
        ValueError: ``lrs`` and ``losses`` of different lengths.
    """
    z, top, bottom = curve_turn(lrs, losses, smoothing, ": the loss diverged at once. Lower the range test's min_lr.")
    fall = (z[top] - z[bottom]) / max(abs(z[top]), 1e-12)
    divergence: float | None = float(lrs[-1]) if stopped_early else None
    if divergence is None:
        back = [i for i in range(bottom, len(z)) if z[i] >= z[0]]
        divergence = float(lrs[back[0]]) if back and fall >= MIN_FALL else None
    fallback = note = None
    if not fall >= MIN_FALL:
        if divergence is None:
            raise RangeTestError(
                f"Expected the loss to fall or to diverge somewhere between lr={lrs[0]:.3g} and {lrs[-1]:.3g}, but "
                f"its smoothed value only went from {z[top]:.4g} to {z[bottom]:.4g} (less than {MIN_FALL:.0%}) "
                "and never diverged: the model does not seem to train at any of these rates. If it trains at lower "
                "rates, lower the range test's min_lr (the first steps may already have broken it); otherwise "
                "check that the loss depends on the parameters and that the labels match the outputs."
            )
        fallback = (f"the loss fell only {fall:.1%} before it diverged at lr={divergence:.3g}: the bounds come from "
                    f"the divergence rate alone (a tenth of it), a conservative choice")
    elif bottom == len(z) - 1:
        note = ("the loss was still falling at the largest rate tried, so the suggestion may be low: raise the "
                "test's max_lr to see where the loss stops falling")
    knee = fall_point(z, top, bottom, KNEE_FRACTION)
    return CurveReading(list(map(float, lrs)), list(map(float, losses)), z, optimizer, float(lrs[bottom]),
                        float(lrs[knee]), fall, divergence, fallback, note)


# ---------------------------------------------------------------------------------------------- the rules
@dataclass(frozen=True)
class PolicyBounds:
    """A policy's suggested bounds.

    Attributes:
        policy: ``"one_cycle"``, ``"cyclic"`` or ``"cosine_restarts"``.
        max_lr: the peak rate.
        base_lr: the lower bound (CLR), or ``None``.
        rule: the name of the rule that gave them.
    """

    policy: str
    max_lr: float
    base_lr: float | None
    rule: str


POLICIES = ("one_cycle", "cyclic", "cosine_restarts")
"""The policies with their own suggestion."""
PEAK_FACTORS: dict[tuple[str, str], float] = {
    ("one_cycle", "sgd"): 1.0,
    ("one_cycle", "adam"): 3.0,
    ("cyclic", "sgd"): 1.0,
    ("cyclic", "adam"): 3.0,
    ("cosine_restarts", "sgd"): 0.5,
    ("cosine_restarts", "adam"): 1.5,
}
"""Each policy's peak as a multiple of the curve's knee (:attr:`CurveReading.knee_lr`), per optimizer family."""
KNEE_FRACTION = 0.9
"""The knee is where the analysis curve has made this share of its fall."""
CYCLIC_RATIO = 4.0
"""CLR's ``base_lr`` is its ``max_lr`` divided by this (Smith: 3 to 4)."""
FALLBACK_DIVISOR = 10.0
"""On a curve that barely fell before it diverged, every peak is the divergence rate divided by this."""

Rule = Callable[[CurveReading], float]
"""A peak rule: the curve's landmarks in, the policy's ``max_lr`` out."""


def knee_peak(reading: CurveReading, factor: float) -> float:
    """The built-in rules' formula with a factor of one's own: ``factor`` times the curve's knee, or a tenth of
    the divergence rate on a curve that barely fell (then ``factor`` is not used).

    Example (a rule of SGDR's form with 1cycle's factors, 1 x the knee for SGD and 3 x for the Adam family)::

        def sgdr_like_one_cycle(reading):
            return knee_peak(reading, 1.0 if reading.optimizer == "sgd" else 3.0)

        LRRangeTest(rules={"cosine_restarts": sgdr_like_one_cycle})
    """
    if reading.fallback is not None and reading.divergence_lr is not None:
        return reading.divergence_lr / FALLBACK_DIVISOR
    return factor * reading.knee_lr


def default_peak(policy: str) -> Rule:
    """The built-in rule of ``policy``: :func:`knee_peak` with the factor of :data:`PEAK_FACTORS` for the
    curve's optimizer family."""

    def rule(reading: CurveReading) -> float:
        return knee_peak(reading, PEAK_FACTORS[(policy, reading.optimizer)])

    rule.__name__ = f"{policy}_default"
    return rule


def suggest(reading: CurveReading, policy: str, rule: Rule | None = None) -> PolicyBounds:
    """The bounds of ``policy`` from a read curve.

    Args:
        reading: the curve's landmarks (`read_curve`).
        policy: one of `POLICIES` (`"one_cycle"`, `"cyclic"`, `"cosine_restarts"`).
        rule: a peak rule to use instead of the built-in one (`default_peak`); it may return any positive
            rate.

    Raises:
        ValueError: an unknown policy, or a rule that returned no positive finite rate.
    """
    if policy not in POLICIES:
        raise ValueError(f"Expected policy to be one of {POLICIES}, but got {policy!r}.")
    rule = rule or default_peak(policy)
    peak = rule(reading)
    if isinstance(peak, bool) or not isinstance(peak, (int, float)) or not 0 < peak < math.inf:
        raise ValueError(f"Expected the {policy} rule {getattr(rule, '__name__', rule)!r} to return a positive "
                         f"rate, but it returned {peak!r}.")
    base = float(peak) / CYCLIC_RATIO if policy == "cyclic" else None
    return PolicyBounds(policy, float(peak), base, getattr(rule, "__name__", type(rule).__name__))


def fitted_step_size(total_steps: int | None, steps_per_epoch: int | None, step_size_epochs: float) -> int | None:
    """A CLR half cycle of about ``step_size_epochs`` epochs that makes the run end at the end of a cycle.

    The run of ``total_steps`` is cut into ``max(1, round(total / (2 * step_size_epochs * steps_per_epoch)))``
    whole cycles, so that it ends at ``base_lr`` (Smith, 2017: stop training at the end of a cycle), not at a
    peak; with an unknown run length it is ``step_size_epochs`` epochs, and ``None`` without an epoch length.
    """
    if steps_per_epoch is None:
        return None
    half = max(1, round(step_size_epochs * steps_per_epoch))
    if total_steps is None:
        return half
    cycles = max(1, round(total_steps / (2 * half)))
    return max(1, total_steps // (2 * cycles))
