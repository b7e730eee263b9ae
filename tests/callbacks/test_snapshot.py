"""SnapshotCheckpoint takes a checkpoint after the last step of every cycle; SnapshotEnsemble averages them."""

from __future__ import annotations

import math
import os
from typing import Any

import pytest
import pytorch_lightning as pl
import torch
from lightning_fabric.utilities.exceptions import MisconfigurationException
from pytorch_lightning.callbacks import ModelCheckpoint

from lightning_clr import CosineRestartsLR, CyclicLR, OneCycleLR, SnapshotCheckpoint, SnapshotEnsemble
from lightning_clr.schedules import CosineRestartsSchedule
from tests.helpers import EndsDistributedCleanly, MinimalLogger, RecordingModel, trainer_kwargs


class SnapshotModel(RecordingModel):
    """Stores in every checkpoint the rates of the optimizer steps taken so far."""

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["lrs_used"] = [lrs[0] for _, lrs, _ in self.used]


def _files(folder: Any) -> list[str]:
    return sorted(os.listdir(folder)) if os.path.isdir(folder) else []


def _load(path: Any) -> dict[str, Any]:
    return torch.load(path, map_location="cpu", weights_only=False)


def _fit(tmp_path: Any, callbacks: list, model: RecordingModel, **kwargs: Any) -> pl.Trainer:
    kwargs.setdefault("enable_checkpointing", True)  # SnapshotCheckpoint is a Checkpoint
    trainer = pl.Trainer(callbacks=callbacks, **trainer_kwargs(tmp_path, **kwargs))
    trainer.fit(model)
    return trainer


COSINE_NAMES = [
    "snapshot-cycle=01-step=000006.ckpt",
    "snapshot-cycle=02-step=000018.ckpt",
    "snapshot-cycle=03-step=000042.ckpt",
]


def test_cosine_restarts_snapshots_after_steps_6_18_42(tmp_path):
    # 7 batches x 6 epochs = 42 steps; cycles of 6, 12 and 24 steps do not align with the epochs.
    model = SnapshotModel(num_batches=7)
    snapshots = SnapshotCheckpoint(dirpath=tmp_path / "snap")
    _fit(tmp_path, [CosineRestartsLR(max_lr=0.1, first_cycle=6, t_mul=2), snapshots], model, max_epochs=6)

    assert _files(tmp_path / "snap") == COSINE_NAMES
    assert snapshots.saved_steps == [6, 18, 42]
    assert snapshots.snapshot_paths == [str(tmp_path / "snap" / name) for name in COSINE_NAMES]
    schedule = CosineRestartsSchedule(peak=0.1, first_cycle=6, t_mul=2)
    for name, steps in zip(COSINE_NAMES, [6, 18, 42], strict=False):
        checkpoint = _load(tmp_path / "snap" / name)
        assert checkpoint["global_step"] == steps
        # The snapshot holds the model after exactly `steps` optimizer steps; the last one used the
        # cycle's smallest rate.
        assert len(checkpoint["lrs_used"]) == steps
        assert checkpoint["lrs_used"][-1] == pytest.approx(schedule(steps - 1), rel=1e-12)
        assert checkpoint["lrs_used"][-1] == min(checkpoint["lrs_used"][steps - {6: 6, 18: 12, 42: 24}[steps]:])
        # A full checkpoint (resumable), which lists itself among the snapshots taken.
        assert "optimizer_states" in checkpoint and "loops" in checkpoint
        assert checkpoint["callbacks"]["SnapshotCheckpoint"]["saved_steps"] == [s for s in (6, 18, 42) if s <= steps]
    assert schedule(5) == pytest.approx(0.05 * (1 + math.cos(math.pi * 5 / 6)))
    # The last snapshot holds the final weights.
    final = _load(tmp_path / "snap" / COSINE_NAMES[-1])["state_dict"]
    for key, value in model.state_dict().items():
        torch.testing.assert_close(final[key], value, rtol=0, atol=0)


