"""Shared pieces of the benchmarks: MNIST-1D, the mnist1d paper's ConvBase and its LightningModule, a step-decay
schedule, the optimizers a user picks instead of a rate search (Prodigy, schedule-free), quiet CPU Trainers,
worker processes, and the reports (markdown tables, the machine, the command).

Everything runs on CPU, generates its data locally (no download) and pickles (seeds run in worker processes).
"""

from __future__ import annotations

import bisect
import logging
import multiprocessing
import os
import platform
import subprocess
import sys
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

warnings.filterwarnings("ignore", message=".*LeafSpec.*")  # pytorch_lightning's import-time deprecation notice

import pytorch_lightning as pl  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402
from torch.utils.data import DataLoader, TensorDataset  # noqa: E402
from typing_extensions import override  # noqa: E402

from lightning_clr.schedules import ScheduleBase  # noqa: E402


# ---------------------------------------------------------------------------------------------- data and model
@dataclass
class Splits:
    """Inputs and labels for train / validation (tuning only) / test."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor


def make_mnist1d(num_samples: int = 5000, num_train: int = 3500, num_val: int = 500, seed: int = 42) -> Splits:
    """MNIST-1D generated locally (``mnist1d.data.make_dataset``): the first ``num_train`` samples train, the next
    ``num_val`` validate, the rest test. numpy's global generator is left as it was."""
    from mnist1d.data import get_dataset_args, make_dataset

    if num_train + num_val >= num_samples:
        raise ValueError(f"Expected num_train + num_val < num_samples, but got {num_train} + {num_val} >= "
                         f"{num_samples}.")
    args = get_dataset_args()
    args.num_samples, args.train_split, args.seed = num_samples, 1.0, seed
    state = np.random.get_state()  # make_dataset reseeds numpy's global generator
    try:
        data = make_dataset(args)
    finally:
        np.random.set_state(state)
    x, y = torch.tensor(data["x"], dtype=torch.float32), torch.tensor(data["y"], dtype=torch.int64)
    a, b = num_train, num_train + num_val
    return Splits(x[:a], y[:a], x[a:b], y[a:b], x[b:], y[b:])


@dataclass(frozen=True)
class StepDecaySchedule(ScheduleBase):
    """Piecewise-constant decay: ``initial`` times ``factor`` once for every milestone passed (a frozen dataclass
    like the built-in schedules, so :class:`lightning_clr.ScheduledLR` drives it and it pickles)."""

    initial: float
    milestones: tuple[int, ...]
    factor: float = 0.1

    def __post_init__(self) -> None:
        if not self.initial > 0 or not self.factor > 0:
            raise ValueError(f"Expected initial > 0 and factor > 0, but got {self.initial!r} and {self.factor!r}.")
        pairs = zip(self.milestones, self.milestones[1:], strict=False)
        if any(b <= a for a, b in pairs) or any(m < 0 for m in self.milestones):
            raise ValueError(f"Expected increasing non-negative milestones, but got {self.milestones!r}.")

    def __call__(self, step: int) -> float:
        return self.initial * self.factor ** bisect.bisect_right(self.milestones, step)


class ConvBase(nn.Module):
    """The mnist1d paper's ``ConvBase``: three strided 1-D convolutions (25 channels) and a linear head."""

    def __init__(self, channels: int = 25, num_classes: int = 10, length: int = 40) -> None:
        super().__init__()
        self.conv1 = nn.Conv1d(1, channels, 5, stride=2, padding=1)
        self.conv2 = nn.Conv1d(channels, channels, 3, stride=2, padding=1)
        self.conv3 = nn.Conv1d(channels, channels, 3, stride=2, padding=1)
        out = length
        for kernel in (5, 3, 3):
            out = (out + 2 - kernel) // 2 + 1
        self.linear = nn.Linear(channels * out, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.view(-1, 1, x.shape[-1])
        h = self.conv3(self.conv2(self.conv1(h).relu()).relu()).relu()
        return self.linear(h.flatten(1))


def baseline_optimizer(name: str, params: Any, total_steps: int, weight_decay: float, adam: bool,
                       momentum: float = 0.9) -> Any:
    """``"prodigy"``: ``prodigyopt.Prodigy(lr=1.0)`` with a cosine decay over ``total_steps`` (its authors' advice);
    ``"schedulefree"``: ``AdamWScheduleFree`` (``adam``) or ``SGDScheduleFree`` at its default rate, 5% warm-up."""
    if name == "prodigy":
        from prodigyopt import Prodigy

        optimizer = Prodigy(params, lr=1.0, weight_decay=weight_decay)
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, total_steps)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
    if name == "schedulefree":
        import schedulefree

        warmup = max(1, round(0.05 * total_steps))
        if adam:
            return schedulefree.AdamWScheduleFree(params, weight_decay=weight_decay, warmup_steps=warmup)
        return schedulefree.SGDScheduleFree(params, momentum=momentum, weight_decay=weight_decay, warmup_steps=warmup)
    raise ValueError(f"Expected 'prodigy' or 'schedulefree', but got {name!r}.")


