"""Resume: a run preempted after a checkpoint and resumed with ``ckpt_path`` applies, at every optimizer step,
exactly (``==``) the rate and momentum an uninterrupted run applies.

The pain this pins: a scheduler's state lost or off by one on resume (the schedule restarting from step 0, or
repeating or skipping a step at the boundary), and, found while writing these tests, a callback that keeps
writing to the param-group dicts it saw at fit start while ``Optimizer.load_state_dict`` (which Lightning
calls after ``on_fit_start`` on resume) had replaced them, so the resumed run kept the checkpoint's rate.
"""

from __future__ import annotations

import contextlib
import warnings
from pathlib import Path
from typing import Any

import pytest
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import ModelCheckpoint

from lightning_clr import CosineRestartsLR, CyclicLR, LightningCLRWarning, OneCycleLR
from lightning_clr.schedules import CyclicSchedule

from helpers import RecordingModel, trainer_kwargs, used_lrs

EPOCHS = 3  # of 10 optimizer steps each


class Preempted(Exception):
    """Stands in for a job being killed."""


class Preempt(pl.Callback):
    """Raises at the start of the batch that would take optimizer step ``at``: the checkpoint written when step
    ``at - 1`` finished is the last one, as when a job is killed."""

    def __init__(self, at: int) -> None:
        self.at = at

    def on_train_batch_start(self, trainer: Any, pl_module: Any, batch: Any, batch_idx: int) -> None:
        if trainer.global_step == self.at:
            raise Preempted(f"preempted before step {self.at}")


def run(root: Path, callback: Any, extra: list, resume: Path | None = None, **trainer: Any) -> RecordingModel:
    model = RecordingModel(num_batches=10)
    kwargs = trainer_kwargs(root, **{"max_epochs": EPOCHS, "enable_checkpointing": True, **trainer})
    with warnings.catch_warnings():
        # The resumed run has no ModelCheckpoint of its own: Lightning says so, which is fine here.
        warnings.filterwarnings("ignore", message=".*callbacks used to create the checkpoint need to be provided")
        warnings.filterwarnings("ignore", message=".*The dirpath has changed from")
        # A first run cut short by max_steps is shorter than a cycle: the length warning is expected there.
        warnings.filterwarnings("ignore", message=".*longer than the whole fit")
        with contextlib.suppress(Preempted):
            pl.Trainer(**kwargs, callbacks=[callback, *extra]).fit(model, ckpt_path=resume)
    return model


CASES = {
    # name: (callback, step at which the run is cut, how: "max_steps" or "raise", checkpoint: "step" or "last")
    "cyclic-epochs-mid-epoch": (
        lambda: CyclicLR(0.1, 1.0, "1 epochs", "0.5 epochs", mode="triangular2"), 7, "max_steps", "step"),
    "cyclic-epoch-boundary": (lambda: CyclicLR(0.1, 1.0, "0.4 epochs", mode="exp_range", gamma=0.9), 10,
                              "raise", "last"),
    "one-cycle-mid-epoch": (lambda: OneCycleLR(1.0, three_phase=True), 13, "raise", "step"),
    "one-cycle-epoch-boundary": (lambda: OneCycleLR(1.0, anneal_strategy="linear"), 10, "raise", "last"),
    "cosine-restarts-mid-epoch": (lambda: CosineRestartsLR(0.5, "20%", t_mul=2.0, alpha=0.1), 13, "raise", "step"),
    "cosine-restarts-at-restart": (lambda: CosineRestartsLR(0.5, "6 steps", t_mul=2.0), 18, "raise", "step"),
    "own-counter-cyclic-mid-epoch": (
        lambda: CyclicLR(0.1, 1.0, 3, count_skipped_steps=False), 7, "raise", "last"),
    "own-counter-one-cycle-epoch-boundary": (
        lambda: OneCycleLR(1.0, count_skipped_steps=False), 20, "raise", "last"),
}


