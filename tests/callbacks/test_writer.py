"""The one writer of rates: after every batch each group holds ``schedule(step) * scale``, bit for bit.

Checked through ``optimizer.param_groups``: with a real ``Trainer`` under steps, accumulation, scale changes,
foreign overwrites and resumes, and through :class:`GroupWriter`'s public methods for the orders of steps a
Trainer cannot easily make (jumps back, as a rollback or a resume makes them).
"""

from __future__ import annotations

import pickle
from typing import Any

import pytest
import pytorch_lightning as pl
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lightning_clr import CyclicLR, OneCycleLR, ScheduledLR
from lightning_clr.callbacks.writer import GroupWriter
from lightning_clr.schedules import CosineRestartsSchedule, CyclicSchedule, OneCycleSchedule

from helpers import RecordingModel, trainer_kwargs

LR = OneCycleSchedule(0.004, 0.1, 4e-7, 3000)
MOMENTUM = CyclicSchedule(0.95, 0.85, 7)


def _optimizer(kind: str, groups: int, tensor: bool = False) -> torch.optim.Optimizer:
    params = [{"params": [torch.nn.Parameter(torch.zeros(1))]} for _ in range(groups)]
    if kind == "adam":  # each group its own second beta, which a write must keep
        lr: Any = torch.tensor(0.1) if tensor else 0.1
        return torch.optim.Adam([{**p, "betas": (0.9, 0.98 - 0.01 * i)} for i, p in enumerate(params)], lr=lr)
    if kind == "sgd":
        return torch.optim.SGD(params, lr=0.1, momentum=0.9)
    return torch.optim.SGD(params, lr=0.1)  # no momentum entry to cycle


def _writer(optimizer: torch.optim.Optimizer, lrs: list[Any] | None = None, momentum: Any = MOMENTUM) -> GroupWriter:
    groups = len(optimizer.param_groups)
    key = "betas" if "betas" in optimizer.param_groups[0] else (
        "momentum" if "momentum" in optimizer.param_groups[0] else None)
    return GroupWriter(optimizer, lrs or [LR] * groups, [momentum] * groups, key)


def _check(optimizer: torch.optim.Optimizer, step: int, scale: float = 1.0, lrs: list[Any] | None = None,
           momentum: Any = MOMENTUM) -> None:
    for i, group in enumerate(optimizer.param_groups):
        expected = (lrs[i] if lrs else LR)(step) * scale
        assert float(group["lr"]) == pytest.approx(expected, rel=1e-6) if torch.is_tensor(group["lr"]) else (
            group["lr"] == expected and type(group["lr"]) is float)
        if momentum is None:
            continue
        if "betas" in group:
            assert float(group["betas"][0]) == pytest.approx(momentum(step), rel=1e-6)
            assert group["betas"][1] == 0.98 - 0.01 * i
        elif "momentum" in group:
            assert group["momentum"] == momentum(step)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 5000), st.sampled_from([1.0, 0.5, 0.25])), min_size=1, max_size=20),
       st.sampled_from(["sgd", "adam", "plain"]), st.sampled_from([1, 3]))
def test_any_step_order_and_scale_leave_the_schedules_floats(events, kind, groups):
    """Steps that go back (a resume, a rollback) or jump, and scales that change (the guard): every group holds
    ``schedule(step) * scale``, bit for bit, and Adam's second beta is kept."""
    optimizer = _optimizer(kind, groups)
    momentum = None if kind == "plain" else MOMENTUM
    writer = _writer(optimizer, momentum=momentum)
    for step, scale in events:
        writer.write(step, scale)
        _check(optimizer, step, scale, momentum=momentum)
        assert writer.is_current(step) and (step == 0 or not writer.is_current(step - 1))


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(0, 400), min_size=1, max_size=10), st.sampled_from([1.0, 0.5]))
def test_distinct_group_schedules_each_give_their_own_group_its_float(steps, scale):
    """Discriminative rates (one schedule per group) and an unscheduled momentum in one group."""
    optimizer = _optimizer("sgd", 3)
    lrs = [LR, CosineRestartsSchedule(0.3, 17, 2.0), LR]
    writer = GroupWriter(optimizer, lrs, [MOMENTUM, None, MOMENTUM], "momentum")
    for step in steps:
        optimizer.param_groups[1]["momentum"] = 0.5
        writer.write(step, scale)
        assert [g["lr"] for g in optimizer.param_groups] == [s(step) * scale for s in lrs]
        assert [g["momentum"] for g in optimizer.param_groups] == [MOMENTUM(step), 0.5, MOMENTUM(step)]


def test_each_distinct_schedule_is_evaluated_once_a_step():
    calls: list[int] = []

    def schedule(step: int) -> float:
        calls.append(step)
        return 0.1 / (1 + step)

    optimizer = _optimizer("plain", 10)
    writer = GroupWriter(optimizer, [schedule] * 10, [None] * 10, None)
    writer.write(3)
    writer.write(4, 0.5)
    assert calls == [3, 4]
    assert [g["lr"] for g in optimizer.param_groups] == [0.1 / 5 * 0.5] * 10