class Classifier(pl.LightningModule):
    """A model (ConvBase by default) trained with cross-entropy and SGD (or ``optimizer="prodigy"`` /
    ``"schedulefree"``, which ignore ``lr``); no scheduler of its own: the schedules are callbacks."""

    def __init__(self, lr: float = 0.01, momentum: float = 0.9, weight_decay: float = 0.0,
                 model: nn.Module | None = None, optimizer: str = "sgd", total_steps: int = 1000) -> None:
        super().__init__()
        self.model = model if model is not None else ConvBase()
        self.lr, self.momentum, self.weight_decay = lr, momentum, weight_decay
        self.optimizer_name, self.total_steps = optimizer, total_steps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    @override
    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y = batch
        return nn.functional.cross_entropy(self.model(x), y)

    @override
    def configure_optimizers(self) -> Any:
        if self.optimizer_name in ("prodigy", "schedulefree"):
            return baseline_optimizer(self.optimizer_name, self.parameters(), self.total_steps, self.weight_decay,
                                      adam=False, momentum=self.momentum)
        return torch.optim.SGD(self.parameters(), lr=self.lr, momentum=self.momentum, weight_decay=self.weight_decay)

    @override
    def on_train_start(self) -> None:
        set_mode(self.trainer, "train")


def set_mode(trainer: Any, mode: str) -> None:
    """``optimizer.train()`` / ``.eval()`` of a schedule-free optimizer (the others have neither)."""
    for optimizer in trainer.optimizers:
        getattr(optimizer, mode, lambda: None)()


@torch.no_grad()
def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Share of ``x`` that ``model`` classifies as ``y`` (one batch, eval mode)."""
    was_training = model.training
    model.eval()
    try:
        return float((model(x).argmax(-1) == y).float().mean())
    finally:
        model.train(was_training)


class AccuracyTracker(pl.Callback):
    """Evaluates on fixed tensors at step 0, every ``every`` optimizer steps, at every epoch's end and at the end
    (``history``: ``[(steps taken, accuracy)]``); with ``record_lr`` also the first group's rate of every step
    (``lrs``, read in ``on_before_optimizer_step``: the value that step applied)."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, every: int, record_lr: bool = True) -> None:
        if every <= 0:
            raise ValueError(f"Expected every to be a positive int, but got {every!r}.")
        self.x, self.y, self.every, self.record_lr = x, y, every, record_lr
        self.history: list[tuple[int, float]] = []
        self.lrs: list[float] = []

    def _evaluate(self, trainer: Any, pl_module: Any) -> None:
        step = trainer.global_step
        if not self.history or self.history[-1][0] != step:
            set_mode(trainer, "eval")  # a schedule-free optimizer's averaged weights
            try:
                self.history.append((step, accuracy(pl_module, self.x, self.y)))
            finally:
                set_mode(trainer, "train")

    @override
    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        self.history, self.lrs = [], []
        self._evaluate(trainer, pl_module)

    @override
    def on_before_optimizer_step(self, trainer: Any, pl_module: Any, optimizer: Any) -> None:
        if self.record_lr:
            self.lrs.append(float(optimizer.param_groups[0]["lr"]))

    @override
    def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        if trainer.global_step % self.every == 0:
            self._evaluate(trainer, pl_module)

    @override
    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        self._evaluate(trainer, pl_module)

    @override
    def on_train_end(self, trainer: Any, pl_module: Any) -> None:
        self._evaluate(trainer, pl_module)


# ---------------------------------------------------------------------------------------------- Trainers, workers
def quiet_lightning() -> None:
    """Silences Lightning's informational logs and the warnings a tiny CPU benchmark triggers."""
    for name in ("pytorch_lightning", "lightning.pytorch", "lightning.fabric", "lightning_fabric",
                 "pytorch_lightning.utilities.rank_zero", "lightning.pytorch.utilities.rank_zero",
                 "lightning_fabric.utilities.rank_zero", "lightning.fabric.utilities.rank_zero"):
        logging.getLogger(name).setLevel(logging.ERROR)
    for message in ("does not have many workers", "litlogger", "GPU available but not used",
                    "smaller than the logging interval", "callbacks used to create the checkpoint",
                    "dataloader is not resumable"):  # a resumed fit restarts its epoch's data order (docs/wsd.md)
        warnings.filterwarnings("ignore", message=f".*{message}.*")


