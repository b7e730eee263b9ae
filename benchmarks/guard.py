"""Aggressive 1cycle peaks with and without :class:`lightning_clr.DivergenceGuard` on MNIST-1D ConvBase.

The tuned 1cycle peak for ConvBase with SGD (momentum 0.9, batch 64) is 0.2 (``results/time_to_accuracy.md``:
the best mean validation accuracy at 4, 8 and 16 epochs). This script trains 1cycle at the tuned peak and at
2x and 3x it, each with and without the guard (its defaults), ``--seeds`` seeds each, for ``--epochs`` epochs
(16 by default: 880 optimizer steps, the budget where the tuned 1cycle reaches its plateau), and reports per
variant how many runs diverged (final test accuracy under 20%, chance is 10%, or a non-finite loss, or the
guard gave up), the final test accuracy, and the guard's rollbacks.

``--curves`` also prints how spike rules (the guard's arguments) fare on the unguarded runs' loss curves (the
mean loss of each 10-step window, recorded in the same runs): on which tuned-peak runs they fire (false
alarms), and which runs that died or were hurt at 2x/3x they catch, at which step.

``--rate-factors`` runs the guard with other ``rate_factor`` values too (one table row each).

Results are cached per run in ``results/guard.csv``; its ``guard`` column is the guard's ``rate_factor`` (0: no
guard), and the key is peak, guard, seed, epochs (delete the guarded rows after changing the guard's defaults).
Runs use ``torch.set_num_threads(1)`` and at most ``--workers`` (2) spawned processes.

    python benchmarks/guard.py --curves --output benchmarks/results   # 30 runs of 880 steps, ~15 min here
    python benchmarks/guard.py --seeds 1 --epochs 1 --output /tmp/guard-smoke
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import multiprocessing
import os
import statistics
import sys
import time
import warnings
from collections.abc import Sequence
from typing import Any

_HERE = os.path.dirname(os.path.abspath(__file__))
# This checkout's lightning_clr, not an installed one (the spawned workers run this too), and the benchmarks.
for _path in (_HERE, os.path.dirname(_HERE)):
    if _path not in sys.path:
        sys.path.insert(0, _path)

import pytorch_lightning as pl  # noqa: E402
import torch  # noqa: E402
from common import Classifier, accuracy, make_mnist1d, quiet_lightning, train_loader, trainer_kwargs  # noqa: E402
from reporting import machine_info, markdown_table, save_report  # noqa: E402

TUNED_PEAK = 0.2
BATCH = 64
WINDOW = 10  # the guard's default check window, for the curves
FIELDS = ["peak", "guard", "rule", "seed", "epochs", "accuracy", "final_loss", "diverged", "gave_up", "rollbacks",
          "rate_scale", "event_steps", "kept_steps", "wall_s", "window_means"]
ARGS = ("check_every_n_steps", "keep_every_n_steps", "spike_factor", "patience", "smoothing", "level_memory",
        "max_rollbacks")  # the guard's arguments besides rate_factor, written into the "rule" column
#: arguments added since the cache began, with the behaviour the older rows had: written into the "rule" column
#: only when they differ from it, so that the cached rows stay valid
LATER_ARGS = {"keep_count": 1, "stall_patience": 0, "stall_fraction": 0.0, "stall_min_delta": 0.0}
#: (spike_factor, patience, smoothing) rules compared on the curves (level_memory 20, keep every 100 steps)
RULES = [(f, p, s) for s in (0.8, 0.5) for f in (1.15, 1.2, 1.3, 1.5) for p in (2, 3)]


def clr_file() -> str:
    import lightning_clr

    return str(lightning_clr.__file__)


def rule_of(**kwargs: Any) -> str:
    """The "rule" column of a guard built with ``kwargs`` (its defaults for the rest): every argument but
    ``rate_factor``, so that changing a default makes the cached guarded runs stale."""
    import lightning_clr as clr

    guard = clr.DivergenceGuard(**kwargs)
    later = [name for name, old in LATER_ARGS.items() if getattr(guard, name) != old  # the other stall_* act
             and (name in ("keep_count", "stall_patience") or guard.stall_patience)]  # only on a stall
    return " ".join(f"{name}={getattr(guard, name)!r}" for name in (*ARGS, *later))


Spec = tuple[float, float, str, int, int]  # peak, rate_factor (0: no guard), guard arguments (JSON), seed, epochs


def run_one(spec: Spec) -> dict[str, Any]:
    """Trains ConvBase with 1cycle at ``peak``, guarded with that ``rate_factor`` (0: not) and the other guard
    arguments of the JSON object ``args``, returns one CSV row."""
    import lightning_clr as clr
    from lightning_clr.callbacks.guard import DivergenceError

    peak, factor, args, seed, epochs = spec
    guarded = factor > 0
    torch.set_num_threads(1)
    quiet_lightning()
    data = make_mnist1d()
    pl.seed_everything(seed, verbose=False)
    model = Classifier(momentum=0.9)
    guard = clr.DivergenceGuard(rate_factor=factor, **json.loads(args)) if guarded else None
    windows: list[float] = []
    losses = WindowMeans(windows)
    callbacks = [clr.OneCycleLR(max_lr=peak), *([guard] if guard else []), *([] if guarded else [losses])]
    trainer = pl.Trainer(**trainer_kwargs(max_epochs=epochs, callbacks=callbacks))
    start, gave_up = time.perf_counter(), False
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*DivergenceGuard.*")
        try:
            trainer.fit(model, train_loader(data.x_train, data.y_train, BATCH, seed=seed))
        except DivergenceError:
            gave_up = True
    final_loss = float(torch.nn.functional.cross_entropy(model(data.x_train), data.y_train).detach())
    acc = accuracy(model, data.x_test, data.y_test)
    events = guard.events if guard else []
    return {"peak": peak, "guard": factor, "rule": rule_of(**json.loads(args)) if guarded else "", "seed": seed,
            "epochs": epochs, "accuracy": acc,
            "final_loss": final_loss, "diverged": int(gave_up or not math.isfinite(final_loss) or acc < 0.2),
            "gave_up": int(gave_up), "rollbacks": len(events), "rate_scale": guard.rate_scale if guard else 1.0,
            "event_steps": json.dumps([e["step"] for e in events]),
            "kept_steps": json.dumps([e["kept_step"] for e in events]), "wall_s": time.perf_counter() - start,
            "window_means": json.dumps(windows)}


class WindowMeans(pl.Callback):
    """Records the mean training loss of every ``WINDOW`` batches into ``out`` (one sync a batch: unguarded
    runs only)."""

    def __init__(self, out: list[float]) -> None:
        self.out, self.total, self.count = out, 0.0, 0

    def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        self.total += float(outputs["loss"])
        self.count += 1
        if self.count == WINDOW:
            self.out.append(self.total / WINDOW)
            self.total, self.count = 0.0, 0


def _key(row: dict[str, Any]) -> tuple[float, float, str, int, int]:
    return float(row["peak"]), float(row["guard"]), row.get("rule") or "", int(row["seed"]), int(row["epochs"])


def _spec_key(spec: Spec) -> tuple[float, float, str, int, int]:
    peak, factor, args, seed, epochs = spec
    return float(peak), float(factor), rule_of(**json.loads(args)) if factor > 0 else "", seed, epochs


def run_all(specs: list[Spec], cache: str, workers: int) -> list[dict[str, Any]]:
    """Runs the specs not in ``cache`` (in at most ``workers`` processes), appends them to it, returns all."""
    rows: dict[tuple, dict[str, Any]] = {}
    if os.path.exists(cache):
        with open(cache, newline="") as handle:
            rows = {_key(r): r for r in csv.DictReader(handle)}
    todo = [s for s in specs if _spec_key(s) not in rows]
    if todo:
        print(f"running {len(todo)} runs ({len(specs) - len(todo)} cached) in {workers} process(es)", flush=True)
        start = time.perf_counter()
        fresh = not os.path.exists(cache)
        pool = multiprocessing.get_context("spawn").Pool(workers) if workers > 1 else None
        try:
            with open(cache, "a", newline="") as handle:
                writer = csv.DictWriter(handle, FIELDS)
                if fresh:
                    writer.writeheader()
                results = pool.imap_unordered(run_one, todo) if pool is not None else map(run_one, todo)
                for done, row in enumerate(results, 1):
                    writer.writerow(row)
                    handle.flush()
                    rows[_key(row)] = {k: str(v) for k, v in row.items()}
                    print(f"  {done}/{len(todo)} runs, {time.perf_counter() - start:.0f} s", flush=True)
        finally:
            if pool is not None:
                pool.close()
                pool.join()
    return [rows[_spec_key(s)] for s in specs]


def _pct(values: Sequence[float]) -> str:
    return f"{100 * statistics.median(values):.1f} [{100 * min(values):.1f}–{100 * max(values):.1f}]"


def _label(row: dict[str, Any]) -> str:
    """``no``, ``defaults`` or the guard arguments that differ from the defaults."""
    if float(row["guard"]) == 0:
        return "no"
    def parsed(rule: str) -> dict[str, str]:
        return {**{name: repr(old) for name, old in LATER_ARGS.items()}, **dict(i.split("=") for i in rule.split())}

    defaults = parsed(rule_of())
    changed = [f"{name}={value}" for name, value in parsed(row.get("rule") or "").items() if defaults[name] != value]
    if float(row["guard"]) != 0.5:
        changed.insert(0, f"rate_factor={float(row['guard']):.3g}")
    return ", ".join(changed) or "defaults"


def _events(row: dict[str, Any]) -> str:
    steps, kept = json.loads(row["event_steps"]), json.loads(row.get("kept_steps") or "null")
    if not steps:
        return "–"
    pairs = zip(steps, kept or ["?"] * len(steps), strict=True)
    return " ".join(f"{s}←{k}" for s, k in pairs)


def report(rows: list[dict[str, Any]], first: int, seeds: int, epochs: int) -> str:
    tuned = [float(r["accuracy"]) for r in rows if float(r["peak"]) == TUNED_PEAK and float(r["guard"]) == 0]
    tuned_median = statistics.median(tuned)
    table = []
    for peak in sorted({float(r["peak"]) for r in rows}):
        labels = list(dict.fromkeys(_label(r) for r in rows))
        for label in labels:
            group = [r for r in rows if float(r["peak"]) == peak and _label(r) == label]
            if not group:
                continue
            accs = [float(r["accuracy"]) for r in group]
            guarded = label != "no"
            table.append([f"{peak:g} ({peak / TUNED_PEAK:g}x)", label,
                          f"{sum(int(r['diverged']) for r in group)}/{len(group)}", _pct(accs),
                          f"{100 * (statistics.median(accs) - tuned_median):+.1f}",
                          ", ".join(f"{100 * a:.1f}" for a in accs),
                          "; ".join(_events(r) for r in group) if guarded else "–",
                          ", ".join(f"{float(r['rate_scale']):g}" for r in group) if guarded else "–"])
    head = ["1cycle peak", "guard", "diverged", "test acc % median [min–max]", "vs tuned (points)",
            "per seed", "events per seed (step←kept step)", "final rate scale (per seed)"]
    return (f"MNIST-1D ConvBase, SGD momentum 0.9, batch {BATCH}, 1cycle over {epochs} epochs "
            f"({epochs * math.ceil(3500 / BATCH)} steps), seeds {first}..{first + seeds - 1}; diverged = final test "
            f"accuracy < 20% (chance 10%), a non-finite loss or the guard gave up. Guard: DivergenceGuard() with its "
            f"defaults ({rule_of()}, rate_factor=0.5), or with the arguments shown.\n\n"
            + markdown_table(head, table))


def _fires(means: list[float], factor: float, patience: int, smoothing: float) -> str:
    """Replays the guard's rule and keeps (level_memory 20, a keep every 100 steps) on one curve: the first
    event's step and the step of the state it would go back to, ``–`` if none."""
    from lightning_clr.callbacks._spike import LossMonitor

    monitor, kept = LossMonitor(factor, patience, smoothing, 20), 0
    for k, mean in enumerate(means):
        step = (k + 1) * WINDOW
        if monitor.observe(mean) is not None:
            return f"{step}←{kept}"
        if step % 100 == 0 and monitor.close_interval():
            kept = step
    return "–"


