"""WarmupStableDecaySchedule (:mod:`lightning_clr.schedules.wsd`): transformers' ``get_wsd_schedule`` step for step,
literal tables, and its properties (bounds, monotone phases, the floor held, value semantics)."""

from __future__ import annotations

import inspect
import itertools
import math
import pickle
import warnings
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lightning_clr.schedules import WSD_SHAPES, WarmupStableDecaySchedule

from .references import FAST, assert_rel, torch_trace


# ---------------------------------------------------------------------------------------------- transformers
@pytest.fixture(scope="module")
def get_wsd_schedule() -> Any:
    """transformers' ``get_wsd_schedule``, from a release whose warm-up starts at ``min_lr_ratio`` (the one with
    ``warmup_type``; older ones warm up from 0 and cool down by a cosine only)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # transformers' own import-time warnings, none of ours
        optimization = pytest.importorskip("transformers.optimization")
    function = optimization.get_wsd_schedule
    if "warmup_type" not in inspect.signature(function).parameters:
        pytest.skip("this transformers release has no warmup_type (its warm-up ignores min_lr_ratio)")
    return function


LENGTHS = [(0, 0, 7), (0, 5, 9), (4, 0, 6), (3, 5, 10), (10, 20, 30), (1, 1, 1), (7, 3, 0), (0, 0, 1)]


@pytest.mark.parametrize("floor", [0.0, 0.05])
@pytest.mark.parametrize("warmup,stable,decay", LENGTHS)
@pytest.mark.parametrize("decay_shape", WSD_SHAPES)
@pytest.mark.parametrize("warmup_shape", WSD_SHAPES)
def test_wsd_equals_transformers_get_wsd_schedule(get_wsd_schedule: Any, warmup_shape: str, decay_shape: str,
                                                  warmup: int, stable: int, decay: int, floor: float) -> None:
    """transformers' LambdaLR, stepped once after every optimizer step (its lr at optimizer step t is
    base lr x lambda(t)), with base lr = peak and min_lr_ratio = floor / peak, to 1e-9 at every step of the three
    phases and 10 steps past their end."""
    peak = 0.5  # torch_trace's optimizers start at lr=0.5
    total = warmup + stable + decay
    reference = torch_trace(
        lambda opt: get_wsd_schedule(opt, num_warmup_steps=warmup, num_decay_steps=decay, num_stable_steps=stable,
                                     warmup_type=warmup_shape, decay_type=decay_shape, min_lr_ratio=floor / peak),
        total + 10,
    )
    schedule = WarmupStableDecaySchedule(peak, warmup, stable, decay, floor, warmup_shape, decay_shape)
    for step, (lr, _) in enumerate(reference):
        assert_rel(schedule(step), lr, what=f"lr at step {step}")
    assert schedule.total_steps_or_none == total


# ---------------------------------------------------------------------------------------------- literal tables
@pytest.mark.parametrize("schedule,expected", [
    # warm-up 0 -> 1 over steps 0..3 (1 at step 4), plateau 4..5, linear cool-down 6..9, 0 from step 10
    (WarmupStableDecaySchedule(1.0, 4, 2, 4, decay_shape="linear"),
     [0.0, 0.25, 0.5, 0.75, 1.0, 1.0, 1.0, 0.75, 0.5, 0.25, 0.0, 0.0]),
    # a floor: the warm-up starts there and the cool-down ends there
    (WarmupStableDecaySchedule(2.0, 2, 1, 2, floor=1.0, decay_shape="linear"), [1.0, 1.5, 2.0, 2.0, 1.5, 1.0, 1.0]),
    # 1-sqrt cool-down over 4 steps: 1 - sqrt(k / 4)
    (WarmupStableDecaySchedule(1.0, 0, 1, 4), [1.0, 1.0, 0.5, 1 - math.sqrt(0.5), 1 - math.sqrt(0.75), 0.0]),
    # 1-sqrt warm-up over 4 steps: 1 - sqrt(1 - k / 4)
    (WarmupStableDecaySchedule(1.0, 4, 0, 1, warmup_shape="1-sqrt"),
     [0.0, 1 - math.sqrt(0.75), 1 - math.sqrt(0.5), 0.5, 1.0, 0.0]),
    # cosine both ways over 2 steps: half way at the middle step
    (WarmupStableDecaySchedule(4.0, 2, 0, 2, warmup_shape="cosine", decay_shape="cosine"),
     [0.0, 2.0, 4.0, 2.0, 0.0]),
    # no cool-down: the floor right after the plateau
    (WarmupStableDecaySchedule(1.0, 0, 2, 0, floor=0.25), [1.0, 1.0, 0.25, 0.25]),
], ids=["linear", "floor", "1-sqrt-decay", "1-sqrt-warmup", "cosine", "no-decay"])
def test_wsd_literal_tables(schedule: WarmupStableDecaySchedule, expected: list[float]) -> None:
    assert schedule.values(len(expected)) == pytest.approx(expected, rel=1e-12, abs=1e-15)


def test_wsd_ends_its_cycle_at_the_end_of_the_cool_down() -> None:
    schedule = WarmupStableDecaySchedule(1.0, 10, 50, 20)
    assert schedule.total_steps_or_none == 80
    assert schedule.cycle_ends(79) == []
    assert schedule.cycle_ends(80) == schedule.cycle_ends(1000) == [80]
    assert WarmupStableDecaySchedule(1.0, 0, 0, 0).cycle_ends(10) == []  # no steps: no cycle


# ---------------------------------------------------------------------------------------------- properties
shapes = st.sampled_from(WSD_SHAPES)
lengths = st.integers(0, 60)


@st.composite
def wsd_schedules(draw: st.DrawFn) -> WarmupStableDecaySchedule:
    peak = draw(st.floats(1e-6, 10.0))
    floor = draw(st.sampled_from([0.0, peak]) | st.floats(0.0, 1.0).map(lambda share: share * peak))
    return WarmupStableDecaySchedule(peak, draw(lengths), draw(lengths), draw(lengths), floor, draw(shapes),
                                     draw(shapes))


@FAST
@given(schedule=wsd_schedules(), past=st.integers(0, 10**9))
def test_wsd_bounds_phases_and_the_floor_after_the_end(schedule: WarmupStableDecaySchedule, past: int) -> None:
    """Within [floor, peak]; rising through the warm-up, the peak on the plateau, falling through the cool-down;
    ``floor`` itself at step 0 (with a warm-up) and from the end on."""
    peak, floor = schedule.peak, schedule.floor
    warmup, plateau_end = schedule.warmup_steps, schedule.warmup_steps + schedule.stable_steps
    end = plateau_end + schedule.decay_steps
    values = schedule.values(end + 2)
    slack = 1e-12 * peak
    assert all(floor - slack <= v <= peak + slack for v in values)
    # the rise takes in step W, the peak, unless the schedule ends there (no plateau, no cool-down: the floor)
    rise, plateau, fall = values[:min(warmup + 1, end)], values[warmup:plateau_end], values[plateau_end:end + 1]
    assert all(a <= b + slack for a, b in itertools.pairwise(rise))
    assert plateau == [peak] * schedule.stable_steps
    assert all(a + slack >= b for a, b in itertools.pairwise(fall))
    if warmup:
        assert values[0] == floor
    assert schedule(end) == schedule(end + past) == floor
    assert schedule.total_steps_or_none == end


@FAST
@given(schedule=wsd_schedules(), step=st.integers(0, 200))
def test_wsd_pickles_and_equals_after_pickling(schedule: WarmupStableDecaySchedule, step: int) -> None:
    loaded = pickle.loads(pickle.dumps(schedule))
    assert loaded == schedule and hash(loaded) == hash(schedule)
    assert loaded(step) == schedule(step)


# ---------------------------------------------------------------------------------------------- arguments
@pytest.mark.parametrize("kwargs,argument", [
    ({"peak": -1.0}, "peak"),
    ({"peak": float("nan")}, "peak"),
    ({"warmup_steps": -1}, "warmup_steps"),
    ({"warmup_steps": 2.5}, "warmup_steps"),
    ({"stable_steps": True}, "stable_steps"),
    ({"decay_steps": -3}, "decay_steps"),
    ({"floor": -0.1}, "floor"),
    ({"floor": 2.0}, "floor"),  # above the peak
    ({"warmup_shape": "sqrt"}, "warmup_shape"),
    ({"decay_shape": "exponential"}, "decay_shape"),
])
def test_wsd_arguments_are_checked(kwargs: dict[str, Any], argument: str) -> None:
    arguments = {"peak": 1.0, "warmup_steps": 2, "stable_steps": 3, "decay_steps": 4, **kwargs}
    with pytest.raises(ValueError, match=f"Expected {argument} to be .*, but got {kwargs[argument]!r}"):
        WarmupStableDecaySchedule(**arguments)
