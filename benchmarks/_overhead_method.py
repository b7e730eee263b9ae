"""How ``overhead.py`` times: one Trainer run, one plain-loop run, one MNIST-1D step, and the paired method
that runs each variant between two runs of the reference (an empty ``Callback``) in rotated rounds, in a
Trainer and on the per-step hooks alone.
"""

from __future__ import annotations

import gc
import warnings
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import pytorch_lightning as pl
import torch
from _overhead_variants import (
    BASE_LR,
    LOOP_VARIANTS,
    MAX_LR,
    PAIRED_VARIANTS,
    REFERENCE,
    EmptyCallback,
    Settings,
    TinyMLP,
    _now,
    _param_groups,
    _Regression,
    _StepTimer,
    _variant,
)
from common import Classifier, make_mnist1d, trainer_kwargs
from torch.utils.data import DataLoader, TensorDataset

__all__ = ["METHOD", "measure_hooks", "measure_loop", "measure_paired", "measure_trainer", "mnist1d_step_us"]

_MNIST_DATA: list[Any] = []

METHOD = ("Method: in each round, for each param-group count, every variant runs once between two runs of "
          "an empty Callback (the reference), in an order rotated from round to round; its cost in the round is "
          "its µs/step minus the mean of those two. Every run has one extra callback (torch's schedulers run "
          "with an empty Callback too), so Lightning's hook dispatch cancels. Reported: the median over the "
          "rounds and the interquartile range.")


def measure_trainer(variant: str, groups: int, settings: Settings, paired: bool = False) -> float:
    """Microseconds per optimizer step of one Trainer run of ``variant``; ``paired`` gives a variant without a
    callback of its own (torch's schedulers, ``none``) an empty ``Callback``, as the reference has."""
    callbacks, scheduler = _variant(variant, settings.steps)
    if paired and not callbacks:
        callbacks = [EmptyCallback()]
    timer = _StepTimer(settings.warmup)
    torch.manual_seed(0)
    model = _Regression(groups, scheduler)
    data = torch.randn(settings.steps * 16, 8, generator=torch.Generator().manual_seed(0))
    loader = DataLoader(TensorDataset(data), batch_size=16, shuffle=False, num_workers=0)
    trainer = pl.Trainer(**trainer_kwargs(max_steps=settings.steps, max_epochs=1,
                                          callbacks=[*callbacks, timer]))
    gc.collect()
    trainer.fit(model, loader)
    if trainer.global_step != settings.steps:
        raise RuntimeError(f"{variant}: {trainer.global_step} steps, expected {settings.steps}.")
    return timer.per_step_us(settings.steps)


def _writer(schedule_lr: Any, schedule_momentum: Any) -> Callable[[torch.optim.Optimizer, int], None]:
    def write(optimizer: torch.optim.Optimizer, step: int) -> None:
        lr, momentum = schedule_lr(step), schedule_momentum(step)
        for group in optimizer.param_groups:
            group["lr"] = lr
            group["momentum"] = momentum

    return write


