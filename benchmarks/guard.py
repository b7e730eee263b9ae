""":class:`lightning_clr.DivergenceGuard` over model families, cyclical policies and peaks: healthy runs must not
be touched, broken runs must be rolled back or end in a ``DivergenceError``, never die in silence.

Families (``benchmarks/families.py``'s, shorter runs; the table with batch sizes and tuned peaks is on
``docs/benchmarks/guard.md``): ``mlp`` (digits, SGD), ``convbase`` (no normalisation, SGD), ``resnet`` (BatchNorm,
Nesterov) and ``charlm`` (a transformer, AdamW).

Policies, each at ``peak`` (the tuned peak times 1, 2, 3 or 8): ``triangular``, ``triangular2`` and ``exp_range``
(``CyclicLR``, base ``peak / 10``, one cycle an epoch; ``exp_range`` with ``gamma`` halving the amplitude over the
run), ``1cycle`` (``OneCycleLR``), ``sgdr`` (``CosineRestartsLR``, a restart every epoch) and ``wsd``
(``WarmupStableDecayLR``, 10% warm-up, 20% cool-down).

Modes:

* default: every cell unguarded and guarded (``DivergenceGuard()`` with its defaults, or ``--guard-args``); each
  run records its check windows (step, scheduled rate, mean training loss: what the guard sees), its test accuracy
  and its events. A run *ends dead* if its final training loss is not finite or at least 90% of its family's
  untrained loss (the median first window at the tuned peak); *silent death* is a guarded run that ends dead
  with no ``DivergenceError`` and no warning of it.
* ``--replay``: the rule (:mod:`lightning_clr.callbacks.guard_rule`) replayed over the recorded unguarded curves,
  for candidate rules, on the choice seeds and the held-out seeds apart: false alarms on healthy runs (final
  accuracy within 5 points of the cell family's tuned median) and the broken runs it catches (ended dead or
  15 points below), with the step of the first event.
* ``--overhead``: the guard's cost per optimizer step and the tensor reads between checks.

    python -m benchmarks.guard --seeds 4 --workers 1 --output benchmarks/results
    python -m benchmarks.guard --replay --seeds 4 --output benchmarks/results
    python -m benchmarks.guard --overhead --repeats 10

The unguarded runs of every seed record the curves the rule is chosen on (``--replay``); the guarded runs are of
the held-out seeds only. Runs are cached in ``guard.csv.gz`` (gzip, appended a member at a time) in ``--output``
(key: family, policy, multiple, the guard's arguments, seed); a rerun only trains what is missing. Seeds
``0 .. seeds/2 - 1`` are the choice half, the rest the held-out half.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import math
import os
import statistics
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pytorch_lightning as pl
import torch

from benchmarks.common import (
    Classifier,
    command_line,
    finish_report,
    machine_line,
    make_mnist1d,
    mapped,
    markdown_table,
    quiet_lightning,
    save_report,
    train_loader,
    trainer_kwargs,
    worker_init,
)
from benchmarks.families import FAMILIES, family_data, loss_and_correct

csv.field_size_limit(10**8)


@dataclass(frozen=True)
class Setup:
    """A family as this benchmark trains it."""

    family: str
    optimizer: str  # "sgd", "nesterov" or "adamw"
    weight_decay: float
    batch: int
    epochs: int
    tuned: float


SETUPS = {s.family: s for s in (
    Setup("mlp", "sgd", 0.0, 32, 8, 0.1),
    Setup("convbase", "sgd", 0.0, 100, 6, 0.3),
    Setup("resnet", "nesterov", 5e-4, 100, 6, 0.18),
    Setup("charlm", "adamw", 0.01, 32, 2, 0.003),
)}
POLICIES = ("triangular", "triangular2", "exp_range", "1cycle", "sgdr", "wsd")
MULTIPLES = (1.0, 2.0, 3.0, 8.0)
FIELDS = ["family", "policy", "multiple", "guard", "seed", "accuracy", "first_loss", "final_loss", "dead",
          "gave_up", "warned_dead", "rollbacks", "rate_scale", "event_steps", "reasons", "curve", "wall_s"]
Spec = tuple[str, str, float, str, int]  # family, policy, multiple of the tuned peak, guard arguments ("": none), seed


class Model(pl.LightningModule):
    """A family's model, its loss and its optimizer (the rate is the schedule callback's)."""

    def __init__(self, setup: Setup) -> None:
        super().__init__()
        self.setup_ = setup
        self.model = FAMILIES[setup.family].model()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        return loss_and_correct(self.model, *batch)[0]

    def configure_optimizers(self) -> Any:
        s = self.setup_
        if s.optimizer == "adamw":
            return torch.optim.AdamW(self.parameters(), lr=s.tuned, weight_decay=s.weight_decay)
        return torch.optim.SGD(self.parameters(), lr=s.tuned, momentum=0.9, nesterov=s.optimizer == "nesterov",
                               weight_decay=s.weight_decay)


def schedule_callback(policy: str, peak: float, steps_per_epoch: int, total: int) -> Any:
    """The policy's schedule callback at ``peak``."""
    import lightning_clr as clr

    half = max(1, steps_per_epoch // 2)
    if policy in ("triangular", "triangular2", "exp_range"):
        gamma = 0.5 ** (1.0 / total) if policy == "exp_range" else 1.0
        return clr.CyclicLR(base_lr=peak / 10, max_lr=peak, step_size_up=half, mode=policy, gamma=gamma)
    if policy == "1cycle":
        return clr.OneCycleLR(max_lr=peak)
    if policy == "sgdr":
        return clr.CosineRestartsLR(max_lr=peak, first_cycle=f"{steps_per_epoch} steps")
    if policy == "wsd":
        return clr.WarmupStableDecayLR(max_lr=peak, warmup="10%", decay="20%")
    raise ValueError(f"Expected a policy in {POLICIES}, but got {policy!r}.")


class Recorder(pl.Callback):
    """Every step's training loss and rate (a benchmark may sync), read into check windows at the end."""

    def __init__(self) -> None:
        self.losses: list[float] = []
        self.rates: list[float] = []

    def on_before_optimizer_step(self, trainer: Any, pl_module: Any, optimizer: Any) -> None:
        self.rates.append(float(optimizer.param_groups[0]["lr"]))

    def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        self.losses.append(float(loss))

    def windows(self, every: int = 10) -> list[list[float]]:
        """``[step, rate of the step after the check, mean loss]`` per window of ``every`` steps."""
        out = []
        for end in range(every, len(self.losses) + 1, every):
            rate = self.rates[end] if end < len(self.rates) else self.rates[-1]
            out.append([end, rate, sum(self.losses[end - every:end]) / every])
        return out


def _accuracy(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    model.eval()
    with torch.no_grad():
        _, correct = loss_and_correct(model, x, y)
    model.train()
    return float(correct) / y.numel()


def run_one(spec: Spec) -> dict[str, Any]:
    """Trains one cell's run; returns one CSV row."""
    import lightning_clr as clr

    family, policy, multiple, args, seed = spec
    setup, data = SETUPS[family], family_data(family)
    steps_per_epoch = math.ceil(len(data.x_train) / setup.batch)
    pl.seed_everything(seed, verbose=False)
    model, recorder = Model(setup), Recorder()
    guard = clr.DivergenceGuard(on_failure="warn", **json.loads(args)) if args else None
    callbacks = [schedule_callback(policy, setup.tuned * multiple, steps_per_epoch, steps_per_epoch * setup.epochs),
                 recorder, *([guard] if guard else [])]
    trainer = pl.Trainer(**trainer_kwargs(max_epochs=setup.epochs, callbacks=callbacks))
    start, gave_up, warned_dead = time.perf_counter(), False, False
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            trainer.fit(model, train_loader(data.x_train, data.y_train, setup.batch, seed=seed))
        except Exception as error:  # the guard gives up with a DivergenceError
            if type(error).__name__ != "DivergenceError":
                raise
            gave_up = True
    gave_up = gave_up or any("gives up" in str(w.message) for w in caught)
    # 1: told as an error would be (on_failure="raise" raises); 2: told by a warning alone (a loss that never fell
    # and never broke: the guard cannot tell it from a model trained before the fit)
    messages = [str(w.message) for w in caught]
    warned_dead = (1 if any("DivergenceGuard: the fit ended at step" in m and "not a trained model" in m
                            for m in messages) else
                   2 if any("falls at no rate tried" in m or "never learned: either" in m for m in messages) else 0)
    with torch.no_grad():
        final_loss = float(loss_and_correct(model.model, data.x_train[:2000], data.y_train[:2000])[0])
    curve = recorder.windows()
    first = curve[0][2] if curve else float("nan")
    events = guard.events if guard else []
    return {"family": family, "policy": policy, "multiple": multiple, "guard": args, "seed": seed,
            "accuracy": _accuracy(model.model, data.x_test, data.y_test), "first_loss": first,
            "final_loss": final_loss, "dead": int(not math.isfinite(final_loss) or final_loss > 0.9 * first),
            "gave_up": int(gave_up), "warned_dead": warned_dead, "rollbacks": len(events),
            "rate_scale": guard.rate_scale if guard else 1.0, "event_steps": json.dumps([e["step"] for e in events]),
            "reasons": json.dumps([e["reason"] for e in events]), "curve": json.dumps(curve),
            "wall_s": time.perf_counter() - start}


def _key(row: dict[str, Any]) -> tuple[str, str, float, str, int]:
    return row["family"], row["policy"], float(row["multiple"]), row["guard"] or "", int(row["seed"])


def _open(cache: str, mode: str) -> Any:
    """The run cache: a CSV file, gzip-compressed if its name ends in ``.gz`` (an append adds a gzip member)."""
    return gzip.open(cache, mode, newline="") if cache.endswith(".gz") else open(cache, mode, newline="")


def run_all(specs: list[Spec], cache: str, workers: int) -> list[dict[str, Any]]:
    """Runs the specs not in ``cache`` (in ``workers`` processes), appends them to it, returns all their rows."""
    rows: dict[tuple, dict[str, Any]] = {}
    if os.path.exists(cache):
        with _open(cache, "rt") as handle:
            rows = {_key(r): r for r in csv.DictReader(handle)}
    todo = [s for s in specs if _key(dict(zip(("family", "policy", "multiple", "guard", "seed"), s,
                                              strict=True))) not in rows]
    if todo:
        print(f"running {len(todo)} runs ({len(specs) - len(todo)} cached) in {workers} process(es)", flush=True)
        start, fresh = time.perf_counter(), not os.path.exists(cache)
        with _open(cache, "at") as handle, mapped(run_one, todo, workers, ordered=False) as results:
            writer = csv.DictWriter(handle, FIELDS)
            if fresh:
                writer.writeheader()
            for done, row in enumerate(results, 1):
                writer.writerow(row)
                handle.flush()
                rows[_key(row)] = {k: str(v) for k, v in row.items()}
                if done % 20 == 0 or done == len(todo):
                    print(f"  {done}/{len(todo)} runs, {time.perf_counter() - start:.0f} s", flush=True)
    return [rows[_key(dict(zip(("family", "policy", "multiple", "guard", "seed"), s, strict=True)))]
            for s in specs]


# ---------------------------------------------------------------------------------------------- the report
def mark_dead(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Sets each row's ``dead``: its final training loss not finite, or at least 90% of its family's untrained loss
    (the median first-window loss of the family's unguarded runs at the tuned peak)."""
    firsts: dict[str, list[float]] = {}
    for r in rows:
        if not r["guard"] and float(r["multiple"]) == 1.0:
            firsts.setdefault(r["family"], []).append(float(r["first_loss"]))
    untrained = {f: statistics.median(v) for f, v in firsts.items()}
    for r in rows:
        final = float(r["final_loss"])
        r["dead"] = str(int(not math.isfinite(final) or final >= 0.9 * untrained.get(r["family"], math.inf)))
    return rows


def _tuned_medians(rows: list[dict[str, Any]]) -> dict[tuple[str, str], float]:
    """The unguarded median accuracy at the tuned peak, per (family, policy)."""
    out: dict[tuple[str, str], list[float]] = {}
    for r in rows:
        if not r["guard"] and float(r["multiple"]) == 1.0:
            out.setdefault((r["family"], r["policy"]), []).append(100 * float(r["accuracy"]))
    return {k: statistics.median(v) for k, v in out.items()}


def report(rows: list[dict[str, Any]], seeds: str) -> str:
    """Per family and multiple (policies pooled) and per policy: events at the tuned peak, dead runs and how they
    ended, and the median accuracy guarded and not against the tuned peak's."""
    tuned = _tuned_medians(rows)
    table = []
    for family in dict.fromkeys(r["family"] for r in rows):
        for multiple in sorted({float(r["multiple"]) for r in rows}):
            for policy in dict.fromkeys(r["policy"] for r in rows):
                cell = [r for r in rows if r["family"] == family and float(r["multiple"]) == multiple
                        and r["policy"] == policy]
                plain = [r for r in cell if not r["guard"]]
                guarded = [r for r in cell if r["guard"]]
                if not plain or not guarded:
                    continue
                base = tuned.get((family, policy), float("nan"))
                med_plain = statistics.median(100 * float(r["accuracy"]) for r in plain)
                med_guard = statistics.median(100 * float(r["accuracy"]) for r in guarded)
                dead = [r for r in guarded if int(r["dead"])]
                silent = [r for r in dead if not int(r["gave_up"]) and not int(r["warned_dead"])]
                table.append([family, f"{multiple:g}x", policy, f"{sum(int(r['dead']) for r in plain)}/{len(plain)}",
                              f"{sum(int(r['rollbacks']) > 0 for r in guarded)}/{len(guarded)}",
                              f"{len(dead)} ({len(dead) - len(silent)} told)", len(silent),
                              f"{med_plain:.1f} ({med_plain - base:+.1f})",
                              f"{med_guard:.1f} ({med_guard - base:+.1f})"])
    return (f"Seeds {seeds} per cell. dead = final training loss at least 90% of the family's untrained loss "
            "(or not finite); "
            "told = the guard raised DivergenceError (here: warned, on_failure='warn') or warned that the run ended "
            "back near its untrained loss or that its loss fell at no rate tried; silent = dead and not told. "
            "Accuracy: test %, median, in brackets against the unguarded median of the same family and policy at "
            "the tuned peak.\n\n"
            + markdown_table(["family", "peak", "policy", "dead unguarded", "runs with an event",
                              "dead guarded", "silent", "unguarded median", "guarded median"], table))


def summary(rows: list[dict[str, Any]]) -> str:
    """The goals, per family and multiple, policies pooled."""
    tuned = _tuned_medians(rows)
    table = []
    for family in dict.fromkeys(r["family"] for r in rows):
        base = statistics.median(v for (f, _), v in tuned.items() if f == family)
        for multiple in sorted({float(r["multiple"]) for r in rows}):
            guarded = [r for r in rows if r["family"] == family and float(r["multiple"]) == multiple and r["guard"]]
            plain = [r for r in rows if r["family"] == family and float(r["multiple"]) == multiple and not r["guard"]]
            if not guarded:
                continue
            events = sum(int(r["rollbacks"]) > 0 or int(r["gave_up"]) for r in guarded)
            silent = sum(int(r["dead"]) and not int(r["gave_up"]) and not int(r["warned_dead"]) for r in guarded)
            warned = sum(int(r["dead"]) and not int(r["gave_up"]) and int(r["warned_dead"]) == 2 for r in guarded)
            med_g = statistics.median(100 * float(r["accuracy"]) for r in guarded)
            med_p = statistics.median(100 * float(r["accuracy"]) for r in plain) if plain else float("nan")
            table.append([family, f"{multiple:g}x", len(guarded), events, sum(int(r["dead"]) for r in plain),
                          sum(int(r["dead"]) for r in guarded), warned, silent,
                          f"{med_p:.1f} ({med_p - base:+.1f})", f"{med_g:.1f} ({med_g - base:+.1f})"])
    return markdown_table(["family", "peak", "guarded runs", "with an event", "dead unguarded", "dead guarded",
                           "of them only warned", "silent deaths", "unguarded median", "guarded median (vs tuned)"],
                          table)


# ---------------------------------------------------------------------------------------------- --replay
def replay(curve: list[list[float]], **rule: Any) -> tuple[str | None, int | None]:
    """The rule over a recorded curve: the first event and its step (``(None, None)``: no event)."""
    from lightning_clr.callbacks.guard_rule import LossMonitor

    monitor = LossMonitor(**rule)
    for step, rate, mean in curve:
        event = monitor.observe(mean, rate)
        if event is not None:
            return event, int(step)
    return monitor.at_end(), None  # the fit's end


def replay_table(rows: list[dict[str, Any]], rules: dict[str, dict[str, Any]], seeds: list[int]) -> str:
    """For each candidate rule over the unguarded curves of ``seeds``: events at the tuned peak, false alarms on
    healthy runs (within 5 points of the tuned median), broken runs (dead, or 15 points under) caught by an event
    in the run or told at its end, and neither (mostly runs hurt but not dead, which the rule leaves alone)."""
    tuned = _tuned_medians(rows)
    table = []
    plain = [r for r in rows if not r["guard"] and int(r["seed"]) in seeds]
    for name, rule in rules.items():
        healthy = broken = alarms = caught = at_end = tuned_runs = tuned_alarms = 0
        where: dict[str, int] = {}
        for r in plain:
            base = tuned[(r["family"], r["policy"])]
            acc = 100 * float(r["accuracy"])
            event, step = replay(json.loads(r["curve"]), **rule)
            if float(r["multiple"]) == 1.0:
                tuned_runs += 1
                tuned_alarms += event is not None
            if int(r["dead"]) or acc < base - 15:
                broken += 1
                caught += event is not None and step is not None
                at_end += event is not None and step is None
            elif acc >= base - 5:
                healthy += 1
                alarms += event is not None
                if event is not None:
                    key = f"{r['family']}/{r['policy']}/{float(r['multiple']):g}x"
                    where[key] = where.get(key, 0) + 1
        table.append([name, f"{tuned_alarms}/{tuned_runs}", f"{alarms}/{healthy}", f"{caught}/{broken}",
                      f"{at_end}/{broken}", f"{broken - caught - at_end}/{broken}",
                      ", ".join(f"{k} {v}" for k, v in sorted(where.items())) or "–"])
    return markdown_table(["rule", "events at the tuned peak", "false alarms (healthy runs)",
                           "broken runs caught in the run", "told at the end", "neither", "false alarms in"], table)


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
                                          callbacks=[clr.OneCycleLR(max_lr=0.2), guard, timer]))
    trainer.fit(Classifier(momentum=0.9), train_loader(data.x_train, data.y_train, 64, seed=0))
    return timer.us


SYNCS = ("item", "tolist", "__bool__", "__float__", "__int__", "numpy")


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


# ---------------------------------------------------------------------------------------------- main
_OLD = dict(factor=1.2, patience=2, smoothing=0.8, memory=20, stall_patience=3, stall_min_delta=0.01)
#: the rules compared on the recorded curves (``LossMonitor`` arguments); "chosen" is DivergenceGuard()'s default
CANDIDATES: dict[str, dict[str, Any]] = {
    "old (spike + stall)": _OLD,
    "old + relapse": {**_OLD, "relapse_share": 0.25},
    "rate-aware, fall 0.9, + relapse": {**_OLD, "rate_aware": True, "fall_ratio": 0.9, "relapse_share": 0.25},
    "rate-aware, fall 0.95, + relapse": {**_OLD, "rate_aware": True, "fall_ratio": 0.95, "relapse_share": 0.25},
    "rate-aware, fall 0.8, + relapse": {**_OLD, "rate_aware": True, "fall_ratio": 0.8, "relapse_share": 0.25},
    "rate-aware, f 1.5, + relapse (chosen)": {**_OLD, "factor": 1.5, "rate_aware": True, "relapse_share": 0.25},
    "rate-aware, patience 3, + relapse": {**_OLD, "patience": 3, "rate_aware": True, "relapse_share": 0.25},
    "rate-aware, no stall, + relapse": {**_OLD, "stall_patience": 0, "rate_aware": True, "relapse_share": 0.25},
    "rate-aware, + relapse 0.4": {**_OLD, "rate_aware": True, "relapse_share": 0.4},
    "rate-aware, + relapse, learned 0.6": {**_OLD, "rate_aware": True, "relapse_share": 0.25,
                                           "learned_fraction": 0.6},
    "relapse only": {**_OLD, "factor": 1e9, "stall_patience": 0, "relapse_share": 0.25},
}


def main(argv: Sequence[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=4, help="seeds a cell; the first half choose, the rest report")
    parser.add_argument("--families", default=",".join(SETUPS))
    parser.add_argument("--policies", default=",".join(POLICIES))
    parser.add_argument("--multiples", default=",".join(f"{m:g}" for m in MULTIPLES))
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--guard-args", default="{}", metavar="JSON", help="the guard's arguments, a JSON object")
    parser.add_argument("--unguarded-only", action="store_true", help="record the unguarded curves only")
    parser.add_argument("--replay", action="store_true", help="replay candidate rules over the recorded curves")
    parser.add_argument("--overhead", action="store_true", help="measure the guard's cost instead")
    parser.add_argument("--repeats", type=int, default=10, help="--overhead: interleaved pairs of fits")
    parser.add_argument("--steps", type=int, default=400, help="--overhead: timed steps a fit")
    parser.add_argument("--output", default=None, help="folder for the run cache and the report")
    parser.add_argument("--name", default="guard",
                        help="the report's file name (without .md); the cache is guard.csv.gz")
    args = parser.parse_args(argv)
    worker_init()
    if args.overhead:
        return finish_report(overhead(args.repeats, args.steps), "guard_overhead", argv, args.output, command="guard")
    quiet_lightning()
    guard_args = json.dumps(json.loads(args.guard_args), sort_keys=True)
    variants = [""] if args.unguarded_only or args.replay else ["", guard_args]
    seeds = list(range(args.seeds))
    choice, held = seeds[: len(seeds) // 2], seeds[len(seeds) // 2:]
    specs: list[Spec] = [(f, p, float(m), g, s) for f in args.families.split(",") for p in args.policies.split(",")
                         for m in args.multiples.split(",") for g in variants for s in seeds
                         if not g or s in held]  # the guarded runs: held-out seeds only
    os.makedirs(args.output or ".", exist_ok=True)
    rows = mark_dead(run_all(specs, os.path.join(args.output or ".", "guard.csv.gz"),
                             1 if args.replay else args.workers))
    if args.replay:
        text = "\n\n".join(f"Seeds {name} ({', '.join(map(str, s))}):\n\n" + replay_table(rows, CANDIDATES, s)
                           for name, s in (("chosen on", choice), ("held out", held)))
        text += f"\n\nCommand: `{command_line('guard', argv)}`. Machine: {machine_line()}."
        print(text)
        save_report(text, args.output, "guard_replay.md")
        return text
    text = "\n\n".join([
        "Goals per family and peak (the six policies pooled), held-out seeds "
        f"{', '.join(map(str, held))}:", summary([r for r in rows if int(r["seed"]) in held]),
        "Per policy, held-out seeds:", report([r for r in rows if int(r["seed"]) in held],
                                              ", ".join(map(str, held)))])
    text += (f"\n\n{len(rows)} runs, {sum(float(r['wall_s']) for r in rows) / 60:.0f} min of fit time when run "
             f"(cached runs are not run again), {args.workers} worker process(es), 1 torch thread each.")
    text += f"\n\nCommand: `{command_line('guard', argv)}`. Machine: {machine_line()}."
    print(text)
    save_report(text, args.output, args.name + ".md")
    return text


if __name__ == "__main__":
    main()
