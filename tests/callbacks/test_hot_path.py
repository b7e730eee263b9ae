"""The per-batch work (``lightning_clr.callbacks.hot_path``): the steady-state write, the safety net, the cadence.

The steady state is an optimisation of :meth:`GroupWriter.write` only: after every batch end each group must hold
the floats a call of the schedule gives (times the scale), bit for bit, whatever happened to the groups since.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lightning_clr._param_groups import momentum_key
from lightning_clr.callbacks.hot_path import NEVER, HotPath
from lightning_clr.callbacks.writer import TABLE_STEPS, GroupWriter
from lightning_clr.schedules import CyclicSchedule, OneCycleSchedule

LR = OneCycleSchedule(0.004, 0.1, 4e-7, 3 * TABLE_STEPS)
MOMENTUM = CyclicSchedule(0.95, 0.85, 7)


class Counter:
    """``trainer.global_step`` behind ``completed``, as ``global_step_counter`` gives it."""

    def __init__(self) -> None:
        self.completed = 0


def _optimizer(kind: str, groups: int) -> torch.optim.Optimizer:
    params = [{"params": [torch.nn.Parameter(torch.zeros(1))]} for _ in range(groups)]
    if kind == "adam":  # each group its own second beta, which a write must keep
        return torch.optim.Adam([{**p, "betas": (0.9, 0.98 - 0.01 * i)} for i, p in enumerate(params)], lr=0.1)
    if kind == "sgd":
        return torch.optim.SGD(params, lr=0.1, momentum=0.9)
    return torch.optim.SGD(params, lr=0.1)  # no momentum entry to cycle


def _path(optimizer: torch.optim.Optimizer, momentum: Any = MOMENTUM, lr: Any = LR) -> tuple[HotPath, Counter]:
    groups = len(optimizer.param_groups)
    keys = [momentum_key(g) if momentum is not None else None for g in optimizer.param_groups]
    writer = GroupWriter(optimizer, [lr] * groups, [momentum] * groups, keys)
    path, counter = HotPath(), Counter()
    path.steps = counter
    path.set_writers([writer])
    return path, counter


def _check(optimizer: torch.optim.Optimizer, step: int, scale: float = 1.0, momentum: Any = MOMENTUM) -> None:
    for i, group in enumerate(optimizer.param_groups):
        assert group["lr"] == LR(step) * scale and type(group["lr"]) is float
        if momentum is None:
            continue
        value = group["betas"][0] if "betas" in group else group["momentum"]
        assert value == momentum(step)
        if "betas" in group:
            assert group["betas"][1] == 0.98 - 0.01 * i


def _spy(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the writer's general writes (the steady state makes none)."""
    calls: list[int] = []
    general = GroupWriter.write

    def write(self: GroupWriter, step: int, scale: float = 1.0) -> None:
        calls.append(step)
        general(self, step, scale)

    monkeypatch.setattr(GroupWriter, "write", write)
    return calls


@pytest.mark.parametrize("kind", ["sgd", "adam", "plain"])
@pytest.mark.parametrize("groups", [1, 3])
def test_the_steady_state_writes_the_floats_of_calls_and_leaves_the_general_path(kind, groups, monkeypatch):
    optimizer = _optimizer(kind, groups)
    momentum = None if kind == "plain" else MOMENTUM
    path, counter = _path(optimizer, momentum)
    calls = _spy(monkeypatch)
    steps = [*range(0, 6), *range(TABLE_STEPS - 2, TABLE_STEPS + 3)]
    for step in steps:
        counter.completed = step
        path.end()
        _check(optimizer, step, momentum=momentum)
    # the first write, and the first step of the second table: the general path (it fills); the rest steady
    assert calls == [0, TABLE_STEPS]


def test_a_batch_that_did_not_step_writes_nothing():
    optimizer = _optimizer("sgd", 1)
    path, _ = _path(optimizer)
    path.end()
    optimizer.param_groups[0]["lr"] = 123.0  # were a write made, it would replace this
    assert path.end() is False
    assert optimizer.param_groups[0]["lr"] == 123.0


@pytest.mark.parametrize("groups", [1, 3])
def test_anything_that_set_a_rate_sends_the_write_to_the_general_path(groups, monkeypatch):
    optimizer = _optimizer("sgd", groups)
    path, counter = _path(optimizer)
    path.end()
    calls = _spy(monkeypatch)
    optimizer.param_groups[-1]["lr"] = LR(1)  # an equal float, but not the object written
    counter.completed = 1
    path.end()
    _check(optimizer, 1)
    optimizer.param_groups[0]["momentum"] = 0.5
    counter.completed = 2
    path.end()
    _check(optimizer, 2)
    counter.completed = 3
    path.end()
    _check(optimizer, 3)
    assert calls == [1, 2]


def test_replaced_param_groups_and_a_new_scale_are_written_through_the_general_path(monkeypatch):
    optimizer = _optimizer("adam", 2)
    path, counter = _path(optimizer)
    path.end()
    calls = _spy(monkeypatch)
    optimizer.load_state_dict(_optimizer("adam", 2).state_dict())  # a resume: new group dicts
    counter.completed = 1
    path.end()
    _check(optimizer, 1)
    path.scale = 0.5
    counter.completed = 2
    path.end()
    _check(optimizer, 2, scale=0.5)
    counter.completed = 3
    path.end()
    _check(optimizer, 3, scale=0.5)
    assert calls == [1, 2]


