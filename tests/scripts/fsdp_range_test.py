"""Runs the LR range test under FSDP2 on CPU (``ModelParallelStrategy``, 2 ranks over gloo) and writes, per rank,
what it saw.

``tests/tuner/test_fsdp.py`` runs this file with ``subprocess.run``: the strategy's launcher re-executes
``sys.argv``, so it must never start inside pytest. The module shards itself in ``configure_model`` with
``fully_shard`` (each layer, then the root); its parameters and the optimizer's state are DTensors.

Each rank writes ``<output>/<phase>-rank<R>.json``:

* ``result``: the range test's result (curve and suggestion) as that rank holds it;
* ``shards_equal`` / ``grads_equal`` / ``state_equal`` / ``rng_equal``: whether the rank's local shards of every
  parameter and of its gradient, its local shards of the optimizer's state and the torch random state after the
  test are bit for bit those before it (``WarmStep`` makes the state and the gradients non-empty first);
* ``shards_before``: a digest of the local shards (to check that the ranks hold different shards);
* ``lrs`` / ``losses``: the rate and the (rank-reduced) loss of every training step after the test.

Usage::

    python tests/scripts/fsdp_range_test.py OUTPUT_DIR [--phases cyclic,one_cycle]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # tests/scripts, for ddp_run.finish

import pytorch_lightning as pl
import torch
from ddp_run import finish
from pytorch_lightning.strategies import ModelParallelStrategy
from torch.distributed.tensor import DTensor
from torch.utils.data import DataLoader, TensorDataset

from lightning_clr import CyclicLR, LRRangeTest, OneCycleLR

torch.set_num_threads(1)

NUM_SAMPLES = 256
BATCH_SIZE = 8  # 16 batches per rank an epoch after the distributed sampler
EPOCHS = 2


def local(tensor: torch.Tensor) -> torch.Tensor:
    """This rank's shard of a DTensor, or the tensor itself."""
    return tensor.to_local() if isinstance(tensor, DTensor) else tensor


class ShardedNet(pl.LightningModule):
    """A small MLP on a fixed regression task, sharded with FSDP2 in ``configure_model``."""

    def __init__(self) -> None:
        super().__init__()
        self.layers = torch.nn.ModuleList([torch.nn.Linear(16, 32), torch.nn.Linear(32, 32), torch.nn.Linear(32, 1)])
        self.train_losses: list[float] = []

    def configure_model(self) -> None:
        from torch.distributed._composable.fsdp import fully_shard

        mesh = self.device_mesh["data_parallel"]
        for layer in self.layers:
            fully_shard(layer, mesh=mesh)
        fully_shard(self, mesh=mesh)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < len(self.layers) - 1:
                x = torch.tanh(x)
        return x

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y = batch
        loss = torch.nn.functional.mse_loss(self(x), y)
        self.train_losses.append(float(self.trainer.strategy.reduce(loss.detach(), reduce_op="mean")))
        return loss

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.01, momentum=0.9)

    def train_dataloader(self) -> DataLoader:
        generator = torch.Generator().manual_seed(0)
        x = torch.randn(NUM_SAMPLES, 16, generator=generator)
        y = torch.sin(x[:, :4].sum(dim=1, keepdim=True)) + 0.1 * torch.randn(NUM_SAMPLES, 1, generator=generator)
        return DataLoader(TensorDataset(x, y), batch_size=BATCH_SIZE, shuffle=True,
                          generator=torch.Generator().manual_seed(1))


def local_state(optimizer: torch.optim.Optimizer) -> list[dict[str, torch.Tensor]]:
    return [{k: local(v).clone() for k, v in optimizer.state[p].items() if isinstance(v, torch.Tensor)}
            for group in optimizer.param_groups for p in group["params"] if p in optimizer.state]


class WarmStep(pl.Callback):
    """One real optimizer step before the test, so that the optimizer's state (momentum DTensors) is not empty,
    and a second backward whose gradients (sharded DTensors) are left in place: the test sets them to None for
    its sweep, so restoring them rebuilds DTensors from the saved local shards."""

    def on_train_start(self, trainer: pl.Trainer, pl_module: ShardedNet) -> None:
        optimizer = trainer.optimizers[0]
        x = torch.linspace(-1, 1, 4 * 16).reshape(4, 16)
        pl_module(x).square().mean().backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        pl_module(x).square().mean().backward()


