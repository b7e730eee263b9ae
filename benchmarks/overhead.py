"""Per-step overhead: what a lightning_clr schedule callback adds to each optimizer step of a real ``Trainer.fit``.

A tiny MLP (5 ``Linear(8, 8)``, in 1 or in 10 param groups), SGD with momentum 0.9, batch 16, no logger. Variants:
an empty ``Callback`` (the floor of any callback: Lightning dispatches every hook to every callback),
``lightning_clr.CyclicLR`` and ``OneCycleLR`` (momentum cycling on), ``OneCycleLR`` with a default
``DivergenceGuard()`` (counted only: the guard's calls on a step without a check are the median step's minus
``OneCycleLR`` with an empty ``Callback``'s), and torch's ``CyclicLR`` returned from ``configure_optimizers``
with ``interval: "step"``. Only public API. The method of each part is on
``docs/benchmarks/overhead.md``:

**(a) Python calls a step (deterministic)**: ``sys.setprofile`` from one ``on_train_batch_start`` to the next, in
a counting callback placed first, the garbage collector off; ``"call"`` and, apart, ``"c_call"`` events, the mean
and the most in a step, minus the empty Callback's. Goal: at most 10 Python calls a step above an empty Callback,
and 10 param groups cost the same as 1.

**(b) Time inside a fit**: every hook of the callback and of two empty Callbacks around it timed per batch, the
callback's minus the empty ones' mean; the median per fit, ``--repeats`` interleaved fits per cell, the median
[interquartile range] over fits, µs a step. No goal: it depends on the machine and its load.

    python -m benchmarks.overhead                   # about 3 minutes on 2 cores
    python -m benchmarks.overhead --quick           # a few seconds (smoke test)
    python -m benchmarks.overhead --output benchmarks/results
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pytorch_lightning as pl
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from typing_extensions import override

from benchmarks.common import finish_report, markdown_table, quiet_lightning, trainer_kwargs

BASE_LR, MAX_LR = 0.001, 0.01
GUARDED = "clr.OneCycleLR + DivergenceGuard()"
PAIRED = "clr.OneCycleLR + empty Callback"  # the guarded variant's reference
VARIANTS = ("empty Callback", "clr.CyclicLR", "clr.OneCycleLR", GUARDED, "torch CyclicLR")
TIMED = ("clr.CyclicLR", "clr.OneCycleLR", "torch CyclicLR")
GOAL_CALLS = 10


@dataclass(frozen=True)
class Settings:
    """``steps``: counted steps of (a); ``warmup``: steps before counting or timing; ``repeats``: fits per cell of
    (b); ``fit_steps``: steps a fit of (b); ``groups``: the param-group counts."""

    steps: int = 1100
    warmup: int = 20
    repeats: int = 5
    fit_steps: int = 1500
    groups: tuple[int, ...] = (1, 10)


QUICK = Settings(steps=20, warmup=5, repeats=1, fit_steps=60)


class _Regression(pl.LightningModule):
    def __init__(self, groups: int, scheduler: Callable[[torch.optim.Optimizer], Any] | None = None) -> None:
        super().__init__()
        self.net = nn.Sequential(*[nn.Linear(8, 8) for _ in range(5)])
        self.groups, self.scheduler = groups, scheduler

    @override
    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        return self.net(batch[0]).pow(2).mean()

    @override
    def configure_optimizers(self) -> Any:
        params = list(self.net.parameters())
        size = len(params) // self.groups
        optimizer = torch.optim.SGD([{"params": params[i:i + size]} for i in range(0, len(params), size)],
                                    lr=BASE_LR, momentum=0.9)
        if self.scheduler is None:
            return optimizer
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": self.scheduler(optimizer), "interval": "step"}}


def variant(name: str, total: int) -> tuple[pl.Callback | list[pl.Callback],
                                           Callable[[torch.optim.Optimizer], Any] | None]:
    """The callback and the scheduler factory of variant ``name`` for a run of ``total`` steps (the guarded variant:
    a callback list, counted only)."""
    import lightning_clr as clr

    if name == "empty Callback":
        return pl.Callback(), None
    if name in (GUARDED, PAIRED):  # a list: the guard's calls are counted against an empty Callback's
        second = clr.DivergenceGuard() if name == GUARDED else pl.Callback()
        return [clr.OneCycleLR(max_lr=MAX_LR, total_steps=total), second], None
    if name == "clr.CyclicLR":
        return clr.CyclicLR(base_lr=BASE_LR, max_lr=MAX_LR, step_size_up=total // 8), None
    if name == "clr.OneCycleLR":
        return clr.OneCycleLR(max_lr=MAX_LR, total_steps=total), None
    if name == "torch CyclicLR":
        return pl.Callback(), lambda opt: torch.optim.lr_scheduler.CyclicLR(opt, BASE_LR, MAX_LR, total // 8)
    raise ValueError(f"Expected a variant in {VARIANTS}, but got {name!r}.")


def _fit(groups: int, steps: int, callbacks: list[pl.Callback], scheduler: Any) -> None:
    quiet_lightning()
    torch.manual_seed(0)
    model = _Regression(groups, scheduler)
    loader = DataLoader(TensorDataset(torch.randn(steps * 16, 8, generator=torch.Generator().manual_seed(0))),
                        batch_size=16, shuffle=False)
    trainer = pl.Trainer(**trainer_kwargs(max_steps=steps, max_epochs=1, callbacks=callbacks))
    trainer.fit(model, loader)
    if trainer.global_step != steps:
        raise RuntimeError(f"{trainer.global_step} steps, expected {steps}.")


# ---------------------------------------------------------------------------------------------- (a) call counts
class CallCounter(pl.Callback):
    """Counts the profiler's events of each step from ``on_train_batch_start`` of step ``start`` to that of step
    ``start + steps`` (place it first): ``per_step`` is ``[(calls, c_calls)]``, one pair a step."""

    def __init__(self, start: int, steps: int) -> None:
        self.start, self.steps = start, steps
        self.per_step: list[tuple[int, int]] = []
        self._counts = {"call": 0, "c_call": 0}

    def _count(self, frame: Any, event: str, arg: Any) -> None:
        if event in self._counts:
            self._counts[event] += 1

    @override
    def on_train_batch_start(self, trainer: Any, pl_module: Any, batch: Any, batch_idx: int) -> None:
        step = trainer.global_step
        if self.start < step <= self.start + self.steps:
            self.per_step.append((self._counts["call"], self._counts["c_call"]))
        self._counts = {"call": 0, "c_call": 0}
        if step == self.start:
            gc.collect()
            gc.disable()
            sys.setprofile(self._count)
        elif step == self.start + self.steps:
            sys.setprofile(None)
            gc.enable()


def count_calls(name: str, groups: int, settings: Settings) -> list[tuple[int, int]]:
    """``(calls, c_calls)`` of each counted step of a fit of variant ``name`` with ``groups`` param groups."""
    total = settings.warmup + settings.steps + 1
    callback, scheduler = variant(name, total)
    counter = CallCounter(settings.warmup, settings.steps)
    try:
        _fit(groups, total, [counter, *(callback if isinstance(callback, list) else [callback])], scheduler)
    finally:
        sys.setprofile(None)
        gc.enable()
    if len(counter.per_step) != settings.steps:
        raise RuntimeError(f"Counted {len(counter.per_step)} steps, expected {settings.steps}.")
    return counter.per_step


def calls_table(settings: Settings) -> tuple[str, dict[tuple[str, int], tuple[float, float, int]]]:
    """The table of (a), and per ``(variant, groups)`` the mean calls, mean c_calls and the most calls a step."""
    counts = {}
    for groups in settings.groups:
        for name in VARIANTS:
            steps = count_calls(name, groups, settings)
            counts[(name, groups)] = (statistics.fmean(c for c, _ in steps), statistics.fmean(c for _, c in steps),
                                      max(c for c, _ in steps))
    guard = {g: statistics.median(c for c, _ in count_calls(GUARDED, g, settings))
             - statistics.median(c for c, _ in count_calls(PAIRED, g, settings)) for g in settings.groups}
    rows = []
    for name in VARIANTS:
        cells = []
        for groups in settings.groups:
            calls, c_calls, most = counts[(name, groups)]
            ref = counts[("empty Callback", groups)]
            cells += ([f"{calls:.1f} (max {most})", f"{c_calls:.1f}"] if name == "empty Callback" else
                      [f"{calls - ref[0]:+.1f} (max {most - ref[2]:+d})", f"{c_calls - ref[1]:+.1f}"])
        goal = "–"
        if name == GUARDED:
            goal = "the guard above an empty Callback on a step without a check (median step): " + ", ".join(
                f"{guard[g]:+.0f} calls at {g} group{'s' if g > 1 else ''}" for g in settings.groups)
        elif name.startswith("clr."):
            extra = [counts[(name, g)][0] - counts[("empty Callback", g)][0] for g in settings.groups]
            verdicts = [f"≤ {GOAL_CALLS} calls: {'met' if max(extra) <= GOAL_CALLS else 'MISSED'}"]
            if len(extra) > 1:
                verdicts.append(f"same at {settings.groups[-1]} groups as at {settings.groups[0]}: "
                                f"{'met' if max(extra) - min(extra) < 0.5 else 'MISSED'}")
            goal = "; ".join(verdicts)
        rows.append([name + (" (absolute)" if name == "empty Callback" else ""), *cells, goal])
    headers = ["variant", *[f"{kind}, {g} group{'s' if g > 1 else ''}" for g in settings.groups
                            for kind in ("Python calls", "C calls")], "goal"]
    text = (f"Calls a step above an empty Callback ({settings.steps} steps counted after {settings.warmup}, "
            "sys.setprofile from one on_train_batch_start to the next; mean a step, and in brackets the most in one "
            "step minus the empty Callback's most):\n\n"
            + markdown_table(headers, rows))
    return text, counts


# ---------------------------------------------------------------------------------------------- (b) in-fit timing
class _Buckets:
    """Nanoseconds spent in wrapped calls, summed per training batch."""

    def __init__(self) -> None:
        self.per_batch: list[int] = []
        self.current: int | None = None

    def close(self) -> None:
        if self.current is not None:
            self.per_batch.append(self.current)
        self.current = 0


def _timed(function: Callable[..., Any], buckets: _Buckets, opens_batch: bool = False) -> Callable[..., Any]:
    clock = time.perf_counter_ns

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if opens_batch:
            buckets.close()
        begin = clock()
        try:
            return function(*args, **kwargs)
        finally:
            buckets.current = (buckets.current or 0) + clock() - begin
    return wrapper


def _instrument(callback: pl.Callback, buckets: _Buckets) -> pl.Callback:
    for name in dir(pl.Callback):
        if name.startswith("on_"):
            setattr(callback, name, _timed(getattr(callback, name), buckets, name == "on_train_batch_start"))
    return callback


def time_in_fit(name: str, groups: int, settings: Settings) -> float:
    """One fit: the median over batches of the variant's hook time minus the two empty Callbacks' mean, in µs."""
    callback, factory = variant(name, settings.fit_steps)
    ours, before, after = _Buckets(), _Buckets(), _Buckets()
    scheduler = None
    if factory is not None:
        def scheduler(optimizer: torch.optim.Optimizer) -> Any:
            built = factory(optimizer)
            built.step = _timed(built.step, ours)
            return built
    callbacks = [_instrument(pl.Callback(), before), _instrument(callback, ours), _instrument(pl.Callback(), after)]
    gc.collect()
    _fit(groups, settings.fit_steps, callbacks, scheduler)
    for buckets in (ours, before, after):
        buckets.close()
    differences = [(a - (b + c) / 2) / 1000 for a, b, c in zip(ours.per_batch, before.per_batch, after.per_batch,
                                                               strict=True)]
    return statistics.median(differences[settings.warmup:])


def timing_table(settings: Settings) -> str:
    cells: dict[tuple[str, int], list[float]] = {(v, g): [] for v in TIMED for g in settings.groups}
    for run in range(settings.repeats):
        order = TIMED[run % len(TIMED):] + TIMED[:run % len(TIMED)]
        for groups in settings.groups:
            for name in order:
                cells[(name, groups)].append(time_in_fit(name, groups, settings))

    def text(values: list[float]) -> str:
        if len(values) == 1:
            return f"{values[0]:+.2f}"
        q1, median, q3 = statistics.quantiles(values, n=4, method="inclusive")
        return f"{median:+.2f} [{q1:+.2f}, {q3:+.2f}]"

    rows = [[name, *[text(cells[(name, g)]) for g in settings.groups]] for name in TIMED]
    return (f"Time inside a fit, µs a step above an empty Callback ({settings.repeats} interleaved fits of "
            f"{settings.fit_steps} steps per cell; hooks timed per batch, the first {settings.warmup} batches left "
            "out; median [interquartile range] over fits of the per-fit medians; this process's wall clock):\n\n"
            + markdown_table(["variant", *[f"µs/step, {g} group{'s' if g > 1 else ''}" for g in settings.groups]],
                             rows))


def main(argv: Sequence[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke test: few steps, one fit per cell")
    parser.add_argument("--steps", type=int, help=f"counted steps of (a) (default {Settings.steps})")
    parser.add_argument("--repeats", type=int, help=f"fits per cell of (b) (default {Settings.repeats})")
    parser.add_argument("--fit-steps", type=int, help=f"steps a fit of (b) (default {Settings.fit_steps})")
    parser.add_argument("--calls-only", action="store_true", help="only (a), the call counts")
    parser.add_argument("--output", help="folder for overhead.md")
    args = parser.parse_args(argv)
    settings = QUICK if args.quick else Settings()
    overrides = {k: v for k, v in (("steps", args.steps), ("repeats", args.repeats), ("fit_steps", args.fit_steps))
                 if v is not None}
    settings = Settings(**{**settings.__dict__, **overrides})
    torch.set_num_threads(1)
    quiet_lightning()
    start = time.perf_counter()
    text = calls_table(settings)[0]
    if not args.calls_only:
        text += "\n\n" + timing_table(settings)
    text += f"\n\nWall time: {time.perf_counter() - start:.0f} s; 1 torch thread."
    return finish_report(text, "overhead", argv, args.output, "no randomness (data and weights seeded with 0)")


if __name__ == "__main__":
    main()
