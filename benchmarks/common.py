"""Shared pieces of the benchmarks: MNIST-1D data, the mnist1d paper's small CNN, a LightningModule
that trains it with SGD, and a callback that records the test accuracy every few optimizer steps.

Everything here runs on CPU, generates its data locally (no download) and pickles (the benchmarks run
seeds in worker processes).
"""

from __future__ import annotations

import bisect
import logging
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

warnings.filterwarnings("ignore", message=".*LeafSpec.*")  # pytorch_lightning's import-time deprecation notice

import pytorch_lightning as pl  # noqa: E402
import torch  # noqa: E402
from baselines import baseline_optimizer  # noqa: E402
from torch import nn  # noqa: E402
from torch.utils.data import DataLoader, TensorDataset  # noqa: E402
from typing_extensions import override  # noqa: E402

from lightning_clr.schedules import ScheduleBase  # noqa: E402

__all__ = [
    "AccuracyTracker",
    "Classifier",
    "ConvBase",
    "Splits",
    "StepDecaySchedule",
    "accuracy",
    "evaluate_accuracy",
    "make_mnist1d",
    "quiet_lightning",
    "train_loader",
    "trainer_kwargs",
]

NUM_SAMPLES = 5000
NUM_TRAIN = 3500
NUM_VAL = 500
NUM_TEST = 1000
DATA_SEED = 42


