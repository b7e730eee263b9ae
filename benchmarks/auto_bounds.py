"""Do "auto" bounds from a default ``LRRangeTest()`` train as well as the same policy grid-tuned, on five families?

For each family of :mod:`benchmarks.families` (a CNN without normalisation + SGD, a residual CNN with BatchNorm +
Nesterov, an MLP + AdamW, a character transformer + AdamW, a GRU + Adam):

1. the peak of each tuned policy is tuned on the VALIDATION split over the family's grid (a half decade apart,
   refined by two points a quarter decade either side of the best), ``--tune-seeds`` seeds (100, 101, ...) per
   point: ``1cycle`` (``OneCycleLR``), ``triangular2`` (``CyclicLR``, ``base_lr`` a quarter of the peak, half
   cycles of about 4 epochs fitted to the run, as "auto" sets them) and ``cosine`` (``CosineRestartsLR``, the
   cycles of ``cosine-auto``);
2. ``--seeds`` seeds (0, 1, ...) of each method train and are scored on the TEST split: the tuned policies at their
   tuned peaks; ``1cycle-auto`` (``OneCycleLR(max_lr="auto")``), ``triangular2-auto`` (``CyclicLR("auto", "auto",
   mode="triangular2", step_size_up="auto")``) and ``cosine-auto`` (``CosineRestartsLR(max_lr="auto")``, cycles of
   1, 2 and 4 sevenths of the run), each after a default ``LRRangeTest()``; ``prodigy`` (``Prodigy(lr=1.0)``, cosine
   decay) and ``schedulefree`` (default rate, 5% warm-up, BatchNorm statistics recomputed at the evaluated weights).

Goal, per family: every "auto" policy's median within 1 point of the same policy tuned, and no seed more than 3
points under that policy's tuned median, no error. Where an "auto" policy is under the better of Prodigy and
schedule-free, the report says so (not a goal). With 10 seeds or more, the report repeats the table for the second
half of the seeds (held out: the rules were fitted on seeds 0-4 of the five-seed runs).

    python -m benchmarks.auto_bounds --workers 1 --output benchmarks/results     # all families, ~10-20 min
    python -m benchmarks.auto_bounds --families mlp --seeds 1 --tune-seeds 1 --workers 1   # a smoke test
    python -m benchmarks.auto_bounds --curves --output DIR  # only the range test curves, auto_bounds_curves.json
    python -m benchmarks.auto_bounds --families convbase --seeds 10 --peaks 0.205,0.237,0.274 --output DIR
    python -m benchmarks.auto_bounds --families charlm,convbase --seeds 10 --sweep-steps 25,50,100 --output DIR

Runs are cached in ``auto_bounds.jsonl`` in ``--output`` (a rerun resumes; ``--rerun convbase/cosine-auto,...``
drops the cached test runs of those cells first, after a rule change). ``--peaks`` trains 1cycle at each given peak on
every test seed (the accuracy of each seed at each peak). ``--sweep-steps`` compares 1cycle "auto" after range tests
of that many steps (``LRRangeTest(num_steps=N)``, the same span) with the default sweep and the tuned peak: what a
shorter test costs in accuracy, and what it saves of the run.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import statistics
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import pytorch_lightning as pl
import torch
from torch import nn
from typing_extensions import override

from benchmarks.common import (
    baseline_optimizer,
    command_line,
    finish_report,
    machine_line,
    mapped,
    markdown_table,
    quiet_lightning,
    save_report,
    train_loader,
    trainer_kwargs,
    worker_init,
)
from benchmarks.families import FAMILIES, Family, family_data, loss_and_correct

AUTO_METHODS = ("1cycle-auto", "triangular2-auto", "cosine-auto")
TUNED = ("1cycle", "triangular2", "cosine")
OWN = dict(zip(AUTO_METHODS, TUNED, strict=True))  # each "auto" policy's reference: the same policy tuned
BASELINES = ("prodigy", "schedulefree")
METHODS = (*TUNED, *AUTO_METHODS, *BASELINES)
CACHE = "auto_bounds.jsonl"


@dataclass(frozen=True)
class Spec:
    """One run: a family, a method (or ``"curve"``: the range test only), a seed, a tuned policy's peak, the split
    and the run's epochs (``None``: the family's)."""

    family: str
    method: str
    seed: int
    peak: float | None = None
    split: str = "test"
    epochs: int | None = None

    @property
    def key(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


@dataclass
class Outcome:
    """What a run gave: accuracy in percent or the error it ended with; the range test's cost, bounds and curve."""

    spec: Spec
    accuracy: float | None
    seconds: float
    error: str | None = None
    test_steps: int = 0
    test_seconds: float = 0.0
    bounds: dict[str, Any] = field(default_factory=dict)
    curve: dict[str, list[float]] | None = None


