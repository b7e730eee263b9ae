"""What does :class:`lightning_clr.DivergenceGuard` cost per optimizer step, and how many syncs does it make?

Three measurements, in one process:

1. **In a Trainer, side by side**: MNIST-1D ConvBase (batch 64, SGD momentum 0.9) with ``OneCycleLR`` + an empty
   ``Callback`` (Lightning calls every hook of every callback, so an empty one is the floor of any callback) and
   with ``OneCycleLR`` + ``DivergenceGuard()`` (defaults), ``--repeats`` interleaved pairs (the order alternates),
   ``--steps`` timed optimizer steps each (after ``--warmup``), in this process's CPU time. The guard's cost is
   the median of the paired differences, also as a share of the median ConvBase step.
2. **The hook alone**: ``on_train_batch_end`` called directly on a ConvBase model (no Trainer), timed per kind
   of step: between checks, at a check, at a check that keeps the state. Far less noisy than (1).
3. **Syncs**: ``Tensor.item``, ``tolist``, ``__bool__``, ``__float__``, ``__int__`` and ``numpy`` wrapped
   while the guard's hook runs during a guarded fit: the steps at which it read a tensor.

    python benchmarks/guard_overhead.py --output benchmarks/results      # about 2 minutes
    python benchmarks/guard_overhead.py --quick
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any

_HERE = os.path.dirname(os.path.abspath(__file__))
for _path in (_HERE, os.path.dirname(_HERE)):  # the benchmarks, and this checkout's lightning_clr
    if _path not in sys.path:
        sys.path.insert(0, _path)

import pytorch_lightning as pl  # noqa: E402
import torch  # noqa: E402
from common import Classifier, make_mnist1d, quiet_lightning, train_loader, trainer_kwargs  # noqa: E402
from reporting import machine_info, markdown_table, save_report  # noqa: E402

import lightning_clr as clr  # noqa: E402

SYNCS = ("item", "tolist", "__bool__", "__float__", "__int__", "numpy")


class StepTimer(pl.Callback):
    """CPU time from the first batch after ``warmup`` steps to the end of training."""

    def __init__(self, warmup: int) -> None:
        self.warmup, self.start, self.end, self.first = warmup, 0.0, 0.0, 0

    def on_train_batch_start(self, trainer: Any, pl_module: Any, batch: Any, batch_idx: int) -> None:
        if trainer.global_step == self.warmup:
            self.start, self.first = time.process_time(), trainer.global_step

    def on_train_end(self, trainer: Any, pl_module: Any) -> None:
        self.end = time.process_time()
        self.steps = trainer.global_step - self.first

    def per_step_us(self) -> float:
        return 1e6 * (self.end - self.start) / self.steps


def timed_fit(data: Any, guarded: bool, steps: int, warmup: int) -> float:
    pl.seed_everything(0, verbose=False)
    timer = StepTimer(warmup)
    callbacks = [clr.OneCycleLR(max_lr=0.2), clr.DivergenceGuard() if guarded else pl.Callback(), timer]
    trainer = pl.Trainer(**trainer_kwargs(max_steps=warmup + steps, callbacks=callbacks))
    trainer.fit(Classifier(momentum=0.9), train_loader(data.x_train, data.y_train, 64, seed=0))
    return timer.per_step_us()


def in_trainer(data: Any, repeats: int, steps: int, warmup: int) -> dict[str, Any]:
    plain, guarded, diffs = [], [], []
    for r in range(repeats):
        order = (False, True) if r % 2 == 0 else (True, False)
        times = {g: timed_fit(data, g, steps, warmup) for g in order}
        plain.append(times[False])
        guarded.append(times[True])
        diffs.append(times[True] - times[False])
    return {"plain": plain, "guarded": guarded, "diffs": diffs}


def hook_alone(data: Any, steps: int) -> dict[str, float]:
    """Per-call cost of the guard's batch-end hook by kind of step, on a ConvBase model (no Trainer)."""
    module = Classifier(momentum=0.9)
    optimizer = torch.optim.SGD(module.parameters(), lr=0.1, momentum=0.9)
    trainer = SimpleNamespace(optimizers=[optimizer], callbacks=[], precision_plugin=None, global_step=0,
                              global_rank=0, world_size=1, is_global_zero=True, loggers=[])
    guard = clr.DivergenceGuard()
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        guard.on_fit_start(trainer, module)
    guard.on_train_start(trainer, module)
    loss = torch.nn.functional.cross_entropy(module(data.x_train[:64]), data.y_train[:64]).detach()
    outputs = {"loss": loss}
    kinds: dict[str, list[float]] = {"between checks": [], "check": [], "check + keep": []}
    for step in range(1, steps + 1):
        trainer.global_step = step
        start = time.perf_counter()
        guard.on_train_batch_end(trainer, module, outputs, None, 0)
        elapsed = time.perf_counter() - start
        kind = ("check + keep" if step % guard.keep_every_n_steps == 0 else "check") \
            if step % guard.check_every_n_steps == 0 else "between checks"
        kinds[kind].append(1e6 * elapsed)
    return {k: statistics.median(v) for k, v in kinds.items()}


