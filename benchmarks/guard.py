"""Aggressive 1cycle peaks with and without :class:`lightning_clr.DivergenceGuard` on MNIST-1D ConvBase, and the
guard's cost.

The tuned 1cycle peak for ConvBase with SGD (momentum 0.9, batch 64) is 0.2. 1cycle trains at the tuned peak and at
2x and 3x it (``--peaks``), each with and without the guard (its defaults, or ``--guard-args`` / ``--rate-factors``),
``--seeds`` seeds from ``--first-seed``, for ``--epochs`` epochs (16: 880 optimizer steps). The report gives per
peak and guard: the diverged runs (final test accuracy under 20%, chance is 10%, a non-finite loss, or the guard
gave up), the test accuracy (median [min–max], against the tuned peak unguarded), the runs under 90% and the
rollbacks. Goal: no diverged run with the guard at 2x and 3x, and its median within 2 points of the tuned peak's.

``--overhead`` measures the guard's cost instead: ``--repeats`` interleaved pairs of fits with ``OneCycleLR`` and
an empty ``Callback`` or a default ``DivergenceGuard()`` (CPU µs per optimizer step, median of the paired
differences), and the tensor reads (``item``, ``tolist``, ``__bool__``, ...) made inside the guard's hooks in a
300-step fit, by step.

    python -m benchmarks.guard --seeds 60 --workers 2 --output benchmarks/results   # 540 runs, ~65 min of fits
    python -m benchmarks.guard --seeds 1 --epochs 1 --workers 1 --output /tmp/guard-smoke
    python -m benchmarks.guard --overhead --repeats 30                             # ~2 min

Runs are cached in ``guard.csv`` in ``--output`` (key: peak, rate_factor (0: no guard), the guard's other
arguments, seed, epochs); a rerun only trains what is missing.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import statistics
import time
import warnings
from collections.abc import Sequence
from typing import Any

import pytorch_lightning as pl
import torch

from benchmarks.common import (
    Classifier,
    accuracy,
    finish_report,
    make_mnist1d,
    mapped,
    markdown_table,
    quiet_lightning,
    train_loader,
    trainer_kwargs,
    worker_init,
)

TUNED_PEAK = 0.2
BATCH = 64
FIELDS = ["peak", "guard", "rule", "seed", "epochs", "accuracy", "final_loss", "diverged", "gave_up", "rollbacks",
          "rate_scale", "event_steps", "kept_steps", "wall_s"]
ARGS = ("check_every_n_steps", "keep_every_n_steps", "spike_factor", "patience", "smoothing", "level_memory",
        "max_rollbacks", "keep_count", "stall_patience", "stall_fraction", "stall_min_delta")
SYNCS = ("item", "tolist", "__bool__", "__float__", "__int__", "numpy")
Spec = tuple[float, float, str, int, int]  # peak, rate_factor (0: no guard), guard arguments (JSON), seed, epochs


def rule_of(**kwargs: Any) -> str:
    """The "rule" column of a guard built with ``kwargs``: every argument but ``rate_factor``, so that a changed
    default makes the cached guarded runs stale."""
    import lightning_clr as clr

    guard = clr.DivergenceGuard(**kwargs)
    return " ".join(f"{name}={getattr(guard, name)!r}" for name in ARGS)


def run_one(spec: Spec) -> dict[str, Any]:
    """Trains ConvBase with 1cycle at ``peak``, guarded with that ``rate_factor`` (0: not) and the other guard
    arguments (a JSON object); returns one CSV row."""
    import lightning_clr as clr

    peak, factor, args, seed, epochs = spec
    data = make_mnist1d()
    pl.seed_everything(seed, verbose=False)
    model = Classifier(momentum=0.9)
    guard = clr.DivergenceGuard(rate_factor=factor, **json.loads(args)) if factor > 0 else None
    trainer = pl.Trainer(**trainer_kwargs(max_epochs=epochs, callbacks=[clr.OneCycleLR(max_lr=peak),
                                                                         *([guard] if guard else [])]))
    start, gave_up = time.perf_counter(), False
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*DivergenceGuard.*")
        try:
            trainer.fit(model, train_loader(data.x_train, data.y_train, BATCH, seed=seed))
        except Exception as error:  # the guard gives up with a DivergenceError
            if type(error).__name__ != "DivergenceError":
                raise
            gave_up = True
    final_loss = float(torch.nn.functional.cross_entropy(model(data.x_train), data.y_train).detach())
    acc = accuracy(model, data.x_test, data.y_test)
    events = guard.events if guard else []
    return {"peak": peak, "guard": factor, "rule": rule_of(**json.loads(args)) if guard else "", "seed": seed,
            "epochs": epochs, "accuracy": acc, "final_loss": final_loss,
            "diverged": int(gave_up or not math.isfinite(final_loss) or acc < 0.2), "gave_up": int(gave_up),
            "rollbacks": len(events), "rate_scale": guard.rate_scale if guard else 1.0,
            "event_steps": json.dumps([e["step"] for e in events]),
            "kept_steps": json.dumps([e["kept_step"] for e in events]), "wall_s": time.perf_counter() - start}


def _key(row: dict[str, Any]) -> tuple[float, float, str, int, int]:
    return float(row["peak"]), float(row["guard"]), row.get("rule") or "", int(row["seed"]), int(row["epochs"])


def _spec_key(spec: Spec) -> tuple[float, float, str, int, int]:
    peak, factor, args, seed, epochs = spec
    return float(peak), float(factor), rule_of(**json.loads(args)) if factor > 0 else "", seed, epochs


def run_all(specs: list[Spec], cache: str, workers: int) -> list[dict[str, Any]]:
    """Runs the specs not in ``cache`` (in ``workers`` processes), appends them to it, returns all their rows."""
    rows: dict[tuple, dict[str, Any]] = {}
    if os.path.exists(cache):
        with open(cache, newline="") as handle:
            rows = {_key(r): r for r in csv.DictReader(handle)}
    todo = [s for s in specs if _spec_key(s) not in rows]
    if todo:
        print(f"running {len(todo)} runs ({len(specs) - len(todo)} cached) in {workers} process(es)", flush=True)
        start, fresh = time.perf_counter(), not os.path.exists(cache)
        with open(cache, "a", newline="") as handle, mapped(run_one, todo, workers, ordered=False) as results:
            writer = csv.DictWriter(handle, FIELDS)
            if fresh:
                writer.writeheader()
            for done, row in enumerate(results, 1):
                writer.writerow(row)
                handle.flush()
                rows[_key(row)] = {k: str(v) for k, v in row.items()}
                print(f"  {done}/{len(todo)} runs, {time.perf_counter() - start:.0f} s", flush=True)
    return [rows[_spec_key(s)] for s in specs]


def label(row: dict[str, Any]) -> str:
    """``no``, ``defaults`` or the guard arguments that differ from the defaults."""
    if float(row["guard"]) == 0:
        return "no"
    defaults = dict(item.split("=") for item in rule_of().split())
    changed = [item for item in (row.get("rule") or "").split() if defaults.get(item.split("=")[0]) != item[
        item.index("=") + 1:]]
    if float(row["guard"]) != 0.5:
        changed.insert(0, f"rate_factor={float(row['guard']):.3g}")
    return ", ".join(changed) or "defaults"


def report(rows: list[dict[str, Any]], seeds: str, epochs: int) -> str:
    """The table: per peak and guard, diverged runs, test accuracy, runs under 90%, rollbacks."""
    tuned = statistics.median(float(r["accuracy"]) for r in rows
                              if float(r["peak"]) == TUNED_PEAK and float(r["guard"]) == 0)
    table = []
    for peak in sorted({float(r["peak"]) for r in rows}):
        for name in dict.fromkeys(label(r) for r in rows):
            group = [r for r in rows if float(r["peak"]) == peak and label(r) == name]
            if not group:
                continue
            accs = [100 * float(r["accuracy"]) for r in group]
            rollbacks = [int(r["rollbacks"]) for r in group]
            table.append([f"{peak:g} ({peak / TUNED_PEAK:g}x)", name,
                          f"{sum(int(r['diverged']) for r in group)}/{len(group)}",
                          f"{statistics.median(accs):.1f} [{min(accs):.1f}–{max(accs):.1f}]",
                          f"{statistics.median(accs) - 100 * tuned:+.1f}", sum(a < 90 for a in accs),
                          "–" if name == "no" else f"{sum(r > 0 for r in rollbacks)} runs, at most {max(rollbacks)}"])
    return (f"MNIST-1D ConvBase, SGD momentum 0.9, batch {BATCH}, 1cycle over {epochs} epochs "
            f"({epochs * math.ceil(3500 / BATCH)} steps), seeds {seeds}; diverged = final test accuracy < 20% "
            f"(chance 10%), a non-finite loss or the guard gave up. Guard: DivergenceGuard() with its defaults "
            f"(rate_factor=0.5, {rule_of()}), or with the arguments shown.\n\n"
            + markdown_table(["1cycle peak", "guard", "diverged", "test acc % median [min–max]", "vs tuned (points)",
                              "runs < 90%", "rolled back"], table))


# ---------------------------------------------------------------------------------------------- --overhead
class _StepTimer(pl.Callback):
    """CPU time from optimizer step ``warmup`` to the end of training."""

    def __init__(self, warmup: int) -> None:
        self.warmup, self.start, self.first = warmup, 0.0, 0

    def on_train_batch_start(self, trainer: Any, pl_module: Any, batch: Any, batch_idx: int) -> None:
        if trainer.global_step == self.warmup and not self.start:
            self.start, self.first = time.process_time(), trainer.global_step

    def on_train_end(self, trainer: Any, pl_module: Any) -> None:
        self.us = 1e6 * (time.process_time() - self.start) / (trainer.global_step - self.first)


def _fit(data: Any, guard: pl.Callback, steps: int, warmup: int = 0) -> float:
    import lightning_clr as clr

    pl.seed_everything(0, verbose=False)
    timer = _StepTimer(warmup)
    trainer = pl.Trainer(**trainer_kwargs(max_steps=warmup + steps,
                                          callbacks=[clr.OneCycleLR(max_lr=TUNED_PEAK), guard, timer]))
    trainer.fit(Classifier(momentum=0.9), train_loader(data.x_train, data.y_train, BATCH, seed=0))
    return timer.us


def overhead(repeats: int, steps: int, warmup: int = 20) -> str:
    """The guard's cost in a Trainer (interleaved pairs against an empty ``Callback``) and its tensor reads."""
    import lightning_clr as clr

    data, plain, diffs = make_mnist1d(), [], []
    for r in range(repeats):
        order = (False, True) if r % 2 == 0 else (True, False)
        times = {g: _fit(data, clr.DivergenceGuard() if g else pl.Callback(), steps, warmup) for g in order}
        plain.append(times[False])
        diffs.append(times[True] - times[False])
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
        _fit(data, Watched(), 300)
    finally:
        for name, original in originals.items():
            setattr(torch.Tensor, name, original)
    step, diff, guard = statistics.median(plain), statistics.median(diffs), clr.DivergenceGuard()
    between = [s for s in counts if s % guard.check_every_n_steps]
    return (f"DivergenceGuard() (check every {guard.check_every_n_steps} steps, keep every "
            f"{guard.keep_every_n_steps}) on MNIST-1D ConvBase, batch 64, SGD momentum 0.9, OneCycleLR(max_lr=0.2): "
            f"{repeats} interleaved pairs of {steps} timed steps (after {warmup}), CPU µs per optimizer step.\n\n"
            + markdown_table(["variant", "median µs/step", "min–max"], [
                ["OneCycleLR + empty Callback", f"{step:.0f}", f"{min(plain):.0f}–{max(plain):.0f}"],
                ["paired difference (the guard's cost)", f"{diff:+.1f} ({100 * diff / step:+.2f}% of a step)",
                 f"{min(diffs):+.0f}–{max(diffs):+.0f}"]])
            + f"\n\nTensor reads inside the guard's hook in a 300-step fit: {sum(counts.values())} at steps "
            f"{sorted(counts)}; between checks: {len(between)} steps with a read.")


