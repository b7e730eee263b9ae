"""Runs of unknown length: ``WarmupStableDecayLR`` over a real Trainer, re-planned on resume; a warm-up before
``CyclicLR``; what the other schedules do when a resumed run has another length; a schedule-free optimizer."""

from __future__ import annotations

import re
import sys
import warnings
from pathlib import Path
from typing import Any

import pytest
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import ModelCheckpoint

from lightning_clr import CyclicLR, OneCycleLR, SnapshotCheckpoint, WarmupStableDecayLR
from lightning_clr.schedules import (
    ConstantSchedule,
    CyclicSchedule,
    OneCycleSchedule,
    WarmupStableDecaySchedule,
    with_warmup,
)

from helpers import RecordingModel, trainer_kwargs, used_lrs, used_momenta

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))


def _fit(tmp_path: Any, callbacks: list, model: RecordingModel | None = None, ckpt_path: Any = None,
         **trainer: Any) -> tuple[RecordingModel, pl.Trainer]:
    model = model or RecordingModel(num_batches=10)
    fitted = pl.Trainer(**trainer_kwargs(tmp_path, **trainer), callbacks=callbacks)
    fitted.fit(model, ckpt_path=ckpt_path)
    return model, fitted


def _messages(record: Any, pattern: str) -> list[str]:
    return [str(w.message) for w in record if re.search(pattern, str(w.message))]


@pytest.mark.parametrize(
    ("warmup", "decay", "run", "plan"),
    [
        (4, 6, {"max_steps": 30}, (4, 20, 6)),  # steps
        ("1 epochs", "2 epochs", {"max_epochs": 4}, (10, 10, 20)),  # epochs of 10 steps
        ("10%", "20%", {"max_steps": 30}, (3, 21, 6)),  # shares of the fit
        (0, "20%", {"max_epochs": 3}, (0, 24, 6)),  # no warm-up
    ],
)
def test_the_stable_phase_fills_the_fit_between_warmup_and_cool_down(tmp_path, warmup, decay, run, plan):
    callback = WarmupStableDecayLR(max_lr=0.5, warmup=warmup, decay=decay, floor=0.01, momentum=0.85)
    model, trainer = _fit(tmp_path, [callback], **run)
    expected = WarmupStableDecaySchedule(0.5, *plan, floor=0.01)
    assert callback.step_schedule() == expected
    assert used_lrs(model) == [expected(step) for step in range(trainer.global_step)]
    assert used_momenta(model) == [0.85] * trainer.global_step
    assert used_lrs(model)[-1] > 0.01 and trainer.optimizers[0].param_groups[0]["lr"] == 0.01  # the floor after


def test_bad_arguments_and_a_fit_too_short_are_refused_clearly(tmp_path):
    with pytest.raises(ValueError, match=r"Expected decay_shape to be one of \('linear', 'cosine', '1-sqrt'\)"):
        WarmupStableDecayLR(0.1, decay_shape="sqrt")
    with pytest.raises(ValueError, match=r"Expected floor below max_lr, but got floor=0\.2, max_lr=0\.1"):
        WarmupStableDecayLR(0.1, floor=0.2)
    with pytest.raises(ValueError, match="Expected decay to be"):
        WarmupStableDecayLR(0.1, decay=0)
    with pytest.raises(ValueError, match=r"warmup=8 \(8 steps\) and decay=5 \(5 steps\) are longer together than "
                                         r"the fit \(10 optimizer steps\)"):
        _fit(tmp_path, [WarmupStableDecayLR(0.1, warmup=8, decay=5)], max_steps=10)


def _long_run(tmp_path: Any, decay: Any = "20%") -> tuple[Path, WarmupStableDecaySchedule]:
    """A 40-step run with a checkpoint every 10 steps; its plan: 4 warm-up, 28 stable, 8 cool-down."""
    checkpoints = ModelCheckpoint(dirpath=tmp_path / "ckpt", every_n_train_steps=10, save_top_k=-1)
    callback = WarmupStableDecayLR(max_lr=0.5, warmup=4, decay=decay)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*dataloader is not resumable.*")
        _fit(tmp_path, [callback, checkpoints], max_steps=40, enable_checkpointing=True)
    return tmp_path / "ckpt", WarmupStableDecaySchedule(0.5, 4, 28, 8)


