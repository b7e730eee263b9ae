"""Runs :class:`~lightning_clr.DivergenceGuard` under FSDP2 on CPU (``ModelParallelStrategy``, 2 ranks over gloo) and
writes, per rank, what it saw.

``tests/callbacks/test_guard_fsdp.py`` runs this file with ``subprocess.run`` (the strategy's launcher re-executes
``sys.argv``). The module is ``fsdp_range_test.py``'s ``ShardedNet`` (sharded with ``fully_shard``: its parameters
and the optimizer's state are DTensors); its loss is NaN at step ``NAN_AT`` on every rank, so the weights turn NaN
and the guard must roll back each rank's own shards to the state it kept at step ``KEEP``.

Each rank writes ``guard-rank<R>.json``: ``events`` (the guard's), ``kept_equal`` (whether the rank's local shards
of every parameter and of the optimizer's state, right after the rollback, are bit for bit those at the kept step),
``lrs`` / ``losses`` (the rate and the rank-reduced loss of every step) and ``finite`` (the final weights).

Usage::

    python tests/scripts/guard_fsdp_run.py OUTPUT_DIR
"""

from __future__ import annotations

import json
import os
import sys
import warnings
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # tests/scripts

import pytorch_lightning as pl
import torch
from ddp_run import finish
from fsdp_range_test import ShardedNet, local, local_state
from pytorch_lightning.strategies import ModelParallelStrategy

from lightning_clr import DivergenceGuard, OneCycleLR

torch.set_num_threads(1)

KEEP, NAN_AT, CHECK, EPOCHS = 10, 13, 5, 2  # 16 steps an epoch: 32 steps


class NanAt(ShardedNet):
    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        loss = super().training_step(batch, batch_idx)
        return loss * float("nan") if self.global_step == NAN_AT else loss


class Record(pl.Callback):
    """Placed after the guard: the local shards at the kept step and right after the rollback, the rates."""

    def __init__(self, output: str) -> None:
        self.output = output
        self.lrs: list[float] = []
        self.kept: list[torch.Tensor] = []
        self.after: list[torch.Tensor] = []

    def snapshot(self, trainer: pl.Trainer, pl_module: ShardedNet) -> list[torch.Tensor]:
        return ([local(p).detach().clone() for p in pl_module.parameters()]
                + [v.clone() for s in local_state(trainer.optimizers[0]) for v in s.values()])

    def on_before_optimizer_step(self, trainer: pl.Trainer, pl_module: ShardedNet, optimizer: Any) -> None:
        self.lrs.append(float(optimizer.param_groups[0]["lr"]))

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: ShardedNet, *args: Any) -> None:
        if trainer.global_step == KEEP:
            self.kept = self.snapshot(trainer, pl_module)
        if trainer.global_step == NAN_AT + 2:  # the check after the NaN: the guard has rolled back
            self.after = self.snapshot(trainer, pl_module)

    def on_train_end(self, trainer: pl.Trainer, pl_module: ShardedNet) -> None:
        guard = next(cb for cb in trainer.callbacks if isinstance(cb, DivergenceGuard))
        record = dict(
            rank=trainer.global_rank, world_size=trainer.world_size, global_step=trainer.global_step,
            events=guard.events, lrs=self.lrs, losses=list(pl_module.train_losses),
            kept_equal=bool(self.kept) and len(self.kept) == len(self.after) and all(
                torch.equal(a, b) for a, b in zip(self.kept, self.after, strict=True)),
            finite=all(bool(torch.isfinite(local(p)).all()) for p in pl_module.parameters()),
        )
        with open(os.path.join(self.output, f"guard-rank{trainer.global_rank}.json"), "w") as file:
            json.dump(record, file)


def main(argv: list[str] | None = None) -> int:
    output = (argv or sys.argv[1:])[0]
    os.makedirs(output, exist_ok=True)
    pl.seed_everything(0, workers=True, verbose=False)
    callbacks = [OneCycleLR(max_lr=0.05), DivergenceGuard(check_every_n_steps=CHECK, keep_every_n_steps=KEEP),
                 Record(output)]
    trainer = pl.Trainer(
        strategy=ModelParallelStrategy(data_parallel_size=2, tensor_parallel_size=1), accelerator="cpu",
        devices=2, max_epochs=EPOCHS, logger=False, enable_progress_bar=False, enable_model_summary=False,
        enable_checkpointing=False, num_sanity_val_steps=0, default_root_dir=output, callbacks=callbacks)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*DivergenceGuard: at step.*")
        trainer.fit(NanAt())
    return finish([trainer])


if __name__ == "__main__":
    sys.exit(main())
