"""A small classifier on scikit-learn's bundled digits, for the examples: no download, trains on a CPU in seconds.

The model is an ordinary LightningModule: it returns a plain SGD optimizer from ``configure_optimizers`` and
knows nothing about learning-rate schedules. A lightning_clr callback on the Trainer sets its rate (and
momentum) at every optimizer step.

Used by ``examples/train_digits.py`` (plain Python) and ``examples/cli.py`` (LightningCLI).
"""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from torchmetrics.classification import MulticlassAccuracy

__all__ = ["DigitsClassifier", "DigitsDataModule"]

NUM_FEATURES = 64  # 8 x 8 pixels
NUM_CLASSES = 10


class DigitsDataModule(pl.LightningDataModule):
    """scikit-learn's 1,797 handwritten digits (8 x 8 pixels, 10 classes), split into train, validation and test.

    Pixels (0..16) are scaled to [0, 1]. The split is a seeded random permutation, so it is the same in every
    run and on every DDP rank.

    Args:
        batch_size: samples per batch, for every split.
        val_fraction: the share of the samples held out for validation, in (0, 1).
        test_fraction: the share held out for testing, in (0, 1); ``val_fraction + test_fraction < 1``.
        seed: the seed of the split.

    Raises:
        ValueError: if ``batch_size`` is not a positive int or the fractions are out of range.
    """

    def __init__(self, batch_size: int = 64, val_fraction: float = 0.2, test_fraction: float = 0.2,
                 seed: int = 0) -> None:
        super().__init__()
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size <= 0:
            raise ValueError(f"Expected batch_size to be a positive int, but got {batch_size!r}.")
        for name, value in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
            if not 0 < value < 1:
                raise ValueError(f"Expected {name} in (0, 1), but got {name}={value!r}.")
        if val_fraction + test_fraction >= 1:
            raise ValueError(
                "Expected val_fraction + test_fraction < 1 (some samples must be left to train on), but got "
                f"val_fraction={val_fraction!r}, test_fraction={test_fraction!r}."
            )
        self.save_hyperparameters()
        self.batch_size = batch_size
        self.val_fraction = val_fraction
        self.test_fraction = test_fraction
        self.seed = seed
        self.train_set: TensorDataset | None = None
        self.val_set: TensorDataset | None = None
        self.test_set: TensorDataset | None = None

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        from sklearn.datasets import load_digits

        digits = load_digits()
        x = torch.tensor(digits.data, dtype=torch.float32) / 16.0
        y = torch.tensor(digits.target, dtype=torch.long)
        order = torch.randperm(len(x), generator=torch.Generator().manual_seed(self.seed))
        n_val = round(self.val_fraction * len(x))
        n_test = round(self.test_fraction * len(x))
        val, test, train = order[:n_val], order[n_val:n_val + n_test], order[n_val + n_test:]
        self.train_set = TensorDataset(x[train], y[train])
        self.val_set = TensorDataset(x[val], y[val])
        self.test_set = TensorDataset(x[test], y[test])

    def train_dataloader(self) -> DataLoader:
        generator = torch.Generator().manual_seed(self.seed)
        return DataLoader(self.train_set, batch_size=self.batch_size, shuffle=True, generator=generator)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.val_set, batch_size=self.batch_size)

    def test_dataloader(self) -> DataLoader:
        return DataLoader(self.test_set, batch_size=self.batch_size)


class DigitsClassifier(pl.LightningModule):
    """A two-layer perceptron (64 -> ``hidden`` -> 10, ReLU) trained with SGD with momentum.

    ``configure_optimizers`` returns a plain ``torch.optim.SGD(lr=lr, momentum=momentum)`` and no LR scheduler:
    under a lightning_clr callback, ``lr`` and ``momentum`` are only the values before the first step (the
    callback overwrites them from train start on). Logs ``train_loss`` every step, ``val_loss``/``val_acc`` per
    validation epoch and ``test_acc`` (torchmetrics multiclass accuracy).

    Args:
        hidden: width of the hidden layer.
        lr: SGD's initial learning rate.
        momentum: SGD's initial momentum.
        weight_decay: SGD's L2 penalty.
    """

    def __init__(self, hidden: int = 128, lr: float = 0.05, momentum: float = 0.9,
                 weight_decay: float = 0.0) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.net = nn.Sequential(nn.Linear(NUM_FEATURES, hidden), nn.ReLU(), nn.Linear(hidden, NUM_CLASSES))
        self.lr = lr
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.val_acc = MulticlassAccuracy(num_classes=NUM_CLASSES, average="micro")
        self.test_acc = MulticlassAccuracy(num_classes=NUM_CLASSES, average="micro")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y = batch
        loss = nn.functional.cross_entropy(self(x), y)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        x, y = batch
        logits = self(x)
        self.val_acc(logits, y)
        self.log("val_loss", nn.functional.cross_entropy(logits, y), prog_bar=True)
        self.log("val_acc", self.val_acc, prog_bar=True)

    def test_step(self, batch: Any, batch_idx: int) -> None:
        x, y = batch
        self.test_acc(self(x), y)
        self.log("test_acc", self.test_acc)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=self.lr, momentum=self.momentum,
                               weight_decay=self.weight_decay)
