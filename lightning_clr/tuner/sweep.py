"""The range test's loop: optimizer steps on the training data at a rising rate, recording the loss.

It runs inside :func:`~lightning_clr.tuner.isolation.isolated`, so whatever it changes is put back. Its steps
call ``training_step`` through the strategy (DDP averages gradients, the precision's autocast applies), honour
``accumulate_grad_batches``, gradient clipping and the GradScaler, and step the optimizers; they fire no other
callback's hooks, log nothing and do not advance ``global_step``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from lightning_clr._param_groups import update_groups
from lightning_clr.tuner.data import batches

__all__ = ["RETURN_FALL", "Curve", "optimizer_family", "run_sweep"]

RETURN_FALL = 0.1
"""A loss that fell by this share of its starting level (the median of the first three steps) and then climbed
back above that level has diverged, even when it stays under ``divergence_threshold`` times its best (a
network whose units died sits at the loss of a constant prediction)."""


@dataclass
class Curve:
    """What a sweep recorded: the rate and the loss of each optimizer step, and why it ended."""

    lrs: list[float]
    losses: list[float]
    stopped_early: bool
    reason: str


def optimizer_family(optimizers: list[torch.optim.Optimizer]) -> str:
    """``"adam"`` if a param group has ``betas`` (Adam, AdamW, NAdam, RAdam...), else ``"sgd"``."""
    adaptive = any("betas" in group for optimizer in optimizers for group in optimizer.param_groups)
    return "adam" if adaptive else "sgd"


def _no_log(*args: Any, **kwargs: Any) -> None:
    """Stands in for ``LightningModule.log`` during the test: its steps are not the real training's."""


def _loss_of(output: Any) -> torch.Tensor | None:
    if output is None:
        return None
    loss = output.get("loss") if isinstance(output, dict) else output
    if not isinstance(loss, torch.Tensor):
        raise ValueError(
            "Expected training_step to return a loss tensor, a dict with a 'loss' tensor or None, but got "
            f"{type(output).__name__}."
        )
    if not loss.requires_grad:
        raise ValueError("Expected training_step's loss to require grad, but it does not (was it detached?).")
    return loss


def _prepare(pl_module: Any, optimizers: list[torch.optim.Optimizer]) -> None:
    pl_module.__dict__["log"] = _no_log
    pl_module.__dict__["log_dict"] = _no_log
    for optimizer in optimizers:
        # The sweep's steps are not the training's: step hooks (e.g. count_skipped_steps=False) see none.
        if hasattr(optimizer, "_optimizer_step_pre_hooks"):
            optimizer._optimizer_step_pre_hooks = type(optimizer._optimizer_step_pre_hooks)()
        if hasattr(optimizer, "_optimizer_step_post_hooks"):
            optimizer._optimizer_step_post_hooks = type(optimizer._optimizer_step_post_hooks)()
        optimizer.zero_grad(set_to_none=True)
    pl_module.train()


def run_sweep(trainer: Any, pl_module: Any, optimizers: list[torch.optim.Optimizer], rate: Callable[[int], float],
              num_steps: int, smoothing: float, divergence_threshold: float | None) -> Curve:
    """Takes up to ``num_steps`` optimizer steps, step ``k`` at rate ``rate(k)``, and records the losses.

    Args:
        trainer: the Trainer (its strategy, precision plugin, accumulation and clipping are used).
        pl_module: the LightningModule.
        optimizers: the torch optimizers to step.
        rate: the rate of each step (a ramp schedule).
        num_steps: the most optimizer steps.
        smoothing: the weight of a new loss in the bias-corrected moving average divergence is judged on.
        divergence_threshold: end when the smoothed loss exceeds `best + (threshold - 1) * |best|` (this many
            times the lowest smoothed loss when it is positive), or climbs back above its starting level after
            a fall of `RETURN_FALL`; `None`: only a NaN or infinite loss ends it.

    Returns:
        The recorded :class:`Curve`; a NaN or infinite loss ends it and is not recorded.
    """
    accumulate = max(1, int(getattr(trainer, "accumulate_grad_batches", 1)))
    strategy = trainer.strategy
    scaler = getattr(trainer.precision_plugin, "scaler", None)
    _prepare(pl_module, optimizers)
    lrs: list[float] = []
    losses: list[float] = []
    avg, best, start_level = 0.0, math.inf, math.inf
    beta = 1.0 - smoothing
    source = batches(trainer.train_dataloader, max_restarts=num_steps * accumulate + 1)
    reason = f"completed num_steps={num_steps}"
    stopped_early = False
    step = 0
    with torch.enable_grad():
        while step < num_steps:
            lr = rate(step)
            for optimizer in optimizers:
                update_groups(optimizer, "lr", lr)
            window: list[torch.Tensor] = []
            for batch, batch_idx in source:
                batch = strategy.batch_to_device(batch, dataloader_idx=0)
                loss = _loss_of(strategy.training_step(batch, batch_idx))
                if loss is None:
                    continue
                window.append(loss.detach())
                scaled = loss / accumulate if accumulate > 1 else loss
                if scaler is not None:
                    scaled = scaler.scale(scaled)
                scaled.backward()
                if len(window) == accumulate:
                    break
            if not window:
                reason, stopped_early = f"the training data ran out after {step} optimizer steps", True
                break
            mean = torch.stack([w.float() for w in window]).mean()
            value = float(strategy.reduce(mean, reduce_op="mean"))
            if not math.isfinite(value):
                reason, stopped_early = f"the loss was {value} at lr={lr:.4g} (step {step})", True
                break
            for optimizer in optimizers:
                if scaler is not None:
                    scaler.unscale_(optimizer)
                pl_module.configure_gradient_clipping(
                    optimizer, gradient_clip_val=trainer.gradient_clip_val,
                    gradient_clip_algorithm=trainer.gradient_clip_algorithm)
                if scaler is not None:
                    scaler.step(optimizer)
                else:
                    optimizer.step()
                optimizer.zero_grad(set_to_none=True)
            if scaler is not None:
                scaler.update()
            lrs.append(lr)
            losses.append(value)
            avg = beta * avg + smoothing * value
            smoothed = avg / (1.0 - beta ** len(losses))
            best = min(best, smoothed)
            step += 1
            if len(losses) == 3:
                start_level = sorted(losses)[1]
            if divergence_threshold is None:
                continue
            if smoothed > best + (divergence_threshold - 1.0) * abs(best):
                reason = (f"the loss diverged at lr={lr:.4g} (step {step - 1}): smoothed loss {smoothed:.4g} > "
                          f"{divergence_threshold:g} x best {best:.4g}")
                stopped_early = step < num_steps
                break
            if best < start_level - RETURN_FALL * abs(start_level) and smoothed > start_level:
                reason = (f"the loss diverged at lr={lr:.4g} (step {step - 1}): after falling to {best:.4g}, the "
                          f"smoothed loss climbed back above its starting level {start_level:.4g}")
                stopped_early = step < num_steps
                break
    for optimizer in optimizers:
        optimizer.zero_grad(set_to_none=True)
    return Curve(lrs, losses, stopped_early, reason)
