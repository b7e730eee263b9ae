"""The pure schedules: the same maths as torch's and Keras's schedulers, hand-computed tables and properties.

The contract: the value a schedule returns for optimizer step ``k`` (``k = 0, 1, ...``) is the value the
reference scheduler set for the ``k``-th ``optimizer.step()`` when it is stepped once after every optimizer
step, to a relative error under 1e-9 (torch), and Keras ``CosineDecayRestarts`` at step ``k``.
"""

from __future__ import annotations

import bisect
import copy
import dataclasses
import math
import os
import pickle
import warnings
from collections.abc import Callable
from fractions import Fraction
from typing import Any

import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from lightning_clr.schedules import (
    ConstantSchedule,
    CosineRestartsSchedule,
    CyclicSchedule,
    ExponentialRamp,
    LinearRamp,
    OneCycleSchedule,
    Schedule,
)

from helpers import torch_reference

REL = 1e-9  # the contract's relative error against torch
FLOAT32_EPS = 2.0**-23
FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def assert_rel(actual: float, expected: float, rel: float = REL, what: str = "") -> None:
    assert abs(actual - expected) <= rel * abs(expected) + 1e-300, f"{what}: {actual!r} != {expected!r}"


def _sgd(params: Any) -> torch.optim.Optimizer:
    return torch.optim.SGD(params, lr=0.5, momentum=0.9)


def _adam(params: Any) -> torch.optim.Optimizer:
    return torch.optim.Adam(params, lr=0.5, betas=(0.9, 0.999))


def torch_trace(make_scheduler: Callable[[torch.optim.Optimizer], Any], steps: int,
                optimizer: str = "sgd") -> list[tuple[float, float | None]]:
    """What torch's scheduler sets for each optimizer step of SGD or Adam created with lr=0.5."""
    return torch_reference(_sgd if optimizer == "sgd" else _adam, make_scheduler, steps)


def exact_cycles(first_cycle: int, t_mul: float, up_to: int) -> list[tuple[Fraction, Fraction]]:
    """``(start, length)`` of the cycles starting at or before step ``up_to``, in exact rational arithmetic on
    the decimals as written (``t_mul=0.8`` means 4/5): cycle ``i`` starts after ``F (1 + m + ... + m^(i-1))``
    steps. Shrinking cycles (t_mul < 1) are listed down to a millionth of a step."""
    t = Fraction(repr(t_mul))
    cycles, start, length = [], Fraction(0), Fraction(first_cycle)
    while start <= up_to and length > Fraction(1, 10**6):
        cycles.append((start, length))
        start, length = start + length, length * t
    return cycles


def exact_restart_steps(first_cycle: int, t_mul: float, up_to: int) -> dict[int, int]:
    """``{step: cycle index}`` for the cycles that start exactly on a whole step ``<= up_to``."""
    return {int(start): index for index, (start, _) in enumerate(exact_cycles(first_cycle, t_mul, up_to))
            if start.denominator == 1}


def reference_restarts(cycles: list[tuple[Fraction, Fraction]], peak: float, t_mul: float, m_mul: float,
                       alpha: float, step: int) -> float:
    """SGDR at ``step`` from :func:`exact_cycles`; past the limit of shrinking cycles the floor holds."""
    t, first_cycle = Fraction(repr(t_mul)), cycles[0][1]
    if t < 1 and step >= first_cycle / (1 - t):
        return peak * alpha
    index = bisect.bisect_right([start for start, _ in cycles], step) - 1
    start, length = cycles[index]
    tau = float((step - start) / length)
    return peak * ((1 - alpha) * m_mul**index * 0.5 * (1 + math.cos(math.pi * tau)) + alpha)


