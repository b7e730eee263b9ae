"""Time to accuracy: do cyclical rates train MNIST-1D's small CNN to a given accuracy in fewer steps?

Every policy trains the same model (the mnist1d paper's ConvBase, SGD with momentum 0.9, batch 64) on the
same 3,500 MNIST-1D training samples on a real ``pytorch_lightning.Trainer``; schedules are lightning_clr
callbacks. For each policy and each budget (a number of epochs) the script

1. tunes the rate on the 500 VALIDATION samples: the constant rate, step decay's initial rate and each
   hand-set cyclical policy's peak rate are picked from one grid (mean final validation accuracy over
   ``--tune-seeds`` seeds); the "auto" policies take their bounds from ``lightning_clr.LRRangeTest``
   instead, with no grid search;
2. trains ``--seeds`` seeds with the chosen rate and records the TEST accuracy (1,000 held-out samples)
   every fifth of an epoch.

It reports the median final test accuracy per budget with its range, and the optimizer steps each policy
needs to reach the best constant rate's accuracy (its highest median final test accuracy over the budgets),
with the speed-up against the constant rate and against step decay.

    python benchmarks/time_to_accuracy.py --output bench-out            # default: ~5 min on 2 idle cores
    python benchmarks/time_to_accuracy.py --quick --output /tmp/smoke    # smoke test (CI), under 2 min

A constant-rate run of a short budget is the first part of the same seed's run of the largest budget
(same initialisation, same data order), so the constant rate trains only at the largest budget and is
read off at each budget's end.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import os
import statistics
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Optional, Sequence

_HERE = os.path.dirname(os.path.abspath(__file__))
if _HERE not in sys.path:  # make `common` importable, in spawned workers too
    sys.path.insert(0, _HERE)

import torch  # noqa: E402

from common import (  # noqa: E402
    AccuracyTracker,
    Classifier,
    Splits,
    StepDecaySchedule,
    machine_info,
    make_mnist1d,
    markdown_table,
    quiet_lightning,
    train_loader,
    trainer_kwargs,
)

__all__ = [
    "Settings",
    "RunSpec",
    "RunResult",
    "POLICIES",
    "AUTO_POLICIES",
    "callbacks_for",
    "run_one",
    "tune",
    "evaluate",
    "summarize",
    "first_hit",
    "main",
]

#: Hand-set policies (rate chosen on validation from the grid) and "auto" ones (bounds from a range test).
HAND_SET = ("constant", "step", "triangular", "triangular2", "exp_range", "1cycle", "cosine")
AUTO_POLICIES = ("1cycle-auto", "triangular2-auto")
POLICIES = HAND_SET + AUTO_POLICIES
BASELINES = ("constant", "step")

DESCRIPTIONS = {
    "constant": "constant rate (no callback)",
    "step": "ScheduledLR(StepDecaySchedule): x0.1 at 50% and 75% of the budget",
    "triangular": "CyclicLR(triangular), base = peak/4, 3 cycles per budget",
    "triangular2": "CyclicLR(triangular2), base = peak/4, 3 cycles per budget",
    "exp_range": "CyclicLR(exp_range), base = peak/4, 3 cycles, gamma**budget = 0.1",
    "1cycle": "OneCycleLR(max_lr=peak), whole budget, torch defaults",
    "cosine": "CosineRestartsLR(max_lr=peak, t_mul=2): cycles of 1/7, 2/7, 4/7 of the budget",
    "1cycle-auto": "LRRangeTest + OneCycleLR(max_lr='auto')",
    "triangular2-auto": "LRRangeTest + CyclicLR('auto', 'auto', triangular2), 3 cycles per budget",
}


@dataclass(frozen=True)
class Settings:
    """What to run.

    Attributes:
        budgets: training budgets in epochs.
        seeds: test seeds per policy and budget.
        tune_seeds: validation seeds per grid point.
        grid: candidate rates (the constant rate, step decay's initial rate, the cyclical peaks).
        batch_size: the batch size.
        evals_per_epoch: test evaluations per epoch (and one at each epoch's end).
        workers: worker processes (1 runs in this process).
        range_test_steps: optimizer steps of the LR range test of the "auto" policies (LRRangeTest's
            default).
        range_test_bounds: the rates the range test sweeps between (LRRangeTest's defaults).
        num_train: training samples (the rest of the 5,000: 500 validation, the remainder test).
    """

    budgets: tuple[int, ...] = (4, 8, 16, 32)
    seeds: int = 5
    tune_seeds: int = 2
    grid: tuple[float, ...] = (0.02, 0.05, 0.1, 0.2, 0.5)
    batch_size: int = 64
    evals_per_epoch: int = 5
    workers: int = 2
    range_test_steps: int = 100
    range_test_bounds: tuple[float, float] = (1e-7, 10.0)
    policies: tuple[str, ...] = POLICIES
    num_train: int = 3500

    @property
    def steps_per_epoch(self) -> int:
        return math.ceil(self.num_train / self.batch_size)


# One process: for runs this short, starting two spawned workers per stage costs more than it saves.
QUICK = Settings(budgets=(1, 2), seeds=2, tune_seeds=1, grid=(0.05, 0.2), workers=1)


@dataclass(frozen=True)
class RunSpec:
    """One training run. ``split`` is "val" (tuning) or "test"."""

    policy: str
    epochs: int
    seed: int
    peak: Optional[float]
    split: str = "test"
    record_lr: bool = False


@dataclass
class RunResult:
    """What a run recorded: ``steps[i]`` optimizer steps taken when the accuracy was ``accuracy[i]``."""

    spec: RunSpec
    steps: list[int]
    accuracy: list[float]
    lrs: list[float] = field(default_factory=list)
    extra_steps: int = 0  # optimizer steps spent outside the budget (the range test)
    bounds: dict[str, float] = field(default_factory=dict)
    wall_s: float = 0.0

    def accuracy_at(self, step: int) -> float:
        """The accuracy evaluated after exactly ``step`` steps."""
        return self.accuracy[self.steps.index(step)]


_DATA: dict[tuple[int, ...], Splits] = {}


def _data(settings: Settings) -> Splits:
    key = (settings.num_train,)
    if key not in _DATA:
        _DATA[key] = make_mnist1d(num_train=settings.num_train)
    return _DATA[key]


def range_test_available() -> bool:
    """Whether ``lightning_clr.LRRangeTest`` exists (the "auto" policies need it)."""
    import lightning_clr

    return hasattr(lightning_clr, "LRRangeTest")


def _cycle_step(total: int) -> int:
    """Half a cycle when the budget holds three cycles."""
    return max(1, round(total / 6))


def callbacks_for(spec: RunSpec, settings: Settings) -> tuple[float, list[Any]]:
    """The optimizer's initial rate and the schedule callbacks of ``spec``'s policy.

    Raises:
        ValueError: for an unknown policy, or a hand-set policy without a peak.
    """
    import lightning_clr as clr

    total = spec.epochs * settings.steps_per_epoch
    policy, peak = spec.policy, spec.peak
    if policy in HAND_SET and peak is None:
        raise ValueError(f"Expected a peak rate for policy {policy!r}, but got None.")
    if policy == "constant":
        return peak, []
    if policy == "step":
        schedule = StepDecaySchedule(peak, (total // 2, (3 * total) // 4), 0.1)
        return peak, [clr.ScheduledLR(schedule)]
    if policy in ("triangular", "triangular2", "exp_range"):
        gamma = 0.1 ** (1 / total) if policy == "exp_range" else 1.0
        return peak, [clr.CyclicLR(base_lr=peak / 4, max_lr=peak, step_size_up=_cycle_step(total), mode=policy,
                                   gamma=gamma)]
    if policy == "1cycle":
        return peak, [clr.OneCycleLR(max_lr=peak)]
    if policy == "cosine":
        return peak, [clr.CosineRestartsLR(max_lr=peak, first_cycle=math.ceil(total / 7), t_mul=2.0)]
    if policy in AUTO_POLICIES:
        if not range_test_available():
            raise ValueError(f"Policy {policy!r} needs lightning_clr.LRRangeTest, which this install lacks.")
        low, high = settings.range_test_bounds
        test = clr.LRRangeTest(min_lr=low, max_lr=high, num_steps=settings.range_test_steps, plot=False,
                               verbose=False)
        if policy == "1cycle-auto":
            return low, [test, clr.OneCycleLR(max_lr="auto")]
        return low, [test, clr.CyclicLR(base_lr="auto", max_lr="auto", step_size_up=_cycle_step(total),
                                        mode="triangular2")]
    raise ValueError(f"Expected a policy in {POLICIES}, but got {policy!r}.")


def run_one(spec: RunSpec, settings: Settings) -> RunResult:
    """Trains one run on a fresh Trainer and returns the accuracy curve on ``spec.split``."""
    import pytorch_lightning as pl

    torch.set_num_threads(1)
    quiet_lightning()
    data = _data(settings)
    x_eval, y_eval = (data.x_val, data.y_val) if spec.split == "val" else (data.x_test, data.y_test)
    pl.seed_everything(spec.seed, verbose=False)
    lr, callbacks = callbacks_for(spec, settings)
    model = Classifier(lr=lr, momentum=0.9)
    every = max(1, settings.steps_per_epoch // settings.evals_per_epoch)
    tracker = AccuracyTracker(x_eval, y_eval, every=every, record_lr=spec.record_lr)
    trainer = pl.Trainer(**trainer_kwargs(max_epochs=spec.epochs, callbacks=[*callbacks, tracker]))
    start = time.perf_counter()
    trainer.fit(model, train_loader(data.x_train, data.y_train, settings.batch_size, seed=spec.seed))
    wall = time.perf_counter() - start
    result = RunResult(spec, [s for s, _ in tracker.history], [a for _, a in tracker.history],
                       lrs=tracker.lrs, wall_s=wall)
    for callback in callbacks:
        if type(callback).__name__ == "LRRangeTest":
            result.extra_steps, result.bounds = _range_test_cost(callback, settings)
    if trainer.global_step != spec.epochs * settings.steps_per_epoch:
        raise RuntimeError(f"{spec} took {trainer.global_step} steps, expected "
                           f"{spec.epochs * settings.steps_per_epoch}.")
    return result


def _range_test_cost(callback: Any, settings: Settings) -> tuple[int, dict[str, float]]:
    """Optimizer steps the range test took outside the budget, and the bounds it suggested."""
    result = getattr(callback, "result", None)
    bounds = {}
    for name in ("base_lr", "max_lr", "step_size_up"):
        value = getattr(result, name, None)
        if isinstance(value, (int, float)):
            bounds[name] = float(value)
    steps = len(result.lrs) if result is not None else settings.range_test_steps  # it may stop early
    return int(steps), bounds


def _worker_init() -> None:
    torch.set_num_threads(1)
    quiet_lightning()


def _run_star(args: tuple[RunSpec, Settings]) -> RunResult:
    return run_one(*args)


def run_many(specs: Sequence[RunSpec], settings: Settings, progress: Optional[str] = None) -> list[RunResult]:
    """Runs ``specs`` (longest first) in ``settings.workers`` spawned processes; results in input order."""
    order = sorted(range(len(specs)), key=lambda i: -specs[i].epochs)
    results: list[Optional[RunResult]] = [None] * len(specs)
    start = time.perf_counter()
    if settings.workers <= 1:
        outputs = (run_one(specs[i], settings) for i in order)
    else:
        pool = multiprocessing.get_context("spawn").Pool(settings.workers, initializer=_worker_init)
        outputs = pool.imap(_run_star, [(specs[i], settings) for i in order])
    try:
        for done, (i, result) in enumerate(zip(order, outputs), 1):
            results[i] = result
            if progress and (done == len(specs) or done % 20 == 0):
                print(f"  {progress}: {done}/{len(specs)} runs, {time.perf_counter() - start:.0f} s", flush=True)
    finally:
        if settings.workers > 1:
            pool.close()
            pool.join()
    return [r for r in results if r is not None]


# ---------------------------------------------------------------------------------------------- stages
def _tune_seed(i: int) -> int:
    return 1000 + i  # tuning seeds differ from the test seeds 0..seeds-1


def tune(settings: Settings) -> tuple[dict[tuple[str, int], float], dict[tuple[str, int, float], float]]:
    """Picks each hand-set policy's rate per budget on the validation split.

    Returns:
        ``(chosen, scores)``: ``chosen[(policy, epochs)]`` is the rate with the highest mean final validation
        accuracy over the tuning seeds (the smaller rate on a tie); ``scores[(policy, epochs, rate)]`` is
        that mean.
    """
    largest = max(settings.budgets)
    specs = []
    for policy in settings.policies:
        if policy not in HAND_SET:
            continue
        for peak in settings.grid:
            for i in range(settings.tune_seeds):
                if policy == "constant":  # shorter budgets are prefixes of the longest run
                    specs.append(RunSpec(policy, largest, _tune_seed(i), peak, "val"))
                else:
                    specs.extend(RunSpec(policy, e, _tune_seed(i), peak, "val") for e in settings.budgets)
    results = run_many(specs, settings, progress="tuning")
    finals: dict[tuple[str, int, float], list[float]] = {}
    for r in results:
        budgets = settings.budgets if r.spec.policy == "constant" else (r.spec.epochs,)
        for e in budgets:
            finals.setdefault((r.spec.policy, e, r.spec.peak), []).append(
                r.accuracy_at(e * settings.steps_per_epoch))
    scores = {k: statistics.fmean(v) for k, v in finals.items()}
    chosen = {}
    for policy in settings.policies:
        if policy not in HAND_SET:
            continue
        for e in settings.budgets:
            best = max(settings.grid, key=lambda p: (scores[(policy, e, p)], -p))
            chosen[(policy, e)] = best
    return chosen, scores


def evaluate(settings: Settings, chosen: dict[tuple[str, int], float]) -> dict[tuple[str, int], list[RunResult]]:
    """Trains every policy and budget on ``settings.seeds`` seeds with the chosen rates; test curves.

    Returns:
        ``runs[(policy, epochs)]``: one result per seed, in seed order, cut to the budget.
    """
    largest = max(settings.budgets)
    specs: list[RunSpec] = []
    for policy in settings.policies:
        for seed in range(settings.seeds):
            if policy == "constant":
                for peak in sorted({chosen[(policy, e)] for e in settings.budgets}):
                    specs.append(RunSpec(policy, largest, seed, peak, "test", record_lr=seed == 0))
            else:
                for e in settings.budgets:
                    specs.append(RunSpec(policy, e, seed, chosen.get((policy, e)), "test", record_lr=seed == 0))
    results = run_many(specs, settings, progress="test runs")
    runs: dict[tuple[str, int], list[RunResult]] = {}
    for policy in settings.policies:
        for e in settings.budgets:
            peak = chosen.get((policy, e))
            matches = [r for r in results if r.spec.policy == policy and r.spec.peak == peak
                       and (policy == "constant" or r.spec.epochs == e)]
            runs[(policy, e)] = [_truncate(r, e, settings) for r in sorted(matches, key=lambda r: r.spec.seed)]
    return runs


def _truncate(result: RunResult, epochs: int, settings: Settings) -> RunResult:
    """A constant-rate run of the largest budget read as a run of ``epochs``."""
    if result.spec.epochs == epochs:
        return result
    end = epochs * settings.steps_per_epoch
    keep = [i for i, s in enumerate(result.steps) if s <= end]
    return RunResult(replace(result.spec, epochs=epochs), [result.steps[i] for i in keep],
                     [result.accuracy[i] for i in keep], result.lrs[:end], result.extra_steps,
                     dict(result.bounds), result.wall_s * epochs / result.spec.epochs)


# ---------------------------------------------------------------------------------------------- summary
def first_hit(result: RunResult, target: float) -> float:
    """Optimizer steps (including any range test's) until the accuracy first reached ``target``; inf if never."""
    for step, acc in zip(result.steps, result.accuracy):
        if acc >= target:
            return float(step + result.extra_steps)
    return math.inf


def _final(result: RunResult) -> float:
    return result.accuracy[-1]


def summarize(runs: dict[tuple[str, int], list[RunResult]], settings: Settings) -> dict[str, Any]:
    """Medians, ranges, steps to the target and speed-ups.

    The target is the best constant rate's accuracy: the highest, over the budgets, of the (tuned) constant
    rate's median final test accuracy. A policy's steps to
    the target are, per budget, the median over seeds of the first evaluated step at which the test
    accuracy reached it (a seed that never did counts as infinite), and overall the smallest of these over
    the budgets. "Budget to target" is the smallest budget whose median FINAL accuracy reached it.
    """
    constant = [statistics.median(_final(r) for r in runs[("constant", e)]) for e in settings.budgets
                if runs.get(("constant", e))]
    target = max(constant) if constant else math.nan
    summary: dict[str, Any] = {"target": target, "policies": {}}
    for policy in settings.policies:
        per_budget = {}
        for e in settings.budgets:
            results = runs.get((policy, e), [])
            if not results:
                continue
            finals = [_final(r) for r in results]
            q = statistics.quantiles(finals, n=4, method="inclusive") if len(finals) > 1 else [finals[0]] * 3
            hits = [first_hit(r, target) for r in results]
            per_budget[e] = {
                "peak": results[0].spec.peak,
                "median": statistics.median(finals), "min": min(finals), "max": max(finals),
                "q1": q[0], "q3": q[2], "finals": finals,
                "steps_to_target": statistics.median(hits), "hits": hits,
                "bounds": [r.bounds for r in results],
                "wall_s": statistics.median(r.wall_s for r in results),
            }
        steps = min((b["steps_to_target"] for b in per_budget.values()), default=math.inf)
        reached = [e for e, b in per_budget.items() if b["median"] >= target]
        summary["policies"][policy] = {"budgets": per_budget, "steps_to_target": steps,
                                       "budget_to_target": min(reached) if reached else None}
    for baseline in BASELINES:
        base = summary["policies"].get(baseline, {}).get("steps_to_target", math.nan)
        for policy, entry in summary["policies"].items():
            mine = entry["steps_to_target"]
            entry[f"speedup_vs_{baseline}"] = base / mine if math.isfinite(mine) and math.isfinite(base) else math.nan
    return summary


def _fmt_acc(x: float) -> str:
    return f"{100 * x:.1f}"


def _fmt_steps(x: float) -> str:
    return "not reached" if not math.isfinite(x) else f"{x:.0f}"


def _fmt_ratio(x: float) -> str:
    return "–" if not math.isfinite(x) else f"{x:.2f}x"


def tables(summary: dict[str, Any], scores: dict[tuple[str, int, float], float],
           chosen: dict[tuple[str, int], float], settings: Settings) -> str:
    """The markdown report: the tuning grid, accuracy per budget, steps to the target."""
    spe = settings.steps_per_epoch
    out = []
    headers = ["policy", "budget (epochs)"] + [f"{p:g}" for p in settings.grid]
    rows = []
    for policy in settings.policies:
        if policy not in HAND_SET:
            continue
        for e in settings.budgets:
            cells = []
            for p in settings.grid:
                text = _fmt_acc(scores[(policy, e, p)])
                cells.append(f"**{text}**" if chosen[(policy, e)] == p else text)
            rows.append([policy, e] + cells)
    out.append(f"Tuning grid: mean final VALIDATION accuracy (%) over {settings.tune_seeds} seed(s) per rate "
               "(constant rate; step decay's initial rate; the cyclical peak). Bold: chosen.\n")
    out.append(markdown_table(headers, rows))

    headers = ["policy"] + [f"{e} ep ({e * spe} steps)" for e in settings.budgets]
    rows = []
    for policy, entry in summary["policies"].items():
        cells = []
        for e in settings.budgets:
            b = entry["budgets"].get(e)
            cells.append("–" if b is None else
                         f"{_fmt_acc(b['median'])} [{_fmt_acc(b['min'])}–{_fmt_acc(b['max'])}]")
        rows.append([policy] + cells)
    out.append(f"\nTest accuracy (%): median [min–max] over {settings.seeds} seeds, at the end of each budget.\n")
    out.append(markdown_table(headers, rows))

    target = summary["target"]
    headers = ["policy", "steps to target", "speed-up vs constant", "speed-up vs step decay",
               "smallest budget with median ≥ target", "rate(s) used"]
    rows = []
    for policy, entry in summary["policies"].items():
        budget = entry["budget_to_target"]
        rows.append([
            policy, _fmt_steps(entry["steps_to_target"]), _fmt_ratio(entry["speedup_vs_constant"]),
            _fmt_ratio(entry["speedup_vs_step"]),
            "none" if budget is None else f"{budget} ep ({budget * spe} steps)",
            _rates_used(policy, entry, settings),
        ])
    out.append(f"\nTarget: the best constant rate's accuracy (its highest median final test accuracy over the "
               f"budgets) = {_fmt_acc(target)}%. Steps to target: per budget the median over seeds of the first "
               "evaluation "
               f"(every {max(1, spe // settings.evals_per_epoch)} steps) at or above it, then the smallest over "
               "budgets; the auto policies' range-test steps are included.\n")
    out.append(markdown_table(headers, rows))
    return "\n".join(out)


def _rates_used(policy: str, entry: dict[str, Any], settings: Settings) -> str:
    if policy in AUTO_POLICIES:
        bounds = [b for budget in entry["budgets"].values() for b in budget["bounds"] if b]
        if not bounds:
            return "auto"
        lows = [b.get("base_lr", math.nan) for b in bounds]
        highs = [b.get("max_lr", math.nan) for b in bounds]
        base = "" if policy == "1cycle-auto" else \
            f"base {statistics.median(lows):.3g} [{min(lows):.3g}–{max(lows):.3g}], "
        return f"auto: {base}max {statistics.median(highs):.3g} [{min(highs):.3g}–{max(highs):.3g}]"
    peaks = [entry["budgets"][e]["peak"] for e in settings.budgets if e in entry["budgets"]]
    return ", ".join(f"{p:g}" for p in peaks)


def plot(runs: dict[tuple[str, int], list[RunResult]], summary: dict[str, Any], settings: Settings,
         path: str) -> None:
    """Test accuracy against optimizer steps (largest budget), the rates, and accuracy per budget."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    largest = max(settings.budgets)
    spe = settings.steps_per_epoch
    fig, axes = plt.subplots(1, 3, figsize=(18, 5.2))
    colors = plt.get_cmap("tab10")
    for k, policy in enumerate(settings.policies):
        results = runs.get((policy, largest))
        if not results:
            continue
        color = colors(k % 10)
        steps = np.array(results[0].steps)
        curves = np.array([r.accuracy for r in results])
        axes[0].plot(steps, 100 * np.median(curves, 0), color=color, label=policy, lw=1.4)
        axes[0].fill_between(steps, 100 * curves.min(0), 100 * curves.max(0), color=color, alpha=0.07)
        if results[0].lrs:
            axes[1].plot(np.arange(len(results[0].lrs)), results[0].lrs, color=color, label=policy, lw=1.2)
        entry = summary["policies"][policy]["budgets"]
        budgets = [e for e in settings.budgets if e in entry]
        xs = [e * spe for e in budgets]
        med = [100 * entry[e]["median"] for e in budgets]
        err = [[100 * (entry[e]["median"] - entry[e]["min"]) for e in budgets],
               [100 * (entry[e]["max"] - entry[e]["median"]) for e in budgets]]
        axes[2].errorbar(xs, med, yerr=err, color=color, label=policy, marker="o", capsize=3, lw=1.2)
    target = 100 * summary["target"]
    for ax in (axes[0], axes[2]):
        ax.axhline(target, color="k", ls="--", lw=0.8, label="target (best constant rate)")
        ax.set_xlabel("optimizer steps")
        ax.set_ylabel("test accuracy (%)")
        ax.set_ylim(max(0, target - 30), 100)
        ax.grid(alpha=0.3)
    axes[0].set_title(f"Test accuracy, {largest}-epoch budget (median, min–max band, {settings.seeds} seeds)")
    axes[1].set_title(f"Learning rate per step, {largest}-epoch budget (seed 0)")
    axes[1].set_xlabel("optimizer steps")
    axes[1].set_ylabel("learning rate")
    axes[1].grid(alpha=0.3)
    axes[2].set_title("Final test accuracy per budget (median, min–max)")
    axes[2].set_xscale("log", base=2)
    axes[2].set_xticks([e * spe for e in settings.budgets])
    axes[2].set_xticklabels([f"{e * spe}\n({e} ep)" for e in settings.budgets])
    axes[2].minorticks_off()
    axes[0].legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, float) and not math.isfinite(obj):
        return None if math.isnan(obj) else ("inf" if obj > 0 else "-inf")
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    return obj


def write_outputs(output: str, runs: dict[tuple[str, int], list[RunResult]], summary: dict[str, Any],
                  scores: dict, chosen: dict, settings: Settings, report: str, info: dict[str, Any]) -> list[str]:
    """Writes results.json, summary.csv, report.md and time_to_accuracy.png into ``output``."""
    os.makedirs(output, exist_ok=True)
    paths = []
    path = os.path.join(output, "time_to_accuracy.json")
    with open(path, "w") as f:
        json.dump(_jsonable({
            "settings": asdict(settings), "machine": info, "summary": summary,
            "tuning": {f"{p}|{e}|{r:g}": s for (p, e, r), s in scores.items()},
            "chosen": {f"{p}|{e}": r for (p, e), r in chosen.items()},
            "runs": {f"{p}|{e}": [{"seed": r.spec.seed, "peak": r.spec.peak, "steps": r.steps,
                                   "accuracy": r.accuracy, "extra_steps": r.extra_steps, "bounds": r.bounds,
                                   "lrs": r.lrs}
                                  for r in rs] for (p, e), rs in runs.items()},
        }), f)
    paths.append(path)
    path = os.path.join(output, "time_to_accuracy.csv")
    with open(path, "w") as f:
        f.write("policy,epochs,steps,rate,seed,final_test_accuracy,first_step_at_target\n")
        for (policy, e), results in runs.items():
            for r in results:
                hit = first_hit(r, summary["target"])
                f.write(f"{policy},{e},{e * settings.steps_per_epoch},{r.spec.peak if r.spec.peak else 'auto'},"
                        f"{r.spec.seed},{_final(r):.4f},{'' if not math.isfinite(hit) else int(hit)}\n")
    paths.append(path)
    path = os.path.join(output, "time_to_accuracy.md")
    with open(path, "w") as f:
        f.write(report + "\n")
    paths.append(path)
    path = os.path.join(output, "time_to_accuracy.png")
    plot(runs, summary, settings, path)
    paths.append(path)
    return paths


def parse_args(argv: Optional[Sequence[str]] = None) -> tuple[Settings, Optional[str]]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="a smoke test: budgets 1 and 2 epochs, 2 seeds, a 2-point grid (not for its numbers)")
    parser.add_argument("--output", help="folder for the JSON, CSV, markdown and PNG outputs")
    parser.add_argument("--budgets", type=int, nargs="+", help="budgets in epochs (default 4 8 16 32)")
    parser.add_argument("--seeds", type=int, help="test seeds per policy and budget (default 5)")
    parser.add_argument("--tune-seeds", type=int, help="validation seeds per grid point (default 2)")
    parser.add_argument("--grid", type=float, nargs="+", help="candidate rates (default 0.02 0.05 0.1 0.2 0.5)")
    parser.add_argument("--policies", nargs="+", choices=POLICIES, help="policies to run (default all)")
    parser.add_argument("--workers", type=int,
                        help="worker processes (default 2, --quick 1; 1 runs in this process)")
    args = parser.parse_args(argv)
    settings = QUICK if args.quick else Settings()
    overrides = {name: getattr(args, name) for name in ("seeds", "tune_seeds", "workers")
                 if getattr(args, name) is not None}
    for name in ("budgets", "grid", "policies"):
        if getattr(args, name):
            overrides[name] = tuple(getattr(args, name))
    settings = replace(settings, **overrides)
    if "constant" not in settings.policies:
        settings = replace(settings, policies=("constant",) + settings.policies)
    return settings, args.output


def main(argv: Optional[Sequence[str]] = None) -> dict[str, Any]:
    settings, output = parse_args(argv)
    if not range_test_available():
        missing = [p for p in settings.policies if p in AUTO_POLICIES]
        if missing:
            print(f"lightning_clr.LRRangeTest is not available: skipping {', '.join(missing)}.")
            settings = replace(settings, policies=tuple(p for p in settings.policies if p not in AUTO_POLICIES))
    torch.set_num_threads(1)
    quiet_lightning()
    info = machine_info()
    print(f"Machine: {info['cpu']}, {info['cores']} cores; torch {info['torch']}, pytorch_lightning "
          f"{info['pytorch_lightning']}; {settings.workers} worker process(es), 1 torch thread each.")
    print(f"MNIST-1D: {settings.num_train} train / 500 validation / {5000 - settings.num_train - 500} test; "
          f"{settings.steps_per_epoch} steps per epoch; budgets {list(settings.budgets)} epochs; "
          f"{settings.seeds} seeds; grid {list(settings.grid)}.")
    for policy in settings.policies:
        print(f"  {policy:17s} {DESCRIPTIONS[policy]}")
    start = time.perf_counter()
    _data(settings)
    chosen, scores = tune(settings)
    tuned = time.perf_counter()
    runs = evaluate(settings, chosen)
    done = time.perf_counter()
    summary = summarize(runs, settings)
    report = tables(summary, scores, chosen, settings)
    timing = (f"\n\nWall time: {done - start:.0f} s ({tuned - start:.0f} s tuning, {done - tuned:.0f} s test runs), "
              f"{settings.workers} worker process(es).")
    report += timing
    print()
    print(report)
    info = {**info, "wall_s": done - start, "tuning_s": tuned - start, "test_s": done - tuned}
    if output:
        paths = write_outputs(output, runs, summary, scores, chosen, settings, report, info)
        print("\nWrote " + ", ".join(paths))
    return {"summary": summary, "chosen": chosen, "scores": scores, "runs": runs, "settings": settings}


if __name__ == "__main__":
    main()
