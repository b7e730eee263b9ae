"""What the schedule tests compare against: torch's schedulers stepped once per optimizer step.

The contract: the value a schedule returns for optimizer step ``k`` (``k = 0, 1, ...``) is the value the
reference scheduler set for the ``k``-th ``optimizer.step()`` when it is stepped once after every optimizer
step, to a relative error under 1e-9 (torch), and Keras ``CosineDecayRestarts`` at step ``k``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from hypothesis import HealthCheck, settings

from helpers import torch_reference

REL = 1e-9  # the contract's relative error against torch
FLOAT32_EPS = 2.0**-23
FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def assert_rel(actual: float, expected: float, rel: float = REL, what: str = "") -> None:
    assert abs(actual - expected) <= rel * abs(expected) + 1e-300, f"{what}: {actual!r} != {expected!r}"


def _sgd(params: Any) -> torch.optim.Optimizer:
    return torch.optim.SGD(params, lr=0.5, momentum=0.9)


def _adam(params: Any) -> torch.optim.Optimizer:
    return torch.optim.Adam(params, lr=0.5, betas=(0.9, 0.999))


def torch_trace(make_scheduler: Callable[[torch.optim.Optimizer], Any], steps: int,
                optimizer: str = "sgd") -> list[tuple[float, float | None]]:
    """What torch's scheduler sets for each optimizer step of SGD or Adam created with lr=0.5."""
    return torch_reference(_sgd if optimizer == "sgd" else _adam, make_scheduler, steps)
