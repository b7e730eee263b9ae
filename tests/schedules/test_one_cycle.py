"""OneCycleSchedule (:mod:`lightning_clr.schedules.one_cycle`): torch's OneCycleLR, step for step, and its
bounds past the end."""

from __future__ import annotations

import pytest
import torch
from hypothesis import assume, given
from hypothesis import strategies as st

from lightning_clr.schedules import OneCycleSchedule

from .references import FAST, assert_rel, torch_trace


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