def measure_loop(variant: str, groups: int, settings: Settings) -> float:
    """Microseconds per step of a plain PyTorch loop with ``variant``'s scheduling."""
    from lightning_clr.schedules import CyclicSchedule, OneCycleSchedule

    n = settings.loop_steps
    torch.manual_seed(0)
    net = TinyMLP()
    optimizer = torch.optim.SGD(_param_groups(net, groups), lr=BASE_LR, momentum=0.9)
    x = torch.randn(16, 8, generator=torch.Generator().manual_seed(0))
    scheduler: Any = None
    write: Callable[[torch.optim.Optimizer, int], None] | None = None
    if variant == "torch CyclicLR.step()":
        scheduler = torch.optim.lr_scheduler.CyclicLR(optimizer, base_lr=BASE_LR, max_lr=MAX_LR, step_size_up=n // 8)
    elif variant == "torch OneCycleLR.step()":
        scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=MAX_LR, total_steps=n + 1)
    elif variant == "clr CyclicSchedule by hand":
        write = _writer(CyclicSchedule(BASE_LR, MAX_LR, n // 8), CyclicSchedule(0.9, 0.8, n // 8))
    elif variant == "clr OneCycleSchedule by hand":
        write = _writer(OneCycleSchedule(MAX_LR / 25, MAX_LR, MAX_LR / 25e4, n),
                        OneCycleSchedule(0.95, 0.85, 0.95, n))
    elif variant != "none":
        raise ValueError(f"Expected a variant in {LOOP_VARIANTS}, but got {variant!r}.")
    gc.collect()
    start = 0.0
    for step in range(n):
        if step == n // 10:
            start = _now()
        if write is not None:
            write(optimizer, step)
        optimizer.zero_grad()
        net(x).pow(2).mean().backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
    return (_now() - start) / (n - n // 10) * 1e6


def mnist1d_step_us(settings: Settings) -> float:
    """Microseconds per optimizer step of the MNIST-1D ConvBase (batch 64, SGD, no scheduler) in a Trainer."""
    if not _MNIST_DATA:
        _MNIST_DATA.append(make_mnist1d())
    data = _MNIST_DATA[0]
    timer = _StepTimer(settings.mnist_steps // 6)
    pl.seed_everything(0, verbose=False)
    loader = DataLoader(TensorDataset(data.x_train, data.y_train), batch_size=64, shuffle=True, num_workers=0)
    trainer = pl.Trainer(**trainer_kwargs(max_steps=settings.mnist_steps, callbacks=[timer]))
    trainer.fit(Classifier(lr=0.05), loader)
    if trainer.global_step != settings.mnist_steps:
        raise RuntimeError(f"MNIST-1D: {trainer.global_step} steps, expected {settings.mnist_steps}.")
    return timer.per_step_us(settings.mnist_steps)


def _interleaved(names: Sequence[str], groups: Sequence[int], repeats: int,
                 measure: Callable[[str, int], float],
                 warm_up: Callable[[str, int], float]) -> dict[tuple[str, int], list[float]]:
    cells = [(n, g) for g in groups for n in names]
    for cell in cells:  # first-call costs (imports, allocator) stay out of the numbers
        warm_up(*cell)
    times: dict[tuple[str, int], list[float]] = {c: [] for c in cells}
    for r in range(repeats):
        shift = r % len(cells)
        for cell in cells[shift:] + cells[:shift]:
            times[cell].append(measure(*cell))
    return times


def measure_paired(settings: Settings,
                   measure: Callable[[str, int, bool], float] | None = None) -> dict[str, Any]:
    """The paired measurement (see the module docstring): per ``(variant, groups)``, the list over rounds of
    the variant's time minus the mean of the two reference runs beside it, and the reference's own times."""
    run_one = measure or (lambda v, g, paired: measure_trainer(v, g, settings, paired))
    short = replace(settings, steps=min(settings.steps, 4 * settings.warmup))
    if measure is None:
        for g in settings.groups:  # first-call costs (imports, allocator) stay out of the numbers
            for v in (REFERENCE, *PAIRED_VARIANTS):
                measure_trainer(v, g, short, True)
    differences: dict[tuple[str, int], list[float]] = {(v, g): [] for g in settings.groups for v in PAIRED_VARIANTS}
    reference: dict[int, list[float]] = {g: [] for g in settings.groups}
    for r in range(settings.rounds):
        shift = r % len(PAIRED_VARIANTS)
        order = PAIRED_VARIANTS[shift:] + PAIRED_VARIANTS[:shift]
        for g in settings.groups:
            before = run_one(REFERENCE, g, True)
            reference[g].append(before)
            for variant in order:
                value = run_one(variant, g, True)
                after = run_one(REFERENCE, g, True)
                reference[g].append(after)
                differences[(variant, g)].append(value - (before + after) / 2)
                before = after
    return {"differences": differences, "reference": reference}


def _fitted(variant: str, groups: int) -> tuple[Any, Any, Any]:
    """A Trainer after a 3-step fit of ``variant`` (torch's OneCycleLR with room for many more steps)."""
    callbacks, scheduler = _variant(variant, 10**7)
    model = _Regression(groups, scheduler)
    data = torch.randn(16 * 3, 8, generator=torch.Generator().manual_seed(0))
    trainer = pl.Trainer(**trainer_kwargs(max_steps=3, max_epochs=1, callbacks=[*callbacks, EmptyCallback()]))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*longer than the whole fit")  # 3 steps, on purpose
        trainer.fit(model, DataLoader(TensorDataset(data), batch_size=16))
    return trainer, model, callbacks[0] if callbacks else trainer.callbacks[-1]


def _per_step(variant: str, trainer: Any, model: Any, callback: Any) -> Callable[[int], None]:
    """One optimizer step's scheduling work: a callback's three per-step hooks (its write forced, as after a
    step), or Lightning's per-batch scheduler update for torch's schedulers (what ``fit`` calls)."""
    optimizer = trainer.optimizers[0]
    if variant.startswith("torch"):
        loop = trainer.fit_loop.epoch_loop

        def torch_step(i: int) -> None:
            loop.update_lr_schedulers("step", update_plateau_schedulers=False)

        return torch_step
    start, before, end = (callback.on_train_batch_start, callback.on_before_optimizer_step,
                          callback.on_train_batch_end)
    stepped = hasattr(callback, "_hot")  # a schedule callback (not the empty reference)

    def callback_step(i: int) -> None:
        start(trainer, model, None, i)
        before(trainer, model, optimizer)
        if stepped:  # as after an optimizer step: the step moved, so the next values must be written
            callback._hot.seen = -1
        end(trainer, model, None, None, i)

    return callback_step


def measure_hooks(settings: Settings, iterations: int = 3000) -> dict[str, Any]:
    """The paired method on the per-step scheduling work alone, in a tight loop on fitted Trainers: each
    variant's ``iterations`` steps between two runs of the empty Callback's hooks, CPU time, rotated rounds."""
    steps: dict[tuple[str, int], Callable[[int], None]] = {}
    for g in settings.groups:
        for v in (REFERENCE, *PAIRED_VARIANTS):
            steps[(v, g)] = _per_step(v, *_fitted(v, g))

    def timed(cell: tuple[str, int]) -> float:
        step = steps[cell]
        begin = _now()
        for i in range(iterations):
            step(i)
        return (_now() - begin) / iterations * 1e6

    for cell in steps:
        timed(cell)
    differences: dict[tuple[str, int], list[float]] = {(v, g): [] for g in settings.groups for v in PAIRED_VARIANTS}
    reference: dict[int, list[float]] = {g: [] for g in settings.groups}
    for r in range(4 * settings.rounds):
        shift = r % len(PAIRED_VARIANTS)
        order = PAIRED_VARIANTS[shift:] + PAIRED_VARIANTS[:shift]
        for g in settings.groups:
            before = timed((REFERENCE, g))
            reference[g].append(before)
            for variant in order:
                value = timed((variant, g))
                after = timed((REFERENCE, g))
                reference[g].append(after)
                differences[(variant, g)].append(value - (before + after) / 2)
                before = after
    return {"differences": differences, "reference": reference}
