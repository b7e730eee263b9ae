"""Budgeted time to accuracy: how few optimizer steps does each learning-rate policy need to reach a high target?

Measured the way DAWNBench and the super-convergence paper do: every run is planned for its budget (its schedule
spans the run), on a grid of budgets (default 2, 3, 4, 6, 8, 12, 16, 24 and 32 units). Per family:

1. **Tuning, on the validation split only.** The constant rate, step decay's initial rate and each hand-set
   cyclical peak are picked per budget from one grid (mean final validation accuracy over ``--tune-seeds`` seeds,
   1000, 1001, ...). The "auto" policies take their bounds from a default ``LRRangeTest()`` in each run; Prodigy
   and schedule-free have no rate to tune.
2. **Test runs.** ``--seeds`` seeds (0, 1, ...) per policy and budget with the chosen rate; final TEST accuracy.
3. **Summary.** Target = tuned step decay's median final test accuracy at the largest budget minus 0.5 points. A
   policy's budget to target is the smallest budget whose median final test accuracy reaches it; its run steps
   are that budget's, its total steps add the rate search it needed (every grid run of a hand-set policy at that
   budget, the range test of an "auto" one). Goal: an "auto" policy reaches the target no more than one budget
   step after its hand-tuned policy, and in at most a quarter of tuned step decay's total steps.

Families (``--family``): ``convbase`` (default; ConvBase on MNIST-1D, SGD momentum 0.9, a unit an epoch of 55
steps) and ``charlm`` (the character transformer, AdamW, a unit 32 steps, 3 seeds); the grids are in the report.
The constant rate trains only at the largest budget and is read off at each budget's end. ``--output`` gets
``<stem>.md`` (the report), ``<stem>.csv`` (every final accuracy) and ``<stem>.png``.

``--wsd`` (``charlm`` or ``mlp``, 3 seeds, budgets 1-4 units, one tuning seed): WSD against cosine with
warm-up and 1cycle, each tuned and planned per budget; then one WSD run of 4 units with a ``ModelCheckpoint``
every 4/5 unit, branches resumed at 4/5 of 1, 2 and 3 units with ``max_steps`` = the budget (:func:`wsd_study`).

    python -m benchmarks.time_to_accuracy --workers 2 --output benchmarks/results     # ConvBase, ~20 min
    python -m benchmarks.time_to_accuracy --family charlm --workers 1 --output benchmarks/results   # ~30 min
    python -m benchmarks.time_to_accuracy --wsd --family charlm --output benchmarks/results   # (or mlp)
    python -m benchmarks.time_to_accuracy --quick --output /tmp/smoke    # smoke test (CI), well under a minute
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import torch
from pytorch_lightning.callbacks import ModelCheckpoint
from torch import nn

from benchmarks.common import (
    AccuracyTracker,
    Classifier,
    Splits,
    StepDecaySchedule,
    baseline_optimizer,
    command_line,
    machine_info,
    machine_line,
    make_mnist1d,
    mapped,
    markdown_table,
    quiet_lightning,
    save_report,
    train_loader,
    trainer_kwargs,
)
from benchmarks.families import FAMILIES, family_data, loss_and_correct

HAND_SET = ("constant", "step", "triangular", "triangular2", "exp_range", "1cycle", "cosine", "wsd", "cosine-warmup")
AUTO_POLICIES = ("1cycle-auto", "triangular2-auto", "1cycle-auto-guard")
OPTIMIZER_BASELINES = ("prodigy", "schedulefree")
POLICIES = HAND_SET + AUTO_POLICIES + OPTIMIZER_BASELINES
SPEEDUP_BASES = ("constant", "step", "prodigy", "schedulefree")
TARGET_MARGIN = 0.005
"""The target is tuned step decay's median final accuracy at the largest budget minus this (0.5 points)."""

DESCRIPTIONS = {
    "constant": "constant rate (no callback)",
    "step": "ScheduledLR(StepDecaySchedule): x0.1 at 50% and 75% of the budget",
    "triangular": "CyclicLR(triangular), base = peak/4, 3 cycles per budget",
    "triangular2": "CyclicLR(triangular2), base = peak/4, 3 cycles per budget",
    "exp_range": "CyclicLR(exp_range), base = peak/4, 3 cycles, gamma**budget = 0.1",
    "1cycle": "OneCycleLR(max_lr=peak), whole budget, torch defaults",
    "cosine": "CosineRestartsLR(max_lr=peak, t_mul=2): cycles of 1/7, 2/7, 4/7 of the budget",
    "wsd": "WarmupStableDecayLR(max_lr=peak, warmup=a tenth of a unit, decay='20%'), 1-sqrt cool-down to 0",
    "cosine-warmup": "CosineRestartsLR(max_lr=peak, warmup=a tenth of a unit, first_cycle=the rest): one cosine to 0",
    "1cycle-auto": "default LRRangeTest() + OneCycleLR(max_lr='auto')",
    "triangular2-auto": "default LRRangeTest() + CyclicLR('auto', 'auto', triangular2), 3 cycles per budget",
    "1cycle-auto-guard": "default LRRangeTest() + OneCycleLR(max_lr='auto') + DivergenceGuard() (its defaults)",
    "prodigy": "prodigyopt.Prodigy(lr=1.0) + cosine decay over the budget (no rate to tune)",
    "schedulefree": "schedulefree.SGDScheduleFree (default lr, 5% warm-up; no rate to tune)",
}
CHARLM_DESCRIPTIONS = {
    **DESCRIPTIONS,
    "constant": "constant AdamW rate (no callback), weight decay 0.01 for every policy",
    "prodigy": "prodigyopt.Prodigy(lr=1.0, weight_decay=0.01) + cosine decay over the budget (no rate to tune)",
    "schedulefree": "schedulefree.AdamWScheduleFree (default lr, 5% warm-up, wd 0.01; no rate to tune)",
}


