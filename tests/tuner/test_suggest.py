"""The suggestion rules on real range-test curves stored as literals (``curves.py``): no training, no torch needed."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import curves

from lightning_clr.tuner.curve import analysis_curve
from lightning_clr.tuner.result import build_result
from lightning_clr.tuner.suggest import (
    FALLBACK_DIVISOR,
    PEAK_FACTORS,
    POLICIES,
    RangeTestError,
    curve_turn,
    fall_point,
    fitted_step_size,
    knee_peak,
    read_curve,
    suggest,
)

READABLE = ["FLAT_START_SGD", "ADAM_MLP", "ADAM_TRANSFORMER", "NOISY_GRU", "BATCHNORM_RESNET", "NEVER_TURNS"]


def reading(name: str):
    lrs, losses, stopped, optimizer = getattr(curves, name)
    return read_curve(lrs, losses, 0.05, stopped, optimizer)


@pytest.mark.parametrize(
    ("name", "min_loss_lr", "fall", "divergence_lr"),
    [
        ("FLAT_START_SGD", 0.3162, 0.049, None),  # a 5% fall after four flat decades is enough to read
        ("ADAM_MLP", 0.02054, 0.638, 0.5623),
        ("ADAM_TRANSFORMER", 0.05623, 0.379, 1.334),
        ("NOISY_GRU", 0.0487, 0.164, 4.870),
        ("BATCHNORM_RESNET", 0.487, 0.347, None),  # BatchNorm: no divergence up to 10
        ("NEVER_TURNS", 0.003652, 0.073, None),
    ],
)
def test_landmarks_of_recorded_curves(name, min_loss_lr, fall, divergence_lr):
    r = reading(name)
    assert r.min_loss_lr == pytest.approx(min_loss_lr, rel=1e-3)
    assert r.fall == pytest.approx(fall, abs=1e-3)
    if divergence_lr is None:
        assert r.divergence_lr is None
    else:
        assert r.divergence_lr == pytest.approx(divergence_lr, rel=1e-3)
    assert r.fallback is None
    assert r.lrs[0] <= r.steepest_lr <= r.min_loss_lr


@pytest.mark.parametrize("name", READABLE)
@pytest.mark.parametrize("policy", POLICIES)
def test_each_policy_reads_its_multiple_of_the_knee(name, policy):
    r = reading(name)
    bounds = suggest(r, policy)
    assert bounds.policy == policy and bounds.rule == f"{policy}_default"
    assert bounds.max_lr == pytest.approx(PEAK_FACTORS[(policy, r.optimizer)] * r.knee_lr, rel=1e-12)
    assert r.lrs[0] < r.knee_lr <= r.min_loss_lr
    assert (bounds.base_lr is not None) == (policy == "cyclic")
    if bounds.base_lr is not None:
        assert bounds.base_lr == pytest.approx(bounds.max_lr / 4, rel=1e-12)


@pytest.mark.parametrize(
    ("name", "one_cycle", "cosine_restarts"),
    [  # the rule benchmarks/auto_bounds.py measured (docs/benchmarks/auto_bounds.md): SGD 1 x the knee and half
        # of it for SGDR, Adam family 3 x and 1.5 x; CLR's max_lr is 1cycle's. A change must be re-measured.
        ("FLAT_START_SGD", 0.2738, 0.1369),
        ("BATCHNORM_RESNET", 0.1155, 0.05774),
        ("ADAM_MLP", 0.03464, 0.01732),
        ("ADAM_TRANSFORMER", 0.04001, 0.02),
        ("NOISY_GRU", 0.08215, 0.04108),
        ("NEVER_TURNS", 0.009487, 0.004743),
    ],
)
def test_the_measured_rule_on_recorded_curves(name, one_cycle, cosine_restarts):
    r = reading(name)
    assert suggest(r, "one_cycle").max_lr == pytest.approx(one_cycle, rel=1e-3)
    assert suggest(r, "cyclic").max_lr == pytest.approx(one_cycle, rel=1e-3)
    assert suggest(r, "cyclic").base_lr == pytest.approx(one_cycle / 4, rel=1e-3)
    assert suggest(r, "cosine_restarts").max_lr == pytest.approx(cosine_restarts, rel=1e-3)


def test_a_curve_that_never_turns_is_read_with_a_note():
    r = reading("NEVER_TURNS")
    assert r.min_loss_lr == r.lrs[-1] and "still falling at the largest rate" in r.note


def test_a_network_killed_by_the_first_steps_is_a_clear_error_naming_min_lr():
    lrs, losses, _, optimizer = curves.DEAD_FROM_THE_START
    with pytest.raises(RangeTestError, match="lower the range test's min_lr") as error:
        read_curve(lrs, losses, 0.05, False, optimizer)
    assert isinstance(error.value, ValueError) and "neither" not in str(error.value)


def test_a_flat_curve_that_diverged_falls_back_to_a_tenth_of_the_divergence_rate():
    lrs, losses, _, optimizer = curves.DEAD_FROM_THE_START
    r = read_curve(lrs, losses, 0.05, True, optimizer)  # as if the sweep had stopped on a divergence
    assert r.divergence_lr == lrs[-1] and "fell only" in r.fallback
    for policy in POLICIES:
        assert suggest(r, policy).max_lr == pytest.approx(lrs[-1] / FALLBACK_DIVISOR, rel=1e-12)
    result = build_result(lrs, losses, 0.05, True, "diverged", 35, 4.0, "exponential", optimizer="sgd")
    assert result.has_suggestion and "fell only" in result.note  # degrades with a note, does not raise


def test_knee_peak_is_the_built_in_formula_with_ones_own_factor():
    r = reading("ADAM_MLP")
    assert knee_peak(r, 2.0) == 2.0 * r.knee_lr
    assert suggest(r, "one_cycle").max_lr == knee_peak(r, PEAK_FACTORS[("one_cycle", "adam")])
    assert suggest(r, "cosine_restarts", rule=lambda x: knee_peak(x, 7.0)).max_lr == 7.0 * r.knee_lr
    lrs, losses, _, optimizer = curves.DEAD_FROM_THE_START
    fallen = read_curve(lrs, losses, 0.05, True, optimizer)  # barely fell, then diverged: the factor is not used
    assert knee_peak(fallen, 2.0) == knee_peak(fallen, 7.0) == lrs[-1] / FALLBACK_DIVISOR


def test_too_few_points_is_an_error_naming_min_lr():
    with pytest.raises(RangeTestError, match=r"diverged at once\. Lower the range test's min_lr"):
        read_curve([1.0, 2.0, 3.0], [2.0, 9.0, 50.0], stopped_early=True)
    with pytest.raises(ValueError, match="as many losses as rates"):
        read_curve([1.0, 2.0], [1.0])


def test_every_rule_reads_the_fall_between_the_highest_point_before_the_lowest_and_the_lowest():
    losses = [3.0, 3.0, 3.0, 2.9, 2.5, 2.0, 1.5, 1.0, 0.8, 0.9, 3.0, 9.0]
    z, top, bottom = curve_turn([10.0**k for k in range(12)], losses, 1.0, ".")
    # smoothing 1 leaves the running median and the clip at the starting level: the lowest point is the first 1.0
    assert z == analysis_curve(losses, 1.0) == [3.0, 3.0, 3.0, 2.9, 2.5, 2.0, 1.5, 1.0, 1.0, 1.0, 1.95, 3.0]
    assert (top, bottom) == (0, 7)
    expected = r"^Expected at least 10 recorded steps for a suggestion, but got 3: do X$"
    with pytest.raises(RangeTestError, match=expected):
        curve_turn([1.0, 2.0, 3.0], [3.0, 2.0, 1.0], 1.0, ": do X")


def test_a_rule_can_be_replaced_and_is_checked():
    r = reading("ADAM_MLP")

    def tenth_of_divergence(reading):
        return reading.divergence_lr / 10

    bounds = suggest(r, "one_cycle", tenth_of_divergence)
    assert bounds.max_lr == pytest.approx(0.05623, rel=1e-3) and bounds.rule == "tenth_of_divergence"
    with pytest.raises(ValueError, match="to return a positive rate"):
        suggest(r, "one_cycle", lambda reading: math.nan)
    with pytest.raises(ValueError, match="Expected policy to be one of"):
        suggest(r, "step")


@pytest.mark.parametrize(
    ("total", "per_epoch", "epochs", "expected"),
    [
        (350, 35, 4.0, 175),  # 10 epochs: one cycle of 2 x 5 epochs, not 1.25 cycles of 2 x 4
        (700, 35, 4.0, 175),  # 20 epochs: 2 cycles of 2 x 5
        (1400, 35, 4.0, 140),  # 40 epochs: 5 cycles of 2 x 4
        (None, 35, 4.0, 140),  # unknown run length: 4 epochs
        (350, None, 4.0, None),  # unknown epoch length
        (1, 9, 4.0, 1),
    ],
)
def test_fitted_step_size_ends_the_run_at_a_cycle_end(total, per_epoch, epochs, expected):
    assert fitted_step_size(total, per_epoch, epochs) == expected


def test_fall_point_is_the_first_step_past_a_share_of_the_fall_and_the_bottom_when_rounding_leaves_none():
    z = [2.0, 3.0, 2.8, 2.0, 1.5, 1.2, 1.0, 1.1, 2.5]  # top 1 (3.0), bottom 6 (1.0): a fall of 2.0
    assert [fall_point(z, 1, 6, share) for share in (0.0, 0.1, 0.5, 0.75, 0.9, 1.0)] == [1, 2, 3, 4, 5, 6]
    top, bottom = 1.646097911506768, 0.023114013313995842
    assert top - 1.0 * (top - bottom) < bottom  # 1.0 of this fall rounds below the bottom itself
    assert fall_point([top, 1.0, bottom], 0, 2, 1.0) == 2
