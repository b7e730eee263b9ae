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

__all__ = ["global_step_counter", "is_automatic_optimization", "run_size", "steps_per_epoch", "total_steps",
           "unwrap_optimizer"]


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


class _GlobalStep:
    """``trainer.global_step`` behind a ``completed`` attribute: the fallback of :func:`global_step_counter`."""

    __slots__ = ("trainer",)

    def __init__(self, trainer: Any) -> None:
        self.trainer = trainer

    @property
    def completed(self) -> int:
        return int(self.trainer.global_step)


def global_step_counter(trainer: Any) -> Any:
    """An object whose ``completed`` attribute is ``trainer.global_step``, cheap to read on every step.

    Under automatic optimization Lightning's ``global_step`` is the count of completed optimizer steps in
    ``fit_loop.epoch_loop.automatic_optimization.optim_progress.optimizer.step.total``, reached through four
    properties on each read; reading that tracker's ``completed`` directly costs a twentieth. It is used only
    when it is found and agrees with ``trainer.global_step`` now (call this when the count is restored, at train
    start); otherwise, or on any other Lightning layout, the result reads ``trainer.global_step`` itself.
    Lightning restores a checkpoint's counts into this tracker in place, so it stays the one to read.
    """
    try:
        loop = trainer.fit_loop.epoch_loop.automatic_optimization
        tracker = loop.optim_progress.optimizer.step.total
        if type(tracker.completed) is int and tracker.completed == trainer.global_step:
            return tracker
    except AttributeError:
        pass
    return _GlobalStep(trainer)
