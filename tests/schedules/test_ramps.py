"""LinearRamp and ExponentialRamp (:mod:`lightning_clr.schedules.ramps`): within their ends, holding the last."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lightning_clr.schedules import ExponentialRamp, LinearRamp

from .references import FAST


@FAST
@given(start=st.floats(1e-5, 1.0), end=st.floats(1e-5, 1.0), num_steps=st.integers(1, 100),
       step=st.integers(0, 10**6))
def test_ramps_stay_within_their_ends_and_hold_the_last(start: float, end: float, num_steps: int,
                                                        step: int) -> None:
    for ramp in (LinearRamp(start, end, num_steps), ExponentialRamp(start, end, num_steps)):
        low, high = min(start, end), max(start, end)
        assert low * (1 - 1e-12) <= ramp(step) <= high * (1 + 1e-12)
        assert ramp(num_steps - 1 + step) == ramp(num_steps - 1) == pytest.approx(end, rel=1e-12)
