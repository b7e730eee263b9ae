"""Do "auto" bounds from a default ``LRRangeTest()`` train as well as a grid-tuned 1cycle peak, on five families?

For each family of :mod:`families` (a CNN without normalisation + SGD, a residual CNN with BatchNorm + Nesterov,
an MLP + AdamW, a character transformer + AdamW, a GRU + Adam) the script

1. tunes the 1cycle peak on the VALIDATION split over the family's grid (a half decade apart, refined by two
   points a quarter decade either side of the best), ``--tune-seeds`` seeds per point;
2. trains ``--seeds`` seeds of each method and reports the TEST accuracy: ``1cycle`` at the tuned peak;
   ``1cycle-auto`` (``OneCycleLR(max_lr="auto")``), ``triangular2-auto`` (``CyclicLR("auto", "auto",
   mode="triangular2", step_size_up="auto")``) and ``cosine-auto`` (``CosineRestartsLR(max_lr="auto")``, three
   cycles of 1, 2 and 4 sevenths of the run), each after a default ``LRRangeTest()``; ``prodigy``
   (``prodigyopt.Prodigy(lr=1.0)``, cosine decay over the run as its authors advise) and ``schedulefree``
   (``SGDScheduleFree`` / ``AdamWScheduleFree`` at their default rate, 5% warm-up, ``train()``/``eval()`` around
   training and evaluation, BatchNorm statistics recomputed at the evaluated weights).

    python benchmarks/auto_bounds.py --output benchmarks/results           # all families (~2 h, 2 busy cores)
    python benchmarks/auto_bounds.py --families mlp --seeds 1 --tune-seeds 1 --workers 1   # a smoke test
    python benchmarks/auto_bounds.py --output benchmarks/results --rerun convbase/cosine-auto   # after a rule change

Runs are cached in ``auto_bounds.jsonl`` next to the report: a rerun resumes, and ``--rerun
convbase/cosine-auto,...`` drops the cached test runs of those family/method cells first (after a rule change),
so that only they run again and the report covers every family. Each run uses one torch thread. ``--curves``
only records the default range test's curves (for developing the rules offline) into ``auto_bounds_curves.json``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import multiprocessing
import os
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

_HERE = os.path.dirname(os.path.abspath(__file__))
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

import pytorch_lightning as pl  # noqa: E402
import torch  # noqa: E402
from common import (  # noqa: E402
    machine_info,
    markdown_table,
    quiet_lightning,
    train_loader,
    trainer_kwargs,
)
from families import FAMILIES, Family, family_data, loss_and_correct  # noqa: E402
from torch import nn  # noqa: E402
from typing_extensions import override  # noqa: E402

__all__ = ["AUTO_METHODS", "METHODS", "Outcome", "Spec", "compare", "drop_cached", "main", "run_many", "run_one",
           "tune"]

AUTO_METHODS = ("1cycle-auto", "triangular2-auto", "cosine-auto")
BASELINES = ("prodigy", "schedulefree")
METHODS = ("1cycle", *AUTO_METHODS, *BASELINES)
CACHE = "auto_bounds.jsonl"


@dataclass(frozen=True)
class Spec:
    """One run: a family, a method, a seed, the 1cycle peak (tuned runs) and the split it is scored on."""

    family: str
    method: str
    seed: int
    peak: float | None = None
    split: str = "test"

    @property
    def key(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


@dataclass
class Outcome:
    """What a run gave: accuracy in percent, or the error it ended with; the range test's cost and bounds."""

    spec: Spec
    accuracy: float | None
    seconds: float
    error: str | None = None
    test_steps: int = 0
    test_seconds: float = 0.0
    bounds: dict[str, Any] = field(default_factory=dict)
    curve: dict[str, list[float]] | None = None


class Task(pl.LightningModule):
    """Trains a family's model with its optimizer (or Prodigy / schedule-free), no scheduler of its own."""

    def __init__(self, family: Family, method: str, total_steps: int) -> None:
        super().__init__()
        self.family, self.method, self.total_steps = family, method, total_steps
        self.model = family.model()

    @override
    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        return loss_and_correct(self.model, *batch)[0]

    @override
    def configure_optimizers(self) -> Any:
        f, params, wd = self.family, self.model.parameters(), self.family.weight_decay
        if self.method == "prodigy":
            from prodigyopt import Prodigy

            optimizer = Prodigy(params, lr=1.0, weight_decay=wd)
            scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, self.total_steps)
            return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
        if self.method == "schedulefree":
            import schedulefree

            warmup = max(1, round(0.05 * self.total_steps))
            if f.adam_family:
                return schedulefree.AdamWScheduleFree(params, weight_decay=wd, warmup_steps=warmup)
            return schedulefree.SGDScheduleFree(params, momentum=0.9, weight_decay=wd, warmup_steps=warmup)
        if f.optimizer == "adamw":
            return torch.optim.AdamW(params, lr=1e-3, weight_decay=wd)
        if f.optimizer == "adam":
            return torch.optim.Adam(params, lr=1e-3, weight_decay=wd)
        return torch.optim.SGD(params, lr=0.01, momentum=0.9, nesterov=f.optimizer == "nesterov", weight_decay=wd)

    @override
    def on_train_start(self) -> None:
        if self.method == "schedulefree":
            self.trainer.optimizers[0].train()


