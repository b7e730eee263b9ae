"""SequenceSchedule and with_warmup (:mod:`lightning_clr.schedules.sequence`): each part at its own steps (optax's
``join_schedules``), the end and the cycle ends, the arguments, value semantics; the warm-up's values."""

from __future__ import annotations

import pickle
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lightning_clr.schedules import (
    ConstantSchedule,
    CosineRestartsSchedule,
    CyclicSchedule,
    LinearRamp,
    OneCycleSchedule,
    SequenceSchedule,
    WarmupStableDecaySchedule,
    with_warmup,
)

from .references import FAST

PARTS = st.sampled_from([
    CyclicSchedule(0.1, 1.0, 3, 2, "triangular2"),
    OneCycleSchedule(0.04, 1.0, 4e-6, 17),
    CosineRestartsSchedule(0.5, 4, 2.0),
    LinearRamp(0.0, 1.0, 9),
    ConstantSchedule(0.3),
    WarmupStableDecaySchedule(1.0, 3, 4, 5, 0.1),
])


@st.composite
def sequences(draw: st.DrawFn) -> SequenceSchedule:
    schedules = draw(st.lists(PARTS, min_size=1, max_size=4))
    gaps = draw(st.lists(st.integers(1, 40), min_size=len(schedules) - 1, max_size=len(schedules) - 1))
    boundaries = [sum(gaps[:i + 1]) for i in range(len(gaps))]
    return SequenceSchedule(schedules, boundaries)


# ---------------------------------------------------------------------------------------------- values
@FAST
@given(sequence=sequences())
def test_each_step_is_the_right_part_at_its_own_step(sequence: SequenceSchedule) -> None:
    """Part i at step t - b[i-1] for b[i-1] <= t < b[i], as optax's join_schedules: a boundary starts the next part
    at its step 0."""
    starts = [0, *sequence.boundaries]
    ends = [*sequence.boundaries, starts[-1] + 60]
    for part, start, end in zip(sequence.schedules, starts, ends, strict=True):
        for step in range(start, end):
            assert sequence(step) == part(step - start), f"step {step}"


def test_literal_table() -> None:
    """A 4-step ramp 0 -> 1 (reached at its step 3), a triangle wave of period 2 from step 5, a constant from 9."""
    sequence = SequenceSchedule([LinearRamp(0.0, 0.75, 4), CyclicSchedule(0.0, 1.0, 1), ConstantSchedule(0.5)], [5, 9])
    assert sequence.values(12) == [0.0, 0.25, 0.5, 0.75, 0.75, 0.0, 1.0, 0.0, 1.0, 0.5, 0.5, 0.5]


def test_a_single_schedule_is_itself() -> None:
    schedule = CyclicSchedule(0.1, 1.0, 4)
    sequence = SequenceSchedule([schedule], [])
    assert sequence.values(30) == schedule.values(30)
    assert sequence.cycle_ends(30) == schedule.cycle_ends(30)
    assert sequence.total_steps_or_none is None


# ---------------------------------------------------------------------------------------------- end and cycle ends
def test_the_end_is_the_last_boundary_plus_the_last_part() -> None:
    assert SequenceSchedule([CyclicSchedule(0.1, 1.0, 4), OneCycleSchedule(0.1, 1.0, 0.0, 20)], [16]) \
        .total_steps_or_none == 36
    assert SequenceSchedule([OneCycleSchedule(0.1, 1.0, 0.0, 20), CyclicSchedule(0.1, 1.0, 4)], [20]) \
        .total_steps_or_none is None
    assert SequenceSchedule([ConstantSchedule(1.0), lambda step: 0.5], [3]).total_steps_or_none is None


@pytest.mark.parametrize("sequence,steps,ends", [
    # cycles of 8, cut at 20 (mid-cycle, not listed), then 1cycle of 10 ending at 30
    (SequenceSchedule([CyclicSchedule(0.1, 1.0, 4), OneCycleSchedule(0.1, 1.0, 0.0, 10)], [20]), 100, [8, 16, 30]),
    (SequenceSchedule([CyclicSchedule(0.1, 1.0, 4), OneCycleSchedule(0.1, 1.0, 0.0, 10)], [20]), 29, [8, 16]),
    # cut at a cycle's end: the boundary is that part's cycle end
    (SequenceSchedule([CyclicSchedule(0.1, 1.0, 4), CyclicSchedule(0.1, 1.0, 2)], [16]), 30, [8, 16, 20, 24, 28]),
    # two 1cycles of their spans' length: each ends at its boundary
    (SequenceSchedule([OneCycleSchedule(0.1, 1.0, 0.0, 10), OneCycleSchedule(0.1, 1.0, 0.0, 10)], [10]), 25, [10, 20]),
    # a ramp's end is no cycle's end; SGDR's restarts after it, shifted
    (SequenceSchedule([LinearRamp(0.0, 1.0, 6), CosineRestartsSchedule(1.0, 4, 2.0)], [5]), 40, [9, 17, 33]),
    # a part that ends before its boundary (WSD of 12 steps, boundary at 15): its end, then the next part's
    (SequenceSchedule([WarmupStableDecaySchedule(1.0, 2, 5, 5), CyclicSchedule(0.1, 1.0, 2)], [15]), 24, [12, 19, 23]),
    # a part without cycle_ends (a plain callable) lists none
    (SequenceSchedule([lambda step: 1.0, CyclicSchedule(0.1, 1.0, 2)], [3]), 12, [7, 11]),
])
def test_cycle_ends(sequence: SequenceSchedule, steps: int, ends: list[int]) -> None:
    assert sequence.cycle_ends(steps) == ends