def _final(result: Any) -> float:
    return result.accuracy[-1]


def search_steps(policy: str, epochs: int, results: Sequence[Any], settings: Any) -> float:
    """Optimizer steps the policy's rate search cost at this budget: every grid run of a hand-set policy (the
    constant rate's grid runs only at the largest budget, read off at each budget), the median range test of an
    "auto" policy, none for Prodigy and schedule-free."""
    spe = settings.steps_per_unit
    if policy == "constant":
        return float(len(settings.grid) * settings.tune_seeds * max(settings.budgets) * spe)
    if policy in HAND_SET:
        return float(len(settings.grid) * settings.tune_seeds * epochs * spe)
    if policy in AUTO_POLICIES:
        return float(statistics.median(r.extra_steps for r in results)) if results else 0.0
    return 0.0


def summarize(runs: dict[tuple[str, int], list[Any]], settings: Any) -> dict[str, Any]:
    """Medians per budget, the target, each policy's budget to target and its run and total steps, speed-ups.

    The target is tuned step decay's median final test accuracy at the largest budget minus :data:`TARGET_MARGIN`.
    A policy reaches it at the smallest budget whose median reaches it; its run steps are that budget's, its total
    steps add the rate search (:func:`search_steps`). A speed-up over a baseline is the baseline's steps over the
    policy's (``nan`` where either never reached the target)."""
    largest = max(settings.budgets)
    step_runs = runs.get(("step", largest), [])
    target = statistics.median(_final(r) for r in step_runs) - TARGET_MARGIN if step_runs else math.nan
    summary: dict[str, Any] = {"target": target, "policies": {}}
    spe = settings.steps_per_unit
    for policy in settings.policies:
        per_budget = {}
        for e in settings.budgets:
            results = runs.get((policy, e), [])
            if not results:
                continue
            finals = [_final(r) for r in results]
            per_budget[e] = {"peak": results[0].spec.peak, "median": statistics.median(finals), "min": min(finals),
                             "max": max(finals), "finals": finals, "bounds": [r.bounds for r in results],
                             "search_steps": search_steps(policy, e, results, settings)}
        reached = [e for e, b in per_budget.items() if b["median"] >= target]
        budget = min(reached) if reached else None
        run = math.inf if budget is None else float(budget * spe)
        total = math.inf if budget is None else run + per_budget[budget]["search_steps"]
        summary["policies"][policy] = {"budgets": per_budget, "budget_to_target": budget, "run_steps": run,
                                       "total_steps": total}
    for base in SPEEDUP_BASES:
        ref = summary["policies"].get(base)
        for entry in summary["policies"].values():
            for kind in ("run", "total"):
                mine = entry[f"{kind}_steps"]
                theirs = math.nan if ref is None else ref[f"{kind}_steps"]
                ok = math.isfinite(mine) and math.isfinite(theirs)
                entry[f"{kind}_speedup_vs_{base}"] = theirs / mine if ok else math.nan
    return summary


def _acc(x: float) -> str:
    return f"{100 * x:.1f}"


def _steps(x: float) -> str:
    return "not reached" if not math.isfinite(x) else f"{x:.0f}"


def _ratio(x: float) -> str:
    return "–" if not math.isfinite(x) else f"{x:.2f}x"


def goal(summary: dict[str, Any]) -> dict[str, Any]:
    """Issue 13's goal, 1cycle-auto in at most 0.5x tuned step decay's run steps and 0.25x its total steps:
    ``{"run_ratio", "total_ratio"}`` (``inf`` where 1cycle-auto never reaches the target, ``nan`` where a policy is
    missing or step decay never reaches it), ``"run_met"``, ``"total_met"``."""
    auto, step = summary["policies"].get("1cycle-auto"), summary["policies"].get("step")
    out: dict[str, Any] = {}
    for kind, limit in (("run", 0.5), ("total", 0.25)):
        ratio = math.nan
        if auto is not None and step is not None and math.isfinite(step[f"{kind}_steps"]):
            ratio = auto[f"{kind}_steps"] / step[f"{kind}_steps"]
        out[f"{kind}_ratio"], out[f"{kind}_met"] = ratio, bool(ratio <= limit)
    return out


def _rate(entry: dict[str, Any], budget: int | None) -> str:
    """The tuned rate at ``budget``, or the median suggested ``max_lr`` of an auto policy."""
    if budget is None:
        return "–"
    b = entry["budgets"][budget]
    if b["peak"] is not None:
        return f"{b['peak']:g}"
    peaks = [x["max_lr"] for x in b["bounds"] if "max_lr" in x]
    return f"auto, max_lr {statistics.median(peaks):.3g}" if peaks else "–"


