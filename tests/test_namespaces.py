"""Both Lightning namespaces: the callbacks work with ``lightning.pytorch`` (the unified ``lightning`` package)
as well as ``pytorch_lightning``: Trainer, LightningModule, checkpoints and LightningCLI."""

from __future__ import annotations

import sys
from typing import Any

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

L = pytest.importorskip("lightning.pytorch")
import pytorch_lightning as pl  # noqa: E402

from lightning_clr import CosineRestartsLR, CyclicLR, OneCycleLR, ScheduledLR  # noqa: E402
from lightning_clr.schedules import ConstantSchedule, CyclicSchedule, OneCycleSchedule  # noqa: E402

LR = CyclicSchedule(0.01, 0.1, 2)


class UnifiedModel(L.LightningModule):
    """A ``lightning.pytorch`` module; ``used`` records the lr each optimizer step applies."""

    def __init__(self, num_batches: int = 6) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.layer = torch.nn.Linear(4, 1)
        self.data = torch.randn(num_batches * 2, 4, generator=torch.Generator().manual_seed(0))
        self.used: list[float] = []

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        return self.layer(batch[0]).pow(2).mean()

    def on_before_optimizer_step(self, optimizer: Any) -> None:
        self.used.append(float(optimizer.param_groups[0]["lr"]))

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=1.0, momentum=0.5)

    def train_dataloader(self) -> DataLoader:
        return DataLoader(TensorDataset(self.data), batch_size=2)


def unified_trainer(tmp_path: Any, **kwargs: Any) -> Any:
    return L.Trainer(default_root_dir=str(tmp_path), accelerator="cpu", devices=1, logger=False,
                     enable_progress_bar=False, enable_model_summary=False, enable_checkpointing=False,
                     num_sanity_val_steps=0, **kwargs)


@pytest.mark.parametrize("cls", [CyclicLR, OneCycleLR, CosineRestartsLR, ScheduledLR])
def test_callbacks_are_callbacks_of_both_namespaces(cls):
    assert issubclass(cls, L.Callback)
    assert issubclass(cls, pl.Callback)


def test_lightning_pytorch_trainer_fit_and_resume(tmp_path):
    model = UnifiedModel()
    callback = CyclicLR(base_lr=0.01, max_lr=0.1, step_size_up=2)
    trainer = unified_trainer(tmp_path, max_epochs=1, callbacks=[callback])
    trainer.fit(model)
    assert model.used == pytest.approx(LR.values(6), rel=1e-12)
    assert trainer.optimizers[0].param_groups[0]["momentum"] == pytest.approx(CyclicSchedule(0.9, 0.8, 2)(6))
    trainer.save_checkpoint(tmp_path / "end.ckpt")

    resumed = UnifiedModel()
    trainer = unified_trainer(tmp_path, max_epochs=2,
                              callbacks=[CyclicLR(base_lr=0.01, max_lr=0.1, step_size_up=2)])
    trainer.fit(resumed, ckpt_path=tmp_path / "end.ckpt")
    assert resumed.used == pytest.approx(LR.values(12)[6:], rel=1e-12)


def test_lightning_pytorch_learning_rate_monitor_sees_the_rates(tmp_path):
    from lightning.pytorch.callbacks import LearningRateMonitor
    from lightning.pytorch.loggers import CSVLogger

    model = UnifiedModel()
    logger = CSVLogger(tmp_path)
    trainer = L.Trainer(default_root_dir=str(tmp_path), accelerator="cpu", devices=1, logger=logger,
                        log_every_n_steps=1, enable_progress_bar=False, enable_model_summary=False,
                        enable_checkpointing=False, max_epochs=1,
                        callbacks=[ScheduledLR(ConstantSchedule(0.25)), LearningRateMonitor(logging_interval="step")])
    trainer.fit(model)
    assert model.used == [0.25] * 6
    text = (tmp_path / "lightning_logs" / "version_0" / "metrics.csv").read_text()
    header, *rows = text.splitlines()
    columns = header.split(",")
    for name in ("lr-SGD", "lr-clr-SGD"):
        values = [row.split(",")[columns.index(name)] for row in rows]
        assert [float(v) for v in values if v] == [0.25] * 6, name


def test_lightning_pytorch_cli(tmp_path, monkeypatch):
    pytest.importorskip("jsonargparse")
    from lightning.pytorch.cli import LightningCLI

    monkeypatch.setattr(sys, "argv", ["cli.py"])
    cli = LightningCLI(UnifiedModel, args=[
        "fit", f"--trainer.default_root_dir={tmp_path}", "--trainer.accelerator=cpu", "--trainer.devices=1",
        "--trainer.logger=false", "--trainer.enable_progress_bar=false", "--trainer.enable_checkpointing=false",
        "--trainer.max_epochs=1",
        "--trainer.callbacks+=lightning_clr.OneCycleLR", "--trainer.callbacks.max_lr=0.3",
        "--trainer.callbacks.total_steps=6",
    ])
    (callback,) = [cb for cb in cli.trainer.callbacks if isinstance(cb, OneCycleLR)]
    assert callback.total_steps == 6 and type(callback.total_steps) is int
    assert cli.model.used == pytest.approx(OneCycleSchedule(0.012, 0.3, 0.012 / 1e4, 6).values(6), rel=1e-12)


def test_lightning_pytorch_cli_yaml_and_help(tmp_path, monkeypatch, capsys):
    pytest.importorskip("jsonargparse")
    from lightning.pytorch.cli import LightningCLI

    monkeypatch.setattr(sys, "argv", ["cli.py"])
    config = tmp_path / "clr.yaml"
    config.write_text(
        "trainer:\n  max_steps: 4\n  logger: false\n  enable_progress_bar: false\n  enable_checkpointing: false\n"
        "  callbacks:\n    - class_path: lightning_clr.CyclicLR\n"
        "      init_args: {base_lr: 0.01, max_lr: 0.1, step_size_up: 2}\n"
    )
    cli = LightningCLI(UnifiedModel, args=["fit", "--config", str(config),
                                           f"--trainer.default_root_dir={tmp_path}"])
    assert cli.model.used == pytest.approx(LR.values(4), rel=1e-12)

    with pytest.raises(SystemExit) as exit_info:
        LightningCLI(UnifiedModel, args=["fit", "--trainer.callbacks.help", "lightning_clr.CosineRestartsLR"])
    assert exit_info.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "--trainer.callbacks.first_cycle FIRST_CYCLE" in text
    assert "type: Union[int, float, str]" in text
    assert "the first cycle's length" in text