def curves_report(rows: list[dict[str, Any]]) -> str:
    """How each spike rule fares on the unguarded runs' window means: the tuned-peak runs (where an event is a
    false alarm), the runs that died, and those at 2x/3x that survived but lost accuracy (hurt)."""
    plain = [r for r in rows if float(r["guard"]) == 0 and r["window_means"] not in ("", "[]")]
    groups = {"tuned": [r for r in plain if float(r["peak"]) == TUNED_PEAK],
              "died": [r for r in plain if r["diverged"] == "1"],
              "hurt": [r for r in plain if float(r["peak"]) != TUNED_PEAK and r["diverged"] == "0"]}
    lines = [f"Spike rules on the loss curves (means of {WINDOW}-step windows) of the unguarded runs: "
             + ", ".join(f"{len(v)} {k}" for k, v in groups.items())
             + " (hurt: at 2x/3x, alive but below the tuned accuracy), level_memory 20. Cells: runs where the "
             "rule fires; per run, the step of the first event ← the step of the state it goes back to.\n"]
    table = []
    for factor, patience, smoothing in RULES:
        cells = []
        for group in groups.values():
            fired = [_fires(json.loads(r["window_means"]), factor, patience, smoothing) for r in group]
            cells.append(f"{sum(f != '–' for f in fired)}/{len(fired)} ({', '.join(fired)})")
        table.append([f"{factor:g}", patience, f"{smoothing:g}", *cells])
    lines.append(markdown_table(["spike_factor", "patience", "smoothing", *(f"fires on {k}" for k in groups)],
                                table))
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--first-seed", type=int, default=0, help="seeds first-seed .. first-seed + seeds - 1")
    parser.add_argument("--epochs", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--peaks", default="2,3", help="multiples of the tuned peak to run (guarded and not)")
    parser.add_argument("--rate-factors", default="0.5", help="the guard's rate_factor values to run (0.5: default)")
    parser.add_argument("--guard-args", action="append", default=None, metavar="JSON",
                        help='other guard arguments to run, as a JSON object (repeatable; default: "{}", the '
                        "defaults), e.g. '{\"spike_factor\": 1.25}'")
    parser.add_argument("--curves", action="store_true", help="also report the spike rule on the loss curves")
    parser.add_argument("--output", default=os.path.join(_HERE, "results"))
    args = parser.parse_args(argv)
    os.makedirs(args.output, exist_ok=True)
    # The tuned peak runs guarded too: there an event is a false alarm, and its cost shows.
    variants = [("{}", 0.0)] + [(json.dumps(json.loads(a), sort_keys=True), float(f))
                                for a in args.guard_args or ["{}"] for f in args.rate_factors.split(",")]
    peaks = [TUNED_PEAK] + [round(TUNED_PEAK * float(m), 10) for m in args.peaks.split(",")]
    specs: list[Spec] = [(peak, factor, guard_args, s, args.epochs)
                         for peak in peaks for guard_args, factor in variants
                         for s in range(args.first_seed, args.first_seed + args.seeds)]
    start = time.perf_counter()
    rows = run_all(specs, os.path.join(args.output, "guard.csv"), args.workers)
    text = report(rows, args.first_seed, args.seeds, args.epochs)
    if args.curves:
        text += "\n\n" + curves_report(rows)
    info = machine_info()
    text += (f"\n\nCommand: python benchmarks/guard.py {' '.join(argv if argv is not None else sys.argv[1:])}\n"
             f"Machine: {info['cpu']}, {info['cores']} cores, torch {info['torch']}, pytorch_lightning "
             f"{info['pytorch_lightning']}, 1 thread per run, {args.workers} worker process(es), lightning_clr "
             f"from {os.path.relpath(os.path.dirname(clr_file()), os.getcwd())}; "
             f"the {len(rows)} runs took {sum(float(r['wall_s']) for r in rows) / 60:.0f} min of fit time when run "
             f"(this invocation {time.perf_counter() - start:.0f} s: cached runs are not re-run).")
    print(text)
    save_report(text, args.output, "guard.md")
    return text


if __name__ == "__main__":
    main()
