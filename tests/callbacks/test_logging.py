"""What the schedule callbacks log (``lightning_clr.callbacks.logging``): names, values and their cache.

The integration tests (``test_callbacks.py``) check the names and values a real Trainer's loggers receive;
these check :class:`RateLog` itself: the values are the writer's floats, and the names follow a replaced
param-group list (a resume) or an optimizer that is not built yet.
"""

from __future__ import annotations

import torch

from lightning_clr.callbacks.clock import StepClock
from lightning_clr.callbacks.logging import RateLog
from lightning_clr.callbacks.state import _Driven
from lightning_clr.callbacks.writer import GroupWriter
from lightning_clr.schedules import CyclicSchedule, OneCycleSchedule

LOW, HIGH = OneCycleSchedule(0.004, 0.1, 4e-7, 3000), OneCycleSchedule(0.008, 0.2, 8e-7, 3000)
MOMENTUM = CyclicSchedule(0.95, 0.85, 7)


class _Trainer:
    global_step = 1500  # past the first table: the writer fills a second one for the log


def _driven(index: int, optimizer: torch.optim.Optimizer, lrs, momenta) -> _Driven:
    keys = ["momentum" if m is not None else None for m in momenta]
    return _Driven(index, optimizer, StepClock("global_step"), GroupWriter(optimizer, lrs, momenta, keys))


def _sgd(groups: int, **named) -> torch.optim.SGD:
    params = [{"params": [torch.nn.Parameter(torch.zeros(1))], **({"name": named[str(i)]} if str(i) in named else {})}
              for i in range(groups)]
    return torch.optim.SGD(params, lr=0.1, momentum=0.9)


def test_metrics_are_the_writers_floats_under_the_names_of_each_group():
    first = _driven(0, _sgd(2, **{"1": "head"}), [LOW, HIGH], [MOMENTUM, None])
    second = _driven(1, _sgd(1), [LOW], [MOMENTUM])
    metrics = RateLog("lr-clr", True).metrics([first, second], _Trainer(), 0.5)
    assert metrics == {
        "lr-clr-SGD/pg1": LOW(1500) * 0.5, "lr-clr-SGD/head": HIGH(1500) * 0.5,
        "lr-clr-SGD/pg1-momentum": MOMENTUM(1500),
        "lr-clr-SGD-1": LOW(1500) * 0.5, "lr-clr-SGD-1-momentum": MOMENTUM(1500),
    }
    assert RateLog("lr-clr", False).metrics([second], _Trainer(), 1.0) == {"lr-clr-SGD": LOW(1500)}


def test_names_are_made_again_when_the_param_groups_are_replaced():
    optimizer = _sgd(2)
    driven = _driven(0, optimizer, [LOW, HIGH], [None, None])
    log = RateLog("lr", True)
    assert set(log.metrics([driven], _Trainer(), 1.0)) == {"lr-SGD/pg1", "lr-SGD/pg2"}
    state = optimizer.state_dict()
    state["param_groups"][1]["name"] = "head"  # a resume replaces the dicts (and here renames a group)
    optimizer.load_state_dict(state)
    assert log.metrics([driven], _Trainer(), 1.0) == {"lr-SGD/pg1": LOW(1500), "lr-SGD/head": HIGH(1500)}


def test_an_optimizer_not_built_yet_is_left_out_and_keeps_its_place_in_the_numbering():
    waiting = _Driven(0, _sgd(1), StepClock("global_step"))  # its writer comes after the range test
    built = _driven(1, _sgd(1), [LOW], [None])
    assert RateLog("lr", True).metrics([waiting, built], _Trainer(), 1.0) == {"lr-SGD-1": LOW(1500)}
