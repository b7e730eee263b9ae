"""A tiny model that injects a NaN, an inf or a reported-loss spike at given optimizer steps, and a DDP run of
:class:`~lightning_clr.DivergenceGuard` on 2 CPU ranks (gloo, ``ddp_spawn``) that writes what each rank saw.

``tests/callbacks/test_guard.py`` imports this file: the spawned ranks unpickle the classes below, so they live
at module level and hold no closures. Each rank writes ``<output>/rank<R>.json`` with the guard's events, the
rate of every optimizer step and the final weights.

Usage::

    python tests/scripts/guard_ddp_run.py OUTPUT_DIR
"""

from __future__ import annotations

import json
import math
import sys
import warnings
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/, for helpers

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import ModelCheckpoint
from torch.utils.data import DataLoader, TensorDataset

from lightning_clr import DivergenceGuard, OneCycleLR

from helpers import EndsDistributedCleanly, RecordingModel

torch.set_num_threads(1)

STEPS = 50  #: optimizer steps of the single-process runs (one epoch of 50 equal batches)
DDP_STEPS = 30  #: optimizer steps per rank of the DDP run
DDP_NAN_STEP = 13  #: rank 1 reports a NaN loss (and NaN gradients) at this step


class InjectingModel(RecordingModel):
    """RecordingModel on one fixed batch (so its loss falls smoothly) that corrupts the loss at given steps.

    ``inject[step] = m``: a non-finite ``m`` multiplies the loss (NaN or inf gradients, as in a real blow-up);
    a finite one multiplies only the reported value (the gradients stay true). ``losses`` holds every reported
    loss, ``updates`` the optimizer updates that really happened (a step the GradScaler skips runs no hook).

    Args:
        inject: optimizer step -> multiplier.
        rank: inject on this global rank only (``None``: every rank).
        num_batches: batches per epoch.
    """

    def __init__(self, inject: dict[int, float] | None = None, rank: int | None = None,
                 num_batches: int = STEPS) -> None:
        super().__init__(num_batches=num_batches)
        self.inject = dict(inject or {})
        self.rank = rank
        generator = torch.Generator().manual_seed(1)
        self.fixed = torch.randn(8, 4, generator=generator)
        self.target = torch.randn(8, 1, generator=generator)
        self.losses: list[float] = []
        self.updates = 0

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        fixed, target = self.fixed.to(self.device), self.target.to(self.device)  # the same tensors on the CPU
        loss = (self(fixed) - target).pow(2).mean()
        factor = self.inject.get(self.trainer.global_step)
        if factor is not None and (self.rank is None or self.rank == self.trainer.global_rank):
            loss = loss * factor if not math.isfinite(factor) else loss + (factor - 1) * loss.detach()
        return loss

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        self.losses.append(float(outputs["loss"]))

    def configure_optimizers(self) -> Any:
        optimizer = torch.optim.SGD(self.parameters(), lr=1.0, momentum=0.5)
        optimizer.register_step_post_hook(_count_update(self))
        return optimizer

    def train_dataloader(self) -> DataLoader:
        return DataLoader(TensorDataset(torch.zeros(self.num_batches, 1)), batch_size=1)


class _count_update:
    def __init__(self, model: InjectingModel) -> None:
        self.model = model

    def __call__(self, *args: Any) -> None:
        self.model.updates += 1


class RankWriter(pl.Callback):
    def __init__(self, output: str) -> None:
        self.output = output

    def on_fit_end(self, trainer: pl.Trainer, pl_module: Any) -> None:
        guard = next(cb for cb in trainer.callbacks if isinstance(cb, DivergenceGuard))
        events = [{k: e[k] for k in ("step", "reason", "kept_step", "rate_scale")} for e in guard.events]
        weights = [float(v) for p in pl_module.parameters() for v in p.detach().reshape(-1)]
        record = {"events": events, "used": pl_module.used, "weights": weights,
                  "monitor": guard._monitor.state_dict()}  # every window mean leaves its trace in the levels
        (Path(self.output) / f"rank{trainer.global_rank}.json").write_text(json.dumps(record))


def run(output: str, inject: dict[int, float] | None = None, save_every: int | None = None,
        ckpt_path: str | None = None) -> None:
    """The DDP fit: rank 1's loss multiplied at the steps of ``inject`` (default: a NaN at :data:`DDP_NAN_STEP`);
    with ``save_every``, a checkpoint every that many steps in ``<output>/ckpt`` (every rank's open window goes into
    it); ``ckpt_path`` resumes from one."""
    Path(output).mkdir(parents=True, exist_ok=True)
    saver = [] if save_every is None else [ModelCheckpoint(dirpath=str(Path(output) / "ckpt"), save_top_k=-1,
                                                           every_n_train_steps=save_every)]
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*DivergenceGuard: at step.*")
        warnings.filterwarnings("ignore", message=".*resuming from a checkpoint that ended before the epoch ended")
        trainer = pl.Trainer(
            default_root_dir=output, accelerator="cpu", devices=2, strategy="ddp_spawn", max_steps=DDP_STEPS,
            logger=False, enable_progress_bar=False, enable_model_summary=False, enable_checkpointing=bool(saver),
            num_sanity_val_steps=0, limit_val_batches=0,
            callbacks=[OneCycleLR(max_lr=0.05), DivergenceGuard(check_every_n_steps=5, keep_every_n_steps=10),
                       RankWriter(output), EndsDistributedCleanly(), *saver],
        )
        model = InjectingModel(inject={DDP_NAN_STEP: math.nan} if inject is None else inject, rank=1,
                               num_batches=2 * DDP_STEPS)
        trainer.fit(model, ckpt_path=ckpt_path)


if __name__ == "__main__":
    run(sys.argv[1])
