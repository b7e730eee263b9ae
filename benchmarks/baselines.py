"""The optimizers a user picks instead of a learning-rate search, as the benchmarks train them: Prodigy and
schedule-free, each at its authors' defaults."""

from __future__ import annotations

from typing import Any

import torch

__all__ = ["baseline_optimizer"]


def baseline_optimizer(name: str, params: Any, total_steps: int, weight_decay: float, adam: bool,
                       momentum: float = 0.9) -> Any:
    """What a user picks instead of a learning-rate search, each at its authors' defaults, as
    ``configure_optimizers`` returns it.

    Args:
        name: ``"prodigy"``: ``prodigyopt.Prodigy(lr=1.0)`` with a cosine decay over ``total_steps`` (its authors'
            advice); ``"schedulefree"``: ``schedulefree.AdamWScheduleFree`` (``adam``) or ``SGDScheduleFree`` at
            its default rate, with a 5% warm-up.
        params: the parameters to train.
        total_steps: the run's optimizer steps (Prodigy's decay, schedule-free's warm-up).
        weight_decay: the optimizer's weight decay.
        adam: whether the model's own optimizer is Adam-family (schedule-free's AdamW variant then).
        momentum: schedule-free SGD's momentum.

    Raises:
        ValueError: for another ``name``.
    """
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