def _branch(tmp_path: Any, path: Path, max_steps: int, decay: Any = "20%") -> tuple[RecordingModel, Any]:
    model = RecordingModel(num_batches=10)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        _fit(tmp_path, [WarmupStableDecayLR(max_lr=0.5, warmup=4, decay=decay)], model=model, ckpt_path=path,
             max_steps=max_steps)
    return model, record


@pytest.mark.parametrize("budget", [20, 30, 60])
def test_a_branch_from_the_stable_phase_cools_down_over_the_last_share_of_the_new_run(tmp_path, budget):
    """The steps already taken are those of the long run (the stable phase at the peak); from the checkpoint on,
    each step equals a fresh schedule planned for the new length, step by step, so one run gives a model at
    every budget (shorter) and can be extended (longer)."""
    folder, long_plan = _long_run(tmp_path)
    model, record = _branch(tmp_path, folder / "epoch=0-step=10.ckpt", budget)
    fresh = WarmupStableDecaySchedule(0.5, 4, budget - 4 - round(0.2 * budget), round(0.2 * budget))
    assert [fresh(step) for step in range(10)] == [long_plan(step) for step in range(10)]  # the past is the same
    assert [step for step, _, _ in model.used] == list(range(10, budget))
    assert used_lrs(model) == [fresh(step) for step in range(10, budget)]
    assert _messages(record, "WarmupStableDecayLR|lightning_clr") == []  # planned anew, without a word


def test_a_branch_from_the_cool_down_keeps_the_old_plan_and_says_so(tmp_path):
    folder, _ = _long_run(tmp_path, decay="50%")  # 4 warm-up, 16 stable, 20 cool-down from step 20
    model, record = _branch(tmp_path, folder / "epoch=2-step=30.ckpt", 50, decay="50%")
    assert used_lrs(model) == [WarmupStableDecaySchedule(0.5, 4, 16, 20)(s) for s in range(30, 50)]
    assert _messages(record, "WarmupStableDecayLR") == [
        "WarmupStableDecayLR: the checkpoint (step 30) is in the cool-down its run began at step 20; the fit keeps "
        "that plan (ending at step 40), so that the steps already taken stay exact. Resume from a checkpoint of "
        "the stable phase to plan a cool-down anew.",
        "WarmupStableDecayLR: optimizer 0 takes step 40, past the schedule's end (40 steps); the final value is "
        "held. The run is longer than the schedule."]


def test_a_branch_whose_cool_down_should_have_begun_before_the_checkpoint_begins_it_there(tmp_path):
    folder, _ = _long_run(tmp_path)
    model, record = _branch(tmp_path, folder / "epoch=2-step=30.ckpt", 33)  # the new cool-down: steps 26-32
    assert used_lrs(model) == [WarmupStableDecaySchedule(0.5, 4, 26, 3)(s) for s in range(30, 33)]
    assert _messages(record, "WarmupStableDecayLR") == [
        "WarmupStableDecayLR: the new fit's cool-down (7 steps) would have begun at step 26, before the "
        "checkpoint's step 30; it begins at step 30 and lasts the 3 steps left."]