def count_syncs(data: Any, steps: int) -> dict[int, int]:
    """Tensor reads made inside the guard's hooks during a guarded fit, by global step."""
    inside: list[int] = []
    counts: dict[int, int] = {}
    originals = {name: getattr(torch.Tensor, name) for name in SYNCS}

    def wrap(name: str) -> Any:
        def wrapper(self: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
            if inside:
                counts[inside[-1]] = counts.get(inside[-1], 0) + 1
            return originals[name](self, *args, **kwargs)

        return wrapper

    class Watched(clr.DivergenceGuard):
        def on_train_batch_end(self, trainer: Any, *args: Any) -> None:
            inside.append(trainer.global_step)
            try:
                super().on_train_batch_end(trainer, *args)
            finally:
                inside.pop()

    for name in SYNCS:
        setattr(torch.Tensor, name, wrap(name))
    try:
        trainer = pl.Trainer(**trainer_kwargs(max_steps=steps, callbacks=[clr.OneCycleLR(max_lr=0.2), Watched()]))
        trainer.fit(Classifier(momentum=0.9), train_loader(data.x_train, data.y_train, 64, seed=0))
    finally:
        for name, original in originals.items():
            setattr(torch.Tensor, name, original)
    return counts


def main(argv: Sequence[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--hook-steps", type=int, default=20000)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--output", default=None)
    args = parser.parse_args(argv)
    if args.quick:
        args.repeats, args.steps, args.hook_steps = 2, 60, 2000
    torch.set_num_threads(1)
    quiet_lightning()
    data = make_mnist1d()
    start = time.perf_counter()
    fits = in_trainer(data, args.repeats, args.steps, args.warmup)
    hook = hook_alone(data, args.hook_steps)
    syncs = count_syncs(data, 300)
    step = statistics.median(fits["plain"])
    diff = statistics.median(fits["diffs"])
    guard = clr.DivergenceGuard()
    per_step = (hook["between checks"] * (guard.check_every_n_steps - 1) + hook["check"]) / guard.check_every_n_steps
    per_step += (hook["check + keep"] - hook["check"]) / guard.keep_every_n_steps
    between = sorted(s for s in syncs if s % guard.check_every_n_steps)
    info = machine_info()
    lines = [
        f"DivergenceGuard() defaults (check every {guard.check_every_n_steps} steps, keep every "
        f"{guard.keep_every_n_steps}) on MNIST-1D ConvBase, batch 64, SGD momentum 0.9, OneCycleLR(max_lr=0.2).\n",
        f"1. In a Trainer: {args.repeats} interleaved pairs of {args.steps} timed steps, CPU µs per optimizer step.\n",
        markdown_table(["variant", "median µs/step", "min–max"], [
            ["OneCycleLR + empty Callback", f"{step:.0f}", f"{min(fits['plain']):.0f}–{max(fits['plain']):.0f}"],
            ["OneCycleLR + DivergenceGuard", f"{statistics.median(fits['guarded']):.0f}",
             f"{min(fits['guarded']):.0f}–{max(fits['guarded']):.0f}"],
            ["paired difference (guard's cost)", f"{diff:+.1f} ({100 * diff / step:+.2f}% of a step)",
             f"{min(fits['diffs']):+.0f}–{max(fits['diffs']):+.0f}"]]),
        f"\n2. The batch-end hook alone (median of {args.hook_steps} calls, wall µs per call):\n",
        markdown_table(["step kind", "µs per call"], [[k, f"{v:.1f}"] for k, v in hook.items()]
                       + [["average per step (defaults)", f"{per_step:.2f} ({100 * per_step / step:.3f}% of a "
                           "ConvBase step)"]]),
        f"\n3. Tensor reads inside the guard's hook in a 300-step fit: at steps {sorted(syncs)} "
        f"({sum(syncs.values())} reads: one `tolist` a check, plus `bool` of the host copy's finiteness at a keep); "
        f"between checks: {len(between)} steps with a read.",
        f"\nCommand: python benchmarks/guard_overhead.py {' '.join(argv if argv is not None else sys.argv[1:])}\n"
        f"Machine: {info['cpu']}, {info['cores']} cores (shared), torch {info['torch']}, pytorch_lightning "
        f"{info['pytorch_lightning']}, 1 thread; {time.perf_counter() - start:.0f} s.",
    ]
    text = "\n".join(lines)
    print(text)
    save_report(text, args.output, "guard_overhead.md")
    return text


if __name__ == "__main__":
    main()
