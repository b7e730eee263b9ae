"""The one writer of rates (``lightning_clr.callbacks.writer``): its table of values and its general path.

The table is an optimisation only: every value it writes must be the float a call of the schedule gives,
whatever the step order (resume, rollback), the scale or the kind of param-group entry.
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lightning_clr._param_groups import momentum_key
from lightning_clr.callbacks.writer import TABLE_STEPS, GroupWriter
from lightning_clr.schedules import (
    ConstantSchedule,
    CosineRestartsSchedule,
    CyclicSchedule,
    ExponentialRamp,
    LinearRamp,
    OneCycleSchedule,
)

BUILT_IN = [
    CyclicSchedule(0.01, 0.1, 7, mode="triangular2"),
    CyclicSchedule(0.01, 0.1, 5, step_size_down=3, mode="exp_range", gamma=0.999),
    OneCycleSchedule(0.004, 0.1, 4e-7, 2000),
    CosineRestartsSchedule(0.1, 10, t_mul=2.0, m_mul=0.9, alpha=0.01),
    LinearRamp(0.1, 0.0, 1500),
    ExponentialRamp(1e-7, 10.0, 100),
    ConstantSchedule(0.05),
]
MOMENTUM = CyclicSchedule(0.95, 0.85, 7)


def _sgd(groups: int = 1, **kwargs) -> torch.optim.SGD:
    params = [{"params": [torch.nn.Parameter(torch.zeros(1))]} for _ in range(groups)]
    return torch.optim.SGD(params, lr=0.1, momentum=0.9, **kwargs)


def _writer(optimizer, lr, momentum=None) -> GroupWriter:
    groups = len(optimizer.param_groups)
    keys = [momentum_key(g) if momentum is not None else None for g in optimizer.param_groups]
    return GroupWriter(optimizer, [lr] * groups, [momentum] * groups, keys)


@pytest.mark.parametrize("schedule", BUILT_IN, ids=lambda s: type(s).__name__)
def test_table_writes_exactly_the_floats_a_call_gives_across_table_boundaries(schedule):
    optimizer = _sgd(groups=3)
    writer = _writer(optimizer, schedule, MOMENTUM)
    assert writer._fast
    steps = [*range(0, 5), *range(TABLE_STEPS - 3, TABLE_STEPS + 3), 2 * TABLE_STEPS + 7, 10 * TABLE_STEPS]
    for step in steps:
        writer.write(step)
        for group in optimizer.param_groups:
            assert group["lr"] == schedule(step) and type(group["lr"]) is float
            assert group["momentum"] == MOMENTUM(step)
        assert writer.written_step == step and writer.is_current(step)


@settings(max_examples=60, deadline=None)
@given(steps=st.lists(st.integers(0, 5 * TABLE_STEPS), min_size=1, max_size=12),
       scale=st.sampled_from([1.0, 0.5, 0.3, 0.125]))
def test_any_step_order_and_scale_give_the_evaluated_value(steps, scale):
    """Steps that go back (a resume, a rollback) or jump, and scales that change (the guard), refill the
    table; the rate is always ``schedule(step) * scale``, bit for bit."""
    schedule = OneCycleSchedule(0.004, 0.1, 4e-7, 3 * TABLE_STEPS)
    optimizer = _sgd()
    writer = _writer(optimizer, schedule, MOMENTUM)
    for i, step in enumerate(steps):
        current = scale if i % 2 else 1.0
        writer.write(step, current)
        assert optimizer.param_groups[0]["lr"] == schedule(step) * current
        assert optimizer.param_groups[0]["momentum"] == MOMENTUM(step)


def test_a_changed_scale_is_written_at_once_within_the_table():
    schedule = CyclicSchedule(0.01, 0.1, 7)
    optimizer = _sgd()
    writer = _writer(optimizer, schedule)
    writer.write(3)
    writer.write(3, 0.5)
    assert optimizer.param_groups[0]["lr"] == schedule(3) * 0.5
    writer.write(4, 0.5)
    assert optimizer.param_groups[0]["lr"] == schedule(4) * 0.5


def test_replaced_param_groups_are_relinked_and_written():
    """``Optimizer.load_state_dict`` (a resume) replaces the param-group dicts: the next write goes into
    the new ones, and the old dicts are no longer current."""
    schedule = CyclicSchedule(0.01, 0.1, 7)
    optimizer = _sgd()
    writer = _writer(optimizer, schedule, MOMENTUM)
    writer.write(2)
    optimizer.load_state_dict(_sgd().state_dict())
    assert optimizer.param_groups[0]["lr"] == 0.1 and not writer.is_current(2)
    writer.write(2)
    assert optimizer.param_groups[0]["lr"] == schedule(2) and writer.is_current(2)


def test_a_rate_replaced_by_anything_else_is_not_current():
    schedule = CyclicSchedule(0.01, 0.1, 7)
    optimizer = _sgd(groups=2)
    writer = _writer(optimizer, schedule)
    writer.write(5)
    assert writer.is_current(5) and not writer.is_current(6)
    optimizer.param_groups[1]["lr"] = schedule(5)  # an equal float, but not the object written
    assert not writer.is_current(5)


def test_tensor_rates_are_filled_in_place_by_the_general_path():
    schedule = OneCycleSchedule(0.004, 0.1, 4e-7, 100)
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.Adam([param], lr=torch.tensor(0.01), betas=(torch.tensor(0.9), torch.tensor(0.99)))
    lr_tensor, beta_tensor = optimizer.param_groups[0]["lr"], optimizer.param_groups[0]["betas"][0]
    writer = _writer(optimizer, schedule, MOMENTUM)
    for step in (0, 1, 50):
        writer.write(step)
        group = optimizer.param_groups[0]
        assert group["lr"] is lr_tensor and group["lr"].item() == pytest.approx(schedule(step))
        assert group["betas"][0] is beta_tensor and beta_tensor.item() == pytest.approx(MOMENTUM(step))
        assert writer.is_current(step)


def test_adam_betas_keep_their_second_value():
    schedule = CyclicSchedule(1e-4, 1e-3, 7)
    optimizer = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=1e-3, betas=(0.9, 0.98))
    writer = _writer(optimizer, schedule, MOMENTUM)
    assert writer._fast
    writer.write(3)
    assert optimizer.param_groups[0]["betas"] == (MOMENTUM(3), 0.98)
    assert optimizer.param_groups[0]["lr"] == schedule(3)


def test_any_other_callable_is_called_for_the_written_steps_only():
    """A user's schedule is no built-in value: it is called at each write, never ahead of time."""
    calls: list[int] = []

    def schedule(step: int) -> float:
        calls.append(step)
        return 0.1 / (1 + step)

    optimizer = _sgd()
    writer = _writer(optimizer, schedule)
    assert not writer._fast
    for step in (0, 1, 2, 7):
        writer.write(step)
        assert optimizer.param_groups[0]["lr"] == 0.1 / (1 + step)
    assert calls == [0, 1, 2, 7]


