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

__all__ = ["LogCadence", "global_step_counter", "is_automatic_optimization", "logging_step", "run_size",
           "steps_per_epoch", "total_steps", "unwrap_optimizer"]


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

    A private read, kept here: ``trainer.global_step`` is a chain of properties (trainer, fit loop, epoch loop,
    LightningModule, progress tracker), several Python calls on every read, while the schedule callbacks read
    the count at every batch.

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


def logging_step(trainer: Any) -> int:
    """The step Lightning logs under: its count of batches that stepped (``global_step`` as a fallback)."""
    loop = getattr(getattr(trainer, "fit_loop", None), "epoch_loop", None)
    return int(getattr(loop, "_batches_that_stepped", trainer.global_step))


class LogCadence:
    """Whether a training batch logs, by Lightning's rule, asked at every batch start.

    Lightning's rule (``_LoggerConnector.should_update_logs``): log when ``(batches_that_stepped + 1) %
    log_every_n_steps == 0``, or when the Trainer should stop; never with ``log_every_n_steps=0`` or no logger.
    The rule and its count live on private objects (the logger connector, the epoch loop's
    ``_batches_that_stepped``); this class is the one place that reads them. It reads the count directly where it
    finds it as a plain int (one attribute read a batch, instead of the connector's chain of properties), and
    otherwise, on another Lightning layout, asks the connector.
    """

    __slots__ = ("_every", "_loop", "_trainer", "active")

    def __init__(self, trainer: Any) -> None:
        self._trainer = trainer
        every = getattr(trainer, "log_every_n_steps", None)
        loop = getattr(getattr(trainer, "fit_loop", None), "epoch_loop", None)
        ok = isinstance(every, int) and not isinstance(every, bool) and isinstance(
            getattr(loop, "_batches_that_stepped", None), int)
        self.active = bool(getattr(trainer, "loggers", None)) and every != 0
        self._loop = loop if ok else None
        self._every = every if ok else 1

    def due(self) -> bool:
        """Whether the batch about to run logs."""
        if not self.active:
            return False
        if self._loop is not None:
            return (self._loop._batches_that_stepped + 1) % self._every == 0 or bool(self._trainer.should_stop)
        connector = getattr(self._trainer, "_logger_connector", None)
        if connector is not None and hasattr(connector, "should_update_logs"):
            return bool(connector.should_update_logs)
        return self._trainer.global_step % max(1, self._trainer.log_every_n_steps) == 0  # pragma: no cover
