"""Per-step cost of a callback inside a real fit, timed hook by hook: the in-Trainer figure that is not noise.

Timing whole fits cannot resolve a few µs: a tiny MLP's step in a Trainer takes about 1,200 µs of CPU time
and two identical runs differ by tens of µs (``benchmarks/overhead.py`` shows interquartile ranges of ±50 µs
on an idle machine). But a callback can only cost what runs in its hooks (Lightning calls every hook of
every callback; for an empty ``Callback`` those are no-op methods), so this script times the hooks
themselves, inside the fit, where the Trainer's own work has evicted them from the caches:

* every ``on_*`` hook of the measured callback **and** of an empty ``Callback`` on the same Trainer is
  wrapped in a ``time.perf_counter_ns`` pair (an instance attribute, which is what Lightning looks up);
* the time is summed per training batch (from one ``on_train_batch_start`` to the next), so each batch
  gives one figure per callback, measured on the same step in the same state of the machine;
* the cost of a batch is the callback's sum minus the empty Callback's (the timer's own cost and the
  dispatch of a no-op hook cancel), and the table gives the median over the batches of a run, then the
  median [interquartile range] over runs;
* torch's schedulers are timed the same way: ``scheduler.step`` (which Lightning calls once a step from
  ``update_lr_schedulers``) is wrapped and counted with the hooks of a second empty ``Callback``, so both
  sides of the difference hold the same number of timed no-op hooks.

A logger is attached (``log_every_n_steps=50``, metrics dropped) so the logging check is part of the cost;
the logging work itself, on one step in 50, is reported apart (mean over all steps minus the median).

    python benchmarks/overhead_in_fit.py                 # ~1 min
    python benchmarks/overhead_in_fit.py --runs 3 --steps 300   # a smoke test
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.loggers import Logger
from torch.utils.data import DataLoader, TensorDataset

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import trainer_kwargs  # noqa: E402
from overhead import EmptyCallback, _Regression, _variant  # noqa: E402

VARIANTS = ("clr.CyclicLR", "clr.OneCycleLR", "clr.CosineRestartsLR", "torch CyclicLR", "torch OneCycleLR")
GOAL_US = 3.0


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


def measure(variant: str, groups: int, steps: int, warmup: int) -> dict[str, float]:
    """One fit: per batch, the variant's time minus the empty Callback's; median and mean over batches."""
    callbacks, factory = _variant(variant, steps)
    ours, empty = _Buckets(), _Buckets()
    reference = EmptyCallback()
    _instrument_hooks(reference, empty)
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
    trainer = pl.Trainer(**trainer_kwargs(max_steps=steps, max_epochs=1, logger=_DropLogger(), log_every_n_steps=50,
                                          callbacks=[*callbacks, reference]))
    gc.collect()
    trainer.fit(model, loader)
    ours.new_batch()
    empty.new_batch()
    differences = [(a - b) / 1000 for a, b in zip(ours.per_batch[warmup:], empty.per_batch[warmup:], strict=True)]
    return {"median": statistics.median(differences), "mean": statistics.fmean(differences),
            "empty_median": statistics.median(b / 1000 for b in empty.per_batch[warmup:])}


def _quartiles(values: Sequence[float]) -> tuple[float, float, float]:
    q1, median, q3 = statistics.quantiles(values, n=4, method="inclusive") if len(values) > 1 else (values[0],) * 3
    return q1, median, q3


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="fits per variant and group count (default 7)")
    parser.add_argument("--steps", type=int, default=1000, help="optimizer steps per fit (default 1000)")
    parser.add_argument("--warmup", type=int, default=50, help="first batches left out (default 50)")
    parser.add_argument("--groups", default="1,10", help="param-group counts (default 1,10)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    groups = [int(g) for g in args.groups.split(",")]
    rows: dict[tuple[str, int], list[dict[str, float]]] = {(v, g): [] for v in VARIANTS for g in groups}
    began = time.perf_counter()
    for run in range(args.runs):  # interleaved: every variant once per round, in a rotated order
        order = VARIANTS[run % len(VARIANTS):] + VARIANTS[:run % len(VARIANTS)]
        for g in groups:
            for variant in order:
                rows[(variant, g)].append(measure(variant, g, args.steps, args.warmup))
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"Command: `python benchmarks/overhead_in_fit.py {' '.join(argv if argv is not None else sys.argv[1:])}`."
          f" Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores (load average "
          f"{load:.1f} at the end); Python {platform.python_version()}, torch {torch.__version__}, "
          f"pytorch_lightning {pl.__version__}; 1 torch thread; {args.runs} interleaved fits of {args.steps} "
          f"steps per cell, the first {args.warmup} batches left out.\n")
    header = " | ".join(f"{g} group{'s' if g > 1 else ''}: µs/step [IQR over fits]" for g in groups)
    print(f"| variant | {header} | logging, µs/step (1 group) | goal (1 group) |")
    print("|---|" + "---|" * len(groups) + "---|---|")
    results: dict[str, Any] = {}
    for variant in VARIANTS:
        cells = []
        for g in groups:
            medians = [r["median"] for r in rows[(variant, g)]]
            q1, median, q3 = _quartiles(medians)
            results[f"{variant}/{g}"] = {"median": median, "q1": q1, "q3": q3}
            cells.append(f"{median:+.2f} [{q1:+.2f}, {q3:+.2f}]")
        logging = statistics.median(r["mean"] - r["median"] for r in rows[(variant, groups[0])])
        first = results[f"{variant}/{groups[0]}"]["median"]
        goal = "–" if variant.startswith("torch") else ("met" if first <= GOAL_US else "MISSED")
        print(f"| {variant} | {' | '.join(cells)} | {logging:+.2f} | ≤ {GOAL_US:g} µs: {goal} |")
    empty = statistics.median(r["empty_median"] for v in VARIANTS for r in rows[(v, groups[0])])
    print(f"\nThe empty Callback's wrapped hooks (timer and no-op dispatch, subtracted above): {empty:.2f} µs a batch. "
          f"Wall time {time.perf_counter() - began:.0f} s.")
    return results


if __name__ == "__main__":
    main()