def cycle_step(total: int, family: Family) -> int:
    """The half cycle the "auto" CLR bounds suggest for a run of ``total`` steps (whole cycles of ~4 epochs)."""
    from lightning_clr.tuner.suggest import fitted_step_size

    return fitted_step_size(total, total // family.epochs, 4.0)


def _callbacks(spec: Spec, total: int) -> tuple[list[Any], Any]:
    import lightning_clr as clr

    if spec.method == "1cycle":
        return [clr.OneCycleLR(max_lr=spec.peak)], None
    if spec.method == "triangular2":  # hand-set: base a quarter of the peak, the cycles the "auto" ones
        up = cycle_step(total, FAMILIES[spec.family])
        return [clr.CyclicLR(base_lr=spec.peak / 4, max_lr=spec.peak, mode="triangular2", step_size_up=up)], None
    if spec.method == "cosine":
        return [clr.CosineRestartsLR(max_lr=spec.peak, first_cycle=max(1, total // 7), t_mul=2.0)], None
    if spec.method in BASELINES:
        return [], None
    test = clr.LRRangeTest(plot=False, verbose=False)
    if spec.method in ("1cycle-auto", "curve"):
        return [test, clr.OneCycleLR(max_lr="auto")], test
    if spec.method == "triangular2-auto":
        return [test, clr.CyclicLR(base_lr="auto", max_lr="auto", mode="triangular2", step_size_up="auto")], test
    if spec.method == "cosine-auto":
        return [test, clr.CosineRestartsLR(max_lr="auto", first_cycle=max(1, total // 7), t_mul=2.0)], test
    raise ValueError(f"Expected a method in {METHODS}, but got {spec.method!r}.")


@torch.no_grad()
def _evaluate(task: Task, trainer: pl.Trainer, spec: Spec) -> float:
    data = family_data(spec.family)
    x, y = (data.x_val, data.y_val) if spec.split == "val" else (data.x_test, data.y_test)
    model = task.model
    if spec.method == "schedulefree":
        trainer.optimizers[0].eval()  # the averaged weights
        norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
        if norms:  # the running statistics belong to the training iterate: recompute them at these weights
            for m in norms:
                m.reset_running_stats()
                m.momentum = None
            model.train()
            for i in range(0, min(len(data.x_train), 2000), task.family.batch_size):
                model(data.x_train[i: i + task.family.batch_size])
    model.eval()
    correct = total = 0
    for i in range(0, len(x), 512):
        _, c = loss_and_correct(model, x[i: i + 512], y[i: i + 512])
        correct += int(c)
        total += y[i: i + 512].numel()
    return 100.0 * correct / total


def run_one(spec: Spec) -> Outcome:
    """Trains one run (or only records the range test, method ``"curve"``) and scores it."""
    quiet_lightning()
    f = FAMILIES[spec.family]
    data = family_data(spec.family)
    loader = train_loader(data.x_train, data.y_train, f.batch_size, seed=spec.seed)
    total = len(loader) * f.epochs
    pl.seed_everything(spec.seed, verbose=False)
    task = Task(f, spec.method, total)
    callbacks, test = _callbacks(spec, total)
    limits = {"max_steps": 1} if spec.method == "curve" else {"max_epochs": f.epochs}
    trainer = pl.Trainer(callbacks=callbacks, **trainer_kwargs(**limits))
    start = time.perf_counter()
    error = None
    try:
        trainer.fit(task, train_dataloaders=loader)
    except Exception as exc:  # an "auto" bound that ends the fit is a result of the benchmark
        error = f"{type(exc).__name__}: {exc}"
    seconds = time.perf_counter() - start
    accuracy = None if error or spec.method == "curve" else _evaluate(task, trainer, spec)
    if accuracy is not None and not math.isfinite(accuracy):
        accuracy = None
    outcome = Outcome(spec, accuracy, seconds, error)
    result = None if test is None else test.result
    if result is not None:
        outcome.test_steps = len(result.lrs)
        outcome.test_seconds = float(getattr(result, "seconds", 0.0) or 0.0)
        outcome.curve = {"lrs": list(result.lrs), "losses": list(result.losses)}
        policy = {"triangular2-auto": "cyclic", "cosine-auto": "cosine_restarts"}.get(spec.method, "one_cycle")
        used = result.for_policy(policy) if result.has_suggestion else result
        outcome.bounds = {k: getattr(used, k, None) for k in ("base_lr", "max_lr", "step_size_up")}
    return outcome


def _worker_init() -> None:
    torch.set_num_threads(1)


def _load_cache(path: str | None) -> dict[str, Outcome]:
    done: dict[str, Outcome] = {}
    if path and os.path.exists(path):
        with open(path) as file:
            for line in file:
                row = json.loads(line)
                spec = Spec(**row.pop("spec"))
                done[spec.key] = Outcome(spec, **row)
    return done


def drop_cached(cache: str, cells: Sequence[tuple[str, str]]) -> int:
    """Removes the cached test runs of the ``(family, method)`` cells from ``cache``; returns how many.

    Validation (tuning) runs are kept: they have no "auto" bounds, so a rule change does not alter them.
    """
    if not os.path.exists(cache):
        return 0
    with open(cache) as file:
        lines = file.readlines()
    wanted = set(cells)

    def stale(line: str) -> bool:
        spec = json.loads(line)["spec"]
        return (spec["family"], spec["method"]) in wanted and spec["split"] == "test"

    keep = [line for line in lines if not stale(line)]
    with open(cache + ".tmp", "w") as file:
        file.writelines(keep)
    os.replace(cache + ".tmp", cache)
    return len(lines) - len(keep)


def run_many(specs: Sequence[Spec], workers: int, cache: str | None) -> list[Outcome]:
    """Runs the specs not in ``cache`` (a JSON-lines file) in ``workers`` spawned processes (this one for
    ``workers <= 1``), one torch thread each, appending each outcome to the cache."""
    done = _load_cache(cache)
    todo = [s for s in dict.fromkeys(specs) if s.key not in done]
    if todo:
        if workers <= 1:
            _worker_init()
        ctx = multiprocessing.get_context("spawn")
        pool = ctx.Pool(workers, initializer=_worker_init) if workers > 1 else None
        results = pool.imap_unordered(run_one, todo) if pool else map(run_one, todo)
        try:
            for i, outcome in enumerate(results, 1):
                done[outcome.spec.key] = outcome
                if cache:
                    with open(cache, "a") as file:
                        row = asdict(outcome)
                        file.write(json.dumps(row) + "\n")
                print(f"  [{i}/{len(todo)}] {outcome.spec.family} {outcome.spec.method} seed {outcome.spec.seed} "
                      f"peak {outcome.spec.peak}: {outcome.accuracy} ({outcome.seconds:.1f} s)"
                      + (f" ERROR {outcome.error[:80]}" if outcome.error else ""), flush=True)
        finally:
            if pool:
                pool.close()
                pool.join()
    return [done[s.key] for s in specs]


def _score(outcomes: Sequence[Outcome]) -> float:
    values = [o.accuracy if o.accuracy is not None else 0.0 for o in outcomes]
    return statistics.mean(values)


def tune(family: str, seeds: int, workers: int, cache: str | None, method: str = "1cycle",
         refine: bool = True) -> tuple[float, dict[float, float]]:
    """The peak of ``method`` with the best mean validation accuracy: the grid, then a quarter decade either side
    of its best (``refine``)."""
    f = FAMILIES[family]
    seeds = min(seeds, f.tune_seeds)

    def grid_scores(peaks: Sequence[float]) -> dict[float, float]:
        specs = [Spec(family, method, s, p, "val") for p in peaks for s in range(100, 100 + seeds)]
        out = run_many(specs, workers, cache)
        return {p: _score([o for o in out if o.spec.peak == p]) for p in peaks}

    scores = grid_scores(f.grid)
    best = max(scores, key=scores.__getitem__)
    if refine:
        scores.update(grid_scores([float(f"{best * 10 ** d:.3g}") for d in (-0.25, 0.25)]))
    return max(scores, key=scores.__getitem__), dict(sorted(scores.items()))


def compare(family: str, peak: float, seeds: int, workers: int, cache: str | None,
            methods: Sequence[str] = METHODS) -> dict[str, list[Outcome]]:
    specs = [Spec(family, m, s, peak if m == "1cycle" else None) for m in methods for s in range(seeds)]
    out = run_many(specs, workers, cache)
    return {m: [o for o in out if o.spec.method == m] for m in methods}


def _fmt(values: Sequence[float | None]) -> str:
    got = [v for v in values if v is not None]
    if not got:
        return "error"
    text = f"{statistics.median(got):.1f} [{min(got):.1f}, {max(got):.1f}]"
    return text + (f" ({len(values) - len(got)} err)" if len(got) < len(values) else "")


def report(results: dict[str, dict[str, Any]], seeds: int) -> str:
    """The comparison table (median test accuracy [min, max] over seeds) and the goal check per family."""
    headers = ["family", "tuned peak", *METHODS, "goal met"]
    rows, cost_rows = [], []
    for family, entry in results.items():
        runs = entry["runs"]
        tuned = [o.accuracy for o in runs["1cycle"]]
        tuned_med = statistics.median([v or 0.0 for v in tuned])
        rival = max((statistics.median([o.accuracy or 0.0 for o in runs[m]]) for m in BASELINES if m in runs),
                    default=-math.inf)
        misses = []
        for m in AUTO_METHODS:
            accs = [o.accuracy for o in runs.get(m, [])]
            if not accs:
                continue
            med = statistics.median([v or 0.0 for v in accs])
            if any(v is None for v in accs):
                misses.append(f"{m}: error")
            if med < tuned_med - 1.0:
                misses.append(f"{m}: median {med - tuned_med:+.1f}")
            if med < rival:
                misses.append(f"{m}: under Prodigy/SF")
            worst = min(v or 0.0 for v in accs)
            if worst < tuned_med - 3.0:
                misses.append(f"{m}: a seed {worst - tuned_med:+.1f}")
        rows.append([family, f"{entry['peak']:.3g}", *[_fmt([o.accuracy for o in runs.get(m, [])]) for m in METHODS],
                     "yes" if not misses else "no: " + "; ".join(misses)])
        auto = [o for m in AUTO_METHODS for o in runs.get(m, [])]
        if auto:
            steps = statistics.median(o.test_steps for o in auto)
            run_steps = len(train_loader(*(lambda d: (d.x_train, d.y_train))(family_data(family)),
                                         FAMILIES[family].batch_size, 0)) * FAMILIES[family].epochs
            peaks = {m: statistics.median(o.bounds.get("max_lr") or 0.0 for o in runs[m]) for m in AUTO_METHODS
                     if m in runs}
            cost_rows.append([family, f"{steps:.0f}", f"{run_steps}", f"{100 * steps / run_steps:.0f}%",
                              f"{statistics.median(o.test_seconds for o in auto):.1f}",
                              ", ".join(f"{m.split('-')[0]} {v:.3g}" for m, v in peaks.items())])
    text = [f"Test accuracy (%), median [min, max] over {seeds} seeds:", "", markdown_table(headers, rows), "",
            "Range test cost and the suggested peaks (median over seeds):", "",
            markdown_table(["family", "test steps", "run steps", "share", "test s", "suggested max_lr"], cost_rows)]
    for family, entry in results.items():
        text += ["", f"{family} ({FAMILIES[family].describe}): 1cycle validation accuracy by peak: "
                 + ", ".join(f"{p:.3g}: {s:.1f}" for p, s in entry["scores"].items())]
    return "\n".join(text)


def _interpolate(scores: dict[float, float], peak: float) -> float:
    """The validation accuracy at ``peak``, linear in ``log(peak)`` between grid points (the end value outside)."""
    points = sorted(scores.items())
    if peak <= points[0][0]:
        return points[0][1]
    if peak >= points[-1][0]:
        return points[-1][1]
    for (a, sa), (b, sb) in itertools.pairwise(points):
        if a <= peak <= b:
            t = math.log(peak / a) / math.log(b / a)
            return sa + t * (sb - sa)
    raise AssertionError("unreachable")


def rules_table(families: Sequence[str], seeds: int, cache: str | None, workers: int) -> str:
    """Every rule's 1cycle peak on the recorded curves, scored by the tuned grid's validation accuracy there.

    Offline: a rule is judged by where its peak falls on the family's measured accuracy-by-peak curve, so many
    rules are compared on the same curves without training once per rule.
    """
    from lightning_clr.tuner.rules import BASELINE_RULES
    from lightning_clr.tuner.suggest import read_curve, suggest

    curves = record_curves(families, seeds, workers, cache)
    rows = []
    names = ["lightning_clr", *BASELINE_RULES]
    for family in families:
        _, scores = tune(family, 2, workers, cache)
        best = max(scores.values())
        adam = "adam" if FAMILIES[family].adam_family else "sgd"
        cells = []
        for name in names:
            gaps, peaks = [], []
            for seed in range(seeds):
                curve = curves[f"{family}/{seed}"]
                lrs, losses = curve["lrs"], curve["losses"]
                if name == "lightning_clr":
                    peak = suggest(read_curve(lrs, losses, stopped_early=True, optimizer=adam), "one_cycle").max_lr
                else:
                    peak = BASELINE_RULES[name](lrs, losses)
                peaks.append(peak)
                gaps.append(_interpolate(scores, peak) - best)
            cells.append(f"{statistics.median(peaks):.3g}: {statistics.median(gaps):+.1f} (worst {min(gaps):+.1f})")
        rows.append([family, f"{max(scores, key=scores.__getitem__):.3g}", *cells])
    return markdown_table(["family", "tuned", *names], rows)


def record_curves(families: Sequence[str], seeds: int, workers: int, cache: str | None) -> dict[str, Any]:
    specs = [Spec(f, "curve", s) for f in families for s in range(seeds)]
    return {f"{o.spec.family}/{o.spec.seed}": o.curve for o in run_many(specs, workers, cache)}


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--families", default=",".join(FAMILIES), help="comma-separated, of " + ", ".join(FAMILIES))
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--tune-seeds", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--output", default=None, help="folder for the cache and the report")
    parser.add_argument("--curves", action="store_true", help="only record the range test curves")
    parser.add_argument("--rules", action="store_true",
                        help="only compare the suggestion rules offline on the recorded curves and the tuned grids")
    parser.add_argument("--rerun", default="",
                        help="comma-separated family/method cells (e.g. convbase/cosine-auto) whose cached test runs "
                             "are dropped and run again (after a rule change); the report still covers every family")
    parser.add_argument("--policy-grids", action="store_true",
                        help="only tune triangular2 and cosine restarts too (one seed, no refinement): the evidence "
                             "for the per-policy rules")
    args = parser.parse_args(argv)
    _worker_init()  # one torch thread, as in every run (and as the report's machine line says)
    families = [f for f in args.families.split(",") if f]
    cache = None
    cells = [tuple(cell.split("/", 1)) for cell in args.rerun.split(",") if cell]
    for cell in cells:
        if len(cell) != 2 or cell[0] not in FAMILIES or cell[1] not in METHODS:
            parser.error(f"--rerun: expected family/method cells with a family of {', '.join(FAMILIES)} and a "
                         f"method of {', '.join(METHODS)}, but got {'/'.join(cell)!r}")
    if args.output:
        os.makedirs(args.output, exist_ok=True)
        cache = os.path.join(args.output, CACHE)
        if cells:
            print(f"--rerun: dropped {drop_cached(cache, cells)} cached runs of " + ", ".join(map("/".join, cells)))
    if args.curves:
        curves = record_curves(families, args.seeds, args.workers, cache)
        if args.output:
            with open(os.path.join(args.output, "auto_bounds_curves.json"), "w") as file:
                json.dump(curves, file)
        return curves
    if args.rules:
        text = rules_table(families, args.seeds, cache, args.workers)
        print("1cycle peak of each rule on the default range test's curves (median over seeds) and the validation "
              "accuracy there minus the tuned peak's, read off the tuned grid:\n\n" + text)
        return {"rules": text}
    if args.policy_grids:
        grids = {f: {m: tune(f, 1, args.workers, cache, m, refine=False)[1] for m in ("triangular2", "cosine")}
                 for f in families}
        print(json.dumps(grids, indent=1))
        return grids
    results: dict[str, dict[str, Any]] = {}
    for family in families:
        peak, scores = tune(family, args.tune_seeds, args.workers, cache)
        runs = compare(family, peak, args.seeds, args.workers, cache, args.methods.split(","))
        results[family] = {"peak": peak, "scores": scores, "runs": runs}
    text = report(results, args.seeds)
    command = "python benchmarks/auto_bounds.py " + " ".join(argv if argv is not None else sys.argv[1:])
    text += f"\n\nCommand: `{command}`; machine: {json.dumps(machine_info())}"
    print(text)
    if args.output:
        with open(os.path.join(args.output, "auto_bounds.md"), "w") as file:
            file.write(text + "\n")
    return results


if __name__ == "__main__":
    main()
