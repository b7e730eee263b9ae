"""Checkpoints saved by lightning_clr 0.1 (the callbacks' state format version 1, the guard's version 3) resume
with this version: no warning about changed arguments, and the rates continue exactly.

``tests/data/lightning_clr_0_1_*.pt`` are Lightning checkpoints of 5 steps of ``helpers.RecordingModel(num_batches=10)``
with the schedule callback named in the file and ``DivergenceGuard(check_every_n_steps=5, keep_every_n_steps=5)``,
saved by lightning_clr 0.1 with ``trainer.save_checkpoint``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch

from lightning_clr import CosineRestartsLR, CyclicLR, DivergenceGuard, OneCycleLR
from lightning_clr.schedules import CosineRestartsSchedule, CyclicSchedule, OneCycleSchedule

from helpers import RecordingModel, trainer_kwargs, used_lrs

DATA = Path(__file__).resolve().parent / "data"

CASES = {
    "cyclic": (lambda: CyclicLR(0.01, 0.1, step_size_up=3, mode="triangular2"),
               CyclicSchedule(0.01, 0.1, 3, None, "triangular2")),
    "one_cycle": (lambda: OneCycleLR(max_lr=0.1, total_steps=12), OneCycleSchedule(0.004, 0.1, 4e-7, 12)),
    "cosine_restarts": (lambda: CosineRestartsLR(max_lr=0.1, first_cycle=4, t_mul=2.0),
                        CosineRestartsSchedule(0.1, 4, 2.0)),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_checkpoint_of_version_0_1_resumes_exactly(tmp_path, name):
    make, schedule = CASES[name]
    path = DATA / f"lightning_clr_0_1_{name}.pt"
    saved = torch.load(path, weights_only=False)["callbacks"]
    assert saved[type(make()).__name__]["fingerprint"] == make().fingerprint()  # the same arguments, the same hash
    model = RecordingModel(num_batches=10)
    callbacks = [make(), DivergenceGuard(check_every_n_steps=5, keep_every_n_steps=5)]
    pl.Trainer(**trainer_kwargs(tmp_path, max_steps=12), callbacks=callbacks).fit(model, ckpt_path=path)
    assert [step for step, _, _ in model.used] == list(range(5, 12))
    assert used_lrs(model) == [schedule(step) for step in range(5, 12)]
    assert callbacks[1].kept_step == 10 and callbacks[1].events == []
