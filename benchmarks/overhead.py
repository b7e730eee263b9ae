"""Per-step overhead: what does a lightning_clr callback cost per optimizer step, next to torch's schedulers?

Trains a tiny MLP (5 linear layers of width 8, so the step itself is cheap and a scheduler's cost shows)
for ``--steps`` optimizer steps per run on a real ``pytorch_lightning.Trainer``, in one process, and times
each run in microseconds per optimizer step of this process's CPU time (``--clock wall`` for wall time).

**Method (paired).** The machine is shared and noisy, so variants are never compared across time: in each
round, for each param-group count, every variant runs once between two runs of the reference (an empty
``Callback``), ``E V1 E V2 E ... Vn E``, in an order rotated from round to round; a variant's cost in that
round is its time minus the mean of the two reference runs beside it. The report gives, over ``--rounds``
rounds, the median of these paired differences and their interquartile range. Every run has exactly one
extra callback (torch's schedulers run with an empty ``Callback`` too), so Lightning's cost of dispatching
hooks cancels and the difference is the scheduling work alone. Variants:

* ``clr.CyclicLR`` / ``clr.OneCycleLR`` / ``clr.CosineRestartsLR``: the lightning_clr callbacks (with their
  default momentum cycling where they have one);
* ``torch CyclicLR`` / ``torch OneCycleLR``: torch's schedulers returned from ``configure_optimizers`` with
  ``interval="step"`` (they cycle the momentum too);

each with the parameters in 1 and in 10 param groups. The goals (issue 9): at most 3 µs above the empty
``Callback`` with one group, and no more than torch's scheduler with 1 and with 10 groups.

The same comparison runs in a plain PyTorch loop (``scheduler.step()`` against writing a lightning_clr
schedule's value into ``param_groups`` by hand; medians over interleaved repeats minus the ``none`` median),
and one optimizer step of the MNIST-1D ConvBase model of ``time_to_accuracy.py`` (batch 64) is timed to
put the costs in proportion.

    python benchmarks/overhead.py --output benchmarks/results   # the default: 12 rounds, about 15 minutes
    python benchmarks/overhead.py --quick                        # a few seconds (smoke test)
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

_HERE = os.path.dirname(os.path.abspath(__file__))
if _HERE not in sys.path:  # make `common` importable
    sys.path.insert(0, _HERE)

import pytorch_lightning as pl  # noqa: E402
import torch  # noqa: E402
from common import Classifier, machine_info, make_mnist1d, markdown_table, quiet_lightning, trainer_kwargs  # noqa: E402
from torch import nn  # noqa: E402
from torch.utils.data import DataLoader, TensorDataset  # noqa: E402
from typing_extensions import override  # noqa: E402

__all__ = [
    "LOOP_VARIANTS",
    "VARIANTS",
    "Settings",
    "main",
    "measure_loop",
    "measure_trainer",
    "mnist1d_step_us",
    "run",
]

BASE_LR, MAX_LR = 0.001, 0.01


@dataclass(frozen=True)
class Settings:
    """What to measure.

    Attributes:
        steps: optimizer steps per timed run.
        warmup: steps at the start of each run left out of the timing.
        repeats: interleaved repeats; the report gives medians.
        groups: the param-group counts to measure.
        loop_steps: steps per run of the plain PyTorch loop.
        mnist_steps: steps timed for the MNIST-1D model.
        rounds: rounds of the paired Trainer measurement (each runs every variant between two references).
    """

    steps: int = 2000
    warmup: int = 100
    repeats: int = 5
    groups: tuple[int, ...] = (1, 10)
    loop_steps: int = 2000
    mnist_steps: int = 600
    rounds: int = 12


QUICK = Settings(steps=150, warmup=20, repeats=2, loop_steps=300, mnist_steps=60, rounds=2)
_MNIST_DATA: list[Any] = []


class TinyMLP(nn.Module):
    """Five linear layers of width 8: ten parameter tensors, a step of a few tens of microseconds."""

    def __init__(self) -> None:
        super().__init__()
        self.layers = nn.Sequential(*[nn.Linear(8, 8) for _ in range(5)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class _Regression(pl.LightningModule):
    def __init__(self, groups: int, scheduler: Callable[[torch.optim.Optimizer], Any] | None = None) -> None:
        super().__init__()
        self.net = TinyMLP()
        self.groups = groups
        self.scheduler_factory = scheduler

    @override
    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        return self.net(batch[0]).pow(2).mean()

    @override
    def configure_optimizers(self) -> Any:
        optimizer = torch.optim.SGD(_param_groups(self.net, self.groups), lr=BASE_LR, momentum=0.9)
        if self.scheduler_factory is None:
            return optimizer
        return {"optimizer": optimizer,
                "lr_scheduler": {"scheduler": self.scheduler_factory(optimizer), "interval": "step"}}


def _param_groups(net: nn.Module, groups: int) -> Any:
    params = list(net.parameters())
    if groups == 1:
        return params
    if len(params) % groups:
        raise ValueError(f"Expected groups to divide the {len(params)} parameter tensors, but got {groups}.")
    size = len(params) // groups
    return [{"params": params[i:i + size]} for i in range(0, len(params), size)]


#: The clock of the measurements: this process's CPU time (other processes sharing the cores do not
#: count) or wall time. Set by ``--clock``.
CLOCKS: dict[str, Callable[[], float]] = {"cpu": time.process_time, "wall": time.perf_counter}
_clock: list[Callable[[], float]] = [time.process_time]


def _now() -> float:
    return _clock[0]()


class _StepTimer(pl.Callback):
    """Time from the start of optimizer step ``warmup`` (0-based) to the end of training."""

    def __init__(self, warmup: int) -> None:
        self.warmup = warmup
        self.start: float | None = None
        self.end = 0.0

    @override
    def on_train_batch_start(self, trainer: Any, pl_module: Any, batch: Any, batch_idx: int) -> None:
        if self.start is None and trainer.global_step == self.warmup:
            self.start = _now()

    @override
    def on_train_end(self, trainer: Any, pl_module: Any) -> None:
        self.end = _now()

    def per_step_us(self, steps: int) -> float:
        """Microseconds per step over the ``steps - warmup`` timed steps."""
        if self.start is None:
            raise RuntimeError(f"The timer never started: the run took fewer than {self.warmup + 1} steps.")
        return (self.end - self.start) / (steps - self.warmup) * 1e6


class EmptyCallback(pl.Callback):
    """Overrides nothing: what Lightning's hook dispatch costs for one more callback."""