def test_cyclic_lr_cycle_ends_count_optimizer_steps_with_accumulation(tmp_path):
    # 10 batches, accumulate 2 -> 5 optimizer steps per epoch, 4 epochs -> 20 steps; a cycle is 1 + 2 = 3 steps.
    snapshots = SnapshotCheckpoint(dirpath=tmp_path / "snap", filename="clr-{cycle}-{step}")
    cyclic = CyclicLR(base_lr=0.01, max_lr=0.1, step_size_up=1, step_size_down=2)
    _fit(tmp_path, [cyclic, snapshots], SnapshotModel(num_batches=10), max_epochs=4, accumulate_grad_batches=2)

    steps = [3, 6, 9, 12, 15, 18]
    assert snapshots.saved_steps == steps
    assert _files(tmp_path / "snap") == sorted(f"clr-{i + 1}-{s}.ckpt" for i, s in enumerate(steps))
    for i, s in enumerate(steps):
        checkpoint = _load(tmp_path / "snap" / f"clr-{i + 1}-{s}.ckpt")
        assert checkpoint["global_step"] == s
        assert checkpoint["lrs_used"][-3:] == pytest.approx([0.01, 0.1, 0.055])  # the cycle just ended


def test_one_cycle_snapshot_at_the_end_of_its_run(tmp_path):
    snapshots = SnapshotCheckpoint(dirpath=tmp_path / "whole")
    _fit(tmp_path, [OneCycleLR(max_lr=0.1), snapshots], SnapshotModel(num_batches=5), max_epochs=2)
    assert _files(tmp_path / "whole") == ["snapshot-cycle=01-step=000010.ckpt"]

    # A 1cycle shorter than the fit: one snapshot where the cycle ends, none after.
    snapshots = SnapshotCheckpoint(dirpath=tmp_path / "short")
    _fit(tmp_path, [OneCycleLR(max_lr=0.1, total_steps=4), snapshots], SnapshotModel(num_batches=5), max_epochs=2)
    assert snapshots.saved_steps == [4]
    assert _load(tmp_path / "short" / "snapshot-cycle=01-step=000004.ckpt")["global_step"] == 4


def test_own_step_clock_when_not_counting_skipped_steps(tmp_path):
    # count_skipped_steps=False: the schedule follows torch's step hooks, not global_step; same cycle ends here.
    snapshots = SnapshotCheckpoint(dirpath=tmp_path / "snap")
    schedule = CosineRestartsLR(max_lr=0.1, first_cycle=6, t_mul=2, count_skipped_steps=False)
    _fit(tmp_path, [schedule, snapshots], SnapshotModel(num_batches=7), max_epochs=6)
    assert snapshots.saved_steps == [6, 18, 42]
    assert _files(tmp_path / "snap") == COSINE_NAMES


class TwoOptimizers(RecordingModel):
    """Manual optimization: optimizer 0 steps on every batch, optimizer 1 on every second batch."""

    def __init__(self) -> None:
        super().__init__(num_batches=12)
        self.automatic_optimization = False

    def training_step(self, batch: Any, batch_idx: int) -> None:
        first, second = self.optimizers()
        loss = self(batch[0]).pow(2).mean()
        first.zero_grad()
        second.zero_grad()
        self.manual_backward(loss)
        first.step()
        if batch_idx % 2 == 1:
            second.step()

    def configure_optimizers(self) -> Any:
        return (torch.optim.SGD(self.layer.parameters(), lr=0.1, momentum=0.5),
                torch.optim.SGD(self.head.parameters(), lr=0.1, momentum=0.5))


def test_cycles_of_a_second_optimizer_under_manual_optimization(tmp_path):
    snapshots = SnapshotCheckpoint(dirpath=tmp_path / "snap", optimizer=1)
    callbacks = [CyclicLR(0.01, 0.1, step_size_up=2, optimizers=0),
                 CosineRestartsLR(max_lr=0.1, first_cycle=3, optimizers=[1]), snapshots]
    _fit(tmp_path, callbacks, TwoOptimizers(), max_epochs=1)
    # Optimizer 1's 3rd and 6th steps come on batches 5 and 11; global_step counts both optimizers' steps.
    assert snapshots.saved_steps == [3, 6]
    assert _files(tmp_path / "snap") == ["snapshot-cycle=01-step=000003.ckpt", "snapshot-cycle=02-step=000006.ckpt"]
    assert [_load(path)["global_step"] for path in snapshots.snapshot_paths] == [9, 18]
    assert snapshots.state_key == "SnapshotCheckpoint{'optimizer': 1}"


