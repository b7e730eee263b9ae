"""Tiny LightningModules for integration tests; they record what each optimizer step used."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import pytorch_lightning as pl
import torch
from pytorch_lightning.loggers import Logger
from pytorch_lightning.plugins.precision import MixedPrecision
from torch.utils.data import DataLoader, TensorDataset

#: The marks of a test that needs a CUDA device: marked ``cuda`` and skipped without one (CI has none).
ON_CUDA_MARKS = [pytest.mark.cuda, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]


class MinimalLogger(Logger):
    """A Logger that only needs ``log_metrics``: tests record what the callbacks log."""

    @property
    def name(self) -> str:
        return type(self).__name__

    @property
    def version(self) -> int:
        return 0

    def log_hyperparams(self, params: Any, *args: Any, **kwargs: Any) -> None:
        pass


class ListLogger(MinimalLogger):
    """Keeps every logged row in memory: ``rows`` holds ``(step, {name: value})``."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[tuple[int | None, dict[str, float]]] = []

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        self.rows.append((step, {k: float(v) for k, v in metrics.items()}))

    def series(self, key: str) -> list[tuple[int | None, float]]:
        """``(step, value)`` of every row that holds ``key``."""
        return [(step, row[key]) for step, row in self.rows if key in row]


def trainer_kwargs(tmp_path: Any, **overrides: Any) -> dict[str, Any]:
    """Quiet, CPU-only Trainer arguments for tests."""
    kwargs: dict[str, Any] = dict(
        default_root_dir=str(tmp_path),
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        num_sanity_val_steps=0,
    )
    kwargs.update(overrides)
    return kwargs


class RecordingModel(pl.LightningModule):
    """A linear model on random data. ``self.used`` gets one entry per optimizer step:
    ``(global_step, [lr per group], [momentum or betas[0] per group])``, read in
    ``on_before_optimizer_step``, i.e. the values that step really applies.

    Args:
        optimizer: a factory ``params -> optimizer``; SGD(lr=1.0, momentum=0.5) by default.
        num_batches: batches per epoch (batch size 2).
        groups: split the parameters into this many param groups (1 or 2).
    """

    def __init__(
        self,
        optimizer: Callable[[Any], torch.optim.Optimizer] | None = None,
        num_batches: int = 10,
        groups: int = 1,
        seed: int = 0,
    ) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.layer = torch.nn.Linear(4, 4)
        self.head = torch.nn.Linear(4, 1)
        self.optimizer_factory = optimizer
        self.num_batches = num_batches
        self.groups = groups
        generator = torch.Generator().manual_seed(seed)
        self.data = torch.randn(num_batches * 2, 4, generator=generator)
        self.used: list[tuple[int, list[float], list[float | None]]] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.relu(self.layer(x)))

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        return self(batch[0]).pow(2).mean()

    def on_before_optimizer_step(self, optimizer: Any) -> None:
        lrs, moms = [], []
        for group in optimizer.param_groups:
            lr = group["lr"]
            lrs.append(float(lr))
            if "betas" in group:
                moms.append(float(group["betas"][0]))
            elif "momentum" in group:
                moms.append(float(group["momentum"]))
            else:
                moms.append(None)
        self.used.append((self.trainer.global_step, lrs, moms))

    def _param_groups(self) -> Any:
        if self.groups == 1:
            return self.parameters()
        return [{"params": self.layer.parameters()}, {"params": self.head.parameters()}]

    def configure_optimizers(self) -> Any:
        if self.optimizer_factory is not None:
            return self.optimizer_factory(self._param_groups())
        return torch.optim.SGD(self._param_groups(), lr=1.0, momentum=0.5)

    def train_dataloader(self) -> DataLoader:
        return DataLoader(TensorDataset(self.data), batch_size=2)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(TensorDataset(self.data[:4]), batch_size=2)

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self.log("val_loss", self(batch[0]).pow(2).mean())


