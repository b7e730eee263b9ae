"""Per-step cost of a callback inside a real fit, timed hook by hook: the in-Trainer figure that is not noise.

Timing whole fits cannot resolve a few µs: a tiny MLP's step in a Trainer takes about 1,200 µs of CPU time
and two identical runs differ by tens of µs (``benchmarks/overhead.py`` shows interquartile ranges of ±50 µs
on an idle machine). But a callback can only cost what runs in its hooks (Lightning calls every hook of
every callback; for an empty ``Callback`` those are no-op methods), so this script times the hooks
themselves, inside the fit, where the Trainer's own work has evicted them from the caches:

* every ``on_*`` hook of the measured callback **and** of two empty ``Callback``s on the same Trainer, one
  before it in the callback list and one after, is wrapped in a ``time.perf_counter_ns`` pair (an instance
  attribute, which is what Lightning looks up);
* the time is summed per training batch (from one ``on_train_batch_start`` to the next), so each batch
  gives one figure per callback, measured on the same step in the same state of the machine;
* the cost of a batch is the callback's sum minus the mean of the two empty Callbacks' (the timer's own
  cost and the dispatch of a no-op hook cancel; the first callback Lightning calls warms the code all of
  them share: the two orders gave figures 1.8 µs a batch apart for the same callback, so the reference sits on both
  sides), and the table gives the median over the batches of a run, then the median [interquartile range]
  over runs;
* work done once in a while is spread over its period and reported apart, so a median cannot hide it: the
  writer's rate table (filled once in ``TABLE_STEPS`` steps) and the logging (once in 50);
* torch's schedulers are timed the same way: ``scheduler.step`` (which Lightning calls once a step from
  ``update_lr_schedulers``) is wrapped and counted with the hooks of a second empty ``Callback``, so both
  sides of the difference hold the same number of timed no-op hooks.

A logger is attached (``log_every_n_steps=50``, metrics dropped) so the logging check is part of the cost;
the periodic work is the median over the batches that do it minus the median over all, divided by the
period. The goals count the table's share (it is the hot path's own work); the logging is a feature an
empty Callback lacks and is shown beside them.

``python benchmarks/overhead.py`` runs it first (its headline in-Trainer table);
``python benchmarks/overhead.py --in-fit-only`` runs only this (about 5.5 minutes on two cores).
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

import pytorch_lightning as pl
import torch
from _overhead_variants import PAIRED_VARIANTS, EmptyCallback, _Regression, _variant
from common import trainer_kwargs
from pytorch_lightning.loggers import Logger
from torch.utils.data import DataLoader, TensorDataset

from lightning_clr.callbacks import writer as _writer

GOAL_US = 3.0
#: the period of the writer's table fills (a version without the table: any period, its share is about 0)
TABLE_STEPS: int = getattr(_writer, "TABLE_STEPS", 1024)
LOG_EVERY = 50


class _DropLogger(Logger):
    """A logger that keeps nothing: the callbacks' logging checks and calls run, nothing is written."""

    @property
    def name(self) -> str:
        return "drop"

    @property
    def version(self) -> int:
        return 0

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        pass

    def log_hyperparams(self, params: Any, *args: Any, **kwargs: Any) -> None:
        pass


class _Buckets:
    """Nanoseconds spent in wrapped calls, summed per training batch."""

    def __init__(self) -> None:
        self.per_batch: list[int] = []
        self._current = 0
        self._started = False

    def new_batch(self) -> None:
        if self._started:
            self.per_batch.append(self._current)
        self._current = 0
        self._started = True

    def add(self, nanoseconds: int) -> None:
        self._current += nanoseconds


def _timed(function: Callable[..., Any], buckets: _Buckets, opens_batch: bool = False) -> Callable[..., Any]:
    clock = time.perf_counter_ns

    if opens_batch:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            buckets.new_batch()
            begin = clock()
            result = function(*args, **kwargs)
            buckets.add(clock() - begin)
            return result
    else:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            begin = clock()
            result = function(*args, **kwargs)
            buckets.add(clock() - begin)
            return result
    return wrapper


