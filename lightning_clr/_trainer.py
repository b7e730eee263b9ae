"""What lightning_clr reads off a Trainer, written once: the torch optimizer inside a wrapper, the run's
size in optimizer steps, and the optimization mode.

Everything here is duck-typed, so it serves both Lightning namespaces (``pytorch_lightning`` and
``lightning.pytorch``) and test doubles alike.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from lightning_clr._checks import is_number

__all__ = ["is_automatic_optimization", "run_size", "steps_per_epoch", "total_steps", "unwrap_optimizer"]


def unwrap_optimizer(optimizer: Any) -> torch.optim.Optimizer:
    """The torch optimizer inside a strategy's wrapper (``LightningOptimizer``, DeepSpeed's), or the optimizer."""
    seen = 0
    while not isinstance(optimizer, torch.optim.Optimizer) and hasattr(optimizer, "optimizer") and seen < 8:
        optimizer, seen = optimizer.optimizer, seen + 1
    return optimizer


def steps_per_epoch(trainer: Any) -> int | None:
    """Optimizer steps in one training epoch, per rank: ``ceil(batches / accumulate_grad_batches)``, or
    ``None`` while the number of batches is unknown (an ``IterableDataset`` without ``__len__``, or before
    the train loader is set up)."""
    batches = trainer.num_training_batches
    if not is_number(batches) or batches <= 0:
        return None
    accumulate = max(1, int(getattr(trainer, "accumulate_grad_batches", 1)))
    return math.ceil(batches / accumulate)


def total_steps(trainer: Any) -> int | None:
    """Optimizer steps in the whole fit (``trainer.estimated_stepping_batches``), or ``None`` if endless."""
    total = float(trainer.estimated_stepping_batches)  # also sets up the train loader
    return int(total) if math.isfinite(total) and total > 0 else None


def run_size(trainer: Any) -> tuple[int | None, int | None]:
    """``(steps_per_epoch, total_steps)`` of the fit, ``None`` where unknown; sets up the train loader if needed."""
    total = total_steps(trainer)
    fit_loop: Any = getattr(trainer, "fit_loop", None)
    if getattr(trainer, "train_dataloader", None) is None and hasattr(fit_loop, "setup_data"):
        fit_loop.setup_data()  # an endless run (max_epochs=-1, max_time) skips it, yet its epochs have a length
    return steps_per_epoch(trainer), total


def is_automatic_optimization(pl_module: Any) -> bool:
    """Whether the LightningModule uses automatic optimization (Lightning steps the optimizers)."""
    return bool(getattr(pl_module, "automatic_optimization", True))