def trainer_kwargs(**overrides: Any) -> dict[str, Any]:
    """Quiet CPU Trainer arguments with nothing written to disk."""
    return {"accelerator": "cpu", "devices": 1, "logger": False, "enable_progress_bar": False,
            "enable_model_summary": False, "enable_checkpointing": False, "num_sanity_val_steps": 0,
            "limit_val_batches": 0, "deterministic": False, **overrides}


def train_loader(x: torch.Tensor, y: torch.Tensor, batch_size: int, seed: int, shuffle: bool = True) -> DataLoader:
    """An in-memory loader (no workers) whose shuffling is seeded."""
    return DataLoader(TensorDataset(x, y), batch_size=batch_size, shuffle=shuffle, num_workers=0,
                      generator=torch.Generator().manual_seed(seed))


def worker_init() -> None:
    """One torch thread and quiet Lightning (every worker process starts with this)."""
    torch.set_num_threads(1)
    quiet_lightning()


@contextmanager
def mapped(function: Callable[[Any], Any], items: Iterable[Any], workers: int,
           ordered: bool = True) -> Iterator[Iterator[Any]]:
    """``function`` over ``items`` in ``workers`` spawned processes (this one for ``workers <= 1``), one torch
    thread each; results in order, or as they finish (``ordered=False``)."""
    if workers <= 1:
        worker_init()
        yield map(function, items)
        return
    pool = multiprocessing.get_context("spawn").Pool(workers, initializer=worker_init)
    try:
        yield (pool.imap if ordered else pool.imap_unordered)(function, items)
    finally:
        pool.close()
        pool.join()


# ---------------------------------------------------------------------------------------------- reports
def machine_info() -> dict[str, Any]:
    """CPU model, core count and library versions, for the report."""
    model = platform.processor() or "unknown"
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        model = next((line.split(":", 1)[1].strip() for line in out.splitlines()
                      if line.startswith("Model name:")), model)
    except (OSError, subprocess.SubprocessError):
        pass
    import lightning_clr

    return {"cpu": model, "cores": os.cpu_count(), "python": platform.python_version(), "torch": torch.__version__,
            "pytorch_lightning": pl.__version__, "lightning_clr": lightning_clr.__version__,
            "torch_threads": torch.get_num_threads()}


def machine_line() -> str:
    info = machine_info()
    return (f"{info['cpu']}, {info['cores']} cores; Python {info['python']}, torch {info['torch']}, "
            f"pytorch_lightning {info['pytorch_lightning']}, lightning_clr {info['lightning_clr']}")


def command_line(name: str, argv: Sequence[str] | None) -> str:
    """The command that ran ``benchmarks.<name>`` with ``argv`` (``None``: this process's arguments)."""
    return " ".join(["python -m benchmarks." + name, *(argv if argv is not None else sys.argv[1:])])


def save_report(text: str, folder: str | None, name: str) -> None:
    """Writes ``text`` to ``folder/name`` (the folder made if need be); nothing when ``folder`` is unset."""
    if folder:
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, name), "w") as file:
            file.write(text.rstrip() + "\n")


def finish_report(text: str, name: str, argv: Sequence[str] | None, folder: str | None, seeds: str = "",
                  command: str | None = None) -> str:
    """``text`` with its command (``python -m benchmarks.<command or name>``), seeds and machine appended; printed,
    and saved as ``folder/<name>.md``."""
    seeds = f"; {seeds}" if seeds else ""
    text += f"\n\nCommand: `{command_line(command or name, argv)}`{seeds}. Machine: {machine_line()}."
    print(text)
    save_report(text, folder, name + ".md")
    return text


def markdown_table(headers: Sequence[Any], rows: Iterable[Sequence[Any]]) -> str:
    """A GitHub markdown table."""
    lines = ["| " + " | ".join(map(str, headers)) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    return "\n".join(lines + ["| " + " | ".join(str(c) for c in row) + " |" for row in rows])


def parse_table(text: str, first_cell: str) -> dict[str, str]:
    """The row of a markdown table in ``text`` whose first cell is ``first_cell``, keyed by the header."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and cells[0] == first_cell:
            start = i
            while start > 0 and lines[start - 1].startswith("|"):
                start -= 1
            header = [c.strip() for c in lines[start].strip().strip("|").split("|")]
            return dict(zip(header, cells, strict=True))
    raise KeyError(first_cell)