def test_resume_neither_repeats_nor_skips_a_snapshot(tmp_path):
    schedule_args = dict(max_lr=0.1, first_cycle=6, t_mul=2)
    folder = tmp_path / "snap"
    # The first run stops after 2 epochs (14 steps), past the first cycle end (6).
    first = _fit(tmp_path, [CosineRestartsLR(**schedule_args), SnapshotCheckpoint(dirpath=folder)],
                 SnapshotModel(num_batches=7), max_epochs=2)
    first.save_checkpoint(tmp_path / "mid.ckpt")
    assert _files(folder) == COSINE_NAMES[:1]
    # If the resumed run took snapshot 1 again, the file would reappear.
    os.remove(folder / COSINE_NAMES[0])

    snapshots = SnapshotCheckpoint(dirpath=folder)
    trainer = pl.Trainer(callbacks=[CosineRestartsLR(**schedule_args), snapshots],
                         **trainer_kwargs(tmp_path, max_epochs=6, enable_checkpointing=True))
    trainer.fit(SnapshotModel(num_batches=7), ckpt_path=tmp_path / "mid.ckpt")
    assert trainer.global_step == 42
    assert snapshots.saved_steps == [6, 18, 42]
    assert _files(folder) == COSINE_NAMES[1:]
    for name, steps in zip(COSINE_NAMES[1:], [18, 42], strict=False):
        assert _load(folder / name)["global_step"] == steps

    # Resuming from a snapshot itself (step 18) continues to the next cycle end only.
    for name in COSINE_NAMES[1:]:
        os.replace(folder / name, tmp_path / name)
    snapshots = SnapshotCheckpoint(dirpath=folder)
    trainer = pl.Trainer(callbacks=[CosineRestartsLR(**schedule_args), snapshots],
                         **trainer_kwargs(tmp_path, max_epochs=6, enable_checkpointing=True))
    trainer.fit(SnapshotModel(num_batches=7), ckpt_path=tmp_path / COSINE_NAMES[1])
    assert snapshots.saved_steps == [6, 18, 42]
    assert _files(folder) == COSINE_NAMES[2:]


def test_resume_from_a_run_without_snapshots_does_not_take_a_passed_cycle_end_late(tmp_path):
    checkpoints = ModelCheckpoint(dirpath=tmp_path / "ckpt", every_n_train_steps=10, save_top_k=-1)
    _fit(tmp_path, [CosineRestartsLR(max_lr=0.1, first_cycle=6, t_mul=2), checkpoints],
         SnapshotModel(num_batches=7), max_epochs=6, max_steps=10, enable_checkpointing=True)
    (saved,) = _files(tmp_path / "ckpt")

    snapshots = SnapshotCheckpoint(dirpath=tmp_path / "snap")
    trainer = pl.Trainer(callbacks=[CosineRestartsLR(max_lr=0.1, first_cycle=6, t_mul=2), snapshots],
                         **trainer_kwargs(tmp_path, max_epochs=6, enable_checkpointing=True))
    trainer.fit(SnapshotModel(num_batches=7), ckpt_path=tmp_path / "ckpt" / saved)
    assert snapshots.saved_steps == [18, 42]
    assert _files(tmp_path / "snap") == COSINE_NAMES[1:]


def test_keep_last_deletes_older_snapshots_and_default_folder(tmp_path):
    snapshots = SnapshotCheckpoint(keep_last=2, save_weights_only=True)
    _fit(tmp_path, [snapshots, CosineRestartsLR(max_lr=0.1, first_cycle=6, t_mul=2)], SnapshotModel(num_batches=7),
         max_epochs=6)
    folder = tmp_path / "snapshots"  # default: <default_root_dir>/snapshots without a logger
    assert _files(folder) == COSINE_NAMES[1:]
    assert snapshots.snapshot_paths == [str(folder / name) for name in COSINE_NAMES[1:]]
    assert snapshots.saved_steps == [6, 18, 42]
    checkpoint = _load(folder / COSINE_NAMES[-1])
    assert "optimizer_states" not in checkpoint and checkpoint["global_step"] == 42


