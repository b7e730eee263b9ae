"""The LR range test alone: :func:`lr_range_test` runs it with no training after it."""

from __future__ import annotations

import importlib
from typing import Any

from lightning_clr.tuner.range_test import RESULT_NAME, LRRangeTest
from lightning_clr.tuner.result import RangeTestResult

__all__ = ["lr_range_test"]


def lr_range_test(    model: Any,
    train_dataloaders: Any = None,
    datamodule: Any = None,
    trainer: Any = None,
    **range_test_kwargs: Any,
) -> RangeTestResult:
    """Runs an LR range test alone, with no training after it, and returns its result.

    The model, its optimizer and the random states are as before when it returns.

    Example::

        result = lr_range_test(model, datamodule=dm, num_steps=200)
        print(result.base_lr, result.max_lr)
        result.plot("range_test.png")

    Args:
        model: the LightningModule.
        train_dataloaders: the training data (as for `Trainer.fit`), or `None` for the model's or the
            datamodule's.
        datamodule: a LightningDataModule, or `None`.
        trainer: the Trainer to run on (its devices, precision, accumulation); by default a quiet one on
            the automatic accelerator with one device, no logger and no checkpoints.
        **range_test_kwargs: arguments of `LRRangeTest` (`plot` is `False` unless given).

    Returns:
        The result, with the curve and (if the curve allows one) the suggestion.

    Raises:
        RangeTestError: if the curve gave no suggestion (``error.result`` holds the curve).
        ValueError: bad arguments, or ``trainer`` already has an :class:`LRRangeTest` and arguments were given.
    """
    existing = [] if trainer is None else [cb for cb in trainer.callbacks if isinstance(cb, LRRangeTest)]
    if existing and range_test_kwargs:
        raise ValueError(
            "Expected either a trainer with its own LRRangeTest or range test arguments, but got both "
            f"(arguments {sorted(range_test_kwargs)})."
        )
    if existing:
        callback = existing[0]
    else:
        range_test_kwargs.setdefault("plot", False)
        callback = LRRangeTest(**range_test_kwargs)
    own_trainer = trainer is None
    if own_trainer:
        trainer = _quiet_trainer(model)
    added = not existing
    if added:
        trainer.callbacks.append(callback)
    callback._stop_after_test = True
    callback._run_unknown = own_trainer  # the quiet Trainer's one epoch says nothing of the training to come
    try:
        trainer.fit(model, train_dataloaders=train_dataloaders, datamodule=datamodule)
    finally:
        callback._stop_after_test = callback._run_unknown = False
        if added:
            trainer.callbacks.remove(callback)
    if callback.result is None:
        raise RuntimeError(
            "The range test ran in other processes (e.g. strategy='ddp_spawn') and its result is not here; "
            f"read {RESULT_NAME} from the log directory, or use strategy='ddp'."
        )
    return callback.result.require_suggestion()


def _quiet_trainer(model: Any) -> Any:
    unified = any(cls.__module__.startswith("lightning.pytorch") for cls in type(model).__mro__)
    trainer_class = importlib.import_module("lightning.pytorch" if unified else "pytorch_lightning").Trainer
    return trainer_class(
        max_epochs=1, devices=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, num_sanity_val_steps=0, limit_val_batches=0,
    )