# ---------------------------------------------------------------------------------------------- torch: CyclicLR
@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
@pytest.mark.parametrize("up,down", [(1, None), (3, None), (4, 2), (2, 7)])
@pytest.mark.parametrize("mode", ["triangular", "triangular2", "exp_range"])
def test_cyclic_equals_torch_cycliclr(mode: str, up: int, down: int | None, optimizer: str) -> None:
    """CyclicSchedule (rate and inverse momentum / Adam beta1) equals torch's CyclicLR over six cycles."""
    gamma = 0.97 if mode == "exp_range" else 1.0
    steps = 6 * (up + (down or up)) + 1
    reference = torch_trace(
        lambda opt: torch.optim.lr_scheduler.CyclicLR(
            opt, base_lr=0.01, max_lr=0.5, step_size_up=up, step_size_down=down, mode=mode, gamma=gamma,
            cycle_momentum=True, base_momentum=0.8, max_momentum=0.95,
        ),
        steps,
        optimizer,
    )
    lr = CyclicSchedule(0.01, 0.5, up, down, mode, gamma)
    momentum = CyclicSchedule(0.95, 0.8, up, down, mode, gamma)  # momentum moves inversely: swap the bounds
    for k, (torch_lr, torch_momentum) in enumerate(reference):
        assert_rel(lr(k), torch_lr, what=f"lr at step {k}")
        assert_rel(momentum(k), torch_momentum, what=f"momentum at step {k}")


# ---------------------------------------------------------------------------------------------- torch: OneCycleLR
@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
@pytest.mark.parametrize("total,pct", [(100, 0.3), (37, 0.25), (10, 0.5), (7, 0.4)])
@pytest.mark.parametrize("three_phase", [False, True], ids=["two-phase", "three-phase"])
@pytest.mark.parametrize("anneal", ["cos", "linear"])
def test_one_cycle_equals_torch_onecyclelr(anneal: str, three_phase: bool, total: int, pct: float,
                                           optimizer: str) -> None:
    """OneCycleSchedule (rate and momentum) equals torch's OneCycleLR at every one of its steps."""
    reference = torch_trace(
        lambda opt: torch.optim.lr_scheduler.OneCycleLR(
            opt, max_lr=0.5, total_steps=total, pct_start=pct, anneal_strategy=anneal, div_factor=10.0,
            final_div_factor=100.0, three_phase=three_phase, cycle_momentum=True, base_momentum=0.8,
            max_momentum=0.95,
        ),
        total,
        optimizer,
    )
    lr = OneCycleSchedule(0.05, 0.5, 0.05 / 100.0, total, pct, anneal, three_phase)
    momentum = OneCycleSchedule(0.95, 0.8, 0.95, total, pct, anneal, three_phase)
    for k, (torch_lr, torch_momentum) in enumerate(reference):
        assert_rel(lr(k), torch_lr, what=f"lr at step {k}")
        assert_rel(momentum(k), torch_momentum, what=f"momentum at step {k}")


# ---------------------------------------------------------------------------------------------- torch: SGDR
@pytest.mark.parametrize("alpha", [0.0, 0.1])
@pytest.mark.parametrize("first_cycle,t_mul", [(5, 1), (1, 2), (6, 2), (1, 3), (5, 3), (2, 4)])
def test_cosine_restarts_equals_torch_warm_restarts(first_cycle: int, t_mul: int, alpha: float) -> None:
    """With m_mul=1 and an integer t_mul, CosineRestartsSchedule is torch's
    CosineAnnealingWarmRestarts(T_0=first_cycle, T_mult=t_mul, eta_min=alpha*max_lr), over at least 5 cycles."""
    steps = 1500
    reference = torch_trace(
        lambda opt: torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(
            opt, T_0=first_cycle, T_mult=t_mul, eta_min=alpha * 0.5
        ),
        steps,
    )
    schedule = CosineRestartsSchedule(0.5, first_cycle, float(t_mul), 1.0, alpha)
    assert len(schedule.cycle_ends(steps)) >= 5
    for k, (torch_lr, _) in enumerate(reference):
        assert_rel(schedule(k), torch_lr, what=f"lr at step {k}")


