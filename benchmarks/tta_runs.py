"""The runs of the time-to-accuracy benchmark (``time_to_accuracy.py``): what to run (:class:`Settings`), one
run of a policy at a budget (:func:`run_one`) and many of them in worker processes (:func:`run_many`).

Two families: ``convbase`` (the mnist1d paper's ConvBase, SGD momentum 0.9, a budget unit is an epoch) and
``charlm`` (:mod:`families`' causal pre-LN character transformer on pydoc text, AdamW with weight decay 0.01, a
budget unit is ``Settings.unit_steps`` optimizer steps).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import torch
from baselines import baseline_optimizer
from bench_pool import mapped
from common import (
    AccuracyTracker,
    Classifier,
    Splits,
    StepDecaySchedule,
    make_mnist1d,
    quiet_lightning,
    train_loader,
    trainer_kwargs,
)
from torch import nn
from tta_summary import AUTO_POLICIES, HAND_SET, OPTIMIZER_BASELINES, POLICIES

__all__ = [
    "CHARLM",
    "CHARLM_QUICK",
    "QUICK",
    "RunResult",
    "RunSpec",
    "Settings",
    "callbacks_for",
    "range_test_available",
    "run_many",
    "run_one",
]

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
        num_train: training samples (MNIST-1D: the rest of the 5,000 are 500 validation and the remainder test;
            charlm: the number of training windows, fixed by :mod:`families`).
        family: ``"convbase"`` or ``"charlm"``.
        unit_steps: optimizer steps in a budget unit; 0 (ConvBase) makes a unit one epoch.
    """

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
    """The family's splits, made once per process.

    Raises:
        ValueError: for an unknown family, or charlm settings whose ``num_train`` is not the data's.
    """
    key = (settings.family, settings.num_train)
    if key not in _DATA:
        if settings.family == "convbase":
            _DATA[key] = make_mnist1d(num_train=settings.num_train)
        elif settings.family == "charlm":
            from families import family_data

            data = family_data("charlm")
            if len(data.x_train) != settings.num_train:
                raise ValueError(f"Expected num_train={len(data.x_train)} for charlm, but got {settings.num_train}.")
            _DATA[key] = data
        else:
            raise ValueError(f"Expected family 'convbase' or 'charlm', but got {settings.family!r}.")
    return _DATA[key]


class CharLM(Classifier):
    """:mod:`families`' character transformer, trained with AdamW (weight decay 0.01) on next-character loss;
    ``optimizer="prodigy"`` is Prodigy(lr=1.0) with a cosine decay, ``"schedulefree"`` AdamWScheduleFree at its
    default rate with a 5% warm-up (both with the same weight decay)."""

    def __init__(self, lr: float, optimizer: str, total_steps: int) -> None:
        from families import FAMILIES

        family = FAMILIES["charlm"]  # its weight decay (0.01) too, as the auto-bounds benchmark trains it
        super().__init__(lr=lr, weight_decay=family.weight_decay, model=family.model(), optimizer=optimizer,
                         total_steps=total_steps)

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        from families import loss_and_correct

        return loss_and_correct(self.model, *batch)[0]

    def configure_optimizers(self) -> Any:
        if self.optimizer_name in ("prodigy", "schedulefree"):
            return baseline_optimizer(self.optimizer_name, self.parameters(), self.total_steps, self.weight_decay,
                                      adam=True)
        return torch.optim.AdamW(self.parameters(), lr=self.lr, weight_decay=self.weight_decay)


def _model(spec: RunSpec, settings: Settings, lr: float, total: int) -> nn.Module:
    optimizer = spec.policy if spec.policy in OPTIMIZER_BASELINES else "sgd"
    if settings.family == "charlm":
        return CharLM(lr=lr, optimizer=optimizer if optimizer != "sgd" else "adamw", total_steps=total)
    return Classifier(lr=lr, momentum=0.9, total_steps=total, optimizer=optimizer)


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

    total = spec.epochs * settings.steps_per_unit
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
    if policy in OPTIMIZER_BASELINES:
        return 1.0, []
    if policy in AUTO_POLICIES:
        if not range_test_available():
            raise ValueError(f"Policy {policy!r} needs lightning_clr.LRRangeTest, which this install lacks.")
        test = clr.LRRangeTest(plot=False, verbose=False)  # the defaults, as a new user would
        if policy == "1cycle-auto":
            return 1e-3, [test, clr.OneCycleLR(max_lr="auto")]
        if policy == "1cycle-auto-guard":  # "auto" with the guard a user adds for safety, both at their defaults
            return 1e-3, [test, clr.OneCycleLR(max_lr="auto"), clr.DivergenceGuard()]
        return 1e-3, [test, clr.CyclicLR(base_lr="auto", max_lr="auto", step_size_up=_cycle_step(total),
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
    trainer = pl.Trainer(**trainer_kwargs(**limits, callbacks=[*callbacks, tracker]))
    start = time.perf_counter()
    trainer.fit(model, train_loader(data.x_train, data.y_train, settings.batch_size, seed=spec.seed))
    wall = time.perf_counter() - start
    result = RunResult(spec, [s for s, _ in tracker.history], [a for _, a in tracker.history],
                       lrs=tracker.lrs, wall_s=wall)
    for callback in callbacks:
        if type(callback).__name__ == "LRRangeTest":
            result.extra_steps, result.bounds = _range_test_cost(callback, settings)
    if trainer.global_step != total:
        raise RuntimeError(f"{spec} took {trainer.global_step} steps, expected {total}.")
    return result


def _range_test_cost(callback: Any, settings: Settings) -> tuple[int, dict[str, float]]:
    """Optimizer steps the range test took outside the budget, and the bounds it suggested."""
    result = getattr(callback, "result", None)
    bounds = {}
    for name in ("base_lr", "max_lr", "step_size_up"):
        value = getattr(result, name, None)
        if isinstance(value, (int, float)):
            bounds[name] = float(value)
    steps = len(result.lrs) if result is not None else 0  # it may stop early
    return int(steps), bounds


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