class Before(pl.Callback):
    def __init__(self) -> None:
        self.shards: list[torch.Tensor] = []
        self.grads: list[torch.Tensor] = []
        self.state: list[dict[str, torch.Tensor]] = []
        self.rng = torch.Tensor()

    def on_train_start(self, trainer: pl.Trainer, pl_module: ShardedNet) -> None:
        assert all(isinstance(p, DTensor) for p in pl_module.parameters()), "the parameters are DTensors"
        self.shards = [local(p).detach().clone() for p in pl_module.parameters()]
        self.grads = [local(p.grad).clone() for p in pl_module.parameters() if p.grad is not None]
        assert len(self.grads) == len(self.shards) and all(isinstance(p.grad, DTensor) for p in pl_module.parameters())
        self.state = local_state(trainer.optimizers[0])
        assert self.state and all(isinstance(v, DTensor) for s in trainer.optimizers[0].state.values()
                                  for v in s.values() if isinstance(v, torch.Tensor)), "the state holds DTensors"
        self.rng = torch.get_rng_state()


class After(pl.Callback):
    """Placed after the LRRangeTest: compares with ``Before`` and records the training that follows."""

    def __init__(self, output: str, phase: str, before: Before, test: LRRangeTest) -> None:
        self.output, self.phase, self.before, self.test = output, phase, before, test
        self.lrs: list[float] = []
        self.record: dict[str, Any] = {}

    def on_train_start(self, trainer: pl.Trainer, pl_module: ShardedNet) -> None:
        result = self.test.ensure_result(trainer, pl_module)
        shards = [local(p).detach() for p in pl_module.parameters()]
        state = local_state(trainer.optimizers[0])
        grads = [p.grad for p in pl_module.parameters()]
        self.record = dict(
            rank=trainer.global_rank, world_size=trainer.world_size, result=result.to_dict(),
            shards_equal=len(shards) == len(self.before.shards) and all(
                torch.equal(a, b) for a, b in zip(shards, self.before.shards, strict=True)),
            grads_equal=all(isinstance(g, DTensor) for g in grads) and len(grads) == len(self.before.grads) and all(
                torch.equal(local(a), b) for a, b in zip(grads, self.before.grads, strict=True)),
            state_equal=len(state) == len(self.before.state) and all(
                a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
                for a, b in zip(state, self.before.state, strict=True)),
            rng_equal=torch.equal(torch.get_rng_state(), self.before.rng),
            shards_before=[float(s.double().sum()) for s in self.before.shards],
            shard_sizes=[s.numel() for s in self.before.shards],
        )
        pl_module.train_losses.clear()

    def on_before_optimizer_step(self, trainer: pl.Trainer, pl_module: ShardedNet, optimizer: Any) -> None:
        self.lrs.append(float(optimizer.param_groups[0]["lr"]))

    def on_train_end(self, trainer: pl.Trainer, pl_module: ShardedNet) -> None:
        self.record.update(lrs=self.lrs, losses=list(pl_module.train_losses), global_step=trainer.global_step)
        with open(os.path.join(self.output, f"{self.phase}-rank{trainer.global_rank}.json"), "w") as file:
            json.dump(self.record, file)


def run_phase(output: str, phase: str) -> pl.Trainer:
    pl.seed_everything(0, workers=True, verbose=False)
    test = LRRangeTest(plot=False, verbose=False)
    if phase == "cyclic":
        schedule: pl.Callback = CyclicLR(base_lr="auto", max_lr="auto", step_size_up="auto")
    else:
        schedule = OneCycleLR(max_lr="auto")
    before = Before()
    callbacks = [WarmStep(), before, test, After(output, phase, before, test), schedule]
    trainer = pl.Trainer(
        strategy=ModelParallelStrategy(data_parallel_size=2, tensor_parallel_size=1), accelerator="cpu",
        devices=2, max_epochs=EPOCHS, logger=False, enable_progress_bar=False, enable_model_summary=False,
        enable_checkpointing=False, num_sanity_val_steps=0, default_root_dir=output, callbacks=callbacks)
    trainer.fit(ShardedNet())
    return trainer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output")
    parser.add_argument("--phases", default="cyclic,one_cycle")
    args = parser.parse_args(argv)
    os.makedirs(args.output, exist_ok=True)
    trainers = [run_phase(args.output, phase) for phase in args.phases.split(",")]
    return finish(trainers)


if __name__ == "__main__":
    sys.exit(main())