def test_a_share_of_the_run_keeps_its_length_from_the_checkpoints_run_and_warns_once(tmp_path):
    """OneCycleLR(total_steps=None) spans the whole fit; resumed into a longer fit, it keeps the checkpoint's run
    (the steps already taken stay exact) and says so in one warning."""
    checkpoints = ModelCheckpoint(dirpath=tmp_path / "ckpt", every_n_train_steps=10, save_top_k=-1)
    first = RecordingModel(num_batches=10)
    _fit(tmp_path, [OneCycleLR(max_lr=0.3), checkpoints], model=first, max_steps=20, enable_checkpointing=True)
    resumed = RecordingModel(num_batches=10)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        _fit(tmp_path, [OneCycleLR(max_lr=0.3)], model=resumed, ckpt_path=tmp_path / "ckpt" / "epoch=0-step=10.ckpt",
             max_steps=30)
    planned = OneCycleSchedule(0.3 / 25, 0.3, 0.3 / 25 / 1e4, 20)
    assert used_lrs(first) == [planned(s) for s in range(20)]
    assert used_lrs(resumed) == [planned(s) for s in range(10, 30)]  # the final value held past its end
    assert _messages(record, "keep their length") == [
        "OneCycleLR: the resumed fit is 30 optimizer steps long, the checkpoint's was 20; total_steps=None keep "
        "their length from the checkpoint's run, so that the steps already taken stay exact. Give lengths in steps "
        "or epochs to plan them anew."]


def test_cyclic_warmup_rises_linearly_to_base_lr_then_the_cycles_follow(tmp_path):
    callback = CyclicLR(base_lr=0.1, max_lr=0.5, step_size_up=3, warmup=4, warmup_start=0.5)
    model, _ = _fit(tmp_path, [callback], max_steps=16)
    lr = with_warmup(CyclicSchedule(0.1, 0.5, 3), 4, 0.05)
    momentum = with_warmup(CyclicSchedule(0.9, 0.8, 3), 4, 0.9)
    assert used_lrs(model) == [lr(step) for step in range(16)]
    assert used_lrs(model)[:5] == pytest.approx([0.05, 0.0625, 0.075, 0.0875, 0.1], rel=1e-12)
    assert used_momenta(model) == [momentum(step) for step in range(16)]
    plain = CyclicLR(base_lr=0.1, max_lr=0.5, step_size_up=3)
    assert plain.fingerprint() != callback.fingerprint()
    assert "warmup" not in plain.state_dict()["arguments"]  # older checkpoints still match


def test_a_snapshot_is_taken_at_the_end_of_the_cool_down(tmp_path):
    snapshots = SnapshotCheckpoint(dirpath=tmp_path / "snapshots")
    _fit(tmp_path, [WarmupStableDecayLR(max_lr=0.5, warmup=2, decay=4), snapshots], max_steps=12,
         enable_checkpointing=True)
    assert [Path(p).name for p in snapshots.snapshot_paths] == ["snapshot-cycle=01-step=000012.ckpt"]


def test_a_schedule_free_optimizer_gets_one_clear_warning(tmp_path):
    schedulefree = pytest.importorskip("schedulefree")
    model = RecordingModel(num_batches=4, optimizer=lambda p: schedulefree.SGDScheduleFree(p, lr=0.1))

    class Train(pl.Callback):  # schedule-free optimizers need train() before training steps
        def on_train_epoch_start(self, trainer, pl_module):
            trainer.optimizers[0].train()

    with pytest.warns(UserWarning) as record:
        _fit(tmp_path, [ConstantOne(), Train()], model=model, max_steps=2)
    assert _messages(record, "schedule-free") == [
        "ScheduledLR: optimizer 0 (SGDScheduleFree) is a schedule-free optimizer, which brings its own schedule (it "
        "averages the iterates and expects a constant rate after its warm-up). A schedule on top of it is rarely "
        "what is meant: drop the schedule callback, or use a plain optimizer."]


def ConstantOne() -> Any:
    from lightning_clr import ScheduledLR

    return ScheduledLR(ConstantSchedule(0.1))


def test_repr_shows_the_arguments_given(tmp_path):
    assert repr(WarmupStableDecayLR(0.1, warmup=5)) == "WarmupStableDecayLR(max_lr=0.1, warmup=5)"


def test_optimizer_momentum_is_left_alone_without_a_momentum(tmp_path):
    model, _ = _fit(tmp_path, [WarmupStableDecayLR(0.1, decay=2)], max_steps=4,
                    model=RecordingModel(num_batches=4, optimizer=lambda p: torch.optim.SGD(p, lr=1.0, momentum=0.7)))
    assert used_momenta(model) == [0.7] * 4