@pytest.mark.parametrize("name", list(CASES))
def test_resumed_run_applies_exactly_the_uninterrupted_rates(tmp_path: Path, name: str) -> None:
    make_callback, at, how, checkpoint = CASES[name]
    uninterrupted = run(tmp_path / "full", make_callback(), [])

    directory = tmp_path / "ckpt"
    if checkpoint == "step":
        saver = ModelCheckpoint(dirpath=directory, every_n_train_steps=at, save_top_k=-1)
    else:
        saver = ModelCheckpoint(dirpath=directory, save_last=True, every_n_train_steps=at if at % 10 else None)
    cut = {"max_steps": at} if how == "max_steps" else {}
    extra = [saver] + ([Preempt(at)] if how == "raise" else [])
    first = run(tmp_path / "first", make_callback(), extra, **cut)
    assert [step for step, _, _ in first.used] == list(range(at))

    path = directory / (f"epoch={at // 10}-step={at}.ckpt" if checkpoint == "step" else "last.ckpt")
    assert path.exists(), sorted(p.name for p in directory.iterdir())
    assert torch.load(path, weights_only=False)["global_step"] == at
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*resuming from a checkpoint that ended before the epoch ended")
        warnings.filterwarnings("ignore", message=".*past the schedule's end")
        resumed = run(tmp_path / "second", make_callback(), [], resume=path)

    assert [step for step, _, _ in resumed.used] == list(range(at, 10 * EPOCHS))
    assert first.used + resumed.used == uninterrupted.used  # lr and momentum of every step, exactly


def test_own_counters_are_saved_in_the_checkpoint(tmp_path: Path) -> None:
    """With count_skipped_steps=False the clock is the callback's own count of real updates, which Lightning
    does not keep: it is saved in the callback's state, under its state_key, and restored from there."""
    callback = CyclicLR(0.1, 1.0, 3, count_skipped_steps=False, optimizers=[0])
    saver = ModelCheckpoint(dirpath=tmp_path, every_n_train_steps=7, save_top_k=-1)
    run(tmp_path, callback, [saver, Preempt(7)])
    checkpoint = torch.load(tmp_path / "epoch=0-step=7.ckpt", weights_only=False)
    assert callback.state_key == "CyclicLR{'optimizers': [0]}"
    state = checkpoint["callbacks"][callback.state_key]
    assert state["step_counts"] == {"0": 7}
    assert state["fingerprint"] == callback.fingerprint()
    assert state["arguments"]["max_lr"] == 1.0 and state["arguments"]["step_size_up"] == 3


def test_checkpoint_holds_the_state_under_the_default_state_key(tmp_path: Path) -> None:
    callback = OneCycleLR(1.0, total_steps="2 epochs")
    run(tmp_path, callback, [ModelCheckpoint(dirpath=tmp_path, save_last=True)], max_epochs=1)
    checkpoint = torch.load(tmp_path / "last.ckpt", weights_only=False)
    assert callback.state_key == "OneCycleLR"
    state = checkpoint["callbacks"]["OneCycleLR"]
    assert state["fingerprint"] == callback.fingerprint()
    assert state["arguments"]["total_steps"] == "2 epochs"


def test_resuming_with_changed_arguments_warns_and_continues_from_the_restored_step(tmp_path: Path) -> None:
    run(tmp_path, CyclicLR(0.1, 1.0, 3), [ModelCheckpoint(dirpath=tmp_path, save_last=True)], max_epochs=1)
    message = "CyclicLR is resuming from a checkpoint saved with other arguments"
    with pytest.warns(LightningCLRWarning, match=message) as record:
        resumed = run(tmp_path / "second", CyclicLR(0.1, 2.0, 3), [], resume=tmp_path / "last.ckpt", max_epochs=2)
    changed = [str(w.message) for w in record if "other arguments" in str(w.message)]
    assert len(changed) == 1 and "'max_lr': (1.0, 2.0)" in changed[0]
    assert used_lrs(resumed) == CyclicSchedule(0.1, 2.0, 3).values(20)[10:]


def test_resuming_with_the_same_arguments_does_not_warn(tmp_path: Path) -> None:
    run(tmp_path, CyclicLR(0.1, 1.0, 3), [ModelCheckpoint(dirpath=tmp_path, save_last=True)], max_epochs=1)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        run(tmp_path / "second", CyclicLR(0.1, 1.0, 3), [], resume=tmp_path / "last.ckpt", max_epochs=2)
    assert not [w for w in record if "other arguments" in str(w.message)]