@dataclass(frozen=True)
class _Factory:
    kind: str
    total: int

    def __call__(self, optimizer: torch.optim.Optimizer) -> Any:
        if self.kind == "cyclic":
            return torch.optim.lr_scheduler.CyclicLR(optimizer, base_lr=BASE_LR, max_lr=MAX_LR,
                                                     step_size_up=self.total // 8)
        return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=MAX_LR, total_steps=self.total)


def _variant(name: str, total: int) -> tuple[list[Any], Callable[[torch.optim.Optimizer], Any] | None]:
    import lightning_clr as clr

    if name == "none":
        return [], None
    if name == "empty Callback":
        return [EmptyCallback()], None
    if name == "clr.CyclicLR":
        return [clr.CyclicLR(base_lr=BASE_LR, max_lr=MAX_LR, step_size_up=total // 8)], None
    if name == "clr.OneCycleLR":
        return [clr.OneCycleLR(max_lr=MAX_LR, total_steps=total)], None
    if name == "clr.CosineRestartsLR":
        return [clr.CosineRestartsLR(max_lr=MAX_LR, first_cycle=total // 8, t_mul=2.0)], None
    if name == "torch CyclicLR":
        return [], _Factory("cyclic", total)
    if name == "torch OneCycleLR":
        return [], _Factory("onecycle", total)
    raise ValueError(f"Expected a variant in {VARIANTS}, but got {name!r}.")


VARIANTS = ("none", "empty Callback", "clr.CyclicLR", "clr.OneCycleLR", "clr.CosineRestartsLR",
            "torch CyclicLR", "torch OneCycleLR")
LOOP_VARIANTS = ("none", "clr CyclicSchedule by hand", "clr OneCycleSchedule by hand",
                 "torch CyclicLR.step()", "torch OneCycleLR.step()")


def measure_trainer(variant: str, groups: int, settings: Settings, paired: bool = False) -> float:
    """Microseconds per optimizer step of one Trainer run of ``variant``; ``paired`` gives a variant without a
    callback of its own (torch's schedulers, ``none``) an empty ``Callback``, as the reference has."""
    callbacks, scheduler = _variant(variant, settings.steps)
    if paired and not callbacks:
        callbacks = [EmptyCallback()]
    timer = _StepTimer(settings.warmup)
    torch.manual_seed(0)
    model = _Regression(groups, scheduler)
    data = torch.randn(settings.steps * 16, 8, generator=torch.Generator().manual_seed(0))
    loader = DataLoader(TensorDataset(data), batch_size=16, shuffle=False, num_workers=0)
    trainer = pl.Trainer(**trainer_kwargs(max_steps=settings.steps, max_epochs=1,
                                          callbacks=[*callbacks, timer]))
    gc.collect()
    trainer.fit(model, loader)
    if trainer.global_step != settings.steps:
        raise RuntimeError(f"{variant}: {trainer.global_step} steps, expected {settings.steps}.")
    return timer.per_step_us(settings.steps)


def _writer(schedule_lr: Any, schedule_momentum: Any) -> Callable[[torch.optim.Optimizer, int], None]:
    def write(optimizer: torch.optim.Optimizer, step: int) -> None:
        lr, momentum = schedule_lr(step), schedule_momentum(step)
        for group in optimizer.param_groups:
            group["lr"] = lr
            group["momentum"] = momentum

    return write


def measure_loop(variant: str, groups: int, settings: Settings) -> float:
    """Microseconds per step of a plain PyTorch loop with ``variant``'s scheduling."""
    from lightning_clr.schedules import CyclicSchedule, OneCycleSchedule

    n = settings.loop_steps
    torch.manual_seed(0)
    net = TinyMLP()
    optimizer = torch.optim.SGD(_param_groups(net, groups), lr=BASE_LR, momentum=0.9)
    x = torch.randn(16, 8, generator=torch.Generator().manual_seed(0))
    scheduler: Any = None
    write: Callable[[torch.optim.Optimizer, int], None] | None = None
    if variant == "torch CyclicLR.step()":
        scheduler = torch.optim.lr_scheduler.CyclicLR(optimizer, base_lr=BASE_LR, max_lr=MAX_LR, step_size_up=n // 8)
    elif variant == "torch OneCycleLR.step()":
        scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=MAX_LR, total_steps=n + 1)
    elif variant == "clr CyclicSchedule by hand":
        write = _writer(CyclicSchedule(BASE_LR, MAX_LR, n // 8), CyclicSchedule(0.9, 0.8, n // 8))
    elif variant == "clr OneCycleSchedule by hand":
        write = _writer(OneCycleSchedule(MAX_LR / 25, MAX_LR, MAX_LR / 25e4, n),
                        OneCycleSchedule(0.95, 0.85, 0.95, n))
    elif variant != "none":
        raise ValueError(f"Expected a variant in {LOOP_VARIANTS}, but got {variant!r}.")
    gc.collect()
    start = 0.0
    for step in range(n):
        if step == n // 10:
            start = _now()
        if write is not None:
            write(optimizer, step)
        optimizer.zero_grad()
        net(x).pow(2).mean().backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
    return (_now() - start) / (n - n // 10) * 1e6


def mnist1d_step_us(settings: Settings) -> float:
    """Microseconds per optimizer step of the MNIST-1D ConvBase (batch 64, SGD, no scheduler) in a Trainer."""
    if not _MNIST_DATA:
        _MNIST_DATA.append(make_mnist1d())
    data = _MNIST_DATA[0]
    timer = _StepTimer(settings.mnist_steps // 6)
    pl.seed_everything(0, verbose=False)
    loader = DataLoader(TensorDataset(data.x_train, data.y_train), batch_size=64, shuffle=True, num_workers=0)
    trainer = pl.Trainer(**trainer_kwargs(max_steps=settings.mnist_steps, callbacks=[timer]))
    trainer.fit(Classifier(lr=0.05), loader)
    if trainer.global_step != settings.mnist_steps:
        raise RuntimeError(f"MNIST-1D: {trainer.global_step} steps, expected {settings.mnist_steps}.")
    return timer.per_step_us(settings.mnist_steps)


def _interleaved(names: Sequence[str], groups: Sequence[int], repeats: int,
                 measure: Callable[[str, int], float],
                 warm_up: Callable[[str, int], float]) -> dict[tuple[str, int], list[float]]:
    cells = [(n, g) for g in groups for n in names]
    for cell in cells:  # first-call costs (imports, allocator) stay out of the numbers
        warm_up(*cell)
    times: dict[tuple[str, int], list[float]] = {c: [] for c in cells}
    for r in range(repeats):
        shift = r % len(cells)
        for cell in cells[shift:] + cells[:shift]:
            times[cell].append(measure(*cell))
    return times


METHOD = ("Method: in each round, for each param-group count, every variant runs once between two runs of "
          "an empty Callback (the reference), in an order rotated from round to round; its cost in the round is "
          "its µs/step minus the mean of those two. Every run has one extra callback (torch's schedulers run "
          "with an empty Callback too), so Lightning's hook dispatch cancels. Reported: the median over the "
          "rounds and the interquartile range.")
REFERENCE = "empty Callback"
PAIRED_VARIANTS = ("clr.CyclicLR", "clr.OneCycleLR", "clr.CosineRestartsLR", "torch CyclicLR", "torch OneCycleLR")
#: lightning_clr's callback and the torch scheduler it replaces.
PAIRS = (("clr.CyclicLR", "torch CyclicLR"), ("clr.OneCycleLR", "torch OneCycleLR"))
GOAL_ABOVE_EMPTY_US = 3.0


def measure_paired(settings: Settings,
                   measure: Callable[[str, int, bool], float] | None = None) -> dict[str, Any]:
    """The paired measurement (see the module docstring): per ``(variant, groups)``, the list over rounds of
    the variant's time minus the mean of the two reference runs beside it, and the reference's own times."""
    run_one = measure or (lambda v, g, paired: measure_trainer(v, g, settings, paired))
    short = replace(settings, steps=min(settings.steps, 4 * settings.warmup))
    if measure is None:
        for g in settings.groups:  # first-call costs (imports, allocator) stay out of the numbers
            for v in (REFERENCE, *PAIRED_VARIANTS):
                measure_trainer(v, g, short, True)
    differences: dict[tuple[str, int], list[float]] = {(v, g): [] for g in settings.groups for v in PAIRED_VARIANTS}
    reference: dict[int, list[float]] = {g: [] for g in settings.groups}
    for r in range(settings.rounds):
        shift = r % len(PAIRED_VARIANTS)
        order = PAIRED_VARIANTS[shift:] + PAIRED_VARIANTS[:shift]
        for g in settings.groups:
            before = run_one(REFERENCE, g, True)
            reference[g].append(before)
            for variant in order:
                value = run_one(variant, g, True)
                after = run_one(REFERENCE, g, True)
                reference[g].append(after)
                differences[(variant, g)].append(value - (before + after) / 2)
                before = after
    return {"differences": differences, "reference": reference}


def _quartiles(values: Sequence[float]) -> tuple[float, float, float]:
    if len(values) < 2:
        return values[0], values[0], values[0]
    q1, q2, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return q1, q2, q3


def paired_report(paired: dict[str, Any], settings: Settings, title: str = "") -> str:
    """The paired tables: each variant's cost, and lightning_clr against the goals."""
    differences, reference = paired["differences"], paired["reference"]
    groups = settings.groups
    title = title or (f"Lightning Trainer, tiny MLP, {settings.steps} steps per run, {settings.rounds} rounds: each "
                      "variant between two runs of an empty Callback; cost = its µs/step minus their mean; median "
                      "[interquartile range] of the rounds.")
    out = ["\n" + title + "\n"]
    headers = ["variant"] + [f"cost, µs/step ({g} group{'s' if g > 1 else ''})" for g in groups]
    rows = [[f"{REFERENCE} (reference, absolute µs/step)"]
            + [f"{statistics.median(reference[g]):.1f}" for g in groups]]
    for variant in PAIRED_VARIANTS:
        row = [variant]
        for g in groups:
            q1, q2, q3 = _quartiles(differences[(variant, g)])
            row.append(f"{q2:+.2f} [{q1:+.2f}, {q3:+.2f}]")
        rows.append(row)
    out.append(markdown_table(headers, rows))
    rows = []
    for mine, theirs in PAIRS:
        for g in groups:
            cost = statistics.median(differences[(mine, g)])
            torch_cost = statistics.median(differences[(theirs, g)])
            # Per round: both runs sit between references of the same round, so their difference is paired too.
            gap = statistics.median(a - b for a, b in zip(differences[(mine, g)], differences[(theirs, g)],
                                                          strict=True))
            goals = [f"≤ torch: {'met' if gap <= 0 else 'MISSED'}"]
            if g == 1:
                goals.insert(0, f"≤ {GOAL_ABOVE_EMPTY_US:g} µs: {'met' if cost <= GOAL_ABOVE_EMPTY_US else 'MISSED'}")
            rows.append([f"{mine} vs {theirs}", g, f"{cost:+.2f}", f"{torch_cost:+.2f}", f"{gap:+.2f}",
                         "; ".join(goals)])
    out.append("")
    out.append(markdown_table(["lightning_clr vs torch", "groups", "lightning_clr µs/step", "torch µs/step",
                               "lightning_clr − torch (paired median)", "goals"], rows))
    for variant in PAIRED_VARIANTS[2:3]:
        for g in groups:
            cost = statistics.median(differences[(variant, g)])
            if g == 1:
                out.append(f"\n{variant} (no torch counterpart with momentum): {cost:+.2f} µs/step with 1 group, "
                           f"goal ≤ {GOAL_ABOVE_EMPTY_US:g} µs: {'met' if cost <= GOAL_ABOVE_EMPTY_US else 'MISSED'}.")
    return "\n".join(out)


def _fitted(variant: str, groups: int) -> tuple[Any, Any, Any]:
    """A Trainer after a 3-step fit of ``variant`` (torch's OneCycleLR with room for many more steps)."""
    callbacks, scheduler = _variant(variant, 10**7)
    model = _Regression(groups, scheduler)
    data = torch.randn(16 * 3, 8, generator=torch.Generator().manual_seed(0))
    trainer = pl.Trainer(**trainer_kwargs(max_steps=3, max_epochs=1, callbacks=[*callbacks, EmptyCallback()]))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*longer than the whole fit")  # 3 steps, on purpose
        trainer.fit(model, DataLoader(TensorDataset(data), batch_size=16))
    return trainer, model, callbacks[0] if callbacks else trainer.callbacks[-1]


def _per_step(variant: str, trainer: Any, model: Any, callback: Any) -> Callable[[int], None]:
    """One optimizer step's scheduling work: a callback's three per-step hooks (its write forced, as after a
    step), or Lightning's per-batch scheduler update for torch's schedulers (what ``fit`` calls)."""
    optimizer = trainer.optimizers[0]
    if variant.startswith("torch"):
        loop = trainer.fit_loop.epoch_loop

        def torch_step(i: int) -> None:
            loop.update_lr_schedulers("step", update_plateau_schedulers=False)

        return torch_step
    writers = [d.writer for d in getattr(callback, "_driven", [])]
    start, before, end = (callback.on_train_batch_start, callback.on_before_optimizer_step,
                          callback.on_train_batch_end)

    def callback_step(i: int) -> None:
        start(trainer, model, None, i)
        before(trainer, model, optimizer)
        for writer in writers:
            writer.written_step = -1  # as after an optimizer step: the next values must be written
        end(trainer, model, None, None, i)

    return callback_step


def measure_hooks(settings: Settings, iterations: int = 3000) -> dict[str, Any]:
    """The paired method on the per-step scheduling work alone, in a tight loop on fitted Trainers: each
    variant's ``iterations`` steps between two runs of the empty Callback's hooks, CPU time, rotated rounds."""
    steps: dict[tuple[str, int], Callable[[int], None]] = {}
    for g in settings.groups:
        for v in (REFERENCE, *PAIRED_VARIANTS):
            steps[(v, g)] = _per_step(v, *_fitted(v, g))

    def timed(cell: tuple[str, int]) -> float:
        step = steps[cell]
        begin = _now()
        for i in range(iterations):
            step(i)
        return (_now() - begin) / iterations * 1e6

    for cell in steps:
        timed(cell)
    differences: dict[tuple[str, int], list[float]] = {(v, g): [] for g in settings.groups for v in PAIRED_VARIANTS}
    reference: dict[int, list[float]] = {g: [] for g in settings.groups}
    for r in range(4 * settings.rounds):
        shift = r % len(PAIRED_VARIANTS)
        order = PAIRED_VARIANTS[shift:] + PAIRED_VARIANTS[:shift]
        for g in settings.groups:
            before = timed((REFERENCE, g))
            reference[g].append(before)
            for variant in order:
                value = timed((variant, g))
                after = timed((REFERENCE, g))
                reference[g].append(after)
                differences[(variant, g)].append(value - (before + after) / 2)
                before = after
    return {"differences": differences, "reference": reference}


def run(settings: Settings) -> dict[str, Any]:
    """Measures everything: the paired Trainer costs, the plain-loop medians and the MNIST-1D step."""
    torch.set_num_threads(1)
    quiet_lightning()
    short = replace(settings, loop_steps=min(settings.loop_steps, 200))
    paired = measure_paired(settings)
    hooks = measure_hooks(settings)
    loop_times = _interleaved(LOOP_VARIANTS, settings.groups, settings.repeats,
                              lambda v, g: measure_loop(v, g, settings),
                              lambda v, g: measure_loop(v, g, short))
    mnist = statistics.median(mnist1d_step_us(settings) for _ in range(3))
    return {"paired": paired, "hooks": hooks, "loop": _stats(loop_times), "mnist1d_step_us": mnist}


def _stats(times: dict[tuple[str, int], list[float]]) -> dict[str, Any]:
    out = {}
    for (name, groups), values in times.items():
        none = statistics.median(times[("none", groups)])
        median = statistics.median(values)
        out[f"{name}|{groups}"] = {"variant": name, "groups": groups, "median_us": median, "min_us": min(values),
                                   "max_us": max(values), "marginal_us": median - none, "samples_us": values}
    return out


def _pairs(kind: str) -> list[tuple[str, str]]:
    if kind == "trainer":
        return [("clr.CyclicLR", "torch CyclicLR"), ("clr.OneCycleLR", "torch OneCycleLR")]
    return [("clr CyclicSchedule by hand", "torch CyclicLR.step()"),
            ("clr OneCycleSchedule by hand", "torch OneCycleLR.step()")]


def report(results: dict[str, Any], settings: Settings) -> str:
    """Markdown tables of the measurements: the paired Trainer tables (if measured), then medians against
    ``none`` for the kinds present (``trainer``: the unpaired form, ``loop``: the plain PyTorch loop)."""
    out = [paired_report(results["paired"], settings)] if "paired" in results else []
    if "hooks" in results:
        out.append(paired_report(results["hooks"], settings, (
            f"The per-step scheduling work alone, in a tight loop on fitted Trainers ({4 * settings.rounds} "
            "rounds of 3,000 steps; a callback's three per-step hooks with its write forced, torch's schedulers "
            "through Lightning's per-batch `update_lr_schedulers`; the empty Callback's hooks as the reference; "
            "paired as above). Inside a fit the same work costs more (the Trainer's own work evicts it from the "
            "caches).")))
    mnist = results["mnist1d_step_us"]
    for kind, title in (("trainer", f"Lightning Trainer, tiny MLP, {settings.steps} steps per run"),
                        ("loop", f"Plain PyTorch loop, tiny MLP, {settings.loop_steps} steps per run")):
        if kind not in results:
            continue
        stats = results[kind]
        headers = ["variant"] + [h for g in settings.groups for h in
                                 (f"µs/step ({g} group{'s' if g > 1 else ''})", f"marginal ({g})")]
        names = VARIANTS if kind == "trainer" else LOOP_VARIANTS
        rows = []
        for name in names:
            row = [name]
            for g in settings.groups:
                s = stats[f"{name}|{g}"]
                row += [f"{s['median_us']:.1f} [{s['min_us']:.1f}–{s['max_us']:.1f}]",
                        "–" if name == "none" else f"{s['marginal_us']:+.1f}"]
            rows.append(row)
        repeats = settings.repeats
        out.append(f"\n{title}: median [min–max] of {repeats} interleaved repeats; marginal = median minus "
                   "`none`'s median.\n")
        out.append(markdown_table(headers, rows))
        rows = []
        for mine, theirs in _pairs(kind):
            for g in settings.groups:
                a, b = stats[f"{mine}|{g}"]["marginal_us"], stats[f"{theirs}|{g}"]["marginal_us"]
                ratio = f"{a / b:.2f}" if b > 0 else "– (torch's marginal ≤ 0: noise)"
                rows.append([f"{mine} / {theirs}", g, f"{a:+.1f}", f"{b:+.1f}", ratio,
                             f"{100 * a / mnist:.1f}%"])
        out.append("")
        out.append(markdown_table(["lightning_clr / torch", "groups", "lightning_clr marginal µs",
                                   "torch marginal µs", "ratio",
                                   "lightning_clr marginal as share of an MNIST-1D step"],
                                  rows))
    out.append(f"\nOne optimizer step of the MNIST-1D ConvBase (batch 64, SGD, no scheduler) in a Trainer: "
               f"{mnist:.0f} µs (median of 3 runs of {settings.mnist_steps} steps).")
    return "\n".join(out)


def plot(results: dict[str, Any], settings: Settings, path: str, caption: str = "") -> None:
    """A bar chart of the paired costs in the Trainer (median, with the interquartile range)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    differences = results["paired"]["differences"]
    fig, ax = plt.subplots(figsize=(9, 4.6))
    width = 0.8 / len(settings.groups)
    for k, g in enumerate(settings.groups):
        quartiles = [_quartiles(differences[(v, g)]) for v in PAIRED_VARIANTS]
        medians = [q[1] for q in quartiles]
        errors = [[q[1] - q[0] for q in quartiles], [q[2] - q[1] for q in quartiles]]
        ax.bar([i + k * width for i in range(len(PAIRED_VARIANTS))], medians, width, yerr=errors, capsize=3,
               label=f"{g} param group{'s' if g > 1 else ''}")
    ax.set_xticks([i + width * (len(settings.groups) - 1) / 2 for i in range(len(PAIRED_VARIANTS))])
    ax.set_xticklabels(PAIRED_VARIANTS, rotation=15, ha="right")
    ax.axhline(GOAL_ABOVE_EMPTY_US, color="C3", lw=0.8, ls="--", label=f"goal: {GOAL_ABOVE_EMPTY_US:g} µs (1 group)")
    ax.axhline(0, color="k", lw=0.8)
    ax.set_ylabel("µs per optimizer step above an empty Callback")
    ax.set_title("Per-step cost in a Lightning Trainer (paired median, interquartile range)")
    ax.legend()
    ax.grid(axis="y", alpha=0.3)
    if caption:
        fig.text(0.01, 0.01, caption, fontsize=7, color="0.3")
    fig.tight_layout(rect=(0, 0.05 if caption else 0, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a few seconds; a smoke test, not for its numbers")
    parser.add_argument("--output", help="folder for overhead.json, overhead.md and overhead.png")
    parser.add_argument("--steps", type=int, help="optimizer steps per Trainer run (default 2000)")
    parser.add_argument("--repeats", type=int, help="interleaved repeats of the plain loop (default 5)")
    parser.add_argument("--rounds", type=int, help="rounds of the paired Trainer measurement (default 12)")
    parser.add_argument("--loop-steps", type=int, help="steps per run of the plain PyTorch loop (default 2000)")
    parser.add_argument("--mnist-steps", type=int, help="steps timed for the MNIST-1D model (default 600)")
    parser.add_argument("--clock", choices=sorted(CLOCKS), default="cpu",
                        help="cpu: this process's CPU time (default; robust to other load), wall: wall time")
    args = parser.parse_args(argv)
    _clock[0] = CLOCKS[args.clock]
    settings = QUICK if args.quick else Settings()
    if args.steps:
        settings = replace(settings, steps=args.steps, warmup=min(settings.warmup, args.steps // 10))
    if args.repeats:
        settings = replace(settings, repeats=args.repeats)
    if args.rounds:
        settings = replace(settings, rounds=args.rounds)
    if args.loop_steps:
        settings = replace(settings, loop_steps=args.loop_steps)
    if args.mnist_steps:
        settings = replace(settings, mnist_steps=args.mnist_steps)
    torch.set_num_threads(1)
    quiet_lightning()
    info = machine_info()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    command = "python benchmarks/overhead.py " + " ".join(argv if argv is not None else sys.argv[1:])
    header = (f"Command: `{command.strip()}`. Machine: {info['cpu']}, {info['cores']} cores (load average "
              f"{load:.1f} at the start); Python {info['python']}, torch {info['torch']}, pytorch_lightning "
              f"{info['pytorch_lightning']}, lightning_clr {info['lightning_clr']}; 1 torch thread; clock: "
              f"{args.clock} time. No randomness in the timing (data and weights seeded with 0).")
    print(header, flush=True)
    print("\n" + METHOD, flush=True)
    start = time.perf_counter()
    results = run(settings)
    text = header + "\n\n" + METHOD + "\n" + report(results, settings)
    text += f"\n\nWall time: {time.perf_counter() - start:.0f} s."
    print(text.split(METHOD, 1)[1])
    if args.output:
        os.makedirs(args.output, exist_ok=True)
        paired = results["paired"]
        def plain_of(measured: dict[str, Any]) -> dict[str, Any]:
            return {"differences": {f"{v}|{g}": d for (v, g), d in measured["differences"].items()},
                    "reference": {str(g): r for g, r in measured["reference"].items()}}

        plain = plain_of(paired)
        with open(os.path.join(args.output, "overhead.json"), "w") as f:
            json.dump({"settings": asdict(settings), "machine": info, "load_average": load,
                       **results, "paired": plain, "hooks": plain_of(results["hooks"])}, f, indent=1)
        with open(os.path.join(args.output, "overhead.md"), "w") as f:
            f.write(text + "\n")
        caption = f"{command.strip()} | {info['cpu']}, {info['cores']} cores, load {load:.1f} | torch {info['torch']}"
        plot(results, settings, os.path.join(args.output, "overhead.png"), caption)
        print(f"Wrote overhead.json, overhead.md and overhead.png to {args.output}")
    return results


if __name__ == "__main__":
    main()