def grid_table(scores: dict[tuple[str, int, float], float], chosen: dict[tuple[str, int], float],
               settings: Any) -> str:
    """The tuning grid: each hand-set policy's validation accuracy per budget and rate, the chosen one bold."""
    headers = ["policy", f"budget ({settings.unit[1]})"] + [f"{p:g}" for p in settings.grid]
    rows = []
    for policy in settings.policies:
        if policy not in HAND_SET:
            continue
        for e in settings.budgets:
            cells = []
            for p in settings.grid:
                text = _acc(scores[(policy, e, p)])
                cells.append(f"**{text}**" if chosen[(policy, e)] == p else text)
            rows.append([policy, e, *cells])
    return (f"Tuning grid: mean final VALIDATION accuracy (%) over {settings.tune_seeds} seed(s) per rate "
            "(constant rate; step decay's initial rate; the peak). Bold: chosen.\n\n" + markdown_table(headers, rows))


def accuracy_table(summary: dict[str, Any], settings: Any, peaks: bool = False) -> str:
    """Each policy's final test accuracy per budget, median [min–max] over the seeds (with ``peaks``, @ the rate)."""
    rows = []
    for policy, entry in summary["policies"].items():
        cells = []
        for e in settings.budgets:
            b = entry["budgets"].get(e)
            cells.append("–" if b is None else f"{_acc(b['median'])} [{_acc(b['min'])}–{_acc(b['max'])}]"
                         + (f" @ {b['peak']:g}" if peaks else ""))
        rows.append([policy, *cells])
    return (f"\nFinal test accuracy (%): median [min–max] over {settings.seeds} seeds{', @ the tuned rate' * peaks}; "
            f"every run planned for its budget ({settings.steps_per_unit} steps "
            f"{'a budget unit' if settings.unit_steps else 'an epoch'}).\n\n"
            + markdown_table(["policy"] + [f"{e} {settings.unit[0]}" for e in settings.budgets], rows))


def tables(summary: dict[str, Any], scores: dict[tuple[str, int, float], float],
           chosen: dict[tuple[str, int], float], settings: Any) -> str:
    """The markdown report: the tuning grid, accuracy per budget, budget and steps to the target, speed-ups."""
    short, long = settings.unit
    out = [grid_table(scores, chosen, settings), accuracy_table(summary, settings)]
    headers = ["policy", "budget to target", "rate there", "run steps", "search steps", "total steps",
               *[f"run speed-up vs {b}" for b in SPEEDUP_BASES], *[f"total speed-up vs {b}" for b in SPEEDUP_BASES]]
    rows = []
    for policy, entry in summary["policies"].items():
        budget = entry["budget_to_target"]
        search = "–" if budget is None else _steps(entry["budgets"][budget]["search_steps"])
        rows.append([policy, "none" if budget is None else f"{budget} {short}", _rate(entry, budget),
                     _steps(entry["run_steps"]), search,
                     _steps(entry["total_steps"]), *[_ratio(entry[f"run_speedup_vs_{b}"]) for b in SPEEDUP_BASES],
                     *[_ratio(entry[f"total_speedup_vs_{b}"]) for b in SPEEDUP_BASES]])
    out.append(f"\nTarget: tuned step decay's median final test accuracy at {max(settings.budgets)} {long} minus "
               f"{100 * TARGET_MARGIN:.1f} points = {_acc(summary['target'])}%. Budget to target: the smallest budget "
               "whose median final accuracy reaches it. Search steps: every grid run of a hand-set policy "
               f"({len(settings.grid)} rates x {settings.tune_seeds} seed(s) of that budget), the range test of an "
               "auto policy, none for Prodigy and schedule-free.\n")
    out.append(markdown_table(headers, rows))
    g = goal(summary)
    if not math.isnan(g["run_ratio"]):
        def said(kind: str) -> str:
            ratio = "1cycle-auto never reached the target" if math.isinf(g[f"{kind}_ratio"]) else \
                f"{g[f'{kind}_ratio']:.2f}x"
            return f"{ratio} ({'met' if g[f'{kind}_met'] else 'MISSED'})"

        out.append(f"\nGoal (1cycle-auto: at most 0.5x tuned step decay's run steps, at most 0.25x its total steps): "
                   f"run steps {said('run')}, total steps {said('total')}.")
    return "\n".join(out)


@dataclass(frozen=True)
class Settings:
    """What to run: ``budgets`` (in units), test ``seeds`` per policy and budget, ``tune_seeds`` per grid point,
    the candidate rates ``grid`` (the constant rate, step decay's initial rate, the peaks), ``batch_size``,
    ``evals_per_epoch`` (test evaluations per unit, and one at each epoch's end), ``workers`` (1 runs in this
    process), ``num_train`` (MNIST-1D: the rest of the 5,000 are 500 validation and the remainder test; charlm and
    mlp: fixed by :mod:`families`), ``family`` (``"convbase"``, ``"charlm"`` or ``"mlp"``), ``unit_steps`` (optimizer
    steps in a unit; 0 makes a unit one epoch) and ``wsd`` (the WSD study, :func:`wsd_study`)."""

    budgets: tuple[int, ...] = (2, 3, 4, 6, 8, 12, 16, 24, 32)
    seeds: int = 5
    tune_seeds: int = 2
    grid: tuple[float, ...] = (0.02, 0.05, 0.1, 0.2, 0.5)
    batch_size: int = 64
    evals_per_epoch: int = 5
    workers: int = 2
    policies: tuple[str, ...] = POLICIES
    num_train: int = 3500
    family: str = "convbase"
    unit_steps: int = 0
    wsd: bool = False

    @property
    def steps_per_epoch(self) -> int:
        return math.ceil(self.num_train / self.batch_size)

    @property
    def steps_per_unit(self) -> int:
        """Optimizer steps in one budget unit (an epoch unless ``unit_steps`` is set)."""
        return self.unit_steps or self.steps_per_epoch

    @property
    def unit(self) -> tuple[str, str]:
        """The budget unit's short and long names, for the tables."""
        if self.unit_steps:
            return "u", f"units of {self.unit_steps} steps"
        return "ep", "epochs"

    @property
    def stem(self) -> str:
        """The output files' name without extension (one per family, so they do not collide)."""
        return "time_to_accuracy" if self.family == "convbase" else f"time_to_accuracy_{self.family}"


