"""What every schedule shares (:mod:`lightning_clr.schedules`' ``_base`` and ``__init__``): hand-computed
tables, cycle ends, value semantics (frozen, hashable, pickled, copied), the package's names and import paths
(pickles and LightningCLI ``class_path`` strings), and the argument checks."""

from __future__ import annotations

import copy
import dataclasses
import importlib
import json
import pickle
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import lightning_clr.schedules
from lightning_clr.schedules import (
    WSD_SHAPES,
    ConstantSchedule,
    CosineRestartsSchedule,
    CyclicSchedule,
    ExponentialRamp,
    LinearRamp,
    OneCycleSchedule,
    Schedule,
    ScheduleBase,
    SequenceSchedule,
    WarmupStableDecaySchedule,
    with_warmup,
)

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
    assert schedule.values(4, start=5) == [schedule(k) for k in range(5, 9)]


_rate = st.floats(1e-6, 10.0)
_fraction = st.floats(0.01, 0.99)
#: Every built-in schedule, with the corners of its arithmetic: 1cycle's phases of zero length, three phases whose
#: ends are out of order (pct_start > 0.5), both anneals; CLR's three modes and uneven halves; SGDR's growing,
#: constant and shrinking cycles (past their limit), m_mul, alpha and a warm-up; WSD's shapes and empty phases; a
#: warm-up in front of a cyclic schedule.
_SCHEDULES = st.one_of(
    st.builds(OneCycleSchedule, _rate, _rate, _rate, st.integers(1, 400), _fraction,
              st.sampled_from(["cos", "linear"]), st.booleans()),
    st.builds(CyclicSchedule, _rate, _rate, st.integers(1, 60), st.none() | st.integers(1, 60),
              st.sampled_from(["triangular", "triangular2", "exp_range"]), st.floats(0.9, 1.0)),
    st.builds(CosineRestartsSchedule, _rate, st.integers(1, 60), st.sampled_from([0.3, 0.7, 1.0, 1.5, 2.0, 3.0]),
              st.floats(0.3, 1.0), st.floats(0.0, 0.5), st.integers(0, 30), st.floats(0.0, 1.0)),
    st.builds(LinearRamp, _rate, _rate, st.integers(1, 300)),
    st.builds(ExponentialRamp, _rate, _rate, st.integers(1, 300)),
    st.builds(ConstantSchedule, _rate),
    st.builds(WarmupStableDecaySchedule, _rate, st.integers(0, 50), st.integers(0, 50), st.integers(0, 50),
              st.just(0.0), st.sampled_from(WSD_SHAPES), st.sampled_from(WSD_SHAPES)),
    st.builds(with_warmup, st.builds(CyclicSchedule, _rate, _rate, st.integers(1, 60)), st.integers(1, 50), _rate),
)


@settings(max_examples=200, deadline=None)
@given(schedule=_SCHEDULES, steps=st.lists(st.integers(0, 10**6), min_size=1, max_size=8))
def test_a_value_depends_on_the_step_alone(schedule: Any, steps: list[int]) -> None:
    """Pure: the value at a step is the same whatever was asked before, and the same from a pickled copy and from
    a schedule built anew from the fields."""
    fresh = [type(schedule)(**{f.name: getattr(schedule, f.name) for f in dataclasses.fields(schedule)})(step)
             for step in steps]
    assert [schedule(step) for step in steps] == fresh
    assert [schedule(step) for step in reversed(steps)] == fresh[::-1]
    assert [pickle.loads(pickle.dumps(schedule))(step) for step in steps] == fresh


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