class InfLossModel(RecordingModel):
    """Returns an infinite loss on ``inf_batches``: the GradScaler skips those updates. ``updated_at`` lists the
    steps whose update really happened (a torch post-step hook, which a skipped step never runs).

    Args:
        inf_batches: the batch indices whose loss is infinite.
        manual: manual optimization (``training_step`` steps the optimizer itself).
        **kwargs: arguments of :class:`RecordingModel`.
    """

    def __init__(self, inf_batches: tuple[int, ...], manual: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.inf_batches = set(inf_batches)
        self.automatic_optimization = not manual
        self.updated_at: list[int] = []

    def training_step(self, batch: Any, batch_idx: int) -> Any:
        loss = super().training_step(batch, batch_idx)
        if batch_idx in self.inf_batches:
            loss = loss * float("inf")
        if self.automatic_optimization:
            return loss
        optimizer = self.optimizers()
        optimizer.zero_grad()
        self.manual_backward(loss)
        optimizer.step()
        return None

    def configure_optimizers(self) -> Any:
        optimizer = super().configure_optimizers()
        optimizer.register_step_post_hook(self._count_update)
        return optimizer

    def _count_update(self, optimizer: Any, args: Any, kwargs: Any) -> None:
        self.updated_at.append(len(self.used) - 1)


def amp_plugin(device: str = "cpu") -> MixedPrecision:
    """``"16-mixed"`` with a GradScaler of ``device`` (on CPU Lightning would make it bfloat16, with no scaler).
    ``init_scale=1``: no overflow of its own at the first steps, only a model's injected infs are skipped."""
    return MixedPrecision("16-mixed", device, torch.amp.GradScaler(device, init_scale=1.0))


def used_lrs(model: RecordingModel, group: int = 0) -> list[float]:
    return [lrs[group] for _, lrs, _ in model.used]


def used_momenta(model: RecordingModel, group: int = 0) -> list[float | None]:
    return [moms[group] for _, _, moms in model.used]


def torch_reference(
    optimizer_factory: Callable[[Any], torch.optim.Optimizer],
    make_scheduler: Callable[[torch.optim.Optimizer], Any],
    steps: int,
) -> list[tuple[float, float | None]]:
    """``(lr, momentum)`` that each of ``steps`` ``optimizer.step()`` calls of a plain torch loop used, with the
    torch scheduler stepped once after every optimizer step (the per-iteration pattern). The momentum is
    ``betas[0]`` for Adam-like optimizers and ``None`` without either."""
    optimizer = optimizer_factory([torch.zeros(1, requires_grad=True)])
    scheduler = make_scheduler(optimizer)
    trace: list[tuple[float, float | None]] = []
    for _ in range(steps):
        group = optimizer.param_groups[0]
        momentum = group["betas"][0] if "betas" in group else group.get("momentum")
        trace.append((float(group["lr"]), None if momentum is None else float(momentum)))
        optimizer.step()
        scheduler.step()
    return trace


class EndsDistributedCleanly(pl.Callback):
    """For ``ddp_spawn`` fits: at the end of each rank's fit, the ranks meet and each destroys its gloo group.

    Lightning destroys only NCCL groups (at exit), so the spawned ranks tore their gloo group down during
    interpreter shutdown in no particular order, and a rank whose peer or whose TCPStore (on rank 0) was
    already gone could abort ("terminate called without an active exception", SIGABRT; seen once in CI with
    Lightning 2.5.1). The callbacks' ``teardown`` is the last hook of a fit, after the strategy's teardown;
    what Lightning's spawn launcher does after it (collecting rank 0's results) needs no collective.
    ``tests/scripts/ddp_run.py`` does the same at the end of its ``ddp`` runs (``finish``).
    """

    def teardown(self, trainer: Any, pl_module: Any, stage: str) -> None:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            dist.barrier()
            dist.destroy_process_group()