# One process: for runs this short, starting two spawned workers per stage costs more than it saves.
QUICK = Settings(budgets=(1, 2), seeds=1, tune_seeds=1, grid=(0.05, 0.2), workers=1, num_train=1000,
                 policies=("constant", "step", "1cycle", "1cycle-auto", "prodigy", "schedulefree"))

# The transformer: 2,811 training windows of 32 characters, batch 32 (88 steps an epoch). A budget unit is
# CHARLM_UNIT_STEPS optimizer steps (budgets 64 to 1,024 steps, 0.7 to 11.6 epochs), 3 test seeds and 1 tuning
# seed: sized from one measured run (about 11 ms a step on one idle core) so the whole grid runs in about 30
# minutes on one core.
CHARLM_UNIT_STEPS = 32
CHARLM = Settings(budgets=(2, 3, 4, 6, 8, 12, 16, 24, 32), seeds=3, tune_seeds=1,
                  grid=(0.000949, 0.003, 0.00949, 0.03, 0.0949), batch_size=32, evals_per_epoch=1,
                  workers=1, policies=("constant", "step", "1cycle", "triangular2", "1cycle-auto", "triangular2-auto",
                                       "prodigy", "schedulefree"),
                  num_train=2811, family="charlm", unit_steps=CHARLM_UNIT_STEPS)
CHARLM_QUICK = replace(CHARLM, budgets=(1, 2), seeds=1, grid=(0.003, 0.03), unit_steps=8, policies=QUICK.policies)

# --wsd: WSD against cosine with warm-up and 1cycle, and many budgets from one WSD run. Units of a
# multiple of 5 steps, so that 4/5 of every budget is a whole step (the branches' checkpoints).
WSD_POLICIES = ("wsd", "cosine-warmup", "1cycle")
WSD = {"charlm": replace(CHARLM, budgets=(1, 2, 3, 4), grid=(0.005, 0.01, 0.02, 0.04), unit_steps=160,
                         policies=WSD_POLICIES, wsd=True),
       "mlp": replace(CHARLM, budgets=(1, 2, 3, 4), grid=(0.0025, 0.005, 0.01, 0.02), batch_size=64, num_train=1200,
                      family="mlp", unit_steps=60, policies=WSD_POLICIES, wsd=True)}
WSD_QUICK = replace(WSD["mlp"], budgets=(1, 2), seeds=1, grid=(0.005, 0.01), unit_steps=10)


@dataclass(frozen=True)
class RunSpec:
    """One training run. ``epochs`` is the budget in units (epochs for ConvBase); ``split`` is "val" (tuning) or
    "test"."""

    policy: str
    epochs: int
    seed: int
    peak: float | None
    split: str = "test"
    record_lr: bool = False
    checkpoints: str | None = None  # a folder: a ModelCheckpoint saves there every 4/5 of a unit
    resume: str | None = None  # a checkpoint to resume from, the fit then ending at this budget


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
    """The family's splits (:func:`families.family_data`; ConvBase: ``num_train`` MNIST-1D samples), made once per
    process. Raises ValueError where ``num_train`` is not the data's."""
    key = (settings.family, settings.num_train)
    if key not in _DATA:
        convbase = settings.family == "convbase"
        data = make_mnist1d(num_train=settings.num_train) if convbase else family_data(settings.family)
        if len(data.x_train) != settings.num_train:
            raise ValueError(f"Expected num_train={len(data.x_train)} for {settings.family}, but got "
                             f"{settings.num_train}.")
        _DATA[key] = data
    return _DATA[key]


class CharLM(Classifier):
    """:mod:`families`' character transformer, trained with AdamW (weight decay 0.01) on next-character loss;
    ``optimizer="prodigy"`` is Prodigy(lr=1.0) with a cosine decay, ``"schedulefree"`` AdamWScheduleFree at its
    default rate with a 5% warm-up (both with the same weight decay). ``family="mlp"``: the digits MLP, the same way."""

    def __init__(self, lr: float, optimizer: str, total_steps: int, family: str = "charlm") -> None:
        family = FAMILIES[family]  # its weight decay (0.01) too, as the auto-bounds benchmark trains it
        super().__init__(lr=lr, weight_decay=family.weight_decay, model=family.model(), optimizer=optimizer,
                         total_steps=total_steps)

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        return loss_and_correct(self.model, *batch)[0]

    def configure_optimizers(self) -> Any:
        if self.optimizer_name in ("prodigy", "schedulefree"):
            return baseline_optimizer(self.optimizer_name, self.parameters(), self.total_steps, self.weight_decay,
                                      adam=True)
        return torch.optim.AdamW(self.parameters(), lr=self.lr, weight_decay=self.weight_decay)


