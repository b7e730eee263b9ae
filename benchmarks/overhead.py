"""Per-step overhead: what does a lightning_clr callback cost per optimizer step, next to torch's schedulers?

Trains a tiny MLP (5 linear layers of width 8, so the step itself is cheap and a scheduler's cost shows)
for ``--steps`` optimizer steps per run on a real ``pytorch_lightning.Trainer``, in one process, with the
variants interleaved (each repeat runs every variant once, in a rotated order) and reports medians over
``--repeats`` repeats, in microseconds per optimizer step of this process's CPU time (``--clock wall`` for
wall time). Variants:

* ``none``: no scheduler, no extra callback (the reference);
* ``empty Callback``: a ``Callback`` that overrides nothing (Lightning's own cost of dispatching hooks);
* ``clr.CyclicLR`` / ``clr.OneCycleLR`` / ``clr.CosineRestartsLR``: the lightning_clr callbacks;
* ``torch CyclicLR`` / ``torch OneCycleLR``: torch's schedulers returned from ``configure_optimizers`` with
  ``interval="step"``;

each with the parameters in 1 and in 10 param groups. The marginal cost is a variant's median minus the
``none`` median. The same comparison runs in a plain PyTorch loop: ``scheduler.step()`` against writing a
lightning_clr schedule's value into ``param_groups`` by hand. Finally it times one optimizer step of the
MNIST-1D ConvBase model of ``time_to_accuracy.py`` (batch 64) to put the marginal costs in proportion.

    python benchmarks/overhead.py --output bench-out          # about 3 minutes of CPU time
    python benchmarks/overhead.py --quick                     # a few seconds (smoke test)
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

_HERE = os.path.dirname(os.path.abspath(__file__))
if _HERE not in sys.path:  # make `common` importable
    sys.path.insert(0, _HERE)

import pytorch_lightning as pl
import torch
from common import Classifier, machine_info, make_mnist1d, markdown_table, quiet_lightning, trainer_kwargs
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from typing_extensions import override

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
    """

    steps: int = 2000
    warmup: int = 100
    repeats: int = 5
    groups: tuple[int, ...] = (1, 10)
    loop_steps: int = 2000
    mnist_steps: int = 600


QUICK = Settings(steps=150, warmup=20, repeats=2, loop_steps=300, mnist_steps=60)
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


def measure_trainer(variant: str, groups: int, settings: Settings) -> float:
    """Microseconds per optimizer step of one Trainer run of ``variant``."""
    callbacks, scheduler = _variant(variant, settings.steps)
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


def run(settings: Settings) -> dict[str, Any]:
    """Measures everything; returns medians, spreads, marginal costs and ratios."""
    torch.set_num_threads(1)
    quiet_lightning()
    short = replace(settings, steps=min(settings.steps, 4 * settings.warmup),
                    loop_steps=min(settings.loop_steps, 200))
    trainer_times = _interleaved(VARIANTS, settings.groups, settings.repeats,
                                 lambda v, g: measure_trainer(v, g, settings),
                                 lambda v, g: measure_trainer(v, g, short))
    loop_times = _interleaved(LOOP_VARIANTS, settings.groups, settings.repeats,
                              lambda v, g: measure_loop(v, g, settings),
                              lambda v, g: measure_loop(v, g, short))
    mnist = statistics.median(mnist1d_step_us(settings) for _ in range(3))
    return {"trainer": _stats(trainer_times), "loop": _stats(loop_times), "mnist1d_step_us": mnist}


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
    """Markdown tables of the measurements."""
    out = []
    mnist = results["mnist1d_step_us"]
    for kind, title in (("trainer", f"Lightning Trainer, tiny MLP, {settings.steps} steps per run"),
                        ("loop", f"Plain PyTorch loop, tiny MLP, {settings.loop_steps} steps per run")):
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


def plot(results: dict[str, Any], settings: Settings, path: str) -> None:
    """A bar chart of the marginal costs in the Trainer."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [n for n in VARIANTS if n != "none"]
    fig, ax = plt.subplots(figsize=(9, 4))
    width = 0.8 / len(settings.groups)
    for k, g in enumerate(settings.groups):
        values = [results["trainer"][f"{n}|{g}"]["marginal_us"] for n in names]
        ax.bar([i + k * width for i in range(len(names))], values, width, label=f"{g} param group(s)")
    ax.set_xticks([i + width * (len(settings.groups) - 1) / 2 for i in range(len(names))])
    ax.set_xticklabels(names, rotation=20, ha="right")
    ax.set_ylabel("marginal µs per optimizer step")
    ax.set_title("Marginal cost per step over no scheduler (Lightning Trainer, median)")
    ax.axhline(0, color="k", lw=0.8)
    ax.legend()
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a few seconds; a smoke test, not for its numbers")
    parser.add_argument("--output", help="folder for overhead.json, overhead.md and overhead.png")
    parser.add_argument("--steps", type=int, help="optimizer steps per Trainer run (default 2000)")
    parser.add_argument("--repeats", type=int, help="interleaved repeats (default 5)")
    parser.add_argument("--clock", choices=sorted(CLOCKS), default="cpu",
                        help="cpu: this process's CPU time (default; robust to other load), wall: wall time")
    args = parser.parse_args(argv)
    _clock[0] = CLOCKS[args.clock]
    settings = QUICK if args.quick else Settings()
    if args.steps:
        settings = replace(settings, steps=args.steps, warmup=min(settings.warmup, args.steps // 10))
    if args.repeats:
        settings = replace(settings, repeats=args.repeats)
    torch.set_num_threads(1)
    quiet_lightning()
    info = machine_info()
    print(f"Machine: {info['cpu']}, {info['cores']} cores; torch {info['torch']}, pytorch_lightning "
          f"{info['pytorch_lightning']}; 1 torch thread; clock: {args.clock} time.", flush=True)
    start = time.perf_counter()
    results = run(settings)
    text = report(results, settings) + f"\n\nWall time: {time.perf_counter() - start:.0f} s."
    print(text)
    if args.output:
        os.makedirs(args.output, exist_ok=True)
        with open(os.path.join(args.output, "overhead.json"), "w") as f:
            json.dump({"settings": asdict(settings), "machine": info, **results}, f, indent=1)
        with open(os.path.join(args.output, "overhead.md"), "w") as f:
            f.write(text + "\n")
        plot(results, settings, os.path.join(args.output, "overhead.png"))
        print(f"Wrote overhead.json, overhead.md and overhead.png to {args.output}")
    return results


if __name__ == "__main__":
    main()