def test_restart_where_torch_log_formula_rounds_down() -> None:
    """torch's CosineAnnealingWarmRestarts.step(epoch) finds the cycle with
    ``int(math.log(epoch / T_0 * (T_mult - 1) + 1, T_mult))``; for T_mult=3 the log of 243 to base 3 comes
    out as 4.999..., so step 121 (= 1 + 3 + 9 + 27 + 81, the start of cycle 5) lands at the very end of
    cycle 4 (the floor) instead of restarting. Stepping torch's scheduler once per step (no ``epoch``) is
    exact, and that is the path the contract compares against. Ours restarts exactly at 121."""
    schedule = CosineRestartsSchedule(0.5, 1, 3.0)
    assert schedule.cycle_ends(121) == [1, 4, 13, 40, 121]
    assert schedule(121) == 0.5  # a restart: the full rate
    assert schedule(120) == pytest.approx(0.25 * (1 + math.cos(math.pi * 80 / 81)), rel=1e-12)
    incremental = torch_trace(lambda opt: torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(opt, 1, 3), 122)
    assert incremental[121][0] == pytest.approx(0.5, rel=1e-12)
    assert incremental[120][0] == pytest.approx(schedule(120), rel=1e-9)

    param = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([param], lr=0.5)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(opt, 1, 3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "The epoch parameter in `scheduler.step()` was not necessary..."
        scheduler.step(121)
    explicit = opt.param_groups[0]["lr"]
    # torch 2.x gives the floor 0.0 here; accept a future fix, but nothing else.
    assert explicit == pytest.approx(0.0, abs=1e-12) or explicit == pytest.approx(0.5, rel=1e-12)


def test_whole_step_restarts_survive_rounding() -> None:
    """F (m^i - 1) / (m - 1) in floating point can miss a whole step by an ulp (21 (0.1 - 1) / (0.1 - 1) is
    21.000000000000004), which would leave the restart step at the end of the previous cycle. Every cycle that
    starts on a whole step must restart exactly there."""
    misplaced = []
    for tenths in range(1, 40):
        t_mul = tenths / 10
        if t_mul == 1:
            continue
        for first_cycle in range(1, 40):
            schedule = CosineRestartsSchedule(1.0, first_cycle, t_mul)
            for step, index in exact_restart_steps(first_cycle, t_mul, 2000).items():
                if index and schedule.cycle_index(step) != index:
                    misplaced.append((first_cycle, t_mul, step))
    assert misplaced == []
    assert CosineRestartsSchedule(1.0, 21, 0.1)(21) == 1.0
    assert CosineRestartsSchedule(1.0, 10, 0.8)(18) == 1.0


# ---------------------------------------------------------------------------------------------- Keras
@pytest.fixture(scope="module")
def keras() -> Any:
    os.environ["KERAS_BACKEND"] = "torch"  # before the first import; Keras 3 picks its backend once
    return pytest.importorskip("keras")


KERAS_CASES = [  # (first_cycle, t_mul, m_mul, alpha)
    (10, 2.0, 1.0, 0.0),
    (10, 2.0, 0.5, 0.1),
    (10, 1.5, 0.5, 0.1),
    (7, 1.0, 0.5, 0.1),
    (7, 1.0, 1.0, 0.0),
    (3, 3.0, 1.0, 0.0),
    (10, 0.8, 1.0, 0.0),
    (20, 0.8, 0.5, 0.1),
    (8, 0.5, 1.0, 0.2),
]


def _keras_steps(first_cycle: int, t_mul: float) -> int:
    # Shrinking cycles (t_mul < 1) add up to F / (1 - t_mul): Keras returns NaN past that limit.
    return 400 if t_mul >= 1 else int(first_cycle / (1 - t_mul)) - 1


@pytest.mark.parametrize("first_cycle,t_mul,m_mul,alpha", KERAS_CASES)
def test_cosine_restarts_equals_keras_float64(keras: Any, first_cycle: int, t_mul: float, m_mul: float,
                                             alpha: float) -> None:
    """Keras CosineDecayRestarts computed in float64 agrees with ours to 1e-9 at every step, restarts included."""
    previous = keras.config.floatx()
    keras.config.set_floatx("float64")
    try:
        reference = keras.optimizers.schedules.CosineDecayRestarts(
            initial_learning_rate=0.5, first_decay_steps=first_cycle, t_mul=t_mul, m_mul=m_mul, alpha=alpha
        )
        schedule = CosineRestartsSchedule(0.5, first_cycle, t_mul, m_mul, alpha)
        for step in range(_keras_steps(first_cycle, t_mul)):
            expected = float(reference(step))
            assert abs(schedule(step) - expected) <= REL * 0.5, f"step {step}: {schedule(step)} != {expected}"
    finally:
        keras.config.set_floatx(previous)


@pytest.mark.parametrize("first_cycle,t_mul,m_mul,alpha", KERAS_CASES)
def test_cosine_restarts_equals_keras_float32(keras: Any, first_cycle: int, t_mul: float, m_mul: float,
                                             alpha: float) -> None:
    """Keras CosineDecayRestarts with its default float32 computation.

    Tolerance: float32 carries 24 bits (eps = 1.19e-7). Keras derives the position in the cycle from step / F
    in float32, whose rounding (relative eps) is an absolute error of about eps * step / F in units of F, and
    so of eps * step / T_i in units of the current cycle's length T_i. We allow
    8 * eps * max_lr * (1 + step / T_i); the largest difference measured away from restarts was
    1.34 * eps * max_lr * (1 + step / T_i), with t_mul=0.8 near the limit where cycles last about one step.

    At a step where a cycle starts exactly (e.g. step 25 for F=10, t_mul=1.5: 10 + 15), float32's
    ``floor(log(2.25) / log(1.5))`` can come out as 1 instead of 2, and Keras then returns the previous
    cycle's end (the floor alpha * max_lr) instead of the restart. The float64 test shows those are Keras's
    rounding: there we assert our value equals the exact restart value, and accept Keras at either.
    """
    max_lr = 0.5
    reference = keras.optimizers.schedules.CosineDecayRestarts(
        initial_learning_rate=max_lr, first_decay_steps=first_cycle, t_mul=t_mul, m_mul=m_mul, alpha=alpha
    )
    schedule = CosineRestartsSchedule(max_lr, first_cycle, t_mul, m_mul, alpha)
    steps = _keras_steps(first_cycle, t_mul)
    restarts = exact_restart_steps(first_cycle, t_mul, steps)
    for step in range(steps):
        ours, theirs = schedule(step), float(reference(step))
        cycle_length = first_cycle * t_mul ** schedule.cycle_index(step)
        tolerance = 8 * FLOAT32_EPS * max_lr * (1 + step / cycle_length)
        if step in restarts:
            restart_value = max_lr * ((1 - alpha) * m_mul ** restarts[step] + alpha)
            assert ours == pytest.approx(restart_value, rel=1e-12), f"restart at step {step}"
            assert abs(theirs - ours) <= tolerance or abs(theirs - max_lr * alpha) <= tolerance
        else:
            assert abs(ours - theirs) <= tolerance, f"step {step}: {ours} != Keras {theirs}"


def test_shrinking_cycles_hold_the_floor_past_their_limit() -> None:
    """With t_mul < 1 the cycles add up to F / (1 - t_mul) steps (50 for F=10, t_mul=0.8); Keras returns NaN
    from there on. Ours holds the floor alpha * max_lr, for any step."""
    schedule = CosineRestartsSchedule(0.5, 10, 0.8, 1.0, 0.1)
    assert schedule.cycle_ends(100) == [10, 18, 50]
    for step in (50, 51, 1000, 10**12):
        assert schedule(step) == 0.5 * 0.1


def test_seed_formula_is_the_first_cycle() -> None:
    """The seed formula lr(t) = base_lr (1 + cos(pi t / T)) / 2 is CosineRestartsSchedule's first cycle, which
    then restarts every T steps."""
    base_lr, period = 0.3, 7
    schedule = CosineRestartsSchedule(peak=base_lr, first_cycle=period)
    for t in range(3 * period):
        seed = base_lr * (1 + math.cos(math.pi * (t % period) / period)) / 2
        assert schedule(t) == pytest.approx(seed, rel=1e-12, abs=1e-15)
    assert schedule(0) == schedule(period) == schedule(2 * period) == base_lr


# ---------------------------------------------------------------------------------------------- literal tables
LITERAL_TABLES = [
    (CyclicSchedule(0.1, 1.0, 2), [0.1, 0.55, 1.0, 0.55, 0.1, 0.55, 1.0, 0.55, 0.1]),
    (CyclicSchedule(0.0, 8.0, 2, mode="triangular2"), [0, 4, 8, 4, 0, 2, 4, 2, 0, 1, 2, 1, 0]),
    (CyclicSchedule(0.0, 6.0, 1, 3), [0, 6, 4, 2, 0, 6, 4, 2, 0]),
    (CyclicSchedule(0.0, 6.0, 3, 1), [0, 2, 4, 6, 0, 2, 4, 6, 0]),
    (CyclicSchedule(0.0, 1.0, 1, mode="exp_range", gamma=0.5), [0, 0.5, 0, 0.125, 0, 0.03125]),
    (CyclicSchedule(0.9, 0.8, 2), [0.9, 0.85, 0.8, 0.85, 0.9]),  # momentum: falls while the rate rises
    # linear 1cycle: up over steps 0..2 (pct_start * T - 1 = 2), down to the end at T - 1 = 5, then held
    (OneCycleSchedule(1.0, 4.0, 1.0, 6, 0.5, "linear"), [1, 2.5, 4, 3, 2, 1, 1, 1]),
    (OneCycleSchedule(0.0, 2.0, 0.0, 5, 0.6, "cos"), [0, 1, 2, 1, 0, 0]),
    # three phases: up by pct*T - 1 = 1, back down by 2*pct*T - 2 = 2, then to the final value by T - 1 = 7
    (OneCycleSchedule(1.0, 3.0, 0.0, 8, 0.25, "linear", three_phase=True), [1, 3, 1, 0.8, 0.6, 0.4, 0.2, 0, 0]),
    (CosineRestartsSchedule(2.0, 2, alpha=0.5), [2.0, 1.5, 2.0, 1.5, 2.0]),
    (
        CosineRestartsSchedule(1.0, 4, t_mul=2.0, m_mul=0.5),
        [1.0, 0.8535533905932737, 0.5, 0.14644660940672624,  # cycle 0: steps 0-3
         0.5, 0.4809698831278217, 0.42677669529663687, 0.3456708580912725,  # cycle 1: steps 4-11, peak 0.5
         0.25, 0.15432914190872757, 0.07322330470336313, 0.019030116872178315,
         0.25],  # cycle 2 at step 12, peak 0.25
    ),
    (LinearRamp(1.0, 3.0, 5), [1.0, 1.5, 2.0, 2.5, 3.0, 3.0]),
    (ExponentialRamp(1e-4, 1.0, 5), [1e-4, 1e-3, 1e-2, 1e-1, 1.0, 1.0]),
    (ConstantSchedule(0.25), [0.25, 0.25, 0.25]),
]


@pytest.mark.parametrize("schedule,expected", LITERAL_TABLES,
                         ids=[f"{type(s).__name__}-{i}" for i, (s, _) in enumerate(LITERAL_TABLES)])
def test_hand_computed_values(schedule: Any, expected: list[float]) -> None:
    assert schedule.values(len(expected)) == pytest.approx(expected, rel=1e-12, abs=1e-15)


def test_values_lists_the_first_steps() -> None:
    schedule = CyclicSchedule(0.1, 1.0, 3, mode="triangular2")
    assert schedule.values(20) == [schedule(k) for k in range(20)]
    assert schedule.values(0) == []


# ---------------------------------------------------------------------------------------------- cycle ends
@pytest.mark.parametrize(
    "schedule,steps,ends",
    [
        (CosineRestartsSchedule(1.0, first_cycle=6, t_mul=2), 42, [6, 18, 42]),
        (CosineRestartsSchedule(1.0, first_cycle=6, t_mul=2), 41, [6, 18]),
        (CosineRestartsSchedule(1.0, first_cycle=5), 17, [5, 10, 15]),
        (CosineRestartsSchedule(1.0, first_cycle=1, t_mul=3), 121, [1, 4, 13, 40, 121]),
        # 4, 10, 19, 32.5, 52.75, ...: only ends on a whole step count are listed
        (CosineRestartsSchedule(1.0, first_cycle=4, t_mul=1.5), 100, [4, 10, 19]),
        # 8 + 4 + 2 + 1 + ...: shrinking cycles end at the limit 2 F = 16, where the schedule ends
        (CosineRestartsSchedule(1.0, first_cycle=8, t_mul=0.5), 100, [8, 12, 14, 15, 16]),
        (CyclicSchedule(0.0, 1.0, 3, 2), 20, [5, 10, 15, 20]),
        (CyclicSchedule(0.0, 1.0, 3), 5, []),
        (OneCycleSchedule(0.1, 1.0, 0.0, 10), 9, []),
        (OneCycleSchedule(0.1, 1.0, 0.0, 10), 10, [10]),
        (ConstantSchedule(1.0), 100, []),
    ],
)
def test_cycle_ends(schedule: Any, steps: int, ends: list[int]) -> None:
    assert schedule.cycle_ends(steps) == ends


@FAST
@given(
    first_cycle=st.integers(1, 20),
    t_mul=st.sampled_from([1.0, 2.0, 3.0, 4.0]),
    peak=st.floats(0.01, 10.0),
)
def test_listed_cycle_ends_are_restarts(first_cycle: int, t_mul: float, peak: float) -> None:
    """After each listed count n of steps the schedule sits at a restart: step n has the full rate."""
    schedule = CosineRestartsSchedule(peak, first_cycle, t_mul)
    ends = schedule.cycle_ends(2000)
    assert ends == [e for e in exact_restart_steps(first_cycle, t_mul, 2000) if e > 0]
    for previous, end in zip([0, *ends], ends, strict=False):
        assert schedule(end) == peak
        if end - previous > 1:  # the step before is the last of a longer cycle, below the peak
            assert schedule(end - 1) < peak


# ---------------------------------------------------------------------------------------------- properties
modes = st.sampled_from(["triangular", "triangular2", "exp_range"])
sizes = st.integers(1, 40)
starts = st.floats(0.0, 5.0)
heights = st.floats(1e-3, 5.0)


@FAST
@given(start=starts, height=heights, up=sizes, down=st.none() | sizes, mode=modes, gamma=st.floats(0.5, 1.0),
       step=st.integers(0, 10**7), inverse=st.booleans())
def test_cyclic_stays_within_bounds(start: float, height: float, up: int, down: int | None, mode: str,
                                    gamma: float, step: int, inverse: bool) -> None:
    low, high = start, start + height
    bounds = (high, low) if inverse else (low, high)
    schedule = CyclicSchedule(*bounds, up, down, mode, gamma)
    value = schedule(step)
    slack = 1e-12 * high
    assert low - slack <= value <= high + slack


@FAST
@given(start=starts, height=heights, up=sizes, down=st.none() | sizes, step=st.integers(0, 10**5),
       cycles=st.integers(1, 50))
def test_triangular_is_periodic(start: float, height: float, up: int, down: int | None, step: int,
                                cycles: int) -> None:
    schedule = CyclicSchedule(start, start + height, up, down)
    later = step + cycles * schedule.cycle_length
    assert schedule(later) == pytest.approx(schedule(step), rel=1e-9, abs=1e-9 * height)


@FAST
@given(start=starts, height=heights, up=sizes, down=st.none() | sizes, step=st.integers(0, 10**4))
def test_triangular2_amplitude_halves_every_cycle(start: float, height: float, up: int, down: int | None,
                                                  step: int) -> None:
    schedule = CyclicSchedule(start, start + height, up, down, mode="triangular2")
    above = schedule(step) - start
    above_next_cycle = schedule(step + schedule.cycle_length) - start
    assert above_next_cycle == pytest.approx(above / 2, rel=1e-9, abs=1e-9 * height)


@FAST
@given(initial=st.floats(0.01, 1.0), ratio=st.floats(1.0, 100.0), final_ratio=st.floats(1e-5, 1.0),
       total=st.integers(1, 500), pct=st.floats(0.01, 0.99), anneal=st.sampled_from(["cos", "linear"]),
       three_phase=st.booleans(), step=st.integers(0, 10**6))
def test_one_cycle_bounds_and_past_the_end(initial: float, ratio: float, final_ratio: float, total: int,
                                           pct: float, anneal: str, three_phase: bool, step: int) -> None:
    """Within [final, peak] at every step; from step T - 1 on it holds its final value and never raises
    (torch raises "Tried to step X times")."""
    # Three phases end by 2 pct T - 2; past T - 1 (pct_start >= about 1/2) torch never reaches the last phase.
    assume(not three_phase or 2 * pct * total - 2 < total - 1)
    peak, final = initial * ratio, initial * final_ratio
    schedule = OneCycleSchedule(initial, peak, final, total, pct, anneal, three_phase)
    value = schedule(step)
    slack = 1e-12 * peak
    assert final - slack <= value <= peak + slack
    assert schedule.total_steps_or_none == total
    last = schedule(total - 1)
    # torch's cos formula leaves (peak - final) / 2 * (1 + cos(pi)), about 1e-16 * peak, at the last step.
    assert last == pytest.approx(final, rel=1e-12, abs=1e-15 * peak)
    assert schedule(total - 1 + step) == last


@FAST
@given(peak=st.floats(0.01, 10.0), first_cycle=st.integers(1, 50), t_mul=st.floats(0.05, 5.0),
       m_mul=st.floats(0.05, 1.0), alpha=st.floats(0.0, 1.0), step=st.integers(0, 10**12))
def test_cosine_restarts_bounds_and_never_raises(peak: float, first_cycle: int, t_mul: float, m_mul: float,
                                                 alpha: float, step: int) -> None:
    value = CosineRestartsSchedule(peak, first_cycle, t_mul, m_mul, alpha)(step)
    assert math.isfinite(value)
    assert peak * alpha * (1 - 1e-12) <= value <= peak * (1 + 1e-12)


@settings(max_examples=80, deadline=None)
@given(peak=st.floats(0.01, 10.0), first_cycle=st.integers(1, 30),
       t_mul=st.sampled_from([0.5, 0.75, 0.8, 1.0, 1.1, 1.25, 1.5, 2.0, 2.5, 3.0]),
       m_mul=st.floats(0.1, 1.0), alpha=st.floats(0.0, 1.0), data=st.data())
def test_cosine_restarts_equals_exact_arithmetic(peak: float, first_cycle: int, t_mul: float, m_mul: float,
                                                 alpha: float, data: st.DataObject) -> None:
    """Against cycle boundaries computed in exact rational arithmetic, at the first restarts, the steps just
    before them and random steps: a restart misplaced by one step would be off by the whole amplitude."""
    up_to = 2000 if t_mul >= 1 else int(first_cycle / (1 - t_mul)) + 3
    cycles = exact_cycles(first_cycle, t_mul, up_to)
    restarts = [step for step in exact_restart_steps(first_cycle, t_mul, up_to)][:15]
    randoms = data.draw(st.lists(st.integers(0, up_to), min_size=5, max_size=5))
    schedule = CosineRestartsSchedule(peak, first_cycle, t_mul, m_mul, alpha)
    for step in {*restarts, *(max(0, r - 1) for r in restarts), *randoms}:
        expected = reference_restarts(cycles, peak, t_mul, m_mul, alpha, step)
        assert schedule(step) == pytest.approx(expected, rel=1e-9, abs=1e-9 * peak), f"step {step}"


@FAST
@given(start=st.floats(1e-5, 1.0), end=st.floats(1e-5, 1.0), num_steps=st.integers(1, 100),
       step=st.integers(0, 10**6))
def test_ramps_stay_within_their_ends_and_hold_the_last(start: float, end: float, num_steps: int,
                                                        step: int) -> None:
    for ramp in (LinearRamp(start, end, num_steps), ExponentialRamp(start, end, num_steps)):
        low, high = min(start, end), max(start, end)
        assert low * (1 - 1e-12) <= ramp(step) <= high * (1 + 1e-12)
        assert ramp(num_steps - 1 + step) == ramp(num_steps - 1) == pytest.approx(end, rel=1e-12)


# ---------------------------------------------------------------------------------------------- value semantics
ALL_SCHEDULES = [
    CyclicSchedule(0.1, 1.0, 3, 5, "exp_range", 0.99),
    OneCycleSchedule(0.04, 1.0, 4e-6, 100, 0.25, "linear", True),
    CosineRestartsSchedule(0.1, 10, 2.0, 0.5, 0.1),
    ConstantSchedule(0.1),
    LinearRamp(0.0, 1.0, 10),
    ExponentialRamp(1e-5, 1.0, 10),
]


@pytest.mark.parametrize("schedule", ALL_SCHEDULES, ids=lambda s: type(s).__name__)
def test_schedules_are_hashable_frozen_values_that_pickle(schedule: Any) -> None:
    assert dataclasses.is_dataclass(schedule)
    assert isinstance(schedule, Schedule)
    for clone in (pickle.loads(pickle.dumps(schedule)), copy.deepcopy(schedule), copy.copy(schedule)):
        assert clone == schedule and clone is not schedule
        assert hash(clone) == hash(schedule)
        assert clone.values(30) == schedule.values(30)
    assert len({schedule, copy.deepcopy(schedule)}) == 1
    field = dataclasses.fields(schedule)[0].name
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(schedule, field, 0.5)


@pytest.mark.parametrize(
    "make,argument",
    [
        (lambda: CyclicSchedule(0.1, 1.0, 0), "step_size_up"),
        (lambda: CyclicSchedule(0.1, 1.0, 2.5), "step_size_up"),
        (lambda: CyclicSchedule(0.1, 1.0, True), "step_size_up"),
        (lambda: CyclicSchedule(0.1, 1.0, 2, 0), "step_size_down"),
        (lambda: CyclicSchedule(0.1, 1.0, 2, mode="cosine"), "mode"),
        (lambda: CyclicSchedule(0.1, 1.0, 2, gamma=0.0), "gamma"),
        (lambda: CyclicSchedule(0.1, 1.0, 2, gamma=-1.0), "gamma"),
        (lambda: CyclicSchedule(0.1, 1.0, 2, gamma=1.01), "gamma"),
        (lambda: CosineRestartsSchedule(1.0, 10, m_mul=1.5), "m_mul"),
        (lambda: CyclicSchedule(float("nan"), 1.0, 2), "start"),
        (lambda: CyclicSchedule(0.1, float("inf"), 2), "peak"),
        (lambda: OneCycleSchedule(0.1, 1.0, 0.0, 0), "total_steps"),
        (lambda: OneCycleSchedule(0.1, 1.0, 0.0, 10, pct_start=0.0), "pct_start"),
        (lambda: OneCycleSchedule(0.1, 1.0, 0.0, 10, pct_start=1.0), "pct_start"),
        (lambda: OneCycleSchedule(0.1, 1.0, 0.0, 10, anneal_strategy="cosine"), "anneal_strategy"),
        (lambda: CosineRestartsSchedule(1.0, 0), "first_cycle"),
        (lambda: CosineRestartsSchedule(1.0, 10, t_mul=0.0), "t_mul"),
        (lambda: CosineRestartsSchedule(1.0, 10, t_mul=-2.0), "t_mul"),
        (lambda: CosineRestartsSchedule(1.0, 10, m_mul=0.0), "m_mul"),
        (lambda: CosineRestartsSchedule(1.0, 10, alpha=-0.1), "alpha"),
        (lambda: CosineRestartsSchedule(1.0, 10, alpha=1.5), "alpha"),
        (lambda: CosineRestartsSchedule(float("nan"), 10), "peak"),
        (lambda: ConstantSchedule(float("inf")), "value"),
        (lambda: LinearRamp(0.0, 1.0, 0), "num_steps"),
        (lambda: ExponentialRamp(0.0, 1.0, 10), "start"),
        (lambda: ExponentialRamp(1e-3, 1.0, -1), "num_steps"),
    ],
)
def test_bad_schedule_arguments_raise_value_error(make: Callable[[], Any], argument: str) -> None:
    with pytest.raises(ValueError, match=f"Expected {argument}"):
        make()