def _model(spec: RunSpec, settings: Settings, lr: float, total: int) -> nn.Module:
    optimizer = spec.policy if spec.policy in OPTIMIZER_BASELINES else "sgd"
    if settings.family != "convbase":
        return CharLM(lr=lr, optimizer=optimizer if optimizer != "sgd" else "adamw", total_steps=total,
                      family=settings.family)
    return Classifier(lr=lr, momentum=0.9, total_steps=total, optimizer=optimizer)


def callbacks_for(spec: RunSpec, settings: Settings) -> tuple[float, list[Any]]:
    """The optimizer's initial rate and the schedule callbacks of ``spec``'s policy.

    Raises:
        ValueError: for an unknown policy, or a hand-set policy without a peak.
    """
    import lightning_clr as clr

    total = spec.epochs * settings.steps_per_unit
    policy, peak, half_cycle = spec.policy, spec.peak, max(1, round(total / 6))  # three cycles a budget
    if policy in HAND_SET and peak is None:
        raise ValueError(f"Expected a peak rate for policy {policy!r}, but got None.")
    if policy == "constant":
        return peak, []
    if policy == "step":
        schedule = StepDecaySchedule(peak, (total // 2, (3 * total) // 4), 0.1)
        return peak, [clr.ScheduledLR(schedule)]
    if policy in ("triangular", "triangular2", "exp_range"):
        gamma = 0.1 ** (1 / total) if policy == "exp_range" else 1.0
        return peak, [clr.CyclicLR(base_lr=peak / 4, max_lr=peak, step_size_up=half_cycle, mode=policy,
                                   gamma=gamma)]
    if policy == "1cycle":
        return peak, [clr.OneCycleLR(max_lr=peak)]
    if policy == "cosine":
        return peak, [clr.CosineRestartsLR(max_lr=peak, first_cycle=math.ceil(total / 7), t_mul=2.0)]
    warmup = max(1, settings.steps_per_unit // 10)  # the same number of steps at every budget
    if policy == "wsd":
        return peak, [clr.WarmupStableDecayLR(max_lr=peak, warmup=warmup, decay="20%")]
    if policy == "cosine-warmup":
        return peak, [clr.CosineRestartsLR(max_lr=peak, first_cycle=total - warmup, warmup=warmup)]
    if policy in OPTIMIZER_BASELINES:
        return 1.0, []
    if policy in AUTO_POLICIES:
        test = clr.LRRangeTest(plot=False, verbose=False)  # the defaults, as a new user would
        if policy == "1cycle-auto":
            return 1e-3, [test, clr.OneCycleLR(max_lr="auto")]
        if policy == "1cycle-auto-guard":  # "auto" with the guard a user adds for safety, both at their defaults
            return 1e-3, [test, clr.OneCycleLR(max_lr="auto"), clr.DivergenceGuard()]
        return 1e-3, [test, clr.CyclicLR(base_lr="auto", max_lr="auto", step_size_up=half_cycle,
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
    total = spec.epochs * settings.steps_per_unit
    model = _model(spec, settings, lr, total)
    every = max(1, settings.steps_per_unit // settings.evals_per_epoch)
    tracker = AccuracyTracker(x_eval, y_eval, every=every, record_lr=spec.record_lr)
    # ConvBase: whole epochs, as before; charlm: a number of steps (a unit need not be a whole epoch).
    limits = {"max_steps": total, "max_epochs": -1} if settings.unit_steps else {"max_epochs": spec.epochs}
    if spec.checkpoints:  # every 4/5 of a unit: the cool-down's start of a branch of every budget
        callbacks.append(ModelCheckpoint(spec.checkpoints, "{step}", save_top_k=-1,
                                         every_n_train_steps=4 * settings.steps_per_unit // 5))
    trainer = pl.Trainer(**trainer_kwargs(**limits, callbacks=[*callbacks, tracker],
                                          enable_checkpointing=bool(spec.checkpoints)))
    start = time.perf_counter()
    trainer.fit(model, train_loader(data.x_train, data.y_train, settings.batch_size, seed=spec.seed),
                ckpt_path=spec.resume)
    result = RunResult(spec, [s for s, _ in tracker.history], [a for _, a in tracker.history],
                       lrs=tracker.lrs, wall_s=time.perf_counter() - start)
    for callback in callbacks:
        if type(callback).__name__ == "LRRangeTest":
            result.extra_steps, result.bounds = _range_test_cost(callback, settings)
    if trainer.global_step != total:
        raise RuntimeError(f"{spec} took {trainer.global_step} steps, expected {total}.")
    return result


def _range_test_cost(callback: Any, settings: Settings) -> tuple[int, dict[str, float]]:
    """Optimizer steps the range test took outside the budget, and the bounds it suggested."""
    result = getattr(callback, "result", None)
    bounds = {name: float(value) for name in ("base_lr", "max_lr", "step_size_up")
              if isinstance(value := getattr(result, name, None), (int, float))}
    return (len(result.lrs) if result is not None else 0), bounds  # it may stop early


def _run_star(args: tuple[RunSpec, Settings]) -> RunResult:
    return run_one(*args)


def run_many(specs: Sequence[RunSpec], settings: Settings, progress: str | None = None) -> list[RunResult]:
    """Runs ``specs`` (longest first) in ``settings.workers`` spawned processes; results in input order."""
    order = sorted(range(len(specs)), key=lambda i: -specs[i].epochs)
    results: list[RunResult | None] = [None] * len(specs)
    start = time.perf_counter()
    with mapped(_run_star, [(specs[i], settings) for i in order], settings.workers) as outputs:
        for done, (i, result) in enumerate(zip(order, outputs, strict=True), 1):
            results[i] = result
            if progress and (done == len(specs) or done % 20 == 0):
                print(f"  {progress}: {done}/{len(specs)} runs, {time.perf_counter() - start:.0f} s", flush=True)
    return [r for r in results if r is not None]

# ---------------------------------------------------------------------------------------------- stages
def tune(settings: Settings) -> tuple[dict[tuple[str, int], float], dict[tuple[str, int, float], float]]:
    """Picks each hand-set policy's rate per budget on the validation split: ``(chosen, scores)``, where
    ``chosen[(policy, epochs)]`` has the highest mean final validation accuracy over the tuning seeds (the smaller
    rate on a tie) and ``scores[(policy, epochs, rate)]`` is that mean."""
    largest = max(settings.budgets)
    specs = []
    for policy in settings.policies:
        if policy not in HAND_SET:
            continue
        for peak in settings.grid:
            for seed in range(1000, 1000 + settings.tune_seeds):  # not the test seeds 0..seeds-1
                if policy == "constant":  # shorter budgets are prefixes of the longest run
                    specs.append(RunSpec(policy, largest, seed, peak, "val"))
                else:
                    specs.extend(RunSpec(policy, e, seed, peak, "val") for e in settings.budgets)
    results = run_many(specs, settings, progress="tuning")
    finals: dict[tuple[str, int, float], list[float]] = {}
    for r in results:
        budgets = settings.budgets if r.spec.policy == "constant" else (r.spec.epochs,)
        for e in budgets:
            finals.setdefault((r.spec.policy, e, r.spec.peak), []).append(
                r.accuracy_at(e * settings.steps_per_unit))
    scores = {k: statistics.fmean(v) for k, v in finals.items()}
    chosen = {(policy, e): max(settings.grid, key=lambda p, k=(policy, e): (scores[(*k, p)], -p))
              for policy in settings.policies if policy in HAND_SET for e in settings.budgets}
    return chosen, scores


def evaluate(settings: Settings, chosen: dict[tuple[str, int], float],
             folder: str | None = None) -> dict[tuple[str, int], list[RunResult]]:
    """Trains every policy and budget on ``settings.seeds`` seeds with the chosen rates: ``runs[(policy, epochs)]``,
    one test curve per seed, in seed order, cut to the budget. With ``folder``, WSD's runs of the largest budget
    save checkpoints in ``folder/seed<seed>``."""
    largest = max(settings.budgets)
    specs: list[RunSpec] = []
    for policy in settings.policies:
        for seed in range(settings.seeds):
            if policy == "constant":
                for peak in sorted({chosen[(policy, e)] for e in settings.budgets}):
                    specs.append(RunSpec(policy, largest, seed, peak, "test", record_lr=seed == 0))
            else:
                for e in settings.budgets:
                    specs.append(RunSpec(policy, e, seed, chosen.get((policy, e)), "test", record_lr=seed == 0,
                                         checkpoints=os.path.join(folder, f"seed{seed}") if folder and
                                         (policy, e) == ("wsd", largest) else None))
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
    end = epochs * settings.steps_per_unit
    keep = [i for i, s in enumerate(result.steps) if s <= end]
    return RunResult(replace(result.spec, epochs=epochs), [result.steps[i] for i in keep],
                     [result.accuracy[i] for i in keep], result.lrs[:end], result.extra_steps,
                     dict(result.bounds), result.wall_s * epochs / result.spec.epochs)


def wsd_study(settings: Settings, folder: str) -> tuple[Any, list[RunResult], Any, Any]:
    """Tunes and runs every policy and budget (the WSD runs of the largest budget saving checkpoints in ``folder``),
    then branches a cool-down at each smaller budget B from the checkpoint at 4/5 of B, on a fresh Trainer.
    Returns :func:`evaluate`'s runs, the branches (resumed: their curves start at the checkpoint's step) and
    :func:`tune`'s two."""
    chosen, scores = tune(settings)
    runs, largest, spu = evaluate(settings, chosen, folder), max(settings.budgets), settings.steps_per_unit
    branches = run_many([RunSpec("wsd", e, s, chosen[("wsd", largest)], record_lr=True, resume=os.path.join(
        folder, f"seed{s}", f"step={4 * e * spu // 5}.ckpt")) for e in settings.budgets[:-1]
        for s in range(settings.seeds)], settings, progress="branches")
    return runs, branches, chosen, scores


def wsd_tables(runs: dict[tuple[str, int], list[RunResult]], branches: list[RunResult],
               chosen: dict[tuple[str, int], float], scores: dict[tuple[str, int, float], float],
               settings: Settings) -> str:
    """(a) accuracy per policy and budget; (b) each branch against the separate WSD run, and the steps."""
    spu, largest, short = settings.steps_per_unit, max(settings.budgets), settings.unit[0]
    summary = summarize(runs, settings)
    out = [grid_table(scores, chosen, settings), accuracy_table(summary, settings, True).replace("\n", "\n(a) ", 1)]
    separately = summary["policies"]["wsd"]["budgets"]
    branched = summarize({("wsd", e): [b for b in branches if b.spec.epochs == e] for e in settings.budgets[:-1]},
                         replace(settings, policies=("wsd",)))["policies"]["wsd"]["budgets"]
    rows, gaps = [], []
    for e in settings.budgets:
        mine, theirs = branched.get(e, separately[e]), separately[e]
        gaps.append(mine["median"] - theirs["median"])
        rows.append([f"{e} {short}", "the long run itself" if e == largest else f"step {4 * e * spu // 5}",
                     0 if e == largest else e * spu - 4 * e * spu // 5,
                     *[f"{_acc(x['median'])} [{_acc(x['min'])}–{_acc(x['max'])}]" for x in (mine, theirs)],
                     f"{100 * gaps[-1]:+.1f}", "yes" if gaps[-1] >= -TARGET_MARGIN else "NO"])
    one_run = largest * spu + sum(b.steps[-1] - b.steps[0] for b in branches) // settings.seeds  # resumed steps
    separate = sum(settings.budgets) * spu
    met = all(g >= -TARGET_MARGIN for g in gaps) and one_run <= 0.6 * separate
    out += [f"\n(b) Many budgets from one run: one WSD run of {largest} {short} at its tuned peak "
            f"({chosen[('wsd', largest)]:g}) with a ModelCheckpoint every {4 * spu // 5} steps; each smaller budget B "
            "resumed from the checkpoint at 4/5 of B (the start of its cool-down) on a fresh Trainer with "
            "max_steps=B. Against a separate WSD run of each budget (its own tuned peak).\n",
            markdown_table(["budget", "branch from", "branch steps", "branch test acc (%)", "separate run (%)",
                            "gap (points, medians)", "within 0.5"], rows),
            f"\nSteps: one run {one_run} (long run {largest * spu} + branches {one_run - largest * spu}) against "
            f"{separate} for the separate runs ({sum(settings.budgets)} units): {one_run / separate:.0%}. Goal (every "
            f"branch within 0.5 points, at most 60% of the steps): {'met' if met else 'MISSED'}."]
    return "\n".join(out)


def parse_args(argv: Sequence[str] | None = None) -> tuple[Settings, str | None]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--family", choices=("convbase", "charlm", "mlp"), default=None,
                        help="ConvBase on MNIST-1D (default), the character transformer or (--wsd) the digits MLP")
    parser.add_argument("--wsd", action="store_true", help="the WSD study (charlm by default, or mlp)")
    parser.add_argument("--quick", action="store_true",
                        help="a smoke test: budgets 1 and 2 units, 1 seed, a 2-point grid (not for its numbers)")
    parser.add_argument("--output", help="folder for the JSON, CSV, markdown and PNG outputs")
    parser.add_argument("--budgets", type=int, nargs="+",
                        help="budgets in units (convbase: epochs, charlm: 32 steps; default 2 3 4 6 8 12 16 24 32)")
    parser.add_argument("--seeds", type=int, help="test seeds per policy and budget (default 5; charlm 3)")
    parser.add_argument("--tune-seeds", type=int, help="validation seeds per grid point (default 2; charlm 1)")
    parser.add_argument("--grid", type=float, nargs="+",
                        help="candidate rates (default 0.02 0.05 0.1 0.2 0.5; charlm 0.000949 ... 0.0949)")
    parser.add_argument("--policies", nargs="+", choices=POLICIES, help="policies to run (default all)")
    parser.add_argument("--workers", type=int,
                        help="worker processes (default 2; charlm and --quick 1; 1 runs in this process)")
    args = parser.parse_args(argv)
    bases = {("convbase", False): Settings(), ("convbase", True): QUICK, ("charlm", False): CHARLM,
             ("charlm", True): CHARLM_QUICK, **{(f"{f}-wsd", False): w for f, w in WSD.items()},
             ("mlp-wsd", True): WSD_QUICK, ("charlm-wsd", True): WSD_QUICK}
    key = (args.family or ("charlm" if args.wsd else "convbase")) + "-wsd" * args.wsd, args.quick
    if key not in bases:
        parser.error(f"--family {key[0].removesuffix('-wsd')} is not one of --wsd's (charlm, mlp) or needs --wsd")
    settings = bases[key]
    overrides = {name: getattr(args, name) for name in ("seeds", "tune_seeds", "workers")
                 if getattr(args, name) is not None}
    for name in ("budgets", "grid", "policies"):
        if getattr(args, name):
            overrides[name] = tuple(getattr(args, name))
    settings = replace(settings, **overrides)
    for needed in ("step", "constant") * (not args.wsd):  # the target and the speed-ups are read off these
        if needed not in settings.policies:
            settings = replace(settings, policies=(needed, *settings.policies))
    return settings, args.output


def plot(summary: dict[str, Any], settings: Settings, path: str, title: str) -> None:
    """Two panels: the median final accuracy per budget (y axis fitted to the plotted medians and the target,
    legend outside the axes), and the run and total steps to the target per policy."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = [p for p in ("constant", "step", "1cycle", "triangular2", "1cycle-auto", "triangular2-auto",
                         "1cycle-auto-guard", "prodigy", "schedulefree") if p in summary["policies"]]
    fig, (left, right) = plt.subplots(1, 2, figsize=(14, 5), gridspec_kw={"width_ratios": (1.25, 1)})
    spe, plotted = settings.steps_per_unit, [100 * summary["target"]]
    for k, policy in enumerate(shown):
        entry = summary["policies"][policy]["budgets"]
        budgets = [e for e in settings.budgets if e in entry]
        medians = [100 * entry[e]["median"] for e in budgets]
        plotted += medians
        left.plot([e * spe for e in budgets], medians, marker="o", color=f"C{k}", label=policy, lw=1.4)
    left.axhline(100 * summary["target"], color="k", ls="--", lw=0.8, label="target")
    left.set_xscale("log", base=2)
    left.set_xticks([e * spe for e in settings.budgets], [f"{e}" for e in settings.budgets])
    left.minorticks_off()
    finite = [v for v in plotted if math.isfinite(v)]
    if finite:
        pad = max(1.0, 0.05 * (max(finite) - min(finite)))
        left.set_ylim(min(finite) - pad, max(finite) + pad)
    left.set(xlabel=f"budget ({settings.unit[1]})", ylabel="median final test accuracy (%)",
             title=f"Final accuracy per budget (median of {settings.seeds} seeds)")
    left.grid(alpha=0.3)
    left.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    names = list(summary["policies"])
    xs = range(len(names))
    steps = [v for p in names for k in ("run", "total") if math.isfinite(v := summary["policies"][p][f"{k}_steps"])]
    for shift, kind, label in ((-0.2, "run", "run steps"), (0.2, "total", "total steps (with the rate search)")):
        values = [summary["policies"][p][f"{kind}_steps"] for p in names]
        right.bar([x + shift for x in xs], [v if math.isfinite(v) else 0 for v in values], 0.4, label=label)
    for x, p in zip(xs, names, strict=True):
        if not math.isfinite(summary["policies"][p]["run_steps"]):
            right.text(x, 0.03, "not reached", rotation=90, ha="center", va="bottom", fontsize=8,
                       transform=right.get_xaxis_transform())
    right.set_xticks(list(xs), names, rotation=35, ha="right", fontsize=8)
    right.set_yscale("log")
    if steps:  # the bars' feet show: the axis starts well under the shortest bar
        right.set_ylim(min(steps) / 2, max(steps) * 1.5)
    right.set(ylabel="optimizer steps to the target", title="Steps to reach the target")
    right.legend(fontsize=8, loc="lower left", bbox_to_anchor=(0.0, 1.08), ncol=2, borderaxespad=0)
    fig.suptitle(title, fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_outputs(output: str, runs: dict[tuple[str, int], list[RunResult]], summary: dict[str, Any],
                  settings: Settings, report: str, title: str) -> list[str]:
    """Writes ``settings.stem`` + .md (the report), .csv (every final accuracy) and .png into ``output``."""
    save_report(report, output, settings.stem + ".md")
    stem = os.path.join(output, settings.stem)
    with open(stem + ".csv", "w") as f:
        f.write("policy,budget,steps,rate,seed,final_test_accuracy,range_test_steps\n")
        for (policy, e), results in runs.items():
            for r in results:
                f.write(f"{policy},{e},{e * settings.steps_per_unit},{r.spec.peak if r.spec.peak else 'auto'},"
                        f"{r.spec.seed},{r.accuracy[-1]:.4f},{r.extra_steps}\n")
    plot(summary, settings, stem + ".png", title)
    return [stem + ext for ext in (".md", ".csv", ".png")]


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    settings, output = parse_args(argv)
    torch.set_num_threads(1)
    quiet_lightning()
    info, machine = machine_info(), machine_line()
    print(f"Machine: {machine}; {settings.workers} worker process(es), 1 torch thread each.")
    print(f"{settings.family}: {settings.num_train} training samples, batch {settings.batch_size} "
          f"({settings.steps_per_epoch} steps an epoch); a budget unit is {settings.steps_per_unit} steps; budgets "
          f"{list(settings.budgets)}; {settings.seeds} seeds; grid {list(settings.grid)}.")
    for policy in settings.policies:  # how each policy is driven in this family
        print(f"  {policy:17s} {(DESCRIPTIONS if settings.family == 'convbase' else CHARLM_DESCRIPTIONS)[policy]}")
    start, command = time.perf_counter(), command_line("time_to_accuracy", argv)
    ending = (f"\n\nCommand: `{command}`; test seeds 0..{settings.seeds - 1}, tuning seeds 1000.."
              f"{999 + settings.tune_seeds}. Machine: {machine}.")
    _data(settings)
    if settings.wsd:
        with tempfile.TemporaryDirectory() as folder:
            runs, branches, chosen, scores = wsd_study(settings, folder)
        report = (f"## WSD: {settings.family}\n\n" + wsd_tables(runs, branches, chosen, scores, settings)
                  + f"\n\nWall time: {time.perf_counter() - start:.0f} s." + ending)
        print("\n" + report)
        save_report(report, output, f"time_to_accuracy_wsd_{settings.family}.md")
        return {"runs": runs, "branches": branches, "chosen": chosen, "report": report}
    chosen, scores = tune(settings)
    tuned = time.perf_counter()
    runs = evaluate(settings, chosen)
    done = time.perf_counter()
    summary = summarize(runs, settings)
    report = (tables(summary, scores, chosen, settings)
              + f"\n\nWall time: {done - start:.0f} s ({tuned - start:.0f} s tuning, {done - tuned:.0f} s test runs), "
              f"{settings.workers} worker process(es)." + ending)
    print("\n" + report)
    if output:
        title = f"{command}\n{info['cpu']}, {info['cores']} cores"
        paths = write_outputs(output, runs, summary, settings, report, title)
        print("\nWrote " + ", ".join(paths))
    return {"summary": summary, "chosen": chosen, "scores": scores, "runs": runs, "settings": settings}


if __name__ == "__main__":
    main()
