"""CyclicSchedule (:mod:`lightning_clr.schedules.cyclic`): torch's CyclicLR, step for step, and its properties."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from lightning_clr.schedules import CyclicSchedule

from .references import FAST, assert_rel, torch_trace


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