# ---------------------------------------------------------------------------------------------- value semantics
ALL_SCHEDULES = [
    CyclicSchedule(0.1, 1.0, 3, 5, "exp_range", 0.99),
    OneCycleSchedule(0.04, 1.0, 4e-6, 100, 0.25, "linear", True),
    CosineRestartsSchedule(0.1, 10, 2.0, 0.5, 0.1),
    ConstantSchedule(0.1),
    LinearRamp(0.0, 1.0, 10),
    ExponentialRamp(1e-5, 1.0, 10),
    WarmupStableDecaySchedule(1.0, 10, 50, 20, 0.01, "cosine", "1-sqrt"),
    SequenceSchedule((LinearRamp(0.0, 1.0, 5), CosineRestartsSchedule(1.0, 10, 2.0)), (5,)),
    with_warmup(OneCycleSchedule(0.04, 1.0, 4e-6, 100), 10),
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


# ---------------------------------------------------------------------------------------------- names and paths
PUBLIC = ["ANNEAL_STRATEGIES", "CYCLIC_MODES", "WSD_SHAPES", "ConstantSchedule", "CosineRestartsSchedule",
          "CyclicSchedule", "ExponentialRamp", "LinearRamp", "OneCycleSchedule", "Schedule", "ScheduleBase",
          "SequenceSchedule", "WarmupStableDecaySchedule", "with_warmup"]


def test_the_package_exports_the_names_of_the_flat_module_it_replaced_and_the_new_ones() -> None:
    assert lightning_clr.schedules.__all__ == PUBLIC
    assert lightning_clr.schedules.CYCLIC_MODES == ("triangular", "triangular2", "exp_range")
    assert lightning_clr.schedules.ANNEAL_STRATEGIES == ("cos", "linear")
    assert lightning_clr.schedules.WSD_SHAPES == ("linear", "cosine", "1-sqrt")
    for name in PUBLIC:
        value = getattr(lightning_clr.schedules, name)
        if isinstance(value, type):  # each class lives in one module of the package, named after its family
            assert value.__module__.startswith("lightning_clr.schedules."), (name, value.__module__)


# Pickles written by lightning_clr before schedules became a package (``pickle.dumps(s, protocol=2)`` when
# the classes lived in the flat module lightning_clr/schedules.py): they name ``lightning_clr.schedules.<Class>``.
FLAT_MODULE_PICKLES = {
    CyclicSchedule(0.01, 0.1, 10, mode="triangular2"):
        b"\x80\x02clightning_clr.schedules\nCyclicSchedule\nq\x00(G?\x84z\xe1G\xae\x14{G?\xb9\x99\x99\x99\x99\x99"
        b"\x9aK\nNX\x0b\x00\x00\x00triangular2q\x01G?\xf0\x00\x00\x00\x00\x00\x00tq\x02Rq\x03.",
    OneCycleSchedule(0.004, 0.1, 4e-7, 100):
        b"\x80\x02clightning_clr.schedules\nOneCycleSchedule\nq\x00(G?pbM\xd2\xf1\xa9\xfcG?\xb9\x99\x99\x99\x99"
        b"\x99\x9aG>\x9a\xd7\xf2\x9a\xbc\xafHKdG?\xd3333333X\x03\x00\x00\x00cosq\x01\x89tq\x02Rq\x03.",
    CosineRestartsSchedule(0.1, 10, t_mul=2.0):
        b"\x80\x02clightning_clr.schedules\nCosineRestartsSchedule\nq\x00(G?\xb9\x99\x99\x99\x99\x99\x9aK\nG@\x00"
        b"\x00\x00\x00\x00\x00\x00G?\xf0\x00\x00\x00\x00\x00\x00G\x00\x00\x00\x00\x00\x00\x00\x00tq\x01Rq\x02.",
    ConstantSchedule(0.5):
        b"\x80\x02clightning_clr.schedules\nConstantSchedule\nq\x00)\x81q\x01}q\x02X\x05\x00\x00\x00valueq\x03G?"
        b"\xe0\x00\x00\x00\x00\x00\x00sb.",
    LinearRamp(0.0, 1.0, 5):
        b"\x80\x02clightning_clr.schedules\nLinearRamp\nq\x00G\x00\x00\x00\x00\x00\x00\x00\x00G?\xf0\x00\x00\x00"
        b"\x00\x00\x00K\x05\x87q\x01Rq\x02.",
    ExponentialRamp(1e-4, 1.0, 5):
        b"\x80\x02clightning_clr.schedules\nExponentialRamp\nq\x00G?\x1a6\xe2\xeb\x1cC-G?\xf0\x00\x00\x00\x00\x00"
        b"\x00K\x05\x87q\x01Rq\x02.",
}


@pytest.mark.parametrize("schedule", list(FLAT_MODULE_PICKLES), ids=lambda s: type(s).__name__)
def test_pickles_of_the_flat_module_still_load(schedule: Any) -> None:
    loaded = pickle.loads(FLAT_MODULE_PICKLES[schedule])
    assert type(loaded) is type(schedule)
    assert loaded == schedule
    assert loaded.values(60) == schedule.values(60)


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
@pytest.mark.parametrize("schedule", ALL_SCHEDULES, ids=lambda s: type(s).__name__)
def test_pickle_round_trips_at_every_protocol_after_use(schedule: Any, protocol: int) -> None:
    """Pickled after it has been called, loaded back: equal, with the same values from step 0, and itself picklable
    again."""
    before = schedule.values(200)
    schedule(150)
    loaded = pickle.loads(pickle.dumps(schedule, protocol=protocol))
    assert type(loaded) is type(schedule) and loaded == schedule
    assert loaded.values(200) == before
    assert pickle.loads(pickle.dumps(loaded, protocol=protocol)) == schedule


@pytest.mark.parametrize("name", [n for n in PUBLIC if isinstance(getattr(lightning_clr.schedules, n), type)
                                  and dataclasses.is_dataclass(getattr(lightning_clr.schedules, n))])
def test_class_path_strings_resolve(name: str) -> None:
    """``class_path: lightning_clr.schedules.<Class>``, as a LightningCLI config writes it, names the class."""
    module, _, attribute = f"lightning_clr.schedules.{name}".rpartition(".")
    assert getattr(importlib.import_module(module), attribute) is getattr(lightning_clr.schedules, name)


def test_lightningcli_builds_a_schedule_from_its_class_path_and_writes_the_same_path_back() -> None:
    """jsonargparse (LightningCLI's parser) instantiates ``class_path: lightning_clr.schedules.CyclicSchedule``,
    given to ScheduledLR as in a config, and a saved config names the class by that same path."""
    jsonargparse = pytest.importorskip("jsonargparse")
    from lightning_clr import ScheduledLR

    parser = jsonargparse.ArgumentParser(exit_on_error=False)
    parser.add_class_arguments(ScheduledLR, "callback")
    parser.add_argument("--momentum", type=ScheduleBase)
    given = {"class_path": "lightning_clr.schedules.CyclicSchedule",
             "init_args": {"start": 0.01, "peak": 0.1, "step_size_up": 5, "mode": "triangular2"}}
    config = parser.parse_args(["--callback.lr", json.dumps(given), "--momentum", json.dumps(
        {"class_path": "lightning_clr.schedules.OneCycleSchedule",
         "init_args": {"initial": 0.95, "peak": 0.85, "final": 0.95, "total_steps": 50}})])
    dumped = json.loads(parser.dump(config, format="json"))
    assert dumped["callback"]["lr"]["class_path"] == "lightning_clr.schedules.CyclicSchedule"
    assert dumped["momentum"]["class_path"] == "lightning_clr.schedules.OneCycleSchedule"
    instantiate = getattr(parser, "instantiate", None) or parser.instantiate_classes
    built = instantiate(config)
    assert isinstance(built.callback, ScheduledLR)
    assert built.callback.lr == CyclicSchedule(0.01, 0.1, 5, mode="triangular2")
    assert built.momentum == OneCycleSchedule(0.95, 0.85, 0.95, 50)