def test_tensor_rates_are_filled_in_place_and_never_replaced():
    optimizer = _optimizer("adam", 2, tensor=True)
    rates = [g["lr"] for g in optimizer.param_groups]
    writer = _writer(optimizer)
    for step in (0, 5, 2999, 4000):
        writer.write(step, 0.5)
        assert [g["lr"] for g in optimizer.param_groups] == rates  # the same tensors
        _check(optimizer, step, 0.5)


def test_a_rate_set_by_anything_else_or_new_param_groups_are_not_current():
    optimizer = _optimizer("sgd", 2)
    writer = _writer(optimizer)
    writer.write(10)
    assert writer.is_current(10)
    optimizer.param_groups[1]["lr"] = 0.7  # anything else that set a rate
    assert not writer.is_current(10)
    writer.write(10)
    state = pickle.loads(pickle.dumps(optimizer.state_dict()))  # as a checkpoint holds it
    optimizer.load_state_dict(state)  # a resume replaces the param-group dicts and their values
    assert not writer.is_current(10)
    writer.write(11)
    _check(optimizer, 11)
    writer.invalidate()  # a new scale: the values in place are stale
    assert not writer.is_current(11)


class _Intruder(pl.Callback):
    """Sets the rate of every group itself at chosen batch ends and changes the scale at others, as other code
    (or the guard) may."""

    def __init__(self, schedule_callback: Any, overwrite_at: set[int], scale_at: dict[int, float]) -> None:
        self.schedule_callback, self.overwrite_at, self.scale_at = schedule_callback, overwrite_at, scale_at

    def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        step = trainer.global_step
        if step in self.overwrite_at:
            for group in trainer.optimizers[0].param_groups:
                group["lr"] = 123.0
        if step in self.scale_at:
            self.schedule_callback.set_rate_scale(self.scale_at[step])


@pytest.mark.parametrize("groups", [1, 2])
@pytest.mark.parametrize("accumulate", [1, 3])
def test_in_a_fit_every_step_uses_the_schedules_value_whatever_was_written_between(tmp_path, groups, accumulate):
    """A rate overwritten between batches is written again before the next step (the safety net); a new scale
    is used from the next step on; accumulation writes only after a batch that stepped."""
    callback = CyclicLR(base_lr=0.01, max_lr=0.5, step_size_up=3, cycle_momentum=True)
    intruder = _Intruder(callback, overwrite_at={2, 5, 6}, scale_at={4: 0.5, 7: 0.25})
    model = RecordingModel(num_batches=12, groups=groups)
    trainer = pl.Trainer(**trainer_kwargs(tmp_path, max_epochs=2, accumulate_grad_batches=accumulate),
                         callbacks=[callback, intruder])
    trainer.fit(model)
    schedule = CyclicSchedule(0.01, 0.5, 3)
    momentum = CyclicSchedule(0.9, 0.8, 3)
    scale = 1.0
    assert len(model.used) == trainer.global_step
    for step, lrs, moms in model.used:
        scale = {4: 0.5, 7: 0.25}.get(step, scale)  # set once step 4 (7) is next: that step uses it
        assert lrs == [schedule(step) * scale] * groups, step
        assert moms == [momentum(step)] * groups


def test_one_cycle_in_a_fit_writes_bit_for_bit_and_resumes_from_the_restored_step(tmp_path):
    """A resume replaces the optimizer's param groups (load_state_dict): the restored step's values go in."""
    callback = OneCycleLR(max_lr=0.3, total_steps=10)
    model = RecordingModel(num_batches=10)
    trainer = pl.Trainer(**trainer_kwargs(tmp_path, max_epochs=1), callbacks=[callback])
    trainer.fit(model)
    path = tmp_path / "one.ckpt"
    trainer.save_checkpoint(path)
    resumed = RecordingModel(num_batches=10)
    again = OneCycleLR(max_lr=0.3, total_steps=10)
    with pytest.warns(UserWarning, match="past the schedule's end"):
        pl.Trainer(**trainer_kwargs(tmp_path, max_epochs=2), callbacks=[again]).fit(resumed, ckpt_path=path)
    schedule = callback.step_schedule()
    assert schedule is not None
    assert [u[1][0] for u in model.used] == [schedule(s) for s in range(10)]
    assert [u[1][0] for u in resumed.used] == [schedule(s) for s in range(10, 20)]


def test_a_user_callable_is_called_for_the_written_steps_only(tmp_path):
    seen: list[int] = []

    def schedule(step: int) -> float:
        seen.append(step)
        return 0.1 / (1 + step)

    model = RecordingModel(num_batches=5)
    pl.Trainer(**trainer_kwargs(tmp_path, max_epochs=1, log_every_n_steps=1000),
               callbacks=[ScheduledLR(schedule)]).fit(model)
    assert [u[1][0] for u in model.used] == [0.1 / (1 + s) for s in range(5)]
    assert seen == [0, 1, 2, 3, 4, 5]  # train start, then after each of the 5 steps