def test_no_schedule_callback_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="no lightning_clr schedule callback on the Trainer drives optimizer 0"):
        _fit(tmp_path, [SnapshotCheckpoint(dirpath=tmp_path)], SnapshotModel(num_batches=2), max_epochs=1)
    with pytest.raises(ValueError, match=r"optimizer=1\) follows the schedule of optimizer 1, but configure_"
                                         r"optimizers returned 1 optimizer\(s\)"):
        _fit(tmp_path, [SnapshotCheckpoint(dirpath=tmp_path, optimizer=1), CyclicLR(0.01, 0.1, 2)],
             SnapshotModel(num_batches=2), max_epochs=1)


def test_checkpointing_disabled_is_refused_by_lightning_at_trainer_init(tmp_path):
    # SnapshotCheckpoint is a Lightning Checkpoint, and Lightning refuses any Checkpoint with
    # enable_checkpointing=False in Trainer.__init__, before a callback hook can run (docs/snapshots.md and the
    # FAQ say so; `lightning-clr check` names the fix for a LightningCLI config).
    with pytest.raises(MisconfigurationException, match="enable_checkpointing=False"):
        pl.Trainer(enable_checkpointing=False, callbacks=[CyclicLR(0.01, 0.1, 2), SnapshotCheckpoint(dirpath=tmp_path)])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(keep_last=0), "keep_last to be None or a positive int, but got 0"),
        (dict(optimizer=-1), "optimizer to be a non-negative int index, but got -1"),
        (dict(filename="snap-{epoch}"), "fields {cycle} and {step}"),
        (dict(filename="snap"), "each snapshot gets its own file"),
    ],
)
def test_invalid_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message.replace("{", r"\{").replace("}", r"\}")):
        SnapshotCheckpoint(**kwargs)


# ---------------------------------------------------------------------------- the ensemble
def _members(count: int = 3) -> list[torch.nn.Module]:
    torch.manual_seed(0)
    return [torch.nn.Linear(4, 5) for _ in range(count)]


def test_ensemble_averages_probabilities_not_logits():
    members = _members()
    x = torch.randn(6, 4)
    ensemble = SnapshotEnsemble(members)
    expected = sum(torch.softmax(m(x), dim=-1) for m in members) / 3
    torch.testing.assert_close(ensemble(x), expected)
    torch.testing.assert_close(ensemble(x).sum(dim=-1), torch.ones(6))
    assert not torch.allclose(ensemble(x), torch.softmax(sum(m(x) for m in members) / 3, dim=-1))
    torch.testing.assert_close(ensemble.member_probabilities(x).mean(dim=0), expected)
    assert ensemble.member_probabilities(x).shape == (3, 6, 5)
    assert len(ensemble) == 3


def test_ensemble_output_kinds():
    members = _members(2)
    x = torch.randn(3, 4)
    log_probs = [torch.nn.Sequential(m, torch.nn.LogSoftmax(dim=-1)) for m in members]
    probs = [torch.nn.Sequential(m, torch.nn.Softmax(dim=0)) for m in members]
    expected = (torch.softmax(members[0](x), -1) + torch.softmax(members[1](x), -1)) / 2
    torch.testing.assert_close(SnapshotEnsemble(log_probs, output="log_probs")(x), expected)
    torch.testing.assert_close(SnapshotEnsemble(members, dim=0)(x),
                               (torch.softmax(members[0](x), 0) + torch.softmax(members[1](x), 0)) / 2)
    torch.testing.assert_close(SnapshotEnsemble(probs, output="probs")(x),
                               (probs[0](x) + probs[1](x)) / 2)
    torch.testing.assert_close(SnapshotEnsemble(members, output="binary_logits")(x),
                               (torch.sigmoid(members[0](x)) + torch.sigmoid(members[1](x))) / 2)
    with pytest.raises(ValueError, match="output to be one of"):
        SnapshotEnsemble(members, output="softmax")
    with pytest.raises(ValueError, match="at least one member"):
        SnapshotEnsemble([])