class Task(pl.LightningModule):
    """A family's model with its optimizer (or Prodigy / schedule-free), no scheduler of its own."""

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
        if self.method in BASELINES:
            return baseline_optimizer(self.method, params, self.total_steps, wd, adam=f.adam_family)
        if f.optimizer in ("adam", "adamw"):
            return (torch.optim.AdamW if f.optimizer == "adamw" else torch.optim.Adam)(params, lr=1e-3,
                                                                                      weight_decay=wd)
        return torch.optim.SGD(params, lr=0.01, momentum=0.9, nesterov=f.optimizer == "nesterov", weight_decay=wd)

    @override
    def on_train_start(self) -> None:
        if self.method == "schedulefree":
            self.trainer.optimizers[0].train()


def _callbacks(spec: Spec, total: int, steps_per_epoch: int | None = None) -> tuple[list[Any], Any]:
    import lightning_clr as clr
    from lightning_clr.tuner.suggest import fitted_step_size

    cycle = max(1, total // 7)  # SGDR's first cycle: cycles of 1, 2 and 4 sevenths of the run
    if spec.method == "1cycle":
        return [clr.OneCycleLR(max_lr=spec.peak)], None
    if spec.method == "triangular2":  # as "auto" shapes it: base a quarter of the peak, half cycles of ~4 epochs
        assert spec.peak is not None
        half = fitted_step_size(total, steps_per_epoch, 4.0)
        return [clr.CyclicLR(base_lr=spec.peak / 4, max_lr=spec.peak, mode="triangular2", step_size_up=half)], None
    if spec.method == "cosine":
        return [clr.CosineRestartsLR(max_lr=spec.peak, first_cycle=cycle, t_mul=2.0)], None
    if spec.method in BASELINES:
        return [], None
    method, _, steps = spec.method.partition("@")  # "1cycle-auto@25": after a range test of 25 steps
    test = clr.LRRangeTest(plot=False, verbose=False, num_steps=int(steps) if steps else None)  # else the defaults
    if method in ("1cycle-auto", "curve"):
        return [test, clr.OneCycleLR(max_lr="auto")], test
    if spec.method == "triangular2-auto":
        return [test, clr.CyclicLR(base_lr="auto", max_lr="auto", mode="triangular2", step_size_up="auto")], test
    if spec.method == "cosine-auto":
        return [test, clr.CosineRestartsLR(max_lr="auto", first_cycle=cycle, t_mul=2.0)], test
    raise ValueError(f"Expected a method in {METHODS}, but got {spec.method!r}.")


@torch.no_grad()
def _evaluate(task: Task, trainer: pl.Trainer, spec: Spec) -> float:
    data = family_data(spec.family)
    x, y = (data.x_val, data.y_val) if spec.split == "val" else (data.x_test, data.y_test)
    model, batch = task.model, task.family.batch_size
    if spec.method == "schedulefree":
        trainer.optimizers[0].eval()  # the averaged weights
        norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
        if norms:  # the running statistics belong to the training iterate: recompute them at these weights
            for m in norms:
                m.reset_running_stats()
                m.momentum = None
            model.train()
            for i in range(0, min(len(data.x_train), 2000), batch):
                model(data.x_train[i: i + batch])
    model.eval()
    correct = sum(int(loss_and_correct(model, x[i: i + 512], y[i: i + 512])[1]) for i in range(0, len(x), 512))
    return 100.0 * correct / y.numel()


def run_one(spec: Spec) -> Outcome:
    """Trains one run (method ``"curve"``: only the range test) on a fresh Trainer and scores it."""
    quiet_lightning()
    family, data = FAMILIES[spec.family], family_data(spec.family)
    loader = train_loader(data.x_train, data.y_train, family.batch_size, seed=spec.seed)
    epochs = spec.epochs or family.epochs
    total = len(loader) * epochs
    callbacks, test = _callbacks(spec, total, len(loader))
    limits = {"max_steps": 1} if spec.method == "curve" else {"max_epochs": epochs}
    start, error = time.perf_counter(), None
    pl.seed_everything(spec.seed, verbose=False)
    task = Task(family, spec.method, total)
    trainer = pl.Trainer(callbacks=callbacks, **trainer_kwargs(**limits))
    try:
        trainer.fit(task, train_dataloaders=loader)
    except Exception as exc:  # an "auto" bound that ends the fit is a result of the benchmark
        error = f"{type(exc).__name__}: {exc}"
    seconds = time.perf_counter() - start
    accuracy = None if error or spec.method == "curve" else _evaluate(task, trainer, spec)
    outcome = Outcome(spec, accuracy if accuracy is not None and math.isfinite(accuracy) else None, seconds, error)
    result = None if test is None else test.result
    if result is not None:
        outcome.test_steps, outcome.test_seconds = len(result.lrs), float(getattr(result, "seconds", 0.0) or 0.0)
        outcome.curve = {"lrs": list(result.lrs), "losses": list(result.losses)}
        policy = {"triangular2-auto": "cyclic", "cosine-auto": "cosine_restarts"}.get(spec.method, "one_cycle")
        used = result.for_policy(policy) if result.has_suggestion else result
        outcome.bounds = {k: getattr(used, k, None) for k in ("base_lr", "max_lr", "step_size_up")}
    return outcome


def drop_cached(cache: str, cells: Sequence[tuple[str, str]]) -> int:
    """Removes the cached TEST runs of the ``(family, method)`` cells from ``cache``; returns how many."""
    if not os.path.exists(cache):
        return 0
    with open(cache) as file:
        lines = file.readlines()
    keep = [line for line in lines if (lambda s: (s["family"], s["method"]) not in set(cells)
                                       or s["split"] != "test")(json.loads(line)["spec"])]
    with open(cache + ".tmp", "w") as file:
        file.writelines(keep)
    os.replace(cache + ".tmp", cache)
    return len(lines) - len(keep)


def run_many(specs: Sequence[Spec], workers: int, cache: str | None) -> list[Outcome]:
    """Runs the specs not in ``cache`` (JSON lines) in ``workers`` processes, appending each outcome to it."""
    done: dict[str, Outcome] = {}
    if cache and os.path.exists(cache):
        with open(cache) as file:
            for line in file:
                row = json.loads(line)
                spec = Spec(**row.pop("spec"))
                done[spec.key] = Outcome(spec, **row)
    todo = [s for s in dict.fromkeys(specs) if s.key not in done]
    if todo:
        with mapped(run_one, todo, workers, ordered=False) as results:
            for i, outcome in enumerate(results, 1):
                done[outcome.spec.key] = outcome
                if cache:
                    with open(cache, "a") as file:
                        file.write(json.dumps(asdict(outcome)) + "\n")
                s = outcome.spec
                print(f"  [{i}/{len(todo)}] {s.family} {s.method} seed {s.seed} peak {s.peak}: {outcome.accuracy} "
                      f"({outcome.seconds:.1f} s)" + (f" ERROR {outcome.error[:80]}" if outcome.error else ""),
                      flush=True)
    return [done[s.key] for s in specs]


def tune(family: str, seeds: int, workers: int, cache: str | None,
         epochs: int | None = None, method: str = "1cycle") -> tuple[float, dict[float, float]]:
    """The peak of the tuned policy ``method`` with the best mean validation accuracy: the grid, then a quarter
    decade either side of its best; returns it and every peak's score."""
    f = FAMILIES[family]
    seeds = min(seeds, f.tune_seeds)

    def grid_scores(peaks: Sequence[float]) -> dict[float, float]:
        out = run_many([Spec(family, method, s, p, "val", epochs) for p in peaks for s in range(100, 100 + seeds)],
                       workers, cache)
        return {p: statistics.mean(o.accuracy or 0.0 for o in out if o.spec.peak == p) for p in peaks}

    scores = grid_scores(f.grid)
    best = max(scores, key=scores.__getitem__)
    scores.update(grid_scores([float(f"{best * 10 ** d:.3g}") for d in (-0.25, 0.25)]))
    return max(scores, key=scores.__getitem__), dict(sorted(scores.items()))


def compare(family: str, peaks: dict[str, float], seeds: int, workers: int, cache: str | None,
            methods: Sequence[str] = METHODS, epochs: int | None = None) -> dict[str, list[Outcome]]:
    """Every method's test runs; ``peaks``: the tuned policies' peaks."""
    out = run_many([Spec(family, m, s, peaks.get(m), epochs=epochs) for m in methods for s in range(seeds)],
                   workers, cache)
    return {m: [o for o in out if o.spec.method == m] for m in methods}


# ---------------------------------------------------------------------------------------------- the report
def median_range(values: Sequence[float | None]) -> str:
    """``median [min, max]`` of the accuracies, with the count of runs that ended in an error."""
    got = [v for v in values if v is not None]
    if not got:
        return "error"
    text = f"{statistics.median(got):.1f} [{min(got):.1f}, {max(got):.1f}]"
    return text + (f" ({len(values) - len(got)} err)" if len(got) < len(values) else "")


def goal_misses(accuracies: Sequence[float | None], tuned: float) -> list[str]:
    """How a policy misses the goal: an error, a median more than 1 point under the tuned median, a seed more than
    3 points under the tuned median."""
    misses = ["error"] if any(v is None for v in accuracies) else []
    med, worst = statistics.median([v or 0.0 for v in accuracies]), min(v or 0.0 for v in accuracies)
    if med < tuned - 1.0:
        misses.append(f"median {med - tuned:+.1f}")
    if worst < tuned - 3.0:
        misses.append(f"a seed {worst - tuned:+.1f}")
    return misses


def report(results: dict[str, dict[str, Any]], seeds: int | str, epochs: int | None = None) -> str:
    """The comparison table (test accuracy, median [min, max] over seeds) with the goal (each "auto" policy against
    the same policy tuned, or tuned 1cycle where that was not run), the policies under Prodigy / schedule-free, and
    the range test's cost."""
    rows, cost_rows = [], []
    methods = [m for m in METHODS if any(m in e["runs"] for e in results.values())]
    for family, entry in results.items():
        runs = entry["runs"]
        medians = {m: statistics.median([o.accuracy or 0.0 for o in runs[m]]) for m in runs if runs[m]}
        rival = max((medians[m] for m in BASELINES if m in medians), default=-math.inf)
        misses, under = [], []
        for m in AUTO_METHODS:
            if runs.get(m):
                own = OWN[m] if OWN[m] in medians else "1cycle"
                misses += [f"{m} vs {own}: {miss}" for miss in goal_misses([o.accuracy for o in runs[m]],
                                                                            medians[own])]
                if medians[m] < rival:
                    under.append(m)
        peaks = entry["peaks"]
        rows.append([family, ", ".join(f"{m} {p:.3g}" for m, p in peaks.items()),
                     *[median_range([o.accuracy for o in runs.get(m, [])]) for m in methods],
                     "yes" if not misses else "no: " + "; ".join(misses), ", ".join(under) or "–"])
        auto = [o for m in AUTO_METHODS for o in runs.get(m, [])]
        if auto:
            steps = statistics.median(o.test_steps for o in auto)
            data, f = family_data(family), FAMILIES[family]
            run_steps = len(train_loader(data.x_train, data.y_train, f.batch_size, 0)) * (epochs or f.epochs)
            suggested = {m: statistics.median(o.bounds.get("max_lr") or 0.0 for o in runs[m]) for m in AUTO_METHODS
                         if runs.get(m)}
            cost_rows.append([family, f"{steps:.0f}", run_steps, f"{100 * steps / run_steps:.0f}%",
                              f"{statistics.median(o.test_seconds for o in auto):.1f}",
                              ", ".join(f"{m.split('-')[0]} {v:.3g}" for m, v in suggested.items())])
    text = [f"Test accuracy (%), median [min, max] over seeds {seeds}:", "",
            markdown_table(["family", "tuned peaks", *methods, "goal met", "auto under Prodigy/SF (reported)"],
                           rows), "",
            "Range test cost and the suggested peaks (median over seeds):", "",
            markdown_table(["family", "test steps", "run steps", "share", "test s", "suggested max_lr"], cost_rows)]
    for family, entry in results.items():
        for method, scores in entry["scores"].items():
            text += ["", f"{family} ({FAMILIES[family].describe}): {method} validation accuracy by peak: "
                     + ", ".join(f"{p:.3g}: {v:.1f}" for p, v in scores.items())]
    return "\n".join(text)


def grid_accuracy(scores: dict[float, float], peak: float) -> float:
    """The validation accuracy at ``peak``, linear in ``log(peak)`` between grid points (the end value outside)."""
    points = sorted(scores.items())
    if peak <= points[0][0]:
        return points[0][1]
    for (a, sa), (b, sb) in itertools.pairwise(points):
        if a <= peak <= b:
            return sa + math.log(peak / a) / math.log(b / a) * (sb - sa)
    return points[-1][1]


def peak_table(family: str, peaks: Sequence[float], seeds: int, workers: int, cache: str | None,
               epochs: int | None = None) -> str:
    """1cycle's test accuracy at each peak (rows) for each seed (columns), with the median and the worst seed."""
    specs = [Spec(family, "1cycle", s, p, epochs=epochs) for p in peaks for s in range(seeds)]
    got = {(o.spec.peak, o.spec.seed): o.accuracy or 0.0 for o in run_many(specs, workers, cache)}
    rows = []
    for p in peaks:
        accs = [got[(p, s)] for s in range(seeds)]
        rows.append([f"{p:.3g}", *[f"{a:.1f}" for a in accs], f"{statistics.median(accs):.1f}", f"{min(accs):.1f}"])
    return markdown_table(["peak", *[f"seed {s}" for s in range(seeds)], "median", "worst"], rows)


def sweep_table(family: str, lengths: Sequence[int], seeds: int, tune_seeds: int, workers: int,
                cache: str | None, epochs: int | None = None) -> str:
    """1cycle "auto" after the default range test and after ones of ``lengths`` steps, against tuned 1cycle: the
    test's steps and share of the run, the suggested peak and the test accuracy (median [min, max], the median's
    and the worst seed's gap to tuned)."""
    peak, _ = tune(family, tune_seeds, workers, cache, epochs)
    methods = ["1cycle-auto", *(f"1cycle-auto@{n}" for n in lengths)]
    runs = compare(family, {"1cycle": peak}, seeds, workers, cache, ["1cycle", *methods], epochs)
    tuned = statistics.median(o.accuracy or 0.0 for o in runs["1cycle"])
    data, f = family_data(family), FAMILIES[family]
    run_steps = len(train_loader(data.x_train, data.y_train, f.batch_size, 0)) * (epochs or f.epochs)
    rows = [["tuned 1cycle", "–", "–", f"{peak:.3g}", median_range([o.accuracy for o in runs["1cycle"]]), "–", "–"]]
    for m in methods:
        accs = [o.accuracy for o in runs[m]]
        steps = statistics.median(o.test_steps for o in runs[m])
        med, worst = statistics.median(a or 0.0 for a in accs), min(a or 0.0 for a in accs)
        rows.append([m.replace("1cycle-auto@", "") + " steps" if "@" in m else "default (16 a decade)",
                     f"{steps:.0f}", f"{100 * steps / run_steps:.0f}%",
                     f"{statistics.median(o.bounds.get('max_lr') or 0.0 for o in runs[m]):.3g}",
                     median_range(accs), f"{med - tuned:+.1f}", f"{worst - tuned:+.1f}"])
    return markdown_table(["sweep", "test steps", "share of the run", "max_lr (median)", "test %", "median vs tuned",
                           "worst seed vs tuned"], rows)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--families", default=",".join(FAMILIES), help="comma-separated, of " + ", ".join(FAMILIES))
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--tune-seeds", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=None, help="every family's run length (default: its own)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--output", default=None, help="folder for the run cache and the report")
    parser.add_argument("--curves", action="store_true", help="only record the range test curves (as JSON)")
    parser.add_argument("--rerun", default="", help="family/method cells whose cached test runs are run again")
    parser.add_argument("--peaks", default="", help="only train 1cycle at these peaks (comma-separated) per seed")
    parser.add_argument("--sweep-steps", default="", help="compare range tests of these lengths (comma-separated)")
    args = parser.parse_args(argv)
    worker_init()
    families = [f for f in args.families.split(",") if f]
    cells = [tuple(cell.split("/", 1)) for cell in args.rerun.split(",") if cell]
    for cell in cells:
        if len(cell) != 2 or cell[0] not in FAMILIES or cell[1] not in METHODS:
            parser.error(f"--rerun: expected family/method cells, but got {'/'.join(cell)!r}")
    cache = None
    if args.output:
        os.makedirs(args.output, exist_ok=True)
        cache = os.path.join(args.output, CACHE)
        if cells:
            print(f"--rerun: dropped {drop_cached(cache, cells)} cached runs of " + ", ".join(map("/".join, cells)))
    if args.curves:
        outcomes = run_many([Spec(f, "curve", s) for f in families for s in range(args.seeds)], args.workers, cache)
        curves = {f"{o.spec.family}/{o.spec.seed}": o.curve for o in outcomes}
        if args.output:
            with open(os.path.join(args.output, "auto_bounds_curves.json"), "w") as file:
                json.dump(curves, file)
        return curves
    if args.peaks:
        peaks = [float(p) for p in args.peaks.split(",")]
        tables = {f"{f} peaks": peak_table(f, peaks, args.seeds, args.workers, cache, args.epochs) for f in families}
        text = "\n\n".join(f"{name}, 1cycle test accuracy %:\n\n{table}" for name, table in tables.items())
        text += (f"\n\nCommand: `{command_line('auto_bounds', argv)}`; test seeds 0..{args.seeds - 1}, epochs "
                 f"{args.epochs or 'the family default'}. Machine: {machine_line()}.")
        print(text)
        save_report(text, args.output, "auto_bounds_study.md")
        return tables
    if args.sweep_steps:
        lengths = [int(n) for n in args.sweep_steps.split(",")]
        tables = {f: sweep_table(f, lengths, args.seeds, args.tune_seeds, args.workers, cache,
                                 args.epochs) for f in families}
        text = "\n\n".join(f"{f} ({FAMILIES[f].describe}), 1cycle \"auto\" by range-test length, test seeds "
                            f"0..{args.seeds - 1}:\n\n{table}" for f, table in tables.items())
        text += f"\n\nCommand: `{command_line('auto_bounds', argv)}`. Machine: {machine_line()}."
        print(text)
        save_report(text, args.output, "auto_bounds_sweeps.md")
        return tables
    methods = args.methods.split(",")
    results: dict[str, dict[str, Any]] = {}
    for family in families:
        tuned = {m: tune(family, args.tune_seeds, args.workers, cache, args.epochs, m) for m in TUNED if m in methods}
        runs = compare(family, {m: p for m, (p, _) in tuned.items()}, args.seeds, args.workers, cache, methods,
                       args.epochs)
        results[family] = {"peaks": {m: p for m, (p, _) in tuned.items()},
                           "scores": {m: scores for m, (_, scores) in tuned.items()}, "runs": runs}
    text = report(results, f"0..{args.seeds - 1}", args.epochs)
    if args.seeds >= 10:
        held = args.seeds // 2
        text += f"\n\nHeld out (seeds {held}..{args.seeds - 1}):\n\n" + report(
            {f: {**e, "scores": {}, "runs": {m: [o for o in v if o.spec.seed >= held] for m, v in e["runs"].items()}}
             for f, e in results.items()}, f"{held}..{args.seeds - 1}", args.epochs)
    finish_report(text, "auto_bounds", argv, args.output, f"tuning seeds 100..{99 + args.tune_seeds}")
    return results


if __name__ == "__main__":
    main()
