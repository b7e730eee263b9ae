"""Smoke test of an installed (non-editable) lightning_clr: import, a short fit on a real Trainer, a preview.

Run from outside the repository, so that the installed package is the one imported::

    cd "$(mktemp -d)" && /path/to/venv/bin/python /path/to/repo/.ci/smoke.py
"""

from __future__ import annotations

import os
import sys
import warnings

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, TensorDataset

import lightning_clr
from lightning_clr import CyclicLR

assert "site-packages" in lightning_clr.__file__, f"not the installed package: {lightning_clr.__file__}"
assert os.path.exists(os.path.join(os.path.dirname(lightning_clr.__file__), "py.typed")), "py.typed not shipped"
warnings.filterwarnings("ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated", category=FutureWarning)
warnings.filterwarnings("ignore", message=r".*does not have many workers", category=UserWarning)


class Model(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(4, 1)
        self.lrs: list[float] = []

    def training_step(self, batch, batch_idx):
        self.lrs.append(self.trainer.optimizers[0].param_groups[0]["lr"])
        x, y = batch
        return torch.nn.functional.mse_loss(self.layer(x), y)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1, momentum=0.9)


torch.manual_seed(0)
data = DataLoader(TensorDataset(torch.randn(32, 4), torch.randn(32, 1)), batch_size=4)
model = Model()
trainer = pl.Trainer(max_epochs=2, accelerator="cpu", logger=False, enable_checkpointing=False,
                     enable_progress_bar=False, enable_model_summary=False,
                     callbacks=[CyclicLR(base_lr=0.01, max_lr=0.1, step_size_up="1 epochs")])
trainer.fit(model, data)
expected = lightning_clr.CyclicSchedule(0.01, 0.1, 8).values(16)
assert model.lrs == expected, (model.lrs, expected)
print(f"smoke: lightning_clr {lightning_clr.__version__} from {os.path.dirname(lightning_clr.__file__)}; "
      f"16 steps at the CyclicSchedule's rates; torch {torch.__version__}, pytorch_lightning {pl.__version__}")
sys.exit(0)
