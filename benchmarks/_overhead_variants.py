"""What ``overhead.py`` measures: the settings, the tiny model, the clock, and the variants (the lightning_clr
callbacks, torch's schedulers, and the empty ``Callback`` they are paired with).

Each variant is built fresh for each run; nothing here times anything but :class:`_StepTimer`, which
``_overhead_method`` reads.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytorch_lightning as pl
import torch
from torch import nn
from typing_extensions import override

__all__ = [
    "BASE_LR",
    "CLOCKS",
    "LOOP_VARIANTS",
    "MAX_LR",
    "PAIRED_VARIANTS",
    "QUICK",
    "REFERENCE",
    "VARIANTS",
    "EmptyCallback",
    "Settings",
    "TinyMLP",
]

BASE_LR, MAX_LR = 0.001, 0.01


@dataclass(frozen=True)
class Settings:
    """What to measure.

    Attributes:
        steps: optimizer steps per timed run.
        warmup: steps at the start of each run left out of the timing.
        repeats: interleaved repeats; the report gives medians.
        groups: the param-group counts to measure.
        loop_steps: steps per run of the plain PyTorch loop.
        mnist_steps: steps timed for the MNIST-1D model.
        rounds: rounds of the paired Trainer measurement (each runs every variant between two references).
        fit_runs: interleaved fits per variant of the hook-by-hook measurement inside a fit.
        fit_steps: optimizer steps per fit of that measurement (three rate tables: their fills are measured).
    """

    steps: int = 2000
    warmup: int = 100
    repeats: int = 5
    groups: tuple[int, ...] = (1, 10)
    loop_steps: int = 2000
    mnist_steps: int = 600
    rounds: int = 12
    fit_runs: int = 7
    fit_steps: int = 3072


QUICK = Settings(steps=150, warmup=20, repeats=2, loop_steps=300, mnist_steps=60, rounds=2, fit_runs=1, fit_steps=80)


class TinyMLP(nn.Module):
    """Five linear layers of width 8: ten parameter tensors, a step of a few tens of microseconds."""

    def __init__(self) -> None:
        super().__init__()
        self.layers = nn.Sequential(*[nn.Linear(8, 8) for _ in range(5)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class _Regression(pl.LightningModule):
    def __init__(self, groups: int, scheduler: Callable[[torch.optim.Optimizer], Any] | None = None) -> None:
        super().__init__()
        self.net = TinyMLP()
        self.groups = groups
        self.scheduler_factory = scheduler

    @override
    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        return self.net(batch[0]).pow(2).mean()

    @override
    def configure_optimizers(self) -> Any:
        optimizer = torch.optim.SGD(_param_groups(self.net, self.groups), lr=BASE_LR, momentum=0.9)
        if self.scheduler_factory is None:
            return optimizer
        return {"optimizer": optimizer,
                "lr_scheduler": {"scheduler": self.scheduler_factory(optimizer), "interval": "step"}}


def _param_groups(net: nn.Module, groups: int) -> Any:
    params = list(net.parameters())
    if groups == 1:
        return params
    if len(params) % groups:
        raise ValueError(f"Expected groups to divide the {len(params)} parameter tensors, but got {groups}.")
    size = len(params) // groups
    return [{"params": params[i:i + size]} for i in range(0, len(params), size)]


#: The clock of the measurements: this process's CPU time (other processes sharing the cores do not
#: count) or wall time. Set by ``--clock``.
CLOCKS: dict[str, Callable[[], float]] = {"cpu": time.process_time, "wall": time.perf_counter}
_clock: list[Callable[[], float]] = [time.process_time]


def _now() -> float:
    return _clock[0]()


class _StepTimer(pl.Callback):
    """Time from the start of optimizer step ``warmup`` (0-based) to the end of training."""

    def __init__(self, warmup: int) -> None:
        self.warmup = warmup
        self.start: float | None = None
        self.end = 0.0

    @override
    def on_train_batch_start(self, trainer: Any, pl_module: Any, batch: Any, batch_idx: int) -> None:
        if self.start is None and trainer.global_step == self.warmup:
            self.start = _now()

    @override
    def on_train_end(self, trainer: Any, pl_module: Any) -> None:
        self.end = _now()

    def per_step_us(self, steps: int) -> float:
        """Microseconds per step over the ``steps - warmup`` timed steps."""
        if self.start is None:
            raise RuntimeError(f"The timer never started: the run took fewer than {self.warmup + 1} steps.")
        return (self.end - self.start) / (steps - self.warmup) * 1e6


class EmptyCallback(pl.Callback):
    """Overrides nothing: what Lightning's hook dispatch costs for one more callback."""


def _rates(value: float, rates: int) -> Any:
    """``value``, or with ``rates > 1`` a list of that many distinct rates up to it (one per param group, as
    discriminative learning rates are set)."""
    return value if rates == 1 else [value * (i + 1) / rates for i in range(rates)]


@dataclass(frozen=True)
class _Factory:
    kind: str
    total: int
    rates: int = 1

    def __call__(self, optimizer: torch.optim.Optimizer) -> Any:
        if self.kind == "cyclic":
            return torch.optim.lr_scheduler.CyclicLR(optimizer, base_lr=_rates(BASE_LR, self.rates),
                                                     max_lr=_rates(MAX_LR, self.rates), step_size_up=self.total // 8)
        return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=_rates(MAX_LR, self.rates),
                                                   total_steps=self.total)


def _variant(name: str, total: int, rates: int = 1) -> tuple[list[Any], Callable[[torch.optim.Optimizer], Any] | None]:
    """The callbacks and the scheduler factory of variant ``name`` for a run of ``total`` steps; with ``rates > 1``
    each of that many param groups gets its own rates (the callbacks' and torch's list arguments)."""
    import lightning_clr as clr

    low, high = _rates(BASE_LR, rates), _rates(MAX_LR, rates)
    if name == "none":
        return [], None
    if name == "empty Callback":
        return [EmptyCallback()], None
    if name == "clr.CyclicLR":
        return [clr.CyclicLR(base_lr=low, max_lr=high, step_size_up=total // 8)], None
    if name == "clr.OneCycleLR":
        return [clr.OneCycleLR(max_lr=high, total_steps=total)], None
    if name == "clr.CosineRestartsLR":
        return [clr.CosineRestartsLR(max_lr=high, first_cycle=total // 8, t_mul=2.0)], None
    if name == "torch CyclicLR":
        return [], _Factory("cyclic", total, rates)
    if name == "torch OneCycleLR":
        return [], _Factory("onecycle", total, rates)
    raise ValueError(f"Expected a variant in {VARIANTS}, but got {name!r}.")


VARIANTS = ("none", "empty Callback", "clr.CyclicLR", "clr.OneCycleLR", "clr.CosineRestartsLR",
            "torch CyclicLR", "torch OneCycleLR")
LOOP_VARIANTS = ("none", "clr CyclicSchedule by hand", "clr OneCycleSchedule by hand",
                 "torch CyclicLR.step()", "torch OneCycleLR.step()")

REFERENCE = "empty Callback"
PAIRED_VARIANTS = ("clr.CyclicLR", "clr.OneCycleLR", "clr.CosineRestartsLR", "torch CyclicLR", "torch OneCycleLR")
