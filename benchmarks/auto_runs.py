"""The runs of the "auto" bounds benchmark (``auto_bounds.py``): one family's training with one method, the
cache of their outcomes, the tuning of the 1cycle peak and the comparison runs.

Each run trains a :mod:`families` model on a plain ``pytorch_lightning.Trainer`` with its family's optimizer and
scores it on the validation (tuning) or test split; an "auto" method runs a default ``LRRangeTest()`` first and
records its curve and the bounds its schedule read.
"""

from __future__ import annotations

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
from baselines import baseline_optimizer
from bench_pool import mapped
from common import quiet_lightning, train_loader, trainer_kwargs
from families import FAMILIES, Family, family_data, loss_and_correct
from torch import nn
from typing_extensions import override

__all__ = [
    "AUTO_METHODS",
    "BASELINES",
    "CACHE",
    "GUARDED",
    "METHODS",
    "FamilyRun",
    "Outcome",
    "Spec",
    "compare",
    "drop_cached",
    "record_curves",
    "run_many",
    "run_one",
    "tune",
]

AUTO_METHODS = ("1cycle-auto", "triangular2-auto", "cosine-auto")
BASELINES = ("prodigy", "schedulefree")
METHODS = ("1cycle", *AUTO_METHODS, *BASELINES)
GUARDED = "1cycle-auto-guard"
"""1cycle "auto" with a default ``DivergenceGuard()`` (``auto_guard.py``; not in :data:`METHODS`, which the headline
table of ``auto_bounds.py`` is made of, without a guard)."""
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
        if self.method in BASELINES:
            return baseline_optimizer(self.method, params, self.total_steps, wd, adam=f.adam_family)
        if f.optimizer == "adamw":
            return torch.optim.AdamW(params, lr=1e-3, weight_decay=wd)
        if f.optimizer == "adam":
            return torch.optim.Adam(params, lr=1e-3, weight_decay=wd)
        return torch.optim.SGD(params, lr=0.01, momentum=0.9, nesterov=f.optimizer == "nesterov", weight_decay=wd)

    @override
    def on_train_start(self) -> None:
        if self.method == "schedulefree":
            self.trainer.optimizers[0].train()


@dataclass(frozen=True)
class FamilyRun:
    """A family's training set-up for one batch order: the train loader and the run's optimizer steps. Every
    benchmark of the families trains through :meth:`fit` (``auto_bounds.py``, ``knee_noise.py``, ``sgdr_warmup.py``).
    """

    family: Family
    loader: Any
    total: int

    @classmethod
    def of(cls, name: str, order: int) -> FamilyRun:
        """The family ``name`` with its training batches in the order seeded by ``order``."""
        quiet_lightning()
        family = FAMILIES[name]
        data = family_data(name)
        loader = train_loader(data.x_train, data.y_train, family.batch_size, seed=order)
        return cls(family, loader, len(loader) * family.epochs)

    def fit(self, method: str, callbacks: list[Any], init: int, **limits: Any) -> tuple[Task, pl.Trainer]:
        """Seeds with ``init``, builds the model (:class:`Task` of ``method``) and trains it with ``callbacks``, for
        the family's epochs unless ``limits`` (Trainer arguments, e.g. ``max_steps=1``) say otherwise."""
        pl.seed_everything(init, verbose=False)
        task = Task(self.family, method, self.total)
        trainer = pl.Trainer(callbacks=callbacks, **trainer_kwargs(**(limits or {"max_epochs": self.family.epochs})))
        trainer.fit(task, train_dataloaders=self.loader)
        return task, trainer


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
    if spec.method == GUARDED:
        return [test, clr.OneCycleLR(max_lr="auto"), clr.DivergenceGuard()], test
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
    run = FamilyRun.of(spec.family, spec.seed)
    callbacks, test = _callbacks(spec, run.total)
    limits = {"max_steps": 1} if spec.method == "curve" else {}
    start = time.perf_counter()
    error = None
    try:
        task, trainer = run.fit(spec.method, callbacks, spec.seed, **limits)
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
    for callback in callbacks:  # a DivergenceGuard's rollbacks (only GUARDED has one)
        if isinstance(getattr(callback, "events", None), list):
            outcome.bounds["rollbacks"] = len(callback.events)
    return outcome


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
        with mapped(run_one, todo, workers, ordered=False) as results:
            for i, outcome in enumerate(results, 1):
                done[outcome.spec.key] = outcome
                if cache:
                    with open(cache, "a") as file:
                        file.write(json.dumps(asdict(outcome)) + "\n")
                print(f"  [{i}/{len(todo)}] {outcome.spec.family} {outcome.spec.method} seed {outcome.spec.seed} "
                      f"peak {outcome.spec.peak}: {outcome.accuracy} ({outcome.seconds:.1f} s)"
                      + (f" ERROR {outcome.error[:80]}" if outcome.error else ""), flush=True)
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


def record_curves(families: Sequence[str], seeds: int, workers: int, cache: str | None) -> dict[str, Any]:
    """The default range test's curve of each family and seed (method ``"curve"``), keyed ``family/seed``."""
    specs = [Spec(f, "curve", s) for f in families for s in range(seeds)]
    return {f"{o.spec.family}/{o.spec.seed}": o.curve for o in run_many(specs, workers, cache)}