@FAST
@given(sequence=sequences(), steps=st.integers(0, 300))
def test_cycle_ends_are_each_parts_within_its_span(sequence: SequenceSchedule, steps: int) -> None:
    starts = [0, *sequence.boundaries]
    expected: set[int] = set()
    for index, (part, start) in enumerate(zip(sequence.schedules, starts, strict=True)):
        span_end = sequence.boundaries[index] if index < len(sequence.boundaries) else steps
        expected |= {start + end for end in part.cycle_ends(steps) if 0 < start + end <= min(span_end, steps)}
    assert sequence.cycle_ends(steps) == sorted(expected)


# ---------------------------------------------------------------------------------------------- value semantics
@FAST
@given(sequence=sequences(), step=st.integers(0, 300))
def test_pickles_hashes_and_equals(sequence: SequenceSchedule, step: int) -> None:
    loaded = pickle.loads(pickle.dumps(sequence))
    assert loaded == sequence and hash(loaded) == hash(sequence)
    assert loaded(step) == sequence(step)


def test_lists_are_kept_as_tuples() -> None:
    """A LightningCLI config gives lists: the sequence keeps tuples, so it hashes and equals one built from them."""
    parts = [LinearRamp(0.0, 1.0, 3), ConstantSchedule(1.0)]
    from_lists, from_tuples = SequenceSchedule(parts, [3]), SequenceSchedule(tuple(parts), (3,))
    assert from_lists.schedules == tuple(parts) and from_lists.boundaries == (3,)
    assert from_lists == from_tuples and hash(from_lists) == hash(from_tuples)


@pytest.mark.parametrize("schedules,boundaries,match", [
    ([], [], "Expected schedules to be a non-empty list"),
    (ConstantSchedule(1.0), [], "Expected schedules to be a non-empty list"),
    ([ConstantSchedule(1.0), 0.5], [3], r"Expected schedules\[1\] to be a schedule"),
    ([ConstantSchedule(1.0), ConstantSchedule(0.5)], [], "Expected boundaries to be a list of 1 step"),
    ([ConstantSchedule(1.0), ConstantSchedule(0.5)], [3, 5], "Expected boundaries to be a list of 1 step"),
    ([ConstantSchedule(1.0), ConstantSchedule(0.5)], 3, "Expected boundaries to be a list of 1 step"),
    ([ConstantSchedule(1.0), ConstantSchedule(0.5)], [-1], r"Expected boundaries\[0\] to be a non-negative int"),
    ([ConstantSchedule(1.0), ConstantSchedule(0.5)], [2.5], r"Expected boundaries\[0\] to be a non-negative int"),
    ([ConstantSchedule(1.0), ConstantSchedule(0.5)], [True], r"Expected boundaries\[0\] to be a non-negative int"),
    ([ConstantSchedule(1.0)] * 3, [5, 5], "Expected boundaries to be strictly increasing, but got \\[5, 5\\]"),
    ([ConstantSchedule(1.0)] * 3, [5, 2], "Expected boundaries to be strictly increasing"),
])
def test_arguments_are_checked(schedules: Any, boundaries: Any, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        SequenceSchedule(schedules, boundaries)


# ---------------------------------------------------------------------------------------------- with_warmup
def test_with_warmup_literal_table() -> None:
    """From start at step 0 up in equal steps; at step W the schedule's own step 0, its first value."""
    warm = with_warmup(CyclicSchedule(0.5, 1.0, 2), 4, start=0.1)
    assert warm.values(10) == pytest.approx([0.1, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 0.75, 0.5, 0.75], rel=1e-12)
    assert warm == SequenceSchedule((LinearRamp(0.1, 0.5, 5), CyclicSchedule(0.5, 1.0, 2)), (4,))


@FAST
@given(peak=st.floats(1e-4, 10.0), start=st.floats(0.0, 1.0), warmup=st.integers(1, 200),
       step=st.integers(0, 10**6))
def test_with_warmup_climbs_linearly_then_runs_the_schedule(peak: float, start: float, warmup: int,
                                                            step: int) -> None:
    schedule = CosineRestartsSchedule(peak, 10, 2.0)
    warm = with_warmup(schedule, warmup, start * peak)
    assert warm(0) == start * peak
    assert warm(warmup + step) == schedule(step)
    inside = step % warmup
    assert warm(inside) == pytest.approx(start * peak + (peak - start * peak) * inside / warmup, rel=1e-12)
    # the same climb as CosineRestartsSchedule's own warm-up
    assert warm(inside) == pytest.approx(CosineRestartsSchedule(peak, 10, 2.0, warmup_steps=warmup,
                                                                warmup_start=start)(inside), rel=1e-12, abs=1e-300)
    assert warm.cycle_ends(warmup + 500) == [end + warmup for end in schedule.cycle_ends(500)]


def test_with_warmup_keeps_a_finite_schedule_finite() -> None:
    warm = with_warmup(OneCycleSchedule(0.04, 1.0, 4e-6, 20), 5)
    assert warm.total_steps_or_none == 25
    assert warm.cycle_ends(100) == [25]


@pytest.mark.parametrize("kwargs,match", [
    ({"warmup_steps": 0}, "Expected warmup_steps to be a positive int"),
    ({"warmup_steps": 2.0}, "Expected warmup_steps to be a positive int"),
    ({"start": float("nan")}, "Expected start to be a finite number"),
    ({"schedule": 0.1}, "Expected schedule to be a schedule"),
])
def test_with_warmup_arguments_are_checked(kwargs: dict[str, Any], match: str) -> None:
    arguments = {"schedule": ConstantSchedule(1.0), "warmup_steps": 3, **kwargs}
    with pytest.raises(ValueError, match=match):
        with_warmup(**arguments)