@dataclass
class Splits:
    """Float32 inputs ``(N, 40)`` and int64 labels for train / validation / test."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor


def make_mnist1d(num_samples: int = NUM_SAMPLES, num_train: int = NUM_TRAIN, num_val: int = NUM_VAL,
                 seed: int = DATA_SEED) -> Splits:
    """Generates MNIST-1D locally (``mnist1d.data.make_dataset``, no download) and splits it.

    The generator shuffles the samples with its own seed; the first ``num_train`` samples train, the
    next ``num_val`` validate (for tuning only) and the rest test.

    Args:
        num_samples: samples to generate (a multiple of 10: equal counts per digit).
        num_train: training samples.
        num_val: validation samples.
        seed: the generator's seed.

    Raises:
        ValueError: if the splits leave no test samples.
    """
    from mnist1d.data import get_dataset_args, make_dataset

    if num_train + num_val >= num_samples:
        raise ValueError(
            f"Expected num_train + num_val < num_samples, but got {num_train} + {num_val} >= {num_samples}."
        )
    args = get_dataset_args()
    args.num_samples = num_samples
    args.train_split = 1.0
    args.seed = seed
    state = np.random.get_state()  # make_dataset reseeds numpy's global generator
    try:
        data = make_dataset(args)
    finally:
        np.random.set_state(state)
    x = torch.tensor(data["x"], dtype=torch.float32)
    y = torch.tensor(data["y"], dtype=torch.int64)
    a, b = num_train, num_train + num_val
    return Splits(x[:a], y[:a], x[a:b], y[a:b], x[b:], y[b:])


@dataclass(frozen=True)
class StepDecaySchedule(ScheduleBase):
    """Piecewise-constant decay: ``initial`` times ``factor`` once for every milestone passed.

    A frozen dataclass like the built-in schedules, so :class:`lightning_clr.ScheduledLR` drives it and it
    pickles. ``StepDecaySchedule(0.1, (100, 150))`` gives 0.1 for steps 0-99, 0.01 for 100-149 and 0.001 on.

    Args:
        initial: the rate before the first milestone.
        milestones: increasing optimizer steps at which the rate is multiplied by ``factor``.
        factor: the multiplier per milestone.

    Raises:
        ValueError: if ``initial`` or ``factor`` is not positive or the milestones do not increase.
    """

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
    """The mnist1d paper's ``ConvBase``: three strided 1-D convolutions (25 channels) and a linear head.

    Input length 40 gives 19, 10 and 5 positions after the convolutions, so the head sees 125 features.
    """

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
        h = self.conv1(h).relu()
        h = self.conv2(h).relu()
        h = self.conv3(h).relu()
        return self.linear(h.flatten(1))


class Classifier(pl.LightningModule):
    """ConvBase trained with SGD (momentum 0.9 by default) and cross-entropy.

    The optimizer has no scheduler: the benchmarks' schedules are lightning_clr callbacks. ``optimizer="prodigy"``
    trains with ``prodigyopt.Prodigy(lr=1.0)`` and a cosine decay over ``total_steps`` (its authors' advice),
    ``"schedulefree"`` with ``schedulefree.SGDScheduleFree`` at its default rate and a 5% warm-up; both ignore
    ``lr``.

    Args:
        lr: the optimizer's initial rate (a schedule callback overwrites it from the first step on).
        momentum: SGD momentum.
        weight_decay: SGD weight decay.
        model: the network; ``ConvBase()`` by default.
        optimizer: ``"sgd"``, ``"prodigy"`` or ``"schedulefree"``.
        total_steps: the run's optimizer steps (for Prodigy's decay and schedule-free's warm-up).
    """

    def __init__(self, lr: float = 0.01, momentum: float = 0.9, weight_decay: float = 0.0,
                 model: nn.Module | None = None, optimizer: str = "sgd", total_steps: int = 1000) -> None:
        super().__init__()
        self.model = model if model is not None else ConvBase()
        self.lr = lr
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.optimizer_name = optimizer
        self.total_steps = total_steps

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
        return torch.optim.SGD(self.parameters(), lr=self.lr, momentum=self.momentum,
                               weight_decay=self.weight_decay)

    @override
    def on_train_start(self) -> None:
        _set_mode(self.trainer, "train")


def _set_mode(trainer: Any, mode: str) -> None:
    """``optimizer.train()`` / ``.eval()`` of a schedule-free optimizer (the others have neither)."""
    for optimizer in trainer.optimizers:
        getattr(optimizer, mode, lambda: None)()


def evaluate_accuracy(trainer: Any, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """:func:`accuracy` at the weights to evaluate: a schedule-free optimizer's average, then back to training."""
    _set_mode(trainer, "eval")
    try:
        return accuracy(model, x, y)
    finally:
        _set_mode(trainer, "train")


@torch.no_grad()
def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Share of ``x`` that ``model`` classifies as ``y`` (evaluated in one batch, in eval mode)."""
    was_training = model.training
    model.eval()
    try:
        return float((model(x).argmax(-1) == y).float().mean())
    finally:
        model.train(was_training)


class AccuracyTracker(pl.Callback):
    """Evaluates the accuracy on fixed tensors every ``every`` optimizer steps (and at step 0, at every
    epoch's end and at the end of the fit), and records the rate the optimizer used on the step before.

    Attributes:
        history: ``[(optimizer steps taken, accuracy)]``.
        lrs: ``[lr]``, the first param group's rate of every optimizer step, read in
            ``on_before_optimizer_step``, i.e. the value that step applied.

    Args:
        x: inputs to evaluate on.
        y: their labels.
        every: evaluate after every ``every`` optimizer steps.
        record_lr: record the rate of every step.
    """

    def __init__(self, x: torch.Tensor, y: torch.Tensor, every: int, record_lr: bool = True) -> None:
        super().__init__()
        if every <= 0:
            raise ValueError(f"Expected every to be a positive int, but got {every!r}.")
        self.x, self.y, self.every, self.record_lr = x, y, every, record_lr
        self.history: list[tuple[int, float]] = []
        self.lrs: list[float] = []

    @override
    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        self.history = [(trainer.global_step, evaluate_accuracy(trainer, pl_module, self.x, self.y))]
        self.lrs = []

    @override
    def on_before_optimizer_step(self, trainer: Any, pl_module: Any, optimizer: Any) -> None:
        if self.record_lr:
            self.lrs.append(float(optimizer.param_groups[0]["lr"]))

    @override
    def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        step = trainer.global_step
        if step % self.every == 0 and (not self.history or self.history[-1][0] != step):
            self.history.append((step, evaluate_accuracy(trainer, pl_module, self.x, self.y)))

    @override
    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        step = trainer.global_step
        if not self.history or self.history[-1][0] != step:
            self.history.append((step, evaluate_accuracy(trainer, pl_module, self.x, self.y)))

    @override
    def on_train_end(self, trainer: Any, pl_module: Any) -> None:
        step = trainer.global_step
        if not self.history or self.history[-1][0] != step:
            self.history.append((step, evaluate_accuracy(trainer, pl_module, self.x, self.y)))


def quiet_lightning() -> None:
    """Silences Lightning's informational logs and the warnings a tiny CPU benchmark triggers."""
    # The rank_zero loggers carry their own INFO level (GPU/TPU lines, tips, "Loading `train_dataloader`").
    for name in ("pytorch_lightning", "lightning.pytorch", "lightning.fabric", "lightning_fabric",
                 "pytorch_lightning.utilities.rank_zero", "lightning.pytorch.utilities.rank_zero",
                 "lightning_fabric.utilities.rank_zero", "lightning.fabric.utilities.rank_zero"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=".*litlogger.*")
    warnings.filterwarnings("ignore", message=".*GPU available but not used.*")
    warnings.filterwarnings("ignore", message=".*smaller than the logging interval.*")


def trainer_kwargs(**overrides: Any) -> dict[str, Any]:
    """Quiet CPU Trainer arguments with nothing written to disk."""
    kwargs: dict[str, Any] = dict(
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        num_sanity_val_steps=0,
        limit_val_batches=0,
        deterministic=False,
    )
    kwargs.update(overrides)
    return kwargs


def train_loader(x: torch.Tensor, y: torch.Tensor, batch_size: int, seed: int, shuffle: bool = True) -> DataLoader:
    """An in-memory loader (no workers) whose shuffling is seeded."""
    generator = torch.Generator().manual_seed(seed)
    return DataLoader(TensorDataset(x, y), batch_size=batch_size, shuffle=shuffle, num_workers=0,
                      generator=generator)