def test_tensor_rates_never_enter_the_steady_state():
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([param], lr=torch.tensor(0.1), momentum=0.9)
    tensor = optimizer.param_groups[0]["lr"]
    path, counter = _path(optimizer)
    for step in range(4):
        counter.completed = step
        path.end()
        assert optimizer.param_groups[0]["lr"] is tensor and tensor.item() == pytest.approx(LR(step))


@settings(max_examples=80, deadline=None)
@given(events=st.lists(st.tuples(st.sampled_from(["step", "jump", "scale", "overwrite", "resume"]),
                                 st.integers(0, 4 * TABLE_STEPS)), min_size=1, max_size=25),
       kind=st.sampled_from(["sgd", "adam"]), groups=st.integers(1, 3))
def test_whatever_happens_between_batches_every_batch_end_leaves_the_schedules_values(events, kind, groups):
    """Steps forward, jumps (a resume, a rollback), a new scale (the guard), a rate set by anything and replaced
    groups, in any order: after each batch end, every group holds ``schedule(step) * scale``, bit for bit."""
    optimizer = _optimizer(kind, groups)
    path, counter = _path(optimizer)
    scales = [1.0, 0.5, 0.3]
    for event, value in events:
        if event == "step":
            counter.completed += 1
        elif event == "jump":
            counter.completed = value
        elif event == "scale":
            path.scale = scales[value % 3]
            path.seen = -1  # as ScheduleCallback.set_rate_scale: the values in place are stale
        elif event == "overwrite":
            optimizer.param_groups[value % groups]["lr"] = float(value)
            path.seen = -1
        else:
            optimizer.load_state_dict(_optimizer(kind, groups).state_dict())
            path.seen = -1
        path.end()
        _check(optimizer, counter.completed, path.scale)
        assert path.start(SimpleNamespace(should_stop=False, loggers=[])) is False
        _check(optimizer, counter.completed, path.scale)


def test_the_safety_net_rewrites_a_replaced_rate_at_batch_start():
    optimizer = _optimizer("sgd", 2)
    path, counter = _path(optimizer)
    counter.completed = 5
    path.end()
    trainer = SimpleNamespace(should_stop=False)
    optimizer.param_groups[1]["lr"] = 123.0
    path.start(trainer)
    _check(optimizer, 5)
    optimizer.load_state_dict(_optimizer("sgd", 2).state_dict())
    path.start(trainer)
    _check(optimizer, 5)
    optimizer.param_groups[0]["lr"] = 0.25  # and again, from the general path's state
    path.start(trainer)
    _check(optimizer, 5)


def test_several_writers_each_write_and_are_each_checked():
    first, second = _optimizer("sgd", 1), _optimizer("adam", 2)
    path, counter = _path(first)
    writers = [path.writers[0], _path(second)[0].writers[0]]
    path.set_writers(writers)
    assert path.lead is None
    counter.completed = 3
    path.end()
    _check(first, 3)
    _check(second, 3)
    second.param_groups[1]["lr"] = 9.0
    path.start(SimpleNamespace(should_stop=False))
    _check(second, 3)


def test_under_an_own_clock_only_the_cadence_is_left():
    optimizer = _optimizer("sgd", 1)
    path, counter = _path(optimizer)
    path.steps = None
    counter.completed = 4
    assert path.end() is False
    assert optimizer.param_groups[0]["lr"] == 0.1  # torch's step hooks write under an own clock
    optimizer.param_groups[0]["lr"] = 7.0
    path.start(SimpleNamespace(should_stop=False))
    assert optimizer.param_groups[0]["lr"] == 7.0


def test_end_says_when_a_step_may_be_past_a_schedules_end():
    optimizer = _optimizer("sgd", 1)
    path, counter = _path(optimizer)
    assert path.first_end == NEVER and type(NEVER) is int
    path.first_end = 3
    results = []
    for step in range(5):
        counter.completed = step
        results.append(path.end())
    assert results == [False, False, False, True, True]


def _trainer(batches_that_stepped: int, every: Any = 5, loggers: Any = ("csv",), should_stop: bool = False) -> Any:
    loop = SimpleNamespace(_batches_that_stepped=batches_that_stepped)
    return SimpleNamespace(loggers=list(loggers), log_every_n_steps=every, fit_loop=SimpleNamespace(epoch_loop=loop),
                           should_stop=should_stop)


def test_the_cadence_is_lightnings_rule():
    path = HotPath()
    trainer = _trainer(0)
    path.start_fit(trainer, None)
    due = []
    for count in range(12):
        trainer.fit_loop.epoch_loop._batches_that_stepped = count
        due.append(path.start(trainer))
    assert [i for i, d in enumerate(due) if d] == [4, 9]
    trainer.should_stop = True
    assert path.start(trainer)


@pytest.mark.parametrize(("every", "loggers"), [(0, ("csv",)), (5, ())])
def test_no_logging_interval_or_no_logger_never_logs(every, loggers):
    path = HotPath()
    trainer = _trainer(4, every=every, loggers=loggers)
    path.start_fit(trainer, None)
    assert not path.start(trainer)


def test_another_lightning_layout_asks_the_logger_connector():
    path = HotPath()
    trainer = SimpleNamespace(loggers=["csv"], log_every_n_steps=5, should_stop=False,
                              _logger_connector=SimpleNamespace(should_update_logs=True))
    path.start_fit(trainer, None)
    assert path.start(trainer)
    trainer._logger_connector.should_update_logs = False
    assert not path.start(trainer)