def _instrument_hooks(callback: pl.Callback, buckets: _Buckets) -> None:
    for name in dir(pl.Callback):
        if name.startswith("on_"):
            setattr(callback, name, _timed(getattr(callback, name), buckets, name == "on_train_batch_start"))


class _TimedScheduler:
    """Wraps ``scheduler.step`` of a torch scheduler once ``configure_optimizers`` has built it."""

    def __init__(self, factory: Callable[[torch.optim.Optimizer], Any], buckets: _Buckets) -> None:
        self.factory, self.buckets = factory, buckets

    def __call__(self, optimizer: torch.optim.Optimizer) -> Any:
        scheduler = self.factory(optimizer)
        scheduler.step = _timed(scheduler.step, self.buckets)  # type: ignore[method-assign]
        return scheduler


def measure(variant: str, groups: int, steps: int, warmup: int, distinct: bool = False) -> dict[str, float]:
    """One fit: per batch, the variant's time minus the mean of two empty Callbacks', one called just before
    it and one just after (the first callback Lightning calls warms the code they share: the order alone
    moved a callback's figure by 1.8 µs a batch here, so neither place alone is fair). With ``distinct`` each
    param group has rates of its own (a list of them, one per group), else every group has the same."""
    callbacks, factory = _variant(variant, steps, groups if distinct else 1)
    ours, before, after = _Buckets(), _Buckets(), _Buckets()
    first, last = EmptyCallback(), EmptyCallback()
    _instrument_hooks(first, before)
    _instrument_hooks(last, after)
    if callbacks:
        _instrument_hooks(callbacks[0], ours)
    else:  # the scheduler's step, plus an empty Callback's hooks as the reference has them
        factory = _TimedScheduler(factory, ours)
        callbacks = [EmptyCallback()]
        _instrument_hooks(callbacks[0], ours)
    torch.manual_seed(0)
    model = _Regression(groups, factory)
    data = torch.randn(steps * 16, 8, generator=torch.Generator().manual_seed(0))
    loader = DataLoader(TensorDataset(data), batch_size=16, shuffle=False)
    trainer = pl.Trainer(**trainer_kwargs(max_steps=steps, max_epochs=1, logger=_DropLogger(),
                                          log_every_n_steps=LOG_EVERY, callbacks=[first, *callbacks, last]))
    gc.collect()
    trainer.fit(model, loader)
    for buckets in (ours, before, after):
        buckets.new_batch()
    differences = [(a - (b + c) / 2) / 1000
                   for a, b, c in zip(ours.per_batch, before.per_batch, after.per_batch, strict=True)]
    median = statistics.median(differences[warmup:])
    return {"median": median, "logging": _periodic(differences, warmup, LOG_EVERY, median),
            "table": _periodic(differences, warmup, TABLE_STEPS, median),
            "empty_median": statistics.median((b + c) / 2000 for b, c in zip(before.per_batch[warmup:],
                                                                              after.per_batch[warmup:], strict=True))}


def _periodic(differences: Sequence[float], warmup: int, period: int, median: float) -> float:
    """Work done on one batch in ``period`` (batch ``i`` with ``(i + 1) % period == 0``), spread over the
    period: the median over those batches minus the median over all, divided by ``period``."""
    batches = [d for i, d in enumerate(differences) if i >= warmup and (i + 1) % period == 0]
    return (statistics.median(batches) - median) / period if batches else 0.0


def _quartiles(values: Sequence[float]) -> tuple[float, float, float]:
    if len(values) == 1:
        return values[0], values[0], values[0]
    q1, median, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return q1, median, q3