def test_distinct_group_schedules_are_each_evaluated_once_a_step():
    low, high = CyclicSchedule(0.01, 0.1, 7), CyclicSchedule(0.02, 0.2, 7)
    optimizer = _sgd(groups=4)
    writer = GroupWriter(optimizer, [low, high, CyclicSchedule(0.01, 0.1, 7), high], [None] * 4, [None] * 4)
    assert writer._lr_index == [0, 1, 0, 1] and not writer._fast
    writer.write(9, 0.5)
    assert [g["lr"] for g in optimizer.param_groups] == [low(9) * 0.5, high(9) * 0.5] * 2
    assert writer.is_current(9)


@settings(max_examples=40, deadline=None)
@given(steps=st.lists(st.integers(0, 4 * TABLE_STEPS), min_size=1, max_size=10),
       scale=st.sampled_from([1.0, 0.5, 0.3]))
def test_distinct_group_schedules_read_their_own_rows_of_the_table_bit_for_bit(steps, scale):
    """Discriminative rates (one schedule per group) and two momentum schedules: every group gets its own
    schedule's float, ``schedule(step) * scale``, from the table, at any step order and scale."""
    lrs = [OneCycleSchedule(0.004 * k, 0.1 * k, 4e-7 * k, 3 * TABLE_STEPS) for k in (1, 2, 3)] + [BUILT_IN[0]]
    momenta = [MOMENTUM, CyclicSchedule(0.9, 0.8, 11), MOMENTUM, MOMENTUM]
    optimizer = _sgd(groups=4)
    writer = GroupWriter(optimizer, lrs, momenta, ["momentum"] * 4)
    assert writer._tabulated and not writer._fast and writer._m_index == [0, 1, 0, 0]
    for i, step in enumerate(steps):
        current = scale if i % 2 else 1.0
        writer.write(step, current)
        assert [g["lr"] for g in optimizer.param_groups] == [lr(step) * current for lr in lrs]
        assert [g["momentum"] for g in optimizer.param_groups] == [m(step) for m in momenta]
        assert all(type(g["lr"]) is float for g in optimizer.param_groups) and writer.is_current(step)
    assert len(writer._tables_lr) == 4 and len(writer._tables_m) == 2  # a row per distinct schedule


def test_distinct_group_schedules_fill_tensor_entries_in_place_from_the_table():
    low, high = CyclicSchedule(0.01, 0.1, 7), CyclicSchedule(0.02, 0.2, 7)
    params = [{"params": [torch.nn.Parameter(torch.zeros(1))], "lr": torch.tensor(0.01)} for _ in range(2)]
    optimizer = torch.optim.Adam(params, lr=0.01)
    tensors = [g["lr"] for g in optimizer.param_groups]
    writer = GroupWriter(optimizer, [low, high], [None, None], [None, None])
    assert writer._tabulated
    writer.write(TABLE_STEPS + 3, 0.5)
    for group, tensor, schedule in zip(optimizer.param_groups, tensors, (low, high), strict=True):
        assert group["lr"] is tensor and tensor.item() == pytest.approx(schedule(TABLE_STEPS + 3) * 0.5)
    assert writer.is_current(TABLE_STEPS + 3)


def test_a_user_callable_among_the_group_schedules_is_called_and_nothing_is_tabulated():
    calls: list[int] = []

    def schedule(step: int) -> float:
        calls.append(step)
        return 0.1 / (1 + step)

    optimizer = _sgd(groups=2)
    writer = GroupWriter(optimizer, [CyclicSchedule(0.01, 0.1, 7), schedule], [None, None], [None, None])
    assert not writer._tabulated
    for step in (3, 4):
        writer.write(step)
        assert [g["lr"] for g in optimizer.param_groups] == [CyclicSchedule(0.01, 0.1, 7)(step), 0.1 / (1 + step)]
    assert calls == [3, 4] and writer._tables_lr == []
    assert writer.values(5, 0.5) == ([CyclicSchedule(0.01, 0.1, 7)(5) * 0.5, 0.1 / 6 * 0.5], [None, None])