def main(argv: Sequence[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--first-seed", type=int, default=0, help="seeds first-seed .. first-seed + seeds - 1")
    parser.add_argument("--epochs", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--peaks", default="2,3", help="multiples of the tuned peak to run (guarded and not)")
    parser.add_argument("--rate-factors", default="0.5", help="the guard's rate_factor values (0.5: its default)")
    parser.add_argument("--guard-args", action="append", default=None, metavar="JSON",
                        help="other guard arguments, a JSON object (repeatable; default '{}': the defaults)")
    parser.add_argument("--overhead", action="store_true", help="measure the guard's cost instead")
    parser.add_argument("--repeats", type=int, default=10, help="--overhead: interleaved pairs of fits")
    parser.add_argument("--steps", type=int, default=400, help="--overhead: timed steps a fit")
    parser.add_argument("--output", default=None, help="folder for the run cache and the report")
    args = parser.parse_args(argv)
    worker_init()
    if args.overhead:
        return finish_report(overhead(args.repeats, args.steps), "guard_overhead", argv, args.output)
    quiet_lightning()
    variants = [("{}", 0.0)] + [(json.dumps(json.loads(a), sort_keys=True), float(f))
                                for a in args.guard_args or ["{}"] for f in args.rate_factors.split(",")]
    peaks = [TUNED_PEAK] + [round(TUNED_PEAK * float(m), 10) for m in args.peaks.split(",")]
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    specs: list[Spec] = [(p, f, a, s, args.epochs) for p in peaks for a, f in variants for s in seeds]
    os.makedirs(args.output or ".", exist_ok=True)
    rows = run_all(specs, os.path.join(args.output or ".", "guard.csv"), args.workers)
    text = report(rows, f"{seeds[0]}..{seeds[-1]}", args.epochs)
    text += (f"\n\n{len(rows)} runs, {sum(float(r['wall_s']) for r in rows) / 60:.0f} min of fit time when run "
             f"(cached runs are not run again), {args.workers} worker process(es), 1 torch thread each.")
    return finish_report(text, "guard", argv, args.output)


if __name__ == "__main__":
    main()