def measure_in_fit(runs: int, steps: int, warmup: int, groups: Sequence[int]) -> dict[str, Any]:
    """``runs`` interleaved rounds (every variant once per round and group count, in a rotated order) of
    :func:`measure`; returns, per ``"variant/groups"``, the median over runs of the per-batch medians with its
    quartiles, and the logging share, plus the empty Callback's own timed cost. The largest group count above 1
    is measured a second time with a rate of its own for each group (cells ``"variant/groups/distinct"``)."""
    counts = [(g, False) for g in groups]
    distinct = max((g for g in groups if g > 1), default=None)
    if distinct is not None:
        counts.append((distinct, True))
    rows: dict[tuple[str, int, bool], list[dict[str, float]]] = {
        (v, g, d): [] for v in PAIRED_VARIANTS for g, d in counts}
    for run in range(runs):
        shift = run % len(PAIRED_VARIANTS)
        order = PAIRED_VARIANTS[shift:] + PAIRED_VARIANTS[:shift]
        for g, d in counts:
            for variant in order:
                rows[(variant, g, d)].append(measure(variant, g, steps, warmup, distinct=d))
    cells: dict[str, Any] = {}
    for (variant, g, d), measured in rows.items():
        q1, median, q3 = _quartiles([r["median"] for r in measured])
        cells[f"{variant}/{g}" + ("/distinct" if d else "")] = {
            "median": median, "q1": q1, "q3": q3, "logging": statistics.median(r["logging"] for r in measured),
            "table": statistics.median(r["table"] for r in measured)}
    empty = statistics.median(r["empty_median"] for measured in rows.values() for r in measured)
    return {"runs": runs, "steps": steps, "warmup": warmup, "groups": list(groups), "distinct": distinct,
            "cells": cells, "empty_us": empty}


def in_fit_report(results: dict[str, Any]) -> str:
    """The table of :func:`measure_in_fit`, with the goals (≤ 3 µs with one group; ≤ torch's scheduler)."""
    groups, cells = results["groups"], results["cells"]
    lines = [f"Inside a fit, hook by hook ({results['runs']} interleaved fits of {results['steps']} steps per cell, "
             f"the first {results['warmup']} batches left out; per batch the callback's hooks minus the mean of two "
             "empty Callbacks' on the same Trainer, one called before it and one after; median over batches, then "
             "median [IQR] over fits; a logger attached, log_every_n_steps=50). Periodic work, spread over its "
             f"period: the rate table filled once in {TABLE_STEPS} steps, the logging once in {LOG_EVERY}. The goals "
             "compare the per-step cost with the table's share added (1 group):", ""]
    # The columns: (cell key suffix, heading, the goal's label), the distinct rates last.
    columns = [(f"{g}", f"µs/step, {g} group{'s' if g > 1 else ''}", f"{g}") for g in groups]
    distinct = results.get("distinct")
    if distinct:
        columns.append((f"{distinct}/distinct", f"µs/step, {distinct} groups, a rate each", f"{distinct}, a rate each"))
    fills = "1 group" + (f" / {distinct}, a rate each" if distinct else "")
    headings = " | ".join(heading for _, heading, _ in columns)
    lines += [f"| variant | {headings} | table fill, µs/step ({fills}) | logging, µs/step | goals |",
              "|---|" + "---|" * len(columns) + "---|---|---|"]

    def cost(cell: dict[str, float]) -> float:
        return cell["median"] + max(cell["table"], 0.0)

    for variant in PAIRED_VARIANTS:
        row = [cells[f"{variant}/{key}"] for key, _, _ in columns]
        text = [f"{c['median']:+.2f} [{c['q1']:+.2f}, {c['q3']:+.2f}]" for c in row]
        goals = table = "–"
        if not variant.startswith("torch"):
            verdicts = [f"≤ {GOAL_US:g} µs: {'met' if cost(row[0]) <= GOAL_US else 'MISSED'}"]
            twin = {"clr.CyclicLR": "torch CyclicLR", "clr.OneCycleLR": "torch OneCycleLR"}.get(variant)
            if twin is not None:
                for (key, _, label), c in zip(columns, row, strict=True):
                    ok = cost(c) <= cells[f"{twin}/{key}"]["median"]
                    verdicts.append(f"≤ torch ({label}): {'met' if ok else 'MISSED'}")
            goals = "; ".join(verdicts)
            table = " / ".join(f"{c['table']:+.2f}" for c in ([row[0], row[-1]] if distinct else [row[0]]))
        lines.append(f"| {variant} | {' | '.join(text)} | {table} | {row[0]['logging']:+.2f} | {goals} |")
    lines += ["", f"An empty Callback's timed hooks (timer and no-op dispatch, subtracted above): "
                  f"{results['empty_us']:.2f} µs a batch."]
    return "\n".join(lines)