def test_ensemble_from_snapshot_checkpoints(tmp_path):
    snapshots = SnapshotCheckpoint(dirpath=tmp_path / "snap")
    _fit(tmp_path, [CosineRestartsLR(max_lr=0.1, first_cycle=6, t_mul=2), snapshots], SnapshotModel(num_batches=7),
         max_epochs=6)
    ensemble = SnapshotEnsemble.from_checkpoints(SnapshotModel, snapshots.snapshot_paths)
    assert len(ensemble) == 3 and not ensemble.training
    assert all(isinstance(m, SnapshotModel) for m in ensemble.members)
    # Members differ (one per cycle) and match their checkpoints.
    for member, path in zip(ensemble.members, snapshots.snapshot_paths, strict=False):
        state = _load(path)["state_dict"]
        torch.testing.assert_close(member.head.weight, state["head.weight"])
    assert not torch.equal(ensemble.members[0].head.weight, ensemble.members[2].head.weight)
    x = torch.randn(5, 4)
    with torch.no_grad():
        expected = sum(torch.softmax(m(x), -1) for m in ensemble.members) / 3
        torch.testing.assert_close(ensemble(x), expected)
        # A folder loads its *.ckpt files in name (= step) order.
        from_folder = SnapshotEnsemble.from_checkpoints(SnapshotModel, tmp_path / "snap", map_location="cpu")
        torch.testing.assert_close(from_folder(x), expected)
    with pytest.raises(FileNotFoundError):
        SnapshotEnsemble.from_checkpoints(SnapshotModel, [tmp_path / "missing.ckpt"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="found none"):
        SnapshotEnsemble.from_checkpoints(SnapshotModel, tmp_path / "empty")


@pytest.mark.timeout(120)
def test_ddp_spawn_snapshots_written_once_by_rank_zero(tmp_path):
    # 12 samples split over 2 ranks: 3 batches of 2 per rank and epoch, 3 epochs -> 9 steps per rank.
    trainer = pl.Trainer(
        callbacks=[CosineRestartsLR(max_lr=0.1, first_cycle=3), SnapshotCheckpoint(dirpath=tmp_path / "snap"),
                   EndsDistributedCleanly()],
        **trainer_kwargs(tmp_path, max_epochs=3, strategy="ddp_spawn", devices=2, enable_checkpointing=True),
    )
    trainer.fit(RecordingModel(num_batches=6))
    names = [f"snapshot-cycle={i:02d}-step={s:06d}.ckpt" for i, s in ((1, 3), (2, 6), (3, 9))]
    assert _files(tmp_path / "snap") == names
    for name, steps in zip(names, (3, 6, 9), strict=False):
        assert _load(tmp_path / "snap" / name)["global_step"] == steps


# ------------------------------------------------------------------------------------- a Lightning Checkpoint
class SaveRecordingLogger(MinimalLogger):
    """Records every ``after_save_checkpoint`` call: what the newest snapshot was at that moment."""

    def __init__(self) -> None:
        super().__init__()
        self.saved: list[tuple[str, str, int]] = []

    def log_metrics(self, metrics: dict[str, float], step: Any = None) -> None:
        pass

    def after_save_checkpoint(self, checkpoint_callback: Any) -> None:
        self.saved.append((checkpoint_callback.last_model_path, checkpoint_callback.best_model_path,
                           checkpoint_callback.save_top_k))


def test_is_a_lightning_checkpoint_ordered_after_the_other_callbacks(tmp_path):
    snapshots = SnapshotCheckpoint(dirpath=tmp_path / "snap")
    schedule = CosineRestartsLR(max_lr=0.1, first_cycle=6)
    trainer = pl.Trainer(callbacks=[snapshots, schedule], **trainer_kwargs(tmp_path, enable_checkpointing=True))
    assert isinstance(snapshots, pl.callbacks.Checkpoint)
    assert trainer.callbacks.index(schedule) < trainer.callbacks.index(snapshots)
    assert trainer.checkpoint_callbacks == [snapshots]  # and no default ModelCheckpoint is added


def test_every_logger_is_told_after_each_snapshot(tmp_path):
    loggers = [SaveRecordingLogger(), SaveRecordingLogger()]
    snapshots = SnapshotCheckpoint(dirpath=tmp_path / "snap", keep_last=2)
    _fit(tmp_path, [CosineRestartsLR(max_lr=0.1, first_cycle=6, t_mul=2), snapshots], SnapshotModel(num_batches=7),
         max_epochs=6, logger=loggers)
    paths = [str(tmp_path / "snap" / name) for name in COSINE_NAMES]
    for logger in loggers:
        assert logger.saved == [(path, path, 2) for path in paths]
    assert snapshots.best_model_path == snapshots.last_model_path == paths[-1]
